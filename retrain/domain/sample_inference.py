"""What ``retrain init`` infers from a sample of the user's data: task, labels, features, contract.

Pure (pandas only, no great-expectations): the result is plain data the adapter writes as
``params.yaml`` and ``data_contracts/<name>/v1.json``, files the user reads and edits. Every rule
here is a documented default for a *first* version, chosen so that a normal batch like the sample
passes: nothing is tuned to a particular data set, and nothing here knows a column name.

The rules, in one place (the ``init`` output repeats what they decided):

* **Task** (unless ``--task``): a target with 2 distinct values is ``binary``; a string, boolean or
  categorical target with more is ``multiclass``; a numeric target whose values are all integers
  with at most :data:`MAX_INTEGER_CLASSES` distinct values is ``multiclass`` (a grade, a count of
  stars); any other numeric target is ``regression``.
* **Labels** (classification): every distinct value, sorted. Binary's positive class (the one whose
  probability the model predicts) is the larger value when the labels are numbers or booleans (1,
  True) and the rarer value in the sample when they are strings (``>50K`` beside ``<=50K``): the
  class one usually wants to find. Ties go to the later one in sorted order.
* **Features**: every column but the target, time and id columns. Numbers are numeric features,
  except a column that numbers the rows (a distinct whole number on every row, densely packed), left
  out as a likely row key; strings, booleans and categoricals are categorical features, except a
  string column with a distinct value on almost every row (free text, a key). What is left out is
  reported.
* **Time column** (unless ``--time-column``): the one column holding dates (a datetime column, or
  strings that all parse as dates); none or several is an error asking for ``--time-column``.
* **Contract**: see :func:`infer_contract`.
* **Row thresholds**: see :func:`row_thresholds`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

import numpy as np
import pandas as pd

from retrain.domain.errors import InputError
from retrain.domain.settings import TaskKind

TASKS: tuple[TaskKind, ...] = get_args(TaskKind)

MAX_INTEGER_CLASSES = 10
"""An integer target with more distinct values than this is treated as a quantity (regression)."""

RANGE_MARGIN = 0.5
"""Numeric bounds are the sample's min and max widened by this share of their span on each side:
a sample rarely holds a column's true extremes, and a too-narrow range quarantines good rows."""

MAX_CATEGORY_SET = 30
"""A categorical column gets a value set in the contract only with at most this many values..."""

MIN_ROWS_PER_CATEGORY = 20
"""...and at least this many sample rows per value on average, so that the set is likely complete
(a rare value missing from the sample would otherwise quarantine every later row that carries it)."""

FREE_TEXT_SHARE = 0.9
"""A string column with distinct values on more than this share of rows (and more than
:data:`MAX_CATEGORY_SET` of them) is a key or free text, not a categorical feature."""

ROW_KEY_DENSITY = 10
"""See :func:`_looks_like_row_key`: a column numbering the rows is left out of the features."""

ROW_COUNT_MAX = 10_000_000
"""Upper bound of a batch's row count, raised to 100 x the sample when the sample is larger."""


class InferenceError(InputError):
    """The sample does not say something ``retrain init`` needs: the message names the flag to pass."""


@dataclass(frozen=True)
class Labels:
    """The target's classes (the position is the class index) and, for binary, the positive class."""

    classes: tuple[Any, ...]
    positive: Any = None

    def to_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"classes": list(self.classes)}
        if self.positive is not None:
            params["positive"] = self.positive
        return params


@dataclass(frozen=True)
class ColumnRoles:
    """Which columns are what: the feature split and the columns left out (with the reason)."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    left_out: dict[str, str] = field(default_factory=dict)
    possible_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class RowThresholds:
    """Thresholds counted in rows, set from the sample's size instead of the loan demo's."""

    drift_min_rows: int
    slice_min_rows: int


@dataclass(frozen=True)
class ProjectProposal:
    """Everything ``retrain init`` writes, before it is written: params values and the contract."""

    name: str
    target: str
    task: TaskKind
    task_inferred: bool
    labels: Labels | None
    time_column: str
    id_column: str | None
    roles: ColumnRoles
    thresholds: RowThresholds
    slices: tuple[str, ...]
    primary_metric: str
    floor: float
    contract: dict[str, Any]
    rows: int
    missing_tokens: dict[str, dict[str, int]]
    days: int
    """Distinct days of the time column in the sample (training splits by day)."""


def _python(value: Any) -> Any:
    """A numpy scalar as the plain Python value YAML and JSON write (1, 1.5, True, "x")."""
    return value.item() if isinstance(value, np.generic) else value


def _is_text(series: pd.Series) -> bool:
    return bool(
        pd.api.types.is_object_dtype(series)
        or pd.api.types.is_string_dtype(series)
        or isinstance(series.dtype, pd.CategoricalDtype)
    )


def _integer_valued(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_integer_dtype(values):
        return True
    return bool(pd.api.types.is_float_dtype(values) and np.all(np.mod(values.to_numpy(dtype="float64"), 1) == 0))


def infer_task(target: pd.Series) -> TaskKind:
    """The task a target column suggests (rules in the module docstring)."""
    values = target.dropna()
    distinct = values.nunique()
    if distinct < 2:
        raise InferenceError(
            f"the target '{target.name}' has {distinct} distinct value(s) in the sample: nothing to learn"
        )
    if distinct == 2:
        return "binary"
    if _is_text(values) or pd.api.types.is_bool_dtype(values):
        return "multiclass"
    if _integer_valued(values) and distinct <= MAX_INTEGER_CLASSES:
        return "multiclass"
    return "regression"


def _sorted_values(values: Sequence[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:  # mixed types: sort by their text
        return sorted(values, key=str)


def infer_labels(target: pd.Series, task: TaskKind) -> Labels | None:
    """The classes of a classification target and binary's positive class (rules in the module docstring)."""
    if task == "regression":
        return None
    values = target.dropna()
    if not _is_text(values) and _integer_valued(values):
        values = values.astype("int64")  # 0.0/1.0 read from a CSV with gaps are the classes 0 and 1
    classes = tuple(_sorted_values([_python(v) for v in values.unique()]))
    if task == "multiclass":
        if len(classes) < 3:
            raise InferenceError(f"--task multiclass needs 3 or more classes; '{target.name}' has {len(classes)}")
        return Labels(classes)
    if len(classes) != 2:
        raise InferenceError(
            f"--task binary needs exactly 2 classes; '{target.name}' has {len(classes)}: "
            f"{', '.join(map(str, classes[:5]))}{', ...' if len(classes) > 5 else ''}"
        )
    if all(isinstance(c, int | float | bool) for c in classes):
        return Labels(classes, classes[1])
    counts = values.map(str).value_counts()
    rarest = min(classes[::-1], key=lambda c: counts.get(str(c), 0))  # ties: the later one
    return Labels(classes, rarest)


def _parses_as_dates(series: pd.Series) -> bool:
    values = series.dropna()
    if values.empty or not _is_text(values):
        return False
    sample = values.astype("str").head(1000)
    if not sample.str.contains(r"\d{1,4}[-/.]\d{1,2}", regex=True).all():
        return False  # a number or a word is not a date, whatever to_datetime makes of it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format": a mix of formats still parses
        try:
            pd.to_datetime(sample, errors="raise")
        except (ValueError, TypeError, OverflowError):
            return False
    return True


def date_columns(frame: pd.DataFrame) -> list[str]:
    """Columns holding dates: datetime columns (parquet) and string columns that all parse as dates (CSV)."""
    return [
        str(name)
        for name, column in frame.items()
        if pd.api.types.is_datetime64_any_dtype(column) or _parses_as_dates(column)
    ]


def infer_time_column(frame: pd.DataFrame, target: str) -> str:
    """The one date column of the sample; otherwise an error that asks for ``--time-column``."""
    found = [name for name in date_columns(frame) if name != target]
    if len(found) == 1:
        return found[0]
    if not found:
        raise InferenceError(
            "the sample has no date or datetime column: Retrain splits training data by time (the newest "
            "days are the holdout) and checks each batch's dates, so every row needs one. Add a column "
            "with each row's date (e.g. when it was observed) and pass --time-column COL"
        )
    raise InferenceError(f"the sample has several date columns ({', '.join(found)}): pass --time-column COL")


def _looks_like_row_key(values: pd.Series, rows: int) -> bool:
    """A row number rather than a measurement: whole numbers, a distinct one on every row (no gap),
    packed into a range at most :data:`ROW_KEY_DENSITY` times the row count (1, 2, 3, ... or
    10001, 10005, ...). A quantity such as an amount is spread far wider, or repeats."""
    if rows < 20 or len(values) != rows or values.nunique() != rows or not _integer_valued(values):
        return False
    return float(values.max()) - float(values.min()) < ROW_KEY_DENSITY * rows


def infer_roles(frame: pd.DataFrame, exclude: Sequence[str]) -> ColumnRoles:
    """Numeric and categorical features (rules in the module docstring), and what was left out and why."""
    numeric: list[str] = []
    categorical: list[str] = []
    left_out: dict[str, str] = {}
    possible_ids: list[str] = []
    rows = len(frame)
    for label, column in frame.items():
        name = str(label)
        if name in exclude:
            continue
        values = column.dropna()
        distinct = values.nunique()
        if values.empty:
            left_out[name] = "no value in the sample"
        elif pd.api.types.is_datetime64_any_dtype(column) or _parses_as_dates(column):
            left_out[name] = "a date column (Retrain does not derive features from dates)"
        elif pd.api.types.is_bool_dtype(values) or _is_text(values):
            if distinct > MAX_CATEGORY_SET and distinct > FREE_TEXT_SHARE * len(values):
                left_out[name] = f"text with a distinct value on {distinct} of {len(values)} rows (a key or free text)"
            else:
                categorical.append(name)
        elif pd.api.types.is_numeric_dtype(values):
            if _looks_like_row_key(values, rows):
                possible_ids.append(name)
                left_out[name] = "a distinct whole number on every row, densely numbered: a row key, not a feature"
            else:
                numeric.append(name)
        else:
            left_out[name] = f"unsupported type {column.dtype}"
    return ColumnRoles(tuple(numeric), tuple(categorical), left_out, tuple(possible_ids))


MISSING_TOKENS = ("?", "-", "--", "NA", "N/A", "na", "null", "none", "missing", "unknown", "Unknown")
"""Text values that often stand for "no value" in exported data (the adult data set's ``?``); pandas
reads most spellings of NA/null in a CSV as missing already, a parquet file keeps them as text."""


def suspected_missing_tokens(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per text column, the values that look like a stand-in for a missing value, with their counts.

    Reported, never decided: ``?`` may be a real category. The user declares the ones that mean
    "missing" (``dataset.missing_values``) and edits the contract's value set.
    """
    found: dict[str, dict[str, int]] = {}
    for name in columns:
        column = frame[name]
        if not _is_text(column):
            continue
        text = column.dropna().astype("str").str.strip()
        counts = text[text.isin(MISSING_TOKENS) | (text == "")].value_counts()
        if len(counts):
            found[name] = {str(token): int(count) for token, count in counts.items()}
    return found


def row_thresholds(rows: int) -> RowThresholds:
    """Thresholds in rows, taking the sample as one typical batch of ``rows`` rows.

    * ``drift.min_rows`` (smaller windows are reported, never trigger retraining): half a batch, so
      that one normal batch counts and a half-empty one does not; at least 50 (below that, drift
      tests say little) and at most 1,000 (the default for large batches).
    * ``gate.slices.min_rows`` (smaller slices are reported, not judged): a tenth of a batch, at
      least 30 and at most 500 (the default). The holdout holds a few batches, so a slice of a few
      percent of the data is still judged.
    """
    return RowThresholds(
        drift_min_rows=int(min(1000, max(50, rows // 2))),
        slice_min_rows=int(min(500, max(30, rows // 10))),
    )


def slice_columns(frame: pd.DataFrame, categorical: Sequence[str], limit: int = 3) -> tuple[str, ...]:
    """Categorical features worth judging slice by slice: few values (2 to 10), fewest first."""
    counts = {name: int(frame[name].nunique()) for name in categorical}
    eligible = [name for name in categorical if 2 <= counts[name] <= 10]
    return tuple(sorted(eligible, key=lambda name: (counts[name], categorical.index(name)))[:limit])


def primary_metric(task: TaskKind, labels: Labels | None, target: pd.Series) -> tuple[str, float]:
    """The gate's primary metric and floor for a task, the floor set so a model must beat a trivial one.

    Binary: ROC AUC of at least 0.6 (0.5 is chance). Multiclass: accuracy of at least the next
    hundredth above the majority class's share in the sample (what always predicting it scores), so
    the trivial model misses the floor (0.418 gives 0.42, 0.5 gives 0.51). Regression: R² of at least
    0 (predicting the training mean scores about 0 on new rows, usually a little below).
    """
    if task == "binary":
        return "roc_auc", 0.6
    if task == "regression":
        return "r2", 0.0
    shares = target.dropna().map(str).value_counts(normalize=True)
    return "accuracy", min(1.0, (math.floor(round(float(shares.iloc[0]) * 100, 6)) + 1) / 100)


def _type_expectations(name: str, column: pd.Series) -> dict[str, Any]:
    """The column's type as GX checks it. Numbers accept int64 and float64 alike (a CSV column of
    whole numbers reads as int64, the same column with one gap as float64), and the sample's own
    numeric type (a parquet file's int32 or float32)."""
    if pd.api.types.is_bool_dtype(column):
        return {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": name, "type_": "bool"}}
    if pd.api.types.is_datetime64_any_dtype(column):
        return {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": name, "type_": "datetime64"}}
    if pd.api.types.is_numeric_dtype(column):
        return {
            "type": "expect_column_values_to_be_in_type_list",
            "kwargs": {"column": name, "type_list": list(dict.fromkeys(["int64", "float64", str(column.dtype)]))},
        }
    return {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": name, "type_": "str"}}


def _nice_bounds(low: float, high: float, integer: bool) -> tuple[float, float]:
    """``[low, high]`` widened by :data:`RANGE_MARGIN` of its span, never below 0 when the sample is
    not, and rounded outwards to 3 significant digits of the span (bounds a person reads and edits)."""
    span = high - low
    margin = RANGE_MARGIN * span if span > 0 else max(abs(high), 1.0) * RANGE_MARGIN
    lo, hi = low - margin, high + margin
    if low >= 0:
        lo = max(lo, 0.0)
    step = 10.0 ** (math.floor(math.log10(hi - lo)) - 2) if hi > lo else 1.0
    if integer:
        step = max(step, 1.0)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    digits = max(0, -math.floor(math.log10(step)))
    return round(lo, digits), round(hi, digits)


def _bound(value: float, integer: bool) -> float | int:
    return int(value) if integer else value


def _expectation(kind: str, tier: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": {"tier": tier}}


def infer_contract(
    frame: pd.DataFrame,
    *,
    name: str,
    target: str,
    time_column: str,
    id_column: str | None,
    roles: ColumnRoles,
    labels: Labels | None,
) -> dict[str, Any]:
    """A first great-expectations 1.x suite (the shape of ``data_contracts/loans/v3.json``) from a sample.

    Tiers follow the loans contract: what makes the whole batch unusable is ``batch`` (the column
    set, the row count, column types, the time and id columns missing or duplicated); what is wrong
    in single rows is ``row`` (a missing feature or label, a value out of range or out of its set),
    so those rows are quarantined and the rest of the batch goes on.

    * every column of the sample, exactly; 1 to max(10 M, 100 x sample) rows;
    * each column's type (numbers: int64 or float64, or the sample's own numeric type);
    * not null where the sample has no missing value;
    * numeric columns (features, and a regression target) within the sample's range widened by
      :data:`RANGE_MARGIN` of the span on each side (not below 0 for a non-negative column);
    * low-cardinality categorical features within the sample's values (see
      :data:`MAX_CATEGORY_SET`, :data:`MIN_ROWS_PER_CATEGORY`);
    * a classification target within its classes: a row with an unknown label is quarantined.
    """
    columns = [str(c) for c in frame.columns]
    special = {time_column, id_column}
    expectations: list[dict[str, Any]] = [
        _expectation("expect_table_columns_to_match_set", "batch", column_set=columns, exact_match=True),
        _expectation(
            "expect_table_row_count_to_be_between", "batch", min_value=1, max_value=max(ROW_COUNT_MAX, 100 * len(frame))
        ),
    ]
    for column in columns:
        typed = _type_expectations(column, frame[column])
        expectations.append({**typed, "meta": {"tier": "batch"}})
    for column in columns:
        if frame[column].notna().all():
            tier = "batch" if column in special else "row"
            expectations.append(_expectation("expect_column_values_to_not_be_null", tier, column=column))
    if id_column is not None:
        expectations.append(_expectation("expect_column_values_to_be_unique", "batch", column=id_column))
    ranged = list(roles.numeric) + ([target] if labels is None else [])
    for column in ranged:
        values = pd.to_numeric(frame[column], errors="coerce").dropna()
        if values.empty:
            continue
        integer = _integer_valued(values)
        low, high = _nice_bounds(float(values.min()), float(values.max()), integer)
        expectations.append(
            _expectation(
                "expect_column_values_to_be_between",
                "row",
                column=column,
                min_value=_bound(low, integer),
                max_value=_bound(high, integer),
            )
        )
    for column in roles.categorical:
        values = frame[column].dropna()
        distinct = values.unique()
        if len(distinct) <= MAX_CATEGORY_SET and len(values) >= MIN_ROWS_PER_CATEGORY * len(distinct):
            value_set = _sorted_values([_python(v) for v in distinct])
            expectations.append(
                _expectation("expect_column_values_to_be_in_set", "row", column=column, value_set=value_set)
            )
    if labels is not None:
        expectations.append(
            _expectation("expect_column_values_to_be_in_set", "row", column=target, value_set=list(labels.classes))
        )
    description = (
        f"First contract of '{name}', inferred by `retrain init` from a sample of {len(frame)} rows: column set, "
        "types, not-null where the sample had no gaps, numeric ranges widened by half their span, value sets of "
        "low-cardinality categories and the target's classes. Batch-tier expectations refuse the batch; row-tier "
        "ones quarantine the failing rows. Read it, tighten or loosen it, then release a new version."
    )
    meta: dict[str, Any] = {
        "contract_version": 1,
        "dataset": name,
        "description": description,
        "time_bounds": {"column": time_column, "future_tolerance_hours": 24, "tier": "batch"},
    }
    return {"name": name, "meta": meta, "expectations": expectations}


def propose_project(
    frame: pd.DataFrame,
    *,
    name: str,
    target: str,
    time_column: str,
    task: TaskKind | None = None,
    id_column: str | None = None,
) -> ProjectProposal:
    """Everything ``retrain init`` infers from ``frame`` (the sample as the batch reader reads it, its
    time column parsed: :func:`infer_time_column` finds that column first, on the raw sample)."""
    if frame.empty:
        raise InferenceError("the sample has no rows")
    for flag, column in (("--target", target), ("--time-column", time_column), ("--id-column", id_column)):
        if column is not None and column not in frame.columns:
            known = ", ".join(map(str, frame.columns))
            raise InferenceError(f"{flag} {column}: no such column in the sample ({known})")
    chosen_time = time_column
    if len({target, chosen_time, id_column} - {None}) != 2 + (id_column is not None):
        raise InferenceError("the target, time and id columns must be three different columns")
    kind = task or infer_task(frame[target])
    labels = infer_labels(frame[target], kind)
    exclude: list[Hashable] = [target, chosen_time, *([id_column] if id_column else [])]
    roles = infer_roles(frame, [str(c) for c in exclude])
    if not roles.numeric and not roles.categorical:
        raise InferenceError("the sample has no usable feature column besides the target, time and id columns")
    metric, floor = primary_metric(kind, labels, frame[target])
    contract = infer_contract(
        frame, name=name, target=target, time_column=chosen_time, id_column=id_column, roles=roles, labels=labels
    )
    return ProjectProposal(
        name=name,
        target=target,
        task=kind,
        task_inferred=task is None,
        labels=labels,
        time_column=chosen_time,
        id_column=id_column,
        roles=roles,
        thresholds=row_thresholds(len(frame)),
        slices=slice_columns(frame, list(roles.categorical)),
        primary_metric=metric,
        floor=floor,
        contract=contract,
        rows=len(frame),
        missing_tokens=suspected_missing_tokens(frame, [*roles.categorical, target]),
        days=int(pd.to_datetime(frame[chosen_time]).dt.normalize().nunique()),
    )
