"""Rows held in memory, or left in storage and read when asked: what training takes either way.

A snapshot too large for memory trains through XGBoost's external memory; its training days then
stay in the snapshot file and are read a column at a time (the labels, the categories, the reference
profile) or a piece at a time (the model matrix). Everything that reads training rows goes through
the helpers here, so a frame and stored rows are read the same way and give the same model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, TypeAlias, runtime_checkable

import pandas as pd


@runtime_checkable
class StoredRows(Protocol):
    """Rows kept in a file (a contiguous range of a time-sorted snapshot), never held whole."""

    @property
    def column_names(self) -> tuple[str, ...]: ...

    def __len__(self) -> int: ...

    def column(self, name: str) -> pd.Series:
        """One column of every row, in row order."""
        ...

    def pieces(self, piece_rows: int) -> Iterator[pd.DataFrame]:
        """Every column, at most ``piece_rows`` rows at a time, in row order."""
        ...


Rows: TypeAlias = pd.DataFrame | StoredRows


def column_names(rows: Rows) -> tuple[str, ...]:
    return tuple(str(name) for name in rows.columns) if isinstance(rows, pd.DataFrame) else rows.column_names


def column_of(rows: Rows, name: str) -> pd.Series:
    """One column of every row (stored rows are indexed by their positions in the file)."""
    return rows[name] if isinstance(rows, pd.DataFrame) else rows.column(name)


def pieces_of(rows: Rows, piece_rows: int) -> Iterator[pd.DataFrame]:
    """The rows ``piece_rows`` at a time: slices of a frame, or reads of stored rows."""
    if isinstance(rows, pd.DataFrame):
        for start in range(0, len(rows), piece_rows):
            yield rows.iloc[start : start + piece_rows]
        return
    yield from rows.pieces(piece_rows)


def whole(rows: Rows) -> pd.DataFrame:
    """Every row in memory (what an in-memory matrix or a Dask scatter needs)."""
    if isinstance(rows, pd.DataFrame):
        return rows
    parts = list(rows.pieces(max(len(rows), 1)))
    return parts[0] if len(parts) == 1 else pd.concat(parts)


def missing_columns(rows: Rows, names: Sequence[str]) -> list[str]:
    """The names of ``names`` that ``rows`` does not have."""
    present = set(column_names(rows))
    return [name for name in names if name not in present]
