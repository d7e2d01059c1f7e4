"""Reading a batch a piece at a time and writing the predictions a piece at a time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retrain.adapters.files import BatchReadError, read_batch, read_batch_pieces, write_pieces


def _batch(path: Path) -> Path:
    """Two row groups: the label arrives only for the second one (late labels), and an int column
    with a gap in the second."""
    table = pa.table(
        {
            "when": pa.array(pd.date_range("2026-01-01", periods=6, freq="h")),
            "label": pa.array([None, None, None, "yes", "no", "yes"], type=pa.string()),
            "count": pa.array([1, 2, 3, None, 5, 6], type=pa.int64()),
        }
    )
    pq.write_table(table, path, row_group_size=3)
    return path


def test_pieces_of_a_parquet_batch_join_up_to_the_whole_batch(tmp_path: Path):
    batch = _batch(tmp_path / "b.parquet")
    pieces = list(read_batch_pieces(batch, "when", {}, rows=2))
    assert [len(piece) for piece in pieces] == [2, 2, 2]
    pd.testing.assert_frame_equal(pd.concat(pieces, ignore_index=True), read_batch(batch, "when"))


def test_pieces_written_take_the_batchs_types_when_a_piece_holds_only_missing_values(tmp_path: Path):
    batch = _batch(tmp_path / "b.parquet")
    out = write_pieces(read_batch_pieces(batch, "when", {}, rows=3), tmp_path / "out.parquet", like=batch)
    assert pq.read_schema(out).field("label").type == pa.string()
    assert pq.read_schema(out).field("count").type == pa.int64()
    written = pd.read_parquet(out)
    assert written["label"].tolist()[3:] == ["yes", "no", "yes"] and written["count"].isna().sum() == 1


def test_a_failed_write_leaves_no_file_behind(tmp_path: Path):
    def frames() -> Iterator[pd.DataFrame]:
        yield pd.DataFrame({"x": [1.0]})
        raise RuntimeError("the model failed on the second piece")

    with pytest.raises(RuntimeError, match="second piece"):
        write_pieces(frames(), tmp_path / "out.parquet")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("batch.xlsx", b"PK\x03\x04", "Retrain reads .parquet and .csv batches"),
        ("batch.parquet", b"PAR1 not really", "not a readable Parquet file"),
        ("missing.parquet", None, "does not exist"),
    ],
)
def test_a_batch_that_cannot_be_read_in_pieces_says_why_as_a_whole_read_does(
    tmp_path: Path, name: str, content: bytes | None, words: str
):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BatchReadError, match=words):
        list(read_batch_pieces(path, "when", {}, rows=10))


def test_an_empty_parquet_batch_is_one_empty_piece_with_its_columns(tmp_path: Path):
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"x": pa.array([], type=pa.float64())}), path)
    pieces = list(read_batch_pieces(path, "when", {}, rows=10))
    assert len(pieces) == 1 and list(pieces[0].columns) == ["x"] and len(pieces[0]) == 0
    assert np.isnan(pieces[0]["x"].to_numpy()).sum() == 0
