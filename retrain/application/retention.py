"""``retrain purge``: delete what is past retention, everywhere it is kept, and prove it in the ledger.

What goes (``retention:`` in params.yaml; the selection is :func:`retrain.domain.retention.plan_purge`):
batch and quarantine files from the workspace, with their objects in the DVC cache and on the DVC
remote (the tracked directories are re-tracked and their new pointers pushed, so ``.dvc`` files name
only what is left); stored scores (predictions files); the training snapshots of versions that hold
no alias, from the cache and the remote (and the workspace's copy when it is one of them). What stays:
the snapshot of a version that holds ``champion``, ``previous-champion``, ``candidate`` or
``challenger``, named with why.

The record comes first. The ledger entry (kind ``purge``) that lists every path, md5, row count and
version about to go is appended *before* the first deletion, in one transaction: a crash after it
leaves a record that says a little more than was done, never less, and no deletion is ever
unrecorded. The next purge finishes the newest purge entry first (:func:`_carry_out` is idempotent:
a file still there with the recorded md5 is deleted, an object already gone is skipped), so the
record becomes true without a second entry. A purge with nothing new to delete appends nothing.

One purge at a time, and never beside a training or a promotion of the model: it holds the model's
training lock (a training reads the batches), its lock (a promotion moves the aliases that decide
what is kept) and its feedback lock (feedback rewrites predictions files), in the order the others take them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retrain.adapters import datastore, files
from retrain.adapters.environment import Runtime
from retrain.adapters.ledger import Ledger
from retrain.adapters.locks import model_lock
from retrain.adapters.registry import ModelRegistry
from retrain.application.feedback import predictions_dir
from retrain.application.ingest import recover_interrupted_ingest
from retrain.domain import retention as domain
from retrain.domain.errors import RetrainError
from retrain.domain.evidence import EVIDENCE_DOCUMENT
from retrain.domain.lifecycle import MOVES, LedgerEntry
from retrain.domain.settings import Settings


@dataclass(frozen=True)
class PurgeResult:
    """What a purge did (or, with ``dry_run``, would do)."""

    model: str
    dry_run: bool
    record: domain.PurgeRecord
    position: int | None = None  # the ledger entry; None for a dry run or when nothing was deleted
    finished: tuple[str, ...] = ()  # what an interrupted earlier purge had left, done now
    places: dict[str, list[str]] = field(default_factory=dict)  # md5 -> where it was deleted

    @property
    def nothing(self) -> bool:
        return not self.record.files and not self.record.snapshots

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dry_run": self.dry_run,
            "ledger_entry": self.position,
            "deleted": {**self.record.to_dict(), "summary": self.record.summary()},
            "finished": list(self.finished),
            "objects": self.places,
        }


def markdown(done: PurgeResult) -> str:
    """The purge's Prefect artifact: its ledger entry and every line of what went and stayed."""
    entry = "nothing deleted, nothing recorded" if done.position is None else f"ledger entry #{done.position}"
    lines = [f"# Purge of {done.model}: {done.record.summary()} ({entry})", ""]
    lines += [f"- {line}" for line in domain.record_lines(done.record)]
    lines += [f"- finished what an interrupted purge left: {item}" for item in done.finished]
    return "\n".join(lines) + "\n"


def predictions_dirs(runtime: Runtime) -> list[Path]:
    """Where stored scores are kept: the state dir's (``retrain score``'s default) and, for the demo's
    workspace (``$RETRAIN_HOME/demo/workspace``), the demo's own beside it (``demo/predictions``)."""
    found = [predictions_dir(runtime)]
    project = runtime.project_dir
    if (project.parent.name, project.name) == ("demo", "workspace") and (project.parent / "predictions").is_dir():
        found.append(project.parent / "predictions")
    return found


def _own_day(path: Path, time_column: str) -> dt.date:
    """The file's own date: its newest valid time value; else (no such column, no valid value, an
    unreadable file) the day it was last written."""
    import pandas as pd

    try:
        newest = pd.to_datetime(files.read_column(path, time_column), errors="coerce", utc=True).max()
    except Exception:  # any unreadable file (pyarrow and pandas have their own errors): its mtime says
        newest = None
    if newest is not None and not pd.isna(newest):
        return dt.date(newest.year, newest.month, newest.day)
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).date()


def _shown(path: Path, project: Path) -> str:
    """A path as the record keeps it: relative to the project when inside it, else absolute."""
    return path.relative_to(project).as_posix() if path.is_relative_to(project) else str(path)


def _place(shown: str, project: Path) -> Path:
    path = Path(shown)
    return path if path.is_absolute() else project / path


def stored_files(runtime: Runtime, settings: Settings) -> list[domain.StoredFile]:
    """Every batch, quarantine and predictions file, with its own day. A quarantine file is as old as
    its batch (its rows often have no valid time: that may be why they are quarantined)."""
    project, data = runtime.project_dir, settings.dataset
    found: list[domain.StoredFile] = []
    batch_days: dict[str, dt.date] = {}
    batches = project / data.batches
    if batches.is_dir():
        for path in sorted(p for p in batches.iterdir() if p.is_file() and p.suffix.lower() in files.BATCH_SUFFIXES):
            day = batch_days[path.stem] = _own_day(path, data.time_column)
            found.append(domain.StoredFile("batch", _shown(path, project), day))
    quarantine = project / data.quarantine
    if quarantine.is_dir():
        for path in sorted(quarantine.glob("*.parquet")):
            day = batch_days.get(path.stem) or _own_day(path, data.time_column)
            found.append(domain.StoredFile("quarantine", _shown(path, project), day))
    for directory in predictions_dirs(runtime):
        if directory.is_dir():
            for path in sorted(directory.glob("*.parquet")):
                found.append(domain.StoredFile("predictions", _shown(path, project), _own_day(path, data.time_column)))
    return found


def _snapshots(registry: ModelRegistry, want_days: bool) -> tuple[list[domain.VersionSnapshot], dict[str, int]]:
    """Each registered version's training snapshot (md5, newest day, aliases) and the rows of each md5."""
    snapshots: list[domain.VersionSnapshot] = []
    rows: dict[str, int] = {}
    for info in registry.versions():
        if not info.data_md5:
            continue
        last_day: dt.date | None = None
        if want_days and not info.aliases:  # a kept version's age does not matter
            try:
                snapshot = registry.load_document(info.run_id, EVIDENCE_DOCUMENT).get("snapshot", {})
                last_day = dt.date.fromisoformat(str(snapshot["last_day"])[:10])
                rows[info.data_md5] = int(snapshot.get("rows", 0))
            except (RetrainError, KeyError, ValueError, OSError):  # no evidence: its age is unknown, kept
                last_day = None
        snapshots.append(domain.VersionSnapshot(info.version, info.data_md5, last_day, info.aliases))
    return snapshots, rows


def _serving(entries: Sequence[LedgerEntry]) -> str | None:
    """The champion the ledger's last move left (what a purge entry records, so the chain holds)."""
    moves = [entry for entry in entries if entry.kind in MOVES]
    return moves[-1].champion_after if moves else None


@contextlib.contextmanager
def _purge_locks(ledger_url: str, model: str) -> Iterator[None]:
    with (
        model_lock(ledger_url, f"{model}:training"),
        model_lock(ledger_url, model),
        model_lock(ledger_url, f"{model}:feedback"),
    ):
        yield


def _file_record(item: domain.StoredFile, project: Path) -> domain.DeletedFile:
    path = _place(item.path, project)
    try:
        rows: int | None = files.count_rows(path)
    except Exception:  # an unreadable file is deleted all the same; its rows are unknown
        rows = None
    return domain.DeletedFile(
        item.kind, item.path, item.day.isoformat(), datastore.file_md5(path), rows, path.stat().st_size
    )


def _workspace_snapshot(project: Path, settings: Settings) -> tuple[str, str] | None:
    """The workspace's training snapshot as dvc.lock records it: (path, md5), or None."""
    try:
        recorded = datastore.output_md5(project, "training_set")
    except datastore.DataStoreError:
        return None
    path = Path(settings.dataset.training_set).as_posix()
    return (path, recorded[path]) if path in recorded else None


def plan(
    runtime: Runtime,
    settings: Settings,
    registry: ModelRegistry,
    reason: str,
    today: dt.date,
) -> tuple[domain.PurgePlan, domain.PurgeRecord]:
    """What a purge on ``today`` deletes and keeps, as the ledger would record it (md5s and rows read now)."""
    project, keep = runtime.project_dir, settings.retention
    snapshots, rows = _snapshots(registry, keep.snapshots_days is not None)
    chosen = domain.plan_purge(stored_files(runtime, settings), snapshots, keep, today)
    if chosen.snapshots:  # an earlier purge's snapshots are gone: not deleted (nor recorded) again
        wanted = [item.md5 for item in chosen.snapshots]
        gone = frozenset(wanted) - datastore.stored_objects(project, wanted)
        chosen = domain.plan_purge(stored_files(runtime, settings), snapshots, keep, today, gone=gone)
    workspace = _workspace_snapshot(project, settings)
    record = domain.PurgeRecord(
        reason=reason,
        today=today.isoformat(),
        retention=keep.model_dump(),
        files=tuple(_file_record(item, project) for item in chosen.files),
        snapshots=tuple(
            {
                "md5": item.md5,
                "versions": list(item.versions),
                "last_day": item.last_day.isoformat(),
                "rows": rows.get(item.md5),
                "workspace": workspace[0] if workspace is not None and workspace[1] == item.md5 else None,
            }
            for item in chosen.snapshots
        ),
        kept=tuple({**asdict(item), "text": item.text} for item in chosen.kept),
        versions=tuple(version for item in chosen.snapshots for version in item.versions),
    )
    return chosen, record


def _carry_out(
    project: Path, settings: Settings, record: domain.PurgeRecord, keep: set[str]
) -> tuple[list[str], dict[str, list[str]]]:
    """Make ``record`` true: its files out of the workspace, the tracked directories re-tracked and
    pushed, its objects out of the DVC cache and the remote, except ``keep`` and whatever a file that
    stays still uses. Idempotent: what is already gone is skipped. Returns the files it deleted and,
    per md5, where the object was deleted."""
    unlinked: list[str] = []
    for item in record.files:
        path = _place(item.path, project)
        if path.is_file() and datastore.file_md5(path) == item.md5:  # not a new file under the same name
            path.unlink()
            unlinked.append(item.path)
    for snapshot in record.snapshots:
        copy = project / str(snapshot.get("workspace") or "")
        if snapshot.get("workspace") and copy.is_file() and datastore.file_md5(copy) == snapshot["md5"]:
            copy.unlink()
            unlinked.append(str(snapshot["workspace"]))
    still: set[str] = set(keep)
    for tracked in (settings.dataset.batches, settings.dataset.quarantine):
        if not (project / f"{tracked}.dvc").is_file():
            continue  # not under DVC (files written by hand): nothing to re-track
        mine = {Path(item.path).name for item in record.files if Path(item.path).parent == Path(tracked)}
        listed = datastore.tracked_files(project, tracked)  # None: its manifest is not in this cache
        if mine and (listed is None or mine & set(listed)) and (project / tracked).is_dir():
            datastore.track(project, tracked)
            datastore.push(project, tracked)
            listed = datastore.tracked_files(project, tracked)
        still |= set((listed or {}).values())
    workspace = _workspace_snapshot(project, settings)
    if workspace is not None and (project / workspace[0]).is_file():
        still.add(workspace[1])
    return unlinked, datastore.remove_objects(project, [md5 for md5 in record.md5s if md5 not in still])


def purge(
    runtime: Runtime,
    settings: Settings,
    registry: ModelRegistry,
    *,
    actor: str,
    reason: str = domain.DEFAULT_REASON,
    dry_run: bool = False,
    today: dt.date | None = None,
    flow_run_id: str | None = None,
) -> PurgeResult:
    """Delete what is past retention on ``today`` (default: today, UTC), recorded in the ledger first.

    ``dry_run``: only say what would go and what is kept; nothing is changed or recorded.
    """
    project, model = runtime.project_dir, settings.model.registered_name
    today = today or dt.datetime.now(dt.UTC).date()
    datastore.ensure_dvc_repo(project)
    datastore.configure_remote(
        project, runtime.dvc_remote_url, endpoint_url=runtime.dvc_remote_endpoint, encryption=runtime.s3_encryption
    )
    if dry_run:
        _, record = plan(runtime, settings, registry, reason, today)
        return PurgeResult(model, True, record)
    ledger = Ledger(runtime.ledger_url)
    try:
        with _purge_locks(runtime.ledger_url, model):
            # an ingest a crash cut short puts back the pointers it found: undone first, never after a purge
            recover_interrupted_ingest(project, settings)
            entries = ledger.entries(model)
            keep = set(domain.protected(_snapshots(registry, want_days=False)[0]))
            finished: tuple[str, ...] = ()
            earlier = domain.last_purge(entries)
            if earlier is not None:  # a crash may have cut it short: finish it first (idempotent)
                unlinked, places = _carry_out(project, settings, earlier[1], keep)
                finished = (*unlinked, *(f"{md5} ({', '.join(where)})" for md5, where in places.items() if where))
            chosen, record = plan(runtime, settings, registry, reason, today)
            if chosen.empty:
                return PurgeResult(model, False, record, finished=finished)
            champion = _serving(entries)
            position = ledger.append(
                LedgerEntry(
                    model_name=model,
                    kind="purge",
                    champion_before=champion,
                    challenger=None,
                    champion_after=champion,
                    actor=actor,
                    comment=f"{reason}: {record.summary()}",
                    flow_run_id=flow_run_id,
                    evidence={domain.PURGE_KEY: record.to_dict()},
                )
            )
            _, places = _carry_out(project, settings, record, keep)
            return PurgeResult(model, False, record, position, finished, places)
    finally:
        ledger.dispose()
