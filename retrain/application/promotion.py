"""Promotion in a fixed order, and the doctor that repairs one a crash interrupted.

Order: the decision document on the challenger's run → ``previous-champion`` to the old champion →
``champion`` to the challenger (the single commit point) → its ``promoted`` tag → clear
``challenger`` → append to the ledger. A refusal: the document and its tag → the ledger → clear
``challenger`` (best effort; the doctor finishes it, writing the ledger entry if it is missing). A crash
before the commit point leaves the old champion serving; a crash after it leaves the new one
serving with the ledger behind, and ``doctor`` (run at the start of every training flow) appends
the missing entry from the version's decision document, ``gate/decision.json`` on its run (with its
reviewers, their comment and the flow run), and clears stale aliases.

Promotion is a compare-and-set under the model's lock (``retrain.adapters.locks``): ``champion``
moves only if it is still the version the challenger was judged against; otherwise the decision is
recorded as a refusal that says to re-run. Rollback and the doctor hold the same lock, so the ledger
stays a chain (``lifecycle.chain_breaks``), which the doctor checks.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retrain.adapters.ledger import Ledger
from retrain.adapters.locks import model_lock
from retrain.adapters.registry import ModelRegistry
from retrain.domain import tags
from retrain.domain.approval import ApprovalResult
from retrain.domain.errors import NothingToRollBack, RetrainError
from retrain.domain.gate import GateDecision
from retrain.domain.lifecycle import (
    CANDIDATE,
    CHALLENGER,
    CHAMPION,
    FINAL_REFUSALS,
    MOVES,
    PREVIOUS_CHAMPION,
    DecisionRecord,
    LedgerEntry,
    ModelVersionInfo,
    chain_breaks,
)
from retrain.domain.settings import Settings

STEPS = ("tag-decision", "previous-champion", "champion", "clear-challenger", "ledger")
# A refusal's steps: the decision, the ledger, then ``challenger`` goes (the doctor clears it after a crash).


@dataclass(frozen=True)
class PromotionOutcome:
    promoted: bool
    champion_version: str | None
    previous_champion_version: str | None
    challenger_version: str
    reasons: tuple[str, ...]
    note: str
    rollout: bool = False  # approved, and rolling out as ``candidate`` (rollout.strategy canary or linear)


@contextmanager
def ledger_at(url: str) -> Iterator[Ledger]:
    """The ledger at ``url`` for one use case, its engine disposed afterwards, so no connection
    outlives the task that opened it."""
    ledger = Ledger(url)
    try:
        yield ledger
    finally:
        ledger.dispose()


def write_decision_record(reports_dir: Path, decision: GateDecision, outcome: PromotionOutcome) -> Path:
    """The decision and its outcome as ``gate.json`` in the run's reports (for machines)."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    payload = {**decision.to_dict(), "outcome": asdict(outcome)}
    path = reports_dir / "gate.json"
    path.write_text(json.dumps(payload, indent=2, default=list), encoding="utf-8")
    return path


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
    settings: Settings | None = None,
) -> PromotionOutcome:
    """Apply a gate decision; ``on_step(name)`` is called after each step (logging, crash tests).

    With ``settings`` whose ``rollout.strategy`` is canary or linear, an approved challenger that has
    a champion to be compared with becomes ``candidate`` and starts a rollout
    (:func:`retrain.application.rollout.start_locked`) instead of moving ``champion``.

    ``champion`` is the version the challenger was judged against. Under the model's lock the
    current champion is read again: if it moved meanwhile, nothing moves and the ledger records a
    refusal that says so (compare-and-set). ``approval`` is what the reviewers decided (already one of
    ``decision``'s checks); its reviewers and comments go to the ledger, and a timed-out approval is
    recorded as kind ``timeout``.
    """
    with model_lock(ledger.url, registry.model_name):
        return _promote_locked(
            registry, ledger, decision, challenger, champion, actor, flow_run_id, evidence, approval, on_step, settings
        )


def _moved_reason(judged: str | None, current: str | None) -> str:
    was = f"v{judged}" if judged else "no champion"
    now = f"v{current}" if current else "no champion"
    again = f"against {now}" if current else "again"
    return f"champion moved from {was} to {now} while this challenger was judged; re-run to judge {again}"


def _promote_locked(
    registry: ModelRegistry,
    ledger: Ledger,
    decision: GateDecision,
    challenger: ModelVersionInfo,
    champion: ModelVersionInfo | None,
    actor: str,
    flow_run_id: str | None,
    evidence: dict[str, Any],
    approval: ApprovalResult | None,
    on_step: Callable[[str], None],
    settings: Settings | None = None,
) -> PromotionOutcome:
    judged = champion.version if champion else None
    serving = registry.by_alias(CHAMPION)
    current = serving.version if serving else None
    if current == challenger.version:
        return PromotionOutcome(True, current, None, challenger.version, (), "already champion: nothing to move")
    moved = current != judged
    promote_now = decision.promote and not moved
    reasons = ((_moved_reason(judged, current),) if moved else ()) + tuple(decision.reasons)
    comment = "" if approval is None else approval.comment
    rolling = promote_now and judged is not None and settings is not None and settings.rollout.strategy != "direct"
    candidate = registry.by_alias(CANDIDATE)
    if candidate is not None and candidate.version == challenger.version and not moved:
        # the same version trained again (same training key): its rollout goes on, arms and labels kept
        note = f"already rolling out: v{challenger.version} is candidate; real traffic decides"
        return PromotionOutcome(False, current, None, challenger.version, (), note, rollout=True)
    if rolling and settings is not None and judged is not None:
        return _start_rollout(
            registry, ledger, decision, challenger, judged, actor, flow_run_id, evidence, approval, on_step, settings
        )
    word = _decision_word(promote_now, approval)
    registry.record_decision(
        challenger,
        _record(word, "; ".join(reasons) or "all checks passed", decision, judged, approval, flow_run_id, evidence),
        tag=not promote_now,  # "promoted" goes on the version once it serves (the doctor tags it after a crash)
    )
    on_step("tag-decision")
    if promote_now:
        if judged is not None:
            registry.set_alias(PREVIOUS_CHAMPION, judged)
        on_step("previous-champion")
        registry.set_alias(CHAMPION, challenger.version)  # the single commit point of a promotion
        on_step("champion")
        registry.tag_version(challenger.version, {tags.TAG_DECISION: word})
        marked = registry.by_alias(CHALLENGER)
        if marked is None or marked.version == challenger.version:  # another run's challenger stays marked
            registry.delete_alias(CHALLENGER)
        _supersede_candidate(registry, f"superseded: v{challenger.version} promoted directly")
        on_step("clear-challenger")
        outcome = PromotionOutcome(
            True, challenger.version, judged, challenger.version, (), "promoted" if judged else "first champion"
        )
    else:
        outcome = PromotionOutcome(False, current, None, challenger.version, reasons, "refused: champion unchanged")
    timed_out = approval is not None and approval.state == "timed_out"
    review = f" | reviewers: {comment}" if comment else ""
    ledger.append(
        LedgerEntry(
            model_name=registry.model_name,
            kind="promotion" if outcome.promoted else ("timeout" if timed_out else "refusal"),
            champion_before=judged,
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
    if not outcome.promoted:  # judged for good: shadow scoring stops, status no longer shows it waiting
        _clear_challenger_after_the_record(registry, challenger.version)
        on_step("clear-challenger")
    registry.record_verdict(challenger.version, challenger.run_id, word, "; ".join(reasons) or "all checks passed")
    return outcome


def _clear_challenger_after_the_record(registry: ModelRegistry, version: str) -> None:
    """After the ledger entry, best effort: a task retry would append the refusal twice, so an outage
    here is a warning and the doctor (first task of every training) removes the alias."""
    try:
        marked = registry.by_alias(CHALLENGER)
        if marked is not None and marked.version == version:
            registry.delete_alias(CHALLENGER)
    except RetrainError as error:
        logging.getLogger("retrain.promotion").warning(f"challenger alias of v{version} left to the doctor: {error}")


def _decision_word(promote_now: bool, approval: ApprovalResult | None) -> str:
    """One word for the version's tag and the runs list: automatic checks refuse, reviewers reject."""
    if promote_now:
        return "promoted"
    if approval is not None and approval.state == "rejected":
        return "rejected"
    if approval is not None and approval.state == "timed_out":
        return "timed out"
    return "refused"


def _record(
    word: str,
    reasons: str,
    decision: GateDecision,
    judged: str | None,
    approval: ApprovalResult | None,
    flow_run_id: str | None,
    evidence: dict[str, Any],
    rollout: dict[str, Any] | None = None,
) -> DecisionRecord:
    """The decision document written before the commit point (what the doctor rebuilds from)."""
    return DecisionRecord(
        decision=word,
        reasons=reasons,
        champion_before=judged,
        reviewers=() if approval is None else approval.reviewers,
        comment="" if approval is None else approval.comment,
        flow_run_id=flow_run_id,
        checks=tuple(decision.to_dict(details=False)["checks"]),
        rollout=rollout,
        holdout=evidence.get("holdout"),
        decided_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


def _supersede_candidate(registry: ModelRegistry, reason: str) -> None:
    """The champion moved: a rollout judged against the old one ends with it (the move ends it in the
    ledger; here its alias goes and its version says why)."""
    candidate = registry.by_alias(CANDIDATE)
    if candidate is not None:
        registry.decide_again(candidate, "superseded", reason)
        registry.delete_alias(CANDIDATE)
        registry.record_verdict(candidate.version, candidate.run_id, "superseded", reason)


def _start_rollout(
    registry: ModelRegistry,
    ledger: Ledger,
    decision: GateDecision,
    challenger: ModelVersionInfo,
    judged: str,
    actor: str,
    flow_run_id: str | None,
    evidence: dict[str, Any],
    approval: ApprovalResult | None,
    on_step: Callable[[str], None],
    settings: Settings,
) -> PromotionOutcome:
    """Tag the decision (with the plan, so the doctor can rebuild the start), then start the rollout."""
    from retrain.application import rollout

    comment = "" if approval is None else approval.comment
    plan = {"strategy": settings.rollout.strategy, "share": settings.rollout.share}
    registry.record_decision(
        challenger,
        _record(CANDIDATE, "all checks passed; rolling out", decision, judged, approval, flow_run_id, evidence, plan),
    )
    on_step("tag-decision")
    rollout.start_locked(
        registry,
        ledger,
        settings,
        challenger,
        judged,
        actor=actor,
        flow_run_id=flow_run_id,
        checks=decision.to_dict()["checks"],
        reviewers=() if approval is None else approval.reviewers,
        comment=comment,
        evidence=evidence,
    )
    on_step("ledger")
    share = settings.rollout.share
    note = f"rolling out: v{challenger.version} is candidate ({settings.rollout.strategy}, {share:.0%} of rows)"
    registry.record_verdict(challenger.version, challenger.run_id, "rolling out", f"all checks passed; {note}")
    return PromotionOutcome(False, judged, None, challenger.version, (), note, rollout=True)


@dataclass(frozen=True)
class RollbackOutcome:
    demoted: str
    restored: str
    position: int


def roll_back(registry: ModelRegistry, ledger: Ledger, *, actor: str, reason: str, flow_run_id: str) -> RollbackOutcome:
    """Move ``champion`` back to ``previous-champion`` and record it, under the model's lock.

    The aliases are read under the lock, so a rollback never interleaves with a promotion: the
    ledger entry's ``champion_before`` is the champion the last move left.
    """
    with model_lock(ledger.url, registry.model_name):
        champion = registry.by_alias(CHAMPION)
        previous = registry.by_alias(PREVIOUS_CHAMPION)
        if champion is None or previous is None:
            missing = "no champion" if champion is None else "no previous-champion"
            raise NothingToRollBack(f"nothing to roll back to: model {registry.model_name} has {missing}")
        registry.set_alias(CHAMPION, previous.version)  # the commit point
        registry.delete_alias(PREVIOUS_CHAMPION)
        _supersede_candidate(registry, f"superseded: rolled back from v{champion.version}")
        registry.decide_again(champion, "rolled back", reason)
        position = ledger.append(
            LedgerEntry(
                model_name=registry.model_name,
                kind="rollback",
                champion_before=champion.version,
                challenger=None,
                champion_after=previous.version,
                actor=actor,
                comment=reason,
                flow_run_id=flow_run_id,
            )
        )
    registry.record_verdict(champion.version, champion.run_id, "rolled back", reason)
    return RollbackOutcome(demoted=champion.version, restored=previous.version, position=position)


@dataclass(frozen=True)
class DoctorReport:
    """What the doctor repaired, and what it found but cannot repair (then the project is unhealthy)."""

    repaired: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


def _reconciled_entry(registry: ModelRegistry, champion: ModelVersionInfo, recorded: str | None) -> LedgerEntry:
    """The ledger entry a crash kept promote() from writing, from the decision document written before
    the crash (none when the alias moved by hand: the entry then says so)."""
    written = registry.decision_record(champion)
    comment = "" if written is None else written.comment
    return LedgerEntry(
        model_name=registry.model_name,
        kind="promotion",
        champion_before=recorded,
        challenger=champion.version,
        champion_after=champion.version,
        actor="retrain doctor",
        comment=(
            "reconciled: the champion alias had moved to this version but the ledger entry was missing "
            f"(interrupted promotion; gate decision on the version: {'none' if written is None else written.decision})"
            + (f" | reviewers: {comment}" if comment else "")
        ),
        reviewers=() if written is None else written.reviewers,
        checks=[] if written is None else list(written.checks),
        flow_run_id=None if written is None else written.flow_run_id,
        evidence={} if written is None or written.holdout is None else {"holdout": written.holdout},
    )


def doctor(registry: ModelRegistry, ledger: Ledger) -> DoctorReport:
    """Make aliases and ledger agree after an interrupted promotion, then check the ledger's chain.

    Runs under the model's lock, so doctors started at once (every training starts with one) do not
    append the same missing entry twice.
    """
    with model_lock(ledger.url, registry.model_name):
        report = DoctorReport()
        _reconcile(registry, ledger, report)
        _clear_judged_challenger(registry, ledger, report)
        from retrain.application.rollout import reconcile_locked

        report.repaired.extend(reconcile_locked(registry, ledger))
        breaks = chain_breaks(ledger.entries(registry.model_name))
        report.problems.extend(f"the ledger is not a chain: {text}" for text in breaks)
        return report


def _reconcile(registry: ModelRegistry, ledger: Ledger, report: DoctorReport) -> None:
    champion = registry.by_alias(CHAMPION)
    moves = [e for e in ledger.entries(registry.model_name) if e.kind in MOVES]
    recorded = moves[-1].champion_after if moves else None
    if champion is not None and champion.version != recorded:
        ledger.append(_reconciled_entry(registry, champion, recorded))
        registry.tag_version(champion.version, {tags.TAG_DECISION: "promoted"})
        report.repaired.append(f"appended the missing ledger entry for champion v{champion.version}")
    elif champion is None and recorded is not None:
        if not registry.has_version(recorded):
            report.problems.append(
                f"not repaired: the ledger names champion v{recorded}, which the registry does not have "
                "(was the registry reset without its ledger?)"
            )
            return
        registry.set_alias(CHAMPION, recorded)
        champion = registry.by_alias(CHAMPION)
        report.repaired.append(f"restored the lost champion alias to v{recorded} from the ledger")
    if champion is None:
        return
    stale = registry.by_alias(CHALLENGER)
    if stale is not None and stale.version == champion.version:
        registry.delete_alias(CHALLENGER)
        report.repaired.append(f"removed challenger from v{stale.version}, which is the champion")
    previous = registry.by_alias(PREVIOUS_CHAMPION)
    if previous is not None and previous.version == champion.version:
        entries = ledger.entries(registry.model_name)
        made = [e for e in entries if e.kind in MOVES and e.champion_after == champion.version]
        before = made[-1].champion_before if made else None
        if before and before != champion.version:
            registry.set_alias(PREVIOUS_CHAMPION, before)
            report.repaired.append(f"moved previous-champion back to v{before} (it pointed at the champion)")
        else:
            registry.delete_alias(PREVIOUS_CHAMPION)
            report.repaired.append("removed previous-champion, which pointed at the champion")


def _clear_judged_challenger(registry: ModelRegistry, ledger: Ledger, report: DoctorReport) -> None:
    """A refusal that crashed before its alias went: its ledger entry is written from the decision
    document when the crash came before it, then ``challenger`` goes (a version judged again loses its
    decision tag first: ``evaluation.mark_challenger``)."""
    marked = registry.by_alias(CHALLENGER)
    if marked is None or marked.tags.get(tags.TAG_DECISION) not in FINAL_REFUSALS:
        return
    written = registry.decision_record(marked)
    entries = ledger.entries(registry.model_name)
    if written is not None and not any(
        e.challenger == marked.version and e.flow_run_id == written.flow_run_id and e.kind not in MOVES for e in entries
    ):
        ledger.append(_reconciled_refusal(registry, marked.version, written, entries))
        report.repaired.append(f"appended the missing ledger entry for the {written.decision} v{marked.version}")
    registry.delete_alias(CHALLENGER)
    report.repaired.append(f"removed challenger from v{marked.version}, which was {marked.tags[tags.TAG_DECISION]}")


def _reconciled_refusal(
    registry: ModelRegistry, version: str, written: DecisionRecord, entries: list[LedgerEntry]
) -> LedgerEntry:
    moves = [e for e in entries if e.kind in MOVES]
    return LedgerEntry(
        model_name=registry.model_name,
        kind="timeout" if written.decision == "timed out" else "refusal",
        champion_before=written.champion_before,
        challenger=version,
        champion_after=moves[-1].champion_after if moves else None,  # the champion it left in place
        actor="retrain doctor",
        comment=f"reconciled: {written.decision}: {written.reasons}"
        + (f" | reviewers: {written.comment}" if written.comment else ""),
        reviewers=written.reviewers,
        checks=list(written.checks),
        flow_run_id=written.flow_run_id,
        evidence={} if written.holdout is None else {"holdout": written.holdout},
    )
