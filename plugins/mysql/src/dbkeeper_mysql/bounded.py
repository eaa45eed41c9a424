"""The one connection a scrape, a health check, ``top`` or ``optimize`` opens: bounded in time.

The connection is the driver's own (:meth:`ServerTarget.connect`: the URL's TLS, the
password handed to PyMySQL in-process, one-line connection errors), autocommit, to the
URL's database. With a deadline it gives up connecting within the time left (never
longer than the URL's ``connect_timeout``) and waits for any one answer at most that
long too. Its session carries a statement timeout (MariaDB's ``max_statement_time``,
which bounds every statement; MySQL's ``max_execution_time``, which bounds ``SELECT``
only) and a lock timeout (``lock_wait_timeout`` for metadata locks and
``innodb_lock_wait_timeout`` for row locks, whole seconds, at least 1), so a query stuck
behind another session's lock fails instead of waiting.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dbkeeper.plugin import DatabaseError, DatabaseURL, error_line
from dbkeeper_mysql.server import ServerInfo, ServerTarget, server_info

if TYPE_CHECKING:
    import pymysql

MIN_WAIT = 0.1
"""The shortest connect or read timeout given to PyMySQL, in seconds (0 would mean none)."""
MIN_STATEMENT_TIME = 0.01
"""The shortest statement timeout set, in seconds (0 would mean none)."""


class Probe:
    """One bounded connection to the server, what the server is, and plain-row queries."""

    def __init__(self, connection: pymysql.connections.Connection, info: ServerInfo, database: str | None) -> None:
        self.connection = connection
        self.info = info
        self.database = database
        self.lock_timeout = 1.0
        self._status: dict[str, str] | None = None

    def rows(self, sql: str, params: Sequence[object] | None = None) -> list[tuple[Any, ...]]:
        """Every row of *sql* (``%s`` placeholders only when *params* are given)."""
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def named_rows(self, sql: str) -> list[dict[str, Any]]:
        """Every row of *sql* as a mapping of column names (``SHOW … STATUS`` statements)."""
        with self.connection.cursor() as cursor:
            cursor.execute(sql)
            names = [column[0] for column in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def status(self) -> Mapping[str, str]:
        """``SHOW GLOBAL STATUS``, read once per connection and shared by the collectors."""
        if self._status is None:
            self._status = {str(name): str(value) for name, value in self.rows("SHOW GLOBAL STATUS")}
        return self._status

    def counter(self, name: str) -> float | None:
        """The global status variable *name* as a number, or None when this server has no such variable."""
        value = self.status().get(name)
        return float(value) if value is not None else None

    def variable(self, name: str) -> str:
        """The global system variable *name* (a constant of ours, never user input)."""
        ((value,),) = self.rows(f"SELECT @@GLOBAL.{name}")
        return str(value)

    def renew(self, statement: float, lock: float) -> None:
        """Make a kept probe ready for another scrape: status read afresh, timeouts set again.

        Raises PyMySQL's error when the connection no longer answers.
        """
        self._status = None
        self.set_timeouts(statement, lock)

    def close(self) -> None:
        """Close the connection (nothing to do when it has already broken)."""
        if self.connection.open:
            self.connection.close()

    def set_timeouts(self, statement: float, lock: float) -> None:
        """Bound the session's statements to *statement* seconds (0: unbounded) and lock waits to *lock*."""
        seconds = lock_seconds(lock)
        statement = max(statement, MIN_STATEMENT_TIME) if statement > 0 else 0
        if self.info.flavor == "mariadb":
            limit = f"max_statement_time = {statement:.3f}"
        else:
            limit = f"max_execution_time = {math.ceil(statement * 1000)}"
        self.rows(f"SET SESSION {limit}, lock_wait_timeout = {seconds}, innodb_lock_wait_timeout = {seconds}")
        self.lock_timeout = lock


def lock_seconds(lock: float) -> int:
    """The ``lock_wait_timeout`` for a lock timeout of *lock* seconds: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(lock))


def bounded_target(target: ServerTarget, within: float) -> ServerTarget:
    """*target* with its connect, read and write timeouts cut to *within* seconds (tenths, at least 0.1)."""
    if within <= 0:
        raise DatabaseError(f"cannot connect to {target}: no time left before the deadline")
    limits = target.timeouts
    wait = max(MIN_WAIT, round(within, 1))
    timeouts = limits._replace(
        connect=min(limits.connect, wait), read=min(limits.read, wait), write=min(limits.write, wait)
    )
    return target._replace(timeouts=timeouts)


@contextlib.contextmanager
def open_probe(
    url: DatabaseURL, *, within: float | None, statement_timeout: float, lock_timeout: float
) -> Iterator[Probe]:
    """A :class:`Probe` on *url*'s database for the block, closed afterwards (see :func:`connect_probe`)."""
    probe = connect_probe(url, within=within, statement_timeout=statement_timeout, lock_timeout=lock_timeout)
    try:
        yield probe
    finally:
        probe.close()


def connect_probe(url: DatabaseURL, *, within: float | None, statement_timeout: float, lock_timeout: float) -> Probe:
    """A :class:`Probe` on *url*'s database; the caller closes it.

    *within*: seconds the connection may take to be made and to answer any one query
    (None: the URL's timeouts). Raises :class:`~dbkeeper.plugin.DatabaseError` (one line,
    password masked) when the server cannot be reached, including one that accepts the
    connection and never answers.
    """
    import pymysql

    target = ServerTarget.from_url(url)
    if within is not None:
        target = bounded_target(target, within)
    connection = target.connect(target.database)
    try:
        probe = Probe(connection, server_info(connection), target.database)
        probe.set_timeouts(statement_timeout, lock_timeout)
    except pymysql.MySQLError as exc:
        connection.close()
        raise DatabaseError(f"cannot set the session's timeouts on {target}: {error_line(exc)}") from None
    except BaseException:
        connection.close()
        raise
    return probe
