import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain.domain.demo_data import generate_days
from retrain.domain.features import FeatureSpec, build_feature_spec, encode_features
from retrain.domain.metrics import classification_metrics
from retrain.domain.settings import load_settings
from retrain.domain.splitting import split_by_time
from retrain.domain.training import TrainingDataError, predict_proba, train_model

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "params.yaml")


@pytest.fixture(scope="module")
def split():
    frame = pd.concat([f for _, f in generate_days(dt.date(2026, 1, 1), 6, 3000, 11)], ignore_index=True)
    return split_by_time(frame, SETTINGS.dataset.time_column, 2, 1)


def test_feature_spec_round_trips_and_is_sorted(split):
    features = SETTINGS.dataset.features
    spec = build_feature_spec(split.train, features.numeric, features.categorical)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert all(list(cats) == sorted(cats) for _, cats in spec.categories)
    assert spec.feature_types.count("c") == len(features.categorical)


def test_encoding_is_numeric_and_unknown_categories_become_nan():
    spec = FeatureSpec(numeric=("a",), categories=(("c", ("x", "y")),))
    frame = pd.DataFrame({"a": [1, 2, 3], "c": ["y", "zebra", None]})
    encoded = encode_features(frame, spec)
    assert list(encoded.columns) == ["a", "c"]
    assert encoded["c"].tolist()[0] == 1.0
    assert np.isnan(encoded["c"].iloc[1]) and np.isnan(encoded["c"].iloc[2])


def test_training_is_deterministic_and_learns_real_but_imperfect_signal(split):
    features = SETTINGS.dataset.features
    spec = build_feature_spec(split.train, features.numeric, features.categorical)
    first = train_model(split.train, split.validation, spec, SETTINGS.dataset.target, SETTINGS.model)
    second = train_model(split.train, split.validation, spec, SETTINGS.dataset.target, SETTINGS.model)
    assert bytes(first.booster.save_raw("ubj")) == bytes(second.booster.save_raw("ubj"))
    auc = classification_metrics(
        split.holdout[SETTINGS.dataset.target].to_numpy(), predict_proba(first.booster, split.holdout, spec)
    )["roc_auc"]
    assert 0.65 < auc < 0.9
    assert first.booster.num_boosted_rounds() == first.best_iteration + 1


def test_single_class_training_data_is_refused(split):
    features = SETTINGS.dataset.features
    spec = build_feature_spec(split.train, features.numeric, features.categorical)
    one_class = split.train.assign(**{SETTINGS.dataset.target: 0})
    with pytest.raises(TrainingDataError, match="single target class"):
        train_model(one_class, split.validation, spec, SETTINGS.dataset.target, SETTINGS.model)


def test_an_integer_category_read_as_float_because_of_a_gap_keeps_its_code():
    """3 in a training file and 3.0 in a batch whose column also holds a missing value are one category."""
    spec = build_feature_spec(pd.DataFrame({"grade": [1, 2, 3]}), [], ["grade"])
    assert spec.categories == (("grade", ("1", "2", "3")),)
    batch = pd.DataFrame({"grade": [1.0, None, 3.0, 7.0]})  # pandas reads this column as float
    codes = encode_features(batch, spec)["grade"].tolist()
    assert codes[0] == 0.0 and codes[2] == 2.0 and all(pd.isna(codes[i]) for i in (1, 3))
    written_before = FeatureSpec(numeric=(), categories=(("grade", ("1.0", "2.0", "3.0")),))  # an older spec
    assert encode_features(pd.DataFrame({"grade": [3, 1]}), written_before)["grade"].tolist() == [2.0, 0.0]


def test_unseen_categories_count_a_float_read_integer_as_seen():
    from retrain.domain.scoring import unseen_categories

    spec = build_feature_spec(pd.DataFrame({"grade": [1, 2, 3]}), [], ["grade"])
    assert unseen_categories(pd.DataFrame({"grade": [1.0, None, 3.0, 7.0]}), spec) == {"grade": 1}
