"""Paired bootstrap of the metric difference (challenger − champion) on the same holdout rows.

Why not refit a metric per resample: at 1M rows x 1000 resamples, re-sorting for ROC AUC each time
costs minutes. Every metric here is (or is linearised into) a mean of per-row terms, computed once:

* log loss and Brier score are means of per-row losses, so the paired difference is exactly the
  mean of per-row differences;
* ROC AUC is the mean of the positives' placement values (share of negatives scored below) and
  equally of the negatives' placements (DeLong); the difference is linearised into one term per row
  through those placements, the influence function behind DeLong's variance. Positives and negatives
  are resampled separately (stratified), as usual for AUC.
* PR AUC has no such form and is left to the point estimate.

A resample then only draws row indices and averages a vector of per-row terms: exact index
resampling up to 50k rows; above, the terms are sorted into 4096 equal-count bins and a resample is
a multinomial draw of bin counts (plus the within-bin spread as one normal draw with its exact
variance), which costs O(bins) instead of O(rows). Each row's term is already the paired difference
of the two models, so the bootstrap is paired. Seeded: the same inputs and seed give the same interval.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

BOOTSTRAP_METRICS = ("roc_auc", "log_loss", "brier")
_CHUNK_ELEMENTS = 8_000_000  # indices drawn at once: 32 MB of int32
_EXACT_UP_TO = 50_000  # rows; above this, resample bins of sorted terms (see _binned_means)
_BINS = 4096


@dataclass(frozen=True)
class BootstrapResult:
    """Distribution of the gain (positive = challenger better, whatever the metric's direction)."""

    metric: str
    gain: float
    lower: float
    upper: float
    confidence: float
    resamples: int
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _placements(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Placement values: for each positive the share of negatives below it (ties half), and vice versa."""
    ranks_all = rankdata(scores)
    positive = labels == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    ranks_pos = rankdata(scores[positive])
    ranks_neg = rankdata(scores[~positive])
    v10 = (ranks_all[positive] - ranks_pos) / n_neg  # negatives below each positive
    v01 = 1.0 - (ranks_all[~positive] - ranks_neg) / n_pos  # positives above each negative
    return v10, v01


def _auc_terms(
    champion: np.ndarray, challenger: np.ndarray, labels: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """The AUC gain and centred per-positive / per-negative terms: resampled means add to gain* − gain."""
    pos_a, neg_a = _placements(champion, labels)
    pos_b, neg_b = _placements(challenger, labels)
    gain = float(pos_b.mean() - pos_a.mean())
    return gain, (pos_b - pos_a - gain).astype("float32"), (neg_b - neg_a - gain).astype("float32")


def _loss_terms(metric: str, champion: np.ndarray, challenger: np.ndarray, labels: np.ndarray) -> np.ndarray:
    eps = 1e-15
    a, b = np.clip(champion, eps, 1 - eps), np.clip(challenger, eps, 1 - eps)
    if metric == "brier":
        loss_a, loss_b = (a - labels) ** 2, (b - labels) ** 2
    else:
        loss_a = -(labels * np.log(a) + (1 - labels) * np.log(1 - a))
        loss_b = -(labels * np.log(b) + (1 - labels) * np.log(1 - b))
    gain: np.ndarray = (loss_a - loss_b).astype("float32")  # positive: challenger loses less
    return gain


def _exact_means(terms: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Mean of ``len(terms)`` draws with replacement, ``resamples`` times, in bounded chunks."""
    n = terms.shape[0]
    means = np.empty(resamples, dtype="float64")
    per_chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, resamples, per_chunk):
        count = min(per_chunk, resamples - start)
        index = rng.integers(0, n, size=(count, n), dtype=np.int32)
        means[start : start + count] = terms[index].sum(axis=1, dtype="float64") / n
    return means


def _binned_means(terms: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The same resampled means, drawn bin by bin: O(bins) per resample instead of O(rows).

    Rows are sorted into ``_BINS`` equal-count bins. A resample of n rows is a multinomial count per
    bin (which bin each draw falls in) plus, within each bin, a sum of draws around the bin mean.
    The counts are drawn exactly; the within-bin sums, tiny next to the between-bin spread, are one
    normal draw with their exact variance (sum of count x within-bin variance).
    """
    n = terms.shape[0]
    bins = np.array_split(np.sort(terms.astype("float64")), _BINS)
    sizes = np.array([len(b) for b in bins], dtype="float64")
    means = np.array([b.mean() for b in bins])
    variances = np.array([b.var() for b in bins])
    counts = rng.multinomial(n, sizes / n, size=resamples).astype("float64")
    within = np.sqrt(counts @ variances) * rng.standard_normal(resamples)
    drawn: np.ndarray = (counts @ means + within) / n
    return drawn


def _resampled_means(terms: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Exact index resampling for small holdouts; the binned multinomial form for large ones."""
    if terms.shape[0] <= _EXACT_UP_TO:
        return _exact_means(terms, resamples, rng)
    return _binned_means(terms, resamples, rng)


def gain_draws(
    metric: str, labels: np.ndarray, champion: np.ndarray, challenger: np.ndarray, *, resamples: int, seed: int
) -> tuple[float, np.ndarray]:
    """The observed gain and its ``resamples`` bootstrap draws (positive = challenger better)."""
    if metric not in BOOTSTRAP_METRICS:
        raise ValueError(f"paired bootstrap supports {BOOTSTRAP_METRICS}, not {metric!r}")
    y = np.asarray(labels, dtype="int8")
    a, b = np.asarray(champion, dtype="float64"), np.asarray(challenger, dtype="float64")
    if not (y.shape == a.shape == b.shape) or y.size == 0:
        raise ValueError("labels and both models' predictions must be equally long and non-empty")
    if np.unique(y).size < 2:
        raise ValueError("the holdout needs both classes for a bootstrap of the difference")
    rng = np.random.default_rng(seed)
    if metric == "roc_auc":
        gain, pos_terms, neg_terms = _auc_terms(a, b, y)
        return gain, gain + _resampled_means(pos_terms, resamples, rng) + _resampled_means(neg_terms, resamples, rng)
    terms = _loss_terms(metric, a, b, y)
    return float(terms.astype("float64").mean()), _resampled_means(terms, resamples, rng)


def paired_bootstrap(
    metric: str,
    labels: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapResult:
    """Percentile interval of the challenger's gain over the champion on the same rows."""
    gain, draws = gain_draws(metric, labels, champion, challenger, resamples=resamples, seed=seed)
    tail = (1 - confidence) / 2
    lower, upper = np.quantile(draws, [tail, 1 - tail])
    return BootstrapResult(metric, gain, float(lower), float(upper), confidence, resamples, int(np.size(labels)))


def metric_draws(
    metric: str, labels: np.ndarray, predictions: np.ndarray, *, resamples: int, seed: int
) -> tuple[float, np.ndarray]:
    """One model's metric on some rows and its bootstrap draws (same linearisation as the paired form).

    Used where there is nothing to pair with: a batch's labelled rows against a fixed reference value.
    """
    if metric not in BOOTSTRAP_METRICS:
        raise ValueError(f"bootstrap supports {BOOTSTRAP_METRICS}, not {metric!r}")
    y = np.asarray(labels, dtype="int8")
    p = np.asarray(predictions, dtype="float64")
    if y.shape != p.shape or y.size == 0 or np.unique(y).size < 2:
        raise ValueError("need equally many labels and predictions, with both classes")
    rng = np.random.default_rng(seed)
    if metric == "roc_auc":
        pos, neg = _placements(p, y)
        value = float(pos.mean())
        pos_terms, neg_terms = (pos - value).astype("float32"), (neg - value).astype("float32")
        return value, value + _resampled_means(pos_terms, resamples, rng) + _resampled_means(neg_terms, resamples, rng)
    eps = 1e-15
    q = np.clip(p, eps, 1 - eps)
    losses = (q - y) ** 2 if metric == "brier" else -(y * np.log(q) + (1 - y) * np.log(1 - q))
    return float(losses.mean()), _resampled_means(losses.astype("float32"), resamples, rng)
