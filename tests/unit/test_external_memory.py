"""Training through XGBoost's external memory: the same model bytes as in memory, for every task.

The engine switch rests on this: a snapshot too large for memory trains a piece at a time, and the
version it registers, its training key and its reproduction are what an in-memory fit would give.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.application.engines import boosted_where, local_engine
from retrain.domain.evidence import _model_record
from retrain.domain.features import build_feature_spec
from retrain.domain.settings import load_settings
from retrain.domain.task import Task
from retrain.domain.training import LocalEngine, train_model
from tests.conftest import REPO_ROOT

SETTINGS = load_settings(REPO_ROOT / "params.yaml")
TASKS = {
    "binary": Task("binary", ("no", "yes"), "yes"),
    "multiclass": Task("multiclass", ("a", "b", "c")),
    "regression": Task("regression"),
}


def _rows(task: Task, n: int, seed: int) -> pd.DataFrame:
    """Numeric columns with gaps, a categorical one with an unseen value later, a target per task."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    x2[rng.random(n) < 0.07] = np.nan
    region = rng.choice(["north", "south", "east", "west", "centre"], size=n)
    signal = x1 + np.nan_to_num(x2) * (region == "north") + rng.normal(scale=0.5, size=n)
    target: object
    if task.kind == "regression":
        target = 3.0 * signal
    elif task.kind == "multiclass":
        target = np.array(task.classes, dtype=object)[np.digitize(signal, [-0.5, 0.5])]
    else:
        target = np.where(signal > 0, "yes", "no")
    return pd.DataFrame({"x1": x1, "x2": x2, "region": region, "y": target})


@pytest.mark.parametrize(  # the multiclass case trains three models per round: make test-all
    "kind", [kind if kind != "multiclass" else pytest.param(kind, marks=pytest.mark.slow) for kind in TASKS]
)
def test_external_memory_gives_the_in_memory_model_byte_for_byte(kind: str):
    task = TASKS[kind]
    train, validation = _rows(task, 9_000, 1), _rows(task, 2_000, 2)
    spec = build_feature_spec(train, ["x1", "x2"], ["region"])
    model = SETTINGS.model.model_copy(
        update={"xgboost": SETTINGS.model.xgboost.model_copy(update={"num_boost_round": 40})}
    )

    def fit(engine: LocalEngine) -> bytes:
        trained = train_model(train, validation, spec, "y", model, task, engine)
        return bytes(trained.booster.save_raw("ubj"))

    in_memory = fit(LocalEngine())
    # pieces of uneven size, the last one short: XGBoost sketches them one by one
    assert fit(LocalEngine(external_above_mb=0.0, piece_rows=2_500)) == in_memory
    assert fit(LocalEngine(external_above_mb=0.0, piece_rows=9_000)) == in_memory


def test_the_engine_switches_on_the_training_matrix_size():
    engine = local_engine(SETTINGS.model.model_copy(update={"external_memory_above_mb": 100.0}))
    assert not engine.uses_external_memory(250_000, 50)  # 100 MB: not above
    assert engine.uses_external_memory(250_001, 50)
    never = local_engine(SETTINGS.model.model_copy(update={"external_memory_above_mb": None}))
    assert not never.uses_external_memory(10**9, 50)
    always = local_engine(SETTINGS.model.model_copy(update={"engine": "external_memory"}))
    assert always.uses_external_memory(10, 1)
    assert boosted_where(SETTINGS.model.model_copy(update={"engine": "external_memory"}), 10, 1) == "external_memory"
    assert boosted_where(SETTINGS.model, 10, 1) == "in_memory"
    assert boosted_where(SETTINGS.model.model_copy(update={"engine": "dask"}), 10, 1) == "dask"


def test_where_the_matrix_is_held_is_not_part_of_the_training_key():
    """Same bytes either way, so the same params hash: switching a project to external memory (or
    moving the threshold) finds its registered version instead of training a twin."""
    base = _model_record(SETTINGS.model)
    updates = ({"engine": "external_memory"}, {"external_memory_above_mb": 1.0}, {"external_memory_above_mb": None})
    for update in updates:
        assert _model_record(SETTINGS.model.model_copy(update=update)) == base
    assert "engine" in _model_record(SETTINGS.model.model_copy(update={"engine": "dask"}))


def _snapshot(tmp_path, row_group_size: int):
    import datetime as dt

    from retrain.domain.demo_data import generate_days

    data = SETTINGS.dataset
    assert data.id_column is not None
    frame = pd.concat([f for _, f in generate_days(dt.date(2026, 1, 1), 7, 1_500, 3)], ignore_index=True)
    frame = frame.sort_values([data.time_column, data.id_column], kind="stable").reset_index(drop=True)
    path = tmp_path / "training.parquet"
    frame.to_parquet(path, index=False, row_group_size=row_group_size)
    return path


def test_training_days_left_in_the_snapshot_file_give_the_same_split_and_model(tmp_path):
    from retrain.adapters.files import SnapshotRows
    from retrain.application.engines import split_snapshot_file
    from retrain.domain import fitting
    from retrain.domain.profile import build_profile
    from retrain.domain.rows import whole

    path = _snapshot(tmp_path, row_group_size=700)  # ranges start and end inside row groups
    data, split_settings = SETTINGS.dataset, SETTINGS.split
    in_memory = split_snapshot_file(path, data, split_settings, SETTINGS.model)
    assert isinstance(in_memory.train, pd.DataFrame)  # small: read and split in memory
    external = SETTINGS.model.model_copy(update={"engine": "external_memory"})
    stored = split_snapshot_file(path, data, split_settings, external)
    assert isinstance(stored.train, SnapshotRows)
    assert (stored.train_days, stored.validation_days, stored.holdout_days) == (
        in_memory.train_days,
        in_memory.validation_days,
        in_memory.holdout_days,
    )
    pd.testing.assert_frame_equal(stored.validation, in_memory.validation, check_index_type=False)
    pd.testing.assert_frame_equal(stored.holdout, in_memory.holdout, check_index_type=False)
    pd.testing.assert_frame_equal(whole(stored.train), in_memory.train.reset_index(drop=True))

    model = SETTINGS.model.model_copy(
        update={"xgboost": SETTINGS.model.xgboost.model_copy(update={"num_boost_round": 30})}
    )
    reference = fitting.fit_split(in_memory, data, model, LocalEngine())
    # pieces of 999 rows over row groups of 700: every piece crosses a row-group boundary
    streamed = fitting.fit_split(stored, data, model, LocalEngine(external_above_mb=0.0, piece_rows=999))
    assert streamed.model_bytes() == reference.model_bytes()
    assert streamed.model.spec == reference.model.spec
    assert streamed.holdout_metrics == reference.holdout_metrics
    features = data.features
    profiles = [
        build_profile(
            [s.train, s.validation, s.holdout],
            features.numeric,
            features.categorical,
            holdout_predictions=None,
            metrics={},
            quantiles=SETTINGS.drift.quantiles,
        )
        for s in (in_memory, stored)
    ]
    assert profiles[0] == profiles[1]


def test_a_snapshot_not_sorted_by_time_is_split_in_memory(tmp_path):
    from retrain.application.engines import split_snapshot_file

    path = _snapshot(tmp_path, row_group_size=700)
    shuffled = pd.read_parquet(path).sample(frac=1.0, random_state=0)
    shuffled.to_parquet(path, index=False)
    external = SETTINGS.model.model_copy(update={"engine": "external_memory"})
    split = split_snapshot_file(path, SETTINGS.dataset, SETTINGS.split, external)
    assert isinstance(split.train, pd.DataFrame)


@pytest.mark.parametrize("with_id", [True, False], ids=["id column", "no id column"])
def test_a_snapshot_written_a_batch_at_a_time_is_the_same_file(tmp_path, monkeypatch, with_id: bool):
    """Daily batches are sorted and written one at a time (never joined whole): the same bytes, so
    the same md5 and training key, as joining and sorting them; overlapping batches are joined."""
    import datetime as dt
    from dataclasses import dataclass
    from typing import cast

    import pyarrow.parquet as pq

    from retrain.adapters import files
    from retrain.application.batches import assemble_training_set
    from retrain.domain import rowkey
    from retrain.domain.demo_data import generate_days
    from retrain.domain.validation import BatchValidation

    @dataclass
    class Accepted:
        accepted: pd.DataFrame

    data = SETTINGS.dataset
    settings = (
        SETTINGS if with_id else SETTINGS.model_copy(update={"dataset": data.model_copy(update={"id_column": None})})
    )
    days = [f.sample(frac=1.0, random_state=1) for _, f in generate_days(dt.date(2026, 1, 1), 5, 900, 4)]
    if not with_id:
        days = [day.drop(columns=[data.id_column]) for day in days]
    days = [days[i] for i in (3, 0, 4, 1, 2)]  # batches listed out of time order
    batches = cast(list[BatchValidation], [Accepted(day) for day in days])
    streamed = assemble_training_set(batches, settings, tmp_path / "streamed").read_bytes()

    whole = pd.concat(days, ignore_index=True)
    order = [data.time_column] + ([data.id_column] if with_id and data.id_column else [])
    if not with_id:
        whole = rowkey.order_by_content(whole)
    reference = files.write_snapshot(whole, tmp_path / "whole.parquet", order)
    assert streamed == reference.read_bytes()

    monkeypatch.setattr(files, "SNAPSHOT_ROW_GROUP_ROWS", 1_000)  # groups cut across batches
    cut = assemble_training_set(batches, settings, tmp_path / "cut")
    assert pq.ParquetFile(cut).metadata.num_row_groups == 5  # 4,500 rows in groups of 1,000
    pd.testing.assert_frame_equal(pd.read_parquet(cut), pd.read_parquet(reference))

    overlapping = [days[0], pd.concat([days[1], days[0].head(5)], ignore_index=True)]
    assert rowkey.apart_in_time(overlapping, data.time_column) is None
    assert rowkey.apart_in_time(days, data.time_column) is not None


def test_timezone_aware_times_split_the_same_in_the_file_and_in_memory(tmp_path):
    from retrain.application.engines import split_snapshot_file

    data = SETTINGS.dataset
    path = _snapshot(tmp_path, row_group_size=700)
    frame = pd.read_parquet(path)
    frame[data.time_column] = pd.to_datetime(frame[data.time_column]).dt.tz_localize("Europe/Paris")
    frame.to_parquet(path, index=False, row_group_size=700)
    in_memory = split_snapshot_file(path, data, SETTINGS.split, SETTINGS.model)
    external = SETTINGS.model.model_copy(update={"engine": "external_memory"})
    stored = split_snapshot_file(path, data, SETTINGS.split, external)
    assert not isinstance(stored.train, pd.DataFrame)
    assert stored.holdout_days == in_memory.holdout_days
    pd.testing.assert_frame_equal(stored.holdout, in_memory.holdout, check_index_type=False)
    assert len(stored.train) == len(in_memory.train)


def _assembled(tmp_path, name: str, days: list[pd.DataFrame]) -> bytes:
    from typing import cast

    from retrain.application.batches import assemble_training_set
    from retrain.domain.validation import BatchValidation

    class Accepted:
        def __init__(self, rows: pd.DataFrame) -> None:
            self.accepted = rows

    batches = cast(list[BatchValidation], [Accepted(day) for day in days])
    return assemble_training_set(batches, SETTINGS, tmp_path / name).read_bytes()


def _whole(tmp_path, days: list[pd.DataFrame]) -> bytes:
    from retrain.adapters import files

    data = SETTINGS.dataset
    assert data.id_column is not None
    order = [data.time_column, data.id_column]
    return files.write_snapshot(pd.concat(days, ignore_index=True), tmp_path / "whole.parquet", order).read_bytes()


def test_batches_past_one_row_group_give_the_bytes_of_one_sort(tmp_path):
    """2.1M rows in three daily batches: row groups of 1,048,576 rows cut across the batches."""
    data = SETTINGS.dataset
    assert data.id_column is not None
    rng = np.random.default_rng(0)
    days = []
    for day in (2, 0, 1):
        n = 700_000
        days.append(
            pd.DataFrame(
                {
                    data.time_column: pd.Timestamp("2026-01-01") + pd.Timedelta(days=day),
                    data.id_column: rng.permutation(n).astype("int64") + day * n,
                    "x": rng.normal(size=n),
                    "region": pd.array(rng.choice(["a", "b"], size=n), dtype="str"),
                }
            )
        )
    from retrain.adapters.files import writable_in_pieces
    from retrain.domain.rowkey import apart_in_time

    assert apart_in_time(days, data.time_column) is not None and writable_in_pieces(days[0])  # written in pieces
    assert _assembled(tmp_path, "streamed", days) == _whole(tmp_path, days)


def test_batches_with_python_object_columns_are_sorted_together(tmp_path):
    """A date column read as Python objects (or a flag column with blanks) gives pyarrow nothing to
    type an empty piece by: such batches are joined and sorted whole, as before."""
    import datetime as dt

    data = SETTINGS.dataset
    assert data.id_column is not None
    days = [
        pd.DataFrame(
            {
                data.time_column: [dt.date(2026, 1, 1 + day)] * 3,
                data.id_column: [3 * day + 2, 3 * day, 3 * day + 1],
                "flag": pd.Series([True, None, False], dtype=object),
            }
        )
        for day in (1, 0)
    ]
    from retrain.adapters.files import writable_in_pieces

    assert not writable_in_pieces(days[0])
    assert _assembled(tmp_path, "joined", days) == _whole(tmp_path, days)
