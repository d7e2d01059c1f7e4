"""Local processes of the stack: start one in its own session, find it by its pid file, wait
until it is healthy, stop its whole process group.

Each service has a pid file and a log under the state dir (``pids/NAME.pid``, ``logs/NAME.log``);
a process is started with ``start_new_session`` so that stopping it reaches every child it spawned
(a Prefect server's workers, nginx's workers), and nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from retrain.stack.config import StackConfig, StackError
from retrain.stack.secrets import PRIVATE_FILE, private_dir, write_private
from retrain.stack.services import Service


def running_pid(config: StackConfig, name: str) -> int | None:
    """The service's pid when its process is alive; a stale pid file is removed."""
    path = config.pid_file(name)
    if not path.exists():
        return None
    try:
        pid = int(path.read_text().strip())
        with contextlib.suppress(ChildProcessError):  # our own child that exited: reap it, it is gone
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                raise ProcessLookupError(pid)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, PermissionError):
        path.unlink(missing_ok=True)
        return None
    return pid


def _private_log(path: Path) -> BinaryIO:
    """The service's log, appended to; created 0600 (whatever the umask), as every file of the state dir."""
    private_dir(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
    os.chmod(path, PRIVATE_FILE)
    return os.fdopen(descriptor, "ab")


def start_service(config: StackConfig, service: Service) -> int:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(service.env)
    owner = service.os_user()
    with _private_log(config.log_file(service.name)) as handle:
        process = subprocess.Popen(
            service.command,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=owner[0] if owner else None,
            group=owner[1] if owner else None,
            extra_groups=[] if owner else None,
        )
    write_private(config.pid_file(service.name), str(process.pid))
    return process.pid


def first_healthy(config: StackConfig, starting: Sequence[Service], deadline: float) -> str:
    """The name of the first of ``starting`` to pass its health check; a StackError naming the
    service and its log when one exits meanwhile or none is healthy by ``deadline``."""
    if not starting:
        raise StackError("no service is starting: nothing can become healthy")
    while True:
        for service in starting:
            if service.health():
                return service.name
            if running_pid(config, service.name) is None:
                raise StackError(f"{service.name} exited while starting; see {config.log_file(service.name)}")
        if time.monotonic() >= deadline:
            waiting = "; ".join(f"{service.name} (see {config.log_file(service.name)})" for service in starting)
            raise StackError(f"not healthy after waiting: {waiting}")
        time.sleep(0.5)


def _group_alive(pid: int) -> bool:
    """Whether any process of the service's group is left (reaping the leader if it is our child)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_service(config: StackConfig, name: str, stop_signal: int = signal.SIGTERM, grace: float = 20.0) -> bool:
    """``stop_signal`` to the service's whole process group, SIGKILL after ``grace``: nothing is left behind."""
    pid = running_pid(config, name)
    if pid is None:
        config.pid_file(name).unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, stop_signal)
    deadline = time.monotonic() + grace
    while _group_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _group_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        while _group_alive(pid):
            time.sleep(0.1)
    config.pid_file(name).unlink(missing_ok=True)
    return True
