"""Committing the data-version files to the project's git: only the listed paths, only if changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from retrain.adapters.git import commit_paths
from retrain.domain.errors import InputError

pytestmark = pytest.mark.integration


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.name", "pytest")
    _git(root, "config", "user.email", "pytest@localhost")
    (root / "data").mkdir()
    (root / ".gitignore").write_text("/data/batches/\n*.tmp\n")
    (root / "data" / "batches.dvc").write_text("md5: 1\n")
    (root / "params.yaml").write_text("a: 1\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "start")
    return root


def test_only_the_listed_paths_that_changed_are_committed(repo: Path):
    (repo / "data" / "batches.dvc").write_text("md5: 2\n")  # listed, changed
    (repo / "dvc.lock").write_text("stages: {}\n")  # listed, new
    (repo / "data" / "quarantine.dvc").unlink(missing_ok=True)  # listed, absent and untracked: skipped
    (repo / "data" / "x.tmp").write_text("ignored\n")  # listed but ignored and untracked: skipped
    (repo / "params.yaml").write_text("a: 2\n")  # the user's own edit, staged: stays staged, uncommitted
    _git(repo, "add", "params.yaml")
    (repo / "notes.txt").write_text("mine\n")  # the user's untracked file: untouched

    listed = ["data/batches.dvc", "dvc.lock", "data/quarantine.dvc", "data/x.tmp"]
    done = commit_paths(repo, listed, "retrain ingest: batch day-1.parquet")

    assert done.sha == _git(repo, "rev-parse", "HEAD").strip()
    assert done.paths == ("data/batches.dvc", "dvc.lock")
    assert _git(repo, "log", "-1", "--format=%s") == "retrain ingest: batch day-1.parquet\n"
    assert sorted(_git(repo, "show", "--name-only", "--format=", "HEAD").split()) == ["data/batches.dvc", "dvc.lock"]
    status = _git(repo, "status", "--porcelain").splitlines()
    assert "M  params.yaml" in status and "?? notes.txt" in status  # still staged; still untracked
    assert "git: committed" in done.summary and "dvc.lock" in done.summary


def test_nothing_changed_is_said_not_an_error(repo: Path):
    head = _git(repo, "rev-parse", "HEAD")
    done = commit_paths(repo, ["data/batches.dvc", "dvc.lock"], "retrain train: loans v1")
    assert done.sha is None and done.paths == ()
    assert "nothing to commit" in done.summary
    assert _git(repo, "rev-parse", "HEAD") == head


def test_a_deleted_pointer_is_committed_as_deleted(repo: Path):
    (repo / "data" / "batches.dvc").unlink()
    done = commit_paths(repo, ["data/batches.dvc"], "retrain ingest: gone")
    assert done.paths == ("data/batches.dvc",)
    assert _git(repo, "ls-files", "data/batches.dvc") == ""


def test_outside_a_git_work_tree_is_an_input_error(tmp_path: Path):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(InputError, match="not the top of a git work tree"):
        commit_paths(plain, ["dvc.lock"], "retrain train")
