"""Evaluation and promotion tasks: score both models on the same holdout, judge, move aliases."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retrain.adapters.ledger import Ledger
from retrain.adapters.registry import ModelRegistry
from retrain.application.promotion import PromotionOutcome, RollbackOutcome, doctor, promote, roll_back
from retrain.domain.approval import ApprovalResult
from retrain.domain.gate import GateDecision, GateInputs, decide, default_checks
from retrain.domain.lifecycle import CHALLENGER, ModelVersionInfo
from retrain.domain.metrics import HIGHER_IS_BETTER, classification_metrics
from retrain.domain.settings import Settings
from retrain.domain.slices import slice_masks
from retrain.domain.training import predict_proba
from tasks.policy import RETRYING


@task(name="current-alias", cache_policy=NO_CACHE, **RETRYING)
def alias_task(registry: ModelRegistry, alias: str) -> ModelVersionInfo | None:
    return registry.by_alias(alias)


@task(name="mark-challenger", cache_policy=NO_CACHE, **RETRYING)
def mark_challenger_task(registry: ModelRegistry, version: ModelVersionInfo) -> None:
    registry.set_alias(CHALLENGER, version.version)


@task(name="predict-holdout", cache_policy=NO_CACHE, task_run_name="predict-v{version.version}", **RETRYING)
def predict_task(
    registry: ModelRegistry, version: ModelVersionInfo, holdout: pd.DataFrame, settings: Settings
) -> np.ndarray:
    """Load the *registered* model (not the in-memory one) and predict the holdout rows."""
    booster, spec = registry.load(version.version)
    return predict_proba(booster, holdout, spec, settings.model.threads)


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
    return measure(registry, version.version, holdout, settings.model.threads, scratch, rival)


@dataclass(frozen=True)
class Judgement:
    decision: GateDecision
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None


@task(name="judge", cache_policy=NO_CACHE)
def judge_task(
    settings: Settings,
    holdout: pd.DataFrame,
    challenger: np.ndarray,
    champion: np.ndarray | None,
    guardrails: dict[str, float],
) -> Judgement:
    """Metrics of both models on the same rows, then every gate check (bootstrap, slices, guardrails)."""
    labels = holdout[settings.dataset.target].to_numpy()
    challenger_metrics = classification_metrics(labels, challenger)
    champion_metrics = None if champion is None else classification_metrics(labels, champion)
    config = settings.gate.slices
    masks = slice_masks(holdout, config.categorical, config.numeric_bins)
    inputs = GateInputs(challenger_metrics, champion_metrics, labels, challenger, champion, guardrails, masks)
    decision = decide(default_checks(settings.gate, settings.model.seed), inputs, settings.gate.primary_metric)
    return Judgement(decision, challenger_metrics, champion_metrics)


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
) -> PromotionOutcome:
    """Tag, move aliases (``champion`` is the commit point), then append the decision to the ledger."""
    ledger = Ledger(ledger_url)
    try:
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
        )
    finally:
        ledger.dispose()


@task(name="doctor", cache_policy=NO_CACHE, log_prints=True, **RETRYING)
def doctor_task(registry: ModelRegistry, ledger_url: str) -> list[str]:
    """Repair an interrupted promotion before anything else runs; says what it did.

    What it cannot repair (a broken ledger chain stays in an append-only ledger) is logged as a
    warning and does not stop the training: ``retrain doctor`` reports it as unhealthy.
    """
    ledger = Ledger(ledger_url)
    try:
        report = doctor(registry, ledger)
    finally:
        ledger.dispose()
    for action in report.repaired:
        print(f"doctor: {action}")
    for problem in report.problems:
        get_run_logger().warning(f"doctor: {problem}")
    return report.repaired


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.4f}"


@dataclass(frozen=True)
class ReportContext:
    """What a gate report names besides the checks: the versions, their metrics, lineage and links."""

    challenger: ModelVersionInfo
    challenger_metrics: dict[str, float]
    champion: ModelVersionInfo | None
    champion_metrics: dict[str, float] | None
    lineage: dict[str, str]
    links: dict[str, str]


def _metric_rows(decision: GateDecision, context: ReportContext) -> list[str]:
    champion_label = f"champion v{context.champion.version}" if context.champion else "champion"
    lines = [
        f"| metric | {champion_label} | challenger v{context.challenger.version} | gain | CI of the gain |",
        "|---|---|---|---|---|",
    ]
    comparison = next((c for c in decision.checks if c.name in ("non_inferiority", "superiority")), None)
    interval = comparison.details[0] if comparison and comparison.details else {}
    for metric, value in context.challenger_metrics.items():
        base = context.champion_metrics.get(metric) if context.champion_metrics else None
        gain = None if base is None else (value - base if HIGHER_IS_BETTER[metric] else base - value)
        ci = "—"
        if interval.get("metric") == metric and interval.get("lower") is not None:
            ci = f"[{interval['lower']:+.4f}, {interval['upper']:+.4f}] ({interval['confidence']:.0%}, paired)"
        lines.append(f"| {metric} | {_fmt(base)} | {_fmt(value)} | {_signed(gain)} | {ci} |")
    return lines


def _slice_rows(decision: GateDecision, metric: str) -> list[str]:
    slices = decision.check("slices")
    if slices is None or not slices.details:
        return ["_No slice comparison (no champion yet, or no slices configured)._"]
    lines = [
        f"| slice | rows | champion {metric} | challenger {metric} | gain | CI | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    ranked = sorted(slices.details, key=lambda row: (not row["regressed"], row["gain"] is None, row["gain"] or 0.0))
    for row in ranked:
        ci = "—" if row["lower"] is None else f"[{row['lower']:+.4f}, {row['upper']:+.4f}]"
        verdict = "**REGRESSED**" if row["regressed"] else ("ok" if row["judged"] else f"not judged: {row['note']}")
        lines.append(
            f"| {row['name']} | {row['rows']} | {_fmt(row['champion'])} | {_fmt(row['challenger'])} | "
            f"{_signed(row['gain'])} | {ci} | {verdict} |"
        )
    return lines


def gate_report(settings: Settings, decision: GateDecision, verdict: str, summary: str, context: ReportContext) -> str:
    """The gate report as markdown: what a reviewer reads before deciding, and what stays on record."""
    lines = [
        f"# Gate report for `{settings.model.registered_name}` v{context.challenger.version}: **{verdict}**",
        "",
        f"{summary} Primary metric: `{decision.primary_metric}`, mode `{settings.gate.mode}`.",
        "",
        "## Champion vs challenger (same holdout rows)",
        "",
        *_metric_rows(decision, context),
        "",
        "## Checks",
        "",
        "| check | result | value | threshold | reason |",
        "|---|---|---|---|---|",
    ]
    for check in decision.checks:
        lines.append(
            f"| {check.name} | {'pass' if check.passed else '**FAIL**'} | {_fmt(check.value)} | "
            f"{_fmt(check.threshold)} | {check.reason} |"
        )
    lines += ["", "## Slices", "", *_slice_rows(decision, decision.primary_metric)]
    lines += ["", "## Lineage", "", "| what | value |", "|---|---|"]
    lines += [f"| {key} | `{value}` |" for key, value in context.lineage.items()]
    if context.links:
        lines += ["", "## Links", ""]
        lines += [f"- [{label}]({url})" for label, url in context.links.items()]
    return "\n".join(lines)


@task(name="mlflow-links", cache_policy=NO_CACHE, **RETRYING)
def links_task(registry: ModelRegistry, ui_url: str, version: ModelVersionInfo) -> dict[str, str]:
    return registry.ui_links(ui_url, version.run_id, version.version)


@task(name="publish-gate-report", cache_policy=NO_CACHE)
def publish_gate_report_task(markdown: str) -> None:
    """The report reviewers read before they decide (the decision artifact follows after)."""
    create_markdown_artifact(markdown, key="gate-report", description="Evidence for the reviewers")


@task(name="publish-decision", cache_policy=NO_CACHE)
def publish_decision_task(markdown: str, decision: GateDecision, outcome: PromotionOutcome, reports_dir: Path) -> None:
    """The decision as a Prefect artifact (for people) and a JSON file (for machines)."""
    create_markdown_artifact(markdown, key="gate-decision", description="Champion vs challenger and every gate check")
    reports_dir.mkdir(parents=True, exist_ok=True)
    payload = {**decision.to_dict(), "outcome": outcome.__dict__}
    (reports_dir / "gate.json").write_text(json.dumps(payload, indent=2, default=list), encoding="utf-8")


@task(name="roll-back", cache_policy=NO_CACHE, **RETRYING)
def roll_back_task(
    registry: ModelRegistry, ledger_url: str, actor: str, reason: str, flow_run_id: str
) -> RollbackOutcome:
    """Move ``champion`` back to ``previous-champion`` (the commit point) and append the ledger entry,
    under the model's lock like any promotion."""
    ledger = Ledger(ledger_url)
    try:
        return roll_back(registry, ledger, actor=actor, reason=reason, flow_run_id=flow_run_id)
    finally:
        ledger.dispose()


@task(name="publish-rollback", cache_policy=NO_CACHE)
def publish_rollback_task(model_name: str, outcome: RollbackOutcome, actor: str, reason: str) -> None:
    create_markdown_artifact(
        f"# Rollback of `{model_name}`\n\n`champion` moved from v{outcome.demoted} back to v{outcome.restored} "
        f"by **{actor}**: {reason}",
        key="rollback",
        description="Champion rolled back",
    )
