"""Drift of a batch (or window of batches) against the champion's reference profile.

Per numeric feature: PSI on equal-mass reference bins, and the two-sample Kolmogorov-Smirnov
distance at the reference quantiles with an effect-size floor (on a million rows every shift is
"significant", so a feature drifts on KS only when the distance is also large). Per categorical
feature: chi-square against the reference mix with the Jensen-Shannon distance as its effect size;
unseen categories are one extra cell. For both, the change of the missing share. Then the
champion's score distribution (prediction drift) and, when the batch carries labels, the primary
metric on the batch against the champion's holdout metric with a bootstrap interval.

Everything is a single pass over each column into at most ``quantiles + 1`` cells, so the cost is
linear in rows and needs no access to the training data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import chisquare, kstwobign

from retrain.domain.bootstrap import metric_draws
from retrain.domain.features import category_text
from retrain.domain.metrics import HIGHER_IS_BETTER
from retrain.domain.profile import OTHER, CategoricalProfile, NumericProfile, ReferenceProfile, as_float, cell_counts
from retrain.domain.settings import DriftSettings, TaskKind
from retrain.domain.task import prediction_summary

UNSEEN = "<unseen>"
_EPS = 1e-4  # floor of bin shares in PSI, so an empty bin counts as rare, not impossible


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's verdict: the deciding statistic with its value and threshold, and the rest."""

    feature: str
    kind: str
    statistic: str
    value: float
    threshold: float
    drifted: bool
    severity: float  # value / threshold of the deciding statistic: >= 1 means drifted on it
    rows: int
    missing_reference: float
    missing_current: float
    details: Mapping[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["details"] = dict(self.details)
        return data


@dataclass(frozen=True)
class PerformanceDrift:
    metric: str
    reference: float
    current: float
    lower: float
    upper: float
    drop: float  # reference - current, positive = worse (for losses: current - reference)
    threshold: float
    dropped: bool
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    rows: int
    judged: bool
    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None
    performance: PerformanceDrift | None
    drift_share: float
    drifted_features: tuple[str, ...]
    flagged: bool
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "judged": self.judged,
            "drift_share": self.drift_share,
            "drifted_features": list(self.drifted_features),
            "flagged": self.flagged,
            "reasons": list(self.reasons),
            "features": {f.feature: f.to_dict() for f in self.features},
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
            "performance": None if self.performance is None else self.performance.to_dict(),
        }


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    p = np.maximum(reference / max(reference.sum(), 1), _EPS)
    q = np.maximum(current / max(current.sum(), 1), _EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def _psi_groups(reference_counts: np.ndarray, bins: int) -> np.ndarray:
    """Map each fine reference cell to one of ``bins`` equal-mass groups (by the cell's mid-mass)."""
    total = max(int(reference_counts.sum()), 1)
    middle = (np.cumsum(reference_counts) - reference_counts / 2) / total
    groups: np.ndarray = np.minimum((middle * bins).astype("int64"), bins - 1)
    return groups


def _missing_share(missing: int, rows: int) -> float:
    return missing / rows if rows else 0.0


def _verdict(
    name: str,
    kind: str,
    candidates: list[tuple[str, float, float, bool]],
    rows: int,
    missing_reference: float,
    missing_current: float,
    details: Mapping[str, float | None],
) -> FeatureDrift:
    """The deciding statistic: the drifted one with the highest severity, else the highest overall."""
    scored = [(stat, value, limit, hit, value / limit if limit else 0.0) for stat, value, limit, hit in candidates]
    scored.sort(key=lambda row: (row[3], row[4]), reverse=True)
    stat, value, limit, _hit, severity = scored[0]
    drifted = any(row[3] for row in scored)
    return FeatureDrift(
        name, kind, stat, value, limit, drifted, severity, rows, missing_reference, missing_current, details
    )


@dataclass(frozen=True)
class DistributionPair:
    """Reference and current shares over the same cells, for plotting a feature's drift."""

    feature: str
    cells: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]


def distribution_pair(
    profile: NumericProfile | CategoricalProfile, values: pd.Series | np.ndarray, settings: DriftSettings
) -> DistributionPair:
    """Shares of present values per PSI group (numeric) or per category (categorical), missing last."""
    if isinstance(profile, NumericProfile):
        numbers = as_float(values)
        reference = np.asarray(profile.counts, dtype="float64")
        groups = _psi_groups(reference, settings.psi_bins)
        current = cell_counts(numbers, np.asarray(profile.edges, dtype="float64")).astype("float64")
        ref = np.bincount(groups, reference, settings.psi_bins)
        cur = np.bincount(groups, current, settings.psi_bins)
        edges = (-np.inf, *profile.edges, np.inf)
        uppers = [max((edges[i + 1] for i in np.flatnonzero(groups == g)), default=np.nan) for g in range(len(ref))]
        cells = [f"≤{upper:.3g}" for upper in uppers]
        ref_missing, cur_missing = float(profile.missing), float(np.isnan(numbers).sum())
    else:
        column = category_text(pd.Series(values))
        observed = column.dropna().value_counts()
        cells = list(profile.counts)
        ref = np.array([profile.counts[c] for c in cells], dtype="float64")
        cur = np.array([observed.get(c, 0) for c in cells], dtype="float64")
        unseen = float(observed[~observed.index.isin(cells)].sum())
        if unseen:
            cells, ref, cur = [*cells, UNSEEN], np.append(ref, 0.0), np.append(cur, unseen)
        ref_missing, cur_missing = float(profile.missing), float(column.isna().sum())
    ref, cur = np.append(ref, ref_missing), np.append(cur, cur_missing)
    keep = (ref + cur) > 0
    names = [*cells, "<missing>"]
    return DistributionPair(
        profile.name,
        tuple(name for name, kept in zip(names, keep, strict=True) if kept),
        tuple(float(x) for x in ref[keep] / max(ref.sum(), 1)),
        tuple(float(x) for x in cur[keep] / max(cur.sum(), 1)),
    )


def numeric_drift(
    profile: NumericProfile, values: np.ndarray | pd.Series, settings: DriftSettings, psi_limit: float | None = None
) -> FeatureDrift:
    numbers = as_float(values)
    missing_now = int(np.isnan(numbers).sum())
    miss_ref, miss_cur = _missing_share(profile.missing, profile.rows), _missing_share(missing_now, numbers.size)
    change = abs(miss_cur - miss_ref)
    limit = settings.psi_drift if psi_limit is None else psi_limit
    candidates = [("missing_rate", change, settings.missing_rate_change, change >= settings.missing_rate_change)]
    details: dict[str, float | None] = {"psi": None, "ks": None, "ks_p": None}
    present_now = numbers.size - missing_now
    if profile.present and present_now:
        reference = np.asarray(profile.counts, dtype="float64")
        current = cell_counts(numbers, np.asarray(profile.edges, dtype="float64")).astype("float64")
        groups = _psi_groups(reference, settings.psi_bins)
        bins = settings.psi_bins
        value_psi = psi(np.bincount(groups, reference, bins), np.bincount(groups, current, bins))
        n, m = reference.sum(), current.sum()
        distance = float(np.max(np.abs(np.cumsum(reference) / n - np.cumsum(current) / m)))
        p_value = float(kstwobign.sf(distance * np.sqrt(n * m / (n + m))))
        details.update(psi=value_psi, ks=distance, ks_p=p_value)
        candidates.append(("psi", value_psi, limit, value_psi >= limit))
        ks_hit = p_value < settings.ks_alpha and distance >= settings.ks_min_effect
        candidates.append(("ks", distance, settings.ks_min_effect, ks_hit))
    return _verdict(profile.name, "numeric", candidates, int(numbers.size), miss_ref, miss_cur, details)


def categorical_drift(profile: CategoricalProfile, values: pd.Series, settings: DriftSettings) -> FeatureDrift:
    column = category_text(values)  # "3" whether this batch's column reads as int or float
    present = column.dropna()
    miss_ref = _missing_share(profile.missing, profile.rows)
    miss_cur = _missing_share(int(column.isna().sum()), len(column))
    change = abs(miss_cur - miss_ref)
    candidates = [("missing_rate", change, settings.missing_rate_change, change >= settings.missing_rate_change)]
    details: dict[str, float | None] = {"js": None, "chi2_p": None, "unseen_share": None}
    known = list(profile.counts)
    if known and len(present):
        pooled = OTHER if OTHER in profile.counts else UNSEEN
        observed = present.where(present.isin(known), pooled).value_counts()
        cells = known + ([UNSEEN] if pooled == UNSEEN else [])
        current = np.array([observed.get(cell, 0) for cell in cells], dtype="float64")
        reference = np.array([profile.counts.get(cell, 0) for cell in cells], dtype="float64")
        p = np.maximum(reference / reference.sum(), _EPS)
        p /= p.sum()
        q = current / current.sum()
        distance = float(jensenshannon(p, q, base=2))
        p_value = float(chisquare(current, p * current.sum()).pvalue)
        unseen = float(observed.get(UNSEEN, 0) / current.sum())
        details.update(js=distance, chi2_p=p_value, unseen_share=unseen)
        hit = p_value < settings.chi2_alpha and distance >= settings.js_drift
        candidates.append(("jensen_shannon", distance, settings.js_drift, hit))
    return _verdict(profile.name, "categorical", candidates, len(column), miss_ref, miss_cur, details)


def performance_drift(
    metric: str,
    reference: float,
    labels: np.ndarray,
    predictions: np.ndarray,
    settings: DriftSettings,
    *,
    resamples: int,
    confidence: float,
    seed: int,
) -> PerformanceDrift:
    """The metric on labelled batch rows vs the champion's holdout: dropped when surely worse by > threshold."""
    value, draws = metric_draws(metric, labels, predictions, resamples=resamples, seed=seed)
    tail = (1 - confidence) / 2
    lower, upper = (float(x) for x in np.quantile(draws, [tail, 1 - tail]))
    if HIGHER_IS_BETTER[metric]:
        drop, best_case = reference - value, reference - upper
    else:
        drop, best_case = value - reference, lower - reference
    dropped = best_case > settings.performance_drop
    return PerformanceDrift(
        metric, reference, value, lower, upper, drop, settings.performance_drop, dropped, labels.size
    )


def detect_drift(
    profile: ReferenceProfile,
    batch: pd.DataFrame,
    settings: DriftSettings,
    *,
    predictions: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    primary_metric: str = "roc_auc",
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    task: TaskKind = "binary",
) -> DriftReport:
    """Compare a batch with the reference; ``flagged`` says whether the drift warrants retraining.

    ``predictions`` are the task's (multiclass: rows x classes); their drift is followed on the 1-D
    summary the reference profile was built from (:func:`~retrain.domain.task.prediction_summary`).
    ``labels`` are encoded (class indices or target values), NaN where not known yet.
    """
    rows = len(batch)
    empty = pd.Series([None] * rows, dtype="object")
    features = [numeric_drift(p, batch.get(p.name, empty), settings) for p in profile.numeric]
    features += [categorical_drift(p, batch.get(p.name, empty), settings) for p in profile.categorical]
    features.sort(key=lambda f: (f.drifted, f.severity), reverse=True)
    drifted = tuple(f.feature for f in features if f.drifted)
    share = len(drifted) / len(features) if features else 0.0
    prediction = None
    if predictions is not None and profile.prediction is not None:
        summary = prediction_summary(predictions)
        prediction = numeric_drift(profile.prediction, summary, settings, settings.prediction_psi_drift)
    performance = None
    reference_metric = profile.metrics.get(primary_metric)
    if labels is not None and reference_metric is not None and predictions is not None:
        known = ~np.isnan(as_float(labels))
        y = as_float(labels)[known]
        y = y if task == "regression" else y.astype("int64")
        # AUC needs both classes and R² a varying target; multiclass metrics need only labelled rows
        enough = np.unique(y).size >= (1 if task == "multiclass" else 2)
        if known.sum() >= 2 and enough:
            performance = performance_drift(
                primary_metric,
                reference_metric,
                y,
                np.asarray(predictions)[known],
                settings,
                resamples=resamples,
                confidence=confidence,
                seed=seed,
            )
    judged = rows >= settings.min_rows
    reasons = []
    if share >= settings.drift_share:
        reasons.append(
            f"{len(drifted)} of {len(features)} features drifted ({share:.0%} >= {settings.drift_share:.0%})"
        )
    if performance is not None and performance.dropped:
        done = performance
        reasons.append(
            f"{done.metric} {done.current:.4f} (CI [{done.lower:.4f}, {done.upper:.4f}]) vs {done.reference:.4f} "
            f"on the champion's holdout: surely worse by more than {done.threshold}"
        )
    if reasons and not judged:
        reasons.append(f"but only {rows} rows (< drift.min_rows {settings.min_rows}): reported, not acted on")
    return DriftReport(
        rows=rows,
        judged=judged,
        features=tuple(features),
        prediction=prediction,
        performance=performance,
        drift_share=share,
        drifted_features=drifted,
        flagged=judged and bool(reasons),
        reasons=tuple(reasons),
    )
