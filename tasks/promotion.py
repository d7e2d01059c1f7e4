"""Evaluation and promotion tasks: score both models on the same holdout, judge, move aliases.

Thin: each task calls one use case of :mod:`retrain.application` (evaluation, guardrails,
promotion); retries and artifacts live here. The gate report itself is rendered by
:mod:`retrain.domain.gate_report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retrain.adapters import prefect_api
from retrain.adapters.registry import ModelRegistry
from retrain.application import evaluation
from retrain.application.evaluation import Judgement
from retrain.application.promotion import (
    PromotionOutcome,
    RollbackOutcome,
    doctor,
    ledger_at,
    promote,
    roll_back,
    write_decision_record,
)
from retrain.domain.approval import ApprovalResult
from retrain.domain.gate import GateDecision
from retrain.domain.gate_report import ReportLinks
from retrain.domain.lifecycle import ModelVersionInfo
from retrain.domain.settings import Settings
from retrain.domain.tags import ARTIFACT_GATE_DECISION, ARTIFACT_GATE_REPORT, ARTIFACT_ROLLBACK
from retrain.domain.task import task_for
from tasks.policy import RETRYING


@task(name="current-alias", cache_policy=NO_CACHE, **RETRYING)
def alias_task(registry: ModelRegistry, alias: str) -> ModelVersionInfo | None:
    return evaluation.current(registry, alias)


@task(name="mark-challenger", cache_policy=NO_CACHE, **RETRYING)
def mark_challenger_task(registry: ModelRegistry, version: ModelVersionInfo) -> None:
    evaluation.mark_challenger(registry, version)


@task(name="predict-holdout", cache_policy=NO_CACHE, task_run_name="predict-v{version.version}", **RETRYING)
def predict_task(
    registry: ModelRegistry, version: ModelVersionInfo, holdout: pd.DataFrame, settings: Settings
) -> np.ndarray:
    """Load the *registered* model (not the in-memory one) and predict the holdout rows."""
    return evaluation.predict(registry, version, holdout, settings)


@task(name="predict-champion", cache_policy=NO_CACHE, task_run_name="predict-v{version.version}", **RETRYING)
def predict_champion_task(
    registry: ModelRegistry, version: ModelVersionInfo, holdout: pd.DataFrame, settings: Settings
) -> tuple[np.ndarray | None, str | None]:
    """The champion's predictions of the holdout rows, or why it cannot be scored here."""
    return evaluation.predict_champion(registry, version, holdout, settings)


@task(name="measure-guardrails", cache_policy=NO_CACHE, **RETRYING)
def guardrails_task(
    registry: ModelRegistry,
    version: ModelVersionInfo,
    holdout: pd.DataFrame,
    settings: Settings,
    scratch: Path,
    champion: ModelVersionInfo | None = None,
) -> dict[str, float]:
    """Latency (against the champion, timed in the same run) and size of the registered challenger."""
    from retrain.application.guardrails import measure

    rival = None if champion is None else champion.version
    guard = settings.gate.guardrails
    return measure(
        registry,
        version.version,
        holdout,
        scratch,
        rival,
        task_for(settings.dataset),
        single_rounds=guard.latency_single_rounds,
        batch_rounds=guard.latency_batch_rounds,
        max_ratio=guard.max_latency_ratio,
        ceiling_single_ms=guard.max_latency_single_ms,
        ceiling_batch_ms=guard.max_latency_batch_ms,
    )


@task(name="judge", cache_policy=NO_CACHE)
def judge_task(
    settings: Settings,
    holdout: pd.DataFrame,
    challenger: np.ndarray,
    champion: np.ndarray | None,
    guardrails: dict[str, float],
    champion_problem: str | None = None,
    new_salt: bool = False,
) -> Judgement:
    """Metrics of both models on the same rows, then every gate check (bootstrap, slices, guardrails)."""
    return evaluation.judge(settings, holdout, challenger, champion, guardrails, champion_problem, new_salt)


@task(name="promote", cache_policy=NO_CACHE, **RETRYING)
def promote_task(
    registry: ModelRegistry,
    ledger_url: str,
    decision: GateDecision,
    challenger: ModelVersionInfo,
    champion: ModelVersionInfo | None,
    actor: str,
    flow_run_id: str,
    evidence: dict[str, Any],
    approval: ApprovalResult | None = None,
    settings: Settings | None = None,
) -> PromotionOutcome:
    """Tag, move aliases (``champion`` is the commit point), then append the decision to the ledger;
    with ``rollout.strategy`` canary or linear, start a rollout (``candidate``) instead."""
    with ledger_at(ledger_url) as ledger:
        return promote(
            registry,
            ledger,
            decision,
            challenger,
            champion,
            actor=actor,
            flow_run_id=flow_run_id,
            evidence=evidence,
            approval=approval,
            settings=settings,
        )


@task(name="doctor", cache_policy=NO_CACHE, log_prints=True, **RETRYING)
def doctor_task(registry: ModelRegistry, ledger_url: str) -> list[str]:
    """Repair an interrupted promotion before anything else runs; says what it did.

    What it cannot repair (a broken ledger chain stays in an append-only ledger) is logged as a
    warning and does not stop the training: ``retrain doctor`` reports it as unhealthy.
    """
    with ledger_at(ledger_url) as ledger:
        report = doctor(registry, ledger)
    for action in report.repaired:
        print(f"doctor: {action}")
    for problem in report.problems:
        get_run_logger().warning(f"doctor: {problem}")
    return report.repaired


@task(name="log-comparison-plots", cache_policy=NO_CACHE, **RETRYING)
def comparison_task(
    registry: ModelRegistry,
    settings: Settings,
    holdout: pd.DataFrame,
    decision: GateDecision,
    challenger: ModelVersionInfo,
    challenger_predictions: np.ndarray,
    champion: ModelVersionInfo | None,
    champion_predictions: np.ndarray | None,
) -> list[str]:
    """Champion vs challenger plots from the predictions the gate judged, into the challenger's run
    (a retry draws and logs them again: same paths, same figures). Evidence for people, not for the
    gate: plots that cannot be drawn are a warning, never a training that fails after its version."""
    try:
        return evaluation.log_comparison(
            registry, settings, holdout, decision, challenger, challenger_predictions, champion, champion_predictions
        )
    except Exception as error:  # the gate's decision does not depend on a figure
        get_run_logger().warning(f"comparison plots not logged ({type(error).__name__}: {error})")
        return []


@task(name="report-links", cache_policy=NO_CACHE, **RETRYING)
def links_task(registry: ModelRegistry, ui_url: str | None, version: ModelVersionInfo, flow_run_id: str) -> ReportLinks:
    """The report's links into MLflow and Prefect (the Prefect UI as this process's settings name it)."""
    return evaluation.report_links(registry, ui_url, version, prefect_api.ui_url(), flow_run_id)


@task(name="publish-gate-report", cache_policy=NO_CACHE)
def publish_gate_report_task(markdown: str) -> None:
    """The report reviewers read before they decide (the decision artifact follows after)."""
    create_markdown_artifact(markdown, key=ARTIFACT_GATE_REPORT, description="Evidence for the reviewers")


@task(name="publish-decision", cache_policy=NO_CACHE)
def publish_decision_task(
    markdown: str, decision: GateDecision, outcome: PromotionOutcome, reports_dir: Path, reviewed: bool = False
) -> None:
    """The decision as a Prefect artifact (for people) and a JSON file (for machines). After a review,
    the gate report reviewers read gets the same final verdict as its newest version (it no longer
    says AWAITING REVIEW once they answered)."""
    create_markdown_artifact(
        markdown, key=ARTIFACT_GATE_DECISION, description="Champion vs challenger and every gate check"
    )
    if reviewed:
        create_markdown_artifact(markdown, key=ARTIFACT_GATE_REPORT, description="Evidence, and the final verdict")
    write_decision_record(reports_dir, decision, outcome)


@task(name="roll-back", cache_policy=NO_CACHE, **RETRYING)
def roll_back_task(
    registry: ModelRegistry, ledger_url: str, actor: str, reason: str, flow_run_id: str
) -> RollbackOutcome:
    """Move ``champion`` back to ``previous-champion`` (the commit point) and append the ledger entry,
    under the model's lock like any promotion."""
    with ledger_at(ledger_url) as ledger:
        return roll_back(registry, ledger, actor=actor, reason=reason, flow_run_id=flow_run_id)


@task(name="publish-rollback", cache_policy=NO_CACHE)
def publish_rollback_task(model_name: str, outcome: RollbackOutcome, actor: str, reason: str) -> None:
    create_markdown_artifact(
        f"# Rollback of `{model_name}`\n\n`champion` moved from v{outcome.demoted} back to v{outcome.restored} "
        f"by **{actor}**: {reason}",
        key=ARTIFACT_ROLLBACK,
        description="Champion rolled back",
    )
