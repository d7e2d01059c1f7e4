"""The rollback flow: ``champion`` back to ``previous-champion``, recorded in the ledger.

A flow (not a script) so that a rollback shows in the Prefect UI with who asked for it and why.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, runtime
from pydantic import BaseModel, Field

from retrain.adapters.environment import resolve_runtime
from retrain.adapters.registry import ModelRegistry
from retrain.application.results import RollbackResult
from retrain.domain.notices import rolled_back
from tasks.data import load_settings_task
from tasks.leases import RELEASE_LEASE, lease_and_reap_task
from tasks.notify import FAILURE_HOOKS, tell
from tasks.policy import merged_hooks
from tasks.promotion import publish_rollback_task, roll_back_task


class RollbackRequest(BaseModel):
    reason: str = Field(min_length=3, description="Why the champion is rolled back (kept in the ledger).")
    requested_by: str = Field(default="unknown", description="Who asks for the rollback.")
    project_dir: str | None = Field(default=None, description="Project holding params.yaml.")


@flow(
    name="rollback",
    log_prints=True,
    persist_result=True,
    result_serializer="json",
    **merged_hooks(RELEASE_LEASE, FAILURE_HOOKS),
)
def rollback(request: RollbackRequest) -> RollbackResult:
    where = resolve_runtime(project_dir=Path(request.project_dir) if request.project_dir else None)
    settings = load_settings_task(where.params_path)
    registry = ModelRegistry.for_project(where, settings)
    lease_and_reap_task(where.ledger_url, settings, "rollback", str(where.project_dir), registry)
    flow_run_id = str(runtime.flow_run.id or "local")
    outcome = roll_back_task(registry, where.ledger_url, request.requested_by, request.reason, flow_run_id)
    publish_rollback_task(settings.model.registered_name, outcome, request.requested_by, request.reason)
    print(f"champion rolled back from v{outcome.demoted} to v{outcome.restored} (ledger entry {outcome.position})")
    name = settings.model.registered_name
    tell(rolled_back(name, outcome.demoted, outcome.restored, request.reason, request.requested_by))
    return RollbackResult(demoted=outcome.demoted, restored=outcome.restored, ledger_entry=outcome.position)
