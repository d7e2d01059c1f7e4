"""The reviewer gate on a real Prefect API and MLflow: the training run pauses with a typed form and
only a listed reviewer, who did not trigger it and signs this very answer for this very run with
their own key, can decide. Forged, replayed and altered signatures are refused and listed."""

from __future__ import annotations

import base64
import dataclasses
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
from retrain.adapters.prefect_api import (
    Answer,
    AnswerSource,
    Receipt,
    Signing,
    approval_subject,
    paused_runs,
    submit_decision,
)
from retrain.adapters.workspace import write_params
from retrain.application.results import TrainingResult
from retrain.cli import app
from retrain.cli.demo_run import write_demo_batches
from retrain.domain.approval import ApprovalSubject
from retrain.domain.errors import ApprovalConfigError, ApprovalInputError
from tests.conftest import REVIEWER_KEYS, private_key_file
from tests.integration.conftest import approve, ledger_entries, registry_for, reviewed, signing, workspace_settings

# Each run finds v1 registered from the same five days (the challenger template): only the gate runs.
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api"), pytest.mark.template("challenger")]


def _start(workspace: Path, triggered_by: str = "pytest") -> Callable[[], TrainingResult]:
    request = TrainingRequest(project_dir=str(workspace), triggered_by=triggered_by, reason="test")
    return lambda: training(request)


def _batches(workspace: Path, days: int = 5) -> None:
    settings = workspace_settings(workspace)
    write_demo_batches(workspace / settings.dataset.batches, settings, days)


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

    def __init__(self, start: Callable[[], TrainingResult]) -> None:
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

    def result(self) -> TrainingResult:
        self.thread.join(180)
        assert not self.thread.is_alive(), "the run did not finish after the decision"
        if "error" in self.outcome:
            raise self.outcome["error"]
        result: TrainingResult = self.outcome["result"]
        return result


@dataclasses.dataclass(frozen=True)
class Altered:
    """A genuine signature for this run, sent with some field changed (a man in the middle, a typo)."""

    signed: Signing
    changes: dict[str, str]

    @property
    def reviewer(self) -> str:
        return self.changes.get("reviewer", self.signed.reviewer)

    def answer(self, subject: ApprovalSubject) -> Answer:
        return dataclasses.replace(self.signed.answer(subject), **self.changes)


def _key_material(reviewer: str) -> list[str]:
    """Every form in which the reviewer's private key could leak: PEM body lines, raw bytes as hex/base64."""
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    key = REVIEWER_KEYS[reviewer]
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    return [line for line in pem.splitlines() if not line.startswith("-----")] + [
        raw.hex(),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]


def _everything_prefect_keeps(run_id: UUID | str) -> str:
    """The run's artifacts, run inputs and logs, read back through the API."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)  # the run's logs reach the API in batches: send what is queued
    run = UUID(str(run_id))
    with _client() as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run]))
        )
        inputs = client.filter_flow_run_input(run, key_prefix="", limit=1000, exclude_keys=set())
        of_logs, logs = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run])), list[Any]()
        while page := client.read_logs(log_filter=of_logs, limit=200, offset=len(logs)):  # the API's page limit
            logs += page
        state = client.read_flow_run(run)
    parts = [str(artifact.data) + str(artifact.description) for artifact in artifacts]
    parts += [item.key + item.value for item in inputs] + [log.message for log in logs]
    parts.append(state.model_dump_json())
    assert artifacts and inputs and logs, "nothing read back: the check below would prove nothing"
    return "\n".join(parts)


def test_cli_approve_signs_for_the_run_promotes_and_leaves_no_key_or_signature_in_prefect(
    workspace: Path, tmp_path: Path
):
    _batches(workspace)
    paused = PausedRun(_start(workspace))

    report = _artifact(paused.run_id, "gate-report")
    assert "**AWAITING REVIEW**" in report and "## Slices" in report and "CI of the gain" in report
    assert "[MLflow run](http://127.0.0.1:5000/#/experiments/" in report and "plots/roc.png" in report
    assert f"retrain sign {paused.run_id} --reviewer" in report and f"retrain approve {paused.run_id}" in report
    with _client() as client:
        schema = json.loads(client.read_flow_run_input(paused.run_id, "paused-approval-1-schema"))
        description = json.loads(client.read_flow_run_input(paused.run_id, "paused-approval-1-description"))
    assert set(schema["properties"]) == {"decision", "reviewer", "comment", "signature"}
    assert "retrain sign" in schema["properties"]["signature"]["description"]
    assert "Gate report" in description and f"retrain sign {paused.run_id}" in description
    subject = approval_subject(str(paused.run_id))
    assert subject.flow_run_id == str(paused.run_id) and subject.challenger_version == "1"

    forged = signing("ada", key="grace")  # refused: the run logs a warning, which must not hold key material
    with pytest.raises(ApprovalInputError, match="the signature is not 'ada's"):
        submit_decision(str(paused.run_id), forged)
    key = private_key_file("grace", tmp_path)
    args = ["approve", str(paused.run_id), "--reviewer", "grace", "--comment", "slices fine", "--key", str(key)]
    answered = CliRunner().invoke(app, [*args, "--project", str(workspace)])
    assert answered.exit_code == 0, answered.output
    assert "approve by 'grace' recorded (1 of 1 approvals); gate now: approved" in answered.output

    result = paused.result()
    assert result.approval is not None
    assert result.outcome.note == "first champion" and result.approval.state == "approved"
    assert result.training_key == subject.training_key
    (entry,) = ledger_entries(workspace)
    assert entry.kind == "promotion" and entry.reviewers == ("grace",) and "slices fine" in entry.comment
    assert any(check["name"] == "reviewer_approval" and check["passed"] for check in entry.checks)
    assert "**PROMOTED**" in _artifact(paused.run_id, "gate-decision")
    final = _artifact(paused.run_id, "gate-report")  # the report's newest version: the verdict, not the wait
    assert "**PROMOTED**" in final and "AWAITING REVIEW" not in final

    kept = _everything_prefect_keeps(paused.run_id)
    signatures = [signing("grace", comment="slices fine").answer(subject).signature, forged.answer(subject).signature]
    assert not [s for s in signatures if s in kept], "an answer was not deleted after checking"  # Ed25519 is
    for reviewer in ("grace", "ada"):  # deterministic: the same key and message give the same signature
        assert not [material for material in _key_material(reviewer) if material in kept]
    assert _final_state(result.flow_run_id) == "COMPLETED"


def test_cli_reject_refuses_with_the_reason_and_leaves_no_champion(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    _batches(workspace)
    paused = PausedRun(_start(workspace))
    monkeypatch.setenv("RETRAIN_REVIEWER_KEY", str(private_key_file("linus", tmp_path)))
    args = ["reject", str(paused.run_id), "--reviewer", "linus", "--reason", "holdout too small", "--project"]
    answered = CliRunner().invoke(app, [*args, str(workspace)])
    assert answered.exit_code == 0, answered.output
    assert "gate now: rejected" in answered.output

    result = paused.result()
    assert not result.outcome.promoted
    assert "rejected by linus: holdout too small" in result.outcome.reasons
    assert registry_for(workspace).by_alias("champion") is None
    (entry,) = ledger_entries(workspace)
    assert entry.kind == "refusal" and entry.reviewers == ("linus",) and "holdout too small" in entry.comment


def test_a_signature_printed_by_retrain_sign_is_what_the_ui_form_takes(workspace: Path, tmp_path: Path):
    _batches(workspace)
    paused = PausedRun(_start(workspace))
    key = private_key_file("ada", tmp_path)
    comment = "read the report in the UI"
    args = ["sign", str(paused.run_id), "--reviewer", "ada", "--decision", "approve", "--comment", comment]
    printed = CliRunner().invoke(app, [*args, "--key", str(key), "--project", str(workspace)])
    assert printed.exit_code == 0, printed.output
    signature = printed.stdout.strip().splitlines()[-1]
    assert len(signature) == 86
    with _client() as client:  # what the browser's Resume form posts
        form = {"decision": "approve", "reviewer": "ada", "comment": comment + "\r\n", "signature": signature}
        assert client.resume_flow_run(paused.run_id, run_input=form).status.value == "ACCEPT"
    result = paused.result()
    assert result.approval is not None
    assert result.outcome.promoted and result.approval.reviewers == ("ada",)


@pytest.mark.faults
@pytest.mark.template("empty")
def test_cli_refuses_a_run_that_is_not_waiting_and_a_key_that_is_not_the_reviewers(workspace: Path, tmp_path: Path):
    key = ["--key", str(private_key_file("ada", tmp_path)), "--project", str(workspace)]
    missing = CliRunner().invoke(app, ["approve", str(uuid.uuid4()), "--reviewer", "ada", *key])
    assert missing.exit_code == 1 and "no flow run" in missing.output
    bad = CliRunner().invoke(app, ["approve", "not-a-run", "--reviewer", "ada", *key])
    assert bad.exit_code == 1 and "is not a flow run id" in bad.output
    wrong = CliRunner().invoke(app, ["approve", str(uuid.uuid4()), "--reviewer", "grace", *key])
    assert wrong.exit_code == 1 and "grace.pub" in wrong.output and "not the one" in wrong.output
    unlisted = CliRunner().invoke(app, ["approve", str(uuid.uuid4()), "--reviewer", "mallory", *key])
    assert unlisted.exit_code == 1 and "not listed" in unlisted.output


def test_timeout_ends_the_gate_as_a_recorded_refusal(workspace: Path):
    _batches(workspace)
    write_params(workspace, {"approval": {"timeout_minutes": 0.05}})  # 3 s
    result = reviewed(_start(workspace), answers=[])

    assert result.approval is not None
    assert not result.outcome.promoted and result.approval.state == "timed_out"
    assert any(reason.startswith("approval timed out") for reason in result.outcome.reasons)
    (entry,) = ledger_entries(workspace)
    assert entry.kind == "timeout" and "approval timed out" in entry.comment
    assert registry_for(workspace).by_alias("champion") is None
    assert _final_state(result.flow_run_id) == "COMPLETED"  # a clear end, not a hanging pause


@pytest.mark.faults
def test_the_api_refuses_unlisted_reviewers_and_malformed_answers_and_the_run_stays_paused(workspace: Path):
    _batches(workspace)
    receipts: list[tuple[AnswerSource, Receipt | ApprovalInputError]] = []
    answers: list[AnswerSource] = [
        Altered(signing("ada"), {"reviewer": "mallory"}),  # not listed
        Altered(signing("ada"), {"decision": "maybe"}),  # not a decision
        Altered(signing("ada"), {"signature": "too-short"}),  # not a signature
        approve("ada"),
    ]
    result = reviewed(_start(workspace), answers, receipts)

    refusals = [str(receipt) for _, receipt in receipts[:3]]
    assert all("the Prefect API refused the answer, the run stays paused" in text for text in refusals)
    assert "'mallory' is not one of" in refusals[0] and "'maybe' is not one of" in refusals[1]
    assert "too short" in refusals[2] or "minLength" in refusals[2]
    assert isinstance(receipts[3][1], Receipt) and receipts[3][1].state == "approved"
    assert result.approval is not None
    assert result.outcome.promoted and result.approval.reviewers == ("ada",)
    # The three refusals never resumed the run: the approval came in its first pause.
    assert "| 1 | ada | approve |" in _artifact(result.flow_run_id, "approval-ballots")


@pytest.mark.faults
def test_the_run_refuses_its_trainer_forged_and_altered_signatures_and_lists_why(workspace: Path):
    _batches(workspace)
    receipts: list[tuple[AnswerSource, Receipt | ApprovalInputError]] = []
    answers: list[AnswerSource] = [
        approve("ada"),  # ada triggered this run: refused even though her signature is valid
        signing("grace", key="ada"),  # grace's answer signed with someone else's key (a forgery)
        Altered(signing("grace", "approve", "ok"), {"decision": "reject"}),  # signed approve, sent reject
        Altered(signing("grace", "approve", "ok"), {"comment": "ok, and ship v9"}),  # another comment
        Altered(signing("grace", "approve", "ok"), {"reviewer": "linus"}),  # grace's signature as linus
        signing("linus", "reject", "   "),  # a rejection without a reason
        approve("grace"),
    ]
    result = reviewed(_start(workspace, triggered_by="ada"), answers, receipts)

    messages = [str(receipt) for _, receipt in receipts]
    assert "'ada' triggered this training and cannot review it" in messages[0]
    for message, who in zip(messages[1:5], ("grace", "grace", "grace", "linus"), strict=True):
        assert f"the signature is not '{who}'s for this run, challenger, decision and comment" in message
    assert "a rejection needs a reason" in messages[5]
    assert all("waits for another" in message for message in messages[:6])
    assert result.approval is not None
    assert result.outcome.promoted and result.approval.reviewers == ("grace",)
    ballots = _artifact(result.flow_run_id, "approval-ballots")
    assert ballots.count("**refused**") == 6 and "| 7 | grace | approve |" in ballots
    assert "| 1 | ada | approve | **refused**: 'ada' triggered this training" in ballots
    assert "| 3 | grace | reject | **refused**: the signature is not 'grace's" in ballots


@pytest.mark.faults
@pytest.mark.slow  # two paused runs of the same challenger: make test-all
def test_a_signature_for_one_run_is_refused_on_another_run_of_the_same_challenger(workspace: Path):
    _batches(workspace)
    first = PausedRun(_start(workspace))
    subject_a = approval_subject(str(first.run_id))
    on_a = signing("grace", "approve", "fine").answer(subject_a)
    assert submit_decision(str(first.run_id), signing("linus", "reject", "not yet")).state == "rejected"
    assert not first.result().outcome.promoted

    receipts: list[tuple[AnswerSource, Receipt | ApprovalInputError]] = []
    result = reviewed(_start(workspace), [on_a, approve("grace")], receipts)  # the same data: the same version
    subject_b = ApprovalSubject(result.flow_run_id, subject_a.registered_model, "1", result.training_key)
    assert dataclasses.replace(subject_a, flow_run_id=subject_b.flow_run_id) == subject_b  # only the run differs
    assert "the signature is not 'grace's for this run" in str(receipts[0][1])
    assert isinstance(receipts[1][1], Receipt) and result.outcome.promoted
    ballots = _artifact(result.flow_run_id, "approval-ballots")
    assert "| 1 | grace | approve | **refused**: the signature is not 'grace's" in ballots


@pytest.mark.slow  # make test-all; make test covers a quorum of one through the form and the CLI
def test_a_quorum_of_two_needs_two_distinct_reviewers(workspace: Path):
    _batches(workspace)
    write_params(workspace, {"approval": {"quorum": 2}})
    receipts: list[tuple[AnswerSource, Receipt | ApprovalInputError]] = []
    result = reviewed(_start(workspace), [approve("ada"), approve("ada"), approve("linus")], receipts)

    first, twice, second = (receipt for _, receipt in receipts)
    assert isinstance(first, Receipt) and first.state == "pending" and "1 of 2 approvals" in first.message
    assert isinstance(twice, ApprovalInputError) and "already decided" in str(twice)
    assert isinstance(second, Receipt) and second.state == "approved"
    assert result.outcome.promoted
    (entry,) = ledger_entries(workspace)
    assert entry.reviewers == ("ada", "linus")


@pytest.mark.faults
@pytest.mark.template("empty")  # nothing registered: the run must stop before any work
def test_a_listed_reviewer_without_a_public_key_stops_the_run_before_any_work(workspace: Path):
    import subprocess

    _batches(workspace)
    (workspace / "reviewers" / "linus.pub").unlink()
    subprocess.run(["git", "commit", "-qam", "linus leaves"], cwd=workspace, check=True)
    with pytest.raises(ApprovalConfigError) as raised:
        _start(workspace)()
    message = str(raised.value)
    assert "\n" not in message and "linus" in message and "linus.pub" in message
    assert registry_for(workspace).by_alias("challenger") is None and ledger_entries(workspace) == []
    assert not (workspace / workspace_settings(workspace).dataset.training_set).exists()  # nothing validated


@pytest.mark.template("empty")
def test_reviewer_keygen_writes_the_public_key_for_review_and_keeps_the_private_key_outside(
    workspace: Path, tmp_path: Path
):
    private = tmp_path / "keys" / "hopper.key"
    made = CliRunner().invoke(app, ["reviewer", "keygen", "hopper", "--key", str(private), "--project", str(workspace)])
    assert made.exit_code == 0, made.output
    public = workspace / "reviewers" / "hopper.pub"
    assert public.read_text().startswith("ssh-ed25519 ") and f"git add {public}" in made.output
    assert "list 'hopper' in approval.reviewers" in made.output
    assert oct(private.stat().st_mode & 0o777) == "0o600" and private.read_text() not in made.output
    inside = CliRunner().invoke(
        app, ["reviewer", "keygen", "hopper2", "--key", str(workspace / "h.key"), "--project", str(workspace)]
    )
    assert inside.exit_code == 1 and "inside the project" in inside.output
    for removed in ("approval-secret", "reviewer-token"):
        assert CliRunner().invoke(app, [removed, "--help"]).exit_code != 0
