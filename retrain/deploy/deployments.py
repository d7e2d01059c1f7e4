"""The deployments a team schedules and triggers: nightly retraining, the drift check, scoring.

``retrain deploy`` registers them on a process work pool (a worker in the project's environment
imports the flows by module path, so no image or code upload is needed); ``retrain serve`` serves
the same deployments from one process, the embedded default. Parameters are the flows' typed
request models, which the Prefect UI shows as forms ("Run ▸ Custom run").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from retrain.domain.errors import RetrainError
from retrain.domain.settings import Settings

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

DRIFT_DEPLOYMENT = "drift-check"
SCORING_DEPLOYMENT = "score-batch"
FEEDBACK_DEPLOYMENT = "join-labels"
ROLLBACK_DEPLOYMENT = "on-request"
PURGE_DEPLOYMENT = "retention"


def build_deployments(
    settings: Settings, project_dir: Path, *, by_module: bool, tags: Sequence[str] = ()
) -> list[RunnerDeployment]:
    """Nightly retraining (concurrency limit 1: never two at once), hourly drift check, on-demand
    scoring, late labels joined to the stored scores, rollback (on the team stack only the worker
    may move aliases, so rollback runs there too) and the scheduled purge of what is past retention
    (the worker writes its ledger entry; ``retrain purge --stack`` runs it too)."""
    from prefect.deployments.runner import RunnerDeployment as RunnerDeploymentType
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    from flows.drift import DriftRequest, drift
    from flows.feedback import feedback
    from flows.purge import PurgeRequest, purge
    from flows.rollback import rollback
    from flows.scoring import scoring
    from flows.training import TrainingRequest, training

    entrypoint = EntrypointType.MODULE_PATH if by_module else EntrypointType.FILE_PATH
    schedules = settings.schedules
    nightly = settings.retraining.deployment.split("/", 1)[1]
    project = str(project_dir)
    labels = ["retrain", *tags]  # on every run of the deployment too
    built = [
        training.to_deployment(
            name=nightly,
            schedules=[Cron(schedules.retrain_cron, timezone=schedules.timezone)],
            parameters={"request": TrainingRequest(project_dir=project, triggered_by="schedule", reason="nightly")},
            concurrency_limit=1,
            description="Retrain on every validated batch, compare with the champion, gate, ask the reviewers.",
            tags=labels,
            entrypoint_type=entrypoint,
        ),
        drift.to_deployment(
            name=DRIFT_DEPLOYMENT,
            schedules=[Cron(schedules.drift_cron, timezone=schedules.timezone)],
            parameters={"request": DriftRequest(project_dir=project, act=True)},  # the schedule acts
            concurrency_limit=1,
            description="Compare the newest batches with the champion's reference; retrain when it drifted.",
            tags=labels,
            entrypoint_type=entrypoint,
        ),
        scoring.to_deployment(
            name=SCORING_DEPLOYMENT,
            parameters={"request": {"project_dir": project, "batch": ""}},
            description="Score a batch with the champion and, in shadow, the challenger.",
            tags=labels,
            entrypoint_type=entrypoint,
        ),
        feedback.to_deployment(
            name=FEEDBACK_DEPLOYMENT,
            parameters={"request": {"project_dir": project, "labels": ""}},
            concurrency_limit=1,
            description="Join labels that arrived late (id and label) to the stored scores, once.",
            tags=labels,
            entrypoint_type=entrypoint,
        ),
        rollback.to_deployment(
            name=ROLLBACK_DEPLOYMENT,
            parameters={"request": {"project_dir": project}},  # the form asks the reason
            concurrency_limit=1,
            description="Move champion back to previous-champion; say why (kept in the ledger).",
            tags=labels,
            entrypoint_type=entrypoint,
        ),
        purge.to_deployment(
            name=PURGE_DEPLOYMENT,
            schedules=[Cron(schedules.purge_cron, timezone=schedules.timezone)],
            parameters={"request": PurgeRequest(project_dir=project)},  # "scheduled retention", by "schedule"
            concurrency_limit=1,
            description="Delete what is past retention (workspace, DVC cache and remote); the champion's "
            "data stays; recorded in the ledger.",
            tags=labels,
            entrypoint_type=entrypoint,
        ),
    ]
    return [deployment for deployment in built if isinstance(deployment, RunnerDeploymentType)]


def ensure_process_pool(name: str) -> bool:
    """Create the process work pool if it is missing; True when it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            return True


def deploy_all(settings: Settings, project_dir: Path, on_event: Callable[[str], None] | None = None) -> list[str]:
    """Register every deployment on the work pool from params; returns 'flow/deployment' names.

    On a Prefect server that outlives this process, with a team webhook configured, the server's
    automation is installed first and the deployments carry its tag (failed and crashed runs are then
    told by the server, see :mod:`retrain.adapters.prefect_automations`)."""
    from prefect.deployments.runner import deploy

    ensure_process_pool(settings.schedules.work_pool)
    tags = _failure_automation_tags(on_event or (lambda _: None))
    deployments = build_deployments(settings, project_dir, by_module=True, tags=tags)
    deploy(
        *deployments,
        work_pool_name=settings.schedules.work_pool,
        build=False,
        push=False,
        print_next_steps_message=False,
        ignore_warnings=True,
    )
    names = [f"{d.flow_name}/{d.name}" for d in deployments]
    missing = _missing_deployments(names)
    if missing:  # prefect's deploy() prints a failure table but raises nothing
        raise RetrainError(f"the Prefect API refused the deployments {', '.join(missing)} (see the table above)")
    return names


def _failure_automation_tags(on_event: Callable[[str], None]) -> list[str]:
    """The automation's tag once it is installed; none without a webhook or a lasting server, or when
    the server refused it (the flows' hooks then tell, as in the embedded default)."""
    if not os.environ.get("PREFECT_API_URL"):
        return []
    from prefect.settings import PREFECT_UI_URL

    from retrain.adapters.notify import channels_from_env
    from retrain.adapters.prefect_automations import ensure_failure_automation

    webhook = channels_from_env().webhook
    if not webhook:
        return []
    try:
        installed = ensure_failure_automation(webhook, PREFECT_UI_URL.value())
    except Exception as error:  # the deployments still deploy; their hooks tell of failures
        on_event(f"warning: the failure automation was not installed ({type(error).__name__}): the flows' hooks tell")
        return []
    on_event(f"failed and crashed runs are told by the Prefect server (automation '{installed.name}')")
    return [installed.tag]


def _missing_deployments(names: list[str]) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    missing = []
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                client.read_deployment_by_name(name)
            except ObjectNotFound:
                missing.append(name)
    return missing


def serve_all(settings: Settings, project_dir: Path) -> None:
    """Serve every deployment from this process until interrupted (the embedded default)."""
    from prefect import serve

    serve(*build_deployments(settings, project_dir, by_module=False), print_starting_message=True)
