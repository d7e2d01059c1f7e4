"""Data commands: generate demo batches, validate a batch, ingest it, build the snapshot, fit it (DVC stages),
purge what is past retention."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from retrain.cli import context, render
from retrain.cli.context import CommitOption, ProjectOption, StackOption, fail, failures_exit

if TYPE_CHECKING:
    from retrain.application.results import PurgeReport


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
    new_privacy_salt: Annotated[
        bool,
        typer.Option(
            "--new-privacy-salt",
            help="Create a privacy salt when there is none (else sensitive columns need the existing one).",
        ),
    ] = False,
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
        root,
        settings,
        root / models,
        root / plots,
        root / metrics,
        runtime.dask_scheduler,
        runtime.state_dir,
        new_privacy_salt,
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


def purge(
    project: ProjectOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be deleted and kept.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Delete without asking.")] = False,
    reason: Annotated[str, typer.Option(help="Why (kept in the ledger).")] = "retention",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    commit: CommitOption = None,
    stack: StackOption = False,
) -> None:
    """Delete what is past `retention:` (batches, quarantine, scores, old training snapshots) from the
    workspace, the DVC cache and the remote, and record it in the ledger.

    The training snapshots of the champion and previous champion (and of a challenger or candidate, of
    a version not decided yet, the workspace's training set) and a running rollout's scores are kept
    and named. Without --yes it shows what would go and asks, then deletes exactly that (or nothing,
    if it changed meanwhile); nothing past retention: nothing is deleted or recorded. With --commit (or
    git.commit: true) the rewritten DVC pointers are committed, naming the ledger entry. With --stack
    the purge runs on the worker.
    """
    reason = context.text(reason, "--reason", 3)
    runtime = context.runtime(project, stack)
    context.settings(runtime)
    expected: str | None = None
    with failures_exit(1):
        if not (yes or dry_run):
            if not _interactive():
                fail("purge deletes data for good: run again with --yes to do it, or --dry-run to see what would go", 2)
            shown = run_purge(runtime.project_dir, reason, dry_run=True)
            render.purge(shown)
            if not shown.deleted.get("files") and not shown.deleted.get("snapshots"):
                return
            typer.confirm("Delete these for good?", abort=True)
            expected = shown.plan
        report = run_purge(runtime.project_dir, reason, dry_run=dry_run, expected_plan=expected, commit=commit)
    if as_json:
        render.print_json(report.model_dump(mode="json"))
    else:
        render.purge(report)


def _interactive() -> bool:
    """Whether someone at a terminal can answer the purge's question."""
    import sys

    return sys.stdin.isatty()


def run_purge(
    project_dir: Path, reason: str, *, dry_run: bool, expected_plan: str | None = None, commit: bool | None = None
) -> PurgeReport:
    """The purge: a dry run in this process; a purge as a flow run (in this process, or on the stack's
    worker, the only account that writes the ledger there)."""
    request = {
        "reason": reason,
        "requested_by": context.whoami(),
        "dry_run": dry_run,
        "project_dir": str(project_dir),
        "expected_plan": expected_plan,
        "commit": commit,
    }
    if context.on_stack():
        from retrain.application.results import PurgeReport
        from retrain.deploy.client import follow_run, start_deployment_run
        from retrain.deploy.deployments import PURGE_DEPLOYMENT

        return follow_run(start_deployment_run(f"purge/{PURGE_DEPLOYMENT}", request), PurgeReport)
    if dry_run:
        from retrain.adapters.environment import resolve_runtime
        from retrain.application.results import PurgeReport
        from retrain.application.retention import purge as plan_only

        where = resolve_runtime(project_dir=project_dir)
        settings = context.settings(where)
        registry = context.registry(where, settings)
        done = plan_only(where, settings, registry, actor=context.whoami(), reason=reason, dry_run=True)
        return PurgeReport.model_validate(done.to_dict())
    from flows.purge import PurgeRequest
    from flows.purge import purge as purge_flow

    return purge_flow(PurgeRequest.model_validate(request))
