"""Drift of a batch (or window of batches) against the champion's reference profile.

Per numeric feature: PSI on equal-mass reference bins, and the two-sample Kolmogorov-Smirnov
distance at the reference quantiles with an effect-size floor (on a million rows every shift is
"significant", so a feature drifts on KS only when the distance is also large). Per categorical
feature: chi-square against the reference mix with the Jensen-Shannon distance as its effect size;
unseen categories are one extra cell. For both, the change of the missing share. Then the
champion's score distribution (prediction drift) and, when the batch carries labels, the primary
metric on the batch against the champion's holdout metric with a bootstrap interval.

Whether the drift warrants retraining is one chain of signals, each of which fires (retrain),
clears (no retraining: the cause is reported, not acted on) or has nothing to say (the next one
decides), so the record always names the one signal that decided and by how much:

0. **catch-up**, after a change (any signal that fires marks one): the retraining that follows a
   change trains on days from before it (the newest days are its validation and holdout), and
   compared with its own holdout (days after the change) such a model shows no drop, yet a model
   trained on the new data alone does better. So while the champion's first training day precedes
   the last change, the catch-up decides before every other signal. While a retraining today would
   still train on days before the change only, it clears (waits: a retraining that learns nothing
   new of the concept does not pay, however far the champion is behind). Then, where training uses
   a bounded window (``split.max_train_days``, so a later retraining holds fewer old days), it fires
   when a retraining today would train on more days after the change than the champion did
   (``catch_up_growth`` times as many: 1, the default, is every new day; 2 doubles them), or on days
   after it only (:class:`CatchUpStep`), and waits in between; without a window the other signals
   decide from then on (the old days never leave, so catching up never ends). It ends once the
   champion was trained on days after the change only: at most one retraining per new day (or about
   log2(window) + 1 with doubling) per change, within ``retraining.weekly_budget``. On the
   benchmark's abrupt changes doubling lagged retraining every batch by 0.007 ROC AUC, every new
   day by none, for two retrainings more per change. For a change the labels saw (a sure drop),
   the first step also needs a second one: the new batch's realized metric surely more than
   ``performance_drop`` below the level before the drop, so a drop that was chance costs one
   retraining, not a window's worth. Until a batch shows it, the catch-up has nothing to say and
   the other signals decide (it does not clear: a chance drop would otherwise silence every signal
   until the data changed again). After any other change (the features, the estimate, the
   predictions) the first step likewise needs that signal, or another, to fire on a new batch: on
   the benchmark's stable streams one chance feature alarm used to cost six retrainings, the
   catch-up included. Later steps need no confirmation, and the catch-up does not stop when the
   champion's holdout metric looks back at the old level: on a holdout of a few hundred rows that
   is luck as often as not, and a champion stopped half-way keeps a reference that mixes both sides
   of the change, whose drifting features then pass for a new change (on the benchmark's loans
   stream: three false alarms).
1. **performance** (the batch carries labels): the realized primary metric with its bootstrap CI
   against the champion's holdout metric. Surely worse by more than ``performance_drop``: fires. At
   least as good as on the holdout, or surely not worse by more than the threshold: clears, whatever
   the features do; a model that still performs does not pay for a retraining. In between (worse,
   within the noise of a small batch): no evidence either way, the next signal decides.
2. **estimated performance** (a classifier without labels): the primary metric the champion's own
   probabilities imply (:mod:`retrain.domain.estimation`) against the same estimate on its holdout;
   fires when surely lower by more than ``performance_drop``.
3. **feature drift**, weighted by the champion's feature importance: the drifted features' share
   of the importance of the features that count (near-constant ones do not: ``constant_share``);
   fires at ``drift_share``. Profiles without importance weigh the features equally.
4. **prediction drift**, only where nothing estimates performance (a regressor): the PSI of the
   champion's scores against its holdout scores, past ``prediction_psi_drift`` plus what chance and
   the holdout's own day-to-day movement allow (:func:`prediction_limit`).

Everything is a single pass over each column into at most ``quantiles + 1`` cells, so the cost is
linear in rows and needs no access to the training data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2, chisquare, kstwobign

from retrain.domain.batch_counts import (
    BatchCounts,
    CategoryCounts,
    ColumnCounts,
    NumericCounts,
    category_counts,
    count_batch,
    numeric_counts,
)
from retrain.domain.bootstrap import metric_draws
from retrain.domain.estimation import Estimate, estimable, estimate
from retrain.domain.metrics import HIGHER_IS_BETTER
from retrain.domain.profile import (
    OTHER,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    as_float,
    cell_counts,
    near_constant,
)
from retrain.domain.readable import significant
from retrain.domain.settings import DriftSettings, TaskKind
from retrain.domain.task import prediction_summary

UNSEEN = "<unseen>"
SignalName = Literal["performance", "catch_up", "estimated_performance", "feature_drift", "prediction_drift", "none"]
#: The signals whose firing marks a change of the data (the catch-up follows a change, never marks one).
CHANGE_SIGNALS: tuple[SignalName, ...] = ("performance", "estimated_performance", "feature_drift", "prediction_drift")
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
class EstimatedPerformance:
    """The primary metric estimated without labels on the batch vs the same estimate on the holdout."""

    metric: str
    reference: float
    current: float
    drop: float  # positive = worse
    allowance: float  # z * combined standard error: a drop within it is noise
    threshold: float
    dropped: bool
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Signal:
    """One signal of the trigger: its value against its threshold, and what it said.

    ``verdict``: "fires" (retrain), "clears" (no retraining, whatever the later signals say),
    "quiet" (below its threshold: the next signal decides) or "inconclusive" (worse, within noise).
    """

    name: SignalName
    value: float
    threshold: float
    verdict: Literal["fires", "clears", "quiet", "inconclusive"]
    text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    rows: int
    judged: bool
    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None
    performance: PerformanceDrift | None
    drift_share: float  # importance-weighted share of the counted features that drifted
    drifted_features: tuple[str, ...]
    flagged: bool
    reasons: tuple[str, ...]
    estimated: EstimatedPerformance | None = None
    signals: tuple[Signal, ...] = ()  # every signal evaluated, in the chain's order
    decided_by: Signal | None = None  # the one that decided (None: no signal fired or cleared)
    not_counted: tuple[str, ...] = ()  # near-constant features, reported but never counted
    weights: Mapping[str, float] = field(default_factory=dict)  # weight of each counted feature
    #: When a sure performance drop decides: the champion's holdout metric, the level before the drop
    #: that the catch-up's first step checks the drop against again.
    change_baseline: float | None = None

    @property
    def signal(self) -> SignalName:
        return "none" if self.decided_by is None else self.decided_by.name

    @property
    def marks_change(self) -> bool:
        """Whether this report, if it leads to a retraining, marks a change the catch-up follows."""
        return self.flagged and self.signal in CHANGE_SIGNALS

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "judged": self.judged,
            "drift_share": self.drift_share,
            "drifted_features": list(self.drifted_features),
            "not_counted": list(self.not_counted),
            "weights": dict(self.weights),
            "flagged": self.flagged,
            "reasons": list(self.reasons),
            "signal": self.signal,
            "decided_by": None if self.decided_by is None else self.decided_by.to_dict(),
            "signals": [item.to_dict() for item in self.signals],
            "features": {f.feature: f.to_dict() for f in self.features},
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
            "performance": None if self.performance is None else self.performance.to_dict(),
            "estimated": None if self.estimated is None else self.estimated.to_dict(),
            "change_baseline": self.change_baseline,
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
    profile: NumericProfile | CategoricalProfile,
    values: pd.Series | np.ndarray | ColumnCounts,
    settings: DriftSettings,
) -> DistributionPair:
    """Shares of present values per PSI group (numeric) or per category (categorical), missing last."""
    if isinstance(profile, NumericProfile):
        counted = _numeric_counts(profile, values)
        reference = np.asarray(profile.counts, dtype="float64")
        groups = _psi_groups(reference, settings.psi_bins)
        current = counted.cells.astype("float64")
        ref = np.bincount(groups, reference, settings.psi_bins)
        cur = np.bincount(groups, current, settings.psi_bins)
        edges = (-np.inf, *profile.edges, np.inf)
        uppers = [max((edges[i + 1] for i in np.flatnonzero(groups == g)), default=np.nan) for g in range(len(ref))]
        cells = [f"≤{significant(upper, smallest=0)}" for upper in uppers]
        ref_missing, cur_missing = float(profile.missing), float(counted.missing)
    else:
        categories = _category_counts(values)
        cells = list(profile.counts)
        ref = np.array([profile.counts[c] for c in cells], dtype="float64")
        cur = np.array([categories.counts.get(c, 0) for c in cells], dtype="float64")
        unseen = float(sum(count for text, count in categories.counts.items() if text not in profile.counts))
        if unseen:
            cells, ref, cur = [*cells, UNSEEN], np.append(ref, 0.0), np.append(cur, unseen)
        ref_missing, cur_missing = float(profile.missing), float(categories.missing)
    ref, cur = np.append(ref, ref_missing), np.append(cur, cur_missing)
    keep = (ref + cur) > 0
    names = [*cells, "<missing>"]
    return DistributionPair(
        profile.name,
        tuple(name for name, kept in zip(names, keep, strict=True) if kept),
        tuple(float(x) for x in ref[keep] / max(ref.sum(), 1)),
        tuple(float(x) for x in cur[keep] / max(cur.sum(), 1)),
    )


def _numeric_counts(profile: NumericProfile, values: pd.Series | np.ndarray | ColumnCounts) -> NumericCounts:
    """A batch column counted into the profile's cells (or the counts it already is)."""
    if isinstance(values, NumericCounts):
        return values
    if isinstance(values, CategoryCounts):
        raise TypeError(f"{profile.name} is numeric in the reference but was counted as categorical")
    return numeric_counts(values, np.asarray(profile.edges, dtype="float64"))


def _category_counts(values: pd.Series | np.ndarray | ColumnCounts) -> CategoryCounts:
    if isinstance(values, CategoryCounts):
        return values
    if isinstance(values, NumericCounts):
        raise TypeError("a categorical feature was counted into numeric cells")
    return category_counts(pd.Series(values))


def numeric_drift(
    profile: NumericProfile,
    values: np.ndarray | pd.Series | NumericCounts,
    settings: DriftSettings,
    psi_limit: float | None = None,
) -> FeatureDrift:
    counted = _numeric_counts(profile, values)
    missing_now = counted.missing
    miss_ref, miss_cur = _missing_share(profile.missing, profile.rows), _missing_share(missing_now, counted.rows)
    change = abs(miss_cur - miss_ref)
    limit = settings.psi_drift if psi_limit is None else psi_limit
    candidates = [("missing_rate", change, settings.missing_rate_change, change >= settings.missing_rate_change)]
    details: dict[str, float | None] = {"psi": None, "ks": None, "ks_p": None}
    present_now = counted.rows - missing_now
    if profile.present and present_now:
        reference = np.asarray(profile.counts, dtype="float64")
        current = counted.cells.astype("float64")
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
    return _verdict(profile.name, "numeric", candidates, counted.rows, miss_ref, miss_cur, details)


def categorical_drift(
    profile: CategoricalProfile, values: pd.Series | CategoryCounts, settings: DriftSettings
) -> FeatureDrift:
    counted = _category_counts(values)  # "3" whether this batch's column reads as int or float
    miss_ref = _missing_share(profile.missing, profile.rows)
    miss_cur = _missing_share(counted.missing, counted.rows)
    change = abs(miss_cur - miss_ref)
    candidates = [("missing_rate", change, settings.missing_rate_change, change >= settings.missing_rate_change)]
    details: dict[str, float | None] = {"js": None, "chi2_p": None, "unseen_share": None}
    known = list(profile.counts)
    if known and counted.present:
        pooled = OTHER if OTHER in profile.counts else UNSEEN
        observed: dict[str, int] = {}
        for text, count in counted.counts.items():
            cell = text if text in profile.counts else pooled
            observed[cell] = observed.get(cell, 0) + count
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
    return _verdict(profile.name, "categorical", candidates, counted.rows, miss_ref, miss_cur, details)


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
    reference_error: float = 0.0,
) -> PerformanceDrift:
    """The metric on labelled batch rows vs the champion's holdout: dropped when surely worse by > threshold.

    The holdout's value is a sample too: with its standard error (``reference_error``) the interval
    is widened (the two errors add in quadrature), so a batch is not "surely worse" than a holdout
    value that was itself lucky.
    """
    value, draws = metric_draws(metric, labels, predictions, resamples=resamples, seed=seed)
    tail = (1 - confidence) / 2
    lower, upper = (float(x) for x in np.quantile(draws, [tail, 1 - tail]))
    if reference_error > 0:
        widen = NormalDist().inv_cdf(1 - tail) * reference_error
        lower = value - float(np.hypot(value - lower, widen))
        upper = value + float(np.hypot(upper - value, widen))
    if HIGHER_IS_BETTER[metric]:
        drop, best_case = reference - value, reference - upper
    else:
        drop, best_case = value - reference, lower - reference
    dropped = best_case > settings.performance_drop
    return PerformanceDrift(
        metric, reference, value, lower, upper, drop, settings.performance_drop, dropped, labels.size
    )


def chance_psi(reference_rows: float, current_rows: float, bins: int, quantile: float | None = None) -> float:
    """The PSI two samples of one distribution show by chance over ``bins`` equal-mass bins.

    PSI is the Jeffreys divergence of the two histograms; for samples of n and m rows it is close to
    χ²(bins − 1) · (1/n + 1/m). ``quantile`` None gives its mean, else that quantile. On 300 rows
    against 300 the mean is 0.06 and the 99th percentile 0.14; on a million, nothing.
    """
    if reference_rows <= 0 or current_rows <= 0:
        return float("inf")
    scale = 1.0 / reference_rows + 1.0 / current_rows
    degrees = max(bins - 1, 1)
    return float((degrees if quantile is None else chi2.ppf(quantile, degrees)) * scale)


def prediction_day_spread(scores: np.ndarray, days: np.ndarray | pd.Series, bins: int) -> float | None:
    """How far a model's scores move between holdout days beyond chance: for each day, the PSI of
    its scores against the other days' minus the PSI chance alone gives those sizes; the largest
    excess (0 when every day is within chance). None with fewer than two days to compare."""
    values = np.asarray(scores, dtype="float64")
    labels = np.asarray(pd.Series(days).astype(str))
    distinct = np.unique(labels)
    if distinct.size < 2:
        return None
    excess = 0.0
    for day in distinct:
        own, rest = values[labels == day], values[labels != day]
        edges = np.unique(np.quantile(rest, np.linspace(0, 1, bins + 1)[1:-1]))
        reference = cell_counts(rest, edges).astype("float64")
        current = cell_counts(own, edges).astype("float64")
        excess = max(excess, psi(reference, current) - chance_psi(rest.size, own.size, edges.size + 1))
    return excess


def prediction_limit(profile: ReferenceProfile, rows: int, settings: DriftSettings, confidence: float) -> float:
    """The PSI of the champion's scores that shows a meaningful shift on a batch of ``rows``: the
    configured ``prediction_psi_drift``, plus the larger of what chance gives at this size (the
    ``confidence`` quantile) and the day-to-day movement its holdout showed beyond chance."""
    reference_rows = 0 if profile.prediction is None else profile.prediction.present
    noise = chance_psi(reference_rows, rows, settings.psi_bins, confidence)
    return settings.prediction_psi_drift + max(noise, profile.prediction_spread or 0.0)


def estimated_performance(
    profile: ReferenceProfile,
    predictions: np.ndarray,
    metric: str,
    task: TaskKind,
    settings: DriftSettings,
    confidence: float,
    seed: int,
) -> EstimatedPerformance | None:
    """The estimate on the batch vs the profile's estimate on the holdout (None when not estimable)."""
    reference = profile.estimate
    if reference is None or reference.metric != metric or not estimable(task, metric):
        return None
    current: Estimate = estimate(metric, task, predictions, seed=seed)
    higher = HIGHER_IS_BETTER[metric]
    drop = (reference.value - current.value) if higher else (current.value - reference.value)
    error = float(np.hypot(np.nan_to_num(reference.standard_error), np.nan_to_num(current.standard_error)))
    allowance = NormalDist().inv_cdf(confidence) * error
    dropped = bool(np.isfinite(drop) and drop - allowance > settings.performance_drop)
    return EstimatedPerformance(
        metric, reference.value, current.value, drop, allowance, settings.performance_drop, dropped, current.rows
    )


def feature_weights(
    profile: ReferenceProfile, names: list[str], settings: DriftSettings
) -> tuple[dict[str, float], tuple[str, ...]]:
    """The weight of each feature that counts (summing to 1) and the near-constant ones that do not.

    Weights are the champion's importance shares renormalised over the counted features; equal
    weights when the profile has no importance or the counted features have none at all.
    """
    by_name: dict[str, NumericProfile | CategoricalProfile] = {p.name: p for p in profile.numeric}
    by_name.update({p.name: p for p in profile.categorical})
    constant = tuple(n for n in names if n in by_name and near_constant(by_name[n], settings.constant_share))
    counted = [n for n in names if n not in constant]
    raw = {n: profile.importance.get(n, 0.0) for n in counted}
    total = sum(raw.values())
    if not profile.importance or total <= 0:
        raw, total = dict.fromkeys(counted, 1.0), float(len(counted))
    return ({n: w / total for n, w in raw.items()} if total > 0 else {}), constant


def _performance_signal(performance: PerformanceDrift) -> Signal:
    """Fires on a sure drop beyond the threshold. Clears when the champion does at least as well as
    on its holdout, or surely loses no more than the threshold. Inconclusive in between: a small batch
    that looks somewhat worse is no evidence either way, and the next signal decides."""
    worse = f"{performance.metric} {performance.current:.4f} (CI [{performance.lower:.4f}, {performance.upper:.4f}])"
    against = f"vs {performance.reference:.4f} on the champion's holdout ({performance.rows} labelled rows)"
    higher = HIGHER_IS_BETTER[performance.metric]
    worst_case = performance.reference - performance.lower if higher else performance.upper - performance.reference
    if performance.dropped:
        return Signal(
            "performance",
            performance.drop,
            performance.threshold,
            "fires",
            f"{worse} {against}: surely worse by more than {performance.threshold:g}",
        )
    if performance.drop <= 0 or worst_case <= performance.threshold:
        how = (
            "at least as good" if performance.drop <= 0 else f"surely not worse by more than {performance.threshold:g}"
        )
        return Signal(
            "performance",
            performance.drop,
            performance.threshold,
            "clears",
            f"{worse} {against}: {how}; the champion still performs",
        )
    return Signal(
        "performance",
        performance.drop,
        performance.threshold,
        "inconclusive",
        f"{worse} {against}: worse by {performance.drop:.4f}, within the noise",
    )


def _estimated_signal(estimated: EstimatedPerformance) -> Signal:
    text = (
        f"{estimated.metric} estimated without labels {estimated.current:.4f} vs {estimated.reference:.4f} "
        f"estimated on the holdout: drop {estimated.drop:+.4f} (noise ±{estimated.allowance:.4f})"
    )
    verdict: Literal["fires", "quiet"] = "fires" if estimated.dropped else "quiet"
    return Signal(
        "estimated_performance",
        estimated.drop - estimated.allowance,
        estimated.threshold,
        verdict,
        f"{text}: {'surely' if estimated.dropped else 'not surely'} lower by more than {estimated.threshold:g}",
    )


def _feature_signal(share: float, drifted: tuple[str, ...], counted: int, settings: DriftSettings) -> Signal:
    fired = share >= settings.drift_share
    return Signal(
        "feature_drift",
        share,
        settings.drift_share,
        "fires" if fired else "quiet",
        f"{len(drifted)} of {counted} counted features drifted, {share:.0%} of the champion's feature importance "
        f"({'>=' if fired else '<'} {settings.drift_share:.0%})",
    )


def _prediction_signal(prediction: FeatureDrift, limit: float) -> Signal:
    value = prediction.details.get("psi") or 0.0
    fired = value >= limit
    return Signal(
        "prediction_drift",
        value,
        limit,
        "fires" if fired else "quiet",
        f"PSI of the champion's predictions {value:.3f} {'>=' if fired else '<'} {limit:.3f} "
        "(threshold plus chance at this size and the holdout's day-to-day movement)",
    )


@dataclass(frozen=True)
class ConceptChange:
    """The last change that started a retraining: when (data time) and, for a sure drop of the realized
    metric, the holdout metric the champion of that time had (the level before the drop)."""

    seen_at: dt.datetime
    baseline: float | None


def catch_up_signal(
    profile: ReferenceProfile,
    change: ConceptChange | None,
    windowed: bool,
    metric: str,
    today: dt.date | None = None,
    realized: tuple[float, float] | None = None,
    margin: float = 0.0,
    growth: float = 1.0,
    seen_again: bool = True,
) -> Signal | None:
    """While the champion was trained on days before the last change of concept (see the module's
    docstring): waits (clears) while a retraining would still train on the old concept only, then,
    where training uses a bounded window, fires at each step that pays; the first step after a drop
    the labels saw also needs the batch's ``realized`` metric interval (lower, upper), when it has
    labels, to be surely more than ``margin`` below the level before it (:func:`_drop_unconfirmed`):
    until a batch shows that, the signal is inconclusive and the rest of the chain decides (a drop that
    was chance must not hold back every other signal for good). After a change the labels did not
    see (the features, the estimate or the predictions fired), the first step needs ``seen_again``:
    another signal of the chain fires on this batch too. None when there was no change or the
    champion is past it; also, when training is not windowed, once a retraining would see the new
    concept (every retraining keeps the old days, so catching up would never end: the other signals
    decide)."""
    behind = _days_behind(profile, change)
    if behind is None or change is None:
        return None
    change_day = change.seen_at.date()
    seen = "the change" if change.baseline is None else "the drop of the realized metric"
    level = profile.metrics.get(metric)
    if change.baseline is not None and level is not None:
        regain = f"its holdout {metric} is {level:.4f}, against {change.baseline:.4f} before it"
    else:
        regain = "the data has changed since"
    lead = f"the champion's training days start {behind} day(s) before {seen} seen on {change_day.isoformat()}"
    step = catch_up_step(profile, change_day, today, growth)
    waits = step is not None and (step.new_days <= 0 or (windowed and not step.pays))
    if waits and step is not None:
        return Signal("catch_up", step.new_days, step.needed_days, "clears", f"{lead} and {regain}, but {step.text}")
    if not windowed:
        return None
    if _before_first_step(profile, change) and change.baseline is None and not seen_again:
        return Signal("catch_up", 0.0, 0.0, "inconclusive", f"{lead}, but {_NOT_SEEN_AGAIN}")
    unconfirmed = _drop_unconfirmed(profile, change, metric, realized, margin)
    if unconfirmed is not None:
        return Signal("catch_up", unconfirmed, margin, "inconclusive", f"{lead}, but {_UNCONFIRMED}")
    text = f"{lead} and {regain}: retraining until its training days follow it" + (
        "" if step is None else f" ({step.text})"
    )
    return Signal("catch_up", float(behind), 0.0, "fires", text)


_NOT_SEEN_AGAIN = (
    "no other signal fires on this batch: the first step of the catch-up after a change the labels did not "
    "see needs it seen again (one chance alarm costs one retraining, not a catch-up), and until then the "
    "other signals decide"
)
_UNCONFIRMED = (
    "this batch's labels do not show the drop again (surely more than drift.performance_drop below the "
    "level before it): the first step of the catch-up needs a second sure drop, and until one comes the "
    "other signals decide"
)


def _drop_unconfirmed(
    profile: ReferenceProfile,
    change: ConceptChange,
    metric: str,
    realized: tuple[float, float] | None,
    margin: float,
) -> float | None:
    """Before the first step of a catch-up after a sure drop (the champion trained on days before it
    only), the drop is checked again against the level before it, on a new batch: one sure drop in
    forty is chance, and the whole catch-up (log2 of the window retrainings) would follow it; two in a
    row are not. How far the batch's realized metric is from that level when unconfirmed, else None.
    Later steps need no confirmation: a concept easier than the old one may well be back at the
    old level with a champion half-way through."""
    if change.baseline is None or realized is None or not _before_first_step(profile, change):
        return None
    lower, upper = realized
    if HIGHER_IS_BETTER[metric]:
        surely_below = change.baseline - upper
        return None if surely_below > margin else change.baseline - (lower + upper) / 2
    surely_above = lower - change.baseline
    return None if surely_above > margin else (lower + upper) / 2 - change.baseline


def _before_first_step(profile: ReferenceProfile, change: ConceptChange) -> bool:
    """Whether the champion's training days all precede the change: no step of the catch-up yet."""
    if profile.trained_until is None:
        return False
    return dt.date.fromisoformat(profile.trained_until) < change.seen_at.date()


def _days_behind(profile: ReferenceProfile, change: ConceptChange | None) -> int | None:
    """Days between the champion's first training day and the change, when it was trained before it."""
    if change is None or profile.trained_from is None:
        return None
    behind = (change.seen_at.date() - dt.date.fromisoformat(profile.trained_from)).days
    return behind if behind > 0 else None


@dataclass(frozen=True)
class CatchUpStep:
    """What a retraining today would learn of the new concept, against what the champion knows of it.

    A retraining trains on the days before its validation and holdout days, so right after a change
    it still trains on the old concept only; each retraining pays when it grows the days after the
    change that training sees by ``drift.catch_up_growth`` (1, the default: by at least one day; 2:
    doubles them), or when its training days all follow the change (the last step). In days of the
    data's own calendar: a retraining today trains until ``today`` minus the champion's lag between
    its last training day and its newest day, over the champion's span.
    """

    new_days: float  # days after the change a retraining today would train on
    champion_days: float  # days after the change the champion trained on
    needed_days: float  # what the next step needs
    all_after: bool  # a retraining today would train on days after the change only
    text: str

    @property
    def pays(self) -> bool:
        return self.new_days > 0 and (self.all_after or self.new_days >= self.needed_days)


def catch_up_step(
    profile: ReferenceProfile, change_day: dt.date, today: dt.date | None, growth: float = 1.0
) -> CatchUpStep | None:
    """None when the profile (stored before its training days were) or the data time cannot tell.
    ``growth`` is ``drift.catch_up_growth``: a step needs that many times the champion's days after
    the change, and at least one day more."""
    if today is None or profile.trained_from is None or profile.trained_until is None or profile.data_until is None:
        return None
    first, last = dt.date.fromisoformat(profile.trained_from), dt.date.fromisoformat(profile.trained_until)
    newest = dt.date.fromisoformat(profile.data_until)
    would_end = today - (newest - last)
    would_start = would_end - (last - first)

    def after(end: dt.date) -> float:
        return float(max((end - change_day).days + 1, 0))

    new_days, champion_days = after(would_end), after(last)
    needed = max(growth * champion_days, champion_days + 1.0)
    all_after = would_start >= change_day
    if new_days <= 0:
        text = f"a retraining on {today.isoformat()} would still train on days before the change only"
    elif all_after:
        text = f"a retraining on {today.isoformat()} would train on days after the change only"
    elif new_days >= needed:
        text = (
            f"a retraining would train on {new_days:.0f} day(s) after the change, the champion on {champion_days:.0f}"
        )
    else:
        text = (
            f"a retraining would train on {new_days:.0f} day(s) after the change, the champion on "
            f"{champion_days:.0f}: it pays from {needed:.0f}"
        )
    return CatchUpStep(new_days, champion_days, needed, all_after, text)


def decide_signals(signals: list[Signal]) -> Signal | None:
    """The first signal in the chain that fires or clears; None when all are quiet or inconclusive."""
    return next((item for item in signals if item.verdict in ("fires", "clears")), None)


def _labelled_performance(
    profile: ReferenceProfile,
    predictions: np.ndarray | None,
    labels: np.ndarray | None,
    settings: DriftSettings,
    metric: str,
    task: TaskKind,
    resamples: int,
    confidence: float,
    seed: int,
) -> PerformanceDrift | None:
    """The realized metric on the labelled rows vs the holdout's, when the labels can carry it."""
    reference = profile.metrics.get(metric)
    if labels is None or reference is None or predictions is None:
        return None
    known = ~np.isnan(as_float(labels))
    y = as_float(labels)[known]
    y = y if task == "regression" else y.astype("int64")
    # AUC needs both classes and R² a varying target; multiclass metrics need only labelled rows
    enough = np.unique(y).size >= (1 if task == "multiclass" else 2)
    if known.sum() < 2 or not enough:
        return None
    return performance_drift(
        metric,
        reference,
        y,
        np.asarray(predictions)[known],
        settings,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
        reference_error=profile.metric_errors.get(metric, 0.0),
    )


def signal_chain(
    measured: Signal | None,
    catch_up: Signal | None,
    estimated: Signal | None,
    features: Signal,
    prediction: Signal | None,
) -> list[Signal]:
    """The signals in the order they decide: the catch-up while one runs (a retraining that would not
    learn more of the new concept does not pay, however far the champion is behind), a sure drop, the
    labels' other verdicts, the estimate, the features, and the predictions only where nothing
    estimates performance."""
    chain = [catch_up] if catch_up is not None else []
    chain += [measured] if measured is not None and measured.verdict == "fires" else []
    chain += [measured] if measured is not None and measured.verdict != "fires" else []
    chain += [estimated] if estimated is not None else []
    chain.append(features)
    chain += [prediction] if estimated is None and prediction is not None else []
    return chain


def detect_drift(
    profile: ReferenceProfile,
    batch: pd.DataFrame | BatchCounts,
    settings: DriftSettings,
    *,
    predictions: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    primary_metric: str = "roc_auc",
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    task: TaskKind = "binary",
    last_change: ConceptChange | None = None,
    windowed: bool = False,
    today: dt.date | None = None,
) -> DriftReport:
    """Compare a batch with the reference; ``flagged`` says whether the drift warrants retraining
    (the chain of signals in the module's docstring decides, and ``decided_by`` says which).

    ``predictions`` are the task's (multiclass: rows x classes); their drift is followed on the 1-D
    summary the reference profile was built from (:func:`~retrain.domain.task.prediction_summary`).
    ``labels`` are encoded (class indices or target values), NaN where not known yet.
    ``last_change`` is the last sure performance drop that started a retraining, ``windowed`` whether
    training uses a bounded window of days, ``today`` the day the batch's data has reached: together
    they drive the catch-up signal. ``batch`` is the rows, or their counts (:mod:`retrain.domain.batch_counts`:
    a batch read in pieces and counted piece by piece is judged the same as read whole).
    """
    counted = batch if isinstance(batch, BatchCounts) else count_batch(profile, batch)
    rows = counted.rows
    features = [numeric_drift(p, _numeric_counts(p, counted.columns[p.name]), settings) for p in profile.numeric]
    features += [categorical_drift(p, _category_counts(counted.columns[p.name]), settings) for p in profile.categorical]
    features.sort(key=lambda f: (f.drifted, f.severity), reverse=True)
    weights, constant = feature_weights(profile, [f.feature for f in features], settings)
    drifted = tuple(f.feature for f in features if f.drifted and f.feature in weights)
    share = float(sum(weights[name] for name in drifted))
    prediction = None
    if predictions is not None and profile.prediction is not None:
        limit = prediction_limit(profile, rows, settings, confidence)
        prediction = numeric_drift(profile.prediction, prediction_summary(predictions), settings, limit)
    performance = _labelled_performance(
        profile, predictions, labels, settings, primary_metric, task, resamples, confidence, seed
    )
    estimated = None
    if predictions is not None:
        estimated = estimated_performance(
            profile, np.asarray(predictions), primary_metric, task, settings, confidence, seed
        )
    measured = None if performance is None else _performance_signal(performance)
    estimated_signal = None if estimated is None else _estimated_signal(estimated)
    feature_signal = _feature_signal(share, drifted, len(weights), settings)
    prediction_signal = None if prediction is None else _prediction_signal(prediction, prediction.threshold)
    others = signal_chain(measured, None, estimated_signal, feature_signal, prediction_signal)
    catch_up = catch_up_signal(
        profile,
        last_change,
        windowed,
        primary_metric,
        today,
        realized=None if performance is None else (performance.lower, performance.upper),
        margin=settings.performance_drop,
        growth=settings.catch_up_growth,
        seen_again=any(item.verdict == "fires" for item in others),
    )
    signals = signal_chain(measured, catch_up, estimated_signal, feature_signal, prediction_signal)
    decided = decide_signals(signals)
    fired = decided is not None and decided.verdict == "fires"
    change_baseline = None
    if fired and decided is not None and decided.name == "performance" and performance is not None:
        change_baseline = performance.reference  # the level before the drop
    judged = rows >= settings.min_rows
    reasons = [decided.text] if decided is not None else [item.text for item in signals]
    if decided is not None and decided.verdict == "clears" and drifted:
        reasons.append(f"drifted, reported only: {', '.join(drifted)}")
    if constant:
        reasons.append(f"near-constant in the reference, not counted: {', '.join(constant)}")
    if fired and not judged:
        reasons.append(f"but only {rows} rows (< drift.min_rows {settings.min_rows}): reported, not acted on")
    return DriftReport(
        rows=rows,
        judged=judged,
        features=tuple(features),
        prediction=prediction,
        performance=performance,
        drift_share=share,
        drifted_features=drifted,
        flagged=judged and fired,
        reasons=tuple(reasons),
        estimated=estimated,
        signals=tuple(signals),
        decided_by=decided,
        not_counted=constant,
        weights=weights,
        change_baseline=change_baseline,
    )
