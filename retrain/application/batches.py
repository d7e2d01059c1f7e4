"""Batches in, training set out: the steps shared by the training flow and the CLI.

Plain functions over the adapters (no Prefect): the flow wraps them in tasks, and ``retrain
validate``, ``retrain ingest`` and ``retrain snapshot`` (the DVC stage's command) call them directly,
so every path judges and assembles data the same way.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from retrain.adapters import files
from retrain.domain.settings import Settings
from retrain.domain.validation import BatchValidation


def validate_file(path: Path, settings: Settings, project_dir: Path) -> BatchValidation:
    """Read one batch file and judge it with the contract and the quarantine policy of params.yaml.

    The contract must be the released one (``data_contracts/RELEASED.json``), so every batch is judged
    by the rules whose hash the run records."""
    from retrain.adapters import contracts

    contracts.check_released(project_dir / "data_contracts", settings.contract.name, settings.contract.version)
    return contracts.validate_batch(
        files.read_batch(path, settings.dataset.time_column),
        project_dir / settings.contract.relative_path,
        batch_name=path.name,
        contract_name=settings.contract.name,
        contract_version=settings.contract.version,
        max_quarantine_share=settings.contract.max_quarantine_share,
        extra_columns=settings.contract.extra_columns,
    )


def quarantine_path(project_dir: Path, settings: Settings, batch_name: str) -> Path:
    return project_dir / settings.dataset.quarantine / f"{Path(batch_name).stem}.parquet"


def store_quarantine(validations: list[BatchValidation], settings: Settings, project_dir: Path) -> int:
    """Write each batch's quarantined rows (with reasons) beside the data; returns rows written."""
    directory = project_dir / settings.dataset.quarantine
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for validation in validations:
        if len(validation.quarantined):
            target = quarantine_path(project_dir, settings, validation.report.batch)
            validation.quarantined.to_parquet(target, index=False)
            written += len(validation.quarantined)
    return written


def assemble_training_set(validations: list[BatchValidation], settings: Settings, project_dir: Path) -> Path:
    """Concatenate the accepted rows of every batch into the snapshot file the run trains on."""
    frame = pd.concat([v.accepted for v in validations], ignore_index=True)
    order = tuple(c for c in (settings.dataset.time_column, settings.dataset.id_column) if c is not None)
    return files.write_snapshot(frame, project_dir / settings.dataset.training_set, order)
