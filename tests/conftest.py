"""Test-wide setup: quiet, offline, and every piece of state in temporary directories.

Environment variables are set here, at import, because Prefect reads PREFECT_HOME and its
settings when it is first imported; nothing a test does may touch ~/.prefect or the project's .retrain/.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from retrain.adapters.environment import QUIET_ENVIRONMENT
from retrain.cli.progress import QUIET_CONSOLE

REPO_ROOT = Path(__file__).resolve().parents[1]
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="retrain-tests-"))

for _key, _value in QUIET_ENVIRONMENT.items():
    os.environ[_key] = _value
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ["RETRAIN_HOME"] = str(_SESSION_HOME / "state")
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("MLFLOW_TRACKING_URI", None)


# Reviewers' keys for this test session: public keys go into each test project's reviewers/ (as a
# team commits them), private keys stay in this process (written to a 0600 file only for the CLI).
TEST_REVIEWERS = ("ada", "grace", "linus", "demo-reviewer")


def _reviewer_keys() -> dict[str, Any]:
    """New keys for every test run; the pytest-xdist workers of one run derive the same ones from the
    run's id, since a workspace template one worker builds (its public keys committed) serves them all."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:
        return {name: Ed25519PrivateKey.generate() for name in TEST_REVIEWERS}
    return {
        name: Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"{run}:{name}".encode()).digest())
        for name in TEST_REVIEWERS
    }


REVIEWER_KEYS = _reviewer_keys()


# Project templates: one directory for every pytest-xdist worker of a run (built once, under a file
# lock), else this process's own.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID")
_PROJECTS = Path(tempfile.gettempdir()) / f"retrain-test-projects-{_RUN}" if _RUN else _SESSION_HOME / "projects"


@contextmanager
def _shared_build(lock: Path) -> Iterator[None]:
    from filelock import FileLock

    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock)):
        yield


def _build_reviewed_project(target: Path, overrides: Mapping[str, Any] | None) -> Path:
    from retrain.adapters.reviewer_keys import write_public_key
    from retrain.adapters.workspace import commit_all, create_workspace
    from retrain.domain.settings import load_settings

    project = create_workspace(REPO_ROOT, target, overrides)
    policy = load_settings(project / "params.yaml").approval
    for name in policy.reviewers:
        write_public_key(project, policy, name, REVIEWER_KEYS[name])
    commit_all(project, "reviewers' public keys")
    return project


def reviewed_project(target: Path, overrides: Mapping[str, Any] | None = None) -> Path:
    """A workspace copy of this repository whose listed reviewers' public keys are committed in it.

    Built once per session for each set of overrides (git init, DVC init and two commits take seconds),
    then copied: a git + DVC repository holds no absolute path until a flow configures its remote.
    """
    key = hashlib.sha256(json.dumps(overrides or {}, sort_keys=True, default=str).encode()).hexdigest()[:16]
    template = _PROJECTS / key / "project"
    if not template.exists():
        with _shared_build(_PROJECTS / f"{key}.lock"):
            if not template.exists():  # another pytest worker may have built it meanwhile
                partial = _PROJECTS / key / ".building"
                shutil.rmtree(partial, ignore_errors=True)
                _build_reviewed_project(partial, overrides)
                partial.rename(template)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(template, target, symlinks=True)
    return target


def private_key_file(reviewer: str, directory: Path) -> Path:
    """The reviewer's private key as `retrain reviewer keygen` stores it (PKCS#8 PEM, 0600)."""
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    path = directory / f"{reviewer}.key"
    path.write_bytes(REVIEWER_KEYS[reviewer].private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    path.chmod(0o600)
    return path


@pytest.fixture(autouse=True)
def _cli_console_level_stays_in_its_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command run in this process (CliRunner) quiets Prefect's console in os.environ, as it does in
    a user's shell; undone after each test, so no later test's subprocess inherits it."""
    for key in QUIET_CONSOLE:
        monkeypatch.delenv(key, raising=False)
