"""The paired bootstrap against brute force: refit the metric on every resample and compare intervals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from retrain.domain import bootstrap
from retrain.domain.bootstrap import paired_bootstrap


def _scores(n: int, seed: int, lift: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    champion = 1 / (1 + np.exp(-(y * 1.0 + rng.normal(0, 1, n))))
    challenger = 1 / (1 + np.exp(-(y * (1.0 + lift) + rng.normal(0, 1, n))))
    return y, champion, challenger


def _rank_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (average ranks for ties): the textbook formula, a
    reference independent of the bootstrap's code and many times faster than scikit-learn's curve."""
    ranks = rankdata(np.concatenate([positives, negatives]))
    return float(
        (ranks[: positives.size].sum() - positives.size * (positives.size + 1) / 2) / (positives.size * negatives.size)
    )


def test_the_rank_formula_is_scikit_learns_roc_auc():
    y, a, _ = _scores(3000, 1)
    assert _rank_auc(a[y == 1], a[y == 0]) == pytest.approx(roc_auc_score(y, a), abs=1e-12)


def test_auc_interval_matches_a_brute_force_stratified_bootstrap():
    y, a, b = _scores(3000, 1)
    fast = paired_bootstrap("roc_auc", y, a, b, resamples=1500, seed=3)
    assert fast.gain == pytest.approx(roc_auc_score(y, b) - roc_auc_score(y, a), abs=1e-12)
    rng = np.random.default_rng(9)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    brute = []
    for _ in range(1500):
        p, n = rng.choice(pos, pos.size), rng.choice(neg, neg.size)
        brute.append(_rank_auc(b[p], b[n]) - _rank_auc(a[p], a[n]))
    low, high = np.quantile(brute, [0.025, 0.975])
    width = high - low
    assert abs(fast.lower - low) < 0.1 * width and abs(fast.upper - high) < 0.1 * width


@pytest.mark.parametrize("metric", ["log_loss", "brier"])
def test_loss_gain_is_exact_and_oriented_so_that_positive_is_better(metric):
    y, a, b = _scores(2000, 2, lift=0.5)
    result = paired_bootstrap(metric, y, a, b, resamples=500, seed=1)
    score = log_loss if metric == "log_loss" else brier_score_loss
    assert result.gain == pytest.approx(score(y, a) - score(y, b), rel=1e-5)
    assert result.gain > 0 and result.lower < result.gain < result.upper


def test_binned_resampling_agrees_with_exact_resampling_on_large_holdouts():
    terms = (np.random.default_rng(5).standard_t(3, 60_000) * 0.01).astype("float32")
    exact = bootstrap._exact_means(terms, 1500, np.random.default_rng(1))
    binned = bootstrap._binned_means(terms, 1500, np.random.default_rng(2))
    assert binned.std() == pytest.approx(exact.std(), rel=0.08)
    assert binned.mean() == pytest.approx(float(terms.mean(dtype="float64")), abs=exact.std() / 5)


@pytest.mark.parametrize("skewed", ["lognormal", "log_loss"])
def test_binned_resampling_keeps_the_tails_of_skewed_terms(skewed: str):
    """The interval's ends, not only its spread: on heavily skewed terms the binned percentiles stand
    within a fifth of a standard error of exact resampling (the Monte Carlo noise of 3000 draws is ~0.05)."""
    rng = np.random.default_rng(11)
    if skewed == "lognormal":
        terms = rng.lognormal(0.0, 1.5, 50_000)
    else:
        terms = -np.log(np.clip(rng.beta(0.5, 3.0, 50_000), 1e-6, 1.0))
    terms = terms.astype("float32")
    exact = bootstrap._exact_means(terms, 3000, np.random.default_rng(1))
    binned = bootstrap._binned_means(terms, 3000, np.random.default_rng(2))
    ends = [0.025, 0.975]
    assert np.abs(np.quantile(binned, ends) - np.quantile(exact, ends)).max() < 0.2 * exact.std()


def test_same_seed_same_interval_and_identical_models_give_zero():
    y, a, b = _scores(1000, 4)
    assert paired_bootstrap("roc_auc", y, a, b, seed=7) == paired_bootstrap("roc_auc", y, a, b, seed=7)
    same = paired_bootstrap("brier", y, a, a, resamples=200, seed=7)
    assert same.gain == same.lower == same.upper == 0.0


def test_bad_inputs_are_refused():
    y, a, b = _scores(100, 5)
    with pytest.raises(ValueError, match="supports"):
        paired_bootstrap("pr_auc", y, a, b)
    with pytest.raises(ValueError, match="both classes"):
        paired_bootstrap("roc_auc", np.zeros(100), a, b)
    with pytest.raises(ValueError, match="equally long"):
        paired_bootstrap("roc_auc", y[:50], a, b)


def _regression(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, n)
    champion = y + rng.normal(0.3, 1.5, n)
    challenger = y + rng.standard_t(4, n)  # heavier tails: the intervals are not symmetric by construction
    return y, champion, challenger


def _multiclass(n: int, seed: int, k: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    signal = np.eye(k)[y]

    def probabilities(strength: float) -> np.ndarray:
        logits = strength * signal + rng.normal(0, 1, (n, k))
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    return y, probabilities(1.0), probabilities(1.4)


def _brute_regression(metric: str, y: np.ndarray, p: np.ndarray) -> float:
    """The metric refitted from scratch (numpy: scikit-learn's per-call overhead makes 3000 refits slow)."""
    mse = np.mean((y - p) ** 2)
    if metric == "rmse":
        return float(np.sqrt(mse))
    return float(np.mean(np.abs(y - p)) if metric == "mae" else 1 - mse / np.var(y))


def _brute_multiclass(metric: str, y: np.ndarray, p: np.ndarray) -> float:
    if metric == "accuracy":
        return float(np.mean(p.argmax(axis=1) == y))
    return float(-np.mean(np.log(p[np.arange(y.size), y])))


def test_the_brute_force_references_are_scikit_learns_metrics():
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y, a, _ = _regression(300, 2)
    assert _brute_regression("rmse", y, a) == pytest.approx(np.sqrt(mean_squared_error(y, a)))
    assert _brute_regression("mae", y, a) == pytest.approx(mean_absolute_error(y, a))
    assert _brute_regression("r2", y, a) == pytest.approx(r2_score(y, a))
    y, a, _ = _multiclass(300, 2)
    assert _brute_multiclass("log_loss", y, a) == pytest.approx(log_loss(y, a, labels=[0, 1, 2, 3]))


@pytest.mark.parametrize(
    ("metric", "data", "brute", "higher"),
    [
        ("rmse", _regression, _brute_regression, False),
        ("mae", _regression, _brute_regression, False),
        ("r2", _regression, _brute_regression, True),
        ("log_loss", _multiclass, _brute_multiclass, False),
        ("accuracy", _multiclass, _brute_multiclass, True),
    ],
)
def test_regression_and_multiclass_intervals_match_a_brute_force_bootstrap(metric, data, brute, higher):
    """The per-row (or linearised) terms give the same gain and nearly the same interval as refitting
    the metric on every resample of the rows."""
    y, a, b = data(1500, 11)
    fast = paired_bootstrap(metric, y, a, b, resamples=1500, seed=3)
    sign = 1.0 if higher else -1.0
    assert fast.gain == pytest.approx(sign * (brute(metric, y, b) - brute(metric, y, a)), rel=1e-6, abs=1e-9)
    rng = np.random.default_rng(9)
    draws = []
    for _ in range(1500):
        rows = rng.integers(0, y.size, y.size)
        draws.append(sign * (brute(metric, y[rows], b[rows]) - brute(metric, y[rows], a[rows])))
    low, high = np.quantile(draws, [0.025, 0.975])
    width = high - low
    assert abs(fast.lower - low) < 0.1 * width and abs(fast.upper - high) < 0.1 * width


@pytest.mark.parametrize(("metric", "data"), [("rmse", _regression), ("r2", _regression), ("log_loss", _multiclass)])
def test_one_model_draws_match_a_brute_force_bootstrap(metric, data):
    y, p, _ = data(1500, 12)
    brute_metric = _brute_regression if data is _regression else _brute_multiclass
    value, draws = bootstrap.metric_draws(metric, y, p, resamples=1500, seed=4)
    assert value == pytest.approx(brute_metric(metric, y, p), rel=1e-6)
    rng = np.random.default_rng(8)
    brute = [brute_metric(metric, y[rows], p[rows]) for rows in (rng.integers(0, y.size, y.size) for _ in range(1500))]
    assert np.std(draws) == pytest.approx(np.std(brute), rel=0.12)
    assert np.mean(draws) == pytest.approx(np.mean(brute), abs=0.25 * float(np.std(brute)))


def test_identical_regression_models_give_zero_and_shapes_are_checked():
    y, a, b = _regression(200, 1)
    same = paired_bootstrap("rmse", y, a, a, resamples=200, seed=1)
    assert same.gain == same.lower == same.upper == 0.0
    with pytest.raises(ValueError, match="equally long"):
        paired_bootstrap("mae", y[:10], a, b)
    with pytest.raises(ValueError, match="supports"):
        paired_bootstrap("macro_f1", *_multiclass(50, 1))
