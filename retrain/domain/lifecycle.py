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
#: completion is a ``promotion``); see retrain.domain.rollout.
LedgerKind = Literal["promotion", "refusal", "rollback", "timeout", "rollout"]


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
    none before the first move), and every entry that leaves it in place (a refusal, a timeout or a
    rollout's step) records that same champion as ``champion_after``. A refusal's ``champion_before`` is the champion
    its challenger was judged against, which may be older when the champion moved meanwhile.
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
