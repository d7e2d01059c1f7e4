"""Batches in, training set out: the steps shared by the training flow and the CLI.

Plain functions over the adapters (no Prefect): the flow wraps them in tasks, and ``retrain
validate``, ``retrain ingest`` and ``retrain snapshot`` (the DVC stage's command) call them directly,
so every path judges and assembles data the same way.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from retrain.adapters import files
from retrain.domain import rowkey
from retrain.domain.row_thresholds import RowThresholdWarning, holdout_rows, row_threshold_warnings
from retrain.domain.settings import Settings
from retrain.domain.validation import BatchValidation


def validate_file(path: Path, settings: Settings, project_dir: Path, cache_dir: Path | None = None) -> BatchValidation:
    """Read one batch file and judge it with the contract and the quarantine policy of params.yaml.

    The contract must be the released one (``data_contracts/RELEASED.json``), so every batch is judged
    by the rules whose hash the run records. With ``cache_dir``, a verdict this file already had under
    the same contract and settings is applied again instead of re-running the contract
    (:mod:`retrain.adapters.validation_cache`): a run pays the contract only for batches it has not seen.
    """
    from retrain.adapters import contracts

    contracts.check_released(project_dir / "data_contracts", settings.contract.name, settings.contract.version)
    if cache_dir is not None:
        known = _replay_known(path, settings, project_dir, cache_dir)
        if known is not None:
            return known
    contract_path = project_dir / settings.contract.relative_path
    frame = files.read_batch(path, settings.dataset.time_column, settings.dataset.missing_values)
    contract = settings.contract
    validation = contracts.validate_batch(
        frame,
        contract_path,
        batch_name=path.name,
        contract_name=contract.name,
        contract_version=contract.version,
        max_quarantine_share=contract.max_quarantine_share,
        extra_columns=contract.extra_columns,
        sensitive=settings.privacy.sensitive,
    )
    if cache_dir is not None:
        from retrain.adapters import validation_cache

        fresh = validation_cache.findings_of(validation)
        if fresh is not None:
            validation_cache.store(cache_dir, validation_cache.cache_key(path, settings, contract_path), fresh)
    return validation


def known_verdicts(
    paths: list[Path], settings: Settings, project_dir: Path, cache_dir: Path
) -> list[BatchValidation | None]:
    """Per batch, the verdict it already had under the same contract and settings, applied again to
    its rows (no great-expectations); None for a batch it has not been seen with. One pass for the
    whole history, so a nightly run pays the contract (and a task of its own) only for its new days."""
    from retrain.adapters import contracts

    contracts.check_released(project_dir / "data_contracts", settings.contract.name, settings.contract.version)
    return [_replay_known(path, settings, project_dir, cache_dir) for path in paths]


def _replay_known(path: Path, settings: Settings, project_dir: Path, cache_dir: Path) -> BatchValidation | None:
    from retrain.adapters import contracts, validation_cache

    contract_path = project_dir / settings.contract.relative_path
    findings = validation_cache.load(cache_dir, validation_cache.cache_key(path, settings, contract_path))
    if findings is None:
        return None
    contract = settings.contract
    return contracts.replay_validation(
        files.read_batch(path, settings.dataset.time_column, settings.dataset.missing_values),
        contract_path,
        findings,
        batch_name=path.name,
        contract_name=contract.name,
        contract_version=contract.version,
        max_quarantine_share=contract.max_quarantine_share,
        extra_columns=contract.extra_columns,
        sensitive=settings.privacy.sensitive,
    )


def quarantine_path(project_dir: Path, settings: Settings, batch_name: str) -> Path:
    return project_dir / settings.dataset.quarantine / f"{Path(batch_name).stem}.parquet"


def store_quarantine(validations: list[BatchValidation], settings: Settings, project_dir: Path) -> int:
    """Write each batch's quarantined rows (with reasons) beside the data; returns rows written.

    Without an id column, each row also carries its position in the batch file
    (:data:`retrain.domain.rowkey.SOURCE_ROW`), so it can be found there.
    """
    directory = project_dir / settings.dataset.quarantine
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for validation in validations:
        if len(validation.quarantined):
            target = quarantine_path(project_dir, settings, validation.report.batch)
            rows = validation.quarantined
            if settings.dataset.id_column is None:  # labels are positions: contracts resets the index
                rows = rows.assign(**{rowkey.SOURCE_ROW: rows.index.to_numpy(dtype="int64")})
            rows.to_parquet(target, index=False)
            written += len(validation.quarantined)
    return written


def assemble_training_set(validations: list[BatchValidation], settings: Settings, project_dir: Path) -> Path:
    """Concatenate the accepted rows of every batch into the snapshot file the run trains on.

    Sorted by time, then by the id column, or without one by a hash of the row's content
    (:func:`retrain.domain.rowkey.order_by_content`): the same accepted rows give the same bytes.
    Batches that cover separate times (each day's file) are sorted and written one at a time, so the
    snapshot is never held whole; that gives the very bytes of sorting them all together (tested).
    """
    data = settings.dataset
    order: tuple[str, ...] = (
        (data.time_column,)  # without an id: the stable sort keeps the content order for ties
        if data.id_column is None
        else (data.time_column, data.id_column)
    )
    target = project_dir / data.training_set
    parts = [v.accepted for v in validations]
    in_time_order = rowkey.apart_in_time(parts, data.time_column)
    if in_time_order is not None and files.writable_in_pieces(in_time_order[0]):
        return files.write_snapshot_pieces((_sorted(part, order, data.id_column) for part in in_time_order), target)
    frame = pd.concat(parts, ignore_index=True)
    if data.id_column is None:
        frame = rowkey.order_by_content(frame)
    return files.write_snapshot(frame, target, order)


def _sorted(rows: pd.DataFrame, order: tuple[str, ...], id_column: str | None) -> pd.DataFrame:
    """One batch's rows in snapshot order."""
    if id_column is None:
        rows = rowkey.order_by_content(rows)
    return rows.sort_values(list(order), kind="stable").reset_index(drop=True)


#: How many newest batches are counted to find the typical batch size (cheap: metadata, line counts).
RECENT_BATCHES = 10


def _holdout_estimate(settings: Settings, project_dir: Path, batches: list[Path]) -> int | None:
    """Rows of the holdout: from the training snapshot when there is one, else the newest batches."""
    data, days = settings.dataset, settings.split.holdout_days
    snapshot = project_dir / data.training_set
    if snapshot.is_file():
        return holdout_rows(files.read_column(snapshot, data.time_column), days)
    # every batch holds at least one day, so the newest ``days`` batches cover the holdout's days
    newest = batches[-days:]
    if not newest:
        return None
    times = pd.concat([files.read_column(path, data.time_column) for path in newest], ignore_index=True)
    return holdout_rows(times, days)


def row_threshold_check(settings: Settings, project_dir: Path) -> list[RowThresholdWarning]:
    """``drift.min_rows`` and ``gate.slices.min_rows`` against this project's batch and holdout sizes.

    Best effort, for a warning at start-up: a project without readable batches gives no warning (the
    command itself then says what is wrong with its data).
    """
    try:
        batches = files.list_batches(project_dir / settings.dataset.batches)
        recent = batches[-max(settings.drift.window_batches, RECENT_BATCHES) :]
        sizes = [files.count_rows(path) for path in recent]
        holdout = _holdout_estimate(settings, project_dir, batches)
    except Exception:  # unreadable or damaged files (pyarrow has its own error types): the command says so
        return []
    return row_threshold_warnings(
        sizes,
        window_batches=settings.drift.window_batches,
        drift_min_rows=settings.drift.min_rows,
        slice_min_rows=settings.gate.slices.min_rows,
        holdout=holdout,
    )
