"""`retrain init` turns a sample of a user's data into a project the other commands accept as it is."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from retrain.adapters.contracts import contract_hash
from retrain.cli import app
from retrain.domain.settings import load_settings

ROWS = 400


def _sample(path: Path, seed: int = 0) -> Path:
    """An adult-income-like batch: text labels, a '?' category, a date column as text, no id column."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "observed": (pd.Timestamp("2026-02-02") + pd.to_timedelta(rng.integers(0, 7, ROWS), unit="D")).strftime(
                "%Y-%m-%d"
            ),
            "age": rng.integers(18, 80, ROWS),
            "hours_per_week": rng.normal(40, 8, ROWS).round(1),
            "workclass": rng.choice(["Private", "Self-emp", "Gov", "?"], ROWS),
            "income": rng.choice(["<=50K", ">50K"], ROWS, p=[0.75, 0.25]),
        }
    )
    frame.to_csv(path, index=False)
    return path


def test_init_scaffolds_a_project_that_loads_validates_and_checks_its_contract_hash(tmp_path: Path):
    sample = _sample(tmp_path / "adult-2026-02-02.csv")
    project = tmp_path / "adult"
    runner = CliRunner()

    made = runner.invoke(app, ["init", str(project), "--data", str(sample), "--target", "income", "--name", "adult"])
    assert made.exit_code == 0, made.output
    assert "task: binary (inferred" in made.output and "positive class: '>50K'" in made.output
    assert f"retrain validate {sample} --project {project.resolve()}" in made.output
    assert f"retrain train --project {project.resolve()}" in made.output

    settings = load_settings(project / "params.yaml")  # the contract declares every column params names
    dataset = settings.dataset
    assert (dataset.task, dataset.id_column, dataset.time_column) == ("binary", None, "observed")
    assert dataset.labels is not None and dataset.labels.classes == ("<=50K", ">50K")
    assert dataset.labels.positive == ">50K"
    assert set(dataset.features.numeric) == {"age", "hours_per_week"} and dataset.features.categorical == ("workclass",)
    assert settings.drift.min_rows == ROWS // 2 and settings.gate.slices.min_rows == ROWS // 10
    assert settings.gate.slices.numeric_bins == {}  # nothing of the loan demo's columns leaks in
    released = json.loads((project / "data_contracts" / "RELEASED.json").read_text())
    assert released == {"adult/v1.json": contract_hash(project / "data_contracts/adult/v1.json")}
    assert "analytics = False" in (project / ".dvc" / "config").read_text()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True, check=True)
    assert status.stdout == ""  # what init wrote is committed

    accepted = runner.invoke(app, ["validate", str(sample), "--project", str(project)])
    assert accepted.exit_code == 0, accepted.output
    assert f"{ROWS} rows in, {ROWS} accepted, 0 quarantined" in accepted.output

    unknown = pd.read_csv(sample)
    unknown.loc[0, "income"] = "maybe"  # a label the params do not map: quarantined, not a crash
    unknown.to_csv(tmp_path / "next.csv", index=False)
    quarantined = runner.invoke(app, ["validate", str(tmp_path / "next.csv"), "--project", str(project)])
    assert quarantined.exit_code == 0, quarantined.output
    assert "1 quarantined" in quarantined.output and "'income'" in quarantined.output

    contract = project / "data_contracts/adult/v1.json"
    suite = json.loads(contract.read_text())
    suite["meta"]["description"] = "edited after its release"
    contract.write_text(json.dumps(suite))
    refused = runner.invoke(app, ["validate", str(sample), "--project", str(project)])
    assert refused.exit_code == 2
    assert "does not match its release" in refused.output and "canonical JSON" in refused.output
    again = runner.invoke(app, ["init", str(project), "--data", str(sample), "--target", "income", "--name", "adult"])
    assert again.exit_code == 2 and "exists already" in again.output
