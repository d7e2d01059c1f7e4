"""Training tasks: split by time, fit the challenger, log it to MLflow and register it once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from retrain.adapters import code_version, files, plots
from retrain.adapters.contracts import contract_hash, load_contract_json
from retrain.adapters.locks import model_lock
from retrain.adapters.registry import HOLDOUT_PREFIX, ModelRegistry
from retrain.domain import lifecycle
from retrain.domain.features import build_feature_spec, encode_features
from retrain.domain.lifecycle import ModelVersionInfo, canonical_hash
from retrain.domain.metrics import classification_metrics
from retrain.domain.profile import ReferenceProfile, build_profile
from retrain.domain.settings import Settings
from retrain.domain.splitting import TimeSplit, split_by_time
from retrain.domain.training import TrainedModel, booster_params, predict_proba, train_model
from tasks.data import Snapshot
from tasks.policy import RETRYING


@dataclass(frozen=True)
class Evidence:
    """What a model version was made from: enough to find its data, contract, params and code."""

    data_md5: str
    contract_name: str
    contract_version: int
    contract_hash: str
    params_hash: str
    code_version: str
    training_key: str
    flow_run_id: str
    triggered_by: str
    reason: str

    def tags(self) -> dict[str, str]:
        return {
            lifecycle.TAG_TRAINING_KEY: self.training_key,
            lifecycle.TAG_DATA_MD5: self.data_md5,
            lifecycle.TAG_CONTRACT_NAME: self.contract_name,
            lifecycle.TAG_CONTRACT_VERSION: str(self.contract_version),
            lifecycle.TAG_CONTRACT_HASH: self.contract_hash,
            lifecycle.TAG_PARAMS_HASH: self.params_hash,
            "retrain.code_version": self.code_version,
            lifecycle.TAG_FLOW_RUN: self.flow_run_id,
            lifecycle.TAG_TRIGGERED_BY: self.triggered_by,
            "retrain.reason": self.reason,
        }


@dataclass(frozen=True)
class TrainingResult:
    model: TrainedModel
    validation_metrics: dict[str, float]
    holdout_metrics: dict[str, float]
    holdout_predictions: np.ndarray


def training_settings(settings: Settings) -> dict[str, Any]:
    """The settings that shape the model (not the gate, which judges it afterwards)."""
    return {
        "dataset": settings.dataset.model_dump(mode="json"),
        "split": settings.split.model_dump(mode="json"),
        "model": settings.model.model_dump(mode="json"),
    }


def training_params_hash(settings: Settings) -> str:
    return canonical_hash(training_settings(settings))


@task(name="gather-evidence", cache_policy=NO_CACHE)
def gather_evidence_task(
    snapshot: Snapshot, settings: Settings, project_dir: Path, flow_run_id: str, triggered_by: str, reason: str
) -> Evidence:
    """Who and what made this model; the training key covers what shapes the model, not who asked."""
    contract = contract_hash(project_dir / settings.contract.relative_path)
    params = training_params_hash(settings)
    code = code_version.describe()
    return Evidence(
        data_md5=snapshot.md5,
        contract_name=settings.contract.name,
        contract_version=settings.contract.version,
        contract_hash=contract,
        params_hash=params,
        code_version=code,
        training_key=lifecycle.training_key(snapshot.md5, contract, params, code),
        flow_run_id=flow_run_id,
        triggered_by=triggered_by,
        reason=reason,
    )


@task(name="split-by-time", cache_policy=NO_CACHE)
def split_task(snapshot_path: Path, settings: Settings) -> TimeSplit:
    frame = files.read_snapshot(snapshot_path)
    return split_by_time(
        frame,
        settings.dataset.time_column,
        settings.split.holdout_days,
        settings.split.validation_days,
        settings.split.min_train_days,
    )


@contextlib.contextmanager
def training_lock(ledger_url: str, model_name: str) -> Iterator[None]:
    """One training per registered model at a time: held from the data snapshot (DVC) to find-or-register,
    so that runs started together wait for each other, DVC records the snapshot once, and one training
    key never registers two versions. A lock on the ledger's database (released if this process dies),
    not a task: it spans the tasks in between."""
    logger = get_run_logger()
    with model_lock(ledger_url, model_name, on_wait=logger.info):
        yield


@task(name="find-model-for-training-key", cache_policy=NO_CACHE, **RETRYING)
def find_existing_task(registry: ModelRegistry, key: str) -> ModelVersionInfo | None:
    """Idempotence: a re-run on the same data, contract, params and code reuses its version."""
    return registry.find_by_training_key(key)


@task(name="train-challenger", cache_policy=NO_CACHE)
def train_task(split: TimeSplit, settings: Settings) -> TrainingResult:
    features = settings.dataset.features
    spec = build_feature_spec(split.train, features.numeric, features.categorical)
    model = train_model(split.train, split.validation, spec, settings.dataset.target, settings.model)
    target = settings.dataset.target
    validation_pred = predict_proba(model.booster, split.validation, spec, settings.model.threads)
    holdout_pred = predict_proba(model.booster, split.holdout, spec, settings.model.threads)
    return TrainingResult(
        model=model,
        validation_metrics=classification_metrics(split.validation[target].to_numpy(), validation_pred),
        holdout_metrics=classification_metrics(split.holdout[target].to_numpy(), holdout_pred),
        holdout_predictions=holdout_pred,
    )


def _run_params(settings: Settings, split: TimeSplit, snapshot: Snapshot, evidence: Evidence) -> dict[str, Any]:
    params: dict[str, Any] = {f"xgb.{key}": value for key, value in booster_params(settings.model).items()}
    params.update(
        {
            "xgb.num_boost_round": settings.model.xgboost.num_boost_round,
            "xgb.early_stopping_rounds": settings.model.xgboost.early_stopping_rounds,
            "dataset": settings.dataset.name,
            "contract": f"{evidence.contract_name}/v{evidence.contract_version}",
            "data_md5": snapshot.md5,
            "train_days": "..".join(split.train_days),
            "validation_days": "..".join(split.validation_days),
            "holdout_days": "..".join(split.holdout_days),
            "n_features": len(settings.dataset.features.all),
        }
    )
    return params


REFERENCE_PROFILE = "reference_profile.json"


def reference_profile(split: TimeSplit, result: TrainingResult, settings: Settings) -> ReferenceProfile:
    """What drift checks compare with once this model is champion: its whole snapshot (train,
    validation and holdout days: the data version it was trained from), its holdout scores and metrics."""
    features = settings.dataset.features
    snapshot = pd.concat([split.train, split.validation, split.holdout], ignore_index=True)
    return build_profile(
        snapshot,
        features.numeric,
        features.categorical,
        holdout_predictions=result.holdout_predictions,
        metrics=result.holdout_metrics,
        quantiles=settings.drift.quantiles,
    )


@task(name="log-and-register-challenger", cache_policy=NO_CACHE, **RETRYING)
def register_task(
    registry: ModelRegistry,
    result: TrainingResult,
    split: TimeSplit,
    snapshot: Snapshot,
    evidence: Evidence,
    settings: Settings,
    project_dir: Path,
) -> ModelVersionInfo:
    """Log the run (params, metrics, plots, evidence, native model) and register it as a new version."""
    already = registry.find_by_training_key(evidence.training_key)
    if already is not None:  # a retry after a registration that did succeed
        return already
    contract = load_contract_json(project_dir / settings.contract.relative_path)
    target = split.holdout[settings.dataset.target].to_numpy()
    label = f"{settings.dataset.name} challenger"
    metrics = {
        **{f"validation_{key}": value for key, value in result.validation_metrics.items()},
        **{f"{HOLDOUT_PREFIX}{key}": value for key, value in result.holdout_metrics.items()},
        "best_iteration": float(result.model.best_iteration),
        "rows_train": float(len(split.train)),
        "rows_validation": float(len(split.validation)),
        "rows_holdout": float(len(split.holdout)),
    }
    logged = registry.log_training_run(
        run_name=f"train-{evidence.training_key[:8]}",
        params=_run_params(settings, split, snapshot, evidence),
        metrics=metrics,
        tags=evidence.tags(),
        booster=result.model.booster,
        spec=result.model.spec,
        input_example=encode_features(split.holdout.head(5), result.model.spec),
        figures={
            "plots/roc.png": plots.roc_figure(target, result.holdout_predictions, label),
            "plots/precision_recall.png": plots.precision_recall_figure(target, result.holdout_predictions, label),
            "plots/calibration.png": plots.calibration_figure(target, result.holdout_predictions, label),
            "plots/feature_importance.png": plots.importance_figure(result.model.booster),
        },
        documents={
            "evidence.json": {
                **evidence.__dict__,
                "snapshot": snapshot.__dict__,
                "libraries": code_version.library_versions(),
                "training_settings": training_settings(settings),
            },
            "contract.json": contract,
            "feature_spec.json": result.model.spec.to_dict(),
            REFERENCE_PROFILE: reference_profile(split, result, settings).to_dict(),
        },
    )
    return registry.register(logged, evidence.tags())
