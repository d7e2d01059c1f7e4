"""Drift, debounced retraining, shadow scoring and deployments on a real Prefect API and MLflow."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.drift import DriftRequest, drift
from flows.scoring import ScoringRequest, scoring
from flows.training import TrainingRequest, training
from retrain.adapters.environment import resolve_runtime
from retrain.adapters.ledger import DecisionLog
from retrain.adapters.workspace import write_params
from retrain.application.results import DeployedTraining, DriftResult, TriggeredTraining
from retrain.cli import app
from retrain.cli.demo_run import DRIFTED_DAY, write_demo_batches
from retrain.domain.demo_data import NO_CHANGES, generate_day
from retrain.domain.lifecycle import CHALLENGER
from tests.integration.conftest import registry_for, reviewed, workspace_settings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]


def _champion(workspace: Path, days: int = 5) -> None:
    settings = workspace_settings(workspace)
    write_demo_batches(workspace / settings.dataset.batches, settings, days)
    result = reviewed(lambda: training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest")))
    assert result.outcome.promoted


def _new_day(workspace: Path, tmp_path: Path, index: int, drifted: bool) -> Path:
    """A new batch (not yet in the project's batches): a stable day, or a drifted one."""
    settings = workspace_settings(workspace)
    day = settings.demo.start_date + pd.Timedelta(days=index).to_pytimedelta()
    frame = generate_day(day, settings.demo.rows_per_day, settings.demo.seed, DRIFTED_DAY if drifted else NO_CHANGES)
    path = tmp_path / f"incoming-{index}{'-drifted' if drifted else ''}.parquet"
    frame.to_parquet(path, index=False)
    return path


def _check(workspace: Path, batch: Path, act: bool = False) -> DriftResult:
    """A drift check of one batch: report only (as `retrain drift`), or acting (as the schedule)."""
    return drift(DriftRequest(project_dir=str(workspace), batches=[str(batch)], act=act))


def acting_check(workspace: Path, batch: Path) -> DriftResult:
    """A check that acts, for tests of what it decides and records: with the ``deployed`` fixture, a
    retraining it starts is a run of the training deployment, deleted at once (nothing runs it here),
    so the next check does not see it in flight."""
    result = _check(workspace, batch, act=True)
    if isinstance(result.training, DeployedTraining):
        from uuid import UUID

        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            client.delete_flow_run(UUID(result.training.flow_run_id))
    return result


def _decisions(workspace: Path) -> list[str]:
    log = DecisionLog(resolve_runtime(project_dir=workspace).ledger_url)
    try:
        return [record.decision for record in log.records(workspace_settings(workspace).model.registered_name)]
    finally:
        log.dispose()


def _drift_runs(workspace: Path) -> list[str]:
    """The flow run ids of the workspace's drift checks (each writes its drift.json under its own id)."""
    reports = resolve_runtime(project_dir=workspace).reports_dir
    return sorted(path.parent.name for path in reports.glob("*/drift.json"))


def _flow_run(run_id: str) -> tuple[str, dict[str, str]]:
    """A flow run's final state name and its artifacts by key."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(run_id)).state
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(run_id)]))
        )
    assert state is not None
    return str(state.name), {artifact.key: str(artifact.data) for artifact in found if artifact.key}


@pytest.mark.template("champion")
def test_drift_reports_by_default_and_decides_and_retrains_only_with_act(workspace: Path, tmp_path: Path):
    runner = CliRunner()
    batch = _new_day(workspace, tmp_path, 5, drifted=True)
    args = ["drift", str(batch), "--project", str(workspace)]
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert (
        "report only: nothing decided or started (the drift signals call for a retraining); run with --act to act"
        in out
    ), out
    # the drifted features as a table: statistic, p-value as people read it, and the test
    header = next(line for line in out.splitlines() if line.split()[:2] == ["feature", "kind"])
    assert header.split() == ["feature", "kind", "statistic", "value", "threshold", "p-value", "test"]
    credit = next(line for line in out.splitlines() if line.split()[:1] == ["credit_score"])
    assert "numeric" in credit and "< 0.001" in credit and "Kolmogorov-Smirnov" in credit, credit
    table = out[out.index(header) :]
    assert "e-" not in table and "e+" not in table, table  # never 4.467e-318
    # nothing recorded: no cooldown, budget or catch-up moved, nothing started
    assert _decisions(workspace) == [] and "retraining (flow run" not in out
    (reported,) = _drift_runs(workspace)
    state, artifacts = _flow_run(reported)
    assert state == "Reported"
    markdown = artifacts["drift-report"]
    assert "# Drift check: **report only**" in markdown
    assert "report only: nothing decided or started" in markdown and "run with --act to act" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "|---" not in line]
    names = [row.split("|")[1].strip() for row in rows]
    assert all(names) and not any("<" in name for name in names), names  # no blank, no HTML tag
    assert "prediction (model output)" in names
    # the grid of every drifted feature is in the check's MLflow run, and the report links it
    registry = registry_for(workspace)
    client = registry.client
    (run,) = client.search_runs(
        [registry.experiment_id(registry.monitoring_experiment)], "tags.`retrain.kind` = 'drift'"
    )
    assert run.data.tags["retrain.decision"] == "report_only" and run.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == {"plots/drift_features.png"}
    assert f"/runs/{run.info.run_id}/artifacts/plots/drift_features.png)" in markdown
    assert f"{run.info.artifact_uri}/plots/drift_features.png" in markdown

    acted = runner.invoke(app, [*args, "--act", "--json"])
    assert acted.exit_code == 0, acted.output
    result = json.loads(acted.stdout)
    assert result["decision"] == "retrain" and result["decision_position"] is not None
    assert result["features"]["credit_score"]["details"]["ks_p"] < 0.001  # --json: raw numbers
    # the retraining ran (in process: the same days as v1, so v1 again: already champion)
    assert result["training"]["via"] == "in-process" and result["training"]["note"].startswith("already champion")
    assert _decisions(workspace) == ["retrain"]
    acted_run = next(run_id for run_id in _drift_runs(workspace) if run_id != reported)
    assert _flow_run(acted_run)[0] == "Retrain"


@pytest.mark.template("champion")
@pytest.mark.usefixtures("deployed")
def test_drift_is_flagged_then_waits_for_new_data_then_cooldown_then_budget_and_each_decision_is_recorded(
    workspace: Path, tmp_path: Path
):
    drifted = _new_day(workspace, tmp_path, 5, drifted=True)
    first = acting_check(workspace, drifted)
    assert first.decision == "retrain" and first.drift_share >= 0.3
    assert isinstance(first.training, DeployedTraining) and first.training.via == "training/nightly"
    assert {"credit_score", "annual_income", "channel"} <= set(first.drifted_features)
    assert (
        first.decided_by is not None and first.decided_by.verdict == "fires" and first.decided_by.name == first.signal
    )
    second = acting_check(workspace, drifted)  # the same data again: never a second retraining
    assert second.decision == "none" and second.signal == "catch_up"
    assert "would still train on days before the change only" in second.reasons[0]  # days 3-5: validation, holdout

    # once a retraining would see day 5, the debounce decides, on the data clock: day 8 is 72 h of
    # data after day 5, however soon it is checked
    write_params(workspace, {"retraining": {"cooldown_hours": 96}})
    third = acting_check(workspace, _new_day(workspace, tmp_path, 8, drifted=True))
    assert third.decision == "cooldown" and "(data clock); cooldown 96 h ends in 24.0 h" in third.reasons[-1]

    write_params(workspace, {"retraining": {"cooldown_hours": 0, "weekly_budget": 1}})
    fourth = acting_check(workspace, _new_day(workspace, tmp_path, 9, drifted=True))
    assert fourth.decision == "budget" and "weekly budget 1 spent" in fourth.reasons[-1]
    fifth = acting_check(workspace, drifted)  # day 5 again, after day 9: never a second retraining on it
    assert fifth.decision == "none" and fifth.signal == "catch_up"
    assert _decisions(workspace) == ["retrain", "none", "cooldown", "budget", "none"]

    shown = CliRunner().invoke(app, ["decisions", "--json", "--project", str(workspace)])
    records = json.loads(shown.output)
    assert [r["decision"] for r in records] == ["retrain", "none", "cooldown", "budget", "none"]
    assert records[0]["champion"] == "1" and records[0]["signal"] == first.signal
    assert records[0]["data_time"].startswith(str(workspace_settings(workspace).demo.start_date + dt.timedelta(days=5)))


@pytest.mark.slow  # make test-all, beside the ten simultaneous checks that start exactly one retraining
@pytest.mark.template("champion")
def test_a_training_run_waiting_for_reviewers_is_in_flight(workspace: Path, tmp_path: Path):
    from tests.integration.test_approval import PausedRun

    write_params(workspace, {"model": {"xgboost": {"max_depth": 3}}})  # a new training key: a new version
    paused = PausedRun(lambda: training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest")))
    try:
        result = _check(workspace, _new_day(workspace, tmp_path, 5, drifted=True), act=True)
        assert result.decision == "in_flight" and "(Paused)" in result.reasons[-1]
    finally:
        from retrain.adapters.prefect_api import submit_decision
        from tests.integration.conftest import approve

        submit_decision(str(paused.run_id), approve("grace"))
        paused.result()


@pytest.mark.slow  # make test-all; make test retrains on drift in test_task_lifecycle and with --act above
@pytest.mark.template("champion")
def test_drift_retrains_in_process_promotes_and_rebaselines(workspace: Path, tmp_path: Path):
    settings = workspace_settings(workspace)
    batch = write_demo_batches(workspace / settings.dataset.batches, settings, 6, drift_from=5)[-1]
    result = reviewed(lambda: _check(workspace, batch, act=True))

    assert result.decision == "retrain"
    training_result = result.training
    assert isinstance(training_result, TriggeredTraining)
    assert training_result.via == "in-process" and training_result.promoted
    registry = registry_for(workspace)
    champion = registry.by_alias("champion")
    assert champion is not None and champion.version == training_result.challenger_version == "2"
    from retrain.adapters.ledger import Ledger

    ledger = Ledger(resolve_runtime(project_dir=workspace).ledger_url)
    promotion = ledger.entries(settings.model.registered_name)[-1]
    ledger.dispose()
    assert promotion.actor == "drift-monitor" and promotion.evidence["reason"].startswith("drift run ")
    # The new champion's own profile is now the reference; the next check compares with it.
    # (the same day again: a retraining would still train on the days before it, so nothing to do)
    again = _check(workspace, batch, act=True)
    assert again.champion == "2" and again.decision == "none", again.reasons


@pytest.mark.template("champion")
def test_unseen_categories_and_all_missing_columns_do_not_crash_the_flow(workspace: Path, tmp_path: Path):
    frame = pd.read_parquet(_new_day(workspace, tmp_path, 5, drifted=False))
    frame["region"] = "atlantis"
    frame["annual_income"] = float("nan")
    path = tmp_path / "odd.parquet"
    frame.to_parquet(path, index=False)
    result = _check(workspace, path)
    assert result.features["region"].drifted and result.features["annual_income"].drifted
    assert result.decision == "report_only" and result.decision_position is None and _decisions(workspace) == []


@pytest.mark.template("champion")
def test_scoring_writes_versions_and_compares_the_shadow_challenger(workspace: Path, tmp_path: Path):
    write_params(workspace, {"model": {"xgboost": {"max_depth": 1, "num_boost_round": 5}}})
    refused = reviewed(lambda: training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest")))
    assert not refused.outcome.promoted
    batch = _new_day(workspace, tmp_path, 5, drifted=False)
    alone = scoring(ScoringRequest(batch=str(batch), project_dir=str(workspace)))
    assert alone.challenger is None and alone.shadow is None  # refused: no alias, never shadow-scored

    registry_for(workspace).set_alias(CHALLENGER, "2")  # as while v2 waits for its reviewers
    result = scoring(ScoringRequest(batch=str(batch), project_dir=str(workspace)))
    predictions = pd.read_parquet(result.predictions)
    assert set(predictions["model_version"]) == {"1"} and set(predictions["shadow_model_version"]) == {"2"}
    assert len(predictions) == result.rows and predictions["score"].between(0, 1).all()
    shadow = result.shadow
    assert shadow is not None and shadow.gains is not None and result.mlflow_run is not None
    assert 0.5 < shadow.agreement <= 1 and shadow.labelled_rows == result.rows
    assert shadow.gains["roc_auc"] < 0  # the shallow shadow model is worse, seen once labels are there
    recorded = registry_for(workspace).client.get_run(result.mlflow_run).data
    assert recorded.metrics["shadow_gain_roc_auc"] == pytest.approx(shadow.gains["roc_auc"])
    assert recorded.tags["retrain.champion"] == "1" and recorded.tags["retrain.shadow"] == "2"


@pytest.mark.template("champion")
def test_score_reports_the_champion_on_labels_and_counts_unseen_categories(workspace: Path, tmp_path: Path):
    settings = workspace_settings(workspace)
    target, feature = settings.dataset.target, settings.dataset.features.categorical[0]
    frame = pd.read_parquet(_new_day(workspace, tmp_path, 5, drifted=False))
    frame.loc[frame.index[:7], feature] = "atlantis"  # a category the champion never saw
    frame.loc[frame.index[7:10], target] = None  # rows whose label has not come yet
    batch, output = tmp_path / "labelled.parquet", tmp_path / "scores.parquet"
    frame.to_parquet(batch, index=False)

    args = ["score", str(batch), "--project", str(workspace), "--output", str(output)]
    done = CliRunner().invoke(app, [*args, "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["challenger"] is None  # no shadow: the champion is measured all the same
    assert result["labelled_rows"] == len(frame) - 3 and 0.5 < result["metrics"]["roc_auc"] <= 1
    assert result["unseen_categories"][feature] == 7
    assert sum(result["unseen_categories"].values()) == 7
    assert f"warning: 7 of {len(frame)} rows carry a {feature} category the model never saw" in done.stderr
    predictions = pd.read_parquet(output)
    assert list(predictions.columns).index(target) == list(predictions.columns).index("score") + 1
    assert predictions[target].isna().sum() == 3
    assert (predictions[target].dropna().to_numpy() == frame[target].dropna().to_numpy()).all()


@pytest.mark.slow  # ten flows at once: over half a minute of a two-core machine (make test-all)
@pytest.mark.template("champion")
@pytest.mark.usefixtures("deployments_removed_after")
def test_ten_simultaneous_drift_checks_start_exactly_one_retraining(workspace: Path, tmp_path: Path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter

    from retrain.deploy.deployments import deploy_all

    deploy_all(workspace_settings(workspace), workspace)  # a trigger now runs the deployment (no worker here)
    batch = _new_day(workspace, tmp_path, 5, drifted=True)
    results: list[DriftResult] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(10)

    def check() -> None:
        barrier.wait()
        try:
            results.append(drift(DriftRequest(project_dir=str(workspace), batches=[str(batch)])))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=check) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors
    decisions = sorted(result.decision for result in results)
    assert decisions.count("retrain") == 1 and len(decisions) == 10
    assert set(decisions) - {"retrain"} <= {"cooldown", "in_flight", "none"}
    # a check decided after the retraining was recorded: its catch-up waits for data after the change
    assert all(result.signal == "catch_up" for result in results if result.decision == "none")
    triggered = next(result for result in results if result.decision == "retrain").training
    assert isinstance(triggered, DeployedTraining)
    assert triggered.via == "training/nightly"
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("training/nightly")
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment.name])),
            flow_run_filter=FlowRunFilter(),
        )
        started = [run for run in runs if "drift-triggered" in run.tags]
        for run in runs:  # nothing will run them here: delete them so no other test waits behind them
            client.delete_flow_run(run.id)
    assert [str(run.id) for run in started] == [triggered.flow_run_id]
    assert started[0].parameters["request"]["triggered_by"] == "drift-monitor"


@pytest.mark.usefixtures("deployments_removed_after")
def test_deploy_registers_schedules_and_forms_visible_through_the_api(workspace: Path):
    from prefect.client.orchestration import get_client

    shown = CliRunner().invoke(app, ["deploy", "--project", str(workspace)])
    assert shown.exit_code == 0, shown.output
    with get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name("training/nightly")
        check = client.read_deployment_by_name("drift/drift-check")
        score = client.read_deployment_by_name("scoring/score-batch")
        roll_back = client.read_deployment_by_name("rollback/on-request")
        labels = client.read_deployment_by_name("feedback/join-labels")
        purge = client.read_deployment_by_name("purge/retention")
        pool = client.read_work_pool("retrain-process")
    assert pool.type == "process"
    assert [s.schedule.cron for s in nightly.schedules] == ["0 2 * * *"]  # type: ignore[union-attr]
    assert [s.schedule.cron for s in check.schedules] == ["30 * * * *"]  # type: ignore[union-attr]
    assert check.parameters["request"]["act"] is True  # the scheduled check acts; `retrain drift` reports
    limit = nightly.global_concurrency_limit
    assert not score.schedules and limit is not None and limit.limit == 1  # never two nightly runs at once
    assert nightly.entrypoint == "flows.training.training"
    schema = nightly.parameter_openapi_schema or {}
    assert "request" in schema["properties"] and "TrainingRequest" in json.dumps(schema)  # the UI's form
    assert nightly.parameters["request"]["project_dir"] == str(workspace)
    assert not roll_back.schedules and "reason" not in roll_back.parameters["request"]  # the form asks why
    assert not labels.schedules and labels.entrypoint == "flows.feedback.feedback"
    assert [s.schedule.cron for s in purge.schedules] == ["0 3 * * *"]  # type: ignore[union-attr]
    assert purge.parameters["request"]["reason"] == "scheduled retention" and purge.entrypoint == "flows.purge.purge"


@pytest.mark.usefixtures("deployments_removed_after")
def test_serve_serves_the_deployments_from_one_process(workspace: Path):
    import prefect.settings
    from prefect.client.orchestration import get_client

    api = prefect.settings.get_current_settings().api.url
    env = {**os.environ, "PREFECT_API_URL": str(api)}
    process = subprocess.Popen(
        [sys.executable, "-m", "retrain.cli", "serve", "--project", str(workspace)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        found: set[str] = set()
        while time.monotonic() < deadline and len(found) < 6:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            with get_client(sync_client=True) as client:
                deployments = client.read_deployments()
                flows = {f.id: f.name for f in client.read_flows()}
            found = {
                f"{flows.get(d.flow_id)}/{d.name}"
                for d in deployments
                if d.parameters.get("request", {}).get("project_dir") == str(workspace)
            }
            time.sleep(1)
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    expected = {"training/nightly", "drift/drift-check", "scoring/score-batch", "feedback/join-labels"}
    assert found == expected | {"rollback/on-request", "purge/retention"}, output[-3000:]


@pytest.mark.template("champion")
@pytest.mark.slow  # every monitor twice over a batch: make test-all (the pieces are unit-tested)
def test_a_batch_read_in_small_pieces_scores_and_drifts_exactly_as_read_whole(workspace: Path, tmp_path: Path):
    """``monitoring.piece_rows`` bounds the rows in memory, not the result: the same predictions file
    content, the same metrics and the same drift statistics as one piece."""
    import pyarrow.parquet as pq

    write_params(workspace, {"model": {"xgboost": {"max_depth": 1, "num_boost_round": 5}}})
    reviewed(lambda: training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest")))  # refused
    registry_for(workspace).set_alias(CHALLENGER, "2")  # a shadow, as while it waits for its reviewers
    batch = _new_day(workspace, tmp_path, 5, drifted=True)
    results = {}
    for piece_rows in (97, 1_000_000):
        write_params(workspace, {"monitoring": {"piece_rows": piece_rows}})
        output = tmp_path / f"scores-{piece_rows}.parquet"
        scored = scoring(ScoringRequest(batch=str(batch), project_dir=str(workspace), output=str(output)))
        checked = _check(workspace, batch)
        results[piece_rows] = (scored, pd.read_parquet(output), pq.ParquetFile(output).num_row_groups, checked)
    (small, small_rows, small_groups, small_drift), (whole, whole_rows, whole_groups, whole_drift) = results.values()
    assert small_groups > 1 and whole_groups == 1  # written a piece at a time
    pd.testing.assert_frame_equal(small_rows, whole_rows)
    assert small.metrics == whole.metrics and small.unseen_categories == whole.unseen_categories
    assert small.shadow is not None and whole.shadow is not None
    assert small.shadow.agreement == whole.shadow.agreement
    assert small_drift.features == whole_drift.features and small_drift.prediction == whole_drift.prediction
    assert small_drift.performance == whole_drift.performance and small_drift.rows == whole_drift.rows
    assert small_drift.drift_share == whole_drift.drift_share and small_drift.drifted_features
