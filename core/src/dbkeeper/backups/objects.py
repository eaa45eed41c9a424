"""Backups in an object store (``s3://bucket/prefix``): the repository protocol without locks.

Layout under the store's prefix, one "folder" per backup::

    <backup-id>/.lease              while the backup is written (renewed every LEASE_RENEW s)
    <backup-id>/<artifact file>     streamed uploads (multipart when large)
    <backup-id>/manifest.json       written last, create-only: the mark that the backup is complete
    <backup-id>/.records/<kind>.json  what was learnt later (a verify's result)

An object store has no locks and no rename, so the protocol rests on three facts: an
upload is invisible until it completes (a killed writer leaves only a pending multipart
upload, which ``prune`` aborts); the manifest is written only after every artifact was
stored whole and its size checked, and only if the writer's lease still exists; the
manifest is put with ``If-None-Match: *``, so no writer ever replaces another's. A backup
without a manifest is *running* while its lease is alive — its writer's process exists
(same machine) or renewed it within :data:`LEASE_STALE` seconds (another machine) — and
*incomplete* afterwards. Concurrent writers never share a key: ids carry milliseconds and
random bits, and the lease itself is created create-only.

Readers are not locked out: a ``delete`` or ``prune`` under a running ``restore`` makes
the restore fail with one line (nothing is committed to its target), never succeed on
half the data.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dbkeeper.backups.manifest import (
    BACKUP_ID,
    MANIFEST_FILE,
    MANIFEST_LIMIT,
    ArtifactRecord,
    Manifest,
    artifact_file_problem,
    new_backup_id,
    utc_now,
)
from dbkeeper.backups.records import RECORD_LIMIT, RECORDS, DamagedRecordError, parse_record, record_text
from dbkeeper.backups.storage import BackupStorage, Entry, Status, StoredReader
from dbkeeper.errors import BackupError, IntegrityError, ManifestError, StorageError
from dbkeeper.plugin.storage import ObjectStore, StoredObject, Upload
from dbkeeper.plugin.tools import runtime_directory

LEASE = ".lease"
LEASE_RENEW = 15.0
"""Seconds between two renewals of a running backup's lease."""
LEASE_STALE = 120.0
"""A lease not renewed for this long (by a writer on another machine) belongs to a writer that died."""


def _process_start(pid: int) -> str | None:
    """When process *pid* started (clock ticks since boot, from ``/proc``), or None when there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19].decode() if len(fields) > 19 else None


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as file:
            return file.read().strip()
    except OSError:
        return None


def _lease_text() -> bytes:
    """The lease of the running process: which machine, boot and process write the backup."""
    pid = os.getpid()
    data = {"host": socket.gethostname(), "boot": _boot_id(), "pid": pid, "start": _process_start(pid)}
    return json.dumps(data, sort_keys=True).encode()


def _writer_alive(lease: bytes, renewed: StoredObject) -> bool:
    """Whether the writer that holds *lease* still runs: its process, if on this machine; else a recent renewal."""
    try:
        data = json.loads(lease)
        mine = data["host"] == socket.gethostname() and data["boot"] is not None and data["boot"] == _boot_id()
        if mine:
            return bool(_process_start(int(data["pid"])) == data["start"])
    except (ValueError, TypeError, KeyError):
        pass  # not a lease this code wrote: its age decides
    return (utc_now() - renewed.modified).total_seconds() < LEASE_STALE


class _LeaseKeeper:
    """Renews a lease object every :data:`LEASE_RENEW` seconds from a daemon thread until stopped."""

    def __init__(self, store: ObjectStore, key: str) -> None:
        self._store = store
        self._key = key
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="dbkeeper-lease", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=LEASE_RENEW)

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_RENEW):
            with contextlib.suppress(StorageError):  # a missed renewal is retried; the lease lasts LEASE_STALE
                self._store.put(self._key, _lease_text())


class _CountingWriter:
    """Counts the bytes written into an upload."""

    def __init__(self, upload: Upload) -> None:
        self._upload = upload
        self.total = 0

    def write(self, data: bytes, /) -> int:
        self._upload.write(data)
        self.total += len(data)
        return len(data)


class ObjectArtifact:
    """An artifact being uploaded: committed only when the store reports the size that was sent."""

    def __init__(self, upload: Upload, label: str) -> None:
        self._upload = upload
        self._label = label
        self._counter = _CountingWriter(upload)
        self.stored: StoredObject | None = None

    @property
    def writer(self) -> _CountingWriter:
        """Where the stored bytes are written."""
        return self._counter

    def commit(self) -> None:
        """Complete the upload and check the stored object's size."""
        self.stored = self._upload.commit()
        if self.stored.size != self._counter.total:
            raise IntegrityError(
                f"the object store reports {self.stored.size} bytes for {self._label}, but {self._counter.total} "
                "were sent; nothing was sealed — run the backup again"
            )

    def discard(self) -> None:
        """Abort the upload."""
        self._upload.abort()


class ObjectDraft:
    """A backup being written to an object store: upload the artifacts, then seal it with the manifest."""

    def __init__(self, store: ObjectStore, backup_id: str) -> None:
        self.id = backup_id
        self._store = store
        self._artifacts: dict[str, ObjectArtifact] = {}

    def create(self, file_name: str) -> ObjectArtifact:
        """Start uploading artifact *file_name*."""
        if problem := artifact_file_problem(file_name):
            raise BackupError(f"invalid artifact name {file_name!r}: it {problem} (a driver bug)")
        artifact = ObjectArtifact(self._store.upload(f"{self.id}/{file_name}"), f"{self.id}/{file_name}")
        self._artifacts[file_name] = artifact
        return artifact

    def commit(self, manifest: Manifest) -> None:
        """Write the manifest, create-only and only while this writer's lease exists."""
        for record in manifest.artifacts:
            artifact = self._artifacts.get(record.file)
            stored = artifact.stored if artifact else None
            if stored and stored.sha256 and record.sha256 and stored.sha256 != record.sha256:
                raise IntegrityError(
                    f"the object store's SHA256 of {self.id}/{record.file} differs from the one computed while "
                    "uploading: the bytes changed on the way; nothing was sealed — run the backup again"
                )
        if self._store.head(f"{self.id}/{LEASE}") is None:
            raise BackupError(
                f"backup {self.id} lost its lease while it was written (a prune elsewhere took it for abandoned); "
                "nothing was sealed — run the backup again"
            )
        if not self._store.put(f"{self.id}/{MANIFEST_FILE}", manifest.to_json().encode(), create_only=True):
            raise BackupError(f"backup {self.id} was sealed by another writer meanwhile; run the backup again")


def _object_problem(label: str, found: StoredObject | None, recorded: int) -> str | None:
    if found is None:
        return f"artifact {label} is missing — use another backup"
    if found.size != recorded:
        return (
            f"artifact {label} is {found.size} bytes, the manifest records {recorded}: "
            "it was truncated or changed — use another backup"
        )
    return None


class ObjectRepository(BackupStorage):
    """The backups under one object store prefix (see the module's description of the protocol)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.location = store.location

    def _grouped(self) -> dict[str, dict[str, StoredObject]]:
        """Every backup's objects by name, from one listing."""
        grouped: dict[str, dict[str, StoredObject]] = {}
        for found in self.store.objects(""):
            backup_id, _, name = found.key.partition("/")
            if BACKUP_ID.match(backup_id) and name:
                grouped.setdefault(backup_id, {})[name] = found
        return grouped

    def entries(self) -> list[Entry]:
        """Every backup, oldest first, with its status (one listing, then one read per manifest)."""
        grouped = self._grouped()
        found = (self._entry(backup_id, grouped[backup_id]) for backup_id in sorted(grouped))
        return [entry for entry in found if entry is not None]

    def _entry(self, backup_id: str, objects: Mapping[str, StoredObject]) -> Entry | None:
        if MANIFEST_FILE not in objects:
            lease = objects.get(LEASE)
            alive = lease is not None and self._lease_alive(backup_id, lease)
            return Entry(backup_id, Status.RUNNING if alive else Status.INCOMPLETE)
        try:
            text = self._small_text(f"{backup_id}/{MANIFEST_FILE}", objects[MANIFEST_FILE].size, MANIFEST_LIMIT)
            if text is None:
                return None  # deleted meanwhile
            manifest = Manifest.from_json(text, label=backup_id, expected_id=backup_id)
        except ValueError as exc:
            return Entry(backup_id, Status.DAMAGED, problem=f"manifest of backup {backup_id} is {exc}; it is damaged")
        except ManifestError as exc:
            return Entry(backup_id, Status.DAMAGED, problem=str(exc))
        found = ((f"{backup_id}/{a.file}", objects.get(a.file), a.stored_bytes) for a in manifest.artifacts)
        problems = [problem for label, stored, size in found if (problem := _object_problem(label, stored, size))]
        if problems:
            return Entry(backup_id, Status.DAMAGED, manifest, "; ".join(problems))
        return Entry(backup_id, Status.COMPLETE, manifest)

    def _lease_alive(self, backup_id: str, lease: StoredObject) -> bool:
        try:
            text = self._read(f"{backup_id}/{LEASE}", 4096)
        except StorageError:
            return False
        return text is not None and _writer_alive(text, lease)

    def _read(self, key: str, limit: int) -> bytes | None:
        """At most *limit* + 1 bytes of the object at *key* (just listed or headed), or None when it is gone since."""
        try:
            reader = self.store.open(key)
        except StorageError:
            if self.store.head(key) is None:  # only when the read failed: a listed object costs one request
                return None
            raise
        try:
            data = b""
            while len(data) <= limit and (chunk := reader.read(limit + 1 - len(data))):
                data += chunk
            return data
        finally:
            reader.close()

    def _small_text(self, key: str, size: int, limit: int) -> str | None:
        """The UTF-8 text of a small object; ValueError naming what is wrong when it is too large or not text."""
        if size > limit:
            raise ValueError(f"larger than {limit // 1024} KiB, which none dbkeeper writes is")
        data = self._read(key, limit)
        if data is None:
            return None
        if len(data) > limit:
            raise ValueError(f"larger than {limit // 1024} KiB, which none dbkeeper writes is")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("not UTF-8 text") from None

    @contextlib.contextmanager
    def reading(self, ref: str) -> Iterator[Entry]:
        """Backup *ref* as listed now (an object store has no lock; see the module's description)."""
        yield self.find(ref)

    def delete(self, entry: Entry) -> None:
        """Delete a backup: the manifest first, then its other objects and pending uploads."""
        if entry.status is Status.RUNNING:
            raise BackupError(f"backup {entry.id} is still being written; wait for it to finish")
        try:
            self.store.delete(f"{entry.id}/{MANIFEST_FILE}")
            for found in list(self.store.objects(f"{entry.id}/")):
                self.store.delete(found.key)
            if entry.status is not Status.COMPLETE:
                for upload in self.store.pending_uploads(f"{entry.id}/"):
                    self.store.abort_pending(upload)
        except StorageError as exc:
            raise BackupError(f"could not delete backup {entry.id}: {exc}") from None

    @contextlib.contextmanager
    def draft(self, backup_id: str | None = None) -> Iterator[ObjectDraft]:
        """A new backup under a lease; its objects and uploads are removed if the block fails."""
        chosen = self._claim(backup_id)
        try:
            with _LeaseKeeper(self.store, f"{chosen}/{LEASE}"):
                yield ObjectDraft(self.store, chosen)
        except BaseException:
            self._remove_quietly(chosen)
            raise
        with contextlib.suppress(StorageError):  # sealed already; a lease left beside a manifest means nothing
            self.store.delete(f"{chosen}/{LEASE}")

    def _claim(self, backup_id: str | None) -> str:
        """Create the lease of a new backup, create-only: the id is then this writer's alone."""
        while True:
            chosen = backup_id or new_backup_id()
            if backup_id and next(iter(self.store.objects(f"{backup_id}/")), None) is not None:
                raise BackupError(f"backup {backup_id} already exists in {self.location}")
            if self.store.put(f"{chosen}/{LEASE}", _lease_text(), create_only=True):
                return chosen
            if backup_id:
                raise BackupError(f"backup {backup_id} is being written to {self.location} by another process")

    def _remove_quietly(self, backup_id: str) -> None:
        """Remove what a failed writer stored and abort its uploads (best effort: prune removes whatever is left)."""
        with contextlib.suppress(StorageError):
            for found in list(self.store.objects(f"{backup_id}/")):
                if found.key != f"{backup_id}/{LEASE}":
                    self.store.delete(found.key)
            for upload in self.store.pending_uploads(f"{backup_id}/"):  # one an abort on the way out missed
                self.store.abort_pending(upload)
            self.store.delete(f"{backup_id}/{LEASE}")

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Path]:
        """A private local temporary directory (the store has no room for scratch files)."""
        with runtime_directory(on_disk=True) as path:
            yield path

    def open_artifact(self, entry: Entry, artifact: ArtifactRecord) -> StoredReader:
        """Start streaming a stored artifact (its size was checked when the backup was listed)."""
        return self.store.open(f"{entry.id}/{artifact.file}")

    def write_record(self, backup_id: str, kind: str, data: Mapping[str, Any]) -> None:
        """Replace record *kind* of the backup (one small object)."""
        self.store.put(f"{backup_id}/{RECORDS}/{kind}.json", record_text(kind, data).encode())

    def read_record(self, backup_id: str, kind: str) -> dict[str, Any] | None:
        """Record *kind* of the backup, or None; DamagedRecordError when it cannot be trusted."""
        key = f"{backup_id}/{RECORDS}/{kind}.json"
        found = self.store.head(key)
        if found is None:
            return None
        try:
            text = self._small_text(key, found.size, RECORD_LIMIT)
        except ValueError as exc:
            raise DamagedRecordError(f"{RECORDS}/{kind}.json is {exc}") from None
        return None if text is None else parse_record(text, kind)

    def remove_leftovers(self) -> dict[str, str]:
        """Abort the multipart uploads of writers that are gone; failures by key."""
        failures: dict[str, str] = {}
        for upload in self.store.pending_uploads(""):
            backup_id = upload.key.partition("/")[0]
            if not BACKUP_ID.match(backup_id) or self._writing(backup_id):
                continue
            try:
                self.store.abort_pending(upload)
            except StorageError as exc:
                failures[upload.key] = str(exc)
        return failures

    def _writing(self, backup_id: str) -> bool:
        """Whether a live writer still holds the backup's lease (checked now, not from an older listing)."""
        lease = self.store.head(f"{backup_id}/{LEASE}")
        return lease is not None and self._lease_alive(backup_id, lease)
