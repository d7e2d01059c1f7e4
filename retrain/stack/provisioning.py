"""What the stack's servers need before anyone uses them: the PostgreSQL cluster, its roles and
databases, the ledger's tables, the bucket, MLflow's accounts and permissions, the locked work pool.

Each step is idempotent (``retrain stack up`` runs them all on every start) and reads its
passwords from :class:`~retrain.stack.secrets.StackSecrets`; heavy clients (SQLAlchemy, boto3,
MLflow, Prefect) are imported inside the step that needs them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from retrain.stack.config import (
    BUCKET,
    DATABASES,
    ROLES,
    SERVICE_ACCOUNT,
    StackConfig,
    StackError,
    postgres_bin,
    postgres_os_user,
)
from retrain.stack.secrets import MlflowAccounts, StackSecrets, write_private


def _chown_to(path: Path, owner: tuple[int, int] | None) -> None:
    if owner is not None:
        os.chown(path, *owner)


def _owner_mark(config: StackConfig) -> Path:
    """A digest of the superuser password the cluster was made with: which secrets open it."""
    return config.home / "cluster-secrets.sha256"


def _digest(keys: StackSecrets) -> str:
    return hashlib.sha256(keys.postgres.of("admin").encode()).hexdigest()


def _foreign_paragraph(config: StackConfig, found: str, command: str) -> str:
    names = ", ".join(f"retrain_{purpose}" for purpose in DATABASES)
    return (
        f"`retrain stack {command}` stopped before changing anything. It found {found}: a stack's PostgreSQL "
        f"cluster at {config.postgres_data} (databases {names}) whose accounts these secrets cannot open, "
        "so its servers would refuse every login (a new clone, or a state directory rebuilt, makes new secrets). "
        f"Two ways on: put back the secrets file that stack was made with, as {config.secrets_file} (mode 0600), "
        "and run the command again; or drop that stack's databases, bucket and state with "
        "`retrain stack reset --yes` (its runs, models and ledger are deleted; it says what it dropped), "
        "then `retrain stack up` makes a fresh one."
    )


def foreign_cluster_before_secrets(config: StackConfig, command: str = "up") -> str | None:
    """Before any secret is made: a cluster here with no secrets file beside it (they were removed)."""
    if (config.postgres_data / "PG_VERSION").exists() and not config.secrets_file.exists():
        return _foreign_paragraph(config, f"no secrets file at {config.secrets_file}", command)
    return None


def check_cluster_secrets(config: StackConfig, keys: StackSecrets, command: str = "up") -> None:
    """Refuse a cluster made with other secrets (its :func:`_owner_mark` differs from ``keys``)."""
    mark = _owner_mark(config)
    if not (config.postgres_data / "PG_VERSION").exists() or not mark.exists():
        return
    if mark.read_text(encoding="utf-8").strip() != _digest(keys):
        found = f"a secrets file at {config.secrets_file} that is not this cluster's"
        raise StackError(_foreign_paragraph(config, found, command))


def mark_cluster_secrets(config: StackConfig, keys: StackSecrets) -> None:
    """Record which secrets open the cluster, once its superuser logged in with them (a cluster made
    before marks were kept gets its mark only after that proof, never from fresh secrets)."""
    if not _owner_mark(config).exists():
        write_private(_owner_mark(config), _digest(keys))


def ensure_postgres_cluster(config: StackConfig, keys: StackSecrets) -> bool:
    """``initdb`` the stack's own cluster when absent; True when it was created.

    The superuser ``postgres`` gets a password (from ``secrets.json``) and ``pg_hba.conf`` allows
    nothing but ``scram-sha-256`` logins over TCP from 127.0.0.1: no trust, no peer, no socket.
    """
    data = config.postgres_data
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
    write_private(password_file, keys.postgres.of("admin"))
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
    write_private(_owner_mark(config), _digest(keys))
    hba = data / "pg_hba.conf"
    hba.write_text(
        "# The team stack's own cluster: password (scram-sha-256) logins over TCP from this machine only.\n"
        f"host all all {config.host}/32 scram-sha-256\n",
        encoding="utf-8",
    )
    hba.chmod(0o600)
    _chown_to(hba, owner)
    return True


def _postgres_admin_url(config: StackConfig, keys: StackSecrets, database: str = "postgres") -> str:
    password = keys.postgres.of("admin")
    return f"postgresql+psycopg://postgres:{password}@{config.host}:{config.postgres_port}/{database}"


def ensure_roles_and_databases(config: StackConfig, keys: StackSecrets) -> list[str]:
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
                password = keys.postgres.of(key).replace("'", "''")
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


def ensure_ledger_tables(config: StackConfig, keys: StackSecrets) -> None:
    """The ledger's and the decision log's tables, created by their writer (the worker's role),
    readable by people: people's role cannot create them, so they exist before anyone reads."""
    from sqlalchemy import create_engine, text

    from retrain.adapters.ledger import DecisionLog, Ledger

    writer = config.database("ledger", "psycopg", "worker", keys.postgres.of("worker"))
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


AUTH_CACHE_SECONDS = 60


def write_mlflow_auth_config(config: StackConfig) -> Path:
    """MLflow's auth config; its database's password comes from the server's ``PGPASSWORD``.

    The credential cache: without it, every request to the server checks its password against a
    PBKDF2 hash (about 0.6 s here), and one training run makes some 40 requests. With it, a
    (user, password) pair that verified is trusted for ``AUTH_CACHE_SECONDS``; the server runs one
    worker, so a password changed or a user deleted through its API is forgotten at once (only a
    change made in its database by hand waits for the TTL)."""
    path = config.home / "mlflow" / "basic_auth.ini"
    auth_db = config.database("mlflow_auth", "psycopg", "mlflow", "").replace(":@", "@")
    write_private(
        path,
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {auth_db}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n"
        f"auth_cache_ttl_seconds = {AUTH_CACHE_SECONDS}\n"
        "auth_cache_max_size = 1000\n",
    )
    return path


def ensure_bucket(config: StackConfig, keys: StackSecrets) -> None:
    """The stack's bucket, created with the writer's keys (its policy allows this bucket only)."""
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client(
        "s3",
        endpoint_url=config.s3_url,
        aws_access_key_id=keys.s3_access_key.get_secret_value(),
        aws_secret_access_key=keys.s3_secret_key.get_secret_value(),
        region_name="us-east-1",
    )
    try:
        client.head_bucket(Bucket=BUCKET)
    except ClientError:
        client.create_bucket(Bucket=BUCKET)


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
def _as_mlflow_admin(accounts: MlflowAccounts) -> Iterator[None]:
    """MLflow's clients read their credentials from the environment: admin's, for this block only."""
    names = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    previous = {name: os.environ.get(name) for name in names}
    os.environ.update(
        MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=accounts.admin_password.get_secret_value()
    )
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def ensure_mlflow_accounts(
    mlflow_url: str, keys: StackSecrets | MlflowAccounts, model_name: str, experiments: list[str]
) -> None:
    """The service account may change the model and its experiments; people get READ (the default).

    MLflow asks the same EDIT permission to register a version and to move an alias, so the
    separation comes from who holds the account: only the worker's flows do. On the registered
    model the account holds MANAGE, not EDIT: MLflow 3 asks MANAGE to *delete* an alias, which a
    promotion (clearing ``challenger``) and a rollback (clearing ``previous-champion``) do.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    accounts = keys.mlflow_accounts if isinstance(keys, StackSecrets) else keys
    with _as_mlflow_admin(accounts):
        auth = get_app_client("basic-auth", tracking_uri=mlflow_url)
        logins = {SERVICE_ACCOUNT: accounts.service_password, **accounts.people}
        for username, password in logins.items():
            try:
                auth.get_user(username)
            except MlflowException:
                auth.create_user(username, password.get_secret_value())
        client = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
        if not client.search_registered_models(filter_string=f"name='{model_name}'"):
            client.create_registered_model(model_name)
        grants = [("registered_model", model_name, "MANAGE")]
        for name in experiments:
            found = client.get_experiment_by_name(name)
            kind = {"mlflow.experimentKind": "custom_model_development"}  # its runs, not MLflow 3's GenAI page
            experiment_id = str(found.experiment_id if found else client.create_experiment(name, tags=kind))
            grants.append(("experiment", experiment_id, "EDIT"))
        for resource_type, resource_id, permission in grants:
            try:
                auth.grant_user_permission(SERVICE_ACCOUNT, resource_type, resource_id, permission)
            except MlflowException as error:  # granted before, perhaps another level: grant it afresh
                if error.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                auth.revoke_user_permission(SERVICE_ACCOUNT, resource_type, resource_id)
                auth.grant_user_permission(SERVICE_ACCOUNT, resource_type, resource_id, permission)
