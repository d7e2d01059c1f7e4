"""Labels that arrive after the scores: joined to the stored predictions by id, once.

In production the outcome of a scored row (did the loan default, what grade did the wine get) is
known days later. A labels file (id and label) is checked, then joined to every stored predictions
file holding those ids. A label fills a row that had none; the same label again is already known
(so a file sent twice changes nothing); a different label for a row that has one is kept as it was
and reported, as are ids no stored score carries, ids the file gives twice with different labels,
rows without a label and labels the task does not know. Nothing is dropped without being counted.

Ids are matched as text (:func:`retrain.domain.features.category_text`), so an id read as 17 from a
CSV file matches the 17.0 a Parquet file with a gap holds; labels are compared by the task's codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from retrain.domain.errors import InputError
from retrain.domain.features import category_text
from retrain.domain.sensitive import WITHHELD
from retrain.domain.task import Task

#: At most this many ids are listed per kind of problem in a report (the counts are always whole).
SHOWN_IDS = 10


class FeedbackError(InputError):
    """A labels file that cannot be joined (no id column in the project, a column missing)."""


@dataclass(frozen=True)
class Feedback:
    """A labels file, checked: one label per id (as text), with what could not be used counted."""

    labels: pd.Series  # index: id as text; values: the label as given
    codes: pd.Series  # index: id as text; values: the task's code of the label
    rows: int
    without_label: int
    unknown_labels: dict[str, int]
    conflicting_ids: tuple[str, ...]  # given twice with different labels: none of them is used
    repeated_rows: int  # an id given again with the same label: used once


def check_feedback(frame: pd.DataFrame, id_column: str, target: str, task: Task) -> Feedback:
    """One label per id from a labels file; the rows that cannot be used are counted, never kept."""
    missing = [name for name in (id_column, target) if name not in frame.columns]
    if missing:
        raise FeedbackError(
            f"the labels file has no column {', '.join(repr(name) for name in missing)}: it needs the id "
            f"column ({id_column!r}) and the label, named as the target ({target!r})"
        )
    ids = category_text(frame[id_column])
    if ids.isna().any():
        raise FeedbackError(f"{int(ids.isna().sum())} row(s) of the labels file have no {id_column!r}")
    values = frame[target]
    codes = pd.Series(task.label_codes(values, "label", unknown="missing"), index=frame.index)
    unknown = task.unknown_labels(values)
    usable = codes.notna()
    table = pd.DataFrame({"id": ids[usable], "label": values[usable], "code": codes[usable]})
    distinct = table.drop_duplicates(subset=["id", "code"])
    conflicting = distinct["id"][distinct["id"].duplicated(keep=False)].unique()
    kept = distinct[~distinct["id"].isin(conflicting)]
    return Feedback(
        labels=pd.Series(kept["label"].to_numpy(), index=pd.Index(kept["id"].to_numpy(), dtype="object")),
        codes=pd.Series(kept["code"].to_numpy(dtype="float64"), index=pd.Index(kept["id"].to_numpy(), dtype="object")),
        rows=len(frame),
        without_label=int(values.isna().sum()),
        unknown_labels=unknown,
        conflicting_ids=tuple(sorted(str(value) for value in conflicting)),
        repeated_rows=int(len(table) - len(distinct)),
    )


@dataclass(frozen=True)
class JoinedScores:
    """One predictions file after the join: the new frame (None when no row changed) and counts."""

    scores: pd.DataFrame | None
    joined: int
    already_known: int
    disagreeing_ids: tuple[str, ...]
    matched_ids: frozenset[str]


def join_feedback(
    scores: pd.DataFrame, feedback: Feedback, id_column: str, label_column: str, task: Task
) -> JoinedScores:
    """Fill the label of the scored rows whose id the feedback gives, where the row has none yet."""
    ids = category_text(scores[id_column])
    hit = ids.isin(feedback.codes.index).to_numpy()
    if not hit.any():
        return JoinedScores(None, 0, 0, (), frozenset())
    incoming = ids[hit].map(feedback.codes).to_numpy(dtype="float64")
    if label_column in scores.columns:
        stored = task.label_codes(scores[label_column], "stored label", unknown="missing")[hit]
    else:
        stored = np.full(int(hit.sum()), np.nan)
    fill = np.isnan(stored)
    same = ~fill & (stored == incoming)
    differ = ~fill & ~same
    matched = frozenset(ids[hit].tolist())
    disagreeing = tuple(sorted(set(ids[hit][differ].tolist())))
    if not fill.any():
        return JoinedScores(None, 0, int(same.sum()), disagreeing, matched)
    rows = np.flatnonzero(hit)[fill]
    new_labels = ids.iloc[rows].map(feedback.labels).to_numpy()
    updated = scores.copy()
    if label_column not in updated.columns:
        updated[label_column] = pd.Series([None] * len(updated), index=updated.index, dtype="object")
    else:
        updated[label_column], new_labels = _one_type(updated[label_column], new_labels)
    position = updated.columns.get_loc(label_column)
    assert isinstance(position, int)  # one column of that name
    updated.iloc[rows, position] = new_labels  # by position: whatever the index holds
    return JoinedScores(updated, len(rows), int(same.sum()), disagreeing, matched)


def _one_type(column: pd.Series, values: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    """The stored label column and the new labels in one type a Parquet column can hold: numbers when
    the column is numeric and every new label reads as one, else the whole column and the labels as
    text (as :func:`category_text` writes them; labels are compared by their codes, which text keeps)."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        numbers = pd.to_numeric(pd.Series(values), errors="coerce")
        if numbers.notna().all():
            return column.astype("float64"), numbers.to_numpy(dtype="float64")
    return category_text(column), category_text(pd.Series(values)).to_numpy()


@dataclass(frozen=True)
class FeedbackReport:
    """What one labels file did: every row of it accounted for."""

    labels_file: str
    rows: int
    joined: int
    already_known: int
    files_changed: tuple[str, ...]
    unknown_ids: tuple[str, ...]
    disagreeing_ids: tuple[str, ...]
    conflicting_ids: tuple[str, ...]
    repeated_rows: int
    without_label: int
    unknown_labels: dict[str, int] = field(default_factory=dict)
    ids_withheld: bool = False  # the id column is sensitive: problems give counts, never ids

    def shared(self, ids: Sequence[str]) -> list[str]:
        """Ids as a result may list them: none when the id column is sensitive (the counts say how many)."""
        return [] if self.ids_withheld else list(ids)

    def _shown(self, ids: Sequence[str]) -> str:
        return WITHHELD if self.ids_withheld else _shown(ids)

    @property
    def problems(self) -> list[str]:
        """One line per kind of row that was not joined, with the ids (the first few)."""
        lines = []
        if self.unknown_ids:
            lines.append(f"{len(self.unknown_ids)} id(s) have no stored score: {self._shown(self.unknown_ids)}")
        if self.disagreeing_ids:
            lines.append(
                f"{len(self.disagreeing_ids)} id(s) already have a different label (kept as it was): "
                f"{self._shown(self.disagreeing_ids)}"
            )
        if self.conflicting_ids:
            lines.append(
                f"{len(self.conflicting_ids)} id(s) are given twice with different labels (neither used): "
                f"{self._shown(self.conflicting_ids)}"
            )
        if self.without_label:
            lines.append(f"{self.without_label} row(s) have no label")
        if self.unknown_labels:
            shown = ", ".join(f"{value} ({count})" for value, count in sorted(self.unknown_labels.items()))
            lines.append(f"label values the task does not know (not used): {shown}")
        if self.repeated_rows:
            lines.append(f"{self.repeated_rows} row(s) repeat an id with the same label (used once)")
        return lines

    @property
    def headline(self) -> str:
        return (
            f"{self.labels_file}: {self.rows} row(s); {self.joined} label(s) joined to stored scores "
            f"in {len(self.files_changed)} file(s), {self.already_known} already known"
        )

    def summary(self) -> str:
        return "\n".join([self.headline, *self.problems])


def _shown(ids: Sequence[str]) -> str:
    listed = ", ".join(ids[:SHOWN_IDS])
    return listed + (f" … ({len(ids) - SHOWN_IDS} more)" if len(ids) > SHOWN_IDS else "")
