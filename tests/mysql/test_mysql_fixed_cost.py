"""What a MariaDB backup does before mariadb-dump runs: the server's facts through the ``mariadb`` client."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from mariadb_server import MariaDBServer

from dbkeeper.plugin import DatabaseURL
from dbkeeper_mysql import dump
from dbkeeper_mysql.server import ServerTarget
from helpers import BIN, dbkeeper

ODD_NAME = "we'ird\\db ü\t`x"
"""A database name with a quote, a backslash, a tab, a backquote and a non-ASCII letter."""


@pytest.fixture
def odd_database(mariadb: MariaDBServer) -> Iterator[Callable[[], str]]:
    def create() -> str:
        quoted = "`" + ODD_NAME.replace("`", "``") + "`"
        mariadb.execute(
            f"DROP DATABASE IF EXISTS {quoted}",
            f"CREATE DATABASE {quoted} CHARACTER SET latin1 COLLATE latin1_swedish_ci",
            f"CREATE TABLE {quoted}.`t\\ab\tle` (id INT PRIMARY KEY) ENGINE=InnoDB",
            f"INSERT INTO {quoted}.`t\\ab\tle` VALUES (1), (2)",
            f"CREATE TABLE {quoted}.`Log` (line TEXT) ENGINE=MyISAM",
            f"CREATE TABLE {quoted}.`audit` (line TEXT) ENGINE=MyISAM",
            f"CREATE SEQUENCE {quoted}.`seq\nnext`",
        )
        return ODD_NAME

    yield create
    mariadb.execute("DROP DATABASE IF EXISTS `" + ODD_NAME.replace("`", "``") + "`")


def test_the_facts_are_the_same_through_the_client_and_pymysql(
    mariadb: MariaDBServer, odd_database: Callable[[], str]
) -> None:
    """Server, character set, collation, sequences and non-transactional tables of a database with an awkward name."""
    name = odd_database()
    target = ServerTarget.from_url(DatabaseURL.parse(mariadb.url()))
    through_client = dump._table_facts(target, name, "client")
    assert through_client == dump._table_facts(target, name, "python")
    info, defaults, sequences, non_transactional = through_client
    assert info.flavor == "mariadb" and info.version.startswith(mariadb.execute("SELECT VERSION()")[0][0])  # type: ignore[arg-type]
    assert defaults == ("latin1", "latin1_swedish_ci")
    assert sequences == {"seq\nnext"}
    assert non_transactional == ["audit", "Log"]


def test_a_client_backup_of_a_database_with_an_awkward_name(
    mariadb: MariaDBServer, odd_database: Callable[[], str], tmp_path: Path
) -> None:
    name = odd_database()
    manifest = dbkeeper("backup", mariadb.url(quote(name, safe="")), "--dir", str(tmp_path), "--json").json()
    details = manifest["details"]  # type: ignore[index]
    assert manifest["database"] == name  # type: ignore[index]
    assert (details["character_set"], details["collation"]) == ("latin1", "latin1_swedish_ci")
    assert details["non_transactional_tables"] == ["audit", "Log"]
    assert manifest["row_counts"] == {"t\\ab\tle": 2, "audit": 0, "Log": 0}  # type: ignore[index]  # not the sequence


def test_a_backup_with_the_client_tools_does_not_import_pymysql(mariadb: MariaDBServer, tmp_path: Path) -> None:
    """PyMySQL costs a command 25 ms to import; the client tools path reads everything without it."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(BIN / "dbkeeper"), "-q", "backup", mariadb.url("mysql"), "--dir",
         str(tmp_path)],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "DBKEEPER_MYSQL_TOOLS": "client"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "pymysql" not in imported and "importlib.metadata" not in imported
    assert "dbkeeper_mysql.dump" in imported  # the backup did run here


def test_a_database_that_does_not_exist_is_named_through_the_client_too(mariadb: MariaDBServer, tmp_path: Path) -> None:
    run = dbkeeper("backup", mariadb.url("no_such_db"), "--dir", str(tmp_path), check=False,
                   env={"DBKEEPER_MYSQL_TOOLS": "client"})  # fmt: skip
    assert run.code == 1
    (line,) = run.err.strip().splitlines()
    assert line.startswith("error: database 'no_such_db' does not exist on mysql://keeper:***@")
