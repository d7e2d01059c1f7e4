"""Rollout tasks: which model serves which rows, and what the rows served so far decide.

Thin Prefect tasks over :mod:`retrain.application.rollout`; each evaluation is a markdown artifact
(the flows tell the team when one ends a rollout: ``tasks.notify.tell_rollout``).
"""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retrain.adapters.locks import ModelLockTimeout
from retrain.adapters.registry import ModelRegistry
from retrain.application import rollout
from retrain.application.monitoring import label_column
from retrain.application.rollout import RolloutOutOfStep
from retrain.domain import tags
from retrain.domain.settings import Settings
from tasks.policy import RETRYING


@task(name="rollout-routing", cache_policy=NO_CACHE, **RETRYING)
def routing_task(registry: ModelRegistry, ledger_url: str) -> rollout.Routing | None:
    """The rollout to serve, if one runs (its candidate, share and row salt)."""
    return rollout.routing(registry, ledger_url, registry.model_name)


@task(name="evaluate-rollout", cache_policy=NO_CACHE, **RETRYING)
def evaluate_rollout_task(
    registry: ModelRegistry,
    ledger_url: str,
    settings: Settings,
    scored_file: Path | None,
    actor: str,
    flow_run_id: str,
    predictions_dir: Path | None = None,
) -> rollout.RolloutReport | None:
    """Judge the rollout on its traffic so far and act (idempotent per verdict: a retry after an end
    finds no rollout; after an evaluation it records one more look at the same rows). A busy model
    lock or aliases out of step with the ledger are a warning, not a failed scoring run: the next
    batch or labels look again, and count this batch's rows too."""
    try:
        report = rollout.evaluate(
            registry,
            ledger_url,
            settings,
            label_column(settings),
            scored_file=scored_file,
            actor=actor,
            flow_run_id=flow_run_id,
            predictions_dir=predictions_dir,
        )
    except (ModelLockTimeout, RolloutOutOfStep) as error:
        get_run_logger().warning(f"rollout not evaluated this time: {error}")
        return None
    if report is None:
        return None
    create_markdown_artifact(
        rollout.rollout_markdown(report, settings), key=tags.ARTIFACT_ROLLOUT_REPORT, description=report.headline()
    )
    return report
