"""The ``_migrations`` table: one row per attempt to apply or roll back a migration.

Columns: ``seq`` (order of events), ``id``, ``direction`` (up/down), ``checksum``,
``outcome``, ``started_at`` (UTC, ISO 8601), ``applied_by`` (user@host), ``duration_ms``,
``statements_started``/``statements_done``/``statements_total`` and ``schema_before``
(the per-statement journal of engines without transactional DDL: the schema fingerprint
taken before the statement last started, when the engine offers one) and ``detail``
(what went wrong).

Outcomes: ``success``; ``running`` (a non-transactional migration in progress, or whose
process died); ``failed`` (could not be undone — needs ``migrate repair``); ``undone``
(failed, and its completed statements were reversed); ``repaired`` (a human resolved a
failure). On engines with transactional DDL a failed migration leaves no row at all.
"""

from __future__ import annotations

import functools
import getpass
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, Text, insert, select, update
from sqlalchemy.exc import NoSuchTableError, OperationalError, ProgrammingError
from sqlalchemy.schema import CreateTable

from dbkeeper.backups.manifest import format_time, utc_now

TABLE_NAME = "_migrations"
BROKEN = ("running", "failed")

_metadata = MetaData()
TABLE = Table(
    TABLE_NAME,
    _metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(255), nullable=False),
    Column("direction", String(4), nullable=False),
    Column("checksum", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("started_at", String(32), nullable=False),
    Column("applied_by", String(255), nullable=False),
    Column("duration_ms", Integer),
    Column("statements_started", Integer, nullable=False),
    Column("statements_done", Integer, nullable=False),
    Column("statements_total", Integer, nullable=False),
    Column("schema_before", String(64)),
    Column("detail", Text),
)


@dataclass(frozen=True)
class Event:
    """One row of the history."""

    seq: int
    id: str
    direction: str
    checksum: str
    outcome: str
    started_at: str
    applied_by: str
    duration_ms: int | None
    statements_started: int
    statements_done: int
    statements_total: int
    schema_before: str | None
    detail: str | None

    def as_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data."""
        return dict(self.__dict__)


@functools.cache
def whoami() -> str:
    """``user@host`` of this process, for ``applied_by``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def ensure_table(conn: Connection) -> None:
    """Create the history table unless it exists (safe when several processes race)."""
    conn.execute(CreateTable(TABLE, if_not_exists=True))


def read(conn: Connection, after: int = 0) -> list[Event]:
    """Events with ``seq`` greater than *after*, oldest first; no table yet means no events."""
    try:
        rows = conn.execute(select(TABLE).where(TABLE.c.seq > after).order_by(TABLE.c.seq)).all()
    except (NoSuchTableError, OperationalError, ProgrammingError):
        if _table_exists(conn):
            raise
        return []
    return [Event(**row._mapping) for row in rows]


def _table_exists(conn: Connection) -> bool:
    from sqlalchemy import inspect

    schema = conn.get_execution_options().get("schema_translate_map", {}).get(None)
    return inspect(conn).has_table(TABLE_NAME, schema=schema)


@dataclass
class State:
    """What the history says: applied migrations (their last successful ``up``) and broken ones.

    Fold events in with :meth:`add`, oldest first; ``seq`` is the last event seen, so
    that a long run reads only what is new (writers are serialised by the migration lock,
    so no event can appear below it later).
    """

    applied: dict[str, Event] = field(default_factory=dict)
    broken: dict[str, Event] = field(default_factory=dict)
    seq: int = 0

    def add(self, events: list[Event]) -> State:
        """Fold *events* into the state; returns it."""
        for event in events:
            self.seq = max(self.seq, event.seq)
            if event.outcome == "success":
                self.broken.pop(event.id, None)
                if event.direction == "up":
                    self.applied[event.id] = event
                else:
                    self.applied.pop(event.id, None)
            elif event.outcome in BROKEN:
                self.broken[event.id] = event
            else:  # undone, repaired
                self.broken.pop(event.id, None)
        return self

    def refresh(self, conn: Connection) -> State:
        """Read and fold the events recorded since the last one seen."""
        return self.add(read(conn, after=self.seq))


def record(conn: Connection, migration_id: str, direction: str, checksum: str, outcome: str, **fields: Any) -> int:
    """Append an event and return its ``seq``."""
    values = {
        "id": migration_id,
        "direction": direction,
        "checksum": checksum,
        "outcome": outcome,
        "started_at": format_time(utc_now()),
        "applied_by": whoami(),
        "statements_started": 0,
        "statements_done": 0,
        "statements_total": 0,
        **fields,
    }
    key = conn.execute(insert(TABLE).values(**values)).inserted_primary_key
    assert key is not None, "an INSERT reports the key it made"
    return int(key[0])


def amend(conn: Connection, seq: int, **fields: Any) -> None:
    """Change an event (the journal of a running migration, or its final outcome)."""
    conn.execute(update(TABLE).where(TABLE.c.seq == seq).values(**fields))
