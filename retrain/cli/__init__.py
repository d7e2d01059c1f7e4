"""The ``retrain`` command line, one module per command group.

``project`` (init, contract release), ``data`` (generate, snapshot, fit, validate, ingest, purge), ``model``
(train, status, reproduce, history, decisions, doctor, rollback), ``monitoring`` (drift, score,
feedback, report),
``review`` (approve, reject, sign, reviewer keygen), ``deploy`` (deploy, serve), ``stack`` and
``demo``; what they share (options, runtime, settings, the one error handler) is in ``context``, how
they print in ``render``.

Only typer is imported at module level: Prefect, MLflow, DVC and great-expectations are imported
inside the commands that need them, so ``retrain --help`` answers at once.
"""

from __future__ import annotations

import typer

from retrain.cli import data, demo, deploy, model, monitoring, progress, project, review
from retrain.cli.context import RetrainGroup
from retrain.cli.stack import stack_app

app = typer.Typer(
    name="retrain",
    help="Train, validate, compare and promote tabular models under Prefect, with DVC and MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=RetrainGroup,
    # click's own help layout: typer's rich panels print a type beside every flag (`--json <bool>`,
    # even `--help <bool>`), as if a flag took a value
    rich_markup_mode=None,
)

# In the order `retrain --help` has always listed them.


@app.callback()
def main_options(
    ctx: typer.Context,
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show Prefect's own log lines (task states, flow prints) as runs go."
    ),
) -> None:
    """Train, validate, compare and promote tabular models under Prefect, with DVC and MLflow."""
    line = progress.quiet_prefect_console(verbose)
    ctx.call_on_close(lambda: progress.stop(line))


app.command()(model.train)
app.command()(model.status)
app.command()(data.generate)
app.command()(data.snapshot)
app.command()(data.fit)
app.command()(data.validate)
app.command()(data.ingest)
app.command()(data.purge)
app.command()(model.reproduce)
app.command()(model.history)
app.command(name="doctor")(model.doctor_command)
app.command(name="rollback")(model.rollback_command)
app.command(name="drift")(monitoring.drift_command)
app.command(name="score")(monitoring.score_command)
app.command(name="feedback")(monitoring.feedback_command)
app.command(name="report")(monitoring.report_command)
app.command()(model.decisions)
app.command()(deploy.deploy)
app.command()(deploy.serve)
app.command()(review.approve)
app.command()(review.reject)
app.command()(review.sign)
app.command()(review.pending)
app.add_typer(review.reviewer_app, name="reviewer")
app.command()(demo.demo)
app.add_typer(stack_app, name="stack")
app.command()(project.init)
app.add_typer(project.contract_app, name="contract")


def main() -> None:  # pragma: no cover - console entry point
    app()


__all__ = ["app", "main"]
