"""Migrations on real SQLite files: exactly once, never half-applied, drift and order checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dbkeeper.migrations import (
    MigrationError,
    MigrationManager,
    apply_migration,
    create_migration,
    rollback_migration,
    run_migrations,
)
from helpers import BIN, assert_one_line_error, concurrent_migrate_up, dbkeeper
from helpers import write_migration as write


def schema(db: Path) -> str:
    return subprocess.run(["sqlite3", str(db), ".schema"], capture_output=True, text=True, check=True).stdout


def history(db: Path, migrations: Path) -> list[dict]:
    return dbkeeper("migrate", "history", f"sqlite:///{db}", "--dir", str(migrations), "--json").json()


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    """Three migrations; the third depends on the first and sorts first among the free ones."""
    migrations = tmp_path / "migrations"
    write(
        migrations,
        "001_accounts",
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
        "DROP TABLE accounts;",
    )
    write(
        migrations,
        "002_users",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, account_id INTEGER);\n"
        "CREATE INDEX users_account ON users (account_id);",
        "DROP INDEX users_account;\nDROP TABLE users;",
        header="-- dbkeeper: depends-on 001_accounts\n",
    )
    write(
        migrations,
        "003_audit",
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, at TEXT);\n"
        "CREATE TRIGGER accounts_audit AFTER INSERT ON accounts BEGIN\n"
        "  INSERT INTO audit (at) VALUES (datetime('now'));\nEND;",
        "DROP TRIGGER accounts_audit;\nDROP TABLE audit;",
        header="-- dbkeeper: depends-on 002_users\n",
    )
    return migrations


def test_up_status_check_history(chain: Path, tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    url = f"sqlite:///{db}"
    assert dbkeeper("migrate", "check", url, "--dir", str(chain), check=False).code == 1
    applied = dbkeeper("migrate", "up", url, "--dir", str(chain), "--json").json()
    assert [(r["id"], r["outcome"]) for r in applied] == [
        ("001_accounts", "applied"),
        ("002_users", "applied"),
        ("003_audit", "applied"),
    ]
    status = dbkeeper("migrate", "status", url, "--dir", str(chain), "--json").json()
    assert [s["state"] for s in status] == ["applied"] * 3
    dbkeeper("migrate", "check", url, "--dir", str(chain))
    events = history(db, chain)
    assert [(e["id"], e["direction"], e["outcome"]) for e in events] == [
        ("001_accounts", "up", "success"),
        ("002_users", "up", "success"),
        ("003_audit", "up", "success"),
    ]
    assert all(len(e["checksum"]) == 64 and "@" in e["applied_by"] and e["duration_ms"] >= 0 for e in events)
    assert "nothing to do" in dbkeeper("migrate", "up", url, "--dir", str(chain)).err


def test_dependencies_decide_the_order(tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    write(
        migrations,
        "001_b",
        "CREATE TABLE b (a_id INTEGER REFERENCES a (id));",
        header="-- dbkeeper: depends-on 002_a\n",
    )
    write(migrations, "002_a", "CREATE TABLE a (id INTEGER PRIMARY KEY);")
    write(migrations, "003_c", "CREATE TABLE c (x);")
    results = run_migrations(f"sqlite:///{tmp_path}/x.db", migrations)
    assert [r.id for r in results] == ["002_a", "001_b", "003_c"]


def test_up_down_up_leaves_the_schema_of_a_single_up(chain: Path, tmp_path: Path) -> None:
    once, thrice = tmp_path / "once.db", tmp_path / "thrice.db"
    dbkeeper("migrate", "up", f"sqlite:///{once}", "--dir", str(chain))
    for command in (["up"], ["down", "--steps", "3"], ["up"]):
        dbkeeper("migrate", command[0], f"sqlite:///{thrice}", *command[1:], "--dir", str(chain))
    assert schema(thrice) == schema(once)
    directions = [e["direction"] for e in history(thrice, chain)]
    assert directions == ["up"] * 3 + ["down"] * 3 + ["up"] * 3


def test_down_to_and_dry_runs_print_the_exact_sql(chain: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    dry = dbkeeper("migrate", "up", url, "--dir", str(chain), "--dry-run", "--to", "002_users").out
    assert dry == (
        "-- 001_accounts (up, in one transaction)\n"
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
        "-- 002_users (up, in one transaction)\n"
        "CREATE TABLE users (id INTEGER PRIMARY KEY, account_id INTEGER);\n"
        "CREATE INDEX users_account ON users (account_id);\n"
    )
    assert not (tmp_path / "app.db").exists(), "a dry run touches nothing"
    dbkeeper("migrate", "up", url, "--dir", str(chain))
    down = dbkeeper("migrate", "down", url, "--dir", str(chain), "--to", "001_accounts", "--dry-run").out
    assert down.splitlines()[0] == "-- 003_audit (down, in one transaction)"
    assert "DROP INDEX users_account;" in down
    dbkeeper("migrate", "down", url, "--dir", str(chain), "--to", "001_accounts")
    states = [s["state"] for s in dbkeeper("migrate", "status", url, "--dir", str(chain), "--json").json()]
    assert states == ["applied", "pending", "pending"]
    assert dbkeeper("migrate", "down", url, "--steps", "1", "--to", "x", "--dir", str(chain), check=False).code == 2


def test_a_failed_migration_changes_nothing_and_records_nothing(chain: Path, tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    url = f"sqlite:///{db}"
    dbkeeper("migrate", "up", url, "--dir", str(chain))
    before = schema(db)
    write(chain, "004_broken", "CREATE TABLE ok_so_far (x);\nALTER TABLE accounts ADD COLUMN x;\nCREATE TABLE nope (;")
    run = dbkeeper("migrate", "up", url, "--dir", str(chain), check=False)
    assert_one_line_error(run, "004_broken", "statement 3 of 3", "rolled back and nothing was recorded")
    assert schema(db) == before
    assert [e["id"] for e in history(db, chain)] == ["001_accounts", "002_users", "003_audit"]


def test_killed_mid_migration_leaves_nothing_applied(chain: Path, tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    url = f"sqlite:///{db}"
    dbkeeper("migrate", "up", url, "--dir", str(chain))
    before = schema(db)
    write(
        chain,
        "004_slow",
        "CREATE TABLE big (n);\nWITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c "
        "WHERE n < 30000000) INSERT INTO big SELECT n FROM c;",
        "DROP TABLE big;",
    )
    proc = subprocess.Popen([str(BIN / "dbkeeper"), "migrate", "up", url, "--dir", str(chain)], stderr=subprocess.PIPE)
    journal = Path(f"{db}-journal")
    for _ in range(500):
        if journal.exists() and journal.stat().st_size > 0:
            break
        subprocess.run(["sleep", "0.01"])
    proc.kill()
    proc.wait()
    assert schema(db) == before
    status = dbkeeper("migrate", "status", url, "--dir", str(chain), "--json").json()
    assert status[-1]["state"] == "pending"
    (chain / "004_slow.sql").write_text("-- migrate:up\nCREATE TABLE big (n);\n-- migrate:down\nDROP TABLE big;\n")
    dbkeeper("migrate", "up", url, "--dir", str(chain))


def test_eight_concurrent_runs_apply_each_migration_exactly_once(tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    write(migrations, "000_counter", "CREATE TABLE applied (id TEXT NOT NULL);")
    for n in range(1, 25):
        write(migrations, f"{n:03d}_step", f"CREATE TABLE t{n} (x);\nINSERT INTO applied VALUES ('{n:03d}');")
    for round_number in range(3):
        db = tmp_path / f"race{round_number}.db"
        applied = concurrent_migrate_up(f"sqlite:///{db}", migrations)
        assert applied == sorted(p.stem for p in migrations.glob("*.sql"))
        rows = subprocess.run(
            ["sqlite3", str(db), "SELECT id FROM applied ORDER BY id"], capture_output=True, text=True, check=True
        ).stdout.split()
        assert rows == [f"{n:03d}" for n in range(1, 25)]
        assert len([e for e in history(db, migrations) if e["outcome"] == "success"]) == 25


def test_lock_wait_times_out_with_a_clear_message(chain: Path, tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    dbkeeper("migrate", "up", f"sqlite:///{db}", "--dir", str(chain), "--to", "001_accounts")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\nc.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\ntime.sleep(30)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        run = dbkeeper("migrate", "up", f"sqlite:///{db}", "--dir", str(chain), "--lock-timeout", "0.5", check=False)
        assert_one_line_error(run, "waited 0.5s for SQLite's write lock", "--lock-timeout")
    finally:
        holder.kill()
        holder.wait()
    dbkeeper("migrate", "up", f"sqlite:///{db}", "--dir", str(chain))


def test_line_endings_and_bom_are_not_drift_but_edits_are(chain: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    dbkeeper("migrate", "up", url, "--dir", str(chain))
    users = chain / "002_users.sql"
    original = users.read_bytes()
    users.write_bytes(b"\xef\xbb\xbf" + original.replace(b"\n", b"\r\n"))
    dbkeeper("migrate", "check", url, "--dir", str(chain))
    users.write_bytes(original.replace(b"account_id INTEGER)", b"account_id INTEGER NOT NULL)"))
    status = dbkeeper("migrate", "status", url, "--dir", str(chain), "--json").json()
    assert status[1] == {
        "id": "002_users",
        "state": "drifted",
        "applied_at": status[1]["applied_at"],
        "note": f"{users} was edited after it was applied",
    }
    check = dbkeeper("migrate", "check", url, "--dir", str(chain), check=False)
    assert check.code == 1 and "002_users: drifted" in check.out
    assert_one_line_error(
        dbkeeper("migrate", "up", url, "--dir", str(chain), check=False),
        "002_users was edited after it was applied",
        str(users),
    )


def test_deleted_applied_migration_is_reported(chain: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    dbkeeper("migrate", "up", url, "--dir", str(chain))
    (chain / "003_audit.sql").unlink()
    check = dbkeeper("migrate", "check", url, "--dir", str(chain), check=False)
    assert check.code == 1 and "003_audit: missing" in check.out
    assert_one_line_error(dbkeeper("migrate", "up", url, "--dir", str(chain), check=False), "003_audit", "missing")


def test_out_of_order_merge_is_refused_or_applied_loudly(chain: Path, tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    url = f"sqlite:///{db}"
    dbkeeper("migrate", "up", url, "--dir", str(chain))
    write(chain, "0025_from_branch", "CREATE TABLE branch_work (x);", "DROP TABLE branch_work;")
    before = schema(db)
    assert_one_line_error(
        dbkeeper("migrate", "up", url, "--dir", str(chain), check=False),
        "0025_from_branch sorts before 003_audit",
        "--allow-out-of-order",
    )
    assert schema(db) == before
    applied = dbkeeper("migrate", "up", url, "--dir", str(chain), "--allow-out-of-order").out
    assert applied.startswith("applied 0025_from_branch")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("CREATE TABLE x (y);\n", "no '-- migrate:up' line"),
        ("-- migrate:up\n-- just a comment\n-- migrate:down\n", "its up part is empty"),
        ("-- dbkeeper: run-twice\n-- migrate:up\nCREATE TABLE x (y);\n", "unknown directive 'run-twice'"),
        ("-- migrate:down\nDROP TABLE x;\n-- migrate:up\nCREATE TABLE x (y);\n", "is out of place"),
        ("-- dbkeeper: depends-on 999_nowhere\n-- migrate:up\nCREATE TABLE x (y);\n", "depends on 999_nowhere"),
    ],
)
def test_malformed_files_fail_clearly_and_touch_nothing(
    chain: Path, tmp_path: Path, content: str, message: str
) -> None:
    db = tmp_path / "fresh.db"
    (chain / "004_bad.sql").write_text(content)
    for command in ("up", "status", "check"):
        run = dbkeeper("migrate", command, f"sqlite:///{db}", "--dir", str(chain), check=False)
        assert run.code == 1, command
        assert message in run.out + run.err and "Traceback" not in run.err
    assert not db.exists(), "a broken migration set never touches the database"


def test_dependency_cycle_names_the_migrations(tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    write(migrations, "001_a", "CREATE TABLE a (x);", header="-- dbkeeper: depends-on 003_c\n")
    write(migrations, "002_b", "CREATE TABLE b (x);", header="-- dbkeeper: depends-on 001_a\n")
    write(migrations, "003_c", "CREATE TABLE c (x);", header="-- dbkeeper: depends-on 002_b\n")
    run = dbkeeper("migrate", "up", f"sqlite:///{tmp_path}/x.db", "--dir", str(migrations), check=False)
    assert_one_line_error(run, "dependency cycle: 001_a → 003_c → 002_b → 001_a")


def test_no_transaction_is_refused_on_sqlite(tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    write(migrations, "001_vacuum", "VACUUM;", header="-- dbkeeper: no-transaction\n")
    run = dbkeeper("migrate", "up", f"sqlite:///{tmp_path}/x.db", "--dir", str(migrations), check=False)
    assert_one_line_error(run, "asks for no-transaction", "remove the directive")


def test_python_api_and_migrate_new(tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    path = create_migration(migrations, "Create Users!")
    assert path.name.endswith("_create_users.sql") and "-- migrate:up" in path.read_text()
    with pytest.raises(MigrationError, match="its up part is empty"):
        run_migrations(f"sqlite:///{tmp_path}/x.db", migrations)
    path.unlink()
    write(migrations, "001_a", "CREATE TABLE a (x);", "DROP TABLE a;")
    write(migrations, "002_b", "CREATE TABLE b (x);", "DROP TABLE b;")
    url = f"sqlite:///{tmp_path}/x.db"
    assert [r.id for r in apply_migration(url, "001_a", migrations)] == ["001_a"]
    assert [r.id for r in run_migrations(url, migrations)] == ["002_b"]
    assert [(r.id, r.outcome) for r in rollback_migration(url, "001_a", migrations)] == [
        ("002_b", "rolled back"),
        ("001_a", "rolled back"),
    ]
    assert [s.state for s in MigrationManager(url, migrations).status()] == ["pending", "pending"]
    created = dbkeeper("migrate", "new", "add index", "--dir", str(migrations)).out.strip()
    assert Path(created).parent == migrations and created.endswith("_add_index.sql")


def test_per_connection_migrations_directory(chain: Path, tmp_path: Path) -> None:
    (tmp_path / "dbkeeper.toml").write_text(
        f'[connections.app]\nurl = "sqlite:///{tmp_path}/app.db"\nmigrations = "{chain.name}"\n'
    )
    applied = dbkeeper("migrate", "up", "app", "--json", cwd=tmp_path).json()
    assert len(applied) == 3
