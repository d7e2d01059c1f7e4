"""Holdout metrics, which direction is 'better' for each and which values each can take.

The definitions (direction, range) live here beside the functions so that settings can check a
floor against the metric it is about, without a hand-kept list elsewhere. scikit-learn is imported
inside the functions: settings import this module at start-up and must stay light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np


@dataclass(frozen=True)
class MetricDefinition:
    """What a metric's values mean: which way is better and the closed range they fall in."""

    name: str
    higher_is_better: bool
    lowest: float
    highest: float  # math.inf for an unbounded loss

    def contains(self, value: float) -> bool:
        return self.lowest <= value <= self.highest

    def describe_range(self) -> str:
        upper = "+inf" if math.isinf(self.highest) else f"{self.highest:g}"
        return f"[{self.lowest:g}, {upper}{')' if math.isinf(self.highest) else ']'}"


#: ROC AUC and average precision are areas under curves in the unit square; log loss is a mean
#: negative log-likelihood (0 for perfect, unbounded above); the Brier score is a mean squared
#: difference of two numbers in [0, 1].
METRICS: Final[dict[str, MetricDefinition]] = {
    "roc_auc": MetricDefinition("roc_auc", True, 0.0, 1.0),
    "pr_auc": MetricDefinition("pr_auc", True, 0.0, 1.0),
    "log_loss": MetricDefinition("log_loss", False, 0.0, math.inf),
    "brier": MetricDefinition("brier", False, 0.0, 1.0),
}
HIGHER_IS_BETTER: Final[dict[str, bool]] = {name: spec.higher_is_better for name, spec in METRICS.items()}


def classification_metrics(y_true: np.ndarray, y_prob: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), log loss and Brier score on one set of rows."""
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y_true, dtype="int64")
    p = np.clip(np.asarray(y_prob, dtype="float64"), 1e-15, 1 - 1e-15)
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"need equally many labels and predictions, got {y.shape} and {p.shape}")
    if np.unique(y).size < 2:
        raise ValueError("metrics need both classes among the labels; the holdout has only one")
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
    }


def metric_value(metric: str, y_true: np.ndarray, y_prob: np.ndarray) -> float:
    """One metric on one set of rows (a slice), by the same definitions as ``classification_metrics``."""
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y_true, dtype="int64")
    p = np.clip(np.asarray(y_prob, dtype="float64"), 1e-15, 1 - 1e-15)
    functions = {
        "roc_auc": lambda: roc_auc_score(y, p),
        "pr_auc": lambda: average_precision_score(y, p),
        "log_loss": lambda: log_loss(y, p, labels=[0, 1]),
        "brier": lambda: brier_score_loss(y, p),
    }
    return float(functions[metric]())


def gain(metric: str, challenger: float, champion: float) -> float:
    """Signed improvement of challenger over champion: positive is better whatever the metric."""
    difference = challenger - champion
    return difference if HIGHER_IS_BETTER[metric] else -difference


def meets_floor(metric: str, value: float, floor: float) -> bool:
    """A floor is a minimum for higher-is-better metrics and a maximum for losses."""
    return value >= floor if HIGHER_IS_BETTER[metric] else value <= floor


def expected_calibration_error(y_true: np.ndarray, y_prob: np.ndarray, bins: int = 10) -> float:
    """Row-weighted mean gap between predicted and observed rates over equal-width probability bins."""
    y = np.asarray(y_true, dtype="float64")
    p = np.clip(np.asarray(y_prob, dtype="float64"), 0.0, 1.0)
    which = np.minimum((p * bins).astype("int64"), bins - 1)
    counts = np.bincount(which, minlength=bins)
    predicted = np.bincount(which, weights=p, minlength=bins)
    observed = np.bincount(which, weights=y, minlength=bins)
    return float(np.abs(predicted - observed).sum() / max(int(counts.sum()), 1))
