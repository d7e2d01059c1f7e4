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

from retrain.adapters.environment import Runtime, apply_process_defaults, resolve_runtime

if TYPE_CHECKING:
    from collections.abc import Callable

    from retrain.demo import DemoStep
    from retrain.domain.settings import Settings
    from retrain.stack import MlflowAccounts, StackConfig, StackSecrets

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


def _text(value: str, option: str, min_chars: int = 1) -> str:
    """A free-text option (a reason, a comment): stripped, and refused in one line when blank."""
    text = value.strip()
    if len(text) < min_chars:
        _fail(
            f"{option} needs at least {min_chars} non-blank character{'s' if min_chars > 1 else ''} (got {value!r})", 2
        )
    return text


def _at_least(value: int | None, option: str, minimum: int) -> None:
    if value is not None and value < minimum:
        _fail(f"{option} must be at least {minimum} (got {value})", 2)


def _input_file(path: Path, what: str) -> Path:
    """A file the command reads: it must exist and be a file (not a directory)."""
    if not path.exists():
        _fail(f"{what} {path} does not exist", 2)
    if not path.is_file():
        _fail(f"{what} {path} is not a file", 2)
    return path


def _runtime(project: Path | None, stack: bool = False) -> Runtime:
    if stack:
        _load_stack_profile(project)
    runtime = resolve_runtime(project_dir=project)
    apply_process_defaults(runtime)
    from retrain.adapters.prefect_server import guard_embedded_server

    guard_embedded_server()  # an embedded Prefect server started from here dies with this process
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
    from retrain.domain.errors import RetrainError
    from retrain.domain.settings import SettingsError
    from retrain.domain.splitting import SplitError
    from retrain.domain.training import TrainingDataError

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
    reason = _text(reason, "--reason")
    runtime = _runtime(project, stack)
    settings = _settings(runtime)
    if _on_stack():
        from retrain.adapters.reviewer_keys import load_reviewer_keys
        from retrain.deploy.client import start_deployment_run

        request = {"project_dir": str(runtime.project_dir), "triggered_by": _whoami(), "reason": reason}
        try:
            load_reviewer_keys(runtime.project_dir, settings.approval)  # the worker's start-up check, told here
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

    from retrain.application.status import lifecycle_status

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
    _at_least(days, "--days", 1)
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
    from retrain.application.batches import assemble_training_set, validate_file

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
    root = runtime.project_dir
    for option, path in (("--models", models), ("--plots", plots)):
        if (root / path).is_file():
            _fail(f"{option} {root / path} is a file; it must be a directory", 2)
    if (root / metrics).is_dir():
        _fail(f"--metrics {root / metrics} is a directory; it must be a file", 2)
    from retrain.application.fit import fit as fit_snapshot

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
    from retrain.application.batches import validate_file

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
    from retrain.application.ingest import IngestRefused, ingest_batch

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
    if not version.strip().isdigit() or int(version) < 1:
        _fail(f"VERSION must be a registered model version, a positive whole number (got {version!r})", 2)
    version = version.strip()
    runtime = _runtime(project)
    settings = _settings(runtime)
    from retrain.adapters.datastore import DataStoreError
    from retrain.application.reproduce import ReproductionError
    from retrain.application.reproduce import reproduce as rebuild

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
    """Mark runs whose process died Crashed, repair an interrupted promotion (aliases and ledger
    disagree) and check the ledger is a chain.

    Exits 1 when something cannot be repaired, e.g. a broken chain in the append-only ledger.
    """
    runtime = _runtime(project)
    settings = _settings(runtime)
    from retrain.adapters.ledger import Ledger
    from retrain.application.promotion import doctor
    from retrain.application.reaper import reap

    registry = _registry(runtime, settings)
    crashed = reap(runtime.ledger_url, registry, "retrain doctor")  # dead processes' runs first: they hold nothing
    ledger = Ledger(runtime.ledger_url)
    try:
        report = doctor(registry, ledger)
    finally:
        ledger.dispose()
    for action in crashed + report.repaired:
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
    reason = _text(reason, "--reason", 3)
    runtime = _runtime(project, stack)
    _settings(runtime)
    request = {"reason": reason, "requested_by": _whoami(), "project_dir": str(runtime.project_dir)}
    try:
        if _on_stack():
            from retrain.deploy.client import follow_run, start_deployment_run
            from retrain.deploy.deployments import ROLLBACK_DEPLOYMENT

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
    for path in paths or []:
        _input_file(path, "batch file")
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
    _input_file(path, "batch file")
    if output is not None and (output.suffix != ".parquet" or output.is_dir()):
        _fail(f"--output {output} must be a .parquet file path", 2)
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
    from retrain.deploy.deployments import deploy_all

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
    from retrain.deploy.deployments import serve_all

    serve_all(settings, runtime.project_dir)


KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key",
        help="Your private key file (default: RETRAIN_REVIEWER_KEY, else ~/.config/retrain/keys/NAME.key).",
    ),
]
ReviewerOption = Annotated[str, typer.Option("--reviewer", help="Your name as listed in approval.reviewers.")]
RunIdArgument = Annotated[str, typer.Argument(help="The paused training flow run (its id in the Prefect UI).")]


def _signing(decision: str, reviewer: str, comment: str, key: Path | None, project: Path | None) -> Any:
    """The reviewer's decision with their private key, checked against the project's public key for
    them (so a wrong key file is told here, not as a refused ballot)."""
    runtime = _runtime(project)
    settings = _settings(runtime)
    from retrain.adapters.prefect_api import Signing
    from retrain.adapters.reviewer_keys import (
        default_private_key_path,
        load_private_key,
        public_bytes,
        public_key_path,
    )
    from retrain.domain.approval import normalise, parse_public_key
    from retrain.domain.errors import RetrainError

    listed = {normalise(name): name for name in settings.approval.reviewers}
    if normalise(reviewer) not in listed:
        _fail(f"'{reviewer}' is not listed in approval.reviewers ({', '.join(settings.approval.reviewers)})")
    name = listed[normalise(reviewer)]
    try:
        private = load_private_key(key or default_private_key_path(name))
        public_file = public_key_path(runtime.project_dir, settings.approval, name)
        committed = parse_public_key(public_file.read_text(encoding="utf-8")) if public_file.exists() else None
    except (RetrainError, ValueError) as error:
        _fail(str(error))
    if committed is not None and committed != public_bytes(private):
        _fail(f"this private key is not the one whose public key is {public_file}: pass --key with yours")
    return Signing(decision, name, private, comment)


def _send_decision(signing: Any, run_id: str) -> None:
    from retrain.adapters.prefect_api import submit_decision

    try:
        receipt = submit_decision(run_id, signing)
    except _user_errors() as error:
        _fail(str(error))
    typer.echo(f"{receipt.message}; gate now: {receipt.state}")


@app.command()
def approve(
    run_id: RunIdArgument,
    reviewer: ReviewerOption,
    comment: Annotated[str, typer.Option(help="Why you approve (kept in the ledger).")] = "",
    key: KeyOption = None,
    project: ProjectOption = None,
) -> None:
    """Approve a training run paused at the reviewer gate, signed with your key for that run only."""
    _send_decision(_signing("approve", reviewer, comment, key, project), run_id)


@app.command()
def reject(
    run_id: RunIdArgument,
    reviewer: ReviewerOption,
    reason: Annotated[str, typer.Option("--reason", help="Why you reject (required, kept in the ledger).")],
    key: KeyOption = None,
    project: ProjectOption = None,
) -> None:
    """Reject a training run paused at the reviewer gate: the champion stays, the refusal is recorded."""
    _send_decision(_signing("reject", reviewer, reason, key, project), run_id)


@app.command()
def sign(
    run_id: RunIdArgument,
    reviewer: ReviewerOption,
    decision: Annotated[str, typer.Option("--decision", help="approve or reject.")],
    comment: Annotated[str, typer.Option(help="The comment you will type in the form, exactly.")] = "",
    key: KeyOption = None,
    project: ProjectOption = None,
) -> None:
    """Print your signature of a decision on a paused run, to paste in the Prefect UI's Resume form."""
    if decision not in ("approve", "reject"):
        _fail("--decision is approve or reject", 2)
    signing = _signing(decision, reviewer, comment, key, project)
    from retrain.adapters.prefect_api import approval_subject

    try:
        subject = approval_subject(run_id)
    except _user_errors() as error:
        _fail(str(error))
    typer.echo(
        f"{decision} v{subject.challenger_version} of {subject.registered_model} "
        f"(training key {subject.training_key[:12]}) on run {subject.flow_run_id}, comment {comment!r}:",
        err=True,
    )
    typer.echo(signing.answer(subject).signature)


reviewer_app = typer.Typer(help="Reviewers' keys: each reviewer signs their own answers.")
app.add_typer(reviewer_app, name="reviewer")


@reviewer_app.command("keygen")
def reviewer_keygen(
    name: Annotated[
        str, typer.Argument(help="The reviewer's name, as listed (or to be listed) in approval.reviewers.")
    ],
    key: KeyOption = None,
    project: ProjectOption = None,
) -> None:
    """Create a reviewer's key pair: the private key (0600) outside the project, the public key into
    the project's approval.keys_dir, to be committed (adding a reviewer is a reviewed change)."""
    import re

    runtime = _runtime(project)
    settings = _settings(runtime)
    from retrain.adapters.reviewer_keys import default_private_key_path, generate_key_pair
    from retrain.domain.approval import normalise
    from retrain.domain.errors import RetrainError

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        _fail("a reviewer name is letters, digits, '.', '_' or '-' (it names the key file)", 2)
    private_path = key or default_private_key_path(name)
    try:
        public_path = generate_key_pair(runtime.project_dir, settings.approval, name, private_path)
    except RetrainError as error:
        _fail(str(error))
    typer.echo(f"private key: {private_path} (0600; keep it, never share or commit it)")
    typer.echo(f"public key:  {public_path} (commit it: git add {public_path})")
    if normalise(name) not in {normalise(listed) for listed in settings.approval.reviewers}:
        typer.echo(f"then list '{name}' in approval.reviewers (params.yaml)")


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
    _at_least(rows_per_day, "--rows-per-day", 1)
    _at_least(days, "--days", 1)
    _at_least(drift_day, "--drift-day", 0)
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
            first = error.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else ""
            option = {"rows_per_day": "--rows-per-day", "days": "--days", "drift_day": "--drift-day"}.get(field, "")
            message = str(first["msg"]).removeprefix("Value error, ")
            _fail(f"demo options: {option + ': ' if option else ''}{message}", 2)
        settings = settings.model_copy(update={"demo": demo_settings})
    from retrain.demo import run_demo

    started = time.perf_counter()
    on_stack = _on_stack()
    from retrain.demo import demo_reviewers

    try:
        reviewers = demo_reviewers(runtime, settings)
        run_training, run_drift = _demo_runners(settings, on_stack, reviewers)
        results = run_demo(runtime, settings, run_training, run_drift, on_step=_print_step, reviewers=reviewers)
    except _user_errors() as error:
        _fail(str(error))
    _print_demo_summary(runtime, settings, results, time.perf_counter() - started, on_stack)


def _demo_runners(
    settings: Settings, on_stack: bool, reviewers: list[Any]
) -> tuple[Callable[[Path, str], dict[str, Any]], Callable[[Path, Path], dict[str, Any]]]:
    """How the demo runs a training and a drift check: in this process, or on the stack's worker."""
    from retrain.demo import receipt_printer, reviewed_by_demo_reviewer

    answers = reviewers[: settings.approval.quorum]
    if on_stack:
        from retrain.deploy.client import stack_demo_runners

        return stack_demo_runners(settings, answers, receipt_printer(_print_receipt))
    review = reviewed_by_demo_reviewer(answers, settings.approval.quorum, on_receipt=_print_receipt)
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


def _stack(project: Path | None) -> tuple[Runtime, Settings, StackConfig, StackSecrets]:
    """Runtime, settings, stack config and its secrets; points this process's clients at the stack."""
    import os

    from retrain.stack import StackConfig, admin_env, load_secrets

    runtime = resolve_runtime(project_dir=project)
    settings = _settings(runtime)
    config = StackConfig.from_env(runtime.state_dir, settings.schedules.work_pool, project_dir=runtime.project_dir)
    keys = load_secrets(config, settings.approval.reviewers)
    os.environ.update(admin_env(config, keys))  # the server itself; before prefect or mlflow are imported
    apply_process_defaults(runtime)
    return runtime, settings, config, keys


def _stack_setup(runtime: Runtime, settings: Settings, mlflow_url: str, keys: StackSecrets | MlflowAccounts) -> None:
    """Once the servers answer: MLflow accounts and permissions, the locked work pool (no job
    variables), the deployments."""
    from retrain.deploy.deployments import deploy_all
    from retrain.stack import ensure_locked_pool, ensure_mlflow_accounts

    model = settings.model
    ensure_mlflow_accounts(
        mlflow_url, keys, model.registered_name, [model.experiment, f"{model.experiment}-monitoring"]
    )
    ensure_locked_pool(settings.schedules.work_pool)
    deploy_all(settings, runtime.project_dir)


def _print_stack(statuses: list[Any], config: Any) -> None:
    for item in statuses:
        state = "healthy" if item.healthy else ("running, not healthy" if item.pid else "stopped")
        typer.echo(f"  {item.name:<15} {state:<22} pid {item.pid or '—':<8} log {item.log}")
    people_ui = config.people_url.removesuffix("/api")
    typer.echo(f"  Prefect UI  {people_ui} (people: NAME:PASSWORD)   MLflow UI  {config.mlflow_url}")


@stack_app.command("up")
def stack_up(project: ProjectOption = None) -> None:
    """Start every service that is not running (idempotent) and wait until all are healthy."""
    runtime, settings, config, keys = _stack(project)
    from retrain.domain.errors import RetrainError
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
        f"Use it: `source {profile}` then `source {profile.parent / 'people'}/NAME.env` (a person's own Prefect\n"
        "and MLflow login: watch, start runs, answer a gate; the worker alone may register and promote).\n"
        f"Operator's passwords: {config.home / 'secrets.json'} (mode 0600)."
    )


@stack_app.command("setup")
def stack_setup(project: ProjectOption = None) -> None:
    """Accounts, permissions and deployments on services started elsewhere (compose).

    Reads PREFECT_API_URL/PREFECT_API_AUTH_STRING, MLFLOW_TRACKING_URI, RETRAIN_MLFLOW_ADMIN_PASSWORD
    and RETRAIN_MLFLOW_SERVICE_PASSWORD from the environment.
    """
    import os

    runtime = _runtime(project)
    settings = _settings(runtime)
    names = ("RETRAIN_MLFLOW_ADMIN_PASSWORD", "RETRAIN_MLFLOW_SERVICE_PASSWORD")
    missing = [name for name in (*names, "MLFLOW_TRACKING_URI", "PREFECT_API_URL") if not os.environ.get(name)]
    if missing:
        _fail(f"set {', '.join(missing)}", 2)
    from retrain.stack import MlflowAccounts

    keys = MlflowAccounts.model_validate(
        {"admin_password": os.environ[names[0]], "service_password": os.environ[names[1]]}
    )
    _stack_setup(runtime, settings, os.environ["MLFLOW_TRACKING_URI"], keys)
    typer.echo("accounts and deployments are in place")


@stack_app.command("down")
def stack_down(
    project: ProjectOption = None,
    purge: Annotated[
        bool,
        typer.Option("--purge", help="Also delete the stack's state: databases, secrets, profiles, logs."),
    ] = False,
) -> None:
    """Stop every service of the stack; no process is left behind."""
    _, _, config, keys = _stack(project)
    from retrain.stack import down, purge_state

    stopped = down(config, keys)
    typer.echo(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")
    if purge:
        typer.echo(f"deleted {purge_state(config)}")


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
