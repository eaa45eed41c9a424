"""Where backups are kept: what every storage offers the backup manager, and how one is opened.

Two storages implement :class:`BackupStorage`: the built-in local directory
(:class:`~dbkeeper.backups.repository.Repository`: ``flock`` locks, ``fsync``, no symbolic
link followed) and any object store a plugin registers for a URL scheme
(:class:`~dbkeeper.backups.objects.ObjectRepository` over an
:class:`~dbkeeper.plugin.storage.ObjectStore`: ``s3://bucket/prefix``). Both keep the same
protocol: artifacts first, the manifest last, so a backup without a manifest is never taken
for complete; ``list``, ``verify``, ``restore`` and ``prune`` behave the same on both.
"""

from __future__ import annotations

import contextlib
import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from dbkeeper.connections.config import DEFAULT_BACKUP_DIR
from dbkeeper.errors import BackupError, BackupNotFoundError, ManifestError
from dbkeeper.plugin.streams import Readable, Writable

if TYPE_CHECKING:
    from dbkeeper.backups.manifest import ArtifactRecord, Manifest
    from dbkeeper.backups.record_types import DrillRecord, VerifyRecord


RecordT = TypeVar("RecordT")


class Status(StrEnum):
    """Where a backup stands."""

    COMPLETE = "complete"
    RUNNING = "running"
    INCOMPLETE = "incomplete"
    DAMAGED = "damaged"
    FOREIGN = "foreign"


@dataclass(frozen=True)
class Entry:
    """A backup, its status, and its manifest when it is complete.

    A ``damaged`` entry keeps its manifest when the manifest itself is sound but a stored
    file is missing, not a plain file, or not the size it records; ``problem`` says what is
    wrong. A ``foreign`` entry is a symbolic link named like a backup: never followed.
    """

    id: str
    status: Status
    manifest: Manifest | None = None
    problem: str | None = None


class ArtifactFile(Protocol):
    """A stored file being written: bytes go to ``writer``; ``commit`` makes it whole, ``discard`` drops it."""

    @property
    def writer(self) -> Writable:
        """Where the stored bytes are written."""
        ...

    def commit(self) -> None:
        """Make the file durable and visible under its name (still no manifest)."""
        ...

    def discard(self) -> None:
        """Abandon the file: nothing is left under its name."""
        ...


class Draft(Protocol):
    """A backup being written: create artifact files, then commit the manifest."""

    id: str

    def create(self, file_name: str) -> ArtifactFile:
        """Start writing artifact *file_name*."""
        ...

    def commit(self, manifest: Manifest) -> None:
        """Write the manifest, which makes the backup complete."""
        ...


class StoredReader(Readable, Protocol):
    """A stored file being read (``read`` until ``b""``, then ``close``)."""

    def close(self) -> None:
        """Stop reading and release the file or connection."""
        ...


class BackupStorage(ABC):
    """The backups in one place: a local directory or an object store prefix.

    ``location`` is what messages show (a path, or a URL without credentials).
    """

    location: str

    @abstractmethod
    def entries(self) -> list[Entry]:
        """Every backup, oldest first, with its status (complete, running, incomplete, damaged, foreign)."""

    @abstractmethod
    def reading(self, ref: str) -> contextlib.AbstractContextManager[Entry]:
        """Backup *ref* while the block reads it (held against deletion where the storage can)."""

    @abstractmethod
    def delete(self, entry: Entry) -> None:
        """Delete a backup: its manifest first, so a half-deleted backup never looks complete."""

    @abstractmethod
    def draft(self, backup_id: str | None = None) -> contextlib.AbstractContextManager[Draft]:
        """A new backup being written (under *backup_id* when copying one), removed if the block fails."""

    @abstractmethod
    def scratch(self) -> contextlib.AbstractContextManager[Path]:
        """A private local temporary directory for restores and deep verifies, removed afterwards."""

    @abstractmethod
    def open_artifact(self, entry: Entry, artifact: ArtifactRecord) -> StoredReader:
        """Open a stored artifact of *entry* for reading, streaming; IntegrityError when it is not as recorded."""

    @abstractmethod
    def write_record(self, backup_id: str, kind: str, data: Mapping[str, Any]) -> None:
        """Keep record *kind* (``verify``) beside the backup, replacing the previous one; OSError or StorageError."""

    @abstractmethod
    def read_record(self, backup_id: str, kind: str) -> dict[str, Any] | None:
        """Record *kind* of the backup, or None; DamagedRecordError when it cannot be trusted."""

    @abstractmethod
    def remove_leftovers(self) -> dict[str, str]:
        """Remove what killed processes left that is not a backup (scratch, pending uploads); failures by name."""

    @property
    def scratch_place(self) -> Path:
        """Where :meth:`scratch` makes its directories (for messages about a full disk)."""
        import tempfile

        return Path(tempfile.gettempdir())

    def preparing(self) -> contextlib.AbstractContextManager[None]:
        """Around writing a backup: refusals of the storage as one line (and, locally, no stray directories)."""
        return contextlib.nullcontext()

    def command(self, words: str) -> str:
        """The dbkeeper command line *words* for this storage (``--dir`` unless it is the default), for hints."""
        if self.location == DEFAULT_BACKUP_DIR:
            return f"dbkeeper {words}"
        return f"dbkeeper {words} --dir {shlex.quote(self.location)}"

    def find(self, ref: str) -> Entry:
        """The backup named by an id, a unique id prefix, or ``latest`` (newest complete)."""
        entries = self.entries()
        if ref == "latest":
            return self._latest(entries)
        matches = [e for e in entries if e.id == ref] or [e for e in entries if e.id.startswith(ref)]
        if not matches:
            raise BackupNotFoundError(
                f"no backup {ref!r} in {self.location}; run '{self.command('backups list')}' to see the ids"
            )
        if len(matches) > 1:
            shown = ", ".join(e.id for e in matches[:3]) + (", …" if len(matches) > 3 else "")
            raise BackupNotFoundError(f"{ref!r} matches {len(matches)} backups ({shown}); give more of the id")
        return matches[0]

    def _latest(self, entries: list[Entry]) -> Entry:
        complete = [e for e in entries if e.status is Status.COMPLETE and e.manifest]
        if not complete:
            raise BackupNotFoundError(
                f"no complete backup in {self.location}; create one with '{self.command('backup')}'"
            )
        sources = sorted({e.manifest.source_url for e in complete if e.manifest})
        if len(sources) > 1:
            raise BackupNotFoundError(
                f"'latest' is ambiguous: {self.location} holds backups of {len(sources)} databases "
                f"({', '.join(sources[:3])}); name the backup id (see '{self.command('backups list')}')"
            )
        return max(complete, key=lambda e: e.manifest.finished_at if e.manifest else 0)

    def complete(self, ref: str) -> Entry:
        """Like :meth:`find`, but only a complete backup is accepted."""
        return self.usable(self.find(ref))

    def usable(self, entry: Entry) -> Entry:
        """*entry* if it is complete; else the error that says why it cannot be used."""
        if entry.status is Status.FOREIGN:
            raise BackupError(entry.problem or f"{entry.id} in {self.location} is not a backup")
        if entry.status is Status.DAMAGED:
            raise ManifestError(entry.problem or f"manifest of backup {entry.id} is damaged")
        if entry.status is not Status.COMPLETE:
            raise BackupNotFoundError(
                f"backup {entry.id} is {entry.status}: its writer "
                + ("is still running" if entry.status is Status.RUNNING else "stopped before it finished")
                + "; it cannot be used (prune removes incomplete backups)"
            )
        return entry

    def keep_record(self, backup_id: str, kind: str, data: Mapping[str, Any]) -> None:
        """Keep a verify's or drill's result beside the backup; one that cannot take it (read-only) gets a note."""
        from dbkeeper.errors import StorageError
        from dbkeeper.system.notes import note

        try:
            self.write_record(backup_id, kind, data)
        except (OSError, StorageError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            note(f"the {kind} result of {backup_id} was not recorded ({reason}); metrics will not show it")

    def last_verify(self, backup_id: str) -> VerifyRecord | None:
        """The verify record of the backup, or None when there is none or it cannot be trusted (with a note)."""
        from dbkeeper.backups.record_types import VerifyRecord

        return self._record(backup_id, "verify", VerifyRecord.from_data)

    def last_drill(self, backup_id: str) -> DrillRecord | None:
        """The drill record of the backup, or None when there is none or it cannot be trusted (with a note)."""
        from dbkeeper.backups.record_types import DrillRecord

        return self._record(backup_id, "drill", DrillRecord.from_data)

    def _record(self, backup_id: str, kind: str, parse: Callable[[dict[str, Any]], RecordT]) -> RecordT | None:
        from dbkeeper.backups.records import DamagedRecordError
        from dbkeeper.system.notes import note

        try:
            data = self.read_record(backup_id, kind)
            return None if data is None else parse(data)
        except DamagedRecordError as exc:
            note(f"backup {backup_id}: ignored its {kind} record: {exc}")
            return None
