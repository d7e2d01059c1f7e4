"""``retrain ingest``: admit one new batch into the project's versioned data.

Validated first; a refused batch changes nothing. An accepted one is stored as Parquet in the
batches directory (accepted rows) and the quarantine directory (failing rows with reasons), both
tracked by DVC and pushed, and recorded in the batch log. Ingesting the same batch twice is a no-op.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd

from retrain.adapters import datastore
from retrain.batches import quarantine_path, store_quarantine, validate_file
from retrain.domain.settings import Settings
from retrain.environment import Runtime

BATCH_LOG = "batch_log.jsonl"


class IngestRefused(RuntimeError):
    """The batch was refused (by the contract, or as a different batch under a taken name)."""


def _same_rows(existing: Path, accepted: pd.DataFrame) -> bool:
    return pd.read_parquet(existing).reset_index(drop=True).equals(accepted.reset_index(drop=True))


def ingest_batch(runtime: Runtime, settings: Settings, source: Path) -> dict[str, Any]:
    project = runtime.project_dir
    validation = validate_file(source, settings, project)
    report = validation.report
    if not report.passed:
        raise IngestRefused(report.summary() + "\nNothing was stored.")
    batches = project / settings.dataset.batches
    target = batches / f"{source.stem}.parquet"
    entry: dict[str, Any] = {
        "batch": target.name,
        "source": str(source.resolve()),
        "ingested_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows_in": report.rows,
        "accepted": report.accepted,
        "quarantined": report.quarantined,
        "contract": settings.contract.name,
        "contract_version": settings.contract.version,
    }
    if target.exists():
        if not _same_rows(target, validation.accepted):
            raise IngestRefused(
                f"a different batch named {target.name} is already ingested: give the new file another name."
            )
        return {**entry, "status": "already ingested"}
    batches.mkdir(parents=True, exist_ok=True)
    validation.accepted.to_parquet(target, index=False)
    store_quarantine([validation], settings, project)
    datastore.ensure_dvc_repo(project)
    datastore.configure_remote(project, runtime.dvc_remote_url, endpoint_url=runtime.dvc_remote_endpoint)
    entry["batches_md5"] = datastore.track(project, settings.dataset.batches)
    entry["quarantine_md5"] = datastore.track(project, settings.dataset.quarantine)
    entry["quarantine_file"] = (
        quarantine_path(project, settings, target.name).relative_to(project).as_posix() if report.quarantined else None
    )
    datastore.push(project, settings.dataset.batches)
    datastore.push(project, settings.dataset.quarantine)
    log = project / Path(settings.dataset.quarantine).parent / BATCH_LOG
    with log.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({**entry, "status": "ingested"}) + "\n")
    return {**entry, "status": "ingested"}
