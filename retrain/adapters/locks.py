"""One lock per registered model, kept where the ledger lives, released when its holder dies.

Training (find-or-register), promotion (read champion → move aliases → append the ledger), rollback
and the doctor each hold it, so that one training key never registers two versions and the ledger
stays a chain. The lock lives beside the ledger because every process that writes the ledger can
already reach it: on the team stack that is PostgreSQL, shared by every worker and person.

* **PostgreSQL**: a session-level advisory lock (``pg_try_advisory_lock``) on a dedicated
  connection. The server drops it when the connection closes, so a killed holder frees it at once.
* **SQLite** (the embedded default): ``BEGIN IMMEDIATE`` on a lock table in a small database file of
  its own per model, next to the ledger file. The write lock is an OS file lock, released when the
  holding process dies. It is a separate file, not the ledger's own, because a write transaction
  held for a whole training would stall every other ledger and decision-log writer on that file.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from retrain.domain.errors import ServiceError

LOCK_TABLE = "model_locks"


class ModelLockTimeout(ServiceError):
    """Another process held the model's lock for longer than this one was willing to wait."""


def _say_nothing(message: str) -> None:
    """Default waiting hook."""


def advisory_key(model_name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock``, one per registered model name."""
    digest = hashlib.sha256(f"retrain.model-lock:{model_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def sqlite_lock_path(ledger_url: str, model_name: str) -> Path:
    """The per-model lock file beside a SQLite ledger file (``ledger.db`` → ``ledger.db.locks/…``)."""
    database = Path(ledger_url.removeprefix("sqlite:///"))
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_name)[:60]
    digest = hashlib.sha256(model_name.encode()).hexdigest()[:12]
    return database.parent / f"{database.name}.locks" / f"{slug}-{digest}.db"


@contextlib.contextmanager
def model_lock(
    ledger_url: str,
    model_name: str,
    *,
    wait_seconds: float = 3600.0,
    poll_seconds: float = 0.5,
    on_wait: Callable[[str], None] = _say_nothing,
) -> Iterator[None]:
    """Hold the lock of ``model_name`` for the ``with`` block; wait for it up to ``wait_seconds``.

    ``on_wait`` is told (once) that another process holds the lock, so a run can say why it waits.
    Not re-entrant: a process must not take the same model's lock twice.
    """
    if ledger_url.startswith("sqlite:///"):
        lock = _sqlite_lock(sqlite_lock_path(ledger_url, model_name), model_name, wait_seconds, poll_seconds, on_wait)
    elif ledger_url.startswith(("postgresql", "postgres")):
        lock = _postgres_lock(ledger_url, model_name, wait_seconds, poll_seconds, on_wait)
    else:
        raise ValueError(
            f"no cross-process model lock for ledger URL {ledger_url.split('://', maxsplit=1)[0]}://…: "
            "use a SQLite file or PostgreSQL for RETRAIN_LEDGER_URL"
        )
    with lock:
        yield


def _deadline_passed(started: float, wait_seconds: float, model_name: str) -> None:
    if time.monotonic() - started > wait_seconds:
        raise ModelLockTimeout(
            f"another training, promotion or rollback of model {model_name} held its lock for more than "
            f"{wait_seconds:.0f} s; try again when it has finished"
        )


@contextlib.contextmanager
def _sqlite_lock(
    path: Path, model_name: str, wait_seconds: float, poll_seconds: float, on_wait: Callable[[str], None]
) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=poll_seconds, isolation_level=None, check_same_thread=False)
    try:
        started = time.monotonic()
        told = False
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
                if not told:
                    on_wait(f"waiting for the lock of model {model_name}: another run holds it")
                    told = True
                _deadline_passed(started, wait_seconds, model_name)
        connection.execute(f"CREATE TABLE IF NOT EXISTS {LOCK_TABLE} (model_name TEXT PRIMARY KEY, taken_at REAL)")
        connection.execute(f"INSERT OR REPLACE INTO {LOCK_TABLE} VALUES (?, ?)", (model_name, time.time()))
        try:
            yield
        finally:
            connection.execute("ROLLBACK")  # the row is only a reason to hold the write lock
    finally:
        connection.close()


@contextlib.contextmanager
def _postgres_lock(
    url: str, model_name: str, wait_seconds: float, poll_seconds: float, on_wait: Callable[[str], None]
) -> Iterator[None]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    key = advisory_key(model_name)
    try:
        with engine.connect() as connection:
            started = time.monotonic()
            told = False
            while not connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
                if not told:
                    on_wait(f"waiting for the lock of model {model_name}: another run holds it")
                    told = True
                _deadline_passed(started, wait_seconds, model_name)
                time.sleep(poll_seconds)
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        engine.dispose()
