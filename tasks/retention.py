"""The retention task: delete what is past ``retention:`` and record it (thin, over
:mod:`retrain.application.retention`); no retries: a purge re-run finishes what an interrupted one left."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retrain.adapters.environment import Runtime
from retrain.adapters.registry import ModelRegistry
from retrain.application import retention
from retrain.application.results import PurgeReport
from retrain.domain.settings import Settings

ARTIFACT_PURGE = "purge"


@task(name="purge-past-retention", cache_policy=NO_CACHE)
def purge_task(
    runtime: Runtime,
    settings: Settings,
    registry: ModelRegistry,
    actor: str,
    reason: str,
    dry_run: bool,
    flow_run_id: str | None,
) -> PurgeReport:
    done = retention.purge(
        runtime, settings, registry, actor=actor, reason=reason, dry_run=dry_run, flow_run_id=flow_run_id
    )
    if not dry_run:
        create_markdown_artifact(
            key=ARTIFACT_PURGE, markdown=retention.markdown(done), description="What the purge deleted and kept"
        )
    return PurgeReport.model_validate(done.to_dict())
