"""Shadow scoring: how the challenger would have decided on the same rows the champion scored.

Before labels arrive, agreement is all there is: the share of rows on the same side of the decision
threshold, how far the scores are apart, and whether they rank rows alike. Once labels arrive, the
metrics of both on those rows and their differences (positive = challenger better).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from retrain.domain.metrics import classification_metrics, gain


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


def compare_shadow(
    champion: np.ndarray, challenger: np.ndarray, labels: np.ndarray | None, threshold: float = 0.5
) -> ShadowComparison:
    a, b = np.asarray(champion, dtype="float64"), np.asarray(challenger, dtype="float64")
    if a.shape != b.shape or a.size == 0:
        raise ValueError("both models must score the same, non-empty rows")
    agreement = float(np.mean((a >= threshold) == (b >= threshold)))
    correlation = float(spearmanr(a, b).statistic) if a.size > 1 else 1.0
    champion_metrics = challenger_metrics = gains = None
    labelled = 0
    if labels is not None:
        y = np.asarray(labels, dtype="float64")
        known = ~np.isnan(y)
        labelled = int(known.sum())
        if labelled and np.unique(y[known]).size == 2:
            champion_metrics = classification_metrics(y[known].astype("int64"), a[known])
            challenger_metrics = classification_metrics(y[known].astype("int64"), b[known])
            gains = {m: gain(m, challenger_metrics[m], champion_metrics[m]) for m in champion_metrics}
    return ShadowComparison(
        rows=int(a.size),
        agreement=agreement,
        mean_abs_difference=float(np.mean(np.abs(a - b))),
        rank_correlation=correlation if np.isfinite(correlation) else 0.0,
        labelled_rows=labelled,
        champion_metrics=champion_metrics,
        challenger_metrics=challenger_metrics,
        gains=gains,
    )
