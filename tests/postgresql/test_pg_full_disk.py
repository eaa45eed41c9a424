"""PostgreSQL backups and restores on a full file system (issue 9 item 5): one line, nothing left behind.

Before, ``unexpected OSError: [Errno 28] No space left on device (this is a bug…)``.
The file systems are real 2 MiB tmpfs mounts.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import Server
from small_fs import everything_in, small_file_system

from helpers import assert_one_line_error, dbkeeper

ROWS = 120_000
"""Rows of 64 hex digits: about 8 MiB of text that zstd cannot shrink below 2 MiB."""


@pytest.fixture(scope="module")
def noisy(pg: Server) -> str:
    """A database of random hex text: its backup cannot fit in 2 MiB."""
    return pg.app_database(
        "full_disk_noisy",
        "CREATE TABLE noise AS "
        f"SELECT g AS id, md5(random()::text) || md5(random()::text) AS hex FROM generate_series(1, {ROWS}) g",
    )


@pytest.fixture(scope="module")
def airy(pg: Server) -> str:
    """A database of repetitive text: 8 MiB that compress to a few KiB."""
    return pg.app_database(
        "full_disk_airy",
        "CREATE TABLE note AS SELECT g AS id, repeat('lorem ipsum ', 10) AS body "
        "FROM generate_series(1, 60000) g; ALTER TABLE note ADD PRIMARY KEY (id)",
    )


@pytest.fixture
def full(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB file system."""
    with small_file_system(tmp_path / "small") as mount:
        yield mount


@pytest.mark.parametrize("options", [[], ["--jobs", "2"], ["--format", "sql"]], ids=["custom", "jobs2", "sql"])
def test_pg_backup_into_a_full_file_system(pg: Server, noisy: str, full: Path, options: list[str]) -> None:
    run = dbkeeper("backup", pg.url(noisy), "--dir", str(full / "bk"), *options, check=False)
    assert_one_line_error(
        run, f"the file system mounted at {full} ran out of space", "nothing was left behind",
        "choose another backup directory (--dir)",
    )  # fmt: skip
    assert everything_in(full) == [], "no partial artifact, scratch or backup directory"


def test_pg_parallel_restore_with_a_full_scratch_space(pg: Server, airy: str, tmp_path: Path, full: Path) -> None:
    made = tmp_path / "bk"
    dbkeeper("backup", pg.url(airy), "--dir", str(made))  # one archive, which pg_restore --jobs needs as a file
    shutil.copytree(made, full / "bk")  # a few KiB; the archive copied out for pg_restore --jobs: several MiB
    before = everything_in(full)
    target = "full_disk_restored"
    run = dbkeeper("restore", "latest", pg.url(target), "--jobs", "2", "--dir", str(full / "bk"), check=False)
    assert_one_line_error(
        run, f"the file system mounted at {full} ran out of space", "uncompressed", "nothing was left behind",
        "copy the backup directory to a writable file system with room",
    )  # fmt: skip
    assert everything_in(full) == before
    assert pg.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{target}'").strip() == "0"
