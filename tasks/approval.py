"""The reviewer gate: pause the training run until listed reviewers decide, or the timeout refuses.

The run pauses with ``pause_flow_run(wait_for_input=...)``; the Prefect UI shows the typed input
model below as a form (and ``retrain approve``/``reject`` sends the same input through the API).
The server validates the form against its JSON schema, so a malformed answer or an unlisted
reviewer is refused there and the run never leaves ``Paused``. What a schema cannot know (the
signature, the trigger, a reviewer deciding twice) is checked here: a ballot that does not count is
answered with a receipt that says why, listed in the ``approval-ballots`` artifact, and the run
pauses again for the next answer.

Before pausing, the run publishes what reviewers sign (the :class:`ApprovalSubject`: run, model,
challenger version, training key) as a run input, so ``retrain approve``/``sign`` read it from the
run instead of asking the reviewer to type it. The run verifies every signature against its own
values and the public keys it loaded at start-up, never against anything a client sends.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Final, Literal
from uuid import UUID

from prefect import get_run_logger, runtime, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.input import RunInput
from pydantic import Field, ValidationError, create_model

from retrain.adapters.reviewer_keys import load_reviewer_keys
from retrain.domain.approval import (
    SIGNATURE_LENGTH,
    ApprovalResult,
    ApprovalSubject,
    Ballot,
    BallotVerdict,
    judge_ballot,
    prove,
    tally,
    timed_out,
)
from retrain.domain.settings import ApprovalSettings

PAUSE_PREFIX: Final = "approval-"
RECEIPT_PREFIX: Final = "retrain-receipt-"
SUBJECT_KEY: Final = "retrain-approval-subject"  # retrain.adapters.prefect_api.SUBJECT_KEY reads it


@task(name="check-reviewer-keys", cache_policy=NO_CACHE)
def reviewer_keys_task(project_dir: Path, policy: ApprovalSettings) -> dict[str, str]:
    """Start-up check: every listed reviewer has a parseable public key in the project, or the run
    stops now with one line naming who and which file. Returns the keys (hex) the gate will trust."""
    return {name: key.hex() for name, key in load_reviewer_keys(project_dir, policy).items()}


class ReviewerDecision(RunInput):
    """The form on a training run paused at the approval gate."""

    decision: Literal["approve", "reject"] = Field(description="Approve promotion to champion, or reject it.")
    reviewer: str = Field(min_length=1, max_length=100, description="Your name as listed in approval.reviewers.")
    comment: str = Field(default="", max_length=2000, description="Why. Required to reject.")
    signature: str = Field(
        min_length=SIGNATURE_LENGTH,
        max_length=SIGNATURE_LENGTH,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Your signature of exactly this decision and comment for this run: "
        "`retrain sign RUN_ID --reviewer NAME --decision approve|reject --comment '…'` prints it.",
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


def _publish_subject(subject: ApprovalSubject) -> None:
    """What reviewers sign, readable by ``retrain approve``/``sign`` through the API (nothing secret).

    Replaces an earlier copy (a run that reaches the gate again after a restart publishes anew)."""
    from prefect.client.orchestration import get_client

    run_id = UUID(subject.flow_run_id)
    with get_client(sync_client=True) as client:
        if client.filter_flow_run_input(run_id, key_prefix=SUBJECT_KEY, limit=1, exclude_keys=set()):
            client.delete_flow_run_input(run_id, SUBJECT_KEY)
        client.create_flow_run_input(run_id, SUBJECT_KEY, subject.to_json(), sender="retrain")


def review_instructions(flow_run_id: str, policy: ApprovalSettings) -> str:
    """The part of the gate report that tells a listed reviewer the one command to run."""
    names = " | ".join(policy.reviewers)
    return (
        "\n\n## How to decide\n\n"
        f"Listed reviewers: {', '.join(policy.reviewers)} (quorum {policy.quorum}); whoever triggered the run "
        "cannot decide. Each answer is signed with the reviewer's own key (`retrain reviewer keygen NAME`).\n\n"
        "From a terminal (signs and sends in one step):\n\n"
        f"```\nretrain approve {flow_run_id} --reviewer {names} --comment '…'\n"
        f"retrain reject {flow_run_id} --reviewer {names} --reason '…'\n```\n\n"
        "In this UI (*Resume*): print the signature, then paste it with the very same decision and comment:\n\n"
        f"```\nretrain sign {flow_run_id} --reviewer {names} --decision approve --comment '…'\n```\n"
    )


def _forget_answer(flow_run_id: UUID, pause_key: str) -> None:
    """Delete the stored answer once checked: a signature is useless elsewhere, but Prefect's database
    keeps no reviewer material beyond the ballots artifact."""
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


def _publish_ballots(rows: list[tuple[str, str, str, str]]) -> None:
    """Every answer so far, counted or refused with why (the latest version of ``approval-ballots``)."""
    create_markdown_artifact(_ballot_table(rows), key="approval-ballots", description="Every reviewer answer")


def collect_approval(
    policy: ApprovalSettings,
    reviewer_keys: dict[str, str],
    subject: ApprovalSubject,
    triggered_by: str,
    description: str,
) -> ApprovalResult:
    """Pause until the reviewers decide; must run in the training flow (not in a task).

    ``reviewer_keys`` are the public keys the start-up check loaded (hex, by normalised name);
    ``subject`` is what this run would promote. Every answer is judged; one that does not count gets a
    receipt with the reason, a line in the ballots artifact, and the run pauses again, until a counted
    rejection, ``quorum`` counted approvals, or the deadline (a recorded refusal).
    """
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    logger = get_run_logger()
    flow_run_id = UUID(str(runtime.flow_run.id))
    if subject.flow_run_id != str(flow_run_id):
        raise ValueError(f"the approval subject names run {subject.flow_run_id}, not this run {flow_run_id}")
    keys = {name: bytes.fromhex(key) for name, key in reviewer_keys.items()}
    _publish_subject(subject)
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
            "or run `retrain approve %s --reviewer NAME` (it signs with your key)",
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
            _forget_answer(flow_run_id, pause_key)
            _write_receipt(flow_run_id, pause_key, verdict, tally(counted, policy.quorum).state)
            ballots.append((str(round_number), "?", "?", f"**refused**: {verdict.message}"))
            _publish_ballots(ballots)
            note = f"\n\n**Previous answer refused:** {verdict.message}"
            continue
        _forget_answer(flow_run_id, pause_key)
        reviewer, decision, comment = str(answer.reviewer), str(answer.decision), str(answer.comment)
        ballot = Ballot(
            decision=answer.decision,
            reviewer=reviewer,
            comment=comment,
            proof=prove(keys, subject, reviewer, decision, comment, str(answer.signature)),
        )
        verdict = judge_ballot(ballot, policy, triggered_by, counted)
        if verdict.counted:
            counted.append(ballot)
        result = tally(counted, policy.quorum)
        _write_receipt(flow_run_id, pause_key, verdict, result.state)
        outcome = verdict.message if verdict.counted else f"**refused**: {verdict.message}"
        ballots.append((str(round_number), ballot.reviewer, ballot.decision, outcome))
        _publish_ballots(ballots)
        (logger.info if verdict.counted else logger.warning)("Reviewer answer: %s", verdict.message)
        if result.state != "pending":
            return result
        note = "" if verdict.counted else f"\n\n**Previous answer refused:** {verdict.message}"
    logger.warning("Approval timed out after %s minutes: the promotion is refused", policy.timeout_minutes)
    return timed_out(counted, policy.quorum)
