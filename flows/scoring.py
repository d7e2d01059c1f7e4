"""The scoring flow: score a batch with the champion (loaded by alias, native format) and, when a
challenger exists, the same rows in shadow; agreement now, metric differences once labels are there.
A batch with labels also measures the champion, and rows with categories the model never saw are
counted per feature and warned about."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from prefect import flow, get_run_logger, runtime
from prefect.artifacts import create_markdown_artifact
from prefect.states import Completed
from pydantic import BaseModel, Field

from retrain.adapters.environment import resolve_runtime
from retrain.adapters.registry import ModelRegistry
from retrain.application.results import ScoringResult
from retrain.domain import tags
from retrain.domain.errors import RetrainError
from retrain.domain.lifecycle import CHAMPION
from retrain.domain.runs import decision_tag, scoring_run_name, scoring_state_name
from retrain.domain.scoring import unknown_label_note, unseen_warnings
from tasks.data import check_row_thresholds_task, load_settings_task
from tasks.labels import label_run_task
from tasks.leases import RELEASE_LEASE, lease_and_reap_task
from tasks.monitoring import (
    champion_performance_task,
    record_scoring_task,
    score_batch_task,
    shadow_model_task,
    shadow_task,
)
from tasks.notify import FAILURE_HOOKS, tell_rollout
from tasks.policy import merged_hooks
from tasks.promotion import alias_task
from tasks.rollout import evaluate_rollout_task, routing_task


class ScoringRequest(BaseModel):
    batch: str = Field(description="Batch file to score (.parquet or .csv).")
    project_dir: str | None = Field(default=None, description="Project holding params.yaml.")
    output: str | None = Field(default=None, description="Predictions file; default under the state dir.")


@flow(
    name="scoring",
    log_prints=True,
    persist_result=True,  # JSON, read back by a person who started the run on the stack's worker
    result_serializer="json",
    **merged_hooks(RELEASE_LEASE, FAILURE_HOOKS),
)
def scoring(request: ScoringRequest) -> ScoringResult:
    where = resolve_runtime(project_dir=Path(request.project_dir) if request.project_dir else None)
    settings = load_settings_task(where.params_path)
    check_row_thresholds_task(settings, where.project_dir)
    registry = ModelRegistry.for_project(where, settings)
    lease_and_reap_task(where.ledger_url, settings, "scoring", str(where.project_dir), registry)
    champion = alias_task(registry, CHAMPION)
    if champion is None:
        raise RetrainError(f"model {registry.model_name} has no champion to score with (retrain train)")
    challenger = shadow_model_task(registry, champion)
    output = (
        Path(request.output)
        if request.output
        else where.state_dir / "predictions" / f"{Path(request.batch).stem}.parquet"
    )
    routing = routing_task(registry, where.ledger_url)
    scored = score_batch_task(registry, settings, champion, challenger, Path(request.batch), output, routing)
    comparison = shadow_task(scored, settings) if scored.shadow is not None else None
    performance = champion_performance_task(scored, settings)
    flow_run_id = str(runtime.flow_run.id or "local")
    rolled = (
        evaluate_rollout_task(
            registry,
            where.ledger_url,
            settings,
            scored.predictions_file,
            "scoring",
            flow_run_id,
            where.state_dir / "predictions",
        )
        if routing is not None
        else None
    )
    tell_rollout(registry.model_name, rolled)
    unseen = scored.unseen
    summary = {
        "rows": scored.rows,
        "champion": champion.version,
        "challenger": None if challenger is None else challenger.version,
        "candidate": None if routing is None else routing.candidate.version,
        "served": scored.served_by_arm(),
        "rollout": None if rolled is None else rolled.to_dict(),
        "predictions": str(scored.predictions_file),
        "labelled_rows": performance.labelled_rows,
        "metrics": performance.metrics,
        "unseen_categories": unseen,
        "unknown_labels": performance.unknown_labels,
        "shadow": None if comparison is None else comparison.to_dict(),
        "flow_run_id": flow_run_id,
    }
    summary["mlflow_run"] = record_scoring_task(registry, summary)
    create_markdown_artifact(
        scoring_markdown(summary), key=tags.ARTIFACT_SCORING_REPORT, description="Scores and shadow"
    )
    logger = get_run_logger()
    for warning in unseen_warnings(unseen, scored.rows):
        logger.warning(warning)
    if performance.unknown_labels:
        logger.warning(unknown_label_note(performance.unknown_labels))
    written = scored.predictions_file
    served = (
        ""
        if routing is None
        else f" and candidate v{routing.candidate.version} ({scored.served_by_arm()['candidate']} rows)"
    )
    print(f"scored {summary['rows']} rows with champion v{champion.version}{served} → {written}; {performance.note}")
    if rolled is not None:
        print(rolled.headline())
    ended = scoring_state_name(rolled.ended if rolled is not None else None)
    candidate = None if routing is None else routing.candidate.version
    name = scoring_run_name(registry.model_name, champion.version, candidate, request.batch)
    label_run_task(flow_run_id, name, [f"model:{registry.model_name}", decision_tag(ended)])
    result = ScoringResult.model_validate(summary)
    return cast(ScoringResult, Completed(data=result, name=ended, message=f"{summary['rows']} rows scored"))


def scoring_markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# Scoring: {summary['rows']} rows with champion v{summary['champion']}",
        "",
        f"Predictions: `{summary['predictions']}` (column `model_version` beside every score).",
    ]
    if summary["metrics"]:
        title = f"## Champion on the {summary['labelled_rows']} labelled rows"
        lines += ["", title, "", "| metric | value |", "|---|---|"]
        lines += [f"| {metric} | {value:.4f} |" for metric, value in summary["metrics"].items()]
    unseen = unseen_warnings(summary["unseen_categories"], summary["rows"])
    if summary["unknown_labels"]:
        unseen.append(unknown_label_note(summary["unknown_labels"]))
    if unseen:
        lines += ["", *[f"- {line}" for line in unseen]]
    rolled = summary.get("rollout")
    if rolled is not None:
        served = summary["served"]
        lines += [
            "",
            f"## Rollout: candidate v{summary['candidate']} served {served.get('candidate', 0)} of the rows",
            "",
            f"**{rolled['headline']}**",
            "",
            *[f"- {reason}" for reason in rolled["verdict"]["reasons"]],
        ]
    shadow = summary["shadow"]
    if shadow is None:
        return "\n".join([*lines, "", "No challenger: nothing scored in shadow."])
    lines += [
        "",
        f"## Shadow: challenger v{summary['challenger']} on the same rows (never served)",
        "",
        f"- same decision on {shadow['agreement']:.1%} of rows; mean |prediction difference| "
        f"{shadow['mean_abs_difference']:.4f}; rank correlation {shadow['rank_correlation']:.3f}",
    ]
    if shadow["gains"]:
        lines += ["", "| metric | champion | challenger | gain |", "|---|---|---|---|"]
        for metric, gain in shadow["gains"].items():
            lines.append(
                f"| {metric} | {shadow['champion_metrics'][metric]:.4f} | "
                f"{shadow['challenger_metrics'][metric]:.4f} | {gain:+.4f} |"
            )
    else:
        lines.append(f"- labels on {shadow['labelled_rows']} rows: metric differences once labels arrive")
    return "\n".join(lines)
