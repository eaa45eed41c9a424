"""The backup's head start (``DriverInfo.prepare_backup``): the facts read by the client before the core's set-up.

Whatever the head start began is gone when the command ends: a backup that fails in the
core's set-up or is interrupted while the client still connects leaves no ``mariadb``
process behind, does not wait for the connection's timeout, and does not try PyMySQL
after the client it killed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from mariadb_server import MariaDBServer
from processes import interrupted, start, wait_for
from test_mysql_timeouts import silent_port  # noqa: F401 (a fixture)

from dbkeeper.system.interrupts import DEFAULT_MESSAGE
from helpers import assert_one_line_error, dbkeeper

SLOW_CONNECT = 120
"""The URL's connect_timeout: a command that waited for it would be stopped by WITHIN first."""
WITHIN = 60
"""Seconds the commands below get; they end in well under one when the head start is stopped."""


def clients_reading(database: str) -> list[str]:
    """The command lines of running processes whose facts query names *database* (hex, as :func:`facts_query` does)."""
    marker = database.encode().hex()
    listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if marker in line and " ps -eo" not in line]


def test_a_backup_failing_after_the_head_start_reports_the_core_error(mariadb: MariaDBServer, tmp_path: Path) -> None:
    mariadb.execute("CREATE DATABASE IF NOT EXISTS prepared_fails", "CREATE TABLE prepared_fails.t (id INT)")
    url = mariadb.url("prepared_fails")
    result = dbkeeper("backup", url, "--dir", str(tmp_path / "b"), "--compress", "nosuch", check=False)
    assert_one_line_error(result, "nosuch")
    assert clients_reading("prepared_fails") == []
    assert dbkeeper("backup", url, "--dir", str(tmp_path / "b")).out.strip()  # and the same backup works


def test_a_backup_failing_while_the_client_connects_kills_it_without_waiting(silent_port: int, tmp_path: Path) -> None:  # noqa: F811
    url = f"mysql://app:pw@127.0.0.1:{silent_port}/silentshop?connect_timeout={SLOW_CONNECT}"
    owner = start("backup", url, "--dir", str(tmp_path / "b"), "--compress", "nosuch", cwd=tmp_path, env={})
    _, err = owner.communicate(timeout=WITHIN)
    assert owner.returncode == 1 and "nosuch" in err and err.count("\n") == 1, err
    assert clients_reading("silentshop") == []


def test_an_interrupted_backup_kills_the_connecting_client(silent_port: int, tmp_path: Path) -> None:  # noqa: F811
    url = f"mysql://app:pw@127.0.0.1:{silent_port}/silentshop?connect_timeout={SLOW_CONNECT}"
    owner = start("backup", url, "--dir", str(tmp_path / "b"), cwd=tmp_path, env={})
    clients = wait_for("mariadb", owner)
    status, err = interrupted(owner, WITHIN)
    assert status == 130 and err.strip() == DEFAULT_MESSAGE, err
    assert [pid for pid in clients if Path(f"/proc/{pid}").exists()] == []
    assert clients_reading("silentshop") == []
