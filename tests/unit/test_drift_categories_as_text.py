"""A categorical feature's values compare as text the way they are written, whatever dtype a file gave
its column: an integer column with one gap reads as float, and 3 must not become an unseen "3.0"."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retrain.domain.drift import categorical_drift, distribution_pair
from retrain.domain.profile import CategoricalProfile, categorical_profile
from retrain.domain.settings import load_settings
from tests.conftest import REPO_ROOT

DRIFT = load_settings(REPO_ROOT / "params.yaml").drift


def _grades(rows: int, seed: int) -> pd.Series:
    return pd.Series(np.random.default_rng(seed).choice([1, 2, 3], rows), dtype="int64", name="grade")


def test_an_int_reference_and_a_float_batch_with_a_gap_do_not_drift() -> None:
    profile = categorical_profile("grade", _grades(3000, 0))
    batch = _grades(3000, 1).astype("float64")
    batch.iloc[0] = np.nan
    verdict = categorical_drift(profile, batch, DRIFT)
    assert not verdict.drifted, verdict
    assert verdict.details["unseen_share"] == 0.0
    assert "<unseen>" not in distribution_pair(profile, batch, DRIFT).cells


def test_a_profile_stored_from_a_float_column_reads_as_the_integers_it_holds() -> None:
    stored = {"name": "grade", "counts": {"1.0": 10, "2.0": 5, "2": 1, "<other>": 2}, "missing": 3}
    profile = CategoricalProfile.from_dict(stored)
    assert dict(profile.counts) == {"1": 10, "2": 6, "<other>": 2} and profile.rows == 21


def test_a_real_new_category_is_still_unseen() -> None:
    profile = categorical_profile("grade", _grades(3000, 0))
    batch = _grades(3000, 2).astype("float64")
    batch.iloc[:900] = 4.0
    verdict = categorical_drift(profile, batch, DRIFT)
    assert verdict.drifted and verdict.details["unseen_share"] == 0.3
