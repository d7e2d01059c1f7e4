"""Answer the approval gate: collect reviewer ballots until the reviewers decide or time runs out.

The loop is plain code over a :class:`ReviewChannel`, the orchestrator's part (pausing the run
with a form, the run's inputs and artifacts), which the task layer supplies. Every answer is
judged by :mod:`retrain.domain.approval`; one that does not count gets a receipt with the reason and
a line in the ballots table, and the gate waits for the next answer, until a counted rejection,
``quorum`` counted approvals, or the deadline (a recorded refusal).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from retrain.adapters.reviewer_keys import load_reviewer_keys
from retrain.domain import tags
from retrain.domain.approval import (
    ApprovalResult,
    ApprovalSubject,
    Ballot,
    BallotVerdict,
    Decision,
    judge_ballot,
    prove,
    tally,
    timed_out,
)
from retrain.domain.settings import ApprovalSettings

Logger = logging.Logger | logging.LoggerAdapter[Any]


def trusted_keys(project_dir: Path, policy: ApprovalSettings) -> dict[str, str]:
    """Start-up check: every listed reviewer has a parseable public key in the project, or this
    raises naming who and which file. Returns the keys (hex, by normalised name) the gate trusts."""
    return {name: key.hex() for name, key in load_reviewer_keys(project_dir, policy).items()}


@dataclass(frozen=True)
class Answer:
    """One answer as the form returned it (already valid against its schema)."""

    decision: Decision
    reviewer: str
    comment: str
    signature: str


@dataclass(frozen=True)
class InvalidAnswer:
    """An answer the form's schema let through but its model refused: why."""

    message: str


class ReviewChannel(Protocol):
    """What the gate needs from the orchestrator: wait for answers, answer back, show the ballots."""

    @property
    def flow_run_id(self) -> str: ...

    def publish_subject(self, subject: ApprovalSubject) -> None:
        """Make what reviewers sign readable to their clients (replacing an earlier copy)."""

    def wait_for_answer(
        self, pause_key: str, description: str, timeout_seconds: int, poll_seconds: int
    ) -> Answer | InvalidAnswer | None:
        """Pause until someone answers (None: the timeout passed first)."""

    def forget_answer(self, pause_key: str) -> None:
        """Delete the stored answer once judged: the orchestrator keeps no reviewer material."""

    def send_receipt(self, pause_key: str, verdict: BallotVerdict, state: str) -> None:
        """Tell whoever answered (the CLI waits for it) whether their ballot counted, and why."""

    def after_timeout(self, message: str) -> None:
        """Leave the paused state after a timeout (the refusal is then recorded by a running run)."""

    def publish_ballots(self, markdown: str) -> None:
        """Show every answer so far (the latest version of the ballots table)."""


BallotRow = tuple[str, str, str, str]  # round, reviewer, decision, outcome


def ballot_table(rows: list[BallotRow]) -> str:
    """Every answer so far as markdown, counted or refused with why."""
    lines = ["# Reviewer ballots", "", "| # | reviewer | decision | outcome |", "|---|---|---|---|"]
    lines += [f"| {n} | {who} | {what} | {outcome} |" for n, who, what, outcome in rows]
    return "\n".join(lines)


def collect_approval(
    channel: ReviewChannel,
    policy: ApprovalSettings,
    reviewer_keys: dict[str, str],
    subject: ApprovalSubject,
    triggered_by: str,
    description: str,
    logger: Logger,
    clock: Callable[[], float] = time.monotonic,
) -> ApprovalResult:
    """Wait for the reviewers' decision on ``subject``; ``reviewer_keys`` are the public keys the
    start-up check loaded (hex, by normalised name).

    Every answer is verified against this run's own subject and keys, never against anything the
    client sends. Ends with a counted rejection, ``quorum`` counted approvals, or the deadline.
    """
    if subject.flow_run_id != channel.flow_run_id:
        raise ValueError(f"the approval subject names run {subject.flow_run_id}, not this run {channel.flow_run_id}")
    keys = {name: bytes.fromhex(key) for name, key in reviewer_keys.items()}
    channel.publish_subject(subject)
    deadline = clock() + policy.timeout_minutes * 60
    counted: list[Ballot] = []
    ballots: list[BallotRow] = []
    note = ""
    for round_number in range(1, 10_000):
        remaining = deadline - clock()
        if remaining < 1:
            break
        pause_key = tags.pause_key(round_number)
        logger.warning(  # a call to act, shown at a terminal even when Prefect's INFO lines are not
            "Waiting for reviewers (%.0f s left): answer the form on this run in the Prefect UI, "
            "or run `retrain approve %s --reviewer NAME` (it signs with your key)",
            remaining,
            channel.flow_run_id,
        )
        answer = channel.wait_for_answer(
            pause_key, description + note, _whole_seconds(remaining), max(1, round(policy.poll_seconds))
        )
        if answer is None:
            channel.after_timeout("approval timed out")
            break
        if isinstance(answer, InvalidAnswer):
            verdict = BallotVerdict(False, f"invalid answer: {answer.message}")
            channel.forget_answer(pause_key)
            channel.send_receipt(pause_key, verdict, tally(counted, policy.quorum).state)
            ballots.append((str(round_number), "?", "?", f"**refused**: {verdict.message}"))
            channel.publish_ballots(ballot_table(ballots))
            note = f"\n\n**Previous answer refused:** {verdict.message}"
            continue
        channel.forget_answer(pause_key)
        ballot = Ballot(
            decision=answer.decision,
            reviewer=answer.reviewer,
            comment=answer.comment,
            proof=prove(keys, subject, answer.reviewer, answer.decision, answer.comment, answer.signature),
        )
        verdict = judge_ballot(ballot, policy, triggered_by, counted)
        if verdict.counted:
            counted.append(ballot)
        result = tally(counted, policy.quorum)
        channel.send_receipt(pause_key, verdict, result.state)
        outcome = verdict.message if verdict.counted else f"**refused**: {verdict.message}"
        ballots.append((str(round_number), ballot.reviewer, ballot.decision, outcome))
        channel.publish_ballots(ballot_table(ballots))
        (logger.info if verdict.counted else logger.warning)("Reviewer answer: %s", verdict.message)
        if result.state != "pending":
            return result
        note = "" if verdict.counted else f"\n\n**Previous answer refused:** {verdict.message}"
    logger.warning("Approval timed out after %s minutes: the promotion is refused", policy.timeout_minutes)
    return timed_out(counted, policy.quorum)


def _whole_seconds(seconds: float) -> int:
    """A pause's timeout in whole seconds, never shorter than what is left."""
    return math.ceil(seconds)
