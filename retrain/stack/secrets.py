"""The stack's generated passwords, typed: generated at the first ``up``, kept in ``secrets.json``.

Every value is a :class:`pydantic.SecretStr`, so a secret shows as ``'**********'`` in a repr, a
traceback, a log line or ``model_dump()``; code that must hand one to a process or a server asks
for it by name (``.get_secret_value()``). The file is created 0600 before anything is written into
it and keeps its JSON shape (the operator reads it, and older stacks load unchanged).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr

from retrain.stack.config import Role, StackConfig

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> Path:
    """``path`` made with every missing parent, each new one 0700 whatever the umask (chmod after
    ``mkdir``); a directory that exists keeps its mode (``retrain.stack.state`` decides those)."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        directory.chmod(PRIVATE_DIR)
    return path


def write_private(path: Path, text: str) -> None:
    """Create the file readable by its owner only, before any secret is written into it (a missing
    directory is made 0700, whatever the umask)."""
    private_dir(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, PRIVATE_FILE)


def _token() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(24))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class PostgresPasswords(_Frozen):
    """One password per login of the stack's own cluster: its superuser and each of ROLES."""

    admin: SecretStr
    prefect: SecretStr
    mlflow: SecretStr
    worker: SecretStr
    people: SecretStr

    def of(self, role: Role | Literal["admin"]) -> str:
        """The password of one of ROLES, revealed to hand to a server or a connection URL."""
        value: SecretStr = getattr(self, role)
        return value.get_secret_value()


class MlflowAccounts(_Frozen):
    """What creating MLflow's accounts needs: the admin's login, the service account's and each
    person's password (``retrain stack setup`` builds one from the environment of a compose stack)."""

    admin_password: SecretStr
    service_password: SecretStr
    people: Mapping[str, SecretStr] = {}


class StackSecrets(_Frozen):
    """Every secret of one stack; the field names are ``secrets.json``'s keys."""

    prefect_auth: SecretStr  # "admin:TOKEN": the Prefect server's one API auth string
    mlflow_admin_password: SecretStr
    mlflow_service_password: SecretStr
    mlflow_flask_secret: SecretStr
    s3_access_key: SecretStr  # the writer's key id (moto's IAM user), not secret but never shown either
    s3_secret_key: SecretStr
    mlflow_people: Mapping[str, SecretStr]  # person -> password (MLflow, and the Prefect proxy)
    postgres: PostgresPasswords
    #: keys the tokens of sensitive columns (RETRAIN_PRIVACY_SALT in the worker's environment); empty in a
    #: secrets document written before it existed until the next ``up`` adds it
    privacy_salt: SecretStr = SecretStr("")

    @property
    def mlflow_accounts(self) -> MlflowAccounts:
        return MlflowAccounts(
            admin_password=self.mlflow_admin_password,
            service_password=self.mlflow_service_password,
            people=self.mlflow_people,
        )

    def person_password(self, name: str) -> str:
        return self.mlflow_people[name].get_secret_value()

    def revealed(self) -> dict[str, Any]:
        """The plain JSON document of ``secrets.json``; only for writing that 0600 file."""

        def plain(value: Any) -> Any:
            if isinstance(value, SecretStr):
                return value.get_secret_value()
            if isinstance(value, BaseModel):
                return {name: plain(getattr(value, name)) for name in type(value).model_fields}
            if isinstance(value, Mapping):
                return {key: plain(item) for key, item in value.items()}
            return value

        return {name: plain(getattr(self, name)) for name in type(self).model_fields}


def generate_secrets(existing: Mapping[str, Any], reviewers: Iterable[str]) -> StackSecrets:
    """``existing`` values kept, everything missing generated (a new reviewer gets a password)."""
    current = {key: value for key, value in existing.items() if key != "approval_secret"}  # retired key
    wanted: dict[str, Any] = {
        "prefect_auth": f"admin:{_token().get_secret_value()}",
        "mlflow_admin_password": _token(),
        "mlflow_service_password": _token(),
        "mlflow_flask_secret": _token(),
        "s3_access_key": "retrain" + secrets.token_hex(6),
        "s3_secret_key": _token(),
        "privacy_salt": SecretStr(secrets.token_hex(32)),
    }
    people = dict(current.get("mlflow_people", {}))
    for name in reviewers:
        people.setdefault(name, _token())
    postgres = dict(current.get("postgres", {}))
    for role in PostgresPasswords.model_fields:
        postgres.setdefault(role, _token())
    if not current.get("privacy_salt"):  # never replaced once set: models' tokens depend on it
        current.pop("privacy_salt", None)
    return StackSecrets.model_validate({**wanted, **current, "mlflow_people": people, "postgres": postgres})


def load_secrets(config: StackConfig, reviewers: Iterable[str]) -> StackSecrets:
    """The stack's passwords: generated once, kept in ``secrets.json`` (0600); rewritten only when
    something was added (a new reviewer, a new role) or a retired key dropped."""
    path = config.secrets_file
    existing: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    keys = generate_secrets(existing, reviewers)
    document = keys.revealed()
    if document != existing:
        write_private(path, json.dumps(document, indent=2))
    return keys
