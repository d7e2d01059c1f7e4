"""The reference profile: a compact summary of a model's data that drift checks compare batches with.

Stored with the model version when it is trained (JSON, a few kB), so drift checks never re-read
the training data, and promotion re-baselines by itself: the champion's profile is the reference.

* numeric feature: the reference's quantiles at ``quantiles`` evenly spaced levels (deduplicated,
  so discrete features keep one edge per value) and the reference row counts between them. Counting
  a batch into the same cells gives both CDFs exactly at every edge (KS distance) and, merged into
  ``psi_bins`` equal-mass groups, the PSI bins;
* categorical feature: counts per category (the most frequent ``max_categories``; the rest pooled);
* both: the count of missing values, judged separately from the distribution of present values;
* the model's scores on its holdout (a numeric profile) and its holdout metrics;
* what the trigger needs to weigh a batch's drift: the champion's feature importance (share of its
  total gain, so a drifting feature the model ignores weighs little), its primary metric *estimated*
  from its holdout probabilities (:mod:`retrain.domain.estimation`, compared with the same estimate on
  a batch without labels) and how far its scores move from one holdout day to the next beyond chance
  (:func:`prediction_day_spread`, which calibrates the prediction-drift threshold).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from retrain.domain.estimation import Estimate
from retrain.domain.features import category_text
from retrain.domain.rows import Rows, column_of

OTHER = "<other>"
PREDICTION = "<prediction>"


@dataclass(frozen=True)
class NumericProfile:
    name: str
    edges: tuple[float, ...]  # sorted, unique; cells: (-inf, e0], (e0, e1], ..., (e_last, inf)
    counts: tuple[int, ...]  # len(edges) + 1 cells of present values
    missing: int

    @property
    def present(self) -> int:
        return int(sum(self.counts))

    @property
    def rows(self) -> int:
        return self.present + self.missing

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "edges": list(self.edges), "counts": list(self.counts), "missing": self.missing}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericProfile:
        return cls(
            str(data["name"]), tuple(map(float, data["edges"])), tuple(map(int, data["counts"])), int(data["missing"])
        )


@dataclass(frozen=True)
class CategoricalProfile:
    name: str
    counts: Mapping[str, int]
    missing: int

    @property
    def rows(self) -> int:
        return int(sum(self.counts.values())) + self.missing

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "counts": dict(self.counts), "missing": self.missing}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalProfile:
        """Keys as :func:`category_text` reads values now: a profile stored from a float column lists
        "3.0", which must count as the "3" a batch holds (merged if both are there)."""
        stored = {str(k): int(v) for k, v in data["counts"].items()}
        counts: dict[str, int] = {}
        for text, value in zip(category_text(pd.Series(list(stored), dtype="object")), stored.values(), strict=True):
            counts[str(text)] = counts.get(str(text), 0) + value
        return cls(str(data["name"]), counts, int(data["missing"]))


@dataclass(frozen=True)
class ReferenceProfile:
    """A model's data in a few kB. Profiles stored before version 2 have no importance, estimate or
    prediction spread: their drift checks weigh features equally and use the configured thresholds."""

    numeric: tuple[NumericProfile, ...]
    categorical: tuple[CategoricalProfile, ...]
    prediction: NumericProfile | None
    metrics: Mapping[str, float]
    rows: int
    importance: Mapping[str, float] = field(default_factory=dict)  # feature -> share of total gain
    estimate: Estimate | None = None  # primary metric estimated from the holdout's probabilities
    prediction_spread: float | None = None  # day-to-day PSI of holdout scores beyond chance
    trained_from: str | None = None  # ISO date of the model's first training day (the catch-up's test)
    trained_until: str | None = None  # ISO date of its last training day (validation and holdout follow)
    data_until: str | None = None  # ISO date of the newest day of its snapshot (its holdout's last)
    metric_errors: Mapping[str, float] = field(default_factory=dict)  # bootstrap SE of holdout metrics

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 2,
            "rows": self.rows,
            "numeric": [p.to_dict() for p in self.numeric],
            "categorical": [p.to_dict() for p in self.categorical],
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
            "metrics": dict(self.metrics),
            "importance": dict(self.importance),
            "estimate": None if self.estimate is None else asdict(self.estimate),
            "prediction_spread": self.prediction_spread,
            "trained_from": self.trained_from,
            "trained_until": self.trained_until,
            "data_until": self.data_until,
            "metric_errors": dict(self.metric_errors),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        prediction = data.get("prediction")
        estimate = data.get("estimate")
        spread = data.get("prediction_spread")
        return cls(
            numeric=tuple(NumericProfile.from_dict(p) for p in data["numeric"]),
            categorical=tuple(CategoricalProfile.from_dict(p) for p in data["categorical"]),
            prediction=None if prediction is None else NumericProfile.from_dict(prediction),
            metrics={str(k): float(v) for k, v in data["metrics"].items()},
            rows=int(data["rows"]),
            importance={str(k): float(v) for k, v in (data.get("importance") or {}).items()},
            estimate=None
            if estimate is None
            else Estimate(
                str(estimate["metric"]),
                float(estimate["value"]),
                float(estimate["standard_error"]),
                int(estimate["rows"]),
            ),
            prediction_spread=None if spread is None else float(spread),
            trained_from=_optional_text(data.get("trained_from")),
            trained_until=_optional_text(data.get("trained_until")),
            data_until=_optional_text(data.get("data_until")),
            metric_errors={str(k): float(v) for k, v in (data.get("metric_errors") or {}).items()},
        )


def as_float(values: pd.Series | np.ndarray) -> np.ndarray:
    """Numbers as float64 with NaN for missing (and for anything that is not a number)."""
    if isinstance(values, pd.Series):
        array: np.ndarray = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        return array
    return np.asarray(values, dtype="float64")


def cell_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of present values in the cells between ``edges`` (right-closed), one pass, O(n log edges)."""
    present = values[~np.isnan(values)]
    counts: np.ndarray = np.bincount(np.searchsorted(edges, present, side="left"), minlength=edges.size + 1)
    return counts


def numeric_profile(
    name: str, values: pd.Series | np.ndarray, quantiles: int, sensitive: bool = False
) -> NumericProfile:
    """Quantile edges and the counts between them, from one sort of the present values: the edges are
    read off the sorted values and each cell's count is a difference of two positions in them (the
    same edges and counts as a quantile and a binary search per value, in less time).

    A ``sensitive`` column keeps only the inner quantiles: its minimum and maximum (one row's exact
    value each) are dropped, and the outer cells count what lies beyond the inner edges."""
    numbers = as_float(values)
    present = np.sort(numbers[~np.isnan(numbers)])
    missing = int(numbers.size - present.size)
    if present.size == 0:
        return NumericProfile(name, (), (0,), missing)
    levels = np.linspace(0, 1, quantiles + 1)
    edges = np.unique(np.quantile(present, levels[1:-1] if sensitive else levels))
    at_or_below = np.searchsorted(present, edges, side="right")  # right-closed cells: values <= each edge
    counts = np.diff(np.concatenate(([0], at_or_below, [present.size])))
    return NumericProfile(name, tuple(float(e) for e in edges), tuple(int(c) for c in counts), missing)


def categorical_profile(name: str, values: pd.Series, max_categories: int = 200) -> CategoricalProfile:
    counts = category_text(values).value_counts(dropna=True)  # "3" whether the column was int or float
    missing = int(values.isna().sum())
    top = {str(k): int(v) for k, v in counts.head(max_categories).items()}
    rest = int(counts.iloc[max_categories:].sum())
    if rest:
        top[OTHER] = top.get(OTHER, 0) + rest
    return CategoricalProfile(name, top, missing)


def _column(parts: Sequence[Rows], name: str) -> pd.Series:
    """One column of rows held in parts, joined (a column at a time: the parts are never joined whole;
    rows left in storage are read a column at a time)."""
    if len(parts) == 1:
        return column_of(parts[0], name)
    return pd.concat([column_of(part, name) for part in parts], ignore_index=True)


def build_profile(
    frame: pd.DataFrame | Sequence[Rows],
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    holdout_predictions: np.ndarray | None,
    metrics: Mapping[str, float],
    quantiles: int,
    importance: Mapping[str, float] | None = None,
    estimate: Estimate | None = None,
    prediction_spread: float | None = None,
    trained_from: str | None = None,
    trained_until: str | None = None,
    data_until: str | None = None,
    metric_errors: Mapping[str, float] | None = None,
    sensitive: Sequence[str] = (),
) -> ReferenceProfile:
    """The profile of ``frame``'s rows: one frame, or the parts they are held in (the train, validation and
    holdout days of a snapshot), read a column at a time. Sensitive categorical columns arrive as
    tokens (their counts are token counts); sensitive numeric ones keep no extreme value."""
    parts = [frame] if isinstance(frame, pd.DataFrame) else list(frame)
    return ReferenceProfile(
        numeric=tuple(
            numeric_profile(name, _column(parts, name), quantiles, sensitive=name in sensitive) for name in numeric
        ),
        categorical=tuple(categorical_profile(name, _column(parts, name)) for name in categorical),
        prediction=None if holdout_predictions is None else numeric_profile(PREDICTION, holdout_predictions, quantiles),
        metrics=dict(metrics),
        rows=sum(len(part) for part in parts),
        importance=importance_shares(importance or {}),
        estimate=estimate,
        prediction_spread=prediction_spread,
        trained_from=trained_from,
        trained_until=trained_until,
        data_until=data_until,
        metric_errors=dict(metric_errors or {}),
    )


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def importance_shares(gains: Mapping[str, float]) -> dict[str, float]:
    """Each feature's share of the total (so the shares of all features sum to 1); {} without gain."""
    total = float(sum(max(v, 0.0) for v in gains.values()))
    return {name: max(float(v), 0.0) / total for name, v in gains.items()} if total > 0 else {}


def near_constant(profile: NumericProfile | CategoricalProfile, share: float) -> bool:
    """Whether one value (a numeric cell between deduplicated quantiles, or a category) holds at
    least ``share`` of the reference's present values: a feature with nothing to learn from and whose
    "drift" (any other value at all) would say more about the threshold than about the data."""
    counts = np.asarray(
        list(profile.counts) if isinstance(profile, NumericProfile) else list(profile.counts.values()), dtype="float64"
    )
    total = counts.sum()
    return bool(total == 0 or counts.max() / total >= share)
