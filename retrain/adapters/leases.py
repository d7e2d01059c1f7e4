"""Run leases: one row per live flow run in the ledger's database, refreshed while its process lives.

A process that dies (SIGKILL, OOM, power loss) stops refreshing, so its lease expires within
``lease.seconds``; whoever looks next (``retrain doctor``, the start of any flow) can then tell a
zombie from a run that is really in flight. The table lives beside the ledger (SQLite by default,
PostgreSQL on the team stack) because both the person's shell and the worker already reach it.
Times are stored as UTC epoch seconds (a float), which compares the same on every database.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retrain.adapters.ledger import _create_engine

if TYPE_CHECKING:
    from sqlalchemy import Engine, Table


@dataclass(frozen=True)
class Lease:
    """Who holds a flow run, and until when the holder is presumed alive."""

    flow_run_id: str
    flow_name: str
    project_dir: str
    host: str
    pid: int
    refreshed_at: float
    expires_at: float

    def expired(self, now: float) -> bool:
        return now >= self.expires_at


def _table() -> Table:
    from sqlalchemy import Column, Float, Integer, MetaData, String, Table

    return Table(
        "run_leases",
        MetaData(),
        Column("flow_run_id", String(64), primary_key=True),
        Column("flow_name", String(64), nullable=False),
        Column("project_dir", String(1024), nullable=False),
        Column("host", String(255), nullable=False),
        Column("pid", Integer, nullable=False),
        Column("refreshed_at", Float, nullable=False),
        Column("expires_at", Float, nullable=False),
    )


class LeaseStore:
    """Take, refresh, release and read run leases; each call is one short transaction."""

    def __init__(self, url: str):
        self.url = url
        self._engine: Engine | None = None
        self._table = _table()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from sqlalchemy.exc import DatabaseError

            engine = _create_engine(self.url)
            try:
                self._table.metadata.create_all(engine)
            except DatabaseError:  # another process created it between the check and the CREATE
                self._table.metadata.create_all(engine)
            self._engine = engine
        return self._engine

    def take(self, flow_run_id: str, flow_name: str, project_dir: str, seconds: float) -> Lease:
        """Hold ``flow_run_id`` for ``seconds`` from now (a retried run takes its own lease over)."""
        now = time.time()
        lease = Lease(flow_run_id, flow_name, project_dir, socket.gethostname(), os.getpid(), now, now + seconds)
        with self.engine.begin() as connection:
            connection.execute(self._table.delete().where(self._table.c.flow_run_id == flow_run_id))
            connection.execute(self._table.insert().values(**lease.__dict__))
        return lease

    def refresh(self, flow_run_ids: list[str], seconds: float) -> None:
        """Push the expiry of the given leases ``seconds`` past now."""
        if not flow_run_ids:
            return
        now = time.time()
        query = (
            self._table.update()
            .where(self._table.c.flow_run_id.in_(flow_run_ids))
            .values(refreshed_at=now, expires_at=now + seconds)
        )
        with self.engine.begin() as connection:
            connection.execute(query)

    def release(self, flow_run_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(self._table.delete().where(self._table.c.flow_run_id == flow_run_id))

    def leases(self) -> dict[str, Lease]:
        """Every lease held or left behind, by flow run id."""
        from sqlalchemy import select

        with self.engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(select(self._table))]
        return {str(row["flow_run_id"]): _lease(row) for row in rows}

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _lease(row: dict[str, Any]) -> Lease:
    return Lease(
        flow_run_id=str(row["flow_run_id"]),
        flow_name=str(row["flow_name"]),
        project_dir=str(row["project_dir"]),
        host=str(row["host"]),
        pid=int(row["pid"]),
        refreshed_at=float(row["refreshed_at"]),
        expires_at=float(row["expires_at"]),
    )
