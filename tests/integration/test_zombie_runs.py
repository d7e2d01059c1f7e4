"""Killed processes leave no zombie runs: a SIGKILLed training run is detected through its expired
lease, marked Crashed with the reason, its MLflow run ends FAILED, and the drift check stops
counting it as in flight. Killing the CLI leaves no embedded Prefect server behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import pytest
from typer.testing import CliRunner

from retrain.adapters.environment import resolve_runtime
from retrain.adapters.workspace import write_params
from retrain.cli import app
from retrain.cli.demo_run import write_demo_batches
from tests.integration.conftest import registry_for, workspace_settings
from tests.integration.test_monitoring import _new_day, acting_check

pytestmark = [pytest.mark.integration, pytest.mark.faults]

#: A child process running the training flow as the CLI would; ``running`` blocks it inside its open
#: MLflow run (after the metrics are logged), ``paused`` lets it reach the reviewer gate.
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path

    mode, project, ready, tag = sys.argv[1:5]
    if mode == "running":
        import mlflow
        from prefect import runtime

        log_metrics = mlflow.log_metrics

        def log_then_hang(*args, **kwargs):
            log_metrics(*args, **kwargs)
            Path(ready).write_text(str(runtime.flow_run.id))
            time.sleep(3600)

        mlflow.log_metrics = log_then_hang

    from prefect import tags

    from flows.training import TrainingRequest, training

    with tags(tag):
        training(TrainingRequest(project_dir=project, triggered_by="pytest-child"))
    """
)

SHORT_LEASE = {"lease": {"seconds": 4, "refresh_seconds": 1}}


def _start_child(workspace: Path, tmp_path: Path, mode: str) -> tuple[subprocess.Popen[bytes], Path, str]:
    import prefect.settings

    script = tmp_path / "child.py"
    script.write_text(CHILD)
    ready = tmp_path / "ready"
    tag = f"pytest-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "PREFECT_API_URL": str(prefect.settings.get_current_settings().api.url)}
    process = subprocess.Popen(
        [sys.executable, str(script), mode, str(workspace), str(ready), tag],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    return process, ready, tag


def _wait(condition_met: Callable[[], bool], what: str, process: subprocess.Popen[bytes], seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not condition_met():
        assert process.poll() is None, f"the child ended (code {process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _state(run_id: str) -> tuple[str, str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(run_id)).state
    assert state is not None
    return state.type.value, state.message or ""


def _mlflow_statuses(workspace: Path, run_id: str) -> list[str]:
    registry = registry_for(workspace)
    experiments = [e.experiment_id for e in registry.client.search_experiments()]
    runs = registry.client.search_runs(experiments, filter_string=f"tags.`retrain.flow_run_id` = '{run_id}'")
    return [run.info.status for run in runs]


def _kill_and_outlive_the_lease(process: subprocess.Popen[bytes], workspace: Path, run_id: str) -> None:
    from retrain.application.reaper import expired_leases

    process.send_signal(signal.SIGKILL)
    process.wait(30)
    ledger = resolve_runtime(project_dir=workspace).ledger_url
    deadline = time.monotonic() + 60
    while run_id not in expired_leases(ledger):
        assert time.monotonic() < deadline, "the killed run's lease never expired"
        time.sleep(0.5)


def _assert_reaped(workspace: Path, tmp_path: Path, run_id: str, was: str) -> None:
    doctor = CliRunner().invoke(app, ["doctor", "--project", str(workspace)])
    assert doctor.exit_code == 0, doctor.output
    assert run_id in doctor.output and "Crashed" in doctor.output, doctor.output
    state, message = _state(run_id)
    assert state == "CRASHED" and "stopped renewing its lease" in message and "died" in message, message
    statuses = _mlflow_statuses(workspace, run_id)
    assert statuses and set(statuses) == {"FAILED"}, statuses
    assert f"was {was}" in doctor.output
    decision = acting_check(workspace, _new_day(workspace, tmp_path, 5, drifted=True))
    assert decision.decision != "in_flight", decision.reasons
    assert decision.decision == "retrain"


@pytest.mark.usefixtures("prefect_api", "deployed")
@pytest.mark.template("champion")
def test_a_killed_running_training_run_is_crashed_failed_in_mlflow_and_not_in_flight(workspace: Path, tmp_path: Path):
    write_params(workspace, {"model": {"xgboost": {"max_depth": 3}}, **SHORT_LEASE})  # a new training key
    process, ready, _ = _start_child(workspace, tmp_path, "running")
    try:
        _wait(ready.exists, "the MLflow run to be open", process)
        run_id = ready.read_text()
        assert _state(run_id)[0] == "RUNNING" and _mlflow_statuses(workspace, run_id) == ["RUNNING"]
        assert acting_check(workspace, _new_day(workspace, tmp_path, 5, drifted=True)).decision == "in_flight"
        _kill_and_outlive_the_lease(process, workspace, run_id)
    finally:
        process.kill()
    _assert_reaped(workspace, tmp_path, run_id, "Running")


@pytest.mark.slow  # the killed running run above is make test's; this one waits out a pause (make test-all)
@pytest.mark.usefixtures("prefect_api", "deployed")
@pytest.mark.template("champion")
def test_a_killed_paused_training_run_is_crashed_failed_in_mlflow_and_not_in_flight(workspace: Path, tmp_path: Path):
    from retrain.adapters.prefect_api import paused_runs

    write_params(workspace, {"model": {"xgboost": {"max_depth": 3}}, **SHORT_LEASE})
    process, _, tag = _start_child(workspace, tmp_path, "paused")
    try:
        _wait(lambda: bool(paused_runs(tag)), "the run to pause at the reviewer gate", process)
        run_id = str(paused_runs(tag)[0])
        time.sleep(6)  # longer than the lease: a live paused run keeps refreshing it
        assert _state(run_id)[0] == "PAUSED"
        doctor = CliRunner().invoke(app, ["doctor", "--project", str(workspace)])
        assert run_id not in doctor.output, doctor.output  # alive: never reaped
        _kill_and_outlive_the_lease(process, workspace, run_id)
    finally:
        process.kill()
    _assert_reaped(workspace, tmp_path, run_id, "Paused")


def _server_processes(prefect_home: Path) -> list[int]:
    """Processes (other than pytest) whose environment names this test's PREFECT_HOME."""
    marker = f"PREFECT_HOME={prefect_home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in environ and b"uvicorn" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.slow  # a CLI process with its own embedded server, killed: make test-all
def test_killing_the_cli_mid_run_leaves_no_embedded_prefect_server(workspace: Path, tmp_path: Path):
    settings = workspace_settings(workspace)
    write_demo_batches(workspace / settings.dataset.batches, settings, 5)
    prefect_home = tmp_path / "prefect-home"
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(prefect_home)
    cli = subprocess.Popen(
        [sys.executable, "-m", "retrain.cli", "train", "--project", str(workspace)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "cli.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 300
        while not (servers := _server_processes(prefect_home)):
            assert cli.poll() is None, (
                f"the CLI ended (code {cli.returncode}) before starting its Prefect server: "
                + (tmp_path / "cli.log").read_text()[-2000:]
            )
            assert time.monotonic() < deadline, "the CLI never started an embedded Prefect server"
            time.sleep(0.2)
        time.sleep(5)  # the flow is under way
        assert cli.poll() is None
    finally:
        cli.send_signal(signal.SIGKILL)
        cli.wait(30)
    deadline = time.monotonic() + 60  # seconds normally; generous for a loaded CI machine
    while _server_processes(prefect_home) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = _server_processes(prefect_home)
    for pid in left:  # do not leak it into the machine, but fail
        os.kill(pid, signal.SIGKILL)
    assert not left, f"embedded Prefect server(s) {servers} outlived the killed CLI"
