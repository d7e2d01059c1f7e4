"""Which engine runs the boosting rounds, from ``model.engine`` and the environment.

Every path that fits a model version (the flow, ``retrain fit`` for ``dvc repro``, ``retrain
reproduce``) asks here, so a Dask-trained version is rebuilt on Dask, with the same worker count.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from retrain.adapters import dask_cluster
from retrain.domain.settings import ModelSettings
from retrain.domain.training import IN_MEMORY, BoostingEngine


@contextlib.contextmanager
def training_engine(model: ModelSettings, dask_scheduler: str | None) -> Iterator[BoostingEngine]:
    """The engine ``model`` asks for, connected for the duration of a block."""
    if model.engine != "dask":
        yield IN_MEMORY
        return
    from retrain.domain.distributed import DaskEngine

    with dask_cluster.connect(dask_cluster.require_scheduler(dask_scheduler)) as client:
        yield DaskEngine(client, model.dask_workers)
