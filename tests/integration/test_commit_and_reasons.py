"""What `retrain train` and `retrain ingest` say and record: the gate's reasons by check, and with
--commit the data-version files committed to the project's git (nothing else), naming the run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from retrain.adapters.workspace import write_params
from retrain.cli import app
from retrain.domain import tags
from retrain.domain.demo_data import NO_CHANGES, generate_day
from tests.integration.conftest import registry_for, workspace_settings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.mark.template("challenger")
def test_train_and_ingest_say_why_and_commit_only_the_data_versions(workspace: Path, tmp_path: Path):
    write_params(workspace, {"gate": {"floor": 0.999}})  # v1 is found by its training key, judged, refused
    (workspace / "notes.txt").write_text("the user's own file\n")
    runner = CliRunner()
    key_before = registry_for(workspace).by_version("1").tags[tags.TAG_TRAINING_KEY]

    trained = runner.invoke(app, ["train", "--project", str(workspace), "--commit"])
    assert trained.exit_code == 0, trained.output
    lines = trained.output.splitlines()
    assert "refused: champion unchanged: champion none, challenger v1" in lines
    floor = next(line for line in lines if line.startswith("  - absolute_floor: "))
    assert "misses the floor 0.9990" in floor  # the check by name, its value against the threshold
    subject = _git(workspace, "log", "-1", "--format=%s").strip()
    assert subject.startswith("retrain train: ") and " v1 from snapshot " in subject and "(flow run " in subject
    committed = set(_git(workspace, "show", "--name-only", "--format=", "HEAD").split())
    assert "dvc.lock" in committed and committed <= {
        "dvc.lock",
        "data/.gitignore",
        "data/training/.gitignore",
        "data/quarantine.dvc",
        "data/batches.dvc",
    }
    status = _git(workspace, "status", "--porcelain")
    assert " M params.yaml" in status and "?? notes.txt" in status  # the user's changes stay theirs
    assert registry_for(workspace).by_version("1").tags[tags.TAG_TRAINING_KEY] == key_before

    settings = workspace_settings(workspace)
    day = settings.demo.start_date + pd.Timedelta(days=5).to_pytimedelta()
    batch = tmp_path / "loans-new-day.parquet"
    generate_day(day, 400, settings.demo.seed, NO_CHANGES).to_parquet(batch, index=False)
    ingested = runner.invoke(app, ["ingest", str(batch), "--project", str(workspace), "--commit"])
    assert ingested.exit_code == 0, ingested.output
    assert _git(workspace, "log", "-1", "--format=%s").startswith("retrain ingest: batch loans-new-day.parquet")
    assert "data/batches.dvc" in _git(workspace, "show", "--name-only", "--format=", "HEAD").split()

    again = runner.invoke(app, ["ingest", str(batch), "--project", str(workspace), "--commit"])
    assert again.exit_code == 0 and "already ingested" in again.output
    assert "git: nothing to commit" in again.output
