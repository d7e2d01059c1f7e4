"""The training flow for a regression and a multiclass target: generated rows, their own contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from flows.training import TrainingRequest, training
from retrain.adapters.contracts import release_contract
from retrain.application.status import lifecycle_status
from retrain.domain import synthetic
from retrain.domain.metrics import TASK_METRICS
from retrain.domain.settings import TaskKind
from tests.integration.conftest import registry_for, reviewed

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]

PRIMARY: dict[TaskKind, tuple[str, float]] = {"regression": ("r2", 0.3), "multiclass": ("log_loss", 1.0)}
PLOTS: dict[TaskKind, set[str]] = {
    "regression": {"plots/residuals.png", "plots/predicted_vs_actual.png", "plots/feature_importance.png"},
    "multiclass": {"plots/confusion_matrix.png", "plots/calibration.png", "plots/feature_importance.png"},
}


def _project_for(workspace: Path, task: TaskKind) -> None:
    """Turn the loan workspace into a project of generated rows: contract, params and daily batches."""
    name = f"synthetic-{task}"
    contract = workspace / "data_contracts" / name / "v1.json"
    contract.parent.mkdir(parents=True)
    contract.write_text(json.dumps(synthetic.contract_suite(task, name), indent=2), encoding="utf-8")
    release_contract(workspace / "data_contracts", name, 1)  # as `retrain contract release NAME 1`
    params = yaml.safe_load((workspace / "params.yaml").read_text(encoding="utf-8"))
    params["dataset"] = synthetic.dataset_params(task, name)
    params["contract"].update(name=name, version=1)
    metric, floor = PRIMARY[task]
    params["gate"].update(primary_metric=metric, floor=floor)
    params["gate"]["slices"].update(categorical=["segment"], numeric_bins={"x0": [-10.0, 0.0, 10.0]}, min_rows=50)
    params["model"]["registered_name"] = params["model"]["experiment"] = f"retrain-{name}"
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    frame = synthetic.synthetic_frame(task, days=6, rows_per_day=300, seed=5)
    batches = workspace / "data" / "batches"
    batches.mkdir(parents=True, exist_ok=True)
    days = frame[synthetic.TIME_COLUMN].dt.date
    for day in sorted(days.unique()):
        frame[days == day].to_parquet(batches / f"{name}-{day.isoformat()}.parquet", index=False)


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_the_training_flow_trains_gates_and_registers_each_task(workspace: Path, task: TaskKind):
    _project_for(workspace, task)
    result = reviewed(
        lambda: training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest", reason="test"))
    )
    assert result.outcome.promoted, result.outcome.reasons
    champion = lifecycle_status(registry_for(workspace))["champion"]
    assert champion is not None and set(champion["metrics"]) >= set(TASK_METRICS[task])
    metric, floor = PRIMARY[task]
    value = champion["metrics"][metric]
    assert value > floor if metric == "r2" else value < floor
    fit_check = "bias" if task == "regression" else "calibration"
    gate_json = workspace.parent / "state" / "reports" / result.flow_run_id / "gate.json"
    gate = json.loads(gate_json.read_text(encoding="utf-8"))
    names = [check["name"] for check in gate["checks"]]
    assert fit_check in names and ({"bias", "calibration"} - {fit_check}).isdisjoint(names)

    from mlflow import MlflowClient

    plots = {artifact.path for artifact in MlflowClient().list_artifacts(champion["run_id"], "plots")}
    assert plots == PLOTS[task]
