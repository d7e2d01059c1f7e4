"""Two stacks on one machine never meet: each keeps its own ports (free ones when the defaults are
taken) and its own cluster, and a cluster its secrets cannot open stops `stack up` before anything
changes, with the two ways on; `stack reset --yes` drops it and says what it dropped."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retrain.cli import app
from retrain.stack import StackConfig, StackError, settle_ports
from retrain.stack.config import recorded_ports
from retrain.stack.provisioning import check_cluster_secrets, foreign_cluster_before_secrets, mark_cluster_secrets
from retrain.stack.secrets import generate_secrets, load_secrets
from tests.conftest import REPO_ROOT


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def _free() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(tmp_path: Path, **ports: int) -> StackConfig:
    """A stack whose ports are free ones (the machine's defaults may be in use), some given."""
    chosen = {field: _free() for field in ("prefect_port", "people_port", "mlflow_port", "s3_port", "postgres_port")}
    chosen.update(ports)
    return StackConfig(
        home=tmp_path / "stack",
        prefect_port=chosen["prefect_port"],
        people_port=chosen["people_port"],
        mlflow_port=chosen["mlflow_port"],
        s3_port=chosen["s3_port"],
        postgres_port=chosen["postgres_port"],
    )


def test_a_taken_default_port_is_replaced_by_a_free_one_and_kept_for_the_next_up(tmp_path: Path, held_port: int):
    events: list[str] = []
    config = settle_ports(_config(tmp_path, prefect_port=held_port), {}, events.append)
    assert config.prefect_port != held_port and len(set(config.ports().values())) == 5
    moved = (
        f"port {held_port} is taken on this machine: the Prefect server of this stack listens on {config.prefect_port}"
    )
    assert events == [moved]
    assert recorded_ports(config.home) == config.ports()
    again = StackConfig.from_env(tmp_path, "pool", env={})  # the next `up`, `status`, `down`: the same addresses
    assert again.ports() == config.ports()
    assert settle_ports(again, {}, events.append) == again and len(events) == 1


def test_a_port_the_user_set_or_an_earlier_up_recorded_is_never_moved(tmp_path: Path, held_port: int):
    config = _config(tmp_path, mlflow_port=held_port)
    expected = rf"port {held_port} of the MLflow server \(set by RETRAIN_STACK_MLFLOW_PORT\)"
    with pytest.raises(StackError, match=expected):
        settle_ports(config, {"RETRAIN_STACK_MLFLOW_PORT": str(held_port)}, print)
    config.home.mkdir(parents=True)
    config.ports_file.write_text(json.dumps({**config.ports()}))
    with pytest.raises(StackError, match=r"recorded in .*ports\.json.*RETRAIN_STACK_MLFLOW_PORT=PORT retrain stack up"):
        settle_ports(StackConfig.from_env(tmp_path, "pool", env={}), {}, print)


def test_two_services_never_get_one_port(tmp_path: Path):
    same = _free()
    config = settle_ports(_config(tmp_path, prefect_port=same, people_port=same), {}, print)
    assert len(set(config.ports().values())) == 5


def _cluster(config: StackConfig) -> None:
    config.postgres_data.mkdir(parents=True)
    (config.postgres_data / "PG_VERSION").write_text("17\n")


def test_a_cluster_without_its_secrets_file_is_refused_before_new_secrets_are_made(tmp_path: Path):
    config = StackConfig(home=tmp_path / "stack")
    assert foreign_cluster_before_secrets(config) is None
    _cluster(config)
    problem = foreign_cluster_before_secrets(config)
    assert problem is not None and "stopped before changing anything" in problem
    assert "retrain stack reset --yes" in problem and str(config.secrets_file) in problem


def test_a_cluster_made_with_other_secrets_is_refused_and_its_own_are_accepted(tmp_path: Path):
    config = StackConfig(home=tmp_path / "stack")
    _cluster(config)
    mine = load_secrets(config, ["alice"])
    check_cluster_secrets(config, generate_secrets({}, ["alice"]))  # no mark yet: nothing to compare with
    assert not (config.home / "cluster-secrets.sha256").exists()  # marked only once a login proved them
    mark_cluster_secrets(config, mine)
    check_cluster_secrets(config, mine)
    with pytest.raises(StackError, match=r"not this cluster's.*Two ways on"):
        check_cluster_secrets(config, generate_secrets({}, ["alice"]))
    mark = (config.home / "cluster-secrets.sha256").read_text()
    assert mine.postgres.of("admin") not in mark
    assert (config.home / "cluster-secrets.sha256").stat().st_mode & 0o077 == 0


def test_stack_up_on_a_cluster_left_without_secrets_says_what_to_do_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("RETRAIN_HOME", str(tmp_path))
    config = StackConfig(home=tmp_path / "stack")
    _cluster(config)
    done = CliRunner().invoke(app, ["stack", "up", "--project", str(REPO_ROOT)])
    assert done.exit_code == 1, done.output
    assert "`retrain stack up` stopped before changing anything" in done.output and "Traceback" not in done.output
    assert sorted(path.name for path in config.home.iterdir()) == ["postgres"]  # no secrets, ports or profile made
    status = CliRunner().invoke(app, ["stack", "status", "--project", str(REPO_ROOT)])
    assert status.exit_code == 1 and "`retrain stack status` stopped before changing anything" in status.output
    down = CliRunner().invoke(app, ["stack", "down", "--project", str(REPO_ROOT)])
    assert down.exit_code == 0 and "nothing was running" in down.output  # stopping needs no secrets
    assert sorted(path.name for path in config.home.iterdir()) == ["postgres"]

    refused = CliRunner().invoke(app, ["stack", "reset", "--project", str(REPO_ROOT)])
    assert refused.exit_code == 2 and "--yes" in refused.output and config.home.exists()
    reset = CliRunner().invoke(app, ["stack", "reset", "--yes", "--project", str(REPO_ROOT)])
    assert reset.exit_code == 0, reset.output
    assert "dropped its PostgreSQL cluster (databases retrain_prefect" in reset.output.replace("\n", " ")
    assert not config.home.exists()


def test_a_port_a_stopped_stack_left_in_time_wait_is_free_to_the_next_up():
    """Servers close first (keep-alive ends, health checks): their port sits in TIME_WAIT for a minute
    after the stack stops, and every server of the stack binds with SO_REUSEADDR, so it is free."""
    from retrain.stack.config import port_is_free

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = int(server.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            accepted.close()  # the server's side closes first: TIME_WAIT on its port
            client.recv(1)
        assert not port_is_free("127.0.0.1", port)  # still listening
    assert port_is_free("127.0.0.1", port)


def test_stack_up_with_another_stacks_secrets_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RETRAIN_HOME", str(tmp_path))
    config = StackConfig(home=tmp_path / "stack")
    _cluster(config)
    mark_cluster_secrets(config, generate_secrets({}, []))  # the cluster another stack's secrets made
    load_secrets(config, [])
    before = config.secrets_file.read_bytes()
    done = CliRunner().invoke(app, ["stack", "up", "--project", str(REPO_ROOT)])
    assert done.exit_code == 1, done.output
    assert "that is not this cluster's" in done.output and "retrain stack reset --yes" in done.output
    assert config.secrets_file.read_bytes() == before and not config.ports_file.exists()


def test_no_port_moves_while_the_stack_runs(tmp_path: Path, held_port: int):
    """PostgreSQL running (its pid file names a live process): MLflow's taken port cannot move, since
    the running services were started with its address."""
    import os

    config = _config(tmp_path, mlflow_port=held_port)
    config.pids_dir.mkdir(parents=True)
    config.pid_file("postgres").write_text(str(os.getpid()))
    with pytest.raises(StackError, match=r"running, use it.*`retrain stack down` first"):
        settle_ports(config, {}, print)
    assert not config.ports_file.exists()
