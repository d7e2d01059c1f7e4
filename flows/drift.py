"""The drift flow: newest batches vs the champion's reference → debounced decision → retraining.

Asked only to report (``act`` false: ``retrain drift`` without ``--act``), it stops after the report:
the MLflow run and the artifact, no decision recorded, nothing started, final state "Reported".
Wiring only. Retraining runs the training deployment (``retraining.deployment``) when it exists,
with an idempotency key per decision; under the embedded default (nothing deployed) it runs the
training flow in-process, as a subflow of this run, so the UI links the two.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

from prefect import flow, runtime
from prefect.states import Completed
from pydantic import BaseModel, Field

from flows.training import TrainingRequest, training
from retrain.adapters.environment import resolve_runtime
from retrain.adapters.registry import ModelRegistry
from retrain.application.monitoring import drift_outcome, drift_result, retraining_request
from retrain.application.results import DriftResult
from retrain.domain.notices import drift_decision
from retrain.domain.runs import decision_tag, drift_run_name, drift_state_name
from tasks.data import check_row_thresholds_task, load_settings_task
from tasks.labels import label_run_task
from tasks.leases import RELEASE_LEASE, lease_and_reap_task
from tasks.monitoring import (
    decide_task,
    detect_drift_task,
    publish_drift_task,
    reference_task,
    scan_window_task,
    trigger_deployment_task,
)
from tasks.notify import FAILURE_HOOKS, tell
from tasks.policy import merged_hooks

#: Drift decisions the team is told of: a retraining started, or one the weekly budget held back.
TOLD_DECISIONS = frozenset({"retrain", "budget"})


class DriftRequest(BaseModel):
    """What to check; the defaults check the newest batches and act on the decision (the schedule's
    runs act; the CLI reports unless told ``--act``)."""

    project_dir: str | None = Field(default=None, description="Project holding params.yaml.")
    batches: list[str] = Field(
        default_factory=list, description="Batch files to check; empty means the newest drift.window_batches."
    )
    act: bool = Field(
        default=True,
        description="Decide (recorded in the decision log) and start the retraining the decision calls for; "
        "false: report only, nothing decided, recorded or started.",
    )


@flow(
    name="drift",
    log_prints=True,
    persist_result=True,
    result_serializer="json",
    **merged_hooks(RELEASE_LEASE, FAILURE_HOOKS),
)
def drift(request: DriftRequest | None = None) -> DriftResult:
    request = request or DriftRequest()
    where = resolve_runtime(project_dir=Path(request.project_dir) if request.project_dir else None)
    flow_run_id = str(runtime.flow_run.id or "local")
    settings = load_settings_task(where.params_path)
    check_row_thresholds_task(settings, where.project_dir)
    registry = ModelRegistry.for_project(where, settings)
    lease_and_reap_task(where.ledger_url, settings, "drift", str(where.project_dir), registry)

    champion, profile = reference_task(registry)
    window = scan_window_task(where.project_dir, settings, request.batches, registry, champion, profile)
    report = detect_drift_task(profile, window, settings, where.ledger_url)
    # only a check that acts decides: one that reports leaves the decision log (cooldown, budget,
    # catch-up) as it found it
    record = (
        decide_task(where.ledger_url, settings, report, champion, window, flow_run_id, where.project_dir)
        if request.act
        else None
    )
    outcome = drift_outcome(report, record)
    monitoring_run = publish_drift_task(
        registry,
        settings,
        profile,
        window,
        report,
        outcome,
        champion,
        where.reports_dir / flow_run_id,
        where.mlflow_ui_url,
    )
    result = {**drift_result(report, outcome, champion, window), "mlflow_run": monitoring_run, "training": None}
    said = outcome.note or f"decided by {report.signal}: {outcome.decision}"
    print(f"drift share {report.drift_share:.0%} of the champion's importance; {said} ({'; '.join(outcome.reasons)})")
    if record is not None and record.decision == "retrain":
        deployed_run = trigger_deployment_task(settings, where.project_dir, record, flow_run_id)
        if deployed_run is not None:
            result["training"] = {"flow_run_id": deployed_run, "via": settings.retraining.deployment}
        else:
            trained = training(TrainingRequest(**retraining_request(where.project_dir, record, flow_run_id)))
            result["training"] = {
                **trained.outcome.model_dump(),
                "flow_run_id": trained.flow_run_id,
                "via": "in-process",
            }
    if outcome.decision in TOLD_DECISIONS:
        started = (result["training"] or {}).get("flow_run_id")
        tell(drift_decision(settings.model.registered_name, outcome.decision, outcome.reasons, started))
    # the runs list says what the check decided: a named final state, a name, model/decision tags
    model = settings.model.registered_name
    ended = drift_state_name(outcome.decision, outcome.acted)
    name = drift_run_name(model, champion.version if champion else None, window.batches)
    label_run_task(flow_run_id, name, [f"model:{model}", decision_tag(ended)])
    headline = f"drift share {report.drift_share:.0%}: {outcome.note or outcome.decision}"
    return cast(DriftResult, Completed(data=DriftResult.model_validate(result), name=ended, message=headline))
