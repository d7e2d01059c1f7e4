"""Data use cases of the training flow: report validations, keep quarantined rows, version the snapshot.

Plain functions (no Prefect) over the DVC and file adapters; ``tasks/data.py`` wraps each in a task
and publishes the Markdown these functions render as Prefect artifacts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from retrain.adapters import datastore, files
from retrain.application.batches import store_quarantine
from retrain.domain.encryption import S3Encryption
from retrain.domain.errors import ContractViolation
from retrain.domain.evidence import Snapshot
from retrain.domain.settings import Settings
from retrain.domain.validation import BatchValidation, ValidationReport

#: The DVC stage (dvc.yaml) whose output is the training snapshot.
TRAINING_SET_STAGE = "training_set"


def keep_report(report: ValidationReport, reports_dir: Path, batch: Path) -> Path:
    """Keep one batch's contract result as JSON beside the other reports of the run."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    target = reports_dir / f"{batch.stem}.json"
    target.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    return target


def validation_summary(reports: list[ValidationReport]) -> str:
    """One Markdown summary for all batches of a run: the heading counts, then each batch's report."""
    failed = [report for report in reports if not report.passed]
    rows = sum(r.rows for r in reports)
    quarantined = sum(r.quarantined for r in reports)
    heading = (
        f"## Data validation: {len(reports) - len(failed)} of {len(reports)} batches accepted; "
        f"{rows} rows in, {rows - quarantined} accepted, {quarantined} quarantined\n\n"
    )
    return heading + "\n\n".join(report.to_markdown() for report in reports)


def refuse_failed(reports: list[ValidationReport]) -> None:
    """A refused batch stops the run, with every refused batch's reasons."""
    failed = [report for report in reports if not report.passed]
    if failed:
        raise ContractViolation("\n".join(report.summary() for report in failed))


def prepare_data_repo(
    project_dir: Path, remote_url: str, remote_endpoint: str | None, encryption: S3Encryption
) -> None:
    """The project must be a DVC repo whose default remote is the one this environment names, with the
    encryption at rest it asks for."""
    datastore.ensure_dvc_repo(project_dir)
    datastore.configure_remote(project_dir, remote_url, endpoint_url=remote_endpoint, encryption=encryption)


def keep_quarantine(validations: list[BatchValidation], settings: Settings, project_dir: Path) -> int:
    """Quarantined rows are data too: written per batch, tracked by DVC and pushed like the rest."""
    written = store_quarantine(validations, settings, project_dir)
    datastore.track(project_dir, settings.dataset.quarantine)
    datastore.push(project_dir, settings.dataset.quarantine)
    return written


def version_training_set(snapshot_path: Path, batches: int, settings: Settings, project_dir: Path) -> Snapshot:
    """Record the snapshot in DVC (md5 in dvc.lock) and push it to the remote."""
    md5s = datastore.commit_stage(project_dir, TRAINING_SET_STAGE)
    datastore.push(project_dir, TRAINING_SET_STAGE)
    relative = Path(settings.dataset.training_set).as_posix()
    days = pd.to_datetime(files.read_column(snapshot_path, settings.dataset.time_column))  # not the whole file
    return Snapshot(
        path=relative,
        md5=md5s[relative],
        rows=len(days),
        batches=batches,
        first_day=days.min().date().isoformat(),
        last_day=days.max().date().isoformat(),
    )
