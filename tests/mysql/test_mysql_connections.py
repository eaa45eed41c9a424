"""Connections and queries against the real server: every URL form, sockets, utf8mb4, transactions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from mariadb_server import MariaDBServer

from dbkeeper.connections.database import DatabaseManager
from dbkeeper.errors import DatabaseError
from helpers import dbkeeper


@pytest.fixture
def scratch(mariadb: MariaDBServer, new_database: Callable[[str], str]) -> str:
    name = new_database("conn")
    mariadb.recreate(name)
    mariadb.execute("CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(100))", database=name)
    return name


@pytest.mark.parametrize(
    ("scheme", "socket"), [("mysql", False), ("mariadb", False), ("mysql+pymysql", False), ("mysql", True)]
)
def test_every_url_form_connects_and_queries(mariadb: MariaDBServer, scratch: str, scheme: str, socket: bool) -> None:
    with DatabaseManager() as dbs:
        conn = dbs.add("db", mariadb.url(scratch, scheme=scheme, socket=socket))
        inserted = conn.execute("INSERT INTO notes (body) VALUES (:body)", {"body": "emoji 🎉 and 中文"})
        assert inserted.rowcount == 1
        result = conn.execute("SELECT id, body FROM notes")
        assert result.columns == ["id", "body"]
        assert result.rows == [(1, "emoji 🎉 and 中文")]
        assert result.as_dicts() == [{"id": 1, "body": "emoji 🎉 and 中文"}]
        assert conn.execute("SELECT @@character_set_client, DATABASE()").rows == [("utf8mb4", scratch)]
        if socket:
            assert conn.execute("SELECT USER()").rows[0][0].endswith("@localhost")
        ((version,),) = mariadb.execute("SELECT VERSION()")
        assert version.startswith(conn.server_version())


def test_transactions_commit_or_roll_back(mariadb: MariaDBServer, scratch: str) -> None:
    with DatabaseManager() as dbs:
        conn = dbs.add("db", mariadb.url(scratch))
        with conn.transaction() as tx:
            tx.execute("INSERT INTO notes (body) VALUES ('kept')")
            tx.execute("INSERT INTO notes (body) VALUES (:b)", {"b": "also kept"})
        with pytest.raises(RuntimeError), conn.transaction() as tx:
            tx.execute("INSERT INTO notes (body) VALUES ('rolled back')")
            raise RuntimeError("abort")
        with pytest.raises(DatabaseError, match=r"query failed: .*nope"):
            conn.execute("SELECT * FROM nope")
        assert conn.execute("SELECT body FROM notes ORDER BY id").rows == [("kept",), ("also kept",)]


def test_cli_query_json(mariadb: MariaDBServer, scratch: str) -> None:
    mariadb.execute("INSERT INTO notes (body) VALUES ('one'), (NULL), ('')", database=scratch)
    result = dbkeeper("query", mariadb.url(scratch), "SELECT id, body FROM notes ORDER BY id", "--json").json()
    assert result["columns"] == ["id", "body"]
    assert result["rows"] == [[1, "one"], [2, None], [3, ""]]
