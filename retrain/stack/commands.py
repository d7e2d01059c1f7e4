"""``retrain stack up | down | status``: the supervisor, the services and the provisioning steps
put together in the order the services' dependencies give."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrain.stack.config import PORT_VARIABLES, StackConfig, StackError, free_port, port_is_free, recorded_ports
from retrain.stack.log_redaction import write_server_logging_config
from retrain.stack.provisioning import (
    check_cluster_secrets,
    ensure_bucket,
    ensure_ledger_tables,
    ensure_postgres_cluster,
    ensure_roles_and_databases,
    mark_cluster_secrets,
    write_mlflow_auth_config,
)
from retrain.stack.proxy import ensure_nginx, write_proxy_config
from retrain.stack.secrets import StackSecrets, write_private
from retrain.stack.services import WORKER, dependency_order, services, stop_order
from retrain.stack.state import secure_state
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
    check_cluster_secrets(config, keys)  # a cluster other secrets made: stop before anything changes
    secure_state(config)  # its directories 0700 (passages 0711 as root), every file it wrote 0600
    ensure_nginx(on_event)
    if ensure_postgres_cluster(config, keys):
        on_event(f"created the stack's PostgreSQL cluster in {config.postgres_data}")
    write_mlflow_auth_config(config)
    write_proxy_config(config, keys)
    write_server_logging_config(config.prefect_server_logging)  # no webhook URL in the server's log

    def provision_postgres() -> None:
        created = ensure_roles_and_databases(config, keys)  # the superuser logged in with these secrets
        mark_cluster_secrets(config, keys)
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


#: Which service listens on which port field of :class:`StackConfig`, and how people call it.
PORT_SERVICES: dict[str, tuple[str, str]] = {
    "prefect_port": ("prefect-server", "the Prefect server"),
    "people_port": ("prefect-proxy", "people's Prefect proxy"),
    "mlflow_port": ("mlflow", "the MLflow server"),
    "s3_port": ("s3", "the S3 server"),
    "postgres_port": ("postgres", "PostgreSQL"),
}


def settle_ports(config: StackConfig, env: Mapping[str, str], on_event: Callable[[str], None]) -> StackConfig:
    """The ports this stack listens on, decided before anything starts, and kept in ``ports.json``.

    A second stack on the machine (another checkout) must neither collide with the first nor find
    its servers: on a stopped stack, a port that no variable sets and no earlier ``up`` recorded is
    the default when it is free, another free port otherwise. A port that was set or recorded and is
    held by another program stops ``up`` with what to do, instead of a health check that waits on
    someone else's server. While any service of the stack runs, no port moves (the running ones were
    started with the others' addresses): a taken one stops ``up`` too."""
    recorded = recorded_ports(config.home)
    chosen = config.ports()
    names = [service for service, _ in PORT_SERVICES.values()] + [WORKER]
    running = any(running_pid(config, name) is not None for name in names)
    if running and recorded:  # the addresses the running services were started with
        for field, port in recorded.items():
            if chosen[field] != port:
                on_event(f"{PORT_VARIABLES[field]}={chosen[field]} waits for a restart: the stack runs on {port}")
        chosen.update(recorded)
    taken: set[int] = set()
    for field, (service, label) in PORT_SERVICES.items():
        port = chosen[field]
        if running_pid(config, service) is None and (port in taken or not port_is_free(config.host, port)):
            variable = PORT_VARIABLES[field]
            if env.get(variable) or field in recorded or running:
                source = (
                    f"set by {variable}"
                    if env.get(variable)
                    else f"recorded in {config.ports_file}"
                    if field in recorded
                    else "the other services of this stack, running, use it"
                )
                hint = "`retrain stack down` first, then " if running else ""
                raise StackError(
                    f"port {port} of {label} ({source}) is in use by another program (another Retrain stack?). "
                    f"Stop that program, or give this stack another port: {hint}{variable}=PORT retrain stack up"
                )
            port = free_port(config.host, taken | set(chosen.values()))
            on_event(f"port {chosen[field]} is taken on this machine: {label} of this stack listens on {port}")
            chosen[field] = port
        taken.add(port)
    if chosen != recorded and not (running and recorded):
        write_private(config.ports_file, json.dumps(chosen, indent=2) + "\n")
    return dataclasses.replace(config, **chosen)  # type: ignore[arg-type]


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
