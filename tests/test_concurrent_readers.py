"""A backup being read (verify, restore) is never deleted under its reader: delete and prune wait."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path

from helpers import BIN, dbkeeper


def _big_database(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB)")
        db.executemany("INSERT INTO blobs (body) VALUES (?)", ((os.urandom(64 * 1024),) for _ in range(1200)))


def _wait_for_flock(directory: Path, process: subprocess.Popen[str], *, seconds: float = 60) -> None:
    """Until the kernel lists a lock on *directory* held by *process* (read from /proc/locks)."""
    inode = f":{directory.stat().st_ino} "
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if "FLOCK" in fields and str(process.pid) in fields and inode in line + " ":
                return
        if process.poll() is not None:
            raise AssertionError(f"the reader ended without ever locking {directory}: {process.communicate()}")
        time.sleep(0.002)
    raise AssertionError(f"the reader never locked {directory}")


def test_delete_waits_for_a_verify_reading_the_backup(tmp_path: Path) -> None:
    source = tmp_path / "big.db"
    _big_database(source)
    backups = tmp_path / "backups"
    backup_id = dbkeeper("backup", f"sqlite:///{source}", "--dir", str(backups), "--compress", "gzip").out.strip()

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    reader = subprocess.Popen(
        [str(BIN / "dbkeeper"), "-q", "verify", backup_id, "--deep", "--dir", str(backups)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for_flock(backups / backup_id, reader)
    deleted = dbkeeper("backups", "delete", backup_id, "--dir", str(backups), check=False)
    _, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err  # it read every byte: nothing was removed under it
    assert deleted.code == 0, deleted.err  # and the delete waited for it, then did its work
    assert not (backups / backup_id).exists()
