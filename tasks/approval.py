"""The reviewer gate: pause the training run until listed reviewers decide, or the timeout refuses.

The run pauses with ``pause_flow_run(wait_for_input=...)``; the Prefect UI shows the typed input
model below as a form (and ``retrain approve``/``reject`` sends the same input through the API).
The server validates the form against its JSON schema, so a malformed answer or an unlisted
reviewer is refused there and the run never leaves ``Paused``. What a schema cannot know (the
signature, the trigger, a reviewer deciding twice) is checked by :mod:`retrain.application.approval`
over this module's Prefect channel (:class:`PausedRun`): a ballot that does not count is
answered with a receipt that says why, listed in the ``approval-ballots`` artifact, and the run
pauses again for the next answer.

Before pausing, the run publishes what reviewers sign (the :class:`ApprovalSubject`: run, model,
challenger version, training key) as a run input, so ``retrain approve``/``sign`` read it from the
run instead of asking the reviewer to type it. The run verifies every signature against its own
values and the public keys it loaded at start-up, never against anything a client sends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from uuid import UUID

from prefect import get_run_logger, runtime, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.input import RunInput
from pydantic import Field, ValidationError, create_model

from retrain.adapters import prefect_api
from retrain.application import approval
from retrain.domain.approval import SIGNATURE_LENGTH, ApprovalResult, ApprovalSubject, BallotVerdict
from retrain.domain.pending import PendingReview
from retrain.domain.settings import ApprovalSettings
from retrain.domain.tags import ARTIFACT_APPROVAL_BALLOTS


@task(name="check-reviewer-keys", cache_policy=NO_CACHE)
def reviewer_keys_task(project_dir: Path, policy: ApprovalSettings) -> dict[str, str]:
    """Start-up check: every listed reviewer has a parseable public key in the project, or the run
    stops now with one line naming who and which file. Returns the keys (hex) the gate will trust."""
    return approval.trusted_keys(project_dir, policy)


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


class PausedRun:
    """The approval gate's channel in a Prefect flow run: pause with the form, answer through run
    inputs (:mod:`retrain.adapters.prefect_api`), show the ballots as an artifact."""

    def __init__(self, flow_run_id: str, form: type[ReviewerDecision]):
        self._flow_run_id = flow_run_id
        self._form = form

    @property
    def flow_run_id(self) -> str:
        return self._flow_run_id

    def publish_subject(self, subject: ApprovalSubject) -> None:
        prefect_api.publish_subject(subject)

    def wait_for_answer(
        self, pause_key: str, description: str, timeout_seconds: int, poll_seconds: int
    ) -> approval.Answer | approval.InvalidAnswer | None:
        from prefect.exceptions import FlowPauseTimeout
        from prefect.flow_runs import pause_flow_run

        try:
            answer = pause_flow_run(
                wait_for_input=self._form.with_initial_data(description=description),
                timeout=timeout_seconds,
                poll_interval=poll_seconds,
                key=pause_key,
            )
        except FlowPauseTimeout:
            return None
        except ValidationError as error:  # the schema let it through but the model does not
            return approval.InvalidAnswer(str(error.errors()[0]["msg"]))
        return approval.Answer(
            decision=answer.decision,
            reviewer=str(answer.reviewer),
            comment=str(answer.comment),
            signature=str(answer.signature),
        )

    def forget_answer(self, pause_key: str) -> None:
        prefect_api.forget_answer(self._flow_run_id, pause_key)

    def send_receipt(self, pause_key: str, verdict: BallotVerdict, state: str) -> None:
        prefect_api.write_receipt(self._flow_run_id, pause_key, verdict, state)

    def after_timeout(self, message: str) -> None:
        prefect_api.mark_running(self._flow_run_id, message)

    def publish_ballots(self, markdown: str) -> None:
        create_markdown_artifact(markdown, key=ARTIFACT_APPROVAL_BALLOTS, description="Every reviewer answer")


@task(name="publish-pending-review", cache_policy=NO_CACHE)
def publish_pending_task(pending: PendingReview) -> None:
    """The reviewers' inbox line (``retrain pending``): what waits, by how much, until when."""
    try:
        prefect_api.publish_pending(pending)
    except Exception as error:  # the gate still waits, and the run page shows it: the inbox is extra
        get_run_logger().warning(f"the run was not added to `retrain pending` ({type(error).__name__})")


def collect_approval(
    policy: ApprovalSettings,
    reviewer_keys: dict[str, str],
    subject: ApprovalSubject,
    triggered_by: str,
    description: str,
) -> ApprovalResult:
    """Pause until the reviewers decide; must run in the training flow (not in a task).

    ``reviewer_keys`` are the public keys the start-up check loaded (hex, by normalised name);
    ``subject`` is what this run would promote. The rules are :func:`retrain.application.approval.collect_approval`'s.
    """
    channel = PausedRun(str(UUID(str(runtime.flow_run.id))), reviewer_form(policy))
    return approval.collect_approval(
        channel, policy, reviewer_keys, subject, triggered_by, description, get_run_logger()
    )
