"""The ``retrain`` command line.

Only typer is imported at module level: Prefect, MLflow, DVC and great-expectations are imported
inside the commands that need them, so ``retrain --help`` answers at once.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from retrain.environment import Runtime, apply_process_defaults, resolve_runtime

if TYPE_CHECKING:
    from collections.abc import Callable

    from retrain.demo import DemoStep
    from retrain.domain.settings import Settings

app = typer.Typer(
    name="retrain",
    help="Train, validate, compare and promote tabular models under Prefect, with DVC and MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ProjectOption = Annotated[
    Path | None,
    typer.Option("--project", help="Project directory holding params.yaml (default: RETRAIN_PROJECT or .)."),
]


StackOption = Annotated[
    bool, typer.Option("--stack", help="Use the team stack started by `retrain stack up` (its profile).")
]


def _load_stack_profile(project: Path | None) -> None:
    """With --stack: the client profile that `retrain stack up` wrote, into this process's environment
    (before any runtime is resolved or Prefect/MLflow imported, so every client points at the stack)."""
    import os

    from retrain.stack import StackError, load_profile, stack_config_at

    try:
        os.environ.update(load_profile(stack_config_at(resolve_runtime(project_dir=project).state_dir)))
    except StackError as error:
        _fail(str(error))


def _on_stack() -> bool:
    """True with --stack or in a shell that sourced the stack's profile (it sets RETRAIN_STACK=1)."""
    import os

    return os.environ.get("RETRAIN_STACK") == "1"


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _runtime(project: Path | None, stack: bool = False) -> Runtime:
    if stack:
        _load_stack_profile(project)
    runtime = resolve_runtime(project_dir=project)
    apply_process_defaults(runtime)
    return runtime


def _settings(runtime: Runtime) -> Settings:
    from retrain.domain.settings import SettingsError, load_settings

    try:
        return load_settings(runtime.params_path)
    except SettingsError as error:
        _fail(str(error), 2)


def _run_training(project_dir: Path, triggered_by: str, reason: str) -> dict[str, Any]:
    from flows.training import TrainingRequest, training

    return training(TrainingRequest(project_dir=str(project_dir), triggered_by=triggered_by, reason=reason))


def _user_errors() -> tuple[type[BaseException], ...]:
    from retrain.adapters.files import BatchReadError
    from retrain.domain.settings import SettingsError
    from retrain.domain.splitting import SplitError
    from retrain.domain.training import TrainingDataError
    from retrain.errors import RetrainError

    return (RetrainError, SettingsError, SplitError, TrainingDataError, BatchReadError)


def _whoami() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@app.command()
def train(
    project: ProjectOption = None,
    reason: Annotated[str, typer.Option(help="Why this run is started (recorded with the run).")] = "manual",
    stack: StackOption = False,
) -> None:
    """Run the training flow on the batches named in params.yaml: validate, train, compare, promote."""
    runtime = _runtime(project, stack)
    settings = _settings(runtime)
    if _on_stack():
        from retrain.stack_client import start_deployment_run

        request = {"project_dir": str(runtime.project_dir), "triggered_by": _whoami(), "reason": reason}
        try:
            run_id = start_deployment_run(settings.retraining.deployment, request)
        except _user_errors() as error:
            _fail(str(error))
        typer.echo(
            f"training run {run_id} started on the team stack (the worker trains and registers).\n"
            f"When it waits at the reviewer gate: retrain approve {run_id} --reviewer NAME (or the Prefect UI)."
        )
        return
    try:
        result = _run_training(runtime.project_dir, _whoami(), reason)
    except _user_errors() as error:
        _fail(str(error))
    outcome = result["outcome"]
    typer.echo(
        f"{outcome['note']}: champion v{outcome['champion_version']}, challenger v{outcome['challenger_version']}"
    )
    for reason_text in outcome["reasons"]:
        typer.echo(f"  - {reason_text}")


@app.command()
def status(
    project: ProjectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show the champion, challenger and previous champion with metrics, data md5 and contract."""
    runtime = _runtime(project)
    settings = _settings(runtime)
    from mlflow.exceptions import MlflowException

    from retrain.status import lifecycle_status

    try:
        report = lifecycle_status(_registry(runtime, settings))
    except MlflowException as error:  # e.g. 401 on the team stack: say so, never show "no champion"
        hint = (
            " (set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)"
            if error.error_code == "UNAUTHENTICATED"
            else ""
        )
        _fail(f"MLflow at {runtime.mlflow_tracking_uri} refused: {error.error_code}{hint}")
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Model {report['model']}")
    for column in ("alias", "version", "roc_auc", "pr_auc", "data md5", "contract", "run"):
        table.add_column(column)
    for alias in ("champion", "challenger", "previous_champion"):
        info = report[alias]
        if info is None:
            table.add_row(alias, "—", "", "", "", "", "")
            continue
        metrics = info["metrics"]
        contract = info["contract"] or {}
        table.add_row(
            alias,
            info["version"],
            f"{metrics.get('roc_auc', float('nan')):.4f}",
            f"{metrics.get('pr_auc', float('nan')):.4f}",
            (info["data_md5"] or "")[:12],
            f"{contract.get('name', '')} v{contract.get('version', '')}",
            info["run_id"][:12],
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)


@app.command()
def generate(
    project: ProjectOption = None,
    days: Annotated[int | None, typer.Option(help="How many days (default: demo.days in params.yaml).")] = None,
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Write demo daily batches into dataset.batches (days already there are kept)."""
    runtime = _runtime(project)
    settings = _settings(runtime)
    from retrain.demo import write_demo_batches

    if file_format not in ("parquet", "csv"):
        _fail("--format must be parquet or csv", 2)
    paths = write_demo_batches(
        runtime.project_dir / settings.dataset.batches, settings, days or settings.demo.days, file_format
    )
    typer.echo(f"{len(paths)} batch files in {runtime.project_dir / settings.dataset.batches}")


@app.command()
def snapshot(project: ProjectOption = None) -> None:
    """Validate every batch and rebuild the training snapshot (the command of the DVC stage)."""
    runtime = _runtime(project)
    settings = _settings(runtime)
    from retrain.adapters import files
    from retrain.batches import assemble_training_set, validate_file

    try:
        batches = files.list_batches(runtime.project_dir / settings.dataset.batches)
        validations = [validate_file(path, settings, runtime.project_dir) for path in batches]
    except files.BatchReadError as error:
        _fail(str(error), 2)
    refused = [v.report.summary() for v in validations if not v.report.passed]
    if refused:
        _fail("\n".join(refused))
    out = assemble_training_set(validations, settings, runtime.project_dir)
    rows = sum(v.report.accepted for v in validations)
    quarantined = sum(v.report.quarantined for v in validations)
    typer.echo(f"wrote {out} ({rows} accepted rows from {len(batches)} batches; {quarantined} rows left out)")


@app.command()
def fit(
    project: ProjectOption = None,
    models: Annotated[Path, typer.Option(help="Where to write model.ubj and feature_spec.json.")] = Path("models"),
    plots: Annotated[Path, typer.Option(help="Where to write the plot data (CSV).")] = Path("plots"),
    metrics: Annotated[Path, typer.Option(help="Where to write the holdout metrics.")] = Path("metrics.json"),
) -> None:
    """Split, train and evaluate the training snapshot (the command of the DVC train stage)."""
    runtime = _runtime(project)
    settings = _settings(runtime)
    from retrain.fit import fit as fit_snapshot

    root = runtime.project_dir
    result = fit_snapshot(root, settings, root / models, root / plots, root / metrics)
    typer.echo(json.dumps(result["holdout"]))


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="A batch file (.parquet or .csv).")],
    project: ProjectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Validate a batch against the current contract without training. Exit 0 accepted, 1 refused, 2 unreadable."""
    runtime = _runtime(project)
    settings = _settings(runtime)
    from retrain.adapters.files import BatchReadError
    from retrain.batches import validate_file

    try:
        report = validate_file(path, settings, runtime.project_dir).report
    except BatchReadError as error:
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
        _fail(str(error), 2)
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.summary())
    if not report.passed:
        raise typer.Exit(1)


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="A new batch file (.parquet or .csv).")],
    project: ProjectOption = None,
) -> None:
    """Validate a new batch; store accepted rows and quarantine under DVC, push them, log the batch."""
    runtime = _runtime(project)
    settings = _settings(runtime)
    from retrain.adapters.datastore import DataStoreError
    from retrain.adapters.files import BatchReadError
    from retrain.ingest import IngestRefused, ingest_batch

    try:
        entry = ingest_batch(runtime, settings, path)
    except BatchReadError as error:
        _fail(str(error), 2)
    except (IngestRefused, DataStoreError) as error:
        _fail(str(error))
    typer.echo(
        f"{entry['batch']}: {entry['rows_in']} rows in, {entry['accepted']} accepted, {entry['quarantined']} "
        f"quarantined; stored under DVC ({entry['status']})"
    )


def _registry(runtime: Runtime, settings: Settings) -> Any:
    from retrain.adapters.registry import ModelRegistry

    return ModelRegistry.for_project(runtime, settings)


@app.command()
def reproduce(
    version: Annotated[str, typer.Argument(help="Registered model version to rebuild.")],
    project: ProjectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Rebuild a model version from its evidence (data md5, contract, settings); exit 1 unless byte-identical."""
    runtime = _runtime(project)
    settings = _settings(runtime)
    from retrain.adapters.datastore import DataStoreError
    from retrain.reproduce import ReproductionError
    from retrain.reproduce import reproduce as rebuild

    try:
        result = rebuild(runtime, _registry(runtime, settings), version)
    except (ReproductionError, DataStoreError) as error:
        _fail(str(error))
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    elif result.identical:
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
    if not result.identical:
        raise typer.Exit(1)


@app.command()
def history(
    project: ProjectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Print the promotion ledger: every promotion, refusal, timeout and rollback, oldest first."""
    runtime = _runtime(project)
    settings = _settings(runtime)
    from retrain.adapters.ledger import Ledger

    ledger = Ledger(runtime.ledger_url)
    entries = ledger.entries(settings.model.registered_name)
    ledger.dispose()
    if as_json:
        typer.echo(json.dumps([entry.to_dict() for entry in entries], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Promotion ledger: {settings.model.registered_name}")
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
    for column in columns:
        table.add_column(column)
    for entry in entries:
        when = entry.recorded_at.strftime("%Y-%m-%d %H:%M:%S") if entry.recorded_at else ""
        table.add_row(
            str(entry.position),
            when,
            entry.kind,
            entry.champion_before or "—",
            entry.challenger or "—",
            entry.champion_after or "—",
            entry.actor,
            ", ".join(entry.reviewers) or "—",
            entry.comment,
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)


@app.command(name="doctor")
def doctor_command(project: ProjectOption = None) -> None:
    """Repair an interrupted promotion (aliases and ledger disagree) and check the ledger is a chain.

    Exits 1 when something cannot be repaired, e.g. a broken chain in the append-only ledger.
    """
    runtime = _runtime(project)
    settings = _settings(runtime)
    from retrain.adapters.ledger import Ledger
    from retrain.promotion import doctor

    ledger = Ledger(runtime.ledger_url)
    try:
        report = doctor(_registry(runtime, settings), ledger)
    finally:
        ledger.dispose()
    for action in report.repaired:
        typer.echo(f"repaired: {action}")
    for problem in report.problems:
        typer.echo(f"problem: {problem}")
    if not report.healthy:
        _fail(f"unhealthy: {len(report.problems)} problem(s) the doctor cannot repair (see above)")
    typer.echo("healthy: aliases and ledger agree, and the ledger is a chain")


@app.command(name="rollback")
def rollback_command(
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the ledger).")],
    project: ProjectOption = None,
    stack: StackOption = False,
) -> None:
    """Move champion back to previous-champion (a Prefect flow, recorded in the ledger).

    On the team stack the rollback runs on the worker (its deployment): only the worker's account may
    move aliases there.
    """
    runtime = _runtime(project, stack)
    _settings(runtime)
    request = {"reason": reason, "requested_by": _whoami(), "project_dir": str(runtime.project_dir)}
    try:
        if _on_stack():
            from retrain.deployments import ROLLBACK_DEPLOYMENT
            from retrain.stack_client import follow_run, start_deployment_run

            result = follow_run(start_deployment_run(f"rollback/{ROLLBACK_DEPLOYMENT}", request))
        else:
            from flows.rollback import RollbackRequest, rollback

            result = rollback(RollbackRequest.model_validate(request))
    except _user_errors() as error:
        _fail(str(error))
    typer.echo(f"champion rolled back from v{result['demoted']} to v{result['restored']}")


@app.command(name="drift")
def drift_command(
    paths: Annotated[list[Path] | None, typer.Argument(help="Batch files to check (default: the newest).")] = None,
    project: ProjectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    act: Annotated[bool, typer.Option("--act/--no-act", help="Start the retraining when the decision says so.")] = True,
) -> None:
    """Run the drift flow: batches vs the champion's reference profile, then the (debounced) decision."""
    runtime = _runtime(project)
    _settings(runtime)
    from flows.drift import DriftRequest, drift

    request = DriftRequest(
        project_dir=str(runtime.project_dir), batches=[str(p.resolve()) for p in paths or []], act=act
    )
    try:
        result = drift(request)
    except _user_errors() as error:
        _fail(str(error))
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
        return
    typer.echo(
        f"drift share {result['drift_share']:.0%} ({len(result['drifted_features'])} features: "
        f"{', '.join(result['drifted_features']) or 'none'}); decision: {result['decision']}"
    )
    for reason in result["reasons"]:
        typer.echo(f"  - {reason}")
    if result["training"]:
        typer.echo(f"retraining: {result['training']}")


@app.command(name="score")
def score_command(
    path: Annotated[Path, typer.Argument(help="Batch file to score.")],
    project: ProjectOption = None,
    output: Annotated[Path | None, typer.Option(help="Predictions file (.parquet).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run the scoring flow: champion scores (version beside each), challenger in shadow."""
    runtime = _runtime(project)
    _settings(runtime)
    from flows.scoring import ScoringRequest, scoring

    request = ScoringRequest(
        batch=str(path.resolve()), project_dir=str(runtime.project_dir), output=str(output) if output else None
    )
    try:
        result = scoring(request)
    except _user_errors() as error:
        _fail(str(error))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(f"scored {result['rows']} rows with champion v{result['champion']} → {result['predictions']}")
    if result["shadow"]:
        typer.echo(
            f"shadow challenger v{result['challenger']}: agreement {result['shadow']['agreement']:.1%}, "
            f"gains {result['shadow']['gains'] or 'await labels'}"
        )


@app.command()
def decisions(
    project: ProjectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Every retraining decision of the drift flow (retrain, none, cooldown, budget, in_flight) with reasons."""
    runtime = _runtime(project)
    settings = _settings(runtime)
    from retrain.adapters.ledger import DecisionLog

    log = DecisionLog(runtime.ledger_url)
    records = log.records(settings.model.registered_name)
    log.dispose()
    if as_json:
        typer.echo(json.dumps([record.to_dict() for record in records], indent=2))
        return
    for record in records:
        typer.echo(
            f"#{record.position} {record.recorded_at:%Y-%m-%d %H:%M:%S} champion v{record.champion} "
            f"{', '.join(record.batches)}: {record.decision} — {'; '.join(record.reasons)}"
        )


@app.command()
def deploy(project: ProjectOption = None) -> None:
    """Register the deployments (nightly retraining, drift check, scoring) on the process work pool."""
    runtime = _runtime(project)
    settings = _settings(runtime)
    from retrain.deployments import deploy_all

    try:
        names = deploy_all(settings, runtime.project_dir)
    except _user_errors() as error:
        _fail(str(error))
    typer.echo(
        f"registered {', '.join(names)} on work pool '{settings.schedules.work_pool}'; start a worker with "
        f"`prefect worker start --pool {settings.schedules.work_pool}` in this project's environment"
    )


@app.command()
def serve(project: ProjectOption = None) -> None:
    """Serve the deployments with their schedules from this process (embedded default; Ctrl-C stops)."""
    runtime = _runtime(project)
    settings = _settings(runtime)
    from retrain.deployments import serve_all

    serve_all(settings, runtime.project_dir)


TOKEN_ENV = "RETRAIN_REVIEWER_TOKEN"


def _reviewer_token(token: str | None) -> str:
    """The reviewer's token: from the environment or a hidden prompt, never from argv (shell history)."""
    import os

    value = token or os.environ.get(TOKEN_ENV, "")
    if not value:
        value = typer.prompt("Reviewer token", hide_input=True)
    return value.strip()


def _send_decision(run_id: str, decision: str, reviewer: str, comment: str, project: Path | None) -> None:
    runtime = _runtime(project)
    _settings(runtime)
    from retrain.approval import Answer, submit_decision

    try:
        receipt = submit_decision(run_id, Answer(decision, reviewer, _reviewer_token(None), comment))
    except _user_errors() as error:
        _fail(str(error))
    typer.echo(f"{receipt.message}; gate now: {receipt.state}")


ReviewerOption = Annotated[str, typer.Option("--reviewer", help="Your name as listed in approval.reviewers.")]
RunIdArgument = Annotated[str, typer.Argument(help="The paused training flow run (its id in the Prefect UI).")]


@app.command()
def approve(
    run_id: RunIdArgument,
    reviewer: ReviewerOption,
    comment: Annotated[str, typer.Option(help="Why you approve (kept in the ledger).")] = "",
    project: ProjectOption = None,
) -> None:
    """Approve a training run paused at the reviewer gate (token from RETRAIN_REVIEWER_TOKEN or a prompt)."""
    _send_decision(run_id, "approve", reviewer, comment, project)


@app.command()
def reject(
    run_id: RunIdArgument,
    reviewer: ReviewerOption,
    reason: Annotated[str, typer.Option("--reason", help="Why you reject (required, kept in the ledger).")],
    project: ProjectOption = None,
) -> None:
    """Reject a training run paused at the reviewer gate: the champion stays, the refusal is recorded."""
    _send_decision(run_id, "reject", reviewer, reason, project)


@app.command(name="approval-secret")
def approval_secret_command(
    rotate: Annotated[
        bool, typer.Option(help="Replace an existing secret (every issued token stops working).")
    ] = False,
    project: ProjectOption = None,
) -> None:
    """Create the reviewer-token secret in its Prefect Secret block (random, never printed)."""
    runtime = _runtime(project)
    settings = _settings(runtime)
    import secrets

    from prefect.blocks.system import Secret

    name = settings.approval.secret_block
    try:
        Secret.load(name)
        exists = True
    except ValueError:
        exists = False
    if exists and not rotate:
        typer.echo(f"the Prefect Secret block '{name}' exists already (use --rotate to replace it)")
        return
    Secret(value=secrets.token_hex(32)).save(name, overwrite=True)
    typer.echo(
        f"{'rotated' if exists else 'created'} the Prefect Secret block '{name}'; issue tokens with "
        "`retrain reviewer-token NAME`"
    )


@app.command(name="reviewer-token")
def reviewer_token_command(
    name: Annotated[str, typer.Argument(help="A reviewer listed in approval.reviewers.")],
    project: ProjectOption = None,
) -> None:
    """Issue a reviewer's token (needs the approval secret: Prefect Secret block or its env variable)."""
    runtime = _runtime(project)
    settings = _settings(runtime)
    from retrain.adapters.approval_secret import load_approval_secret
    from retrain.domain.approval import normalise, reviewer_token

    if normalise(name) not in {normalise(listed) for listed in settings.approval.reviewers}:
        _fail(f"'{name}' is not listed in approval.reviewers ({', '.join(settings.approval.reviewers)})")
    try:
        secret = load_approval_secret(settings.approval)
    except _user_errors() as error:
        _fail(str(error))
    typer.echo(reviewer_token(secret, name))


def _print_step(step: DemoStep, result: dict[str, Any]) -> None:
    if step.kind == "drift":
        drifted = result["drifted_features"]
        typer.secho(
            f"\n==> {step.title}: drift share {result['drift_share']:.0%} "
            f"({len(drifted)} features{': ' + ', '.join(drifted[:6]) if drifted else ''}"
            f"{'…' if len(drifted) > 6 else ''}) → {result['decision']}",
            bold=True,
        )
        if result["decision"] != "none":
            for reason in result["reasons"][-1:]:
                typer.echo(f"    - {reason}")
        if result["training"]:
            training = result["training"]
            typer.echo(
                f"    retraining ({training['via']}): {training['note']}, champion v{training['champion_version']}"
            )
        return
    outcome = result["outcome"]
    typer.secho(f"\n==> {step.title}: {outcome['note']}", bold=True)
    for reason_text in outcome["reasons"]:
        typer.echo(f"    - {reason_text}")


def _run_drift(project_dir: Path, batch: Path) -> dict[str, Any]:
    from flows.drift import DriftRequest, drift

    return drift(DriftRequest(project_dir=str(project_dir), batches=[str(batch)]))


@app.command()
def demo(
    project: ProjectOption = None,
    rows_per_day: Annotated[int | None, typer.Option(help="Rows per daily batch (default from params.yaml).")] = None,
    days: Annotated[int | None, typer.Option(help="Days of batches (default from params.yaml).")] = None,
    drift_day: Annotated[
        int | None, typer.Option(help="1-based day from which batches drift (0: no drift; default from params).")
    ] = None,
    stack: StackOption = False,
) -> None:
    """The whole lifecycle on generated data, from a fresh demo state (safe to run twice).

    With --stack the flows run on the team stack's worker (through the deployments) and the demo
    reviewer answers them through the Prefect API; the registry, ledger and decisions are the stack's.
    """
    runtime = _runtime(project, stack)
    settings = _settings(runtime)
    changes: dict[str, Any] = {}
    if rows_per_day is not None:
        changes["rows_per_day"] = rows_per_day
    if days is not None:
        changes["days"] = days
    if drift_day is not None:
        changes["drift_day"] = None if drift_day == 0 else drift_day - 1
    if changes:
        from pydantic import ValidationError

        from retrain.domain.settings import DemoSettings

        try:
            demo_settings = DemoSettings.model_validate({**settings.demo.model_dump(), **changes})
        except ValidationError as error:
            _fail(f"demo options: {error.errors()[0]['msg']}", 2)
        settings = settings.model_copy(update={"demo": demo_settings})
    from retrain.demo import run_demo

    started = time.perf_counter()
    on_stack = _on_stack()
    try:
        run_training, run_drift = _demo_runners(settings, on_stack)
        results = run_demo(runtime, settings, run_training, run_drift, on_step=_print_step)
    except _user_errors() as error:
        _fail(str(error))
    _print_demo_summary(runtime, settings, results, time.perf_counter() - started, on_stack)


def _demo_runners(
    settings: Settings, on_stack: bool
) -> tuple[Callable[[Path, str], dict[str, Any]], Callable[[Path, Path], dict[str, Any]]]:
    """How the demo runs a training and a drift check: in this process, or on the stack's worker."""
    from retrain.demo import demo_reviewer_answers, receipt_printer, reviewed_by_demo_reviewer

    if on_stack:
        from retrain.stack_client import stack_demo_runners

        return stack_demo_runners(settings, demo_reviewer_answers(settings), receipt_printer(_print_receipt))
    review = reviewed_by_demo_reviewer(settings, on_receipt=_print_receipt)
    return (
        lambda workspace, why: review(lambda: _run_training(workspace, "demo", why)),
        lambda workspace, batch: review(lambda: _run_drift(workspace, batch)),
    )


def _print_receipt(reviewer: str, message: str) -> None:
    typer.echo(f"    gate passed, run paused for review; {reviewer} answers: {message}")


def _print_demo_summary(
    runtime: Runtime,
    settings: Settings,
    results: list[tuple[DemoStep, dict[str, Any]]],
    seconds: float,
    on_stack: bool = False,
) -> None:
    from rich.console import Console
    from rich.table import Table

    metric = settings.gate.primary_metric
    table = Table(title=f"Retrain demo: {settings.model.registered_name} ({seconds:.0f} s)")
    for column in ("step", "data", "challenger", f"{metric}", f"champion {metric}", "decision", "why"):
        table.add_column(column)
    for step, result in results:
        if step.kind == "drift":
            training = result["training"]
            table.add_row(
                step.title,
                f"{result['rows']} rows",
                "—" if not training else f"v{training['challenger_version']}",
                "—",
                f"v{result['champion']}",
                result["decision"] + (f" → {training['note']}" if training else ""),
                f"drift share {result['drift_share']:.0%}",
            )
            continue
        outcome, challenger, before = result["outcome"], result["challenger"], result["champion_before"]
        snap = result["snapshot"]
        table.add_row(
            step.title,
            f"{snap['rows']} rows, md5 {snap['md5'][:8]}",
            f"v{challenger['version']}",
            f"{challenger['metrics'][metric]:.4f}",
            "—" if before is None else f"v{before['version']}: {before['metrics'][metric]:.4f}",
            outcome["note"],
            ", ".join(c["name"] for c in result["decision"]["checks"] if not c["passed"]) or "all checks passed",
        )
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    if on_stack:
        import os

        console.print(
            f"\nSee it on the team stack (`source {runtime.state_dir / 'stack' / 'stack.env'}` first, and set\n"
            "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD to your MLflow account for `status`):\n"
            "  .venv/bin/retrain status     # champion, challenger, previous champion\n"
            "  .venv/bin/retrain history    # the stack's ledger (PostgreSQL)\n"
            f"  Prefect UI {os.environ.get('PREFECT_API_URL', '').removesuffix('/api')}   "
            f"MLflow UI {runtime.mlflow_ui_url}\n"
            f"Demo workspace (a git + DVC repo, DVC remote on S3): {runtime.state_dir / 'demo' / 'workspace'}"
        )
        return
    db = runtime.state_dir / "mlflow" / "mlflow.db"
    console.print(
        "\nSee it (the .venv commands work whether or not uv is on your PATH):\n"
        "  .venv/bin/retrain status          # champion, challenger, previous champion (--json for machines)\n"
        "  .venv/bin/retrain history         # every promotion, refusal, timeout, rollback, with reviewers\n"
        "  .venv/bin/retrain decisions       # every drift decision (retrain, none, cooldown, …) with reasons\n"
        f"  .venv/bin/mlflow ui --backend-store-uri sqlite:///{db} --port 5000\n"
        f"  PREFECT_HOME={runtime.prefect_home} .venv/bin/prefect server start   # runs + artifacts\n"
        f"Demo workspace (a git + DVC repo): {runtime.state_dir / 'demo' / 'workspace'}"
    )


stack_app = typer.Typer(help="The team stack as local processes: PostgreSQL, S3, MLflow, Prefect server + worker.")
app.add_typer(stack_app, name="stack")


def _stack(project: Path | None) -> tuple[Runtime, Settings, Any, dict[str, Any]]:
    """Runtime, settings, stack config and its secrets; points this process's clients at the stack."""
    import os

    from retrain.stack import StackConfig, client_env, load_secrets

    runtime = resolve_runtime(project_dir=project)
    settings = _settings(runtime)
    config = StackConfig.from_env(runtime.state_dir, settings.schedules.work_pool)
    keys = load_secrets(config, settings.approval.reviewers)
    os.environ.update(client_env(config, keys))  # before prefect or mlflow are imported
    apply_process_defaults(runtime)
    return runtime, settings, config, keys


def _stack_setup(runtime: Runtime, settings: Settings, mlflow_url: str, keys: dict[str, Any]) -> None:
    """Once the servers answer: MLflow accounts and permissions, the approval secret, the deployments."""
    from prefect.blocks.system import Secret

    from retrain.deployments import deploy_all
    from retrain.stack import ensure_mlflow_accounts

    model = settings.model
    ensure_mlflow_accounts(
        mlflow_url, keys, model.registered_name, [model.experiment, f"{model.experiment}-monitoring"]
    )
    try:
        Secret.load(settings.approval.secret_block)
    except ValueError:
        Secret(value=keys["approval_secret"]).save(settings.approval.secret_block)
    deploy_all(settings, runtime.project_dir)


def _print_stack(statuses: list[Any], config: Any) -> None:
    for item in statuses:
        state = "healthy" if item.healthy else ("running, not healthy" if item.pid else "stopped")
        typer.echo(f"  {item.name:<15} {state:<22} pid {item.pid or '—':<8} log {item.log}")
    typer.echo(f"  Prefect UI  http://{config.host}:{config.prefect_port}   MLflow UI  {config.mlflow_url}")


@stack_app.command("up")
def stack_up(project: ProjectOption = None) -> None:
    """Start every service that is not running (idempotent) and wait until all are healthy."""
    runtime, settings, config, keys = _stack(project)
    from retrain.errors import RetrainError
    from retrain.stack import up, write_profile

    started = time.perf_counter()
    try:
        statuses = up(config, keys, typer.echo, lambda: _stack_setup(runtime, settings, config.mlflow_url, keys))
    except RetrainError as error:  # a service that will not start, or a deployment the API refused
        _fail(str(error))
    profile = write_profile(config, keys)
    typer.echo(f"stack healthy in {time.perf_counter() - started:.0f} s")
    _print_stack(statuses, config)
    typer.echo(
        f"Use it: `source {profile}` (Prefect + MLflow for people; the worker alone may register and promote).\n"
        f"Passwords: {config.home / 'secrets.json'} (mode 0600)."
    )


@stack_app.command("setup")
def stack_setup(project: ProjectOption = None) -> None:
    """Accounts, permissions, approval secret and deployments on services started elsewhere (compose).

    Reads PREFECT_API_URL/PREFECT_API_AUTH_STRING, MLFLOW_TRACKING_URI, RETRAIN_MLFLOW_ADMIN_PASSWORD,
    RETRAIN_MLFLOW_SERVICE_PASSWORD and RETRAIN_APPROVAL_SECRET from the environment.
    """
    import os

    runtime = _runtime(project)
    settings = _settings(runtime)
    names = ("RETRAIN_MLFLOW_ADMIN_PASSWORD", "RETRAIN_MLFLOW_SERVICE_PASSWORD", "RETRAIN_APPROVAL_SECRET")
    missing = [name for name in (*names, "MLFLOW_TRACKING_URI", "PREFECT_API_URL") if not os.environ.get(name)]
    if missing:
        _fail(f"set {', '.join(missing)}", 2)
    keys: dict[str, Any] = {
        "mlflow_admin_password": os.environ[names[0]],
        "mlflow_service_password": os.environ[names[1]],
        "approval_secret": os.environ[names[2]],
        "mlflow_people": {},
    }
    _stack_setup(runtime, settings, os.environ["MLFLOW_TRACKING_URI"], keys)
    typer.echo("accounts, approval secret and deployments are in place")


@stack_app.command("down")
def stack_down(project: ProjectOption = None) -> None:
    """Stop every service of the stack; no process is left behind."""
    _, _, config, keys = _stack(project)
    from retrain.stack import down

    stopped = down(config, keys)
    typer.echo(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


@stack_app.command("status")
def stack_status(
    project: ProjectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Each service: pid, health, log; exit 1 unless all are healthy."""
    _, _, config, keys = _stack(project)
    from retrain.stack import status as stack_statuses

    statuses = stack_statuses(config, keys)
    if as_json:
        typer.echo(json.dumps([item.to_dict() for item in statuses], indent=2))
    else:
        _print_stack(statuses, config)
    if not all(item.healthy for item in statuses):
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
