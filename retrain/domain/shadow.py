"""Shadow scoring: how the challenger would have decided on the same rows the champion scored.

Before labels arrive, agreement is all there is: the share of rows with the same decision, how far
the predictions are apart, and whether they rank rows alike. Once labels arrive, the metrics of both
on those rows and their differences (positive = challenger better).

Per task: binary decides at the threshold and differs by |P − P'|; multiclass decides on the
likeliest class and differs by the total-variation distance of the two probability rows (half the
sum of absolute differences: 0 same, 1 disjoint); regression "agrees" when the two predictions are
within a tenth of the champion's prediction spread (its standard deviation on these rows) and
differs by |ŷ − ŷ'|. The rank correlation is on the 1-D summary the drift check follows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from retrain.domain.metrics import gain, task_metrics
from retrain.domain.settings import TaskKind
from retrain.domain.task import prediction_summary

#: Regression: two predictions agree when closer than this share of the champion's prediction spread.
REGRESSION_AGREEMENT = 0.1


@dataclass(frozen=True)
class ShadowComparison:
    rows: int
    agreement: float
    mean_abs_difference: float
    rank_correlation: float
    labelled_rows: int
    champion_metrics: dict[str, float] | None
    challenger_metrics: dict[str, float] | None
    gains: dict[str, float] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _agreement_and_difference(a: np.ndarray, b: np.ndarray, task: TaskKind, threshold: float) -> tuple[float, float]:
    if task == "multiclass":
        return float(np.mean(a.argmax(axis=1) == b.argmax(axis=1))), float(np.mean(0.5 * np.abs(a - b).sum(axis=1)))
    difference = np.abs(a - b)
    if task == "regression":
        tolerance = REGRESSION_AGREEMENT * float(np.std(a))
        return float(np.mean(difference <= tolerance)), float(np.mean(difference))
    return float(np.mean((a >= threshold) == (b >= threshold))), float(np.mean(difference))


def compare_shadow(
    champion: np.ndarray,
    challenger: np.ndarray,
    labels: np.ndarray | None,
    threshold: float = 0.5,
    task: TaskKind = "binary",
) -> ShadowComparison:
    """``labels`` are encoded (class indices or target values), NaN where not known yet."""
    a, b = np.asarray(champion, dtype="float64"), np.asarray(challenger, dtype="float64")
    if a.shape != b.shape or a.size == 0:
        raise ValueError("both models must score the same, non-empty rows")
    agreement, difference = _agreement_and_difference(a, b, task, threshold)
    summary_a, summary_b = prediction_summary(a), prediction_summary(b)
    correlation = float(spearmanr(summary_a, summary_b).statistic) if summary_a.size > 1 else 1.0
    champion_metrics = challenger_metrics = gains = None
    labelled = 0
    if labels is not None:
        y = np.asarray(labels, dtype="float64")
        known = ~np.isnan(y)
        labelled = int(known.sum())
        distinct = np.unique(y[known]).size
        if labelled and distinct >= (1 if task == "multiclass" else 2):
            y_known = y[known] if task == "regression" else y[known].astype("int64")
            champion_metrics = task_metrics(task, y_known, a[known])
            challenger_metrics = task_metrics(task, y_known, b[known])
            gains = {m: gain(m, challenger_metrics[m], champion_metrics[m]) for m in champion_metrics}
    return ShadowComparison(
        rows=int(summary_a.size),
        agreement=agreement,
        mean_abs_difference=difference,
        rank_correlation=correlation if np.isfinite(correlation) else 0.0,
        labelled_rows=labelled,
        champion_metrics=champion_metrics,
        challenger_metrics=challenger_metrics,
        gains=gains,
    )
