"""Full file systems (issue 9 item 5), on real 2 MiB tmpfs mounts: one line naming the file system, nothing left.

Before, a full backup directory gave ``unexpected OSError: [Errno 28] … (this is a bug…)``,
and a full disk during SQLite's snapshot blamed the source ("cannot read SQLite database
… database or disk is full").
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from small_fs import compressible_db, everything_in, incompressible_db, small_file_system

from dbkeeper.errors import DiskFullError
from dbkeeper.system.filesystem import GuardedWriter
from helpers import assert_one_line_error, dbkeeper


@pytest.fixture
def full(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB file system, too small for the 4 MiB databases below."""
    with small_file_system(tmp_path / "small") as mount:
        yield mount


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 MiB of random bytes: its backup (and its snapshot) cannot fit in 2 MiB."""
    return incompressible_db(tmp_path_factory.mktemp("big") / "big.db", 4)


@pytest.fixture(scope="module")
def airy_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 MiB that compress to a few KiB: its backups fit in 2 MiB, the database does not."""
    return compressible_db(tmp_path_factory.mktemp("airy") / "airy.db", 4)


@pytest.mark.parametrize(
    ("options", "needed"),
    [
        ([], "the snapshot needs "),  # the scratch snapshot of the sqlite format fills the disk
        (["--format", "sql"], "it ran out after writing"),  # the artifact fills it
        (["--compress", "none", "--format", "sql"], "it ran out after writing"),
    ],
)
def test_backup_into_a_full_file_system(big_db: Path, full: Path, options: list[str], needed: str) -> None:
    run = dbkeeper("backup", f"sqlite:///{big_db}", "--dir", str(full / "bk"), *options, check=False)
    assert_one_line_error(
        run, f"the file system mounted at {full} ran out of space", needed, "MiB free now", "nothing was left behind",
        "free space there, or choose another backup directory (--dir)",
    )  # fmt: skip
    assert "cannot read SQLite database" not in run.err, "the source is not to blame"
    assert everything_in(full) == [], "no partial artifact, scratch directory, or backup directory it made"


def test_backup_into_a_full_existing_backup_directory_keeps_the_others(big_db: Path, airy_db: Path, full: Path) -> None:
    backups = full / "bk"
    first = dbkeeper("backup", f"sqlite:///{airy_db}", "--format", "sql", "--dir", str(backups)).out.strip()
    run = dbkeeper("backup", f"sqlite:///{big_db}", "--format", "sql", "--dir", str(backups), check=False)
    assert_one_line_error(run, "ran out of space", "nothing was left behind")
    assert [p.name for p in backups.iterdir()] == [first], "only the earlier, complete backup remains"
    dbkeeper("verify", first, "--dir", str(backups))


@pytest.mark.parametrize("format_", ["sqlite", "sql"])
def test_restore_into_a_full_file_system(big_db: Path, tmp_path: Path, full: Path, format_: str) -> None:
    backups = tmp_path / "bk"
    dbkeeper("backup", f"sqlite:///{big_db}", "--format", format_, "--dir", str(backups))
    run = dbkeeper("restore", "latest", f"sqlite:///{full / 'copy.db'}", "--dir", str(backups), check=False)
    assert_one_line_error(
        run, f"the file system mounted at {full} ran out of space", "uncompressed", "nothing was left behind",
        "free space there, or restore to another location",
    )  # fmt: skip
    assert "does not load" not in run.err, "the dump is not to blame"
    assert everything_in(full) == [], "no temporary file beside the target"
    assert not [p for p in backups.iterdir() if p.name.startswith(".")], "no scratch directory"


def test_restore_over_a_target_on_a_full_file_system_keeps_it(big_db: Path, tmp_path: Path, full: Path) -> None:
    target = full / "app.db"
    compressible_db(target, 1)
    before = target.read_bytes()
    backups = tmp_path / "bk"
    dbkeeper("backup", f"sqlite:///{big_db}", "--dir", str(backups))
    run = dbkeeper("restore", "latest", f"sqlite:///{target}", "--force", "--dir", str(backups), check=False)
    assert_one_line_error(run, "ran out of space", "nothing was left behind")
    assert target.read_bytes() == before
    assert everything_in(full) == ["app.db"]


@pytest.mark.parametrize("format_", ["sqlite", "sql"])
def test_verify_deep_with_a_full_scratch_space(airy_db: Path, tmp_path: Path, full: Path, format_: str) -> None:
    made = tmp_path / "bk"
    backup_id = dbkeeper("backup", f"sqlite:///{airy_db}", "--format", format_, "--dir", str(made)).out.strip()
    backups = full / "bk"
    shutil.copytree(made, backups)  # a few KiB: fits; the 4 MiB database inside does not
    before = everything_in(full)
    run = dbkeeper("verify", "latest", "--deep", "--dir", str(backups), check=False)
    assert_one_line_error(
        run, f"the file system mounted at {full} ran out of space", "the backup is", "uncompressed",
        "nothing was left behind", "copy the backup directory to a writable file system with room",
    )  # fmt: skip
    assert everything_in(full) == before, "no scratch directory or partial database left"
    assert dbkeeper("verify", "latest", "--dir", str(backups)).out.startswith(f"ok {backup_id}")


def test_a_short_write_on_a_filling_disk_is_not_dropped(full: Path) -> None:
    """With 1 MiB left, a 2 MiB write() takes what fits and reports no error: the rest must not vanish."""
    (full / "filler").write_bytes(b"\0" * (1 << 20))
    data = os.urandom(2 << 20)
    with (full / "raw").open("wb", buffering=0) as raw:
        assert 0 < raw.write(data) < len(data), "the system's write is short, without an error"
    (full / "raw").unlink()
    expected = r"ran out of space \(no room for .*guarded; .*it ran out after writing"
    with (full / "guarded").open("wb", buffering=0) as file, pytest.raises(DiskFullError, match=expected):
        GuardedWriter(file, full / "guarded", elsewhere="go elsewhere").write(data)
