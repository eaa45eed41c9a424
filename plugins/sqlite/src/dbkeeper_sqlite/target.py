"""Restoring into a SQLite file without ever leaving it half-written.

The database is written to a hidden file beside the target, fsynced, checked, and only
then renamed over the target (an atomic step on POSIX file systems); a failure at any
point leaves the target exactly as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from dbkeeper.plugin import DatabaseError, TargetNotEmptyError
from dbkeeper_sqlite.files import has_tables, opened

_SIDECARS = ("-wal", "-shm", "-journal")
_TEMP_MARK = ".dbkeeper-restore-"
IN_USE_WAIT_MS = 5000


def refuse_unless_empty(target: Path, force: bool) -> None:
    """Raise TargetNotEmptyError when *target* holds data and *force* is false."""
    if not force and has_tables(target):
        raise TargetNotEmptyError(
            f"restore target {target} already holds data; pass --force to replace it, or restore into a new file"
        )


def _new_file_mode(target: Path) -> int:
    """Keep an existing target's permissions; a new file gets the usual 0666 & ~umask."""
    if target.exists():
        return target.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def _exclusive_access(target: Path) -> Iterator[None]:
    """Hold SQLite's exclusive lock on an existing *target* for the swap.

    Its WAL or hot journal is folded back first; then ``BEGIN EXCLUSIVE`` waits (up to
    five seconds) for every reader and writer to finish, so no transaction is open on the
    old file when the new one takes its name. A program that merely keeps the file open
    between transactions cannot be seen: stop it before restoring over its database.
    """
    if not target.exists():
        yield
        return
    with opened(target) as conn:
        try:
            conn.execute(f"PRAGMA busy_timeout = {IN_USE_WAIT_MS}")
            conn.execute("PRAGMA journal_mode = DELETE").fetchone()
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.Error as exc:
            raise DatabaseError(
                f"cannot replace {target}: it is in use or damaged ({exc}); stop the programs using it and retry"
            ) from None
        yield


def _remove_with_sidecars(path: Path) -> None:
    for leftover in (path, *(path.with_name(path.name + s) for s in _SIDECARS)):
        leftover.unlink(missing_ok=True)


def _sweep_abandoned(target: Path) -> None:
    """Remove temporary files of restores into *target* that were killed (nobody holds their lock)."""
    for temp in target.parent.glob(f".{glob.escape(target.name)}{_TEMP_MARK}*"):
        if any(temp.name.endswith(s) for s in _SIDECARS):
            continue
        fd = os.open(temp, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _remove_with_sidecars(temp)
        except BlockingIOError:
            continue  # a restore in progress
        finally:
            os.close(fd)


@contextlib.contextmanager
def beside(target: Path, commit: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext) -> Iterator[Path]:
    """A new empty file next to *target*; on success, swap it into place, else remove it.

    The file is locked while in use, so the temporary file of a restore that was killed
    is recognised and removed by the next restore into the same target. The rename runs
    inside *commit* (:meth:`dbkeeper.plugin.RestoreRequest.committing`), so that an
    interruption says whether it happened.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_abandoned(target)
    temp = target.with_name(f".{target.name}{_TEMP_MARK}{os.urandom(4).hex()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _new_file_mode(target))
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield temp
        with contextlib.ExitStack() as window:  # from the rename until the old file's sidecars are gone
            with _exclusive_access(target):
                window.enter_context(commit())
                os.replace(temp, target)
            _settle(target)
    except BaseException:
        _remove_with_sidecars(temp)
        raise
    finally:
        os.close(fd)


def _settle(target: Path) -> None:
    """Remove the sidecars of the file *target* replaced and make the rename durable."""
    for sidecar in _SIDECARS:  # belonged to the old file, now replaced
        target.with_name(target.name + sidecar).unlink(missing_ok=True)
    fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
