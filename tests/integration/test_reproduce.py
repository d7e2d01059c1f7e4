"""`retrain reproduce`: rebuild a registered model from its evidence and compare it byte for byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.training import TrainingRequest, training
from retrain.cli import app
from tests.integration.conftest import registry_for, reviewed, workspace_settings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api"), pytest.mark.template("champion")]


@pytest.fixture
def trained(workspace: Path) -> Path:
    """v1 trained on five demo days and promoted (the session's champion template, copied)."""
    return workspace


def _reproduce(workspace: Path) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["reproduce", "1", "--project", str(workspace), "--json"])
    return result.exit_code, json.loads(result.output) if result.output.strip().startswith("{") else {}


def test_rebuild_is_byte_identical_from_the_cache_and_from_the_remote(trained: Path):
    code, report = _reproduce(trained)
    assert code == 0, report
    assert report["identical"] and report["data_source"] == "cache"
    assert report["registered_sha256"] == report["rebuilt_sha256"]

    # Lose the workspace's DVC cache and snapshot: the data comes back from the remote by its md5.
    shutil.rmtree(trained / ".dvc" / "cache")
    (trained / "data" / "training" / "loans.parquet").unlink()
    code, report = _reproduce(trained)
    assert code == 0 and report["identical"] and report["data_source"] == "remote"


def test_a_registered_file_that_is_not_what_the_evidence_says_is_reported(trained: Path, tmp_path: Path):
    import xgboost as xgb

    registry = registry_for(trained)
    registered = registry.model_file("1", tmp_path / "probe")
    # Replace the stored model file in the artifact store with a different (tampered) model.
    stored = next((trained.parent / "mlflow-artifacts").rglob("model.ubj"))
    booster = xgb.Booster()
    booster.load_model(str(registered))
    stored.write_bytes(bytes(booster[:1].save_raw("ubj")))

    result = CliRunner().invoke(app, ["reproduce", "1", "--project", str(trained)])
    assert result.exit_code == 1
    assert "NOT identical" in result.output and "first differing byte" in result.output


@pytest.mark.template("empty")  # it counts fits: the flow must train v1 itself
def test_the_flow_retrain_fit_and_reproduce_fit_through_the_one_recipe(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Every model version is fitted by retrain.domain.fitting (the only caller of train_model): the
    flow's registered bytes, `retrain fit`'s model.ubj and reproduce's rebuild come out of it alike."""
    import hashlib

    from retrain.adapters import files
    from retrain.cli.demo_run import write_demo_batches
    from retrain.domain import fitting
    from retrain.domain.training import train_model as original

    fitted: list[str] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        model = original(*args, **kwargs)
        fitted.append(hashlib.sha256(bytes(model.booster.save_raw("ubj"))).hexdigest())
        return model

    monkeypatch.setattr("retrain.domain.fitting.train_model", recording)
    settings = workspace_settings(workspace)
    write_demo_batches(workspace / settings.dataset.batches, settings, 5)
    result = reviewed(lambda: training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest")))
    registered = registry_for(workspace).model_file(result.challenger.version, tmp_path / "registered")
    registered_sha = hashlib.sha256(registered.read_bytes()).hexdigest()
    assert fitted == [registered_sha]  # the flow: one fit, through the recipe

    fit = CliRunner().invoke(app, ["fit", "--project", str(workspace)])
    assert fit.exit_code == 0, fit.output
    assert hashlib.sha256((workspace / "models" / "model.ubj").read_bytes()).hexdigest() == registered_sha
    assert fitted == [registered_sha] * 2  # `retrain fit` (the DVC train stage)

    code, report = _reproduce(workspace)
    assert code == 0 and report["identical"], report
    assert report["rebuilt_sha256"] == registered_sha
    assert fitted == [registered_sha] * 3  # `retrain reproduce`

    frame = files.read_snapshot(workspace / settings.dataset.training_set)
    direct = fitting.fit_snapshot(frame, settings.dataset, settings.split, settings.model)
    assert hashlib.sha256(direct.model_bytes()).hexdigest() == registered_sha
