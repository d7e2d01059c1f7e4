"""Paired bootstrap of the metric difference (challenger − champion) on the same holdout rows.

Why not refit a metric per resample: at 1M rows x 1000 resamples, re-sorting for ROC AUC each time
costs minutes. Every metric here is (or is linearised into) a mean of per-row terms, computed once:

* log loss and Brier score are means of per-row losses, so the paired difference is exactly the
  mean of per-row differences;
* ROC AUC is the mean of the positives' placement values (share of negatives scored below) and
  equally of the negatives' placements (DeLong); the difference is linearised into one term per row
  through those placements, the influence function behind DeLong's variance. Positives and negatives
  are resampled separately (stratified), as usual for AUC.
* multiclass log loss and accuracy are means of per-row terms too (−log p of the true class; 1
  when the likeliest class is right), and so is regression MAE (|residual|);
* RMSE = sqrt(MSE) is linearised by the delta method: a resample's RMSE moves by
  (MSE* − MSE) / (2·RMSE), so row i's term is (e_i² − MSE) / (2·RMSE);
* R² = 1 − MSE / Var(y) is a ratio of two means, linearised the same way: row i's term is
  −(e_i² − MSE) / V + MSE·(d_i − V) / V², with d_i = (y_i − ȳ)² and V their mean; in the paired
  difference both models share the denominator, so the Var(y) terms only scale the gain;
* PR AUC and macro-F1 have no such form and are left to the point estimate (the gate says so).

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

BOOTSTRAP_METRICS = ("roc_auc", "log_loss", "brier", "accuracy", "rmse", "mae", "r2")
_REGRESSION = ("rmse", "mae", "r2")
_TINY = 1e-12
_CHUNK_ELEMENTS = 8_000_000  # indices drawn at once: 32 MB of int32
_EXACT_UP_TO = 50_000  # rows; above this, resample bins of sorted terms (see _binned_means)
_BINS = 1024  # percentiles within Monte Carlo noise of exact resampling even on skewed terms (tests)


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


def _row_terms(metric: str, labels: np.ndarray, predictions: np.ndarray) -> tuple[float, np.ndarray]:
    """One model's metric and its centred per-row influence terms (resampled means add to value* − value).

    Binary log loss and Brier stay in ``_loss_terms``; this covers the multiclass and regression
    metrics, whose predictions are ``n x k`` probabilities or values.
    """
    if metric in _REGRESSION:
        y = labels.astype("float64")
        errors = y - predictions
        squared = errors**2
        mse = float(squared.mean())
        if metric == "mae":
            absolute = np.abs(errors)
            value = float(absolute.mean())
            return value, absolute - value
        if metric == "rmse":
            rmse = float(np.sqrt(mse))
            return rmse, (squared - mse) / (2 * max(rmse, _TINY))
        spread = (y - y.mean()) ** 2
        variance = max(float(spread.mean()), _TINY)
        return 1.0 - mse / variance, -(squared - mse) / variance + mse * (spread - variance) / variance**2
    classes = labels.astype("int64")
    if metric == "accuracy":
        correct = (predictions.argmax(axis=1) == classes).astype("float64")
        value = float(correct.mean())
        return value, correct - value
    true_class = np.clip(predictions[np.arange(classes.size), classes], 1e-15, 1.0)
    losses = -np.log(true_class)
    value = float(losses.mean())
    return value, losses - value


def _per_row(metric: str, predictions: np.ndarray) -> bool:
    """Metrics handled by :func:`_row_terms`: regression, accuracy, multiclass (2-D) log loss."""
    return metric in _REGRESSION or metric == "accuracy" or predictions.ndim == 2


def _check_shapes(labels: np.ndarray, *predictions: np.ndarray) -> None:
    if labels.ndim != 1 or labels.size == 0 or any(p.shape[:1] != labels.shape for p in predictions):
        raise ValueError("labels and the predictions must be equally long and non-empty")
    if len({p.shape for p in predictions}) != 1:
        raise ValueError("both models' predictions must have the same shape")


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
    a2, b2 = np.asarray(champion, dtype="float64"), np.asarray(challenger, dtype="float64")
    if _per_row(metric, a2):
        y_any = np.asarray(labels, dtype="float64")
        _check_shapes(y_any, a2, b2)
        value_a, terms_a = _row_terms(metric, y_any, a2)
        value_b, terms_b = _row_terms(metric, y_any, b2)
        sign = 1.0 if metric in ("accuracy", "r2") else -1.0  # positive gain = challenger better
        gain = sign * (value_b - value_a)
        terms = (sign * (terms_b - terms_a)).astype("float32")
        return gain, gain + _resampled_means(terms, resamples, np.random.default_rng(seed))
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
    p = np.asarray(predictions, dtype="float64")
    if _per_row(metric, p):
        y_any = np.asarray(labels, dtype="float64")
        _check_shapes(y_any, p)
        value, terms = _row_terms(metric, y_any, p)
        return value, value + _resampled_means(terms.astype("float32"), resamples, np.random.default_rng(seed))
    y = np.asarray(labels, dtype="int8")
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
