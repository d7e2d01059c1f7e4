"""Two team stacks on one machine at once (two checkouts, or one whose state directory was rebuilt):
the second never meets the first's servers or databases. Its own cluster, secrets and ports: taken
defaults are replaced by free ports, a port the user set that another stack holds is a clear
refusal, and `stack down --purge` leaves nothing of it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from retrain.stack.config import DEFAULT_PORTS
from tests.conftest import REPO_ROOT
from tests.stack.conftest import LiveStack

pytestmark = pytest.mark.stack


def _retrain(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "retrain.cli", *args, "--project", str(REPO_ROOT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def test_a_second_stack_comes_up_beside_the_first_on_ports_and_databases_of_its_own(
    live_stack: LiveStack,
):
    held = []  # the machine's default ports, held as a first stack on the defaults holds them
    for port in DEFAULT_PORTS.values():
        holder = socket.socket()
        try:
            holder.bind(("127.0.0.1", port))
            holder.listen()
            held.append(holder)
        except OSError:
            holder.close()  # already taken by something else: just as good
    # in /tmp, not pytest's 0700 tree: as root, the cluster's owner (the postgres OS user) must reach it
    second = Path(tempfile.mkdtemp(prefix="retrain-second-stack-"))
    env = {key: value for key, value in live_stack.env.items() if not key.startswith("RETRAIN_STACK_")}
    env.update(RETRAIN_HOME=str(second), RETRAIN_STACK_PROJECTS=live_stack.env["RETRAIN_STACK_PROJECTS"])
    try:
        # a port the user gives that the first stack holds: refused at once, nothing made
        first_prefect = live_stack.prefect_url.rsplit(":", 1)[1].split("/")[0]
        refused = _retrain({**env, "RETRAIN_STACK_PREFECT_PORT": first_prefect}, "stack", "up")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert f"port {first_prefect} of the Prefect server (set by RETRAIN_STACK_PREFECT_PORT)" in refused.stderr
        assert "Traceback" not in refused.stdout + refused.stderr
        assert not (second / "stack" / "secrets.json").exists()

        up = _retrain(env, "stack", "up")
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        assert "is taken on this machine" in up.stdout
        ports = json.loads((second / "stack" / "ports.json").read_text())
        urls = (live_stack.prefect_url, live_stack.people_url, live_stack.mlflow_url, live_stack.s3_url)
        first = {int(url.rsplit(":", 1)[1].split("/")[0]) for url in urls}
        first.add(int(live_stack.env["RETRAIN_STACK_POSTGRES_PORT"]))
        assert not set(ports.values()) & first
        assert not set(ports.values()) & {holder.getsockname()[1] for holder in held}
        for state in (env, live_stack.env):  # both stacks healthy at once
            status = _retrain(state, "stack", "status")
            assert status.returncode == 0, status.stdout + status.stderr
        profile = (second / "stack" / "stack.env").read_text()
        assert f"127.0.0.1:{ports['people_port']}/api" in profile  # people of the second stack reach the second
    finally:
        for holder in held:
            holder.close()
        down = _retrain(env, "stack", "down", "--purge")
        assert down.returncode == 0, down.stderr
        assert not (second / "stack").exists()
        shutil.rmtree(second, ignore_errors=True)
