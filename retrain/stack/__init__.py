"""The team stack as plain local processes: ``retrain stack up | down | status``.

Every service is a process started from this project's environment (PostgreSQL from the
machine's binaries), each with a pid file, a log and a health check under ``$RETRAIN_HOME/stack``:

* ``postgres``: the stack's OWN PostgreSQL cluster (``initdb`` under the state dir, data dir 0700,
  listening on 127.0.0.1 only, ``scram-sha-256`` for every login), with one role per holder: the
  Prefect server, the MLflow server, the worker (the only writer of the ledger and the decision
  log) and people (read-only on the ledger, no login to any other database). A machine's shared
  server usually trusts every local login, and two checkouts would meet in its databases;
* ``s3``: moto standing in for S3 with IAM authentication enforced (``retrain.stack.s3_server``); one
  bucket holds MLflow's artifacts and the DVC remote; only the writer's keys may use it; every object
  is written with server-side encryption (SSE-S3, or SSE-KMS with ``RETRAIN_S3_KMS_KEY_ID``);
* ``mlflow``: tracking server with the basic-auth app, backend store on PostgreSQL, artifacts
  proxied to S3 (``--artifacts-destination``), so clients need no S3 keys of their own (the server
  writes them, encrypted: ``MLFLOW_S3_UPLOAD_EXTRA_ARGS``);
* ``prefect-server``: Prefect server on PostgreSQL (``postgresql+asyncpg``) with its one API auth
  string, which only the worker and the operator hold;
* ``prefect-proxy``: nginx in front of the Prefect server for people: HTTP basic auth per person,
  an allowlist of what people may do (watch, start runs of deployments, answer a gate), and the
  server's auth string added upstream, so people never hold it;
* ``prefect-worker``: a worker on a locked process work pool that runs the deployments, and the
  only holder of the MLflow service account, the S3 keys and the ledger's writer role.

Passwords are generated at the first ``up`` into ``secrets.json`` (mode 0600, never printed or
logged). ``stack.env`` (0600) is what every person sources (URLs, the ledger's read-only role);
``people/NAME.env`` (0600) adds one person's own Prefect and MLflow login. The whole state dir is
the operator's: directories 0700 (0711 as root, for PostgreSQL and nginx), files 0600. Everything binds
127.0.0.1 unless ``RETRAIN_STACK_HOST`` says otherwise. The same service names, ports and
variables are in ``infra/docker-compose.yml`` (a test keeps them in agreement).

The package, one concern a module: ``config`` (paths, ports, roles), ``secrets`` (the typed,
0600 secrets), ``services`` (definitions and their dependency order), ``supervisor`` (local
processes), ``provisioning`` (databases, roles, accounts, the work pool), ``proxy`` (people's
nginx), ``profile`` (people's shell profiles), ``commands`` (up, down, status), ``state`` (the
state dir's modes) and ``s3_server`` (``python -m retrain.stack.s3_server HOST PORT``). Importing
this package imports no heavy library: each step imports its client when it runs.
"""

from __future__ import annotations

from retrain.stack.commands import ServiceStatus, down, purge_state, settle_ports, status, up
from retrain.stack.config import (
    BUCKET,
    DATABASES,
    PERSON_VARIABLE,
    ROLES,
    S3_WRITER,
    SERVICE_ACCOUNT,
    StackConfig,
    StackError,
    nginx_bin,
    postgres_bin,
    postgres_os_user,
    stack_config_at,
)
from retrain.stack.profile import client_env, load_profile, person_env, person_profile_path, write_profile
from retrain.stack.provisioning import (
    ensure_bucket,
    ensure_ledger_tables,
    ensure_locked_pool,
    ensure_mlflow_accounts,
    ensure_postgres_cluster,
    ensure_roles_and_databases,
    foreign_cluster_before_secrets,
    write_mlflow_auth_config,
)
from retrain.stack.proxy import PEOPLE_ALLOWLIST, ensure_nginx, proxy_config_text, write_proxy_config
from retrain.stack.secrets import MlflowAccounts, PostgresPasswords, StackSecrets, load_secrets
from retrain.stack.services import (
    Service,
    admin_env,
    s3_accounts,
    s3_env,
    services,
    start_order,
    stop_order,
    worker_env,
)
from retrain.stack.state import secure_state
from retrain.stack.supervisor import running_pid

__all__ = [
    "BUCKET",
    "DATABASES",
    "PEOPLE_ALLOWLIST",
    "PERSON_VARIABLE",
    "ROLES",
    "S3_WRITER",
    "SERVICE_ACCOUNT",
    "MlflowAccounts",
    "PostgresPasswords",
    "Service",
    "ServiceStatus",
    "StackConfig",
    "StackError",
    "StackSecrets",
    "admin_env",
    "client_env",
    "down",
    "ensure_bucket",
    "ensure_ledger_tables",
    "ensure_locked_pool",
    "ensure_mlflow_accounts",
    "ensure_nginx",
    "ensure_postgres_cluster",
    "ensure_roles_and_databases",
    "foreign_cluster_before_secrets",
    "load_profile",
    "load_secrets",
    "nginx_bin",
    "person_env",
    "person_profile_path",
    "postgres_bin",
    "postgres_os_user",
    "proxy_config_text",
    "purge_state",
    "running_pid",
    "s3_accounts",
    "s3_env",
    "secure_state",
    "services",
    "settle_ports",
    "stack_config_at",
    "start_order",
    "status",
    "stop_order",
    "up",
    "worker_env",
    "write_mlflow_auth_config",
    "write_profile",
    "write_proxy_config",
]
