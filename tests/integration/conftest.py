"""Real components for integration tests: one Prefect API per session, MLflow on a sqlite file in a
tmp dir, and a git + DVC workspace (with a local DVC remote) per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from retrain.adapters.environment import resolve_runtime
from retrain.adapters.prefect_api import AnswerSource, Receipt, Signing, run_with_reviewers
from retrain.adapters.registry import ModelRegistry
from retrain.domain.errors import ApprovalInputError
from retrain.domain.settings import Settings, load_settings
from tests.conftest import REVIEWER_KEYS, reviewed_project

T = TypeVar("T")

# Small data, and guardrails that integration tests cannot trip by machine load or tiny test models:
# latency and calibration checks are unit-tested with measured values; speed lives in benchmarks/.
# Reviewers for the approval gate: their public keys are committed in each test's workspace
# (tests.conftest.reviewed_project); answers are signed with their private keys for the paused run.
REVIEWERS = ("ada", "grace", "linus")
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


def signing(reviewer: str, decision: str = "approve", comment: str = "evidence read", key: str = "") -> Signing:
    """``reviewer``'s answer, signed for whichever run it answers with ``key``'s private key (their own by default)."""
    return Signing(decision, reviewer, REVIEWER_KEYS[key or reviewer], comment)


def approve(reviewer: str = "ada", comment: str = "evidence read") -> Signing:
    return signing(reviewer, "approve", comment)


def reviewed(
    start: Callable[[], T],
    answers: Sequence[AnswerSource] | None = None,
    receipts: list[tuple[AnswerSource, Receipt | ApprovalInputError]] | None = None,
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


@pytest.fixture
def workspace(tmp_path: Path, services: Path) -> Path:
    """A fresh project (git + DVC repo) with the repository's params, dvc.yaml, contracts and the
    test reviewers' public keys."""
    return reviewed_project(tmp_path / "project", SMALL_DATA)


def workspace_settings(workspace: Path) -> Settings:
    return load_settings(workspace / "params.yaml")


def registry_for(workspace: Path) -> ModelRegistry:
    runtime = resolve_runtime(project_dir=workspace)
    settings = workspace_settings(workspace)
    return ModelRegistry.for_project(runtime, settings)
