"""`retrain reproduce`: rebuild a registered model from its evidence and compare it byte for byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retrain.cli import app
from tests.integration.conftest import registry_for

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
