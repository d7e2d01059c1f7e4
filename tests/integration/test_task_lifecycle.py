"""A new user's whole loop for each task, on 300-row days with no id column and text labels.

`retrain init` from one day's CSV, `retrain ingest` of each day, the training flow (gate, reviewer,
promotion), drifted days through `retrain ingest` and the drift flow (which retrains), then
scoring. Four drifted days arrive before the check, so the retraining learns from one of them: the
split keeps the newest two as holdout and one for early stopping (a model that never saw the new
regime is, rightly, refused for calibration on it). Nothing is tuned here: the project keeps the
thresholds `retrain init` wrote for it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.drift import DriftRequest, drift
from flows.scoring import ScoringRequest, scoring
from flows.training import TrainingRequest, training
from retrain.adapters.environment import resolve_runtime
from retrain.adapters.workspace import write_params
from retrain.application.results import TriggeredTraining
from retrain.cli import app
from retrain.domain import synthetic
from retrain.domain.metrics import TASK_METRICS
from retrain.domain.settings import TaskKind, load_settings
from tests.conftest import REVIEWER_KEYS
from tests.integration.conftest import registry_for, reviewed

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]

ROWS_PER_DAY = 300
FIRST_DAYS = 6  # split: 3 days train, 1 validation, 2 holdout (the params init writes)
DRIFTED_DAYS = 6  # a retraining with split.max_train_days 3 learns from changed days only
PLOTS: dict[TaskKind, set[str]] = {  # the holdout plots that fit the task, and feature importance
    "binary": {"plots/roc.png", "plots/precision_recall.png", "plots/calibration.png"},
    "regression": {"plots/residuals.png", "plots/predicted_vs_actual.png"},
    "multiclass": {"plots/confusion_matrix.png", "plots/calibration.png"},
}
START = dt.date(2026, 3, 2)
NAME = "weekly"


def _write_days(frame: pd.DataFrame, directory: Path) -> list[Path]:
    """One CSV per day, as a user's export would be: no id column, labels as text."""
    directory.mkdir(parents=True, exist_ok=True)
    frame = frame.drop(columns=[synthetic.ID_COLUMN])
    days = frame[synthetic.TIME_COLUMN].dt.date
    paths = []
    for day in sorted(days.unique()):
        path = directory / f"{NAME}-{day.isoformat()}.csv"
        frame[days == day].to_csv(path, index=False)
        paths.append(path)
    return paths


def _invoke(*arguments: str) -> str:
    done = CliRunner().invoke(app, list(arguments))
    assert done.exit_code == 0, done.output
    return done.output


def _project(root: Path, task: TaskKind, first_day: Path) -> Path:
    """`retrain init` from the first day, then the reviewer's public key committed (keygen's part)."""
    from retrain.adapters.reviewer_keys import write_public_key
    from retrain.adapters.workspace import commit_all

    project = root / "project"
    output = _invoke("init", str(project), "--data", str(first_day), "--target", synthetic.TARGET, "--reviewer", "ada")
    assert f"task: {task} (inferred" in output
    policy = load_settings(project / "params.yaml").approval
    write_public_key(project, policy, "ada", REVIEWER_KEYS["ada"])
    commit_all(project, "ada's public key")
    return project


# The binary lifecycle runs in make test; multiclass and regression (half a minute each on two cores)
# in make test-all, beside the unit tests that take every task type through each step.
@pytest.mark.parametrize(
    "task",
    ["binary", pytest.param("multiclass", marks=pytest.mark.slow), pytest.param("regression", marks=pytest.mark.slow)],
)
@pytest.mark.usefixtures("services")
def test_init_ingest_train_drift_retrain_and_score(tmp_path: Path, task: TaskKind) -> None:
    days = _write_days(
        synthetic.synthetic_frame(task, days=FIRST_DAYS, rows_per_day=ROWS_PER_DAY, seed=31, start=START),
        tmp_path / "export",
    )
    drifted_start = START + dt.timedelta(days=FIRST_DAYS)
    drifted = synthetic.synthetic_frame(  # the features move and the concept changes: retraining pays
        task, days=DRIFTED_DAYS, rows_per_day=ROWS_PER_DAY, seed=32, start=drifted_start, shift=1.5, concept=1.0
    )
    moved_only = synthetic.synthetic_frame(  # the same move of the features, the same concept
        task, days=1, rows_per_day=ROWS_PER_DAY, seed=33, start=drifted_start, shift=1.5
    )
    moved_only_day = _write_days(moved_only, tmp_path / "moved-only")[0]
    drifted_days = _write_days(drifted, tmp_path / "export")
    newest = drifted_days[-1]
    project = _project(tmp_path, task, days[0])
    settings = load_settings(project / "params.yaml")
    assert settings.dataset.id_column is None and settings.dataset.task == task
    assert settings.drift.min_rows <= ROWS_PER_DAY  # init sized the thresholds to the sample

    for day in days:
        _invoke("ingest", str(day), "--project", str(project))

    first = reviewed(lambda: training(TrainingRequest(project_dir=str(project), triggered_by="pytest", reason="t")))
    assert first.outcome.promoted, first.outcome.reasons
    reports = resolve_runtime(project_dir=project).reports_dir
    gate = json.loads((reports / first.flow_run_id / "gate.json").read_text(encoding="utf-8"))
    fit_check = next(c for c in gate["checks"] if c["name"] in {"calibration", "bias"})
    assert fit_check["name"] == ("bias" if task == "regression" else "calibration") and fit_check["passed"]

    from mlflow import MlflowClient

    plots = {artifact.path for artifact in MlflowClient().list_artifacts(first.challenger.run_id, "plots")}
    assert plots == PLOTS[task] | {"plots/feature_importance.png"}
    assert set(first.challenger.metrics) >= set(TASK_METRICS[task])

    # labels decide first, whatever the features do: the same move of the features leaves the binary
    # champion performing (nothing starts); a champion that loses on it is judged by the labels, or,
    # where 300 rows cannot tell, by the features
    # (reported only: nothing recorded, so it marks no change for the catch-up below)
    moved = drift(DriftRequest(project_dir=str(project), batches=[str(moved_only_day)], act=False))
    assert {"x0", "x1"} <= set(moved.drifted_features) and moved.decided_by is not None, moved.reasons
    assert moved.signals[0].name == "performance"
    assert moved.decision == "report_only" and moved.flagged == (moved.decided_by.verdict == "fires")
    if task == "binary":
        assert moved.signal == "performance" and not moved.flagged, moved.reasons
        assert "drifted, reported only: " in moved.reasons[-1]

    # the concept is about to change: train on the newest days only (the catch-up needs a window too)
    write_params(project, {"split": {"max_train_days": 3}})
    for day in drifted_days:
        _invoke("ingest", str(day), "--project", str(project))
    # six small days checked together: one 300-row day alone cannot show a sure drop of this size
    window = [str(day) for day in drifted_days]
    checked = reviewed(lambda: drift(DriftRequest(project_dir=str(project), batches=window, act=True)))
    assert checked.decision == "retrain" and checked.signal == "performance", checked.reasons
    assert {"x0", "x1"} <= set(checked.drifted_features)
    retrained = checked.training
    assert isinstance(retrained, TriggeredTraining) and retrained.via == "in-process"
    assert retrained.challenger_version == "2" and retrained.promoted, retrained.reasons

    champion = registry_for(project).by_alias("champion")
    assert champion is not None and champion.version == "2"
    # judged against v1 on the same holdout rows: the task's plots with both models, in v2's run
    compared = {artifact.path for artifact in MlflowClient().list_artifacts(champion.run_id, "comparison")}
    assert {path.replace("plots/", "comparison/") for path in PLOTS[task]} <= compared
    scored = scoring(
        ScoringRequest(batch=str(newest), project_dir=str(project), output=str(tmp_path / "scores.parquet"))
    )
    predictions = pd.read_parquet(scored.predictions)
    assert len(predictions) == ROWS_PER_DAY and set(predictions["model_version"]) == {"2"}
    assert predictions["source_row"].tolist() == list(range(ROWS_PER_DAY))
    labels = drifted[drifted[synthetic.TIME_COLUMN].dt.date == drifted[synthetic.TIME_COLUMN].dt.date.max()]
    assert predictions[synthetic.TARGET].tolist() == labels[synthetic.TARGET].tolist()  # the label beside them
    if task == "binary":
        assert predictions["score"].between(0, 1).all()
    elif task == "multiclass":
        classes = synthetic.CLASSES["multiclass"]
        assert set(predictions["prediction"]) <= set(classes)
        probabilities = predictions[[f"proba_{label}" for label in sorted(classes)]]
        assert probabilities.sum(axis=1).round(4).eq(1.0).all()
    else:
        assert predictions["prediction"].notna().all() and predictions["prediction"].dtype == "float64"
