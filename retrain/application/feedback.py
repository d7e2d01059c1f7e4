"""``retrain feedback``: join labels that arrive late to the stored scores, once.

The scoring flow writes each batch's predictions under ``$RETRAIN_HOME/predictions`` (keyed by the
id column). A labels file is checked (:func:`retrain.domain.feedback.check_feedback`), then joined to
every predictions file that holds its ids; a file whose rows changed is rewritten whole through a
temporary file and a rename, so a crash leaves it as it was or fully joined. One feedback at a time
per model (a lock on the ledger's database), so two files arriving together never lose a label.
Every call is appended to ``feedback.jsonl`` beside the predictions: what came in and what it did.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from retrain.adapters import files
from retrain.adapters.environment import Runtime
from retrain.adapters.locks import model_lock
from retrain.application import monitoring
from retrain.domain import feedback as domain
from retrain.domain.settings import Settings
from retrain.domain.task import task_for

FEEDBACK_LOG = "feedback.jsonl"


def predictions_dir(runtime: Runtime) -> Path:
    """Where the scoring flow keeps each batch's predictions unless told otherwise."""
    return runtime.state_dir / "predictions"


def apply_feedback(
    runtime: Runtime, settings: Settings, labels_path: Path, scores: Path | None = None
) -> domain.FeedbackReport:
    """Join one labels file to the stored scores; returns what it did with every row."""
    data = settings.dataset
    if data.id_column is None:
        raise domain.FeedbackError(
            "late labels are joined to the scores by id, and dataset.id_column is not set: score batches that "
            "carry an id column (and set it in params.yaml), or send labels inside the next batches instead"
        )
    task = task_for(data)
    checked = domain.check_feedback(files.read_batch(labels_path, data.time_column), data.id_column, data.target, task)
    directory = scores or predictions_dir(runtime)
    stored = sorted(directory.glob("*.parquet")) if directory.is_dir() else []
    column = monitoring.label_column(settings)
    joined = already = 0
    changed: list[str] = []
    disagreeing: set[str] = set()
    matched: set[str] = set()
    with model_lock(runtime.ledger_url, f"{settings.model.registered_name}:feedback"):
        for path in stored:
            frame = pd.read_parquet(path)
            if data.id_column not in frame.columns:
                continue
            result = domain.join_feedback(frame, checked, data.id_column, column, task)
            matched |= result.matched_ids
            disagreeing |= set(result.disagreeing_ids)
            already += result.already_known
            if result.scores is not None:
                _replace(path, result.scores)
                joined += result.joined
                changed.append(path.name)
        report = domain.FeedbackReport(
            labels_file=labels_path.name,
            rows=checked.rows,
            joined=joined,
            already_known=already,
            files_changed=tuple(changed),
            unknown_ids=tuple(sorted(set(checked.codes.index) - matched)),
            disagreeing_ids=tuple(sorted(disagreeing)),
            conflicting_ids=checked.conflicting_ids,
            repeated_rows=checked.repeated_rows,
            without_label=checked.without_label,
            unknown_labels=checked.unknown_labels,
            ids_withheld=data.id_column in settings.privacy.sensitive,
        )
        _log(directory, labels_path, report)
    return report


def _replace(path: Path, frame: pd.DataFrame) -> None:
    temporary = path.with_name(f".{path.name}.feedback.tmp")
    try:
        frame.to_parquet(temporary, index=False)
        os.replace(temporary, path)  # atomic: the file is the old one or the joined one
    finally:
        temporary.unlink(missing_ok=True)


def _log(directory: Path, labels_path: Path, report: domain.FeedbackReport) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(labels_path.read_bytes()).hexdigest()
    entry = {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "labels_file": str(labels_path.resolve()),
        "sha256": digest,
        "rows": report.rows,
        "joined": report.joined,
        "already_known": report.already_known,
        "files_changed": list(report.files_changed),
        "unknown_ids": len(report.unknown_ids),
        "disagreeing_ids": len(report.disagreeing_ids),
        "conflicting_ids": len(report.conflicting_ids),
        "without_label": report.without_label,
        "unknown_labels": sum(report.unknown_labels.values()),
    }
    with (directory / FEEDBACK_LOG).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
