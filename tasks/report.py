"""The dashboard task: gather, draw, write, log to MLflow, and link it from the run's artifacts."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retrain.adapters import prefect_api
from retrain.adapters.registry import ModelRegistry
from retrain.application import report
from retrain.domain import tags
from retrain.domain.settings import Settings
from tasks.policy import RETRYING

#: The flows whose finished runs' durations the dashboard plots.
TIMED_FLOWS = ("training", "scoring", "drift", "feedback", "rollback")


@task(name="write-dashboard", cache_policy=NO_CACHE, **RETRYING)
def dashboard_task(
    registry: ModelRegistry,
    ledger_url: str,
    settings: Settings,
    project_dir: Path,
    output: Path,
    mlflow_ui_url: str | None,
) -> report.DashboardReport:
    durations = prefect_api.finished_run_durations(TIMED_FLOWS, str(project_dir))
    board = report.build_dashboard(registry, ledger_url, settings, durations)
    written = report.write_dashboard(registry, board, output)
    create_markdown_artifact(
        f"# Dashboard of {registry.model_name}\n\nWritten to `{written.path}`; {written.versions} version(s), "
        f"{written.drift_checks} drift check(s), {written.decisions} decision(s); figures: "
        f"{', '.join(written.figures) or 'none yet'}.",
        key=tags.ARTIFACT_DASHBOARD,
        description="Monitoring dashboard",
    )
    if mlflow_ui_url:
        experiment = registry.experiment_id(registry.monitoring_experiment)
        create_link_artifact(
            f"{mlflow_ui_url.rstrip('/')}/#/experiments/{experiment}/runs/{written.mlflow_run}/artifacts",
            link_text="dashboard.html in MLflow",
            key=tags.ARTIFACT_DASHBOARD_LINK,
            description="The dashboard as an MLflow artifact",
        )
    return written
