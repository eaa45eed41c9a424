"""URLs, queries, transactions and connection errors against the real server."""

from __future__ import annotations

from pathlib import Path

import pytest
from pg_server import APP_PASSWORD, SUPERUSER, Server

from dbkeeper.connections.database import DatabaseManager
from dbkeeper.errors import DatabaseError, DatabaseNotFoundError
from helpers import assert_one_line_error, dbkeeper


def test_server_listens_on_loopback_and_requires_passwords_over_tcp(pg: Server) -> None:
    assert pg.psql("SHOW listen_addresses").strip() == "127.0.0.1"
    no_password = dbkeeper("query", pg.url("postgres", password=None), "SELECT 1", check=False)
    assert_one_line_error(no_password, "cannot connect to postgresql://app@127.0.0.1", "password")
    superuser = dbkeeper("query", pg.url("postgres", user=SUPERUSER, password=None), "SELECT 1", check=False)
    assert_one_line_error(superuser, "password")


@pytest.mark.parametrize(
    "scheme", ["postgresql", "postgres", "postgresql+psycopg"], ids=["postgresql", "postgres", "psycopg"]
)
def test_url_schemes_and_libpq_parameters(pg: Server, chinook: str, scheme: str) -> None:
    url = pg.url(chinook, scheme=scheme, query="sslmode=disable&application_name=from-url&connect_timeout=5")
    result = dbkeeper(
        "query", url, "SELECT current_user, current_setting('application_name'), count(*) FROM artist", "--json"
    ).json()
    assert result["rows"] == [["app", "from-url", 275]]  # type: ignore[index]


def test_unix_socket_host(pg: Server, chinook: str) -> None:
    url = pg.socket_url(chinook)
    assert url.startswith("postgresql://postgres@/") and f"?host={pg.socket_dir}" in url
    result = dbkeeper("query", url, "SELECT inet_server_addr() IS NULL AS over_socket", "--json").json()
    assert result["rows"] == [[True]]  # type: ignore[index]
    assert dbkeeper("connections", "test", url, "--json").json()["server_version"].startswith("15.")  # type: ignore[index]


def test_libpq_parameters_reach_libpq(pg: Server, chinook: str, tmp_path: Path) -> None:
    """sslmode is passed through: the test server has no TLS, so requiring it fails, in one line."""
    run = dbkeeper("query", pg.url(chinook, query="sslmode=require"), "SELECT 1", check=False)
    assert_one_line_error(run, "server does not support SSL")
    run = dbkeeper("backup", pg.url(chinook, query="sslmode=require"), "--dir", str(tmp_path), check=False)
    assert_one_line_error(run, "server does not support SSL")


def test_execute_and_transactions_through_the_api(pg: Server, chinook: str) -> None:
    with DatabaseManager() as dbs:
        music = dbs.add("music", pg.url(chinook))
        result = music.execute("SELECT name FROM artist WHERE artist_id = :id", {"id": 1})
        assert (result.columns, result.rows, result.duration > 0) == (["name"], [("AC/DC",)], True)
        assert result.as_dicts() == [{"name": "AC/DC"}]
        updated = music.execute("UPDATE artist SET name = 'x' WHERE artist_id <= 3")
        assert updated.rowcount == 3 and updated.columns == []
        with music.transaction() as tx:
            tx.execute("UPDATE artist SET name = :n WHERE artist_id = 1", {"n": "committed"})
        with pytest.raises(DatabaseError), music.transaction() as tx:
            tx.execute("UPDATE artist SET name = 'rolled back' WHERE artist_id = 2")
            tx.execute("INSERT INTO artist (artist_id, name) VALUES (1, 'duplicate key')")
        names = music.execute("SELECT name FROM artist WHERE artist_id IN (1, 2) ORDER BY artist_id").rows
        assert names == [("committed",), ("x",)]
        assert music.execute("SELECT '10:30' AS t").rows == [("10:30",)], "no bind parsing without params"
        assert music.server_version().startswith("15.")
        assert dbs.get("music") is music


def test_wrong_password_is_one_line_and_never_shown(pg: Server, chinook: str, tmp_path: Path) -> None:
    wrong = "Wr0ng-Secret-Pw"
    for args in (
        ("query", pg.url(chinook, password=wrong), "SELECT 1"),
        ("backup", pg.url(chinook, password=wrong), "--dir", str(tmp_path)),
        ("connections", "test", pg.url(chinook, password=wrong)),
    ):
        run = dbkeeper(*args, check=False)
        assert_one_line_error(run, 'password authentication failed for user "app"')
        assert wrong not in run.out + run.err
        assert "app:***@" in run.err


def test_unknown_database(pg: Server, tmp_path: Path) -> None:
    run = dbkeeper("query", pg.url("no_such_db"), "SELECT 1", check=False)
    assert_one_line_error(run, 'database "no_such_db" does not exist')
    assert APP_PASSWORD not in run.err
    run = dbkeeper("backup", pg.url("no_such_db"), "--dir", str(tmp_path), check=False)
    assert_one_line_error(run, 'database "no_such_db" does not exist', "check the database name")
    with DatabaseManager() as dbs, pytest.raises(DatabaseNotFoundError):
        dbs.add("x", pg.url("no_such_db")).execute("SELECT 1")


def test_other_dbapi_is_refused(pg: Server) -> None:
    run = dbkeeper("query", pg.url("postgres", scheme="postgresql+psycopg2"), "SELECT 1", check=False)
    assert_one_line_error(run, "names the DBAPI 'psycopg2'", "postgresql+psycopg://")


def test_backup_and_restore_over_a_unix_socket_with_postgres_scheme(
    pg: Server, chinook: str, new_name: str, tmp_path: Path
) -> None:
    source = pg.socket_url(chinook).replace("postgresql://", "postgres://")
    manifest = dbkeeper("backup", source, "--dir", str(tmp_path), "--json").json()
    assert manifest["source_url"] == source  # type: ignore[index]
    target = pg.socket_url(new_name)
    dbkeeper("restore", manifest["id"], target, "--dir", str(tmp_path))  # type: ignore[index]
    assert pg.schema_dump(new_name) == pg.schema_dump(chinook)
