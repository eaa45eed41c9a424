"""The SQLite half of schema migrations: transactional DDL under SQLite's write lock."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from dbkeeper.plugin import MigrationError
from dbkeeper_sqlite.statements import split_statements


class SqliteMigrations:
    """Every migration runs in ``BEGIN IMMEDIATE``, which takes SQLite's write lock.

    The core reads the history inside that transaction, so concurrent ``migrate up``
    runs serialise on the write lock and each migration is applied exactly once. A lock
    held by a killed process is released by SQLite itself. DDL is transactional, so a
    failed migration leaves nothing behind; ``no-transaction`` is refused, since what
    needs it on SQLite (``VACUUM``) does not belong in a migration.
    """

    transactional_ddl = True
    supports_no_transaction = False

    def split(self, script: str) -> list[str]:
        """The statements of *script*, split as ``sqlite3`` splits them."""
        return list(split_statements(line + "\n" for line in script.split("\n")))

    @contextlib.contextmanager
    def lock(self, conn: Connection, timeout: float) -> Iterator[None]:
        """No lock for the run: each migration's ``BEGIN IMMEDIATE`` is the lock; set how long it waits."""
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {round(timeout * 1000)}")
        yield

    def begin(self, conn: Connection, timeout: float) -> None:
        """``BEGIN IMMEDIATE``, waiting up to *timeout* seconds for other writers."""
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except OperationalError as error:
            raise MigrationError(
                f"waited {timeout:g}s for SQLite's write lock, held by another migration run or writer "
                f"({getattr(error, 'orig', error)}); try again, or give more time with --lock-timeout"
            ) from None
