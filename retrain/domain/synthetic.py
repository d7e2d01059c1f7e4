"""Small generated data sets for any task: dated rows whose target depends on a few features.

In the spirit of scikit-learn's ``make_classification`` / ``make_regression``, with what Retrain needs
besides: a time column spread over several days (the split is by day), a categorical feature, an id
column, and labels that are *not* 0..k-1 (multiclass classes are words, the binary target "yes"/"no")
so that every test goes through the label mapping of :mod:`retrain.domain.task`. Seeded: the same
arguments give the same rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import numpy as np
import pandas as pd

from retrain.domain.settings import TaskKind

NUMERIC: Final = ("x0", "x1", "x2", "x3")
CATEGORICAL: Final = ("segment",)
SEGMENTS: Final = ("north", "south", "east")
CLASSES: Final[dict[TaskKind, tuple[str, ...]]] = {
    "binary": ("no", "yes"),
    "multiclass": ("low", "mid", "high"),
    "regression": (),
}
ID_COLUMN: Final = "row_id"
TIME_COLUMN: Final = "day"
TARGET: Final = "target"
# Tertiles of the undrifted signal + noise (variance 1.44 + 0.64 + 0.25 + 1/6 + 0.49 ≈ 3.0, sd 1.73,
# near normal): about a third of the rows in each grade before any drift.
MULTICLASS_EDGES: Final = (-0.75, 0.75)


def synthetic_frame(
    task: TaskKind,
    *,
    days: int = 8,
    rows_per_day: int = 300,
    seed: int = 0,
    start: dt.date = dt.date(2026, 1, 1),
    shift: float = 0.0,
    concept: float = 0.0,
) -> pd.DataFrame:
    """``days x rows_per_day`` rows; ``shift`` moves ``x0`` and ``x1`` up by that many standard
    deviations: covariate drift in two of the five features (above the default drift share of 30%).

    With ``concept`` 0 the target follows the same rule of the features whether they drifted or not
    (``P(y | x)`` is fixed: the multiclass grades are cut at fixed points, the tertiles of the
    undrifted signal), so a champion keeps performing and labels say so. ``concept`` 1 reverses the
    effect of ``x1`` (a change of concept: the champion's predictions get worse, a retraining pays).
    """
    rng = np.random.default_rng(seed)
    n = days * rows_per_day
    x = rng.normal(0.0, 1.0, (n, len(NUMERIC)))
    x[:, 0] += shift
    x[:, 1] += shift
    segment = rng.choice(np.array(SEGMENTS, dtype="object"), n)
    effect = np.select([segment == "north", segment == "south"], [0.5, -0.5], 0.0)
    signal = 1.2 * x[:, 0] + (1.6 * concept - 0.8) * x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + effect
    noise = rng.normal(0.0, 0.7, n)
    if task == "regression":
        target: np.ndarray = 10.0 + 3.0 * signal + 2.0 * noise
    elif task == "binary":
        target = np.where(signal + noise > 0.3, "yes", "no").astype("object")
    else:
        edges = np.array(MULTICLASS_EDGES)
        target = np.array(CLASSES["multiclass"], dtype="object")[np.searchsorted(edges, signal + noise)]
    dates = [start + dt.timedelta(days=int(day)) for day in np.repeat(np.arange(days), rows_per_day)]
    frame = pd.DataFrame({ID_COLUMN: [f"r{seed}-{i}" for i in range(n)], TIME_COLUMN: pd.to_datetime(dates)})
    for position, name in enumerate(NUMERIC):
        frame[name] = x[:, position].round(4)
    frame[CATEGORICAL[0]] = pd.Series(segment, dtype="object")
    frame[TARGET] = target
    return frame


def dataset_params(task: TaskKind, name: str = "synthetic") -> dict[str, object]:
    """The ``dataset`` section of params.yaml for these rows (paths under ``data/``)."""
    labels: dict[str, object] | None = None
    if task == "binary":
        labels = {"classes": list(CLASSES["binary"]), "positive": "yes"}
    elif task == "multiclass":
        labels = {"classes": list(CLASSES["multiclass"])}
    return {
        "name": name,
        "batches": "data/batches",
        "training_set": f"data/training/{name}.parquet",
        "quarantine": "data/quarantine",
        "target": TARGET,
        "task": task,
        "labels": labels,
        "id_column": ID_COLUMN,
        "time_column": TIME_COLUMN,
        "features": {"numeric": list(NUMERIC), "categorical": list(CATEGORICAL)},
    }


def contract_suite(task: TaskKind, name: str = "synthetic") -> dict[str, object]:
    """A great-expectations suite (Retrain's contract JSON) declaring these rows' columns.

    Batch tier for what makes a batch unusable (columns, ids, dates, a missing target); row tier for
    a target value outside the classes, so such rows are quarantined like any other bad row.
    """

    def expectation(kind: str, tier: str, **kwargs: object) -> dict[str, object]:
        return {"type": kind, "kwargs": kwargs, "meta": {"tier": tier}}

    columns = [ID_COLUMN, TIME_COLUMN, *NUMERIC, *CATEGORICAL, TARGET]
    types = {ID_COLUMN: "str", TIME_COLUMN: "datetime64", **dict.fromkeys(NUMERIC, "float64"), CATEGORICAL[0]: "str"}
    types[TARGET] = "float64" if task == "regression" else "str"
    expectations = [
        expectation("expect_table_columns_to_match_set", "batch", column_set=columns, exact_match=True),
        expectation("expect_table_row_count_to_be_between", "batch", min_value=1, max_value=10_000_000),
        *(expectation("expect_column_values_to_be_of_type", "batch", column=c, type_=t) for c, t in types.items()),
        *(expectation("expect_column_values_to_not_be_null", "batch", column=c) for c in (ID_COLUMN, TIME_COLUMN)),
        expectation("expect_column_values_to_not_be_null", "row", column=TARGET),
        expectation("expect_column_values_to_be_unique", "batch", column=ID_COLUMN),
        expectation("expect_column_values_to_be_in_set", "row", column=CATEGORICAL[0], value_set=list(SEGMENTS)),
    ]
    if task != "regression":
        expectations.append(
            expectation("expect_column_values_to_be_in_set", "row", column=TARGET, value_set=list(CLASSES[task]))
        )
    return {
        "name": name,
        "meta": {"contract_version": 1, "dataset": name, "description": f"Generated {task} rows (tests)."},
        "expectations": expectations,
    }
