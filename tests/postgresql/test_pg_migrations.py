"""Migrations on a real PostgreSQL server: transactional, exactly once, never half-applied."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pg_server import APP_USER, Server

from helpers import assert_one_line_error, concurrent_migrate_up, dbkeeper, write_migration

CHAIN = [
    (
        "001_types",
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');\nCREATE SCHEMA app;",
        "DROP SCHEMA app;\nDROP TYPE mood;",
    ),
    (
        "002_people",
        "CREATE TABLE app.people (id serial PRIMARY KEY, name text NOT NULL, feeling mood DEFAULT 'ok');\n"
        "CREATE FUNCTION app.shout(t text) RETURNS text LANGUAGE plpgsql AS $$\n"
        "BEGIN\n  RETURN upper(t) || '!';  -- a ; inside a body\nEND;\n$$;",
        "DROP FUNCTION app.shout(text);\nDROP TABLE app.people;",
    ),
    (
        "003_audit",
        "CREATE TABLE app.audit (at timestamptz DEFAULT now(), who text);\n"
        "CREATE FUNCTION app.log_person() RETURNS trigger LANGUAGE plpgsql AS $body$\n"
        "BEGIN INSERT INTO app.audit (who) VALUES (NEW.name); RETURN NEW; END;\n$body$;\n"
        "CREATE TRIGGER people_audit AFTER INSERT ON app.people FOR EACH ROW EXECUTE FUNCTION app.log_person();",
        "DROP TRIGGER people_audit ON app.people;\nDROP FUNCTION app.log_person();\nDROP TABLE app.audit;",
    ),
]


def new_database(pg: Server, name: str) -> str:
    pg.psql(f"CREATE DATABASE {name} OWNER {APP_USER} TEMPLATE template0")  # empty, whatever template1 holds
    return pg.url(name)


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    for migration_id, up, down in CHAIN:
        write_migration(tmp_path / "migrations", migration_id, up, down)
    return tmp_path / "migrations"


def test_up_down_up_equals_a_single_up(pg: Server, chain: Path) -> None:
    once, thrice = new_database(pg, "mig_once"), new_database(pg, "mig_thrice")
    dbkeeper("migrate", "up", once, "--dir", str(chain))
    for command in (["up"], ["down", "--steps", "3"], ["up"]):
        dbkeeper("migrate", command[0], thrice, *command[1:], "--dir", str(chain))
    assert pg.schema_dump("mig_thrice") == pg.schema_dump("mig_once")
    pg.psql("INSERT INTO app.people (name) VALUES ('ada')", database="mig_thrice")
    assert pg.psql("SELECT app.shout(who) FROM app.audit", database="mig_thrice").strip() == "ADA!"


def test_a_failed_migration_changes_nothing_and_records_nothing(pg: Server, chain: Path) -> None:
    url = new_database(pg, "mig_fail")
    dbkeeper("migrate", "up", url, "--dir", str(chain))
    before = pg.schema_dump("mig_fail")
    write_migration(
        chain,
        "004_broken",
        "CREATE TABLE app.more (x int);\nALTER TABLE app.people ADD COLUMN y int;\n"
        "ALTER TABLE app.nowhere ADD COLUMN z int;",
    )
    run = dbkeeper("migrate", "up", url, "--dir", str(chain), check=False)
    assert_one_line_error(run, "004_broken", "statement 3 of 3", "rolled back and nothing was recorded")
    assert pg.schema_dump("mig_fail") == before
    events = dbkeeper("migrate", "history", url, "--dir", str(chain), "--json").json()
    assert [e["id"] for e in events] == ["001_types", "002_people", "003_audit"]


def test_eight_concurrent_runs_apply_each_migration_exactly_once(pg: Server, tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    write_migration(migrations, "000_applied", "CREATE TABLE applied (id text NOT NULL);")
    for n in range(1, 16):
        write_migration(
            migrations, f"{n:03d}_step", f"CREATE TABLE t{n} (x int);\nINSERT INTO applied VALUES ('{n:03d}');"
        )
    for round_number in range(2):
        url = new_database(pg, f"mig_race{round_number}")
        assert concurrent_migrate_up(url, migrations) == sorted(p.stem for p in migrations.glob("*.sql"))
        rows = pg.psql("SELECT id FROM applied ORDER BY id", database=f"mig_race{round_number}").split()
        assert rows == [f"{n:03d}" for n in range(1, 16)]


def test_no_transaction_migration_runs_journaled(pg: Server, chain: Path) -> None:
    url = new_database(pg, "mig_concurrently")
    write_migration(
        chain,
        "004_index",
        "CREATE INDEX CONCURRENTLY people_name ON app.people (name);",
        "DROP INDEX CONCURRENTLY app.people_name;",
        header="-- dbkeeper: no-transaction\n",
    )
    dry = dbkeeper("migrate", "up", url, "--dir", str(chain), "--dry-run").out
    assert "-- 004_index (up, statement by statement, journaled)" in dry
    dbkeeper("migrate", "up", url, "--dir", str(chain))
    assert "people_name" in pg.psql(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'app'", database="mig_concurrently"
    )
    dbkeeper("migrate", "down", url, "--dir", str(chain))
    assert "people_name" not in pg.psql("SELECT indexname FROM pg_indexes", database="mig_concurrently")


def test_lock_wait_times_out_with_a_clear_message(pg: Server, chain: Path) -> None:
    from dbkeeper_postgresql.migrations import LOCK_KEY

    url = new_database(pg, "mig_locked")
    holder = subprocess.Popen(
        ["psql", "-X", "-q", "-h", str(pg.socket_dir), "-p", str(pg.port), "-U", "postgres", "-d", "mig_locked",
         "-c", f"SELECT pg_advisory_lock({LOCK_KEY})", "-c", "SELECT pg_sleep(20)"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=pg.admin_env(),
    )  # fmt: skip
    try:
        for _ in range(200):
            if (
                pg.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'", database="mig_locked").strip()
                != "0"
            ):
                break
            subprocess.run(["sleep", "0.05"])
        run = dbkeeper("migrate", "up", url, "--dir", str(chain), "--lock-timeout", "1", check=False)
        assert_one_line_error(run, "waited 1s for the migration lock", "--lock-timeout")
    finally:
        holder.kill()
        holder.wait()
        # its session would go on sleeping, holding the lock, until pg_sleep ends
        pg.psql("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'", database="mig_locked")
    dbkeeper("migrate", "up", url, "--dir", str(chain))
