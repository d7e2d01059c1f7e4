"""A project whose data has no id column and writes `?` for missing values: train, then score.

The loan contract declares ``loan_id``; this project drops it from the data and from a contract of
its own, omits ``dataset.id_column`` from params.yaml and declares ``?`` as missing in three columns.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from flows.scoring import ScoringRequest, scoring
from flows.training import TrainingRequest, training
from retrain.adapters.contracts import release_contract
from retrain.cli.demo_run import write_demo_batches
from retrain.domain.rowkey import SOURCE_BATCH, SOURCE_ROW
from tests.integration.conftest import reviewed, workspace_settings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]

ID = "loan_id"
TOKENS = {"loan_amount": ["?"], "purpose": ["?"], "employment_type": ["?"]}


def _without_id(project: Path) -> None:
    """Contract v4 = v3 without the id column; params without id_column, with missing-value tokens."""
    contracts = project / "data_contracts" / "loans"
    suite = json.loads((contracts / "v3.json").read_text())
    kept = []
    for expectation in suite["expectations"]:
        kwargs = expectation["kwargs"]
        if kwargs.get("column") == ID:
            continue
        if "column_set" in kwargs:
            kwargs["column_set"] = [c for c in kwargs["column_set"] if c != ID]
        kept.append(expectation)
    suite["expectations"] = kept
    (contracts / "v4.json").write_text(json.dumps(suite, indent=2))
    release_contract(project / "data_contracts", "loans", 4)  # as `retrain contract release loans 4`
    params = yaml.safe_load((project / "params.yaml").read_text())
    del params["dataset"]["id_column"]
    params["dataset"]["missing_values"] = TOKENS
    params["contract"]["version"] = 4
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _as_user_csv(path: Path, marked: int) -> Path:
    """The demo batch as a user's CSV export: no id column, ``?`` in ``marked`` rows of two columns."""
    frame = pd.read_parquet(path).drop(columns=[ID]).astype({"loan_amount": "object", "employment_type": "object"})
    frame.loc[: marked - 1, "loan_amount"] = "?"  # not null (row tier): these rows go to quarantine
    frame.loc[marked : 2 * marked - 1, "employment_type"] = "?"  # nullable: read as missing, rows kept
    target = path.with_suffix(".csv")
    frame.to_csv(target, index=False)
    path.unlink()
    return target


def test_data_without_id_and_with_question_marks_trains_and_scores(workspace: Path, tmp_path: Path):
    _without_id(workspace)
    settings = workspace_settings(workspace)
    assert settings.dataset.id_column is None
    batches = [_as_user_csv(p, 4) for p in write_demo_batches(workspace / settings.dataset.batches, settings, 5)]

    result = reviewed(lambda: training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest")))

    assert result.outcome.promoted
    snapshot = pd.read_parquet(workspace / settings.dataset.training_set)
    assert ID not in snapshot.columns
    assert len(snapshot) == 5 * (settings.demo.rows_per_day - 4)  # the ? in loan_amount: quarantined
    assert snapshot["loan_amount"].dtype == "float64" and snapshot["loan_amount"].notna().all()
    assert "?" not in set(snapshot["employment_type"].dropna())  # read as missing, those rows kept
    assert snapshot[settings.dataset.time_column].is_monotonic_increasing
    quarantine = pd.read_parquet(workspace / settings.dataset.quarantine / f"{batches[0].stem}.parquet")
    assert quarantine[SOURCE_ROW].tolist() == [0, 1, 2, 3]
    assert quarantine["loan_amount"].isna().all()

    scored = scoring(
        ScoringRequest(batch=str(batches[-1]), project_dir=str(workspace), output=str(tmp_path / "p.parquet"))
    )

    predictions = pd.read_parquet(scored.predictions)
    assert ID not in predictions.columns
    assert predictions[SOURCE_BATCH].unique().tolist() == [batches[-1].name]
    assert predictions[SOURCE_ROW].tolist() == list(range(settings.demo.rows_per_day))
    assert predictions["score"].between(0, 1).all()
