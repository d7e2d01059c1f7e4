"""What a command shows while its flows work: one progress line that changes in place, not Prefect's
INFO lines.

Prefect writes every log line of a run (task states, ``print`` in a flow, the temporary server's
start with a link to its docs) to the terminal *and* to the run's log in the Prefect UI. People at a
terminal want to see that something moves and then the outcome, which each command prints itself; the
whole log stays in the UI. So by default the console handler of Prefect's logging config only passes
warnings (``PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL``, read when Prefect configures its logging, which
the commands import lazily, after this), and a handler on the run loggers turns each INFO line into the
description of a rich progress line on stderr, shown only at a terminal. Lines that ask something of
the person (a run waiting for reviewers) are warnings, so they still show. ``retrain --verbose`` keeps
Prefect's own lines.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from retrain.adapters.import_hooks import after_import

QUIET_CONSOLE = {"PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING"}
PREFECT_LOGGING_SET_UP = "prefect.main"  # its import ends with Prefect's setup_logging()
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
WIDTH = 100


def step_text(record: logging.LogRecord) -> str:
    """The run and its latest line, short enough for one terminal line."""
    run = getattr(record, "flow_run_name", None) or getattr(record, "flow_name", None) or ""
    task = getattr(record, "task_run_name", None)
    message = record.getMessage().splitlines()[0] if record.getMessage() else ""
    where = f"{run} · {task}" if task else str(run)
    text = f"{where}: {message}" if where else message
    return text if len(text) <= WIDTH else text[: WIDTH - 1] + "…"


class ProgressLine(logging.Handler):
    """A rich progress line (spinner, the latest step, time elapsed) fed by the runs' log records."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self._progress: Any = None
        self._task: Any = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if _run_ended(record):  # the command prints the outcome next: the line goes first
                self._stop()
                return
            if self._progress is None:
                self._start()
            self._progress.update(self._task, description=step_text(record))
        except Exception:  # a display never breaks a run
            self.handleError(record)

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(),
            TimeElapsedColumn(),
            BarColumn(bar_width=12),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            transient=True,
            # stdout stays the command's own (`--json | jq` reads it), never drawn through this line
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._progress.start()
        self._task = self._progress.add_task("starting", total=None)

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def close(self) -> None:
        self._stop()
        super().close()


def _run_ended(record: logging.LogRecord) -> bool:
    """A flow run's last line (Prefect's "Finished in state …"), not a task's."""
    return getattr(record, "task_run_name", None) is None and record.getMessage().startswith("Finished in state")


def quiet_prefect_console(verbose: bool) -> ProgressLine | None:
    """Before any Prefect import: its console handler passes warnings only, unless ``verbose`` (or the
    user set the level). At a terminal, returns the progress line attached to the run loggers (the
    caller closes it when the command ends)."""
    if verbose:
        return None
    for key, value in QUIET_CONSOLE.items():
        os.environ.setdefault(key, value)
    if not sys.stderr.isatty():
        return None
    line = ProgressLine()

    def attach(_: object) -> None:
        for name in RUN_LOGGERS:
            logging.getLogger(name).addHandler(line)

    # after Prefect has configured its logging (``dictConfig`` drops handlers added before it)
    after_import(PREFECT_LOGGING_SET_UP, attach)
    return line


def stop(line: ProgressLine | None) -> None:
    """The command ended: the progress line goes (it is transient) before the outcome is read."""
    if line is None:
        return
    for name in RUN_LOGGERS:
        logging.getLogger(name).removeHandler(line)
    line.close()
