"""The object store a storage backend opens: its objects, readers, uploads and abandoned uploads.

A storage plugin's ``StorageInfo.open`` returns an :class:`ObjectStore` (see
:mod:`dbkeeper.plugin.storage`). Only commands that use object storage (``--dir s3://…``)
create these types: ``dbkeeper.plugin`` and ``dbkeeper.plugin.storage`` import this module
on first use of one of its names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime


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
