"""The feedback flow: labels that arrive after the scores, joined to the stored predictions by id, once.

Wiring only: the join is :func:`retrain.application.feedback.apply_feedback` in one task; what it did
with every row of the labels file is the flow's result, its log and a markdown artifact.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, runtime
from pydantic import BaseModel, Field

from retrain.adapters.environment import resolve_runtime
from retrain.adapters.registry import ModelRegistry
from retrain.application.results import FeedbackResult
from tasks.data import load_settings_task
from tasks.monitoring import join_feedback_task, publish_feedback_task
from tasks.notify import FAILURE_HOOKS, tell_rollout
from tasks.rollout import evaluate_rollout_task


class FeedbackRequest(BaseModel):
    labels: str = Field(description="Labels file (.parquet or .csv): the id column and the label, named as the target.")
    project_dir: str | None = Field(default=None, description="Project holding params.yaml.")
    scores: str | None = Field(
        default=None, description="Directory of stored predictions; empty means where the scoring flow writes them."
    )


@flow(name="feedback", log_prints=True, persist_result=True, result_serializer="json", **FAILURE_HOOKS)
def feedback(request: FeedbackRequest) -> FeedbackResult:
    where = resolve_runtime(project_dir=Path(request.project_dir) if request.project_dir else None)
    settings = load_settings_task(where.params_path)
    report = join_feedback_task(where, settings, Path(request.labels), Path(request.scores) if request.scores else None)
    publish_feedback_task(report)
    print(report.summary())
    flow_run_id = str(runtime.flow_run.id or "local")
    rolled = None
    if report.joined:  # new labels: a running rollout may now have enough to decide
        registry = ModelRegistry.for_project(where, settings)
        scores = Path(request.scores) if request.scores else where.state_dir / "predictions"
        rolled = evaluate_rollout_task(registry, where.ledger_url, settings, None, "feedback", flow_run_id, scores)
        tell_rollout(registry.model_name, rolled)
        if rolled is not None:
            print(rolled.headline())
    return FeedbackResult(
        labels_file=report.labels_file,
        rows=report.rows,
        joined=report.joined,
        already_known=report.already_known,
        files_changed=list(report.files_changed),
        unknown_ids=report.shared(report.unknown_ids),
        disagreeing_ids=report.shared(report.disagreeing_ids),
        conflicting_ids=report.shared(report.conflicting_ids),
        repeated_rows=report.repeated_rows,
        without_label=report.without_label,
        unknown_labels=dict(report.unknown_labels),
        headline=report.headline,
        problems=report.problems,
        flow_run_id=flow_run_id,
        rollout=None if rolled is None else rolled.to_dict(),
    )
