"""What every command shares: its options, the runtime and settings it works in, and the one error handler.

Errors: a command never lists exception classes. Any :class:`~retrain.domain.errors.RetrainError`
that leaves a command becomes ``error: <message>`` on stderr and the exit code the error carries
(:class:`RetrainGroup`). A command whose action has always answered a refusal with exit 1, whatever
the cause (a training run that failed, a reviewer's decision the run refused), says so with
:func:`failures_exit`. Only typer and the light environment adapter are imported here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from retrain.adapters.environment import Runtime, apply_process_defaults, resolve_runtime
from retrain.domain.errors import RetrainError

if TYPE_CHECKING:
    from retrain.domain.settings import Settings

ProjectOption = Annotated[
    Path | None,
    typer.Option("--project", help="Project directory holding params.yaml (default: RETRAIN_PROJECT or .)."),
]
StackOption = Annotated[
    bool, typer.Option("--stack", help="Use the team stack started by `retrain stack up` (its profile).")
]
CommitOption = Annotated[
    bool | None,
    typer.Option(
        "--commit/--no-commit",
        help="Commit the DVC pointers (data/*.dvc), dvc.lock and the batch log to git, with a message naming "
        "the run (default: git.commit in params.yaml). Nothing else is committed.",
    ),
]
KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key",
        help="Your private key file (default: RETRAIN_REVIEWER_KEY, else ~/.config/retrain/keys/NAME.key).",
    ),
]
ReviewerOption = Annotated[str, typer.Option("--reviewer", help="Your name as listed in approval.reviewers.")]
RunIdArgument = Annotated[str, typer.Argument(help="The paused training flow run (its id in the Prefect UI).")]


def fail(message: str, code: int = 1) -> NoReturn:
    """The one way a command ends in error: ``error: <message>`` in red on stderr, exit ``code``."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


class RetrainGroup(TyperGroup):
    """The ``retrain`` command group: Retrain's own errors end a command in one line, with their exit code.

    Sub-groups (``stack``, ``reviewer``) run inside this group's ``invoke``, so their errors land here too.
    """

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click.Context
        try:
            return super().invoke(ctx)
        except RetrainError as error:
            fail(str(error), error.exit_code)


@contextmanager
def failures_exit(code: int = 1) -> Iterator[None]:
    """Inside: any Retrain error ends the command with ``code``, whatever the error's own exit code.

    For the actions whose exit code has always meant "the action failed or was refused" (a flow
    run, a reviewer's decision, a push to the data remote), where callers branch on 0 or 1.
    """
    try:
        yield
    except RetrainError as error:
        fail(str(error), code)


def text(value: str, option: str, min_chars: int = 1) -> str:
    """A free-text option (a reason, a comment): stripped, and refused in one line when blank."""
    stripped = value.strip()
    if len(stripped) < min_chars:
        fail(
            f"{option} needs at least {min_chars} non-blank character{'s' if min_chars > 1 else ''} (got {value!r})", 2
        )
    return stripped


def at_least(value: int | None, option: str, minimum: int) -> None:
    if value is not None and value < minimum:
        fail(f"{option} must be at least {minimum} (got {value})", 2)


def input_file(path: Path, what: str) -> Path:
    """A file the command reads: it must exist and be a file (not a directory)."""
    if not path.exists():
        fail(f"{what} {path} does not exist", 2)
    if not path.is_file():
        fail(f"{what} {path} is not a file", 2)
    return path


def load_stack_profile(project: Path | None) -> None:
    """With --stack: the client profile that `retrain stack up` wrote, into this process's environment
    (before any runtime is resolved or Prefect/MLflow imported, so every client points at the stack).

    A missing profile is a ``StackError`` (exit 1), told by :class:`RetrainGroup`."""
    import os

    from retrain.stack import load_profile, stack_config_at

    os.environ.update(load_profile(stack_config_at(resolve_runtime(project_dir=project).state_dir)))


def on_stack() -> bool:
    """True with --stack or in a shell that sourced the stack's profile (it sets RETRAIN_STACK=1)."""
    import os

    return os.environ.get("RETRAIN_STACK") == "1"


def runtime(project: Path | None, stack: bool = False) -> Runtime:
    """Where the command works (project, state, MLflow, ledger), with the process set up for it."""
    if stack:
        load_stack_profile(project)
    where = resolve_runtime(project_dir=project)
    apply_process_defaults(where)
    from retrain.adapters.prefect_server import guard_embedded_server

    guard_embedded_server()  # an embedded Prefect server started from here dies with this process
    return where


def settings(where: Runtime) -> Settings:
    """The project's params.yaml; a ``SettingsError`` (exit 2) names what is wrong in it."""
    from retrain.domain.settings import load_settings

    return load_settings(where.params_path)


def warn_row_thresholds(where: Runtime, project_settings: Settings) -> None:
    """Before a training run starts on the team stack: thresholds in rows that this project's batches
    never reach (``drift.min_rows``, ``gate.slices.min_rows``) are told on stderr, with a value that
    would work. Runs in this process say it in their own log (``check_row_thresholds_task``)."""
    from retrain.application.batches import row_threshold_check

    for warning in row_threshold_check(project_settings, where.project_dir):
        typer.echo(f"warning: {warning.message} (in {where.params_path.name})", err=True)


def registry(where: Runtime, project_settings: Settings) -> Any:
    from retrain.adapters.registry import ModelRegistry

    return ModelRegistry.for_project(where, project_settings)


def whoami() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
