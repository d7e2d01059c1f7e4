"""Reading batch files and writing the training snapshot, with errors a user can act on.

Batches may be Parquet or CSV. A CSV carries no types, so the time column is parsed as dates here
and everything else is left to the contract to judge.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

BATCH_SUFFIXES = (".parquet", ".pq", ".csv")


class BatchReadError(ValueError):
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


def read_batch(path: Path, time_column: str) -> pd.DataFrame:
    """Read one batch; CSV time columns are parsed as dates so both formats look alike."""
    if not path.is_file():
        raise BatchReadError(f"batch file {path} does not exist")
    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path)
            if time_column in frame.columns:
                frame[time_column] = pd.to_datetime(frame[time_column], errors="raise").astype("datetime64[ms]")
            return frame
        return pd.read_parquet(path)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise BatchReadError(
            f"cannot read batch {path}: {error}. Check that it is a valid CSV or Parquet file."
        ) from error
    except Exception as error:  # pyarrow raises its own types for corrupt files
        raise BatchReadError(
            f"cannot read batch {path}: {error}. Check that it is a valid CSV or Parquet file."
        ) from error


def write_snapshot(frame: pd.DataFrame, path: Path, order_by: Sequence[str]) -> Path:
    """Write the training snapshot sorted by ``order_by``, so equal rows give byte-equal files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = frame.sort_values(list(order_by), kind="stable").reset_index(drop=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    ordered.to_parquet(temporary, index=False, compression="zstd")
    temporary.replace(path)  # atomic: a crash never leaves a half-written snapshot
    return path


def read_snapshot(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)
