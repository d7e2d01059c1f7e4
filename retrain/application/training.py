"""Training use cases for the flow: evidence, split, fit (the one recipe), log and register once.

Plain functions (no Prefect): ``tasks/training.py`` wraps each in a task. The split and the fit are
the steps of :mod:`retrain.domain.fitting`, the recipe ``retrain fit`` and ``retrain reproduce`` use
too, so a registered model can be rebuilt byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.adapters import code_version, plots, privacy_salt
from retrain.adapters.contracts import contract_hash, load_contract_json
from retrain.adapters.registry import HOLDOUT_PREFIX, ModelRegistry
from retrain.adapters.system_metrics import sampled_resources
from retrain.application.engines import boosted_where, split_snapshot_file, training_engine
from retrain.domain import fitting
from retrain.domain.bootstrap import metric_draws
from retrain.domain.drift import prediction_day_spread
from retrain.domain.estimation import estimable, estimate
from retrain.domain.evidence import (
    CONTRACT_DOCUMENT,
    EVIDENCE_DOCUMENT,
    FEATURE_SPEC_DOCUMENT,
    REFERENCE_PROFILE,
    Evidence,
    Snapshot,
    evidence_document,
    gather_evidence,
)
from retrain.domain.features import encode_features
from retrain.domain.fitting import FittedSnapshot
from retrain.domain.lifecycle import ModelVersionInfo
from retrain.domain.privacy import NEW_SALT_FLAG, synthetic_example
from retrain.domain.profile import ReferenceProfile, build_profile
from retrain.domain.sensitive import redacted_contract
from retrain.domain.settings import Settings
from retrain.domain.splitting import TimeSplit
from retrain.domain.task import task_for
from retrain.domain.training import booster_params, feature_gains


def evidence_for(
    snapshot: Snapshot,
    settings: Settings,
    project_dir: Path,
    flow_run_id: str,
    triggered_by: str,
    reason: str,
    state_dir: Path,
    recorded_salts: Sequence[tuple[str, str]] = (),
    new_salt: bool = False,
) -> Evidence:
    """Gather the contract hash and code version, then build the evidence (and its training key).
    With sensitive columns to tokenise, the privacy salt is created here when no registered version
    records one (``recorded_salts``), or on purpose (``new_salt``, said in the reason); a lost or
    changed salt otherwise stops the run naming the salt to restore. Its id is part of the training
    key: another salt makes other tokens, so another model."""
    tokens = privacy_salt.training_tokeniser(state_dir, settings.tokenised_columns, recorded_salts, new_salt=new_salt)
    if new_salt and tokens.salt_id is not None and all(tokens.salt_id != known for _, known in recorded_salts):
        reason = f"{reason} (new privacy salt {tokens.salt_id}: {NEW_SALT_FLAG})"
    return gather_evidence(
        snapshot,
        settings,
        contract_hash=contract_hash(project_dir / settings.contract.relative_path),
        code_version=code_version.describe(),
        flow_run_id=flow_run_id,
        triggered_by=triggered_by,
        reason=reason,
        salt_id=tokens.salt_id,
    )


def recorded_salts(registry: ModelRegistry, settings: Settings, state_dir: Path) -> list[tuple[str, str]]:
    """``(version, salt id)`` of the registered versions a training's salt is checked against: their
    tags; when none has one and there is no salt here (one would be created), also the feature specs
    of versions registered before the tag existed (slower, and only then)."""
    if not settings.tokenised_columns:
        return []
    tagged = registry.recorded_salt_ids()
    if tagged or privacy_salt.read_salt(state_dir) is not None:
        return tagged
    return registry.recorded_salt_ids(read_specs=True)


def split_training_set(snapshot_path: Path, settings: Settings, state_dir: Path) -> TimeSplit:
    """Step one of the recipe on the snapshot file (the flow needs the split even when it trains nothing),
    sensitive columns as tokens from here on (the snapshot itself stays raw: it is the data store)."""
    tokens = privacy_salt.tokeniser(state_dir, settings.tokenised_columns)
    return split_snapshot_file(snapshot_path, settings.dataset, settings.split, settings.model, tokens)


def check_engine(settings: Settings, dask_scheduler: str | None) -> str:
    """What will run the boosting rounds, checked before the run does any work: for Dask, the scheduler
    answers and has the workers ``model.dask_workers`` asks for (else a clear error, nothing validated)."""
    with training_engine(settings.model, dask_scheduler) as engine:
        return engine.describe()


def fit_challenger(split: TimeSplit, settings: Settings, dask_scheduler: str | None = None) -> FittedSnapshot:
    """Step two of the recipe: the challenger, fitted and scored on the validation and holdout days
    (the boosting rounds where ``model.engine`` says: here, or the Dask cluster at ``dask_scheduler``)."""
    with training_engine(settings.model, dask_scheduler) as engine, sampled_resources() as samples:
        fitted = fitting.fit_split(split, settings.dataset, settings.model, engine)
    return replace(fitted, resources=tuple(samples))


def run_params(settings: Settings, split: TimeSplit, snapshot: Snapshot, evidence: Evidence) -> dict[str, Any]:
    """The MLflow params of a training run: every booster parameter, the data and the split's days."""
    params: dict[str, Any] = {
        f"xgb.{key}": value for key, value in booster_params(settings.model, task_for(settings.dataset)).items()
    }
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
            "boosting": boosted_where(settings.model, len(split.train), len(settings.dataset.features.all)),
        }
    )
    return params


def reference_profile(fitted: FittedSnapshot, settings: Settings) -> ReferenceProfile:
    """What drift checks compare with once this model is champion: its whole snapshot (train,
    validation and holdout days: the data version it was trained from), its holdout scores (the
    task's 1-D summary per row) and metrics, and what the trigger weighs drift by: the model's
    feature importance, its primary metric estimated from its own holdout probabilities (classifiers)
    and its scores' day-to-day movement between holdout days."""
    features = settings.dataset.features
    split = fitted.split
    snapshot = [split.train, split.validation, split.holdout]  # profiled a column at a time, never joined whole
    task = task_for(settings.dataset)
    metric = settings.gate.primary_metric
    scores = task.score(fitted.holdout_predictions)
    days = pd.to_datetime(split.holdout[settings.dataset.time_column]).dt.normalize()
    return build_profile(
        snapshot,
        features.numeric,
        features.categorical,
        sensitive=settings.privacy.sensitive,
        holdout_predictions=scores,
        metrics=fitted.holdout_metrics,
        quantiles=settings.drift.quantiles,
        importance=feature_gains(fitted.model.booster),
        estimate=estimate(metric, task.kind, fitted.holdout_predictions, seed=settings.model.seed)
        if estimable(task.kind, metric)
        else None,
        prediction_spread=prediction_day_spread(scores, days.to_numpy(), settings.drift.psi_bins),
        trained_from=split.train_days[0],
        trained_until=split.train_days[1],
        data_until=split.holdout_days[1],
        metric_errors=holdout_metric_errors(fitted, settings),
    )


def holdout_metric_errors(fitted: FittedSnapshot, settings: Settings, resamples: int = 200) -> dict[str, float]:
    """The bootstrap standard error of the primary metric on the holdout: the drift check's labels are
    compared with a holdout value that is a sample too (:func:`retrain.domain.drift.performance_drift`)."""
    task = task_for(settings.dataset)
    metric = settings.gate.primary_metric
    labels = task.encode(fitted.split.holdout[settings.dataset.target], "target of the holdout rows")
    if not task.evaluable(labels):
        return {}
    _value, draws = metric_draws(
        metric, labels, fitted.holdout_predictions, resamples=resamples, seed=settings.model.seed
    )
    return {metric: float(np.std(draws, ddof=1))}


def register_challenger(
    registry: ModelRegistry,
    fitted: FittedSnapshot,
    snapshot: Snapshot,
    evidence: Evidence,
    settings: Settings,
    project_dir: Path,
) -> ModelVersionInfo:
    """Log the run (params, metrics, plots, evidence, native model) and register it as a new version.

    Idempotent: a retry after a registration that did succeed finds that version by its training key.
    """
    already = registry.find_by_training_key(evidence.training_key)
    if already is not None:
        return already
    split = fitted.split
    contract = load_contract_json(project_dir / settings.contract.relative_path)
    task = task_for(settings.dataset)
    target = task.encode(split.holdout[settings.dataset.target], "target of the holdout rows")
    # the model's own plots name the model, not a role: this version may be champion tomorrow, and its
    # number is not known before it is registered (the comparison, drawn once judged, names both)
    label = settings.model.registered_name
    metrics = {
        **{f"validation_{key}": value for key, value in fitted.validation_metrics.items()},
        **{f"{HOLDOUT_PREFIX}{key}": value for key, value in fitted.holdout_metrics.items()},
        "best_iteration": float(fitted.model.best_iteration),
        "rows_train": float(len(split.train)),
        "rows_validation": float(len(split.validation)),
        "rows_holdout": float(len(split.holdout)),
    }
    predictions = fitted.holdout_predictions
    profile = reference_profile(fitted, settings)
    sensitive = settings.privacy.sensitive
    logged = registry.log_training_run(
        run_name=f"train-{evidence.training_key[:8]}",
        params=run_params(settings, split, snapshot, evidence),
        metrics=metrics,
        tags=evidence.tags(),
        booster=fitted.model.booster,
        spec=fitted.model.spec,
        input_example=encode_features(synthetic_example(profile, fitted.model.spec, sensitive), fitted.model.spec),
        figures={
            **plots.evaluation_figures(task, target, predictions, label),
            "plots/feature_importance.png": plots.importance_figure(fitted.model.booster),
        },
        documents={
            EVIDENCE_DOCUMENT: evidence_document(evidence, snapshot, code_version.library_versions(), settings),
            CONTRACT_DOCUMENT: redacted_contract(contract, sensitive) if sensitive else contract,
            FEATURE_SPEC_DOCUMENT: fitted.model.spec.to_dict(),
            REFERENCE_PROFILE: profile.to_dict(),
        },
        resources=fitted.resources,
    )
    return registry.register(logged, evidence.version_tags())
