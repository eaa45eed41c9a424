"""MariaDB backups on a full file system (issue 9 item 5): one line, nothing left behind.

Before, ``unexpected OSError: [Errno 28] No space left on device (this is a bug…)``.
The file systems are real 2 MiB tmpfs mounts; both dumpers are tried.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mariadb_server import MariaDBServer
from small_fs import everything_in, small_file_system

from helpers import assert_one_line_error, dbkeeper

ROWS = 120_000
"""Rows of 64 hex digits: about 8 MiB of text that zstd cannot shrink below 2 MiB."""


@pytest.fixture(scope="module")
def noisy(mariadb: MariaDBServer) -> Iterator[str]:
    """A database of random hex text: its backup cannot fit in 2 MiB."""
    mariadb.recreate("full_disk_noisy")
    mariadb.execute(
        "CREATE TABLE noise (id INT PRIMARY KEY, hex CHAR(64))",
        f"INSERT INTO noise SELECT seq, CONCAT(MD5(RAND()), MD5(RAND())) FROM seq_1_to_{ROWS}",
        database="full_disk_noisy",
    )
    yield "full_disk_noisy"
    mariadb.execute("DROP DATABASE full_disk_noisy")


@pytest.fixture
def full(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB file system."""
    with small_file_system(tmp_path / "small") as mount:
        yield mount


@pytest.mark.parametrize("tools", ["client", "python"])
def test_mysql_backup_into_a_full_file_system(mariadb: MariaDBServer, noisy: str, full: Path, tools: str) -> None:
    run = dbkeeper(
        "backup", mariadb.url(noisy), "--dir", str(full / "bk"), env={"DBKEEPER_MYSQL_TOOLS": tools}, check=False
    )
    assert_one_line_error(
        run, f"the file system mounted at {full} ran out of space", "nothing was left behind",
        "choose another backup directory (--dir)",
    )  # fmt: skip
    assert everything_in(full) == [], "no partial artifact, scratch or backup directory"
