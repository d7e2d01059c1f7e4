"""Who may decide at the reviewer gate, and when the reviewers have decided (pure rules)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from retrain.domain.approval import (
    SIGNATURE_LENGTH,
    ApprovalSubject,
    Ballot,
    approval_message,
    canonical_comment,
    format_public_key,
    judge_ballot,
    parse_public_key,
    prove,
    reviewers_without_keys,
    sign_answer,
    signature_valid,
    tally,
    timed_out,
)
from retrain.domain.settings import ApprovalSettings

POLICY = ApprovalSettings(
    reviewers=("Ada", "grace", "linus"),
    quorum=2,
    timeout_minutes=1,
    poll_seconds=1,
    keys_dir="reviewers",
)
RUN_A = ApprovalSubject("0b7e4f3c-5b1e-4a49-9d3e-6f1d1c2a0001", "retrain-loans", "3", "a" * 64)
RUN_B = ApprovalSubject("0b7e4f3c-5b1e-4a49-9d3e-6f1d1c2a0002", "retrain-loans", "3", "a" * 64)
ADA_KEY = Ed25519PrivateKey.generate()
MALLORY_KEY = Ed25519PrivateKey.generate()


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


KEYS = {"ada": raw(ADA_KEY)}


def ballot(reviewer: str, decision: str = "approve", comment: str = "", proof: str = "valid") -> Ballot:
    return Ballot(decision, reviewer, comment, proof)  # type: ignore[arg-type]


def test_a_signature_proves_one_answer_on_one_run():
    signature = sign_answer(ADA_KEY, RUN_A, "Ada", "approve", "slices fine")
    assert len(signature) == SIGNATURE_LENGTH
    assert prove(KEYS, RUN_A, "ada", "approve", "slices fine", signature) == "valid"
    assert prove(KEYS, RUN_A, " ADA ", "approve", "slices fine\r\n", signature) == "valid"  # same name, same text


@pytest.mark.faults
@pytest.mark.parametrize(
    ("subject", "decision", "comment"),
    [
        (RUN_B, "approve", "slices fine"),  # replayed on another run
        (RUN_A, "reject", "slices fine"),  # another decision
        (RUN_A, "approve", "slices fine, ship it"),  # another comment
        (ApprovalSubject(RUN_A.flow_run_id, "retrain-loans", "4", "a" * 64), "approve", "slices fine"),  # version
        (ApprovalSubject(RUN_A.flow_run_id, "retrain-loans", "3", "b" * 64), "approve", "slices fine"),  # data
        (ApprovalSubject(RUN_A.flow_run_id, "other-model", "3", "a" * 64), "approve", "slices fine"),  # model
    ],
)
def test_a_signature_is_refused_for_anything_it_did_not_sign(subject, decision, comment):
    signature = sign_answer(ADA_KEY, RUN_A, "ada", "approve", "slices fine")
    assert prove(KEYS, subject, "ada", decision, comment, signature) == "invalid"


@pytest.mark.faults
def test_forged_truncated_and_unlisted_signatures_are_refused():
    forged = sign_answer(MALLORY_KEY, RUN_A, "ada", "approve", "")  # right message, wrong key
    assert prove(KEYS, RUN_A, "ada", "approve", "", forged) == "invalid"
    good = sign_answer(ADA_KEY, RUN_A, "ada", "approve", "")
    assert prove(KEYS, RUN_A, "ada", "approve", "", good[:-2]) == "invalid"
    assert prove(KEYS, RUN_A, "ada", "approve", "", "!" * SIGNATURE_LENGTH) == "invalid"
    assert prove(KEYS, RUN_A, "grace", "approve", "", good) == "no_key"  # listed, but no public key
    # Ada's signature presented as grace's answer is checked with grace's key, and refused.
    assert prove({"grace": raw(MALLORY_KEY)}, RUN_A, "grace", "approve", "", good) == "invalid"


@given(st.text(max_size=40), st.text(max_size=40))
def test_the_message_is_domain_separated_and_binds_every_field(comment: str, other: str):
    message = approval_message(RUN_A, "ada", "approve", comment)
    assert message.startswith(b"retrain-approval-signature:v1\n")
    assert (message == approval_message(RUN_A, "ada", "approve", other)) == (
        canonical_comment(comment) == canonical_comment(other)
    )
    assert message != approval_message(RUN_B, "ada", "approve", comment)
    assert message != approval_message(RUN_A, "grace", "approve", comment)
    raw_signature = ADA_KEY.sign(message[len(b"retrain-approval-signature:v1\n") :])  # no context: refused
    import base64

    text = base64.urlsafe_b64encode(raw_signature).decode().rstrip("=")
    assert not signature_valid(raw(ADA_KEY), message, text)


def test_public_keys_are_openssh_lines_and_anything_else_is_refused():
    line = format_public_key(raw(ADA_KEY), "ada")
    assert line.startswith("ssh-ed25519 ") and line.rstrip().endswith("retrain-reviewer:ada")
    assert parse_public_key(line) == raw(ADA_KEY)
    for bad in ("", "ssh-rsa AAAAB3NzaC1yc2E", "ssh-ed25519 not-base64!", "hello"):
        with pytest.raises(ValueError, match="Ed25519 public key"):
            parse_public_key(bad)


def test_reviewers_without_keys_are_named():
    assert reviewers_without_keys(POLICY, KEYS) == ["grace", "linus"]


@pytest.mark.faults
def test_the_trainer_is_refused_even_with_a_valid_signature():
    verdict = judge_ballot(ballot("ada", proof="valid"), POLICY, "Ada", [])
    assert not verdict.counted and "triggered this training" in verdict.message


@pytest.mark.faults
@pytest.mark.parametrize(
    ("candidate", "triggered_by", "counted", "message"),
    [
        (ballot("mallory"), "bob", [], "not a listed reviewer"),
        (ballot("ada"), "ADA", [], "triggered this training and cannot review it"),
        (ballot("grace", proof="invalid"), "bob", [], "the signature is not 'grace's for this run"),
        (ballot("grace", proof="no_key"), "bob", [], "'grace' has no public key"),
        (ballot("linus", proof="invalid"), "LINUS", [], "triggered this training"),  # trainer first
        (ballot("grace"), "bob", [ballot("Grace ")], "already decided"),
        (ballot("grace", "reject", "  "), "bob", [], "rejection needs a reason"),
    ],
)
def test_ballots_that_do_not_count_say_why(candidate, triggered_by, counted, message):
    verdict = judge_ballot(candidate, POLICY, triggered_by, counted)
    assert not verdict.counted and message in verdict.message


def test_counted_ballots_report_progress_towards_the_quorum():
    first = judge_ballot(ballot("ada"), POLICY, "bob", [])
    assert first.counted and "1 of 2 approvals" in first.message
    second = judge_ballot(ballot("linus"), POLICY, "bob", [ballot("ada")])
    assert second.counted and "2 of 2 approvals" in second.message


def test_quorum_of_distinct_approvals_accepts_and_one_rejection_refuses():
    assert tally([ballot("ada")], 2).state == "pending"
    approved = tally([ballot("ada"), ballot("grace")], 2)
    assert approved.state == "approved" and approved.as_check().passed
    assert approved.reviewers == ("ada", "grace")
    rejected = tally([ballot("ada"), ballot("grace", "reject", "slice south looks off")], 2)
    check = rejected.as_check()
    assert rejected.state == "rejected" and not check.passed and "slice south looks off" in check.reason


def test_a_timeout_is_a_failed_check_that_says_approval_timed_out():
    check = timed_out([ballot("ada")], 2).as_check()
    assert not check.passed and check.reason.startswith("approval timed out") and "1 of 2" in check.reason


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"quorum": 4}, "quorum 4 needs more reviewers"),
        ({"reviewers": ("ada", "ada")}, "distinct"),
        ({"reviewers": ()}, "at least 1"),
        ({"keys_dir": "/etc/keys"}, "pattern"),
        ({"keys_dir": "reviewers/../../elsewhere"}, "inside the project"),
        ({"reviewers": ("ada", "../mallory")}, "name their key files"),
    ],
)
def test_approval_settings_refuse_impossible_policies(changes, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        ApprovalSettings.model_validate({**POLICY.model_dump(), **changes})
