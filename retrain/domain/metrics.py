"""Holdout metrics, which direction is 'better' for each and which values each can take.

The definitions (direction, range) live here beside the functions so that settings can check a
floor against the metric it is about, without a hand-kept list elsewhere. scikit-learn is imported
inside the functions: settings import this module at start-up and must stay light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
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
        lower = "(-inf" if math.isinf(self.lowest) else f"[{self.lowest:g}"
        upper = "+inf)" if math.isinf(self.highest) else f"{self.highest:g}]"
        return f"{lower}, {upper}"


#: ROC AUC and average precision are areas under curves in the unit square; log loss is a mean
#: negative log-likelihood (0 for perfect, unbounded above; binary and multiclass alike); the Brier
#: score is a mean squared difference of two numbers in [0, 1]. Macro-F1 and accuracy are shares.
#: RMSE and MAE are in the target's units (0 for perfect); R² is 1 for perfect, 0 for predicting the
#: mean, and unbounded below for worse than that.
METRICS: Final[dict[str, MetricDefinition]] = {
    "roc_auc": MetricDefinition("roc_auc", True, 0.0, 1.0),
    "pr_auc": MetricDefinition("pr_auc", True, 0.0, 1.0),
    "log_loss": MetricDefinition("log_loss", False, 0.0, math.inf),
    "brier": MetricDefinition("brier", False, 0.0, 1.0),
    "macro_f1": MetricDefinition("macro_f1", True, 0.0, 1.0),
    "accuracy": MetricDefinition("accuracy", True, 0.0, 1.0),
    "rmse": MetricDefinition("rmse", False, 0.0, math.inf),
    "mae": MetricDefinition("mae", False, 0.0, math.inf),
    "r2": MetricDefinition("r2", True, -math.inf, 1.0),
}
HIGHER_IS_BETTER: Final[dict[str, bool]] = {name: spec.higher_is_better for name, spec in METRICS.items()}

#: The metrics each task computes, in report order (the first is the usual primary metric).
TASK_METRICS: Final[dict[str, tuple[str, ...]]] = {
    "binary": ("roc_auc", "pr_auc", "log_loss", "brier"),
    "multiclass": ("log_loss", "macro_f1", "accuracy"),
    "regression": ("rmse", "mae", "r2"),
}


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


def multiclass_metrics(y_true: np.ndarray, y_prob: np.ndarray) -> dict[str, float]:
    """Log loss, macro-F1 and accuracy of ``n x k`` class probabilities against class indices 0..k-1.

    Macro-F1 averages over every class of the task (``k`` columns), so a class the model never
    predicts counts as 0 rather than disappearing from the average.
    """
    from sklearn.metrics import f1_score, log_loss

    y = np.asarray(y_true, dtype="int64")
    p = np.asarray(y_prob, dtype="float64")
    if p.ndim != 2 or y.shape != p.shape[:1] or y.size == 0:
        raise ValueError(f"need one label per row of class probabilities, got {y.shape} and {p.shape}")
    classes = list(range(p.shape[1]))
    predicted = p.argmax(axis=1)
    # XGBoost's float32 rows sum to 1 only within ~1e-7, past sklearn's float64 tolerance: renormalise
    clipped = np.clip(p, 1e-15, 1.0)
    return {
        "log_loss": float(log_loss(y, clipped / clipped.sum(axis=1, keepdims=True), labels=classes)),
        "macro_f1": float(f1_score(y, predicted, labels=classes, average="macro", zero_division=0)),
        "accuracy": float(np.mean(predicted == y)),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² (1 − MSE / variance of the targets). Targets that do not vary have no R²
    scale: then 1 for exact predictions and 0 otherwise (scikit-learn's finite convention), so
    every value stays a finite number in JSON and MLflow."""
    y = np.asarray(y_true, dtype="float64")
    p = np.asarray(y_pred, dtype="float64")
    if y.shape != p.shape or y.ndim != 1 or y.size == 0:
        raise ValueError(f"need equally many targets and predictions, got {y.shape} and {p.shape}")
    errors = y - p
    mse = float(np.mean(errors**2))
    variance = float(np.var(y))
    r2 = 1.0 - mse / variance if variance > 0 else (1.0 if mse == 0 else 0.0)
    return {"rmse": math.sqrt(mse), "mae": float(np.mean(np.abs(errors))), "r2": r2}


def task_metrics(task: str, y_true: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """Every metric of a task (``TASK_METRICS``) on one set of rows; labels already encoded."""
    if task == "regression":
        return regression_metrics(y_true, predictions)
    if task == "multiclass":
        return multiclass_metrics(y_true, predictions)
    return classification_metrics(y_true, predictions)


def metric_value(metric: str, y_true: np.ndarray, y_prob: np.ndarray) -> float:
    """One metric on one set of rows (a slice), by the same definitions as the task's metrics.

    The names tell the task apart, except log loss: two-dimensional predictions are class
    probabilities (multiclass), one-dimensional ones P(positive).
    """
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    if metric in TASK_METRICS["regression"]:
        return regression_metrics(y_true, y_prob)[metric]
    if metric in ("macro_f1", "accuracy") or np.ndim(y_prob) == 2:
        return multiclass_metrics(y_true, y_prob)[metric]
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


def _confidence(y_prob: np.ndarray) -> np.ndarray:
    """Binary: P(positive). ``n x k`` probabilities: the top-class probability (the confidence ECE)."""
    p = np.clip(np.asarray(y_prob, dtype="float64"), 0.0, 1.0)
    top: np.ndarray = p.max(axis=1) if p.ndim == 2 else p
    return top


def _confidence_and_outcome(y_true: np.ndarray, y_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The confidence and what it is a probability of: the label (binary), or whether the top class
    was right (``n x k``)."""
    y = np.asarray(y_true, dtype="float64")
    probabilities = np.asarray(y_prob)
    if probabilities.ndim == 2:
        y = (probabilities.argmax(axis=1) == y.astype("int64")).astype("float64")
    return y, _confidence(probabilities)


def _bin_of(p: np.ndarray, bins: int) -> np.ndarray:
    which: np.ndarray = np.minimum((p * bins).astype("int64"), bins - 1)
    return which


@dataclass(frozen=True)
class CalibrationNoise:
    """What the ECE of a *perfectly calibrated* model with these predictions looks like by chance.

    Each bin's gap is a sum of independent Bernoulli residuals (variance ``Σ p(1-p)``); under the
    normal approximation its absolute value has mean ``σ·√(2/π)`` and variance ``σ²(1-2/π)``. On
    300 rows a calibrated model shows an ECE near 0.06 by chance alone; on a million, near 0.001.
    """

    rows: int
    mean: float
    sd: float


def calibration_noise(y_prob: np.ndarray, bins: int = 10) -> CalibrationNoise:
    """Chance ECE of a calibrated model that predicts ``y_prob`` (see :class:`CalibrationNoise`)."""
    p = _confidence(y_prob)
    variance = np.bincount(_bin_of(p, bins), weights=p * (1.0 - p), minlength=bins)
    rows = max(len(p), 1)
    return CalibrationNoise(
        rows=len(p),
        mean=float(np.sqrt(2.0 / np.pi) * np.sqrt(variance).sum() / rows),
        sd=float(np.sqrt((1.0 - 2.0 / np.pi) * variance.sum()) / rows),
    )


def calibration_allowance(limit: float, noise: CalibrationNoise, confidence: float) -> float:
    """The largest ECE that does not show, at ``confidence`` (one-sided), a calibration error above
    ``limit``: the limit and the chance ECE add in quadrature (independent gaps), plus the chance
    ECE's own spread. Equals ``limit`` as rows grow; wider on small holdouts, where a good model
    would otherwise be refused for noise."""
    z = NormalDist().inv_cdf(confidence)
    return float(np.hypot(limit, noise.mean) + z * noise.sd)


def expected_calibration_error(y_true: np.ndarray, y_prob: np.ndarray, bins: int = 10) -> float:
    """Row-weighted mean gap between predicted and observed rates over equal-width probability bins.

    For ``n x k`` class probabilities this is the top-class (confidence) ECE: the predicted rate is
    the probability of the predicted class, the observed rate whether that class was right.
    """
    y, p = _confidence_and_outcome(y_true, y_prob)
    which = _bin_of(p, bins)
    counts = np.bincount(which, minlength=bins)
    predicted = np.bincount(which, weights=p, minlength=bins)
    observed = np.bincount(which, weights=y, minlength=bins)
    return float(np.abs(predicted - observed).sum() / max(int(counts.sum()), 1))
