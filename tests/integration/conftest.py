"""Real components for integration tests: one Prefect API per session, MLflow on a sqlite file in a
tmp dir, and a git + DVC workspace (with a local DVC remote) per test.

Building that state from nothing costs seconds (MLflow's schema migrations, git and DVC init) to a
minute (a trained, reviewed champion), so each kind is built once per session as a template and
copied into every test's tmp dir, its absolute paths rewritten (see ``copy_state``). A test picks
its starting point with ``@pytest.mark.template(NAME)``; see ``TEMPLATES``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from retrain.adapters.environment import resolve_runtime
from retrain.adapters.prefect_api import AnswerSource, Receipt, Signing, run_with_reviewers
from retrain.adapters.registry import ModelRegistry
from retrain.domain.errors import ApprovalInputError
from retrain.domain.lifecycle import LedgerEntry
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
            "latency_single_rounds": 20,  # the measurement runs as in production, with fewer samples
            "latency_batch_rounds": 3,
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
    """Run a training flow (``start``) while reviewers answer its gate, as they would in the UI.

    Without ``answers``, ada approves, and her answer must count: a refused signature (keys that do
    not match the workspace's committed ones) fails the test instead of ending in an approval timeout.
    """
    collected = receipts if receipts is not None else []
    result = run_with_reviewers(
        start,
        [approve()] if answers is None else answers,
        on_receipt=lambda answer, receipt: collected.append((answer, receipt)),
        poll_seconds=0.2,
    )
    if answers is None:
        refused = [receipt for _, receipt in collected if isinstance(receipt, ApprovalInputError)]
        assert not refused, f"the default approval did not count: {refused}"
    return result


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A real Prefect API (ephemeral server on a temporary SQLite database) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):
        yield


def point_services_at(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """MLflow (sqlite + file artifacts), the DVC remote and the state dir (ledger, reports) under ``root``."""
    state = root / "state"
    monkeypatch.setenv("RETRAIN_HOME", str(state))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    monkeypatch.setenv("RETRAIN_MLFLOW_ARTIFACTS", (root / "mlflow-artifacts").as_uri())
    monkeypatch.setenv("RETRAIN_DVC_REMOTE", str(root / "dvc-remote"))
    return state


#: Files of a template that name its root, found once when it is built: rewritten in every copy.
_NAMING_THE_ROOT: dict[Path, list[Path]] = {}


def _files_naming(root: Path) -> list[Path]:
    needle = str(root).encode()
    return [path for path in sorted(root.rglob("*")) if path.is_file() and needle in path.read_bytes()]


def _rewrite_sqlite(database: Path, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in every text column of every table (MLflow keeps absolute artifact
    locations in experiments, runs, logged models and model versions)."""
    connection = sqlite3.connect(database)
    try:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]:
                connection.execute(
                    f'UPDATE "{table}" SET "{column}" = REPLACE("{column}", ?, ?) '
                    f'WHERE typeof("{column}") = \'text\' AND instr("{column}", ?) > 0',
                    (old, new, old),
                )
        connection.commit()
    finally:
        connection.close()


_NAMING_FILE = "naming-the-root.json"


def freeze_template(root: Path) -> Path:
    """Note which of the finished template's files name its root, so ``copy_state`` can rewrite them
    (kept beside the template, where another test worker reads it)."""
    naming = [path.relative_to(root) for path in _files_naming(root)]
    (root.parent / f"{root.name}.{_NAMING_FILE}").write_text(json.dumps([str(p) for p in naming]), encoding="utf-8")
    _NAMING_THE_ROOT[root] = naming
    return root


def shared_template(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """A template built once per test run, whatever the number of pytest-xdist workers: the first
    worker to need it builds it (``build(root)``) under a file lock in the directory the workers share,
    the others wait for it and copy from it. Built once instead of once per worker, it saves a trained
    and reviewed model per worker (tens of seconds of CPU each on a two-core machine)."""
    from filelock import FileLock

    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        root = tmp_path_factory.mktemp(f"template-{name}")
        build(root)
        return freeze_template(root)
    shared = tmp_path_factory.getbasetemp().parent  # the run's directory, parent of every worker's own
    root = shared / f"template-{name}"
    naming = shared / f"{root.name}.{_NAMING_FILE}"
    with FileLock(str(shared / f"template-{name}.lock")):
        if naming.exists():
            _NAMING_THE_ROOT[root] = [Path(p) for p in json.loads(naming.read_text(encoding="utf-8"))]
            return root
        shutil.rmtree(root, ignore_errors=True)  # a worker that failed mid-build left it half done
        root.mkdir()
        build(root)
        return freeze_template(root)


def copy_state(template: Path, target: Path) -> None:
    """Copy a template root (project, MLflow database and artifacts, DVC remote, state) into ``target``
    and make the copy point at itself: its absolute paths now name ``target``, never the template."""
    for entry in template.iterdir():
        if entry.is_dir():
            shutil.copytree(entry, target / entry.name, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(entry, target / entry.name)
    old, new = str(template), str(target)
    for relative in _NAMING_THE_ROOT[template]:
        path = target / relative
        if path.suffix == ".db":
            _rewrite_sqlite(path, old, new)
        else:  # a config file (DVC's remote in .dvc/config.local) or a report: text, else we must know
            path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow sqlite database with its schema migrated (seconds of alembic migrations), and nothing else."""

    def build(root: Path) -> None:
        from mlflow import MlflowClient

        MlflowClient(f"sqlite:///{root / 'mlflow.db'}").search_experiments()

    return shared_template(tmp_path_factory, "mlflow", build)


@pytest.fixture
def services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_template: Path) -> Path:
    """MLflow (sqlite + file artifacts) and a DVC remote, all under this test's tmp dir."""
    copy_state(mlflow_template, tmp_path)
    return point_services_at(tmp_path, monkeypatch)


def _train_and_keep(root: Path, refuse: bool) -> None:
    """Five demo days trained into v1: promoted (approved by ada) as champion, or refused by a floor no
    model reaches, which leaves v1 registered (refused, without an alias) under the same training key (the floor is
    not part of it); the refusal's ledger entry and reports are then dropped, so the ledger is empty."""
    from flows.training import TrainingRequest, training
    from retrain.adapters.workspace import write_params
    from retrain.cli.demo_run import write_demo_batches

    project = reviewed_project(root / "project", SMALL_DATA)
    settings = workspace_settings(project)
    write_demo_batches(project / settings.dataset.batches, settings, 5)
    if not refuse:
        from tests.integration.test_monitoring import _champion

        _champion(project)  # the monitoring tests' champion: five days, trained, approved
        return
    params = (project / "params.yaml").read_text()
    write_params(project, {"gate": {"floor": 0.999}})
    result = training(TrainingRequest(project_dir=str(project), triggered_by="pytest", reason="test"))
    (project / "params.yaml").write_text(params)
    assert result.challenger.version == "1" and not result.outcome.promoted
    shutil.rmtree(root / "state")


def _model_template(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path, name: str) -> Path:
    def build(root: Path) -> None:
        copy_state(mlflow_template, root)
        with pytest.MonkeyPatch.context() as monkeypatch:
            point_services_at(root, monkeypatch)
            _train_and_keep(root, refuse=name == "challenger")

    return shared_template(tmp_path_factory, name, build)


@pytest.fixture(scope="session")
def champion_template(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path, prefect_api: None) -> Path:
    return _model_template(tmp_path_factory, mlflow_template, "champion")


@pytest.fixture(scope="session")
def challenger_template(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path, prefect_api: None) -> Path:
    return _model_template(tmp_path_factory, mlflow_template, "challenger")


#: What ``@pytest.mark.template(NAME)`` starts a test's workspace from (``empty`` when unmarked):
#: - ``empty``: the project (git + DVC, SMALL_DATA params, reviewers' keys) and an empty MLflow;
#: - ``champion``: five demo days in data/batches and v1 trained on them, approved and promoted;
#: - ``challenger``: the same five days and v1 registered from them but refused (no champion, empty
#:   ledger): a training run on those days finds v1 by its training key and runs only the gate.
TEMPLATES = ("empty", "champion", "challenger")


@pytest.fixture
def workspace(request: pytest.FixtureRequest, tmp_path: Path, services: Path) -> Path:
    """A project (git + DVC repo) with the repository's params, dvc.yaml, contracts and the test
    reviewers' public keys, and the state the test's ``template`` marker asks for."""
    marker = request.node.get_closest_marker("template")
    name = marker.args[0] if marker else "empty"
    assert name in TEMPLATES, f"unknown template {name!r}: one of {TEMPLATES}"
    if name == "empty":
        return reviewed_project(tmp_path / "project", SMALL_DATA)
    copy_state(request.getfixturevalue(f"{name}_template"), tmp_path)
    return tmp_path / "project"


def workspace_settings(workspace: Path) -> Settings:
    return load_settings(workspace / "params.yaml")


def registry_for(workspace: Path) -> ModelRegistry:
    runtime = resolve_runtime(project_dir=workspace)
    settings = workspace_settings(workspace)
    return ModelRegistry.for_project(runtime, settings)


def ledger_entries(workspace: Path) -> list[LedgerEntry]:
    """The workspace model's promotion ledger, oldest first."""
    from retrain.adapters.ledger import Ledger

    ledger = Ledger(resolve_runtime(project_dir=workspace).ledger_url)
    try:
        return ledger.entries(workspace_settings(workspace).model.registered_name)
    finally:
        ledger.dispose()


@pytest.fixture
def deployments_removed_after() -> Iterator[None]:
    """The deployments a test registers in the session's Prefect API are deleted after it: a drift
    check in a later test on the same worker would otherwise trigger `training/nightly` (which
    nothing runs here) instead of retraining in process."""
    yield
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for deployment in client.read_deployments():
            client.delete_deployment(deployment.id)


@pytest.fixture
def deployed(workspace: Path, deployments_removed_after: None) -> None:
    """The workspace's deployments registered: a retraining a drift check decides is a run of
    `training/nightly`, which nothing runs here (no worker), instead of a training in process; a test
    that decides and records, and is not about the training, deletes that run (``acting_check``)."""
    from retrain.deploy.deployments import deploy_all

    deploy_all(workspace_settings(workspace), workspace)
