"""Reviewer approval: who may decide, how a reviewer proves it, and when the reviewers have decided.

Pure rules, no Prefect: the flow collects ballots (from the Prefect UI form or ``retrain approve``)
and asks this module whether each one counts and whether a quorum is reached. A ballot counts only
if its reviewer is listed, did not trigger the training, proves their name with a valid token, and
has not already decided; a rejection needs a reason. One counted rejection refuses the promotion;
``quorum`` distinct counted approvals accept it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from retrain.domain.gate import Check
from retrain.domain.settings import ApprovalSettings

APPROVE: Final = "approve"
REJECT: Final = "reject"
Decision = Literal["approve", "reject"]
TOKEN_LENGTH: Final = 32
_TOKEN_CONTEXT: Final = "retrain-reviewer-token:v1:"


def reviewer_token(secret: str, reviewer: str) -> str:
    """The token that proves ``reviewer``'s identity: an HMAC of the name under the shared secret.

    Whoever holds the secret issues tokens (``retrain reviewer-token``); a reviewer holds only their
    own token, so they can neither read the secret nor speak for someone else.
    """
    if not secret:
        raise ValueError("the approval secret is empty")
    digest = hmac.new(secret.encode("utf-8"), (_TOKEN_CONTEXT + normalise(reviewer)).encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:TOKEN_LENGTH]


def token_matches(secret: str, reviewer: str, token: str) -> bool:
    """Constant-time comparison, so a wrong token says nothing about the right one."""
    return hmac.compare_digest(reviewer_token(secret, reviewer), token.strip().lower())


def normalise(name: str) -> str:
    """Names compare case- and space-insensitively: 'Alice ' and 'alice' are one person."""
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class Ballot:
    """One reviewer's answer, with the token already checked (the token itself is never kept)."""

    decision: Decision
    reviewer: str
    comment: str
    token_valid: bool


@dataclass(frozen=True)
class BallotVerdict:
    counted: bool
    message: str


def judge_ballot(
    ballot: Ballot, policy: ApprovalSettings, triggered_by: str, counted: Sequence[Ballot]
) -> BallotVerdict:
    """Does this ballot count? If not, say why in words the reviewer can act on."""
    who = normalise(ballot.reviewer)
    listed = {normalise(name) for name in policy.reviewers}
    if who not in listed:
        return BallotVerdict(False, f"'{ballot.reviewer}' is not a listed reviewer (approval.reviewers in params.yaml)")
    if who == normalise(triggered_by):
        return BallotVerdict(False, f"'{ballot.reviewer}' triggered this training and cannot review it")
    if not ballot.token_valid:
        return BallotVerdict(False, f"the token does not prove the identity of '{ballot.reviewer}'")
    if any(normalise(earlier.reviewer) == who for earlier in counted):
        return BallotVerdict(False, f"'{ballot.reviewer}' has already decided; a quorum needs distinct reviewers")
    if ballot.decision == REJECT and not ballot.comment.strip():
        return BallotVerdict(False, "a rejection needs a reason in the comment")
    approvals = sum(1 for earlier in counted if earlier.decision == APPROVE) + (ballot.decision == APPROVE)
    progress = f" ({approvals} of {policy.quorum} approvals)" if ballot.decision == APPROVE else ""
    return BallotVerdict(True, f"{ballot.decision} by '{ballot.reviewer}' recorded{progress}")


ApprovalState = Literal["pending", "approved", "rejected", "timed_out"]


@dataclass(frozen=True)
class ApprovalResult:
    """Where the reviewers stand: the counted ballots and what they add up to."""

    state: ApprovalState
    ballots: tuple[Ballot, ...]
    quorum: int

    @property
    def reviewers(self) -> tuple[str, ...]:
        return tuple(ballot.reviewer for ballot in self.ballots)

    @property
    def comment(self) -> str:
        return " | ".join(f"{b.reviewer} ({b.decision}): {b.comment}" for b in self.ballots if b.comment.strip())

    def as_check(self) -> Check:
        """The human decision as one more gate check, stored and reported like the automatic ones."""
        approvals = float(sum(1 for ballot in self.ballots if ballot.decision == APPROVE))
        if self.state == "approved":
            reason = f"approved by {', '.join(self.reviewers)} (quorum {self.quorum})"
        elif self.state == "rejected":
            rejecter = next(b for b in self.ballots if b.decision == REJECT)
            reason = f"rejected by {rejecter.reviewer}: {rejecter.comment.strip()}"
        elif self.state == "timed_out":
            reason = f"approval timed out ({int(approvals)} of {self.quorum} approvals)"
        else:
            reason = f"awaiting reviewers ({int(approvals)} of {self.quorum} approvals)"
        return Check("reviewer_approval", self.state == "approved", approvals, float(self.quorum), reason)


def tally(counted: Sequence[Ballot], quorum: int) -> ApprovalResult:
    """One counted rejection refuses; ``quorum`` counted approvals accept; otherwise still pending."""
    ballots = tuple(counted)
    if any(ballot.decision == REJECT for ballot in ballots):
        return ApprovalResult("rejected", ballots, quorum)
    if sum(1 for ballot in ballots if ballot.decision == APPROVE) >= quorum:
        return ApprovalResult("approved", ballots, quorum)
    return ApprovalResult("pending", ballots, quorum)


def timed_out(counted: Sequence[Ballot], quorum: int) -> ApprovalResult:
    return ApprovalResult("timed_out", tuple(counted), quorum)
