"""What the flows return: frozen pydantic models, JSON both ways.

The training, drift and rollback flows persist their results as JSON (``result_serializer="json"``),
and the stack client reads them back from the Prefect API: Prefect's JSON serializer writes a
model as its class name and ``model_dump(mode="json")`` and rebuilds it with ``model_validate``, so
the follower gets the same model the worker returned. The field names (and their order) are the
keys the flows returned as dicts before, so ``retrain drift --json`` prints what it always printed.

``ser_json_inf_nan="constants"``: a metric may be NaN (one class in a slice); written as ``NaN``
it reads back as NaN, where pydantic's default (``null``) would not validate as a float again.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from retrain.domain.approval import ApprovalState

if TYPE_CHECKING:
    from retrain.adapters.git import GitCommit
    from retrain.application.evaluation import Judgement
    from retrain.application.promotion import PromotionOutcome
    from retrain.domain.approval import ApprovalResult
    from retrain.domain.evidence import Evidence, Snapshot
    from retrain.domain.gate import GateDecision
    from retrain.domain.lifecycle import ModelVersionInfo


class ResultModel(BaseModel):
    """Base of the flow results: frozen, and NaN-safe through JSON."""

    model_config = ConfigDict(frozen=True, ser_json_inf_nan="constants")


class TrainingOutcome(ResultModel):
    """What the promotion step did (``PromotionOutcome``'s fields)."""

    promoted: bool
    champion_version: str | None
    previous_champion_version: str | None
    challenger_version: str
    reasons: tuple[str, ...]
    note: str
    rollout: bool = False  # approved, rolling out as candidate


class GateCheckResult(ResultModel):
    """One gate check as the flow reports it; ``details`` are the rows behind the verdict."""

    name: str
    passed: bool
    value: float | None
    threshold: float | None
    reason: str
    details: tuple[dict[str, Any], ...] = ()


class GateDecisionResult(ResultModel):
    """The gate's decision (``GateDecision.to_dict()``), the reviewers' check included."""

    promote: bool
    primary_metric: str
    checks: tuple[GateCheckResult, ...]
    reasons: tuple[str, ...]


class ChallengerResult(ResultModel):
    version: str
    run_id: str
    metrics: dict[str, float]


class ChampionBefore(ResultModel):
    """The champion the challenger was judged against."""

    version: str
    metrics: dict[str, float] | None


class ApprovalSummary(ResultModel):
    state: ApprovalState
    reviewers: tuple[str, ...]
    comment: str


class SnapshotResult(ResultModel):
    """The versioned training data of the run (``tasks.data.Snapshot``'s fields)."""

    path: str
    md5: str
    rows: int
    batches: int
    first_day: str
    last_day: str


class CommitResult(ResultModel):
    """What ``--commit`` (or ``git.commit``) did: the commit, or ``sha`` None when nothing had changed."""

    sha: str | None
    message: str
    paths: tuple[str, ...]
    summary: str


class TrainingResult(ResultModel):
    """The training flow's answer."""

    outcome: TrainingOutcome
    decision: GateDecisionResult
    challenger: ChallengerResult
    champion_before: ChampionBefore | None
    approval: ApprovalSummary | None
    snapshot: SnapshotResult
    training_key: str
    flow_run_id: str
    commit: CommitResult | None = None  # None: not asked to commit

    @classmethod
    def of(
        cls,
        outcome: PromotionOutcome,
        decision: GateDecision,
        judgement: Judgement,
        challenger: ModelVersionInfo,
        champion: ModelVersionInfo | None,
        approval: ApprovalResult | None,
        snapshot: Snapshot,
        evidence: Evidence,
        committed: GitCommit | None = None,
    ) -> TrainingResult:
        """The answer from what the flow's steps returned (the flow only passes them on)."""
        return cls.model_validate(
            {
                "outcome": asdict(outcome),
                "decision": decision.to_dict(),
                "challenger": {
                    "version": challenger.version,
                    "run_id": challenger.run_id,
                    "metrics": judgement.challenger_metrics,
                },
                "champion_before": None
                if champion is None
                else {"version": champion.version, "metrics": judgement.champion_metrics},
                "approval": None
                if approval is None
                else {"state": approval.state, "reviewers": list(approval.reviewers), "comment": approval.comment},
                "snapshot": snapshot.to_dict(),
                "training_key": evidence.training_key,
                "flow_run_id": evidence.flow_run_id,
                "commit": None if committed is None else {**asdict(committed), "summary": committed.summary},
            }
        )


class FeatureDriftResult(ResultModel):
    """One feature's (or the prediction's) drift verdict (``FeatureDrift``'s fields)."""

    feature: str
    kind: str
    statistic: str
    value: float
    threshold: float
    drifted: bool
    severity: float
    rows: int
    missing_reference: float
    missing_current: float
    details: dict[str, float | None] = {}


class PerformanceDriftResult(ResultModel):
    metric: str
    reference: float
    current: float
    lower: float
    upper: float
    drop: float
    threshold: float
    dropped: bool
    rows: int


class EstimatedPerformanceResult(ResultModel):
    metric: str
    reference: float
    current: float
    drop: float
    allowance: float
    threshold: float
    dropped: bool
    rows: int


class SignalResult(ResultModel):
    """One signal of the retraining trigger (``retrain.domain.drift.Signal``)."""

    name: str
    value: float
    threshold: float
    verdict: str
    text: str


class TriggeredTraining(TrainingOutcome):
    """A retraining the drift flow ran and followed: its outcome, its run, and how it ran."""

    flow_run_id: str
    via: str


class DeployedTraining(ResultModel):
    """A retraining the drift flow started as a run of the training deployment (not followed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    flow_run_id: str
    via: str


class DriftResult(ResultModel):
    """The drift flow's answer: the report, the (debounced) decision and the retraining it started;
    report only, the report and ``decision`` "report_only"."""

    rows: int
    judged: bool
    drift_share: float
    drifted_features: tuple[str, ...]
    flagged: bool
    reasons: tuple[str, ...]  # the decision's reasons: drift's own, plus what held it back
    features: dict[str, FeatureDriftResult]
    prediction: FeatureDriftResult | None
    performance: PerformanceDriftResult | None
    estimated: EstimatedPerformanceResult | None = None
    signal: str = "none"  # which signal decided: performance, estimated_performance, feature_drift, ...
    decided_by: SignalResult | None = None
    signals: tuple[SignalResult, ...] = ()
    not_counted: tuple[str, ...] = ()  # near-constant features
    weights: dict[str, float] = {}  # each counted feature's weight (its share of the champion's importance)
    change_baseline: float | None = None  # a sure performance drop: the champion's holdout level before it
    decision: str  # the recorded decision, or "report_only" (a check not asked to act decides nothing)
    batches: tuple[str, ...]
    champion: str
    decision_position: int | None  # in the decision log; None when nothing was recorded (report only)
    mlflow_run: str | None
    training: TriggeredTraining | DeployedTraining | None


class ShadowResult(ResultModel):
    """The challenger scored in shadow on the same rows (``ShadowComparison``'s fields)."""

    rows: int
    agreement: float
    mean_abs_difference: float
    rank_correlation: float
    labelled_rows: int
    champion_metrics: dict[str, float] | None
    challenger_metrics: dict[str, float] | None
    gains: dict[str, float] | None


class ScoringResult(ResultModel):
    """The scoring flow's answer."""

    rows: int
    champion: str
    challenger: str | None
    predictions: str
    labelled_rows: int = 0  # rows of the batch with a label: the champion's metrics are measured on them
    metrics: dict[str, float] | None = None  # the champion's, None without labels (or with one class only)
    unseen_categories: dict[str, int] = {}  # categorical feature -> rows with a category the model never saw
    unknown_labels: dict[str, int] = {}  # label value outside dataset.labels -> rows left out of the metrics
    shadow: ShadowResult | None
    flow_run_id: str
    mlflow_run: str | None
    candidate: str | None = None  # under a rollout: the candidate serving its share of the rows
    served: dict[str, int] = {}  # rows each arm served ("champion", "candidate")
    rollout: dict[str, Any] | None = None  # the rollout's evaluation after this batch (RolloutReport.to_dict())


class RollbackResult(ResultModel):
    """The rollback flow's answer: which version left, which came back, the ledger entry."""

    demoted: str
    restored: str
    ledger_entry: int


class FeedbackResult(ResultModel):
    """The feedback flow's answer: what one labels file did with every row (see
    :class:`retrain.domain.feedback.FeedbackReport`)."""

    labels_file: str
    rows: int
    joined: int
    already_known: int
    files_changed: list[str]
    unknown_ids: list[str]
    disagreeing_ids: list[str]
    conflicting_ids: list[str]
    repeated_rows: int
    without_label: int
    unknown_labels: dict[str, int]
    headline: str
    problems: list[str]
    flow_run_id: str
    rollout: dict[str, Any] | None = None  # the running rollout judged again with these labels


class PurgeReport(ResultModel):
    """The purge flow's answer (see :class:`retrain.application.retention.PurgeResult`): what it deleted
    (the ledger entry's record), where each object was deleted, what an interrupted purge had left."""

    model: str
    dry_run: bool
    ledger_entry: int | None
    deleted: dict[str, Any]
    finished: list[str]
    objects: dict[str, list[str]]
