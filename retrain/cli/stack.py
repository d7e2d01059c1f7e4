"""``retrain stack``: the team stack as local processes (up, setup, down, status)."""

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


def _stack(project: Path | None) -> tuple[Runtime, Settings, StackConfig, StackSecrets]:
    """Runtime, settings, stack config and its secrets; points this process's clients at the stack."""
    import os

    from retrain.stack import StackConfig, admin_env, load_secrets

    runtime = resolve_runtime(project_dir=project)
    settings = context.settings(runtime)
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


@stack_app.command("up")
def stack_up(project: ProjectOption = None) -> None:
    """Start every service that is not running (idempotent) and wait until all are healthy."""
    runtime, settings, config, keys = _stack(project)
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
        render.stack_services(statuses, config)
    if not all(item.healthy for item in statuses):
        raise typer.Exit(1)
