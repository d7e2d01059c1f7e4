"""Which engine runs the boosting rounds, from ``model.engine`` and the environment.

Every path that fits a model version (the flow, ``retrain fit`` for ``dvc repro``, ``retrain
reproduce``) asks here, so a Dask-trained version is rebuilt on Dask, with the same worker count.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from retrain.adapters import dask_cluster, files
from retrain.domain import fitting
from retrain.domain.privacy import Tokeniser, tokenise_split
from retrain.domain.settings import DatasetSettings, ModelSettings, SplitSettings
from retrain.domain.splitting import TimeSplit, split_ranges
from retrain.domain.training import BoostingEngine, LocalEngine


def local_engine(model: ModelSettings) -> LocalEngine:
    """The flow's own process, holding the training matrix in memory up to ``external_memory_above_mb``
    (``external_memory``: never)."""
    return LocalEngine(external_above_mb=0.0 if model.engine == "external_memory" else model.external_memory_above_mb)


def boosted_where(model: ModelSettings, train_rows: int, features: int) -> str:
    """Which engine boosted a model of ``train_rows`` x ``features``, for the run's params:
    ``in_memory``, ``external_memory`` or ``dask``."""
    if model.engine == "dask":
        return "dask"
    return "external_memory" if local_engine(model).uses_external_memory(train_rows, features) else "in_memory"


def split_snapshot_file(
    path: Path,
    dataset: DatasetSettings,
    split: SplitSettings,
    model: ModelSettings,
    tokeniser: Tokeniser | None = None,
) -> TimeSplit:
    """Step one of the recipe on a snapshot file, holding in memory only what the engine needs, with
    the sensitive columns ``tokeniser`` names read as tokens from then on (:mod:`retrain.domain.privacy`).

    When the training days will go through external memory, they stay in the file (read a column or
    a piece at a time, :class:`retrain.adapters.files.SnapshotRows`) and only the validation and
    holdout days are read: the snapshot is never held whole. Otherwise the file is read and split in
    memory. Both give the same rows in the same order (the snapshot is sorted by time), so the same model.
    """
    return tokenise_split(_split_file(path, dataset, split, model), tokeniser or Tokeniser.none())


def _split_file(path: Path, dataset: DatasetSettings, split: SplitSettings, model: ModelSettings) -> TimeSplit:
    features = len(dataset.features.all)
    # the whole snapshot's row count (file metadata) bounds the training days': most snapshots stop here
    if model.engine != "dask" and local_engine(model).uses_external_memory(files.count_rows(path), features):
        times = files.read_column(path, dataset.time_column)
        ranges = split_ranges(
            times, split.holdout_days, split.validation_days, split.min_train_days, split.max_train_days
        )
        if ranges is not None and local_engine(model).uses_external_memory(len(ranges.train), features):
            return TimeSplit(
                train=files.SnapshotRows(path, ranges.train.start, ranges.train.stop),
                validation=files.SnapshotRows(path, ranges.validation.start, ranges.validation.stop).read(),
                holdout=files.SnapshotRows(path, ranges.holdout.start, ranges.holdout.stop).read(),
                train_days=ranges.train_days,
                validation_days=ranges.validation_days,
                holdout_days=ranges.holdout_days,
            )
    return fitting.split_snapshot(files.read_snapshot(path), dataset, split)


def fit_snapshot_file(
    path: Path,
    dataset: DatasetSettings,
    split: SplitSettings,
    model: ModelSettings,
    dask_scheduler: str | None,
    tokeniser: Tokeniser | None = None,
) -> fitting.FittedSnapshot:
    """The whole recipe on a snapshot file, as ``retrain fit`` (``dvc repro``) and ``retrain
    reproduce`` run it: the flow's split and fit, in one call."""
    parts = split_snapshot_file(path, dataset, split, model, tokeniser)
    with training_engine(model, dask_scheduler) as engine:
        return fitting.fit_split(parts, dataset, model, engine)


@contextlib.contextmanager
def training_engine(model: ModelSettings, dask_scheduler: str | None) -> Iterator[BoostingEngine]:
    """The engine ``model`` asks for, connected for the duration of a block."""
    if model.engine != "dask":
        yield local_engine(model)
        return
    from retrain.domain.distributed import DaskEngine

    with dask_cluster.connect(dask_cluster.require_scheduler(dask_scheduler)) as client:
        yield DaskEngine(client, model.dask_workers)
