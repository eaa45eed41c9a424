"""``CHECK TABLE`` of every base table of a restored database: the MySQL/MariaDB drill's integrity check.

After the restore (:func:`check_database`), or table by table while it runs
(:class:`TableChecker`): the restore reports each table once it is loaded and counted in
its staging database, and a thread of the checker's own runs ``CHECK TABLE`` on it there
on a second connection while the next table loads. After the restore, every base table of
the target not checked yet is checked in place, so the verdict covers every table either
way, with the same messages.

A staging table is renamed into the target by the restore's swap, which waits for a
``CHECK TABLE`` running on it; that wait is bounded: an early check is cut off after half
the URL's ``lock_wait_timeout`` (MariaDB's ``max_statement_time``), well before the swap
would give up, and its table is checked again after the restore (MariaDB may answer ``OK``
for a check it cut off: a check that took its whole bound is taken for cut off). So is a
table whose early check came after the swap had moved it out of staging. MySQL has no such
bound for ``CHECK TABLE``, so there every table is checked after the restore.
"""

from __future__ import annotations

import queue
import threading
import time
from contextlib import closing
from typing import TYPE_CHECKING

from dbkeeper.plugin import DatabaseError, IntegrityCheck, error_line
from dbkeeper_mysql.catalog import q, query
from dbkeeper_mysql.server import MAX_TIMEOUT, ServerTarget, server_info
from dbkeeper_mysql.sqltext import shown

if TYPE_CHECKING:
    import pymysql

NAME = "CHECK TABLE"
SHOWN_PROBLEMS = 5
"""How many of CHECK TABLE's problem lines a failed check shows."""


def check_database(target: ServerTarget) -> list[IntegrityCheck]:
    """``CHECK TABLE`` on every base table of *target*'s database, one statement each, bounded."""
    return TableChecker(target, early=False).checks()


class TableChecker:
    """``CHECK TABLE`` of each table the restore reports loaded, then of the rest (see the module docstring)."""

    def __init__(self, target: ServerTarget, *, early: bool = True) -> None:
        self.target = target
        self.problems: list[str] = []
        self.checked: set[str] = set()
        self.failure: str | None = None
        self._queue: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._work, name="dbkeeper-check-table", daemon=True)
        if early:
            self._thread.start()

    def loaded(self, database: str, table: str) -> None:
        """Check *table* of *database* on the checker's thread (called by the restore's workers)."""
        self._queue.put((database, table))

    def stop(self) -> None:
        """Drop the checks not started and wait for the one running (bounded by its statement time)."""
        self._stopping.set()
        self._finish()

    def checks(self) -> list[IntegrityCheck]:
        """Finish the early checks, check every base table not checked yet, and give the verdict."""
        self._finish()
        import pymysql

        tables: list[str] = []
        try:
            with closing(self.target.connect(self.target.require_database())) as conn:
                bound = float(self.target.timeouts.read)
                _bound(conn, bound)
                tables = _base_tables(conn)
                for table in tables:
                    if table not in self.checked:
                        problems = _check(conn, self.target.require_database(), table, bound)
                        self.problems += [_cut_off(table, bound)] if problems is None else problems
                        self.checked.add(table)
        except (pymysql.MySQLError, DatabaseError) as exc:
            self.failure = self.failure or f"failed: {error_line(exc)}"
        if self.failure:
            return [IntegrityCheck(NAME, False, self.failure)]
        if not self.problems:
            return [IntegrityCheck(NAME, True, f"{len(tables)} tables OK")]
        more = f" (and {len(self.problems) - SHOWN_PROBLEMS} more)" if len(self.problems) > SHOWN_PROBLEMS else ""
        return [IntegrityCheck(NAME, False, "; ".join(self.problems[:SHOWN_PROBLEMS]) + more)]

    def _finish(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _work(self) -> None:
        import pymysql

        try:
            with closing(self.target.connect(self.target.require_database())) as conn:
                query(conn, f"SET SESSION wait_timeout = {MAX_TIMEOUT}")  # idle while a table loads, for hours maybe
                bound = min(float(self.target.timeouts.read), self.target.timeouts.lock_wait / 2)
                if not _bound(conn, bound):
                    self._stopping.set()  # MySQL: no bound on a CHECK TABLE the swap would wait for
                while (item := self._queue.get()) is not None:
                    if not self._stopping.is_set():
                        self._check_early(conn, *item, bound)
        except (pymysql.MySQLError, DatabaseError) as exc:
            self.failure = f"failed: {error_line(exc)}"
            self._stopping.set()
            while self._queue.get() is not None:  # let the restore go on; the verdict is already failed
                pass

    def _check_early(self, conn: pymysql.connections.Connection, database: str, table: str, bound: float) -> None:
        """Check *table* in staging, unless cut off or moved out by the swap (then it is checked after the restore)."""
        problems = _check(conn, database, table, bound)
        if problems is None or (problems and not _exists(conn, database, table)):
            return
        self.problems += problems
        self.checked.add(table)


STATEMENT_TIMEOUT = 1969
"""MariaDB's ER_STATEMENT_TIMEOUT: ``max_statement_time`` was exceeded."""
CUT_OFF = 0.99
"""A check that took this share of its bound or more is taken for cut off (see :func:`_check`)."""


def _bound(conn: pymysql.connections.Connection, seconds: float) -> bool:
    """Bound each statement of *conn* to *seconds* (MariaDB); False on MySQL, whose read timeout bounds it."""
    if server_info(conn).flavor != "mariadb":
        return False
    query(conn, f"SET SESSION max_statement_time = {seconds}")
    return True


def _exists(conn: pymysql.connections.Connection, database: str, table: str) -> bool:
    sql = "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
    return bool(query(conn, sql, (database, table)))


def _cut_off(table: str, seconds: float) -> str:
    return f"{shown(table)}: not checked, CHECK TABLE was cut off after {seconds:g} s (raise the URL's read_timeout)"


def _base_tables(conn: pymysql.connections.Connection) -> list[str]:
    rows = query(
        conn,
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    )
    return [str(table) for (table,) in rows]


def _check(conn: pymysql.connections.Connection, database: str, table: str, bound: float) -> list[str] | None:
    """CHECK TABLE's problem lines for *table*: rows of type ``error``, or a ``status`` other than ``OK``.

    Notes (an engine that cannot check) are not problems. None when the check was cut off
    by *bound* (``max_statement_time``): MariaDB then answers with an error, or with
    ``OK`` or ``Operation failed`` for a check it did not finish, so a check that took the
    whole bound is taken for cut off whatever it answered.
    """
    import pymysql

    started = time.monotonic()
    try:
        rows = query(conn, f"CHECK TABLE {q(database)}.{q(table)}")
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] == STATEMENT_TIMEOUT:
            return None
        raise
    if time.monotonic() - started >= bound * CUT_OFF:
        return None
    problems = []
    for _name, _op, kind, text in rows:
        if kind == "error" or (kind == "status" and text != "OK"):
            problems.append(f"{shown(table)}: {text}")
    return problems
