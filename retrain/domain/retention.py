"""Retention: which stored data is past its time, and which must stay because a model needs it.

Pure selection, no IO: :func:`plan_purge` gets what is stored (files with their own dates, the
training snapshots of the registered versions) and ``retention:`` of params.yaml, and returns what a
purge deletes and what it keeps, each with its reason. ``retrain purge``
(:mod:`retrain.application.retention`) gathers the inputs, records the plan in the ledger and deletes.

The clock: a file's age is counted in whole days from its *own* date (the newest valid value of the
time column in it, else the day the file was last written) to ``today`` (UTC); a training
snapshot's from the newest day of data it holds (its evidence's ``last_day``). A file whose age is
more than the kind's ``*_days`` is past retention (``0``: anything older than today). The data's own
date, not when it arrived: a batch back-filled today with last year's rows is a year old.

What is never deleted: the snapshot of a version that holds ``champion`` or ``previous-champion``
(``retrain reproduce`` rebuilds it from that data, and a rollback may make the previous champion serve
again), nor of one that holds ``challenger`` or ``candidate`` (it may become champion at any moment);
such a snapshot is kept whatever its age, and the purge names it and why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from retrain.domain.lifecycle import CANDIDATE, CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, LedgerEntry
from retrain.domain.settings import RetentionSettings

FileKind = Literal["batch", "quarantine", "predictions"]

#: The reason a purge records when none is given, and the one of the scheduled deployment.
DEFAULT_REASON: Final = "retention"
SCHEDULED_REASON: Final = "scheduled retention"

#: Aliases whose holder's training data must stay, with why (shown by the purge).
_KEEPING_ALIASES: Final = (
    (CHAMPION, "reproduce"),
    (PREVIOUS_CHAMPION, "reproduce, and a rollback may make it serve again"),
    (CANDIDATE, "rolling out: it may become champion"),
    (CHALLENGER, "waiting for review: it may become champion"),
)


@dataclass(frozen=True)
class StoredFile:
    """One data file in the workspace: its kind, where it is (as the purge shows it) and its own day."""

    kind: FileKind
    path: str
    day: dt.date


@dataclass(frozen=True)
class VersionSnapshot:
    """The training snapshot one registered version was made from (its evidence)."""

    version: str
    md5: str
    last_day: dt.date | None  # None: the evidence does not say (then only its md5 is known; never past)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class SnapshotPurge:
    """A snapshot past retention: its md5 and the versions whose data it was."""

    md5: str
    versions: tuple[str, ...]
    last_day: dt.date


@dataclass(frozen=True)
class Kept:
    """A snapshot a purge never deletes, and why; ``text`` is what the purge says."""

    md5: str
    version: str
    alias: str
    why: str

    @property
    def text(self) -> str:
        return f"snapshot {self.md5} for {self.alias} v{self.version} ({self.why})"


@dataclass(frozen=True)
class PurgePlan:
    """What a purge deletes (files, snapshots) and the snapshots it keeps whatever their age, and why."""

    files: tuple[StoredFile, ...] = ()
    snapshots: tuple[SnapshotPurge, ...] = ()
    kept: tuple[Kept, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.files and not self.snapshots

    @property
    def kept_md5s(self) -> frozenset[str]:
        return frozenset(item.md5 for item in self.kept)


def age_days(day: dt.date, today: dt.date) -> int:
    return (today - day).days


def past(day: dt.date, keep_days: int | None, today: dt.date) -> bool:
    """Whether data dated ``day`` is past a retention of ``keep_days`` (None: never)."""
    return keep_days is not None and age_days(day, today) > keep_days


def keep_days(retention: RetentionSettings, kind: FileKind) -> int | None:
    return {
        "batch": retention.batches_days,
        "quarantine": retention.quarantine_days,
        "predictions": retention.predictions_days,
    }[kind]


def protected(snapshots: Iterable[VersionSnapshot]) -> dict[str, Kept]:
    """md5 -> why it must stay, for every snapshot a version holding a keeping alias was made from."""
    kept: dict[str, Kept] = {}
    for alias, why in _KEEPING_ALIASES:
        for snapshot in snapshots:
            if alias in snapshot.aliases and snapshot.md5 not in kept:
                kept[snapshot.md5] = Kept(snapshot.md5, snapshot.version, alias, why)
    return kept


def plan_purge(
    files: Sequence[StoredFile],
    snapshots: Sequence[VersionSnapshot],
    retention: RetentionSettings,
    today: dt.date,
    *,
    gone: frozenset[str] = frozenset(),
) -> PurgePlan:
    """What is past retention on ``today``, and what is kept whatever its age.

    ``kept`` names every snapshot a keeping alias protects, past retention or not: the rows of a batch
    a purge deletes may live on in it, and the record says so. ``gone``: snapshot md5s no longer
    stored anywhere (an earlier purge took them); they are not deleted (nor recorded) again. Files are
    listed oldest first; snapshots by md5, each with every version made from it.
    """
    doomed_files = sorted(
        (item for item in files if past(item.day, keep_days(retention, item.kind), today)),
        key=lambda item: (item.day, item.kind, item.path),
    )
    keep = protected(snapshots)
    by_md5: dict[str, list[VersionSnapshot]] = {}
    for snapshot in snapshots:
        by_md5.setdefault(snapshot.md5, []).append(snapshot)
    doomed: list[SnapshotPurge] = []
    for md5, made in sorted(by_md5.items()):
        days = [item.last_day for item in made if item.last_day is not None]
        if md5 in keep or md5 in gone or not days or not past(max(days), retention.snapshots_days, today):
            continue
        versions = tuple(sorted((item.version for item in made), key=_version_order))
        doomed.append(SnapshotPurge(md5, versions, max(days)))
    return PurgePlan(tuple(doomed_files), tuple(doomed), tuple(keep.values()))


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (0, version)


# --- what the ledger keeps of a purge ---------------------------------------------------------------

#: The evidence key of a purge entry, and the kind of its ledger entry.
PURGE_KEY: Final = "purge"
PURGE_KIND: Final = "purge"


@dataclass(frozen=True)
class DeletedFile:
    """A file as the purge's ledger entry records it."""

    kind: FileKind
    path: str
    day: str
    md5: str
    rows: int | None
    bytes: int


@dataclass(frozen=True)
class PurgeRecord:
    """The evidence of a purge entry: everything it deleted and kept, and the retention it applied."""

    reason: str
    today: str
    retention: dict[str, int | None]
    files: tuple[DeletedFile, ...] = ()
    snapshots: tuple[dict[str, Any], ...] = ()  # md5, versions, last_day, rows
    kept: tuple[dict[str, str], ...] = ()  # md5, version, alias, why, text
    versions: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("files", "snapshots", "kept", "versions"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PurgeRecord:
        return cls(
            reason=str(raw.get("reason", "")),
            today=str(raw.get("today", "")),
            retention=dict(raw.get("retention", {})),
            files=tuple(DeletedFile(**item) for item in raw.get("files", ())),
            snapshots=tuple(dict(item) for item in raw.get("snapshots", ())),
            kept=tuple(dict(item) for item in raw.get("kept", ())),
            versions=tuple(str(item) for item in raw.get("versions", ())),
        )

    @property
    def md5s(self) -> list[str]:
        """Every object this purge deleted (files, then snapshots), each once."""
        seen = dict.fromkeys([item.md5 for item in self.files] + [str(item["md5"]) for item in self.snapshots])
        return list(seen)

    def summary(self) -> str:
        parts = []
        for kind in ("batch", "quarantine", "predictions"):
            count = sum(1 for item in self.files if item.kind == kind)
            if count:
                parts.append(f"{count} {kind} file{'s' if count > 1 else ''}")
        if self.snapshots:
            versions = ", ".join(f"v{version}" for version in self.versions)
            parts.append(f"{len(self.snapshots)} training snapshot(s) ({versions})")
        return "deleted " + (", ".join(parts) or "nothing")


def purge_record_of(entry: LedgerEntry) -> PurgeRecord | None:
    """The purge a ledger entry records, or None for every other entry."""
    raw = entry.evidence.get(PURGE_KEY) if entry.kind == PURGE_KIND and isinstance(entry.evidence, dict) else None
    return PurgeRecord.from_dict(raw) if isinstance(raw, Mapping) else None


@dataclass(frozen=True)
class SnapshotGone:
    """When and by whom a snapshot was purged (for ``retrain reproduce``)."""

    md5: str
    on: str
    by: str
    reason: str
    position: int | None

    def sentence(self, version: str) -> str:
        return (
            f"the data of v{version} (snapshot {self.md5}) was purged on {self.on} by {self.by} ({self.reason}): "
            f"it can no longer be rebuilt; see `retrain history` (ledger entry #{self.position})"
        )


def purged_snapshots(entries: Sequence[LedgerEntry]) -> dict[str, SnapshotGone]:
    """md5 -> the first purge that deleted it, from a model's ledger (oldest first)."""
    gone: dict[str, SnapshotGone] = {}
    for entry in entries:
        record = purge_record_of(entry)
        if record is None:
            continue
        on = entry.recorded_at.date().isoformat() if entry.recorded_at is not None else record.today
        for item in record.snapshots:
            md5 = str(item["md5"])
            gone.setdefault(md5, SnapshotGone(md5, on, entry.actor, record.reason, entry.position))
    return gone


def last_purge(entries: Sequence[LedgerEntry]) -> tuple[LedgerEntry, PurgeRecord] | None:
    """The newest purge entry (the only one a crash may have left unfinished) and its record."""
    for entry in reversed(entries):
        record = purge_record_of(entry)
        if record is not None:
            return entry, record
    return None


def _size(rows: object) -> str:
    return "rows unknown" if rows is None else f"{rows} rows"


def record_lines(record: PurgeRecord, dry_run: bool = False) -> list[str]:
    """What a purge deletes and keeps, one line each, as ``retrain purge`` and its artifact say it."""
    verb = "would delete" if dry_run else "deleted"
    days = ", ".join(
        f"{key.removesuffix('_days')} {'forever' if value is None else f'{value} d'}"
        for key, value in record.retention.items()
    )
    lines = [f"retention on {record.today} (UTC): {days}"]
    lines += [
        f"{verb}: {item.path} ({item.kind} of {item.day}, {_size(item.rows)}, md5 {item.md5})" for item in record.files
    ]
    for item in record.snapshots:
        versions = ", ".join(f"v{version}" for version in item.get("versions", ()))
        where = f"; the workspace's {item['workspace']}" if item.get("workspace") else ""
        lines.append(
            f"{verb}: snapshot {item['md5']} of {versions} (newest day {item.get('last_day')}, "
            f"{_size(item.get('rows'))}{where})"
        )
    lines += [f"kept: {item.get('text', item.get('md5'))}" for item in record.kept]
    return lines
