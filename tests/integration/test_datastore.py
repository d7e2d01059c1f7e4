"""The DVC adapter against real DVC: a tmp git repo holding the project's dvc.yaml, a local remote.

No mocks: every test runs DVC's Python API on files in ``tmp_path``. The params are the smallest
ones the templated stage needs (the whole ``dataset`` and ``contract`` sections are stage params).
"""

from __future__ import annotations

import copy
import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from retrain.adapters import datastore
from retrain.domain.encryption import S3Encryption
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration
STAGE = "training_set"
SNAPSHOT = "data/training/loans.parquet"
SMALL_PARAMS = {
    "dataset": {"batches": "data/batches", "training_set": SNAPSHOT},
    "contract": {"name": "loans", "version": 2},
}


def _lookup(tree: dict[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        node = node[part]
    return node


def _stage_params() -> dict[str, Any]:
    """The small params above, plus every other key the stage lists (values from the real params.yaml).

    dvc.yaml is copied from the project and evolves; DVC refuses to commit a stage whose params are
    missing, so the test takes the list from the stage instead of repeating it.
    """
    stage = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"][STAGE]
    project = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    params: dict[str, Any] = copy.deepcopy(SMALL_PARAMS)
    for dotted in stage.get("params", []):
        *parents, leaf = str(dotted).split(".")
        node: dict[str, Any] = params
        for part in parents:
            node = node.setdefault(part, {})
        if leaf not in node:
            node[leaf] = _lookup(project, str(dotted))
    return params


PARAMS = _stage_params()


def _git(project: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, text=True)


def _write_snapshot(project: Path, rows: int) -> bytes:
    """A real Parquet file; ``rows`` makes its content (and so its md5) differ."""
    path = project / SNAPSHOT
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"loan_id": range(rows), "defaulted": [i % 2 for i in range(rows)]}).to_parquet(path, index=False)
    return path.read_bytes()


def _md5(content: bytes) -> str:
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


def _in_store(store: Path, md5: str) -> Path:
    return store / "files" / "md5" / md5[:2] / md5[2:]  # DVC 3 layout, same for cache and remote


@pytest.fixture(autouse=True)
def _no_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git repo with dvc.yaml, params, a batch, the contract and a snapshot; not yet a DVC repo."""
    root = tmp_path / "project"
    root.mkdir()
    _git(root, "init", "-q")
    _git(root, "config", "user.name", "retrain-tests")
    _git(root, "config", "user.email", "tests@localhost")
    shutil.copy(REPO_ROOT / "dvc.yaml", root / "dvc.yaml")
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS), encoding="utf-8")
    (root / "data" / "batches").mkdir(parents=True)
    (root / "data" / "batches" / "loans-2026-01-01.csv").write_text("loan_id,defaulted\n1,0\n2,1\n")
    (root / "data_contracts" / "loans").mkdir(parents=True)
    (root / "data_contracts" / "loans" / "v2.json").write_text('{"expectations": []}')
    _write_snapshot(root, rows=10)
    return root


@pytest.fixture
def repo(project: Path, tmp_path: Path) -> Path:
    """The project as a DVC repo whose default remote is a local directory."""
    datastore.ensure_dvc_repo(project)
    datastore.configure_remote(project, str(tmp_path / "remote"))
    return project


def test_init_turns_telemetry_off_and_keeps_the_remote_local(repo: Path, tmp_path: Path):
    from dvc.repo import Repo

    datastore.ensure_dvc_repo(repo)  # idempotent on an existing DVC repo
    with Repo(str(repo)) as dvc_repo:
        committed = dvc_repo.config.load_one("repo")
        local = dvc_repo.config.load_one("local")
    assert committed["core"] == {"analytics": "False", "check_update": "False"}
    assert not committed["remote"] and "remote" not in (repo / ".dvc" / "config").read_text()  # machine-local
    assert local["core"]["remote"] == "retrain"
    assert local["remote"]["retrain"]["url"] == str(tmp_path / "remote")
    assert "/config.local" in (repo / ".dvc" / ".gitignore").read_text()  # DVC keeps it out of git


def test_commit_records_plain_md5s_and_push_fills_the_remote(repo: Path, tmp_path: Path):
    content = (repo / SNAPSHOT).read_bytes()
    md5s = datastore.commit_stage(repo, STAGE)

    assert md5s == {SNAPSHOT: _md5(content)}  # a single file's DVC md5 is the md5 of its bytes
    assert datastore.output_md5(repo, STAGE) == md5s
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"][STAGE]
    contract_dep = next(dep for dep in lock["deps"] if dep["path"] == "data_contracts/loans/v2.json")
    assert contract_dep["md5"] == _md5(b'{"expectations": []}')
    recorded = lock["params"]["params.yaml"]  # keyed by section or by dotted key, as the stage lists them
    for dotted in ("dataset.batches", "dataset.training_set", "contract.name", "contract.version"):
        value = recorded[dotted] if dotted in recorded else _lookup(recorded, dotted)
        assert value == _lookup(SMALL_PARAMS, dotted)
    assert "/loans.parquet" in (repo / "data" / "training" / ".gitignore").read_text()
    assert _in_store(repo / ".dvc" / "cache", md5s[SNAPSHOT]).read_bytes() == content

    assert datastore.push(repo, STAGE) == 1
    assert _in_store(tmp_path / "remote", md5s[SNAPSHOT]).read_bytes() == content


def test_recommitting_unchanged_data_is_idempotent_and_pushes_nothing(repo: Path):
    first = datastore.commit_stage(repo, STAGE)
    assert datastore.push(repo, STAGE) == 1
    lock = (repo / "dvc.lock").read_text()

    assert datastore.commit_stage(repo, STAGE) == first
    assert (repo / "dvc.lock").read_text() == lock
    assert datastore.push(repo, STAGE) == 0


def test_a_changed_snapshot_gets_a_new_md5(repo: Path, tmp_path: Path):
    first = datastore.commit_stage(repo, STAGE)[SNAPSHOT]
    datastore.push(repo, STAGE)
    content = _write_snapshot(repo, rows=11)

    second = datastore.commit_stage(repo, STAGE)[SNAPSHOT]
    assert second == _md5(content) != first
    assert datastore.push(repo, STAGE) == 1
    assert _in_store(tmp_path / "remote", first).is_file()  # older snapshots stay restorable


def test_pull_restores_identical_bytes_from_the_remote(repo: Path):
    content = (repo / SNAPSHOT).read_bytes()
    datastore.commit_stage(repo, STAGE)
    datastore.push(repo, STAGE)
    (repo / SNAPSHOT).unlink()
    shutil.rmtree(repo / ".dvc" / "cache")

    datastore.pull(repo, STAGE)
    assert (repo / SNAPSHOT).read_bytes() == content


def test_pull_of_data_the_remote_never_got_fails_at_once(repo: Path):
    datastore.commit_stage(repo, STAGE)
    (repo / SNAPSHOT).unlink()
    shutil.rmtree(repo / ".dvc" / "cache")
    missing = rf"restore {re.escape(SNAPSHOT)}.*neither the local cache nor the remote"
    with pytest.raises(datastore.DataMissingError, match=missing):
        datastore.pull(repo, STAGE)


def test_push_refuses_to_report_success_when_the_cache_lost_the_data(repo: Path):
    datastore.commit_stage(repo, STAGE)
    shutil.rmtree(repo / ".dvc" / "cache")  # DVC itself would push nothing and return 0
    with pytest.raises(datastore.DataMissingError, match=re.escape(SNAPSHOT)):
        datastore.push(repo, STAGE)


def test_unreachable_remote_is_retried_then_fails_clearly_keeping_the_cache(repo: Path, tmp_path: Path):
    md5 = datastore.commit_stage(repo, STAGE)[SNAPSHOT]
    remote = tmp_path / "flaky-remote"
    datastore.configure_remote(repo, str(remote))
    remote.rmdir()
    remote.write_text("the remote went away: a file where its directory was")
    with pytest.raises(datastore.DataStoreError, match=r"failed after 2 attempts.*local DVC cache is intact") as info:
        datastore.push(repo, STAGE, retries=1)
    assert type(info.value) is datastore.DataStoreError  # transient: the caller may retry later
    assert _in_store(repo / ".dvc" / "cache", md5).is_file()


def test_project_mistakes_are_permanent_errors(repo: Path):
    with pytest.raises(datastore.DataStoreConfigError, match="'nope' does not exist"):
        datastore.push(repo, "nope")  # no retries (they would take seconds): it cannot heal
    (repo / SNAPSHOT).unlink()
    with pytest.raises(datastore.DataStoreConfigError, match="does not exist"):
        datastore.commit_stage(repo, STAGE)
    (repo / "params.yaml").write_text(yaml.safe_dump({"dataset": {}, "contract": {}}))
    with pytest.raises(datastore.DataStoreConfigError, match=r"dataset\.batches"):
        datastore.commit_stage(repo, STAGE)


def test_remote_locations(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    datastore.configure_remote(repo, "relative-remote")  # DVC would read it relative to .dvc/
    assert (tmp_path / "relative-remote").is_dir()
    assert str(tmp_path / "relative-remote") in (repo / ".dvc" / "config.local").read_text()

    datastore.configure_remote(repo, "s3://bucket/dvc", endpoint_url="http://127.0.0.1:9")
    config = (repo / ".dvc" / "config.local").read_text()
    assert "url = s3://bucket/dvc" in config and "endpointurl = http://127.0.0.1:9" in config
    datastore.configure_remote(repo, "s3://bucket/dvc")  # switching replaces the section: no stale endpoint
    assert "endpointurl" not in (repo / ".dvc" / "config.local").read_text()
    assert "sse = AES256" in (repo / ".dvc" / "config.local").read_text()  # S3 objects: SSE-S3 by default
    datastore.configure_remote(repo, "s3://bucket/dvc", encryption=S3Encryption("alias/retrain"))
    config = (repo / ".dvc" / "config.local").read_text()
    assert "sse = aws:kms" in config and "sse_kms_key_id = alias/retrain" in config
    datastore.configure_remote(repo, "relative-remote")  # a directory has no server-side encryption
    assert "sse" not in (repo / ".dvc" / "config.local").read_text()

    with pytest.raises(datastore.DataStoreConfigError, match="refused the remote"):
        datastore.configure_remote(repo, "ftp2://nowhere")
    blocked = tmp_path / "blocked"
    blocked.write_text("")
    with pytest.raises(datastore.DataStoreConfigError, match="cannot create the DVC remote"):
        datastore.configure_remote(repo, str(blocked / "remote"))


def test_non_git_directory_is_refused(tmp_path: Path):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(datastore.DataStoreError, match="not a git repository"):
        datastore.ensure_dvc_repo(plain)
    assert not (plain / ".dvc").exists()


def test_missing_lock_is_reported(repo: Path):
    with pytest.raises(datastore.DataStoreError, match="never committed"):
        datastore.output_md5(repo, STAGE)
