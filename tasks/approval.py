"""The reviewer gate: pause the training run until listed reviewers decide, or the timeout refuses.

The run pauses with ``pause_flow_run(wait_for_input=...)``; the Prefect UI shows the typed input
model below as a form (and ``retrain approve``/``reject`` sends the same input through the API).
The server validates the form against its JSON schema, so a malformed answer or an unlisted
reviewer is refused there and the run never leaves ``Paused``. What a schema cannot know (the
token, the trigger, a reviewer deciding twice) is checked here: a ballot that does not count is
answered with a receipt that says why, and the run pauses again for the next answer.
"""

from __future__ import annotations

import json
import math
import time
from typing import Final, Literal
from uuid import UUID

from prefect import get_run_logger, runtime
from prefect.artifacts import create_markdown_artifact
from prefect.input import RunInput
from pydantic import Field, SecretStr, ValidationError, create_model

from retrain.adapters.approval_secret import load_approval_secret
from retrain.domain.approval import (
    TOKEN_LENGTH,
    ApprovalResult,
    Ballot,
    BallotVerdict,
    judge_ballot,
    tally,
    timed_out,
    token_matches,
)
from retrain.domain.settings import ApprovalSettings

PAUSE_PREFIX: Final = "approval-"
RECEIPT_PREFIX: Final = "retrain-receipt-"


class ReviewerDecision(RunInput):
    """The form on a training run paused at the approval gate."""

    decision: Literal["approve", "reject"] = Field(description="Approve promotion to champion, or reject it.")
    reviewer: str = Field(min_length=1, max_length=100, description="Your name as listed in approval.reviewers.")
    comment: str = Field(default="", max_length=2000, description="Why. Required to reject.")
    token: SecretStr = Field(
        min_length=TOKEN_LENGTH,
        max_length=TOKEN_LENGTH,
        description="Your reviewer token (issued with `retrain reviewer-token NAME` by whoever holds the secret).",
    )


def reviewer_form(policy: ApprovalSettings) -> type[ReviewerDecision]:
    """The form with the reviewer field limited to the listed names: the UI shows them as a choice,
    and the Prefect server refuses any other name before the run resumes."""
    field = Field(
        min_length=1,
        max_length=100,
        description="Your name as listed in approval.reviewers.",
        json_schema_extra={"enum": list(policy.reviewers)},  # an enum even for one name (a const would be hidden)
    )
    return create_model("ReviewerDecision", __base__=ReviewerDecision, reviewer=(str, field))


def receipt_key(pause_key: str) -> str:
    return f"{RECEIPT_PREFIX}{pause_key}"


def _response_key(pause_key: str) -> str:
    return f"paused-{pause_key}-response"  # prefect.input.run_input.keyset_from_paused_state


def _write_receipt(flow_run_id: UUID, pause_key: str, verdict: BallotVerdict, state: str) -> None:
    """Tell whoever answered (the CLI waits for this) whether their ballot counted, and why."""
    from prefect.client.orchestration import get_client

    payload = json.dumps({"counted": verdict.counted, "message": verdict.message, "state": state})
    with get_client(sync_client=True) as client:
        client.create_flow_run_input(flow_run_id, receipt_key(pause_key), payload, sender="retrain-approval-gate")


def _forget_token(flow_run_id: UUID, pause_key: str) -> None:
    """Delete the stored answer once checked, so the reviewer's token does not stay in Prefect's database."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.delete_flow_run_input(flow_run_id, _response_key(pause_key))


def _running_again(flow_run_id: UUID, message: str) -> None:
    """A pause that timed out leaves the run ``Paused`` on the server; record the refusal as ``Running``."""
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Running(message=message), force=True)


def _ballot_table(rows: list[tuple[str, str, str, str]]) -> str:
    lines = ["# Reviewer ballots", "", "| # | reviewer | decision | outcome |", "|---|---|---|---|"]
    lines += [f"| {n} | {who} | {what} | {outcome} |" for n, who, what, outcome in rows]
    return "\n".join(lines)


def collect_approval(policy: ApprovalSettings, triggered_by: str, description: str) -> ApprovalResult:
    """Pause until the reviewers decide; must run in the training flow (not in a task).

    Every answer is judged; one that does not count gets a receipt with the reason and the run pauses
    again, until a counted rejection, ``quorum`` counted approvals, or the deadline (a recorded refusal).
    """
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    logger = get_run_logger()
    flow_run_id = UUID(str(runtime.flow_run.id))
    secret = load_approval_secret(policy)
    form = reviewer_form(policy)
    deadline = time.monotonic() + policy.timeout_minutes * 60
    counted: list[Ballot] = []
    ballots: list[tuple[str, str, str, str]] = []
    note = ""
    for round_number in range(1, 10_000):
        remaining = deadline - time.monotonic()
        if remaining < 1:
            break
        pause_key = f"{PAUSE_PREFIX}{round_number}"
        logger.info(
            "Waiting for reviewers (%.0f s left): answer the form on this run in the Prefect UI, "
            "or run `retrain approve %s --reviewer NAME`",
            remaining,
            flow_run_id,
        )
        try:
            answer = pause_flow_run(
                wait_for_input=form.with_initial_data(description=description + note),
                timeout=math.ceil(remaining),
                poll_interval=max(1, round(policy.poll_seconds)),
                key=pause_key,
            )
        except FlowPauseTimeout:
            _running_again(flow_run_id, "approval timed out")
            break
        except ValidationError as error:  # the schema let it through but the model does not
            verdict = BallotVerdict(False, f"invalid answer: {error.errors()[0]['msg']}")
            _forget_token(flow_run_id, pause_key)
            _write_receipt(flow_run_id, pause_key, verdict, tally(counted, policy.quorum).state)
            note = f"\n\n**Previous answer refused:** {verdict.message}"
            continue
        _forget_token(flow_run_id, pause_key)
        ballot = Ballot(
            decision=answer.decision,
            reviewer=str(answer.reviewer),
            comment=answer.comment,
            token_valid=token_matches(secret, str(answer.reviewer), answer.token.get_secret_value()),
        )
        verdict = judge_ballot(ballot, policy, triggered_by, counted)
        if verdict.counted:
            counted.append(ballot)
        result = tally(counted, policy.quorum)
        _write_receipt(flow_run_id, pause_key, verdict, result.state)
        outcome = verdict.message if verdict.counted else f"**refused**: {verdict.message}"
        ballots.append((str(round_number), ballot.reviewer, ballot.decision, outcome))
        create_markdown_artifact(_ballot_table(ballots), key="approval-ballots", description="Every reviewer answer")
        (logger.info if verdict.counted else logger.warning)("Reviewer answer: %s", verdict.message)
        if result.state != "pending":
            return result
        note = "" if verdict.counted else f"\n\n**Previous answer refused:** {verdict.message}"
    logger.warning("Approval timed out after %s minutes: the promotion is refused", policy.timeout_minutes)
    return timed_out(counted, policy.quorum)
