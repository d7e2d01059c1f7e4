"""Counts that add: a batch counted in pieces is judged exactly as the whole batch."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrain.domain.batch_counts import BatchCounts, category_counts, count_batch, numeric_counts
from retrain.domain.demo_data import DayChanges, generate_day, generate_days
from retrain.domain.drift import detect_drift
from retrain.domain.profile import ReferenceProfile, build_profile
from retrain.domain.settings import load_settings

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "params.yaml")
FEATURES = SETTINGS.dataset.features
START = dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    reference = pd.concat([frame for _, frame in generate_days(START, 4, 2_000, 7)], ignore_index=True)
    return build_profile(
        reference,
        FEATURES.numeric,
        FEATURES.categorical,
        holdout_predictions=None,
        metrics={},
        quantiles=SETTINGS.drift.quantiles,
    )


def test_numeric_counts_put_each_value_in_its_right_closed_cell_and_missing_apart():
    edges = np.array([1.0, 2.0, 3.0])
    counted = numeric_counts(np.array([0.5, 1.0, 1.5, 2.0, 3.0, 3.5, 99.0, np.nan, np.nan]), edges)
    assert counted.cells.tolist() == [2, 2, 1, 2]  # (-inf,1] (1,2] (2,3] (3,inf)
    assert (counted.missing, counted.rows) == (2, 9)


def test_category_counts_read_whole_floats_as_the_integers_they_are_and_count_missing():
    counted = category_counts(pd.Series([3.0, 3, "3", None, "a", np.nan, "a"], dtype="object"))
    assert dict(counted.counts) == {"3": 3, "a": 2}
    assert (counted.missing, counted.rows, counted.present) == (2, 7, 5)


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=1_999), max_size=4, unique=True))
def test_a_batch_counted_in_pieces_is_judged_as_the_whole_batch(profile: ReferenceProfile, cuts: list[int]):
    batch = generate_day(START + dt.timedelta(days=9), 2_000, 8, DayChanges(covariate_drift=1.0))
    batch.loc[batch.index[:50], FEATURES.numeric[0]] = np.nan
    bounds = [0, *sorted(cuts), len(batch)]
    pieces = [count_batch(profile, batch.iloc[start:stop]) for start, stop in itertools.pairwise(bounds)]
    summed: BatchCounts = pieces[0]
    for piece in pieces[1:]:
        summed = summed + piece
    whole = detect_drift(profile, batch, SETTINGS.drift)
    in_pieces = detect_drift(profile, summed, SETTINGS.drift)
    assert in_pieces == whole
    assert whole.drifted_features  # the drifted day is seen drifting, so the comparison is not of two blanks


def test_a_feature_the_batch_lacks_counts_as_all_missing(profile: ReferenceProfile):
    batch = generate_day(START + dt.timedelta(days=9), 500, 8).drop(columns=[FEATURES.numeric[0]])
    counted = count_batch(profile, batch).columns[FEATURES.numeric[0]]
    assert (counted.missing, counted.rows) == (500, 500)
