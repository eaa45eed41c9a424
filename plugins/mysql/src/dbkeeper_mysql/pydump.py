"""The pure-Python dumper: ``mariadb-dump``'s script written over PyMySQL alone.

For hosts without the client tools (``pip install dbkeeper-mysql`` is enough to back up).
It reads one consistent snapshot (``START TRANSACTION WITH CONSISTENT SNAPSHOT`` at
REPEATABLE READ, as ``--single-transaction`` does) with unbuffered cursors, and writes
what ``mariadb-dump --single-transaction --routines --triggers --events --hex-blob``
writes: the same session settings, ``SHOW CREATE`` definitions, extended INSERTs of at
most :data:`BATCH_BYTES` with one row per line (binary values in hex, strings escaped as
the server's own escaping does), triggers, view placeholders, events, routines and final views in
``DELIMITER`` blocks. Rows are counted as they stream, in the same snapshot.

Sequences, system-versioned tables and Oracle-mode packages are refused: back those up
with the client tools.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from dbkeeper.plugin import ArtifactSink, ArtifactWriter, DatabaseError, error_line
from dbkeeper_mysql.layout import Layout, triggers_artifact
from dbkeeper_mysql.server import ServerTarget
from dbkeeper_mysql.sqltext import comment_name, quote_bytes, quote_identifier, shown

if TYPE_CHECKING:
    import pymysql

BATCH_BYTES = 1 << 20
"""Largest INSERT statement written (one bigger row makes a statement of its own)."""
FETCH_ROWS = 2000

NUMERIC_TYPES = frozenset(
    b"tinyint smallint mediumint int integer bigint decimal numeric float double real year".split()
)
BINARY_TYPES = frozenset(
    b"binary varbinary tinyblob blob mediumblob longblob bit geometry point linestring polygon multipoint "
    b"multilinestring multipolygon geometrycollection geomcollection".split()
)
UNSUPPORTED_TABLE_TYPES = {b"SEQUENCE": "a sequence", b"SYSTEM VERSIONED": "a system-versioned table"}

HEADER = b"""-- dbkeeper-mysql %(version)s dump (pure Python over PyMySQL)
--
-- Database: %(database)s
-- ------------------------------------------------------
-- Server version\t%(server)s

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;
"""
FOOTER = b"""/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;
/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;

-- Dump completed
"""
SESSION = (
    "SET SESSION sql_mode = ''",
    "SET SESSION time_zone = '+00:00'",
    "SET SESSION net_read_timeout = 86400, SESSION net_write_timeout = 86400",
    "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    "START TRANSACTION WITH CONSISTENT SNAPSHOT",
    "SAVEPOINT dbkeeper",
)


def _ident(name: str) -> bytes:
    return quote_identifier(name).encode()


def _title(kind: str, name: str) -> bytes:
    return f"\n--\n-- {kind} {comment_name(name)}\n--\n\n".encode()


def _literal(value: bytes) -> bytes:
    return quote_bytes(value)


def _number(value: bytes) -> bytes:
    return value


def _hex(value: bytes) -> bytes:
    return b"0x" + binascii.hexlify(value) if value else b"''"


def _formatter(data_type: bytes) -> Callable[[bytes], bytes]:
    data_type = data_type.lower()
    if data_type in NUMERIC_TYPES:
        return _number
    if data_type in BINARY_TYPES:
        return _hex
    return _literal


def _session_block(prefix: bytes, end: bytes, charset: bytes, collation: bytes) -> tuple[bytes, bytes]:
    """The ``SET`` lines around a stored program: switch to its character set, and back."""
    enter = b"".join(
        b"%s SET %s */%s\n" % (prefix, setting, end)
        for setting in (
            b"@saved_cs_client      = @@character_set_client",
            b"@saved_cs_results     = @@character_set_results",
            b"@saved_col_connection = @@collation_connection",
            b"character_set_client  = " + charset,
            b"character_set_results = " + charset,
            b"collation_connection  = " + collation,
        )
    )
    leave = b"".join(
        b"%s SET %s */%s\n" % (prefix, setting, end)
        for setting in (
            b"character_set_client  = @saved_cs_client",
            b"character_set_results = @saved_cs_results",
            b"collation_connection  = @saved_col_connection",
        )
    )
    return enter, leave


class PythonDumper:
    """Dumps one database through PyMySQL into the layout's artifacts."""

    def __init__(self, target: ServerTarget, database: str, server_version: str) -> None:
        self._target = target
        self._database = database
        self._server_version = server_version
        self.layout = Layout()
        self.row_counts: dict[str, int] = {}

    def dump(self, artifacts: ArtifactSink) -> None:
        """Write the whole database, in one snapshot, into *artifacts*."""
        import pymysql

        conn = self._target.connect(self._database, use_unicode=False, conv=dict(pymysql.converters.encoders))
        try:
            with closing(conn):
                self._run(conn, artifacts)
        except pymysql.MySQLError as exc:
            raise DatabaseError(f"the pure-Python dump of {self._database} failed: {error_line(exc)}") from None

    def _run(self, conn: pymysql.connections.Connection, artifacts: ArtifactSink) -> None:
        for statement in SESSION:
            conn.query(statement)
        listing = self._rows(conn, "SHOW FULL TABLES")
        tables = sorted((name, kind) for name, kind in listing if kind != b"VIEW")
        views = sorted(name for name, kind in listing if kind == b"VIEW")
        for name, kind in tables:
            if kind in UNSUPPORTED_TABLE_TYPES:
                raise DatabaseError(
                    f"table {shown(name.decode())} is {UNSUPPORTED_TABLE_TYPES[kind]}, which the pure-Python dumper "
                    "does not back up; install the client tools (mariadb-client) and use them"
                )
        with artifacts.open(self.layout.header) as out:
            out.write(
                HEADER
                % {
                    b"version": version("dbkeeper-mysql").encode(),
                    b"database": self._database.encode(),
                    b"server": self._server_version.encode(),
                }
            )
        for raw_name, _ in tables:
            self._table(conn, artifacts, raw_name.decode())
        with artifacts.open(self.layout.objects) as out:
            self._objects(conn, out, [name.decode() for name in views])
        conn.query("ROLLBACK")

    @staticmethod
    def _rows(conn: pymysql.connections.Connection, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with conn.cursor() as cursor:
            cursor.execute(sql, args or None)
            return list(cursor.fetchall())

    # -- tables ----------------------------------------------------------------------

    def _table(self, conn: pymysql.connections.Connection, artifacts: ArtifactSink, name: str) -> None:
        part = self.layout.add_table(name)
        ident = _ident(name)
        ((_, create),) = self._rows(conn, f"SHOW CREATE TABLE {quote_identifier(name)}")
        columns = [
            (column, _formatter(data_type))
            for column, data_type, extra in self._rows(
                conn,
                "SELECT COLUMN_NAME, DATA_TYPE, EXTRA FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                (self._database, name),
            )
            if b"GENERATED" not in extra.upper()
        ]
        with artifacts.open(part.data) as out:
            definition = (
                _title("Table structure for table", name)
                + b"DROP TABLE IF EXISTS %s;\n" % ident
                + b"/*!40101 SET @saved_cs_client     = @@character_set_client */;\n"
                + b"/*!40101 SET character_set_client = utf8mb4 */;\n"
                + create
                + b";\n/*!40101 SET character_set_client = @saved_cs_client */;\n"
                + _title("Dumping data for table", name)
                + b"LOCK TABLES %s WRITE;\n/*!40000 ALTER TABLE %s DISABLE KEYS */;\n" % (ident, ident)
            )
            out.write(definition)
            rows, written = self._data(conn, out, name, columns)
            out.write(b"/*!40000 ALTER TABLE %s ENABLE KEYS */;\nUNLOCK TABLES;\n" % ident)
        part.raw_bytes = len(definition) + written
        self.row_counts[name] = rows
        conn.query("ROLLBACK TO SAVEPOINT dbkeeper")  # release the table's metadata lock, as mariadb-dump does
        triggers = self._rows(
            conn,
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS "
            "WHERE EVENT_OBJECT_SCHEMA = %s AND EVENT_OBJECT_TABLE = %s ORDER BY ACTION_ORDER, TRIGGER_NAME",
            (self._database, name),
        )
        if triggers:
            part.triggers = triggers_artifact(len(self.layout.tables), name)
            with artifacts.open(part.triggers) as out:
                for (trigger,) in triggers:
                    out.write(self._trigger(conn, trigger.decode()))

    def _data(
        self,
        conn: pymysql.connections.Connection,
        out: ArtifactWriter,
        name: str,
        columns: list[tuple[bytes, Callable[[bytes], bytes]]],
    ) -> tuple[int, int]:
        """Stream the rows as extended INSERTs; return (rows, bytes written)."""
        import pymysql

        if not columns:
            return 0, 0
        names = b",".join(quote_identifier(column.decode()).encode() for column, _ in columns)
        prefix = b"INSERT INTO %s (%s) VALUES\n" % (_ident(name), names)
        formats = [fmt for _, fmt in columns]
        rows = written = 0
        batch: list[bytes] = []
        size = len(prefix)
        with conn.cursor(pymysql.cursors.SSCursor) as cursor:
            cursor.execute(f"SELECT {names.decode()} FROM {quote_identifier(name)}")
            for row in _fetch(cursor):
                text = b"(%s)" % b",".join(
                    [b"NULL" if value is None else fmt(value) for fmt, value in zip(formats, row, strict=True)]
                )
                if batch and size + len(text) > BATCH_BYTES:
                    written += out.write(prefix + b",\n".join(batch) + b";\n")
                    batch, size = [], len(prefix)
                batch.append(text)
                size += len(text) + 2
                rows += 1
        if batch:
            written += out.write(prefix + b",\n".join(batch) + b";\n")
        return rows, written

    def _trigger(self, conn: pymysql.connections.Connection, name: str) -> bytes:
        return trigger_script(conn, name)

    # -- views, events, routines -----------------------------------------------------

    def _objects(self, conn: pymysql.connections.Connection, out: ArtifactWriter, views: list[str]) -> None:
        for view in views:
            out.write(self._view_placeholder(conn, view))
        events = self._rows(
            conn, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s ORDER BY EVENT_NAME",
            (self._database,),
        )  # fmt: skip
        if events:
            out.write(f"\n--\n-- Dumping events for database '{self._database}'\n--\n".encode())
            for (event,) in events:
                out.write(self._event(conn, event.decode()))
        routines = self._rows(
            conn,
            "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s "
            "ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
            (self._database,),
        )
        if routines:
            out.write(f"\n--\n-- Dumping routines for database '{self._database}'\n--\n".encode())
            for kind, routine in routines:
                out.write(self._routine(conn, kind.decode(), routine.decode()))
        for view in views:
            out.write(self._view(conn, view))
        out.write(b"\n" + FOOTER)

    def _view_placeholder(self, conn: pymysql.connections.Connection, name: str) -> bytes:
        """A stand-in view with the right columns, so views over views can be created in any order."""
        columns = self._rows(
            conn,
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
            "ORDER BY ORDINAL_POSITION",
            (self._database, name),
        )
        select = b",\n".join(b" 1 AS %s" % _ident(column.decode()) for (column,) in columns) or b" 1 AS `_`"
        ident = _ident(name)
        return (
            _title("Temporary table structure for view", name)
            + b"DROP TABLE IF EXISTS %s;\n/*!50001 DROP VIEW IF EXISTS %s*/;\n" % (ident, ident)
            + b"SET @saved_cs_client     = @@character_set_client;\nSET character_set_client = utf8mb4;\n"
            + b"/*!50001 CREATE VIEW %s AS SELECT\n%s */;\n" % (ident, select)
            + b"SET character_set_client = @saved_cs_client;\n"
        )

    def _view(self, conn: pymysql.connections.Connection, name: str) -> bytes:
        create: bytes
        ((_, create, charset, collation),) = self._rows(conn, f"SHOW CREATE VIEW {quote_identifier(name)}")
        enter, leave = _session_block(b"/*!50001", b";", charset, collation)
        return (
            _title("Final view structure for view", name)
            + b"/*!50001 DROP VIEW IF EXISTS %s*/;\n" % _ident(name)
            + enter
            + create
            + b";\n"
            + leave
        )

    def _event(self, conn: pymysql.connections.Connection, name: str) -> bytes:
        create: bytes
        ((_, sql_mode, time_zone, create, charset, collation, *_),) = self._rows(
            conn, f"SHOW CREATE EVENT {quote_identifier(name)}"
        )
        enter, leave = _session_block(b"/*!50003", b" ;;", charset, collation)
        return (
            b"/*!50106 SET @save_time_zone= @@TIME_ZONE */ ;\n"
            + b"/*!50106 DROP EVENT IF EXISTS %s */;\n" % _ident(name)
            + b"DELIMITER ;;\n"
            + enter
            + b"/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;;\n"
            + b"/*!50003 SET sql_mode              = '%s' */ ;;\n" % sql_mode
            + b"/*!50003 SET @saved_time_zone      = @@time_zone */ ;;\n"
            + b"/*!50003 SET time_zone             = '%s' */ ;;\n" % time_zone
            + create
            + b"\n;;\n"
            + b"/*!50003 SET time_zone             = @saved_time_zone */ ;;\n"
            + b"/*!50003 SET sql_mode              = @saved_sql_mode */ ;;\n"
            + leave
            + b"DELIMITER ;\n/*!50106 SET TIME_ZONE= @save_time_zone */ ;\n"
        )

    def _routine(self, conn: pymysql.connections.Connection, kind: str, name: str) -> bytes:
        if kind not in ("FUNCTION", "PROCEDURE"):
            raise DatabaseError(
                f"{shown(name)} is a {kind.lower()}, which the pure-Python dumper does not back up; "
                "install the client tools (mariadb-client) and use them"
            )
        create: bytes | None
        ((_, sql_mode, create, charset, collation, *_),) = self._rows(
            conn, f"SHOW CREATE {kind} {quote_identifier(name)}"
        )
        if create is None:
            raise DatabaseError(
                f"cannot read the definition of {kind.lower()} {shown(name)}: the user needs to be its definer "
                "or hold SELECT on mysql.proc (MariaDB) / SHOW_ROUTINE (MySQL)"
            )
        enter, leave = _session_block(b"/*!50003", b" ;", charset, collation)
        return (
            b"/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;\n"
            + b"/*!50003 SET sql_mode              = '%s' */ ;\n" % sql_mode
            + b"/*!50003 DROP %s IF EXISTS %s */;\n" % (kind.encode(), _ident(name))
            + enter
            + b"DELIMITER ;;\n"
            + create
            + b"\n;;\nDELIMITER ;\n"
            + b"/*!50003 SET sql_mode              = @saved_sql_mode */ ;\n"
            + leave
        )


def trigger_script(conn: pymysql.connections.Connection, name: str) -> bytes:
    """The ``mariadb-dump`` text that creates trigger *name* of the connection's database again.

    *conn* converts nothing (``use_unicode=False``, raw converters), so the definition is
    the server's own bytes.
    """
    with conn.cursor() as cursor:
        cursor.execute(f"SHOW CREATE TRIGGER {quote_identifier(name)}")
        statement: bytes
        ((_, sql_mode, statement, charset, collation, *_),) = cursor.fetchall()
    enter, leave = _session_block(b"/*!50003", b" ;", charset, collation)
    return (
        enter
        + b"/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;\n"
        + b"/*!50003 SET sql_mode              = '%s' */ ;\n" % sql_mode
        + b"DELIMITER ;;\n"
        + statement
        + b"\n;;\nDELIMITER ;\n"
        + b"/*!50003 SET sql_mode              = @saved_sql_mode */ ;\n"
        + leave
    )


def _fetch(cursor: pymysql.cursors.SSCursor) -> Iterator[tuple[Any, ...]]:
    """The rows of an unbuffered cursor, fetched in batches."""
    while rows := cursor.fetchmany(FETCH_ROWS):
        yield from rows
