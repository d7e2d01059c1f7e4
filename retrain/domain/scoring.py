"""What a scoring pass says besides the scores: how the champion did on the rows that came with
labels, and which rows carried categories the model never saw.

A batch scored with its labels (a backfill, a delayed-label feed) is a free measurement of the
served model, so it is reported whether or not a challenger is scored in shadow. A category the
model never saw is encoded as missing (:func:`retrain.domain.features.encode_features`) and goes
down the learned default branch: the row gets a score, but one the training data never backed, so
the count per feature is reported instead of staying silent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from retrain.domain.features import FeatureSpec, category_codes
from retrain.domain.task import Task


@dataclass(frozen=True)
class BatchPerformance:
    """The champion's metrics on the labelled rows of a scored batch (None: none to measure, see note)."""

    labelled_rows: int
    metrics: dict[str, float] | None
    note: str
    unknown_labels: dict[str, int] = field(default_factory=dict)  # label value -> rows left out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def batch_performance(
    task: Task, labels: np.ndarray | None, predictions: np.ndarray, unknown_labels: Mapping[str, int] | None = None
) -> BatchPerformance:
    """The champion's task metrics on the rows whose label is known (``labels`` encoded by the task,
    NaN where unknown); rows without one are left out, and so are rows whose label the task cannot
    encode (``unknown_labels``: value -> rows), which the note names rather than failing the pass."""
    strange = dict(unknown_labels or {})
    performance = _performance(task, labels, predictions)
    if not strange:
        return performance
    return BatchPerformance(
        performance.labelled_rows, performance.metrics, f"{performance.note}; {unknown_label_note(strange)}", strange
    )


def unknown_label_note(unknown_labels: Mapping[str, int]) -> str:
    """One line: how many rows carried which label values the task does not know."""
    rows = sum(unknown_labels.values())
    values = sorted(unknown_labels)
    shown = ", ".join(values[:10]) + (" …" if len(values) > 10 else "")
    return f"{rows} rows carry a label outside dataset.labels ({shown}): left out of the metrics"


def _performance(task: Task, labels: np.ndarray | None, predictions: np.ndarray) -> BatchPerformance:
    if labels is None:
        return BatchPerformance(0, None, "the batch has no target column: no metrics")
    y = np.asarray(labels, dtype="float64")
    known = ~np.isnan(y)
    labelled = int(known.sum())
    if labelled == 0:
        return BatchPerformance(0, None, "no row of the batch carries a label: no metrics")
    if not task.evaluable(y[known]):
        only = "one value" if task.kind == "regression" else "one class"
        return BatchPerformance(labelled, None, f"the {labelled} labelled rows hold {only} only: no metrics")
    metrics = task.metrics(y[known], np.asarray(predictions)[known])
    return BatchPerformance(labelled, metrics, f"champion measured on {labelled} labelled rows")


def unseen_categories(frame: pd.DataFrame, spec: FeatureSpec) -> dict[str, int]:
    """Per categorical feature of the model, the rows whose value is present but not among the
    categories it was trained on (compared as text, as the encoding does). A feature absent from
    the batch is left out: the contract reports missing columns."""
    counts: dict[str, int] = {}
    for name, categories in spec.categories:
        if name not in frame.columns:
            continue
        column = frame[name]
        unseen = column.notna().to_numpy() & (category_codes(column, categories) < 0)
        counts[name] = int(unseen.sum())
    return counts


def unseen_warnings(counts: Mapping[str, int], rows: int) -> list[str]:
    """One warning line per feature with unseen categories (features without any stay silent)."""
    return [
        f"warning: {count} of {rows} rows carry a {name} category the model never saw (scored as missing)"
        for name, count in counts.items()
        if count
    ]
