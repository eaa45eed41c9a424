"""Passwords off command lines, snapshots that hold while writers write, and client version checks."""

from __future__ import annotations

import stat
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from pg_server import APP_PASSWORD, Server
from processes import process_tree, start, wait_for

from helpers import assert_one_line_error, dbkeeper


def assert_password_nowhere_in_arguments(owner: subprocess.Popen[str], pids: list[int], tool: str) -> None:
    """Neither dbkeeper nor any process it started shows the password; *pids* get it from a passfile."""
    secrets = (APP_PASSWORD, quote(APP_PASSWORD, safe=""), APP_PASSWORD[:6])  # its start: however it is escaped
    tree = process_tree(owner.pid)
    assert any(tool in args for args in tree.values()), tree
    assert not [args for args in tree.values() if any(secret in args for secret in secrets)]
    for pid in [owner.pid, *pids]:  # /proc too, which ps may abbreviate
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        assert not any(secret in argv for secret in secrets), argv
    for pid in pids:
        environ = dict(
            item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0") if "=" in item
        )
        assert environ.get("PGPASSWORD", "") == ""
        passfile = Path(environ["PGPASSFILE"])  # /dev/fd/N: an in-memory file the tool inherited
        assert passfile.parent == Path("/dev/fd"), passfile
        inherited = Path(f"/proc/{pid}/fd/{passfile.name}")
        assert stat.S_IMODE(inherited.stat().st_mode) == 0o600
        assert inherited.read_text().startswith("*:*:*:*:")


def hold_exclusive_lock(pg: Server, database: str, table: str) -> psycopg.Connection[tuple[object, ...]]:
    """A session holding ACCESS EXCLUSIVE on *table* (every pg_dump and pg_restore touching it waits)."""
    conn = psycopg.connect(host=str(pg.socket_dir), port=pg.port, user="postgres", dbname=database)
    conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    return conn


def test_password_reaches_pg_dump_and_pg_restore_only_through_a_passfile(
    pg: Server, chinook: str, backups: Path, tmp_path: Path
) -> None:
    """With the password in the environment (``${PW}`` in dbkeeper.toml), no command line anywhere shows it."""
    (tmp_path / "dbkeeper.toml").write_text(
        f'[connections.db]\nurl = "postgresql://app:${{PW}}@127.0.0.1:{pg.port}/{chinook}"\n'
    )
    env = {"PW": quote(APP_PASSWORD, safe="")}
    lock = hold_exclusive_lock(pg, chinook, "album")  # pg_dump waits for it: it can be observed running
    backup = start("--quiet", "backup", "db", "--dir", str(backups), "--jobs", "2", cwd=tmp_path, env=env)
    try:
        pids = wait_for("pg_dump", backup, count=2)
        assert_password_nowhere_in_arguments(backup, pids, "pg_dump")
    finally:
        lock.close()
    _, err = backup.communicate(timeout=120)
    assert backup.returncode == 0, err
    assert not list(backups.glob(".scratch-*/pgpass-*")), "the passfile is removed"

    single = start("--quiet", "backup", "db", "--dir", str(backups), cwd=tmp_path, env=env)  # --force needs one
    out, err = single.communicate(timeout=120)
    assert single.returncode == 0, err
    ident = out.strip()

    lock = hold_exclusive_lock(pg, chinook, "album")  # pg_restore --clean waits to drop it
    restore = start("restore", ident, "db", "--dir", str(backups), "--force", cwd=tmp_path, env=env)
    try:
        pids = wait_for("pg_restore", restore)
        assert_password_nowhere_in_arguments(restore, pids, "pg_restore")
    finally:
        lock.close()
    _, err = restore.communicate(timeout=120)
    assert restore.returncode == 0, err
    stored = b"".join(path.read_bytes() for path in backups.rglob("*") if path.is_file())
    assert APP_PASSWORD.encode() not in stored and quote(APP_PASSWORD, safe="").encode() not in stored


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_snapshot_is_consistent_while_writers_are_busy(
    pg: Server, chinook: str, backups: Path, new_name: str, jobs: str
) -> None:
    """Each writer transaction adds one row to two tables; every backup must see both or neither."""
    pg.psql(
        "SET ROLE app;"
        "CREATE TABLE debit (id bigserial PRIMARY KEY, amount int NOT NULL, memo text);"
        "CREATE TABLE credit (id bigserial PRIMARY KEY, amount int NOT NULL, memo text);"
        "INSERT INTO debit (amount, memo) SELECT g, repeat('d', 200) FROM generate_series(1, 30000) g;"
        "INSERT INTO credit (amount, memo) SELECT g, repeat('c', 200) FROM generate_series(1, 30000) g;"
        "ANALYZE debit; ANALYZE credit;",
        database=chinook,
    )
    stop = threading.Event()
    committed: list[int] = []

    def write() -> None:
        with psycopg.connect(pg.url(chinook)) as conn:
            while not stop.is_set():
                with conn.transaction():
                    conn.execute("INSERT INTO debit (amount, memo) VALUES (7, 'w')")
                    conn.execute("INSERT INTO credit (amount, memo) VALUES (7, 'w')")
                committed.append(1)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while not committed:
            time.sleep(0.01)
        before = len(committed)
        manifest = dbkeeper("backup", pg.url(chinook), "--dir", str(backups), "--jobs", jobs, "--json").json()
        during = len(committed) - before
    finally:
        stop.set()
        writer.join()
    assert during > 0, "the writer committed while the backup ran"
    counts = manifest["row_counts"]  # type: ignore[index]
    assert counts["public.debit"] == counts["public.credit"] > 30000
    if jobs == "2":
        holders = {t: p["artifact"] for p in manifest["details"]["parts"] for t in p["tables"]}  # type: ignore[index]
        assert holders["public.debit"] != holders["public.credit"], "dumped by different pg_dump processes"
    dbkeeper("restore", manifest["id"], pg.url(new_name), "--dir", str(backups), "--jobs", jobs)  # type: ignore[index]
    totals = pg.psql("SELECT (SELECT count(*) FROM debit), (SELECT count(*) FROM credit)", database=new_name)
    assert totals.strip() == f"{counts['public.debit']}|{counts['public.credit']}"


def fake_tool(directory: Path, name: str, version: str) -> None:
    """A stand-in for a PostgreSQL client tool of another version (only --version answers)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f'#!/bin/sh\necho "{name} (PostgreSQL) {version}"\n')
    path.chmod(0o755)


def test_client_tools_older_than_the_server_or_the_backup_are_refused(
    pg: Server, chinook: str, backups: Path, tmp_path: Path, new_name: str
) -> None:
    old = tmp_path / "pg14" / "bin"
    for tool in ("pg_dump", "pg_restore", "psql"):
        fake_tool(old, tool, "14.11")
    run = dbkeeper("backup", pg.url(chinook), "--dir", str(backups), env={"DBKEEPER_PG_BINDIR": str(old)}, check=False)
    assert_one_line_error(
        run, "pg_dump 14.11", "is older than the server (15.", "apt-get install postgresql-client-15",
        "DBKEEPER_PG_BINDIR", "/usr/lib/postgresql/15/bin",
    )  # fmt: skip
    assert not backups.exists() or not [p for p in backups.iterdir() if not p.name.startswith(".")], "no backup left"

    ident = dbkeeper("-q", "backup", pg.url(chinook), "--dir", str(backups)).out.strip()
    run = dbkeeper(
        "restore", ident, pg.url(new_name), "--dir", str(backups), env={"DBKEEPER_PG_BINDIR": str(old)}, check=False
    )
    assert_one_line_error(run, "pg_restore 14.11", "older than the pg_dump 15.", "postgresql-client-15")
    assert new_name not in pg.databases()
    missing = dbkeeper(
        "backup", pg.url(chinook), "--dir", str(backups), env={"DBKEEPER_PG_BINDIR": str(tmp_path)}, check=False
    )
    assert_one_line_error(missing, "pg_dump not found in DBKEEPER_PG_BINDIR")
