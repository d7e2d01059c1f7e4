"""Deployment commands: register the deployments on the work pool, or serve them from this process."""

from __future__ import annotations

import typer

from retrain.cli import context
from retrain.cli.context import ProjectOption, failures_exit


def deploy(project: ProjectOption = None) -> None:
    """Register the deployments (nightly retraining, drift check, scoring, feedback, rollback, scheduled purge)
    on the process work pool."""
    runtime = context.runtime(project)
    settings = context.settings(runtime)
    from retrain.deploy.deployments import deploy_all

    with failures_exit(1):
        names = deploy_all(settings, runtime.project_dir, typer.echo)
    typer.echo(
        f"registered {', '.join(names)} on work pool '{settings.schedules.work_pool}'; start a worker with "
        f"`prefect worker start --pool {settings.schedules.work_pool}` in this project's environment"
    )


def serve(project: ProjectOption = None) -> None:
    """Serve the deployments with their schedules from this process (embedded default; Ctrl-C stops)."""
    runtime = context.runtime(project)
    settings = context.settings(runtime)
    from retrain.deploy.deployments import serve_all

    serve_all(settings, runtime.project_dir)
