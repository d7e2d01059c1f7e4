"""The ``demo`` command: the whole lifecycle on generated data (the steps live in :mod:`retrain.cli.demo_run`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from retrain.cli import context, render
from retrain.cli.context import ProjectOption, StackOption, fail, failures_exit

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from retrain.adapters.prefect_api import Signing
    from retrain.application.results import DriftResult, TrainingResult
    from retrain.domain.settings import Settings


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
    context.at_least(rows_per_day, "--rows-per-day", 1)
    context.at_least(days, "--days", 1)
    context.at_least(drift_day, "--drift-day", 0)
    runtime = context.runtime(project, stack)
    settings = _with_demo_options(context.settings(runtime), rows_per_day, days, drift_day)
    from retrain.cli.demo_run import demo_reviewers, run_demo

    started = time.perf_counter()
    on_stack = context.on_stack()
    with failures_exit(1), _team_chat(on_stack):
        reviewers = demo_reviewers(runtime, settings)
        run_training, run_drift = _demo_runners(settings, on_stack, reviewers)
        results = run_demo(
            runtime,
            settings,
            run_training,
            run_drift,
            on_step=render.demo_step,
            reviewers=reviewers,
            run_serving=_stack_serving() if on_stack else _serve,
        )
    render.demo_summary(runtime, settings, results, time.perf_counter() - started, on_stack)
    if not on_stack:
        try:
            dashboard = _dashboard(runtime.state_dir / "demo" / "workspace")
        except Exception as error:  # every step passed: the page is extra, a failure is a warning
            typer.echo(f"warning: the dashboard was not written ({type(error).__name__}: {error})", err=True)
        else:
            typer.echo(f"Dashboard (open it in a browser): {dashboard}")


@contextmanager
def _team_chat(on_stack: bool) -> Iterator[None]:
    """A webhook receiver on 127.0.0.1 for the demo's flows to tell people through (unless a channel
    is configured already, or the flows run on the stack's worker): each message is printed."""
    import os

    if on_stack or os.environ.get("RETRAIN_NOTIFY_WEBHOOK"):
        yield
        return
    from retrain.adapters.webhook_inbox import webhook_inbox

    with webhook_inbox(render.told) as url:
        os.environ["RETRAIN_NOTIFY_WEBHOOK"] = url
        try:
            yield
        finally:
            os.environ.pop("RETRAIN_NOTIFY_WEBHOOK", None)


def _stack_serving() -> Any:
    from retrain.deploy.client import stack_serving_runner

    return stack_serving_runner()


def _serve(workspace: Path, applicants: Path, labels: Path) -> tuple[Any, Any]:
    """A day's applicants scored in this process, then their outcomes joined as late labels."""
    from flows.feedback import FeedbackRequest, feedback
    from flows.scoring import ScoringRequest, scoring

    scores = workspace.parent / "predictions"  # the demo's own: reset with it, never a project's
    scores.mkdir(parents=True, exist_ok=True)
    output = scores / f"{applicants.stem}.parquet"
    scored = scoring(ScoringRequest(batch=str(applicants), project_dir=str(workspace), output=str(output)))
    joined = feedback(FeedbackRequest(labels=str(labels), project_dir=str(workspace), scores=str(scores)))
    return scored, joined


def _dashboard(workspace: Path) -> str:
    from flows.report import ReportRequest, report

    return report(ReportRequest(project_dir=str(workspace))).path


def _with_demo_options(
    settings: Settings, rows_per_day: int | None, days: int | None, drift_day: int | None
) -> Settings:
    """The project's settings with the demo options applied, refused in one line when they cannot work."""
    changes: dict[str, Any] = {}
    if rows_per_day is not None:
        changes["rows_per_day"] = rows_per_day
    if days is not None:
        changes["days"] = days
    if drift_day is not None:
        changes["drift_day"] = None if drift_day == 0 else drift_day - 1
    if not changes:
        return settings
    from pydantic import ValidationError

    from retrain.domain.settings import DemoSettings

    try:
        demo_settings = DemoSettings.model_validate({**settings.demo.model_dump(), **changes})
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        option = {"rows_per_day": "--rows-per-day", "days": "--days", "drift_day": "--drift-day"}.get(field, "")
        message = str(first["msg"]).removeprefix("Value error, ")
        fail(f"demo options: {option + ': ' if option else ''}{message}", 2)
    return settings.model_copy(update={"demo": demo_settings})


def _demo_runners(
    settings: Settings, on_stack: bool, reviewers: Sequence[Signing]
) -> tuple[Callable[[Path, str], TrainingResult], Callable[[Path, Path], DriftResult]]:
    """How the demo runs a training and a drift check: in this process, or on the stack's worker."""
    from retrain.cli.demo_run import receipt_printer, reviewed_by_demo_reviewer
    from retrain.cli.model import run_training
    from retrain.cli.monitoring import run_drift

    answers = reviewers[: settings.approval.quorum]
    if on_stack:
        from retrain.deploy.client import stack_demo_runners

        return stack_demo_runners(settings, answers, receipt_printer(render.receipt))
    review = reviewed_by_demo_reviewer(answers, settings.approval.quorum, on_receipt=render.receipt)
    return (
        lambda workspace, why: review(lambda: run_training(workspace, "demo", why)),
        lambda workspace, batch: review(lambda: run_drift(workspace, batch)),
    )
