"""Rollouts on real traffic: start one instead of a promotion, route scoring through it, judge it on
late labels, and end it (complete or roll back), all under the model's lock like a promotion.

Crash safety follows the promotion's rule: one alias move is each step's commit point, and the ledger
entry after it can be rebuilt from the registry (``reconcile_rollout``, which the doctor runs):

- start: the decision document and tag → ``candidate`` alias (commit) → clear ``challenger`` → ledger ``start``;
- completion: the decision (promoted) → ``previous-champion`` → ``champion`` = candidate (commit) →
  clear ``candidate`` → ledger promotion with the rollout's end;
- rollback: the decision (rolled back) → clear ``candidate`` (commit) → ledger ``end`` (rolled back).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.adapters.ledger import Ledger
from retrain.adapters.locks import model_lock
from retrain.adapters.registry import ModelRegistry
from retrain.domain import rollout as domain
from retrain.domain import rowkey
from retrain.domain.errors import RetrainError
from retrain.domain.lifecycle import (
    CANDIDATE,
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    DecisionRecord,
    LedgerEntry,
    ModelVersionInfo,
)
from retrain.domain.settings import Settings
from retrain.domain.task import task_for


class RolloutOutOfStep(RetrainError):
    """The ledger's rollout and the aliases disagree (a step a crash interrupted): the doctor repairs it."""


@dataclass(frozen=True)
class Routing:
    """What the scoring flow needs to serve a rollout: the rollout and its candidate's version."""

    rollout: domain.Rollout
    candidate: ModelVersionInfo


@dataclass(frozen=True)
class RolloutReport:
    """One evaluation of a rollout: the verdict, what was done, the ledger position that records it."""

    rollout: domain.Rollout
    verdict: domain.RolloutVerdict
    ended: str | None  # "completed" / "rolled_back", None while it continues
    position: int
    stepped_to: float | None = None

    def headline(self) -> str:
        who = f"candidate v{self.rollout.candidate} vs champion v{self.rollout.champion}"
        if self.ended == "completed":
            return f"rollout completed: {who}; v{self.rollout.candidate} is champion"
        if self.ended == "rolled_back":
            return f"rollout rolled back: {who}; v{self.rollout.champion} stays champion"
        share = self.stepped_to if self.stepped_to is not None else self.rollout.share
        return f"rollout continues: {who} at {share:.0%} of rows"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rollout": self.rollout.to_dict(),
            "verdict": self.verdict.to_dict(),
            "ended": self.ended,
            "position": self.position,
            "stepped_to": self.stepped_to,
            "headline": self.headline(),
        }


def active(ledger: Ledger, model_name: str) -> domain.Rollout | None:
    return domain.active_rollout(ledger.entries(model_name))


def start_locked(
    registry: ModelRegistry,
    ledger: Ledger,
    settings: Settings,
    challenger: ModelVersionInfo,
    champion: str,
    *,
    actor: str,
    flow_run_id: str | None,
    checks: list[dict[str, Any]],
    reviewers: tuple[str, ...],
    comment: str,
    evidence: dict[str, Any],
) -> int:
    """Make an approved challenger the ``candidate`` (the caller holds the model's lock and has tagged
    the decision); a rollout still running for an older candidate ends as superseded first."""
    running = active(ledger, registry.model_name)
    if running is not None:
        _end_locked(registry, ledger, running, "superseded", f"superseded by v{challenger.version}", actor, flow_run_id)
    registry.set_alias(CANDIDATE, challenger.version)  # the commit point of a start
    marked = registry.by_alias(CHALLENGER)
    if marked is not None and marked.version == challenger.version:
        registry.delete_alias(CHALLENGER)
    event = domain.start_event(challenger.version, champion, settings.rollout)
    return ledger.append(
        LedgerEntry(
            model_name=registry.model_name,
            kind="rollout",
            champion_before=champion,
            challenger=challenger.version,
            champion_after=champion,
            actor=actor,
            comment=f"rollout started: v{challenger.version} as candidate, {_strategy(settings)}"
            + (f" | reviewers: {comment}" if comment else ""),
            reviewers=reviewers,
            checks=checks,
            flow_run_id=flow_run_id,
            evidence={**evidence, domain.EVENT_KEY: event},
        )
    )


def _strategy(settings: Settings) -> str:
    rollout = settings.rollout
    if rollout.strategy == "linear":
        return (
            f"linear from {rollout.share:.0%} of rows, +{rollout.step:.0%} every {rollout.step_hours:g} h "
            f"up to {rollout.max_share:.0%}"
        )
    return f"canary on {rollout.share:.0%} of rows"


def _end_locked(
    registry: ModelRegistry,
    ledger: Ledger,
    rollout: domain.Rollout,
    outcome: domain.EndOutcome,
    reason: str,
    actor: str,
    flow_run_id: str | None,
    verdict: domain.RolloutVerdict | None = None,
) -> int:
    """Roll back (or supersede): tag the candidate, clear its alias (the commit point), record the end."""
    if registry.has_version(rollout.candidate):
        registry.decide_again(registry.by_version(rollout.candidate), outcome.replace("_", " "), reason)
    marked = registry.by_alias(CANDIDATE)
    if marked is not None and marked.version == rollout.candidate:
        registry.delete_alias(CANDIDATE)
    event = _event("end", rollout, outcome=outcome, verdict=verdict)
    text = f"rollout {outcome.replace('_', ' ')}: v{rollout.candidate}: {reason}"
    position = ledger.append(_entry(registry, rollout, _serving(registry), text, event, actor, flow_run_id))
    registry.record_verdict(rollout.candidate, None, outcome.replace("_", " "), reason)
    return position


def _serving(registry: ModelRegistry) -> str | None:
    champion = registry.by_alias(CHAMPION)
    return None if champion is None else champion.version


def _entry(
    registry: ModelRegistry,
    rollout: domain.Rollout,
    champion_after: str | None,
    comment: str,
    event: dict[str, Any],
    actor: str,
    flow_run_id: str | None = None,
) -> LedgerEntry:
    """A ledger entry of a running rollout: ``kind`` rollout, or a promotion when it made the candidate
    champion (the completion: the one of its entries that moves ``champion``)."""
    return LedgerEntry(
        model_name=registry.model_name,
        kind="promotion" if champion_after == rollout.candidate else "rollout",
        champion_before=rollout.champion,
        challenger=rollout.candidate,
        champion_after=champion_after,
        actor=actor,
        comment=comment,
        flow_run_id=flow_run_id,
        evidence={domain.EVENT_KEY: event},
    )


def _event(name: str, rollout: domain.Rollout, **more: Any) -> dict[str, Any]:
    verdict = more.pop("verdict", None)
    event: dict[str, Any] = {"event": name, "id": rollout.id, "candidate": rollout.candidate, **more}
    if verdict is not None:
        event["verdict"] = verdict.to_dict()
    return event


def _complete_locked(
    registry: ModelRegistry,
    ledger: Ledger,
    rollout: domain.Rollout,
    verdict: domain.RolloutVerdict,
    actor: str,
    flow_run_id: str | None,
) -> int:
    """The candidate becomes champion: a promotion whose evidence is the traffic it served."""
    reason = "; ".join(verdict.reasons)
    registry.decide_again(
        registry.by_version(rollout.candidate),
        "promoted",
        f"rollout completed: {reason}",
        champion_before=rollout.champion,
        flow_run_id=flow_run_id,
    )
    registry.set_alias(PREVIOUS_CHAMPION, rollout.champion)
    registry.set_alias(CHAMPION, rollout.candidate)  # the commit point of a completion
    registry.delete_alias(CANDIDATE)
    event = _event("end", rollout, outcome="completed", verdict=verdict)
    position = ledger.append(
        _entry(registry, rollout, rollout.candidate, f"rollout completed: {reason}", event, actor, flow_run_id)
    )
    registry.record_verdict(rollout.candidate, None, "promoted", f"rollout completed: {reason}")
    return position


def routing(registry: ModelRegistry, ledger_url: str, model_name: str) -> Routing | None:
    """The rollout the scoring flow serves, when its aliases agree with the ledger (else none: the
    doctor repairs what a crash left, and scoring serves the champion alone meanwhile)."""
    ledger = Ledger(ledger_url)
    try:
        running = active(ledger, model_name)
    finally:
        ledger.dispose()
    if running is None:
        return None
    candidate, champion = registry.by_alias(CANDIDATE), registry.by_alias(CHAMPION)
    if candidate is None or champion is None:
        return None
    if candidate.version != running.candidate or champion.version != running.champion:
        return None
    return Routing(running, candidate)


# --- Reading the arms back from the stored predictions -----------------------------------------


@dataclass(frozen=True)
class Arms:
    champion: domain.ArmSample
    candidate: domain.ArmSample
    oldest: dt.datetime | None
    newest: dt.datetime | None


def _prediction_columns(settings: Settings) -> list[str]:
    task = task_for(settings.dataset)
    if task.kind == "binary":
        return ["score"]
    if task.kind == "regression":
        return ["prediction"]
    return [f"proba_{value}" for value in task.classes]


def read_arms(paths: Sequence[Path], rollout: domain.Rollout, settings: Settings, label_column: str) -> Arms:
    """Each arm's served rows and labelled rows in the rollout's predictions files (the rows of
    other rollouts, or from before, are left out by the ``rollout`` column)."""
    task = task_for(settings.dataset)
    predicted = _prediction_columns(settings)
    time_column = settings.dataset.time_column
    id_column = settings.dataset.id_column
    key_columns = [id_column] if id_column is not None else [rowkey.SOURCE_BATCH, rowkey.SOURCE_ROW]
    wanted = [domain.ROLLOUT_COLUMN, domain.ARM_COLUMN, time_column, *predicted, *key_columns]
    frames: list[pd.DataFrame] = []
    for path in paths:
        if not path.exists():
            continue
        frame = _read_columns(path, [*wanted, label_column])
        if domain.ROLLOUT_COLUMN not in frame or domain.ARM_COLUMN not in frame:
            continue
        ours = pd.to_numeric(frame[domain.ROLLOUT_COLUMN], errors="coerce") == rollout.id
        frames.append(frame.loc[ours])
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*wanted, label_column])
    keys = [c for c in key_columns if c in rows.columns]
    if keys:  # a batch scored twice (another output, a retry) counts once: a labelled copy, else the newest
        labelled = rows[label_column].notna() if label_column in rows.columns else pd.Series(False, index=rows.index)
        order = np.argsort(labelled.to_numpy(), kind="stable")
        rows = rows.iloc[order].drop_duplicates(subset=keys, keep="last")
    times = pd.to_datetime(rows[time_column], errors="coerce", utc=True).dropna() if len(rows) else pd.Series([])
    samples = {}
    for arm in (domain.ARM_CHAMPION, domain.ARM_CANDIDATE):
        mine = rows.loc[rows[domain.ARM_COLUMN] == arm]
        labels = (
            task.label_codes(mine[label_column], unknown="missing")
            if label_column in mine and len(mine)
            else np.full(len(mine), np.nan)
        )
        known = np.isfinite(labels)
        values = mine[predicted].to_numpy(dtype="float64")
        predictions = values[:, 0] if task.kind != "multiclass" else values
        samples[arm] = domain.ArmSample(len(mine), labels[known], predictions[known])
    return Arms(
        samples[domain.ARM_CHAMPION],
        samples[domain.ARM_CANDIDATE],
        None if times.empty else times.min().to_pydatetime(),
        None if times.empty else times.max().to_pydatetime(),
    )


def _read_columns(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    if path.suffix == ".csv":
        frame = pd.read_csv(path)
        return frame[[c for c in columns if c in frame.columns]]
    import pyarrow.parquet as pq

    present = set(pq.read_schema(path).names)
    return pd.read_parquet(path, columns=[c for c in columns if c in present])


def _elapsed_hours(rollout: domain.Rollout, arms: Arms, settings: Settings, now: dt.datetime | None) -> float:
    """Time since the rollout's start on ``retraining.clock``: the data clock counts from its oldest
    to its newest served row (a replay lives the rollout as it went); the wall clock from the start."""
    if settings.retraining.clock == "data":
        if arms.oldest is None or arms.newest is None:
            return 0.0
        return (arms.newest - arms.oldest).total_seconds() / 3600
    moment = now or dt.datetime.now(dt.UTC)
    return (moment - rollout.started_at).total_seconds() / 3600


def evaluate(
    registry: ModelRegistry,
    ledger_url: str,
    settings: Settings,
    label_column: str,
    *,
    scored_file: Path | None,
    actor: str,
    flow_run_id: str | None,
    predictions_dir: Path | None = None,
    now: dt.datetime | None = None,
    wait_seconds: float = 300.0,
) -> RolloutReport | None:
    """Look at the rollout's traffic (with ``scored_file``, the batch just scored under it) and act on
    the verdict: record the evaluation (and a step of a linear rollout), or end it. Under the model's
    lock, and only while the aliases still say what the ledger says (compare-and-set); None without a
    rollout.

    The rollout's rows are in the files its evaluations recorded, plus any file of ``predictions_dir``
    that holds rows of it: a batch whose evaluation failed (the lock busy past ``wait_seconds``, an
    outage) is still counted by the next one."""
    with model_lock(ledger_url, registry.model_name, wait_seconds=wait_seconds):
        ledger = Ledger(ledger_url)
        try:
            running = active(ledger, registry.model_name)
            if running is None:
                return None
            candidate, champion = registry.by_alias(CANDIDATE), registry.by_alias(CHAMPION)
            if (
                candidate is None
                or champion is None
                or (candidate.version, champion.version) != (running.candidate, running.champion)
            ):
                raise RolloutOutOfStep(
                    f"the rollout of v{running.candidate} in the ledger does not match the aliases: "
                    "run `retrain doctor` to repair what an interrupted step left"
                )
            files = _rollout_files(running, scored_file, predictions_dir)
            arms = read_arms(files, running, settings, label_column)
            verdict = domain.judge_rollout(
                running,
                arms.champion,
                arms.candidate,
                task=settings.dataset.task,
                gate=settings.gate,
                settings=settings.rollout,
                elapsed_hours=_elapsed_hours(running, arms, settings, now),
                seed=settings.model.seed,
            )
            return _apply_locked(registry, ledger, running, verdict, scored_file, actor, flow_run_id)
        finally:
            ledger.dispose()


def _rollout_files(running: domain.Rollout, scored_file: Path | None, predictions_dir: Path | None) -> list[Path]:
    """Every file that may hold the rollout's rows, each once (``read_arms`` keeps only its rows)."""
    named = [Path(name) for name in running.files] + ([scored_file] if scored_file is not None else [])
    started = running.started_at.timestamp() - 60
    if predictions_dir is not None and predictions_dir.is_dir():
        named += [path for path in sorted(predictions_dir.glob("*.parquet")) if path.stat().st_mtime >= started]
    unique: dict[Path, None] = {}
    for path in named:
        unique.setdefault(path.resolve(), None)
    return list(unique)


def evidence_files(running: domain.Rollout, predictions_dir: Path | None) -> list[Path]:
    """The predictions files a running rollout is judged on (what ``retrain purge`` keeps while it runs)."""
    return _rollout_files(running, None, predictions_dir)


def _apply_locked(
    registry: ModelRegistry,
    ledger: Ledger,
    running: domain.Rollout,
    verdict: domain.RolloutVerdict,
    scored_file: Path | None,
    actor: str,
    flow_run_id: str | None,
) -> RolloutReport:
    if verdict.action == "complete":
        position = _complete_locked(registry, ledger, running, verdict, actor, flow_run_id)
        return RolloutReport(running, verdict, "completed", position)
    if verdict.action == "roll_back":
        reason = "; ".join(verdict.reasons)
        position = _end_locked(registry, ledger, running, "rolled_back", reason, actor, flow_run_id, verdict)
        return RolloutReport(running, verdict, "rolled_back", position)
    event = _event("evaluation", running, verdict=verdict, file=None if scored_file is None else str(scored_file))
    position = ledger.append(_unchanged(registry, running, "evaluation", "; ".join(verdict.reasons), event, actor))
    stepped = None
    if verdict.share > running.share:
        step = _event("step", running, share=verdict.share)
        text = f"share {running.share:.0%} → {verdict.share:.0%}"
        position = ledger.append(_unchanged(registry, running, "step", text, step, actor))
        stepped = verdict.share
    return RolloutReport(running, verdict, None, position, stepped)


def _unchanged(
    registry: ModelRegistry, running: domain.Rollout, what: str, text: str, event: dict[str, Any], actor: str
) -> LedgerEntry:
    return _entry(registry, running, running.champion, f"rollout {what}: v{running.candidate}: {text}", event, actor)


def reconcile_locked(registry: ModelRegistry, ledger: Ledger) -> list[str]:
    """What an interrupted rollout step left, made whole (the doctor holds the model's lock):

    - ``candidate`` on the champion: a completion passed its commit point; the alias goes (the
      doctor's promotion reconciliation has already recorded the move, which ends the rollout);
    - ``candidate`` with no rollout in the ledger: a start passed its commit point; its start is
      recorded from the version's decision document, or the alias goes when the champion moved since;
    - a rollout in the ledger without its ``candidate``: a rollback passed its commit point; its end
      is recorded.
    """
    repaired: list[str] = []
    running = active(ledger, registry.model_name)
    candidate, champion = registry.by_alias(CANDIDATE), registry.by_alias(CHAMPION)
    if candidate is not None and champion is not None and candidate.version == champion.version:
        registry.delete_alias(CANDIDATE)
        repaired.append(f"removed candidate from v{candidate.version}, which is the champion")
        candidate = None
    if running is not None and (candidate is None or candidate.version != running.candidate):
        _end_reconciled(registry, ledger, running)
        repaired.append(f"recorded the end of the rollout of v{running.candidate} (its candidate alias had gone)")
        running = None
    if candidate is not None and running is None:
        written = registry.decision_record(candidate)
        judged = None if written is None else written.champion_before
        if champion is None or judged != champion.version:
            registry.delete_alias(CANDIDATE)
            repaired.append(f"removed candidate from v{candidate.version}: it was judged against another champion")
        else:
            ledger.append(
                LedgerEntry(
                    model_name=registry.model_name,
                    kind="rollout",
                    champion_before=judged,
                    challenger=candidate.version,
                    champion_after=judged,
                    actor="retrain doctor",
                    comment=f"reconciled: rollout of v{candidate.version} started (the ledger entry was missing)",
                    reviewers=() if written is None else written.reviewers,
                    flow_run_id=None if written is None else written.flow_run_id,
                    evidence={
                        domain.EVENT_KEY: _reconciled_start(candidate.version, judged, written),
                        **({} if written is None or written.holdout is None else {"holdout": written.holdout}),
                    },
                )
            )
            repaired.append(f"recorded the start of the rollout of v{candidate.version}")
    return repaired


def _reconciled_start(candidate: str, champion: str, written: DecisionRecord | None) -> dict[str, Any]:
    plan = (written.rollout if written is not None else None) or {}
    return {
        "event": "start",
        "strategy": str(plan.get("strategy", "canary")),
        "candidate": candidate,
        "champion": champion,
        "share": float(plan.get("share", 0.1)),
    }


def _end_reconciled(registry: ModelRegistry, ledger: Ledger, running: domain.Rollout) -> None:
    written = (
        registry.decision_record(registry.by_version(running.candidate))
        if registry.has_version(running.candidate)
        else None
    )
    ended = written is not None and written.decision in ("superseded", "rolled back")
    reason = written.reasons if written is not None and ended else "the candidate alias had gone"
    outcome: domain.EndOutcome = (
        "superseded" if written is not None and written.decision == "superseded" else "rolled_back"
    )
    text = f"reconciled: rollout of v{running.candidate} ended ({outcome.replace('_', ' ')}): {reason}"
    event = _event("end", running, outcome=outcome)
    ledger.append(_entry(registry, running, _serving(registry), text, event, "retrain doctor"))


def rollout_markdown(report: RolloutReport, settings: Settings) -> str:
    """The evaluation as people read it: both arms, the interval, the rule, what was done."""
    verdict, running = report.verdict, report.rollout
    lines = [
        f"# Rollout of v{running.candidate}: **{report.headline()}**",
        "",
        f"Candidate v{running.candidate} against champion v{running.champion}, {running.strategy}; "
        f"the candidate serves {verdict.share:.0%} of rows (sticky by a hash of "
        f"{settings.dataset.id_column or 'each row position'}).",
        "",
        "| arm | rows served | labelled rows |",
        "|---|---|---|",
        *[f"| {arm} | {verdict.served.get(arm, 0)} | {verdict.labelled.get(arm, 0)} |" for arm in verdict.served],
    ]
    comparison = verdict.comparison
    if comparison is not None:
        lines += [
            "",
            f"| {comparison.metric} | champion | candidate | gain | {comparison.confidence:.0%} CI |",
            "|---|---|---|---|---|",
            f"| realized | {comparison.champion:.4f} | {comparison.candidate:.4f} | {comparison.gain:+.4f} | "
            f"[{comparison.lower:+.4f}, {comparison.upper:+.4f}] ({comparison.method}) |",
        ]
    lines += ["", *[f"- {reason}" for reason in verdict.reasons]]
    return "\n".join(lines)
