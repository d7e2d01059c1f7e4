"""What the CLI prints about a retraining the drift flow started: words, never a dict."""

from __future__ import annotations

from retrain.application.results import DeployedTraining, TriggeredTraining
from retrain.cli.render import retraining_line


def test_a_followed_retraining_says_its_outcome_and_each_reason():
    refused = TriggeredTraining(
        promoted=False,
        champion_version="1",
        previous_champion_version=None,
        challenger_version="2",
        reasons=("r2 0.3100 misses the floor 0.4000",),
        note="refused: champion unchanged",
        flow_run_id="abc",
        via="in-process",
    )
    text = retraining_line(refused)
    assert text.splitlines() == [
        "retraining (flow run abc, in-process): refused: champion unchanged: champion v1, challenger v2",
        "  - r2 0.3100 misses the floor 0.4000",
    ]
    assert "{" not in text


def test_a_retraining_started_on_a_deployment_names_its_run():
    text = retraining_line(DeployedTraining(flow_run_id="abc", via="deployment training/nightly"))
    assert text.startswith("retraining: flow run abc started (deployment training/nightly)")
