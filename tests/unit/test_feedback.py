"""Late labels joined to stored scores by id: once, and every row of the labels file accounted for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.domain.feedback import FeedbackError, check_feedback, join_feedback
from retrain.domain.task import Task

BINARY = Task("binary", ("no", "yes"), "yes")
GRADES = Task("multiclass", (3, 4, 5))
AMOUNT = Task("regression")


def _scores(ids: list[object], labels: list[object] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"id": ids, "score": np.linspace(0.1, 0.9, len(ids)), "model_version": "1"})
    if labels is not None:
        frame["outcome"] = pd.Series(labels, dtype="object")
    return frame


def test_labels_fill_unlabelled_rows_once_and_a_second_send_changes_nothing():
    labels = pd.DataFrame({"id": [1, 2, 3], "outcome": ["yes", "no", "yes"]})
    feedback = check_feedback(labels, "id", "outcome", BINARY)
    scores = _scores([1, 2, 3, 4])
    joined = join_feedback(scores, feedback, "id", "outcome", BINARY)
    assert joined.scores is not None and joined.joined == 3 and joined.already_known == 0
    assert joined.scores["outcome"].tolist()[:3] == ["yes", "no", "yes"] and pd.isna(joined.scores["outcome"].iloc[3])
    assert joined.scores[["id", "score", "model_version"]].equals(scores[["id", "score", "model_version"]])

    again = join_feedback(joined.scores, feedback, "id", "outcome", BINARY)
    assert again.scores is None and again.joined == 0 and again.already_known == 3


def test_a_different_label_for_a_labelled_row_is_kept_and_reported():
    feedback = check_feedback(pd.DataFrame({"id": [1, 2], "outcome": ["no", "no"]}), "id", "outcome", BINARY)
    joined = join_feedback(_scores([1, 2, 3], ["yes", None, None]), feedback, "id", "outcome", BINARY)
    assert joined.scores is not None
    assert joined.scores["outcome"].tolist()[:2] == ["yes", "no"]  # row 1 kept its label
    assert joined.disagreeing_ids == ("1",) and joined.joined == 1


def test_ids_match_as_text_whatever_type_each_file_read_them_as():
    """17 from a CSV file is the 17.0 of a Parquet column with a gap."""
    feedback = check_feedback(pd.DataFrame({"id": [17, 18], "outcome": ["yes", "no"]}), "id", "outcome", BINARY)
    joined = join_feedback(_scores([17.0, np.nan, 18.0]), feedback, "id", "outcome", BINARY)
    assert joined.joined == 2 and joined.matched_ids == frozenset({"17", "18"})


def test_every_unusable_row_of_the_labels_file_is_counted():
    labels = pd.DataFrame(
        {
            "id": ["a", "b", "b", "c", "c", "d", "e"],
            "outcome": ["yes", "yes", "no", "no", "no", None, "maybe"],
        }
    )
    feedback = check_feedback(labels, "id", "outcome", BINARY)
    assert feedback.conflicting_ids == ("b",)  # two different labels: neither is used
    assert feedback.repeated_rows == 1  # c twice with the same label: used once
    assert feedback.without_label == 1 and feedback.unknown_labels == {"maybe": 1}
    assert sorted(feedback.codes.index) == ["a", "c"]


def test_multiclass_and_regression_labels_join_by_their_codes():
    grades = check_feedback(pd.DataFrame({"id": [1, 2], "quality": [5, "4"]}), "id", "quality", GRADES)
    joined = join_feedback(
        pd.DataFrame({"id": [1, 2], "prediction": ["5", "3"], "quality": pd.Series([5.0, None])}),
        grades,
        "id",
        "quality",
        GRADES,
    )
    assert joined.already_known == 1 and joined.joined == 1  # 5 and 5.0 are the same grade
    amounts = check_feedback(pd.DataFrame({"id": [1], "amount": [12.5]}), "id", "amount", AMOUNT)
    done = join_feedback(pd.DataFrame({"id": [1], "prediction": [11.0]}), amounts, "id", "amount", AMOUNT)
    assert done.scores is not None and done.scores["amount"].tolist() == [12.5]


def test_a_labels_file_without_the_id_or_the_label_is_refused_with_both_names():
    with pytest.raises(FeedbackError, match=r"'id'.*'outcome'"):
        check_feedback(pd.DataFrame({"customer": [1], "result": ["yes"]}), "id", "outcome", BINARY)
    with pytest.raises(FeedbackError, match="have no 'id'"):
        check_feedback(pd.DataFrame({"id": [1, None], "outcome": ["yes", "no"]}), "id", "outcome", BINARY)


def test_rows_are_labelled_by_position_whatever_the_frame_index_holds():
    feedback = check_feedback(pd.DataFrame({"id": [2], "outcome": ["yes"]}), "id", "outcome", BINARY)
    scores = _scores([1, 2, 3]).set_axis([7, 7, 8])  # a repeated index label
    joined = join_feedback(scores, feedback, "id", "outcome", BINARY)
    assert joined.scores is not None
    assert joined.scores["outcome"].tolist()[0] is None and joined.scores["outcome"].tolist()[1] == "yes"
    assert joined.scores["outcome"].isna().tolist() == [True, False, True]


def test_labels_read_as_text_join_a_numeric_label_column_and_the_file_stays_writable(tmp_path):
    """A labels CSV with one unknown cell ("?") reads every label as text: they still join a float
    column as numbers, and the other way round a numeric label joins a text column as text."""
    labels = pd.DataFrame({"id": [1, 2, 3], "outcome": ["1", "0", "?"]})
    numeric = Task("binary", (0, 1), 1)
    feedback = check_feedback(labels, "id", "outcome", numeric)
    assert feedback.unknown_labels == {"?": 1}
    stored = _scores([1, 2, 3], None).assign(outcome=[1.0, np.nan, np.nan])
    joined = join_feedback(stored, feedback, "id", "outcome", numeric)
    assert joined.scores is not None and joined.scores["outcome"].tolist()[:2] == [1.0, 0.0]
    joined.scores.to_parquet(tmp_path / "numeric.parquet")
    text_column = _scores([1, 2], ["yes", None])
    flags = check_feedback(pd.DataFrame({"id": [2], "outcome": ["no"]}), "id", "outcome", BINARY)
    written = join_feedback(text_column.astype({"outcome": "str"}), flags, "id", "outcome", BINARY)
    assert written.scores is not None and written.scores["outcome"].tolist() == ["yes", "no"]
    written.scores.to_parquet(tmp_path / "text.parquet")
