"""The stack's state dir is the operator's alone: directories 0700, files 0600, whatever the umask.

The layout is built the way `retrain stack up` builds it (ports, secrets, then ``up``'s
``secure_state``, configs, profiles, a process's log and pid file), with no service started: the
one process is ``true``. The umask is 0 throughout, so a mode that was not set after creation would
show as 0777 or 0666. Run as root, the state dir, its parent and ``nginx/`` are 0711 so that
PostgreSQL (``postgres``) and nginx's workers (``www-data``) pass through; both ways are checked,
whoever runs the test. The PostgreSQL data dir (``initdb``'s 0700) is checked on the live stack
(tests/stack/test_live_stack.py)."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrain.stack import (
    Service,
    StackConfig,
    load_secrets,
    secure_state,
    settle_ports,
    write_mlflow_auth_config,
    write_profile,
    write_proxy_config,
)
from retrain.stack.log_redaction import write_server_logging_config
from retrain.stack.supervisor import start_service
from tests.unit.test_stack_ownership import _config


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def no_umask() -> Iterator[None]:
    """The widest umask a user could have: nothing is masked off what a call asks for."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _build(config: StackConfig, as_root: bool) -> None:
    """What `retrain stack up` writes before and while it starts services, with no service started."""
    config = settle_ports(config, {}, lambda _event: None)  # ports.json: written before secrets
    keys = load_secrets(config, ("ada",))  # secrets.json
    secure_state(config, as_root=as_root)  # up's first write
    write_mlflow_auth_config(config)
    write_proxy_config(config, keys)
    write_server_logging_config(config.prefect_server_logging)
    pid = start_service(config, Service("probe", ["true"], {}, lambda: True))  # logs/probe.log, pids/probe.pid
    with contextlib.suppress(ChildProcessError):  # reaped already (subprocess reaps what it dropped)
        os.waitpid(pid, 0)  # its pid file stays, as a running service's does
    write_profile(config, keys)  # stack.env, people/ada.env


@pytest.mark.usefixtures("no_umask")
@pytest.mark.parametrize("as_root", [False, True], ids=["as-a-user", "as-root"])
def test_the_state_dir_is_the_operators_alone_whatever_the_umask(tmp_path: Path, as_root: bool):
    config = _config(tmp_path / "state")
    _build(config, as_root)

    passage = 0o711 if as_root else 0o700
    directories = {path.relative_to(config.home): _mode(path) for path in config.home.rglob("*") if path.is_dir()}
    expected = {Path(name): 0o700 for name in ("postgres", "pids", "logs", "people", "mlflow", "prefect-server")}
    expected |= {Path(name): 0o700 for name in ("prefect-worker", "worker-home")}
    assert directories == {**expected, Path("nginx"): passage}
    assert _mode(config.home) == passage
    assert _mode(config.home.parent) == passage  # made by the first write (0700); root lets servers through

    files = {path.relative_to(config.home).as_posix(): _mode(path) for path in config.home.rglob("*") if path.is_file()}
    assert set(files) == {
        "ports.json",
        "secrets.json",
        "stack.env",
        "people/ada.env",
        "mlflow/basic_auth.ini",
        "nginx/nginx.conf",
        "nginx/people.map",
        "prefect-server/logging.yml",
        "logs/probe.log",
        "pids/probe.pid",
    }
    assert {name: mode for name, mode in files.items() if mode != 0o600} == {}


def test_a_state_dir_left_wide_is_narrowed_at_the_next_up(tmp_path: Path):
    """An older stack wrote with the umask's 0755 and 0644: its files are narrowed, PostgreSQL's data
    dir is left to PostgreSQL."""
    config = StackConfig(home=tmp_path / "stack")
    wide = {
        "secrets.json": "{}",
        "ports.json": "{}",
        "stack.env": "",
        "cluster-secrets.sha256": "",
        "logs/mlflow.log": "",
        "pids/mlflow.pid": "1",
        "people/ada.env": "",
        "nginx/nginx.conf": "",
        "mlflow/basic_auth.ini": "",
    }
    for name, text in wide.items():
        path = config.home / name
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        path.parent.chmod(0o755)
        path.write_text(text)
        path.chmod(0o644)
    data = config.postgres_data
    data.mkdir(parents=True)
    data.chmod(0o700)
    (data / "PG_VERSION").write_text("16\n")
    (data / "PG_VERSION").chmod(0o644)  # as initdb leaves it

    secure_state(config, as_root=False)

    assert {name: _mode(config.home / name) for name in wide} == dict.fromkeys(wide, 0o600)
    for directory in (config.home, config.logs_dir, config.pids_dir, config.people_dir, config.nginx_dir):
        assert _mode(directory) == 0o700, directory
    assert _mode(data / "PG_VERSION") == 0o644 and _mode(data) == 0o700
