"""S3 through a moto server on 127.0.0.1 that DVC, MLflow and boto3 all reach.

Encryption at rest is read back from the objects themselves (``head_object``): moto records the
server-side encryption each upload asked for and reports none for an upload that asked for none.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml

from flows.training import TrainingRequest, training
from retrain.adapters import datastore
from retrain.adapters.environment import resolve_runtime
from retrain.adapters.registry import S3_UPLOAD_ARGS, ModelRegistry
from retrain.application.data import prepare_data_repo
from retrain.cli.demo_run import write_demo_batches
from retrain.domain.settings import load_settings
from tests.conftest import reviewed_project
from tests.integration.conftest import SMALL_DATA, reviewed, workspace_settings

pytestmark = pytest.mark.integration
STAGE = "training_set"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port; credentials are fake and come from the environment."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint)
        for bucket in ("retrain-data", "retrain-artifacts"):
            s3.create_bucket(Bucket=bucket)
        yield endpoint
    server.stop()


def _keys(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    listing = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for item in listing.get("Contents", [])]


def encryption_at_rest(endpoint: str, bucket: str, prefix: str) -> dict[str, tuple[str | None, str | None]]:
    """Every object under ``prefix``: (its ``ServerSideEncryption``, its ``SSEKMSKeyId``), as S3 reports them."""
    s3 = boto3.client("s3", endpoint_url=endpoint)
    found = {}
    for key in _keys(endpoint, bucket, prefix):
        head = s3.head_object(Bucket=bucket, Key=key)
        found[key] = (head.get("ServerSideEncryption"), head.get("SSEKMSKeyId"))
    return found


@pytest.fixture
def mlflow_upload_args_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry sets ``MLFLOW_S3_UPLOAD_EXTRA_ARGS`` in this process: unset again after the test
    (blank counts as unset, for MLflow and for the registry alike)."""
    monkeypatch.setenv(S3_UPLOAD_ARGS, "")


@pytest.fixture
def repo(tmp_path: Path, s3_endpoint: str) -> Path:
    project = reviewed_project(tmp_path / "project")
    (project / "data" / "batches").mkdir(parents=True)
    (project / "data" / "batches" / "a.csv").write_text("a\n1\n")
    (project / "data" / "training").mkdir(parents=True)
    (project / "data" / "training" / "loans.parquet").write_bytes(b"snapshot bytes on s3")
    return project


def test_dvc_push_and_pull_through_s3(repo: Path, s3_endpoint: str):
    datastore.configure_remote(repo, "s3://retrain-data/dvc", endpoint_url=s3_endpoint)
    assert "secret" not in (repo / ".dvc" / "config.local").read_text().lower()  # credentials never in config
    md5 = datastore.commit_stage(repo, STAGE)["data/training/loans.parquet"]
    assert datastore.push(repo, STAGE) == 1
    assert f"dvc/files/md5/{md5[:2]}/{md5[2:]}" in _keys(s3_endpoint, "retrain-data")

    (repo / "data" / "training" / "loans.parquet").unlink()
    target = repo / "restored.parquet"
    import shutil

    shutil.rmtree(repo / ".dvc" / "cache")
    assert datastore.restore_by_md5(repo, md5, target) == "remote"
    assert target.read_bytes() == b"snapshot bytes on s3"


def test_a_purge_deletes_objects_from_the_s3_remote_by_md5_and_only_those(repo: Path, s3_endpoint: str):
    datastore.configure_remote(repo, "s3://retrain-data/purge", endpoint_url=s3_endpoint)
    (repo / "data" / "batches" / "b.csv").write_text("a\n2\n")
    datastore.track(repo, "data/batches")
    datastore.push(repo, "data/batches")
    listed = datastore.tracked_files(repo, "data/batches") or {}
    gone, stays = listed["a.csv"], listed["b.csv"]
    assert datastore.stored_objects(repo, [gone, stays]) == {gone, stays}

    manifest = yaml.safe_load((repo / "data" / "batches.dvc").read_text())["outs"][0]["md5"]
    assert datastore.remove_objects(repo, [gone]) == {gone: ["cache", "remote"], manifest: ["cache", "remote"]}
    keys = _keys(s3_endpoint, "retrain-data", "purge/")
    assert f"purge/files/md5/{gone[:2]}/{gone[2:]}" not in keys and f"purge/files/md5/{stays[:2]}/{stays[2:]}" in keys
    assert datastore.stored_objects(repo, [gone, stays]) == {stays}
    assert datastore.remove_objects(repo, [gone]) == {gone: []}  # again: nothing left to delete

    # the same content again (a batch re-ingested once retention was relaxed): DVC's remote index must
    # not remember the deleted object, or the push skips it and the remote stays without it
    datastore.track(repo, "data/batches")
    datastore.push(repo, "data/batches")
    assert f"purge/files/md5/{gone[:2]}/{gone[2:]}" in _keys(s3_endpoint, "retrain-data", "purge/")


def test_a_purge_can_tell_a_versioned_bucket_where_a_delete_only_hides_the_object(s3_endpoint: str):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="retrain-versioned")
    assert datastore.remote_versioning("s3://retrain-versioned/dvc", s3_endpoint) is None
    s3.put_bucket_versioning(Bucket="retrain-versioned", VersioningConfiguration={"Status": "Enabled"})
    assert datastore.remote_versioning("s3://retrain-versioned/dvc", s3_endpoint) == "Enabled"
    assert datastore.remote_versioning("/a/local/remote") is None


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow  # half a minute of S3 client retries against a closed port: make test-all
def test_s3_outage_mid_push_is_a_clear_error_and_the_push_resumes(repo: Path, s3_endpoint: str):
    md5 = datastore.commit_stage(repo, STAGE)["data/training/loans.parquet"]
    datastore.configure_remote(repo, "s3://retrain-data/outage", endpoint_url=f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(datastore.DataStoreError, match=r"failed after 2 attempts.*cache is intact"):
        datastore.push(repo, STAGE, retries=1)
    assert (repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).is_file()

    datastore.configure_remote(repo, "s3://retrain-data/outage", endpoint_url=s3_endpoint)  # S3 is back
    assert datastore.push(repo, STAGE) == 1
    assert f"outage/files/md5/{md5[:2]}/{md5[2:]}" in _keys(s3_endpoint, "retrain-data")


def test_the_check_tells_an_unencrypted_object_from_an_encrypted_one(s3_endpoint: str):
    """moto encrypts nothing by default, so an object reads back encrypted only if its upload asked."""
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.put_object(Bucket="retrain-data", Key="control/plain", Body=b"x")
    s3.put_object(Bucket="retrain-data", Key="control/sse", Body=b"x", ServerSideEncryption="AES256")
    assert encryption_at_rest(s3_endpoint, "retrain-data", "control/") == {
        "control/plain": (None, None),
        "control/sse": ("AES256", None),
    }


@pytest.fixture
def kms_key(s3_endpoint: str) -> str:
    """A key of moto's KMS in the same server (S3 takes any key id; this one exists, as on AWS)."""
    return str(boto3.client("kms", endpoint_url=s3_endpoint).create_key()["KeyMetadata"]["Arn"])


@pytest.mark.usefixtures("mlflow_upload_args_restored")
@pytest.mark.parametrize("kms", [False, True], ids=["sse-s3", "sse-kms"])
def test_dvc_pushes_and_mlflow_artifacts_are_encrypted_at_rest(
    repo: Path,
    s3_endpoint: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    kms: bool,
):
    """From the environment a worker has (RETRAIN_S3_KMS_KEY_ID or not) to the objects on S3: every
    object of a real DVC push and of a real MLflow artifact upload is encrypted, SSE-S3 by default."""
    key = request.getfixturevalue("kms_key") if kms else None
    prefix = "kms" if kms else "sse"
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_endpoint)
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "RETRAIN_MLFLOW_ARTIFACTS": f"s3://retrain-artifacts/{prefix}",
        "RETRAIN_DVC_REMOTE": f"s3://retrain-data/{prefix}",
        "RETRAIN_S3_ENDPOINT_URL": s3_endpoint,
        "RETRAIN_HOME": str(tmp_path / "state"),
        **({"RETRAIN_S3_KMS_KEY_ID": key} if key else {}),
    }
    runtime = resolve_runtime(env, project_dir=repo)

    prepare_data_repo(repo, runtime.dvc_remote_url, runtime.dvc_remote_endpoint, runtime.s3_encryption)
    datastore.commit_stage(repo, STAGE)
    assert datastore.push(repo, STAGE) == 1
    registry = ModelRegistry.for_project(runtime, load_settings(repo / "params.yaml"))
    registry.log_monitoring_run(
        run_name="encrypted",
        metrics={"rows": 1.0},
        tags={},
        figures={},
        documents={"evidence.json": {"rows": 1}},
        texts={"note.md": "encrypted at rest"},
    )

    expected = ("aws:kms", key) if key else ("AES256", None)
    pushed = encryption_at_rest(s3_endpoint, "retrain-data", f"{prefix}/")
    artifacts = encryption_at_rest(s3_endpoint, "retrain-artifacts", f"{prefix}/")
    assert len(pushed) == 1 and len(artifacts) == 2, (pushed, artifacts)
    assert {name: found for name, found in {**pushed, **artifacts}.items() if found != expected} == {}


@pytest.mark.slow  # a whole training on S3: make test-all (make test pushes and uploads to moto above)
@pytest.mark.usefixtures("prefect_api", "mlflow_upload_args_restored")
def test_training_flow_with_dvc_remote_and_mlflow_artifacts_on_s3(
    tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("RETRAIN_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("RETRAIN_MLFLOW_ARTIFACTS", "s3://retrain-artifacts/mlflow")
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("RETRAIN_DVC_REMOTE", "s3://retrain-data/flow")
    monkeypatch.setenv("RETRAIN_S3_ENDPOINT_URL", s3_endpoint)
    project = reviewed_project(tmp_path / "project", SMALL_DATA)
    settings = workspace_settings(project)
    write_demo_batches(project / settings.dataset.batches, settings, 5)

    result = reviewed(lambda: training(TrainingRequest(project_dir=str(project), triggered_by="pytest")))

    assert result.outcome.promoted
    md5 = result.snapshot.md5
    assert f"flow/files/md5/{md5[:2]}/{md5[2:]}" in _keys(s3_endpoint, "retrain-data")
    artifacts = _keys(s3_endpoint, "retrain-artifacts")
    assert any(key.endswith("/model.ubj") for key in artifacts)
    assert any(key.endswith("plots/roc.png") for key in artifacts)
    assert not any(key.endswith((".pkl", ".pickle")) for key in artifacts)
    # Everything the flow wrote is encrypted at rest: the snapshot, the quarantine, the model, its plots.
    written = {
        **encryption_at_rest(s3_endpoint, "retrain-data", "flow/"),
        **encryption_at_rest(s3_endpoint, "retrain-artifacts", "mlflow/"),
    }
    assert [key for key, (algorithm, _) in written.items() if algorithm != "AES256"] == []
