"""infra/docker-compose.yml and `retrain stack up` run the same services, ports and variables."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from retrain.adapters.environment import QUIET_ENVIRONMENT
from retrain.stack import DATABASES, ROLES, StackConfig, StackSecrets, proxy_config_text, services

INFRA = Path(__file__).resolve().parents[2] / "infra"
KEYS = StackSecrets.model_validate(
    {
        "prefect_auth": "admin:x",
        "mlflow_admin_password": "x",
        "mlflow_service_password": "x",
        "mlflow_flask_secret": "x",
        "s3_access_key": "x",
        "s3_secret_key": "x",
        "mlflow_people": {},
        "postgres": dict.fromkeys(("admin", *ROLES), "x"),
    }
)
# Local-process details with no meaning in a container: state paths, the quiet defaults the image
# sets, and moto's IAM users (MinIO's root user is the writer in the container).
LOCAL_ONLY = {"PREFECT_HOME", "RETRAIN_HOME", "RETRAIN_S3_ACCOUNTS", *QUIET_ENVIRONMENT}


def _compose() -> dict:
    return yaml.safe_load((INFRA / "docker-compose.yml").read_text())["services"]


def _published(service: dict) -> set[int]:
    return {int(str(port).rsplit(":", 2)[-2]) for port in service.get("ports", [])}


def test_every_local_service_is_a_compose_service_on_the_same_port():
    config = StackConfig(home=Path("/tmp/x"))
    compose = _compose()
    ports = {
        "s3": config.s3_port,
        "mlflow": config.mlflow_port,
        "prefect-server": config.prefect_port,
        "prefect-proxy": config.people_port,
        "postgres": config.postgres_port,
    }
    for service in services(config, KEYS):
        assert service.name in compose, f"{service.name} missing from docker-compose.yml"
        if service.name in ports:
            assert ports[service.name] in _published(compose[service.name])
            assert all(str(p).startswith("127.0.0.1:") for p in compose[service.name]["ports"])


def test_compose_sets_every_variable_the_local_stack_sets():
    compose = _compose()
    for service in services(StackConfig(home=Path("/tmp/x")), KEYS):
        wanted = set(service.env) - LOCAL_ONLY
        assert wanted <= set(compose[service.name].get("environment", {})), service.name


def test_same_roles_databases_commands_and_no_secret_in_the_file():
    init = (INFRA / "postgres-init.sh").read_text()
    for purpose, owner in DATABASES.items():
        assert f"CREATE DATABASE retrain_{purpose} OWNER {ROLES[owner]};" in init
    for role in ROLES.values():
        assert f"CREATE ROLE {role} LOGIN PASSWORD '${{PG_" in init  # each its own password from infra/.env
    compose = _compose()
    assert compose["postgres"]["environment"]["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
    assert compose["mlflow"]["command"][:4] == ["mlflow", "server", "--app-name", "basic-auth"]
    assert "s3://retrain/mlflow" in compose["mlflow"]["command"]
    assert compose["prefect-worker"]["command"][:5] == ["prefect", "worker", "start", "--pool", "retrain-process"]
    text = (INFRA / "docker-compose.yml").read_text()
    for variable in ("PREFECT_AUTH_STRING", "MLFLOW_ADMIN_PASSWORD", "S3_SECRET_KEY", "MLFLOW_SERVICE_PASSWORD"):
        assert f"${{{variable}:?" in text  # from infra/.env, never written into the file
    assert "postgres@" not in text  # no service logs in as the superuser
    ini = (INFRA / "mlflow-basic-auth.ini").read_text()
    assert "default_permission = READ" in ini


def test_the_container_s_mlflow_caches_credentials_as_the_local_stack_does(tmp_path: Path):
    from retrain.stack.provisioning import write_mlflow_auth_config

    local = write_mlflow_auth_config(StackConfig(home=tmp_path)).read_text()
    container = (INFRA / "mlflow-basic-auth.ini").read_text()

    def cache_lines(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("auth_cache_")]

    assert cache_lines(local) == cache_lines(container) and cache_lines(local)


def test_people_get_the_same_proxy_in_the_container():
    """The compose file's nginx template is what `retrain stack up` writes, with the container's paths."""
    rendered = proxy_config_text(
        listen="4201",
        upstream="http://prefect-server:4200",
        server_auth="${PREFECT_AUTH_BASIC}",
        people_map="/etc/nginx/people.map",
        state="/var/cache/nginx",
    )
    assert (INFRA / "prefect-people.conf.template").read_text() == rendered
    environment = _compose()["prefect-server"]["environment"]
    assert environment["PREFECT_UI_API_URL"].endswith(":4201/api")  # the UI people load uses the proxy
    worker = _compose()["prefect-worker"]["environment"]
    assert worker["PREFECT_API_URL"] == "http://prefect-server:4200/api"  # the worker talks to the server


def test_the_container_s_writers_encrypt_the_bucket_as_the_local_stack_does():
    """MinIO has a key (it refuses server-side encryption without one); the MLflow server writes its
    artifacts SSE-S3 as the local stack's does; the worker takes the KMS key from infra/.env."""
    compose = _compose()
    local = {service.name: service for service in services(StackConfig(home=Path("/tmp/x")), KEYS)}
    uploads = compose["mlflow"]["environment"]["MLFLOW_S3_UPLOAD_EXTRA_ARGS"]
    assert json.loads(uploads) == json.loads(local["mlflow"].env["MLFLOW_S3_UPLOAD_EXTRA_ARGS"])
    assert compose["s3"]["environment"]["MINIO_KMS_SECRET_KEY"].startswith("${MINIO_KMS_SECRET_KEY:?")
    assert compose["prefect-worker"]["environment"]["RETRAIN_S3_KMS_KEY_ID"] == "${RETRAIN_S3_KMS_KEY_ID:-}"
