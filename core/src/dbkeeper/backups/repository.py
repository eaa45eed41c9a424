"""The backup directory on disk, and the protocol that makes a backup complete.

Layout: ``<root>/<backup-id>/`` holds the artifacts and ``manifest.json``. A backup is
written as: directory created (0700) and locked → each artifact written under
``<file>.partial`` (0600), fsynced, renamed, directory fsynced → manifest written the
same way, *last*. So a directory without ``manifest.json`` is never a complete backup:
while its writer holds the lock it is *running*, afterwards it is *incomplete* (the
writer died) and ``prune`` removes it. Deleting removes the manifest first.

What is in the directory may have been written by someone else. Nothing below the root
is ever opened, read or deleted through a symbolic link: every directory and file is
opened with ``O_NOFOLLOW`` (files relative to their directory's descriptor), a link named
like a backup is listed as *foreign* and left alone, and a manifest that names a file
outside its backup, records another id than its directory's name, or is not sound JSON
makes its backup *damaged* without touching any other.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from dbkeeper.backups.localfs import DIR_FLAGS, DIR_MODE, FILE_FLAGS, FILE_MODE, PARTIAL
from dbkeeper.backups.manifest import (
    BACKUP_ID,
    MANIFEST_FILE,
    MANIFEST_LIMIT,
    ArtifactRecord,
    Manifest,
    artifact_file_problem,
    new_backup_id,
)
from dbkeeper.backups.records import read_local_record, write_local_record
from dbkeeper.backups.storage import BackupStorage, Entry, Status
from dbkeeper.errors import BackupError, BackupNotFoundError, IntegrityError, ManifestError
from dbkeeper.plugin.tools import runtime_directory
from dbkeeper.system.filesystem import BACKUP_ELSEWHERE, GuardedWriter, naming, write_all, writing

MANIFEST = MANIFEST_FILE
LOCK_WAIT = 60.0
"""Seconds a delete waits for another process's lock on a backup that is not being written."""
LOCK_POLL = 0.05
_UNWRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)
SCRATCH_PREFIX = ".scratch-"
_MKDIR_LIMIT = 1000
"""``mkdir`` calls making a root, far more than concurrent failing backups removing its new directories can
cause: only a path that can take no directory at all (under a deleted working directory) runs out of them."""


def _make_dir(path: Path, mode: int) -> bool | None:
    """``mkdir`` *path*: True when this made it, False when a directory is there, None when its parent is not.

    A directory removed between ``mkdir``'s "it exists" and the check also gives None (it is
    made again). Raises ``NotADirectoryError`` when something else is at *path*, and
    ``FileNotFoundError`` when it is a symbolic link to nothing.
    """
    try:
        path.mkdir(mode=mode)
    except FileNotFoundError:
        return None
    except FileExistsError:
        try:
            found = os.stat(path)
        except FileNotFoundError:
            if path.is_symlink():
                raise
            return None
        if not stat.S_ISDIR(found.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path)) from None
        return False
    return True


def fsync_dir(path: Path) -> None:
    """Make a rename or creation inside *path* durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with naming(path):
            os.fsync(fd)
    finally:
        os.close(fd)


def _try_lock(fd: int, *, exclusive: bool) -> bool:
    """Take an ``flock`` on *fd* if nobody holds a conflicting one; never waits."""
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock_dir(path: Path, *, exclusive: bool, wait: float = 0.0) -> int | None:
    """Open directory *path*, never through a symbolic link, and lock it: the open descriptor, or None.

    None means another process still held the lock after *wait* seconds. The lock is an
    ``flock`` on the directory itself, so it dies with its process (a killed writer leaves
    no lock behind) and is released when the descriptor is closed. Raises
    ``FileNotFoundError`` when *path* is gone, and ``OSError`` (``ELOOP``) when it is a link.
    """
    fd = os.open(path, DIR_FLAGS)
    deadline = time.monotonic() + wait
    while not _try_lock(fd, exclusive=exclusive):
        if time.monotonic() >= deadline:
            os.close(fd)
            return None
        time.sleep(LOCK_POLL)
    return fd


def _same_dir(path: Path, fd: int) -> bool:
    """Whether *path* still names the directory open as *fd* (not deleted or replaced meanwhile)."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return os.path.samestat(named, os.fstat(fd))


def _file_problem(label: str, found: os.stat_result | OSError, recorded: int) -> str | None:
    """What is wrong with stored file *label* given its ``lstat`` (or the error getting it), or None.

    The error of an ``O_NOFOLLOW`` open of a link (``ELOOP``) counts as finding a link.
    """
    if isinstance(found, FileNotFoundError):
        return f"artifact {label} is missing — use another backup"
    if isinstance(found, OSError) and found.errno != errno.ELOOP:
        return f"artifact {label} cannot be read ({found.strerror}); use another backup"
    if isinstance(found, OSError) or stat.S_ISLNK(found.st_mode):
        return f"artifact {label} is a symbolic link, not a file dbkeeper wrote: it is damaged — use another backup"
    if not stat.S_ISREG(found.st_mode):
        return f"artifact {label} is not a regular file: it is damaged — use another backup"
    if found.st_size != recorded:
        return (
            f"artifact {label} is {found.st_size} bytes, the manifest records {recorded}: "
            "it was truncated or changed — use another backup"
        )
    return None


def _open_artifact(path: Path, artifact: ArtifactRecord) -> BinaryIO:
    """Open a stored artifact of the backup directory *path* for reading, never through a link, after checking its size.

    Raises :class:`~dbkeeper.errors.IntegrityError` when the backup directory or the file
    is a symbolic link, the file is missing or not a regular file, or its size differs
    from the manifest's record.
    """
    label = f"{path.name}/{artifact.file}"
    try:
        dir_fd = os.open(path, DIR_FLAGS)
    except OSError as exc:
        raise IntegrityError(_dir_problem(path, exc)) from None
    try:
        fd = os.open(artifact.file, FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise IntegrityError(_file_problem(label, exc, artifact.stored_bytes) or str(exc)) from None
    finally:
        os.close(dir_fd)
    if problem := _file_problem(label, os.fstat(fd), artifact.stored_bytes):
        os.close(fd)
        raise IntegrityError(problem)
    return os.fdopen(fd, "rb", buffering=0)


def _dir_problem(path: Path, exc: OSError) -> str:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR) and path.is_symlink():
        return _link_problem(path)
    return f"backup {path.name} cannot be opened ({exc.strerror})"


def _link_problem(path: Path) -> str:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return (
        f"{path} is a symbolic link (to {target}), not a backup directory: dbkeeper never follows it, "
        "neither to read nor to delete; remove the link itself if it is not wanted"
    )


def _read_manifest(dir_fd: int, label: str) -> str | None:
    """The text of ``manifest.json`` in the open backup directory, or None when there is none.

    Raises :class:`ManifestError` when it is a link, not a regular file, larger than
    :data:`MANIFEST_LIMIT`, or not UTF-8.
    """
    try:
        fd = os.open(MANIFEST, FILE_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        what = "a symbolic link" if exc.errno == errno.ELOOP else f"unreadable ({exc.strerror})"
        raise ManifestError(f"manifest of backup {label} is {what}; it is damaged") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ManifestError(f"manifest of backup {label} is not a regular file; it is damaged")
    with os.fdopen(fd, "rb") as file:
        data = file.read(MANIFEST_LIMIT + 1)
    if len(data) > MANIFEST_LIMIT:
        raise ManifestError(
            f"manifest of backup {label} is larger than {MANIFEST_LIMIT // (1024 * 1024)} MiB, which no "
            "manifest dbkeeper writes is; it is damaged"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestError(f"manifest of backup {label} is not UTF-8 text; it is damaged") from None


class AtomicFile:
    """A file written under ``<name>.partial`` (0600) and renamed into place on commit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + PARTIAL)
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        self.file: BinaryIO = os.fdopen(fd, "wb", buffering=0)

    @property
    def writer(self) -> GuardedWriter:
        """The file for a backup's stored bytes: a full disk or a refused write as one line naming the fix."""
        return GuardedWriter(self.file, self.path, elsewhere=BACKUP_ELSEWHERE)

    def commit(self) -> None:
        """fsync, rename into place, fsync the directory."""
        self.sync()
        self.place()

    def sync(self) -> None:
        """Make the partial file durable (fsync), and close it."""
        with naming(self.path):
            os.fsync(self.file.fileno())
        self.file.close()

    def place(self) -> None:
        """Rename the synced partial file into place, and fsync the directory."""
        os.replace(self.partial, self.path)
        fsync_dir(self.path.parent)

    def discard(self) -> None:
        """Close and remove the partial file."""
        self.file.close()
        self.partial.unlink(missing_ok=True)


def write_atomically(path: Path, data: bytes) -> None:
    """Write *data* to *path* through an :class:`AtomicFile`."""
    atomic = _written(path, data)
    atomic.commit()


def _written(path: Path, data: bytes) -> AtomicFile:
    """An :class:`AtomicFile` holding *data*, not committed yet."""
    atomic = AtomicFile(path)
    try:
        write_all(atomic.file, data)  # a short write on a filling disk must not commit a truncated file
    except BaseException:
        atomic.discard()
        raise
    return atomic


class Syncing:
    """The fsyncs of a backup being written, on threads beside the work; all awaited before its manifest.

    An fsync waits for the disk (milliseconds each, even for a small file). The backup's
    directory and each finished artifact are made durable while the dump goes on and while
    the manifest is written; the manifest is renamed into place only once every one of
    them has succeeded, so the order on disk is the one the module docstring gives.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fsync")
        self._pending: list[Future[None]] = []

    def start(self, work: Callable[[], None]) -> None:
        """Run *work* (fsyncs and a rename) on one of the syncing threads."""
        self._pending.append(self._pool.submit(work))

    def wait(self) -> None:
        """Wait for every started work; raise the first failure."""
        try:
            for done in self._pending:
                done.result()
        finally:
            self.close()

    def close(self) -> None:
        """End the threads (once their work is done): an idle one would keep the command from exiting."""
        self._pool.shutdown()

    def abandon(self) -> None:
        """Wait for the started work without raising (the backup failed: its directory is removed next)."""
        with contextlib.suppress(Exception):
            self.wait()


class _ArtifactFile(AtomicFile):
    """An artifact of a draft: committed on a :class:`Syncing` thread, while the backup goes on."""

    def __init__(self, path: Path, syncing: Syncing) -> None:
        super().__init__(path)
        self._syncing = syncing

    def commit(self) -> None:
        """fsync, rename and fsync the directory on a thread; the manifest waits for it."""
        self._syncing.start(super().commit)


class BackupDraft:
    """A backup being written: create artifact files, then commit the manifest."""

    def __init__(self, backup_id: str, path: Path, syncing: Syncing) -> None:
        self.id = backup_id
        self.path = path
        self._syncing = syncing

    def create(self, file_name: str) -> AtomicFile:
        """Start writing artifact *file_name*."""
        if problem := artifact_file_problem(file_name):
            raise BackupError(f"invalid artifact name {file_name!r}: it {problem} (a driver bug)")
        return _ArtifactFile(self.path / file_name, self._syncing)

    def commit(self, manifest: Manifest) -> None:
        """Write the manifest, which makes the backup complete: synced beside the artifacts, renamed after them."""
        atomic = _written(self.path / MANIFEST, manifest.to_json().encode())
        try:
            atomic.sync()
            self._syncing.wait()
        except BaseException:
            atomic.discard()
            raise
        atomic.place()


class Repository(BackupStorage):
    """The backups under one local directory: the built-in storage."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.location = str(self.root)
        self._created: list[Path] = []

    def _ensure_root(self) -> None:
        """Create the root (0700) and its missing parents, remembering which ones this process made.

        Each directory is made by ``mkdir`` itself, never after a check that another process
        can make stale: a failing first backup beside this one removes the new directories it
        made (:meth:`removing_created_root`), and one of them gone meanwhile is made again (its
        parents first). A file where the root belongs raises ``NotADirectoryError`` (turned
        into a one-line StorageError by :func:`dbkeeper.system.filesystem.writing` around the caller).
        """
        pending = [self.root]
        for _ in range(_MKDIR_LIMIT):
            path = pending[-1]
            made = _make_dir(path, DIR_MODE if path == self.root else 0o777)
            if made is None:  # its parent is missing, or was removed meanwhile: made first
                pending.append(path.parent)
                continue
            if made:
                self._created.append(path)
            pending.pop()
            if not pending:
                return
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(self.root))

    @contextlib.contextmanager
    def removing_created_root(self) -> Iterator[None]:
        """If the block fails, remove the directories it created for the root, as long as they are empty.

        A backup that fails before writing anything (a missing database file, a refused
        connection) then leaves no empty backup directory behind. A directory another
        process has put something in meanwhile is kept (``rmdir`` only removes empty ones).
        """
        self._created = []
        try:
            yield
        except BaseException:
            for path in reversed(self._created):
                try:
                    path.rmdir()
                except OSError:
                    break  # not empty (or already gone): neither it nor its parents are ours to remove
            raise
        finally:
            self._created = []

    @contextlib.contextmanager
    def _private_dir(self, name: str | None = None) -> Iterator[Path]:
        """A new hidden directory (0700) under the root, locked by this process for the block.

        Creating and locking are two steps; a ``prune`` that locks the directory in
        between deletes it while holding the lock, so here a directory that cannot be
        locked, or is gone once locked, is given up and another one made. Its name is
        random, or carries *name*: then FileExistsError says that another process holds
        a directory of that name.
        """
        self._ensure_root()
        while True:
            path = self.root / f"{SCRATCH_PREFIX}{name or os.urandom(4).hex()}"
            try:
                path.mkdir(mode=DIR_MODE)
            except FileNotFoundError:  # a concurrent first backup failed and removed the root it had made
                self._ensure_root()
                continue
            try:
                fd = lock_dir(path, exclusive=True)
            except FileNotFoundError:  # a concurrent prune locked and removed it before we could open it
                continue
            if fd is None or not _same_dir(path, fd):  # a prune holds it, or removed it while we waited
                if fd is not None:
                    os.close(fd)
                continue
            try:
                yield path
            finally:
                os.close(fd)
            return

    @contextlib.contextmanager
    def draft(self, backup_id: str | None = None) -> Iterator[BackupDraft]:
        """Create a new backup directory, locked before it becomes visible; remove it if the block fails.

        The directory is made under a hidden name, locked, then renamed: no other process
        can ever see it unlocked, so a concurrent ``prune`` never takes it for abandoned.
        A given *backup_id* (a copy keeps its backup's id) must not exist yet.
        """
        with contextlib.ExitStack() as claimed:
            chosen, path = self._claim(claimed, backup_id)
            syncing = Syncing()
            try:
                syncing.start(functools.partial(fsync_dir, self.root))
                yield BackupDraft(chosen, path, syncing)
            except BaseException:
                try:
                    syncing.abandon()
                finally:  # also when interrupted while waiting: nothing half-written stays
                    shutil.rmtree(path, ignore_errors=True)
                raise
            finally:
                syncing.close()

    def _claim(self, claimed: contextlib.ExitStack, backup_id: str | None) -> tuple[str, Path]:
        """A new backup directory: its id and path, renamed into place from a locked hidden directory named after it.

        From the hidden directory's creation to the rename, and after it, the id's name is
        taken, so two processes can never both rename onto it (a rename would silently
        replace the other's still empty directory): a clash — ids carry milliseconds and 16
        random bits, so it is a rarity — is retried with another id, or refused for a given
        *backup_id*. The lock is held until *claimed* closes.
        """
        while True:
            chosen = backup_id or new_backup_id()
            path = self.root / chosen
            with contextlib.ExitStack() as attempt:
                try:
                    hidden = attempt.enter_context(self._private_dir(chosen))
                except FileExistsError:  # another process is making a backup of this id, or was killed doing so
                    if self._remove_abandoned(self.root / f"{SCRATCH_PREFIX}{chosen}"):
                        continue
                    if backup_id:
                        raise BackupError(
                            f"backup {backup_id} is being written to {self.location} by another process; "
                            "run the command again once that one has finished"
                        ) from None
                    continue
                if not path.exists():
                    os.rename(hidden, path)
                    claimed.enter_context(attempt.pop_all())
                    return chosen, path
                shutil.rmtree(hidden, ignore_errors=True)
            if backup_id:
                raise BackupError(f"backup {backup_id} already exists in {self.location}")

    @staticmethod
    def _remove_abandoned(path: Path) -> bool:
        """Remove the hidden directory *path* unless a process holds its lock; whether it is gone.

        Each is removed while this process holds its lock, so a process that has just
        created it (and not yet locked it) notices and makes another. A link or a file of
        that name, or a directory in use, is left alone; OSError when it cannot be removed.
        """
        try:
            fd = lock_dir(path, exclusive=True)
        except FileNotFoundError:
            return True  # removed meanwhile by its owner
        except OSError:
            return False  # a link or a file: not ours
        if fd is None:
            return False  # in use
        try:
            if not _same_dir(path, fd):
                return False  # replaced by a new one since we opened it
            shutil.rmtree(path)
            return True
        except FileNotFoundError:
            return True
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Path]:
        """A private, locked temporary directory under the root, removed afterwards.

        When the root exists but cannot be written (a read-only medium, another user's
        directory), it is made under the system's temporary directory instead
        (:func:`dbkeeper.plugin.tools.runtime_directory`), so restoring and deep-verifying from
        read-only backups works.
        """
        with contextlib.ExitStack() as stack:
            try:
                path = stack.enter_context(self._private_dir())
            except OSError as exc:
                if exc.errno not in _UNWRITABLE or not self.root.is_dir():
                    raise
                path = stack.enter_context(runtime_directory(on_disk=True))
            try:
                yield path
            finally:
                shutil.rmtree(path, ignore_errors=True)

    def entries(self) -> list[Entry]:
        """Every backup directory (and link named like one), oldest first, with its status.

        A directory removed meanwhile by a concurrent ``prune`` or ``delete`` is left out.
        """
        try:
            names = sorted(name for name in os.listdir(self.root) if BACKUP_ID.match(name))
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = (self._entry(self.root / name) for name in names)
        return [entry for entry in found if entry is not None]

    def _entry(self, path: Path) -> Entry | None:
        """The entry for *path*, or None when it is gone or is a plain file (not a backup)."""
        try:
            fd = os.open(path, DIR_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if path.is_symlink():
                return Entry(path.name, Status.FOREIGN, problem=_link_problem(path))
            if exc.errno == errno.ENOTDIR:
                return None
            return Entry(path.name, Status.DAMAGED, problem=f"{path} cannot be opened ({exc.strerror})")
        try:
            return self._open_entry(path, fd)
        finally:
            os.close(fd)

    def _open_entry(self, path: Path, fd: int) -> Entry | None:
        """The entry for backup directory *path*, open as *fd*."""
        try:
            text = _read_manifest(fd, path.name)
            manifest = None if text is None else Manifest.from_json(text, label=path.name, expected_id=path.name)
        except ManifestError as exc:
            return Entry(path.name, Status.DAMAGED, problem=str(exc))
        if manifest is None:
            free = _try_lock(fd, exclusive=False)  # released when fd is closed
            if not _same_dir(path, fd):
                return None  # deleted meanwhile
            return Entry(path.name, Status.INCOMPLETE if free else Status.RUNNING)
        if problems := _stored_file_problems(fd, manifest):
            if not _same_dir(path, fd) or not _exists(MANIFEST, fd):
                return None  # being deleted by another process: the manifest goes first, then the files
            return Entry(path.name, Status.DAMAGED, manifest, "; ".join(problems))
        return Entry(path.name, Status.COMPLETE, manifest)

    @property
    def scratch_place(self) -> Path:
        """Scratch directories are made under the root (or, when it is read-only, the temporary directory)."""
        return self.root

    @contextlib.contextmanager
    def preparing(self) -> Iterator[None]:
        """A failed first backup leaves no empty directory; the file system's refusals as one line."""
        with self.removing_created_root(), writing(self.root, elsewhere=BACKUP_ELSEWHERE):
            yield

    def open_artifact(self, entry: Entry, artifact: ArtifactRecord) -> BinaryIO:
        """Open a stored artifact for reading, never through a link, after checking its size (IntegrityError)."""
        return _open_artifact(self.root / entry.id, artifact)

    def write_record(self, backup_id: str, kind: str, data: Mapping[str, Any]) -> None:
        """Write record *kind* in the backup's ``.records/`` atomically, owner-only, never through a link."""
        write_local_record(self.root / backup_id, kind, data)

    def read_record(self, backup_id: str, kind: str) -> dict[str, Any] | None:
        """Record *kind* of the backup, or None (DamagedRecordError when it cannot be trusted)."""
        return read_local_record(self.root / backup_id, kind)

    def remove_leftovers(self) -> dict[str, str]:
        """Delete scratch directories killed processes left (:meth:`_remove_abandoned`); return failures by name."""
        failures: dict[str, str] = {}
        try:
            names = [name for name in os.listdir(self.root) if name.startswith(SCRATCH_PREFIX)]
        except (FileNotFoundError, NotADirectoryError):
            return failures
        for path in (self.root / name for name in names):
            try:
                self._remove_abandoned(path)
            except OSError as exc:
                failures[path.name] = f"could not remove stale scratch directory {path}: {exc.strerror}"
        return failures

    @contextlib.contextmanager
    def reading(self, ref: str) -> Iterator[Entry]:
        """Backup *ref*, held with a shared lock while the block reads it (callers check its status).

        ``delete`` and ``prune`` wait for the lock (up to :data:`LOCK_WAIT` seconds), so a
        backup is never removed under a ``verify`` or ``restore`` reading it. The entry is
        read again once locked: a backup deleted between finding and locking is not found.
        """
        entry = self.find(ref)
        path = self.root / entry.id
        try:
            fd = lock_dir(path, exclusive=False, wait=LOCK_WAIT)
        except FileNotFoundError:
            raise BackupNotFoundError(f"backup {entry.id} was deleted meanwhile by another process") from None
        except OSError as exc:
            raise BackupError(_dir_problem(path, exc)) from None
        if fd is None:
            raise BackupError(f"backup {entry.id} is being written or deleted by another process; try again later")
        try:
            current = self._open_entry(path, fd)
            if current is None:
                raise BackupNotFoundError(f"backup {entry.id} was deleted meanwhile by another process")
            yield current
        finally:
            os.close(fd)

    def delete(self, entry: Entry) -> None:
        """Delete a backup: manifest first, so a half-deleted backup never looks complete.

        Never through a symbolic link. A backup being written is refused at once; a lock
        held on any other (a reader, or another ``delete`` or ``prune`` removing it) is waited for, up to
        :data:`LOCK_WAIT` seconds. A backup another process deleted meanwhile counts as deleted.
        """
        path = self.root / entry.id
        if entry.status is Status.FOREIGN:
            raise BackupError(entry.problem or f"{path} is not a backup directory")
        try:
            fd = lock_dir(path, exclusive=True, wait=0 if entry.status is Status.RUNNING else LOCK_WAIT)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise BackupError(_dir_problem(path, exc)) from None
        if fd is None:
            raise BackupError(
                f"backup {entry.id} is still being written; wait for it to finish"
                if entry.status is Status.RUNNING
                else f"backup {entry.id} is in use by another process (a verify or restore reading it, or another "
                f"delete or prune) for more than {LOCK_WAIT:.0f} s; try again when it is done"
            )
        try:
            if not _same_dir(path, fd):
                return
            with contextlib.suppress(FileNotFoundError):
                os.unlink(MANIFEST, dir_fd=fd)
            os.fsync(fd)
            shutil.rmtree(path)
        except OSError as exc:
            raise BackupError(f"could not delete backup {entry.id}: {exc}") from None
        finally:
            os.close(fd)
        fsync_dir(self.root)


def _exists(name: str, dir_fd: int) -> bool:
    """Whether *name* exists in the open directory (a link counts; it is not followed)."""
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _stored_file_problems(dir_fd: int, manifest: Manifest) -> list[str]:
    """What is wrong with the stored files *manifest* records, from one ``lstat`` each."""
    problems = []
    for artifact in manifest.artifacts:
        try:
            found: os.stat_result | OSError = os.stat(artifact.file, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as exc:
            found = exc
        if problem := _file_problem(f"{manifest.id}/{artifact.file}", found, artifact.stored_bytes):
            problems.append(problem)
    return problems
