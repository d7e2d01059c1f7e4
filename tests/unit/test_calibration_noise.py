"""The calibration guardrail allows for the chance ECE of a small holdout, and only for that."""

from __future__ import annotations

import numpy as np
import pytest

from retrain.domain.gate import GateInputs, calibration_check
from retrain.domain.metrics import calibration_allowance, calibration_noise, expected_calibration_error

LIMIT = 0.05
CONFIDENCE = 0.95


def _calibrated(rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    p = rng.beta(2, 2, rows)
    return (rng.random(rows) < p).astype(int), p


def _check(y: np.ndarray, p: np.ndarray):
    return calibration_check(LIMIT, CONFIDENCE)(GateInputs({}, None, y, p, None))


@pytest.mark.parametrize("rows", [300, 2_000, 50_000])
def test_the_chance_ece_matches_what_calibrated_models_show(rows: int) -> None:
    rng = np.random.default_rng(rows)
    measured = [expected_calibration_error(*_calibrated(rows, rng)) for _ in range(300)]
    noise = calibration_noise(rng.beta(2, 2, rows))
    assert np.mean(measured) == pytest.approx(noise.mean, rel=0.08)
    assert np.std(measured) == pytest.approx(noise.sd, rel=0.35)


def test_the_allowance_is_the_limit_on_large_holdouts_and_wider_on_small_ones() -> None:
    rng = np.random.default_rng(0)
    small = calibration_allowance(LIMIT, calibration_noise(rng.beta(2, 2, 300)), CONFIDENCE)
    large = calibration_allowance(LIMIT, calibration_noise(rng.beta(2, 2, 1_000_000)), CONFIDENCE)
    assert small > 0.09
    assert LIMIT < large < LIMIT + 0.001


def test_good_models_on_300_row_holdouts_pass_almost_always() -> None:
    rng = np.random.default_rng(1)
    refused = sum(not _check(*_calibrated(300, rng)).passed for _ in range(200))
    assert refused <= 4  # ≈1 - confidence at worst; a fixed 0.05 limit refuses most of them


def test_a_badly_calibrated_model_is_refused_however_small_the_holdout() -> None:
    rng = np.random.default_rng(2)
    for rows in (300, 20_000):
        p = rng.beta(2, 2, rows)
        y = (rng.random(rows) < np.clip(p + 0.25, 0, 1)).astype(int)  # true rates 0.25 above the predictions
        check = _check(y, p)
        assert not check.passed, check.reason


def test_a_model_just_over_the_limit_is_refused_on_a_large_holdout() -> None:
    rng = np.random.default_rng(3)
    p = rng.beta(2, 2, 200_000) * 0.8 + 0.1
    y = (rng.random(len(p)) < p + 0.07).astype(int)
    check = _check(y, p)
    assert not check.passed and check.value == pytest.approx(0.07, abs=0.005)
    assert check.threshold is not None and LIMIT < check.threshold < LIMIT + 0.002  # little chance on 200,000 rows


def test_the_detail_says_how_much_was_allowed_for_chance() -> None:
    rng = np.random.default_rng(4)
    check = _check(*_calibrated(300, rng))
    assert check.reason.startswith("expected calibration error")
    assert "limit 0.0500" in check.reason and "by chance on 300 rows" in check.reason
    assert check.threshold is not None and check.threshold > LIMIT


def test_multiclass_chance_ece_uses_the_top_class_probability() -> None:
    rng = np.random.default_rng(5)
    raw = rng.dirichlet([1, 1, 1], 300)
    noise = calibration_noise(raw)
    top = raw.max(axis=1)
    assert noise.rows == 300
    assert noise.mean == pytest.approx(calibration_noise(top).mean)
