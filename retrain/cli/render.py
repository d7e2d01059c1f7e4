"""How the CLI shows things: tables, one-line summaries, receipts and the demo's steps.

Every function writes to the terminal and decides nothing. rich is imported inside the table
functions, the result models only for type checking, so ``retrain --help`` stays instant.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console

    from retrain.adapters.environment import Runtime
    from retrain.adapters.ledger import DecisionRecord
    from retrain.application.reproduce import Reproduction
    from retrain.application.results import (
        DeployedTraining,
        DriftResult,
        FeedbackResult,
        PurgeReport,
        ScoringResult,
        TrainingResult,
        TriggeredTraining,
    )
    from retrain.cli.demo_run import DemoStep, Served
    from retrain.domain.lifecycle import LedgerEntry
    from retrain.domain.pending import PendingReview
    from retrain.domain.settings import Settings


def console() -> Console:
    """A console as wide as the terminal, or 160 columns when the output goes to a file or a pipe."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], caption: str | None = None) -> None:
    """The one table layout of ``status``, ``history``, ``decisions`` and ``pending``: a title naming
    the model, versions as ``vN``, times in UTC to the minute, ``—`` for nothing."""
    from rich.table import Table

    shown = Table(title=title, caption=caption)
    for column in columns:
        shown.add_column(column)
    for row in rows:
        shown.add_row(*row)
    console().print(shown)


def version_name(version: str | None) -> str:
    return "—" if not version else f"v{version}"


def when(moment: Any) -> str:
    return "—" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


def training_summary(result: TrainingResult) -> None:
    """The outcome, then each failed check by name with its value against the threshold."""
    from retrain.domain.gate_report import outcome_lines

    outcome = result.outcome
    lines = outcome_lines(
        outcome.note, outcome.champion_version, outcome.challenger_version, outcome.reasons, result.decision.checks
    )
    typer.echo("\n".join(lines))


def status_table(report: dict[str, Any], metrics: tuple[str, ...] = ("roc_auc", "pr_auc")) -> None:
    """One row per version (the alias holders and the newest others), its state first; then the gate's
    latest comparison on the same rows. ``metrics``: the holdout metrics shown (the primary first),
    each on the version's own holdout, which the table's caption says."""
    rows = [
        (
            version_name(row["version"]),
            row["state"],
            *(_metric(row["metrics"].get(name)) for name in metrics),
            (row["data_md5"] or "—")[:12],
            f"{row['contract']['name']} v{row['contract']['version']}" if row["contract"] else "—",
            row["run_id"][:12],
        )
        for row in report["versions"]
    ]
    if rows:
        columns = ("version", "state", *metrics, "data md5", "contract", "run")
        table(f"Model {report['model']}", columns, rows, "metrics: each version on its own holdout rows")
    else:
        typer.echo(f"model {report['model']} has no version yet: `retrain train` makes the first")
    gate = report.get("latest_gate")
    if gate:
        typer.echo(gate_line(gate))
    running = report.get("rollout")
    if running:
        typer.echo(
            f"rollout: v{running['candidate']} serves {running['share']:.0%} of rows beside champion "
            f"v{running['champion']} ({running['strategy']}, since {running['started_at'][:16]}, "
            f"{len(running['files'])} batch(es) scored); labels decide (retrain feedback)"
        )


def _metric(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def gate_line(gate: dict[str, Any]) -> str:
    """The latest gate comparison as one sentence: both versions on the same rows, the gain, the end."""
    interval = "" if gate["ci"] is None else f", CI [{gate['ci'][0]:+.4f}, {gate['ci'][1]:+.4f}]"
    gain = "" if gate["gain"] is None else f" (gain {gate['gain']:+.4f}{interval})"
    rows = f"{gate['rows']} " if gate.get("rows") else ""
    return (
        f"latest gate, on the same {rows}holdout rows: v{gate['challenger']} {gate['metric']} "
        f"{_metric(gate['challenger_value'])} vs champion v{gate['champion']} {_metric(gate['champion_value'])}"
        f"{gain}: {gate['outcome']}"
    )


def reproduction(version: str, result: Reproduction) -> None:
    if result.identical:
        typer.echo(
            f"version {version}: byte-identical ({result.rebuilt_bytes} bytes, {result.rebuilt_trees} trees, "
            f"sha256 {result.rebuilt_sha256[:16]}), data md5 {result.data_md5} restored from the {result.data_source}"
        )
    else:
        typer.echo(
            f"version {version}: NOT identical. registered {result.registered_bytes} bytes / "
            f"{result.registered_trees} trees / sha256 {result.registered_sha256[:16]}; rebuilt "
            f"{result.rebuilt_bytes} bytes / {result.rebuilt_trees} trees / sha256 {result.rebuilt_sha256[:16]}; "
            f"first differing byte at {result.first_difference}; library changes since training: "
            f"{result.library_changes or 'none'}"
        )


def pending_reviews(found: Sequence[PendingReview], as_json: bool) -> None:
    """The reviewers' inbox: one row per run waiting, with the command that answers it."""
    import datetime as dt
    from dataclasses import asdict

    now = dt.datetime.now(dt.UTC)
    if as_json:
        print_json([{**asdict(item), "minutes_left": round(item.minutes_left(now), 1)} for item in found])
        return
    if not found:
        typer.echo("no run waits for review")
        return
    columns = ("run", "model", "challenger", "champion", "gain [CI]", "time left", "reviewers", "answer with")
    rows = [
        (
            item.flow_run_id,
            item.model,
            version_name(item.version),
            version_name(item.champion) if item.champion else "— (first champion)",
            f"{item.metric} {item.gain_text()}",
            f"{left:.0f} min" if (left := item.minutes_left(now)) > 0 else "timing out",
            f"{item.quorum} of {', '.join(item.reviewers)}",
            f"retrain approve {item.flow_run_id} --reviewer NAME",
        )
        for item in found
    ]
    table("Waiting for review", columns, rows)


def ledger_table(model: str, entries: Sequence[LedgerEntry]) -> None:
    columns = (
        "#",
        "when (UTC)",
        "decision",
        "champion before",
        "challenger",
        "champion after",
        "by",
        "reviewers",
        "why",
    )
    rows = [
        (
            str(entry.position),
            when(entry.recorded_at),
            entry.kind,
            version_name(entry.champion_before),
            version_name(entry.challenger),
            version_name(entry.champion_after),
            entry.actor,
            ", ".join(entry.reviewers) or "—",
            entry.comment,
        )
        for entry in entries
    ]
    table(f"Promotion ledger: {model}", columns, rows)


def decisions_table(model: str, records: Sequence[DecisionRecord]) -> None:
    """The drift flow's retraining decisions, in the same layout as the promotion ledger."""
    columns = ("#", "when (UTC)", "decision", "champion", "batches", "decided by", "why")
    rows = [
        (
            str(record.position),
            when(record.recorded_at),
            record.decision,
            version_name(record.champion),
            ", ".join(record.batches),
            record.signal or "—",
            "; ".join(record.reasons),
        )
        for record in records
    ]
    table(f"Retraining decisions: {model}", columns, rows)


def drift_json(result: DriftResult) -> None:
    """The drift result as it always printed: python-mode dump (NaN stays NaN), anything odd as text."""
    typer.echo(json.dumps(result.model_dump(), indent=2, default=str))


def drift_summary(result: DriftResult) -> None:
    """The verdict, what was decided (or, report only, that nothing was), the reasons, then a table of
    the drifted rows with their statistic, p-value and test, the most severe first (--json has them all,
    raw)."""
    from retrain.domain import tags
    from retrain.domain.drift_view import FEATURE_HEADERS, GRID_CAP, feature_line, text_table
    from retrain.domain.retraining import REPORT_ONLY, report_only_note

    counted = len(result.weights)
    verdict = (
        f"deciding signal {result.signal}"
        if result.decision == REPORT_ONLY
        else f"decided by {result.signal}: {result.decision}"
    )
    typer.echo(
        f"drift share {result.drift_share:.0%} of the champion's importance ({len(result.drifted_features)} of "
        f"{counted} counted features drifted); {verdict}"
    )
    if result.decision == REPORT_ONLY:
        typer.secho(report_only_note(result.flagged), bold=True)
    for reason in result.reasons:
        typer.echo(f"  - {reason}")
    rows = [item for item in result.features.values() if item.drifted]
    if result.prediction is not None and result.prediction.drifted:
        rows.append(result.prediction)
    rows.sort(key=lambda item: item.severity, reverse=True)
    if rows:
        typer.echo(f"drifted ({len(rows)}), the most severe first:")
        lines = [feature_line(item).cells() for item in rows[:GRID_CAP]]
        typer.echo("\n".join(text_table(FEATURE_HEADERS, lines)))
        if len(rows) > GRID_CAP:
            typer.echo(f"  … {len(rows) - GRID_CAP} more (--json lists every feature)")
    else:
        typer.echo("nothing drifted")
    if result.mlflow_run:
        typer.echo(f"MLflow run {result.mlflow_run}: the drifted distributions in {tags.ARTIFACT_DRIFT_GRID}")
    if result.training:
        typer.echo(retraining_line(result.training))


def retraining_line(training: TriggeredTraining | DeployedTraining) -> str:
    """The retraining the drift flow started, in words: how it ran, its flow run and, when it was
    followed to its end, the outcome and the reasons (as ``retrain train`` prints them)."""
    from retrain.application.results import TriggeredTraining
    from retrain.domain.gate_report import outcome_lines

    if not isinstance(training, TriggeredTraining):
        return f"retraining: flow run {training.flow_run_id} started ({training.via}); follow it in the Prefect UI"
    lines = outcome_lines(training.note, training.champion_version, training.challenger_version, training.reasons, ())
    head = f"retraining (flow run {training.flow_run_id}, {training.via}): {lines[0]}"
    return "\n".join([head, *lines[1:]])


def scoring_warnings(result: ScoringResult) -> None:
    """Rows with categories the model never saw, one line per feature, and rows whose label the task
    does not know, on stderr (stdout may be JSON)."""
    from retrain.domain.scoring import unknown_label_note, unseen_warnings

    for line in unseen_warnings(result.unseen_categories, result.rows):
        typer.secho(line, err=True, fg="yellow")
    if result.unknown_labels:
        typer.secho(f"warning: {unknown_label_note(result.unknown_labels)}", err=True, fg="yellow")


def scoring_json(result: ScoringResult) -> None:
    typer.echo(json.dumps(result.model_dump(), indent=2))


def scoring_summary(result: ScoringResult) -> None:
    typer.echo(f"scored {result.rows} rows with champion v{result.champion} → {result.predictions}")
    if result.candidate:
        served = result.served.get("candidate", 0)
        typer.echo(f"rollout: candidate v{result.candidate} served {served} of the rows (column `arm`)")
        if result.rollout:
            typer.echo(f"{result.rollout['headline']}: {'; '.join(result.rollout['verdict']['reasons'])}")
    if result.metrics:
        shown = ", ".join(f"{metric} {value:.4f}" for metric, value in result.metrics.items())
        served_by = " it served" if result.candidate else ""
        typer.echo(f"champion v{result.champion} on the {result.labelled_rows} labelled rows{served_by}: {shown}")
    if result.shadow:
        gains = result.shadow.gains
        shown = ", ".join(f"{metric} {gain:+.4f}" for metric, gain in gains.items()) if gains else "await labels"
        typer.echo(f"shadow challenger v{result.challenger}: agreement {result.shadow.agreement:.1%}, gains {shown}")


def receipt(reviewer: str, message: str) -> None:
    """How the run took a demo reviewer's answer."""
    typer.echo(f"    gate passed, run paused for review; {reviewer} answers: {message}")


def told(message: dict[str, Any]) -> None:
    """What the demo's webhook receiver got: who was told what (the first line of the message)."""
    meta = message.get("retrain") or {}
    text = str(message.get("text") or "").strip().splitlines()
    typer.secho(f"    [told the {meta.get('audience', 'team')}] {text[0] if text else '(empty)'}", fg="cyan")


def _served_line(step: DemoStep, served: Served, took: str) -> None:
    scoring, labels = served.scoring, served.labels
    arms = scoring.served or {}
    split = (
        f"champion v{scoring.champion} {arms.get('champion', scoring.rows)} rows, "
        f"candidate v{scoring.candidate} {arms.get('candidate', 0)} rows"
        if scoring.candidate
        else f"all {scoring.rows} rows by champion v{scoring.champion}"
    )
    typer.secho(f"\n==> {step.title}: {split}; {labels.joined} labels arrived later{took}", bold=True)
    rollout = labels.rollout or scoring.rollout
    if rollout is not None:
        typer.echo(f"    {rollout['headline']}")
        for reason in rollout["verdict"]["reasons"][-1:]:
            typer.echo(f"    - {reason}")


def demo_step(step: DemoStep, result: TrainingResult | DriftResult | Served, seconds: float | None = None) -> None:
    """One demo step as it ends: the drift verdict and any retraining, a served day and what its labels
    decided, or the training's outcome, and how long the step took (a slow step shows where the time goes)."""
    from retrain.application.results import DriftResult
    from retrain.cli.demo_run import Served

    took = "" if seconds is None else f"  [{seconds:.0f} s]"
    if isinstance(result, Served):
        _served_line(step, result, took)
        return
    if isinstance(result, DriftResult):
        drifted = result.drifted_features
        typer.secho(
            f"\n==> {step.title}: drift share {result.drift_share:.0%} "
            f"({len(drifted)} features{': ' + ', '.join(drifted[:6]) if drifted else ''}"
            f"{'…' if len(drifted) > 6 else ''}) → {result.decision} (decided by {result.signal}){took}",
            bold=True,
        )
        if result.decision != "none":
            for reason in result.reasons[-1:]:
                typer.echo(f"    - {reason}")
        if result.training:
            typer.echo(f"    retraining ({result.training.via}): {_retraining(result.training)}")
        return
    from retrain.domain.gate_report import outcome_lines

    outcome = result.outcome
    typer.secho(f"\n==> {step.title}: {outcome.note}{took}", bold=True)
    lines = outcome_lines(
        outcome.note, outcome.champion_version, outcome.challenger_version, outcome.reasons, result.decision.checks
    )
    for line in lines[1:]:  # each failed check by name, its value against the threshold
        typer.echo(f"  {line}")


def demo_summary(
    runtime: Runtime,
    settings: Settings,
    results: Sequence[tuple[DemoStep, TrainingResult | DriftResult | Served]],
    seconds: float,
    on_stack: bool = False,
) -> None:
    """The demo's table (one row per step) and where to look next."""
    from rich.table import Table

    from retrain.application.results import DriftResult, TriggeredTraining
    from retrain.cli.demo_run import Served

    metric = settings.gate.primary_metric
    table = Table(title=f"Retrain demo: {settings.model.registered_name} ({seconds:.0f} s)")
    for column in ("step", "data", "challenger", f"{metric}", f"champion {metric}", "decision", "why"):
        table.add_column(column)
    for step, result in results:
        if isinstance(result, Served):
            rollout = result.labels.rollout or result.scoring.rollout
            comparison = None if rollout is None else rollout["verdict"].get("comparison")
            table.add_row(
                step.title,
                f"{result.scoring.rows} rows served",
                f"v{result.scoring.candidate}" if result.scoring.candidate else "—",
                "—" if comparison is None else f"{comparison['candidate']:.4f} (real)",
                f"v{result.scoring.champion}"
                + ("" if comparison is None else f": {comparison['champion']:.4f} (real)"),
                "—" if rollout is None else rollout["headline"].split(":")[0],
                f"{result.labels.joined} late labels",
            )
            continue
        if isinstance(result, DriftResult):
            training = result.training
            table.add_row(
                step.title,
                f"{result.rows} rows",
                "—" if not isinstance(training, TriggeredTraining) else f"v{training.challenger_version}",
                "—",
                f"v{result.champion}",
                result.decision + (f" → {_retraining_note(training)}" if training else ""),
                f"drift share {result.drift_share:.0%}",
            )
            continue
        outcome, challenger, before = result.outcome, result.challenger, result.champion_before
        snap = result.snapshot
        table.add_row(
            step.title,
            f"{snap.rows} rows, md5 {snap.md5[:8]}",
            f"v{challenger.version}",
            f"{challenger.metrics[metric]:.4f}",
            "—" if before is None else f"v{before.version}: {(before.metrics or {})[metric]:.4f}",
            outcome.note,
            ", ".join(c.name for c in result.decision.checks if not c.passed) or "all checks passed",
        )
    out = console()
    out.print(table)
    if on_stack:
        import os

        out.print(
            f"\nSee it on the team stack (`source {runtime.state_dir / 'stack' / 'stack.env'}` first, and set\n"
            "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD to your MLflow account for `status`):\n"
            "  .venv/bin/retrain status     # each version's state, the latest gate\n"
            "  .venv/bin/retrain history    # the stack's ledger (PostgreSQL)\n"
            f"  Prefect UI {os.environ.get('PREFECT_API_URL', '').removesuffix('/api')}   "
            f"MLflow UI {runtime.mlflow_ui_url}\n"
            f"Demo workspace (a git + DVC repo, DVC remote on S3): {runtime.state_dir / 'demo' / 'workspace'}"
        )
        return
    db = runtime.state_dir / "mlflow" / "mlflow.db"
    out.print(
        "\nSee it (the .venv commands work whether or not uv is on your PATH):\n"
        "  .venv/bin/retrain status          # each version's state, the latest gate on the same rows (--json)\n"
        "  .venv/bin/retrain history         # every promotion, refusal, timeout, rollback, with reviewers\n"
        "  .venv/bin/retrain decisions       # every drift decision (retrain, none, cooldown, …) with reasons\n"
        f"  .venv/bin/mlflow ui --backend-store-uri sqlite:///{db} --port 5000\n"
        f"  PREFECT_HOME={runtime.prefect_home} .venv/bin/prefect server start   # runs + artifacts\n"
        f"Demo workspace (a git + DVC repo): {runtime.state_dir / 'demo' / 'workspace'}"
    )


def _retraining(training: TriggeredTraining | DeployedTraining) -> str:
    """A retraining the drift check ran: its note and champion, or (not followed) its run."""
    from retrain.application.results import DeployedTraining

    if isinstance(training, DeployedTraining):
        return f"run {training.flow_run_id}"
    return f"{training.note}, champion v{training.champion_version}"


def _retraining_note(training: TriggeredTraining | DeployedTraining) -> str:
    from retrain.application.results import DeployedTraining

    return f"run {training.flow_run_id}" if isinstance(training, DeployedTraining) else training.note


def stack_services(statuses: Sequence[Any], config: Any) -> None:
    """Each service of the team stack: state, pid and log; then where the UIs are."""
    for item in statuses:
        state = "healthy" if item.healthy else ("running, not healthy" if item.pid else "stopped")
        typer.echo(f"  {item.name:<15} {state:<22} pid {item.pid or '—':<8} log {item.log}")
    people_ui = config.people_url.removesuffix("/api")
    typer.echo(f"  Prefect UI  {people_ui} (people: NAME:PASSWORD)   MLflow UI  {config.mlflow_url}")


def feedback_json(result: FeedbackResult) -> None:
    typer.echo(json.dumps(result.model_dump(), indent=2))


def feedback_summary(result: FeedbackResult) -> None:
    typer.echo(result.headline)
    for line in result.problems:
        typer.echo(f"warning: {line}")
    if result.rollout:
        typer.echo(f"{result.rollout['headline']}: {'; '.join(result.rollout['verdict']['reasons'])}")


def purge(report: PurgeReport) -> None:
    """What a purge deleted (or would) and kept, one line each, then where it is recorded."""
    from retrain.domain.retention import PurgeRecord, record_lines

    record = PurgeRecord.from_dict(report.deleted)
    for line in record_lines(record, report.dry_run):
        typer.echo(line)
    for item in report.finished:
        typer.echo(f"finished what an interrupted purge left: {item}")
    if not record.files and not record.snapshots:
        typer.echo("nothing past retention: nothing deleted, nothing recorded")
    elif report.dry_run:
        typer.echo("dry run: nothing deleted. Run `retrain purge --yes` to delete these.")
    else:
        typer.echo(f"{record.summary()}; recorded in the ledger as entry #{report.ledger_entry} (`retrain history`)")
