"""``mariadb-dump`` starts before the backup's facts are read: when the facts end the backup, it ends too.

The early dump here is held by a :class:`Proxy` that never answers it, as a slow server
would: a dump that nothing killed would still be running when the command has ended.
Every backup below fails the way it failed before the dump started early.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from mariadb_server import MariaDBServer
from processes import interrupted, start, wait_for
from test_mysql_timeouts import proxy, silent_port  # noqa: F401 (fixtures)

from dbkeeper.plugin import DatabaseURL
from dbkeeper.system.interrupts import DEFAULT_MESSAGE
from dbkeeper_mysql.client_dump import version_in_header
from helpers import assert_one_line_error, dbkeeper


def dumps_of(database: str) -> list[int]:
    """The pids of running ``mariadb-dump`` processes that dump *database* (read from ``/proc/PID/cmdline``)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with suppress(OSError):  # a process that ended
            argv = cmdline.read_bytes().split(b"\0")[:-1]
            if argv and Path(argv[0].decode()).name == "mariadb-dump" and argv[-1] == database.encode():
                found.append(int(cmdline.parent.name))
    return found


def test_a_database_that_does_not_exist_stops_the_early_dump(
    mariadb: MariaDBServer,
    tmp_path: Path,
    proxy: Callable[..., str],  # noqa: F811
) -> None:
    url = proxy("early_no_such_db", dump="silent")
    run = dbkeeper("backup", url, "--dir", str(tmp_path / "bk"), env={"DBKEEPER_MYSQL_TOOLS": "client"}, check=False)
    port = DatabaseURL.parse(url).port
    assert_one_line_error(
        run, f"error: database 'early_no_such_db' does not exist on mysql://keeper:***@127.0.0.1:{port}/"
    )
    assert dumps_of("early_no_such_db") == []


def test_facts_that_cannot_be_read_stop_the_early_dump(
    mariadb: MariaDBServer,
    tmp_path: Path,
    proxy: Callable[..., str],  # noqa: F811
) -> None:
    """The ``mariadb`` client and PyMySQL are cut off at their handshake: their error, not the dump's."""
    url = proxy("early_facts_fail", dump="silent", others="close")
    run = dbkeeper("backup", url, "--dir", str(tmp_path / "bk"), env={"DBKEEPER_MYSQL_TOOLS": "client"}, check=False)
    assert_one_line_error(run, f"cannot connect to mysql://keeper:***@127.0.0.1:{DatabaseURL.parse(url).port}/")
    assert "mariadb-dump" not in run.err
    assert dumps_of("early_facts_fail") == []


def test_an_interrupted_backup_kills_the_early_dump(silent_port: int, tmp_path: Path) -> None:  # noqa: F811
    url = f"mysql://app:pw@127.0.0.1:{silent_port}/early_interrupted?connect_timeout=120"
    owner = start("backup", url, "--dir", str(tmp_path / "b"), cwd=tmp_path, env={})
    dumps = wait_for("mariadb-dump", owner)
    status, err = interrupted(owner, 60)
    assert status == 130 and err.strip() == DEFAULT_MESSAGE, err
    assert [pid for pid in dumps if Path(f"/proc/{pid}").exists()] == []


def test_the_version_is_read_from_a_mariadb_dump_header_only() -> None:
    """MariaDB's first line gives the --version line; MySQL's or anything else leaves it to a --version run."""
    header = b"-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n"
    assert version_in_header("/usr/bin/mariadb-dump", header) == (
        "mariadb-dump Ver 10.19 Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)"
    )
    assert version_in_header("/usr/bin/mysqldump", b"-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n") is None
    assert version_in_header("/usr/bin/mariadb-dump", b"/*!40101 SET NAMES utf8mb4 */;\n") is None
    assert version_in_header("/usr/bin/mariadb-dump", None) is None
