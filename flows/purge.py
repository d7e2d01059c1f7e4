"""The purge flow: delete the data past ``retention:`` (workspace, DVC cache and remote), keep what the
champion and previous champion need to reproduce, and record what went in the ledger.

A flow (not a script) so that every purge, scheduled or asked for, shows in the Prefect UI with who
asked and why, and runs on the team stack's worker, the only account that writes the ledger.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, runtime
from pydantic import BaseModel, Field

from retrain.adapters.environment import resolve_runtime
from retrain.adapters.registry import ModelRegistry
from retrain.application.results import PurgeReport
from retrain.domain.retention import SCHEDULED_REASON
from tasks.data import load_settings_task
from tasks.leases import RELEASE_LEASE, lease_and_reap_task
from tasks.notify import FAILURE_HOOKS
from tasks.policy import merged_hooks
from tasks.retention import purge_task


class PurgeRequest(BaseModel):
    reason: str = Field(default=SCHEDULED_REASON, min_length=3, description="Why (kept in the ledger).")
    requested_by: str = Field(default="schedule", description="Who asks for the purge.")
    dry_run: bool = Field(default=False, description="Only say what would be deleted and kept.")
    project_dir: str | None = Field(default=None, description="Project holding params.yaml.")


@flow(
    name="purge",
    log_prints=True,
    persist_result=True,
    result_serializer="json",
    **merged_hooks(RELEASE_LEASE, FAILURE_HOOKS),
)
def purge(request: PurgeRequest) -> PurgeReport:
    where = resolve_runtime(project_dir=Path(request.project_dir) if request.project_dir else None)
    settings = load_settings_task(where.params_path)
    registry = ModelRegistry.for_project(where, settings)
    lease_and_reap_task(where.ledger_url, settings, "purge", str(where.project_dir), registry)
    flow_run_id = str(runtime.flow_run.id or "local")
    report = purge_task(where, settings, registry, request.requested_by, request.reason, request.dry_run, flow_run_id)
    print(f"purge ({request.reason}): {report.deleted.get('summary', '')}")
    return report
