"""The password of a MySQL/MariaDB URL: never in the backup directory, never in a tool's environment (items 9, 10).

Real ``dbkeeper backup`` and ``restore`` processes of a 40 MB table are killed with
SIGKILL while ``mariadb-dump`` or ``mariadb`` runs (their ``/proc/PID/environ`` read
first); then the backup directory is searched for the password.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from mariadb_server import MariaDBServer
from processes import (
    assert_environment_holds_no_secret,
    assert_runtime_directory_clean,
    assert_secret_nowhere,
    kill_hard,
    start,
    wait_for,
)
from test_mysql_safety import big_db  # noqa: F401  (the fixture)

from helpers import dbkeeper

CLIENT_TOOLS = {"DBKEEPER_MYSQL_TOOLS": "client"}


def configured(tmp_path: Path, mariadb: MariaDBServer, source: str, target: str) -> dict[str, str]:
    """A dbkeeper.toml naming ``source`` and ``target`` with ``${DB_PW}``; an environment holding the password."""
    (tmp_path / "dbkeeper.toml").write_text(
        f'[connections.source]\nurl = "{mariadb.url(source, password="${DB_PW}")}"\n\n'
        f'[connections.target]\nurl = "{mariadb.url(target, password="${DB_PW}")}"\n'
    )
    return {
        "DB_PW": quote(mariadb.password, safe=""),
        "DATABASE_URL": mariadb.url(source),
        "PLAIN_PW": mariadb.password,
        **CLIENT_TOOLS,
    }


def test_kill_9_of_a_backup_and_of_a_restore_leaves_the_password_nowhere(
    mariadb: MariaDBServer,
    big_db: str,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
    new_database: Callable[[str], str],
) -> None:
    target = new_database("secret_target")
    env = configured(tmp_path, mariadb, big_db, target)
    backups = tmp_path / "bk"

    backup = start("--quiet", "backup", "source", "--dir", str(backups), cwd=tmp_path, env=env)
    pids = wait_for("mariadb-dump", backup)
    for pid in pids:
        assert_environment_holds_no_secret(pid, mariadb.password)
    kill_hard(backup, pids)
    assert_secret_nowhere(mariadb.password, backups)

    complete = dbkeeper("--quiet", "backup", "source", "--dir", str(backups), cwd=tmp_path, env=env).out.strip()
    restore = start("restore", complete, "target", "--dir", str(backups), cwd=tmp_path, env=env)
    pids = wait_for("mariadb", restore)
    for pid in pids:
        assert_environment_holds_no_secret(pid, mariadb.password)
    kill_hard(restore, pids)
    for (name,) in mariadb.execute("SHOW DATABASES LIKE 'dbkeeper\\_restore\\_%'"):
        mariadb.execute(f"DROP DATABASE `{name}`")  # the killed restore's staging database
    assert_secret_nowhere(mariadb.password, backups)

    dbkeeper("--quiet", "backup", "source", "--dir", str(backups), cwd=tmp_path, env=env)  # sweeps a killed run's
    assert_secret_nowhere(mariadb.password, backups)
    assert_runtime_directory_clean(mariadb.password)
