"""Rolling a new model out on real traffic: which rows it serves, how its share grows, when it ends.

A rollout starts when an approved challenger becomes ``candidate`` instead of ``champion``
(``rollout.strategy: canary | linear``). The scoring flow then serves a share of the rows with the
candidate, the rest with the champion: a row's arm is a hash of its id (salted by the rollout), so a
customer meets the same model on every batch, and a share that grows only adds customers to the
candidate's arm. The two arms are disjoint samples of the same traffic; once labels arrive (late,
through ``retrain feedback``), their realized primary metric is compared with a two-sample bootstrap
of the difference, judged by the gate's own rule (non-inferiority margin or superiority gain).

The rollout is a state machine kept in the ledger: a ``start`` entry, then ``step`` (the share grew),
``evaluation`` (a scored batch or late labels were looked at) and one end: ``completed`` (a promotion:
``candidate`` becomes ``champion``), ``rolled_back`` (``candidate`` cleared), or ``superseded`` (the
champion moved some other way). Everything here is pure: the ledger's entries in, decisions out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from retrain.domain.bootstrap import BOOTSTRAP_METRICS, metric_draws
from retrain.domain.lifecycle import MOVES, LedgerEntry
from retrain.domain.metrics import (
    HIGHER_IS_BETTER,
    calibration_allowance,
    calibration_noise,
    expected_calibration_error,
    gain,
    task_metrics,
)
from retrain.domain.settings import GateSettings, RolloutSettings, TaskKind

ARM_CHAMPION: Final = "champion"
ARM_CANDIDATE: Final = "candidate"
#: Columns a predictions file carries for the rows scored during a rollout.
ARM_COLUMN: Final = "arm"
ROLLOUT_COLUMN: Final = "rollout"
EVENT_KEY: Final = "rollout"  # the key of a ledger entry's evidence that holds the rollout event

Action = Literal["continue", "complete", "roll_back"]
EndOutcome = Literal["completed", "rolled_back", "superseded"]


@dataclass(frozen=True)
class Rollout:
    """A rollout in progress, as its ledger entries tell it."""

    id: int  # the ledger position of its start entry
    model_name: str
    candidate: str
    champion: str
    strategy: str
    share: float  # the candidate's share of rows now
    started_at: dt.datetime  # when its start was recorded (wall clock)
    files: tuple[str, ...] = ()  # predictions files scored while it ran (from its evaluation entries)
    steps: int = 0

    @property
    def salt(self) -> str:
        """What the row hash is salted with: each rollout picks its own customers."""
        return f"{self.model_name}:rollout:{self.id}:v{self.candidate}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["files"] = list(self.files)
        return data


def event_of(entry: LedgerEntry) -> dict[str, Any] | None:
    """The rollout event a ledger entry records, if any."""
    event = entry.evidence.get(EVENT_KEY) if isinstance(entry.evidence, dict) else None
    return event if isinstance(event, dict) and "event" in event else None


def active_rollout(entries: Sequence[LedgerEntry]) -> Rollout | None:
    """The rollout in progress after these entries (one model's, oldest first), or None.

    A rollout ends with its own end event, and with any move of ``champion``: its completion is a
    promotion of the candidate; a promotion or rollback of anything else leaves it judged against a
    champion that no longer serves (superseded).
    """
    current: Rollout | None = None
    for entry in entries:
        event = event_of(entry)
        if event is not None and event["event"] == "start" and entry.position is not None:
            current = Rollout(
                id=entry.position,
                model_name=entry.model_name,
                candidate=str(event["candidate"]),
                champion=str(event["champion"]),
                strategy=str(event["strategy"]),
                share=float(event["share"]),
                started_at=entry.recorded_at or dt.datetime.now(dt.UTC),
            )
            continue
        if current is None:
            continue
        if entry.kind in MOVES:
            current = None
            continue
        if event is None or event.get("id") != current.id:
            continue
        if event["event"] == "end":
            current = None
        elif event["event"] == "step":
            current = _replace(current, share=float(event["share"]), steps=current.steps + 1)
        elif event["event"] == "evaluation" and event.get("file") and str(event["file"]) not in current.files:
            current = _replace(current, files=(*current.files, str(event["file"])))
    return current


def _replace(rollout: Rollout, **changes: Any) -> Rollout:
    return Rollout(**{**asdict(rollout), **changes})


def start_event(candidate: str, champion: str, settings: RolloutSettings) -> dict[str, Any]:
    return {
        "event": "start",
        "strategy": settings.strategy,
        "candidate": candidate,
        "champion": champion,
        "share": settings.share,
    }


def candidate_rows(keys: pd.DataFrame, share: float, salt: str) -> np.ndarray:
    """Which rows the candidate serves: a uniform number per row from a salted hash of its key
    columns (the id, or without one the batch file and position), below ``share``. The same key
    always gets the same number, so a customer stays in one arm and a larger share keeps everyone
    the smaller one had. Keys hash as text: an id read as 17 from Parquet or "17" from CSV is one."""
    if share <= 0 or keys.empty:
        return np.zeros(len(keys), dtype=bool)
    hash_key = hashlib.sha256(salt.encode("utf-8")).hexdigest()[:16]
    text = keys.astype(str)
    hashed = pd.util.hash_pandas_object(text, index=False, hash_key=hash_key).to_numpy(dtype="uint64")
    uniform = (hashed >> np.uint64(11)).astype("float64") / float(1 << 53)
    chosen: np.ndarray = uniform < share
    return chosen


def due_share(settings: RolloutSettings, share: float, elapsed_hours: float) -> float:
    """The candidate's share by the schedule: canary keeps it; linear adds ``step`` every
    ``step_hours`` since the start, up to ``max_share`` (the champion keeps the rest to compare with)."""
    if settings.strategy != "linear":
        return share
    steps = math.floor(max(elapsed_hours, 0.0) / settings.step_hours)
    return max(share, min(settings.max_share, round(settings.share + steps * settings.step, 6)))


@dataclass(frozen=True)
class ArmSample:
    """One arm's rows of the rollout: how many it served, and its labelled rows (encoded labels and
    the served predictions, the task's shape)."""

    served: int
    labels: np.ndarray
    predictions: np.ndarray

    @property
    def labelled(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class ArmComparison:
    """The candidate's gain over the champion on their own disjoint labelled rows (positive: better)."""

    metric: str
    champion: float
    candidate: float
    gain: float
    lower: float
    upper: float
    confidence: float
    method: str


@dataclass(frozen=True)
class RolloutVerdict:
    """What an evaluation decided, why, and the numbers behind it (kept in the ledger)."""

    action: Action
    reasons: tuple[str, ...]
    share: float
    comparison: ArmComparison | None
    served: dict[str, int] = field(default_factory=dict)
    labelled: dict[str, int] = field(default_factory=dict)
    guardrails: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        data["guardrails"] = list(self.guardrails)
        return data


def compare_arms(
    metric: str, task: TaskKind, champion: ArmSample, candidate: ArmSample, gate: GateSettings, seed: int
) -> ArmComparison | None:
    """Two-sample bootstrap of the difference: each arm resampled on its own rows (they are different
    customers, so nothing pairs), the percentile interval of candidate − champion, signed so that
    positive is better. Metrics without a per-row form (PR AUC, macro-F1) are judged on the point
    estimate, as the gate does. None when a metric cannot be measured on an arm (one class only)."""
    try:
        value_h = task_metrics(task, champion.labels, champion.predictions)[metric]
        value_c = task_metrics(task, candidate.labels, candidate.predictions)[metric]
    except (ValueError, IndexError):
        return None
    if not (np.isfinite(value_h) and np.isfinite(value_c)):
        return None
    observed = gain(metric, value_c, value_h)
    if metric not in BOOTSTRAP_METRICS:
        return ArmComparison(metric, value_h, value_c, observed, observed, observed, gate.confidence, "point estimate")
    try:
        _, draws_h = metric_draws(
            metric, champion.labels, champion.predictions, resamples=gate.bootstrap_resamples, seed=seed
        )
        _, draws_c = metric_draws(
            metric, candidate.labels, candidate.predictions, resamples=gate.bootstrap_resamples, seed=seed + 1
        )
    except ValueError:
        return None
    differences = draws_c - draws_h if HIGHER_IS_BETTER[metric] else draws_h - draws_c
    tail = (1 - gate.confidence) / 2
    lower, upper = np.quantile(differences, [tail, 1 - tail])
    return ArmComparison(
        metric, value_h, value_c, observed, float(lower), float(upper), gate.confidence, "two-sample bootstrap"
    )


def _threshold(gate: GateSettings) -> float:
    return -gate.max_drop if gate.mode == "non_inferiority" else gate.min_gain


def _rule(gate: GateSettings) -> str:
    if gate.mode == "non_inferiority":
        return f"non-inferiority: the lower bound must exceed {-gate.max_drop:+.4f}"
    return f"superiority: the lower bound must exceed {gate.min_gain:+.4f}"


def guardrail_failures(
    task: TaskKind, candidate: ArmSample, comparison: ArmComparison | None, gate: GateSettings, seed: int = 0
) -> list[str]:
    """What makes a candidate roll back at once, before the planned decision: its arm is surely worse
    than the champion's by more than the margin, surely below the gate's floor, or (classifiers)
    shows a calibration error past the gate's guardrail beyond what chance gives on its rows."""
    failures: list[str] = []
    metric = gate.primary_metric
    measured = comparison is not None and comparison.method == "two-sample bootstrap"  # not a bare point estimate
    if measured and comparison is not None and comparison.upper < -gate.max_drop:
        failures.append(
            f"surely worse on real traffic: {metric} gain {comparison.gain:+.4f}, "
            f"CI [{comparison.lower:+.4f}, {comparison.upper:+.4f}] entirely below {-gate.max_drop:+.4f}"
        )
    if measured and comparison is not None:
        try:
            value, draws = metric_draws(
                metric, candidate.labels, candidate.predictions, resamples=gate.bootstrap_resamples, seed=seed
            )
        except ValueError:
            value, draws = comparison.candidate, np.array([comparison.candidate])
        tail = (1 - gate.confidence) / 2
        low, high = np.quantile(draws, [tail, 1 - tail])
        below = high < gate.floor if HIGHER_IS_BETTER[metric] else low > gate.floor
        if below:
            failures.append(f"surely past the floor on real traffic: {metric} {value:.4f} (floor {gate.floor:.4f})")
    if task != "regression" and candidate.labelled:
        ece = expected_calibration_error(candidate.labels, candidate.predictions)
        allowed = calibration_allowance(
            gate.guardrails.max_calibration_error, calibration_noise(candidate.predictions), gate.confidence
        )
        if ece > allowed:
            failures.append(f"calibration error {ece:.4f} on real traffic > {allowed:.4f}")
    return failures


def judge_rollout(
    rollout: Rollout,
    champion: ArmSample,
    candidate: ArmSample,
    *,
    task: TaskKind,
    gate: GateSettings,
    settings: RolloutSettings,
    elapsed_hours: float,
    seed: int,
) -> RolloutVerdict:
    """Continue, complete or roll back, by the settings' rules, from the two arms' labelled rows.

    - Guardrails (:func:`guardrail_failures`) hold from ``rollout.guard_after_rows`` labelled rows per
      arm: a failing candidate rolls back at once.
    - From ``rollout.min_labelled_rows`` per arm, the gate's rule on the two-sample interval decides:
      complete (a linear rollout first steps up to its ``max_share``) or roll back.
    - Past ``rollout.max_days`` without a decision, ``rollout.on_timeout`` says which.
    """
    plan = settings.model_copy(update={"strategy": rollout.strategy})  # as it started, whatever params say now
    share = due_share(plan, rollout.share, elapsed_hours)
    served = {ARM_CHAMPION: champion.served, ARM_CANDIDATE: candidate.served}
    labelled = {ARM_CHAMPION: champion.labelled, ARM_CANDIDATE: candidate.labelled}
    fewest = min(champion.labelled, candidate.labelled)
    comparison = (
        compare_arms(gate.primary_metric, task, champion, candidate, gate, seed)
        if fewest >= settings.guard_after_rows
        else None
    )

    def verdict(action: Action, *reasons: str, guardrails: Sequence[str] = ()) -> RolloutVerdict:
        return RolloutVerdict(action, tuple(reasons), share, comparison, served, labelled, tuple(guardrails))

    if comparison is not None:
        failures = guardrail_failures(task, candidate, comparison, gate, seed)
        if failures:
            return verdict("roll_back", *failures, guardrails=failures)
    evidence = (
        ""
        if comparison is None
        else f"{comparison.metric} {comparison.candidate:.4f} (candidate) vs {comparison.champion:.4f} (champion), "
        f"gain {comparison.gain:+.4f}, {comparison.confidence:.0%} CI [{comparison.lower:+.4f}, "
        f"{comparison.upper:+.4f}] ({comparison.method}, {candidate.labelled} and {champion.labelled} labelled rows)"
    )
    if fewest >= settings.min_labelled_rows and comparison is not None:
        if comparison.lower > _threshold(gate):
            if rollout.strategy == "linear" and share < settings.max_share:
                return verdict(
                    "continue", f"{evidence}: passes so far; the share keeps stepping to {settings.max_share:.0%}"
                )
            return verdict("complete", f"{evidence}: passes the gate's rule ({_rule(gate)})")
        return verdict("roll_back", f"{evidence}: fails the gate's rule ({_rule(gate)})")
    waiting = (
        f"waiting for labels: {candidate.labelled} (candidate) and {champion.labelled} (champion) labelled rows "
        f"of {settings.min_labelled_rows} each"
    )
    if fewest >= settings.min_labelled_rows:  # enough rows, yet the metric cannot be measured (one class)
        waiting = f"the labelled rows cannot measure {gate.primary_metric} yet (one class in an arm?)"
    if elapsed_hours >= settings.max_days * 24:
        ended = f"no decision after {settings.max_days:g} days ({waiting})"
        if settings.on_timeout == "complete":
            return verdict("complete", f"{ended}: rollout.on_timeout completes it")
        return verdict("roll_back", f"{ended}: rollout.on_timeout rolls it back")
    return verdict("continue", *(part for part in (evidence, waiting) if part))
