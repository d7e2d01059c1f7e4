"""What a scoring pass reports besides scores: the champion's metrics on labelled rows, unseen categories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.domain.features import build_feature_spec, encode_features
from retrain.domain.metrics import classification_metrics
from retrain.domain.scoring import batch_performance, unseen_categories, unseen_warnings
from retrain.domain.task import BINARY


def test_metrics_on_the_labelled_rows_only():
    labels = np.array([0, 1, np.nan, 1, 0, np.nan])
    scores = np.array([0.2, 0.8, 0.9, 0.6, 0.4, 0.1])
    performance = batch_performance(BINARY, labels, scores)
    known = ~np.isnan(labels)
    assert performance.labelled_rows == 4
    assert performance.metrics == pytest.approx(classification_metrics(labels[known].astype(int), scores[known]))


@pytest.mark.parametrize(
    ("labels", "rows", "why"),
    [
        (None, 0, "no target column"),
        (np.array([np.nan, np.nan]), 0, "no row"),
        (np.array([1.0, np.nan, 1.0]), 2, "one class only"),
    ],
)
def test_no_metrics_says_why(labels: np.ndarray | None, rows: int, why: str):
    performance = batch_performance(BINARY, labels, np.array([0.3, 0.6, 0.9])[: 0 if labels is None else labels.size])
    assert performance.metrics is None and performance.labelled_rows == rows and why in performance.note


def test_rows_with_an_unknown_label_are_left_out_and_named_not_a_failure():
    from retrain.domain.task import Task

    grades = Task("multiclass", (3, 4, 5))
    batch = pd.Series([3, 4, 9, 5, 9, 3])
    probabilities = np.full((6, 3), 1 / 3)
    performance = batch_performance(
        grades, grades.label_codes(batch, unknown="missing"), probabilities, grades.unknown_labels(batch)
    )
    assert performance.labelled_rows == 4 and performance.metrics is not None
    assert performance.unknown_labels == {"9": 2}
    assert "2 rows carry a label outside dataset.labels (9): left out of the metrics" in performance.note


def test_unseen_categories_are_counted_as_the_encoding_treats_them():
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0], "colour": ["red", "blue", None], "size": [1, 2, 1]})
    spec = build_feature_spec(train, ["x"], ["colour", "size"])
    batch = pd.DataFrame({"x": [1.0] * 5, "colour": ["red", "green", None, "green", "mauve"], "size": [1, 2, 3, 1, 2]})
    counts = unseen_categories(batch, spec)
    assert counts == {"colour": 3, "size": 1}  # a missing value is not an unseen category
    encoded = encode_features(batch, spec)  # the same rows the encoding turns into missing
    for name, count in counts.items():
        assert int((encoded[name].isna() & batch[name].notna()).sum()) == count
    assert unseen_categories(batch.drop(columns="size"), spec) == {"colour": 3}


def test_a_warning_per_feature_with_unseen_categories():
    lines = unseen_warnings({"colour": 3, "size": 0, "region": 12}, 500)
    assert lines == [
        "warning: 3 of 500 rows carry a colour category the model never saw (scored as missing)",
        "warning: 12 of 500 rows carry a region category the model never saw (scored as missing)",
    ]
