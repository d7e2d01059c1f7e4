"""Monitoring tasks: read a window of batches, compare it with the champion's reference profile,
decide (debounced) whether to retrain, trigger the training deployment, and shadow-score batches."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retrain.adapters import files, plots
from retrain.adapters.ledger import DecisionLog, DecisionRecord
from retrain.adapters.registry import ModelRegistry
from retrain.domain.drift import DriftReport, detect_drift, distribution_pair
from retrain.domain.errors import RetrainError
from retrain.domain.lifecycle import CHALLENGER, CHAMPION, ModelVersionInfo
from retrain.domain.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from retrain.domain.retraining import decide_retraining
from retrain.domain.settings import Settings
from retrain.domain.shadow import ShadowComparison, compare_shadow
from tasks.policy import RETRYING
from tasks.training import REFERENCE_PROFILE

ACTIVE_STATES = ("PENDING", "RUNNING", "PAUSED", "CANCELLING")


@dataclass(frozen=True)
class Window:
    """The batches a drift check or a scoring pass looks at, read and concatenated."""

    frame: pd.DataFrame
    batches: tuple[str, ...]


@task(name="read-window", cache_policy=NO_CACHE)
def read_window_task(project_dir: Path, settings: Settings, paths: list[str]) -> Window:
    """The named files, or else the newest ``drift.window_batches`` batches of the project."""
    chosen = [Path(p) for p in paths] or files.list_batches(project_dir / settings.dataset.batches)[
        -settings.drift.window_batches :
    ]
    if not chosen:
        raise RetrainError(f"no batch to check: {project_dir / settings.dataset.batches} holds none")
    frames = [files.read_batch(path, settings.dataset.time_column) for path in chosen]
    return Window(pd.concat(frames, ignore_index=True), tuple(path.name for path in chosen))


@task(name="champion-reference", cache_policy=NO_CACHE, **RETRYING)
def reference_task(registry: ModelRegistry) -> tuple[ModelVersionInfo, ReferenceProfile]:
    """The champion and the reference profile stored with it (promotion re-baselines by itself)."""
    champion = registry.by_alias(CHAMPION)
    if champion is None:
        raise RetrainError(f"model {registry.model_name} has no champion yet: nothing to compare with (retrain train)")
    return champion, ReferenceProfile.from_dict(registry.load_document(champion.run_id, REFERENCE_PROFILE))


@task(name="detect-drift", cache_policy=NO_CACHE)
def detect_drift_task(
    profile: ReferenceProfile, window: Window, predictions: np.ndarray, settings: Settings
) -> DriftReport:
    target = settings.dataset.target
    labels = window.frame[target].to_numpy(dtype="float64", na_value=np.nan) if target in window.frame else None
    return detect_drift(
        profile,
        window.frame,
        settings.drift,
        predictions=predictions,
        labels=labels,
        primary_metric=settings.gate.primary_metric,
        resamples=settings.gate.bootstrap_resamples,
        confidence=settings.gate.confidence,
        seed=settings.model.seed,
    )


def active_training_runs(
    project_dir: Path, stale_after_hours: float, exclude: str | None = None, ledger_url: str | None = None
) -> list[str]:
    """Training runs of this project that make a new one a duplicate: pending, running or waiting for
    reviewers, and scheduled runs already due (a trigger just created them). A run stuck in one state
    for longer than ``stale_after_hours`` is a crashed process's leftover, not in flight, and so is a run
    whose lease in the ledger's database expired (its process died; see retrain.application.reaper)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    states = [StateType(name) for name in (*ACTIVE_STATES, "SCHEDULED")]
    flows = FlowFilter(name=FlowFilterName(any_=["training"]))
    runs = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=states)))
    from retrain.application.reaper import expired_leases

    dead = expired_leases(ledger_url) if ledger_url else {}
    now = dt.datetime.now(dt.UTC)
    with get_client(sync_client=True) as client:
        found = client.read_flow_runs(flow_filter=flows, flow_run_filter=runs, limit=200)
    active = []
    for run in found:
        if str(run.id) == exclude or run.state is None or str(run.id) in dead:
            continue
        request = run.parameters.get("request") or {}
        if Path(str(request.get("project_dir") or "")).resolve() != project_dir.resolve():
            continue
        if run.state.timestamp is not None and now - run.state.timestamp > dt.timedelta(hours=stale_after_hours):
            continue
        due = run.expected_start_time is None or run.expected_start_time <= now + dt.timedelta(minutes=1)
        if run.state.type.value in ACTIVE_STATES or due:
            active.append(f"training run '{run.name}' ({run.state.name})")
    return active


@task(name="decide-retraining", cache_policy=NO_CACHE, **RETRYING)
def decide_task(
    ledger_url: str,
    settings: Settings,
    report: DriftReport,
    champion: ModelVersionInfo,
    window: Window,
    drift_run_id: str,
    project_dir: Path,
) -> DecisionRecord:
    """Decide and record in one locked transaction: simultaneous checks cannot both retrain."""
    in_flight = active_training_runs(project_dir, settings.retraining.stale_after_hours, ledger_url=ledger_url)

    def decide(earlier: list[dt.datetime]) -> tuple[str, tuple[str, ...]]:
        choice = decide_retraining(
            report.flagged,
            report.reasons,
            now=dt.datetime.now(dt.UTC),
            earlier_triggers=earlier,
            in_flight=in_flight,
            settings=settings.retraining,
        )
        return choice.decision, choice.reasons

    log = DecisionLog(ledger_url)
    try:
        return log.decide_and_record(
            settings.model.registered_name,
            decide,
            champion=champion.version,
            drift_share=report.drift_share,
            batches=window.batches,
            drift_run_id=drift_run_id,
        )
    finally:
        log.dispose()


def drift_markdown(report: DriftReport, record: DecisionRecord, champion: ModelVersionInfo, window: Window) -> str:
    lines = [
        f"# Drift check: **{record.decision}**",
        "",
        f"Batches {', '.join(window.batches)} ({report.rows} rows) vs the reference of champion "
        f"v{champion.version}: {len(report.drifted_features)} of {len(report.features)} features drifted "
        f"({report.drift_share:.0%}).",
        "",
        *[f"- {reason}" for reason in record.reasons],
        "",
        "| feature | kind | statistic | value | threshold | drifted | missing ref → now | other tests |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = list(report.features) + ([report.prediction] if report.prediction else [])
    for item in rows:
        others = ", ".join(f"{k} {v:.4g}" for k, v in item.details.items() if v is not None and k != item.statistic)
        lines.append(
            f"| {item.feature} | {item.kind} | {item.statistic} | {item.value:.4f} | {item.threshold:.4g} | "
            f"{'**yes**' if item.drifted else 'no'} | {item.missing_reference:.1%} → {item.missing_current:.1%} | "
            f"{others} |"
        )
    if report.performance is not None:
        perf = report.performance
        lines += [
            "",
            f"Performance on the {perf.rows} labelled rows: {perf.metric} {perf.current:.4f} "
            f"(CI [{perf.lower:.4f}, {perf.upper:.4f}]) vs {perf.reference:.4f} on the champion's holdout"
            f"{': **dropped**' if perf.dropped else ''}.",
        ]
    return "\n".join(lines)


@task(name="publish-drift", cache_policy=NO_CACHE, **RETRYING)
def publish_drift_task(
    registry: ModelRegistry,
    settings: Settings,
    profile: ReferenceProfile,
    window: Window,
    report: DriftReport,
    record: DecisionRecord,
    champion: ModelVersionInfo,
    reports_dir: Path,
) -> str:
    """Markdown artifact (per-feature table by severity), a plot of the worst features in MLflow, JSON."""
    create_markdown_artifact(
        drift_markdown(report, record, champion, window), key="drift-report", description="Drift vs the champion"
    )
    by_name: dict[str, NumericProfile | CategoricalProfile] = {p.name: p for p in profile.numeric}
    by_name.update({p.name: p for p in profile.categorical})
    worst = [f.feature for f in report.features[:4] if f.feature in by_name]
    empty = pd.Series([None] * len(window.frame), dtype="object")
    pairs = [distribution_pair(by_name[name], window.frame.get(name, empty), settings.drift) for name in worst]
    payload = drift_result(report, record, champion, window)
    run_id = registry.log_monitoring_run(
        run_name=f"drift-{window.batches[-1]}",
        metrics={"drift_share": report.drift_share, "drifted_features": float(len(report.drifted_features))},
        tags={"retrain.kind": "drift", "retrain.champion": champion.version, "retrain.decision": record.decision},
        figures={"plots/drift_worst_features.png": plots.drift_figure(pairs, f"Drift vs champion v{champion.version}")},
        documents={"drift.json": payload},
    )
    reports_dir.mkdir(parents=True, exist_ok=True)
    (reports_dir / "drift.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return run_id


def drift_result(
    report: DriftReport, record: DecisionRecord, champion: ModelVersionInfo, window: Window
) -> dict[str, Any]:
    """The drift flow's answer as one JSON-ready object (`retrain drift --json` prints it)."""
    return {
        **report.to_dict(),
        "decision": record.decision,
        "reasons": list(record.reasons),  # the decision's reasons (drift's own, plus what held it back)
        "batches": list(window.batches),
        "champion": champion.version,
        "decision_position": record.position,
    }


@task(name="trigger-retraining", cache_policy=NO_CACHE, **RETRYING)
def trigger_deployment_task(
    settings: Settings, project_dir: Path, record: DecisionRecord, drift_run_id: str
) -> str | None:
    """Run the training deployment (idempotent per decision); None when it is not deployed here."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    name = settings.retraining.deployment
    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(name)
        except ObjectNotFound:
            return None
    run = run_deployment(
        name,
        parameters={"request": retraining_request(project_dir, record, drift_run_id)},
        timeout=0,
        idempotency_key=f"retrain-decision-{settings.model.registered_name}-{record.position}",
        tags=["retrain", "drift-triggered"],
        as_subflow=False,
    )
    return str(run.id)  # type: ignore[union-attr]


def retraining_request(project_dir: Path, record: DecisionRecord, drift_run_id: str) -> dict[str, str]:
    return {
        "project_dir": str(project_dir),
        "triggered_by": "drift-monitor",
        "reason": f"drift run {drift_run_id} (decision #{record.position}): {'; '.join(record.reasons)}"[:500],
    }


@task(name="shadow-compare", cache_policy=NO_CACHE)
def shadow_task(champion: np.ndarray, challenger: np.ndarray, window: Window, settings: Settings) -> ShadowComparison:
    target = settings.dataset.target
    labels = window.frame[target].to_numpy(dtype="float64", na_value=np.nan) if target in window.frame else None
    return compare_shadow(champion, challenger, labels)


@task(name="current-challenger", cache_policy=NO_CACHE, **RETRYING)
def shadow_model_task(registry: ModelRegistry, champion: ModelVersionInfo) -> ModelVersionInfo | None:
    challenger = registry.by_alias(CHALLENGER)
    return None if challenger is None or challenger.version == champion.version else challenger


@task(name="write-predictions", cache_policy=NO_CACHE)
def write_predictions_task(
    window: Window,
    settings: Settings,
    champion: ModelVersionInfo,
    scores: np.ndarray,
    challenger: ModelVersionInfo | None,
    shadow: np.ndarray | None,
    output: Path,
) -> Path:
    """Predictions with the model version beside them (and the shadow's, never served)."""
    data = settings.dataset
    frame = pd.DataFrame(
        {
            data.id_column: window.frame[data.id_column].to_numpy(),
            data.time_column: window.frame[data.time_column].to_numpy(),
            "score": scores,
            "model_version": champion.version,
        }
    )
    if challenger is not None and shadow is not None:
        frame["shadow_score"] = shadow
        frame["shadow_model_version"] = challenger.version
    output.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(output, index=False)
    return output


@task(name="record-scoring", cache_policy=NO_CACHE, **RETRYING)
def record_scoring_task(registry: ModelRegistry, summary: dict[str, Any]) -> str:
    """The scoring pass as a monitoring run: rows, shadow agreement and, with labels, metric gains."""
    shadow = summary["shadow"] or {}
    metrics = {"rows": float(summary["rows"])}
    for key in ("agreement", "mean_abs_difference", "rank_correlation"):
        if key in shadow:
            metrics[f"shadow_{key}"] = float(shadow[key])
    metrics.update({f"shadow_gain_{m}": float(v) for m, v in (shadow.get("gains") or {}).items()})
    return registry.log_monitoring_run(
        run_name=f"scoring-{Path(summary['predictions']).stem}",
        metrics=metrics,
        tags={
            "retrain.kind": "scoring",
            "retrain.champion": str(summary["champion"]),
            "retrain.shadow": str(summary["challenger"] or ""),
        },
        figures={},
        documents={"scoring.json": summary},
    )
