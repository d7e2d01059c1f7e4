"""Names and records of the model lifecycle: aliases, model versions, evidence keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from retrain.domain import tags

CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"
PREVIOUS_CHAMPION: Final = "previous-champion"
CANDIDATE: Final = "candidate"  # an approved challenger serving a share of the rows (retrain.domain.rollout)
ALIASES: Final = (CHAMPION, CHALLENGER, PREVIOUS_CHAMPION, CANDIDATE)

# The tag keys are defined in retrain.domain.tags; these names stay for callers that read them from here.
TAG_DATA_MD5: Final = tags.TAG_DATA_MD5


@dataclass(frozen=True)
class ModelVersionInfo:
    """What ``retrain status`` shows of one registered model version."""

    version: str
    run_id: str
    metrics: dict[str, float]
    data_md5: str | None
    contract: dict[str, Any] | None
    training_key: str | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["aliases"] = list(self.aliases)
        return data


@dataclass(frozen=True)
class DecisionRecord:
    """Everything a version's gate decision was taken on, as a JSON artifact of its training run.

    Kept off the version's tags (MLflow shows each tag as a truncated chip and has no place for JSON),
    and written *before* the commit point of a move: ``doctor`` rebuilds the ledger entry a crash kept
    from being written from it (reviewers, comment, flow run, checks, a rollout's plan). ``history``
    holds the earlier decisions when a later one (a rollout's end, a rollback) replaced them.
    """

    decision: str
    reasons: str
    champion_before: str | None = None
    reviewers: tuple[str, ...] = ()
    comment: str = ""
    flow_run_id: str | None = None
    checks: tuple[dict[str, Any], ...] = ()
    rollout: dict[str, Any] | None = None  # a candidate's plan: strategy and share
    holdout: dict[str, Any] | None = None  # both models' metrics on the same holdout rows
    decided_at: str = ""
    history: tuple[dict[str, str], ...] = ()

    def then(self, decision: str, reasons: str, at: str, **changes: Any) -> DecisionRecord:
        """The record after a later decision about the same version; the earlier one goes to history."""
        earlier = {"decision": self.decision, "reasons": self.reasons, "decided_at": self.decided_at}
        data = {**asdict(self), **changes, "decision": decision, "reasons": reasons, "decided_at": at}
        data["history"] = (*self.history, earlier)
        return DecisionRecord.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("reviewers", "checks", "history"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DecisionRecord:
        return cls(
            decision=str(raw["decision"]),
            reasons=str(raw.get("reasons", "")),
            champion_before=None if raw.get("champion_before") in (None, "") else str(raw["champion_before"]),
            reviewers=tuple(str(name) for name in raw.get("reviewers", ())),
            comment=str(raw.get("comment", "")),
            flow_run_id=raw.get("flow_run_id") or None,
            checks=tuple(dict(check) for check in raw.get("checks", ())),
            rollout=raw.get("rollout"),
            holdout=raw.get("holdout"),
            decided_at=str(raw.get("decided_at", "")),
            history=tuple(dict(item) for item in raw.get("history", ())),
        )


#: Decisions that end a challenger's judging: its ``challenger`` alias goes with them.
FINAL_REFUSALS: Final = ("refused", "rejected", "timed out")

#: A version's state as ``retrain status`` shows it, from its aliases first, then its decision.
_ALIAS_STATES: Final = (
    (CHAMPION, "champion"),
    (CANDIDATE, "rolling out"),
    (CHALLENGER, "challenger waiting"),
    (PREVIOUS_CHAMPION, "previous champion"),
)
_DECISION_STATES: Final = {"promoted": "retired", "candidate": "rollout interrupted"}


def version_state(aliases: tuple[str, ...], decision: str | None) -> str:
    """What a version is now, in a word people read: an alias says it first (a champion is a champion
    whatever it was decided before); a version without one is what its last decision made it (a
    promoted version without an alias has been replaced: ``retired``); never judged: ``registered``."""
    for alias, state in _ALIAS_STATES:
        if alias in aliases:
            return state
    if decision is None or decision == "":
        return "registered"
    return _DECISION_STATES.get(decision, decision)


def canonical_hash(payload: Any) -> str:
    """sha256 of canonical JSON: equal content gives an equal hash whatever the key order."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def training_key(data_md5: str, contract_hash: str, params_hash: str, code_version: str) -> str:
    """Identity of a training: same data, contract, params and code must never register twice."""
    return canonical_hash(
        {"data_md5": data_md5, "contract": contract_hash, "params": params_hash, "code": code_version}
    )[:32]


#: ``rollout``: a rollout's start, step, evaluation or end that left ``champion`` where it was (its
#: completion is a ``promotion``); see retrain.domain.rollout. ``purge``: data deleted past retention
#: (retrain.domain.retention), recorded with the champion it left in place.
LedgerKind = Literal["promotion", "refusal", "rollback", "timeout", "rollout", "purge"]


@dataclass(frozen=True)
class LedgerEntry:
    """One decision about which model serves: what was decided, by whom, on which evidence."""

    model_name: str
    kind: LedgerKind
    champion_before: str | None
    challenger: str | None
    champion_after: str | None
    actor: str
    comment: str = ""
    reviewers: tuple[str, ...] = ()
    checks: list[dict[str, Any]] = field(default_factory=list)
    flow_run_id: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    recorded_at: dt.datetime | None = None
    position: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reviewers"] = list(self.reviewers)
        data["recorded_at"] = None if self.recorded_at is None else self.recorded_at.isoformat()
        return data


# Kinds of ledger entries that move ``champion``; the others record a decision that left it in place.
MOVES: Final = ("promotion", "rollback")


def chain_breaks(entries: list[LedgerEntry]) -> list[str]:
    """Where a model's ledger (oldest first) stops being a chain; empty when it is one.

    The chain rule: every entry that moves ``champion`` (a promotion or a rollback) starts from the
    champion the previous move left (``champion_before`` == the previous move's ``champion_after``;
    none before the first move), and every entry that leaves it in place (a refusal, a timeout, a
    rollout's step or a purge) records that same champion as ``champion_after``. A refusal's
    ``champion_before`` is the champion its challenger was judged against, which may be older when the
    champion moved meanwhile.
    """
    breaks: list[str] = []
    serving: str | None = None
    for entry in entries:
        before, after, now = _named(entry.champion_before), _named(entry.champion_after), _named(serving)
        where = f"ledger entry #{entry.position} ({entry.kind} {before} -> {after})"
        if entry.kind in MOVES:
            if entry.champion_before != serving:
                breaks.append(f"{where} moves the champion from {before}, but the previous move left {now}")
            serving = entry.champion_after
        elif entry.champion_after != serving:
            breaks.append(f"{where} records {after} as the champion it left, but the last move left {now}")
    return breaks


def _named(version: str | None) -> str:
    return "no champion" if version is None else f"v{version}"
