"""The team stack, live: auth on, a training deployment run through the API the way the UI runs it,
paused at the reviewer gate, approved through the API, champion moved in the MLflow server, the
model's artifacts in the S3 bucket, and only the worker's account able to move an alias."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from retrain.cli.demo_run import write_demo_batches
from retrain.domain.approval import ApprovalSubject, sign_answer
from retrain.domain.settings import load_settings
from retrain.stack import load_profile, stack_config_at
from retrain.stack.state import runs_as_root, state_dirs
from tests.conftest import REVIEWER_KEYS, reviewed_project
from tests.stack.conftest import LiveStack

pytestmark = pytest.mark.stack

SMALL = {
    "demo": {"rows_per_day": 1500, "days": 8, "first_training_days": 5, "drift_day": None},
    "gate": {
        "guardrails": {"max_calibration_error": 0.25, "max_latency_single_ms": 60_000, "max_latency_batch_ms": 60_000}
    },
}


def _api(stack: LiveStack) -> httpx.Client:
    return httpx.Client(base_url=stack.prefect_url, auth=stack.prefect_auth, timeout=30)


def _wait_state(api: httpx.Client, run_id: str, wanted: set[str], timeout: float = 900) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run: dict[str, Any] = api.get(f"/flow_runs/{run_id}").raise_for_status().json()
        if run["state_type"] in wanted:
            return run
        assert run["state_type"] not in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}, run["state"]  # ended early
        time.sleep(1)
    raise AssertionError(f"flow run {run_id} never reached {wanted}")


def _mlflow_as(stack: LiveStack, username: str, password: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    return MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)


def signature_for(api: httpx.Client, run_id: str, decision: str, comment: str, reviewer: str = "demo-reviewer") -> str:
    """What `retrain sign` prints: the reviewer's signature over the subject the paused run published."""
    stored = api.get(f"/flow_runs/{run_id}/input/retrain-approval-subject").raise_for_status().json()
    subject = ApprovalSubject.from_json(stored if isinstance(stored, str) else json.dumps(stored))
    assert subject.flow_run_id == run_id
    return sign_answer(REVIEWER_KEYS[reviewer], subject, reviewer, decision, comment)


def _project(stack: LiveStack, tmp_path: Path, model_name: str) -> Path:
    workspace = reviewed_project(tmp_path / "project", {**SMALL, **stack.onboard_model(model_name)})
    settings = load_settings(workspace / "params.yaml")
    write_demo_batches(workspace / settings.dataset.batches, settings, 5)
    return workspace


def start_training(stack: LiveStack, project: Path, triggered_by: str) -> str:
    """Run the training deployment with custom parameters, as the UI's 'Custom run' form does."""
    with _api(stack) as api:
        deployment = api.get("/deployments/name/training/nightly").raise_for_status().json()
        parameters = {"request": {"project_dir": str(project), "triggered_by": triggered_by, "reason": "stack test"}}
        run = api.post(f"/deployments/{deployment['id']}/create_flow_run", json={"parameters": parameters})
        return str(run.raise_for_status().json()["id"])


def test_stack_is_healthy_fast_idempotent_and_keeps_its_secrets(live_stack: LiveStack):
    assert live_stack.startup_seconds < 180  # the target is 90 s on a fresh machine; measured, not asserted
    status = live_stack.retrain("stack", "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    services = {item["name"]: item for item in json.loads(status.stdout)}
    assert set(services) == {"postgres", "s3", "mlflow", "prefect-server", "prefect-proxy", "prefect-worker"}
    assert all(item["healthy"] and item["pid"] for item in services.values())

    again = live_stack.retrain("stack", "up")
    assert again.returncode == 0, again.stderr
    after = {item["name"]: item["pid"] for item in json.loads(live_stack.retrain("stack", "status", "--json").stdout)}
    assert after == {name: item["pid"] for name, item in services.items()}  # up twice starts nothing new

    private = ["secrets.json", "stack.env", "people/demo-reviewer.env", "mlflow/basic_auth.ini", "nginx/nginx.conf"]
    private += ["ports.json", "nginx/people.map", "prefect-server/logging.yml", "cluster-secrets.sha256"]
    private += [f"{kind}/{name}.{kind[:3]}" for kind in ("logs", "pids") for name in services]
    for name in private:
        assert stat.S_IMODE(os.stat(live_stack.home / name).st_mode) == 0o600, name
    assert stat.S_IMODE(os.stat(live_stack.home / "postgres").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(live_stack.home / "postgres" / "data").st_mode) == 0o700  # initdb's
    config = stack_config_at(live_stack.home.parent)
    modes = {path: stat.S_IMODE(path.stat().st_mode) for path in state_dirs(config, runs_as_root())}
    assert modes == state_dirs(config, runs_as_root())  # 0700; as root, the state dir and nginx/ 0711
    # The S3 access key id is an identifier that request logs show, like a user name; its secret is not.
    nested = ("mlflow_people", "postgres", "s3_access_key")
    secrets = [str(v) for k, v in live_stack.keys.items() if k not in nested]
    secrets += [str(v) for v in live_stack.keys["mlflow_people"].values()]
    secrets += [str(v) for v in live_stack.keys["postgres"].values()]
    for log in (live_stack.home / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        assert not [s for s in secrets if s.split(":")[-1] in text], f"a secret is in {log.name}"


def test_unauthenticated_requests_are_refused(live_stack: LiveStack):
    refused = httpx.post(f"{live_stack.prefect_url}/flows/filter", json={}, timeout=10)
    assert refused.status_code == 401
    wrong = httpx.post(f"{live_stack.prefect_url}/flows/filter", json={}, auth=("admin", "wrong"), timeout=10)
    assert wrong.status_code == 401
    mlflow = httpx.get(f"{live_stack.mlflow_url}/api/2.0/mlflow/experiments/search?max_results=1", timeout=10)
    assert mlflow.status_code == 401
    # A shell with the profile but no MLflow account is told so, never shown "no champion".
    status = live_stack.retrain("status", env=load_profile(stack_config_at(live_stack.home.parent)))
    assert status.returncode == 1 and "refused: UNAUTHENTICATED" in status.stderr, status.stdout + status.stderr


def test_mlflow_s_credential_cache_never_takes_a_wrong_password_for_a_known_user(live_stack: LiveStack):
    """The server caches passwords that verified (retrain.stack.provisioning): a wrong one between two
    right ones, for the same user, is still refused."""
    url = f"{live_stack.mlflow_url}/api/2.0/mlflow/experiments/search?max_results=1"
    name = "demo-reviewer"
    password = str(live_stack.keys["mlflow_people"][name])
    answers = [
        httpx.get(url, auth=(name, attempt), timeout=10).status_code
        for attempt in (password, password + "x", password[:-1], password)
    ]
    assert answers == [200, 401, 401, 200]


def test_training_deployment_pauses_for_review_and_approval_promotes_in_the_mlflow_server(
    live_stack: LiveStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import boto3

    project = _project(live_stack, tmp_path, "retrain-loans-api")
    run_id = start_training(live_stack, project, triggered_by="ada")
    with _api(live_stack) as api:
        paused = _wait_state(api, run_id, {"PAUSED"})
        keyset = paused["state"]["state_details"]["run_input_keyset"]
        schema = api.get(f"/flow_runs/{run_id}/input/{keyset['schema']}").raise_for_status().json()
        assert set(schema["properties"]) == {"decision", "reviewer", "comment", "signature"}
        report = api.post(
            "/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [run_id]}, "key": {"any_": ["gate-report"]}}},
        ).raise_for_status()
        assert "AWAITING REVIEW" in report.json()[0]["data"]

        assert "approval_secret" not in live_stack.keys  # nothing shared can make an approval
        signature = signature_for(api, run_id, "approve", "live stack")
        answer = {"decision": "approve", "reviewer": "demo-reviewer", "comment": "live stack", "signature": signature}
        resumed = api.post(f"/flow_runs/{run_id}/resume", json={"run_input": answer}).raise_for_status().json()
        assert resumed["status"] == "ACCEPT"
        _wait_state(api, run_id, {"COMPLETED"})
        blocks = api.post("/block_documents/filter", json={}).raise_for_status().json()
        assert not [block["name"] for block in blocks if "approval" in str(block["name"])]  # no secret block

    person = _mlflow_as(live_stack, "demo-reviewer", live_stack.keys["mlflow_people"]["demo-reviewer"], monkeypatch)
    champion = person.get_model_version_by_alias("retrain-loans-api", "champion")
    assert champion.tags["retrain.gate.decision"] == "promoted"
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match=r"403|Permission"):
        person.set_registered_model_alias("retrain-loans-api", "champion", champion.version)  # READ only

    s3 = boto3.client(
        "s3",
        endpoint_url=live_stack.s3_url,
        aws_access_key_id=live_stack.keys["s3_access_key"],
        aws_secret_access_key=live_stack.keys["s3_secret_key"],
        region_name="us-east-1",
    )
    stored = [item["Key"] for item in s3.list_objects_v2(Bucket="retrain").get("Contents", [])]
    model_id = champion.source.removeprefix("models:/")
    assert any(key.endswith(f"{model_id}/artifacts/model.ubj") for key in stored)
    assert any(key.startswith("dvc/files/md5/") for key in stored)  # the DVC remote is the same bucket
    # Encrypted at rest: the artifacts by the MLflow server that proxies them, the DVC remote by the worker.
    written = [key for key in stored if key.startswith(("mlflow/", "dvc/"))]
    encryption = {key: s3.head_object(Bucket="retrain", Key=key).get("ServerSideEncryption") for key in written}
    assert {key: algorithm for key, algorithm in encryption.items() if algorithm != "AES256"} == {}


def _flow_run_process(run_id: str) -> int:
    """The pid of the process the worker started for ``run_id`` (its environment names the run)."""
    needle = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and needle in (proc / "environ").read_bytes().split(b"\0"):
                return int(proc.name)
        except OSError:
            continue
    raise AssertionError(f"no process runs flow run {run_id}")


def test_a_training_run_killed_mid_run_is_told_to_the_team_by_the_prefect_server(live_stack: LiveStack, tmp_path: Path):
    """The flow's process SIGKILLed: the worker marks the run Crashed, and the automation `stack up`
    installed tells the team's webhook once, with a link people can open (the worker's on_crashed
    hook sees the automation's tag on the run and leaves the webhook to the server, which would tell
    even if the worker itself had died)."""
    import signal

    project = _project(live_stack, tmp_path, "retrain-loans-killed")
    run_id = start_training(live_stack, project, triggered_by="ada")
    with _api(live_stack) as api:
        _wait_state(api, run_id, {"PAUSED"})
        os.kill(_flow_run_process(run_id), signal.SIGKILL)
        deadline = time.monotonic() + 120
        while api.get(f"/flow_runs/{run_id}").raise_for_status().json()["state_type"] != "CRASHED":
            assert time.monotonic() < deadline, "the killed run was never marked crashed"
            time.sleep(1)

    def failures() -> list[dict[str, Any]]:
        return [m for m in live_stack.told if m.get("retrain", {}).get("kind") == "run_failed" and run_id in m["text"]]

    deadline = time.monotonic() + 90
    while not failures() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(2)  # room for a second message, which must not come
    told = failures()
    assert [message["retrain"].get("sender") for message in told] == ["prefect-automation"], live_stack.told
    assert "crashed" in told[0]["text"].lower()
    assert f"{live_stack.people_url.removesuffix('/api')}/runs/flow-run/{run_id}" in told[0]["text"]
    everything = json.dumps(live_stack.told)
    assert (
        live_stack.keys["prefect_auth"] not in everything
        and live_stack.keys["mlflow_service_password"] not in everything
    )
