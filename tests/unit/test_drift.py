"""Drift against a reference profile: what the generator drifts is flagged, stable days are not."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrain.domain.demo_data import COVARIATE_DRIFTED, DayChanges, generate_day, generate_days
from retrain.domain.drift import detect_drift, numeric_drift, psi
from retrain.domain.profile import ReferenceProfile, build_profile, numeric_profile
from retrain.domain.settings import load_settings

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "params.yaml")
FEATURES = SETTINGS.dataset.features
START = dt.date(2026, 1, 1)
ROWS = SETTINGS.demo.rows_per_day  # the default batch size


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    reference = pd.concat([f for _, f in generate_days(START, 6, ROWS, 7)], ignore_index=True)
    return build_profile(
        reference,
        FEATURES.numeric,
        FEATURES.categorical,
        holdout_predictions=None,
        metrics={},
        quantiles=SETTINGS.drift.quantiles,
    )


STABLE = DayChanges()


def _day(index: int, changes: DayChanges = STABLE) -> pd.DataFrame:
    return generate_day(START + dt.timedelta(days=index), ROWS, 7, changes)


def test_profile_round_trips_through_json(profile: ReferenceProfile):
    assert ReferenceProfile.from_dict(profile.to_dict()) == profile


def test_every_feature_the_generator_drifts_is_flagged_at_the_default_batch_size(profile: ReferenceProfile):
    report = detect_drift(profile, _day(8, DayChanges(covariate_drift=1.0)), SETTINGS.drift)
    assert set(COVARIATE_DRIFTED) <= set(report.drifted_features)
    assert report.flagged and report.drift_share >= SETTINGS.drift.drift_share


def test_thirty_stable_days_raise_no_flag(profile: ReferenceProfile):
    flagged = [index for index in range(6, 36) if detect_drift(profile, _day(index), SETTINGS.drift).flagged]
    assert flagged == []


def test_features_are_sorted_by_severity_and_say_which_statistic_decided(profile: ReferenceProfile):
    report = detect_drift(profile, _day(8, DayChanges(covariate_drift=1.0)), SETTINGS.drift)
    severities = [f.severity for f in report.features if f.drifted]
    assert severities == sorted(severities, reverse=True)
    top = report.features[0]
    assert top.drifted and top.statistic in {"psi", "ks", "jensen_shannon", "missing_rate"}
    assert top.value >= top.threshold
    as_json = report.to_dict()
    assert set(as_json["features"][top.feature]) >= {"statistic", "value", "threshold", "drifted"}


def test_unseen_categories_and_all_missing_columns_do_not_crash(profile: ReferenceProfile):
    batch = _day(7)
    batch["region"] = "atlantis"  # a category never seen
    batch["annual_income"] = np.nan  # all missing
    batch = batch.drop(columns=["channel"])  # absent altogether
    report = detect_drift(profile, batch, SETTINGS.drift)
    features = {f.feature: f for f in report.features}
    assert features["region"].drifted and features["region"].details["unseen_share"] == 1.0
    assert features["annual_income"].drifted and features["annual_income"].statistic == "missing_rate"
    assert features["channel"].drifted and features["channel"].missing_current == 1.0


def test_huge_batches_do_not_flag_trivial_shifts():
    rng = np.random.default_rng(0)
    reference = numeric_profile("x", rng.normal(0, 1, 1_000_000), SETTINGS.drift.quantiles)
    shifted = rng.normal(0.02, 1, 1_000_000)  # significant at this size, but trivial
    verdict = numeric_drift(reference, shifted, SETTINGS.drift)
    assert verdict.details["ks_p"] is not None and verdict.details["ks_p"] < 0.05
    assert not verdict.drifted


def test_small_windows_are_reported_but_never_flagged(profile: ReferenceProfile):
    small = _day(8, DayChanges(covariate_drift=1.0)).head(SETTINGS.drift.min_rows - 1)
    report = detect_drift(profile, small, SETTINGS.drift)
    assert report.drifted_features and not report.flagged and "reported, not acted on" in report.reasons[-1]


def test_performance_drift_needs_a_sure_drop():
    rng = np.random.default_rng(1)
    y = (rng.random(5000) < 0.3).astype(int)
    good = np.clip(0.3 + 0.25 * (y - 0.3) + rng.normal(0, 0.15, y.size), 0.01, 0.99)
    blurred = np.clip(0.45 + 0.05 * (y - 0.3) + rng.normal(0, 0.15, y.size), 0.01, 0.99)  # higher, flatter
    reference = numeric_profile("<prediction>", good, 100)
    profile = ReferenceProfile((), (), reference, {"roc_auc": 0.85}, y.size)
    frame = pd.DataFrame(index=range(y.size))
    fine = detect_drift(profile, frame, SETTINGS.drift, predictions=good, labels=y)
    worse = detect_drift(profile, frame, SETTINGS.drift, predictions=blurred, labels=y)
    assert fine.performance is not None and not fine.performance.dropped
    assert worse.performance is not None and worse.performance.dropped and worse.flagged
    assert worse.prediction is not None and worse.prediction.drifted  # the scores moved too


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=3, max_size=12))
def test_psi_is_zero_for_equal_shares_and_positive_otherwise(counts):
    reference = np.asarray(counts, dtype="float64") + 1
    assert psi(reference, reference * 3) == pytest.approx(0.0, abs=1e-12)
    assert psi(reference, reference[::-1]) >= 0.0


def test_a_profile_of_parts_is_the_profile_of_the_rows_joined(profile: ReferenceProfile):
    parts = [frame for _, frame in generate_days(START, 6, ROWS, 7)]
    from_parts = build_profile(
        [pd.concat(parts[:4], ignore_index=True), parts[4], parts[5]],
        FEATURES.numeric,
        FEATURES.categorical,
        holdout_predictions=None,
        metrics={},
        quantiles=SETTINGS.drift.quantiles,
    )
    assert from_parts == profile


@given(values=st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), min_size=1, max_size=300))
@settings(max_examples=60, deadline=None)
def test_numeric_profile_edges_are_quantiles_and_counts_fall_in_right_closed_cells(values: list[float]):
    numbers = np.asarray(values, dtype="float64")
    found = numeric_profile("x", numbers, 10)
    present = numbers[~np.isnan(numbers)]
    assert found.missing == int(np.isnan(numbers).sum())
    if present.size == 0:
        return
    edges = np.unique(np.quantile(present, np.linspace(0, 1, 11)))
    assert found.edges == tuple(float(edge) for edge in edges)
    by_search = np.bincount(np.searchsorted(edges, present, side="left"), minlength=edges.size + 1)
    assert found.counts == tuple(int(count) for count in by_search)
