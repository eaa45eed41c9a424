"""Helpers for the MySQL/MariaDB monitoring, health and optimize tests: the driver, other sessions, waiting.

Other sessions are real PyMySQL connections to the throwaway server as root over its unix
socket (they plant the problems: a long query, an open transaction, a lock). A statement
run on a thread is stopped with ``KILL QUERY`` (the statement only: the session lives on).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pymysql
from mariadb_server import TEST_USER, MariaDBServer
from pymysql.converters import escape_string

from dbkeeper.plugin import DatabaseURL
from dbkeeper.plugin.manager import Driver, load_plugins
from helpers import WAIT

"""Seconds a test waits for something to happen, or for a bounded call to end, before failing."""
INTERRUPTED = 1317
"""``Query execution was interrupted``: what ``KILL QUERY`` makes a statement raise."""
WATCHER = "watcher"
"""An account with SELECT on one database only: no PROCESS, no SLAVE MONITOR."""


def driver() -> Driver:
    """The installed MySQL driver, as the core selects it."""
    return load_plugins().drivers["mysql"]


def url(mariadb: MariaDBServer, database: str = "", **query: str) -> DatabaseURL:
    """A TCP URL for *database* as the test user (every privilege), with *query* parameters."""
    text = mariadb.url(database)
    if query:
        text += "?" + "&".join(f"{key}={value}" for key, value in query.items())
    return DatabaseURL.parse(text)


@contextlib.contextmanager
def watcher(mariadb: MariaDBServer, database: str) -> Iterator[DatabaseURL]:
    """A URL for *database* as an account with SELECT on it and nothing else, dropped afterwards."""
    mariadb.execute(
        f"CREATE USER '{WATCHER}'@'%' IDENTIFIED BY 'w4tch'", f"GRANT SELECT ON `{database}`.* TO '{WATCHER}'@'%'"
    )
    try:
        yield DatabaseURL.parse(f"mysql://{WATCHER}:w4tch@127.0.0.1:{mariadb.port}/{database}")
    finally:
        mariadb.execute(f"DROP USER '{WATCHER}'@'%'")


@contextlib.contextmanager
def running(mariadb: MariaDBServer, database: str, *statements: str) -> Iterator[pymysql.connections.Connection]:
    """*statements* run in another session on a thread until the block ends (then killed: the query only)."""
    connection = mariadb.admin(database)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        except pymysql.MySQLError as exc:
            if exc.args[0] != INTERRUPTED:
                failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield connection
    finally:
        mariadb.execute(f"KILL QUERY {connection.thread_id()}")
        thread.join(WAIT)
        connection.close()
    assert not thread.is_alive(), f"{statements!r} did not end after KILL QUERY"
    assert not failures, f"{statements!r} failed: {failures[0]}"


def thread_state(mariadb: MariaDBServer, session: int) -> tuple[str, int] | None:
    """The process list's ``(STATE, TIME)`` of *session*, or None when it is gone."""
    rows = mariadb.execute(f"SELECT COALESCE(STATE, ''), TIME FROM information_schema.PROCESSLIST WHERE ID = {session}")
    return (str(rows[0][0]), int(rows[0][1])) if rows else None


@contextlib.contextmanager
def replication_pair() -> Iterator[tuple[MariaDBServer, MariaDBServer]]:
    """A source with a binary log and a replica replicating from it (from the source's current position).

    Both are throwaway servers of their own, stopped and removed afterwards. The replica
    starts from the position after the source's setup (its test user exists on both).
    """
    with (
        MariaDBServer.started(["--log-bin=source-bin", "--server-id=1"]) as source,
        MariaDBServer.started(["--server-id=2", "--relay-log=replica-relay"]) as replica,
    ):
        ((log_file, position, *_),) = source.execute("SHOW MASTER STATUS")
        replica.execute(
            f"CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {source.port}, MASTER_USER = '{TEST_USER}', "
            f"MASTER_PASSWORD = '{escape_string(source.password)}', MASTER_LOG_FILE = '{log_file}', "
            f"MASTER_LOG_POS = {position}, MASTER_USE_GTID = no",
            "START SLAVE",
        )
        yield source, replica
