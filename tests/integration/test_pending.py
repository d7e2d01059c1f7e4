"""A reviewer's inbox: `retrain pending` lists the runs of the project's model waiting at the gate,
with the challenger, the champion, the gain and its interval, the time left and the command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.training import TrainingRequest, training
from retrain.adapters.prefect_api import Answer
from retrain.cli import app
from retrain.cli.demo_run import write_demo_batches
from retrain.domain.approval import ApprovalSubject
from tests.integration.conftest import approve, reviewed, workspace_settings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]


class LooksAtTheInboxFirst:
    """ada, who runs `retrain pending` before she answers the run it shows her."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.inner = approve()
        self.seen: list[dict[str, Any]] = []
        self.table = ""

    @property
    def reviewer(self) -> str:
        return self.inner.reviewer

    def answer(self, subject: ApprovalSubject) -> Answer:
        runner = CliRunner()
        listed = runner.invoke(app, ["pending", "--project", str(self.workspace), "--json"])
        assert listed.exit_code == 0, listed.output
        self.seen = json.loads(listed.output)
        self.table = runner.invoke(app, ["pending", "--project", str(self.workspace)]).output
        return self.inner.answer(subject)


def test_a_run_waiting_at_the_gate_is_in_the_inbox_until_it_is_answered(workspace: Path):
    settings = workspace_settings(workspace)
    write_demo_batches(workspace / settings.dataset.batches, settings, 5)
    ada = LooksAtTheInboxFirst(workspace)
    result = reviewed(lambda: training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest")), [ada])
    assert result.outcome.promoted

    (waiting,) = ada.seen
    assert waiting["flow_run_id"] == result.flow_run_id and waiting["model"] == settings.model.registered_name
    assert waiting["version"] == "1" and waiting["champion"] is None and waiting["gain"] is None  # first champion
    assert waiting["reviewers"] == list(settings.approval.reviewers) and waiting["quorum"] == settings.approval.quorum
    assert 0 < waiting["minutes_left"] <= settings.approval.timeout_minutes
    assert "Waiting for review" in ada.table and "retrain approve" in ada.table and "first champion" in ada.table
    after = CliRunner().invoke(app, ["pending", "--project", str(workspace)])
    assert after.exit_code == 0 and "no run waits for review" in after.output
