"""The team stack as plain local processes: ``retrain stack up | down | status``.

Every service is a process started from this project's environment (PostgreSQL from the
machine's binaries), each with a pid file, a log and a health check under ``$RETRAIN_HOME/stack``:

* ``postgres``: the stack's OWN PostgreSQL cluster (``initdb`` under the state dir, data dir 0700,
  listening on 127.0.0.1 only, ``scram-sha-256`` for every login), with one role per holder: the
  Prefect server, the MLflow server, the worker (the only writer of the ledger and the decision
  log) and people (read-only on the ledger, no login to any other database). A machine's shared
  server usually trusts every local login, and two checkouts would meet in its databases;
* ``s3``: moto standing in for S3 with IAM authentication enforced (``retrain.s3_server``); one
  bucket holds MLflow's artifacts and the DVC remote; only the writer's keys may use it;
* ``mlflow``: tracking server with the basic-auth app, backend store on PostgreSQL, artifacts
  proxied to S3 (``--artifacts-destination``), so clients need no S3 keys of their own;
* ``prefect-server``: Prefect server on PostgreSQL (``postgresql+asyncpg``) with its one API auth
  string, which only the worker and the operator hold;
* ``prefect-proxy``: nginx in front of the Prefect server for people: HTTP basic auth per person,
  an allowlist of what people may do (watch, start runs of deployments, answer a gate), and the
  server's auth string added upstream, so people never hold it;
* ``prefect-worker``: a worker on a locked process work pool that runs the deployments, and the
  only holder of the MLflow service account, the S3 keys and the ledger's writer role.

Passwords are generated at the first ``up`` into ``secrets.json`` (mode 0600, never printed or
logged). ``stack.env`` (0600) is what every person sources (URLs, the ledger's read-only role);
``people/NAME.env`` (0600) adds one person's own Prefect and MLflow login. Everything binds
127.0.0.1 unless ``RETRAIN_STACK_HOST`` says otherwise. The same service names, ports and
variables are in ``infra/docker-compose.yml`` (a test keeps them in agreement).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
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

from retrain.adapters.environment import SERVED_PROJECTS
from retrain.domain.errors import RetrainError

SERVICE_ACCOUNT = "retrain-service"
BUCKET = "retrain"
S3_WRITER = "retrain-writer"
PERSON_VARIABLE = "RETRAIN_STACK_PERSON"

# PostgreSQL roles of the stack's own cluster: who logs in as what.
ROLES = {
    "prefect": "prefect_server",  # owns retrain_prefect
    "mlflow": "mlflow_server",  # owns retrain_mlflow and retrain_mlflow_auth
    "worker": "retrain_worker",  # owns retrain_ledger: writes the ledger and the decision log
    "people": "retrain_people",  # SELECT on the ledger's tables, nothing else
}
# Database purpose -> the ROLES key of its owner.
DATABASES = {"prefect": "prefect", "mlflow": "mlflow", "mlflow_auth": "mlflow", "ledger": "worker"}


class StackError(RetrainError):
    """The stack cannot start or is unhealthy; the message names the service and its log."""


@dataclass(frozen=True)
class StackConfig:
    """Where the stack lives and listens; every value can be overridden by environment variables."""

    home: Path
    host: str = "127.0.0.1"
    prefect_port: int = 4200
    people_port: int = 4201
    mlflow_port: int = 5000
    s3_port: int = 9000
    postgres_port: int = 5433
    work_pool: str = "retrain-process"
    served_projects: tuple[str, ...] = ()  # roots under which the worker runs projects; empty: any

    @classmethod
    def from_env(
        cls, state_dir: Path, work_pool: str, env: Mapping[str, str] | None = None, project_dir: Path | None = None
    ) -> StackConfig:
        """``project_dir`` (the operator's project) and the state dir are always served, plus the
        path-separated roots in ``RETRAIN_STACK_PROJECTS``."""
        env = os.environ if env is None else env
        extra = [item for item in env.get("RETRAIN_STACK_PROJECTS", "").split(os.pathsep) if item.strip()]
        served = [str(path.resolve()) for path in (project_dir, state_dir) if path is not None]
        served += [str(Path(item).resolve()) for item in extra]
        return cls(
            home=state_dir / "stack",
            host=env.get("RETRAIN_STACK_HOST", "127.0.0.1"),
            prefect_port=int(env.get("RETRAIN_STACK_PREFECT_PORT", 4200)),
            people_port=int(env.get("RETRAIN_STACK_PEOPLE_PORT", 4201)),
            mlflow_port=int(env.get("RETRAIN_STACK_MLFLOW_PORT", 5000)),
            s3_port=int(env.get("RETRAIN_STACK_S3_PORT", 9000)),
            postgres_port=int(env.get("RETRAIN_STACK_POSTGRES_PORT", 5433)),
            work_pool=work_pool,
            served_projects=tuple(dict.fromkeys(served)),
        )

    def database(self, purpose: str, driver: str, role: str, password: str) -> str:
        """A SQLAlchemy URL of one of the stack's databases, logging in as one of ROLES."""
        return f"postgresql+{driver}://{ROLES[role]}:{password}@{self.host}:{self.postgres_port}/retrain_{purpose}"

    @property
    def prefect_url(self) -> str:
        """The Prefect server itself: the worker's and the operator's way in (the auth string)."""
        return f"http://{self.host}:{self.prefect_port}/api"

    @property
    def people_url(self) -> str:
        """Prefect through the proxy: people's way in (their own login, the allowlist)."""
        return f"http://{self.host}:{self.people_port}/api"

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"

    @property
    def s3_url(self) -> str:
        return f"http://{self.host}:{self.s3_port}"


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
    postgres = dict(existing.get("postgres", {}))
    for role in ("admin", *ROLES):
        postgres.setdefault(role, token())
    merged["postgres"] = postgres
    if merged != existing:
        _write_private(path, json.dumps(merged, indent=2))
    return merged


# --- services ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    env: dict[str, str]
    health: Callable[[], bool]
    depends_on: tuple[str, ...] = field(default_factory=tuple)
    stop_signal: int = signal.SIGTERM


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
    from retrain.adapters.environment import QUIET_ENVIRONMENT

    return dict(QUIET_ENVIRONMENT)


def s3_env(config: StackConfig, keys: Mapping[str, Any]) -> dict[str, str]:
    """The S3 writer's keys: only the MLflow server (artifact proxy) and the worker (DVC) hold them."""
    return {
        "AWS_ACCESS_KEY_ID": str(keys["s3_access_key"]),
        "AWS_SECRET_ACCESS_KEY": str(keys["s3_secret_key"]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "MLFLOW_S3_ENDPOINT_URL": config.s3_url,
    }


def s3_accounts(keys: Mapping[str, Any]) -> list[dict[str, Any]]:
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
            "access_key": str(keys["s3_access_key"]),
            "secret_key": str(keys["s3_secret_key"]),
            "policy": policy,
        }
    ]


def postgres_bin(name: str) -> str:
    """A PostgreSQL server binary (initdb, postgres, pg_isready) of the newest installed version
    (Debian keeps them off PATH, under /usr/lib/postgresql/VERSION/bin); the bare name otherwise."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    return str(found[-1]) if found else (shutil.which(name) or name)


def nginx_bin() -> str:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "nginx")


def _postgres_data(config: StackConfig) -> Path:
    return config.home / "postgres" / "data"


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


def services(config: StackConfig, keys: Mapping[str, Any]) -> list[Service]:
    """Every process of the stack, in start order, with its command, environment and health check."""
    prefect_user, prefect_password = str(keys["prefect_auth"]).split(":", 1)
    auth_ini = config.home / "mlflow" / "basic_auth.ini"
    base = {**_quiet_env(), "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    passwords = keys["postgres"]
    nginx_dir = config.home / "nginx"
    return [
        Service(
            "postgres",
            [
                postgres_bin("postgres"),
                "-D",
                str(_postgres_data(config)),
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
        ),
        Service(
            "s3",
            [sys.executable, "-m", "retrain.s3_server", config.host, str(config.s3_port)],
            {**_quiet_env(), "RETRAIN_S3_ACCOUNTS": json.dumps(s3_accounts(keys))},
            lambda: _http_ok(f"{config.s3_url}/retrain-s3-health"),
        ),
        Service(
            "mlflow",
            [
                _bin("mlflow"),
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
                "PGPASSWORD": str(passwords["mlflow"]),  # libpq's, for both of MLflow's databases
                "MLFLOW_AUTH_ADMIN_PASSWORD": str(keys["mlflow_admin_password"]),
                "MLFLOW_FLASK_SERVER_SECRET_KEY": str(keys["mlflow_flask_secret"]),
            },
            lambda: _http_ok(f"{config.mlflow_url}/health"),
            ("postgres", "s3"),
        ),
        Service(
            "prefect-server",
            [_bin("prefect"), "server", "start", "--host", config.host, "--port", str(config.prefect_port)],
            {
                **base,
                "PREFECT_HOME": str(config.home / "prefect-server"),
                "PREFECT_API_DATABASE_CONNECTION_URL": config.database(
                    "prefect", "asyncpg", "prefect", str(passwords["prefect"])
                ),
                "PREFECT_SERVER_API_AUTH_STRING": str(keys["prefect_auth"]),
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
    """What every person's shell gets (``stack.env``): the URLs and the ledger's read-only role.

    No Prefect or MLflow login (each person's own is in ``people/NAME.env``), no S3 keys, no
    database role that may write."""
    return {
        "PREFECT_API_URL": config.people_url,
        "MLFLOW_TRACKING_URI": config.mlflow_url,
        "RETRAIN_MLFLOW_UI_URL": config.mlflow_url,
        "RETRAIN_LEDGER_URL": config.database("ledger", "psycopg", "people", str(keys["postgres"]["people"])),
        "RETRAIN_STACK": "1",
        # Downloads through the MLflow server: the S3 server takes signed requests only, and moto
        # cannot check presigned URLs with authentication on.
        "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
    }


def person_env(config: StackConfig, keys: Mapping[str, Any], name: str) -> dict[str, str]:
    """One person's profile: ``stack.env`` plus their own login to the Prefect proxy and MLflow."""
    password = str(keys["mlflow_people"][name])
    return {
        **client_env(config, keys),
        "PREFECT_API_AUTH_STRING": f"{name}:{password}",
        "MLFLOW_TRACKING_USERNAME": name,
        "MLFLOW_TRACKING_PASSWORD": password,
        PERSON_VARIABLE: name,
    }


def admin_env(config: StackConfig, keys: Mapping[str, Any]) -> dict[str, str]:
    """The operator's process (``stack up``/``setup``): the Prefect server itself, with its auth string."""
    return {
        **client_env(config, keys),
        "PREFECT_API_URL": config.prefect_url,
        "PREFECT_API_AUTH_STRING": str(keys["prefect_auth"]),
    }


def worker_env(config: StackConfig, keys: Mapping[str, Any]) -> dict[str, str]:
    """The worker's flows: the service account (EDIT on the model), the DVC remote on S3, the
    ledger's writer role, the Prefect server directly. Only in the worker's environment."""
    return {
        **admin_env(config, keys),
        **s3_env(config, keys),
        "PREFECT_HOME": str(config.home / "prefect-worker"),
        "MLFLOW_TRACKING_USERNAME": SERVICE_ACCOUNT,
        "MLFLOW_TRACKING_PASSWORD": str(keys["mlflow_service_password"]),
        "RETRAIN_DVC_REMOTE": f"s3://{BUCKET}/dvc",
        "RETRAIN_S3_ENDPOINT_URL": config.s3_url,
        "RETRAIN_LEDGER_URL": config.database("ledger", "psycopg", "worker", str(keys["postgres"]["worker"])),
        "RETRAIN_HOME": str(config.home / "worker-home"),
        **({SERVED_PROJECTS: os.pathsep.join(config.served_projects)} if config.served_projects else {}),
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


def postgres_os_user() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root: as root, its cluster belongs to the ``postgres`` OS user."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise StackError("running as root, and no 'postgres' OS user to run the stack's PostgreSQL as") from None
    return entry.pw_uid, entry.pw_gid


def _start(config: StackConfig, service: Service) -> int:
    log = _log_file(config, service.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    _pid_file(config, service.name).parent.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(service.env)
    owner = postgres_os_user() if service.name == "postgres" else None
    with open(log, "ab") as handle:
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


def _stop(config: StackConfig, name: str, stop_signal: int = signal.SIGTERM, grace: float = 20.0) -> bool:
    """``stop_signal`` to the service's whole process group, SIGKILL after ``grace``: nothing is left behind."""
    pid = running_pid(config, name)
    if pid is None:
        _pid_file(config, name).unlink(missing_ok=True)
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
    _pid_file(config, name).unlink(missing_ok=True)
    return True


# --- setup steps -----------------------------------------------------------------------------


def _chown_to(path: Path, owner: tuple[int, int] | None) -> None:
    if owner is not None:
        os.chown(path, *owner)


def ensure_postgres_cluster(config: StackConfig, keys: Mapping[str, Any]) -> bool:
    """``initdb`` the stack's own cluster when absent; True when it was created.

    The superuser ``postgres`` gets a password (from ``secrets.json``) and ``pg_hba.conf`` allows
    nothing but ``scram-sha-256`` logins over TCP from 127.0.0.1: no trust, no peer, no socket.
    """
    data = _postgres_data(config)
    if (data / "PG_VERSION").exists():
        return False
    owner = postgres_os_user()
    root = data.parent
    root.mkdir(parents=True, exist_ok=True)
    for directory in (config.home.parent, config.home):  # the OS user must reach its data dir
        if owner is not None:
            directory.chmod(directory.stat().st_mode | 0o011)
    root.chmod(0o700)
    _chown_to(root, owner)
    password_file = root / "initdb.pw"
    _write_private(password_file, str(keys["postgres"]["admin"]))
    _chown_to(password_file, owner)
    try:
        done = subprocess.run(
            [
                postgres_bin("initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--pwfile",
                str(password_file),
                "--auth",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale",
                "C",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            user=owner[0] if owner else None,
            group=owner[1] if owner else None,
            extra_groups=[] if owner else None,
        )
    except OSError as error:
        raise StackError(f"cannot run PostgreSQL's initdb ({error}): apt-get install postgresql") from None
    finally:
        password_file.unlink(missing_ok=True)
    if done.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        raise StackError(f"initdb failed for the stack's PostgreSQL at {data}: {done.stderr.strip()[-500:]}")
    hba = data / "pg_hba.conf"
    hba.write_text(
        "# The team stack's own cluster: password (scram-sha-256) logins over TCP from this machine only.\n"
        f"host all all {config.host}/32 scram-sha-256\n",
        encoding="utf-8",
    )
    hba.chmod(0o600)
    _chown_to(hba, owner)
    return True


def _postgres_admin_url(config: StackConfig, keys: Mapping[str, Any], database: str = "postgres") -> str:
    password = keys["postgres"]["admin"]
    return f"postgresql+psycopg://postgres:{password}@{config.host}:{config.postgres_port}/{database}"


def ensure_roles_and_databases(config: StackConfig, keys: Mapping[str, Any]) -> list[str]:
    """Each holder's role (password from ``secrets.json``, set afresh each time) and each database
    with its owner; nobody but the owner may connect to a database, except people to the ledger."""
    from sqlalchemy import create_engine, text

    engine = create_engine(_postgres_admin_url(config, keys), isolation_level="AUTOCOMMIT")
    created = []
    try:
        with engine.connect() as connection:
            roles = {row[0] for row in connection.execute(text("SELECT rolname FROM pg_roles"))}
            for key, role in ROLES.items():
                verb = "ALTER" if role in roles else "CREATE"
                password = str(keys["postgres"][key]).replace("'", "''")
                connection.execute(
                    text(f"{verb} ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{password}'")
                )
            existing = {row[0] for row in connection.execute(text("SELECT datname FROM pg_database"))}
            for purpose, owner in DATABASES.items():
                name = f"retrain_{purpose}"
                if name not in existing:
                    connection.execute(text(f"CREATE DATABASE {name} OWNER {ROLES[owner]}"))
                    created.append(name)
                connection.execute(text(f"REVOKE ALL ON DATABASE {name} FROM PUBLIC"))
            connection.execute(text(f"GRANT CONNECT ON DATABASE retrain_ledger TO {ROLES['people']}"))
            connection.execute(text("REVOKE ALL ON DATABASE postgres, template1 FROM PUBLIC"))
    finally:
        engine.dispose()
    return created


def ensure_ledger_tables(config: StackConfig, keys: Mapping[str, Any]) -> None:
    """The ledger's and the decision log's tables, created by their writer (the worker's role),
    readable by people: people's role cannot create them, so they exist before anyone reads."""
    from sqlalchemy import create_engine, text

    from retrain.adapters.ledger import DecisionLog, Ledger

    writer = config.database("ledger", "psycopg", "worker", str(keys["postgres"]["worker"]))
    for store in (Ledger(writer), DecisionLog(writer)):
        store.engine.dispose()
    engine = create_engine(_postgres_admin_url(config, keys, "retrain_ledger"), isolation_level="AUTOCOMMIT")
    people, worker = ROLES["people"], ROLES["worker"]
    try:
        with engine.connect() as connection:
            connection.execute(text("REVOKE ALL ON SCHEMA public FROM PUBLIC"))
            connection.execute(text(f"GRANT USAGE, CREATE ON SCHEMA public TO {worker}"))
            connection.execute(text(f"GRANT USAGE ON SCHEMA public TO {people}"))
            connection.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {people}"))
            connection.execute(
                text(f"ALTER DEFAULT PRIVILEGES FOR ROLE {worker} IN SCHEMA public GRANT SELECT ON TABLES TO {people}")
            )
    finally:
        engine.dispose()


def write_mlflow_auth_config(config: StackConfig) -> Path:
    """MLflow's auth config; its database's password comes from the server's ``PGPASSWORD``."""
    path = config.home / "mlflow" / "basic_auth.ini"
    auth_db = config.database("mlflow_auth", "psycopg", "mlflow", "").replace(":@", "@")
    _write_private(
        path,
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {auth_db}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n",
    )
    return path


def ensure_bucket(config: StackConfig, keys: Mapping[str, Any]) -> None:
    """The stack's bucket, created with the writer's keys (its policy allows this bucket only)."""
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client(
        "s3",
        endpoint_url=config.s3_url,
        aws_access_key_id=str(keys["s3_access_key"]),
        aws_secret_access_key=str(keys["s3_secret_key"]),
        region_name="us-east-1",
    )
    try:
        client.head_bucket(Bucket=BUCKET)
    except ClientError:
        client.create_bucket(Bucket=BUCKET)


# What people may do through the Prefect proxy: "METHOD /api/path" against these regexes, first
# match wins (nginx ``map``). Refusals come first: Secret blocks and variables (values), the rest
# of the admin API, run inputs other than a gate's form schema/description and Retrain's receipts (a
# reviewer's answer is theirs). Then every other read (GET, and the POST filters/counts the UI
# reads with), a custom run of a deployment and resuming a paused run. Nothing else: no creating or
# changing deployments, work pools, blocks, variables, automations, flow runs' states or logs.
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PEOPLE_ALLOWLIST: tuple[tuple[str, bool], ...] = (
    ("^GET /api/admin/(version|settings)$", True),  # the UI reads both; settings come with secrets masked
    (f"^GET /api/flow_runs/{UUID}/input/[^/]+-(schema|description)$", True),
    (f"^GET /api/flow_runs/{UUID}/input/retrain-receipt-[^/]+$", True),
    # what a reviewer signs (run, model, challenger version, training key): nothing secret
    (f"^GET /api/flow_runs/{UUID}/input/retrain-approval-subject$", True),
    ("^[A-Z]+ /api/(admin|variables|block_documents)(/|$)", False),
    ("^[A-Z]+ /api/.*block_documents", False),
    ("^[A-Z]+ /api/flow_runs/[^/]+/input(/|$)", False),
    ("^(GET|HEAD) /api/", True),
    (
        "^POST /api/(artifacts|artifacts/latest|automations|deployments|flow_runs|flows|logs|task_runs|events"
        "|work_pools|work_queues|saved_searches|task_workers|concurrency_limits|v2/concurrency_limits"
        "|block_types|block_schemas)/(filter|count|paginate|history|lateness)$",
        True,
    ),
    ("^POST /api/events/count-by/[a-z_]+$", True),
    ("^POST /api/work_pools/[^/]+/(queues|workers)/filter$", True),
    (
        "^POST /api/ui/(flow_runs/count-task-runs|flow_runs/history|flows/count-deployments|flows/next-runs"
        "|schemas/validate|task_runs/count|task_runs/dashboard/counts)$",
        True,
    ),
    (f"^POST /api/deployments/{UUID}/create_flow_run$", True),
    (f"^POST /api/flow_runs/{UUID}/resume$", True),
)


def _nginx_os_user() -> tuple[str, tuple[int, int]] | None:
    """As root, nginx's workers run as ``www-data`` (or ``nobody``), never as root."""
    if os.geteuid() != 0:
        return None
    import grp
    import pwd

    for user in ("www-data", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(user)
            return f"{user} {grp.getgrgid(entry.pw_gid).gr_name}", (entry.pw_uid, entry.pw_gid)
    raise StackError("running as root, and no www-data or nobody OS user for nginx's workers")


def proxy_config_text(
    listen: str, upstream: str, server_auth: str, people_map: str, state: str, user: str | None = None
) -> str:
    """nginx's whole config for people's entrance (also rendered into infra/ for the compose file).

    ``people_map`` is a file of ``"Basic BASE64(NAME:PASSWORD)" NAME;`` lines: a login is checked
    against it (nginx's auth_basic would answer with a ``WWW-Authenticate`` challenge, which makes a
    browser hold the Prefect UI's own login request), and the access log names the person.
    ``server_auth`` is base64 of the Prefect server's auth string, sent upstream in place of the
    person's own login once nginx has checked that login and the allowlist."""
    rules = "\n".join(f'        "~{pattern}" {int(allowed)};' for pattern, allowed in PEOPLE_ALLOWLIST)
    temp = "\n".join(
        f"    {kind}_temp_path {state}/tmp_{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""# retrain/stack.py proxy_config_text: people's entrance to the Prefect API and UI.
{f"user {user};" if user else ""}
worker_processes 1;
pid {state}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
    log_format people '$remote_addr $person [$time_local] "$request" $status';
    access_log {state}/access.log people;
{temp}
    map_hash_bucket_size 256;  # a key is a whole "Basic BASE64(NAME:PASSWORD)" header
    map $http_authorization $person {{
        default "";
        include {people_map};
    }}
    map "$request_method $uri" $people_may {{
        default 0;
{rules}
    }}
    server {{
        listen {listen};
        client_max_body_size 10m;
        proxy_http_version 1.1;
        location /api/ {{
            default_type application/json;
            if ($person = "") {{ return 401 '{{"exception_message": "Unauthorized"}}'; }}
            if ($people_may = 0) {{ return 403 '{{"detail": "not allowed for people on the team stack"}}'; }}
            proxy_set_header Authorization "Basic {server_auth}";
            proxy_pass {upstream};
        }}
        location = /api/health {{
            proxy_set_header Authorization "";
            proxy_pass {upstream};
        }}
        location / {{  # the UI's static files and /ui-settings: no secret in them
            limit_except GET {{ deny all; }}
            proxy_set_header Authorization "";
            proxy_pass {upstream};
        }}
    }}
}}
"""


def _people_map_line(name: str, password: str) -> str:
    login = base64.b64encode(f"{name}:{password}".encode()).decode()
    return f'"Basic {login}" "{name}";'


def write_proxy_config(config: StackConfig, keys: Mapping[str, Any]) -> Path:
    """nginx's config for people's Prefect entrance: its own pid, logs and temp paths under the
    state dir, one login per person, the allowlist, the server's auth string upstream.

    Both files are 0600: the master process reads them (as their owner) when it starts; its
    workers run as ``www-data`` when the stack runs as root."""
    directory = config.home / "nginx"
    directory.mkdir(parents=True, exist_ok=True)
    workers = _nginx_os_user()
    people_map = directory / "people.map"
    entries = [_people_map_line(name, str(password)) for name, password in sorted(keys["mlflow_people"].items())]
    _write_private(people_map, "\n".join(entries) + "\n")
    text = proxy_config_text(
        listen=f"{config.host}:{config.people_port}",
        upstream=f"http://{config.host}:{config.prefect_port}",
        server_auth=base64.b64encode(str(keys["prefect_auth"]).encode()).decode(),
        people_map=str(people_map),
        state=str(directory),
        user=workers[0] if workers else None,
    )
    path = directory / "nginx.conf"
    _write_private(path, text)
    return path


def ensure_nginx(on_event: Callable[[str], None]) -> None:
    """Debian's nginx, installed with apt-get when missing (as the browser test installs chromium)."""
    if shutil.which("nginx") or Path("/usr/sbin/nginx").exists():
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise StackError("nginx is not installed (the people's Prefect proxy needs it): apt-get install nginx-light")
    on_event("installing nginx (apt-get install nginx-light)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "nginx-light"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise StackError(f"apt-get install nginx-light failed: {done.stderr.strip()[-500:]}")


def ensure_locked_pool(name: str) -> None:
    """The process work pool, with a job template that takes no job variables.

    Prefect lets whoever starts a run pass job variables, and a process pool's default template
    turns ``command``, ``env`` and ``working_dir`` into the worker's subprocess: a custom run
    could run any command as the worker. Here every job setting is fixed; the deployments'
    settings come from their own pull steps, and the worker's credentials from its environment."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound

    template: dict[str, Any] = {
        "job_configuration": {
            "command": None,
            "env": {},
            "labels": {},
            "name": None,
            "stream_output": True,
            "working_dir": None,
        },
        "variables": {"type": "object", "properties": {}},
    }
    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))
            return
        if pool.base_job_template != template:
            client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))


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


def _profile_text(values: Mapping[str, str]) -> str:
    return "\n".join(f"export {key}={value}" for key, value in values.items()) + "\n"


def write_profile(config: StackConfig, keys: Mapping[str, Any]) -> Path:
    """``stack.env`` (what every person sources) and ``people/NAME.env`` for each listed person
    (their own logins, on top of ``stack.env``); all 0600."""
    path = config.home / "stack.env"
    _write_private(path, _profile_text(client_env(config, keys)))
    for name in keys["mlflow_people"]:
        _write_private(person_profile_path(config, name), _profile_text(person_env(config, keys, name)))
    return path


def person_profile_path(config: StackConfig, name: str) -> Path:
    return config.home / "people" / f"{name}.env"


def stack_config_at(state_dir: Path) -> StackConfig:
    """The stack whose files live under ``state_dir`` (enough to find its profile and secrets)."""
    return StackConfig(home=state_dir / "stack")


def _read_profile(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        values[key] = value
    return values


def load_profile(config: StackConfig, person: str | None = None) -> dict[str, str]:
    """``stack.env``, plus ``people/NAME.env`` for ``person`` (default: ``$RETRAIN_STACK_PERSON``)."""
    path = config.home / "stack.env"
    if not path.exists():
        raise StackError(f"no stack profile at {path}: run `retrain stack up` first")
    values = _read_profile(path)
    person = person or os.environ.get(PERSON_VARIABLE)
    if person:
        personal = person_profile_path(config, person)
        if not personal.exists():
            raise StackError(f"no profile for {person!r} at {personal}: only listed reviewers have one")
        values.update(_read_profile(personal))
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
    """Start what is not running (idempotent), wait until healthy, then run ``setup`` (accounts,
    deployments) with the work pool locked first, and the worker last."""
    ensure_nginx(on_event)
    if ensure_postgres_cluster(config, keys):
        on_event(f"created the stack's PostgreSQL cluster in {_postgres_data(config)}")
    write_mlflow_auth_config(config)
    write_proxy_config(config, keys)
    deadline = time.monotonic() + timeout
    plan = {service.name: service for service in services(config, keys)}

    def start(*names: str) -> None:
        for name in names:
            if running_pid(config, name) is None:
                _start(config, plan[name])
                on_event(f"started {name}")

    start("postgres", "s3")
    _wait_healthy(config, plan["postgres"], deadline)
    created = ensure_roles_and_databases(config, keys)
    if created:
        on_event(f"created databases {', '.join(created)}")
    ensure_ledger_tables(config, keys)
    start("mlflow", "prefect-server", "prefect-proxy")
    _wait_healthy(config, plan["s3"], deadline)
    ensure_bucket(config, keys)
    for name in ("mlflow", "prefect-server", "prefect-proxy"):
        _wait_healthy(config, plan[name], deadline)
    setup()
    start("prefect-worker")
    _wait_healthy(config, plan["prefect-worker"], max(deadline, time.monotonic() + timeout / 2))
    return status(config, keys)


def down(config: StackConfig, keys: Mapping[str, Any]) -> list[str]:
    """Stop every service, the worker first; returns the names that were running."""
    stopped = []
    for service in reversed(services(config, keys)):
        if _stop(config, service.name, service.stop_signal):
            stopped.append(service.name)
    return stopped


def purge_state(config: StackConfig) -> Path:
    """Delete the stopped stack's state dir: its PostgreSQL cluster, secrets, profiles and logs.

    The databases are the stack's own (its cluster lives here), so nothing is left elsewhere; the
    next ``up`` starts afresh with new passwords."""
    pids = config.home / "pids"
    if pids.exists() and any(running_pid(config, path.stem) for path in pids.glob("*.pid")):
        raise StackError("the stack is still running: `retrain stack down` first")
    if config.home.exists():
        shutil.rmtree(config.home)
    return config.home
