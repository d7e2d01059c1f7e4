"""The promotion ledger: every decision about which model serves, appended to a database table.

SQLite under the state dir by default, PostgreSQL (or any SQLAlchemy URL) when ``RETRAIN_LEDGER_URL``
says so. Append-only twice over: this module has no update or delete path, and the table carries
database triggers that abort any UPDATE or DELETE, so not even a hand-written SQL statement can
rewrite history.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain.domain.lifecycle import LedgerEntry

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine, Table

TABLE = "promotion_ledger"

# Every process that opens a ledger prepares its schema; on PostgreSQL they take turns (this key),
# since concurrent DROP/CREATE TRIGGER statements fail with "tuple concurrently updated".
_SCHEMA_LOCK_KEY = 0x7265747261696E  # "retrain"


def _guards(dialect: str, table: str, what: str) -> list[str]:
    """Triggers that abort any UPDATE or DELETE on ``table``: append-only even for hand-written SQL."""
    message = f"the {what} is append-only"
    if dialect == "postgresql":
        return [
            f"""CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$
                BEGIN RAISE EXCEPTION '{message}'; END; $$ LANGUAGE plpgsql""",
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
            f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION {table}_append_only()""",
        ]
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END",
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END",
        ]
    return []


def _guarded(connection: Connection, table: str) -> bool:
    """Whether PostgreSQL's append-only trigger on ``table`` is already in place."""
    from sqlalchemy import text

    found = connection.execute(text("SELECT 1 FROM pg_trigger WHERE tgname = :name"), {"name": f"{table}_append_only"})
    return found.first() is not None


def _add_new_columns(connection: Connection, table: Table) -> None:
    """Columns a newer Retrain added to a table an older one created: added, nullable (old rows
    have no value), never changed or dropped. Nothing to do for a table that has them all."""
    from sqlalchemy import inspect
    from sqlalchemy.schema import CreateColumn

    present = {column["name"] for column in inspect(connection).get_columns(table.name)}
    for column in table.columns:
        if column.name not in present and column.nullable:
            ddl = CreateColumn(column).compile(dialect=connection.dialect)
            connection.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")


def _prepare(engine: Engine, table: Table, what: str) -> None:
    """Create the table and its append-only triggers; a race with another process is retried."""
    from sqlalchemy import text
    from sqlalchemy.exc import DatabaseError

    for attempt in range(3):
        try:
            with engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    if _guarded(connection, table.name):
                        _add_new_columns(connection, table)
                        return  # a reader (people's role on the stack) may not create triggers, and need not
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
                table.metadata.create_all(connection)
                _add_new_columns(connection, table)
                for statement in _guards(engine.dialect.name, table.name, what):
                    connection.execute(text(statement))
            return
        except DatabaseError:  # another process created it between the check and the CREATE
            if attempt == 2:
                raise


def _table() -> Table:
    from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text

    return Table(
        TABLE,
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("recorded_at", DateTime(timezone=True), nullable=False),
        Column("model_name", String(200), nullable=False, index=True),
        Column("kind", String(40), nullable=False),
        Column("champion_before", String(40)),
        Column("challenger", String(40)),
        Column("champion_after", String(40)),
        Column("actor", String(200), nullable=False),
        Column("reviewers", Text, nullable=False),
        Column("comment", Text, nullable=False),
        Column("checks", Text, nullable=False),
        Column("flow_run_id", String(64)),
        Column("evidence", Text, nullable=False),
    )


def _create_engine(url: str) -> Engine:
    """An engine for the ledger's database; a SQLite file gets its directory first."""
    from sqlalchemy import create_engine

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url, future=True)


class Ledger:
    """Append and read promotion decisions; there is deliberately nothing else."""

    def __init__(self, url: str):
        self.url = url
        self._engine: Engine | None = None
        self._table = _table()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            engine = _create_engine(self.url)
            _prepare(engine, self._table, "promotion ledger")
            self._engine = engine
        return self._engine

    def append(self, entry: LedgerEntry) -> int:
        """Record one decision; returns its position in the ledger."""
        row = {
            "recorded_at": entry.recorded_at or dt.datetime.now(dt.UTC),
            "model_name": entry.model_name,
            "kind": entry.kind,
            "champion_before": entry.champion_before,
            "challenger": entry.challenger,
            "champion_after": entry.champion_after,
            "actor": entry.actor,
            "reviewers": json.dumps(list(entry.reviewers)),
            "comment": entry.comment,
            "checks": json.dumps(entry.checks),
            "flow_run_id": entry.flow_run_id,
            "evidence": json.dumps(entry.evidence, default=str),
        }
        with self.engine.begin() as connection:
            key = connection.execute(self._table.insert().values(**row)).inserted_primary_key
        if key is None:  # pragma: no cover - every supported database returns the new id
            raise RuntimeError("the ledger did not return the new entry's id")
        return int(key[0])

    def entries(self, model_name: str | None = None) -> list[LedgerEntry]:
        """Every decision, oldest first."""
        from sqlalchemy import select

        query = select(self._table).order_by(self._table.c.id)
        if model_name is not None:
            query = query.where(self._table.c.model_name == model_name)
        with self.engine.connect() as connection:
            return [_entry(dict(row._mapping)) for row in connection.execute(query)]

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _entry(row: dict[str, Any]) -> LedgerEntry:
    recorded = row["recorded_at"]
    if recorded.tzinfo is None:  # SQLite keeps naive datetimes; we always write UTC
        recorded = recorded.replace(tzinfo=dt.UTC)
    reviewers: Sequence[str] = json.loads(row["reviewers"])
    return LedgerEntry(
        position=row["id"],
        recorded_at=recorded,
        model_name=row["model_name"],
        kind=row["kind"],
        champion_before=row["champion_before"],
        challenger=row["challenger"],
        champion_after=row["champion_after"],
        actor=row["actor"],
        reviewers=tuple(reviewers),
        comment=row["comment"],
        checks=json.loads(row["checks"]),
        flow_run_id=row["flow_run_id"],
        evidence=json.loads(row["evidence"]),
    )


DECISIONS = "retraining_decisions"


def _decisions_table() -> Table:
    from sqlalchemy import Column, DateTime, Float, Integer, MetaData, String, Table, Text

    return Table(
        DECISIONS,
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("recorded_at", DateTime(timezone=True), nullable=False),
        Column("model_name", String(200), nullable=False, index=True),
        Column("champion", String(40)),
        Column("decision", String(20), nullable=False),
        Column("reasons", Text, nullable=False),
        Column("drift_share", Float),
        Column("batches", Text, nullable=False),
        Column("drift_run_id", String(64)),
        Column("data_time", DateTime(timezone=True)),  # newest row of the batches checked
        Column("signal", String(40)),  # which signal of the trigger decided (retrain.domain.drift)
        Column("baseline", Float),  # a performance drop: the champion's holdout metric it was measured against
    )


@dataclass(frozen=True)
class Trigger:
    """When an earlier decision to retrain was made, on both clocks (``data_time`` None for
    decisions recorded before Retrain stored it: the data clock then uses ``recorded_at``)."""

    recorded_at: dt.datetime
    data_time: dt.datetime | None

    def on(self, clock: str) -> dt.datetime:
        return self.data_time if clock == "data" and self.data_time is not None else self.recorded_at


@dataclass(frozen=True)
class DecisionRecord:
    position: int
    recorded_at: dt.datetime
    model_name: str
    champion: str | None
    decision: str
    reasons: tuple[str, ...]
    drift_share: float | None
    batches: tuple[str, ...]
    drift_run_id: str | None
    data_time: dt.datetime | None = None
    signal: str | None = None
    baseline: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recorded_at"] = self.recorded_at.isoformat()
        data["data_time"] = None if self.data_time is None else self.data_time.isoformat()
        return data


class DecisionLog:
    """Every retraining decision of the drift flow, appended under a table lock; append-only like
    the ledger (no update or delete path here, and database triggers refuse hand-written ones).

    Deciding and recording happen in one exclusive transaction (SQLite ``BEGIN IMMEDIATE``,
    PostgreSQL ``LOCK TABLE``), so ten drift checks at once see each other's decisions: exactly one
    of them can decide to retrain, the others record cooldown or in-flight.
    """

    def __init__(self, url: str):
        self.url = url
        self._engine: Engine | None = None
        self._table = _decisions_table()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from sqlalchemy import event

            engine = _create_engine(self.url)
            if engine.dialect.name == "sqlite":

                @event.listens_for(engine, "connect")
                def _manual_transactions(dbapi_connection: Any, _record: Any) -> None:
                    dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below decide

                @event.listens_for(engine, "begin")
                def _exclusive(connection: Any) -> None:
                    connection.exec_driver_sql("BEGIN IMMEDIATE")

            _prepare(engine, self._table, "decision log")
            self._engine = engine
        return self._engine

    def decide_and_record(
        self,
        model_name: str,
        decide: Callable[[list[Trigger]], tuple[str, Sequence[str]]],
        *,
        champion: str | None,
        drift_share: float | None,
        batches: Sequence[str],
        drift_run_id: str | None,
        data_time: dt.datetime | None = None,
        signal: str | None = None,
        baseline: float | None = None,
    ) -> DecisionRecord:
        """Call ``decide(earlier retrain triggers)`` and append its decision, atomically."""
        from sqlalchemy import select, text

        now = dt.datetime.now(dt.UTC)
        table = self._table
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text(f"LOCK TABLE {DECISIONS} IN SHARE ROW EXCLUSIVE MODE"))
            earlier = connection.execute(
                select(table.c.recorded_at, table.c.data_time).where(
                    (table.c.model_name == model_name) & (table.c.decision == "retrain")
                )
            )
            triggers = [Trigger(_utc(row[0]), None if row[1] is None else _utc(row[1])) for row in earlier]
            decision, reasons = decide(triggers)
            row = {
                "recorded_at": now,
                "model_name": model_name,
                "champion": champion,
                "decision": decision,
                "reasons": json.dumps(list(reasons)),
                "drift_share": drift_share,
                "batches": json.dumps(list(batches)),
                "drift_run_id": drift_run_id,
                "data_time": data_time,
                "signal": signal,
                "baseline": baseline,
            }
            key = connection.execute(table.insert().values(**row)).inserted_primary_key
        assert key is not None
        return DecisionRecord(
            int(key[0]),
            now,
            model_name,
            champion,
            decision,
            tuple(reasons),
            drift_share,
            tuple(batches),
            drift_run_id,
            data_time,
            signal,
            baseline,
        )

    def last_change(self, model_name: str, changes: Sequence[str]) -> tuple[dt.datetime, float | None] | None:
        """The data time and baseline of the newest decision to retrain that one of the ``changes``
        signals made (None if there was none)."""
        from sqlalchemy import select

        table = self._table
        query = (
            select(table.c.data_time, table.c.baseline)
            .where(
                (table.c.model_name == model_name)
                & (table.c.decision == "retrain")
                & table.c.signal.in_(changes)
                & table.c.data_time.is_not(None)
            )
            .order_by(table.c.data_time.desc(), table.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else (_utc(row[0]), row[1])

    def records(self, model_name: str | None = None) -> list[DecisionRecord]:
        from sqlalchemy import select

        query = select(self._table).order_by(self._table.c.id)
        if model_name is not None:
            query = query.where(self._table.c.model_name == model_name)
        with self.engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
        return [
            DecisionRecord(
                row["id"],
                _utc(row["recorded_at"]),
                row["model_name"],
                row["champion"],
                row["decision"],
                tuple(json.loads(row["reasons"])),
                row["drift_share"],
                tuple(json.loads(row["batches"])),
                row["drift_run_id"],
                None if row["data_time"] is None else _utc(row["data_time"]),
                row["signal"],
                row["baseline"],
            )
            for row in rows
        ]

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
