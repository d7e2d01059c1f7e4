"""Per-slice non-regression: better overall must not mean worse for a group.

Each slice (a category of a column, or a bin of a numeric column) gets the paired bootstrap of the
gain on its own rows. The question per slice is "did the challenger regress here by more than the
allowed drop?": its bootstrap p-value is the share of resampled gains that are *not* such a
regression. Holm's step-down correction across slices keeps the chance of a false alarm in any
slice at ``alpha``. Slices smaller than ``min_rows`` (or with one class, or for regression a constant
target) are reported, not judged. Any task: the metric's own bootstrap terms and definitions apply
(multiclass predictions are ``n x k`` rows, masked like any other).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from retrain.domain.bootstrap import gain_draws
from retrain.domain.metrics import metric_value


@dataclass(frozen=True)
class SliceResult:
    name: str
    rows: int
    champion: float | None
    challenger: float | None
    gain: float | None
    lower: float | None
    upper: float | None
    p_value: float | None
    regressed: bool
    judged: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def slice_masks(
    frame: pd.DataFrame, categorical: Sequence[str], numeric_bins: Mapping[str, Sequence[float]]
) -> dict[str, np.ndarray]:
    """Boolean row masks named ``column=value`` or ``column∈[low, high)``; missing values are a slice too."""
    masks: dict[str, np.ndarray] = {}
    for column in categorical:
        values = frame[column].astype("object").where(frame[column].notna(), "<missing>")
        for value in sorted(values.unique(), key=str):
            masks[f"{column}={value}"] = (values == value).to_numpy()
    for column, edges in numeric_bins.items():
        numbers = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
        for low, high in itertools.pairwise(edges):
            masks[f"{column}∈[{low:g}, {high:g})"] = (numbers >= low) & (numbers < high)
    return masks


def holm_reject(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Holm's step-down procedure: which hypotheses are rejected at family-wise level ``alpha``."""
    order = np.argsort(p_values)
    rejected = [False] * len(p_values)
    for rank, index in enumerate(order):
        if p_values[index] > alpha / (len(p_values) - rank):
            break
        rejected[index] = True
    return rejected


def slice_regressions(
    metric: str,
    labels: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    masks: Mapping[str, np.ndarray],
    *,
    max_drop: float,
    min_rows: int,
    alpha: float,
    resamples: int,
    confidence: float,
    seed: int,
) -> list[SliceResult]:
    """Judge every slice big enough; a regression needs Holm-significant evidence of a drop past max_drop."""
    judged: list[tuple[str, int, float, np.ndarray]] = []
    results: dict[str, SliceResult] = {}
    for name, mask in masks.items():
        rows = int(mask.sum())
        if rows < min_rows or np.unique(labels[mask]).size < 2:
            results[name] = SliceResult(
                name, rows, None, None, None, None, None, None, False, False, f"under {min_rows} rows or one class"
            )
            continue
        gain, draws = gain_draws(metric, labels[mask], champion[mask], challenger[mask], resamples=resamples, seed=seed)
        judged.append((name, rows, gain, draws))
    p_values = [float(np.mean(draws > -max_drop)) for _, _, _, draws in judged]
    tail = (1 - confidence) / 2
    for (name, rows, gain, draws), p_value, regressed in zip(
        judged, p_values, holm_reject(p_values, alpha), strict=True
    ):
        lower, upper = np.quantile(draws, [tail, 1 - tail])
        mask = masks[name]
        results[name] = SliceResult(
            name,
            rows,
            metric_value(metric, labels[mask], champion[mask]),
            metric_value(metric, labels[mask], challenger[mask]),
            gain,
            float(lower),
            float(upper),
            p_value,
            regressed,
            True,
        )
    return [results[name] for name in masks]
