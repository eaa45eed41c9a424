"""A backup id is taken once, even by two processes that reach for the same one at once.

A new backup directory is made under a hidden name and renamed into place. Were that
name random, two processes choosing the same id (same millisecond, same 16 random bits,
or two copies of one backup) could both find the id free and both rename onto it — the
second rename silently replacing the first's still empty directory, both then writing
into one. The hidden directory carries the id instead, so the id is taken from its
creation on; these tests hold it from another real process, as a racing writer would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from dbkeeper.backups.repository import Repository, lock_dir
from helpers import WAIT, assert_one_line_error, dbkeeper, make_db


def hold_lock(directory: Path) -> subprocess.Popen[bytes]:
    """Another process holding *directory*'s lock (``flock``, as dbkeeper's writers do) until killed."""
    argv = ["flock", "--exclusive", "--close", str(directory), "sleep", "60"]  # --close: sleep does not inherit it
    holder = subprocess.Popen(argv, start_new_session=True)
    deadline = time.monotonic() + WAIT
    while (fd := lock_dir(directory, exclusive=True)) is not None:
        os.close(fd)
        assert time.monotonic() < deadline, "flock never took the lock"
        time.sleep(0.01)
    return holder


def test_an_id_another_process_is_writing_is_not_taken_again(tmp_path: Path) -> None:
    db = make_db(tmp_path / "a.db", 50)
    source, target = tmp_path / "source", tmp_path / "target"
    backup_id = dbkeeper("-q", "backup", f"sqlite:///{db}", "--dir", str(source)).out.strip()
    target.mkdir()
    hidden = target / f".scratch-{backup_id}"
    hidden.mkdir()
    holder = hold_lock(hidden)
    try:
        run = dbkeeper("backups", "copy", backup_id, "--dir", str(source), "--to", str(target), check=False)
        assert_one_line_error(run, f"backup {backup_id} is being written to", "by another process")
        assert not (target / backup_id).exists(), "nothing renamed onto the id the other process holds"
        with Repository(target).draft() as draft:
            assert draft.id != backup_id, "a new backup takes another id"
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    # Killed before its rename, the other process left its hidden directory: the id is free again.
    dbkeeper("-q", "backups", "copy", backup_id, "--dir", str(source), "--to", str(target))
    assert (target / backup_id / "manifest.json").is_file()
    assert not hidden.exists(), "the killed process's hidden directory was removed"
    dbkeeper("-q", "verify", backup_id, "--dir", str(target))
