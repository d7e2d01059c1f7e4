"""Reading batch files and writing the training snapshot, with errors a user can act on.

Batches may be Parquet or CSV. A CSV carries no types, so the time column is parsed as dates here
and everything else is left to the contract to judge. Missing-value tokens declared in params
(``dataset.missing_values``, e.g. ``?``) are turned into real missing values here, before the
contract sees the batch, so not-null expectations judge them and a numeric column is numeric.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.domain.errors import InputError

BATCH_SUFFIXES = (".parquet", ".pq", ".csv")


class BatchReadError(InputError):
    """A batch file could not be read; the message says which and what to do."""


def list_batches(directory: Path) -> list[Path]:
    """Batch files in name order (daily batches are named by date, so this is time order)."""
    if not directory.is_dir():
        raise BatchReadError(
            f"batch directory {directory} does not exist: put .parquet or .csv batches there, "
            "run `retrain generate` for demo data, or point dataset.batches in params.yaml elsewhere"
        )
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in BATCH_SUFFIXES)
    if not files:
        raise BatchReadError(
            f"no .parquet or .csv batch files in {directory}: run `retrain generate` for demo data "
            "or point dataset.batches in params.yaml at your data"
        )
    return files


def _csv_header(path: Path) -> list[str]:
    import csv

    with path.open(encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle), [])


def _read_csv(path: Path, time_column: str, missing_values: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    header = _csv_header(path)
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise BatchReadError(
            f"{path} has duplicate column names ({', '.join(duplicates)}): each column must appear once in the "
            "header. Fix the export that produced it and try again."
        )
    frame = mark_missing(pd.read_csv(path), missing_values)  # before the dates: a "?" date is a missing one
    if time_column in frame.columns and len(frame):
        try:
            frame[time_column] = pd.to_datetime(frame[time_column], errors="raise").astype("datetime64[ms]")
        except (ValueError, TypeError) as error:
            raise BatchReadError(
                f"{path}: the time column '{time_column}' holds values that are not dates ({error}). "
                "Use ISO dates such as 2026-01-31."
            ) from error
    return frame


def mark_missing(frame: pd.DataFrame, missing_values: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """``frame`` with each column's declared tokens replaced by missing values.

    Tokens are compared with the cell's text, stripped of surrounding blanks (exports such as
    ``adult.data`` write ``, ?``), so ``-999`` matches the number -999 in a Parquet column as well as
    the text in a CSV. A text column whose every remaining value is a number becomes numeric: once
    ``?`` is gone, ``"42"`` is 42, as it would have been without the token. Columns absent from the
    frame are left to the contract (a missing column is its failure, not the reader's).
    """
    result = frame.copy()
    for column, tokens in missing_values.items():
        if column not in result.columns or not len(result):
            continue
        values = result[column]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if numeric:  # -999 stored as -999.0 must match the token "-999"
            numbers = pd.to_numeric(pd.Series(list(tokens), dtype="object"), errors="coerce").dropna()
            is_token = values.isin(numbers.tolist())
        else:
            is_token = values.notna() & values.astype(str).str.strip().isin({token.strip() for token in tokens})
        if not bool(is_token.any()):
            continue
        cleaned = values.mask(is_token)
        if not numeric and bool(cleaned.notna().any()):
            as_numbers = pd.to_numeric(cleaned, errors="coerce")
            if bool((as_numbers.notna() == cleaned.notna()).all()):
                cleaned = as_numbers
        result[column] = cleaned
    return result


def read_batch(path: Path, time_column: str, missing_values: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """Read one batch, with ``missing_values`` tokens read as missing (see :func:`mark_missing`).

    Every way a file can be unreadable gets its own message saying what to do.
    """
    return _read_batch(path, time_column, missing_values or {})


def count_rows(path: Path) -> int:
    """Rows in a batch file without reading it: Parquet metadata, or the lines of a CSV minus its header.

    A CSV with line breaks inside quoted cells is over-counted; the count only feeds warnings.
    """
    if path.suffix.lower() == ".csv":
        with path.open("rb") as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
            handle.seek(max(path.stat().st_size - 1, 0))
            unterminated = path.stat().st_size > 0 and handle.read(1) != b"\n"
        return max(lines + int(unterminated) - 1, 0)
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def read_column(path: Path, column: str) -> pd.Series:
    """One column of a batch or snapshot file (Parquet reads only that column; a CSV parses only it)."""
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, usecols=[column])[column]
    return pd.read_parquet(path, columns=[column])[column]


def _read_batch(path: Path, time_column: str, missing_values: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    if not path.is_file():
        raise BatchReadError(f"batch file {path} does not exist. Check the path and try again.")
    if path.stat().st_size == 0:
        raise BatchReadError(f"batch file {path} is empty (0 bytes): the export that wrote it probably failed.")
    suffix = path.suffix.lower()
    if suffix not in BATCH_SUFFIXES:
        raise BatchReadError(f"{path} is a '{suffix}' file: Retrain reads .parquet and .csv batches.")
    try:
        if suffix == ".csv":
            return _read_csv(path, time_column, missing_values)
        return mark_missing(pd.read_parquet(path), missing_values)
    except UnicodeDecodeError as error:
        raise BatchReadError(
            f"{path} is not UTF-8 text (byte {error.object[error.start]:#04x} at position {error.start}): "
            "re-save it as UTF-8 (for example `iconv -f latin1 -t utf-8`) and try again."
        ) from error
    except pd.errors.EmptyDataError as error:
        raise BatchReadError(f"{path} has no header and no rows: the export that wrote it probably failed.") from error
    except BatchReadError:
        raise
    except Exception as error:  # pyarrow and the CSV parser raise many types for damaged files
        kind = "Parquet" if suffix != ".csv" else "CSV"
        raise BatchReadError(
            f"{path} is not a readable {kind} file ({type(error).__name__}: {error}). It may be truncated or "
            "corrupt: export it again."
        ) from error


def read_batch_pieces(
    path: Path, time_column: str, missing_values: Mapping[str, Sequence[str]] | None, rows: int
) -> Iterator[pd.DataFrame]:
    """One batch, at most ``rows`` rows at a time: a Parquet file by its record batches (memory holds one
    piece, whatever the file's size), read as :func:`read_batch` reads the whole. A CSV file is read
    whole, as one piece (its column types are only known once every row is read). An empty Parquet
    file gives one empty piece, so a reader always sees the columns."""
    if path.suffix.lower() not in (".parquet", ".pq") or not path.is_file() or path.stat().st_size == 0:
        yield read_batch(path, time_column, missing_values)  # a CSV, and every way to fail, as read_batch words it
        return
    import pyarrow.parquet as pq

    tokens = missing_values or {}
    try:
        # pre_buffer off: with it, pyarrow keeps every row group it has read buffered (the whole file by
        # the end, measured: 3M rows x 50 grew to 1.5 GB); without, memory stays that of one piece
        parquet = pq.ParquetFile(path, pre_buffer=False)
        batches = parquet.iter_batches(batch_size=rows)
        empty = parquet.schema_arrow.empty_table()
    except Exception as error:  # pyarrow raises many types for damaged files
        raise _unreadable_parquet(path, error) from error
    yielded = False
    while True:
        try:
            batch = next(batches, None)
        except Exception as error:
            raise _unreadable_parquet(path, error) from error
        if batch is None:
            break
        yielded = True
        yield mark_missing(batch.to_pandas(), tokens)
    if not yielded:
        yield mark_missing(empty.to_pandas(), tokens)


def _unreadable_parquet(path: Path, error: Exception) -> BatchReadError:
    return BatchReadError(
        f"{path} is not a readable Parquet file ({type(error).__name__}: {error}). It may be truncated or "
        "corrupt: export it again."
    )


def write_pieces(frames: Iterable[pd.DataFrame], path: Path, like: Path | None = None) -> Path:
    """Frames written as one Parquet file, a row group each, as they come (never all in memory).

    The columns take the first frame's types, except those that the Parquet file ``like`` (the batch
    the frames were made from) also has: they take its types, so a column that one piece happens to
    hold only missing values in (typed null, or float instead of int) is written as the batch types it.
    Written through a temporary file of its own, removed on failure: a crash never leaves half a file
    under ``path``, and two writers never share a temporary.
    """
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    source = _parquet_types(like)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    writer: pq.ParquetWriter | None = None
    try:
        for frame in frames:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                fields = [pa.field(f.name, source.get(f.name, f.type)) for f in table.schema]
                writer = pq.ParquetWriter(temporary, pa.schema(fields))
            writer.write_table(table.cast(writer.schema))
        if writer is None:
            raise ValueError("write_pieces needs at least one frame")
        writer.close()
        writer = None
        temporary.replace(path)
    finally:
        if writer is not None:
            writer.close()
        temporary.unlink(missing_ok=True)
        close = getattr(frames, "close", None)  # a generator's open files are closed now, not at collection
        if callable(close):
            close()
    return path


def _parquet_types(path: Path | None) -> dict[str, Any]:
    """Column name -> Arrow type of a Parquet file (nothing for a CSV or no file)."""
    if path is None or path.suffix.lower() not in (".parquet", ".pq"):
        return {}
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    return {field.name: field.type for field in schema if str(field.type) != "null"}


def write_snapshot(frame: pd.DataFrame, path: Path, order_by: Sequence[str]) -> Path:
    """Write the training snapshot sorted by ``order_by``, so equal rows give byte-equal files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = frame.sort_values(list(order_by), kind="stable").reset_index(drop=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    ordered.to_parquet(temporary, index=False, compression="zstd")
    temporary.replace(path)  # atomic: a crash never leaves a half-written snapshot
    return path


#: Rows per row group of a snapshot: pyarrow's default, which :func:`write_snapshot` gets by not
#: choosing; :func:`write_snapshot_pieces` cuts the same groups so both write the same bytes.
SNAPSHOT_ROW_GROUP_ROWS = 1024 * 1024


def writable_in_pieces(rows: pd.DataFrame) -> bool:
    """Whether rows typed like ``rows`` can be written a piece at a time as :func:`write_snapshot_pieces`
    does: not with an ``object`` column (pyarrow infers its type from the values, and a piece's values
    may say less than the whole's: all missing, say) nor a ``category`` one (the whole's categories)."""
    return not any(dtype == np.dtype(object) or isinstance(dtype, pd.CategoricalDtype) for dtype in rows.dtypes)


def write_snapshot_pieces(pieces: Iterable[pd.DataFrame], path: Path) -> Path:
    """Write a snapshot from pieces already in snapshot order, one piece in memory at a time.

    Only for columns :func:`writable_in_pieces` accepts. The pieces are cut into row groups of
    :data:`SNAPSHOT_ROW_GROUP_ROWS` rows with the columns typed
    as the first piece's, so the file is byte for byte what :func:`write_snapshot` makes of the same
    rows joined (same row groups, same schema): the snapshot's md5, and so the training key, do not
    depend on how it was written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    writer: Any = None
    schema: Any = None
    pending: list[pd.DataFrame] = []  # pieces not written yet, joined only when they fill a row group
    held = 0

    def write(rows: pd.DataFrame) -> None:
        writer.write_table(
            pa.Table.from_pandas(rows, schema=schema, preserve_index=False), row_group_size=SNAPSHOT_ROW_GROUP_ROWS
        )

    try:
        for piece in pieces:
            if writer is None:
                schema = pa.Schema.from_pandas(piece.iloc[:0], preserve_index=False)
                writer = pq.ParquetWriter(temporary, schema, compression="zstd")
            pending.append(piece)
            held += len(piece)
            if held >= SNAPSHOT_ROW_GROUP_ROWS:
                joined = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
                full = (held // SNAPSHOT_ROW_GROUP_ROWS) * SNAPSHOT_ROW_GROUP_ROWS
                for start in range(0, full, SNAPSHOT_ROW_GROUP_ROWS):
                    write(joined.iloc[start : start + SNAPSHOT_ROW_GROUP_ROWS])
                pending = [joined.iloc[full:]] if full < held else []
                held -= full
        if writer is None:
            raise ValueError("a snapshot needs at least one piece")
        if held:
            write(pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0])
        writer.close()
    except BaseException:
        if writer is not None:
            writer.close()
        temporary.unlink(missing_ok=True)
        raise
    temporary.replace(path)  # atomic: a crash never leaves a half-written snapshot
    return path


def read_snapshot(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


class SnapshotRows:
    """Rows ``start``..``stop`` of a snapshot file, left there and read when asked: one column at a
    time, or every column a piece at a time (:class:`retrain.domain.rows.StoredRows`).

    Only the row groups that hold the range are read, and without pre-buffering, so memory holds one
    column or one piece, whatever the snapshot's size. Values convert as :func:`read_snapshot` converts
    them (the same dtypes), so stored and in-memory rows encode to the same model matrix.
    """

    def __init__(self, path: Path, start: int, stop: int) -> None:
        import pyarrow.parquet as pq

        self.path, self.start, self.stop = path, start, stop
        parquet = pq.ParquetFile(path)
        metadata = parquet.metadata
        self._names = tuple(parquet.schema_arrow.names)
        offsets, groups, at = [], [], 0
        for index in range(metadata.num_row_groups):
            rows = metadata.row_group(index).num_rows
            if at < stop and at + rows > start:
                groups.append(index)
                offsets.append(at)
            at += rows
        self._groups, self._first_row = groups, (offsets[0] if offsets else start)

    @property
    def column_names(self) -> tuple[str, ...]:
        return self._names

    def __len__(self) -> int:
        return self.stop - self.start

    def _batches(self, columns: list[str] | None, piece_rows: int) -> Iterator[pd.DataFrame]:
        import pyarrow.parquet as pq

        if not self._groups or self.stop <= self.start:
            return
        parquet = pq.ParquetFile(self.path, pre_buffer=False)
        at = self._first_row
        for batch in parquet.iter_batches(batch_size=piece_rows, row_groups=self._groups, columns=columns):
            begin, end = max(self.start, at), min(self.stop, at + batch.num_rows)
            if begin < end:
                piece = batch.slice(begin - at, end - begin).to_pandas()
                piece.index = pd.RangeIndex(begin, end)  # positions in the snapshot, as a frame split keeps them
                yield piece
            at += batch.num_rows
            if at >= self.stop:
                return

    def column(self, name: str) -> pd.Series:
        parts = [piece[name] for piece in self._batches([name], 1 << 20)]
        if not parts:
            return read_snapshot_schema(self.path)[name]
        return parts[0] if len(parts) == 1 else pd.concat(parts)

    def pieces(self, piece_rows: int) -> Iterator[pd.DataFrame]:
        return self._batches(None, piece_rows)

    def read(self) -> pd.DataFrame:
        """Every row of the range in memory (the validation and holdout days)."""
        parts = list(self._batches(None, 1 << 20))
        if not parts:
            return read_snapshot_schema(self.path)
        return parts[0] if len(parts) == 1 else pd.concat(parts)


def read_snapshot_schema(path: Path) -> pd.DataFrame:
    """A snapshot's columns and types, no rows."""
    import pyarrow.parquet as pq

    empty: pd.DataFrame = pq.ParquetFile(path).schema_arrow.empty_table().to_pandas()
    return empty
