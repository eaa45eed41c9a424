"""MySQL/MariaDB's side of ``dbkeeper drill``: a database to restore into, and ``CHECK TABLE`` on every table.

The check runs table by table while the restore loads the next one (see
:mod:`dbkeeper_mysql.check_table`).

Without ``--into`` the database is on a throwaway ``mariadbd`` of the drill's own (see
:mod:`dbkeeper_mysql.throwaway`). With ``--into URL`` it is a new database named
``dbkeeper_drill_<random>`` on that server, created here (so never one that existed) and
dropped afterwards, also when the restore failed; no other database there is touched
(the restore's own working databases are its to remove). Either way the database is
created first with the backup's character set and collation, so a backup whose collation
the server does not know is refused in one line before anything is restored.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from dbkeeper.plugin import DatabaseError, DatabaseURL, DrillRequest, DrillTarget, IntegrityCheck
from dbkeeper_mysql.catalog import q, query
from dbkeeper_mysql.check_table import TableChecker, check_database
from dbkeeper_mysql.server import ServerTarget, admin_connection, server_info
from dbkeeper_mysql.throwaway import Binaries, throwaway_server

if TYPE_CHECKING:
    import pymysql

    from dbkeeper.plugin import BackupFacts

SCRATCH_PREFIX = "dbkeeper_drill_"
UNKNOWN_CHARSET, UNKNOWN_COLLATION = 1115, 1273


class MysqlDrill:
    """The drill target and check of the MySQL/MariaDB driver."""

    @contextlib.contextmanager
    def target(self, request: DrillRequest) -> Iterator[DrillTarget]:
        """A throwaway server's new database, or a scratch database on ``--into``; removed afterwards."""
        if request.into is not None:
            with scratch_database(request.into, request.backup, keep=request.keep) as target:
                yield target
            return
        binaries = Binaries.find()
        binaries.refuse_newer(request.backup.engine_version)
        with throwaway_server(binaries, request.workdir, keep=request.keep) as server:
            database = request.backup.database or "drill"
            url = server.url(database)
            with admin_connection(ServerTarget.from_url(url)) as conn:
                create_database(conn, database, request.backup)
            kind = f"a throwaway MariaDB {binaries.version} server"
            yield DrillTarget(url, kind, f"{server.connect} {shlex.quote(database)}", server.stop)

    def check_integrity(self, url: DatabaseURL) -> list[IntegrityCheck]:
        """``CHECK TABLE`` on every base table of the restored database, one statement each, bounded."""
        return check_database(ServerTarget.from_url(url))

    @contextlib.contextmanager
    def checking(self, url: DatabaseURL) -> Iterator[TableChecker]:
        """``CHECK TABLE`` of each table once the restore has loaded it (see :mod:`dbkeeper_mysql.check_table`)."""
        checker = TableChecker(ServerTarget.from_url(url))
        try:
            yield checker
        finally:
            checker.stop()


def create_database(conn: pymysql.connections.Connection, name: str, backup: BackupFacts) -> None:
    """Create *name* with the backup's character set and collation; refuse one the server does not know."""
    import pymysql

    charset, collation = (str(backup.details.get(key) or "") for key in ("character_set", "collation"))
    defaults = (f" CHARACTER SET {charset}" if charset else "") + (f" COLLATE {collation}" if collation else "")
    try:
        query(conn, f"CREATE DATABASE {q(name)}{defaults}")
    except pymysql.MySQLError as exc:
        if exc.args and exc.args[0] in (UNKNOWN_CHARSET, UNKNOWN_COLLATION):
            version = server_info(conn).version
            raise DatabaseError(
                f"the backup's character set {charset} / collation {collation} (from {backup.engine_version}) is "
                f"unknown to the server {version}: drill it --into a server of the backup's kind and version"
            ) from None
        raise


def scratch_url(into: DatabaseURL, database: str) -> DatabaseURL:
    """*into* naming *database* instead (its user, password, host and parameters unchanged)."""
    return DatabaseURL.parse(urlunsplit(urlsplit(into.raw)._replace(path="/" + quote(database, safe=""))))


@contextlib.contextmanager
def scratch_database(into: DatabaseURL, backup: BackupFacts, *, keep: bool) -> Iterator[DrillTarget]:
    """A new database ``dbkeeper_drill_<random>`` on *into*'s server, dropped afterwards unless *keep*."""
    server = ServerTarget.from_url(into)
    name = f"{SCRATCH_PREFIX}{os.urandom(4).hex()}"
    with admin_connection(server) as conn:
        create_database(conn, name, backup)  # no IF NOT EXISTS: it is ours because creating it succeeded
    kept = False
    try:
        client = shlex.join(_client_argv(server))
        drop = f"{client} -e {shlex.quote(f'DROP DATABASE {q(name)}')}"
        yield DrillTarget(scratch_url(into, name), f"scratch database {name} on {server}", f"{client} {name}", drop)
        kept = keep
    finally:
        if not kept:
            _drop(server, name)


def _client_argv(server: ServerTarget) -> list[str]:
    """The ``mariadb`` client reaching *server* as its URL's user; it asks for the password (``-p``)."""
    argv = ["mariadb", "--no-defaults"]
    argv += (
        [f"--socket={server.unix_socket}"] if server.unix_socket else [f"--host={server.host}", f"--port={server.port}"]
    )
    argv += [f"--user={server.user}", "-p"] if server.user else []
    return argv


def _drop(server: ServerTarget, name: str) -> None:
    """Drop the scratch database *name*, its foreign keys unchecked; one line saying what is left on failure."""
    try:
        with admin_connection(server) as conn:
            query(conn, "SET SESSION foreign_key_checks = 0")
            query(conn, f"DROP DATABASE IF EXISTS {q(name)}")
    except DatabaseError as exc:
        raise DatabaseError(
            f"could not drop the drill's scratch database {name} on {server}: {exc} — drop it by hand"
        ) from None
