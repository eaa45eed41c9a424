"""Storage backends: where backups live when they are not in a local directory.

A storage plugin registers a :class:`StorageInfo` through ``dbkeeper_register_storages``
for one or more URL schemes (``s3``). When a command is given ``--dir s3://bucket/prefix``
(or ``backup_dir``, or a ``[storage.NAME]`` section names such a URL), the core calls the
backend's ``open`` with a :class:`StorageRequest` and gets an :class:`ObjectStore`: a flat
namespace of objects under that prefix, each written in one streamed upload and never
modified afterwards.

The backup protocol itself (ids, manifest last, create-only manifests, what is running or
incomplete, what prune removes) is the core's, in
:mod:`dbkeeper.backups.objects`; a backend only moves bytes. The local directory is the
built-in storage and is not an object store: it keeps its own, stronger protocol
(``flock`` locks, ``fsync``, ``O_NOFOLLOW``).

Every method raises :class:`dbkeeper.errors.StorageError` (or a subclass) with one line
that says what to do — never a client library's traceback — and never puts credentials
in a message. Waits are bounded: a backend sets its own connect and request timeouts and a
bounded number of retries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class StoredObject:
    """An object as the service reports it: its key (relative to the store's prefix), size, time.

    ``sha256`` is the service's own SHA256 of the whole object, hex, when it has one (S3
    reports ``x-amz-checksum-sha256`` only for objects uploaded in one part with it); the
    core compares it with its own digest when present.
    """

    key: str
    size: int
    modified: datetime
    sha256: str | None = None


@dataclass(frozen=True)
class PendingUpload:
    """A multipart upload that was started and neither completed nor aborted (its writer died)."""

    key: str
    upload_id: str
    started: datetime | None = None


class ObjectReader(Protocol):
    """An object being read: ``read(size)`` returns at most *size* bytes, ``b""`` at the end."""

    def read(self, size: int = -1, /) -> bytes:
        """The next bytes of the object (at most *size*; all that is left when *size* is -1)."""
        ...

    def close(self) -> None:
        """Release the connection; reading stops."""
        ...


class Upload(Protocol):
    """An object being written: bytes are pushed in with ``write``, then ``commit`` or ``abort``.

    Nothing is visible under the key until ``commit`` returns. A large object is sent in
    parts as it is written (multipart), so memory stays bounded whatever its size; a
    process killed before ``commit`` leaves at most a :class:`PendingUpload` behind, which
    :meth:`ObjectStore.pending_uploads` lists and ``prune`` aborts.
    """

    def write(self, data: bytes, /) -> int:
        """Send *data* (buffered into parts); return ``len(data)``."""
        ...

    def commit(self) -> StoredObject:
        """Complete the upload and return the stored object as the service now reports it."""
        ...

    def abort(self) -> None:
        """Abandon the upload: nothing is stored under the key and the parts are freed. Never raises."""
        ...


class ObjectStore(Protocol):
    """The objects under one storage URL (``s3://bucket/prefix``), by key relative to it.

    Keys are ``/``-separated (``20261205T…Z-ab12/manifest.json``). ``location`` is the URL
    for messages (no credentials, ever).
    """

    location: str

    def objects(self, prefix: str = "") -> Iterator[StoredObject]:
        """Every object whose key starts with *prefix*, in any order."""
        ...

    def head(self, key: str) -> StoredObject | None:
        """The object at *key*, or None when there is none."""
        ...

    def open(self, key: str) -> ObjectReader:
        """Start reading the object at *key*, streaming; raises StorageError when it is missing."""
        ...

    def upload(self, key: str) -> Upload:
        """Start writing the object at *key* (streamed, multipart when large)."""
        ...

    def put(self, key: str, data: bytes, *, create_only: bool = False) -> bool:
        """Store the small object *data* at *key* in one request; True when stored.

        With *create_only*, an object already at *key* is left as it is and False returned
        (S3's conditional ``If-None-Match: *``), so two writers never replace each other's
        manifest.
        """
        ...

    def delete(self, key: str) -> None:
        """Delete the object at *key*; one that is not there counts as deleted."""
        ...

    def pending_uploads(self, prefix: str = "") -> list[PendingUpload]:
        """Multipart uploads under *prefix* that were started and never completed or aborted."""
        ...

    def abort_pending(self, upload: PendingUpload) -> None:
        """Abort a pending upload and free its parts; one already gone counts as aborted."""
        ...


@dataclass(frozen=True)
class StorageRequest:
    """What opening a storage needs: its URL and the settings of its ``[storage.NAME]`` section.

    ``url`` never holds credentials (the core refuses a URL with a password). ``settings``
    are the section's other keys with ``${ENV}`` already substituted; they may hold secrets,
    which a backend must never put in a message, a log or a child process's arguments.
    Without a section, ``settings`` is empty and the backend uses the service's standard
    places (for S3: the ``AWS_*`` environment variables, profiles, instance roles).
    """

    url: str
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StorageInfo:
    """A storage backend a plugin registers: its name, URL schemes and how to open one.

    ``settings`` names the keys a ``[storage.NAME]`` section may hold for it (anything else
    there is a configuration error naming these). ``open`` must not contact the service:
    the first operation does, within the backend's timeouts.
    """

    name: str
    schemes: tuple[str, ...]
    open: Callable[[StorageRequest], ObjectStore]
    settings: tuple[str, ...] = ()
    description: str = ""
