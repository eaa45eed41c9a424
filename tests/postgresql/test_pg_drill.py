"""``dbkeeper drill`` of PostgreSQL backups: a real throwaway cluster, real scratch databases, real kill -9.

Each drill runs with ``TMPDIR`` set to a directory of this test (0711, so that the server
user can pass through it when the tests run as root): its private directory, and any
process still naming it, are then this drill's own — other drills running on the machine
at the same time cannot be mistaken for leftovers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
from pg_server import Server

from dbkeeper.plugin import DatabaseError
from dbkeeper_postgresql.cluster import server_bindir
from helpers import BIN, Run, artifact_of, assert_one_line_error, dbkeeper

ROWS = {"public.customers": 120, "public.orders": 3000, "shop.notes": 7}
BIG_ROWS = 400_000
"""Rows of the kill -9 case: a restore long enough to be caught in the middle."""
WAIT = 60.0
"""Bound of every poll (the watchdog needs a moment after a kill)."""


@pytest.fixture(scope="module")
def source(pg: Server) -> str:
    """A database owned by the superuser (the throwaway cluster has no other role): three tables, indexes."""
    pg.psql("CREATE DATABASE drill_shop")
    pg.psql(
        "CREATE SCHEMA shop;"
        "CREATE TABLE customers (id int PRIMARY KEY, email text UNIQUE);"
        "CREATE TABLE orders (id int PRIMARY KEY, customer int REFERENCES customers, created_at timestamptz);"
        "CREATE INDEX ON orders (customer, created_at);"
        "CREATE TABLE shop.notes (id int PRIMARY KEY, body text);"
        "INSERT INTO customers SELECT i, 'c' || i || '@example.com' FROM generate_series(1, 120) i;"
        "INSERT INTO orders SELECT i, 1 + i % 120, now() - i * interval '1 minute' FROM generate_series(1, 3000) i;"
        "INSERT INTO shop.notes SELECT i, md5(i::text) FROM generate_series(1, 7) i;",
        database="drill_shop",
    )
    return "drill_shop"


@pytest.fixture(scope="module")
def made(pg: Server, source: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(directory, id) of one backup of the source, made once; tests drill copies of it."""
    directory = tmp_path_factory.mktemp("made")
    ident = dbkeeper("--quiet", "backup", pg.socket_url(source), "--dir", str(directory)).out.strip()
    return directory, ident


def drill(directory: Path, tmp: Path, *args: str) -> Run:
    """``dbkeeper drill latest --dir DIRECTORY --json ARGS`` with TMPDIR=*tmp* (it may fail)."""
    return dbkeeper("drill", "latest", "--dir", str(directory), "--json", *args, env={"TMPDIR": str(tmp)}, check=False)


def leftovers(tmp: Path) -> list[str]:
    """The drill directories still in *tmp*, and the processes whose arguments name *tmp*."""
    found = [str(path) for path in tmp.glob("dbkeeper-drill-*")]
    for process in psutil.process_iter(["cmdline"]):
        if any(str(tmp) in arg for arg in process.info["cmdline"] or ()):
            found.append(f"pid {process.pid}: {' '.join(process.info['cmdline'])}")
    return found


def assert_nothing_left(tmp: Path) -> None:
    """No drill directory and no process of the drill remain in *tmp* (polled: a watchdog may be finishing)."""
    deadline = time.monotonic() + WAIT
    while (found := leftovers(tmp)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not found, found


def last_drill(directory: Path) -> dict[str, object]:
    """The drill record ``backups list --json`` shows for the only backup in *directory*."""
    (entry,) = json.loads(dbkeeper("backups", "list", "--dir", str(directory), "--json").out)
    return dict(entry["last_drill"])


def report_of(run: Run) -> dict[str, Any]:
    """The report ``dbkeeper drill --json`` printed."""
    return dict(json.loads(run.out))


def checks(run: Run) -> dict[str, dict[str, Any]]:
    """The checks of the report *run* printed, by name."""
    return {check["name"]: check for check in report_of(run)["checks"]}


def test_a_good_backup_passes_in_a_throwaway_cluster(backup: tuple[Path, str], drill_tmp: Path) -> None:
    directory, ident = backup
    run = drill(directory, drill_tmp, "--check-sql", "SELECT count(*) = 3000 FROM orders")
    assert run.code == 0, run.err
    report = report_of(run)
    assert report["ok"] is True and report["id"] == ident, report
    assert report["target"] == "a throwaway PostgreSQL 15 server"
    assert report["rows"] == sum(ROWS.values())
    by_name = checks(run)
    assert by_name["row counts"]["detail"] == f"3 tables, {sum(ROWS.values())} rows, as the manifest records"
    assert by_name["amcheck"]["ok"] is True and not by_name["amcheck"]["skipped"], by_name
    assert "B-tree indexes: ok" in str(by_name["amcheck"]["detail"])
    assert by_name["check-sql: SELECT count(*) = 3000 FROM orders"]["ok"] is True
    assert isinstance(report["restore_seconds"], float) and report["restore_seconds"] > 0
    record = last_drill(directory)
    assert record["ok"] is True and record["target"] == "a throwaway PostgreSQL 15 server", record
    assert record["restore_seconds"] == report["restore_seconds"]
    assert "last drill       ok at" in dbkeeper("backups", "show", ident, "--dir", str(directory)).out
    assert_nothing_left(drill_tmp)


def flip_a_byte(directory: Path, ident: str) -> None:
    """Damage the backup's artifact in the middle, keeping its size."""
    artifact = artifact_of(directory, ident)
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))


def test_a_corrupt_backup_fails_is_recorded_and_leaves_nothing(backup: tuple[Path, str], drill_tmp: Path) -> None:
    directory, ident = backup
    flip_a_byte(directory, ident)
    run = drill(directory, drill_tmp)
    assert run.code == 1, run
    report = report_of(run)
    assert report["ok"] is False and report["restore_seconds"] is None, report
    assert checks(run)["restore"]["ok"] is False
    record = last_drill(directory)
    assert record["ok"] is False and record["problem"] == report["problem"], record
    assert "failed" in dbkeeper("backups", "list", "--dir", str(directory)).out
    assert_nothing_left(drill_tmp)


def test_a_truncated_backup_is_refused_and_leaves_nothing(backup: tuple[Path, str], drill_tmp: Path) -> None:
    directory, ident = backup
    artifact = artifact_of(directory, ident)
    with artifact.open("r+b") as handle:
        handle.truncate(artifact.stat().st_size // 2)
    run = dbkeeper("drill", ident, "--dir", str(directory), env={"TMPDIR": str(drill_tmp)}, check=False)
    assert_one_line_error(run, "truncated")
    assert_nothing_left(drill_tmp)


def test_a_failing_check_sql_fails_the_drill(backup: tuple[Path, str], drill_tmp: Path) -> None:
    directory, _ = backup
    run = drill(directory, drill_tmp, "--check-sql", "SELECT max(created_at) < now() - interval '1 year' FROM orders")
    assert run.code == 1, run
    report = report_of(run)
    failed = [check for check in report["checks"] if not check["ok"]]
    assert [check["name"] for check in failed] == ["check-sql: SELECT max(created_at) < now() - interval '1 year' "
                                                   "FROM orders"], report  # fmt: skip
    assert last_drill(directory)["ok"] is False
    assert_nothing_left(drill_tmp)


def test_keep_leaves_the_cluster_running_and_its_stop_command_stops_it(
    backup: tuple[Path, str], drill_tmp: Path
) -> None:
    directory, _ = backup
    run = drill(directory, drill_tmp, "--keep")
    assert run.code == 0, run.err
    kept = report_of(run)["kept"]
    assert "password" not in json.dumps(kept) and "@127.0.0.1" not in kept["url"], kept
    count = subprocess.run(
        f"{kept['connect']} -X -A -t -c 'SELECT count(*) FROM shop.notes'",
        shell=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert count.stdout.strip() == "7", count
    settings = subprocess.run(
        f"{kept['connect']} -X -A -t -F ' ' -c \"SELECT current_setting('fsync'), current_setting('wal_level')\"",
        shell=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert settings.stdout.split() == ["off", "minimal"], settings  # set for speed: it is thrown away
    assert leftovers(drill_tmp), "--keep left nothing running"
    stop = subprocess.run(kept["stop"], shell=True, capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0, stop
    assert_nothing_left(drill_tmp)


def test_kill_9_in_the_middle_leaves_no_server_and_no_directory(pg: Server, drill_tmp: Path, tmp_path: Path) -> None:
    pg.psql("CREATE DATABASE drill_big")
    pg.psql(
        "CREATE TABLE big (id int PRIMARY KEY, a text, b text);"
        f"INSERT INTO big SELECT i, md5(i::text), md5((i * 7)::text) FROM generate_series(1, {BIG_ROWS}) i;",
        database="drill_big",
    )
    directory = tmp_path / "backups"
    dbkeeper("--quiet", "backup", pg.socket_url("drill_big"), "--dir", str(directory))
    process = subprocess.Popen(
        [str(BIN / "dbkeeper"), "drill", "latest", "--dir", str(directory)],
        env={**os.environ, "TMPDIR": str(drill_tmp)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        restoring(drill_tmp, "drill_big", process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
    assert_nothing_left(drill_tmp)


def restoring(tmp: Path, database: str, owner: subprocess.Popen[bytes]) -> None:
    """Wait until the throwaway cluster in *tmp* holds *database* (the restore has begun); fail if *owner* ends."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if owner.poll() is not None:
            pytest.fail(f"the drill ended before its restore was caught: {owner.communicate()}")
        for socket in tmp.glob("dbkeeper-drill-*/pg/.s.PGSQL.5432"):
            try:
                with psycopg.connect(host=str(socket.parent), user="postgres", dbname="postgres") as conn:
                    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
                        return
            except psycopg.Error:
                pass  # starting
        time.sleep(0.02)
    pytest.fail("never saw the drill's restore begin")


def test_into_uses_a_scratch_database_and_drops_it(pg: Server, source: str, backup: tuple[Path, str]) -> None:
    directory, _ = backup
    before = pg.databases()
    run = drill(directory, Path(tempfile.gettempdir()), "--into", pg.socket_url("postgres"))
    assert run.code == 0, run.err
    report = report_of(run)
    assert str(report["target"]).startswith("a scratch database dbkeeper_drill_"), report
    assert checks(run)["amcheck"]["ok"] is True and not checks(run)["amcheck"]["skipped"], report
    assert pg.databases() == before
    assert not pg.psql("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'").strip()  # only in the scratch database


def test_into_drops_its_scratch_database_when_the_restore_fails(pg: Server, backup: tuple[Path, str]) -> None:
    directory, ident = backup
    flip_a_byte(directory, ident)
    before = pg.databases()
    run = drill(directory, Path(tempfile.gettempdir()), "--into", pg.socket_url("postgres"))
    assert run.code == 1, run
    assert checks(run)["restore"]["ok"] is False
    assert pg.databases() == before


def test_into_as_a_role_without_superuser_skips_amcheck_with_the_reason(pg: Server, tmp_path: Path) -> None:
    name = pg.app_database("drill_app", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);")
    directory = tmp_path / "backups"
    dbkeeper("--quiet", "backup", pg.url(name), "--dir", str(directory))
    before = pg.databases()
    run = drill(directory, Path(tempfile.gettempdir()), "--into", pg.url("postgres"))
    assert run.code == 0, run.err
    amcheck = checks(run)["amcheck"]
    assert amcheck["skipped"] is True and "permission denied" in str(amcheck["detail"]), amcheck
    assert pg.databases() == before
    assert "s3cret" not in run.out + run.err


def test_missing_server_binaries_name_the_package_and_into() -> None:
    with pytest.raises(DatabaseError) as caught:
        server_bindir("99")
    assert "apt-get install postgresql-99" in str(caught.value) and "--into" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_backup_owned_by_an_application_role_drills_in_a_throwaway_cluster(
    pg: Server, drill_tmp: Path, tmp_path: Path
) -> None:
    name = pg.app_database("drill_owned", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);")
    directory = tmp_path / "backups"
    dbkeeper("--quiet", "backup", pg.url(name), "--dir", str(directory))
    run = drill(directory, drill_tmp)
    assert run.code == 0, run.out


def test_a_client_the_warm_up_cannot_find_is_reported_by_the_restore(backup: tuple[Path, str], drill_tmp: Path) -> None:
    """While initdb runs a thread looks for pg_restore; when it is missing the restore says so, no thread traceback."""
    directory, _ = backup
    bindir = Path(tempfile.mkdtemp(prefix="pgdrill-bin-"))
    try:
        bindir.chmod(0o755)
        for tool in ("initdb", "postgres", "psql"):  # the server's binaries, no pg_restore
            (bindir / tool).symlink_to(server_bindir("15") / tool)
        env = {"TMPDIR": str(drill_tmp), "DBKEEPER_PG_BINDIR": str(bindir)}
        run = dbkeeper("drill", "latest", "--dir", str(directory), "--json", env=env, check=False)
    finally:
        shutil.rmtree(bindir)
    assert run.code == 1, run
    assert f"pg_restore not found in DBKEEPER_PG_BINDIR={bindir}" in str(checks(run)["restore"]["detail"]), run
    assert "Traceback" not in run.err and "Exception in thread" not in run.err, run.err
    assert_nothing_left(drill_tmp)
