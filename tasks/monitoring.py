"""Monitoring tasks: read a window of batches, compare it with the champion's reference profile,
decide (debounced) whether to retrain, trigger the training deployment, and shadow-score batches.

Thin Prefect tasks over :mod:`retrain.application.monitoring`; what only the orchestrator knows
(training runs in flight, deployments) comes from :mod:`retrain.adapters.prefect_api`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retrain.adapters import prefect_api
from retrain.adapters.ledger import DecisionRecord
from retrain.adapters.registry import ModelRegistry
from retrain.application import monitoring
from retrain.application.monitoring import Window
from retrain.domain import tags
from retrain.domain.drift import DriftReport
from retrain.domain.lifecycle import ModelVersionInfo
from retrain.domain.profile import ReferenceProfile
from retrain.domain.scoring import BatchPerformance
from retrain.domain.settings import Settings
from retrain.domain.shadow import ShadowComparison
from tasks.policy import RETRYING


@task(name="read-window", cache_policy=NO_CACHE)
def read_window_task(project_dir: Path, settings: Settings, paths: list[str]) -> Window:
    """The named files, or else the newest ``drift.window_batches`` batches of the project."""
    return monitoring.read_window(project_dir, settings, paths)


@task(name="champion-reference", cache_policy=NO_CACHE, **RETRYING)
def reference_task(registry: ModelRegistry) -> tuple[ModelVersionInfo, ReferenceProfile]:
    """The champion and the reference profile stored with it (promotion re-baselines by itself)."""
    return monitoring.champion_reference(registry)


@task(name="detect-drift", cache_policy=NO_CACHE, **RETRYING)
def detect_drift_task(
    profile: ReferenceProfile, window: Window, predictions: np.ndarray, settings: Settings, ledger_url: str
) -> DriftReport:
    """The drift report and the trigger's signals (the ledger says when the concept last changed)."""
    changed = monitoring.last_change(ledger_url, settings)
    return monitoring.check_drift(profile, window, predictions, settings, changed)


@task(name="decide-retraining", cache_policy=NO_CACHE, **RETRYING)
def decide_task(
    ledger_url: str,
    settings: Settings,
    report: DriftReport,
    champion: ModelVersionInfo,
    window: Window,
    drift_run_id: str,
    project_dir: Path,
) -> DecisionRecord:
    """Decide and record in one locked transaction: simultaneous checks cannot both retrain."""
    training_runs = prefect_api.flow_runs_in_states(monitoring.TRAINING_FLOW, monitoring.TRAINING_RUN_STATES)
    return monitoring.decide_and_record(
        ledger_url, settings, report, champion, window, drift_run_id, project_dir, training_runs
    )


@task(name="publish-drift", cache_policy=NO_CACHE, **RETRYING)
def publish_drift_task(
    registry: ModelRegistry,
    settings: Settings,
    profile: ReferenceProfile,
    window: Window,
    report: DriftReport,
    record: DecisionRecord,
    champion: ModelVersionInfo,
    reports_dir: Path,
) -> str:
    """Markdown artifact (per-feature table by severity), a plot of the worst features in MLflow, JSON."""
    create_markdown_artifact(
        monitoring.drift_markdown(report, record, champion, window),
        key=tags.ARTIFACT_DRIFT_REPORT,
        description="Drift vs the champion",
    )
    return monitoring.record_drift(registry, settings, profile, window, report, record, champion, reports_dir)


@task(name="trigger-retraining", cache_policy=NO_CACHE, **RETRYING)
def trigger_deployment_task(
    settings: Settings, project_dir: Path, record: DecisionRecord, drift_run_id: str
) -> str | None:
    """Run the training deployment (idempotent per decision); None when it is not deployed here."""
    return prefect_api.start_deployment_run(
        settings.retraining.deployment,
        parameters={"request": monitoring.retraining_request(project_dir, record, drift_run_id)},
        idempotency_key=monitoring.retraining_idempotency_key(settings, record),
        tags=["retrain", "drift-triggered"],
    )


@task(name="shadow-compare", cache_policy=NO_CACHE)
def shadow_task(champion: np.ndarray, challenger: np.ndarray, window: Window, settings: Settings) -> ShadowComparison:
    return monitoring.shadow_comparison(champion, challenger, window, settings)


@task(name="champion-performance", cache_policy=NO_CACHE)
def champion_performance_task(scores: np.ndarray, window: Window, settings: Settings) -> BatchPerformance:
    """The champion's metrics on the batch's labelled rows (none without labels)."""
    return monitoring.champion_performance(scores, window, settings)


@task(name="unseen-categories", cache_policy=NO_CACHE, **RETRYING)
def unseen_categories_task(registry: ModelRegistry, version: ModelVersionInfo, window: Window) -> dict[str, int]:
    """Per categorical feature, the rows with a category the model never saw (scored as missing)."""
    return monitoring.unseen_in_window(registry, version, window)


@task(name="current-challenger", cache_policy=NO_CACHE, **RETRYING)
def shadow_model_task(registry: ModelRegistry, champion: ModelVersionInfo) -> ModelVersionInfo | None:
    return monitoring.shadow_model(registry, champion)


@task(name="write-predictions", cache_policy=NO_CACHE)
def write_predictions_task(
    window: Window,
    settings: Settings,
    champion: ModelVersionInfo,
    scores: np.ndarray,
    challenger: ModelVersionInfo | None,
    shadow: np.ndarray | None,
    output: Path,
) -> Path:
    """Predictions with the model version beside them (and the shadow's, never served)."""
    return monitoring.write_predictions(window, settings, champion, scores, challenger, shadow, output)


@task(name="record-scoring", cache_policy=NO_CACHE, **RETRYING)
def record_scoring_task(registry: ModelRegistry, summary: dict[str, Any]) -> str:
    """The scoring pass as a monitoring run: rows, shadow agreement and, with labels, metric gains."""
    return monitoring.record_scoring(registry, summary)
