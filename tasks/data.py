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
from retrain.domain.settings import Settings, load_settings
from retrain.domain.validation import ValidationReport
from retrain.errors import ContractViolation
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
def validate_batch_task(path: Path, settings: Settings, project_dir: Path, reports_dir: Path) -> ValidationReport:
    """Run the contract on one batch and keep the result as JSON beside the other reports."""
    from retrain.adapters import contracts

    frame = files.read_batch(path, settings.dataset.time_column)
    report = contracts.validate_batch(
        frame,
        project_dir / settings.contract.relative_path,
        batch_name=path.name,
        contract_name=settings.contract.name,
        contract_version=settings.contract.version,
    )
    reports_dir.mkdir(parents=True, exist_ok=True)
    (reports_dir / f"{path.stem}.json").write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    return report


@task(name="publish-validation", cache_policy=NO_CACHE)
def publish_validation_task(reports: list[ValidationReport]) -> None:
    """One markdown artifact for all batches; a failing batch stops the flow with every reason."""
    failed = [report for report in reports if not report.passed]
    heading = f"## Data validation: {len(reports) - len(failed)} of {len(reports)} batches passed\n\n"
    create_markdown_artifact(
        heading + "\n\n".join(report.to_markdown() for report in reports),
        key="data-validation",
        description="Contract results for every batch of this training run",
    )
    if failed:
        raise ContractViolation("\n".join(report.summary() for report in failed))


@task(name="build-training-set", cache_policy=NO_CACHE)
def build_training_set_task(paths: list[Path], settings: Settings, project_dir: Path) -> Path:
    """Concatenate the validated batches into the snapshot file the run trains on."""
    frames = [files.read_batch(path, settings.dataset.time_column) for path in paths]
    frame = pd.concat(frames, ignore_index=True)
    order = (settings.dataset.time_column, settings.dataset.id_column)
    return files.write_snapshot(frame, project_dir / settings.dataset.training_set, order)


@task(name="version-training-set", cache_policy=NO_CACHE, **RETRYING)
def version_training_set_task(
    snapshot_path: Path,
    batches: int,
    settings: Settings,
    project_dir: Path,
    remote_url: str,
    remote_endpoint: str | None,
) -> Snapshot:
    """Record the snapshot in DVC (md5 in dvc.lock) and push it to the remote."""
    datastore.ensure_dvc_repo(project_dir)
    datastore.configure_remote(project_dir, remote_url, endpoint_url=remote_endpoint)
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
