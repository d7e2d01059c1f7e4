"""``retrain ingest``: admit one new batch into the project's versioned data.

Validated first; a refused batch changes nothing. An accepted one is stored as Parquet in the
batches directory (accepted rows) and the quarantine directory (failing rows with reasons), both
tracked by DVC and pushed, and recorded in the batch log. Ingesting the same batch twice is a no-op.

All or nothing: the batch-log line is the commit point. Before the first change a journal records
what the ingest is about to create and the pointer files it will rewrite; a failure (unreachable
remote, a full disk, Ctrl-C) undoes every change from it, and a crash (SIGKILL, power loss) leaves
the journal for the next ingest to undo first. So a failed ingest leaves no file in the batches or
quarantine directories, no new object in the DVC cache, the ``.dvc`` pointers as they were and no
log line, and the retry stores and logs the batch.

One ingest at a time, and never beside a purge: an ingest holds the model's data lock
(:func:`data_lock`, beside the ledger like every model lock), which ``retrain purge`` holds too. The
journal names its owner (host, pid): a journal is undone only once its owner is dead, never under a
live ingest (:class:`IngestRunning` otherwise).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from retrain.adapters import datastore
from retrain.adapters.environment import Runtime
from retrain.adapters.locks import model_lock
from retrain.application.batches import quarantine_path, validate_file
from retrain.domain.errors import RetrainError
from retrain.domain.settings import Settings
from retrain.domain.validation import BatchValidation

BATCH_LOG = "batch_log.jsonl"
JOURNAL = ".ingest-journal.json"


class IngestRefused(RetrainError):
    """The batch was refused (by the contract, or as a different batch under a taken name)."""


class IngestRunning(RetrainError):
    """An ingest journal's owner is still alive: its changes are not undone under it."""


def data_lock(ledger_url: str, settings: Settings) -> contextlib.AbstractContextManager[None]:
    """The lock of the project's stored data (batches, quarantine, their pointers): held by every
    ingest and by ``retrain purge``, so a purge never sees (nor undoes) an ingest half done."""
    return model_lock(ledger_url, f"{settings.model.registered_name}:data")


def _owner() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def owner_alive(owner: dict[str, Any] | None) -> bool:
    """Whether the process that wrote a journal still runs. Only a process of this host can be
    asked; one of another host (or a journal without owner) counts as dead: the data lock, which
    the caller holds, would still be held by a live ingest. A pid reused since is taken as alive
    (the safe side: the message says how to clear it by hand)."""
    if not owner or owner.get("host") != socket.gethostname():
        return False
    pid = int(owner.get("pid", 0))
    if pid <= 0 or pid == os.getpid():  # this process runs no other ingest beside this call
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _same_rows(existing: Path, accepted: pd.DataFrame) -> bool:
    return pd.read_parquet(existing).reset_index(drop=True).equals(accepted.reset_index(drop=True))


def _log_path(project: Path, settings: Settings) -> Path:
    return project / Path(settings.dataset.quarantine).parent / BATCH_LOG


def _journal_path(project: Path, settings: Settings) -> Path:
    return project / Path(settings.dataset.quarantine).parent / JOURNAL


def _logged(log: Path) -> set[str]:
    """Batches with a complete 'ingested' line (a torn last line from a crash is not a commit)."""
    names = set()
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("status") == "ingested":
                names.add(str(record["batch"]))
    return names


def ingested_days(project: Path, settings: Settings) -> dict[str, dt.date]:
    """The day (UTC) each logged batch was ingested, by its file stem (its quarantine file has
    the same stem): the day a batch's rows were written, whatever dates they carry."""
    days: dict[str, dt.date] = {}
    log = _log_path(project, settings)
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                days[Path(str(record["batch"])).stem] = dt.date.fromisoformat(str(record["ingested_at"])[:10])
            except (json.JSONDecodeError, KeyError, ValueError, TypeError):
                continue
    return days


def _write_durably(path: Path, text: str) -> None:
    """Replace ``path`` in one rename, after the bytes are on disk."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


def _touched(settings: Settings) -> list[str]:
    """Files ``dvc add`` rewrites: each tracked directory's pointer and the .gitignore beside it."""
    paths = []
    for tracked in (settings.dataset.batches, settings.dataset.quarantine):
        paths += [f"{tracked}.dvc", (Path(tracked).parent / ".gitignore").as_posix()]
    return sorted(set(paths))


def _cached_dirs(project: Path, settings: Settings) -> list[str]:
    """Directory manifests (``<md5>.dir``) the tracked directories point at now."""
    oids = []
    for tracked in (settings.dataset.batches, settings.dataset.quarantine):
        pointer = project / f"{tracked}.dvc"
        if pointer.exists():
            oids.append(str(yaml.safe_load(pointer.read_text(encoding="utf-8"))["outs"][0]["md5"]))
    return oids


def _undo(project: Path, journal: dict[str, Any]) -> None:
    """Put back everything the journal says this ingest changed (idempotent: a crash here is fine)."""
    for relative in journal["created"]:
        (project / relative).unlink(missing_ok=True)
    for relative, before in journal["pointers"].items():
        path = project / relative
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(before, encoding="utf-8")
    for oid in journal["new_objects"]:  # objects only this ingest put in the cache
        datastore.cached_object(project, oid).unlink(missing_ok=True)


def recover_interrupted_ingest(project: Path, settings: Settings) -> str | None:
    """Finish or undo an ingest that a crash interrupted; says which, or None when there was none."""
    journal_path = _journal_path(project, settings)
    if not journal_path.exists():
        return None
    journal = json.loads(journal_path.read_text(encoding="utf-8"))
    if owner_alive(journal.get("owner")):
        raise IngestRunning(
            f"an ingest of {journal['batch']} is still running (pid {journal['owner']['pid']} on this host): "
            f"try again when it has finished (if that process is no ingest, delete {journal_path})"
        )
    if journal["batch"] in _logged(_log_path(project, settings)):
        journal_path.unlink()  # the log line is the commit point: the ingest had finished
        return f"an interrupted ingest of {journal['batch']} had committed; nothing to undo"
    log = _log_path(project, settings)
    if log.exists():  # drop a torn last line, so the log stays one JSON object per line
        lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            _write_durably(log, "".join(lines[:-1]))
    _undo(project, journal)
    journal_path.unlink()
    return f"undid an interrupted ingest of {journal['batch']}"


def ingest_batch(runtime: Runtime, settings: Settings, source: Path) -> dict[str, Any]:
    with data_lock(runtime.ledger_url, settings):
        return _ingest_locked(runtime, settings, source)


def _ingest_locked(runtime: Runtime, settings: Settings, source: Path) -> dict[str, Any]:
    project = runtime.project_dir
    recovered = recover_interrupted_ingest(project, settings)
    validation = validate_file(source, settings, project)
    report = validation.report
    if not report.passed:
        raise IngestRefused(report.summary() + "\nNothing was stored.")
    batches = project / settings.dataset.batches
    target = batches / f"{source.stem}.parquet"
    quarantined = quarantine_path(project, settings, target.name)
    log = _log_path(project, settings)
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
    if recovered:
        entry["recovered"] = recovered
    if target.exists():
        if not _same_rows(target, validation.accepted):
            raise IngestRefused(
                f"a different batch named {target.name} is already ingested: give the new file another name."
            )
        if target.name in _logged(log):
            return {**entry, "status": "already ingested"}
    datastore.ensure_dvc_repo(project)
    datastore.configure_remote(
        project, runtime.dvc_remote_url, endpoint_url=runtime.dvc_remote_endpoint, encryption=runtime.s3_encryption
    )
    journal_path = _journal_path(project, settings)
    journal_path.parent.mkdir(parents=True, exist_ok=True)
    journal: dict[str, Any] = {
        "batch": target.name,
        "owner": _owner(),
        "created": [
            path.relative_to(project).as_posix()
            for path in (target, quarantined)
            if not path.exists() and (path == target or report.quarantined)
        ],
        "pointers": {
            relative: (project / relative).read_text(encoding="utf-8") if (project / relative).exists() else None
            for relative in _touched(settings)
        },
        "new_objects": [],
    }
    _write_durably(journal_path, json.dumps(journal))
    dirs_before = set(_cached_dirs(project, settings))
    try:
        batches.mkdir(parents=True, exist_ok=True)
        quarantined.parent.mkdir(parents=True, exist_ok=True)
        validation.accepted.to_parquet(target, index=False)
        if report.quarantined:
            validation.quarantined.to_parquet(quarantined, index=False)
        journal["new_objects"] = [
            md5
            for md5 in {datastore.file_md5(project / p) for p in journal["created"]}
            if not datastore.cached_object(project, md5).exists()
        ]
        _write_durably(journal_path, json.dumps(journal))
        entry["batches_md5"] = datastore.track(project, settings.dataset.batches)
        entry["quarantine_md5"] = datastore.track(project, settings.dataset.quarantine)
        journal["new_objects"] += [oid for oid in _cached_dirs(project, settings) if oid not in dirs_before]
        _write_durably(journal_path, json.dumps(journal))
        entry["quarantine_file"] = quarantined.relative_to(project).as_posix() if report.quarantined else None
        datastore.push(project, settings.dataset.batches)
        datastore.push(project, settings.dataset.quarantine)
        line = json.dumps({**entry, "status": "ingested"}) + "\n"
        with log.open("a", encoding="utf-8") as handle:  # the commit point: one write, flushed to disk
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        _undo(project, journal)
        journal_path.unlink(missing_ok=True)
        raise
    journal_path.unlink()
    _remember_verdict(validation, target, settings, project, runtime.validation_cache_dir)
    return {**entry, "status": "ingested"}


def _remember_verdict(
    validation: BatchValidation, stored: Path, settings: Settings, project: Path, cache_dir: Path
) -> None:
    """Keep the verdict for the stored file, so the training run that reads it pays no contract for it.

    Only when the stored rows are the rows judged: nothing quarantined and no column dropped (with
    rows left out, a batch-level expectation, a row count say, could judge the rest differently; then
    the training run validates the stored file itself). A verdict that depends on the clock is not kept.
    """
    from retrain.adapters import validation_cache

    if validation.report.quarantined or settings.contract.extra_columns == "drop":
        return
    findings = validation_cache.findings_of(validation)
    if findings is not None:
        contract_path = project / settings.contract.relative_path
        validation_cache.store(cache_dir, validation_cache.cache_key(stored, settings, contract_path), findings)
