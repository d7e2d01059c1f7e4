"""Where the team stack lives and listens: state paths, ports, roles, databases and binaries.

Plain values and look-ups (no process is started, no file written): every other module of the stack
reads its locations from here, so a port or a path is decided in one place.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from retrain.adapters.environment import S3_KMS_KEY_ID
from retrain.domain.encryption import SSE_S3_ONLY, S3Encryption, s3_encryption
from retrain.domain.errors import RetrainError

SERVICE_ACCOUNT = "retrain-service"
BUCKET = "retrain"
S3_WRITER = "retrain-writer"
PERSON_VARIABLE = "RETRAIN_STACK_PERSON"

#: Who logs in to the stack's own PostgreSQL cluster (a key of ROLES).
Role = Literal["prefect", "mlflow", "worker", "people"]

# PostgreSQL roles of the stack's own cluster: who logs in as what.
ROLES: dict[Role, str] = {
    "prefect": "prefect_server",  # owns retrain_prefect
    "mlflow": "mlflow_server",  # owns retrain_mlflow and retrain_mlflow_auth
    "worker": "retrain_worker",  # owns retrain_ledger: writes the ledger and the decision log
    "people": "retrain_people",  # SELECT on the ledger's tables, nothing else
}
# Database purpose -> the ROLES key of its owner.
DATABASES: dict[str, Role] = {"prefect": "prefect", "mlflow": "mlflow", "mlflow_auth": "mlflow", "ledger": "worker"}


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
    #: How the bucket's objects are written (MLflow's artifacts by its server, the DVC remote by the
    #: worker): SSE-S3, or SSE-KMS with the key ``RETRAIN_S3_KMS_KEY_ID`` names at ``up``
    s3_encryption: S3Encryption = SSE_S3_ONLY

    @classmethod
    def from_env(
        cls, state_dir: Path, work_pool: str, env: Mapping[str, str] | None = None, project_dir: Path | None = None
    ) -> StackConfig:
        """``project_dir`` (the operator's project) and the state dir are always served, plus the
        path-separated roots in ``RETRAIN_STACK_PROJECTS``. A port comes from its variable, else from
        the stack's ``ports.json`` (what its first ``up`` chose), else the default."""
        env = os.environ if env is None else env
        extra = [item for item in env.get("RETRAIN_STACK_PROJECTS", "").split(os.pathsep) if item.strip()]
        served = [str(path.resolve()) for path in (project_dir, state_dir) if path is not None]
        served += [str(Path(item).resolve()) for item in extra]
        home = state_dir / "stack"
        recorded = recorded_ports(home)
        ports = {
            field: int(env.get(variable) or recorded.get(field) or DEFAULT_PORTS[field])
            for field, variable in PORT_VARIABLES.items()
        }
        return cls(
            home=home,
            host=env.get("RETRAIN_STACK_HOST", "127.0.0.1"),
            work_pool=work_pool,
            served_projects=tuple(dict.fromkeys(served)),
            s3_encryption=s3_encryption(env.get(S3_KMS_KEY_ID)),
            **ports,
        )

    def ports(self) -> dict[str, int]:
        return {field: int(getattr(self, field)) for field in PORT_VARIABLES}

    def database(self, purpose: str, driver: str, role: Role, password: str) -> str:
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

    # --- paths under the state dir -------------------------------------------------------------

    @property
    def secrets_file(self) -> Path:
        return self.home / "secrets.json"

    @property
    def postgres_data(self) -> Path:
        return self.home / "postgres" / "data"

    @property
    def nginx_dir(self) -> Path:
        return self.home / "nginx"

    @property
    def mlflow_auth_file(self) -> Path:
        return self.home / "mlflow" / "basic_auth.ini"

    @property
    def pids_dir(self) -> Path:
        return self.home / "pids"

    def pid_file(self, service: str) -> Path:
        return self.pids_dir / f"{service}.pid"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    def log_file(self, service: str) -> Path:
        return self.logs_dir / f"{service}.log"

    @property
    def people_dir(self) -> Path:
        """Each person's own profile (``NAME.env``: their logins)."""
        return self.home / "people"

    @property
    def prefect_server_home(self) -> Path:
        return self.home / "prefect-server"

    @property
    def prefect_server_logging(self) -> Path:
        """The Prefect server's logging config (Prefect's own, with URL paths redacted)."""
        return self.prefect_server_home / "logging.yml"

    @property
    def worker_prefect_home(self) -> Path:
        return self.home / "prefect-worker"

    @property
    def worker_home(self) -> Path:
        """The worker's own ``RETRAIN_HOME`` (its flows' reports, caches, validation verdicts)."""
        return self.home / "worker-home"

    @property
    def ports_file(self) -> Path:
        return self.home / "ports.json"


#: Each port's field and the variable that sets it; the defaults are what a first stack gets.
PORT_VARIABLES: dict[str, str] = {
    "prefect_port": "RETRAIN_STACK_PREFECT_PORT",
    "people_port": "RETRAIN_STACK_PEOPLE_PORT",
    "mlflow_port": "RETRAIN_STACK_MLFLOW_PORT",
    "s3_port": "RETRAIN_STACK_S3_PORT",
    "postgres_port": "RETRAIN_STACK_POSTGRES_PORT",
}
DEFAULT_PORTS: dict[str, int] = {
    "prefect_port": 4200,
    "people_port": 4201,
    "mlflow_port": 5000,
    "s3_port": 9000,
    "postgres_port": 5433,
}


def recorded_ports(home: Path) -> dict[str, int]:
    """The ports a stack's first ``up`` chose (``ports.json``); empty when none was recorded."""
    try:
        stored = json.loads((home / "ports.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {key: int(value) for key, value in stored.items() if key in PORT_VARIABLES and str(value).isdigit()}


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on ``host:port``: a bind succeeds with ``SO_REUSEADDR``, as every
    server of the stack binds (a port left in TIME_WAIT by a stack just stopped is free to them)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str, taken: set[int]) -> int:
    """A port the system gives out as free now, none of ``taken``."""
    while True:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if port not in taken:
            return port


def stack_config_at(state_dir: Path) -> StackConfig:
    """The stack whose files live under ``state_dir`` (enough to find its profile and secrets)."""
    home = state_dir / "stack"
    return StackConfig(home=home, **recorded_ports(home))  # type: ignore[arg-type]


# --- binaries, and who runs them -------------------------------------------------------------


def project_bin(name: str) -> str:
    """A console script of this project's environment (the one running this code)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def postgres_bin(name: str) -> str:
    """A PostgreSQL server binary (initdb, postgres, pg_isready) of the newest installed version
    (Debian keeps them off PATH, under /usr/lib/postgresql/VERSION/bin); the bare name otherwise."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    return str(found[-1]) if found else (shutil.which(name) or name)


def nginx_bin() -> str:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "nginx")


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
