"""Helpers for the PostgreSQL monitoring, health and optimize tests: the driver, other sessions, waiting.

Other sessions are real psycopg connections to the throwaway server as its superuser over
the unix socket (they plant the problems: a long query, an open transaction, a lock).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from pg_server import SUPERUSER, SUPERUSER_PASSWORD, Server

from dbkeeper.plugin import DatabaseURL
from dbkeeper.plugin.manager import Driver, load_plugins
from helpers import WAIT

"""Seconds a test waits for the server's statistics to show something (they are flushed about once a second)."""


def driver() -> Driver:
    """The installed PostgreSQL driver, as the core selects it."""
    return load_plugins().drivers["postgresql"]


def superuser_url(pg: Server, database: str) -> DatabaseURL:
    """A TCP URL for *database* as the superuser (who sees every session)."""
    return DatabaseURL.parse(pg.url(database, user=SUPERUSER, password=SUPERUSER_PASSWORD))


def app_url(pg: Server, database: str) -> DatabaseURL:
    """A TCP URL for *database* as the unprivileged test role."""
    return DatabaseURL.parse(pg.url(database))


def session(pg: Server, database: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[Any, ...]]:
    """Another session on *database* as the superuser, over the unix socket."""
    return psycopg.connect(
        host=str(pg.socket_dir), port=pg.port, user=SUPERUSER, dbname=database, autocommit=autocommit
    )


@contextmanager
def running(pg: Server, database: str, sql: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """*sql* running in another session on a thread until the block ends (then cancelled and closed)."""
    connection = session(pg, database)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            connection.execute(sql)
        except psycopg.errors.QueryCanceled:
            pass
        except BaseException as exc:  # reported by the test below, not lost in the thread
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield connection
    finally:
        connection.cancel_safe()
        thread.join(WAIT)
        connection.close()
    assert not thread.is_alive(), f"the statement {sql!r} did not end after being cancelled"
    assert not failures, f"the statement {sql!r} failed: {failures[0]}"
