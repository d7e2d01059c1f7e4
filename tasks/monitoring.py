"""Monitoring tasks: read a window of batches, compare it with the champion's reference profile,
decide (debounced) whether to retrain, trigger the training deployment, and shadow-score batches.

Thin Prefect tasks over :mod:`retrain.application.monitoring`; what only the orchestrator knows
(training runs in flight, deployments) comes from :mod:`retrain.adapters.prefect_api`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retrain.adapters import prefect_api
from retrain.adapters.environment import Runtime
from retrain.adapters.ledger import DecisionRecord
from retrain.adapters.registry import ModelRegistry
from retrain.application import monitoring
from retrain.application.monitoring import DriftOutcome, ScoredBatch, Window
from retrain.application.rollout import Routing
from retrain.domain import tags
from retrain.domain.drift import DriftReport
from retrain.domain.feedback import FeedbackReport
from retrain.domain.lifecycle import ModelVersionInfo
from retrain.domain.profile import ReferenceProfile
from retrain.domain.scoring import BatchPerformance
from retrain.domain.settings import Settings
from retrain.domain.shadow import ShadowComparison
from tasks.policy import RETRYING


@task(name="read-window", cache_policy=NO_CACHE, **RETRYING)
def scan_window_task(
    project_dir: Path,
    settings: Settings,
    paths: list[str],
    registry: ModelRegistry,
    champion: ModelVersionInfo,
    profile: ReferenceProfile,
) -> Window:
    """The named files, or else the newest ``drift.window_batches`` batches of the project, read a piece at
    a time: the features counted against the reference, each row predicted by the registered champion."""
    return monitoring.scan_window(project_dir, settings, paths, registry, champion, profile)


@task(name="champion-reference", cache_policy=NO_CACHE, **RETRYING)
def reference_task(registry: ModelRegistry) -> tuple[ModelVersionInfo, ReferenceProfile]:
    """The champion and the reference profile stored with it (promotion re-baselines by itself)."""
    return monitoring.champion_reference(registry)


@task(name="detect-drift", cache_policy=NO_CACHE, **RETRYING)
def detect_drift_task(profile: ReferenceProfile, window: Window, settings: Settings, ledger_url: str) -> DriftReport:
    """The drift report and the trigger's signals (the ledger says when the concept last changed)."""
    changed = monitoring.last_change(ledger_url, settings)
    return monitoring.check_drift(profile, window, settings, changed)


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
    outcome: DriftOutcome,
    champion: ModelVersionInfo,
    reports_dir: Path,
    mlflow_ui_url: str,
) -> str:
    """The MLflow monitoring run (the grid of every drifted feature's distributions, the JSON), then the
    Markdown artifact (per-row table by severity) that links the grid; returns the run's id."""
    recorded = monitoring.record_drift(
        registry, settings, profile, window, report, outcome, champion, reports_dir, mlflow_ui_url
    )
    create_markdown_artifact(
        monitoring.drift_markdown(report, outcome, champion, window, recorded),
        key=tags.ARTIFACT_DRIFT_REPORT,
        description="Drift vs the champion" + (" (report only)" if not outcome.acted else ""),
    )
    return recorded.run_id


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


@task(name="score-batch", cache_policy=NO_CACHE, **RETRYING)
def score_batch_task(
    registry: ModelRegistry,
    settings: Settings,
    champion: ModelVersionInfo,
    challenger: ModelVersionInfo | None,
    batch: Path,
    output: Path,
    routing: Routing | None = None,
) -> ScoredBatch:
    """Score the batch a piece at a time with the registered champion (and the shadow challenger; under a
    rollout, the candidate serves its rows), writing each piece's predictions as it comes; a re-run
    rewrites the whole file."""
    return monitoring.score_batch(registry, settings, champion, challenger, batch, output, routing)


@task(name="shadow-compare", cache_policy=NO_CACHE)
def shadow_task(scored: ScoredBatch, settings: Settings) -> ShadowComparison:
    return monitoring.shadow_comparison(scored, settings)


@task(name="champion-performance", cache_policy=NO_CACHE)
def champion_performance_task(scored: ScoredBatch, settings: Settings) -> BatchPerformance:
    """The champion's metrics on the batch's labelled rows (none without labels)."""
    return monitoring.champion_performance(scored, settings)


@task(name="current-challenger", cache_policy=NO_CACHE, **RETRYING)
def shadow_model_task(registry: ModelRegistry, champion: ModelVersionInfo) -> ModelVersionInfo | None:
    return monitoring.shadow_model(registry, champion)


@task(name="record-scoring", cache_policy=NO_CACHE, **RETRYING)
def record_scoring_task(registry: ModelRegistry, summary: dict[str, Any]) -> str:
    """The scoring pass as a monitoring run: rows, shadow agreement and, with labels, metric gains."""
    return monitoring.record_scoring(registry, summary)


@task(name="join-feedback", cache_policy=NO_CACHE, **RETRYING)
def join_feedback_task(where: Runtime, settings: Settings, labels: Path, scores: Path | None) -> FeedbackReport:
    """Idempotent: a retry (or the same file sent again) finds its labels already known."""
    from retrain.application.feedback import apply_feedback

    return apply_feedback(where, settings, labels, scores)


@task(name="publish-feedback", cache_policy=NO_CACHE)
def publish_feedback_task(report: FeedbackReport) -> None:
    lines = [f"# Late labels: {report.labels_file}", "", report.summary().replace("\n", "\n\n")]
    create_markdown_artifact("\n".join(lines), key=tags.ARTIFACT_FEEDBACK_REPORT, description="Late labels joined")
