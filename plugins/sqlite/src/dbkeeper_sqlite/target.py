"""Restoring into a SQLite file without ever leaving it half-written.

The database is written to a hidden file beside the target, fsynced, checked, and only
then renamed over the target (an atomic step on POSIX file systems); a failure at any
point leaves the target exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from dbkeeper.errors import DatabaseError, TargetNotEmptyError
from dbkeeper_sqlite.files import has_tables, opened

_SIDECARS = ("-wal", "-shm", "-journal")


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


def _quiesce(target: Path) -> None:
    """Fold the target's WAL or hot journal back into it, proving no one else is using it."""
    if not target.exists():
        return
    try:
        with opened(target) as conn:
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA journal_mode = DELETE").fetchone()
    except (DatabaseError, sqlite3.Error) as exc:
        raise DatabaseError(
            f"cannot replace {target}: it is in use or damaged ({exc}); stop the programs using it and retry"
        ) from None


@contextlib.contextmanager
def beside(target: Path) -> Iterator[Path]:
    """A new empty file next to *target*; on success, swap it into place, else remove it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.dbkeeper-restore-{secrets.token_hex(4)}")
    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _new_file_mode(target)))
    try:
        yield temp
        _quiesce(target)
        os.replace(temp, target)
    except BaseException:
        for leftover in (temp, *(temp.with_name(temp.name + s) for s in _SIDECARS)):
            leftover.unlink(missing_ok=True)
        raise
    for sidecar in _SIDECARS:  # belonged to the old file, now replaced
        target.with_name(target.name + sidecar).unlink(missing_ok=True)
    fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
