"""Monitoring use cases: read a window of batches, compare it with the champion's reference profile,
decide (debounced) whether to retrain, and shadow-score batches.

Plain functions (no Prefect): ``tasks/monitoring.py`` wraps them in tasks, publishes the Markdown
they render as artifacts, and gathers what only the orchestrator knows (the training runs in flight,
via :mod:`retrain.adapters.prefect_api`) to pass in.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from retrain.adapters import files, plots
from retrain.adapters.ledger import DecisionLog, DecisionRecord, Trigger
from retrain.adapters.registry import ModelRegistry
from retrain.application.models import load_model
from retrain.application.reaper import expired_leases
from retrain.application.rollout import Routing
from retrain.domain import rollout, rowkey, tags
from retrain.domain.batch_counts import BatchCounts, count_batch
from retrain.domain.drift import CHANGE_SIGNALS, ConceptChange, DriftReport, detect_drift
from retrain.domain.drift_view import DriftGrid, drift_grid, feature_line, other_statistics
from retrain.domain.errors import RetrainError
from retrain.domain.evidence import REFERENCE_PROFILE
from retrain.domain.lifecycle import CHALLENGER, CHAMPION, ModelVersionInfo
from retrain.domain.profile import ReferenceProfile
from retrain.domain.readable import markdown_text, significant
from retrain.domain.retraining import REPORT_ONLY, decide_retraining, report_only_note
from retrain.domain.runs import FlowRunView
from retrain.domain.scoring import BatchPerformance, batch_performance, unseen_categories
from retrain.domain.settings import Settings
from retrain.domain.shadow import ShadowComparison, compare_shadow
from retrain.domain.task import Task, task_for

ACTIVE_STATES: Final = ("PENDING", "RUNNING", "PAUSED", "CANCELLING")
#: The state types of training runs the drift check asks the orchestrator for (scheduled ones may be due).
TRAINING_RUN_STATES: Final = (*ACTIVE_STATES, "SCHEDULED")
TRAINING_FLOW: Final = "training"


@dataclass(frozen=True)
class Piece:
    """Some rows of one batch file: the file's name, the position of the first row in it, the rows."""

    batch: str
    first_row: int
    frame: pd.DataFrame


def chosen_batches(project_dir: Path, settings: Settings, paths: Sequence[str]) -> list[Path]:
    """The named files, or else the newest ``drift.window_batches`` batches of the project."""
    chosen = [Path(p) for p in paths] or files.list_batches(project_dir / settings.dataset.batches)[
        -settings.drift.window_batches :
    ]
    if not chosen:
        raise RetrainError(f"no batch to check: {project_dir / settings.dataset.batches} holds none")
    return chosen


def read_pieces(paths: Sequence[Path], settings: Settings) -> Iterator[Piece]:
    """The batches' rows, ``monitoring.piece_rows`` at a time, in file order."""
    data = settings.dataset
    for path in paths:
        first = 0
        for frame in files.read_batch_pieces(
            path, data.time_column, data.missing_values, settings.monitoring.piece_rows
        ):
            yield Piece(path.name, first, frame)
            first += len(frame)


@dataclass(frozen=True)
class Window:
    """What a drift check keeps of its batches, read a piece at a time: the features' counts against the
    reference, the champion's prediction and the label of each row, the newest row time. Never the
    rows themselves, so a window costs memory for one piece plus a few numbers a row."""

    batches: tuple[str, ...]
    rows_per_batch: tuple[int, ...]
    counts: BatchCounts
    predictions: np.ndarray  # the champion's, the task's shape (multiclass: rows x classes)
    labels: np.ndarray | None  # encoded, NaN where not known (None: no batch carries the target)
    newest_time: dt.datetime | None

    @property
    def rows(self) -> int:
        return self.counts.rows


def window_of(
    pieces: Iterable[Piece],
    profile: ReferenceProfile,
    settings: Settings,
    predict: Callable[[pd.DataFrame], np.ndarray],
) -> Window:
    """Count, predict and label piece by piece (``predict``: the champion's predictions of some rows)."""
    task = task_for(settings.dataset)
    target, time_column = settings.dataset.target, settings.dataset.time_column
    batches: list[str] = []
    rows_per_batch: list[int] = []
    counts: BatchCounts | None = None
    predictions: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    labelled = False
    newest: dt.datetime | None = None
    for piece in pieces:
        frame = piece.frame
        if piece.first_row == 0 or not batches:  # a file's first piece (two files may share a name: each is its own)
            batches.append(piece.batch)
            rows_per_batch.append(0)
        rows_per_batch[-1] += len(frame)
        counted = count_batch(profile, frame)
        counts = counted if counts is None else counts + counted
        predictions.append(predict(frame))
        piece_labels = _piece_labels(task, frame, target)
        labelled = labelled or piece_labels is not None
        labels.append(np.full(len(frame), np.nan) if piece_labels is None else piece_labels)
        newest = _later(newest, _newest_time(frame, time_column))
    if counts is None:
        raise RetrainError("no batch to check: the window has no piece")
    return Window(
        batches=tuple(batches),
        rows_per_batch=tuple(rows_per_batch),
        counts=counts,
        predictions=np.concatenate(predictions, axis=0),
        labels=np.concatenate(labels) if labelled else None,
        newest_time=newest,
    )


def scan_window(
    project_dir: Path,
    settings: Settings,
    paths: Sequence[str],
    registry: ModelRegistry,
    champion: ModelVersionInfo,
    profile: ReferenceProfile,
) -> Window:
    """The drift check's window (:func:`chosen_batches`), read piece by piece with the registered champion,
    each piece as the champion reads rows (its sensitive columns as the tokens its profile counts)."""
    model = load_model(registry, champion.version)
    task = task_for(settings.dataset)
    pieces = read_pieces(chosen_batches(project_dir, settings, paths), settings)
    return window_of(
        (replace(piece, frame=model.rows(piece.frame)) for piece in pieces),
        profile,
        settings,
        lambda frame: model.predict(frame, task, settings.model.threads, tokenised=True),
    )


def _piece_labels(task: Task, frame: pd.DataFrame, target: str) -> np.ndarray | None:
    """Some rows' labels as the task encodes them, or None without a target column. NaN where not
    known yet, and where the value is one the task cannot encode: a served batch is measured on the
    rows it can be (:meth:`~retrain.domain.task.Task.unknown_labels` counts the others), never
    refused for a label."""
    return None if target not in frame else task.label_codes(frame[target], unknown="missing")


def _later(first: dt.datetime | None, second: dt.datetime | None) -> dt.datetime | None:
    return second if first is None else first if second is None else max(first, second)


def champion_reference(registry: ModelRegistry) -> tuple[ModelVersionInfo, ReferenceProfile]:
    """The champion and the reference profile stored with it (promotion re-baselines by itself)."""
    champion = registry.by_alias(CHAMPION)
    if champion is None:
        raise RetrainError(f"model {registry.model_name} has no champion yet: nothing to compare with (retrain train)")
    return champion, ReferenceProfile.from_dict(registry.load_document(champion.run_id, REFERENCE_PROFILE))


def check_drift(
    profile: ReferenceProfile,
    window: Window,
    settings: Settings,
    last_change: ConceptChange | None = None,
) -> DriftReport:
    """The window against the reference: features, scores and, where labels exist, performance.
    ``last_change``: the last sure performance drop that started a retraining (:func:`last_change`)."""
    return detect_drift(
        profile,
        window.counts,
        settings.drift,
        predictions=window.predictions,
        labels=window.labels,
        primary_metric=settings.gate.primary_metric,
        resamples=settings.gate.bootstrap_resamples,
        confidence=settings.gate.confidence,
        seed=settings.model.seed,
        task=settings.dataset.task,
        last_change=last_change,
        windowed=settings.split.max_train_days is not None,
        today=None if window.newest_time is None else window.newest_time.date(),
    )


def _newest_time(frame: pd.DataFrame, column: str) -> dt.datetime | None:
    """The rows' newest time (UTC), None without a valid one."""
    if column not in frame:
        return None
    times = pd.to_datetime(frame[column], errors="coerce", utc=True).dropna()
    if times.empty:
        return None
    newest: dt.datetime = times.max().to_pydatetime()
    return newest


def last_change(ledger_url: str, settings: Settings) -> ConceptChange | None:
    """The last change that started a retraining (its data time and, for a sure drop of the realized
    metric, the champion's holdout metric then): what the catch-up signal looks past."""
    log = DecisionLog(ledger_url)
    try:
        found = log.last_change(settings.model.registered_name, CHANGE_SIGNALS)
    finally:
        log.dispose()
    return None if found is None else ConceptChange(*found)


def training_runs_in_flight(
    runs: Sequence[FlowRunView],
    project_dir: Path,
    stale_after_hours: float,
    dead: Sequence[str] = (),
    exclude: str | None = None,
    now: dt.datetime | None = None,
) -> list[str]:
    """Training runs of this project that make a new one a duplicate: pending, running or waiting for
    reviewers, and scheduled runs already due (a trigger just created them). A run stuck in one state
    for longer than ``stale_after_hours`` is a crashed process's leftover, not in flight, and so is a run
    whose lease in the ledger's database expired (``dead``: its process died; see retrain.application.reaper).

    ``runs`` are the training runs the orchestrator lists in :data:`TRAINING_RUN_STATES`.
    """
    moment = dt.datetime.now(dt.UTC) if now is None else now
    expired = set(dead)
    active = []
    for run in runs:
        if run.id == exclude or run.state_type is None or run.id in expired:
            continue
        request = run.parameters.get("request") or {}
        if Path(str(request.get("project_dir") or "")).resolve() != project_dir.resolve():
            continue
        if run.state_timestamp is not None and moment - run.state_timestamp > dt.timedelta(hours=stale_after_hours):
            continue
        due = run.expected_start_time is None or run.expected_start_time <= moment + dt.timedelta(minutes=1)
        if run.state_type in ACTIVE_STATES or due:
            active.append(f"training run '{run.name}' ({run.state_name})")
    return active


def decide_and_record(
    ledger_url: str,
    settings: Settings,
    report: DriftReport,
    champion: ModelVersionInfo,
    window: Window,
    drift_run_id: str,
    project_dir: Path,
    training_runs: Sequence[FlowRunView],
) -> DecisionRecord:
    """Decide and record in one locked transaction: simultaneous checks cannot both retrain.

    ``training_runs`` are the orchestrator's training runs (see :func:`training_runs_in_flight`).
    """
    in_flight = training_runs_in_flight(
        training_runs, project_dir, settings.retraining.stale_after_hours, dead=list(expired_leases(ledger_url))
    )

    clock = settings.retraining.clock
    data_time = window_data_time(window, settings)

    def decide(earlier: list[Trigger]) -> tuple[str, tuple[str, ...]]:
        choice = decide_retraining(
            report.flagged,
            report.reasons,
            now=data_time if clock == "data" else dt.datetime.now(dt.UTC),
            earlier_triggers=[trigger.on(clock) for trigger in earlier],
            in_flight=in_flight,
            settings=settings.retraining,
        )
        return choice.decision, choice.reasons

    log = DecisionLog(ledger_url)
    try:
        return log.decide_and_record(
            settings.model.registered_name,
            decide,
            champion=champion.version,
            drift_share=report.drift_share,
            batches=window.batches,
            drift_run_id=drift_run_id,
            data_time=data_time,
            signal=report.signal,
            baseline=report.change_baseline,
        )
    finally:
        log.dispose()


def window_data_time(window: Window, settings: Settings) -> dt.datetime:
    """The time the window's data has reached: its newest row's time (UTC), the data clock's now."""
    newest = window.newest_time
    if newest is None:
        raise RetrainError(
            f"the batches {', '.join(window.batches)} have no valid {settings.dataset.time_column}: "
            "the data clock (retraining.clock: data) cannot tell when they are"
        )
    return newest


@dataclass(frozen=True)
class DriftOutcome:
    """What a drift check did about its report: the decision it recorded (at ``position`` of the
    decision log), or, asked only to report, nothing (``REPORT_ONLY``, no position)."""

    decision: str
    reasons: tuple[str, ...]  # the decision's (drift's own, plus what held it back); report only: drift's own
    position: int | None
    note: str | None = None  # report only: that nothing was decided or started, and how to act

    @property
    def acted(self) -> bool:
        return self.position is not None


def drift_outcome(report: DriftReport, record: DecisionRecord | None) -> DriftOutcome:
    """The recorded decision, or (``record`` None: the check was not asked to act) report only."""
    if record is None:
        return DriftOutcome(REPORT_ONLY, report.reasons, None, report_only_note(report.flagged))
    return DriftOutcome(record.decision, record.reasons, record.position)


@dataclass(frozen=True)
class RecordedDrift:
    """The drift check's MLflow run, and where its per-feature grid is: the MLflow UI page of the
    artifact and the artifact's stored URI (what ``mlflow artifacts download`` and S3 know)."""

    run_id: str
    grid: DriftGrid
    grid_page: str
    grid_uri: str


def drift_markdown(
    report: DriftReport,
    outcome: DriftOutcome,
    champion: ModelVersionInfo,
    window: Window,
    recorded: RecordedDrift | None = None,
) -> str:
    """The ``drift-report`` artifact: what was decided (or that nothing was), every signal, every row by
    severity with its statistics as people read them, and a link to the grid of distributions."""
    headline = "report only" if outcome.decision == REPORT_ONLY else outcome.decision
    lines = [
        f"# Drift check: **{headline}**",
        "",
        f"Batches {markdown_text(', '.join(window.batches))} ({report.rows} rows) vs the reference of champion "
        f"v{champion.version}: {len(report.drifted_features)} of {len(report.weights)} counted features drifted, "
        f"{report.drift_share:.0%} of the champion's feature importance. "
        f"{'Deciding signal' if outcome.note else 'Decided by'}: **{report.signal}**.",
        "",
    ]
    if outcome.note:
        lines += [f"**{markdown_text(outcome.note)}**", ""]
    lines += [
        *[f"- {markdown_text(reason)}" for reason in outcome.reasons],
        "",
    ]
    if recorded is not None:
        grid = recorded.grid
        lines += [
            f"Distributions, reference vs now ({markdown_text(grid.note)}): "
            f"[{tags.ARTIFACT_DRIFT_GRID}]({recorded.grid_page}) in MLflow run `{recorded.run_id}` "
            f"(stored at `{recorded.grid_uri}`).",
            "",
        ]
    lines += [
        "| signal | value | threshold | verdict | why |",
        "|---|---|---|---|---|",
        *[
            f"| {item.name} | {significant(item.value)} | {significant(item.threshold)} | {item.verdict} | "
            f"{markdown_text(item.text)} |"
            for item in report.signals
        ],
        "",
        "| feature | weight | kind | statistic | value | threshold | p-value (test) | drifted | missing ref → now "
        "| other statistics |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = list(report.features) + ([report.prediction] if report.prediction else [])
    for item in rows:
        line = feature_line(item)
        weight = report.weights.get(item.feature)
        shown = "—" if item is report.prediction else "not counted" if weight is None else f"{weight:.1%}"
        tested = line.p_value if line.p_value == "—" else f"{line.p_value} ({line.test})"
        lines.append(
            f"| {markdown_text(line.feature)} | {shown} | {line.kind} | {line.statistic} | {line.value} | "
            f"{line.threshold} | {tested} | {'**yes**' if item.drifted else 'no'} | "
            f"{item.missing_reference:.1%} → {item.missing_current:.1%} | {markdown_text(other_statistics(item))} |"
        )
    if report.performance is not None:
        perf = report.performance
        lines += [
            "",
            f"Performance on the {perf.rows} labelled rows: {perf.metric} {perf.current:.4f} "
            f"(CI [{perf.lower:.4f}, {perf.upper:.4f}]) vs {perf.reference:.4f} on the champion's holdout"
            f"{': **dropped**' if perf.dropped else ''}.",
        ]
    return "\n".join(lines)


def record_drift(
    registry: ModelRegistry,
    settings: Settings,
    profile: ReferenceProfile,
    window: Window,
    report: DriftReport,
    outcome: DriftOutcome,
    champion: ModelVersionInfo,
    reports_dir: Path,
    ui_url: str,
) -> RecordedDrift:
    """A monitoring run in MLflow (the grid of every drifted feature's distributions, the result as
    JSON) and ``drift.json``."""
    title = f"Drift vs champion v{champion.version}: {', '.join(window.batches)}"
    grid = drift_grid(profile, window.counts, window.predictions, report, settings.drift, title)
    payload = drift_result(report, outcome, champion, window)
    run_id = registry.log_monitoring_run(
        run_name=f"drift-{window.batches[-1]}",
        metrics={"drift_share": report.drift_share, "drifted_features": float(len(report.drifted_features))},
        tags={
            tags.TAG_KIND: "drift",
            tags.TAG_SIGNAL: report.signal,
            tags.TAG_CHAMPION: champion.version,
            tags.TAG_MONITORING_DECISION: outcome.decision,
            tags.TAG_DRIFT_WORST: ", ".join(
                f"{f.feature} ({f.statistic} {significant(f.value)})" for f in report.features[:3] if f.drifted
            )[:500],
        },
        figures={tags.ARTIFACT_DRIFT_GRID: plots.drift_grid_figure(grid)},
        documents={"drift.json": payload},
    )
    reports_dir.mkdir(parents=True, exist_ok=True)
    (reports_dir / "drift.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    page, uri = registry.artifact_place(ui_url, run_id, tags.ARTIFACT_DRIFT_GRID)
    return RecordedDrift(run_id, grid, page, uri)


def drift_result(
    report: DriftReport, outcome: DriftOutcome, champion: ModelVersionInfo, window: Window
) -> dict[str, Any]:
    """The drift flow's answer as one JSON-ready object (`retrain drift --json` prints it)."""
    return {
        **report.to_dict(),
        "decision": outcome.decision,
        "reasons": list(outcome.reasons),  # the decision's reasons (drift's own, plus what held it back)
        "batches": list(window.batches),
        "champion": champion.version,
        "decision_position": outcome.position,
    }


def retraining_request(project_dir: Path, record: DecisionRecord, drift_run_id: str) -> dict[str, str]:
    """The training run's request for a drift decision (who started it and why, for its evidence)."""
    return {
        "project_dir": str(project_dir),
        "triggered_by": "drift-monitor",
        "reason": f"drift run {drift_run_id} (decision #{record.position}): {'; '.join(record.reasons)}"[:500],
    }


def retraining_idempotency_key(settings: Settings, record: DecisionRecord) -> str:
    """One training deployment run per decision, however often the trigger is retried."""
    return f"retrain-decision-{settings.model.registered_name}-{record.position}"


@dataclass(frozen=True)
class ScoredBatch:
    """A batch scored piece by piece: its predictions file and, kept a few numbers a row, what the
    report needs (both models' predictions, the labels) plus the counts of unseen categories."""

    rows: int
    predictions_file: Path
    scores: np.ndarray  # the champion's, the task's shape
    shadow: np.ndarray | None  # the challenger's, never served
    labels: np.ndarray | None  # encoded, NaN where not known or not encodable (None: no target column)
    unknown_labels: dict[str, int]
    unseen: dict[str, int]
    candidate_rows: np.ndarray | None = None  # under a rollout: True where the candidate served the row

    def served_by_arm(self) -> dict[str, int]:
        """Rows each arm served (all the champion's without a rollout)."""
        served = 0 if self.candidate_rows is None else int(self.candidate_rows.sum())
        return {rollout.ARM_CHAMPION: self.rows - served, rollout.ARM_CANDIDATE: served}


def row_keys(piece: Piece, settings: Settings) -> pd.DataFrame:
    """What identifies each row of a piece: its id, or without an id column its batch file and
    position (:func:`retrain.domain.rowkey.source_positions`)."""
    id_column = settings.dataset.id_column
    if id_column is not None:
        return pd.DataFrame({id_column: piece.frame[id_column].to_numpy()})
    keys = rowkey.source_positions((piece.batch,), (len(piece.frame),))
    keys[rowkey.SOURCE_ROW] += piece.first_row
    return keys


def _served(
    frame: pd.DataFrame,
    chosen: np.ndarray,
    predict_champion: Callable[[pd.DataFrame], np.ndarray],
    predict_candidate: Callable[[pd.DataFrame], np.ndarray],
) -> np.ndarray:
    """Each row's prediction by the model of its arm (each model encodes with its own spec)."""
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for rows, predict in ((~chosen, predict_champion), (chosen, predict_candidate)):
        if rows.any():
            parts.append((np.flatnonzero(rows), predict(frame.loc[rows])))
    shape = (len(frame), *parts[0][1].shape[1:]) if parts else (0,)
    served = np.empty(shape, dtype="float64")
    for where, values in parts:
        served[where] = values
    return served


def score_batch(
    registry: ModelRegistry,
    settings: Settings,
    champion: ModelVersionInfo,
    challenger: ModelVersionInfo | None,
    batch: Path,
    output: Path,
    routing: Routing | None = None,
) -> ScoredBatch:
    """Score a batch ``monitoring.piece_rows`` rows at a time with the registered champion (and the
    shadow challenger): each piece's predictions are written as they come (:func:`prediction_frame`),
    so a batch larger than memory is scored in the memory of one piece. Under a rollout
    (``routing``), the candidate serves its share of the rows (:func:`retrain.domain.rollout.candidate_rows`)."""
    task = task_for(settings.dataset)
    threads = settings.model.threads
    # each model reads the rows as it learnt them (its own sensitive columns as tokens)
    champion_model = load_model(registry, champion.version)
    spec = champion_model.spec
    shadow_model = None if challenger is None else load_model(registry, challenger.version)
    candidate_model = None if routing is None else load_model(registry, routing.candidate.version)

    def by_candidate(rows: pd.DataFrame) -> np.ndarray:
        if candidate_model is None:
            raise ValueError("no candidate to predict with")
        return candidate_model.predict(rows, task, threads)

    def by_champion(rows: pd.DataFrame) -> np.ndarray:
        return champion_model.predict(rows, task, threads)

    chosen_rows: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    shadows: list[np.ndarray] = []
    labels: list[np.ndarray] = []  # empty when the batch has no target column (all its pieces alike)
    unknown: dict[str, int] = {}
    unseen: dict[str, int] = {}
    target = settings.dataset.target

    def frames() -> Iterator[pd.DataFrame]:
        for piece in read_pieces([batch], settings):
            chosen = None
            as_read = champion_model.rows(piece.frame)
            if routing is None or candidate_model is None:
                score = champion_model.predict(as_read, task, threads, tokenised=True)
            else:
                share, salt = routing.rollout.share, routing.rollout.salt
                chosen = rollout.candidate_rows(row_keys(piece, settings), share, salt)
                score = _served(piece.frame, chosen, by_champion, by_candidate)
                chosen_rows.append(chosen)
            shadow = None
            if shadow_model is not None:  # the challenger encodes with its own spec
                shadow = shadow_model.predict(piece.frame, task, threads)
            scores.append(score)
            if shadow is not None:
                shadows.append(shadow)
            piece_labels = _piece_labels(task, piece.frame, target)
            if piece_labels is not None:
                labels.append(piece_labels)
                _add_counts(unknown, task.unknown_labels(piece.frame[target]))
            _add_counts(unseen, unseen_categories(as_read, spec))
            frame = prediction_frame(piece, settings, champion, score, challenger, shadow)
            if routing is not None and chosen is not None:
                frame["model_version"] = np.where(chosen, routing.candidate.version, champion.version)
                frame[rollout.ARM_COLUMN] = np.where(chosen, rollout.ARM_CANDIDATE, rollout.ARM_CHAMPION)
                frame[rollout.ROLLOUT_COLUMN] = routing.rollout.id
            yield frame

    written = files.write_pieces(frames(), output, like=batch)
    all_scores = np.concatenate(scores, axis=0)
    return ScoredBatch(
        rows=int(all_scores.shape[0]),
        predictions_file=written,
        scores=all_scores,
        shadow=np.concatenate(shadows, axis=0) if shadows else None,
        labels=np.concatenate(labels) if labels else None,
        unknown_labels=unknown,
        unseen=unseen,
        candidate_rows=np.concatenate(chosen_rows) if chosen_rows else None,
    )


def _add_counts(total: dict[str, int], more: Mapping[str, int]) -> None:
    for key, count in more.items():
        total[key] = total.get(key, 0) + int(count)


def shadow_comparison(scored: ScoredBatch, settings: Settings) -> ShadowComparison:
    if scored.shadow is None:
        raise ValueError("the batch was scored without a shadow challenger")
    return compare_shadow(scored.scores, scored.shadow, scored.labels, task=settings.dataset.task)


def champion_performance(scored: ScoredBatch, settings: Settings) -> BatchPerformance:
    """The champion's metrics on the batch's labelled rows, with or without a shadow challenger; under
    a rollout, on the rows the champion served (the candidate's are the rollout's to judge)."""
    scores, labels = scored.scores, scored.labels
    if scored.candidate_rows is not None and labels is not None:
        served = ~scored.candidate_rows
        scores, labels = scores[served], labels[served]
    return batch_performance(task_for(settings.dataset), labels, scores, scored.unknown_labels)


def shadow_model(registry: ModelRegistry, champion: ModelVersionInfo) -> ModelVersionInfo | None:
    """The challenger to score in shadow, unless it is the champion itself (or there is none)."""
    challenger = registry.by_alias(CHALLENGER)
    return None if challenger is None or challenger.version == champion.version else challenger


def prediction_frame(
    piece: Piece,
    settings: Settings,
    champion: ModelVersionInfo,
    scores: np.ndarray,
    challenger: ModelVersionInfo | None,
    shadow: np.ndarray | None,
) -> pd.DataFrame:
    """One piece's predictions with the model version beside them, the label (named as the target)
    after the predictions when the batch carries one, and the shadow's predictions (never served).

    Binary: ``score`` = P(positive class). Multiclass: ``prediction`` = the likeliest class (as in
    ``dataset.labels.classes``) and ``proba_<class>`` per class. Regression: ``prediction``.
    Each row is keyed by the id column, or without one by its batch file and position in it
    (:func:`retrain.domain.rowkey.source_positions`), to join the scores back to the input.
    """
    data = settings.dataset
    rows = piece.frame
    frame = row_keys(piece, settings)
    frame[data.time_column] = rows[data.time_column].to_numpy()
    task = task_for(data)
    for column, values in _prediction_columns(task, scores).items():
        frame[column] = values
    if data.target in rows.columns:  # a labelled batch: the label beside the predictions it judges
        frame[label_column(settings)] = rows[data.target].to_numpy()
    frame["model_version"] = champion.version
    if challenger is not None and shadow is not None:
        for column, values in _prediction_columns(task, shadow).items():
            frame[f"shadow_{column}"] = values
        frame["shadow_model_version"] = challenger.version
    return frame


def _metric_key(name: str) -> str:
    """A column name as part of an MLflow metric key (which allows letters, digits, ``_-. /`` only)."""
    return re.sub(r"[^\w\-. /]", "_", name)


def label_column(settings: Settings) -> str:
    """The column of a predictions file that holds the label: named as the target, or ``label`` when
    the target's name is taken by the id, the time or a prediction column."""
    data = settings.dataset
    task = task_for(data)
    taken = {data.time_column, "score", "prediction"}
    taken |= {data.id_column} if data.id_column is not None else {rowkey.SOURCE_BATCH, rowkey.SOURCE_ROW}
    taken |= {f"proba_{value}" for value in task.classes} if task.kind == "multiclass" else set()
    return "label" if data.target in taken else data.target


def _prediction_columns(task: Task, predictions: np.ndarray) -> dict[str, Any]:
    """The columns a task's predictions are written as (see :func:`prediction_frame`)."""
    if task.kind == "binary":
        return {"score": predictions}
    if task.kind == "regression":
        return {"prediction": predictions}
    columns: dict[str, Any] = {"prediction": task.predicted_labels(predictions).astype(str)}
    for position, value in enumerate(task.classes):
        columns[f"proba_{value}"] = predictions[:, position]
    return columns


def record_scoring(registry: ModelRegistry, summary: dict[str, Any]) -> str:
    """The scoring pass as a monitoring run: rows, the champion's metrics where labels came, rows with
    unseen categories, shadow agreement and, with labels, metric gains."""
    shadow = summary["shadow"] or {}
    metrics = {"rows": float(summary["rows"])}
    for key in ("agreement", "mean_abs_difference", "rank_correlation"):
        if key in shadow:
            metrics[f"shadow_{key}"] = float(shadow[key])
    metrics.update({f"shadow_gain_{m}": float(v) for m, v in (shadow.get("gains") or {}).items()})
    metrics.update({f"champion_{m}": float(v) for m, v in (summary.get("metrics") or {}).items()})
    metrics["labelled_rows"] = float(summary.get("labelled_rows", 0))
    metrics.update({f"served_{arm}": float(rows) for arm, rows in (summary.get("served") or {}).items()})
    unseen = summary.get("unseen_categories") or {}
    metrics.update({f"unseen_{_metric_key(feature)}": float(count) for feature, count in unseen.items()})
    return registry.log_monitoring_run(
        run_name=f"scoring-{Path(summary['predictions']).stem}",
        metrics=metrics,
        tags={
            tags.TAG_KIND: "scoring",
            tags.TAG_CHAMPION: str(summary["champion"]),
            tags.TAG_SHADOW: str(summary["challenger"] or ""),
        },
        figures={},
        documents={"scoring.json": summary},
    )
