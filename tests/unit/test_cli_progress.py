"""The CLI's progress line in place of Prefect's INFO lines, and ``--verbose`` keeping them."""

from __future__ import annotations

import logging
import os

import pytest

from retrain.cli.progress import QUIET_CONSOLE, quiet_prefect_console, step_text


def _record(message: str, **extra: str) -> logging.LogRecord:
    record = logging.LogRecord("prefect.task_runs", logging.INFO, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_step_reads_run_task_and_first_line_and_fits_one_terminal_line():
    record = _record("Finished in state Completed()\nmore", flow_run_name="train loans v3", task_run_name="split-0")
    assert step_text(record) == "train loans v3 · split-0: Finished in state Completed()"
    long = step_text(_record("x" * 300, flow_run_name="run"))
    assert len(long) == 100 and long.endswith("…")


def test_quiet_by_default_verbose_keeps_prefect_lines(monkeypatch: pytest.MonkeyPatch):
    for key in QUIET_CONSOLE:
        monkeypatch.delenv(key, raising=False)
    assert quiet_prefect_console(verbose=True) is None
    assert all(key not in os.environ for key in QUIET_CONSOLE)
    quiet_prefect_console(verbose=False)  # not a terminal here: no progress line, Prefect's console quiet
    assert all(os.environ[key] == value for key, value in QUIET_CONSOLE.items())
    monkeypatch.setenv("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "DEBUG")  # the user's own choice stays
    quiet_prefect_console(verbose=False)
    assert os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] == "DEBUG"
