"""Small CLI edges: ``migrate rollback``, in-memory URLs for queries, where a bad URL came from."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from helpers import assert_one_line_error, dbkeeper
from helpers import write_migration as write


def tables(db: Path) -> list[str]:
    """The tables the migrations made (``a``, ``b``), sorted."""
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM sqlite_schema WHERE name IN ('a', 'b') ORDER BY 1")]


def test_migrate_rollback_is_migrate_down(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    migrations = tmp_path / "migrations"
    write(migrations, "001_a", "CREATE TABLE a (id INTEGER);", "DROP TABLE a;")
    write(migrations, "002_b", "CREATE TABLE b (id INTEGER);", "DROP TABLE b;")
    url = f"sqlite:///{db}"
    dbkeeper("migrate", "up", url, "--dir", str(migrations))
    dry = dbkeeper("migrate", "rollback", url, "--dir", str(migrations), "--dry-run")
    assert dry.out == dbkeeper("migrate", "down", url, "--dir", str(migrations), "--dry-run").out
    assert "DROP TABLE b;" in dry.out
    rolled = dbkeeper("migrate", "rollback", url, "--dir", str(migrations), "--json").json()
    assert [(r["id"], r["direction"], r["outcome"]) for r in rolled] == [("002_b", "down", "rolled back")]
    assert tables(db) == ["a"]
    dbkeeper("migrate", "rollback", url, "--dir", str(migrations), "--steps", "1")
    assert tables(db) == []
    assert "nothing to roll back" in dbkeeper("migrate", "rollback", url, "--dir", str(migrations)).err


def test_migrate_help_shows_the_rollback_alias() -> None:
    listing = dbkeeper("migrate", "--help").out
    assert "down (rollback)" in listing
    assert "\n  rollback" not in listing  # one command, listed once
    usage = dbkeeper("migrate", "rollback", "--help").out
    assert usage.startswith("Usage: dbkeeper migrate rollback [OPTIONS] [CONNECTION]")
    assert "--steps" in usage and "--to ID" in usage


def test_query_of_an_in_memory_url_speaks_of_queries() -> None:
    for url in ("sqlite://", "sqlite:///:memory:"):
        for args in (("query", url, "SELECT 1"), ("connections", "test", url)):
            run = dbkeeper(*args, check=False)
            assert_one_line_error(run, "in-memory")
            assert "nothing in it to query" in run.err and "back up or restore" not in run.err, run.err


def test_a_malformed_database_url_is_named_as_coming_from_the_environment(tmp_path: Path) -> None:
    bad = {"DATABASE_URL": "postgresql://app:s3cr3tpw@db:notaport/app"}
    for args in (("query", "", "SELECT 1"), ("backup", "--dir", str(tmp_path / "b")), ("migrate", "status")):
        run = dbkeeper(*args, env=bad, cwd=tmp_path, check=False)
        assert_one_line_error(run)
        assert "(from the DATABASE_URL environment variable)" in run.err, run.err
        assert "s3cr3tpw" not in run.err
    run = dbkeeper("connections", "test", env={"DATABASE_URL": "app.db"}, cwd=tmp_path, check=False)
    assert_one_line_error(run)
    assert "malformed database URL 'app.db' (from the DATABASE_URL environment variable)" in run.err
    assert not (tmp_path / "b").exists()


def test_a_malformed_url_from_a_config_variable_names_the_variable(tmp_path: Path) -> None:
    config = tmp_path / "dbkeeper.toml"
    config.write_text('[connections.prod]\nurl = "${PROD_URL}"\n\n[connections.typo]\nurl = "sqlite:/app.db"\n')
    run = dbkeeper("query", "prod", "SELECT 1", cwd=tmp_path, env={"PROD_URL": "app.db"}, check=False)
    assert_one_line_error(run)
    assert "(from connection 'prod' in dbkeeper.toml, with ${PROD_URL} from the environment)" in run.err, run.err
    run = dbkeeper("query", "typo", "SELECT 1", cwd=tmp_path, check=False)
    assert_one_line_error(run)
    assert "malformed database URL 'sqlite:/app.db' (from connection 'typo' in dbkeeper.toml)" in run.err, run.err
