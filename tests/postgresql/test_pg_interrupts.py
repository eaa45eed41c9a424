"""SIGTERM during a PostgreSQL restore: the message says whether the target is the old or the restored database.

A real ``dbkeeper restore --force`` process, a real server, real signals. The moments are
made certain with locks on the restored table: before the commit, pg_restore waits for
a lock the test holds; after it, the test's own lock request (queued behind pg_restore's)
is granted on the new table the moment pg_restore commits, so dbkeeper's row count
waits behind it — the restore has committed and has not been checked yet.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from pg_server import Server
from processes import start

from helpers import dbkeeper

ROWS = 300_000
"""Rows of the big table: ~25 MiB of archive, far more than the pipes between dbkeeper and pg_restore hold."""


@pytest.fixture(scope="session")
def big_template(pg: Server) -> str:
    """One table of 300,000 rows owned by the test role."""
    pg.app_database(
        "big_template",
        "CREATE TABLE big (id int PRIMARY KEY, a text, b text);"
        f"INSERT INTO big SELECT i, md5(i::text), md5((i * 7)::text) FROM generate_series(1, {ROWS}) i;",
    )
    pg.psql("ANALYZE; ALTER DATABASE big_template IS_TEMPLATE true", database="big_template")
    return "big_template"


def superuser(pg: Server, database: str) -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit superuser session over the unix socket."""
    return psycopg.connect(host=str(pg.socket_dir), port=pg.port, user="postgres", dbname=database, autocommit=True)


def poll(what: str, condition: object, owner: object, seconds: float = 120) -> None:
    """Wait until ``condition()`` is true; fail if *owner* (the dbkeeper process) ends first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        if owner.poll() is not None:  # type: ignore[attr-defined]
            pytest.fail(f"dbkeeper ended before {what}: {owner.communicate()}")  # type: ignore[attr-defined]
        time.sleep(0.05)
    pytest.fail(f"never saw {what}")


def lock_waits(watch: psycopg.Connection[tuple[object, ...]], mode: str) -> int:
    """Sessions of dbkeeper's tools (application_name dbkeeper…) waiting for a lock on a table named big."""
    row = watch.execute(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) JOIN pg_class c ON c.oid = l.relation "
        "WHERE c.relname = 'big' AND NOT l.granted AND l.mode = %s AND a.pid <> pg_backend_pid()",
        (mode,),
    ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def restore_case(
    pg: Server, big_template: str, database_copy: Callable[[str], str], backups: Path
) -> Iterator[tuple[str, str, str]]:
    """(backup id, target database, target URL): a backup of the big table, and a target whose rows differ."""
    source = database_copy(big_template)
    ident = dbkeeper("--quiet", "backup", pg.url(source), "--dir", str(backups)).out.strip()
    target = database_copy(big_template)
    pg.psql("DELETE FROM big WHERE id > 1000", database=target)
    yield ident, target, pg.url(target)


def rows_in(pg: Server, database: str) -> int:
    """Rows of the big table, as a new session sees them."""
    return int(pg.psql("SELECT count(*) FROM big", database=database).strip())


def test_sigterm_after_pg_restore_committed_says_the_target_holds_the_backup(
    pg: Server, restore_case: tuple[str, str, str], backups: Path, tmp_path: Path
) -> None:
    ident, target, url = restore_case
    watch = superuser(pg, target)
    blocker = superuser(pg, target)
    table_oid = "SELECT 'big'::regclass::oid"  # a name lookup: no lock needed
    old_oid = watch.execute(table_oid).fetchone()
    restore = start("restore", ident, url, "--dir", str(backups), "--force", cwd=tmp_path, env={})
    try:
        # pg_restore --clean drops the old table first (ACCESS EXCLUSIVE, held until it commits)
        poll(
            "pg_restore dropping the old table",
            lambda: watch.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.granted "
                "AND l.mode = 'AccessExclusiveLock' AND a.application_name = 'dbkeeper' AND l.locktype = 'relation'"
            ).fetchone()[0],  # type: ignore[index]
            restore,
        )
        blocker.execute("BEGIN")
        locked = threading.Thread(target=lambda: blocker.execute("LOCK TABLE big IN ACCESS EXCLUSIVE MODE"))
        locked.start()  # queued behind pg_restore; granted on the new table as it commits
        poll("dbkeeper's row count waiting behind the committed restore", lambda: lock_waits(watch, "AccessShareLock"),
             restore)  # fmt: skip
        locked.join(30)
        assert not locked.is_alive() and watch.execute(table_oid).fetchone() != old_oid, "pg_restore has committed"
        restore.send_signal(signal.SIGTERM)
        time.sleep(1)  # the message must not depend on the count finishing
    finally:
        blocker.close()
        watch.close()
    _, err = restore.communicate(timeout=120)
    assert restore.returncode == 130, err
    assert f"now holds backup {ident}" in err, err
    assert "row counts were not compared" in err and "nothing partial" not in err, err
    assert rows_in(pg, target) == ROWS


def test_sigterm_before_pg_restore_committed_says_the_target_is_unchanged(
    pg: Server, restore_case: tuple[str, str, str], backups: Path, tmp_path: Path
) -> None:
    ident, target, url = restore_case
    watch = superuser(pg, target)
    holder = superuser(pg, target)
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE big IN ACCESS EXCLUSIVE MODE")  # pg_restore --clean waits to drop it
    restore = start("restore", ident, url, "--dir", str(backups), "--force", cwd=tmp_path, env={})
    try:
        poll("pg_restore waiting to drop the old table", lambda: lock_waits(watch, "AccessExclusiveLock"), restore)
        restore.send_signal(signal.SIGTERM)
        _, err = restore.communicate(timeout=120)
    finally:
        holder.close()
        watch.close()
    assert restore.returncode == 130, err
    assert target in err, err
    assert "is unchanged" in err and "nothing partial was left behind" in err, err
    assert rows_in(pg, target) == 1000, "the old rows are still there"


def test_sigterm_while_pg_restore_commits_waits_for_it_and_a_second_one_stops_it(
    pg: Server, chinook: str, backups: Path, tmp_path: Path
) -> None:
    """Chinook's archive fits in the pipe: pg_restore has all of it (the commit has begun) while it waits for a lock."""
    ident = dbkeeper("--quiet", "backup", pg.url(chinook), "--dir", str(backups)).out.strip()
    watch = superuser(pg, chinook)
    holder = superuser(pg, chinook)
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE album IN ACCESS EXCLUSIVE MODE")  # pg_restore --clean waits to drop it
    restore = start("--quiet", "restore", ident, pg.url(chinook), "--dir", str(backups), "--force", cwd=tmp_path,
                    env={})  # fmt: skip
    try:
        poll(
            "pg_restore waiting to drop album",
            lambda: watch.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'album' AND NOT l.granted"
            ).fetchone()[0],  # type: ignore[index]
            restore,
        )
        restore.send_signal(signal.SIGTERM)
        assert restore.stderr is not None
        note = restore.stderr.readline()
        assert "the restore is committing; stopping as soon as the commit has finished" in note, note
        assert restore.poll() is None, "the first signal waits for the commit"
        restore.send_signal(signal.SIGTERM)
        _, err = restore.communicate(timeout=120)
    finally:
        holder.close()
        watch.close()
    assert restore.returncode == 130, err
    assert f"may be unchanged or may hold backup {ident}" in err, err
    assert "nothing partial" not in err
