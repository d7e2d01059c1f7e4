"""Answering the approval gate from outside the run: ``retrain approve``/``reject``, the demo, tests.

This is the same path the Prefect UI form takes: resume the paused run with the form's input
through the Prefect API. The API validates the input against the form's schema (a refusal leaves
the run paused); the run then judges the ballot and answers with a receipt, which this module waits
for so the person at the terminal learns whether their decision counted.

A reviewer's answer is signed for one run: :class:`Signing` reads what the paused run asks to be
signed (its :class:`ApprovalSubject` run input) and signs it with the reviewer's private key, in
this process; only the signature leaves it.
"""

from __future__ import annotations

import contextvars
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from uuid import UUID

from retrain.domain.approval import ApprovalSubject, BallotVerdict, sign_answer
from retrain.domain.dashboard import RunDuration
from retrain.domain.errors import ApprovalInputError, ServiceError
from retrain.domain.pending import PendingReview
from retrain.domain.runs import FlowRunView
from retrain.domain.tags import (
    INPUT_APPROVAL_SUBJECT,
    INPUT_PENDING_REVIEW,
    RECEIPT_SENDER,
    SUBJECT_SENDER,
    receipt_key,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

T = TypeVar("T")


@dataclass(frozen=True)
class Receipt:
    """The run's answer to one ballot."""

    counted: bool
    message: str
    state: str


@dataclass(frozen=True)
class Answer:
    """A reviewer's answer as the form takes it, signature included."""

    decision: str
    reviewer: str
    signature: str
    comment: str = ""

    def as_run_input(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reviewer": self.reviewer,
            "comment": self.comment,
            "signature": self.signature,
        }


@dataclass(frozen=True)
class Signing:
    """A reviewer's decision before it is signed: signed for whichever run it answers, in this process."""

    decision: str
    reviewer: str
    key: Ed25519PrivateKey = field(repr=False)
    comment: str = ""

    def answer(self, subject: ApprovalSubject) -> Answer:
        signature = sign_answer(self.key, subject, self.reviewer, self.decision, self.comment)
        return Answer(self.decision, self.reviewer, signature, self.comment)


class SignsForRun(Protocol):
    """Anything that makes a reviewer's answer for a run's subject (a :class:`Signing`; tests add tampering)."""

    @property
    def reviewer(self) -> str: ...

    def answer(self, subject: ApprovalSubject) -> Answer: ...


AnswerSource = Answer | SignsForRun


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


def _decode_input(value: str) -> Any:
    payload = json.loads(value)
    return json.loads(payload) if isinstance(payload, str) else payload  # the API stores inputs JSON-encoded


def read_subject(client: Any, flow_run_id: UUID) -> ApprovalSubject:
    """What a run waiting at the gate asks reviewers to sign, as the run published it."""
    import httpx

    try:
        raw = _decode_input(client.read_flow_run_input(flow_run_id, INPUT_APPROVAL_SUBJECT))
    except httpx.HTTPStatusError as error:
        if error.response.status_code != 404:
            raise
        raise ApprovalInputError(
            f"flow run {flow_run_id} does not say what to sign (no '{INPUT_APPROVAL_SUBJECT}' input): "
            "was it started by an older version of retrain?"
        ) from None
    subject = ApprovalSubject.from_json(json.dumps(raw))
    if subject.flow_run_id != str(flow_run_id):
        raise ApprovalInputError(f"flow run {flow_run_id} asks to sign for another run ({subject.flow_run_id})")
    return subject


def approval_subject(flow_run_id: str) -> ApprovalSubject:
    """The subject of a run waiting at the gate (``retrain sign`` prints a signature over it)."""
    from prefect.client.orchestration import get_client

    run_id = _parse_run_id(flow_run_id)
    with get_client(sync_client=True) as client:
        paused_pause_key(client, run_id)
        return read_subject(client, run_id)


# --- the gate's side: what the paused run writes for the clients above to read -----------------


def publish_subject(subject: ApprovalSubject) -> None:
    """What reviewers sign, readable by ``retrain approve``/``sign`` through the API (nothing secret).

    Replaces an earlier copy (a run that reaches the gate again after a restart publishes anew)."""
    from prefect.client.orchestration import get_client

    run_id = UUID(subject.flow_run_id)
    with get_client(sync_client=True) as client:
        if client.filter_flow_run_input(run_id, key_prefix=INPUT_APPROVAL_SUBJECT, limit=1, exclude_keys=set()):
            client.delete_flow_run_input(run_id, INPUT_APPROVAL_SUBJECT)
        client.create_flow_run_input(run_id, INPUT_APPROVAL_SUBJECT, subject.to_json(), sender=SUBJECT_SENDER)


def publish_pending(pending: PendingReview) -> None:
    """The inbox's line for a run about to wait at the gate (``retrain pending`` reads it)."""
    from prefect.client.orchestration import get_client

    run_id = UUID(pending.flow_run_id)
    with get_client(sync_client=True) as client:
        if client.filter_flow_run_input(run_id, key_prefix=INPUT_PENDING_REVIEW, limit=1, exclude_keys=set()):
            client.delete_flow_run_input(run_id, INPUT_PENDING_REVIEW)
        client.create_flow_run_input(run_id, INPUT_PENDING_REVIEW, pending.to_json(), sender=SUBJECT_SENDER)


def pending_reviews(limit: int = 200) -> list[PendingReview]:
    """Training runs waiting at a gate right now, nearest deadline first. A run without an inbox line
    (paused before the inbox existed) is left out; an API that refuses or fails is an error, never an
    empty inbox."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    found = []
    try:
        paused = flow_runs_in_states("training", ["PAUSED"], limit)
        with get_client(sync_client=True) as client:
            for run in paused:
                try:
                    stored = client.read_flow_run_input(UUID(run.id), INPUT_PENDING_REVIEW)
                    found.append(PendingReview.from_json(json.dumps(_decode_input(stored))))
                except (ObjectNotFound, ValueError, KeyError, TypeError):  # no line, or not one we can read
                    continue
                except httpx.HTTPStatusError as error:
                    if error.response.status_code != 404:
                        raise
    except (httpx.HTTPError, OSError) as error:
        raise ServiceError(f"the Prefect API did not list the runs waiting for review: {error}") from None
    return sorted(found, key=lambda pending: pending.deadline)


def write_receipt(flow_run_id: str, pause_key: str, verdict: BallotVerdict, state: str) -> None:
    """The run's answer to one ballot (:func:`submit_decision` waits for it)."""
    from prefect.client.orchestration import get_client

    payload = json.dumps({"counted": verdict.counted, "message": verdict.message, "state": state})
    with get_client(sync_client=True) as client:
        client.create_flow_run_input(UUID(flow_run_id), receipt_key(pause_key), payload, sender=RECEIPT_SENDER)


def _response_key(pause_key: str) -> str:
    return f"paused-{pause_key}-response"  # prefect.input.run_input.keyset_from_paused_state


def forget_answer(flow_run_id: str, pause_key: str) -> None:
    """Delete a run's stored answer once checked: a signature is useless elsewhere, but Prefect's
    database keeps no reviewer material beyond the ballots artifact."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.delete_flow_run_input(UUID(flow_run_id), _response_key(pause_key))


def mark_running(flow_run_id: str, message: str) -> None:
    """A pause that timed out leaves the run ``Paused`` on the server; record it as ``Running`` again."""
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(flow_run_id), Running(message=message), force=True)


def label_flow_run(flow_run_id: str, name: str, tags: Sequence[str]) -> None:
    """Rename a run and add tags to it (its own tags kept): what it turned out to be, in the runs list."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
        merged = list(dict.fromkeys([*(run.tags or []), *tags]))
        client.update_flow_run(UUID(flow_run_id), name=name, tags=merged).raise_for_status()


def _wait_for_receipt(client: Any, flow_run_id: UUID, pause_key: str, wait_seconds: float) -> Receipt:
    import httpx

    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        try:
            value = client.read_flow_run_input(flow_run_id, receipt_key(pause_key))
        except httpx.HTTPStatusError as error:
            if error.response.status_code != 404:
                raise
            time.sleep(0.5)
            continue
        payload = _decode_input(value)
        return Receipt(bool(payload["counted"]), str(payload["message"]), str(payload["state"]))
    raise ApprovalInputError(
        f"flow run {flow_run_id} was resumed but did not answer within {wait_seconds:.0f} s; "
        "is the process running it still alive? Check the run in the Prefect UI"
    )


def submit_decision(flow_run_id: str, source: AnswerSource, wait_seconds: float = 120.0) -> Receipt:
    """Send one reviewer's answer to a paused training run and wait for its receipt.

    A :class:`Signing` is signed here for this run's subject; an :class:`Answer` goes as it is (the
    tests use that to replay a signature made for another run).

    Raises ``ApprovalInputError`` when the run is not waiting, when the API refuses the input
    (the run stays paused), or when the run does not count the ballot (it pauses again).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus

    run_id = _parse_run_id(flow_run_id)
    with get_client(sync_client=True) as client:
        pause_key = paused_pause_key(client, run_id)
        answer = source if isinstance(source, Answer) else source.answer(read_subject(client, run_id))
        response = client.resume_flow_run(run_id, run_input=answer.as_run_input())
        if response.status != SetStateStatus.ACCEPT:
            reason = getattr(response.details, "reason", None) or response.status.value
            raise ApprovalInputError(f"the Prefect API refused the answer, the run stays paused: {reason}")
        receipt = _wait_for_receipt(client, run_id, pause_key, wait_seconds)
    if not receipt.counted:
        raise ApprovalInputError(f"the run did not count this answer and waits for another: {receipt.message}")
    return receipt


OnReceipt = Callable[[AnswerSource, Receipt | ApprovalInputError], None]


def answer_paused_run(flow_run_id: str, answer: AnswerSource, on_receipt: OnReceipt | None) -> None:
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

    with get_client(sync_client=True) as client:
        return _paused_runs(client, tag)


def _paused_runs(client: Any, tag: str) -> list[UUID]:
    """``paused_runs`` through an open client: a loop that asks often keeps one (a new client costs
    tens of milliseconds of CPU: its HTTP transport and TLS context are built each time)."""
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
    return [run.id for run in client.read_flow_runs(flow_run_filter=paused)]


def ui_url() -> str | None:
    """The Prefect UI people open (``PREFECT_UI_URL``, else derived from ``PREFECT_API_URL``), or None:
    the embedded server of a run without ``PREFECT_API_URL`` is gone when the run ends, so a link to it
    would lead nowhere."""
    from prefect.settings import PREFECT_UI_URL

    value = PREFECT_UI_URL.value()
    return str(value).rstrip("/") if value else None


def start_api_once() -> None:
    """Reach the Prefect API from this thread before any other thread does.

    With no ``PREFECT_API_URL`` the first client starts the embedded server, and Prefect's
    ``SubprocessASGIServer.start`` marks itself running before its process exists: a second thread
    asking for a client in that window fails with "Server process did not start". A busy machine
    widens the window, so the server is started here, once, before the flow's thread exists.
    """
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.api_healthcheck()


def run_with_reviewers(
    start: Callable[[], T],
    answers: Sequence[AnswerSource],
    on_receipt: OnReceipt | None = None,
    poll_seconds: float = 0.5,
) -> T:
    """Run ``start`` (which runs a training flow, or a flow that trains inside it) in a thread; whenever
    that thread's flow run waits at the approval gate, send it the next answer, as reviewers at the
    Prefect UI would.

    The run is found through the thread's own context (the flow run Prefect is running there), not
    by a tag: a tag in the caller's context is inherited by every task run, and Prefect then asks the
    API for tag concurrency slots before each task, a write that an embedded SQLite server answers
    with 503 when it is busy, after which the client waits 2 s (two or three times per training).

    Used by the demo (one approving demo reviewer), the tests (sequences of good and bad answers) and
    the benchmarks. When the answers run out the flow keeps waiting until its own timeout.
    """
    from prefect.client.orchestration import get_client

    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["result"] = context.run(start)
        except BaseException as error:  # handed to the caller's thread below
            outcome["error"] = error

    start_api_once()
    worker = threading.Thread(target=target, name="flow-with-reviewers", daemon=True)
    worker.start()
    pending = list(answers)
    with get_client(sync_client=True) as client:
        while worker.is_alive():
            waiting = _paused_run_in(context, client) if pending else None
            if waiting is not None:
                answer_paused_run(waiting, pending.pop(0), on_receipt)
            worker.join(poll_seconds)
    if "error" in outcome:
        raise outcome["error"]
    result: T = outcome["result"]
    return result


def _paused_run_in(context: contextvars.Context, client: Any) -> str | None:
    """The flow run that ``context`` (a thread's) is running right now, if it waits at a gate."""
    from prefect.client.schemas.objects import StateType
    from prefect.context import FlowRunContext

    running = context.get(FlowRunContext.__var__)
    flow_run = getattr(running, "flow_run", None)
    if flow_run is None:
        return None
    state = client.read_flow_run(flow_run.id).state
    return str(flow_run.id) if state is not None and state.type == StateType.PAUSED else None


# --- flow runs for the drift check, the reaper and retraining --------------------------------------
# (plain functions over the Prefect API, so the application layer decides without importing Prefect)


def _run_view(run: Any) -> FlowRunView:
    state = run.state
    return FlowRunView(
        id=str(run.id),
        name=str(run.name),
        state_type=None if state is None else str(state.type.value),
        state_name=None if state is None else str(state.name),
        state_timestamp=None if state is None else state.timestamp,
        expected_start_time=run.expected_start_time,
        parameters=dict(run.parameters or {}),
    )


def flow_runs_in_states(flow_name: str, states: Sequence[str], limit: int = 200) -> list[FlowRunView]:
    """Runs of the flow ``flow_name`` whose state type is one of ``states`` (e.g. ``RUNNING``)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    flows = FlowFilter(name=FlowFilterName(any_=[flow_name]))
    runs = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(name) for name in states]))
    )
    with get_client(sync_client=True) as client:
        found = client.read_flow_runs(flow_filter=flows, flow_run_filter=runs, limit=limit)
    return [_run_view(run) for run in found]


def finished_run_durations(flow_names: Sequence[str], project_dir: str, limit: int = 200) -> list[RunDuration]:
    """How long each of the newest ``limit`` (the API's most) finished runs of these flows took, for one
    project (its request's project_dir)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterStateType
    from prefect.client.schemas.filters import FlowRunFilterState as StateFilter
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    finished = [StateType.COMPLETED, StateType.FAILED, StateType.CRASHED]
    with get_client(sync_client=True) as client:
        flows = {
            str(flow.id): flow.name
            for flow in client.read_flows(flow_filter=FlowFilter(name=FlowFilterName(any_=list(flow_names))))
        }
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=list(flow_names))),
            flow_run_filter=FlowRunFilter(state=StateFilter(type=FlowRunFilterStateType(any_=finished))),
            sort=FlowRunSort.START_TIME_DESC,
            limit=limit,
        )
    durations = []
    for run in runs:
        request = (run.parameters or {}).get("request") or {}
        started_in = str(request.get("project_dir") or "")
        if not started_in or Path(started_in).resolve() != Path(project_dir).resolve() or run.start_time is None:
            continue
        seconds = run.total_run_time.total_seconds() if run.total_run_time else 0.0
        durations.append(RunDuration(run.start_time, flows.get(str(run.flow_id), "?"), str(run.name), seconds))
    return durations


class PrefectFlowRuns:
    """Read and crash flow runs through one Prefect client, open inside ``with PrefectFlowRuns():``
    (the reaper's port to the orchestrator)."""

    def __init__(self) -> None:
        self._client: Any = None
        self._context: Any = None

    def __enter__(self) -> PrefectFlowRuns:
        from prefect.client.orchestration import get_client

        self._context = get_client(sync_client=True)
        self._client = self._context.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        context, self._context, self._client = self._context, None, None
        context.__exit__(*exc_info)

    def read(self, run_id: str) -> FlowRunView | None:
        """The run, or None when this API does not know it (another server) or the id is no UUID."""
        from prefect.exceptions import ObjectNotFound

        try:
            return _run_view(self._client.read_flow_run(UUID(run_id)))
        except (ObjectNotFound, ValueError):
            return None

    def crash(self, run_id: str, message: str) -> None:
        """Force the run into Crashed, with ``message`` saying why."""
        from prefect.states import Crashed

        self._client.set_flow_run_state(UUID(run_id), Crashed(message=message), force=True)


def start_deployment_run(
    name: str, parameters: dict[str, Any], idempotency_key: str, tags: Sequence[str]
) -> str | None:
    """Start a run of the deployment ``name`` without waiting for it (once per idempotency key);
    None when no such deployment exists on this API."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(name)
        except ObjectNotFound:
            return None
    run = run_deployment(
        name,
        parameters=parameters,
        timeout=0,
        idempotency_key=idempotency_key,
        tags=list(tags),
        as_subflow=False,
    )
    return str(run.id)  # type: ignore[union-attr]
