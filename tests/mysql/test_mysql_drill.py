"""``dbkeeper drill`` of MariaDB backups through the real CLI: a throwaway mariadbd of its own, or ``--into``.

Each drill runs with ``TMPDIR`` set to a directory of the test's own, so "nothing left"
is checked there (no ``dbkeeper-drill-*`` directory, no process whose arguments name it)
without being confused by drills other tests run at the same time.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from mariadb_server import MariaDBServer
from mysql_snapshot import count, staging_leftovers

from dbkeeper.plugin import BackupFacts, DatabaseError, DatabaseURL
from dbkeeper_mysql.drill import MysqlDrill, create_database
from dbkeeper_mysql.throwaway import Binaries
from helpers import BIN, Run, assert_one_line_error, dbkeeper, eventually

BIG_ROWS = 400_000


@pytest.fixture
def drill_tmp() -> Iterator[Path]:
    """A ``TMPDIR`` for the drills of one test: under /tmp and traversable, as the server's user needs."""
    path = Path(tempfile.mkdtemp(prefix="drilltest-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def drill(backups: Path, tmp: Path, *options: str, backup: str = "latest") -> Run:
    """``dbkeeper drill BACKUP --json OPTIONS`` with *tmp* as its TMPDIR (it may fail)."""
    return dbkeeper("drill", backup, "--dir", str(backups), "--json", *options, env={"TMPDIR": str(tmp)}, check=False)


def passed(run: Run) -> Any:
    """The report of a drill that passed."""
    assert run.code == 0, (run.out, run.err)
    return run.json()


def servers_in(tmp: Path) -> list[int]:
    """The processes whose arguments name *tmp* (a drill's server, its install, a watchdog)."""
    found = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and str(tmp).encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
    return found


def assert_nothing_left(tmp: Path) -> None:
    """No drill directory and no process of the drill remain (the watchdogs get a moment)."""
    eventually(lambda: not servers_in(tmp) and not list(tmp.iterdir()), f"the drill's files and servers in {tmp} gone")


def last_drill(backups: Path) -> dict[str, Any]:
    """The drill record ``backups list --json`` shows for the latest backup."""
    entries: Any = dbkeeper("backups", "list", "--dir", str(backups), "--json").json()
    (entry,) = entries
    return dict(entry["last_drill"])


def damage(backups: Path, how: str) -> str:
    """Truncate, or flip a byte in the middle of, the biggest table artifact of the only backup; its id."""
    (backup,) = [p for p in backups.iterdir() if p.is_dir()]
    artifact = max((p for p in backup.iterdir() if p.name.startswith("1-")), key=lambda p: p.stat().st_size)
    data = artifact.read_bytes()
    if how == "truncated":
        artifact.write_bytes(data[: len(data) // 2])
    else:
        middle = len(data) // 2
        artifact.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    return backup.name


def test_good_backup_drills_into_a_throwaway_server(
    mariadb: MariaDBServer, chinook_db: str, backups: Path, drill_tmp: Path
) -> None:
    manifest: Any = dbkeeper("backup", mariadb.url(chinook_db), "--dir", str(backups), "--json").json()
    report = passed(drill(backups, drill_tmp, "--check-sql", "SELECT COUNT(*) = 3503 FROM Track"))
    assert report["ok"] is True, report
    assert report["id"] == manifest["id"]
    assert report["target"].startswith("a throwaway MariaDB 10.11")
    assert report["rows"] == sum(manifest["row_counts"].values()) == 15607
    assert report["options"] == {"jobs": 2, "tools": "auto"}  # the restore's defaults: two tables at once
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["row counts"]["detail"] == "11 tables, 15607 rows, as the manifest records"
    assert checks["CHECK TABLE"] == {"name": "CHECK TABLE", "ok": True, "skipped": False, "detail": "11 tables OK"}
    assert checks["check-sql: SELECT COUNT(*) = 3503 FROM Track"]["ok"] is True
    assert report["restore_seconds"] > 0
    recorded = last_drill(backups)
    assert recorded["ok"] is True
    assert recorded["restore_seconds"] == report["restore_seconds"]
    shown = dbkeeper("backups", "show", "latest", "--dir", str(backups)).out
    assert "last drill       ok at" in shown
    assert_nothing_left(drill_tmp)


def test_a_drill_restores_with_the_restores_options_and_records_them(
    mariadb: MariaDBServer, chinook_db: str, backups: Path, drill_tmp: Path
) -> None:
    dbkeeper("backup", mariadb.url(chinook_db), "--dir", str(backups))
    report = passed(drill(backups, drill_tmp, "--jobs", "3", "--tools", "python"))
    assert report["options"] == {"jobs": 3, "tools": "python"}
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["row counts"]["detail"] == "11 tables, 15607 rows, as the manifest records"
    assert checks["CHECK TABLE"] == {"name": "CHECK TABLE", "ok": True, "skipped": False, "detail": "11 tables OK"}
    recorded = last_drill(backups)
    assert recorded["options"] == {"jobs": 3, "tools": "python"}
    assert recorded["restore_seconds"] == report["restore_seconds"]
    shown = dbkeeper("backups", "show", "latest", "--dir", str(backups)).out
    assert " with jobs 3, tools python (into a throwaway " in shown, shown
    assert_nothing_left(drill_tmp)
    refused = drill(backups, drill_tmp, "--table", "Track")  # a drill restores the whole backup
    assert refused.code == 2 and "No such option '--table'" in refused.err, refused.err


def test_corrupt_backup_fails_is_recorded_and_leaves_nothing(
    mariadb: MariaDBServer, chinook_db: str, backups: Path, drill_tmp: Path
) -> None:
    dbkeeper("backup", mariadb.url(chinook_db), "--dir", str(backups))
    run = drill(backups, drill_tmp, backup=damage(backups, "flipped"))
    assert run.code == 1, (run.out, run.err)
    report = run.json()
    assert report["ok"] is False
    assert report["checks"][-1]["name"] == "restore"
    assert "damaged" in report["problem"], report["problem"]
    assert last_drill(backups)["ok"] is False
    assert_nothing_left(drill_tmp)


def test_truncated_backup_fails_and_leaves_nothing(
    mariadb: MariaDBServer, chinook_db: str, backups: Path, drill_tmp: Path
) -> None:
    dbkeeper("backup", mariadb.url(chinook_db), "--dir", str(backups))
    run = drill(backups, drill_tmp, backup=damage(backups, "truncated"))
    assert_one_line_error(run, "1-00011-Track.sql.zst is", "truncated")
    assert_nothing_left(drill_tmp)


def test_truncated_backup_drill_is_recorded_as_failed(mariadb: MariaDBServer, chinook_db: str, backups: Path) -> None:
    dbkeeper("backup", mariadb.url(chinook_db), "--dir", str(backups))
    backup_id = damage(backups, "truncated")
    dbkeeper("drill", backup_id, "--dir", str(backups), check=False)
    assert (backups / backup_id / ".records" / "drill.json").is_file()


def test_failing_check_sql_fails_the_drill(
    mariadb: MariaDBServer, chinook_db: str, backups: Path, drill_tmp: Path
) -> None:
    dbkeeper("backup", mariadb.url(chinook_db), "--dir", str(backups))
    run = drill(backups, drill_tmp, "--check-sql", "SELECT COUNT(*) = 0 FROM Track")
    assert run.code == 1, run.err
    report = run.json()
    assert report["ok"] is False
    assert report["problem"] == "check-sql: SELECT COUNT(*) = 0 FROM Track: returned 0"
    assert {check["name"]: check["ok"] for check in report["checks"]}["CHECK TABLE"] is True
    assert last_drill(backups)["ok"] is False
    assert_nothing_left(drill_tmp)


def test_into_uses_a_scratch_database_and_drops_it_even_when_the_restore_fails(
    mariadb: MariaDBServer, chinook_db: str, backups: Path, drill_tmp: Path
) -> None:
    before = sorted(name for (name,) in mariadb.execute("SHOW DATABASES"))
    dbkeeper("backup", mariadb.url(chinook_db), "--dir", str(backups))
    report = passed(
        drill(backups, drill_tmp, "--into", mariadb.url(), "--check-sql", "SELECT COUNT(*) = 412 FROM Invoice")
    )
    assert report["ok"] is True, report
    assert report["target"].startswith("scratch database dbkeeper_drill_")
    assert "***" in report["target"] and mariadb.password not in report["target"]
    assert sorted(name for (name,) in mariadb.execute("SHOW DATABASES")) == before

    run = drill(backups, drill_tmp, "--into", mariadb.url(), backup=damage(backups, "flipped"))
    assert run.code == 1, run.err
    assert run.json()["checks"][-1]["name"] == "restore"
    assert sorted(name for (name,) in mariadb.execute("SHOW DATABASES")) == before
    assert not staging_leftovers(mariadb)
    assert count(mariadb, chinook_db, "Track") == 3503


def test_keep_leaves_the_server_running_and_its_stop_command_stops_it(
    mariadb: MariaDBServer, chinook_db: str, backups: Path, drill_tmp: Path
) -> None:
    dbkeeper("backup", mariadb.url(chinook_db), "--dir", str(backups))
    report = passed(drill(backups, drill_tmp, "--keep"))
    assert report["ok"] is True, report
    kept = report["kept"]
    try:
        (server,) = [pid for pid in servers_in(drill_tmp) if b"mariadbd" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        if os.geteuid() == 0:
            assert os.stat(f"/proc/{server}").st_uid == pwd.getpwnam("mysql").pw_uid
        sql = "SELECT COUNT(*) FROM Track; SELECT @@skip_networking; SELECT @@port"
        query = subprocess.run(["bash", "-c", f"{kept['connect']} -N -e '{sql}'"], capture_output=True, text=True)
        assert query.stdout.split() == ["3503", "1", "0"], query.stderr  # the rows; no TCP port
        (workdir,) = drill_tmp.glob("dbkeeper-drill-*")
        readable = [p for p in workdir.rglob("*") if not p.is_socket() and p.stat().st_mode & 0o077]
        assert not readable, readable  # the server's files are its user's only
    finally:
        stop = subprocess.run(["bash", "-c", kept["stop"]], capture_output=True, text=True, check=False)
    assert stop.returncode == 0, stop.stderr
    assert_nothing_left(drill_tmp)


def test_kill_9_mid_restore_leaves_no_server_and_no_directory(
    mariadb: MariaDBServer, backups: Path, drill_tmp: Path
) -> None:
    mariadb.recreate("drill_big")
    mariadb.execute(
        "CREATE TABLE big (id INT PRIMARY KEY, body VARCHAR(300))",
        f"INSERT INTO big SELECT seq, CONCAT(seq, REPEAT(MD5(seq), 8)) FROM seq_1_to_{BIG_ROWS}",
        database="drill_big",
    )
    dbkeeper("backup", mariadb.url("drill_big"), "--dir", str(backups))
    command = [str(BIN / "dbkeeper"), "drill", "latest", "--dir", str(backups)]
    process = subprocess.Popen(command, env={**os.environ, "TMPDIR": str(drill_tmp)}, stdout=subprocess.DEVNULL)
    try:
        eventually(lambda: _restoring(drill_tmp), "a restore into the drill's server")
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        status = process.wait()
    assert status == -signal.SIGKILL  # killed mid-drill, not finished before the signal
    assert_nothing_left(drill_tmp)
    mariadb.execute("DROP DATABASE drill_big")


def test_kill_9_while_the_server_is_initialised_leaves_nothing(
    mariadb: MariaDBServer, chinook_db: str, backups: Path, drill_tmp: Path
) -> None:
    dbkeeper("backup", mariadb.url(chinook_db), "--dir", str(backups))
    env = {"DBKEEPER_DRILL_CACHE": "0"}  # not a copy of a cached one
    kill_9_drill_once(backups, drill_tmp, env, "dbkeeper-drill-*/server/data/mysql", "mariadb-install-db at work")


def kill_9_drill_once(backups: Path, drill_tmp: Path, env: dict[str, str], pattern: str, what: str) -> None:
    """``dbkeeper drill latest`` killed with SIGKILL as soon as *pattern* exists in *drill_tmp*: nothing is left."""
    command = [str(BIN / "dbkeeper"), "drill", "latest", "--dir", str(backups)]
    process = subprocess.Popen(command, env={**os.environ, "TMPDIR": str(drill_tmp), **env}, stdout=subprocess.DEVNULL)
    try:
        eventually(lambda: list(drill_tmp.glob(pattern)), what)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        status = process.wait()
    assert status == -signal.SIGKILL
    assert_nothing_left(drill_tmp)


def _restoring(tmp: Path) -> bool:
    """Whether the drill's server holds the restore's staging database with rows in it already."""
    sockets = list(tmp.glob("dbkeeper-drill-*/server/mysqld.sock"))
    if not sockets:
        return False
    try:
        with (
            contextlib.closing(pymysql.connect(unix_socket=str(sockets[0]), user="root")) as conn,
            conn.cursor() as cur,
        ):
            cur.execute(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA LIKE 'dbkeeper\\_restore\\_%'"
                " AND TABLE_NAME = 'big'"
            )
            return any(rows and rows > 0 for (rows,) in cur.fetchall())
    except pymysql.MySQLError:
        return False


def test_backup_of_a_newer_major_is_refused() -> None:
    binaries = Binaries.find()
    binaries.refuse_newer("10.6.21-MariaDB")
    binaries.refuse_newer(f"{binaries.version}")
    binaries.refuse_newer("99.0.1")  # MySQL: the collation decides (below)
    with pytest.raises(DatabaseError, match=r"comes from MariaDB 99\.1 .* install MariaDB 99\.1 or newer"):
        binaries.refuse_newer("99.1.0-MariaDB")


def test_unknown_collation_is_refused_in_one_line(mariadb: MariaDBServer) -> None:
    facts = BackupFacts(
        "x", "sql", "8.0.36", "shop", {}, {"character_set": "utf8mb4", "collation": "utf8mb4_0900_ai_ci"}
    )
    with contextlib.closing(mariadb.admin()) as conn, pytest.raises(DatabaseError) as raised:
        create_database(conn, "drill_collation", facts)
    message = str(raised.value)
    assert "\n" not in message
    assert "utf8mb4_0900_ai_ci (from 8.0.36) is unknown to the server 10.11" in message
    assert not mariadb.execute("SHOW DATABASES LIKE 'drill_collation'")


@pytest.mark.parametrize("early", [False, True], ids=["after the restore", "while restoring"])
def test_check_table_reports_a_damaged_table(mariadb: MariaDBServer, early: bool) -> None:
    mariadb.recreate("drill_damaged")
    mariadb.execute(
        "CREATE TABLE good (id INT PRIMARY KEY) ENGINE=InnoDB",
        "CREATE TABLE bad (id INT PRIMARY KEY, name VARCHAR(20)) ENGINE=MyISAM",
        "INSERT INTO bad SELECT seq, CONCAT('n', seq) FROM seq_1_to_1000",
        "FLUSH TABLES",
        database="drill_damaged",
    )
    index = mariadb.base / "data" / "drill_damaged" / "bad.MYI"
    data = bytearray(index.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64
    index.write_bytes(bytes(data))
    mariadb.execute("FLUSH TABLES")
    url = DatabaseURL.parse(mariadb.url("drill_damaged"))
    if early:  # "bad" reported loaded (as the restore does from staging), "good" checked after the restore
        with MysqlDrill().checking(url) as checker:
            checker.loaded("drill_damaged", "bad")
            checks = checker.checks()
        assert checker.checked == {"bad", "good"}
    else:
        checks = MysqlDrill().check_integrity(url)
    mariadb.execute("DROP DATABASE drill_damaged")
    (check,) = checks
    assert check.name == "CHECK TABLE"
    assert check.ok is False
    assert check.detail.startswith("`bad`: "), check.detail
    assert "`good`" not in check.detail
