"""What a drift check needs of a batch: counts that add up across pieces of the batch.

A numeric feature is counted into the reference profile's cells, a categorical one per category (as
text, the way the profile names them), each with its missing values and rows. Counts add: a batch
read in pieces (Parquet row groups, CSV chunks) and summed is judged exactly as the whole batch read
at once, so a batch larger than memory costs one piece at a time. Counting is also the fast path:
one hash or binary-search pass per column, no copy of the column's present values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from retrain.domain.features import unique_texts
from retrain.domain.profile import NumericProfile, ReferenceProfile, as_float


@dataclass(frozen=True)
class NumericCounts:
    """Present values per reference cell (``len(edges) + 1`` cells), missing values, rows."""

    cells: np.ndarray
    missing: int
    rows: int

    def __add__(self, other: NumericCounts) -> NumericCounts:
        return NumericCounts(self.cells + other.cells, self.missing + other.missing, self.rows + other.rows)


@dataclass(frozen=True)
class CategoryCounts:
    """Rows per category (as text), missing values, rows."""

    counts: Mapping[str, int]
    missing: int
    rows: int

    def __add__(self, other: CategoryCounts) -> CategoryCounts:
        merged = dict(self.counts)
        for text, count in other.counts.items():
            merged[text] = merged.get(text, 0) + count
        return CategoryCounts(merged, self.missing + other.missing, self.rows + other.rows)

    @property
    def present(self) -> int:
        return self.rows - self.missing


ColumnCounts = NumericCounts | CategoryCounts


def numeric_counts(values: pd.Series | np.ndarray, edges: np.ndarray) -> NumericCounts:
    """One binary search per value into ``edges`` (right-closed cells). A NaN sorts past every edge, into
    the last cell, and is taken out of it again: no copy of the present values is made."""
    numbers = as_float(values)
    missing = int(np.count_nonzero(np.isnan(numbers)))
    cells = np.bincount(np.searchsorted(edges, numbers, side="left"), minlength=edges.size + 1)
    cells[-1] -= missing
    return NumericCounts(cells, missing, int(numbers.size))


def category_counts(values: pd.Series) -> CategoryCounts:
    """One hash pass (``factorize``) and a count per distinct value; values that read as the same text
    (3 and 3.0, see :func:`~retrain.domain.features.category_text`) are one category."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    per_code = np.bincount(codes + 1, minlength=len(uniques) + 1)  # [missing, each distinct value]
    counts: dict[str, int] = {}
    for text, count in zip(unique_texts(uniques), per_code[1:], strict=True):
        counts[str(text)] = counts.get(str(text), 0) + int(count)
    return CategoryCounts(counts, int(per_code[0]), int(codes.size))


@dataclass(frozen=True)
class BatchCounts:
    """Every profiled feature's counts for one batch (or the sum of its pieces)."""

    rows: int
    columns: Mapping[str, ColumnCounts]

    def __add__(self, other: BatchCounts) -> BatchCounts:
        columns = {name: self.columns[name] + other.columns[name] for name in self.columns}  # type: ignore[operator]
        return BatchCounts(self.rows + other.rows, columns)


def count_batch(profile: ReferenceProfile, frame: pd.DataFrame) -> BatchCounts:
    """The counts of every feature the profile knows; a feature the batch lacks counts as all missing."""
    rows = len(frame)
    absent = pd.Series([None] * rows, dtype="object", index=frame.index)
    columns: dict[str, ColumnCounts] = {}
    for numeric in profile.numeric:
        columns[numeric.name] = _numeric(numeric, frame.get(numeric.name, absent))
    for categorical in profile.categorical:
        columns[categorical.name] = category_counts(frame.get(categorical.name, absent))
    return BatchCounts(rows, columns)


def _numeric(profile: NumericProfile, values: pd.Series) -> NumericCounts:
    return numeric_counts(values, np.asarray(profile.edges, dtype="float64"))
