"""Simultaneous `retrain train` on one project, as several people (or a schedule and a person) start
them: one version per training key, a ledger that is a chain, the right `previous-champion`, and a
run judged against a champion that has since moved is refused instead of promoted.

Each run is a separate `retrain train` process on the same project, the same MLflow, the same ledger
(SQLite file, or PostgreSQL as on the team stack) and the session's Prefect API, where the test
answers every run that waits at the reviewer gate, as a reviewer in the Prefect UI would.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from retrain.adapters.ledger import Ledger
from retrain.cli import app
from retrain.domain.lifecycle import LedgerEntry
from retrain.domain.tags import TAG_TRAINING_KEY
from tests.conftest import reviewed_project
from tests.integration.conftest import SMALL_DATA, approve, registry_for, workspace_settings

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.usefixtures("prefect_api")]
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"

# Small, quick models and a lenient gate: this test is about who moves `champion`, not about the gate.
PARAMS: dict[str, Any] = {
    **SMALL_DATA,
    "demo": {"rows_per_day": 1200, "days": 8, "first_training_days": 5},
    "model": {"xgboost": {"max_depth": 2, "num_boost_round": 20}},
    "gate": {
        **SMALL_DATA["gate"],
        "floor": 0.5,
        "max_drop": 0.5,
        "bootstrap_resamples": 200,
        "slices": {"min_rows": 10_000_000},
    },
    "approval": {**SMALL_DATA["approval"], "timeout_minutes": 10},
}


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, services: Path) -> Iterator[str]:
    """The ledger (and the model lock beside it): a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{services / 'ledger.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    name = f"retrain_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {error}")
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Reviewer:
    """Approves every training run of this test that waits at the gate, while ``answering`` is set."""

    def __init__(self, since: dt.datetime):
        self.since = since
        self.answering = threading.Event()
        self.stop = threading.Event()
        self.answered: list[str] = []
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def paused(self) -> list[str]:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterStartTime,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType

        waiting = FlowRunFilter(
            start_time=FlowRunFilterStartTime(after_=self.since),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
        )
        with get_client(sync_client=True) as client:
            return [str(run.id) for run in client.read_flow_runs(flow_run_filter=waiting)]

    def _loop(self) -> None:
        from retrain.adapters.prefect_api import answer_paused_run

        while not self.stop.is_set():
            if self.answering.is_set():
                try:
                    for run_id in self.paused():
                        answer_paused_run(run_id, approve("ada", "checked the gate report"), None)
                        self.answered.append(run_id)
                except Exception as error:  # an API hiccup: look again on the next round
                    self.errors.append(repr(error))
            self.stop.wait(0.5)

    def __enter__(self) -> Reviewer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self._thread.join(150)


def _start_trainings(project: Path, count: int, env: dict[str, str]) -> list[subprocess.Popen[str]]:
    command = [sys.executable, "-m", "retrain.cli", "train", "--project", str(project), "--reason", "pytest"]
    return [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(count)
    ]


def _finish(runs: list[subprocess.Popen[str]], timeout: float = 900) -> list[str]:
    """Every run's output once all have ended; a run left over by a failure is stopped, not orphaned."""
    outputs = []
    try:
        for run in runs:
            output, _ = run.communicate(timeout=timeout)
            assert run.returncode == 0, output[-4000:]
            outputs.append(output)
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.wait()
    return outputs


def _runs_saying(outputs: list[str], start: str) -> int:
    """How many runs printed a line starting with ``start`` (the CLI's outcome line)."""
    return sum(any(line.startswith(start) for line in output.splitlines()) for output in outputs)


def _wait_until(condition: Any, what: str, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.5)


@pytest.mark.slow
def test_simultaneous_trainings_register_once_per_key_and_promote_by_compare_and_set(
    tmp_path: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch
):
    from prefect.settings import PREFECT_API_URL

    from retrain.cli.demo_run import write_demo_batches

    monkeypatch.setenv("RETRAIN_LEDGER_URL", ledger_url)
    project = reviewed_project(tmp_path / "project", PARAMS)
    settings = workspace_settings(project)
    batches = project / settings.dataset.batches
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    runner = CliRunner()
    registry = registry_for(project)
    registry.experiment_id()  # MLflow's database exists before the runs race, as on any project in use

    with Reviewer(dt.datetime.now(dt.UTC)) as reviewer:
        # Data A: five runs at once, one training key. One version; the first approved run promotes it.
        write_demo_batches(batches, settings, 5)
        reviewer.answering.set()
        first = _finish(_start_trainings(project, 5, env))
        assert _runs_saying(first, "first champion") == 1, first

        # Data A+B: two runs judge v2 against v1 and wait for the reviewers ...
        reviewer.answering.clear()
        write_demo_batches(batches, settings, 6)
        judged_on_ab = _start_trainings(project, 2, env)
        _wait_until(lambda: len(reviewer.paused()) == 2, "two runs on data A+B wait at the gate")
        # ... while data A+B+C arrives and one more run judges v3 against the same v1.
        write_demo_batches(batches, settings, 7)
        judged_on_abc = _start_trainings(project, 1, env)
        _wait_until(lambda: len(reviewer.paused()) == 3, "all three runs wait at the gate")
        reviewer.answering.set()  # now every run is approved: only the first promotion may move champion
        second = _finish(judged_on_ab + judged_on_abc)

    versions = registry.client.search_model_versions(f"name='{registry.model_name}'")
    keys = [version.tags[TAG_TRAINING_KEY] for version in versions]
    assert len(keys) == len(set(keys)) == 3, f"versions per training key: {sorted(keys)}"

    history = json.loads(runner.invoke(app, ["history", "--project", str(project), "--json"]).output)
    moves = [(e["kind"], e["champion_before"], e["champion_after"]) for e in history if e["kind"] == "promotion"]
    assert moves[0] == ("promotion", None, "1") and len(moves) == 2, history
    winner = moves[1][2]
    assert moves[1] == ("promotion", "1", winner) and winner in ("2", "3")
    loser = "3" if winner == "2" else "2"
    losing_runs = 2 if loser == "2" else 1
    refusals = [e for e in history if e["kind"] == "refusal"]
    assert [(e["champion_before"], e["challenger"], e["champion_after"]) for e in refusals] == [
        ("1", loser, winner)
    ] * losing_runs
    assert all(
        f"champion moved from v1 to v{winner} while this challenger was judged" in e["comment"] for e in refusals
    )
    assert _runs_saying(second, "promoted") == 1, second

    status = json.loads(runner.invoke(app, ["status", "--project", str(project), "--json"]).output)
    assert status["champion"]["version"] == winner and status["previous-champion"]["version"] == "1"
    healthy = runner.invoke(app, ["doctor", "--project", str(project)])
    assert healthy.exit_code == 0 and "healthy" in healthy.output, healthy.output

    # What the unlocked code wrote once (a second move from the stale v1) is a broken chain: unhealthy.
    ledger = Ledger(ledger_url)
    ledger.append(LedgerEntry(settings.model.registered_name, "promotion", "1", loser, loser, "someone", "stale"))
    ledger.dispose()
    broken = runner.invoke(app, ["doctor", "--project", str(project)])
    assert broken.exit_code == 1 and "the ledger is not a chain" in broken.output, broken.output
