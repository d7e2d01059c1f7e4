"""A classifier's metric estimated without labels, from its own probabilities (confidence-based).

If the model's probabilities are calibrated, a row scored p is a positive with probability p: the
*expected* confusion counts at any threshold are sums of probabilities (NannyML's CBPE). Every
metric of a classifier then has an expected value: ROC AUC and average precision are the ordinary
curves with each row counted as a positive with weight p and as a negative with weight 1 − p; log
loss is the mean entropy of the probabilities; the Brier score is the mean of p(1 − p); accuracy is
the mean probability of the predicted class; macro-F1 uses the expected TP, FP and FN per class.

What the drift check compares is the estimate on a batch against the same estimate on the holdout
(stored in the reference profile): a constant calibration error cancels, and what remains is the
change that the shift of the rows into regions where the model is less sure implies. It cannot see
concept drift (the same rows now having other labels): only labels show that.

A regressor's point predictions carry no distribution, so there is nothing to take an expectation
over: no estimate (:data:`ESTIMABLE` has no regression metric). Direct loss estimation (a second
model trained to predict the first one's error) would need a second model per version and would
again see only covariate shift; Retrain follows a regressor without labels through its
importance-weighted feature drift and the drift of its predictions.

Each estimate comes with its standard error, from ``resamples`` bootstrap draws of at most
``subsample`` rows scaled by sqrt(subsample / rows): linear in rows whatever the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from retrain.domain.settings import TaskKind

_EPS: Final = 1e-15
#: The metrics each classifier task can estimate without labels.
ESTIMABLE: Final[dict[str, tuple[str, ...]]] = {
    "binary": ("roc_auc", "pr_auc", "log_loss", "brier"),
    "multiclass": ("log_loss", "accuracy", "macro_f1"),
    "regression": (),
}


@dataclass(frozen=True)
class Estimate:
    """An expected metric and its standard error on ``rows`` rows."""

    metric: str
    value: float
    standard_error: float
    rows: int


def estimable(task: TaskKind, metric: str) -> bool:
    return metric in ESTIMABLE[task]


def _as_class_probabilities(task: TaskKind, predictions: np.ndarray) -> np.ndarray:
    """Rows x classes; binary scores P(positive) become two columns (negative, positive)."""
    values = np.asarray(predictions, dtype="float64")
    if task == "binary":
        positive = np.clip(values.reshape(-1), 0.0, 1.0)
        return np.column_stack([1.0 - positive, positive])
    clipped: np.ndarray = np.clip(values, 0.0, 1.0)
    return clipped


def _expected_roc_auc(positive: np.ndarray) -> float:
    """ROC AUC with each row a positive of weight p and a negative of weight 1 − p, scored p: the
    share of (positive, negative) weight pairs ranked right, ties counted half. One sort: O(n log n)."""
    order = np.argsort(positive, kind="stable")
    scores, pos, neg = positive[order], positive[order], 1.0 - positive[order]
    starts = np.flatnonzero(np.r_[True, scores[1:] != scores[:-1]])
    pos_tied, neg_tied = np.add.reduceat(pos, starts), np.add.reduceat(neg, starts)
    negatives_below = np.cumsum(neg_tied) - neg_tied
    pairs = float(pos.sum() * neg.sum())
    if pairs <= 0:
        return float("nan")
    return float((pos_tied * (negatives_below + neg_tied / 2)).sum() / pairs)


def _weighted_curve_metric(metric: str, positive: np.ndarray) -> float:
    """ROC AUC or average precision with each row a positive (weight p) and a negative (1 − p)."""
    from sklearn.metrics import average_precision_score

    if metric == "roc_auc":
        return _expected_roc_auc(positive)
    scores = np.concatenate([positive, positive])
    labels = np.concatenate([np.ones_like(positive), np.zeros_like(positive)])
    weights = np.concatenate([positive, 1.0 - positive])
    if weights[: positive.size].sum() <= 0 or weights[positive.size :].sum() <= 0:
        return float("nan")
    return float(average_precision_score(labels, scores, sample_weight=weights))


def _macro_f1(probabilities: np.ndarray) -> float:
    predicted = probabilities.argmax(axis=1)
    scores = []
    for k in range(probabilities.shape[1]):
        chosen = predicted == k
        true_positive = probabilities[chosen, k].sum()
        false_positive = (1.0 - probabilities[chosen, k]).sum()
        false_negative = probabilities[~chosen, k].sum()
        denominator = 2 * true_positive + false_positive + false_negative
        scores.append(2 * true_positive / denominator if denominator > 0 else 0.0)
    return float(np.mean(scores))


def expected_metric(metric: str, task: TaskKind, predictions: np.ndarray) -> float:
    """The metric the predictions imply if their probabilities are calibrated (see the module doc)."""
    if not estimable(task, metric):
        raise ValueError(f"{metric} cannot be estimated without labels for a {task} task")
    probabilities = _as_class_probabilities(task, predictions)
    if probabilities.shape[0] == 0:
        return float("nan")
    if metric in ("roc_auc", "pr_auc"):
        return _weighted_curve_metric(metric, probabilities[:, 1])
    if metric == "log_loss":
        safe = np.clip(probabilities, _EPS, 1.0)
        return float(np.mean(-(probabilities * np.log(safe)).sum(axis=1)))
    if metric == "brier":  # binary: E[(p - y)^2] = p(1 - p)
        return float(np.mean(probabilities[:, 1] * probabilities[:, 0]))
    if metric == "accuracy":
        return float(np.mean(probabilities.max(axis=1)))
    return _macro_f1(probabilities)


def estimate(
    metric: str,
    task: TaskKind,
    predictions: np.ndarray,
    *,
    resamples: int = 20,
    subsample: int = 20_000,
    seed: int = 0,
) -> Estimate:
    """The expected metric on all rows and its standard error (bootstrap on a bounded subsample)."""
    values = np.asarray(predictions, dtype="float64")
    rows = int(values.shape[0])
    value = expected_metric(metric, task, values)
    if rows < 2:
        return Estimate(metric, value, float("nan"), rows)
    rng = np.random.default_rng(seed)
    size = min(rows, subsample)
    draws = [expected_metric(metric, task, values[rng.integers(0, rows, size)]) for _ in range(resamples)]
    spread = float(np.nanstd(draws, ddof=1)) * float(np.sqrt(size / rows))
    return Estimate(metric, value, spread, rows)
