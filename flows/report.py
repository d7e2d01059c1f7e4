"""The report flow: one self-contained HTML dashboard of a model's life (metrics per version and on
real traffic, drift per batch, decisions, run durations, training CPU and memory), written under the
state dir, logged to MLflow and linked from the run's artifacts. Wiring only."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from pydantic import BaseModel, Field

from retrain.adapters.environment import resolve_runtime
from retrain.adapters.registry import ModelRegistry
from retrain.application.report import DASHBOARD_FILE, DashboardReport
from tasks.data import load_settings_task
from tasks.notify import FAILURE_HOOKS
from tasks.report import dashboard_task


class ReportRequest(BaseModel):
    project_dir: str | None = Field(default=None, description="Project holding params.yaml.")
    output: str | None = Field(default=None, description="HTML file to write; default under the state dir.")


@flow(name="report", log_prints=True, **FAILURE_HOOKS)
def report(request: ReportRequest) -> DashboardReport:
    where = resolve_runtime(project_dir=Path(request.project_dir) if request.project_dir else None)
    settings = load_settings_task(where.params_path)
    registry = ModelRegistry.for_project(where, settings)
    output = Path(request.output) if request.output else where.reports_dir / DASHBOARD_FILE
    written = dashboard_task(registry, where.ledger_url, settings, where.project_dir, output, where.mlflow_ui_url)
    print(f"dashboard: {written.path}")
    return written
