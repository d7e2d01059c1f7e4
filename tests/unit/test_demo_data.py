import datetime as dt

import numpy as np
import pandas as pd
import pytest

from retrain.domain.demo_data import (
    CATEGORICAL_FEATURES,
    CATEGORIES,
    ID_COLUMN,
    NUMERIC_FEATURES,
    TARGET_COLUMN,
    TIME_COLUMN,
    DayChanges,
    SchemaBreak,
    generate_day,
    generate_days,
)

DAY = dt.date(2026, 3, 1)


def test_same_seed_and_day_give_identical_batches():
    pd.testing.assert_frame_equal(generate_day(DAY, 500, 1), generate_day(DAY, 500, 1))


def test_a_day_does_not_depend_on_how_many_days_are_generated():
    alone = generate_day(DAY + dt.timedelta(days=2), 300, 5)
    in_sequence = list(generate_days(DAY, 4, 300, 5))[2][1]
    pd.testing.assert_frame_equal(alone, in_sequence)


def test_other_seed_gives_other_rows():
    assert not generate_day(DAY, 500, 1).equals(generate_day(DAY, 500, 2))


def test_schema_shape_and_realism():
    frame = generate_day(DAY, 5000, 3)
    assert len(NUMERIC_FEATURES) + len(CATEGORICAL_FEATURES) >= 20
    assert list(frame.columns[:2]) == [ID_COLUMN, TIME_COLUMN]
    assert frame[ID_COLUMN].is_unique
    assert 0.05 < frame[TARGET_COLUMN].mean() < 0.4
    assert frame["annual_income"].isna().mean() > 0  # missing values exist
    for name in CATEGORICAL_FEATURES:
        assert set(frame[name].dropna()) <= set(CATEGORIES[name])


def test_covariate_drift_moves_distributions():
    calm = generate_day(DAY, 5000, 3)
    drifted = generate_day(DAY, 5000, 3, DayChanges(covariate_drift=1.0))
    assert drifted["credit_score"].mean() < calm["credit_score"].mean() - 20
    assert (drifted["channel"] == "online").mean() > (calm["channel"] == "online").mean() + 0.2


def test_concept_drift_changes_outcomes_not_inputs():
    calm = generate_day(DAY, 5000, 3)
    drifted = generate_day(DAY, 5000, 3, DayChanges(concept_drift=1.0))
    pd.testing.assert_series_equal(calm["credit_score"], drifted["credit_score"])
    assert not np.array_equal(calm[TARGET_COLUMN], drifted[TARGET_COLUMN])


@pytest.mark.parametrize("kind", list(SchemaBreak))
def test_each_schema_break_changes_the_batch(kind):
    clean = generate_day(DAY, 200, 3)
    broken = generate_day(DAY, 200, 3, DayChanges(schema_break=kind))
    assert not broken.equals(clean)


def test_drift_strength_is_bounded():
    with pytest.raises(ValueError, match="covariate_drift"):
        DayChanges(covariate_drift=1.5)
