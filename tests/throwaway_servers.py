"""The throwaway PostgreSQL and MariaDB servers, as context managers.

The session fixtures of tests/postgresql and tests/mysql are built on them; those
fixtures are not visible elsewhere, so a module outside those folders that needs a
server (``dbkeeper top`` in a terminal, the dashboard's metrics in real output) makes
its own module-scoped fixture from these context managers. The servers are the same as
the drivers' tests use (:mod:`pg_server`, :mod:`mariadb_server`): loopback only, removed
at the end, stopped by their watchdog if the test process dies. A server that cannot
start fails the test with the reason — never a silent skip.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from helpers import ROOT

for _folder in ("postgresql", "mysql"):
    if str(ROOT / "tests" / _folder) not in sys.path:
        sys.path.append(str(ROOT / "tests" / _folder))

if TYPE_CHECKING:
    from mariadb_server import MariaDBServer
    from pg_server import Server


@contextlib.contextmanager
def postgresql_server() -> Iterator[Server]:
    """A running throwaway PostgreSQL 15 server (see :mod:`pg_server`), stopped and removed on exit."""
    from pg_server import ServerError, start_server

    try:
        server = start_server()
    except (ServerError, OSError) as exc:
        pytest.fail(f"cannot start the throwaway PostgreSQL server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def mariadb_server() -> Iterator[MariaDBServer]:
    """A running throwaway MariaDB server (see :mod:`mariadb_server`), stopped and removed on exit."""
    from mariadb_server import MariaDBServer, ServerError

    try:
        server = MariaDBServer.start()
    except ServerError as exc:
        pytest.fail(f"cannot start the MariaDB test server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
