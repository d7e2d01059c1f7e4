"""Using the team stack from a person's shell: runs go to the worker through the deployments.

On the stack, people hold READ on MLflow: training in their own process could not register a
version. So ``retrain train --stack`` (and the stack demo) start runs of the deployments, which
the worker executes with the service account, and follow them through the Prefect API. The
training, drift and rollback flows persist their (JSON) results, which is how the follower learns
what the worker's run decided; the follower validates each against its model in
``retrain.application.results``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ValidationError

from retrain.adapters.prefect_api import AnswerSource, OnReceipt, answer_paused_run
from retrain.application.results import DriftResult, FeedbackResult, ScoringResult, TrainingResult, TriggeredTraining
from retrain.domain.errors import RetrainError

if TYPE_CHECKING:
    from retrain.domain.settings import Settings


ResultT = TypeVar("ResultT", bound=BaseModel)


class StackRunError(RetrainError):
    """A run on the stack did not complete; the message names the run and its final state."""


def start_deployment_run(deployment: str, request: dict[str, Any], tags: Sequence[str] = ()) -> str:
    """A run of ``flow/deployment`` with this request, like the UI's custom run; returns its id."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        run = run_deployment(deployment, parameters={"request": request}, timeout=0, tags=list(tags))
    except ObjectNotFound:
        raise StackRunError(
            f"no deployment {deployment} on this Prefect API: `retrain stack up` (or `retrain deploy`) registers it"
        ) from None
    return str(run.id)  # type: ignore[union-attr]


def follow_run(
    run_id: str,
    result_type: type[ResultT],
    answers: Sequence[AnswerSource] = (),
    on_receipt: OnReceipt | None = None,
    timeout: float = 3600,
    poll: float = 1.0,
) -> ResultT:
    """Wait for a run of the worker to end, answering its approval gate with ``answers`` in turn
    (as reviewers at the Prefect UI would), and return what the flow returned, as ``result_type``.

    A run that fails, crashes or is cancelled, or whose result is not a ``result_type``, is a
    ``StackRunError`` naming its state and message.
    """
    from prefect.client.orchestration import get_client

    pending = list(answers)
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            state = client.read_flow_run(UUID(run_id)).state
            if state is not None and state.is_paused() and state.state_details.run_input_keyset and pending:
                answer_paused_run(run_id, pending.pop(0), on_receipt)
                continue
            if state is not None and state.is_final():
                if not state.is_completed():
                    raise StackRunError(f"flow run {run_id} ended {state.name}: {state.message or 'see its logs'}")
                return _validated(run_id, state.result(raise_on_failure=True), result_type)
            time.sleep(poll)
    raise StackRunError(f"flow run {run_id} did not finish within {timeout:.0f} s")


def _validated(run_id: str, result: object, result_type: type[ResultT]) -> ResultT:
    """The persisted result as ``result_type``: Prefect's JSON serializer rebuilds the model itself;
    a plain dict (a worker on older code) is validated here; anything else is refused."""
    if isinstance(result, BaseModel) and not isinstance(result, result_type):
        result = result.model_dump()
    try:
        return result_type.model_validate(result)
    except ValidationError:
        raise StackRunError(f"flow run {run_id} completed without a readable result") from None


def stack_demo_runners(
    settings: Settings,
    answers: Sequence[AnswerSource],
    on_receipt: OnReceipt | None = None,
) -> tuple[Callable[[Path, str], TrainingResult], Callable[[Path, Path], DriftResult]]:
    """The demo's two steps on the stack: a training run and a drift check, each a run of its
    deployment on the worker; a retraining the drift run triggers is followed and reviewed too."""
    from retrain.deploy.deployments import DRIFT_DEPLOYMENT

    def run_training(workspace: Path, why: str) -> TrainingResult:
        request = {"project_dir": str(workspace), "triggered_by": "demo", "reason": why}
        run_id = start_deployment_run(settings.retraining.deployment, request, tags=["retrain-demo"])
        return follow_run(run_id, TrainingResult, answers, on_receipt)

    def run_drift(workspace: Path, batch: Path) -> DriftResult:
        deployment = f"drift/{DRIFT_DEPLOYMENT}"
        request = {"project_dir": str(workspace), "batches": [str(batch)], "act": True}  # the demo's day acts
        run_id = start_deployment_run(deployment, request, tags=["retrain-demo"])
        result = follow_run(run_id, DriftResult)
        triggered = result.training
        if triggered is not None and triggered.via != "in-process":
            trained = follow_run(triggered.flow_run_id, TrainingResult, answers, on_receipt)
            followed = TriggeredTraining(
                **trained.outcome.model_dump(), flow_run_id=trained.flow_run_id, via=triggered.via
            )
            result = result.model_copy(update={"training": followed})
        return result

    return run_training, run_drift


def stack_serving_runner() -> Callable[[Path, Path, Path], tuple[ScoringResult, FeedbackResult]]:
    """The demo's day of traffic on the stack: the worker scores the applicants (routing the rollout's
    arms) and joins their outcomes later, each a run of its deployment; the rollout is judged there."""
    from retrain.deploy.deployments import FEEDBACK_DEPLOYMENT, SCORING_DEPLOYMENT

    def run_serving(workspace: Path, applicants: Path, labels: Path) -> tuple[ScoringResult, FeedbackResult]:
        scores = workspace.parent / "predictions"  # the demo's own (reset with it), written by the worker
        scores.mkdir(parents=True, exist_ok=True)
        output = scores / f"{applicants.stem}.parquet"
        request = {"project_dir": str(workspace), "batch": str(applicants), "output": str(output)}
        scored = follow_run(
            start_deployment_run(f"scoring/{SCORING_DEPLOYMENT}", request, tags=["retrain-demo"]), ScoringResult
        )
        request = {"project_dir": str(workspace), "labels": str(labels), "scores": str(scores)}
        joined = follow_run(
            start_deployment_run(f"feedback/{FEEDBACK_DEPLOYMENT}", request, tags=["retrain-demo"]), FeedbackResult
        )
        return scored, joined

    return run_serving
