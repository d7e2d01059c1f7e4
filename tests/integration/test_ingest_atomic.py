"""`retrain ingest` is all or nothing: with the DVC remote (S3 through moto) unreachable, or the
process killed mid-push, nothing stays behind, and the retry with the remote back stores and logs."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pandas as pd
import pytest
from typer.testing import CliRunner

from retrain.adapters.workspace import create_workspace
from retrain.cli import app
from tests.conftest import REPO_ROOT
from tests.integration.test_bad_input import _clean

pytestmark = [pytest.mark.integration, pytest.mark.faults]

BUCKET = "retrain-data"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto S3 server on a free loopback port with the DVC bucket; fake credentials."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def project(tmp_path: Path, services: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RETRAIN_DVC_REMOTE", f"s3://{BUCKET}/dvc")
    return create_workspace(REPO_ROOT, tmp_path / "project")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _fingerprint(project: Path) -> dict[str, str]:
    """Every stored byte an ingest may touch: data/, the .dvc pointers and the DVC cache objects."""
    paths = [p for p in (project / "data").rglob("*") if p.is_file()]
    paths += [p for p in project.glob("**/*.dvc") if p.is_file()]
    paths += [p for p in (project / ".dvc" / "cache").rglob("*") if p.is_file()]
    return {
        p.relative_to(project).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in paths
        if ".venv" not in p.parts
    }


def _batch(tmp_path: Path) -> Path:
    frame = _clean(500)
    frame.loc[frame.index[:4], "credit_score"] = 9_999  # four rows for the quarantine
    path = tmp_path / "loans-2026-01-03.csv"
    frame.to_csv(path, index=False)
    return path


def _assert_stored_and_logged(project: Path, endpoint: str) -> None:
    assert len(pd.read_parquet(project / "data" / "batches" / "loans-2026-01-03.parquet")) == 496
    assert len(pd.read_parquet(project / "data" / "quarantine" / "loans-2026-01-03.parquet")) == 4
    log = [json.loads(line) for line in (project / "data" / "batch_log.jsonl").read_text().splitlines()]
    assert [(e["batch"], e["status"]) for e in log] == [("loans-2026-01-03.parquet", "ingested")]
    keys = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=BUCKET).get("Contents", [])
    assert keys, "nothing was pushed"
    assert not (project / "data" / ".ingest-journal.json").exists()


def test_an_unreachable_remote_leaves_nothing_and_the_retry_stores_and_logs(
    project: Path, tmp_path: Path, s3: str, monkeypatch: pytest.MonkeyPatch
):
    path = _batch(tmp_path)
    runner = CliRunner()
    from retrain.adapters import datastore

    monkeypatch.setenv("RETRAIN_S3_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    # Every attempt still goes to the dead port; only the waits between them are cut (botocore's own
    # retries with backoff, and ours): what is judged is what the failure leaves, not how long it takes.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setattr(datastore, "backoff_seconds", lambda attempt: 0.0)
    before = _fingerprint(project)
    failed = runner.invoke(app, ["ingest", str(path), "--project", str(project)])
    assert failed.exit_code == 1, failed.output
    assert "push failed after 4 attempts" in failed.output
    assert _fingerprint(project) == before  # no batch, no quarantine, no pointer, no cache object, no log

    monkeypatch.delenv("AWS_MAX_ATTEMPTS")
    monkeypatch.setenv("RETRAIN_S3_ENDPOINT_URL", s3)
    retried = runner.invoke(app, ["ingest", str(path), "--project", str(project)])
    assert retried.exit_code == 0, retried.output
    assert "stored under DVC (ingested)" in retried.output
    _assert_stored_and_logged(project, s3)
    again = runner.invoke(app, ["ingest", str(path), "--project", str(project)])
    assert again.exit_code == 0 and "already ingested" in again.output


def test_an_ingest_killed_mid_push_is_undone_by_the_next_one_which_stores_and_logs(
    project: Path, tmp_path: Path, s3: str
):
    path = _batch(tmp_path)
    env = {**os.environ, "RETRAIN_S3_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}"}
    before = _fingerprint(project)
    process = subprocess.Popen(
        [sys.executable, "-m", "retrain.cli", "ingest", str(path), "--project", str(project)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        # Killed once DVC tracked the batch (its pointer exists), while the push waits on the dead remote.
        while not (project / "data" / "batches.dvc").exists():
            assert process.poll() is None, "the ingest ended before it was killed"
            assert time.monotonic() < deadline, "the ingest never reached the push"
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    assert _fingerprint(project) != before  # the crash left a half-done ingest behind

    result = CliRunner().invoke(
        app, ["ingest", str(path), "--project", str(project)], env={"RETRAIN_S3_ENDPOINT_URL": s3}
    )
    assert result.exit_code == 0, result.output
    assert "stored under DVC (ingested)" in result.output
    _assert_stored_and_logged(project, s3)
