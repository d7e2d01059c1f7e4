"""The real training flow under a real Prefect API, MLflow on sqlite and DVC in a tmp git repo."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from uuid import UUID

import pandas as pd
import pytest

from flows.training import TrainingRequest, training
from retrain.adapters.environment import resolve_runtime
from retrain.application.results import TrainingResult
from retrain.application.status import lifecycle_status
from retrain.cli.demo_run import write_demo_batches
from retrain.domain.demo_data import DayChanges, SchemaBreak, generate_day
from retrain.domain.errors import ContractViolation
from retrain.domain.tags import DECISION_DOCUMENT, TAG_DATA_MD5, TAG_DECISION, TAG_TRAINING_KEY
from tests.integration.conftest import registry_for, reviewed, workspace_settings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]

WEAK_MODEL = {"model": {"xgboost": {"max_depth": 1, "num_boost_round": 3}}}


def _set_params(workspace: Path, overrides: dict) -> None:
    from retrain.adapters.workspace import write_params

    write_params(workspace, overrides)


def _run(workspace: Path) -> TrainingResult:
    return reviewed(lambda: training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest", reason="test")))


def _as_listed(flow_run_id: str) -> tuple[str, str, str, list[str]]:
    """What the Prefect UI's runs list shows of a run: state type and name, run name, tags."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
    assert run.state is not None
    return run.state.type.value, str(run.state.name), run.name, list(run.tags)


def _batches(workspace: Path, days: int) -> None:
    settings = workspace_settings(workspace)
    write_demo_batches(workspace / settings.dataset.batches, settings, days)


def _artifacts(flow_run_id: str) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(flow_run_id)]))
        )
    return {artifact.key: str(artifact.data) for artifact in found if artifact.key}


def test_first_run_makes_a_champion_with_lineage_plots_and_reports(workspace: Path):
    _batches(workspace, 5)
    result = _run(workspace)

    assert result.outcome.promoted and result.outcome.note == "first champion"
    status = lifecycle_status(registry_for(workspace))
    champion = status["champion"]
    assert champion["version"] == "1" and status["challenger"] is None and status["previous-champion"] is None
    assert 0.6 < champion["metrics"]["roc_auc"] < 0.95
    assert set(champion["metrics"]) >= {"roc_auc", "pr_auc", "log_loss", "brier"}
    contract = workspace_settings(workspace).contract
    assert champion["contract"] == {"name": contract.name, "version": contract.version}
    # the version: a handful of short tags (its decision, data, contract, key); the rest is on its run
    assert set(champion["tags"]) == {
        TAG_TRAINING_KEY,
        TAG_DATA_MD5,
        "retrain.contract_name",
        "retrain.contract_version",
        TAG_DECISION,
    }

    # The data md5 recorded on the model is the one DVC wrote into dvc.lock, and the remote holds it.
    lock = (workspace / "dvc.lock").read_text()
    assert champion["data_md5"] and champion["data_md5"] in lock
    md5 = champion["data_md5"]
    assert (Path(str(workspace.parent / "dvc-remote")) / "files" / "md5" / md5[:2] / md5[2:]).is_file()

    # MLflow holds the four plots and the native-format model (no pickle).
    from mlflow import MlflowClient

    client = MlflowClient()
    assert client.get_run(champion["run_id"]).data.tags["retrain.triggered_by"] == "pytest"
    plots = {a.path for a in client.list_artifacts(champion["run_id"], "plots")}
    assert plots == {
        "plots/roc.png",
        "plots/precision_recall.png",
        "plots/calibration.png",
        "plots/feature_importance.png",
    }
    registry = registry_for(workspace)
    booster, spec = registry.load("1")
    assert booster.num_boosted_rounds() > 0 and spec.categorical

    artifacts = _artifacts(result.flow_run_id)
    assert {"data-validation", "gate-decision"} <= set(artifacts)
    assert "absolute_floor" in artifacts["gate-decision"] and "PROMOTED" in artifacts["gate-decision"]
    gate_json = Path(workspace.parent / "state" / "reports" / result.flow_run_id / "gate.json")
    assert json.loads(gate_json.read_text())["promote"] is True


def test_weak_first_model_below_the_floor_gets_no_alias(workspace: Path):
    _set_params(workspace, WEAK_MODEL)
    _batches(workspace, 5)
    result = _run(workspace)

    assert not result.outcome.promoted
    assert any("misses the floor" in reason for reason in result.outcome.reasons)
    status = lifecycle_status(registry_for(workspace))
    assert status["champion"] is None and status["challenger"] is None  # refused: no alias, no shadow
    assert [(row["version"], row["state"]) for row in status["versions"]] == [("1", "refused")]


def test_better_challenger_is_promoted_and_previous_champion_kept(workspace: Path):
    _set_params(workspace, {**WEAK_MODEL, "gate": {"floor": 0.5}})
    _batches(workspace, 5)
    first = _run(workspace)
    assert first.outcome.champion_version == "1"

    _set_params(workspace, {"model": {"xgboost": {"max_depth": 4, "num_boost_round": 400}}})
    _batches(workspace, 8)
    second = _run(workspace)

    assert second.outcome.promoted, second.decision
    status = lifecycle_status(registry_for(workspace))
    assert status["champion"]["version"] == "2"
    assert status["previous-champion"]["version"] == "1"
    assert status["challenger"] is None
    assert status["champion"]["tags"][TAG_DECISION] == "promoted"
    assert [(row["version"], row["state"]) for row in status["versions"]] == [
        ("2", "champion"),
        ("1", "previous champion"),
    ]
    # Both models were scored on the same (new) holdout rows.
    assert second.champion_before is not None and second.champion_before.metrics is not None
    assert second.champion_before.version == "1"
    assert second.challenger.metrics["roc_auc"] > second.champion_before.metrics["roc_auc"]
    state_type, state_name, name, tags = _as_listed(second.flow_run_id)
    model = workspace_settings(workspace).model.registered_name
    assert (state_type, state_name) == ("COMPLETED", "Promoted")
    assert name == f"train {model} v2 on {second.snapshot.first_day}..{second.snapshot.last_day} (pytest)"
    assert {f"model:{model}", "decision:promoted"} <= set(tags)
    # and in MLflow: the run named by model and version with its decision, the version's one-line why
    registry = registry_for(workspace)
    version = registry.client.get_model_version(model, "2")
    assert version.description == "promoted: all checks passed"
    run = registry.client.get_run(str(version.run_id))
    assert run.info.run_name == f"{model} v2" and run.data.tags["retrain.decision"] == "promoted"
    assert "holdout_roc_auc" in run.data.metrics
    experiment = registry.client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # not the GenAI page


@pytest.mark.template("champion")
def test_worse_challenger_is_refused_and_champion_unchanged(workspace: Path):
    _set_params(workspace, WEAK_MODEL)
    refused = _run(workspace)

    assert not refused.outcome.promoted
    assert any(
        r.startswith("non-inferiority: the lower bound of the 95% CI of the roc_auc gain, ") and "does not exceed" in r
        for r in refused.outcome.reasons
    )
    registry = registry_for(workspace)
    model = workspace_settings(workspace).model.registered_name
    status = lifecycle_status(registry, resolve_runtime(project_dir=workspace).ledger_url, "roc_auc")
    assert status["champion"]["version"] == "1"
    assert status["challenger"] is None  # refused for good: the alias goes, shadow scoring stops with it
    assert status["previous-champion"] is None
    assert [(row["version"], row["state"]) for row in status["versions"]] == [("2", "refused"), ("1", "champion")]
    # the comparison status shows is the gate's, both models on the same holdout rows
    gate = status["latest_gate"]
    assert (gate["challenger"], gate["champion"], gate["outcome"], gate["metric"]) == ("2", "1", "refused", "roc_auc")
    judged = refused.champion_before
    assert judged is not None and judged.metrics is not None
    assert gate["champion_value"] == pytest.approx(judged.metrics["roc_auc"])
    assert gate["challenger_value"] == pytest.approx(refused.challenger.metrics["roc_auc"])
    assert gate["ci"][0] <= gate["gain"] <= gate["ci"][1] and gate["rows"] > 0
    # the version carries a handful of short tags; what the decision was taken on is an artifact
    version = registry.client.get_model_version(model, "2")
    assert version.tags[TAG_DECISION] == "refused" and len(version.tags) <= 5
    assert all(len(value) <= 64 for value in version.tags.values())
    record = registry.load_document(str(version.run_id), DECISION_DOCUMENT)
    assert record["decision"] == "refused" and "CI [" in record["reasons"] and record["champion_before"] == "1"
    assert {check["name"] for check in record["checks"]} >= {"absolute_floor", "non_inferiority"}
    state_type, state_name, name, run_tags = _as_listed(refused.flow_run_id)
    assert (state_type, state_name) == ("COMPLETED", "Refused") and " v2 on " in name
    assert "decision:refused" in run_tags
    description = str(version.description)
    assert description.startswith("refused: ") and "non-inferiority" in description


def test_contract_breaking_batch_fails_the_flow_and_registers_nothing(workspace: Path):
    _batches(workspace, 5)
    settings = workspace_settings(workspace)
    broken = generate_day(dt.date(2026, 2, 1), 500, 3, DayChanges(schema_break=SchemaBreak.DROP_COLUMN))
    broken.to_parquet(workspace / settings.dataset.batches / "loans-2026-02-01.parquet", index=False)

    with pytest.raises(ContractViolation) as failure:
        _run(workspace)

    message = str(failure.value)
    assert "loans-2026-02-01.parquet" in message and "REFUSED" in message
    assert "expect_table_columns_to_match_set" in message and "credit_score" in message
    registry = registry_for(workspace)
    assert list(registry._versions()) == []
    assert not (workspace / "dvc.lock").exists()
    assert not (workspace / settings.dataset.quarantine).exists()  # a refused run stores nothing


def test_rows_failing_row_expectations_are_quarantined_versioned_and_left_out(workspace: Path):
    _batches(workspace, 5)
    settings = workspace_settings(workspace)
    path = workspace / settings.dataset.batches / "loans-2026-01-03.parquet"
    frame = pd.read_parquet(path)
    frame.loc[frame.index[:12], "region"] = "atlantis"  # 12 of 1500 rows: under the 5% policy
    frame.to_parquet(path, index=False)

    result = _run(workspace)

    assert result.snapshot.rows == 5 * 1500 - 12
    quarantine = pd.read_parquet(workspace / settings.dataset.quarantine / "loans-2026-01-03.parquet")
    assert len(quarantine) == 12 and set(quarantine["region"]) == {"atlantis"}
    assert "expect_column_values_to_be_in_set(region)" in quarantine["_quarantine_reasons"].iloc[0]
    assert (workspace / f"{settings.dataset.quarantine}.dvc").is_file()  # tracked by DVC (and pushed)


@pytest.mark.template("challenger")  # registered by a run on the same five days: this run finds it
def test_rerun_on_same_data_and_params_registers_no_second_version(workspace: Path):
    _batches(workspace, 5)
    first = _run(workspace)
    again = _run(workspace)

    assert again.challenger.version == first.challenger.version == "1"
    assert again.training_key == first.training_key
    versions = list(registry_for(workspace)._versions())
    assert len(versions) == 1 and versions[0].tags[TAG_TRAINING_KEY] == first.training_key
    assert versions[0].tags[TAG_DATA_MD5] == first.snapshot.md5
