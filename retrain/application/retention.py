"""``retrain purge``: delete what is past retention, everywhere it is kept, and prove it in the ledger.

What goes (``retention:`` in params.yaml; the selection is :func:`retrain.domain.retention.plan_purge`):
batch and quarantine files from the workspace, with their objects in the DVC cache and on the DVC
remote (the tracked directories are re-tracked and their new pointers pushed, so ``.dvc`` files name
only what is left; with ``git.commit`` the pointers are committed naming the ledger entry); stored
scores (predictions files); the training snapshots of versions that hold no alias, from the cache and
the remote. What stays, named with why: the snapshot of a version that holds ``champion``,
``previous-champion``, ``candidate`` or ``challenger``, or whose gate has not decided yet; the
workspace's training set; the predictions files of a running rollout.

The record comes first. The ledger entry (kind ``purge``) that lists every path, md5, row count and
version about to go is appended *before* the first deletion, in one transaction: a crash after it
leaves a record that says a little more than was done, never less, and no deletion is ever
unrecorded. The next purge finishes that entry first, and only what is really unfinished: objects it
recorded that are still stored, whose files are gone from the workspace and which nothing kept uses,
and snapshots it recorded that today's plan (today's retention and keep rules) still deletes. A file
back in the workspace (the same batch ingested again) is never deleted under an old entry: today's
plan decides, and a new entry records it. A purge with nothing new to delete appends nothing.

A purge asked for after a preview (``expected_plan``, the preview's :attr:`PurgeRecord.key`) deletes
only if its own plan, made under the locks, is the one shown; else nothing and it says why. A dry run
writes nothing (not even the DVC remote's configuration).

One purge at a time, and never beside a training or a promotion of the model: it holds the model's
training lock (a training reads the batches), its lock (a promotion moves the aliases that decide
what is kept), its feedback lock (feedback rewrites predictions files) and its data lock (an ingest
writes batches and pointers), in the order the others take them. An ingest journal it finds is undone
only when its owner is dead (:func:`retrain.application.ingest.owner_alive`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retrain.adapters import datastore, files
from retrain.adapters.environment import Runtime
from retrain.adapters.ledger import Ledger
from retrain.adapters.locks import model_lock
from retrain.adapters.registry import ModelRegistry
from retrain.application.feedback import predictions_dir
from retrain.application.ingest import data_lock, ingested_days, recover_interrupted_ingest
from retrain.application.rollout import evidence_files
from retrain.application.versioning import commit_data_versions
from retrain.domain import retention as domain
from retrain.domain.errors import RetrainError
from retrain.domain.evidence import EVIDENCE_DOCUMENT
from retrain.domain.lifecycle import MOVES, LedgerEntry
from retrain.domain.rollout import active_rollout
from retrain.domain.settings import Settings
from retrain.domain.tags import TAG_DECISION


class PlanChanged(RetrainError):
    """What a purge would delete is no longer what was shown before it was confirmed."""


@dataclass(frozen=True)
class PurgeResult:
    """What a purge did (or, with ``dry_run``, would do)."""

    model: str
    dry_run: bool
    record: domain.PurgeRecord
    position: int | None = None  # the ledger entry; None for a dry run or when nothing was deleted
    finished: tuple[str, ...] = ()  # what an interrupted earlier purge had left, done now
    places: dict[str, list[str]] = field(default_factory=dict)  # md5 -> where it was deleted
    finished_entry: int | None = None  # the earlier purge's ledger entry that ``finished`` completes
    committed: str | None = None  # what the git commit of the pointers did (with git.commit)

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
            "finished_entry": self.finished_entry,
            "objects": self.places,
            "plan": self.record.key,
            "committed": self.committed,
        }


def markdown(done: PurgeResult) -> str:
    """The purge's Prefect artifact: its ledger entry and every line of what went and stayed."""
    entry = "nothing deleted, nothing recorded" if done.position is None else f"ledger entry #{done.position}"
    lines = [f"# Purge of {done.model}: {done.record.summary()} ({entry})", ""]
    lines += [f"- {line}" for line in domain.record_lines(done.record)]
    lines += [f"- finished the purge recorded as ledger entry #{done.finished_entry}: {item}" for item in done.finished]
    return "\n".join(lines) + "\n"


def predictions_dirs(runtime: Runtime) -> list[Path]:
    """Where stored scores are kept: the state dir's (``retrain score``'s default) and, for the demo's
    workspace (``$RETRAIN_HOME/demo/workspace``), the demo's own beside it (``demo/predictions``)."""
    found = [predictions_dir(runtime)]
    project = runtime.project_dir
    if (project.parent.name, project.name) == ("demo", "workspace") and (project.parent / "predictions").is_dir():
        found.append(project.parent / "predictions")
    return found


def _written_day(path: Path) -> dt.date:
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).date()


def _own_day(path: Path, time_column: str, written: dt.date | None = None) -> dt.date:
    """The file's own date: its newest valid time value, but never later than the day it was written
    (``written``: its batch's ingest; else its mtime), so future-dated rows cannot keep it forever; no
    valid time value (no such column, an unreadable file): the day it was written."""
    import pandas as pd

    written = written or _written_day(path)
    try:
        newest = pd.to_datetime(files.read_column(path, time_column), errors="coerce", utc=True).max()
    except Exception:  # any unreadable file (pyarrow and pandas have their own errors): its mtime says
        newest = None
    if newest is not None and not pd.isna(newest):
        return min(dt.date(newest.year, newest.month, newest.day), written)
    return written


def _shown(path: Path, project: Path) -> str:
    """A path as the record keeps it: relative to the project when inside it, else absolute."""
    return path.relative_to(project).as_posix() if path.is_relative_to(project) else str(path)


def _place(shown: str, project: Path) -> Path:
    path = Path(shown)
    return path if path.is_absolute() else project / path


def stored_files(runtime: Runtime, settings: Settings) -> list[domain.StoredFile]:
    """Every batch, quarantine and predictions file, with its own day. A quarantine file is as old as
    its batch (its rows often have no valid time: that may be why they are quarantined); once its
    batch is gone, its own day capped at its batch's ingest (the batch log), else at its mtime."""
    project, data = runtime.project_dir, settings.dataset
    found: list[domain.StoredFile] = []
    ingested = ingested_days(project, settings)
    batch_days: dict[str, dt.date] = {}
    batches = project / data.batches
    if batches.is_dir():
        for path in sorted(p for p in batches.iterdir() if p.is_file() and p.suffix.lower() in files.BATCH_SUFFIXES):
            day = batch_days[path.stem] = _own_day(path, data.time_column, ingested.get(path.stem))
            found.append(domain.StoredFile("batch", _shown(path, project), day))
    quarantine = project / data.quarantine
    if quarantine.is_dir():
        for path in sorted(quarantine.glob("*.parquet")):
            day = batch_days.get(path.stem) or _own_day(path, data.time_column, ingested.get(path.stem))
            found.append(domain.StoredFile("quarantine", _shown(path, project), day))
    for directory in predictions_dirs(runtime):
        if directory.is_dir():
            for path in sorted(directory.glob("*.parquet")):
                found.append(domain.StoredFile("predictions", _shown(path, project), _own_day(path, data.time_column)))
    return found


def _snapshots(registry: ModelRegistry, want_days: bool) -> tuple[list[domain.VersionSnapshot], dict[str, int]]:
    """Each registered version's training snapshot (md5, newest day, aliases, whether its gate decided)
    and the rows of each md5."""
    snapshots: list[domain.VersionSnapshot] = []
    rows: dict[str, int] = {}
    for info in registry.versions():
        if not info.data_md5:
            continue
        decided = bool(info.tags.get(TAG_DECISION))
        last_day: dt.date | None = None
        if want_days and not info.aliases and decided:  # a kept version's age does not matter
            try:
                snapshot = registry.load_document(info.run_id, EVIDENCE_DOCUMENT).get("snapshot", {})
                last_day = dt.date.fromisoformat(str(snapshot["last_day"])[:10])
                rows[info.data_md5] = int(snapshot.get("rows", 0))
            except (RetrainError, KeyError, ValueError, OSError):  # no evidence: its age is unknown, kept
                last_day = None
        snapshots.append(domain.VersionSnapshot(info.version, info.data_md5, last_day, info.aliases, decided))
    return snapshots, rows


def _serving(entries: Sequence[LedgerEntry]) -> str | None:
    """The champion the ledger's last move left (what a purge entry records, so the chain holds)."""
    moves = [entry for entry in entries if entry.kind in MOVES]
    return moves[-1].champion_after if moves else None


@contextlib.contextmanager
def _purge_locks(ledger_url: str, settings: Settings) -> Iterator[None]:
    model = settings.model.registered_name
    with (
        model_lock(ledger_url, f"{model}:training"),
        model_lock(ledger_url, model),
        model_lock(ledger_url, f"{model}:feedback"),
        data_lock(ledger_url, settings),
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
    """The workspace's training set as dvc.lock records it, when the file is there: (path, md5), or None."""
    try:
        recorded = datastore.output_md5(project, "training_set")
    except datastore.DataStoreError:
        return None
    path = Path(settings.dataset.training_set).as_posix()
    return (path, recorded[path]) if path in recorded and (project / path).is_file() else None


def _rollout_evidence(
    runtime: Runtime, entries: Sequence[LedgerEntry], stored: Sequence[domain.StoredFile]
) -> dict[str, str]:
    """Shown path -> why, for every stored predictions file a running rollout is judged on."""
    running = active_rollout(entries)
    if running is None:
        return {}
    why = f"scores of the running rollout of v{running.candidate}: its evidence until it ends"
    judged: set[Path] = set()
    for directory in predictions_dirs(runtime):
        judged |= set(evidence_files(running, directory))
    return {
        item.path: why
        for item in stored
        if item.kind == "predictions" and _place(item.path, runtime.project_dir).resolve() in judged
    }


def _entries(runtime: Runtime, model: str) -> list[LedgerEntry]:
    """The model's ledger, read without creating anything (a dry run writes nothing)."""
    url = runtime.ledger_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return []
    ledger = Ledger(url)
    try:
        return ledger.entries(model)
    finally:
        ledger.dispose()


def plan(
    runtime: Runtime,
    settings: Settings,
    registry: ModelRegistry,
    reason: str,
    today: dt.date,
    entries: Sequence[LedgerEntry] = (),
) -> tuple[domain.PurgePlan, domain.PurgeRecord]:
    """What a purge on ``today`` deletes and keeps, as the ledger would record it (md5s and rows read now)."""
    project, keep = runtime.project_dir, settings.retention
    snapshots, rows = _snapshots(registry, keep.snapshots_days is not None)
    workspace = _workspace_snapshot(project, settings)
    stored = stored_files(runtime, settings)
    in_use = _rollout_evidence(runtime, entries, stored)
    chosen = domain.plan_purge(stored, snapshots, keep, today, workspace=workspace, in_use=in_use)
    if chosen.snapshots and (project / ".dvc").is_dir():  # an earlier purge's snapshots are gone: not again
        wanted = [item.md5 for item in chosen.snapshots]
        gone = frozenset(wanted) - datastore.stored_objects(project, wanted)
        chosen = domain.plan_purge(stored, snapshots, keep, today, gone=gone, workspace=workspace, in_use=in_use)
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
            }
            for item in chosen.snapshots
        ),
        kept=tuple({**asdict(item), "text": item.text} for item in chosen.kept),
        versions=tuple(version for item in chosen.snapshots for version in item.versions),
    )
    return chosen, record


def _retrack(project: Path, settings: Settings, names: Mapping[str, set[str]]) -> set[str]:
    """Re-track (and push) each tracked directory whose pointer still names a file of ``names``
    (directory -> file names) that is gone; returns every md5 the pointers name afterwards."""
    used: set[str] = set()
    for tracked in (settings.dataset.batches, settings.dataset.quarantine):
        if not (project / f"{tracked}.dvc").is_file():
            continue  # not under DVC (files written by hand): nothing to re-track
        mine = names.get(Path(tracked).as_posix(), set())
        listed = datastore.tracked_files(project, tracked)  # None: its manifest is not in this cache
        stale = {
            name for name in (mine if listed is None else mine & set(listed)) if not (project / tracked / name).exists()
        }
        if stale and (project / tracked).is_dir():
            datastore.track(project, tracked)
            datastore.push(project, tracked)
            listed = datastore.tracked_files(project, tracked)
        used |= set((listed or {}).values())
    return used


def _names(record: domain.PurgeRecord) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for item in record.files:
        names.setdefault(Path(item.path).parent.as_posix(), set()).add(Path(item.path).name)
    return names


def _in_use(project: Path, settings: Settings, record: domain.PurgeRecord, keep: set[str]) -> set[str]:
    """md5s nothing may delete: what is kept, the workspace's training set, every tracked file, and
    every file of ``record`` back in the workspace (the same batch ingested again)."""
    used = set(keep) | _retrack(project, settings, _names(record))
    workspace = _workspace_snapshot(project, settings)
    if workspace is not None:
        used.add(workspace[1])
    for item in record.files:
        path = _place(item.path, project)
        if path.is_file() and datastore.file_md5(path) == item.md5:
            used.add(item.md5)
    return used


def _finish(
    project: Path, settings: Settings, earlier: domain.PurgeRecord, now: domain.PurgePlan
) -> dict[str, list[str]]:
    """Complete what a crash left of ``earlier`` (an older purge entry), and nothing else: objects of
    its files that are gone from the workspace and used by nothing, and its snapshots that today's
    plan ``now`` still deletes, each only while still stored. Never a file in the workspace."""
    doomed_snapshots = {item.md5 for item in now.snapshots}
    used = _in_use(project, settings, earlier, set(now.kept_md5s))
    candidates = [
        *(item.md5 for item in earlier.files if item.kind != "predictions" and item.md5 not in used),
        *(str(item["md5"]) for item in earlier.snapshots if str(item["md5"]) in doomed_snapshots),
    ]
    candidates = list(dict.fromkeys(candidates))
    if not candidates:
        return {}
    left = datastore.stored_objects(project, candidates)
    if not left:
        return {}
    return datastore.remove_objects(project, [md5 for md5 in candidates if md5 in left])


def _carry_out(
    project: Path, settings: Settings, record: domain.PurgeRecord, keep: set[str]
) -> tuple[list[str], dict[str, list[str]]]:
    """Make ``record`` (today's plan) true: its files out of the workspace, the tracked directories
    re-tracked and pushed, its objects out of the DVC cache and the remote, except ``keep`` and
    whatever a file that stays still uses. Returns the files it deleted and, per md5, where the object
    was deleted."""
    unlinked: list[str] = []
    for item in record.files:
        path = _place(item.path, project)
        if path.is_file() and datastore.file_md5(path) == item.md5:  # not a new file under the same name
            path.unlink()
            unlinked.append(item.path)
    used = _in_use(project, settings, record, keep)
    return unlinked, datastore.remove_objects(project, [md5 for md5 in record.md5s if md5 not in used])


def purge_message(settings: Settings, position: int | None, record: domain.PurgeRecord, finished: int | None) -> str:
    """The commit message of a purge: what it deleted and its ledger entry."""
    entry = f"ledger entry #{position}" if position is not None else f"finishing ledger entry #{finished}"
    return f"retrain purge: {settings.model.registered_name} {record.summary()} ({entry})"


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
    expected_plan: str | None = None,
    commit: bool = False,
) -> PurgeResult:
    """Delete what is past retention on ``today`` (default: today, UTC), recorded in the ledger first.

    ``dry_run``: only say what would go and what is kept; nothing is changed or recorded, nothing
    written. ``expected_plan``: the key of the plan a preview showed; anything else is refused
    (:class:`PlanChanged`). ``commit``: commit the rewritten DVC pointers to git, naming the entry.
    """
    project, model = runtime.project_dir, settings.model.registered_name
    today = today or dt.datetime.now(dt.UTC).date()
    if dry_run:
        _, record = plan(runtime, settings, registry, reason, today, _entries(runtime, model))
        return PurgeResult(model, True, record)
    versioning = datastore.remote_versioning(runtime.dvc_remote_url, runtime.dvc_remote_endpoint)
    if versioning is not None:
        raise RetrainError(
            f"the DVC remote {runtime.dvc_remote_url} is in a bucket whose versioning is {versioning}: a delete "
            "there only adds a delete marker and every version stays readable, so nothing was deleted. Purge "
            "needs a remote in a bucket that never had versioning (or a lifecycle rule of yours that expires "
            "noncurrent versions, outside Retrain)"
        )
    datastore.ensure_dvc_repo(project)
    datastore.configure_remote(
        project, runtime.dvc_remote_url, endpoint_url=runtime.dvc_remote_endpoint, encryption=runtime.s3_encryption
    )
    ledger = Ledger(runtime.ledger_url)
    try:
        with _purge_locks(runtime.ledger_url, settings):
            # an ingest a crash cut short puts back the pointers it found: undone first, never after a purge
            recover_interrupted_ingest(project, settings)
            entries = ledger.entries(model)
            chosen, record = plan(runtime, settings, registry, reason, today, entries)
            if expected_plan is not None and record.key != expected_plan:
                raise PlanChanged(
                    "what the purge would delete changed since it was shown (a batch arrived, a version moved, "
                    "the day turned): nothing was deleted; run `retrain purge` again to see what it deletes now"
                )
            finished: tuple[str, ...] = ()
            finished_entry: int | None = None
            earlier = domain.last_purge(entries)
            if earlier is not None:  # a crash may have cut it short: finish what is really left of it
                places = _finish(project, settings, earlier[1], chosen)
                done = {md5: where for md5, where in places.items() if where}
                if done:
                    finished = tuple(f"{md5} ({', '.join(where)})" for md5, where in done.items())
                    finished_entry = earlier[0].position
                    chosen, record = plan(runtime, settings, registry, reason, today, entries)
            position: int | None = None
            places = {}
            if not chosen.empty:
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
                _, places = _carry_out(project, settings, record, set(chosen.kept_md5s))
            committed = None
            if commit and (position is not None or finished_entry is not None):
                message = purge_message(settings, position, record, finished_entry)
                try:  # the purge is done and recorded either way; a refused commit says why, to redo by hand
                    committed = commit_data_versions(project, settings, message).summary
                except RetrainError as error:
                    committed = f"git: not committed ({error}); commit the data/*.dvc pointers by hand"
            return PurgeResult(model, False, record, position, finished, places, finished_entry, committed)
    finally:
        ledger.dispose()
