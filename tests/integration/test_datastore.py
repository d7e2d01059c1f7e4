"""The DVC adapter on a real DVC repo inside a tmp git repo, with a local remote."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from retrain.adapters import datastore
from retrain.adapters.workspace import create_workspace
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration
STAGE = "training_set"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    project = create_workspace(REPO_ROOT, tmp_path / "project")
    (project / "data" / "batches").mkdir(parents=True)
    (project / "data" / "batches" / "loans-2026-01-01.csv").write_text("a,b\n1,2\n")
    _write_snapshot(project, b"first snapshot")
    datastore.configure_remote(project, str(tmp_path / "remote"))
    return project


def _write_snapshot(project: Path, content: bytes) -> Path:
    path = project / "data" / "training" / "loans.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_repo_has_telemetry_and_update_checks_off(repo: Path):
    config = (repo / ".dvc" / "config").read_text()
    assert "analytics = False" in config and "check_update = False" in config
    assert "remote" not in config  # the remote is machine-local, never committed
    assert "retrain" in (repo / ".dvc" / "config.local").read_text()


def test_commit_records_md5_in_lock_and_push_fills_remote(repo: Path, tmp_path: Path):
    md5s = datastore.commit_stage(repo, STAGE)
    expected = hashlib.md5(b"first snapshot").hexdigest()
    assert md5s == {"data/training/loans.parquet": expected}
    assert expected in (repo / "dvc.lock").read_text()
    assert datastore.push(repo, STAGE) == 1
    assert (tmp_path / "remote" / "files" / "md5" / expected[:2] / expected[2:]).read_bytes() == b"first snapshot"

    assert datastore.commit_stage(repo, STAGE) == md5s  # idempotent
    assert datastore.push(repo, STAGE) == 0

    _write_snapshot(repo, b"second snapshot")
    assert datastore.commit_stage(repo, STAGE)["data/training/loans.parquet"] != expected


def test_pull_restores_identical_bytes_from_the_remote(repo: Path):
    datastore.commit_stage(repo, STAGE)
    datastore.push(repo, STAGE)
    snapshot = repo / "data" / "training" / "loans.parquet"
    snapshot.unlink()
    shutil.rmtree(repo / ".dvc" / "cache")
    datastore.pull(repo, STAGE)
    assert snapshot.read_bytes() == b"first snapshot"


def test_unreachable_remote_fails_clearly_and_keeps_the_cache(repo: Path, tmp_path: Path):
    md5 = datastore.commit_stage(repo, STAGE)["data/training/loans.parquet"]
    remote = tmp_path / "flaky-remote"
    datastore.configure_remote(repo, str(remote))
    remote.rmdir()
    remote.write_text("the remote went away: a file where its directory was")
    with pytest.raises(datastore.DataStoreError, match="local DVC cache is intact"):
        datastore.push(repo, STAGE, retries=1)
    assert (repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).is_file()


def test_unusable_remote_location_is_a_clear_error(repo: Path, tmp_path: Path):
    blocked = tmp_path / "blocked"
    blocked.write_text("")
    with pytest.raises(datastore.DataStoreError, match="cannot create the DVC remote"):
        datastore.configure_remote(repo, str(blocked / "remote"))


def test_non_git_directory_is_refused(tmp_path: Path):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(datastore.DataStoreError, match="not a git repository"):
        datastore.ensure_dvc_repo(plain)


def test_missing_lock_is_reported(repo: Path):
    with pytest.raises(datastore.DataStoreError, match="never committed"):
        datastore.output_md5(repo, STAGE)
