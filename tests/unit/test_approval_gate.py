"""The approval gate's loop without an orchestrator: a scripted channel answers, the gate judges."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from retrain.application.approval import Answer, InvalidAnswer, collect_approval
from retrain.domain.approval import ApprovalSubject, BallotVerdict, normalise, sign_answer
from retrain.domain.settings import ApprovalSettings

POLICY = ApprovalSettings(reviewers=("ada", "grace"), quorum=1, timeout_minutes=1, poll_seconds=1, keys_dir="reviewers")
SUBJECT = ApprovalSubject("0b7e4f3c-5b1e-4a49-9d3e-6f1d1c2a0001", "retrain-loans", "3", "a" * 32)
KEYS = {"ada": Ed25519PrivateKey.generate(), "grace": Ed25519PrivateKey.generate()}
PUBLIC = {
    normalise(name): key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex() for name, key in KEYS.items()
}


def _signed(reviewer: str, decision: str = "approve", comment: str = "looks good") -> Answer:
    signature = sign_answer(KEYS[reviewer], SUBJECT, reviewer, decision, comment)
    return Answer("approve" if decision == "approve" else "reject", reviewer, comment, signature)


@dataclass
class ScriptedChannel:
    """Answers each pause with the next scripted answer; None (or running out) is a timeout."""

    answers: list[Answer | InvalidAnswer | None]
    flow_run_id: str = SUBJECT.flow_run_id
    log: list[tuple[str, ...]] = field(default_factory=list)
    ballots: str = ""

    def publish_subject(self, subject: ApprovalSubject) -> None:
        self.log.append(("subject", subject.flow_run_id))

    def wait_for_answer(self, pause_key: str, description: str, timeout_seconds: int, poll_seconds: int):
        self.log.append(("pause", pause_key))
        return self.answers.pop(0) if self.answers else None

    def forget_answer(self, pause_key: str) -> None:
        self.log.append(("forget", pause_key))

    def send_receipt(self, pause_key: str, verdict: BallotVerdict, state: str) -> None:
        self.log.append(("receipt", pause_key, str(verdict.counted), state))

    def after_timeout(self, message: str) -> None:
        self.log.append(("running", message))

    def publish_ballots(self, markdown: str) -> None:
        self.ballots = markdown


def _collect(channel: ScriptedChannel, triggered_by: str = "linus"):
    return collect_approval(channel, POLICY, PUBLIC, SUBJECT, triggered_by, "gate report", logging.getLogger("test"))


def test_one_signed_approval_reaches_the_quorum():
    channel = ScriptedChannel([_signed("ada")])
    result = _collect(channel)
    assert result.state == "approved" and result.reviewers == ("ada",)
    assert channel.log == [
        ("subject", SUBJECT.flow_run_id),
        ("pause", "approval-1"),
        ("forget", "approval-1"),
        ("receipt", "approval-1", "True", "approved"),
    ]
    assert "| 1 | ada | approve |" in channel.ballots


def test_refused_answers_get_a_receipt_and_the_gate_pauses_again():
    forged = Answer("approve", "grace", "", sign_answer(KEYS["ada"], SUBJECT, "grace", "approve", ""))
    channel = ScriptedChannel([InvalidAnswer("bad signature length"), forged, _signed("ada", "reject", "too slow")])
    result = _collect(channel)
    assert result.state == "rejected"
    receipts = [entry for entry in channel.log if entry[0] == "receipt"]
    assert receipts == [
        ("receipt", "approval-1", "False", "pending"),
        ("receipt", "approval-2", "False", "pending"),
        ("receipt", "approval-3", "True", "rejected"),
    ]
    assert "| 1 | ? | ? | **refused**: invalid answer: bad signature length |" in channel.ballots
    assert "| 2 | grace | approve | **refused**:" in channel.ballots


def test_the_trainer_cannot_approve_their_own_model():
    channel = ScriptedChannel([_signed("ada")])
    result = _collect(channel, triggered_by="ada")
    assert result.state == "timed_out"
    assert channel.log[-1] == ("running", "approval timed out")


def test_a_subject_for_another_run_is_refused_before_pausing():
    channel = ScriptedChannel([], flow_run_id="another-run")
    with pytest.raises(ValueError, match="not this run another-run"):
        _collect(channel)
    assert channel.log == []
