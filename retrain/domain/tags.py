"""Every name Retrain writes where another program reads it back: one place, so nobody retypes one.

Registry tags are searched by ``retrain status``, the doctor and the tests; artifact keys are what the
Prefect UI, the stack's tests and the browser test look up; run-input keys are what ``retrain
approve``/``sign`` and the stack's proxy rules read. A typo in any of them is silent (a missing tag
reads as "none"), so code names them only through these constants. Tests may spell the values out:
that checks the wire value itself.
"""

from __future__ import annotations

from typing import Final

# --- Tags on model versions and training runs (the registry is searchable by them) ---------------
TAG_TRAINING_KEY: Final = "retrain.training_key"
TAG_DATA_MD5: Final = "retrain.data_md5"
TAG_CONTRACT_NAME: Final = "retrain.contract_name"
TAG_CONTRACT_VERSION: Final = "retrain.contract_version"
TAG_CONTRACT_HASH: Final = "retrain.contract_hash"
TAG_PARAMS_HASH: Final = "retrain.params_hash"
TAG_CODE_VERSION: Final = "retrain.code_version"
TAG_FLOW_RUN: Final = "retrain.flow_run_id"
TAG_TRIGGERED_BY: Final = "retrain.triggered_by"
TAG_REASON: Final = "retrain.reason"
TAG_SALT_ID: Final = "retrain.privacy_salt_id"  # versions whose tokens a privacy salt keyed: its id

# --- The decision, on the version: one word (promoted, refused, rejected, timed out, candidate,
# superseded, rolled back); the version's description says why. Everything it was taken on (checks,
# reviewers, the champion judged against, a rollout's plan) is the run's DECISION_DOCUMENT.
TAG_DECISION: Final = "retrain.gate.decision"
DECISION_DOCUMENT: Final = (
    "gate/decision.json"  # artifact of the training run (retrain.domain.lifecycle.DecisionRecord)
)

# --- Tags on MLflow runs ------------------------------------------------------------------------
TAG_CRASHED: Final = "retrain.crashed"  # on runs a crashed flow run left open: why they were failed
TAG_KIND: Final = "retrain.kind"  # monitoring runs: "drift" or "scoring"
TAG_CHAMPION: Final = "retrain.champion"  # monitoring runs: the champion version watched
TAG_SHADOW: Final = "retrain.shadow"  # scoring runs: the challenger scored in the shadow
TAG_MONITORING_DECISION: Final = "retrain.decision"  # drift runs: what the check decided; training runs: the gate
TAG_SIGNAL: Final = "retrain.signal"  # drift runs: which signal of the trigger decided
TAG_DRIFT_WORST: Final = "retrain.drift.worst"  # drift runs: the most drifted features, with their statistic
# drift runs' artifact: reference vs current distribution of every drifted feature (the drift-report links it)
ARTIFACT_DRIFT_GRID: Final = "plots/drift_features.png"

# --- Artifact folders of a training run in MLflow ----------------------------------------------------
RUN_PLOTS: Final = "plots"  # the model's own holdout plots, logged when it is registered
RUN_COMPARISON: Final = "comparison"  # champion vs challenger on the gate's holdout rows, logged when judged

# --- Prefect artifact keys ----------------------------------------------------------------------
ARTIFACT_GATE_REPORT: Final = "gate-report"  # what reviewers read before they decide
ARTIFACT_GATE_DECISION: Final = "gate-decision"  # the decision as taken, after the gate
ARTIFACT_APPROVAL_BALLOTS: Final = "approval-ballots"  # every reviewer answer, counted or refused
ARTIFACT_ROLLBACK: Final = "rollback"
ARTIFACT_BATCH_VALIDATION: Final = "batch-validation"
ARTIFACT_DATA_VALIDATION: Final = "data-validation"
ARTIFACT_DRIFT_REPORT: Final = "drift-report"
ARTIFACT_SCORING_REPORT: Final = "scoring-report"
ARTIFACT_FEEDBACK_REPORT: Final = "feedback-report"  # what one late-labels file did with every row
ARTIFACT_ROLLOUT_REPORT: Final = "rollout-report"  # a rollout's evaluation: both arms, the verdict
ARTIFACT_DASHBOARD: Final = "dashboard"  # where `retrain report` wrote the page, and what it shows
ARTIFACT_DASHBOARD_LINK: Final = "dashboard-link"  # the page as an MLflow artifact

# --- Prefect run inputs and pause keys of the approval gate --------------------------------------
INPUT_APPROVAL_SUBJECT: Final = "retrain-approval-subject"  # what reviewers sign (nothing secret)
INPUT_PENDING_REVIEW: Final = "retrain-pending-review"  # the inbox's line: gain, CI, deadline (nothing secret)
INPUT_RECEIPT_PREFIX: Final = "retrain-receipt-"  # + pause key: the run's answer to one ballot
PAUSE_PREFIX: Final = "approval-"  # + round number: one pause per ballot
RECEIPT_SENDER: Final = "retrain-approval-gate"
SUBJECT_SENDER: Final = "retrain"


def receipt_key(pause_key: str) -> str:
    """The run input that answers the ballot sent to the pause ``pause_key``."""
    return f"{INPUT_RECEIPT_PREFIX}{pause_key}"


def pause_key(round_number: int) -> str:
    """The pause of the ``round_number``-th ballot (the run pauses again after a refused one)."""
    return f"{PAUSE_PREFIX}{round_number}"
