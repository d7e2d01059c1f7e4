"""Training tasks: gather evidence, split by time, fit the challenger, log it to MLflow and register it once.

Thin Prefect tasks over :mod:`retrain.application.training` (the one fitting recipe lives in
:mod:`retrain.domain.fitting`); retries and caching are decided here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from retrain.adapters.locks import model_lock
from retrain.adapters.registry import ModelRegistry
from retrain.application import training
from retrain.domain.evidence import Evidence, Snapshot
from retrain.domain.fitting import FittedSnapshot
from retrain.domain.lifecycle import ModelVersionInfo
from retrain.domain.settings import Settings
from retrain.domain.splitting import TimeSplit
from tasks.policy import RETRYING


@task(name="gather-evidence", cache_policy=NO_CACHE)
def gather_evidence_task(
    snapshot: Snapshot,
    settings: Settings,
    project_dir: Path,
    flow_run_id: str,
    triggered_by: str,
    reason: str,
    state_dir: Path,
    registry: ModelRegistry,
    new_salt: bool = False,
) -> Evidence:
    """Who and what made this model; the training key covers what shapes the model, not who asked.
    With sensitive columns, the salt is checked against the ones registered versions record."""
    recorded = training.recorded_salts(registry, settings, state_dir)
    return training.evidence_for(
        snapshot, settings, project_dir, flow_run_id, triggered_by, reason, state_dir, recorded, new_salt
    )


@task(name="split-by-time", cache_policy=NO_CACHE)
def split_task(snapshot_path: Path, settings: Settings, state_dir: Path) -> TimeSplit:
    return training.split_training_set(snapshot_path, settings, state_dir)


@contextlib.contextmanager
def training_lock(ledger_url: str, model_name: str) -> Iterator[None]:
    """One training per registered model at a time: held from the data snapshot (DVC) to find-or-register,
    so that runs started together wait for each other, DVC records the snapshot once, and one training
    key never registers two versions. A lock on the ledger's database (released if this process dies),
    not a task: it spans the tasks in between."""
    logger = get_run_logger()
    # its own key: promotions, rollbacks and rollout evaluations (the model's lock) never wait for a fit
    with model_lock(ledger_url, f"{model_name}:training", on_wait=logger.info):
        yield


@task(name="find-model-for-training-key", cache_policy=NO_CACHE, **RETRYING)
def find_existing_task(registry: ModelRegistry, key: str) -> ModelVersionInfo | None:
    """Idempotence: a re-run on the same data, contract, params and code reuses its version."""
    return registry.find_by_training_key(key)


@task(name="check-training-engine", cache_policy=NO_CACHE, **RETRYING)
def engine_ready_task(settings: Settings, dask_scheduler: str | None) -> str:
    """Before any work: a Dask project needs its scheduler named, answering, with enough workers."""
    return training.check_engine(settings, dask_scheduler)


@task(name="train-challenger", cache_policy=NO_CACHE)
def train_task(split: TimeSplit, settings: Settings, dask_scheduler: str | None = None) -> FittedSnapshot:
    """The boosting rounds run where ``model.engine`` says: in this process, or on the Dask cluster."""
    return training.fit_challenger(split, settings, dask_scheduler)


@task(name="log-and-register-challenger", cache_policy=NO_CACHE, **RETRYING)
def register_task(
    registry: ModelRegistry,
    fitted: FittedSnapshot,
    snapshot: Snapshot,
    evidence: Evidence,
    settings: Settings,
    project_dir: Path,
) -> ModelVersionInfo:
    """Log the run (params, metrics, plots, evidence, native model) and register it as a new version."""
    return training.register_challenger(registry, fitted, snapshot, evidence, settings, project_dir)
