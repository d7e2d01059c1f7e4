"""Model commands: train, status, reproduce, history, decisions, doctor, rollback."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from retrain.cli import context, render
from retrain.cli.context import CommitOption, ProjectOption, StackOption, fail, failures_exit

if TYPE_CHECKING:
    from retrain.application.results import RollbackResult, TrainingResult


def run_training(
    project_dir: Path, triggered_by: str, reason: str, commit: bool | None = None, new_privacy_salt: bool = False
) -> TrainingResult:
    """The training flow in this process (it pauses at the reviewer gate when the gate passes)."""
    from flows.training import TrainingRequest, training

    request = TrainingRequest(
        project_dir=str(project_dir),
        triggered_by=triggered_by,
        reason=reason,
        commit=commit,
        new_privacy_salt=new_privacy_salt,
    )
    return training(request)


def train(
    project: ProjectOption = None,
    reason: Annotated[str, typer.Option(help="Why this run is started (recorded with the run).")] = "manual",
    stack: StackOption = False,
    commit: CommitOption = None,
    new_privacy_salt: Annotated[
        bool,
        typer.Option(
            "--new-privacy-salt",
            help="Tokenise sensitive columns under a new privacy salt although registered versions record "
            "another that cannot be restored (said in the run's reason; their models can no longer be scored).",
        ),
    ] = False,
) -> None:
    """Run the training flow on the batches named in params.yaml: validate, train, compare, promote.

    With --commit (or git.commit: true) the run commits the DVC pointers and dvc.lock once its
    version is registered, in a commit that names the version and the flow run."""
    reason = context.text(reason, "--reason")
    runtime = context.runtime(project, stack)
    settings = context.settings(runtime)
    if context.on_stack():  # the run's own log warns too, on the worker: say it here, where the user is
        context.warn_row_thresholds(runtime, settings)
        from retrain.adapters.reviewer_keys import load_reviewer_keys
        from retrain.deploy.client import start_deployment_run

        request = {
            "project_dir": str(runtime.project_dir),
            "triggered_by": context.whoami(),
            "reason": reason,
            "commit": commit,  # the worker commits in its checkout of the project
            "new_privacy_salt": new_privacy_salt,
        }
        with failures_exit(1):
            load_reviewer_keys(runtime.project_dir, settings.approval)  # the worker's start-up check, told here
            run_id = start_deployment_run(settings.retraining.deployment, request)
        typer.echo(
            f"training run {run_id} started on the team stack (the worker trains and registers).\n"
            f"When it waits at the reviewer gate: retrain approve {run_id} --reviewer NAME (or the Prefect UI)."
        )
        return
    with failures_exit(1):  # a training run that failed or was refused: exit 1, whatever broke
        result = run_training(runtime.project_dir, context.whoami(), reason, commit, new_privacy_salt)
    render.training_summary(result)
    if result.commit is not None:
        typer.echo(result.commit.summary)


def status(
    project: ProjectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show each version's state (champion, rolling out, challenger waiting, refused, rejected…), and the
    gate's latest comparison on the same holdout rows."""
    runtime = context.runtime(project)
    settings = context.settings(runtime)
    from retrain.application.status import lifecycle_status

    # e.g. 401 on the team stack: the registry words the refusal; never show "no champion"
    with context.failures_exit(1):
        report = lifecycle_status(context.registry(runtime, settings), runtime.ledger_url, settings.gate.primary_metric)
    if as_json:
        render.print_json(report)
        return
    from retrain.domain.metrics import TASK_METRICS

    primary = settings.gate.primary_metric
    other = next(name for name in TASK_METRICS[settings.dataset.task] if name != primary)
    render.status_table(report, (primary, other))


def reproduce(
    version: Annotated[str, typer.Argument(help="Registered model version to rebuild.")],
    project: ProjectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Rebuild a model version from its evidence (data md5, contract, settings); exit 1 unless byte-identical."""
    if not version.strip().isdigit() or int(version) < 1:
        fail(f"VERSION must be a registered model version, a positive whole number (got {version!r})", 2)
    version = version.strip()
    runtime = context.runtime(project)
    settings = context.settings(runtime)
    from retrain.application.reproduce import DataPurged
    from retrain.application.reproduce import reproduce as rebuild

    with failures_exit(1):  # not rebuilt (no evidence, data gone from the remote): exit 1, as a mismatch
        try:
            result = rebuild(runtime, context.registry(runtime, settings), version)
        except DataPurged as purged:  # not a failure: the data was deleted on purpose (exit 2)
            fail(str(purged), purged.exit_code)
    if as_json:
        render.print_json(result.to_dict())
    else:
        render.reproduction(version, result)
    if not result.identical:
        raise typer.Exit(1)


def history(
    project: ProjectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Print the promotion ledger: every promotion, refusal, timeout, rollout, rollback and purge, oldest first."""
    runtime = context.runtime(project)
    settings = context.settings(runtime)
    from retrain.adapters.ledger import Ledger

    ledger = Ledger(runtime.ledger_url)
    entries = ledger.entries(settings.model.registered_name)
    ledger.dispose()
    if as_json:
        render.print_json([entry.to_dict() for entry in entries])
        return
    render.ledger_table(settings.model.registered_name, entries)


def decisions(
    project: ProjectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Every retraining decision of the drift flow (retrain, none, cooldown, budget, in_flight) with reasons."""
    runtime = context.runtime(project)
    settings = context.settings(runtime)
    from retrain.adapters.ledger import DecisionLog

    log = DecisionLog(runtime.ledger_url)
    records = log.records(settings.model.registered_name)
    log.dispose()
    if as_json:
        render.print_json([record.to_dict() for record in records])
        return
    if not records:
        typer.echo(f"no retraining decision yet for {settings.model.registered_name}")
        return
    render.decisions_table(settings.model.registered_name, records)


def doctor_command(project: ProjectOption = None) -> None:
    """Mark runs whose process died Crashed, repair an interrupted promotion (aliases and ledger
    disagree) and check the ledger is a chain.

    Exits 1 when something cannot be repaired, e.g. a broken chain in the append-only ledger.
    """
    runtime = context.runtime(project)
    settings = context.settings(runtime)
    from retrain.adapters.ledger import Ledger
    from retrain.adapters.prefect_api import PrefectFlowRuns
    from retrain.application.promotion import doctor
    from retrain.application.reaper import reap

    registry = context.registry(runtime, settings)
    # dead processes' runs first: they hold nothing
    crashed = reap(runtime.ledger_url, registry, "retrain doctor", PrefectFlowRuns())
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
        fail(f"unhealthy: {len(report.problems)} problem(s) the doctor cannot repair (see above)")
    typer.echo("healthy: aliases and ledger agree, and the ledger is a chain")


def rollback_command(
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the ledger).")],
    project: ProjectOption = None,
    stack: StackOption = False,
) -> None:
    """Move champion back to previous-champion (a Prefect flow, recorded in the ledger).

    On the team stack the rollback runs on the worker (its deployment): only the worker's account may
    move aliases there.
    """
    reason = context.text(reason, "--reason", 3)
    runtime = context.runtime(project, stack)
    context.settings(runtime)
    request = {"reason": reason, "requested_by": context.whoami(), "project_dir": str(runtime.project_dir)}
    result: RollbackResult
    with failures_exit(1):
        if context.on_stack():
            from retrain.application.results import RollbackResult
            from retrain.deploy.client import follow_run, start_deployment_run
            from retrain.deploy.deployments import ROLLBACK_DEPLOYMENT

            run_id = start_deployment_run(f"rollback/{ROLLBACK_DEPLOYMENT}", request)
            result = follow_run(run_id, RollbackResult)
        else:
            from flows.rollback import RollbackRequest, rollback

            result = rollback(RollbackRequest.model_validate(request))
    typer.echo(f"champion rolled back from v{result.demoted} to v{result.restored}")
