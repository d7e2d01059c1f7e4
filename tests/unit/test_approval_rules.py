"""Who may decide at the reviewer gate, and when the reviewers have decided (pure rules)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retrain.domain.approval import (
    TOKEN_LENGTH,
    Ballot,
    judge_ballot,
    reviewer_token,
    tally,
    timed_out,
    token_matches,
)
from retrain.domain.settings import ApprovalSettings

POLICY = ApprovalSettings(
    reviewers=("Ada", "grace", "linus"),
    quorum=2,
    timeout_minutes=1,
    poll_seconds=1,
    secret_block="retrain-approval-secret",
    secret_env="RETRAIN_APPROVAL_SECRET",
)


def ballot(reviewer: str, decision: str = "approve", comment: str = "", valid: bool = True) -> Ballot:
    return Ballot(decision, reviewer, comment, valid)  # type: ignore[arg-type]


def test_token_is_an_hmac_of_the_name_and_only_its_secret_and_name_match():
    token = reviewer_token("s3cret", "ada")
    assert len(token) == TOKEN_LENGTH and token == reviewer_token("s3cret", " ADA ")
    assert token_matches("s3cret", "Ada", token.upper())
    assert not token_matches("other", "ada", token)
    assert not token_matches("s3cret", "grace", token)
    with pytest.raises(ValueError, match="empty"):
        reviewer_token("", "ada")


@given(st.text(min_size=1), st.text(min_size=1), st.text(min_size=1))
def test_a_token_never_proves_another_name(secret: str, name: str, other: str):
    from retrain.domain.approval import normalise

    if normalise(name) != normalise(other):
        assert not token_matches(secret, other, reviewer_token(secret, name))


@pytest.mark.parametrize(
    ("candidate", "triggered_by", "counted", "message"),
    [
        (ballot("mallory"), "bob", [], "not a listed reviewer"),
        (ballot("ada"), "ADA", [], "triggered this training and cannot review it"),
        (ballot("grace", valid=False), "bob", [], "token does not prove"),
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
        ({"secret_env": "lower-case"}, "pattern"),
    ],
)
def test_approval_settings_refuse_impossible_policies(changes, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        ApprovalSettings.model_validate({**POLICY.model_dump(), **changes})
