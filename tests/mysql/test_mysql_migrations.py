"""Migrations on a real MariaDB server, where every DDL statement commits by itself.

Each failure is injected for real: a statement that fails at each position in turn,
and ``kill -9`` of the migrating process at each statement in turn. After the next run
the schema must equal the schema before the migration (then the migration is applied
afresh), or the state must be reported as failed with the statements that ran.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql
import pytest
from mariadb_server import MariaDBServer
from mysql_snapshot import snapshot

from helpers import BIN, assert_one_line_error, concurrent_migrate_up, dbkeeper, write_migration

UP = [
    "CREATE TABLE m_a (id INT PRIMARY KEY, label VARCHAR(20))",
    "ALTER TABLE base ADD COLUMN extra INT NOT NULL DEFAULT 7",
    "CREATE INDEX base_extra ON base (extra)",
    "CREATE VIEW m_view AS SELECT id, extra FROM base",
]
DOWN = [  # the inverses, in reverse order: the k-th from the end undoes the k-th up statement
    "DROP VIEW m_view",
    "DROP INDEX base_extra ON base",
    "ALTER TABLE base DROP COLUMN extra",
    "DROP TABLE m_a",
]


def schema(mariadb: MariaDBServer, database: str) -> dict[str, Any]:
    """SHOW CREATE of every object, without the history table (its AUTO_INCREMENT moves)."""
    return {
        k: v for k, v in snapshot(mariadb, database).items() if not k.startswith("rows ") and "_migrations" not in k
    }


@pytest.fixture
def database(mariadb: MariaDBServer, new_database: Callable[[str], str]) -> str:
    name = new_database("migrate")
    mariadb.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    mariadb.execute("CREATE TABLE base (id INT PRIMARY KEY, name VARCHAR(40))", database=name)
    mariadb.execute("INSERT INTO base VALUES " + ", ".join(f"({i}, 'row {i}')" for i in range(1, 201)), database=name)
    return name


def write_step(directory: Path, up: list[str], down: list[str], migration_id: str = "002_step") -> None:
    write_migration(directory, migration_id, ";\n".join(up) + ";", ";\n".join(down) + ";")


def test_up_down_up_equals_a_single_up(
    mariadb: MariaDBServer, new_database: Callable[[str], str], tmp_path: Path
) -> None:
    migrations = tmp_path / "m"
    write_migration(
        migrations, "001_base", "CREATE TABLE base (id INT PRIMARY KEY, name VARCHAR(40));", "DROP TABLE base;"
    )
    write_step(migrations, UP, DOWN)
    write_migration(
        migrations, "003_routine",
        "DELIMITER //\nCREATE PROCEDURE bump() BEGIN UPDATE base SET extra = extra + 1; SELECT 1; END//\n"
        "DELIMITER ;\nCREATE TRIGGER base_name BEFORE INSERT ON base FOR EACH ROW SET NEW.name = UPPER(NEW.name);",
        "DROP TRIGGER base_name;\nDROP PROCEDURE bump;",
    )  # fmt: skip
    once, thrice = new_database("once"), new_database("thrice")
    for name in (once, thrice):
        mariadb.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    dbkeeper("migrate", "up", mariadb.url(once), "--dir", str(migrations))
    for command in (["up"], ["down", "--steps", "3"], ["up"]):
        dbkeeper("migrate", command[0], mariadb.url(thrice), *command[1:], "--dir", str(migrations))
    assert schema(mariadb, thrice) == schema(mariadb, once)
    assert "procedure bump" in schema(mariadb, once) and "trigger base_name" in schema(mariadb, once)


@pytest.mark.parametrize("failing", range(len(UP)))
def test_a_failure_at_each_statement_is_undone(mariadb: MariaDBServer, database: str, tmp_path: Path,
                                               failing: int) -> None:  # fmt: skip
    migrations = tmp_path / "m"
    up = list(UP)
    up[failing] = "ALTER TABLE no_such_table ADD COLUMN x INT"
    write_step(migrations, up, DOWN)
    before = schema(mariadb, database)
    run = dbkeeper("migrate", "up", mariadb.url(database), "--dir", str(migrations), check=False)
    assert_one_line_error(run, f"statement {failing + 1} of {len(UP)} failed", "the database is as it was before")
    assert schema(mariadb, database) == before
    (event,) = dbkeeper("migrate", "history", mariadb.url(database), "--dir", str(migrations), "--json").json()
    assert (event["outcome"], event["statements_done"]) == ("undone", failing)
    write_step(migrations, UP, DOWN)  # the fixed file
    dbkeeper("migrate", "up", mariadb.url(database), "--dir", str(migrations), "--allow-out-of-order")
    assert "view m_view" in schema(mariadb, database)


def test_a_failure_that_cannot_be_undone_stops_every_run_until_repair(
    mariadb: MariaDBServer, database: str, tmp_path: Path
) -> None:
    migrations = tmp_path / "m"
    write_step(migrations, [*UP[:2], "ALTER TABLE no_such_table ADD COLUMN x INT"], ["DROP TABLE m_a"])
    run = dbkeeper("migrate", "up", mariadb.url(database), "--dir", str(migrations), check=False)
    assert_one_line_error(run, "statements 1-2 of 002_step.sql ran", "migrate repair")
    status = dbkeeper("migrate", "status", mariadb.url(database), "--dir", str(migrations), "--json").json()
    assert status[0]["state"] == "failed" and "statements 1-2" in status[0]["note"]
    assert_one_line_error(
        dbkeeper("migrate", "up", mariadb.url(database), "--dir", str(migrations), check=False),
        "is marked failed",
        "migrate repair",
    )
    mariadb.execute("DROP TABLE m_a", "ALTER TABLE base DROP COLUMN extra", database=database)  # the fix, by hand
    assert dbkeeper("migrate", "repair", mariadb.url(database), "--dir", str(migrations)).out.strip() == (
        "repaired 002_step (now pending)"
    )
    write_step(migrations, UP, DOWN)
    dbkeeper("migrate", "up", mariadb.url(database), "--dir", str(migrations))


def running_statement(mariadb: MariaDBServer, database: str) -> int:
    """The statement the running migration is in, per its journal (0 before the history exists)."""
    try:
        rows = mariadb.execute(
            "SELECT statements_started FROM _migrations WHERE outcome = 'running'", database=database
        )
    except pymysql.err.ProgrammingError:  # the history table is not created yet
        return 0
    return int(rows[0][0]) if rows else 0


@pytest.mark.parametrize("victim", range(1, 2 * len(UP) + 1))
def test_kill_9_at_each_statement_is_settled_by_the_next_run(
    mariadb: MariaDBServer, database: str, tmp_path: Path, victim: int
) -> None:
    """Each statement is followed by a short sleep; the process is killed once statement *victim* has started."""
    migrations = tmp_path / "m"
    slow_up = [s for statement in UP for s in (statement, "DO SLEEP(0.4)")]
    slow_down = [s for statement in DOWN for s in ("DO 0", statement)]
    write_step(migrations, slow_up, slow_down)
    proc = subprocess.Popen([str(BIN / "dbkeeper"), "migrate", "up", mariadb.url(database), "--dir", str(migrations)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 30
    while running_statement(mariadb, database) < victim:
        assert proc.poll() is None and time.monotonic() < deadline, "the migration finished before the kill"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rerun = dbkeeper("migrate", "up", mariadb.url(database), "--dir", str(migrations), "--json", check=False)
    events = dbkeeper("migrate", "history", mariadb.url(database), "--dir", str(migrations), "--json").json()
    if rerun.code == 0:  # undone, then applied afresh
        assert [e["outcome"] for e in events] == ["undone", "success"]
        assert [r["outcome"] for r in json.loads(rerun.out)] == ["recovered", "applied"]
        assert "view m_view" in schema(mariadb, database)
    else:  # where it cannot know, it says so and lists what ran
        assert events[-1]["outcome"] == "failed" and "may have" in events[-1]["detail"]
        assert "may have" in rerun.err and "migrate repair" in rerun.err


def test_eight_concurrent_runs_apply_each_migration_exactly_once(
    mariadb: MariaDBServer, database: str, tmp_path: Path
) -> None:
    migrations = tmp_path / "m"
    write_migration(migrations, "000_applied", "CREATE TABLE applied (id VARCHAR(8) NOT NULL);", "DROP TABLE applied;")
    for n in range(1, 13):
        write_migration(
            migrations,
            f"{n:03d}_step",
            f"CREATE TABLE t{n} (x INT);\nINSERT INTO applied VALUES ('{n:03d}');",
            f"DELETE FROM applied WHERE id = '{n:03d}';\nDROP TABLE t{n};",
        )
    assert concurrent_migrate_up(mariadb.url(database), migrations) == sorted(p.stem for p in migrations.glob("*.sql"))
    rows = [row[0] for row in mariadb.execute("SELECT id FROM applied ORDER BY id", database=database)]
    assert rows == [f"{n:03d}" for n in range(1, 13)]
