"""The reviewer gate on a real Prefect API and MLflow: the training run pauses with a typed form and
only a listed reviewer, who did not trigger it and proves who they are, can decide."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from typer.testing import CliRunner

from flows.training import TrainingRequest, training
from retrain.adapters.ledger import Ledger
from retrain.adapters.workspace import write_params
from retrain.approval import Answer, Receipt, paused_runs
from retrain.cli import app
from retrain.demo import write_demo_batches
from retrain.environment import resolve_runtime
from retrain.errors import ApprovalInputError
from tests.integration.conftest import REVIEWERS, approve, registry_for, reviewed, token, workspace_settings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]


def _start(workspace: Path, triggered_by: str = "pytest") -> Callable[[], dict[str, Any]]:
    request = TrainingRequest(project_dir=str(workspace), triggered_by=triggered_by, reason="test")
    return lambda: training(request)


def _batches(workspace: Path, days: int = 5) -> None:
    settings = workspace_settings(workspace)
    write_demo_batches(workspace / settings.dataset.batches, settings, days)


def _ledger(workspace: Path) -> list[Any]:
    ledger = Ledger(resolve_runtime(project_dir=workspace).ledger_url)
    try:
        return ledger.entries(workspace_settings(workspace).model.registered_name)
    finally:
        ledger.dispose()


def _client() -> Any:
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _artifact(run_id: UUID | str, key: str) -> str:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with _client() as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(str(run_id))]), key=ArtifactFilterKey(any_=[key])
            )
        )
    assert found, f"no artifact {key} on run {run_id}"
    return str(max(found, key=lambda artifact: artifact.created).data)  # the latest version of the key


def _final_state(run_id: str) -> str:
    with _client() as client:
        return str(client.read_flow_run(UUID(run_id)).state.type.value)


class PausedRun:
    """A training flow running in a thread until it waits at the approval gate."""

    def __init__(self, start: Callable[[], dict[str, Any]]) -> None:
        from prefect import tags

        self.tag = f"pytest-{uuid.uuid4().hex[:12]}"
        self.outcome: dict[str, Any] = {}

        def target() -> None:
            try:
                with tags(self.tag):
                    self.outcome["result"] = start()
            except BaseException as error:
                self.outcome["error"] = error

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 180
        while not (waiting := paused_runs(self.tag)):
            assert self.thread.is_alive(), f"the run ended without pausing: {self.outcome}"
            assert time.monotonic() < deadline, "the run never paused at the approval gate"
            time.sleep(0.2)
        self.run_id = waiting[0]

    def result(self) -> dict[str, Any]:
        self.thread.join(180)
        assert not self.thread.is_alive(), "the run did not finish after the decision"
        if "error" in self.outcome:
            raise self.outcome["error"]
        result: dict[str, Any] = self.outcome["result"]
        return result


def test_cli_approve_promotes_records_the_reviewer_and_forgets_the_token(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
):
    _batches(workspace)
    paused = PausedRun(_start(workspace))

    report = _artifact(paused.run_id, "gate-report")
    assert "**AWAITING REVIEW**" in report and "## Slices" in report and "CI of the gain" in report
    assert "[MLflow run](http://127.0.0.1:5000/#/experiments/" in report and "plots/roc.png" in report
    with _client() as client:
        schema = json.loads(client.read_flow_run_input(paused.run_id, "paused-approval-1-schema"))
        description = json.loads(client.read_flow_run_input(paused.run_id, "paused-approval-1-description"))
    assert set(schema["properties"]) == {"decision", "reviewer", "comment", "token"}
    assert schema["properties"]["token"]["format"] == "password"
    assert "Gate report" in description  # the form shows the report above the fields

    monkeypatch.setenv("RETRAIN_REVIEWER_TOKEN", token("grace"))
    answered = CliRunner().invoke(
        app,
        ["approve", str(paused.run_id), "--reviewer", "grace", "--comment", "slices fine", "--project", str(workspace)],
    )
    assert answered.exit_code == 0, answered.output
    assert "approve by 'grace' recorded (1 of 1 approvals); gate now: approved" in answered.output

    result = paused.result()
    assert result["outcome"]["note"] == "first champion" and result["approval"]["state"] == "approved"
    (entry,) = _ledger(workspace)
    assert entry.kind == "promotion" and entry.reviewers == ("grace",) and "slices fine" in entry.comment
    assert any(check["name"] == "reviewer_approval" and check["passed"] for check in entry.checks)
    assert "**PROMOTED**" in _artifact(paused.run_id, "gate-decision")
    with _client() as client:
        stored = client.filter_flow_run_input(paused.run_id, key_prefix="", limit=100, exclude_keys=set())
    assert stored and not [item.key for item in stored if token("grace") in item.value]
    assert _final_state(result["flow_run_id"]) == "COMPLETED"


def test_cli_reject_refuses_with_the_reason_and_leaves_no_champion(workspace: Path, monkeypatch: pytest.MonkeyPatch):
    _batches(workspace)
    paused = PausedRun(_start(workspace))
    monkeypatch.setenv("RETRAIN_REVIEWER_TOKEN", token("linus"))
    args = ["reject", str(paused.run_id), "--reviewer", "linus", "--reason", "holdout too small", "--project"]
    answered = CliRunner().invoke(app, [*args, str(workspace)])
    assert answered.exit_code == 0, answered.output and "gate now: rejected" in answered.output

    result = paused.result()
    assert not result["outcome"]["promoted"]
    assert "rejected by linus: holdout too small" in result["outcome"]["reasons"]
    assert registry_for(workspace).by_alias("champion") is None
    (entry,) = _ledger(workspace)
    assert entry.kind == "refusal" and entry.reviewers == ("linus",) and "holdout too small" in entry.comment


def test_cli_refuses_a_run_that_is_not_waiting(workspace: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RETRAIN_REVIEWER_TOKEN", token("ada"))
    missing = CliRunner().invoke(app, ["approve", str(uuid.uuid4()), "--reviewer", "ada", "--project", str(workspace)])
    assert missing.exit_code == 1 and "no flow run" in missing.output
    bad = CliRunner().invoke(app, ["approve", "not-a-run", "--reviewer", "ada", "--project", str(workspace)])
    assert bad.exit_code == 1 and "is not a flow run id" in bad.output


def test_timeout_ends_the_gate_as_a_recorded_refusal(workspace: Path):
    _batches(workspace)
    write_params(workspace, {"approval": {"timeout_minutes": 0.05}})  # 3 s
    result = reviewed(_start(workspace), answers=[])

    assert not result["outcome"]["promoted"] and result["approval"]["state"] == "timed_out"
    assert any(reason.startswith("approval timed out") for reason in result["outcome"]["reasons"])
    (entry,) = _ledger(workspace)
    assert entry.kind == "timeout" and "approval timed out" in entry.comment
    assert registry_for(workspace).by_alias("champion") is None
    assert _final_state(result["flow_run_id"]) == "COMPLETED"  # a clear end, not a hanging pause


def test_the_api_refuses_unlisted_reviewers_and_malformed_answers_and_the_run_stays_paused(workspace: Path):
    _batches(workspace)
    receipts: list[tuple[Answer, Receipt | ApprovalInputError]] = []
    answers = [
        Answer("approve", "mallory", token("mallory")),  # not listed
        Answer("maybe", "ada", token("ada")),  # not a decision
        Answer("approve", "ada", "too-short"),  # not a token
        approve("ada"),
    ]
    result = reviewed(_start(workspace), answers, receipts)

    refusals = [str(receipt) for _, receipt in receipts[:3]]
    assert all("the Prefect API refused the answer, the run stays paused" in text for text in refusals)
    assert "'mallory' is not one of" in refusals[0] and "'maybe' is not one of" in refusals[1]
    assert "too short" in refusals[2] or "minLength" in refusals[2]
    assert isinstance(receipts[3][1], Receipt) and receipts[3][1].state == "approved"
    assert result["outcome"]["promoted"] and result["approval"]["reviewers"] == ["ada"]
    # The three refusals never resumed the run: the approval came in its first pause.
    assert "| 1 | ada | approve |" in _artifact(result["flow_run_id"], "approval-ballots")


def test_the_run_refuses_its_trainer_a_false_token_and_a_reasonless_rejection(workspace: Path):
    _batches(workspace)
    receipts: list[tuple[Answer, Receipt | ApprovalInputError]] = []
    answers = [
        approve("ada"),  # ada triggered this run
        Answer("approve", "grace", token("ada")),  # grace with someone else's token
        Answer("reject", "linus", token("linus"), "   "),  # a rejection without a reason
        approve("grace"),
    ]
    result = reviewed(_start(workspace, triggered_by="ada"), answers, receipts)

    messages = [str(receipt) for _, receipt in receipts]
    assert "'ada' triggered this training and cannot review it" in messages[0]
    assert "the token does not prove the identity of 'grace'" in messages[1]
    assert "a rejection needs a reason" in messages[2]
    assert all("waits for another" in message for message in messages[:3])
    assert result["outcome"]["promoted"] and result["approval"]["reviewers"] == ["grace"]
    ballots = _artifact(result["flow_run_id"], "approval-ballots")
    assert ballots.count("**refused**") == 3 and "| 4 | grace | approve |" in ballots


def test_a_quorum_of_two_needs_two_distinct_reviewers(workspace: Path):
    _batches(workspace)
    write_params(workspace, {"approval": {"quorum": 2}})
    receipts: list[tuple[Answer, Receipt | ApprovalInputError]] = []
    result = reviewed(_start(workspace), [approve("ada"), approve("ada"), approve("linus")], receipts)

    first, twice, second = (receipt for _, receipt in receipts)
    assert isinstance(first, Receipt) and first.state == "pending" and "1 of 2 approvals" in first.message
    assert isinstance(twice, ApprovalInputError) and "already decided" in str(twice)
    assert isinstance(second, Receipt) and second.state == "approved"
    assert result["outcome"]["promoted"]
    (entry,) = _ledger(workspace)
    assert entry.reviewers == ("ada", "linus")


def test_the_secret_block_holds_the_secret_when_it_exists(workspace: Path):
    from prefect.blocks.system import Secret

    _batches(workspace)
    block_id = Secret(value="secret-from-the-block").save("retrain-approval-secret", overwrite=True)
    try:
        issued = CliRunner().invoke(app, ["reviewer-token", "ada", "--project", str(workspace)])
        assert issued.exit_code == 0, issued.output
        assert issued.output.strip() == token("ada", "secret-from-the-block") != token("ada")
        receipts: list[tuple[Answer, Receipt | ApprovalInputError]] = []
        env_token = approve("ada")  # made with the env secret, which the block overrides
        block_token = Answer("approve", "ada", token("ada", "secret-from-the-block"), "ok")
        result = reviewed(_start(workspace), [env_token, block_token], receipts)
    finally:
        with _client() as client:
            client.delete_block_document(block_id)
    assert "the token does not prove the identity of 'ada'" in str(receipts[0][1])
    assert result["outcome"]["promoted"]


def test_reviewer_token_refuses_unlisted_names(workspace: Path):
    result = CliRunner().invoke(app, ["reviewer-token", "mallory", "--project", str(workspace)])
    assert result.exit_code == 1 and "not listed" in result.output and all(n in result.output for n in REVIEWERS)


def _secret_value() -> str:
    from prefect.blocks.system import Secret

    value = Secret.load("retrain-approval-secret").get()  # type: ignore[union-attr]
    return str(value)


def test_approval_secret_creates_the_block_once_and_never_prints_it(workspace: Path):
    runner = CliRunner()
    project = ["--project", str(workspace)]
    try:
        created = runner.invoke(app, ["approval-secret", *project])
        assert created.exit_code == 0 and "created the Prefect Secret block" in created.output
        value = _secret_value()
        assert len(value) == 64 and value not in created.output
        again = runner.invoke(app, ["approval-secret", *project])
        assert "exists already" in again.output and _secret_value() == value
        rotated = runner.invoke(app, ["approval-secret", "--rotate", *project])
        assert "rotated" in rotated.output and _secret_value() != value
    finally:
        with _client() as client:
            block = client.read_block_document_by_name("retrain-approval-secret", block_type_slug="secret")
            client.delete_block_document(block.id)
