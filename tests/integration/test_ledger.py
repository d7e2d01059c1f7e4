"""The promotion ledger on SQLite and PostgreSQL, and rollback as a flow, through the CLI."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retrain.adapters.ledger import Ledger
from retrain.cli import app
from retrain.domain.lifecycle import LedgerEntry
from tests.integration.conftest import reviewed, workspace_settings

pytestmark = pytest.mark.integration
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _postgres_database() -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    name = f"retrain_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:  # pragma: no cover - the machine's PostgreSQL is down
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {error}")
    yield f"{POSTGRES}/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        store = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
        yield store
        store.dispose()
        return
    for url in _postgres_database():
        store = Ledger(url)
        yield store
        store.dispose()


def _entry(kind: str = "promotion", **changes: object) -> LedgerEntry:
    base = {
        "model_name": "m",
        "kind": kind,
        "champion_before": "1",
        "challenger": "2",
        "champion_after": "2",
        "actor": "ada",
        "comment": "better",
        "reviewers": ("grace",),
        "checks": [{"name": "absolute_floor", "passed": True, "value": 0.8, "threshold": 0.7}],
        "flow_run_id": "run-1",
        "evidence": {"data_md5": "abc"},
    }
    return LedgerEntry(**{**base, **changes})  # type: ignore[arg-type]


def test_entries_come_back_in_order_with_everything_recorded(ledger: Ledger):
    first = ledger.append(_entry())
    second = ledger.append(_entry("refusal", challenger="3", champion_after="2", comment="worse"))
    ledger.append(_entry(model_name="other"))
    entries = ledger.entries("m")
    assert [e.position for e in entries] == [first, second] and first < second
    assert entries[0].reviewers == ("grace",) and entries[0].checks[0]["name"] == "absolute_floor"
    recorded = entries[0].recorded_at
    assert entries[0].evidence == {"data_md5": "abc"} and recorded is not None and recorded.tzinfo is not None
    assert entries[1].kind == "refusal" and entries[1].comment == "worse"


def test_the_database_itself_refuses_updates_and_deletes(ledger: Ledger):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    ledger.append(_entry())
    for statement in ("UPDATE promotion_ledger SET comment = 'rewritten'", "DELETE FROM promotion_ledger"):
        with pytest.raises(DBAPIError, match="append-only"), ledger.engine.begin() as connection:
            connection.execute(text(statement))
    assert [e.comment for e in ledger.entries("m")] == ["better"]


def test_the_code_has_no_update_or_delete_path():
    source = (Path(__file__).resolve().parents[2] / "retrain" / "adapters" / "ledger.py").read_text()
    assert ".update(" not in source and ".delete(" not in source
    assert sorted(name for name in vars(Ledger) if not name.startswith("_")) == [
        "append",
        "dispose",
        "engine",
        "entries",
    ]


@pytest.mark.usefixtures("prefect_api")
def test_history_and_rollback_through_the_cli(workspace: Path):
    from retrain.adapters.workspace import write_params
    from retrain.cli.demo_run import write_demo_batches

    settings = workspace_settings(workspace)
    runner = CliRunner()
    project = ["--project", str(workspace)]
    write_params(workspace, {"model": {"xgboost": {"max_depth": 1, "num_boost_round": 3}}, "gate": {"floor": 0.5}})
    write_demo_batches(workspace / settings.dataset.batches, settings, 5)
    assert reviewed(lambda: runner.invoke(app, ["train", *project])).exit_code == 0
    write_params(workspace, {"model": {"xgboost": {"max_depth": 4, "num_boost_round": 400}}})
    assert reviewed(lambda: runner.invoke(app, ["train", *project])).exit_code == 0
    assert runner.invoke(app, ["train", *project]).exit_code == 0  # same key: no new decision, no review

    history = json.loads(runner.invoke(app, ["history", *project, "--json"]).output)
    assert [(e["kind"], e["champion_before"], e["champion_after"]) for e in history] == [
        ("promotion", None, "1"),
        ("promotion", "1", "2"),
    ]
    assert history[1]["checks"] and history[1]["evidence"]["data_md5"]

    rolled = runner.invoke(app, ["rollback", "--reason", "v2 misbehaves in production", *project])
    assert rolled.exit_code == 0, rolled.output
    status = json.loads(runner.invoke(app, ["status", *project, "--json"]).output)
    assert status["champion"]["version"] == "1" and status["previous-champion"] is None
    last = json.loads(runner.invoke(app, ["history", *project, "--json"]).output)[-1]
    assert (last["kind"], last["champion_before"], last["champion_after"]) == ("rollback", "2", "1")
    assert last["comment"] == "v2 misbehaves in production"

    again = runner.invoke(app, ["rollback", "--reason", "once more", *project])
    assert again.exit_code == 1
    assert again.output.strip().splitlines()[-1].startswith("error: nothing to roll back to")
    assert len(json.loads(runner.invoke(app, ["history", *project, "--json"]).output)) == 3


@pytest.fixture(params=["sqlite", "postgresql"])
def decision_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    yield from _postgres_database()


def test_the_database_itself_refuses_updates_and_deletes_of_decisions(decision_url: str):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from retrain.adapters.ledger import DecisionLog

    log = DecisionLog(decision_url)
    log.decide_and_record(
        "m", lambda _: ("none", ("quiet",)), champion="1", drift_share=0.0, batches=["b"], drift_run_id=None
    )
    for statement in ("UPDATE retraining_decisions SET decision = 'retrain'", "DELETE FROM retraining_decisions"):
        with pytest.raises(DBAPIError, match="append-only"), log.engine.begin() as connection:
            connection.execute(text(statement))
    assert [r.decision for r in log.records("m")] == ["none"]
    log.dispose()


def test_ten_simultaneous_drift_decisions_start_exactly_one_retraining(decision_url: str):
    import datetime as dt
    import threading

    from retrain.adapters.ledger import DecisionLog, Trigger
    from retrain.domain.retraining import decide_retraining
    from retrain.domain.settings import RetrainingSettings

    policy = RetrainingSettings(
        clock="wall", cooldown_hours=24, weekly_budget=3, deployment="training/nightly", stale_after_hours=12
    )
    barrier = threading.Barrier(10)
    results: list[str] = []
    DecisionLog(decision_url).engine.dispose()  # the table exists before the checks race

    def drift_check(index: int) -> None:
        log = DecisionLog(decision_url)  # one connection pool per check, as separate flow runs have
        barrier.wait()

        def decide(earlier: list[Trigger]) -> tuple[str, tuple[str, ...]]:
            choice = decide_retraining(
                True,
                ["drift"],
                now=dt.datetime.now(dt.UTC),
                earlier_triggers=[trigger.on("wall") for trigger in earlier],
                in_flight=[],
                settings=policy,
            )
            return choice.decision, choice.reasons

        record = log.decide_and_record(
            "m", decide, champion="1", drift_share=0.5, batches=[f"b{index}"], drift_run_id=None
        )
        results.append(record.decision)
        log.dispose()

    threads = [threading.Thread(target=drift_check, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == ["cooldown"] * 9 + ["retrain"]
    log = DecisionLog(decision_url)
    assert [r.decision for r in log.records("m")].count("retrain") == 1
    log.dispose()


def test_a_decision_log_from_before_the_data_clock_gains_its_columns_and_keeps_its_rows(decision_url: str):
    """A ledger written by an older Retrain (no data_time, signal or baseline) is upgraded in place:
    the new columns are added, the old rows read back with them empty, and the append-only guard holds."""
    import datetime as dt

    from sqlalchemy import Column, DateTime, Float, Integer, MetaData, String, Table, Text, create_engine, inspect, text
    from sqlalchemy.exc import DBAPIError

    from retrain.adapters.ledger import DecisionLog

    engine = create_engine(decision_url)
    old = Table(
        "retraining_decisions",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("recorded_at", DateTime(timezone=True), nullable=False),
        Column("model_name", String(200), nullable=False),
        Column("champion", String(40)),
        Column("decision", String(20), nullable=False),
        Column("reasons", Text, nullable=False),
        Column("drift_share", Float),
        Column("batches", Text, nullable=False),
        Column("drift_run_id", String(64)),
    )
    with engine.begin() as connection:
        old.metadata.create_all(connection)
        connection.execute(
            old.insert().values(
                recorded_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                model_name="m",
                decision="retrain",
                reasons='["7 of 21 features drifted"]',
                batches='["b0"]',
            )
        )
    engine.dispose()

    log = DecisionLog(decision_url)
    seen_at = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    log.decide_and_record(
        "m",
        lambda earlier: ("retrain", (f"{len(earlier)} earlier",)),
        champion="1",
        drift_share=0.5,
        batches=["b1"],
        drift_run_id=None,
        data_time=seen_at,
        signal="performance",
        baseline=0.81,
    )
    columns = {c["name"] for c in inspect(log.engine).get_columns("retraining_decisions")}
    assert {"data_time", "signal", "baseline"} <= columns
    first, second = log.records("m")
    assert (first.decision, first.data_time, first.signal) == ("retrain", None, None)
    assert (second.reasons, second.data_time, second.signal) == (("1 earlier",), seen_at, "performance")
    assert log.last_change("m", ["performance"]) == (seen_at, 0.81)
    assert log.last_change("m", ["feature_drift"]) is None
    with pytest.raises(DBAPIError, match="append-only"), log.engine.begin() as connection:
        connection.execute(text("DELETE FROM retraining_decisions"))
    log.dispose()
