"""Data tasks: read settings, validate every batch against its contract, snapshot and version it.

Thin Prefect tasks over :mod:`retrain.application.batches` and :mod:`retrain.application.data`;
retries, caching and the Prefect artifacts are decided here.
"""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retrain.adapters import files
from retrain.adapters.git import GitCommit
from retrain.application import data, versioning
from retrain.application.batches import assemble_training_set, known_verdicts, row_threshold_check, validate_file
from retrain.domain import tags
from retrain.domain.encryption import S3Encryption
from retrain.domain.evidence import Snapshot
from retrain.domain.settings import Settings, load_settings
from retrain.domain.validation import BatchValidation, ValidationReport
from tasks.policy import RETRYING


@task(name="load-settings", cache_policy=NO_CACHE)
def load_settings_task(params_path: Path) -> Settings:
    return load_settings(params_path)


@task(name="check-row-thresholds", cache_policy=NO_CACHE)
def check_row_thresholds_task(settings: Settings, project_dir: Path) -> list[str]:
    """Thresholds in rows this project's batches never reach (``drift.min_rows``, slice ``min_rows``),
    logged as warnings at the start of the run: a run started from the Prefect UI or a schedule
    says so in its own logs, where its user looks."""
    messages = [warning.message for warning in row_threshold_check(settings, project_dir)]
    logger = get_run_logger()
    for message in messages:
        logger.warning("%s (in params.yaml)", message)
    return messages


@task(name="list-batches", cache_policy=NO_CACHE)
def list_batches_task(project_dir: Path, settings: Settings) -> list[Path]:
    return files.list_batches(project_dir / settings.dataset.batches)


@task(name="reuse-known-verdicts", cache_policy=NO_CACHE, **RETRYING)
def known_verdicts_task(
    paths: list[Path], settings: Settings, project_dir: Path, reports_dir: Path, cache_dir: Path | None
) -> list[BatchValidation | None]:
    """The verdicts the batches already had under this contract and settings, applied again in one
    task (None for a batch not seen yet, which gets a validation task of its own); their reports are
    kept beside the others and the run's summary artifact lists them."""
    if cache_dir is None:
        return [None] * len(paths)
    known = known_verdicts(paths, settings, project_dir, cache_dir)
    reused = [path for path, validation in zip(paths, known, strict=True) if validation is not None]
    for path, validation in zip(paths, known, strict=True):
        if validation is not None:
            data.keep_report(validation.report, reports_dir, path)
    if reused:
        get_run_logger().info(
            f"{len(reused)} of {len(paths)} batches judged before by the same contract and settings: verdicts "
            f"reused ({', '.join(path.name for path in reused[:3])}{', ...' if len(reused) > 3 else ''})"
        )
    return known


@task(name="validate-batch", cache_policy=NO_CACHE, task_run_name="validate-{path.name}", **RETRYING)
def validate_batch_task(
    path: Path, settings: Settings, project_dir: Path, reports_dir: Path, cache_dir: Path | None = None
) -> BatchValidation:
    """Run the contract on one batch (or apply the verdict the same file had under the same contract),
    publish its report and keep it as JSON beside the other reports."""
    validation = validate_file(path, settings, project_dir, cache_dir)
    if validation.reused_verdict:
        get_run_logger().info(f"{path.name}: judged before by the same contract and settings, verdict reused")
    report = validation.report
    data.keep_report(report, reports_dir, path)
    create_markdown_artifact(
        report.to_markdown(), key=tags.ARTIFACT_BATCH_VALIDATION, description=f"Contract result for {path.name}"
    )
    return validation


def validate_new_batches(
    paths: list[Path],
    known: list[BatchValidation | None],
    settings: Settings,
    project_dir: Path,
    reports_dir: Path,
    cache_dir: Path | None,
    dask_scheduler: str | None,
) -> list[BatchValidation]:
    """Every batch's validation, in order: a known verdict as it is, each new batch in a task of its own.

    With ``model.engine: dask`` the new batches' tasks run at once on the Dask cluster through
    prefect-dask's ``DaskTaskRunner`` (the workers must see the project directory, as the rows'
    files are read there); otherwise one after the other in the flow's process.
    """
    new = [index for index, verdict in enumerate(known) if verdict is None]
    validations = list(known)
    if settings.model.engine == "dask" and new:
        from prefect_dask.task_runners import DaskTaskRunner

        from retrain.adapters.dask_cluster import require_scheduler

        with DaskTaskRunner(address=require_scheduler(dask_scheduler)) as runner:
            futures = {
                index: runner.submit(
                    validate_batch_task,
                    {
                        "path": paths[index],
                        "settings": settings,
                        "project_dir": project_dir,
                        "reports_dir": reports_dir,
                        "cache_dir": cache_dir,
                    },
                )
                for index in new
            }
            for index, future in futures.items():
                validations[index] = future.result()
    else:
        for index in new:
            validations[index] = validate_batch_task(paths[index], settings, project_dir, reports_dir, cache_dir)
    return [validation for validation in validations if validation is not None]


@task(name="publish-validation", cache_policy=NO_CACHE)
def publish_validation_task(reports: list[ValidationReport]) -> None:
    """One summary artifact for all batches; a refused batch stops the flow with every reason."""
    create_markdown_artifact(
        data.validation_summary(reports),
        key=tags.ARTIFACT_DATA_VALIDATION,
        description="Contract results for every batch of this training run",
    )
    data.refuse_failed(reports)


@task(name="prepare-data-repo", cache_policy=NO_CACHE, **RETRYING)
def prepare_data_repo_task(
    project_dir: Path, remote_url: str, remote_endpoint: str | None, encryption: S3Encryption
) -> None:
    """The project must be a DVC repo whose default remote is the one this environment names."""
    data.prepare_data_repo(project_dir, remote_url, remote_endpoint, encryption)


@task(name="store-quarantine", cache_policy=NO_CACHE, **RETRYING)
def store_quarantine_task(validations: list[BatchValidation], settings: Settings, project_dir: Path) -> int:
    """Quarantined rows are data too: written per batch, tracked by DVC and pushed like the rest."""
    return data.keep_quarantine(validations, settings, project_dir)


@task(name="build-training-set", cache_policy=NO_CACHE)
def build_training_set_task(validations: list[BatchValidation], settings: Settings, project_dir: Path) -> Path:
    return assemble_training_set(validations, settings, project_dir)


@task(name="version-training-set", cache_policy=NO_CACHE, **RETRYING)
def version_training_set_task(snapshot_path: Path, batches: int, settings: Settings, project_dir: Path) -> Snapshot:
    """Record the snapshot in DVC (md5 in dvc.lock) and push it to the remote."""
    return data.version_training_set(snapshot_path, batches, settings, project_dir)


@task(name="commit-data-versions", cache_policy=NO_CACHE)
def commit_training_task(project_dir: Path, settings: Settings, version: str, md5: str, flow_run_id: str) -> GitCommit:
    """Commit the DVC pointers and dvc.lock that changed (only those), naming the version and the run."""
    message = versioning.training_message(settings, version, md5, flow_run_id)
    committed = versioning.commit_data_versions(project_dir, settings, message)
    print(committed.summary)
    return committed
