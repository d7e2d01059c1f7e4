"""dvc.yaml is real: `dvc repro` rebuilds the flow's snapshot md5 and, with the same code as the flow,
a model byte-identical to the registered one; `dvc metrics show` and `dvc plots show` work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.training import TrainingRequest, training
from retrain.cli.demo_run import write_demo_batches
from tests.integration.conftest import registry_for, reviewed, workspace_settings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]


def _dvc(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=project, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _lock(project: Path) -> dict:
    return yaml.safe_load((project / "dvc.lock").read_text())["stages"]


@pytest.mark.template("challenger")  # v1 registered from these five days: the run finds it
def test_dvc_repro_matches_the_flow_and_shows_metrics_and_plots(workspace: Path, tmp_path: Path):
    settings = workspace_settings(workspace)
    write_demo_batches(workspace / settings.dataset.batches, settings, 5)
    result = reviewed(lambda: training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest")))
    assert result.outcome.promoted, result.outcome  # the reviewer's answer counted (no approval timeout)
    snapshot_md5 = result.snapshot.md5

    _dvc(workspace, "repro")
    lock = _lock(workspace)
    assert lock["training_set"]["outs"][0]["md5"] == snapshot_md5
    assert {p for p in lock["train"]["params"]["params.yaml"]} >= {"model.xgboost.max_depth", "split.holdout_days"}
    registered = registry_for(workspace).model_file(result.challenger.version, tmp_path / "registered")
    assert (workspace / "models" / "model.ubj").read_bytes() == registered.read_bytes()

    metrics = json.loads(_dvc(workspace, "metrics", "show", "--json").stdout)
    shown = json.dumps(metrics)
    assert "roc_auc" in shown and "metrics.json" in shown
    _dvc(workspace, "plots", "show", "--json")

    # Rebuild the snapshot from the batches alone: the same rows give the same md5.
    (workspace / settings.dataset.training_set).unlink()
    _dvc(workspace, "repro", "--force", "--single-item", "training_set")
    assert _lock(workspace)["training_set"]["outs"][0]["md5"] == snapshot_md5
