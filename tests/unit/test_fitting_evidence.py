"""The one fitting recipe, the evidence/training-key module, and the pure parts of monitoring and the
reaper that used to live in Prefect tasks."""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
from contextlib import AbstractContextManager
from pathlib import Path

import pandas as pd
import pytest

from retrain.domain import lifecycle, tags
from retrain.domain.demo_data import generate_days
from retrain.domain.evidence import (
    Evidence,
    RecordedEvidence,
    Snapshot,
    TrainingSettings,
    evidence_document,
    gather_evidence,
    training_params_hash,
    training_settings,
)
from retrain.domain.features import build_feature_spec
from retrain.domain.fitting import fit_snapshot, fit_split, split_snapshot
from retrain.domain.lifecycle import canonical_hash
from retrain.domain.runs import FlowRunView
from retrain.domain.settings import load_settings
from retrain.domain.splitting import split_by_time
from retrain.domain.training import train_model

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(ROOT / "params.yaml")
SNAPSHOT = Snapshot("data/training/loans.parquet", "0" * 32, 1200, 6, "2026-01-01", "2026-01-06")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.concat([f for _, f in generate_days(dt.date(2026, 1, 1), 6, 1500, 7)], ignore_index=True)


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_the_recipe_is_the_hand_written_one_byte_for_byte_and_deterministic(frame: pd.DataFrame):
    """What the flow, `retrain fit` and `retrain reproduce` each wrote by hand before, as one function."""
    data, split, model = SETTINGS.dataset, SETTINGS.split, SETTINGS.model
    by_hand_split = split_by_time(
        frame, data.time_column, split.holdout_days, split.validation_days, split.min_train_days
    )
    spec = build_feature_spec(by_hand_split.train, data.features.numeric, data.features.categorical)
    by_hand = bytes(
        train_model(by_hand_split.train, by_hand_split.validation, spec, data.target, model).booster.save_raw("ubj")
    )

    fitted = fit_snapshot(frame, data, split, model)
    again = fit_split(split_snapshot(frame, data, split), data, model)
    assert _sha(fitted.model_bytes()) == _sha(by_hand) == _sha(again.model_bytes())
    assert fitted.split.holdout_days == by_hand_split.holdout_days
    assert fitted.model.spec == spec
    assert set(fitted.holdout_metrics) == set(fitted.validation_metrics) >= {"roc_auc", "log_loss"}
    assert len(fitted.holdout_predictions) == len(fitted.split.holdout)


def _calls_of(name: str) -> set[str]:
    """Production modules (retrain, tasks, flows) that call ``name(...)``."""
    found = set()
    for folder in ("retrain", "tasks", "flows"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    func = node.func
                    called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                    if called == name:
                        found.add(path.relative_to(ROOT).as_posix())
    return found


def test_only_the_recipe_splits_and_trains_model_versions():
    assert _calls_of("train_model") == {"retrain/domain/fitting.py"}
    assert _calls_of("split_by_time") == {"retrain/domain/fitting.py"}
    # the flow's task, and the snapshot-file form that `retrain fit` and `retrain reproduce` share
    assert _calls_of("fit_split") <= {
        "retrain/domain/fitting.py",
        "retrain/application/training.py",
        "retrain/application/engines.py",
    }


def test_training_settings_and_params_hash_are_what_evidence_has_always_recorded():
    # a binary dataset records no task/labels keys: the hash is what releases before them recorded
    dataset = SETTINGS.dataset.model_dump(mode="json", exclude={"task", "labels"})
    recorded = {
        "dataset": dataset,
        "split": SETTINGS.split.model_dump(mode="json"),
        # the engine keys came later; where the matrix is held never shapes the model
        "model": SETTINGS.model.model_dump(mode="json", exclude={"engine", "dask_workers", "external_memory_above_mb"}),
    }
    assert training_settings(SETTINGS) == recorded
    assert training_params_hash(SETTINGS) == canonical_hash(recorded)
    read_back = TrainingSettings.from_dict(recorded)
    assert read_back == TrainingSettings.of(SETTINGS)
    assert read_back.params_hash() == training_params_hash(SETTINGS)
    multiclass = SETTINGS.model_copy(update={"dataset": SETTINGS.dataset.model_copy(update={"task": "multiclass"})})
    assert training_settings(multiclass)["dataset"]["task"] == "multiclass"
    assert training_params_hash(multiclass) != training_params_hash(SETTINGS)


def test_a_dask_model_records_its_engine_and_worker_count_in_the_training_key():
    def on_dask(workers: int):
        return SETTINGS.model_copy(
            update={"model": SETTINGS.model.model_copy(update={"engine": "dask", "dask_workers": workers})}
        )

    recorded = training_settings(on_dask(2))["model"]
    assert (recorded["engine"], recorded["dask_workers"]) == ("dask", 2)
    assert TrainingSettings.from_dict(training_settings(on_dask(2))).model == on_dask(2).model
    hashes = {training_params_hash(SETTINGS), training_params_hash(on_dask(2)), training_params_hash(on_dask(3))}
    assert len(hashes) == 3


def test_evidence_keys_the_training_on_what_shapes_the_model_only():
    first = gather_evidence(SNAPSHOT, SETTINGS, "c" * 64, "retrain==1", "run-1", "alice", "nightly")
    other_person = gather_evidence(SNAPSHOT, SETTINGS, "c" * 64, "retrain==1", "run-2", "bob", "drift")
    other_code = gather_evidence(SNAPSHOT, SETTINGS, "c" * 64, "retrain==2", "run-1", "alice", "nightly")
    assert first.training_key == other_person.training_key != other_code.training_key
    assert first.training_key == lifecycle.training_key(
        SNAPSHOT.md5, "c" * 64, training_params_hash(SETTINGS), "retrain==1"
    )
    written = first.tags()
    assert written[tags.TAG_TRAINING_KEY] == first.training_key
    assert written[tags.TAG_CONTRACT_VERSION] == str(SETTINGS.contract.version)
    assert written["retrain.code_version"] == "retrain==1" and written["retrain.reason"] == "nightly"
    # salt_id is recorded only when the settings tokenise sensitive columns (then it shapes the model)
    assert first.to_dict() == {key: value for key, value in first.__dict__.items() if key != "salt_id"}


def test_the_evidence_document_reads_back_as_what_a_rebuild_needs():
    evidence = gather_evidence(SNAPSHOT, SETTINGS, "c" * 64, "retrain==1", "run-1", "alice", "nightly")
    document = evidence_document(evidence, SNAPSHOT, {"xgboost": "3.0"}, SETTINGS)
    assert set(document) == {*Evidence.__dataclass_fields__, "snapshot", "libraries", "training_settings"} - {"salt_id"}
    assert document["snapshot"] == SNAPSHOT.__dict__
    recorded = RecordedEvidence.from_document(document)
    assert recorded.data_md5 == SNAPSHOT.md5 and recorded.contract_hash == "c" * 64
    assert recorded.training == TrainingSettings.of(SETTINGS) and recorded.libraries == {"xgboost": "3.0"}
    # Bundles logged before library versions were recorded still read.
    assert RecordedEvidence.from_document({k: v for k, v in document.items() if k != "libraries"}).libraries == {}


NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _run(run_id: str, state: str, project: Path, age_hours: float = 0.0, due_in_minutes: float = 0.0) -> FlowRunView:
    return FlowRunView(
        id=run_id,
        name=f"run-{run_id}",
        state_type=state,
        state_name=state.title(),
        state_timestamp=NOW - dt.timedelta(hours=age_hours),
        expected_start_time=NOW + dt.timedelta(minutes=due_in_minutes),
        parameters={"request": {"project_dir": str(project)}},
    )


def test_training_runs_in_flight_are_this_projects_live_and_due_runs(tmp_path: Path):
    from retrain.application.monitoring import training_runs_in_flight

    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    runs = [
        _run("a", "RUNNING", here),
        _run("b", "PAUSED", here),
        _run("c", "RUNNING", elsewhere),  # another project
        _run("d", "RUNNING", here, age_hours=30),  # stuck: a crashed process's leftover
        _run("e", "RUNNING", here),  # its lease expired
        _run("f", "SCHEDULED", here, due_in_minutes=120),  # not due yet
        _run("g", "SCHEDULED", here, due_in_minutes=0.5),  # due: a trigger just created it
        _run("h", "RUNNING", here),  # the run asking
    ]
    found = training_runs_in_flight(runs, here, stale_after_hours=24, dead=["e"], exclude="h", now=NOW)
    assert found == [
        "training run 'run-a' (Running)",
        "training run 'run-b' (Paused)",
        "training run 'run-g' (Scheduled)",
    ]


class _FakeRuns(AbstractContextManager["_FakeRuns"]):
    """The reaper's port to the orchestrator, without an orchestrator."""

    def __init__(self, known: dict[str, FlowRunView]) -> None:
        self.known = known
        self.crashed: dict[str, str] = {}
        self.opened = 0

    def __enter__(self) -> _FakeRuns:
        self.opened += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def read(self, run_id: str) -> FlowRunView | None:
        return self.known.get(run_id)

    def crash(self, run_id: str, message: str) -> None:
        self.crashed[run_id] = message


def test_the_reaper_crashes_live_runs_whose_lease_expired_and_keeps_unknown_ones(tmp_path: Path):
    from retrain.adapters.leases import LeaseStore
    from retrain.application.reaper import reap

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    store = LeaseStore(url)
    try:
        for run_id in ("live", "done", "unknown"):
            store.take(run_id, "training", str(tmp_path), seconds=-1)  # already expired: its holder died
        store.take("fresh", "training", str(tmp_path), seconds=3600)
        runs = _FakeRuns({"live": _run("live", "RUNNING", tmp_path), "done": _run("done", "COMPLETED", tmp_path)})
        actions = reap(url, None, "pytest", runs)
        assert list(runs.crashed) == ["live"] and "Marked Crashed by pytest" in runs.crashed["live"]
        assert len(actions) == 1 and "run 'run-live' (live, was Running) Crashed" in actions[0]
        assert set(store.leases()) == {"unknown", "fresh"}  # another server's run keeps its lease
        assert runs.opened == 1
        quiet = _FakeRuns({})
        assert reap(url, None, "pytest", quiet) == [] and quiet.crashed == {}
    finally:
        store.dispose()
