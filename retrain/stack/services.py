"""The stack's services: each process's command, environment, health check and dependencies.

Definitions only (nothing is started here): the supervisor starts them in the order their
``depends_on`` gives (:func:`start_order`) and stops them in the reverse order. The same service
names, ports and variables are in ``infra/docker-compose.yml`` (a test keeps them in agreement).
"""

from __future__ import annotations

import base64
import graphlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from retrain.adapters.environment import S3_KMS_KEY_ID, SERVED_PROJECTS
from retrain.domain.privacy import SALT_ENV
from retrain.stack.config import (
    BUCKET,
    S3_WRITER,
    SERVICE_ACCOUNT,
    StackConfig,
    StackError,
    nginx_bin,
    postgres_bin,
    postgres_os_user,
    project_bin,
)
from retrain.stack.profile import client_env
from retrain.stack.secrets import StackSecrets


def _same_user() -> tuple[int, int] | None:
    return None


WORKER = "prefect-worker"  # runs the deployments; starts last, once ``setup`` locked its pool
#: How often the worker asks for runs to start (Prefect's default, 10 s, is an average 5 s before a
#: drift check or a triggered retraining even starts; one small query every 2 s costs the server nothing).
WORKER_POLL_SECONDS = 2


@dataclass(frozen=True)
class Service:
    """One process of the stack; it starts once every service it ``depends_on`` is healthy."""

    name: str
    command: list[str]
    env: dict[str, str]
    health: Callable[[], bool]
    depends_on: tuple[str, ...] = field(default_factory=tuple)
    stop_signal: int = signal.SIGTERM
    os_user: Callable[[], tuple[int, int] | None] = _same_user  # (uid, gid) to run as; None: as this process


def dependency_order(plan: Iterable[Service]) -> graphlib.TopologicalSorter[str]:
    """The services' dependency graph, prepared: ``get_ready()`` gives what may start now.

    A dependency on a service that is not in ``plan``, or a cycle, is a StackError naming it:
    either would leave a service waiting for ever."""
    services_ = list(plan)
    names = {service.name for service in services_}
    if len(names) != len(services_):
        raise StackError(f"two services share a name in {[service.name for service in services_]}")
    graph: dict[str, tuple[str, ...]] = {}
    for service in services_:
        unknown = [name for name in service.depends_on if name not in names]
        if unknown:
            raise StackError(f"service {service.name} depends on {', '.join(unknown)}, which is not a service")
        graph[service.name] = service.depends_on
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        raise StackError(f"the services depend on each other in a cycle: {' -> '.join(error.args[1])}") from None
    return sorter


def start_order(plan: Iterable[Service]) -> list[str]:
    """Every service after the services it depends on; services that may start together keep
    ``plan``'s order."""
    services_ = list(plan)
    position = {service.name: index for index, service in enumerate(services_)}
    sorter = dependency_order(services_)
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=position.__getitem__)
        order += ready
        sorter.done(*ready)
    return order


def stop_order(plan: Iterable[Service]) -> list[str]:
    """The reverse of :func:`start_order`: nothing stops while a service that needs it still runs."""
    return start_order(plan)[::-1]


def _http_ok(url: str, auth: tuple[str, str] | None = None, timeout: float = 2.0) -> bool:
    request = urllib.request.Request(url)
    if auth is not None:
        credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {credentials}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _quiet_env() -> dict[str, str]:
    from retrain.adapters.environment import QUIET_ENVIRONMENT

    return dict(QUIET_ENVIRONMENT)


def s3_env(config: StackConfig, keys: StackSecrets) -> dict[str, str]:
    """The S3 writer's keys: only the MLflow server (artifact proxy) and the worker (DVC) hold them."""
    return {
        "AWS_ACCESS_KEY_ID": keys.s3_access_key.get_secret_value(),
        "AWS_SECRET_ACCESS_KEY": keys.s3_secret_key.get_secret_value(),
        "AWS_DEFAULT_REGION": "us-east-1",
        "MLFLOW_S3_ENDPOINT_URL": config.s3_url,
    }


def s3_accounts(keys: StackSecrets) -> list[dict[str, Any]]:
    """The S3 server's IAM users: one writer, allowed the stack's bucket and nothing else."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
            }
        ],
    }
    return [
        {
            "user": S3_WRITER,
            "access_key": keys.s3_access_key.get_secret_value(),
            "secret_key": keys.s3_secret_key.get_secret_value(),
            "policy": policy,
        }
    ]


def _postgres_ready(config: StackConfig) -> bool:
    try:
        ready = subprocess.run(
            [postgres_bin("pg_isready"), "-q", "-h", config.host, "-p", str(config.postgres_port)],
            capture_output=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return ready.returncode == 0


def services(config: StackConfig, keys: StackSecrets) -> list[Service]:
    """Every process of the stack with its command, environment, health check and dependencies."""
    prefect_user, prefect_password = keys.prefect_auth.get_secret_value().split(":", 1)
    auth_ini = config.mlflow_auth_file
    base = {**_quiet_env(), "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    passwords = keys.postgres
    nginx_dir = config.nginx_dir
    return [
        Service(
            "postgres",
            [
                postgres_bin("postgres"),
                "-D",
                str(config.postgres_data),
                "-p",
                str(config.postgres_port),
                "-c",
                f"listen_addresses={config.host}",
                "-c",
                "unix_socket_directories=",
                "-c",
                "password_encryption=scram-sha-256",
            ],
            {},
            lambda: _postgres_ready(config),
            stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM waits for every client to leave
            os_user=postgres_os_user,  # as root: the cluster's owner, the ``postgres`` OS user
        ),
        Service(
            "s3",
            [sys.executable, "-m", "retrain.stack.s3_server", config.host, str(config.s3_port)],
            {**_quiet_env(), "RETRAIN_S3_ACCOUNTS": json.dumps(s3_accounts(keys))},
            lambda: _http_ok(f"{config.s3_url}/retrain-s3-health"),
        ),
        Service(
            "mlflow",
            [
                project_bin("mlflow"),
                "server",
                "--app-name",
                "basic-auth",
                "--backend-store-uri",  # no password on a command line: every local user may read those
                config.database("mlflow", "psycopg", "mlflow", "").replace(":@", "@"),
                "--artifacts-destination",
                f"s3://{BUCKET}/mlflow",
                "--host",
                config.host,
                "--port",
                str(config.mlflow_port),
                "--workers",
                "1",
            ],
            {
                **base,
                **s3_env(config, keys),
                "MLFLOW_AUTH_CONFIG_PATH": str(auth_ini),
                "PGPASSWORD": passwords.of("mlflow"),  # libpq's, for both of MLflow's databases
                "MLFLOW_AUTH_ADMIN_PASSWORD": keys.mlflow_admin_password.get_secret_value(),
                "MLFLOW_FLASK_SERVER_SECRET_KEY": keys.mlflow_flask_secret.get_secret_value(),
                # the server writes the artifacts it proxies: each encrypted at rest (SSE-S3 or SSE-KMS)
                "MLFLOW_S3_UPLOAD_EXTRA_ARGS": config.s3_encryption.mlflow_upload_extra_args(),
            },
            lambda: _http_ok(f"{config.mlflow_url}/health"),
            ("postgres", "s3"),
        ),
        Service(
            "prefect-server",
            [project_bin("prefect"), "server", "start", "--host", config.host, "--port", str(config.prefect_port)],
            {
                **base,
                "PREFECT_HOME": str(config.prefect_server_home),
                "PREFECT_LOGGING_SETTINGS_PATH": str(config.prefect_server_logging),
                "PREFECT_API_DATABASE_CONNECTION_URL": config.database(
                    "prefect", "asyncpg", "prefect", passwords.of("prefect")
                ),
                "PREFECT_SERVER_API_AUTH_STRING": keys.prefect_auth.get_secret_value(),
                "PREFECT_UI_API_URL": config.people_url,  # the UI people load talks to the proxy
            },
            lambda: _http_ok(f"{config.prefect_url}/health", (prefect_user, prefect_password)),
            ("postgres",),
        ),
        Service(
            "prefect-proxy",
            [
                nginx_bin(),
                "-p",
                str(nginx_dir),
                "-c",
                str(nginx_dir / "nginx.conf"),
                "-e",
                "stderr",
                "-g",
                "daemon off;",
            ],
            {},
            lambda: _http_ok(f"http://{config.host}:{config.people_port}/api/health"),
            ("prefect-server",),
        ),
        Service(
            WORKER,
            [
                project_bin("prefect"),
                "worker",
                "start",
                "--pool",
                config.work_pool,
                "--type",
                "process",
                "--name",
                "retrain-worker",
            ],
            {**base, **worker_env(config, keys), "PREFECT_WORKER_QUERY_SECONDS": str(WORKER_POLL_SECONDS)},
            lambda: _worker_online(config, keys),
            ("prefect-server", "mlflow"),
        ),
    ]


def admin_env(config: StackConfig, keys: StackSecrets) -> dict[str, str]:
    """The operator's process (``stack up``/``setup``): the Prefect server itself, with its auth string."""
    return {
        **client_env(config, keys),
        "PREFECT_API_URL": config.prefect_url,
        "PREFECT_API_AUTH_STRING": keys.prefect_auth.get_secret_value(),
    }


def worker_env(config: StackConfig, keys: StackSecrets) -> dict[str, str]:
    """The worker's flows: the service account (EDIT on the model), the DVC remote on S3, the
    ledger's writer role, the Prefect server directly. Only in the worker's environment."""
    return {
        **admin_env(config, keys),
        **s3_env(config, keys),
        "PREFECT_HOME": str(config.worker_prefect_home),
        "MLFLOW_TRACKING_USERNAME": SERVICE_ACCOUNT,
        "MLFLOW_TRACKING_PASSWORD": keys.mlflow_service_password.get_secret_value(),
        "RETRAIN_DVC_REMOTE": f"s3://{BUCKET}/dvc",
        "RETRAIN_S3_ENDPOINT_URL": config.s3_url,
        S3_KMS_KEY_ID: config.s3_encryption.kms_key_id or "",  # the DVC remote's encryption; empty: SSE-S3
        "RETRAIN_LEDGER_URL": config.database("ledger", "psycopg", "worker", keys.postgres.of("worker")),
        "RETRAIN_HOME": str(config.worker_home),
        **({SERVED_PROJECTS: os.pathsep.join(config.served_projects)} if config.served_projects else {}),
        # the tokens of sensitive columns: the same salt for every flow the worker runs (docs/security.md)
        **({SALT_ENV: keys.privacy_salt.get_secret_value()} if keys.privacy_salt.get_secret_value() else {}),
    }


def _worker_online(config: StackConfig, keys: StackSecrets) -> bool:
    url = f"{config.prefect_url}/work_pools/{config.work_pool}/workers/filter"
    request = urllib.request.Request(url, data=b"{}", method="POST", headers={"Content-Type": "application/json"})
    credentials = base64.b64encode(keys.prefect_auth.get_secret_value().encode()).decode()
    request.add_header("Authorization", f"Basic {credentials}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            workers = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return any(worker.get("status") == "ONLINE" for worker in workers)
