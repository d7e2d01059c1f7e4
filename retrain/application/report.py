"""``retrain report``: the monitoring dashboard, gathered from the registry, the ledger and the
decision log (plus the flow runs' durations the orchestrator knows), written as one HTML page and
logged to MLflow beside the monitoring runs.

Plain functions (no Prefect): ``tasks/report.py`` passes in the flow runs' durations and publishes
the page's link as a Prefect artifact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from retrain.adapters import plots
from retrain.adapters.ledger import DecisionLog, Ledger
from retrain.adapters.registry import ModelRegistry, TrackedRun
from retrain.adapters.system_metrics import CPU, PROCESS_RSS
from retrain.domain import tags
from retrain.domain.dashboard import (
    Dashboard,
    DriftPoint,
    RealizedPoint,
    ResourceTrace,
    RunDuration,
    TimelineEvent,
    VersionRow,
    render_html,
)
from retrain.domain.lifecycle import LedgerEntry, ModelVersionInfo
from retrain.domain.rollout import ARM_CANDIDATE, ARM_CHAMPION, event_of
from retrain.domain.settings import Settings

DASHBOARD_FILE = "dashboard.html"


@dataclass(frozen=True)
class DashboardReport:
    """Where the page went and what it shows, in numbers."""

    path: str
    mlflow_run: str
    versions: int
    drift_checks: int
    realized_points: int
    decisions: int
    figures: list[str]


def _versions(versions: Sequence[ModelVersionInfo], runs: dict[str, TrackedRun], metric: str) -> list[VersionRow]:
    rows = []
    for info in versions:
        run = runs.get(info.run_id)
        rows.append(
            VersionRow(
                version=info.version,
                trained_at=None if run is None else run.started,
                holdout=info.metrics.get(metric),
                decision=info.tags.get(tags.TAG_DECISION, "—"),
                aliases=info.aliases,
            )
        )
    return rows


def _realized(monitoring: Sequence[TrackedRun], entries: Sequence[LedgerEntry], metric: str) -> list[RealizedPoint]:
    """The champion's metric on each labelled scored batch, and each rollout evaluation's two arms."""
    points = []
    for run in monitoring:
        value = run.metrics.get(f"champion_{metric}")
        if run.tags.get(tags.TAG_KIND) == "scoring" and value is not None:
            rows = int(run.metrics.get("labelled_rows", 0))
            served = run.metrics.get("served_candidate", 0.0)
            source = f"{run.name} (both arms)" if served else run.name
            points.append(RealizedPoint(run.started, run.tags.get(tags.TAG_CHAMPION, "?"), value, rows, source))
    for entry in entries:
        verdict = (event_of(entry) or {}).get("verdict") or {}
        comparison = verdict.get("comparison")
        if not comparison or entry.recorded_at is None or comparison.get("metric") != metric:
            continue
        labelled = verdict.get("labelled", {})
        for arm, version, value in (
            (ARM_CHAMPION, entry.champion_before, comparison["champion"]),
            (ARM_CANDIDATE, entry.challenger, comparison["candidate"]),
        ):
            points.append(
                RealizedPoint(
                    entry.recorded_at, str(version), float(value), int(labelled.get(arm, 0)), f"rollout ({arm} arm)"
                )
            )
    return sorted(points, key=lambda point: point.at)


def _drift(monitoring: Sequence[TrackedRun]) -> list[DriftPoint]:
    return [
        DriftPoint(
            at=run.started,
            batches=run.name.removeprefix("drift-"),
            drift_share=float(run.metrics.get("drift_share", 0.0)),
            decision=run.tags.get(tags.TAG_MONITORING_DECISION, "—"),
            signal=run.tags.get(tags.TAG_SIGNAL, "—"),
            worst=run.tags.get(tags.TAG_DRIFT_WORST, ""),
        )
        for run in monitoring
        if run.tags.get(tags.TAG_KIND) == "drift"
    ]


def _timeline(entries: Sequence[LedgerEntry], ledger_url: str, model: str) -> list[TimelineEvent]:
    events = [
        TimelineEvent(entry.recorded_at, entry.kind, f"#{entry.position}: {entry.comment}"[:300])
        for entry in entries
        if entry.recorded_at is not None and (event_of(entry) or {}).get("event") != "evaluation"
    ]
    log = DecisionLog(ledger_url)
    try:
        records = log.records(model)
    finally:
        log.dispose()
    events += [
        TimelineEvent(record.recorded_at, f"drift: {record.decision}", "; ".join(record.reasons)[:300])
        for record in records
        if record.decision != "none"
    ]
    return sorted(events, key=lambda event: event.at)


def _resources(
    registry: ModelRegistry, versions: Sequence[ModelVersionInfo], runs: dict[str, TrackedRun]
) -> list[ResourceTrace]:
    traces = []
    for info in versions:
        run_id = info.run_id
        if run_id not in runs:
            continue
        cpu = registry.metric_history(run_id, CPU)
        rss = registry.metric_history(run_id, PROCESS_RSS)
        if cpu and len(cpu) == len(rss):
            traces.append(
                ResourceTrace(
                    info.version, tuple(s for s, _ in cpu), tuple(v for _, v in cpu), tuple(v for _, v in rss)
                )
            )
    return traces


def build_dashboard(
    registry: ModelRegistry,
    ledger_url: str,
    settings: Settings,
    durations: Sequence[RunDuration] = (),
    links: Sequence[tuple[str, str]] = (),
) -> Dashboard:
    """Everything the page shows, read once from the registry, the ledger and the decision log."""
    metric = settings.gate.primary_metric
    training = {run.run_id: run for run in registry.runs(registry.experiment)}
    monitoring = registry.runs(registry.monitoring_experiment)
    ledger = Ledger(ledger_url)
    try:
        entries = ledger.entries(registry.model_name)
    finally:
        ledger.dispose()
    registered = registry.versions()
    versions = _versions(registered, training, metric)
    return Dashboard(
        model=registry.model_name,
        primary_metric=metric,
        generated_at=dt.datetime.now(dt.UTC),
        versions=tuple(versions),
        realized=tuple(_realized(monitoring, entries, metric)),
        drift=tuple(_drift(monitoring)),
        timeline=tuple(_timeline(entries, ledger_url, registry.model_name)),
        durations=tuple(sorted(durations, key=lambda run: run.at)),
        resources=tuple(_resources(registry, registered, training)),
        links=tuple(links),
    )


def write_dashboard(registry: ModelRegistry, board: Dashboard, output: Path) -> DashboardReport:
    """The page at ``output`` and as ``dashboard.html`` of a ``report`` run in the monitoring experiment."""
    figures = plots.dashboard_figures(board)
    page = render_html(board, figures)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(output)
    run_id = registry.log_monitoring_run(
        run_name="dashboard",
        metrics={"versions": float(len(board.versions)), "drift_checks": float(len(board.drift))},
        tags={tags.TAG_KIND: "report"},
        figures={},
        documents={},
        texts={DASHBOARD_FILE: page},
    )
    return DashboardReport(
        path=str(output),
        mlflow_run=run_id,
        versions=len(board.versions),
        drift_checks=len(board.drift),
        realized_points=len(board.realized),
        decisions=len(board.timeline),
        figures=[key for key, png in figures.items() if png is not None],
    )
