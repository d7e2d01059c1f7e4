"""Late labels: scores written today, labels joined days later by `retrain feedback`, once."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from retrain.adapters.environment import resolve_runtime
from retrain.adapters.workspace import write_params
from retrain.application.feedback import FEEDBACK_LOG, predictions_dir
from retrain.cli import app
from retrain.domain.demo_data import generate_day
from tests.integration.conftest import workspace_settings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api"), pytest.mark.template("champion")]


def _invoke(*arguments: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, list(arguments))
    return done.exit_code, done.output


def test_labels_that_arrive_later_join_the_stored_scores_once_and_the_rest_is_reported(workspace: Path, tmp_path: Path):
    settings = workspace_settings(workspace)
    data = settings.dataset
    assert data.id_column is not None
    day = settings.demo.start_date + pd.Timedelta(days=6).to_pytimedelta()
    rows = generate_day(day, 400, settings.demo.seed)
    unlabelled = tmp_path / "today.parquet"
    rows.drop(columns=[data.target]).to_parquet(unlabelled, index=False)
    code, output = _invoke("score", str(unlabelled), "--project", str(workspace))
    assert code == 0, output
    stored = predictions_dir(resolve_runtime(project_dir=workspace)) / "today.parquet"
    assert data.target not in pd.read_parquet(stored).columns  # scored without labels

    # a week later: labels for 300 of the rows, one id nobody scored, one id twice with two labels
    known = rows[[data.id_column, data.target]].head(300)
    late = pd.concat(
        [
            known,
            pd.DataFrame({data.id_column: ["no-such-loan"], data.target: [1]}),
            pd.DataFrame({data.id_column: [rows[data.id_column].iloc[350]] * 2, data.target: [0, 1]}),
        ],
        ignore_index=True,
    )
    labels = tmp_path / "labels-week-1.csv"
    late.to_csv(labels, index=False)
    code, output = _invoke("feedback", str(labels), "--project", str(workspace), "--json")
    assert code == 0, output
    first = json.loads(output)
    assert (first["rows"], first["joined"], first["already_known"]) == (303, 300, 0)
    assert first["unknown_ids"] == ["no-such-loan"] and first["files_changed"] == ["today.parquet"]
    assert first["conflicting_ids"] == [str(rows[data.id_column].iloc[350])]
    joined = pd.read_parquet(stored)
    by_id = joined.set_index(data.id_column)[data.target]
    expected = known.set_index(data.id_column)[data.target]
    assert by_id.loc[expected.index].astype(int).tolist() == expected.tolist()
    assert int(by_id.notna().sum()) == 300 and len(joined) == 400  # the other rows wait for theirs

    # the same file again changes nothing and says so; the log keeps both calls
    code, output = _invoke("feedback", str(labels), "--project", str(workspace))
    assert code == 0, output
    assert "0 label(s) joined to stored scores in 0 file(s), 300 already known" in output
    assert "warning: 1 id(s) have no stored score: no-such-loan" in output
    pd.testing.assert_frame_equal(pd.read_parquet(stored), joined)
    log = (stored.parent / FEEDBACK_LOG).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["joined"] for line in log] == [300, 0]


def test_feedback_in_a_project_without_an_id_column_says_what_to_do(workspace: Path, tmp_path: Path):
    write_params(workspace, {"dataset": {"id_column": None}})
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"loan_id": ["a"], "defaulted": [1]}).to_csv(labels, index=False)
    code, output = _invoke("feedback", str(labels), "--project", str(workspace))
    assert code == 1
    assert "dataset.id_column is not set" in output and "Traceback" not in output
