"""Row keys for data without an id column (``dataset.id_column: null``).

Retrain never asks a user to invent an id. Where a row must be told apart or found again, it derives
what that use needs, and only when ``dataset.id_column`` is null:

* **training snapshot order** — rows are sorted by the time column, then by :func:`content_key`, a
  hash of the row's values. The snapshot's bytes then depend only on *which* rows were accepted, not
  on the order of files or rows, so DVC sees an unchanged snapshot as unchanged. Two identical rows
  get the same key; their order cannot matter, they are identical.
* **quarantine files** — one file per batch already; each quarantined row carries
  :data:`SOURCE_ROW` (its 0-based position among the batch file's data rows, header excluded), so it
  can be found in the file it came from.
* **predictions** — each row carries :data:`SOURCE_BATCH` (the batch file's name) and
  :data:`SOURCE_ROW`, which join the scores back to the input rows. A content hash is not used there:
  two identical applicants would share it and a join would multiply rows.

With an id column, that column is used everywhere instead, as before.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

SOURCE_BATCH: Final = "source_batch"
SOURCE_ROW: Final = "source_row"


def content_key(frame: pd.DataFrame) -> pd.Series:
    """A 64-bit hash of each row's values and column names, independent of the frame's index.

    Stable across runs and machines (pandas' hash is seeded with a fixed key), and equal for equal rows.
    """
    ordered = frame[sorted(frame.columns, key=str)]
    return pd.util.hash_pandas_object(ordered, index=False).rename("content_key")


def order_by_content(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` sorted by :func:`content_key`; a later stable sort by time keeps this as tie-break."""
    keys = content_key(frame).to_numpy()
    return frame.iloc[np.argsort(keys, kind="stable")].reset_index(drop=True)


def source_positions(batches: Sequence[str], rows_per_batch: Sequence[int]) -> pd.DataFrame:
    """For rows concatenated from ``batches`` in order: each row's batch file and position in it."""
    if len(batches) != len(rows_per_batch):
        raise ValueError("one row count per batch is needed")
    return pd.DataFrame(
        {
            SOURCE_BATCH: np.repeat(np.asarray(batches, dtype=object), rows_per_batch),
            SOURCE_ROW: np.concatenate(
                [np.arange(n, dtype="int64") for n in rows_per_batch] or [np.array([], "int64")]
            ),
        }
    )


def apart_in_time(parts: Sequence[pd.DataFrame], time_column: str) -> list[pd.DataFrame] | None:
    """``parts`` ordered by time when each covers its own stretch of time (the newest row of one
    strictly before the oldest of the next) and all have the same column types: then sorting each
    and writing them in that order is sorting them all at once. None otherwise (overlapping batches,
    a missing time, columns typed differently), and the rows must be sorted together."""
    if not parts or any(list(part.dtypes.items()) != list(parts[0].dtypes.items()) for part in parts):
        return None
    spans: list[tuple[Any, Any, pd.DataFrame]] = []
    for part in parts:
        if len(part) == 0:
            continue
        times = part[time_column]
        if times.isna().any() or times.dtype == object:  # python objects: their order is not checked here
            return None
        spans.append((times.min(), times.max(), part))
    if not spans:
        return None
    spans.sort(key=lambda span: span[0])
    if any(before[1] >= after[0] for before, after in itertools.pairwise(spans)):
        return None
    return [part for _, _, part in spans]
