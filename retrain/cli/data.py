"""Data commands: generate demo batches, validate a batch, ingest it, build the snapshot, fit it (DVC stages)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from retrain.cli import context
from retrain.cli.context import CommitOption, ProjectOption, fail


def generate(
    project: ProjectOption = None,
    days: Annotated[int | None, typer.Option(help="How many days (default: demo.days in params.yaml).")] = None,
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Write demo daily batches into dataset.batches (days already there are kept)."""
    context.at_least(days, "--days", 1)
    runtime = context.runtime(project)
    settings = context.settings(runtime)
    from retrain.cli.demo_run import write_demo_batches

    if file_format not in ("parquet", "csv"):
        fail("--format must be parquet or csv", 2)
    paths = write_demo_batches(
        runtime.project_dir / settings.dataset.batches, settings, days or settings.demo.days, file_format
    )
    typer.echo(f"{len(paths)} batch files in {runtime.project_dir / settings.dataset.batches}")


def snapshot(project: ProjectOption = None) -> None:
    """Validate every batch and rebuild the training snapshot (the command of the DVC stage)."""
    runtime = context.runtime(project)
    settings = context.settings(runtime)
    from retrain.adapters import files
    from retrain.application.batches import assemble_training_set, validate_file

    # an unreadable batch is a BatchReadError: exit 2 (RetrainGroup)
    batches = files.list_batches(runtime.project_dir / settings.dataset.batches)
    validations = [validate_file(path, settings, runtime.project_dir, runtime.validation_cache_dir) for path in batches]
    refused = [v.report.summary() for v in validations if not v.report.passed]
    if refused:
        fail("\n".join(refused))
    out = assemble_training_set(validations, settings, runtime.project_dir)
    rows = sum(v.report.accepted for v in validations)
    quarantined = sum(v.report.quarantined for v in validations)
    typer.echo(f"wrote {out} ({rows} accepted rows from {len(batches)} batches; {quarantined} rows left out)")


def fit(
    project: ProjectOption = None,
    models: Annotated[Path, typer.Option(help="Where to write model.ubj and feature_spec.json.")] = Path("models"),
    plots: Annotated[Path, typer.Option(help="Where to write the plot data (CSV).")] = Path("plots"),
    metrics: Annotated[Path, typer.Option(help="Where to write the holdout metrics.")] = Path("metrics.json"),
) -> None:
    """Split, train and evaluate the training snapshot (the command of the DVC train stage)."""
    runtime = context.runtime(project)
    settings = context.settings(runtime)
    root = runtime.project_dir
    for option, path in (("--models", models), ("--plots", plots)):
        if (root / path).is_file():
            fail(f"{option} {root / path} is a file; it must be a directory", 2)
    if (root / metrics).is_dir():
        fail(f"--metrics {root / metrics} is a directory; it must be a file", 2)
    from retrain.application.fit import fit as fit_snapshot

    result = fit_snapshot(
        root, settings, root / models, root / plots, root / metrics, runtime.dask_scheduler, runtime.state_dir
    )
    typer.echo(json.dumps(result["holdout"]))


def validate(
    path: Annotated[Path, typer.Argument(help="A batch file (.parquet or .csv).")],
    project: ProjectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Validate a batch against the current contract without training. Exit 0 accepted, 1 refused, 2 unreadable."""
    runtime = context.runtime(project)
    settings = context.settings(runtime)
    from retrain.adapters.files import BatchReadError
    from retrain.application.batches import validate_file

    try:
        report = validate_file(path, settings, runtime.project_dir).report
    except BatchReadError as error:  # caught by name: --json still prints its one object first
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "passed": False,
                        "error": str(error),
                        "rows_in": 0,
                        "accepted": 0,
                        "quarantined": 0,
                        "failures": [],
                    }
                )
            )
        fail(str(error), error.exit_code)
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.summary())
    if not report.passed:
        raise typer.Exit(1)


def ingest(
    path: Annotated[Path, typer.Argument(help="A new batch file (.parquet or .csv).")],
    project: ProjectOption = None,
    commit: CommitOption = None,
) -> None:
    """Validate a new batch; store accepted rows and quarantine under DVC, push them, log the batch.

    With --commit (or git.commit: true) the DVC pointers and the batch log are then committed to git
    in a commit that names the batch."""
    runtime = context.runtime(project)
    settings = context.settings(runtime)
    from retrain.application.ingest import ingest_batch
    from retrain.domain.errors import ServiceError

    # An unreadable batch exits 2 and a refused one 1 (their own exit codes); a store or push that
    # failed has always exited 1, not a service error's 75.
    try:
        entry = ingest_batch(runtime, settings, path)
    except ServiceError as error:
        fail(str(error))
    typer.echo(
        f"{entry['batch']}: {entry['rows_in']} rows in, {entry['accepted']} accepted, {entry['quarantined']} "
        f"quarantined; stored under DVC ({entry['status']})"
    )
    from retrain.application.versioning import commit_data_versions, ingest_message, wants_commit

    if wants_commit(settings, commit):
        # the batch is stored either way; a refused commit says why (exit 1) and can be redone by hand
        committed = commit_data_versions(runtime.project_dir, settings, ingest_message(settings, entry))
        typer.echo(committed.summary)
