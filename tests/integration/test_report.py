"""`retrain report`: one self-contained HTML dashboard from what the flows recorded."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.drift import DriftRequest, drift
from flows.scoring import ScoringRequest, scoring
from retrain.cli import app
from retrain.domain.demo_data import generate_day
from tests.integration.conftest import registry_for, workspace_settings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api"), pytest.mark.template("champion")]


def test_the_dashboard_shows_versions_traffic_drift_decisions_durations_and_training_resources(
    workspace: Path, tmp_path: Path
):
    settings = workspace_settings(workspace)
    day = settings.demo.start_date + pd.Timedelta(days=5).to_pytimedelta()
    batch = tmp_path / "day-5.parquet"
    generate_day(day, settings.demo.rows_per_day, settings.demo.seed).to_parquet(batch, index=False)
    drift(DriftRequest(project_dir=str(workspace), batches=[str(batch)]))
    scored = scoring(ScoringRequest(batch=str(batch), project_dir=str(workspace)))
    assert scored.metrics is not None

    output = tmp_path / "board.html"
    done = CliRunner().invoke(app, ["report", "--project", str(workspace), "--output", str(output), "--json"])
    assert done.exit_code == 0, done.output
    written = json.loads(done.output)
    assert written["path"] == str(output) and written["versions"] == 1 and written["drift_checks"] == 1
    assert set(written["figures"]) == {"metrics", "drift", "durations", "resources"}

    page = output.read_text(encoding="utf-8")
    images = re.findall(r'data-plot="(\w+)"[^>]*src="data:image/png;base64,([^"]+)"', page)
    assert [key for key, _ in images] == ["metrics", "drift", "durations", "resources"]
    assert all(base64.b64decode(data).startswith(b"\x89PNG") for _, data in images)
    assert "champion: v1" in page and "<td>promotion</td>" in page
    assert f"scoring-{batch.stem}" in page  # the realized metric of the labelled batch
    assert re.search(r"<td>1</td><td>[\d.]+</td><td>[\d.]+</td><td>[\d.]+</td></tr></tbody></table></body>", page)

    # the page is an MLflow artifact too, and v1's run carries MLflow's system metrics
    registry = registry_for(workspace)
    client = registry.client
    run = client.get_run(written["mlflow_run"])
    assert "dashboard.html" in [item.path for item in client.list_artifacts(run.info.run_id)]
    champion = registry.by_version("1")
    assert client.get_metric_history(champion.run_id, "system/cpu_utilization_percentage")
    assert client.get_metric_history(champion.run_id, "system/process_rss_megabytes")
