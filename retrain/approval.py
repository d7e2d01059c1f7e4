"""Answering the approval gate from outside the run: ``retrain approve``/``reject``, the demo, tests.

This is the same path the Prefect UI form takes: resume the paused run with the form's input
through the Prefect API. The API validates the input against the form's schema (a refusal leaves
the run paused); the run then judges the ballot and answers with a receipt, which this module waits
for so the person at the terminal learns whether their decision counted.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from retrain.errors import ApprovalInputError

RECEIPT_PREFIX = "retrain-receipt-"  # tasks.approval.RECEIPT_PREFIX, repeated to keep this import light
T = TypeVar("T")


@dataclass(frozen=True)
class Receipt:
    """The run's answer to one ballot."""

    counted: bool
    message: str
    state: str


@dataclass(frozen=True)
class Answer:
    """A reviewer's answer as the form takes it."""

    decision: str
    reviewer: str
    token: str
    comment: str = ""

    def as_run_input(self) -> dict[str, Any]:
        return {"decision": self.decision, "reviewer": self.reviewer, "comment": self.comment, "token": self.token}


def _parse_run_id(flow_run_id: str) -> UUID:
    try:
        return UUID(flow_run_id)
    except ValueError:
        raise ApprovalInputError(f"'{flow_run_id}' is not a flow run id (a UUID, shown in the Prefect UI)") from None


def paused_pause_key(client: Any, flow_run_id: UUID) -> str:
    """The pause key of a run waiting at the approval gate, or a clear error saying why it is not."""
    from prefect.exceptions import ObjectNotFound

    try:
        run = client.read_flow_run(flow_run_id)
    except ObjectNotFound:
        raise ApprovalInputError(f"no flow run {flow_run_id} on this Prefect API") from None
    state = run.state
    if state is None or not state.is_paused() or not state.state_details.run_input_keyset:
        name = "unknown" if state is None else state.name
        raise ApprovalInputError(f"flow run {flow_run_id} is not waiting for approval (state: {name})")
    return str(state.state_details.pause_key)


def _wait_for_receipt(client: Any, flow_run_id: UUID, pause_key: str, wait_seconds: float) -> Receipt:
    import httpx

    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        try:
            value = client.read_flow_run_input(flow_run_id, f"{RECEIPT_PREFIX}{pause_key}")
        except httpx.HTTPStatusError as error:
            if error.response.status_code != 404:
                raise
            time.sleep(0.5)
            continue
        payload = json.loads(value)
        if isinstance(payload, str):  # the API stores inputs JSON-encoded
            payload = json.loads(payload)
        return Receipt(bool(payload["counted"]), str(payload["message"]), str(payload["state"]))
    raise ApprovalInputError(
        f"flow run {flow_run_id} was resumed but did not answer within {wait_seconds:.0f} s; "
        "is the process running it still alive? Check the run in the Prefect UI"
    )


def submit_decision(flow_run_id: str, answer: Answer, wait_seconds: float = 120.0) -> Receipt:
    """Send one reviewer's answer to a paused training run and wait for its receipt.

    Raises ``ApprovalInputError`` when the run is not waiting, when the API refuses the input
    (the run stays paused), or when the run does not count the ballot (it pauses again).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus

    run_id = _parse_run_id(flow_run_id)
    with get_client(sync_client=True) as client:
        pause_key = paused_pause_key(client, run_id)
        response = client.resume_flow_run(run_id, run_input=answer.as_run_input())
        if response.status != SetStateStatus.ACCEPT:
            reason = getattr(response.details, "reason", None) or response.status.value
            raise ApprovalInputError(f"the Prefect API refused the answer, the run stays paused: {reason}")
        receipt = _wait_for_receipt(client, run_id, pause_key, wait_seconds)
    if not receipt.counted:
        raise ApprovalInputError(f"the run did not count this answer and waits for another: {receipt.message}")
    return receipt


def answer_paused_run(
    flow_run_id: str, answer: Answer, on_receipt: Callable[[Answer, Receipt | ApprovalInputError], None] | None
) -> None:
    """Send one answer to a run waiting at the gate; its receipt, or why it was refused, goes to ``on_receipt``."""
    try:
        receipt: Receipt | ApprovalInputError = submit_decision(flow_run_id, answer)
    except ApprovalInputError as refused:
        receipt = refused
    if on_receipt is not None:
        on_receipt(answer, receipt)


def paused_runs(tag: str) -> list[UUID]:
    """Runs carrying ``tag`` that wait at a gate right now."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType

    paused = FlowRunFilter(
        tags=FlowRunFilterTags(all_=[tag]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
    )
    with get_client(sync_client=True) as client:
        return [run.id for run in client.read_flow_runs(flow_run_filter=paused)]


def run_with_reviewers(
    start: Callable[[], T],
    answers: Sequence[Answer],
    tag: str,
    on_receipt: Callable[[Answer, Receipt | ApprovalInputError], None] | None = None,
    poll_seconds: float = 0.5,
) -> T:
    """Run ``start`` (which runs a training flow) in a thread tagged ``tag``; whenever the run waits
    at the approval gate, send it the next answer, as reviewers at the Prefect UI would.

    Used by the demo (one approving demo reviewer) and the tests (sequences of good and bad answers).
    When the answers run out the flow keeps waiting until its own timeout.
    """
    from prefect import tags

    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            with tags(tag):
                outcome["result"] = start()
        except BaseException as error:  # handed to the caller's thread below
            outcome["error"] = error

    worker = threading.Thread(target=target, name=f"flow-{tag}", daemon=True)
    worker.start()
    pending = list(answers)
    while worker.is_alive():
        waiting = paused_runs(tag) if pending else []
        if waiting:
            answer_paused_run(str(waiting[0]), pending.pop(0), on_receipt)
        worker.join(poll_seconds)
    if "error" in outcome:
        raise outcome["error"]
    result: T = outcome["result"]
    return result
