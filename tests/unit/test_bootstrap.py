"""The paired bootstrap against brute force: refit the metric on every resample and compare intervals."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from retrain.domain import bootstrap
from retrain.domain.bootstrap import paired_bootstrap


def _scores(n: int, seed: int, lift: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    champion = 1 / (1 + np.exp(-(y * 1.0 + rng.normal(0, 1, n))))
    challenger = 1 / (1 + np.exp(-(y * (1.0 + lift) + rng.normal(0, 1, n))))
    return y, champion, challenger


def test_auc_interval_matches_a_brute_force_stratified_bootstrap():
    y, a, b = _scores(3000, 1)
    fast = paired_bootstrap("roc_auc", y, a, b, resamples=1500, seed=3)
    assert fast.gain == pytest.approx(roc_auc_score(y, b) - roc_auc_score(y, a), abs=1e-12)
    rng = np.random.default_rng(9)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    brute = []
    for _ in range(1500):
        rows = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        brute.append(roc_auc_score(y[rows], b[rows]) - roc_auc_score(y[rows], a[rows]))
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
    terms = (np.random.default_rng(5).standard_t(3, 200_000) * 0.01).astype("float32")
    exact = bootstrap._exact_means(terms, 1500, np.random.default_rng(1))
    binned = bootstrap._binned_means(terms, 1500, np.random.default_rng(2))
    assert binned.std() == pytest.approx(exact.std(), rel=0.08)
    assert binned.mean() == pytest.approx(float(terms.mean(dtype="float64")), abs=exact.std() / 5)


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
