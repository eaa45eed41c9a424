"""The backup directory on disk, and the protocol that makes a backup complete.

Layout: ``<root>/<backup-id>/`` holds the artifacts and ``manifest.json``. A backup is
written as: directory created (0700) and locked → each artifact written under
``<file>.partial`` (0600), fsynced, renamed, directory fsynced → manifest written the
same way, *last*. So a directory without ``manifest.json`` is never a complete backup:
while its writer holds the lock it is *running*, afterwards it is *incomplete* (the
writer died) and ``prune`` removes it. Deleting removes the manifest first.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

from dbkeeper.errors import BackupError, BackupNotFoundError, ManifestError
from dbkeeper.manifest import Manifest, utc_now

MANIFEST = "manifest.json"
PARTIAL = ".partial"
SCRATCH_PREFIX = ".scratch-"
FILE_MODE = 0o600
DIR_MODE = 0o700


class Status(StrEnum):
    """Where a backup directory stands."""

    COMPLETE = "complete"
    RUNNING = "running"
    INCOMPLETE = "incomplete"
    DAMAGED = "damaged"


@dataclass(frozen=True)
class Entry:
    """A backup directory, its status, and its manifest when it is complete."""

    id: str
    path: Path
    status: Status
    manifest: Manifest | None = None
    problem: str | None = None


def fsync_dir(path: Path) -> None:
    """Make a rename or creation inside *path* durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked_dir(path: Path, *, exclusive: bool) -> Iterator[bool]:
    """Try to lock directory *path*; yield whether the lock was obtained (never waits).

    The lock is an ``flock`` on the directory itself, so it dies with its process: a
    killed writer leaves no lock behind.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


class AtomicFile:
    """A file written under ``<name>.partial`` (0600) and renamed into place on commit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + PARTIAL)
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        self.file: BinaryIO = os.fdopen(fd, "wb", buffering=0)

    def commit(self) -> None:
        """fsync, rename into place, fsync the directory."""
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.partial, self.path)
        fsync_dir(self.path.parent)

    def discard(self) -> None:
        """Close and remove the partial file."""
        self.file.close()
        self.partial.unlink(missing_ok=True)


def write_atomically(path: Path, data: bytes) -> None:
    """Write *data* to *path* through an :class:`AtomicFile`."""
    atomic = AtomicFile(path)
    try:
        atomic.file.write(data)
    except BaseException:
        atomic.discard()
        raise
    atomic.commit()


class BackupDraft:
    """A backup being written: create artifact files, then commit the manifest."""

    def __init__(self, backup_id: str, path: Path) -> None:
        self.id = backup_id
        self.path = path

    def create(self, file_name: str) -> AtomicFile:
        """Start writing artifact *file_name*."""
        if "/" in file_name or file_name.startswith(".") or file_name == MANIFEST:
            raise BackupError(f"invalid artifact name {file_name!r} (a driver bug)")
        return AtomicFile(self.path / file_name)

    def commit(self, manifest: Manifest) -> None:
        """Write the manifest, which makes the backup complete."""
        write_atomically(self.path / MANIFEST, manifest.to_json().encode())


class Repository:
    """The backups under one directory."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _ensure_root(self) -> None:
        self.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _private_dir(self) -> Iterator[Path]:
        """A new hidden directory (0700) under the root, locked by this process for the block.

        Creating and locking are two steps; a ``prune`` that locks the directory in
        between deletes it while holding the lock, so here a directory that cannot be
        locked, or is gone once locked, is given up and another one made.
        """
        self._ensure_root()
        while True:
            path = self.root / f"{SCRATCH_PREFIX}{secrets.token_hex(4)}"
            path.mkdir(mode=DIR_MODE)
            with locked_dir(path, exclusive=True) as locked:
                if locked and path.is_dir():
                    yield path
                    return

    @contextlib.contextmanager
    def draft(self) -> Iterator[BackupDraft]:
        """Create a new backup directory, locked before it becomes visible; remove it if the block fails.

        The directory is made under a hidden name, locked, then renamed: no other process
        can ever see it unlocked, so a concurrent ``prune`` never takes it for abandoned.
        """
        with self._private_dir() as hidden:
            while True:
                now = utc_now()
                backup_id = f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z-{secrets.token_hex(2)}"
                path = self.root / backup_id
                if not path.exists():  # ids carry milliseconds and 16 random bits: a clash is a rarity
                    os.rename(hidden, path)
                    break
            fsync_dir(self.root)
            try:
                yield BackupDraft(backup_id, path)
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Path]:
        """A private, locked temporary directory under the root, removed afterwards."""
        with self._private_dir() as path:
            try:
                yield path
            finally:
                shutil.rmtree(path, ignore_errors=True)

    def entries(self) -> list[Entry]:
        """Every backup directory, oldest first, with its status."""
        if not self.root.is_dir():
            return []
        return [self._entry(path) for path in sorted(self.root.iterdir()) if _is_backup_dir(path)]

    def _entry(self, path: Path) -> Entry:
        manifest_path = path / MANIFEST
        if manifest_path.is_file():
            try:
                manifest = Manifest.from_json(manifest_path.read_text(encoding="utf-8"), label=path.name)
            except (ManifestError, OSError, UnicodeDecodeError) as exc:
                return Entry(path.name, path, Status.DAMAGED, problem=str(exc))
            return Entry(path.name, path, Status.COMPLETE, manifest)
        with locked_dir(path, exclusive=False) as free:
            return Entry(path.name, path, Status.INCOMPLETE if free else Status.RUNNING)

    def remove_stale_scratch(self) -> dict[str, str]:
        """Delete scratch directories left by killed processes; return the failures by directory name.

        Each is deleted while this process holds its lock, so a process that has just
        created it (and not yet locked it) notices and makes another.
        """
        failures = {}
        for path in self.root.glob(f"{SCRATCH_PREFIX}*") if self.root.is_dir() else ():
            try:
                with locked_dir(path, exclusive=True) as free:
                    if free:
                        shutil.rmtree(path)
            except FileNotFoundError:
                continue  # removed meanwhile by its owner
            except OSError as exc:
                failures[path.name] = f"could not remove stale scratch directory {path}: {exc.strerror}"
        return failures

    def find(self, ref: str) -> Entry:
        """The backup named by an id, a unique id prefix, or ``latest`` (newest complete)."""
        entries = self.entries()
        if ref == "latest":
            complete = [e for e in entries if e.status is Status.COMPLETE and e.manifest]
            if not complete:
                raise BackupNotFoundError(f"no complete backup in {self.root}; create one with 'dbkeeper backup'")
            sources = sorted({e.manifest.source_url for e in complete if e.manifest})
            if len(sources) > 1:
                raise BackupNotFoundError(
                    f"'latest' is ambiguous: {self.root} holds backups of {len(sources)} databases "
                    f"({', '.join(sources[:3])}); name the backup id (see 'dbkeeper backups list')"
                )
            return max(complete, key=lambda e: e.manifest.finished_at if e.manifest else 0)
        matches = [e for e in entries if e.id == ref] or [e for e in entries if e.id.startswith(ref)]
        if not matches:
            raise BackupNotFoundError(f"no backup {ref!r} in {self.root}; run 'dbkeeper backups list' to see the ids")
        if len(matches) > 1:
            shown = ", ".join(e.id for e in matches[:3]) + (", …" if len(matches) > 3 else "")
            raise BackupNotFoundError(f"{ref!r} matches {len(matches)} backups ({shown}); give more of the id")
        return matches[0]

    def complete(self, ref: str) -> Entry:
        """Like :meth:`find`, but only a complete backup is accepted."""
        entry = self.find(ref)
        if entry.status is Status.DAMAGED:
            raise ManifestError(entry.problem or f"manifest of backup {entry.id} is damaged")
        if entry.status is not Status.COMPLETE:
            raise BackupNotFoundError(
                f"backup {entry.id} is {entry.status}: its writer "
                + ("is still running" if entry.status is Status.RUNNING else "stopped before it finished")
                + "; it cannot be used (prune removes incomplete backups)"
            )
        return entry

    def delete(self, entry: Entry) -> None:
        """Delete a backup: manifest first, so a half-deleted backup never looks complete."""
        with locked_dir(entry.path, exclusive=True) as free:
            if not free:
                raise BackupError(
                    f"backup {entry.id} is locked by another process (a backup still being written, or another "
                    "delete); wait for it to finish"
                )
            try:
                (entry.path / MANIFEST).unlink(missing_ok=True)
                fsync_dir(entry.path)
                shutil.rmtree(entry.path)
            except OSError as exc:
                raise BackupError(f"could not delete backup {entry.id}: {exc}") from None
        fsync_dir(self.root)


BACKUP_ID = re.compile(r"^\d{8}T\d{6}(\.\d{3})?Z-[0-9a-f]{4}$")
"""What a backup id looks like: only such directories are ever listed, pruned or deleted."""


def _is_backup_dir(path: Path) -> bool:
    return BACKUP_ID.match(path.name) is not None and path.is_dir()
