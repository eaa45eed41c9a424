"""The backup's head start (``DriverInfo.prepare_backup``): the psql control session opened before the core's set-up.

Whatever the head start began is gone when the command ends: a backup that fails in the
core's set-up (an unknown compression stage) or is interrupted while ``psql`` still
connects leaves no ``psql`` process and no server session behind, and does not wait for
the connection's timeout.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from pg_server import Server
from processes import interrupted, start, wait_for
from test_pg_timeouts import silent_port  # noqa: F401 (a fixture)

from dbkeeper.system.interrupts import DEFAULT_MESSAGE
from helpers import assert_one_line_error, dbkeeper

SLOW_CONNECT = 120
"""The URL's connect_timeout: a command that waited for it would be stopped by WITHIN first."""
WITHIN = 60
"""Seconds the commands below get; they end in well under one when the head start is stopped."""


def processes_mentioning(marker: str) -> list[str]:
    """The command lines of every running process that hold *marker* (this test's own ``ps`` left out)."""
    listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if marker in line and " ps -eo" not in line]


def test_a_backup_failing_after_the_head_start_leaves_no_psql_nor_session(pg: Server, tmp_path: Path) -> None:
    marker = f"headstart{os.getpid()}x"
    pg.app_database("prepared_fails", "CREATE TABLE t (id int)")
    url = pg.url("prepared_fails", query=f"application_name={marker}")
    result = dbkeeper("backup", url, "--dir", str(tmp_path / "b"), "--compress", "nosuch", check=False)
    assert_one_line_error(result, "nosuch")  # the core's error, as without a head start
    assert processes_mentioning(marker) == []
    deadline = time.monotonic() + WITHIN  # the server ends a session whose client is gone on its own time
    while pg.psql(f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{marker}'").strip() != "0":
        assert time.monotonic() < deadline, "the head start's session is still open on the server"
        time.sleep(0.05)
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_a_backup_failing_while_psql_connects_kills_it_without_waiting(silent_port: int, tmp_path: Path) -> None:  # noqa: F811
    """psql still connecting to a silent server is killed; the command does not wait for connect_timeout."""
    marker = f"headstart{os.getpid()}y"
    url = f"postgresql://app:pw@127.0.0.1:{silent_port}/app?connect_timeout={SLOW_CONNECT}&application_name={marker}"
    owner = start("backup", url, "--dir", str(tmp_path / "b"), "--compress", "nosuch", cwd=tmp_path, env={})
    _, err = owner.communicate(timeout=WITHIN)
    assert owner.returncode == 1 and "nosuch" in err and err.count("\n") == 1, err
    assert processes_mentioning(marker) == []


def test_an_interrupted_backup_kills_the_connecting_psql(silent_port: int, tmp_path: Path) -> None:  # noqa: F811
    marker = f"headstart{os.getpid()}z"
    url = f"postgresql://app:pw@127.0.0.1:{silent_port}/app?connect_timeout={SLOW_CONNECT}&application_name={marker}"
    owner = start("backup", url, "--dir", str(tmp_path / "b"), cwd=tmp_path, env={})
    psql = wait_for("psql", owner)
    status, err = interrupted(owner, WITHIN)
    assert status == 130, err
    assert err.strip() == DEFAULT_MESSAGE, err
    assert [pid for pid in psql if Path(f"/proc/{pid}").exists()] == []
    assert processes_mentioning(marker) == []
