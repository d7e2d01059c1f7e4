"""Least privilege on the team stack, tried as a person: the shell holds only what the people's
profile gives (``stack.env`` + ``people/NAME.env``), and each way to reach a secret or to change
what the worker runs, the ledger, the registry or the bucket is refused.

The same person can still do their job (watch runs, start runs of the deployments, answer a gate):
test_live_stack.py, test_stack_cli.py and test_browser.py do that through the same entrance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.stack.conftest import LiveStack

pytestmark = [pytest.mark.stack, pytest.mark.faults]

PERSON = "demo-reviewer"
SOME_ID = "00000000-0000-0000-0000-000000000001"
DENIED = r"permission denied|must be owner"
S3_REFUSED = r"SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied"


def _secret_values(keys: Any) -> set[str]:
    """Every password, key and auth string of ``secrets.json`` (the S3 key id is a user name)."""
    found: set[str] = set()
    if isinstance(keys, dict):
        for name, value in keys.items():
            if name != "s3_access_key":
                found |= _secret_values(value)
    elif isinstance(keys, str):
        found |= {keys, keys.split(":", 1)[-1]}
    return found


def _as_person(stack: LiveStack) -> httpx.Client:
    """The Prefect API as the person's profile points at it, with their own login."""
    profile = stack.person(PERSON)
    user, password = profile["PREFECT_API_AUTH_STRING"].split(":", 1)
    return httpx.Client(base_url=profile["PREFECT_API_URL"], auth=(user, password), timeout=30)


def test_the_people_profile_holds_no_operator_or_worker_secret(live_stack: LiveStack):
    profile = live_stack.person(PERSON)
    own = {live_stack.keys["mlflow_people"][PERSON], live_stack.keys["postgres"]["people"]}
    text = json.dumps(profile)
    leaked = sorted(s for s in _secret_values(live_stack.keys) - own if s in text)
    assert leaked == []
    assert not [name for name in profile if name.startswith("AWS_")]  # no S3 keys at all
    assert profile["PREFECT_API_URL"] == live_stack.people_url  # the proxy, never the server itself
    assert "retrain_people:" in profile["RETRAIN_LEDGER_URL"]  # the ledger's read-only role


def test_no_secret_is_on_a_command_line(live_stack: LiveStack):
    """Every local user may read every process's command line (``ps``, /proc/PID/cmdline)."""
    secrets = _secret_values(live_stack.keys)
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                command = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            found += [f"{proc.name}: {s[:4]}…" for s in secrets if s in command]
    assert found == []


def test_a_person_cannot_read_secrets_through_the_prefect_api(live_stack: LiveStack):
    with _as_person(live_stack) as api:
        assert api.get("/admin/version").status_code == 200  # the login works (the UI's check)
        refused = [
            api.post("/block_documents/filter", json={}),
            api.post("/block_documents/count", json={}),
            api.get(f"/block_documents/{SOME_ID}", params={"include_secrets": "true"}),
            api.get("/block_types/slug/secret/block_documents", params={"include_secrets": "true"}),
            api.get("/block_types/slug/secret/block_documents/name/retrain-approval-secret"),
            api.post("/variables/filter", json={}),
            api.get("/variables/name/anything"),
            api.post(f"/flow_runs/{SOME_ID}/input/filter", json={"prefix": ""}),
            api.get(f"/flow_runs/{SOME_ID}/input/paused-1-response"),  # a reviewer's answer is theirs
        ]
        assert [r.status_code for r in refused] == [403] * len(refused), [r.request.url for r in refused]

        # What a person may read carries no secret: deployments with their job variables, work
        # pools, runs with theirs, logs and events.
        secrets = _secret_values(live_stack.keys)
        readable = [
            api.post("/deployments/filter", json={}),
            api.post("/work_pools/filter", json={}),
            api.post("/flow_runs/filter", json={}),
            api.post("/logs/filter", json={"limit": 200}),
            api.post("/events/filter", json={"limit": 50}),
            api.get("/admin/settings"),  # the UI reads it: Prefect masks the auth string and database URL
        ]
        for response in readable:
            assert response.status_code == 200, (response.request.url, response.text[:300])
            assert not [s for s in secrets if s in response.text], response.request.url
        settings = readable[-1].json()["server"]
        assert settings["api"]["auth_string"] == settings["database"]["connection_url"] == "**********"
        deployments = readable[0].json()
        assert deployments and all(d["job_variables"] in ({}, None) for d in deployments)


def test_a_person_cannot_change_what_the_worker_runs(live_stack: LiveStack):
    with _as_person(live_stack) as api:
        deployment = api.get("/deployments/name/training/nightly").raise_for_status().json()
        pool = api.get(f"/work_pools/{deployment['work_pool_name']}").raise_for_status().json()
        writes = [
            api.post("/deployments/", json={"name": "evil", "flow_id": deployment["flow_id"]}),
            api.patch(f"/deployments/{deployment['id']}", json={"job_variables": {"command": "id"}}),
            api.delete(f"/deployments/{deployment['id']}"),
            api.post(f"/deployments/{deployment['id']}/schedules", json=[]),
            api.post("/work_pools/", json={"name": "evil", "type": "process"}),
            api.patch(f"/work_pools/{pool['name']}", json={"base_job_template": {}}),
            api.post("/block_documents/", json={"name": "evil"}),
            api.post("/block_types/", json={"name": "evil", "slug": "evil"}),
            api.post("/variables/", json={"name": "evil", "value": "x"}),
            api.patch("/variables/name/evil", json={"value": "y"}),
            api.post("/automations/", json={"name": "evil"}),
            api.post(f"/flow_runs/{SOME_ID}/set_state", json={"state": {"type": "COMPLETED"}}),
            api.post("/logs/", json=[]),
        ]
        assert [w.status_code for w in writes] == [403] * len(writes), [w.request.url for w in writes]
    # A custom run's job variables cannot reach the worker's subprocess: the pool's template has no
    # placeholder for them (Prefect substitutes job variables into that template only).
    template = pool["base_job_template"]
    assert template["variables"]["properties"] == {}
    assert "{{" not in json.dumps(template["job_configuration"])
    # The server itself wants its auth string, which the person does not hold.
    server = httpx.post(f"{live_stack.prefect_url}/deployments/filter", json={}, timeout=10)
    assert server.status_code == 401
    profile = live_stack.person(PERSON)
    user, password = profile["PREFECT_API_AUTH_STRING"].split(":", 1)
    direct = httpx.post(f"{live_stack.prefect_url}/deployments/filter", json={}, auth=(user, password), timeout=10)
    assert direct.status_code == 401
    wrong = httpx.post(f"{live_stack.people_url}/flows/filter", json={}, auth=(user, "wrong"), timeout=10)
    assert wrong.status_code == 401


def test_a_person_cannot_make_the_worker_run_a_project_they_wrote(live_stack: LiveStack):
    """A custom run naming a directory the person wrote (their params, their own key in reviewers/)
    fails before any work: the worker serves only the operator's project roots."""
    import tempfile

    from tests.conftest import reviewed_project
    from tests.stack.test_live_stack import SMALL, _api, _wait_state

    outside = Path(tempfile.mkdtemp(prefix="retrain-not-served-"))  # outside every served root
    project = reviewed_project(outside / "project", SMALL)
    with _as_person(live_stack) as person:  # a custom run, as the UI's form starts it
        deployment = person.get("/deployments/name/training/nightly").raise_for_status().json()
        parameters = {"request": {"project_dir": str(project), "triggered_by": PERSON, "reason": "mine"}}
        created = person.post(f"/deployments/{deployment['id']}/create_flow_run", json={"parameters": parameters})
        run_id = str(created.raise_for_status().json()["id"])
    with _api(live_stack) as api:
        run = _wait_state(api, run_id, {"FAILED", "CRASHED", "COMPLETED"})
    assert run["state"]["type"] == "FAILED", run["state"]
    assert "ProjectNotServed" in run["state"]["message"] and str(project) in run["state"]["message"], run["state"]
    assert not (project / "data" / "training_set.parquet").exists()  # nothing ran


def test_a_person_cannot_write_the_databases_with_sql(live_stack: LiveStack):
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from retrain.adapters.ledger import DECISIONS, TABLE

    url = live_stack.person(PERSON)["RETRAIN_LEDGER_URL"]
    engine = create_engine(url)
    try:
        with engine.connect() as connection:  # people read the ledger
            connection.execute(text(f"SELECT count(*) FROM {TABLE}"))
            connection.execute(text(f"SELECT count(*) FROM {DECISIONS}"))
        statements = [  # PostgreSQL checks the privilege even when no row would change
            f"INSERT INTO {TABLE} SELECT * FROM {TABLE} WHERE false",
            f"INSERT INTO {DECISIONS} SELECT * FROM {DECISIONS} WHERE false",
            f"DELETE FROM {DECISIONS} WHERE false",
            f"UPDATE {DECISIONS} SET id = id WHERE false",
            "CREATE TABLE mine (x int)",
            f"ALTER TABLE {TABLE} DISABLE TRIGGER ALL",
            f"DROP TABLE {TABLE}",
        ]
        for statement in statements:
            with engine.connect() as connection, pytest.raises(ProgrammingError, match=DENIED):
                connection.execute(text(statement))
    finally:
        engine.dispose()
    base = url.rsplit("/", 1)[0]
    host_port = base.split("@", 1)[1]
    for other in ("retrain_mlflow", "retrain_mlflow_auth", "retrain_prefect", "postgres"):
        refused = create_engine(f"{base}/{other}")
        with pytest.raises(OperationalError, match=r"permission denied|not permitted"):
            refused.connect().close()
        refused.dispose()
    for who in ("postgres", "retrain_worker", "mlflow_server", "prefect_server"):  # no trust, no guessing
        nobody = create_engine(f"postgresql+psycopg://{who}@{host_port}/retrain_ledger")
        with pytest.raises(OperationalError, match="password"):
            nobody.connect().close()
        nobody.dispose()


def test_a_person_cannot_write_delete_or_anonymously_read_the_bucket(live_stack: LiveStack):
    import boto3
    from botocore.exceptions import ClientError

    writer = boto3.client(
        "s3",
        endpoint_url=live_stack.s3_url,
        aws_access_key_id=live_stack.keys["s3_access_key"],
        aws_secret_access_key=live_stack.keys["s3_secret_key"],
        region_name="us-east-1",
    )
    writer.put_object(Bucket="retrain", Key="least-privilege/probe", Body=b"the worker's")
    s3 = live_stack.s3_url
    anonymous = [
        httpx.put(f"{s3}/retrain/x", content=b"mallory", timeout=10),
        httpx.get(f"{s3}/retrain/least-privilege/probe", timeout=10),
        httpx.get(f"{s3}/retrain", timeout=10),
        httpx.delete(f"{s3}/retrain/least-privilege/probe", timeout=10),
        httpx.post(f"{s3}/moto-api/reset-auth", content=b"inf", timeout=10),  # switching auth off
        httpx.post(f"{s3}/moto-api/reset", timeout=10),
    ]
    assert [r.status_code for r in anonymous] == [403] * len(anonymous)
    for key_id, secret in ((live_stack.keys["s3_access_key"], "guessed"), ("NO-SUCH-ACCESS-KEY-ID", "x")):
        guesser = boto3.client(
            "s3", endpoint_url=s3, aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="us-east-1"
        )
        with pytest.raises(ClientError, match=S3_REFUSED):
            guesser.put_object(Bucket="retrain", Key="x", Body=b"mallory")
        with pytest.raises(ClientError, match=S3_REFUSED):
            guesser.delete_object(Bucket="retrain", Key="least-privilege/probe")
    assert writer.get_object(Bucket="retrain", Key="least-privilege/probe")["Body"].read() == b"the worker's"


def test_a_person_cannot_move_an_mlflow_alias(live_stack: LiveStack, monkeypatch: pytest.MonkeyPatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    model = "retrain-least-privilege"
    live_stack.onboard_model(model)
    profile = live_stack.person(PERSON)
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(name, profile[name])
    person = MlflowClient(tracking_uri=profile["MLFLOW_TRACKING_URI"], registry_uri=profile["MLFLOW_TRACKING_URI"])
    assert person.get_registered_model(model).name == model  # READ
    with pytest.raises(MlflowException, match=r"403|PERMISSION_DENIED|Permission"):
        person.set_registered_model_alias(model, "champion", "1")
    with pytest.raises(MlflowException, match=r"403|PERMISSION_DENIED|Permission"):
        person.delete_registered_model_alias(model, "champion")
