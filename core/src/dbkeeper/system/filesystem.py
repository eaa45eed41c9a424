"""Local file systems: one-line errors when one cannot take what dbkeeper writes there.

Every place that writes a file — the core's artifacts, manifests, backup and scratch
directories, and a driver's local restore target — runs its writes under
:func:`writing` (or through a :class:`GuardedWriter`). The operating system's refusals
then become a :class:`~dbkeeper.errors.StorageError` that names the path, the file
system it lives on and what to do, instead of a bare ``OSError``:

- a full file system (``ENOSPC``, or ``EDQUOT``, a full quota): :class:`DiskFullError`,
  with the free space and, when known, how much was needed or written;
- a read-only file system (``EROFS``);
- a file where a directory belongs (``ENOTDIR``: ``--dir somefile/sub``; ``EEXIST`` from
  creating a directory that exists as a file);
- permission denied (``EACCES``, ``EPERM``);
- a device that fails (``EIO``, for instance from ``fsync``).

The messages say that nothing was left behind: every caller removes what it wrote on
the way out (a partial artifact, a backup directory, a restore's temporary file, a
scratch directory), so only call these where that is true.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from dbkeeper.errors import DiskFullError, StorageError

FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
"""errno values of a file system (or a quota) that has no room left."""
BACKUP_ELSEWHERE = "choose another backup directory (--dir)"
"""What to do, besides freeing space, when the backup directory cannot take a backup."""
SCRATCH_ELSEWHERE = "copy the backup directory to a writable file system with room and run it there"
"""The same for the scratch space of ``restore`` and ``verify --deep``, which lives in the backup directory."""
TARGET_ELSEWHERE = "restore to another location"
"""The same for a restore target that is a local file (SQLite)."""


def human_bytes(count: int) -> str:
    """``1536`` → ``1.5 KiB``."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _existing(path: Path) -> Path:
    """*path*, or its nearest ancestor that exists (a directory that would hold it), named as *path* is."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def mount_point(path: Path) -> Path:
    """The mount point of the file system that holds (or would hold) *path*."""
    current = _existing(path).resolve()
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return current


def space(path: Path) -> tuple[int, int] | None:
    """``(free, size)`` in bytes of the file system of *path*, as an unprivileged user sees it, if it can be asked."""
    try:
        stats = os.statvfs(_existing(path))
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize


def _dangling_link(path: Path) -> Path | None:
    """*path* or its nearest ancestor that is a symbolic link to nothing, if any."""
    for candidate in (path, *path.parents):
        if candidate.is_symlink() and not candidate.exists():
            return candidate
    return None


def _file_in_the_way(path: Path) -> Path | None:
    """*path* or its nearest ancestor that exists, if that is not a directory (named as *path* is)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


class _DiskFull(DiskFullError):
    """A DiskFullError whose message is written when it is shown.

    By then the failed command has removed what it wrote, so the free space it reports
    is what the user has to work with, not the zero the write ran into.
    """

    def __init__(self, path: Path, elsewhere: str, needed: str | None) -> None:
        super().__init__(str(path))
        self.path, self.elsewhere, self.needed = path, elsewhere, needed
        self.mount = mount_point(path)

    def __str__(self) -> str:
        facts = [f"no room for {self.path}"]
        if (known := space(self.path)) is not None:
            free, size = known
            facts.append(f"{human_bytes(free)} of {human_bytes(size)} free now")
        if self.needed:
            facts.append(self.needed)
        return (
            f"the file system mounted at {self.mount} ran out of space ({'; '.join(facts)}); "
            f"nothing was left behind — free space there, or {self.elsewhere}"
        )


def disk_full(path: Path, *, elsewhere: str, needed: str | None = None) -> DiskFullError:
    """The error for a write to *path* that found its file system full.

    *needed* says how much the write needed (``"the snapshot needs 3.9 MiB"``) or had
    written when it ran out, when that is known; *elsewhere* is the way around it other
    than freeing space (``"choose another backup directory (--dir)"``).
    """
    return _DiskFull(path, elsewhere, needed)


def storage_error(exc: OSError, path: Path, *, elsewhere: str, needed: str | None = None) -> StorageError | None:
    """*exc* as a one-line StorageError about *path*, or ``None`` if it is not a file system's refusal.

    The path the operating system names (``exc.filename``) wins over *path*, which is
    the file or directory being written when the error does not say.
    """
    if isinstance(exc.filename, str | bytes):
        path = Path(os.fsdecode(exc.filename))
    if exc.errno in FULL:
        return disk_full(path, elsewhere=elsewhere, needed=needed)
    if exc.errno == errno.EROFS:
        return StorageError(
            f"cannot write {path}: the file system mounted at {mount_point(path)} is read-only; "
            f"nothing was left behind — remount it read-write, or {elsewhere}"
        )
    if exc.errno in (errno.ENOTDIR, errno.EEXIST) and (blocker := _file_in_the_way(path)) is not None:
        where = "it is" if blocker == path else f"{blocker} is"
        return StorageError(f"cannot use {path} as a directory: {where} a file — {elsewhere}")
    if exc.errno == errno.ENOENT and (link := _dangling_link(path)) is not None:
        return StorageError(
            f"cannot use {path} as a directory: {link} is a symbolic link to {os.readlink(link)}, which does not "
            f"exist — create that directory, or {elsewhere}"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return StorageError(f"permission denied on {path} — give this user access to {_existing(path)}, or {elsewhere}")
    if exc.errno == errno.EIO:
        return StorageError(
            f"cannot write {path}: the device under {mount_point(path)} reported an input/output error; nothing "
            f"was left behind — check that disk (the kernel log, dmesg), or {elsewhere}"
        )
    return None


@contextlib.contextmanager
def writing(path: Path, *, elsewhere: str, needed: str | None = None) -> Iterator[None]:
    """Within the block, a file system's refusal to write *path* is raised as a StorageError.

    *elsewhere* is what the user can do instead of freeing space or fixing the file
    system (``"choose another backup directory (--dir)"``); *needed* as for :func:`disk_full`,
    also given to a DiskFullError from deeper down that does not say it.
    """
    try:
        yield
    except _DiskFull as exc:  # translated deeper down, where the size at stake was not known
        exc.needed = exc.needed or needed
        raise
    except OSError as exc:
        if (error := storage_error(exc, path, elsewhere=elsewhere, needed=needed)) is None:
            raise
        raise error from None


@contextlib.contextmanager
def naming(path: Path) -> Iterator[None]:
    """Within the block, an OSError that names no file (a failed ``write``) is raised again naming *path*.

    For code that writes *path* without knowing why: its caller, who does, translates
    the error with :func:`writing`.
    """
    try:
        yield
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror, os.fspath(path)) from exc


def full_error(path: Path) -> OSError:
    """The ``ENOSPC`` error of the operating system, naming *path* (for a library that reports it its own way)."""
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(path))


def write_all(file: BinaryIO, data: bytes) -> int:
    """Write all of *data* to the unbuffered *file*, however short the system's writes; return the bytes written.

    A ``write()`` on a file system that fills up in its middle takes only part of the
    data and reports no error; the rest must be written again (which then raises
    ``ENOSPC``), or it would be silently dropped.
    """
    view = memoryview(data)
    while view:
        view = view[file.write(view) :]
    return len(data)


class GuardedWriter:
    """Writes to *file* with :func:`write_all`; a file system's refusal is raised as a StorageError.

    The error names *path* and how much of the file had been written when it ran out.
    """

    def __init__(self, file: BinaryIO, path: Path, *, elsewhere: str) -> None:
        self._file = file
        self._path = path
        self._elsewhere = elsewhere

    def write(self, data: bytes, /) -> int:
        """Write all of *data*; return its length."""
        try:
            return write_all(self._file, data)
        except OSError as exc:
            written = self._file.tell()
            needed = f"it ran out after writing {human_bytes(written)}" if written else None
            if (error := storage_error(exc, self._path, elsewhere=self._elsewhere, needed=needed)) is None:
                raise
            raise error from None
