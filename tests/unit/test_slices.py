"""Slices: a challenger better overall but worse for one group is blocked; small slices do not gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.domain.gate import GateInputs, decide, default_checks
from retrain.domain.metrics import classification_metrics
from retrain.domain.settings import SliceSettings
from retrain.domain.slices import holm_reject, slice_masks, slice_regressions
from tests.unit.gate_settings import FAST, gate_settings

GATE = gate_settings(
    floor=0.5,
    slices=SliceSettings(categorical=("region",), numeric_bins={"score": (0, 50, 100)}, min_rows=300, alpha=0.05),
)


def _better_overall_worse_in_south(n: int = 12_000, seed: int = 0):
    """Challenger sharper everywhere except region 'south', where it is much worse."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east", "west", "tiny"], size=n, p=[0.3, 0.25, 0.25, 0.18, 0.02])
    y = (rng.random(n) < 0.25).astype(int)
    noise = rng.normal(0, 1, n)
    champion = 1 / (1 + np.exp(-(1.0 * y + noise)))
    lift = np.where(region == "south", -0.7, 0.6)
    challenger = 1 / (1 + np.exp(-((1.0 + lift) * y + noise)))
    frame = pd.DataFrame({"region": region, "score": rng.uniform(0, 100, n)})
    return frame, y, champion, challenger


def test_better_overall_but_worse_on_one_slice_is_blocked_by_the_slice_check():
    frame, y, champion, challenger = _better_overall_worse_in_south()
    masks = slice_masks(frame, GATE.slices.categorical, GATE.slices.numeric_bins)
    inputs = GateInputs(
        classification_metrics(y, challenger), classification_metrics(y, champion), y, challenger, champion, FAST, masks
    )
    decision = decide(default_checks(GATE), inputs, "roc_auc")
    failed = {c.name: c for c in decision.checks if not c.passed}
    assert list(failed) == ["slices"]  # better overall: non-inferiority passes
    assert "region=south" in failed["slices"].reason and "region=north" not in failed["slices"].reason


def test_small_slices_are_reported_but_not_judged():
    frame, y, champion, challenger = _better_overall_worse_in_south()
    masks = slice_masks(frame, ("region",), {})
    results = {
        r.name: r
        for r in slice_regressions(
            "roc_auc",
            y,
            champion,
            challenger,
            masks,
            max_drop=0.01,
            min_rows=300,
            alpha=0.05,
            resamples=300,
            confidence=0.95,
            seed=0,
        )
    }
    assert not results["region=tiny"].judged and results["region=tiny"].rows < 300
    south, north = results["region=south"], results["region=north"]
    assert south.regressed and south.gain is not None and south.gain < -0.01
    assert not north.regressed and north.gain is not None and north.gain > 0


def test_masks_cover_categories_missing_values_and_numeric_bins():
    frame = pd.DataFrame({"region": ["a", None, "b", "a"], "score": [10.0, 60.0, 99.0, np.nan]})
    masks = slice_masks(frame, ("region",), {"score": (0, 50, 100)})
    assert masks["region=a"].tolist() == [True, False, False, True]
    assert masks["region=<missing>"].tolist() == [False, True, False, False]
    assert masks["score∈[0, 50)"].tolist() == [True, False, False, False]
    assert masks["score∈[50, 100)"].tolist() == [False, True, True, False]


@pytest.mark.parametrize(
    ("p_values", "expected"),
    [
        ([0.01, 0.04, 0.03], [True, False, False]),  # 0.01 <= 0.05/3, then 0.03 > 0.05/2 stops
        ([0.001, 0.01, 0.04], [True, True, True]),
        ([0.2, 0.3], [False, False]),
    ],
)
def test_holm_step_down(p_values, expected):
    assert holm_reject(p_values, 0.05) == expected
