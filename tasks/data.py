"""Data tasks: read settings, validate every batch against its contract, snapshot and version it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retrain.adapters import datastore, files
from retrain.application.batches import assemble_training_set, store_quarantine, validate_file
from retrain.domain.errors import ContractViolation
from retrain.domain.settings import Settings, load_settings
from retrain.domain.validation import BatchValidation, ValidationReport
from tasks.policy import RETRYING

TRAINING_SET_STAGE = "training_set"


@dataclass(frozen=True)
class Snapshot:
    """The versioned training data of one run."""

    path: str
    md5: str
    rows: int
    batches: int
    first_day: str
    last_day: str


@task(name="load-settings", cache_policy=NO_CACHE)
def load_settings_task(params_path: Path) -> Settings:
    return load_settings(params_path)


@task(name="list-batches", cache_policy=NO_CACHE)
def list_batches_task(project_dir: Path, settings: Settings) -> list[Path]:
    return files.list_batches(project_dir / settings.dataset.batches)


@task(name="validate-batch", cache_policy=NO_CACHE, task_run_name="validate-{path.name}", **RETRYING)
def validate_batch_task(path: Path, settings: Settings, project_dir: Path, reports_dir: Path) -> BatchValidation:
    """Run the contract on one batch, publish its report and keep it as JSON beside the other reports."""
    validation = validate_file(path, settings, project_dir)
    report = validation.report
    reports_dir.mkdir(parents=True, exist_ok=True)
    (reports_dir / f"{path.stem}.json").write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    create_markdown_artifact(
        report.to_markdown(), key="batch-validation", description=f"Contract result for {path.name}"
    )
    return validation


@task(name="publish-validation", cache_policy=NO_CACHE)
def publish_validation_task(reports: list[ValidationReport]) -> None:
    """One summary artifact for all batches; a refused batch stops the flow with every reason."""
    failed = [report for report in reports if not report.passed]
    rows = sum(r.rows for r in reports)
    quarantined = sum(r.quarantined for r in reports)
    heading = (
        f"## Data validation: {len(reports) - len(failed)} of {len(reports)} batches accepted; "
        f"{rows} rows in, {rows - quarantined} accepted, {quarantined} quarantined\n\n"
    )
    create_markdown_artifact(
        heading + "\n\n".join(report.to_markdown() for report in reports),
        key="data-validation",
        description="Contract results for every batch of this training run",
    )
    if failed:
        raise ContractViolation("\n".join(report.summary() for report in failed))


@task(name="prepare-data-repo", cache_policy=NO_CACHE, **RETRYING)
def prepare_data_repo_task(project_dir: Path, remote_url: str, remote_endpoint: str | None) -> None:
    """The project must be a DVC repo whose default remote is the one this environment names."""
    datastore.ensure_dvc_repo(project_dir)
    datastore.configure_remote(project_dir, remote_url, endpoint_url=remote_endpoint)


@task(name="store-quarantine", cache_policy=NO_CACHE, **RETRYING)
def store_quarantine_task(validations: list[BatchValidation], settings: Settings, project_dir: Path) -> int:
    """Quarantined rows are data too: written per batch, tracked by DVC and pushed like the rest."""
    written = store_quarantine(validations, settings, project_dir)
    datastore.track(project_dir, settings.dataset.quarantine)
    datastore.push(project_dir, settings.dataset.quarantine)
    return written


@task(name="build-training-set", cache_policy=NO_CACHE)
def build_training_set_task(validations: list[BatchValidation], settings: Settings, project_dir: Path) -> Path:
    return assemble_training_set(validations, settings, project_dir)


@task(name="version-training-set", cache_policy=NO_CACHE, **RETRYING)
def version_training_set_task(snapshot_path: Path, batches: int, settings: Settings, project_dir: Path) -> Snapshot:
    """Record the snapshot in DVC (md5 in dvc.lock) and push it to the remote."""
    md5s = datastore.commit_stage(project_dir, TRAINING_SET_STAGE)
    datastore.push(project_dir, TRAINING_SET_STAGE)
    relative = Path(settings.dataset.training_set).as_posix()
    frame = files.read_snapshot(snapshot_path)
    days = pd.to_datetime(frame[settings.dataset.time_column])
    return Snapshot(
        path=relative,
        md5=md5s[relative],
        rows=len(frame),
        batches=batches,
        first_day=days.min().date().isoformat(),
        last_day=days.max().date().isoformat(),
    )
