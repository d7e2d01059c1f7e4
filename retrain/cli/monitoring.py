"""Monitoring commands: check batches for drift (and, told to act, retrain on the decision), score a batch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from retrain.cli import context, render
from retrain.cli.context import ProjectOption, fail, failures_exit

if TYPE_CHECKING:
    from retrain.application.results import DriftResult


def run_drift(project_dir: Path, batch: Path) -> DriftResult:
    """The drift flow in this process on one batch, acting as the schedule does (the demo's day): a
    retraining it decides runs as its subflow."""
    from flows.drift import DriftRequest, drift

    return drift(DriftRequest(project_dir=str(project_dir), batches=[str(batch)], act=True))


def drift_command(
    paths: Annotated[list[Path] | None, typer.Argument(help="Batch files to check (default: the newest).")] = None,
    project: ProjectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    act: Annotated[
        bool,
        typer.Option(
            "--act",
            help="Act on the check: decide (debounced, recorded in the decision log) and start the retraining "
            "the decision calls for. Without it the check only reports.",
        ),
    ] = False,
    no_act: Annotated[bool, typer.Option("--no-act", hidden=True, help="Report only (the default).")] = False,
) -> None:
    """Run the drift flow: batches vs the champion's reference profile, reported (MLflow run, Prefect
    artifact). Nothing is decided or started unless --act: then the (debounced) decision, and the
    retraining it calls for. The scheduled drift check always acts."""
    if act and no_act:
        fail("--act and --no-act contradict each other: give one (without either the check only reports)", 2)
    for path in paths or []:
        context.input_file(path, "batch file")
    runtime = context.runtime(project)
    from flows.drift import DriftRequest, drift

    request = DriftRequest(
        project_dir=str(runtime.project_dir), batches=[str(p.resolve()) for p in paths or []], act=act
    )
    with failures_exit(1):
        result = drift(request)
    if as_json:
        render.drift_json(result)
        return
    render.drift_summary(result)


def score_command(
    path: Annotated[Path, typer.Argument(help="Batch file to score.")],
    project: ProjectOption = None,
    output: Annotated[Path | None, typer.Option(help="Predictions file (.parquet).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run the scoring flow: champion scores (version and label beside each), challenger in shadow.

    A labelled batch reports the champion's metrics; rows with categories the model never saw are
    counted per feature (a warning, and ``unseen_categories`` in --json)."""
    context.input_file(path, "batch file")
    if output is not None and (output.suffix != ".parquet" or output.is_dir()):
        fail(f"--output {output} must be a .parquet file path", 2)
    runtime = context.runtime(project)
    from flows.scoring import ScoringRequest, scoring

    request = ScoringRequest(
        batch=str(path.resolve()), project_dir=str(runtime.project_dir), output=str(output) if output else None
    )
    with failures_exit(1):
        result = scoring(request)
    render.scoring_warnings(result)
    if as_json:
        render.scoring_json(result)
        return
    render.scoring_summary(result)


def feedback_command(
    path: Annotated[Path, typer.Argument(help="Labels file (.parquet or .csv): the id column and the label.")],
    project: ProjectOption = None,
    scores: Annotated[
        Path | None, typer.Option(help="Directory of stored predictions (default: where `retrain score` writes).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run the feedback flow: join labels that arrived late to the stored scores by id, once.

    A row with no label gets it; the same label again is already known (sending a file twice changes
    nothing); ids with no stored score, a different label for a labelled row, ids given twice with
    different labels and labels the task does not know are reported, never dropped silently."""
    context.input_file(path, "labels file")
    if scores is not None and not scores.is_dir():
        fail(f"--scores {scores} is not a directory of predictions files", 2)
    runtime = context.runtime(project)
    from flows.feedback import FeedbackRequest, feedback

    request = FeedbackRequest(
        labels=str(path.resolve()),
        project_dir=str(runtime.project_dir),
        scores=str(scores.resolve()) if scores else None,
    )
    with failures_exit(1):
        result = feedback(request)
    if as_json:
        render.feedback_json(result)
        return
    render.feedback_summary(result)


def report_command(
    project: ProjectOption = None,
    output: Annotated[Path | None, typer.Option(help="HTML file to write (default: reports/dashboard.html).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run the report flow: one self-contained HTML dashboard (metrics per version and on real traffic,
    drift per batch, decisions, rollouts, run durations, training CPU and memory), also logged to MLflow."""
    if output is not None and (output.suffix != ".html" or output.is_dir()):
        fail(f"--output {output} must be an .html file path", 2)
    runtime = context.runtime(project)
    context.settings(runtime)  # a wrong --project stops here, before a Prefect server starts
    from flows.report import ReportRequest, report

    request = ReportRequest(project_dir=str(runtime.project_dir), output=str(output.resolve()) if output else None)
    with failures_exit(1):
        written = report(request)
    if as_json:
        from dataclasses import asdict

        render.print_json(asdict(written))
        return
    typer.echo(
        f"dashboard: {written.path} ({written.versions} version(s), {written.drift_checks} drift check(s), "
        f"{written.decisions} decision(s); MLflow run {written.mlflow_run})"
    )
