"""``retrain stack``: the team stack as local processes (up, setup, down, reset, status)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from retrain.adapters.environment import Runtime, apply_process_defaults, resolve_runtime
from retrain.cli import context, render
from retrain.cli.context import ProjectOption, fail, failures_exit

if TYPE_CHECKING:
    from retrain.domain.settings import Settings
    from retrain.stack import MlflowAccounts, StackConfig, StackSecrets

stack_app = typer.Typer(help="The team stack as local processes: PostgreSQL, S3, MLflow, Prefect server + worker.")


def _stack(
    project: Path | None, command: str, starting: bool = False
) -> tuple[Runtime, Settings, StackConfig, StackSecrets]:
    """Runtime, settings, stack config and its secrets; points this process's clients at the stack.

    A cluster left without its secrets stops every command here, before new ones would be made (and
    taken for the cluster's). ``starting`` (``up``): a secrets file that is not the cluster's stops it
    too, then the ports are settled (free ones for a second stack on the machine); nothing is written
    before both checks passed."""
    import json
    import os

    from retrain.stack import StackConfig, admin_env, foreign_cluster_before_secrets, load_secrets, settle_ports
    from retrain.stack.provisioning import check_cluster_secrets
    from retrain.stack.secrets import generate_secrets

    runtime = resolve_runtime(project_dir=project)
    settings = context.settings(runtime)
    config = StackConfig.from_env(runtime.state_dir, settings.schedules.work_pool, project_dir=runtime.project_dir)
    problem = foreign_cluster_before_secrets(config, command)
    if problem:
        fail(problem, 1)
    with failures_exit(1):
        if starting:
            if config.secrets_file.exists():  # read, not written: compared with the cluster's mark
                existing = json.loads(config.secrets_file.read_text(encoding="utf-8"))
                check_cluster_secrets(config, generate_secrets(existing, settings.approval.reviewers), command)
            config = settle_ports(config, os.environ, typer.echo)
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
    deploy_all(settings, runtime.project_dir, typer.echo)


@stack_app.command("up")
def stack_up(project: ProjectOption = None) -> None:
    """Start every service that is not running (idempotent) and wait until all are healthy."""
    runtime, settings, config, keys = _stack(project, "up", starting=True)
    from retrain.stack import up, write_profile

    started = time.perf_counter()
    with failures_exit(1):  # a service that will not start, or a deployment the API refused
        statuses = up(config, keys, typer.echo, lambda: _stack_setup(runtime, settings, config.mlflow_url, keys))
    profile = write_profile(config, keys)
    typer.echo(f"stack healthy in {time.perf_counter() - started:.0f} s")
    render.stack_services(statuses, config)
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

    runtime = context.runtime(project)
    settings = context.settings(runtime)
    names = ("RETRAIN_MLFLOW_ADMIN_PASSWORD", "RETRAIN_MLFLOW_SERVICE_PASSWORD")
    missing = [name for name in (*names, "MLFLOW_TRACKING_URI", "PREFECT_API_URL") if not os.environ.get(name)]
    if missing:
        fail(f"set {', '.join(missing)}", 2)
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
    config, keys = _stoppable(project)
    from retrain.stack import down, purge_state

    stopped = down(config, keys)
    typer.echo(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")
    if purge:
        typer.echo(f"deleted {purge_state(config)}")


@stack_app.command("reset")
def stack_reset(
    project: ProjectOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Yes, delete this stack's databases, bucket and state.")] = False,
) -> None:
    """Stop the stack and drop everything it holds (databases, bucket, secrets), for a fresh `stack up`.

    The way on when `stack up` finds a cluster its secrets cannot open (see its message)."""
    from retrain.stack import DATABASES, down, purge_state

    config, keys = _stoppable(project)
    names = ", ".join(f"retrain_{purpose}" for purpose in DATABASES)
    if not yes:
        fail(
            f"this deletes the stack at {config.home}: its PostgreSQL databases ({names}), the S3 bucket's objects, "
            "its secrets, profiles and logs; every run, model version and ledger entry of the stack is lost. "
            "Run again with --yes to do it.",
            2,
        )
    if not config.home.exists():
        typer.echo(f"nothing to reset: no stack at {config.home}")
        return
    stopped = down(config, keys)
    with failures_exit(1):
        purged = purge_state(config)
    if stopped:
        typer.echo(f"stopped {', '.join(stopped)}")
    cluster = "its PostgreSQL cluster (databases " + names + ")"
    typer.echo(f"dropped {cluster}, the S3 bucket 'retrain' (its objects went with the stopped S3 server),")
    typer.echo(f"its secrets, profiles, ports and logs: {purged} is gone. `retrain stack up` starts a fresh stack.")


def _stoppable(project: Path | None) -> tuple[StackConfig, StackSecrets]:
    """The stack's config and its secrets, for stopping or dropping it: a stack whose secrets file is
    gone stops too (stopping needs the services' plan and signals, not their passwords), and no
    secrets file is written for it."""
    from retrain.stack import StackConfig
    from retrain.stack.secrets import generate_secrets

    runtime = resolve_runtime(project_dir=project)
    settings = context.settings(runtime)
    config = StackConfig.from_env(runtime.state_dir, settings.schedules.work_pool, project_dir=runtime.project_dir)
    if not config.secrets_file.exists():  # with a cluster or without: nothing to read, nothing to write
        return config, generate_secrets({}, [])
    _, _, config, keys = _stack(project, "down")
    return config, keys


@stack_app.command("status")
def stack_status(
    project: ProjectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Each service: pid, health, log; exit 1 unless all are healthy."""
    _, _, config, keys = _stack(project, "status")
    from retrain.stack import status as stack_statuses

    statuses = stack_statuses(config, keys)
    if as_json:
        typer.echo(json.dumps([item.to_dict() for item in statuses], indent=2))
    else:
        render.stack_services(statuses, config)
    if not all(item.healthy for item in statuses):
        raise typer.Exit(1)
