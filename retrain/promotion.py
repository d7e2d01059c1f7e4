"""Promotion in a fixed order, and the doctor that repairs one a crash interrupted.

Order: tag the decision on the challenger → ``previous-champion`` to the old champion → ``champion``
to the challenger (the single commit point) → clear ``challenger`` → append to the ledger. A crash
before the commit point leaves the old champion serving; a crash after it leaves the new one
serving with the ledger behind, and ``doctor`` (run at the start of every training flow) appends
the missing entry from the version's own decision tags and clears stale aliases.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from retrain.adapters.ledger import Ledger
from retrain.adapters.registry import ModelRegistry
from retrain.domain import lifecycle
from retrain.domain.approval import ApprovalResult
from retrain.domain.gate import GateDecision
from retrain.domain.lifecycle import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, LedgerEntry, ModelVersionInfo

STEPS = ("tag-decision", "previous-champion", "champion", "clear-challenger", "ledger")


@dataclass(frozen=True)
class PromotionOutcome:
    promoted: bool
    champion_version: str | None
    previous_champion_version: str | None
    challenger_version: str
    reasons: tuple[str, ...]
    note: str


def _noop(step: str) -> None:
    """Default step hook: nothing to observe."""


def promote(
    registry: ModelRegistry,
    ledger: Ledger,
    decision: GateDecision,
    challenger: ModelVersionInfo,
    champion: ModelVersionInfo | None,
    *,
    actor: str,
    flow_run_id: str | None,
    evidence: dict[str, Any],
    approval: ApprovalResult | None = None,
    on_step: Callable[[str], None] = _noop,
) -> PromotionOutcome:
    """Apply a gate decision; ``on_step(name)`` is called after each step (logging, crash tests).

    ``approval`` is what the reviewers decided (already one of ``decision``'s checks); its reviewers
    and comments go to the ledger, and a timed-out approval is recorded as kind ``timeout``.
    """
    if champion is not None and champion.version == challenger.version:
        return PromotionOutcome(
            True, champion.version, None, challenger.version, (), "already champion: nothing to move"
        )
    registry.tag_version(
        challenger.version,
        {
            lifecycle.TAG_DECISION: "promoted" if decision.promote else "refused",
            lifecycle.TAG_REASONS: "; ".join(decision.reasons) or "all checks passed",
            "retrain.gate.checks": json.dumps(decision.to_dict(details=False)["checks"]),
            "retrain.gate.champion_before": champion.version if champion else "",
        },
    )
    on_step("tag-decision")
    before = champion.version if champion else None
    if decision.promote:
        if champion is not None:
            registry.set_alias(PREVIOUS_CHAMPION, champion.version)
        on_step("previous-champion")
        registry.set_alias(CHAMPION, challenger.version)  # the single commit point of a promotion
        on_step("champion")
        registry.delete_alias(CHALLENGER)
        on_step("clear-challenger")
        outcome = PromotionOutcome(
            True, challenger.version, before, challenger.version, (), "promoted" if champion else "first champion"
        )
    else:
        outcome = PromotionOutcome(
            False, before, None, challenger.version, decision.reasons, "refused: champion unchanged"
        )
    timed_out = approval is not None and approval.state == "timed_out"
    review = "" if approval is None or not approval.comment else f" | reviewers: {approval.comment}"
    ledger.append(
        LedgerEntry(
            model_name=registry.model_name,
            kind="promotion" if outcome.promoted else ("timeout" if timed_out else "refusal"),
            champion_before=before,
            challenger=challenger.version,
            champion_after=outcome.champion_version,
            actor=actor,
            comment=outcome.note + ("" if outcome.promoted else ": " + "; ".join(outcome.reasons)) + review,
            reviewers=() if approval is None else approval.reviewers,
            checks=decision.to_dict()["checks"],
            flow_run_id=flow_run_id,
            evidence=evidence,
        )
    )
    on_step("ledger")
    return outcome


def doctor(registry: ModelRegistry, ledger: Ledger) -> list[str]:
    """Make aliases and ledger agree after an interrupted promotion; returns what was repaired."""
    actions: list[str] = []
    champion = registry.by_alias(CHAMPION)
    moves = [e for e in ledger.entries(registry.model_name) if e.kind in ("promotion", "rollback")]
    recorded = moves[-1].champion_after if moves else None
    if champion is not None and champion.version != recorded:
        tags = champion.tags
        ledger.append(
            LedgerEntry(
                model_name=registry.model_name,
                kind="promotion",
                champion_before=recorded,
                challenger=champion.version,
                champion_after=champion.version,
                actor="retrain doctor",
                comment=(
                    "reconciled: the champion alias had moved to this version but the ledger entry was missing "
                    f"(interrupted promotion; gate decision on the version: {tags.get(lifecycle.TAG_DECISION, 'none')})"
                ),
                checks=json.loads(tags.get("retrain.gate.checks", "[]")),
            )
        )
        actions.append(f"appended the missing ledger entry for champion v{champion.version}")
    elif champion is None and recorded is not None:
        if not registry.has_version(recorded):
            actions.append(
                f"not repaired: the ledger names champion v{recorded}, which the registry does not have "
                "(was the registry reset without its ledger?)"
            )
            return actions
        registry.set_alias(CHAMPION, recorded)
        champion = registry.by_alias(CHAMPION)
        actions.append(f"restored the lost champion alias to v{recorded} from the ledger")
    if champion is None:
        return actions
    stale = registry.by_alias(CHALLENGER)
    if stale is not None and stale.version == champion.version:
        registry.delete_alias(CHALLENGER)
        actions.append(f"removed challenger from v{stale.version}, which is the champion")
    previous = registry.by_alias(PREVIOUS_CHAMPION)
    if previous is not None and previous.version == champion.version:
        made = [e for e in ledger.entries(registry.model_name) if e.champion_after == champion.version]
        before = made[-1].champion_before if made else None
        if before and before != champion.version:
            registry.set_alias(PREVIOUS_CHAMPION, before)
            actions.append(f"moved previous-champion back to v{before} (it pointed at the champion)")
        else:
            registry.delete_alias(PREVIOUS_CHAMPION)
            actions.append("removed previous-champion, which pointed at the champion")
    return actions
