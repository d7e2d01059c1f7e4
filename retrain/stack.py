"""The team stack as plain local processes: ``retrain stack up | down | status``.

PostgreSQL is the machine's (databases are created when absent); the rest are processes started
from this project's environment, each with a pid file, a log and a health check under
``$RETRAIN_HOME/stack``:

* ``s3``: a moto server standing in for S3 (pointing endpoint and keys at MinIO or AWS is
  configuration only); one bucket holds MLflow's artifacts and the DVC remote;
* ``mlflow``: tracking server with the basic-auth app, backend store on PostgreSQL, artifacts
  proxied to S3 (``--artifacts-destination``), so clients need no S3 keys of their own;
* ``prefect-server``: Prefect server on PostgreSQL (``postgresql+asyncpg``) with API auth on;
* ``prefect-worker``: a worker on a process work pool that runs the deployments, and the only
  holder of the MLflow service account that may register versions and move aliases.

Passwords are generated at the first ``up`` into ``secrets.json`` (mode 0600, never printed or
logged); ``stack.env`` (0600) is the client profile people source. Everything binds 127.0.0.1
unless ``RETRAIN_STACK_HOST`` says otherwise. The same service names, ports and variables are in
``infra/docker-compose.yml`` (a test keeps them in agreement).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrain.errors import RetrainError

SERVICE_ACCOUNT = "retrain-service"
BUCKET = "retrain"


class StackError(RetrainError):
    """The stack cannot start or is unhealthy; the message names the service and its log."""


@dataclass(frozen=True)
class StackConfig:
    """Where the stack lives and listens; every value can be overridden by environment variables."""

    home: Path
    host: str = "127.0.0.1"
    prefect_port: int = 4200
    mlflow_port: int = 5000
    s3_port: int = 9000
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432"
    db_prefix: str = "retrain"
    work_pool: str = "retrain-process"

    @classmethod
    def from_env(cls, state_dir: Path, work_pool: str, env: Mapping[str, str] | None = None) -> StackConfig:
        env = os.environ if env is None else env
        return cls(
            home=state_dir / "stack",
            host=env.get("RETRAIN_STACK_HOST", "127.0.0.1"),
            prefect_port=int(env.get("RETRAIN_STACK_PREFECT_PORT", 4200)),
            mlflow_port=int(env.get("RETRAIN_STACK_MLFLOW_PORT", 5000)),
            s3_port=int(env.get("RETRAIN_STACK_S3_PORT", 9000)),
            postgres_url=env.get("RETRAIN_STACK_POSTGRES", "postgresql://postgres@127.0.0.1:5432").rstrip("/"),
            db_prefix=env.get("RETRAIN_STACK_DB_PREFIX", "retrain"),
            work_pool=work_pool,
        )

    def database(self, purpose: str, driver: str) -> str:
        base = self.postgres_url.split("://", 1)[1]
        return f"postgresql+{driver}://{base}/{self.db_prefix}_{purpose}"

    @property
    def prefect_url(self) -> str:
        return f"http://{self.host}:{self.prefect_port}/api"

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"

    @property
    def s3_url(self) -> str:
        return f"http://{self.host}:{self.s3_port}"


DATABASES = ("prefect", "mlflow", "mlflow_auth", "ledger")


# --- secrets ---------------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    """Create the file readable by its owner only, before any secret is written into it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def load_secrets(config: StackConfig, reviewers: tuple[str, ...]) -> dict[str, Any]:
    """The stack's passwords: generated once, kept in ``secrets.json`` (0600)."""
    path = config.home / "secrets.json"
    existing: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    existing.pop("approval_secret", None)  # retired: reviewers sign with their own keys, nothing shared

    def token() -> str:
        return secrets.token_urlsafe(24)

    wanted = {
        "prefect_auth": f"admin:{token()}",
        "mlflow_admin_password": token(),
        "mlflow_service_password": token(),
        "mlflow_flask_secret": token(),
        "s3_access_key": "retrain" + secrets.token_hex(6),
        "s3_secret_key": token(),
    }
    merged = {**wanted, **existing}
    people = dict(existing.get("mlflow_people", {}))
    for name in reviewers:
        people.setdefault(name, token())
    merged["mlflow_people"] = people
    if merged != existing:
        _write_private(path, json.dumps(merged, indent=2))
    return merged


# --- services --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    env: dict[str, str]
    health: Callable[[], bool]
    depends_on: tuple[str, ...] = field(default_factory=tuple)


def _bin(name: str) -> str:
    """A console script of this project's environment (the one running this code)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


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
    from retrain.environment import QUIET_ENVIRONMENT

    return dict(QUIET_ENVIRONMENT)


def s3_env(config: StackConfig, keys: Mapping[str, Any]) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": str(keys["s3_access_key"]),
        "AWS_SECRET_ACCESS_KEY": str(keys["s3_secret_key"]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "MLFLOW_S3_ENDPOINT_URL": config.s3_url,
    }


def services(config: StackConfig, keys: Mapping[str, Any]) -> list[Service]:
    """Every process of the stack, in start order, with its command, environment and health check."""
    prefect_user, prefect_password = str(keys["prefect_auth"]).split(":", 1)
    auth_ini = config.home / "mlflow" / "basic_auth.ini"
    base = {**_quiet_env(), "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    return [
        Service(
            "s3",
            [_bin("moto_server"), "-H", config.host, "-p", str(config.s3_port)],
            _quiet_env(),
            lambda: _http_ok(f"{config.s3_url}/moto-api/"),
        ),
        Service(
            "mlflow",
            [
                _bin("mlflow"),
                "server",
                "--app-name",
                "basic-auth",
                "--backend-store-uri",
                config.database("mlflow", "psycopg"),
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
                "MLFLOW_AUTH_ADMIN_PASSWORD": str(keys["mlflow_admin_password"]),
                "MLFLOW_FLASK_SERVER_SECRET_KEY": str(keys["mlflow_flask_secret"]),
            },
            lambda: _http_ok(f"{config.mlflow_url}/health"),
            ("s3",),
        ),
        Service(
            "prefect-server",
            [_bin("prefect"), "server", "start", "--host", config.host, "--port", str(config.prefect_port)],
            {
                **base,
                "PREFECT_HOME": str(config.home / "prefect-server"),
                "PREFECT_API_DATABASE_CONNECTION_URL": config.database("prefect", "asyncpg"),
                "PREFECT_SERVER_API_AUTH_STRING": str(keys["prefect_auth"]),
                "PREFECT_UI_API_URL": config.prefect_url,
            },
            lambda: _http_ok(f"{config.prefect_url}/health", (prefect_user, prefect_password)),
        ),
        Service(
            "prefect-worker",
            [
                _bin("prefect"),
                "worker",
                "start",
                "--pool",
                config.work_pool,
                "--type",
                "process",
                "--name",
                "retrain-worker",
            ],
            {**base, **worker_env(config, keys)},
            lambda: _worker_online(config, keys),
            ("prefect-server", "mlflow"),
        ),
    ]


def client_env(config: StackConfig, keys: Mapping[str, Any]) -> dict[str, str]:
    """What a person's shell needs to use the stack: Prefect with its auth, MLflow (READ), no S3 keys."""
    return {
        "PREFECT_API_URL": config.prefect_url,
        "PREFECT_API_AUTH_STRING": str(keys["prefect_auth"]),
        "MLFLOW_TRACKING_URI": config.mlflow_url,
        "RETRAIN_MLFLOW_UI_URL": config.mlflow_url,
        "RETRAIN_LEDGER_URL": config.database("ledger", "psycopg"),
        "RETRAIN_STACK": "1",
    }


def worker_env(config: StackConfig, keys: Mapping[str, Any]) -> dict[str, str]:
    """The worker's flows: the service account (EDIT on the model), the DVC remote on S3, the ledger."""
    return {
        **client_env(config, keys),
        **s3_env(config, keys),
        "PREFECT_HOME": str(config.home / "prefect-worker"),
        "MLFLOW_TRACKING_USERNAME": SERVICE_ACCOUNT,
        "MLFLOW_TRACKING_PASSWORD": str(keys["mlflow_service_password"]),
        "RETRAIN_DVC_REMOTE": f"s3://{BUCKET}/dvc",
        "RETRAIN_S3_ENDPOINT_URL": config.s3_url,
        "RETRAIN_HOME": str(config.home / "worker-home"),
    }


def _worker_online(config: StackConfig, keys: Mapping[str, Any]) -> bool:
    url = f"{config.prefect_url}/work_pools/{config.work_pool}/workers/filter"
    request = urllib.request.Request(url, data=b"{}", method="POST", headers={"Content-Type": "application/json"})
    credentials = base64.b64encode(str(keys["prefect_auth"]).encode()).decode()
    request.add_header("Authorization", f"Basic {credentials}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            workers = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return any(worker.get("status") == "ONLINE" for worker in workers)


# --- processes -------------------------------------------------------------------------------


def _pid_file(config: StackConfig, name: str) -> Path:
    return config.home / "pids" / f"{name}.pid"


def _log_file(config: StackConfig, name: str) -> Path:
    return config.home / "logs" / f"{name}.log"


def running_pid(config: StackConfig, name: str) -> int | None:
    """The service's pid when its process is alive; a stale pid file is removed."""
    path = _pid_file(config, name)
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


def _start(config: StackConfig, service: Service) -> int:
    log = _log_file(config, service.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    _pid_file(config, service.name).parent.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(service.env)
    with open(log, "ab") as handle:
        process = subprocess.Popen(
            service.command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    _pid_file(config, service.name).write_text(str(process.pid))
    return process.pid


def _wait_healthy(config: StackConfig, service: Service, deadline: float) -> None:
    while time.monotonic() < deadline:
        if service.health():
            return
        if running_pid(config, service.name) is None:
            raise StackError(f"{service.name} exited while starting; see {_log_file(config, service.name)}")
        time.sleep(0.5)
    raise StackError(f"{service.name} is not healthy after waiting; see {_log_file(config, service.name)}")


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


def _stop(config: StackConfig, name: str, grace: float = 20.0) -> bool:
    """SIGTERM to the service's whole process group, SIGKILL after ``grace``: nothing is left behind."""
    pid = running_pid(config, name)
    if pid is None:
        _pid_file(config, name).unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _group_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _group_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        while _group_alive(pid):
            time.sleep(0.1)
    _pid_file(config, name).unlink(missing_ok=True)
    return True


# --- setup steps -----------------------------------------------------------------------------


def ensure_databases(config: StackConfig) -> list[str]:
    """Create the stack's databases when absent; a clear error when PostgreSQL is unreachable."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(f"{config.database('x', 'psycopg').rsplit('/', 1)[0]}/postgres", isolation_level="AUTOCOMMIT")
    created = []
    try:
        with admin.connect() as connection:
            existing = {row[0] for row in connection.execute(text("SELECT datname FROM pg_database"))}
            for purpose in DATABASES:
                name = f"{config.db_prefix}_{purpose}"
                if name not in existing:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
                    created.append(name)
    except OperationalError as error:
        raise StackError(
            f"PostgreSQL at {config.postgres_url} is unreachable ({str(error).splitlines()[0]}); start it "
            "(e.g. `pg_ctlcluster --skip-systemctl-redirect 15 main start`) or set RETRAIN_STACK_POSTGRES"
        ) from None
    finally:
        admin.dispose()
    return created


def write_mlflow_auth_config(config: StackConfig) -> Path:
    path = config.home / "mlflow" / "basic_auth.ini"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {config.database('mlflow_auth', 'psycopg')}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n",
        encoding="utf-8",
    )
    return path


def ensure_bucket(config: StackConfig, keys: Mapping[str, Any]) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=config.s3_url,
        aws_access_key_id=str(keys["s3_access_key"]),
        aws_secret_access_key=str(keys["s3_secret_key"]),
        region_name="us-east-1",
    )
    existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
    if BUCKET not in existing:
        client.create_bucket(Bucket=BUCKET)


@contextlib.contextmanager
def _as_mlflow_admin(keys: Mapping[str, Any]) -> Iterator[None]:
    """MLflow's clients read their credentials from the environment: admin's, for this block only."""
    names = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    previous = {name: os.environ.get(name) for name in names}
    os.environ.update(MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=str(keys["mlflow_admin_password"]))
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def ensure_mlflow_accounts(mlflow_url: str, keys: Mapping[str, Any], model_name: str, experiments: list[str]) -> None:
    """The service account may change the model and its experiments; people get READ (the default).

    MLflow asks the same EDIT permission to register a version and to move an alias, so the
    separation comes from who holds the account: only the worker's flows do. On the registered
    model the account holds MANAGE, not EDIT: MLflow 3 asks MANAGE to *delete* an alias, which a
    promotion (clearing ``challenger``) and a rollback (clearing ``previous-champion``) do.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    with _as_mlflow_admin(keys):
        auth = get_app_client("basic-auth", tracking_uri=mlflow_url)
        accounts = {SERVICE_ACCOUNT: keys["mlflow_service_password"], **dict(keys["mlflow_people"])}
        for username, password in accounts.items():
            try:
                auth.get_user(username)
            except MlflowException:
                auth.create_user(username, str(password))
        client = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
        if not client.search_registered_models(filter_string=f"name='{model_name}'"):
            client.create_registered_model(model_name)
        grants = [("registered_model", model_name, "MANAGE")]
        for name in experiments:
            found = client.get_experiment_by_name(name)
            experiment_id = str(found.experiment_id if found else client.create_experiment(name))
            grants.append(("experiment", experiment_id, "EDIT"))
        for resource_type, resource_id, permission in grants:
            try:
                auth.grant_user_permission(SERVICE_ACCOUNT, resource_type, resource_id, permission)
            except MlflowException as error:  # granted before, perhaps another level: grant it afresh
                if error.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                auth.revoke_user_permission(SERVICE_ACCOUNT, resource_type, resource_id)
                auth.grant_user_permission(SERVICE_ACCOUNT, resource_type, resource_id, permission)


def write_profile(config: StackConfig, keys: Mapping[str, Any]) -> Path:
    """``stack.env``: what a shell sources to use the stack (0600: it holds the Prefect auth string)."""
    path = config.home / "stack.env"
    lines = [f"export {key}={value}" for key, value in client_env(config, keys).items()]
    _write_private(path, "\n".join(lines) + "\n")
    return path


def stack_config_at(state_dir: Path) -> StackConfig:
    """The stack whose files live under ``state_dir`` (enough to find its profile and secrets)."""
    return StackConfig(home=state_dir / "stack")


def load_profile(config: StackConfig) -> dict[str, str]:
    path = config.home / "stack.env"
    if not path.exists():
        raise StackError(f"no stack profile at {path}: run `retrain stack up` first")
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        values[key] = value
    return values


# --- commands --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    healthy: bool
    log: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "pid": self.pid, "healthy": self.healthy, "log": self.log}


def status(config: StackConfig, keys: Mapping[str, Any]) -> list[ServiceStatus]:
    return [
        ServiceStatus(s.name, running_pid(config, s.name), s.health(), str(_log_file(config, s.name)))
        for s in services(config, keys)
    ]


def up(
    config: StackConfig,
    keys: Mapping[str, Any],
    on_event: Callable[[str], None],
    setup: Callable[[], None],
    timeout: float = 180.0,
) -> list[ServiceStatus]:
    """Start what is not running (idempotent), wait until healthy, then run ``setup`` (accounts, blocks)."""
    created = ensure_databases(config)
    if created:
        on_event(f"created databases {', '.join(created)}")
    write_mlflow_auth_config(config)
    deadline = time.monotonic() + timeout
    started = []
    plan = services(config, keys)
    for service in plan:
        if service.name == "prefect-worker":
            continue  # it needs the work pool, which setup creates
        if running_pid(config, service.name) is None:
            _start(config, service)
            started.append(service.name)
            on_event(f"started {service.name}")
    for service in plan:
        if service.name != "prefect-worker":
            _wait_healthy(config, service, deadline)
            if service.name == "s3":
                ensure_bucket(config, keys)
    setup()
    worker = plan[-1]
    if running_pid(config, worker.name) is None:
        _start(config, worker)
        on_event(f"started {worker.name}")
    _wait_healthy(config, worker, deadline)
    return status(config, keys)


def down(config: StackConfig, keys: Mapping[str, Any]) -> list[str]:
    """Stop every service, the worker first; returns the names that were running."""
    stopped = []
    for service in reversed(services(config, keys)):
        if _stop(config, service.name):
            stopped.append(service.name)
    return stopped
