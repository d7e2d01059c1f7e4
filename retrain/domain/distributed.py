"""Boosting past one machine: ``xgboost.dask`` on a Dask cluster, reproducible by construction.

The rows are cut into as many contiguous parts as ``model.dask_workers`` (the same cut for the same
rows), the first workers by address are chosen, and part *i* is placed on the worker XGBoost will
rank *i* (its tracker ranks workers by task id), so the same data on a cluster of the same size is
spread the same way. XGBoost then builds every tree from histograms summed across the workers in
rank order: the same data, params and worker count give the same model bytes (measured, see
docs/dask.md), while a different worker count gives a different, equally valid model. That is why the
count is part of the training settings, and so of the training key. What is not in our hands: the
scheduler could move a part's derived task to another worker (work stealing) on a busy cluster;
reproduction would then report a difference rather than hide it.

The client is handed in (the adapter that connects to the scheduler lives in
:mod:`retrain.adapters.dask_cluster`); nothing here opens a connection or reads the environment.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import xgboost as xgb

from retrain.domain.errors import InputError
from retrain.domain.training import BoostingJob, LabelledRows

#: The label travels beside the features inside each part, so features and labels always share a worker.
_LABEL = "__retrain_label__"


class ClusterTooSmall(InputError):
    """The cluster has fewer workers than ``model.dask_workers`` asks the rows to be spread over."""


def chosen_workers(addresses: list[str], count: int) -> list[str]:
    """The first ``count`` workers by address: the same cluster always gives the same choice."""
    ordered = sorted(addresses)
    if len(ordered) < count:
        raise ClusterTooSmall(
            f"model.dask_workers is {count} but the Dask cluster has {len(ordered)} worker(s): start more "
            "workers, or lower model.dask_workers (a different count trains a different model)"
        )
    return ordered[:count]


def in_rank_order(addresses: list[str], names: Mapping[str, str]) -> list[str]:
    """The workers in the order XGBoost ranks them: by ``[xgboost.dask-NAME]:ADDRESS``, the task id
    ``xgboost.dask`` gives each worker and its tracker sorts by. Part *i* then always sits on rank *i*,
    so histograms are summed in the same order whatever the workers are called."""
    return sorted(addresses, key=lambda address: f"[xgboost.dask-{names.get(address, address)}]:{address}")


def row_parts(rows: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous [start, stop) ranges covering ``rows`` rows as evenly as possible (never empty
    while there are at least as many rows as parts)."""
    bounds = np.linspace(0, rows, num=min(parts, max(rows, 1)) + 1).round().astype(int)
    return [(int(start), int(stop)) for start, stop in itertools.pairwise(bounds)]


class DaskEngine:
    """The boosting rounds of :func:`retrain.domain.training.train_model` on a Dask cluster."""

    name = "dask"

    def __init__(self, client: Any, workers: int, *, wait_seconds: float = 60.0) -> None:
        self._client = client
        self._workers = workers
        self._wait_seconds = wait_seconds

    def _placed_workers(self) -> list[str]:
        """The chosen workers (:func:`chosen_workers`) in XGBoost's rank order (:func:`in_rank_order`)."""
        # a cluster that is still scaling up gets a while to reach the count; chosen_workers says if it did not
        with contextlib.suppress(TimeoutError):
            self._client.wait_for_workers(self._workers, timeout=self._wait_seconds)
        workers = self._client.scheduler_info(n_workers=-1)["workers"]
        names = {address: str(info.get("name", address)) for address, info in workers.items()}
        return in_rank_order(chosen_workers(list(workers), self._workers), names)

    def describe(self) -> str:
        workers = self._placed_workers()
        return f"xgboost.dask on {len(workers)} worker(s) of the cluster: {', '.join(workers)}"

    def _spread(self, rows: LabelledRows, workers: list[str]) -> Any:
        """The rows as a Dask frame whose part *i* lives on worker *i* (features and label together)."""
        import dask.dataframe as dd

        frame = rows.features().reset_index(drop=True)
        frame[_LABEL] = rows.labels
        futures = [
            self._client.scatter(frame.iloc[start:stop], workers=[worker], broadcast=False, hash=False)
            for (start, stop), worker in zip(row_parts(len(frame), len(workers)), workers, strict=False)
        ]
        return dd.from_delayed(futures, meta=frame.iloc[:0], verify_meta=False)

    def boost(self, job: BoostingJob) -> tuple[xgb.Booster, tuple[float, ...]]:
        # xgboost.dask looks the client up as the current one as well: make it this engine's, whatever
        # other client the process holds (a task runner's, a caller's)
        with self._client.as_current():
            return self._boost(job)

    def _boost(self, job: BoostingJob) -> tuple[xgb.Booster, tuple[float, ...]]:
        from xgboost import dask as dxgb

        workers = self._placed_workers()
        train = self._spread(job.train, workers)
        validation = self._spread(job.validation, workers)
        columns = list(job.train.spec.columns)
        dtrain = dxgb.DaskQuantileDMatrix(
            self._client,
            train[columns],
            label=train[_LABEL],
            feature_types=job.feature_types,
            max_bin=int(job.params.get("max_bin", 256)),
        )
        dvalid = dxgb.DaskQuantileDMatrix(
            self._client,
            validation[columns],
            label=validation[_LABEL],
            feature_types=job.feature_types,
            ref=dtrain,
            max_bin=int(job.params.get("max_bin", 256)),
        )
        # each worker boosts with its own thread count (xgboost.dask's default when nthread is unset):
        # model.threads sizes the flow's machine, not the cluster's, and the trees do not depend on it
        params = {key: value for key, value in job.params.items() if key != "nthread"}
        output = dxgb.train(
            self._client,
            params,
            dtrain,
            num_boost_round=job.num_boost_round,
            evals=[(dvalid, "validation")],
            early_stopping_rounds=job.early_stopping_rounds,
            verbose_eval=False,
        )
        booster: xgb.Booster = output["booster"]
        curve = tuple(float(value) for value in output["history"]["validation"][job.eval_metric])
        return booster, curve
