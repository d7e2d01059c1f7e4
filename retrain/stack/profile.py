"""People's shell profiles: ``stack.env`` (everyone) and ``people/NAME.env`` (one person's logins).

A profile is what a person's shell holds: the URLs, the ledger's read-only role and, in their own
file, their own Prefect (proxy) and MLflow login; never an S3 key, the Prefect server's auth
string or a role that may write. Both files are 0600.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from retrain.stack.config import PERSON_VARIABLE, StackConfig, StackError
from retrain.stack.secrets import StackSecrets, write_private


def client_env(config: StackConfig, keys: StackSecrets) -> dict[str, str]:
    """What every person's shell gets (``stack.env``): the URLs and the ledger's read-only role.

    No Prefect or MLflow login (each person's own is in ``people/NAME.env``), no S3 keys, no
    database role that may write."""
    return {
        "PREFECT_API_URL": config.people_url,
        "PREFECT_UI_URL": config.people_url.removesuffix("/api"),  # links people can open (through the proxy)
        "MLFLOW_TRACKING_URI": config.mlflow_url,
        "RETRAIN_MLFLOW_UI_URL": config.mlflow_url,
        "RETRAIN_LEDGER_URL": config.database("ledger", "psycopg", "people", keys.postgres.of("people")),
        "RETRAIN_STACK": "1",
        # Downloads through the MLflow server: the S3 server takes signed requests only, and moto
        # cannot check presigned URLs with authentication on.
        "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
    }


def person_env(config: StackConfig, keys: StackSecrets, name: str) -> dict[str, str]:
    """One person's profile: ``stack.env`` plus their own login to the Prefect proxy and MLflow."""
    password = keys.person_password(name)
    return {
        **client_env(config, keys),
        "PREFECT_API_AUTH_STRING": f"{name}:{password}",
        "MLFLOW_TRACKING_USERNAME": name,
        "MLFLOW_TRACKING_PASSWORD": password,
        PERSON_VARIABLE: name,
    }


def _profile_text(values: Mapping[str, str]) -> str:
    return "\n".join(f"export {key}={value}" for key, value in values.items()) + "\n"


def person_profile_path(config: StackConfig, name: str) -> Path:
    return config.people_dir / f"{name}.env"


def write_profile(config: StackConfig, keys: StackSecrets) -> Path:
    """``stack.env`` (what every person sources) and ``people/NAME.env`` for each listed person
    (their own logins, on top of ``stack.env``); all 0600."""
    path = config.home / "stack.env"
    write_private(path, _profile_text(client_env(config, keys)))
    for name in keys.mlflow_people:
        write_private(person_profile_path(config, name), _profile_text(person_env(config, keys, name)))
    return path


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
