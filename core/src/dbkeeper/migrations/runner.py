"""Running one migration: in a transaction where the engine allows, else journaled.

Transactional (SQLite, PostgreSQL): the statements and the history row commit together,
or nothing does. Journaled (MySQL/MariaDB DDL, ``no-transaction`` migrations): each
statement commits on its own, so the history row records, before and after every
statement, how far it got; on failure the completed statements are reversed with the
other part's statements (the down part is the up part's inverse, statement by statement,
in reverse order), and if that is impossible the migration is marked failed with the
statements that ran listed, until ``migrate repair``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from dbkeeper.connections.urls import error_line
from dbkeeper.errors import MigrationError
from dbkeeper.migrations import history
from dbkeeper.migrations.files import Migration
from dbkeeper.plugin.contract import FingerprintDialect, MigrationDialect


@dataclass(frozen=True)
class MigrationResult:
    """What happened to one migration.

    ``outcome`` is ``applied``, ``rolled back``, or ``recovered`` (a run interrupted
    earlier was settled; ``note`` says how).
    """

    id: str
    direction: str
    outcome: str
    statements: list[str]
    duration: float = 0.0
    note: str = ""


def statements_of(migration: Migration, direction: str, dialect: MigrationDialect) -> list[str]:
    """The statements of the up or down part, as the engine will run them."""
    script = migration.up if direction == "up" else migration.down
    if not script:
        raise MigrationError(f"migration {migration.id} has no down part ({migration.path}); it cannot be rolled back")
    return dialect.split(script)


def run_in_transaction(
    conn: Connection, migration: Migration, direction: str, statements: Sequence[str]
) -> MigrationResult:
    """Run the statements inside the caller's open transaction and record success there too."""
    started = time.perf_counter()
    for number, statement in enumerate(statements, start=1):
        try:
            conn.exec_driver_sql(statement)
        except SQLAlchemyError as error:
            raise MigrationError(
                f"migration {migration.id} ({direction}) failed at statement {number} of {len(statements)}: "
                f"{error_line(error)[:300]}; it was rolled back and nothing was recorded"
            ) from None
    duration = time.perf_counter() - started
    history.record(
        conn, migration.id, direction, migration.checksum, "success",
        duration_ms=round(duration * 1000), statements_started=len(statements),
        statements_done=len(statements), statements_total=len(statements),
    )  # fmt: skip
    return MigrationResult(migration.id, direction, _done(direction), list(statements), duration)


def _done(direction: str) -> str:
    return "applied" if direction == "up" else "rolled back"


def schema_fingerprint(conn: Connection, dialect: MigrationDialect) -> str | None:
    """The schema's fingerprint, or None when the dialect cannot take one (not a FingerprintDialect)."""
    return dialect.schema_fingerprint(conn) if isinstance(dialect, FingerprintDialect) else None


def run_journaled(
    conn: Connection, migration: Migration, direction: str, statements: Sequence[str], dialect: MigrationDialect
) -> MigrationResult:
    """Run statement by statement, each committed, with the journal kept in the history row."""
    started = time.perf_counter()
    seq = history.record(conn, migration.id, direction, migration.checksum, "running", statements_total=len(statements))
    for number, statement in enumerate(statements, start=1):
        history.amend(conn, seq, statements_started=number, schema_before=schema_fingerprint(conn, dialect))
        try:
            conn.exec_driver_sql(statement)
        except SQLAlchemyError as error:
            reason = f"statement {number} of {len(statements)} failed: {error_line(error)[:300]}"
            undo(conn, migration, direction, seq, done=number - 1, reason=reason, dialect=dialect)
        history.amend(conn, seq, statements_done=number)
    duration = time.perf_counter() - started
    history.amend(conn, seq, outcome="success", duration_ms=round(duration * 1000))
    return MigrationResult(migration.id, direction, _done(direction), list(statements), duration)


def inverse_statements(migration: Migration, direction: str, done: int, dialect: MigrationDialect) -> list[str] | None:
    """The statements that reverse the first *done* ones, or None when the file cannot say."""
    forward = dialect.split(migration.up if direction == "up" else migration.down)
    other = migration.down if direction == "up" else migration.up
    backward = dialect.split(other) if other else []
    if len(backward) != len(forward):
        return None
    return backward[len(backward) - done :] if done else []


def undo(
    conn: Connection, migration: Migration, direction: str, seq: int, *, done: int, reason: str,
    dialect: MigrationDialect,
) -> None:  # fmt: skip
    """Reverse the *done* completed statements of a failed journaled run, then raise.

    Raises MigrationError in every case: either the run was undone (the database is as
    before), or it could not be and the migration is now marked failed.
    """
    inverse = inverse_statements(migration, direction, done, dialect)
    ran = f"{_first(done)} of {migration.path.name} ran" if done else "no statement had completed"
    if inverse is None:
        _mark_failed(
            conn,
            migration,
            seq,
            reason,
            f"{ran}; the down part does not match the up part "
            "statement for statement, so they cannot be undone automatically",
        )
    for number, statement in enumerate(inverse, start=1):
        try:
            conn.exec_driver_sql(statement)
        except SQLAlchemyError as error:
            _mark_failed(
                conn,
                migration,
                seq,
                reason,
                f"{ran}; undoing them failed at inverse statement {number}: {error_line(error)[:300]}",
            )
    undone = "was undone" if done == 1 else "were undone"
    history.amend(conn, seq, outcome="undone", detail=f"{reason}; {ran} and {undone}")
    raise MigrationError(
        f"migration {migration.id} ({direction}) {reason}; {ran} and "
        f"{undone if done else 'nothing needed undoing'} — the database is as it was before"
    )


def _first(count: int) -> str:
    """``statement 1`` or ``statements 1-3``."""
    return "statement 1" if count == 1 else f"statements 1-{count}"


def _mark_failed(conn: Connection, migration: Migration, seq: int, reason: str, what: str) -> NoReturn:
    history.amend(conn, seq, outcome="failed", detail=f"{reason}; {what}")
    raise MigrationError(
        f"migration {migration.id} {reason}; {what}. Fix the database by hand, then run "
        "'dbkeeper migrate repair'; until then migrations will not run"
    )


def recover(conn: Connection, event: history.Event, migration: Migration | None, dialect: MigrationDialect) -> str:
    """Settle a journaled run whose process died (its event still says ``running``).

    Called under the migration lock, so that process is gone. When the journal shows
    where it stopped — between statements, or inside one whose effect the schema
    fingerprint reveals — the completed statements are undone and the migration is
    pending again; otherwise it is marked failed with what ran. Returns a one-line account.
    """
    label = f"migration {event.id} ({event.direction}) was interrupted"
    interrupted = "was interrupted"
    if migration is None or migration.checksum != event.checksum:
        detail = f"{label}; its file is missing or changed, so it cannot be undone"
        history.amend(conn, event.seq, outcome="failed", detail=detail)
        return detail
    done = event.statements_done
    if event.statements_started > done:
        now = schema_fingerprint(conn, dialect) if event.schema_before else None
        if now is None:
            detail = (
                f"{label} inside statement {event.statements_started}: "
                f"{_first(done) + ' ran' if done else 'no statement had completed'} and statement "
                f"{event.statements_started} may have; check the database, then run 'dbkeeper migrate repair'"
            )
            history.amend(conn, event.seq, outcome="failed", detail=detail)
            return detail
        if now != event.schema_before:
            done = event.statements_started
    try:
        undo(conn, migration, event.direction, event.seq, done=done, reason=f"{interrupted} after statement {done}",
             dialect=dialect)  # fmt: skip
    except MigrationError as outcome:
        return str(outcome)
    raise AssertionError("undo always raises")
