"""``model.engine: external_memory`` (and ``in_memory`` past ``external_memory_above_mb``): the training
days stay in the snapshot file and reach XGBoost a piece at a time; the version, its training key, its
gate and its reproduction are those of an in-memory fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.training import TrainingRequest, training
from retrain.adapters.workspace import write_params
from retrain.cli import app
from retrain.cli.demo_run import write_demo_batches
from tests.integration.conftest import registry_for, reviewed, workspace_settings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]


@pytest.mark.slow  # make test-all; the same bytes either side are unit-tested (tests/unit/test_external_memory.py)
def test_an_external_memory_version_is_the_in_memory_version(workspace: Path):
    write_params(workspace, {"model": {"engine": "external_memory"}})
    settings = workspace_settings(workspace)
    write_demo_batches(workspace / settings.dataset.batches, settings, 5)

    result = reviewed(lambda: training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest")))
    assert result.outcome.promoted and result.challenger.version == "1"
    checks = {check.name for check in result.decision.checks}
    assert {"absolute_floor", "calibration", "latency_single", "reviewer_approval"} <= checks

    from mlflow import MlflowClient

    run = MlflowClient().get_run(result.challenger.run_id)
    assert run.data.params["boosting"] == "external_memory"
    evidence = registry_for(workspace).load_document(result.challenger.run_id, "evidence.json")
    assert "engine" not in evidence["training_settings"]["model"]  # recorded as an in-memory model is

    # rebuilt from the evidence (a small snapshot: in memory) gives the same bytes
    rebuilt = CliRunner().invoke(app, ["reproduce", "1", "--project", str(workspace), "--json"])
    report = json.loads(rebuilt.output)
    assert rebuilt.exit_code == 0 and report["identical"], report

    # back to in memory: the same training key, so the run finds version 1 instead of training a twin
    write_params(workspace, {"model": {"engine": "in_memory"}})
    again = training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest"))
    assert again.challenger.version == "1"
    assert again.training_key == result.training_key
