"""One live team stack (`retrain stack up` as a user runs it) for the stack tests of this session.

Its own state dir (with its own PostgreSQL cluster) and free ports, so it never meets a developer's
stack; stopped with `retrain stack down` (which must leave no process) and its state dir removed.
The state dir is made with mkdtemp in /tmp, not pytest's 0700 tree: run as root, the stack's
PostgreSQL runs as the ``postgres`` OS user, which must reach its data dir.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT


def pytest_itemcollected(item: pytest.Item) -> None:
    """Every test here is a stack test (`make test` leaves them out, `make test-all` runs them), marked
    or not: a new file that forgets ``pytestmark = pytest.mark.stack`` must not start a stack in `make test`.

    They share one live stack (a session fixture), so with pytest workers they all go to the same one
    (``xdist_group``, honoured by ``--dist loadgroup`` in `make test-all`): one stack started, not two."""
    if Path(__file__).parent in item.path.parents:
        item.add_marker(pytest.mark.stack)
        item.add_marker(pytest.mark.xdist_group("stack"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LiveStack:
    home: Path
    env: dict[str, str]
    keys: dict[str, Any]
    prefect_url: str
    people_url: str
    mlflow_url: str
    s3_url: str
    startup_seconds: float
    #: What the team's webhook received: the stack runs with ``RETRAIN_NOTIFY_WEBHOOK`` set to a receiver here
    told: list[dict[str, Any]] = field(default_factory=list)

    @property
    def prefect_auth(self) -> tuple[str, str]:
        user, password = str(self.keys["prefect_auth"]).split(":", 1)
        return user, password

    def person(self, name: str = "demo-reviewer") -> dict[str, str]:
        """What a person's shell holds: ``stack.env`` and their own ``people/NAME.env``, nothing else."""
        from retrain.stack import load_profile, stack_config_at

        return load_profile(stack_config_at(self.home.parent), name)

    def retrain(
        self, *args: str, timeout: float = 300, project: Path = REPO_ROOT, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "retrain.cli", *args, "--project", str(project)],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def onboard_model(self, name: str) -> dict[str, Any]:
        """A registered model of the test's own, set up as an admin onboards one (the worker's account
        may change it, people read it), so that no test meets another's champion; params overrides."""
        from retrain.stack import StackSecrets, ensure_mlflow_accounts

        ensure_mlflow_accounts(
            self.mlflow_url, StackSecrets.model_validate(self.keys), name, [name, f"{name}-monitoring"]
        )
        return {"model": {"registered_name": name, "experiment": name}}


def _postgres_installed() -> bool:
    from retrain.stack import postgres_bin

    return Path(postgres_bin("initdb")).exists()


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    if not _postgres_installed():
        message = "PostgreSQL's server binaries (initdb) are not installed: the team stack runs its own cluster"
        if os.environ.get("CI") == "true":  # in CI a skip would hide the stack tests
            pytest.fail(message)
        pytest.skip(message)
    from retrain.adapters.webhook_inbox import webhook_inbox

    told: list[dict[str, Any]] = []
    with webhook_inbox(told.append) as webhook:
        yield from _live_stack(tmp_path_factory, webhook, told)


def _live_stack(
    tmp_path_factory: pytest.TempPathFactory, webhook: str, told: list[dict[str, Any]]
) -> Iterator[LiveStack]:
    home = Path(tempfile.mkdtemp(prefix="retrain-stack-test-"))
    ports = {name: _free_port() for name in ("PREFECT", "PEOPLE", "MLFLOW", "S3", "POSTGRES")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_TRACKING"))}
    env.update(
        RETRAIN_HOME=str(home),
        RETRAIN_STACK_PREFECT_PORT=str(ports["PREFECT"]),
        RETRAIN_STACK_PEOPLE_PORT=str(ports["PEOPLE"]),
        RETRAIN_STACK_MLFLOW_PORT=str(ports["MLFLOW"]),
        RETRAIN_STACK_S3_PORT=str(ports["S3"]),
        RETRAIN_STACK_POSTGRES_PORT=str(ports["POSTGRES"]),
        RETRAIN_STACK_PROJECTS=str(tmp_path_factory.getbasetemp()),  # the tests' projects; nothing else
        RETRAIN_NOTIFY_WEBHOOK=webhook,  # the worker tells it; `stack up` installs the server's automation
    )
    started = time.perf_counter()
    up = subprocess.run(
        [sys.executable, "-m", "retrain.cli", "stack", "up", "--project", str(REPO_ROOT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    seconds = time.perf_counter() - started
    keys = (
        json.loads((home / "stack" / "secrets.json").read_text()) if (home / "stack" / "secrets.json").exists() else {}
    )
    stack = LiveStack(
        home / "stack",
        env,
        keys,
        f"http://127.0.0.1:{ports['PREFECT']}/api",
        f"http://127.0.0.1:{ports['PEOPLE']}/api",
        f"http://127.0.0.1:{ports['MLFLOW']}",
        f"http://127.0.0.1:{ports['S3']}",
        seconds,
        told,
    )
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        print(f"\nretrain stack up: healthy in {seconds:.1f} s")
        yield stack
    finally:
        down = stack.retrain("stack", "down", "--purge")
        pids = list((home / "stack" / "pids").glob("*.pid")) if (home / "stack" / "pids").exists() else []
        left = _processes_mentioning(str(home))
        purged = not (home / "stack").exists()
        if not left:
            shutil.rmtree(home, ignore_errors=True)
        assert down.returncode == 0, down.stderr
        assert purged, "stack down --purge left the stack's state dir"
        assert pids == [], f"pid files left after stack down: {pids}"
        assert left == [], f"processes left after stack down: {left}"


def _processes_mentioning(text: str) -> list[str]:
    """Processes whose environment or command line names the stack's state dir (every stack process does)."""
    found = []
    needle = text.encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if needle in (proc / "environ").read_bytes() or needle in (proc / "cmdline").read_bytes():
                found.append(f"{proc.name}: {(proc / 'cmdline').read_bytes().replace(bytes(1), b' ').decode()[:120]}")
        except OSError:
            continue
    return found
