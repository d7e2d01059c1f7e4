"""A run waiting for review, as a reviewer's inbox lists it (``retrain pending``).

The paused training run publishes this summary beside the subject reviewers sign: what would be
promoted, against which champion, by how much (the gate's own interval), until when, and who may
answer. Nothing in it is secret or personal data.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass

from retrain.domain.gate import ComparisonInterval, GateDecision


@dataclass(frozen=True)
class PendingReview:
    flow_run_id: str
    model: str
    version: str
    champion: str | None
    metric: str
    gain: float | None
    lower: float | None
    upper: float | None
    deadline: str  # ISO 8601, UTC: when the run stops waiting (and times out)
    reviewers: tuple[str, ...]
    quorum: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PendingReview:
        raw = json.loads(text)
        return cls(
            flow_run_id=str(raw["flow_run_id"]),
            model=str(raw["model"]),
            version=str(raw["version"]),
            champion=None if raw.get("champion") is None else str(raw["champion"]),
            metric=str(raw["metric"]),
            gain=_number(raw.get("gain")),
            lower=_number(raw.get("lower")),
            upper=_number(raw.get("upper")),
            deadline=str(raw["deadline"]),
            reviewers=tuple(str(name) for name in raw.get("reviewers", [])),
            quorum=int(raw.get("quorum", 1)),
        )

    def gain_text(self) -> str:
        """``+0.0123 [-0.0040, +0.0290]``, the gain alone, or a dash for a first champion."""
        if self.gain is None:
            return "—"
        if self.lower is None or self.upper is None:
            return f"{self.gain:+.4f}"
        return f"{self.gain:+.4f} [{self.lower:+.4f}, {self.upper:+.4f}]"

    def minutes_left(self, now: dt.datetime) -> float:
        deadline = dt.datetime.fromisoformat(self.deadline)
        if deadline.tzinfo is None:  # written without a zone: UTC, as the gate writes it
            deadline = deadline.replace(tzinfo=dt.UTC)
        return (deadline - now).total_seconds() / 60


def _number(value: object) -> float | None:
    return None if value is None else float(str(value))


def pending_review(
    flow_run_id: str,
    model: str,
    version: str,
    champion: str | None,
    decision: GateDecision,
    deadline: dt.datetime,
    reviewers: tuple[str, ...],
    quorum: int,
) -> PendingReview:
    """The summary of a run that passed every automatic check and now waits for its reviewers."""
    interval = next(
        (row for check in decision.checks for row in check.rows(ComparisonInterval) if champion is not None), None
    )
    return PendingReview(
        flow_run_id=flow_run_id,
        model=model,
        version=version,
        champion=champion,
        metric=decision.primary_metric,
        gain=None if interval is None else interval.gain,
        lower=None if interval is None else interval.lower,
        upper=None if interval is None else interval.upper,
        deadline=deadline.astimezone(dt.UTC).isoformat(),
        reviewers=reviewers,
        quorum=quorum,
    )
