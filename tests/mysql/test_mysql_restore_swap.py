"""``restore --force`` is whole or nothing: kill -9 at any moment, a lock held by an application, SIGTERM.

The target starts as OLD (tables, rows, two ordered triggers, a view, a function, an
event); the backup holds NEW (other tables, rows and programs). Whatever happens to the
restoring process, once the next restore on the server has settled the leftovers the
target is exactly OLD or exactly NEW — compared by the server's own ``SHOW CREATE`` output
and every row (tests/mysql/mysql_snapshot.py) — and no working database is left.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pymysql
import pytest
from mariadb_server import TEST_USER, MariaDBServer
from mysql_snapshot import snapshot, staging_leftovers

from dbkeeper.connections.urls import DatabaseURL
from dbkeeper_mysql.catalog import Inventory, drop_programs, inventory, q, query
from dbkeeper_mysql.pydump import trigger_script
from dbkeeper_mysql.server import ServerTarget
from dbkeeper_mysql.swap import PENDING, SWAPPED, Journal, Plan, Workspace
from helpers import BIN, assert_one_line_error, dbkeeper

KILL_MOMENTS = 25
WAIT_SECONDS = 60

OLD = """
CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL, qty INT NOT NULL);
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(100));
CREATE TABLE old_only (x INT);
INSERT INTO items VALUES (1, 'old-a', 1), (2, 'old-b', 2);
INSERT INTO old_only VALUES (7);
CREATE TRIGGER items_first AFTER INSERT ON items FOR EACH ROW INSERT INTO audit (note) VALUES (CONCAT('old ', NEW.id));
CREATE TRIGGER items_second AFTER INSERT ON items FOR EACH ROW INSERT INTO audit (note) VALUES ('old second');
CREATE VIEW item_names AS SELECT name FROM items;
CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN 2 * x;
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM audit;
"""

NEW = """
CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(80) NOT NULL, qty INT NOT NULL, price DECIMAL(8,2));
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(100), at DATETIME);
CREATE TABLE new_only (y VARCHAR(20));
INSERT INTO items SELECT seq, CONCAT('new-', seq), seq % 9, seq / 7 FROM seq_1_to_3000;
INSERT INTO new_only VALUES ('fresh');
CREATE TRIGGER items_check BEFORE INSERT ON items FOR EACH ROW SET NEW.qty = GREATEST(NEW.qty, 0);
CREATE TRIGGER items_first AFTER INSERT ON items FOR EACH ROW INSERT INTO audit (note) VALUES (CONCAT('new ', NEW.id));
CREATE VIEW item_totals AS SELECT name, qty * price AS total FROM items;
CREATE PROCEDURE restock(IN n INT) UPDATE items SET qty = qty + n;
CREATE EVENT hourly ON SCHEDULE EVERY 1 HOUR STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM new_only;
"""


@pytest.fixture(scope="module")
def states(mariadb: MariaDBServer) -> dict[str, str]:
    """Reference databases OLD and NEW (never changed by the tests)."""
    for name, sql in (("swap_old", OLD), ("swap_new", NEW)):
        mariadb.recreate(name)
        mariadb.load_sql(name, sql.encode())
    return {"old": "swap_old", "new": "swap_new"}


@pytest.fixture(scope="module")
def new_backup(
    mariadb: MariaDBServer, states: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """A backup of NEW: its directory and id."""
    backups = tmp_path_factory.mktemp("swap-backups")
    manifest: Any = dbkeeper("backup", mariadb.url(states["new"]), "--dir", str(backups), "--json").json()
    return backups, manifest["id"]


def _reset_to_old(mariadb: MariaDBServer, target: str) -> None:
    mariadb.recreate(target)
    mariadb.load_sql(target, OLD.encode())


def _restore_argv(mariadb: MariaDBServer, new_backup: tuple[Path, str], target: str, url_query: str = "") -> list[str]:
    backups, backup_id = new_backup
    url = mariadb.url(target) + url_query
    return [str(BIN / "dbkeeper"), "-q", "restore", backup_id, url, "--dir", str(backups), "--force"]


def _which_state(mariadb: MariaDBServer, states: dict[str, str], target: str) -> str:
    """``old`` or ``new``: which reference database *target* equals exactly (fails if neither)."""
    got = snapshot(mariadb, target)
    for state, reference in states.items():
        if got == snapshot(mariadb, reference):
            return state
    old, new = snapshot(mariadb, states["old"]), snapshot(mariadb, states["new"])
    raise AssertionError(f"{target} is neither OLD nor NEW: differs from OLD in {_differing(got, old)}, "
                         f"from NEW in {_differing(got, new)}")  # fmt: skip


def _differing(one: dict[str, Any], other: dict[str, Any]) -> list[str]:
    return sorted(key for key in one.keys() | other.keys() if one.get(key) != other.get(key))


def _sessions(mariadb: MariaDBServer) -> set[int]:
    """The test user's sessions on the server."""
    return {int(ident) for (ident,) in mariadb.execute(
        f"SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{TEST_USER}'"
    )}  # fmt: skip


def _wait_for_sessions_to_end(mariadb: MariaDBServer, earlier: set[int]) -> None:
    """Wait until the server has seen every session of the test user but *earlier* end (a killed process's too)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while _sessions(mariadb) - earlier:
        assert time.monotonic() < deadline, "the killed restore's connections never ended"
        time.sleep(0.05)


def _next_run_settles(mariadb: MariaDBServer, new_backup: tuple[Path, str], scratch: str) -> str:
    """Another restore on the same server (into another database): it settles the leftovers first."""
    mariadb.execute(f"DROP DATABASE IF EXISTS `{scratch}`")
    argv = _restore_argv(mariadb, new_backup, scratch)
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    return run.stderr


def test_kill_9_at_any_moment_leaves_the_old_or_the_new_database_whole(
    mariadb: MariaDBServer, states: dict[str, str], new_backup: tuple[Path, str],
    new_database: Callable[[str], str],
) -> None:  # fmt: skip
    """Before: some kill moments left NEW tables without their views and triggers, and working databases."""
    target, scratch = new_database("killed"), new_database("next")
    _reset_to_old(mariadb, target)
    started = time.monotonic()
    subprocess.run(_restore_argv(mariadb, new_backup, target), check=True, capture_output=True, timeout=300)
    duration = time.monotonic() - started
    assert _which_state(mariadb, states, target) == "new"
    outcomes = []
    for moment in range(KILL_MOMENTS):
        _reset_to_old(mariadb, target)
        earlier = _sessions(mariadb)
        proc = subprocess.Popen(_restore_argv(mariadb, new_backup, target), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(duration * (moment + 0.5) / KILL_MOMENTS)
        proc.kill()
        proc.wait()
        _wait_for_sessions_to_end(mariadb, earlier)
        notes = _next_run_settles(mariadb, new_backup, scratch)
        outcomes.append(_which_state(mariadb, states, target))
        assert staging_leftovers(mariadb) == [], (moment, notes)
    print("kill -9 outcomes:", outcomes)


def test_a_lock_held_by_an_application_is_waited_for_a_bounded_time_and_named(
    mariadb: MariaDBServer, states: dict[str, str], new_backup: tuple[Path, str], new_database: Callable[[str], str]
) -> None:
    """Before: the old triggers were dropped, then RENAME TABLE waited for the lock for ever."""
    target = new_database("locked")
    _reset_to_old(mariadb, target)
    with closing(mariadb.admin(target)) as app, app.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SELECT COUNT(*) FROM items")
        cursor.execute("SELECT CONNECTION_ID()")
        ((session,),) = cursor.fetchall()
        argv = _restore_argv(mariadb, new_backup, target, "?lock_wait_timeout=2")
        run = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        app.rollback()
    assert run.returncode == 1, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    for fragment in (f"tables of `{target}` are in use", "2 s (lock_wait_timeout)", f"session {session} (",
                     "the target was not changed"):  # fmt: skip
        assert fragment in lines[0], lines[0]
    assert _which_state(mariadb, states, target) == "old"
    assert staging_leftovers(mariadb) == []


def test_sigterm_while_waiting_for_the_lock_says_the_target_is_unchanged(
    mariadb: MariaDBServer, states: dict[str, str], new_backup: tuple[Path, str], new_database: Callable[[str], str]
) -> None:
    """Before: the triggers were already gone, yet the message said nothing partial was left behind."""
    target = new_database("sigterm")
    _reset_to_old(mariadb, target)
    with closing(mariadb.admin(target)) as app, app.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SELECT COUNT(*) FROM items")
        proc = subprocess.Popen(_restore_argv(mariadb, new_backup, target), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        _wait_for_lock_wait(mariadb, proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT_SECONDS)
        app.rollback()
    assert proc.returncode == 130, err
    assert "unchanged" in err and "Traceback" not in err, err
    assert _which_state(mariadb, states, target) == "old"
    assert staging_leftovers(mariadb) == []


def _wait_for_lock_wait(mariadb: MariaDBServer, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not mariadb.execute(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
        f"WHERE USER = '{TEST_USER}' AND STATE = 'Waiting for table metadata lock'"
    )[0][0]:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the restore never waited for the lock"
        time.sleep(0.02)


# -- the two states a death can leave, made exactly, then settled by the next run ----------


def _died_at(mariadb: MariaDBServer, new_backup: tuple[Path, str], target: str, phase: str) -> None:
    """Leave what a restore of NEW into *target* (holding OLD) leaves when it dies in *phase*.

    ``pending``: its staging loaded, the plan recorded, the target's old triggers dropped —
    the moment before the RENAME. ``swapped``: the RENAME done — the new tables in the
    target, none of its new triggers, views, routines or events yet.
    """
    server = ServerTarget.from_url(DatabaseURL.parse(mariadb.url(target)))
    journal = Journal(server, Workspace.new())
    with closing(server.connect()) as conn:
        journal._begin(conn, "CHARACTER SET utf8mb4")
        staging = journal.workspace.staging
        mariadb.load_sql(staging, NEW.encode())
        new = (inventory(conn, staging) or Inventory()).programs()
        programs = _programs_script(new_backup)
        drop_programs(conn, staging, new)
        old = inventory(conn, target)
        assert old is not None
        with closing(server.connect(target, use_unicode=False, conv=dict(pymysql.converters.encoders))) as raw:
            old_triggers = b"".join(trigger_script(raw, name) for name in old.triggers)
        plan = Plan(target, False, False, old.programs(), new, old_triggers, programs)
        journal.record(conn, plan)
        drop_programs(conn, target, Inventory(triggers=old.triggers))
        if phase == SWAPPED:
            ws = journal.workspace
            query(conn, f"CREATE DATABASE {q(ws.replaced)}")
            moves = [f"{q(target)}.{q(name)} TO {q(ws.replaced)}.{q(name)}" for name in old.tables]
            moves += [f"{q(staging)}.{q(name)} TO {q(target)}.{q(name)}" for name in ("audit", "items", "new_only")]
            moves.append(f"{q(ws.journal)}.{PENDING} TO {q(ws.journal)}.{SWAPPED}")
            query(conn, "RENAME TABLE " + ", ".join(moves))


def _artifacts(new_backup: tuple[Path, str]) -> list[str]:
    backups, backup_id = new_backup
    return sorted(path.name for path in (backups / backup_id).glob("*.sql.zst"))


def _programs_script(new_backup: tuple[Path, str], names: list[str] | None = None) -> bytes:
    """The header, triggers, views, routines and events of the backup (or the artifacts *names*), decompressed."""
    import zstandard

    backups, backup_id = new_backup
    chosen = names or [name for name in _artifacts(new_backup) if name.startswith(("0-", "2-", "3-"))]
    return b"".join(zstandard.ZstdDecompressor().decompressobj().decompress((backups / backup_id / name).read_bytes())
                    for name in chosen)  # fmt: skip


@pytest.mark.parametrize(("phase", "expected"), [(PENDING, "old"), (SWAPPED, "new")])
def test_the_next_run_undoes_or_finishes_a_dead_swap(
    mariadb: MariaDBServer, states: dict[str, str], new_backup: tuple[Path, str],
    new_database: Callable[[str], str], phase: str, expected: str,
) -> None:  # fmt: skip
    target = new_database(f"died_{phase}")
    _reset_to_old(mariadb, target)
    _died_at(mariadb, new_backup, target, phase)
    notes = _next_run_settles(mariadb, new_backup, new_database("next"))
    assert ("undid" if expected == "old" else "finished") + f" an interrupted restore into `{target}`" in notes
    assert _which_state(mariadb, states, target) == expected
    assert staging_leftovers(mariadb) == []
    run = dbkeeper("restore", new_backup[1], mariadb.url(target), "--dir", str(new_backup[0]), "--force")
    assert "note:" not in run.err
    assert _which_state(mariadb, states, target) == "new"
    assert_one_line_error(
        dbkeeper("restore", new_backup[1], mariadb.url(target), "--dir", str(new_backup[0]), check=False),
        "already holds",
    )


def test_the_next_run_finishes_a_selective_restore_that_died_between_drop_and_rename(
    mariadb: MariaDBServer, new_backup: tuple[Path, str], new_database: Callable[[str], str]
) -> None:
    """``--table items --force`` drops the old ``items`` a moment before the new one moves in; death there
    used to leave the target without ``items`` at all."""
    backups, backup_id = new_backup
    expected = new_database("selective_done")
    _reset_to_old(mariadb, expected)
    dbkeeper("restore", backup_id, mariadb.url(expected), "--dir", str(backups), "--table", "items", "--force")
    target = new_database("selective_died")
    _reset_to_old(mariadb, target)
    server = ServerTarget.from_url(DatabaseURL.parse(mariadb.url(target)))
    journal = Journal(server, Workspace.new())
    with closing(server.connect()) as conn:
        journal._begin(conn, "CHARACTER SET utf8mb4")
        staging = journal.workspace.staging
        mariadb.load_sql(staging, NEW.encode())
        for table in ("audit", "new_only"):
            query(conn, f"DROP TABLE {q(staging)}.{q(table)}")
        new = (inventory(conn, staging) or Inventory()).programs()
        drop_programs(conn, staging, new)
        triggers = [name for name in _artifacts(new_backup) if name.startswith("2-") and "-items-" in name]
        programs = _programs_script(new_backup, ["0-header.sql.zst", *triggers])
        journal.record(conn, Plan(target, True, False, Inventory(), new, b"", programs))
        query(
            conn, f"RENAME TABLE {q(journal.workspace.journal)}.{PENDING} TO {q(journal.workspace.journal)}.{SWAPPED}"
        )
        query(conn, f"DROP TABLE {q(target)}.items")
    notes = _next_run_settles(mariadb, new_backup, new_database("next"))
    assert f"finished an interrupted restore into `{target}`" in notes
    assert snapshot(mariadb, target) == snapshot(mariadb, expected)
    assert staging_leftovers(mariadb) == []


def test_working_databases_without_a_journal_are_named_and_left_alone(
    mariadb: MariaDBServer, new_backup: tuple[Path, str], new_database: Callable[[str], str]
) -> None:
    """An older dbkeeper's leftover may hold the only copy of replaced tables: it is reported, never dropped."""
    orphan = "dbkeeper_replaced_0123abcd"
    mariadb.execute(f"CREATE DATABASE {orphan}", f"CREATE TABLE {orphan}.kept (x INT)")
    try:
        notes = _next_run_settles(mariadb, new_backup, new_database("next"))
        assert f"note: left {orphan} alone: it has no journal" in notes
        assert mariadb.execute(f"SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{orphan}'")[0][0]
    finally:
        mariadb.execute(f"DROP DATABASE IF EXISTS {orphan}")


def test_a_lock_taken_between_the_trigger_drop_and_the_rename_is_undone(
    mariadb: MariaDBServer, states: dict[str, str], tmp_path: Path, new_database: Callable[[str], str]
) -> None:
    """The RENAME itself waits for a lock (here: on the journal's marker, which it moves too) and times out.

    The target's triggers were dropped just before; they must be there again, in order.
    """
    source = new_database("slow_new")
    mariadb.recreate(source)
    mariadb.load_sql(source, NEW.encode())
    filler = "INSERT INTO filler SELECT seq, REPEAT('x', 100) FROM seq_1_to_200000"
    mariadb.execute("CREATE TABLE filler (id INT PRIMARY KEY, pad CHAR(100))", filler, database=source)
    manifest: Any = dbkeeper("backup", mariadb.url(source), "--dir", str(tmp_path), "--json").json()
    target = new_database("late_lock")
    _reset_to_old(mariadb, target)
    argv = _restore_argv(mariadb, (tmp_path, manifest["id"]), target, "?lock_wait_timeout=2")
    with closing(mariadb.admin()) as app, app.cursor() as cursor:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        journal = _wait_for_journal(mariadb, proc)
        cursor.execute("BEGIN")
        cursor.execute(f"SELECT COUNT(*) FROM {q(journal)}.{PENDING}")
        cursor.execute("SELECT CONNECTION_ID()")
        ((session,),) = cursor.fetchall()
        _, err = proc.communicate(timeout=300)
        app.rollback()
    assert proc.returncode == 1, err
    assert f"session {session} (" in err and "the target was not changed" in err, err
    assert _which_state(mariadb, states, target) == "old"
    _next_run_settles(mariadb, (tmp_path, manifest["id"]), new_database("next"))  # the journal the app held
    assert _which_state(mariadb, states, target) == "old"
    assert staging_leftovers(mariadb) == []


def _wait_for_journal(mariadb: MariaDBServer, proc: subprocess.Popen[str]) -> str:
    """The restore's journal database, once its ``pending`` marker table exists."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = mariadb.execute(
            "SELECT TABLE_SCHEMA FROM information_schema.TABLES "
            f"WHERE TABLE_SCHEMA LIKE 'dbkeeper\\_restore\\_%\\_journal' AND TABLE_NAME = '{PENDING}'"
        )
        if found:
            return str(found[0][0])
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the restore never made its journal"
        time.sleep(0.01)
