"""Real components for integration tests: one Prefect API per session, MLflow on a sqlite file in a
tmp dir, and a git + DVC workspace (with a local DVC remote) per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from retrain.adapters.registry import ModelRegistry
from retrain.adapters.workspace import create_workspace
from retrain.approval import Answer, Receipt, run_with_reviewers
from retrain.domain.settings import Settings, load_settings
from retrain.environment import resolve_runtime
from retrain.errors import ApprovalInputError
from tests.conftest import REPO_ROOT

T = TypeVar("T")

# Small data, and guardrails that integration tests cannot trip by machine load or tiny test models:
# latency and calibration checks are unit-tested with measured values; speed lives in benchmarks/.
# Reviewers for the approval gate; the HMAC secret is set per test in the environment (embedded default).
REVIEWERS = ("ada", "grace", "linus")
APPROVAL_SECRET = "integration-tests-approval-secret"
SMALL_DATA: dict[str, Any] = {
    "demo": {"rows_per_day": 1500, "days": 8, "first_training_days": 5},
    "gate": {
        "guardrails": {
            "max_calibration_error": 0.25,
            "max_latency_ratio": 1000,
            "max_latency_single_ms": 60_000,
            "max_latency_batch_ms": 60_000,
        }
    },
    "approval": {"reviewers": list(REVIEWERS), "quorum": 1, "timeout_minutes": 1, "poll_seconds": 1},
}


def token(reviewer: str, secret: str = APPROVAL_SECRET) -> str:
    from retrain.domain.approval import reviewer_token

    return reviewer_token(secret, reviewer)


def approve(reviewer: str = "ada", comment: str = "evidence read") -> Answer:
    return Answer("approve", reviewer, token(reviewer), comment)


def reviewed(
    start: Callable[[], T],
    answers: Sequence[Answer] | None = None,
    receipts: list[tuple[Answer, Receipt | ApprovalInputError]] | None = None,
) -> T:
    """Run a training flow (``start``) while reviewers answer its gate, as they would in the UI."""
    collected = receipts if receipts is not None else []
    return run_with_reviewers(
        start,
        [approve()] if answers is None else answers,
        tag=f"pytest-{uuid.uuid4().hex[:12]}",
        on_receipt=lambda answer, receipt: collected.append((answer, receipt)),
        poll_seconds=0.2,
    )


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A real Prefect API (ephemeral server on a temporary SQLite database) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """MLflow (sqlite + file artifacts) and a DVC remote, all under this test's tmp dir."""
    state = tmp_path / "state"
    monkeypatch.setenv("RETRAIN_HOME", str(state))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("RETRAIN_MLFLOW_ARTIFACTS", (tmp_path / "mlflow-artifacts").as_uri())
    monkeypatch.setenv("RETRAIN_DVC_REMOTE", str(tmp_path / "dvc-remote"))
    return state


@pytest.fixture(autouse=True)
def approval_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """The reviewer-token secret, as the embedded default reads it (restored after each test)."""
    monkeypatch.setenv("RETRAIN_APPROVAL_SECRET", APPROVAL_SECRET)
    return APPROVAL_SECRET


@pytest.fixture
def workspace(tmp_path: Path, services: Path) -> Path:
    """A fresh project (git + DVC repo) with the repository's params, dvc.yaml and contracts."""
    return create_workspace(REPO_ROOT, tmp_path / "project", SMALL_DATA)


def workspace_settings(workspace: Path) -> Settings:
    return load_settings(workspace / "params.yaml")


def registry_for(workspace: Path) -> ModelRegistry:
    runtime = resolve_runtime(project_dir=workspace)
    settings = workspace_settings(workspace)
    return ModelRegistry.for_project(runtime, settings)
