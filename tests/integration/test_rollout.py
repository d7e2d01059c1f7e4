"""Rollouts on real traffic: an approved challenger serves a sticky share of the rows as `candidate`,
late labels decide, and the rollout completes or rolls back, recorded step by step in the ledger."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from flows.feedback import FeedbackRequest, feedback
from flows.scoring import ScoringRequest, scoring
from flows.training import TrainingRequest, training
from retrain.adapters.environment import resolve_runtime
from retrain.adapters.ledger import Ledger
from retrain.adapters.workspace import write_params
from retrain.application.promotion import doctor
from retrain.cli.demo_run import write_demo_batches
from retrain.domain.demo_data import generate_day
from retrain.domain.lifecycle import CANDIDATE, CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, chain_breaks
from retrain.domain.rollout import active_rollout, event_of
from tests.integration.conftest import ledger_entries, registry_for, reviewed, workspace_settings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api"), pytest.mark.template("champion")]

# A wide margin: the test's arms hold hundreds of labelled rows, where realized ROC AUC moves by ±0.05.
CANARY = {
    "rollout": {"strategy": "canary", "share": 0.3, "min_labelled_rows": 300, "guard_after_rows": 100},
    "gate": {"max_drop": 0.1},
}


def _aliases(workspace: Path) -> dict[str, str | None]:
    registry = registry_for(workspace)
    found = {alias: registry.by_alias(alias) for alias in (CHAMPION, CANDIDATE, CHALLENGER, PREVIOUS_CHAMPION)}
    return {alias: None if info is None else info.version for alias, info in found.items()}


def _candidate_v2(workspace: Path) -> None:
    """One more day of data, trained and approved: v2 starts rolling out against champion v1."""
    settings = workspace_settings(workspace)
    write_demo_batches(workspace / settings.dataset.batches, settings, 6)
    result = reviewed(lambda: training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest")))
    assert result.outcome.rollout and not result.outcome.promoted, result.outcome
    assert result.outcome.note == "rolling out: v2 is candidate (canary, 30% of rows)"


def _day(workspace: Path, index: int, rows: int) -> pd.DataFrame:
    settings = workspace_settings(workspace)
    day = settings.demo.start_date + pd.Timedelta(days=index).to_pytimedelta()
    return generate_day(day, rows, settings.demo.seed)


def test_a_canary_serves_a_sticky_share_and_late_labels_complete_it(workspace: Path, tmp_path: Path):
    write_params(workspace, CANARY)
    _candidate_v2(workspace)
    assert _aliases(workspace) == {"champion": "1", "candidate": "2", "challenger": None, "previous-champion": None}

    settings = workspace_settings(workspace)
    data = settings.dataset
    assert data.id_column is not None
    rows = _day(workspace, 6, 8000)  # arms of ~2,400 and ~5,600 rows: realized ROC AUC within ±0.03
    unlabelled = tmp_path / "day-6.parquet"
    rows.drop(columns=[data.target]).to_parquet(unlabelled, index=False)
    scored = scoring(ScoringRequest(batch=str(unlabelled), project_dir=str(workspace)))
    assert scored.candidate == "2" and scored.rollout is not None and scored.rollout["ended"] is None
    assert "waiting for labels" in scored.rollout["verdict"]["reasons"][-1]
    predictions = pd.read_parquet(scored.predictions)
    share = (predictions["arm"] == "candidate").mean()
    assert 0.25 < share < 0.35 and scored.served == predictions["arm"].value_counts().to_dict()
    assert (predictions["model_version"] == predictions["arm"].map({"candidate": "2", "champion": "1"})).all()

    # the same customers again: each meets the same model
    again = scoring(
        ScoringRequest(batch=str(unlabelled), project_dir=str(workspace), output=str(tmp_path / "again.parquet"))
    )
    assert pd.read_parquet(again.predictions)["arm"].tolist() == predictions["arm"].tolist()

    # the labels arrive a week later: both arms have enough, the candidate is not worse, it completes
    labels = tmp_path / "labels.csv"
    rows[[data.id_column, data.target]].to_csv(labels, index=False)
    joined = feedback(FeedbackRequest(labels=str(labels), project_dir=str(workspace)))
    assert joined.rollout is not None and joined.rollout["ended"] == "completed", joined.rollout
    assert _aliases(workspace) == {"champion": "2", "candidate": None, "challenger": None, "previous-champion": "1"}

    entries = ledger_entries(workspace)
    events = [(entry.kind, (event_of(entry) or {}).get("event")) for entry in entries]
    assert events == [
        ("promotion", None),  # v1, the template's champion
        ("rollout", "start"),
        ("rollout", "evaluation"),
        ("rollout", "evaluation"),
        ("promotion", "end"),
    ]
    assert not chain_breaks(entries) and active_rollout(entries) is None
    end = event_of(entries[-1])
    assert end is not None and end["outcome"] == "completed"
    verdict = end["verdict"]
    assert verdict["labelled"]["candidate"] >= 300 and verdict["labelled"]["champion"] >= 300
    assert verdict["comparison"]["method"] == "two-sample bootstrap"


@pytest.mark.slow  # a second training or a crash on top of a rollout: make test-all
def test_training_the_candidate_again_keeps_its_rollout_without_a_second_review(workspace: Path):
    write_params(workspace, CANARY)
    _candidate_v2(workspace)
    before = ledger_entries(workspace)
    again = training(TrainingRequest(project_dir=str(workspace), triggered_by="nightly"))  # nobody answers
    assert again.challenger.version == "2" and again.approval is None
    assert again.outcome.rollout and again.outcome.note.startswith("already rolling out: v2 is candidate")
    assert ledger_entries(workspace) == before  # the same rollout: same id, same customers, same labels
    assert _aliases(workspace) == {"champion": "1", "candidate": "2", "challenger": None, "previous-champion": None}


@pytest.mark.slow  # a second training or a crash on top of a rollout: make test-all
def test_a_candidate_failing_a_guardrail_on_labelled_traffic_rolls_back_at_once(workspace: Path, tmp_path: Path):
    write_params(workspace, CANARY)
    _candidate_v2(workspace)
    write_params(workspace, {"gate": {"floor": 0.97}})  # now no model reaches it on real traffic
    labelled = tmp_path / "day-6-labelled.parquet"
    _day(workspace, 6, 1500).to_parquet(labelled, index=False)  # labels in the batch itself
    scored = scoring(ScoringRequest(batch=str(labelled), project_dir=str(workspace)))
    assert scored.rollout is not None and scored.rollout["ended"] == "rolled_back"
    assert any("surely past the floor on real traffic" in reason for reason in scored.rollout["verdict"]["guardrails"])
    assert _aliases(workspace) == {"champion": "1", "candidate": None, "challenger": None, "previous-champion": None}
    # the next batch is the champion's alone
    after = scoring(
        ScoringRequest(batch=str(labelled), project_dir=str(workspace), output=str(tmp_path / "next.parquet"))
    )
    assert after.candidate is None and after.rollout is None
    assert set(pd.read_parquet(after.predictions)["model_version"]) == {"1"}
    assert not chain_breaks(ledger_entries(workspace))


@pytest.mark.slow  # a second training or a crash on top of a rollout: make test-all
def test_the_doctor_finishes_a_rollout_step_a_crash_interrupted(workspace: Path):
    write_params(workspace, CANARY)
    _candidate_v2(workspace)
    registry = registry_for(workspace)
    url = resolve_runtime(project_dir=workspace).ledger_url

    # a rollback that passed its commit point (candidate cleared) and died before writing the ledger
    registry.delete_alias(CANDIDATE)
    ledger = Ledger(url)
    try:
        repaired = doctor(registry, ledger).repaired
        entries = ledger.entries(registry.model_name)
    finally:
        ledger.dispose()
    assert repaired == ["recorded the end of the rollout of v2 (its candidate alias had gone)"]
    assert active_rollout(entries) is None and not chain_breaks(entries)

    # a start that passed its commit point (candidate set) and died before writing the ledger
    registry.set_alias(CANDIDATE, "2")
    ledger = Ledger(url)
    try:
        repaired = doctor(registry, ledger).repaired
        running = active_rollout(ledger.entries(registry.model_name))
    finally:
        ledger.dispose()
    assert repaired == ["recorded the start of the rollout of v2"]
    assert running is not None and (running.candidate, running.champion, running.share) == ("2", "1", 0.3)
