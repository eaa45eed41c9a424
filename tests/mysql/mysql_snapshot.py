"""Everything a database holds, as the server itself reports it, for comparing two databases.

Definitions come from ``SHOW CREATE`` (tables with their AUTO_INCREMENT counters, views,
triggers, routines, events) read with the database selected, so that names inside them
are not qualified with it; rows come over a connection that converts nothing (every value
is the server's own bytes), ordered by every column, invisible ones included.
"""

from __future__ import annotations

from contextlib import closing
from typing import Any

import pymysql
from mariadb_server import ADMIN_USER, MariaDBServer

STAGING_PREFIXES = ("dbkeeper_restore_", "dbkeeper_replaced_")


def _raw(server: MariaDBServer, database: str) -> pymysql.connections.Connection:
    return pymysql.connect(
        unix_socket=str(server.socket),
        user=ADMIN_USER,
        database=database,
        charset="utf8mb4",
        use_unicode=False,
        conv=dict(pymysql.converters.encoders),
    )


def _q(name: bytes) -> str:
    return "`" + name.decode().replace("`", "``") + "`"


def snapshot(server: MariaDBServer, database: str) -> dict[str, Any]:
    """``{"table X": SHOW CREATE, "rows X": [...], "view V": …, "trigger T": …, …}`` of *database*."""
    found: dict[str, Any] = {}
    with closing(_raw(server, database)) as conn, conn.cursor() as cursor:

        def rows(sql: str, args: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
            cursor.execute(sql, args)
            return list(cursor.fetchall())

        ((_, create_db),) = rows(f"SHOW CREATE DATABASE {_q(database.encode())}")
        found["database"] = create_db.replace(_q(database.encode()).encode(), b"`DB`")
        for name, kind in rows("SHOW FULL TABLES"):
            key = name.decode()
            if kind == b"VIEW":
                _, create, charset, collation = rows(f"SHOW CREATE VIEW {_q(name)}")[0]
                found[f"view {key}"] = (create, charset, collation)
                continue
            found[f"table {key}"] = rows(f"SHOW CREATE TABLE {_q(name)}")[0][1]
            columns = rows(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
                "ORDER BY ORDINAL_POSITION",
                (database, key),
            )
            listed = ", ".join(_q(column) for (column,) in columns)
            order = ", ".join(str(i + 1) for i in range(len(columns)))
            found[f"rows {key}"] = rows(f"SELECT {listed} FROM {_q(name)} ORDER BY {order}")
        for name, order in rows(
            "SELECT TRIGGER_NAME, ACTION_ORDER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
            (database,),
        ):
            _, sql_mode, statement, charset, collation, db_collation, _created = rows(
                f"SHOW CREATE TRIGGER {_q(name)}"
            )[0]
            found[f"trigger {name.decode()}"] = (order, sql_mode, statement, charset, collation, db_collation)
        for kind, name in rows(
            "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s",
            (database,),
        ):
            found[f"{kind.decode().lower()} {name.decode()}"] = rows(f"SHOW CREATE {kind.decode()} {_q(name)}")[0]
        for (name,) in rows("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s", (database,)):
            found[f"event {name.decode()}"] = rows(f"SHOW CREATE EVENT {_q(name)}")[0]
    return found


def assert_same_database(server: MariaDBServer, expected: str, actual: str) -> None:
    """Every definition and every row of *actual* equals *expected*'s."""
    want, got = snapshot(server, expected), snapshot(server, actual)
    assert sorted(got) == sorted(want), (
        f"objects differ: only in {expected}: {sorted(set(want) - set(got))}, "
        f"only in {actual}: {sorted(set(got) - set(want))}"
    )
    differing = [key for key in want if want[key] != got[key]]
    assert not differing, f"{actual} differs from {expected} in: {differing}"


def staging_leftovers(server: MariaDBServer) -> list[str]:
    """Working databases a restore should have removed."""
    return [name for (name,) in server.execute("SHOW DATABASES") if str(name).startswith(STAGING_PREFIXES)]


def count(server: MariaDBServer, database: str, table: str) -> int:
    """Rows of one table."""
    ((rows,),) = server.execute(f"SELECT COUNT(*) FROM {_q(database.encode())}.{_q(table.encode())}")
    return int(rows)
