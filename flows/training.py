"""The training flow: validate → snapshot (DVC) → train → register (→ commit to git) → evaluate → gate → promote.

Wiring only: every step is a task in ``tasks/``. The parameters are a typed model, so the Prefect
UI shows them as a form when a data scientist triggers a custom run.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import cast

import numpy as np
from prefect import flow, runtime
from prefect.states import Completed
from pydantic import BaseModel, Field

from retrain.adapters.environment import Runtime, resolve_runtime
from retrain.adapters.registry import ModelRegistry
from retrain.application.evaluation import Judgement
from retrain.application.results import TrainingResult
from retrain.application.versioning import wants_commit
from retrain.domain.approval import ApprovalSubject
from retrain.domain.evidence import Evidence, Snapshot
from retrain.domain.gate import GateDecision
from retrain.domain.gate_report import (
    ReportContext,
    final_verdict,
    gate_report,
    outcome_lines,
    review_instructions,
    training_lineage,
)
from retrain.domain.lifecycle import CANDIDATE, CHAMPION, ModelVersionInfo
from retrain.domain.notices import awaiting_review, outcome_word, training_outcome
from retrain.domain.pending import pending_review
from retrain.domain.runs import decision_tag, training_run_name, training_state_name
from retrain.domain.settings import Settings
from retrain.domain.splitting import TimeSplit
from tasks.approval import collect_approval, publish_pending_task, reviewer_keys_task
from tasks.data import (
    build_training_set_task,
    check_row_thresholds_task,
    commit_training_task,
    known_verdicts_task,
    list_batches_task,
    load_settings_task,
    prepare_data_repo_task,
    publish_validation_task,
    store_quarantine_task,
    validate_new_batches,
    version_training_set_task,
)
from tasks.labels import label_run_task
from tasks.leases import RELEASE_LEASE, lease_and_reap_task
from tasks.notify import FAILURE_HOOKS, tell
from tasks.policy import merged_hooks
from tasks.promotion import (
    alias_task,
    comparison_task,
    doctor_task,
    guardrails_task,
    judge_task,
    links_task,
    mark_challenger_task,
    predict_champion_task,
    predict_task,
    promote_task,
    publish_decision_task,
    publish_gate_report_task,
)
from tasks.training import (
    engine_ready_task,
    find_existing_task,
    gather_evidence_task,
    register_task,
    split_task,
    train_task,
    training_lock,
)


class TrainingRequest(BaseModel):
    """What the person (or schedule) starting a training run says about it."""

    project_dir: str | None = Field(
        default=None, description="Project holding params.yaml; empty means RETRAIN_PROJECT or the working directory."
    )
    triggered_by: str = Field(default="unknown", description="Who or what started this run (recorded as evidence).")
    reason: str = Field(default="manual", description="Why this run was started, e.g. 'nightly' or 'drift'.")
    commit: bool | None = Field(
        default=None,
        description="Commit the DVC pointers and dvc.lock to git after registering; empty means git.commit in params.",
    )
    new_privacy_salt: bool = Field(
        default=False,
        description="Tokenise sensitive columns under a new privacy salt although registered versions record "
        "another (the lost one cannot be restored): their models then cannot be scored, and the gate fails "
        "the comparison with the champion.",
    )


def validated_snapshot(batches: list[Path], settings: Settings, where: Runtime, reports: Path) -> Path:
    """validate → quarantine → snapshot: the batches' accepted rows go into the snapshot file and are
    released on return (the training reads the file, not the batches' frames)."""
    # batches judged before under this contract: their verdicts in one task; the new ones validated
    known = known_verdicts_task(batches, settings, where.project_dir, reports, where.validation_cache_dir)
    validations = validate_new_batches(
        batches, known, settings, where.project_dir, reports, where.validation_cache_dir, where.dask_scheduler
    )
    publish_validation_task([validation.report for validation in validations])
    store_quarantine_task(validations, settings, where.project_dir)
    return build_training_set_task(validations, settings, where.project_dir)


def report_context(
    registry: ModelRegistry,
    settings: Settings,
    where: Runtime,
    split: TimeSplit,
    snapshot: Snapshot,
    evidence: Evidence,
    judgement: Judgement,
    challenger: ModelVersionInfo,
    champion: ModelVersionInfo | None,
    predictions: tuple[np.ndarray, np.ndarray | None],  # the challenger's and the champion's, as judged
) -> ReportContext:
    """What the gate report names besides the checks: both models' metrics, the comparison plots
    (drawn from the predictions the gate judged, into the challenger's run), the lineage and the links."""
    challenger_pred, champion_pred = predictions
    comparison_task(
        registry, settings, split.holdout, judgement.decision, challenger, challenger_pred, champion, champion_pred
    )
    links = links_task(registry, where.mlflow_ui_url, challenger, evidence.flow_run_id)
    return ReportContext(
        challenger,
        judgement.challenger_metrics,
        champion,
        judgement.champion_metrics,
        lineage=training_lineage(snapshot, split.holdout_days, evidence, challenger.run_id, challenger.version),
        links=links.links,
        lineage_links=links.lineage,
        figures=links.figures,
    )


def judged(
    registry: ModelRegistry,
    settings: Settings,
    split: TimeSplit,
    challenger: ModelVersionInfo,
    champion: ModelVersionInfo | None,
    reports: Path,
    new_salt: bool = False,
) -> tuple[Judgement, np.ndarray, np.ndarray | None]:
    """Both registered models on the holdout, their guardrails, the gate. Each model reads the stored
    holdout rows as it learnt them; the gate judges on the split (its slices as tokens). A champion
    that cannot be scored here is a failed comparison, with the reason."""
    challenger_pred = predict_task(registry, challenger, split.stored_holdout, settings)
    champion_pred, champion_problem = (
        predict_champion_task(registry, champion, split.stored_holdout, settings) if champion else (None, None)
    )
    timed_against = champion if champion_problem is None else None
    guardrails = guardrails_task(registry, challenger, split.stored_holdout, settings, reports / "model", timed_against)
    judgement = judge_task(
        settings, split.holdout, challenger_pred, champion_pred, guardrails, champion_problem, new_salt
    )
    return judgement, challenger_pred, champion_pred


@flow(
    name="training",
    log_prints=True,
    persist_result=True,
    result_serializer="json",
    **merged_hooks(RELEASE_LEASE, FAILURE_HOOKS),
)
def training(request: TrainingRequest | None = None) -> TrainingResult:
    request = request or TrainingRequest()
    where = resolve_runtime(project_dir=Path(request.project_dir) if request.project_dir else None)
    flow_run_id = str(runtime.flow_run.id or "local")
    reports = where.reports_dir / flow_run_id
    settings = load_settings_task(where.params_path)
    check_row_thresholds_task(settings, where.project_dir)
    reviewer_keys = reviewer_keys_task(where.project_dir, settings.approval)  # before any work
    registry = ModelRegistry.for_project(where, settings)
    lease_and_reap_task(where.ledger_url, settings, "training", str(where.project_dir), registry)

    doctor_task(registry, where.ledger_url)
    print(f"boosting: {engine_ready_task(settings, where.dask_scheduler)}")
    # One training per registered model at a time: runs started together wait here for each other, so
    # the DVC snapshot is made once and one training key never registers two versions.
    with training_lock(where.ledger_url, registry.model_name):
        prepare_data_repo_task(where.project_dir, where.dvc_remote_url, where.dvc_remote_endpoint, where.s3_encryption)
        batches = list_batches_task(where.project_dir, settings)
        snapshot_path = validated_snapshot(batches, settings, where, reports / "validation")
        snapshot = version_training_set_task(snapshot_path, len(batches), settings, where.project_dir)
        evidence = gather_evidence_task(
            snapshot,
            settings,
            where.project_dir,
            flow_run_id,
            request.triggered_by,
            request.reason,
            where.state_dir,
            registry,
            request.new_privacy_salt,
        )
        split = split_task(snapshot_path, settings, where.state_dir)

        challenger = find_existing_task(registry, evidence.training_key)
        if challenger is None:
            fitted = train_task(split, settings, where.dask_scheduler)
            challenger = register_task(registry, fitted, snapshot, evidence, settings, where.project_dir)
        # after the evidence and the version exist: the commit cannot change the training key
        committed = (
            commit_training_task(where.project_dir, settings, challenger.version, snapshot.md5, flow_run_id)
            if wants_commit(settings, request.commit)
            else None
        )
    champion = alias_task(registry, CHAMPION)
    if champion is None or champion.version != challenger.version:
        mark_challenger_task(registry, challenger)

    judgement, challenger_pred, champion_pred = judged(
        registry, settings, split, challenger, champion, reports, request.new_privacy_salt
    )
    decision = judgement.decision
    context = report_context(
        registry,
        settings,
        where,
        split,
        snapshot,
        evidence,
        judgement,
        challenger,
        champion,
        (challenger_pred, champion_pred),
    )
    approval = None
    candidate = alias_task(registry, CANDIDATE)  # rolling out already: real traffic decides, no second review
    judged_before = (champion is not None and champion.version == challenger.version) or (
        candidate is not None and candidate.version == challenger.version
    )
    if decision.promote and not judged_before:
        report = gate_report(
            settings.model.registered_name,
            settings.gate.mode,
            decision,
            "AWAITING REVIEW",
            "Every automatic check passed.",
            context,
        )
        report += review_instructions(flow_run_id, settings.approval)
        publish_gate_report_task(report)
        subject = ApprovalSubject(
            flow_run_id, settings.model.registered_name, str(challenger.version), evidence.training_key
        )
        _announce_review(settings, subject, champion, decision, tuple(context.links.items()))
        approval = collect_approval(settings.approval, reviewer_keys, subject, request.triggered_by, report)
        decision = decision.with_check(approval.as_check())
    outcome = promote_task(
        registry,
        where.ledger_url,
        decision,
        challenger,
        champion,
        request.triggered_by,
        flow_run_id,
        {
            **evidence.to_dict(),
            "holdout": judgement.on_same_rows(
                len(split.holdout), challenger.version, champion.version if champion else None
            ),
        },
        approval,
        settings,
    )
    verdict, summary = final_verdict(outcome.promoted, outcome.note, outcome.reasons, outcome.rollout)
    final_report = gate_report(settings.model.registered_name, settings.gate.mode, decision, verdict, summary, context)
    publish_decision_task(final_report, decision, outcome, reports, reviewed=approval is not None)
    tell(
        training_outcome(
            settings.model.registered_name,
            str(challenger.version),
            outcome_word(outcome.promoted, approval.state if approval else None, outcome.rollout),
            summary,
            outcome.reasons,
            tuple(context.links.items()),
        )
    )
    # the last log line: the outcome and, for a refusal, each failed check with its value and threshold
    lines = outcome_lines(outcome.note, outcome.champion_version, challenger.version, outcome.reasons, decision.checks)
    print("\n".join(lines))
    return _ended_as(
        TrainingResult.of(outcome, decision, judgement, challenger, champion, approval, snapshot, evidence, committed),
        settings.model.registered_name,
        flow_run_id,
        request.triggered_by,
        lines[0],
    )


def _ended_as(result: TrainingResult, model: str, flow_run_id: str, triggered_by: str, headline: str) -> TrainingResult:
    """The run ends in a named state (type COMPLETED: Promoted, Refused, Rejected, Timed out) with a
    name and tags that say what it was, so the runs list shows the decision; whoever called the flow
    still gets the result (Prefect returns the state's data)."""
    outcome, approval, snapshot = result.outcome, result.approval, result.snapshot
    ended = training_state_name(outcome.promoted, outcome.note, outcome.rollout, approval.state if approval else None)
    version = result.challenger.version
    name = training_run_name(model, version, snapshot.first_day, snapshot.last_day, triggered_by)
    label_run_task(flow_run_id, name, [f"model:{model}", decision_tag(ended)])
    return cast(TrainingResult, Completed(data=result, name=ended, message=headline))


def _announce_review(
    settings: Settings,
    subject: ApprovalSubject,
    champion: ModelVersionInfo | None,
    decision: GateDecision,
    links: tuple[tuple[str, str], ...],
) -> None:
    """Before the run waits: the listed reviewers are told, and the run joins their inbox."""
    policy = settings.approval
    model, version = settings.model.registered_name, subject.challenger_version
    tell(
        awaiting_review(
            model, version, subject.flow_run_id, policy.reviewers, policy.quorum, policy.timeout_minutes, links
        )
    )
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=policy.timeout_minutes)
    publish_pending_task(
        pending_review(
            subject.flow_run_id,
            model,
            version,
            None if champion is None else champion.version,
            decision,
            deadline,
            tuple(policy.reviewers),
            policy.quorum,
        )
    )
