"""``retrain stack up | down | status``: the supervisor, the services and the provisioning steps
put together in the order the services' dependencies give."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrain.stack.config import StackConfig, StackError
from retrain.stack.provisioning import (
    ensure_bucket,
    ensure_ledger_tables,
    ensure_postgres_cluster,
    ensure_roles_and_databases,
    write_mlflow_auth_config,
)
from retrain.stack.proxy import ensure_nginx, write_proxy_config
from retrain.stack.secrets import StackSecrets
from retrain.stack.services import WORKER, dependency_order, services, stop_order
from retrain.stack.supervisor import first_healthy, running_pid, start_service, stop_service


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    healthy: bool
    log: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "pid": self.pid, "healthy": self.healthy, "log": self.log}


def status(config: StackConfig, keys: StackSecrets) -> list[ServiceStatus]:
    return [
        ServiceStatus(s.name, running_pid(config, s.name), s.health(), str(config.log_file(s.name)))
        for s in services(config, keys)
    ]


def up(
    config: StackConfig,
    keys: StackSecrets,
    on_event: Callable[[str], None],
    setup: Callable[[], None],
    timeout: float = 180.0,
) -> list[ServiceStatus]:
    """Start what is not running (idempotent), each service once every service it depends on is
    healthy, and wait until all are healthy.

    A server is provisioned as soon as it answers, before anything that depends on it starts:
    PostgreSQL's roles, databases and ledger tables, S3's bucket. ``setup`` (accounts, the locked
    work pool, the deployments) runs just before the worker starts, so the worker never polls a
    pool that takes job variables; the worker then gets at least half of ``timeout`` of its own."""
    plan = {service.name: service for service in services(config, keys)}
    order = dependency_order(plan.values())  # a cycle or an unknown dependency: refused before anything starts
    ensure_nginx(on_event)
    if ensure_postgres_cluster(config, keys):
        on_event(f"created the stack's PostgreSQL cluster in {config.postgres_data}")
    write_mlflow_auth_config(config)
    write_proxy_config(config, keys)

    def provision_postgres() -> None:
        created = ensure_roles_and_databases(config, keys)
        if created:
            on_event(f"created databases {', '.join(created)}")
        ensure_ledger_tables(config, keys)

    when_healthy: dict[str, Callable[[], None]] = {
        "postgres": provision_postgres,
        "s3": lambda: ensure_bucket(config, keys),
    }
    before_start: dict[str, Callable[[], None]] = {WORKER: setup}
    deadline = time.monotonic() + timeout
    starting: list[str] = []
    while order.is_active():
        for name in sorted(order.get_ready(), key=list(plan).index):
            if name in before_start:
                before_start[name]()
                deadline = max(deadline, time.monotonic() + timeout / 2)
            if running_pid(config, name) is None:
                start_service(config, plan[name])
                on_event(f"started {name}")
            starting.append(name)
        healthy = first_healthy(config, [plan[name] for name in starting], deadline)
        starting.remove(healthy)
        if healthy in when_healthy:
            when_healthy[healthy]()
        order.done(healthy)
    return status(config, keys)


def down(config: StackConfig, keys: StackSecrets) -> list[str]:
    """Stop every service, each before the services it depends on (the worker first); returns the
    names that were running."""
    plan = {service.name: service for service in services(config, keys)}
    return [name for name in stop_order(plan.values()) if stop_service(config, name, plan[name].stop_signal)]


def purge_state(config: StackConfig) -> Path:
    """Delete the stopped stack's state dir: its PostgreSQL cluster, secrets, profiles and logs.

    The databases are the stack's own (its cluster lives here), so nothing is left elsewhere; the
    next ``up`` starts afresh with new passwords."""
    pids = config.pids_dir
    if pids.exists() and any(running_pid(config, path.stem) for path in pids.glob("*.pid")):
        raise StackError("the stack is still running: `retrain stack down` first")
    if config.home.exists():
        shutil.rmtree(config.home)
    return config.home
