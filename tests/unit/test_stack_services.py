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
