"""The password of a PostgreSQL URL: never in the backup directory, never in a tool's environment (items 9, 10).

A real ``dbkeeper backup`` is held mid-way (pg_dump waits for a lock the test holds),
its pg_dump's ``/proc/PID/environ`` is read, then dbkeeper is killed with SIGKILL and
the backup directory searched for the password.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from pg_server import APP_PASSWORD, Server
from processes import (
    assert_environment_holds_no_secret,
    assert_runtime_directory_clean,
    assert_secret_nowhere,
    environment_of,
    kill_hard,
    start,
    wait_for,
)
from test_pg_safety import hold_exclusive_lock

from helpers import dbkeeper


def configured(tmp_path: Path, pg: Server, database: str) -> dict[str, str]:
    """A dbkeeper.toml naming *database* as ``db`` with ``${PW}``; an environment holding the password 3 ways."""
    (tmp_path / "dbkeeper.toml").write_text(
        f'[connections.db]\nurl = "postgresql://app:${{PW}}@127.0.0.1:{pg.port}/{database}"\n'
    )
    return {"PW": quote(APP_PASSWORD, safe=""), "DATABASE_URL": pg.url(database), "PLAIN_PW": APP_PASSWORD}


def test_kill_9_of_a_backup_leaves_the_password_nowhere_and_pg_dump_never_had_it_in_its_environment(
    pg: Server, chinook: str, backups: Path, tmp_path: Path
) -> None:
    env = configured(tmp_path, pg, chinook)
    lock = hold_exclusive_lock(pg, chinook, "album")  # pg_dump waits for it: held mid-way
    backup = start("--quiet", "backup", "db", "--dir", str(backups), "--jobs", "2", cwd=tmp_path, env=env)
    try:
        pids = wait_for("pg_dump", backup, count=2)
        for pid in pids:
            assert_environment_holds_no_secret(pid, APP_PASSWORD)
            assert environment_of(pid)["PGPASSFILE"].startswith("/dev/fd/")
            assert "connect_timeout=10" in Path(f"/proc/{pid}/cmdline").read_text(), "the tools get the default too"
        kill_hard(backup, pids)
    finally:
        lock.close()
    assert_secret_nowhere(APP_PASSWORD, backups)

    # the next run sweeps whatever a killed run could have left in the private runtime directory
    dbkeeper("--quiet", "backup", pg.url(chinook), "--dir", str(backups))
    assert_secret_nowhere(APP_PASSWORD, backups)
    assert_runtime_directory_clean(APP_PASSWORD)


def test_restore_tools_get_no_secret_in_their_environment(
    pg: Server, chinook: str, backups: Path, tmp_path: Path
) -> None:
    env = configured(tmp_path, pg, chinook)
    ident = dbkeeper("--quiet", "backup", pg.url(chinook), "--dir", str(backups)).out.strip()
    lock = hold_exclusive_lock(pg, chinook, "album")  # pg_restore --clean waits to drop it
    restore = start("restore", ident, "db", "--force", "--dir", str(backups), cwd=tmp_path, env=env)
    try:
        for pid in wait_for("pg_restore", restore):
            assert_environment_holds_no_secret(pid, APP_PASSWORD)
    finally:
        lock.close()
    _, err = restore.communicate(timeout=120)
    assert restore.returncode == 0, err
    assert_secret_nowhere(APP_PASSWORD, backups)
