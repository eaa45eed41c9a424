"""The swap of a restore into its target, journaled on the server so that the target ends whole.

A restore works in three databases on the target's server, named with one random token:

- ``dbkeeper_restore_<token>``: staging, where the backup's tables are loaded and checked;
- ``dbkeeper_replaced_<token>``: where a whole ``--force`` restore moves the target's old tables;
- ``dbkeeper_restore_<token>_journal``: the journal — table ``plan`` (the target, what it held,
  and the scripts that create its triggers, views, routines and events either way) and one
  empty marker table whose name is the phase: ``pending``, ``swapped`` or ``done``.

The journal is created first and dropped last. The restoring process holds the user lock
(``GET_LOCK``) named after the staging database on a connection of its own for as long as
it works; the server frees it when that connection ends, however the process died — that
is how a later run tells a dead restore's leftovers from a running restore.

The phase changes from ``pending`` to ``swapped`` inside the very ``RENAME TABLE`` that swaps
the tables (one atomic statement), so the journal says exactly whether the swap happened.
Settling a restore whose process is gone:

- ``pending``: the target still holds its old tables. Any of its old triggers that were
  dropped (a table with triggers cannot move to another database) are created again from
  the journal's script, all of them in their order: the target is the old database.
- ``swapped``: the target holds the new tables. Staged tables not moved yet (a selective
  restore) are moved; the old and new triggers, views, routines and events are dropped by
  name and the backup's script for them runs again: the target is the new database, whole.
- ``done``, or no plan recorded yet: only the working databases are left to drop.

Before the swap, the target's tables are locked (``LOCK TABLES … WRITE``) under
``lock_wait_timeout``, so that a session holding them is found, and named, before anything
changes; the old triggers are dropped under that lock, which is released just before the
``RENAME TABLE``. Every connection here waits for metadata locks at most
``lock_wait_timeout`` (the server's default is a day).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dbkeeper.plugin import DatabaseError, error_line, note
from dbkeeper_mysql.catalog import Inventory, drop_programs, inventory, q, query
from dbkeeper_mysql.load import PythonLoader
from dbkeeper_mysql.server import MAX_TIMEOUT, ServerTarget, admin_connection
from dbkeeper_mysql.sqltext import shown

if TYPE_CHECKING:
    import pymysql

STAGING_PREFIX = "dbkeeper_restore_"
REPLACED_PREFIX = "dbkeeper_replaced_"
JOURNAL_SUFFIX = "_journal"
PENDING, SWAPPED, DONE = "pending", "swapped", "done"
LOCK_WAIT_TIMEOUT = 1205
OWN_TARGET_WAIT = 10
"""Seconds a restore waits for the connection of an earlier restore into the same target to end."""
_WORKING = re.compile(rf"^(?:{STAGING_PREFIX}|{REPLACED_PREFIX})([0-9a-f]{{8}})(?:{JOURNAL_SUFFIX})?$")


@dataclass(frozen=True)
class Workspace:
    """The names of one restore's working databases and of its user lock."""

    token: str

    @classmethod
    def new(cls) -> Workspace:
        """Fresh names."""
        return cls(os.urandom(4).hex())

    @property
    def staging(self) -> str:
        """Where the tables are loaded."""
        return STAGING_PREFIX + self.token

    @property
    def replaced(self) -> str:
        """Where a whole restore moves the target's old tables."""
        return REPLACED_PREFIX + self.token

    @property
    def journal(self) -> str:
        """Where the plan and the phase are kept."""
        return STAGING_PREFIX + self.token + JOURNAL_SUFFIX

    @property
    def lock(self) -> str:
        """The user lock the restoring process holds while it works."""
        return self.staging


@dataclass(frozen=True)
class Plan:
    """What a swap changes, recorded in the journal before anything in the target changes."""

    target: str
    selective: bool
    created: bool
    """The target database did not exist: undoing the restore drops it again (when empty)."""
    old: Inventory
    """The target's triggers, views, routines and events the restore replaces."""
    new: Inventory
    """The triggers, views, routines and events the backup's script creates."""
    old_triggers: bytes
    """A script creating the target's old triggers again, in their order."""
    programs: bytes
    """The backup's script (header, triggers, views, routines, events) to run in the target."""

    def rows(self) -> list[tuple[str, bytes]]:
        """The journal's ``plan`` rows."""
        facts = {"target": self.target, "selective": self.selective, "created": self.created,
                 "old": self.old.to_json(), "new": self.new.to_json()}  # fmt: skip
        return [("facts", json.dumps(facts).encode()), ("old_triggers", self.old_triggers),
                ("programs", self.programs)]  # fmt: skip

    @classmethod
    def from_rows(cls, rows: dict[str, bytes]) -> Plan:
        """Read what :meth:`rows` wrote."""
        facts = json.loads(rows["facts"])
        return cls(facts["target"], facts["selective"], facts["created"], Inventory.from_json(facts["old"]),
                   Inventory.from_json(facts["new"]), rows["old_triggers"], rows["programs"])  # fmt: skip


class Journal:
    """One restore's working databases and journal on the server; see the module docstring."""

    def __init__(self, target: ServerTarget, workspace: Workspace) -> None:
        self.target = target
        self.workspace = workspace

    # -- the restoring process ---------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def opened(cls, target: ServerTarget, defaults: str, worker: pymysql.connections.Connection) -> Iterator[Journal]:
        """Create the journal and staging databases under this process's lock; settle them at the end.

        On an error or an interruption, *worker* (the connection doing the swap) is killed
        first, so no statement of it still runs, then the restore is settled: undone, or
        finished if its swap had already happened.
        """
        journal = cls(target, Workspace.new())
        with closing(target.connect()) as holder:
            for conn in (holder, worker):
                bounded(conn, target)
                query(conn, f"SET SESSION wait_timeout = {MAX_TIMEOUT}")  # idle while tables load, for hours maybe
            journal._begin(holder, defaults)
            try:
                yield journal
            except BaseException:
                with contextlib.suppress(Exception):
                    query(holder, f"KILL CONNECTION {int(worker.thread_id())}")  # type: ignore[no-untyped-call]  # types-PyMySQL leaves thread_id() unannotated
                with contextlib.suppress(Exception):
                    journal.settle(holder)
                raise
            journal.drop_working(holder)

    def _begin(self, holder: pymysql.connections.Connection, defaults: str) -> None:
        ((locked,),) = query(holder, "SELECT GET_LOCK(%s, 0)", (self.workspace.lock,))
        if locked != 1:
            raise DatabaseError(f"the working lock {self.workspace.lock!r} is taken; try again")
        ws = self.workspace
        try:
            query(holder, f"CREATE DATABASE {q(ws.journal)}")
            query(holder, f"CREATE TABLE {q(ws.journal)}.plan (name VARCHAR(32) PRIMARY KEY, value LONGBLOB NOT NULL)")
            query(holder, f"CREATE TABLE {q(ws.journal)}.{PENDING} (phase INT)")
            query(holder, f"CREATE DATABASE {q(ws.staging)} {defaults}")
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.drop_working(holder)
            raise DatabaseError(
                f"cannot create the working databases {shown(ws.journal)} and {shown(ws.staging)}: {error_line(exc)} — "
                f"the restoring user needs all privileges on databases named {STAGING_PREFIX}… and "
                f"{REPLACED_PREFIX}… (see docs/mysql.md)"
            ) from None

    def record(self, conn: pymysql.connections.Connection, plan: Plan) -> None:
        """Write the plan (before anything in the target changes)."""
        for name, value in plan.rows():
            query(conn, f"INSERT INTO {q(self.workspace.journal)}.plan VALUES (%s, %s)", (name, value))

    def swap(self, conn: pymysql.connections.Connection, plan: Plan,
             committing: Callable[[], AbstractContextManager[None]]) -> None:  # fmt: skip
        """Make the target the new database: lock its tables (bounded), then swap inside *committing*."""
        bounded(conn, self.target)
        old = inventory(conn, plan.target)
        staged = _staged(conn, self)
        tables = [] if old is None else sorted(set(old.tables) & staged) if plan.selective else old.tables
        query(conn, f"CREATE DATABASE IF NOT EXISTS {q(plan.target)} {_defaults_of(conn, self.workspace.staging)}")
        if tables and not plan.selective:
            query(conn, f"CREATE DATABASE IF NOT EXISTS {q(self.workspace.replaced)}")
        self._lock_tables(conn, plan.target, tables)
        with committing():
            if plan.selective:
                query(conn, "UNLOCK TABLES")
                self._move_marker(conn, PENDING, SWAPPED)
            else:
                self._swap_whole(conn, plan, tables, sorted(staged))
            try:
                self.roll_forward(conn, plan)
            except DatabaseError as exc:
                self._move_marker(conn, SWAPPED, DONE)
                raise DatabaseError(
                    f"the tables were restored into {shown(plan.target)}, but creating its triggers, views, routines "
                    f"or events failed: {exc}"
                ) from None
            self._move_marker(conn, SWAPPED, DONE)

    def _swap_whole(
        self, conn: pymysql.connections.Connection, plan: Plan, tables: list[str], staged: list[str]
    ) -> None:
        """Drop the old triggers (the tables still locked), then one RENAME: old out, new in, phase ``swapped``."""
        ws = self.workspace
        moves = [f"{q(plan.target)}.{q(name)} TO {q(ws.replaced)}.{q(name)}" for name in tables]
        moves += [f"{q(ws.staging)}.{q(name)} TO {q(plan.target)}.{q(name)}" for name in staged]
        moves.append(f"{q(ws.journal)}.{PENDING} TO {q(ws.journal)}.{SWAPPED}")
        try:
            drop_programs(conn, plan.target, Inventory(triggers=plan.old.triggers))
            query(conn, "UNLOCK TABLES")
            query(conn, "RENAME TABLE " + ", ".join(moves))
        except Exception as exc:
            failure = (
                self._lock_error(conn, plan.target)
                if _code(exc) == LOCK_WAIT_TIMEOUT
                else DatabaseError(f"swapping the restored tables into {shown(plan.target)} failed: {error_line(exc)}")
            )
            raise self._undone(conn, plan, failure) from None

    def _undone(self, conn: pymysql.connections.Connection, plan: Plan, failure: DatabaseError) -> DatabaseError:
        """*failure*, after the swap was rolled back; or saying when the rollback itself must wait."""
        try:
            query(conn, "UNLOCK TABLES")
            self.roll_back(conn, plan)
        except Exception as exc:
            return DatabaseError(
                f"{failure}; creating the target's triggers again failed too ({error_line(exc)}): the next restore on "
                "this server creates them"
            )
        return failure

    def _lock_tables(self, conn: pymysql.connections.Connection, database: str, tables: list[str]) -> None:
        """``LOCK TABLES … WRITE`` on the tables the swap replaces: whoever holds them is named before any change."""
        if not tables:
            return
        try:
            query(conn, "LOCK TABLES " + ", ".join(f"{q(database)}.{q(name)} WRITE" for name in tables))
        except Exception as exc:
            if _code(exc) == LOCK_WAIT_TIMEOUT:
                raise self._lock_error(conn, database) from None
            raise

    def _lock_error(self, conn: pymysql.connections.Connection, database: str) -> DatabaseError:
        seconds = self.target.timeouts.lock_wait
        holders = blocking_sessions(conn, database)
        who = ", ".join(holders[:3]) if holders else (
            "another session (SHOW PROCESSLIST names it; the sessions of other users are listed only with the "
            "PROCESS privilege)"
        )  # fmt: skip
        return DatabaseError(
            f"the tables of {shown(database)} are in use: waited {seconds} s (lock_wait_timeout) for {who}; the "
            "target was not changed — end that transaction or LOCK TABLES, or raise ?lock_wait_timeout= in the URL, "
            "and restore again"
        )

    # -- settling (the restoring process on failure, or a later run) -------------------

    def phase(self, conn: pymysql.connections.Connection) -> str | None:
        """``pending``, ``swapped`` or ``done``; None when there is no journal."""
        names = {
            str(name)
            for (name,) in query(
                conn, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
                (self.workspace.journal,),
            )
        }  # fmt: skip
        return next((phase for phase in (DONE, SWAPPED, PENDING) if phase in names), None)

    def plan(self, conn: pymysql.connections.Connection) -> Plan | None:
        """The recorded plan, or None when the restore died before recording it."""
        try:
            rows = dict(query(conn, f"SELECT name, value FROM {q(self.workspace.journal)}.plan"))
        except Exception:
            return None
        return Plan.from_rows(rows) if {"facts", "old_triggers", "programs"} <= set(rows) else None

    def settle(self, conn: pymysql.connections.Connection) -> tuple[Plan | None, str | None]:
        """Undo or finish the restore as its phase says, then drop the working databases; return plan and phase."""
        phase, plan = self.phase(conn), self.plan(conn)
        if plan is not None and phase == PENDING:
            self.roll_back(conn, plan)
        elif plan is not None and phase == SWAPPED:
            self.roll_forward(conn, plan)
            self._move_marker(conn, SWAPPED, DONE)
        self.drop_working(conn)
        return plan, phase

    def roll_back(self, conn: pymysql.connections.Connection, plan: Plan) -> None:
        """The target as it was: its old triggers again, all of them in their order; a database made for it dropped."""
        present = inventory(conn, plan.target)
        if present is None:
            return
        if set(plan.old.triggers) - set(present.triggers):
            drop_programs(conn, plan.target, Inventory(triggers=plan.old.triggers))
            PythonLoader(self.target).load(plan.target, io.BytesIO(plan.old_triggers))
        if plan.created and present.empty:
            query(conn, f"DROP DATABASE IF EXISTS {q(plan.target)}")

    def roll_forward(self, conn: pymysql.connections.Connection, plan: Plan) -> None:
        """The target as the backup has it: staged tables moved in, its programs made again from the backup's script."""
        if staged := sorted(_staged(conn, self)):
            present = inventory(conn, plan.target) or Inventory()
            for name in set(staged) & set(present.views):
                query(conn, f"DROP VIEW {q(plan.target)}.{q(name)}")
            if old := sorted(set(staged) & set(present.tables)):
                query(conn, "DROP TABLE " + ", ".join(f"{q(plan.target)}.{q(name)}" for name in old))
            moves = [f"{q(self.workspace.staging)}.{q(name)} TO {q(plan.target)}.{q(name)}" for name in staged]
            query(conn, "RENAME TABLE " + ", ".join(moves))
        drop_programs(conn, plan.target, plan.old | plan.new)
        if plan.programs:
            PythonLoader(self.target).load(plan.target, io.BytesIO(plan.programs))

    def _move_marker(self, conn: pymysql.connections.Connection, old: str, new: str) -> None:
        journal = q(self.workspace.journal)
        query(conn, f"RENAME TABLE {journal}.{old} TO {journal}.{new}")

    def drop_working(self, conn: pymysql.connections.Connection) -> None:
        """Drop the replaced and staging databases, then the journal."""
        ws = self.workspace
        for name in (ws.replaced, ws.staging, ws.journal):
            query(conn, f"DROP DATABASE IF EXISTS {q(name)}")


def bounded(conn: pymysql.connections.Connection, target: ServerTarget) -> None:
    """Make *conn* wait for metadata locks at most the URL's ``lock_wait_timeout``."""
    query(conn, f"SET SESSION lock_wait_timeout = {target.timeouts.lock_wait}")


def _staged(conn: pymysql.connections.Connection, journal: Journal) -> set[str]:
    """The tables still in staging."""
    contents = inventory(conn, journal.workspace.staging)
    return set(contents.tables) if contents else set()


def _defaults_of(conn: pymysql.connections.Connection, database: str) -> str:
    ((charset, collation),) = query(
        conn,
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
        "WHERE SCHEMA_NAME = %s",
        (database,),
    )
    return f"CHARACTER SET {charset} COLLATE {collation}"


def _code(exc: BaseException) -> object:
    return exc.args[0] if exc.args else None


def blocking_sessions(conn: pymysql.connections.Connection, database: str) -> list[str]:
    """The sessions that may hold the tables of *database*, as ``session 42 (app@host, Sleep 12 s)``.

    From ``information_schema.METADATA_LOCK_INFO`` when the server has that plugin, else the
    sessions with an open InnoDB transaction or *database* as their current database.
    """
    try:
        holders = {int(thread) for (thread,) in query(
            conn, "SELECT THREAD_ID FROM information_schema.METADATA_LOCK_INFO WHERE TABLE_SCHEMA = %s", (database,)
        )}  # fmt: skip
        where = "ID IN (" + ",".join(str(thread) for thread in holders) + ")" if holders else "FALSE"
    except Exception:
        where = "(DB = %s OR ID IN (SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX))"
    args: tuple[Any, ...] = (database,) if "%s" in where else ()
    rows = query(
        conn,
        "SELECT ID, USER, HOST, COMMAND, TIME FROM information_schema.PROCESSLIST "
        f"WHERE ID <> CONNECTION_ID() AND COMMAND <> 'Daemon' AND {where} ORDER BY TIME DESC",
        args,
    )
    return [f"session {ident} ({user}@{host}, {command} {time} s)" for ident, user, host, command, time in rows]


def settle_leftovers(target: ServerTarget, own_target: str) -> list[str]:
    """Settle the working databases of every restore on the server whose process is gone; one line each.

    An earlier restore into *own_target* is waited for up to :data:`OWN_TARGET_WAIT` seconds
    (the server may not have seen its connection end yet) and is an error if still running;
    others still running are left alone.
    """
    with admin_connection(target) as conn:
        bounded(conn, target)
        names = [str(name) for (name,) in query(conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")]
        tokens = sorted({match.group(1) for name in names if (match := _WORKING.match(name))})
        notes = []
        for token in tokens:
            journal = Journal(target, Workspace(token))
            if journal.workspace.journal not in names:
                notes.append(_no_journal(journal.workspace, names))
                continue
            if (note := _settle_one(conn, journal, own_target)) is not None:
                notes.append(note)
    return notes


def _settle_one(conn: pymysql.connections.Connection, journal: Journal, own_target: str) -> str | None:
    plan = journal.plan(conn)
    own = plan is not None and plan.target == own_target
    ((locked,),) = query(conn, "SELECT GET_LOCK(%s, %s)", (journal.workspace.lock, OWN_TARGET_WAIT if own else 0))
    if locked != 1:
        if own:
            raise DatabaseError(
                f"another restore into {shown(own_target)} is running (its working database is "
                f"{shown(journal.workspace.staging)}); wait for it to end"
            )
        return None
    try:
        plan, phase = journal.settle(conn)
    except DatabaseError as exc:
        failure = f"cannot settle the interrupted restore journaled in {shown(journal.workspace.journal)}: {exc}"
        if own:
            raise DatabaseError(f"{failure}; drop that database once the target is as you want it") from None
        return f"{failure} (the next restore on this server tries again)"
    finally:
        query(conn, "SELECT RELEASE_LOCK(%s)", (journal.workspace.lock,))
    return _outcome(journal.workspace, plan, phase)


def _outcome(workspace: Workspace, plan: Plan | None, phase: str | None) -> str:
    if plan is None:
        return (
            f"dropped the working databases of an interrupted restore ({workspace.staging}); its target was not changed"
        )
    if phase == PENDING:
        return (f"undid an interrupted restore into {shown(plan.target)}: it holds what it held before, whole "
                f"(working databases {workspace.staging}… dropped)")  # fmt: skip
    return (f"finished an interrupted restore into {shown(plan.target)}: it holds the restored backup, whole "
            f"(working databases {workspace.staging}… dropped)")  # fmt: skip


def _no_journal(workspace: Workspace, names: list[str]) -> str:
    present = [name for name in (workspace.staging, workspace.replaced) if name in names]
    return (f"left {', '.join(present)} alone: it has no journal (an older dbkeeper's restore, or one still "
            "running); drop it when no restore runs")  # fmt: skip


def report(notes: list[str]) -> None:
    """Tell the user of each settled leftover, one note each, also under ``--quiet`` (it changed another target)."""
    for line in notes:
        note(line, always=True)
