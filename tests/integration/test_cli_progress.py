"""A flow run from the CLI: Prefect's INFO lines stay in the run's log (the UI), off the terminal,
unless ``retrain --verbose``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from retrain.cli.progress import QUIET_CONSOLE
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]

FLOW = """
import sys
from retrain.cli import app

@app.command()
def hello_command():
    from prefect import flow  # as every command: Prefect imported once the command runs

    @flow(log_prints=True)
    def hello():
        print("a line of the run's log")

    hello()
    print("the command's own outcome")

app(sys.argv[1:], standalone_mode=True)
"""


@pytest.mark.parametrize(("flags", "shown"), [([], False), (["--verbose"], True)])
def test_a_flow_run_from_the_cli_keeps_its_info_lines_off_the_terminal_unless_verbose(flags: list[str], shown: bool):
    from prefect.settings import PREFECT_API_URL

    # as a user's shell: Prefect's default level (the test session quiets it to WARNING)
    env = {key: value for key, value in os.environ.items() if key not in {*QUIET_CONSOLE, "PREFECT_LOGGING_LEVEL"}}
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    done = subprocess.run(
        [sys.executable, "-c", FLOW, *flags, "hello-command"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "the command's own outcome" in done.stdout
    output = done.stdout + done.stderr
    assert ("a line of the run's log" in output) is shown
    assert ("Finished in state Completed" in output) is shown


def test_at_a_terminal_the_run_shows_as_one_progress_line_not_as_log_lines():
    """stderr a terminal (a pty): the run's lines feed rich's progress line (drawn, then erased), and no
    Prefect log line is written; stdout stays the command's own."""
    import pty

    from prefect.settings import PREFECT_API_URL

    env = {key: value for key, value in os.environ.items() if key not in {*QUIET_CONSOLE, "PREFECT_LOGGING_LEVEL"}}
    env.update(PREFECT_API_URL=str(PREFECT_API_URL.value()), TERM="xterm", COLUMNS="160")
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-c", FLOW, "hello-command"],
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    ) as process:
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the pty closes with the process
                break
            if not chunk:
                break
            drawn += chunk
        stdout = process.stdout.read() if process.stdout else ""
        assert process.wait(timeout=300) == 0, drawn.decode(errors="replace")[-2000:]
    os.close(leader)
    terminal = drawn.decode(errors="replace")
    assert stdout.strip() == "the command's own outcome"
    assert "a line of the run's log" in terminal  # the progress line's description, at some point
    assert "| INFO" not in terminal and "Finished in state" not in terminal
