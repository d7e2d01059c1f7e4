"""The team stack's start order comes from each service's ``depends_on``; its secrets never show."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from retrain.stack import (
    Service,
    StackConfig,
    StackError,
    load_secrets,
    services,
    start_order,
    stop_order,
)
from retrain.stack.services import dependency_order
from tests.unit.test_compose import KEYS


def _service(name: str, *depends_on: str) -> Service:
    return Service(name, ["true"], {}, lambda: True, depends_on)


def test_every_service_starts_after_what_it_depends_on_and_stops_before_it():
    plan = services(StackConfig(home=Path("/tmp/x")), KEYS)
    order = start_order(plan)
    assert sorted(order) == sorted(service.name for service in plan)
    for service in plan:
        for dependency in service.depends_on:
            assert order.index(dependency) < order.index(service.name), (dependency, service.name)
    assert order[:2] == ["postgres", "s3"]  # nothing needs anything before them
    assert order[-1] == "prefect-worker"  # the worker runs the deployments: it starts last
    assert stop_order(plan) == order[::-1]


def test_services_that_may_start_together_keep_the_plans_order():
    plan = [_service("b"), _service("a"), _service("d", "a", "b"), _service("c", "a")]
    assert start_order(plan) == ["b", "a", "d", "c"]
    assert stop_order(plan) == ["c", "d", "a", "b"]


def test_the_order_follows_dependencies_not_the_plans_order():
    plan = [_service("worker", "server"), _service("server", "database"), _service("database")]
    assert start_order(plan) == ["database", "server", "worker"]


def test_a_cycle_is_a_clear_error():
    plan = [_service("a", "c"), _service("b", "a"), _service("c", "b"), _service("d")]
    with pytest.raises(StackError, match="cycle") as raised:
        start_order(plan)
    assert all(name in str(raised.value) for name in "abc")
    with pytest.raises(StackError, match="cycle"):
        stop_order([_service("self", "self")])


def test_an_unknown_dependency_is_a_clear_error():
    with pytest.raises(StackError, match="server depends on databse, which is not a service"):
        dependency_order([_service("database"), _service("server", "databse")])
    with pytest.raises(StackError, match="two services share a name"):
        start_order([_service("database"), _service("database")])


def test_secrets_are_generated_once_kept_0600_and_never_shown(tmp_path: Path):
    config = StackConfig(home=tmp_path / "stack")
    keys = load_secrets(config, ("ada",))
    path = config.home / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert set(document) == {
        "prefect_auth",
        "mlflow_admin_password",
        "mlflow_service_password",
        "mlflow_flask_secret",
        "s3_access_key",
        "s3_secret_key",
        "mlflow_people",
        "postgres",
        "privacy_salt",
    }
    assert set(document["postgres"]) == {"admin", "prefect", "mlflow", "worker", "people"}
    assert document["prefect_auth"] == keys.prefect_auth.get_secret_value()
    assert document["prefect_auth"].startswith("admin:")
    values = [v for k, v in document.items() if isinstance(v, str)]
    values += [*document["mlflow_people"].values(), *document["postgres"].values()]
    shown = repr(keys) + str(keys) + json.dumps(keys.model_dump(mode="json"))
    assert not [value for value in values if value in shown]
    with pytest.raises(ValidationError):  # frozen
        keys.prefect_auth = SecretStr("admin:other")  # type: ignore[misc]


def test_secrets_are_kept_a_new_reviewer_gets_one_and_retired_keys_go(tmp_path: Path):
    config = StackConfig(home=tmp_path / "stack")
    first = load_secrets(config, ("ada",))
    path = config.home / "secrets.json"
    before = path.stat().st_mtime_ns
    assert load_secrets(config, ("ada",)).revealed() == first.revealed()
    assert path.stat().st_mtime_ns == before  # nothing new: not rewritten
    document = json.loads(path.read_text())
    path.write_text(json.dumps({**document, "approval_secret": "old"}))
    second = load_secrets(config, ("ada", "grace"))
    assert second.person_password("ada") == first.person_password("ada")
    assert second.postgres.of("worker") == first.postgres.of("worker")
    assert second.person_password("grace") not in (second.person_password("ada"), "")
    assert "approval_secret" not in json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_importing_the_stack_imports_no_heavy_library():
    code = (
        "import sys, retrain.stack\n"
        "heavy = ('prefect', 'mlflow', 'sqlalchemy', 'boto3', 'moto', 'psycopg')\n"
        "print([name for name in heavy if name in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_up_provisions_each_server_before_its_dependents_start_and_runs_setup_just_before_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """``up`` with the real services' dependencies, processes and provisioning replaced by a log."""
    from retrain.stack import commands

    config = StackConfig(home=tmp_path / "stack")
    real = services(config, KEYS)
    events: list[str] = []
    running: set[str] = set()

    def fake(service: Service) -> Service:
        return Service(service.name, [], {}, lambda: service.name in running, service.depends_on)

    monkeypatch.setattr(commands, "services", lambda _config, _keys: [fake(service) for service in real])
    monkeypatch.setattr(commands, "ensure_nginx", lambda _on_event: None)
    monkeypatch.setattr(commands, "ensure_postgres_cluster", lambda _config, _keys: False)
    monkeypatch.setattr(commands, "write_mlflow_auth_config", lambda _config: tmp_path)
    monkeypatch.setattr(commands, "write_proxy_config", lambda _config, _keys: tmp_path)

    def databases(_config: StackConfig, _keys: object) -> list[str]:
        events.append("databases")
        return []

    monkeypatch.setattr(commands, "ensure_roles_and_databases", databases)
    monkeypatch.setattr(commands, "ensure_ledger_tables", lambda _c, _k: events.append("ledger tables"))
    monkeypatch.setattr(commands, "ensure_bucket", lambda _c, _k: events.append("bucket"))
    monkeypatch.setattr(commands, "running_pid", lambda _config, name: 1 if name in running else None)
    monkeypatch.setattr(commands, "start_service", lambda _config, service: running.add(service.name))

    statuses = commands.up(config, KEYS, events.append, lambda: events.append("setup"), timeout=5)

    assert all(item.healthy for item in statuses)
    position = events.index
    assert position("databases") < position("ledger tables") < position("started mlflow")
    assert position("ledger tables") < position("started prefect-server")
    assert position("bucket") < position("started mlflow")
    assert position("started prefect-server") < position("started prefect-proxy")
    assert position("started mlflow") < position("setup") < position("started prefect-worker")
    assert events[-1] == "started prefect-worker"
    events.clear()
    commands.up(config, KEYS, events.append, lambda: events.append("setup"), timeout=5)  # all running: no start
    assert not [event for event in events if event.startswith("started")]
    assert "setup" in events


def test_up_names_the_service_that_exits_while_starting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from retrain.stack import commands

    config = StackConfig(home=tmp_path / "stack")
    plan = [Service("database", [], {}, lambda: False), Service("server", [], {}, lambda: False, ("database",))]
    monkeypatch.setattr(commands, "services", lambda _config, _keys: plan)
    for step in ("ensure_nginx", "write_mlflow_auth_config"):
        monkeypatch.setattr(commands, step, lambda *_args: None)
    for step in ("ensure_postgres_cluster", "write_proxy_config"):
        monkeypatch.setattr(commands, step, lambda *_args: False)
    started: set[str] = set()
    monkeypatch.setattr(commands, "start_service", lambda _config, service: started.add(service.name))
    monkeypatch.setattr(commands, "running_pid", lambda _config, name: None)  # exited at once
    with pytest.raises(StackError, match=r"database exited while starting; see .*database\.log"):
        commands.up(config, KEYS, lambda _event: None, lambda: None, timeout=5)
    assert started == {"database"}  # the server waits for what it depends on


def test_up_refuses_a_cycle_before_it_installs_writes_or_starts_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from retrain.stack import commands

    done: list[str] = []
    plan = [_service("a", "b"), _service("b", "a")]
    monkeypatch.setattr(commands, "services", lambda _config, _keys: plan)
    monkeypatch.setattr(commands, "ensure_nginx", lambda _on_event: done.append("nginx"))
    monkeypatch.setattr(commands, "start_service", lambda _config, service: done.append(service.name))
    with pytest.raises(StackError, match="cycle"):
        commands.up(StackConfig(home=tmp_path / "stack"), KEYS, done.append, lambda: None, timeout=5)
    assert done == []
    assert not (tmp_path / "stack").exists()
