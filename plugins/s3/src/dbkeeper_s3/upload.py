"""Writing an object: bytes pushed in by ``write`` stream to S3 as a multipart upload, in bounded memory.

obstore's ``put`` pulls its data from an iterator; this upload runs it in a worker thread
fed through a queue of at most :data:`QUEUE_CHUNKS` writes. ``put`` cuts the stream into
parts of :data:`PART_SIZE` and sends up to :data:`PARTS_IN_FLIGHT` at once, so memory holds
about ``QUEUE_CHUNKS`` writes plus ``PARTS_IN_FLIGHT + 1`` parts whatever the object's size.
``abort`` makes the iterator raise, and ``put`` then aborts the multipart upload on the
service. An object smaller than one part is sent in one plain PUT at ``commit`` (no
multipart upload at all).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from dbkeeper.plugin import StorageError, StoredObject

if TYPE_CHECKING:
    from obstore.store import S3Store

PART_SIZE = 8 << 20
"""Bytes per multipart part: S3's 10 000 parts then allow objects up to 78 GiB."""
PARTS_IN_FLIGHT = 2
QUEUE_CHUNKS = 4
_POLL = 0.5
"""Seconds between checks that the worker is still alive while a write waits for room."""


class _Aborted(Exception):
    """Raised into obstore's ``put`` to make it abort the multipart upload."""


class S3Upload:
    """An :class:`~dbkeeper.plugin.Upload` to one key of an obstore S3 store."""

    def __init__(
        self,
        store: S3Store,
        key: str,
        head: Callable[[str], StoredObject | None],
        failed: Callable[[BaseException, str], StorageError],
        wait: float,
    ) -> None:
        self._store, self._key, self._head, self._failed, self._wait = store, key, head, failed, wait
        self._first: list[bytes] = []
        self._first_size = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_CHUNKS)
        self._aborting = False
        self._worker: threading.Thread | None = None
        self._error: BaseException | None = None
        self._finished = False

    def write(self, data: bytes, /) -> int:
        """Send *data*: kept until a whole part is there, then queued for the worker thread."""
        if self._finished:
            raise StorageError(f"the upload of {self._key} is already finished: start a new one")
        chunk = bytes(data)
        if self._worker is None:
            self._first.append(chunk)
            self._first_size += len(chunk)
            if self._first_size >= PART_SIZE:
                self._start()
        else:
            self._send(chunk)
        return len(chunk)

    def commit(self) -> StoredObject:
        """Complete the upload; the stored object as the service reports it."""
        if self._finished:
            raise StorageError(f"the upload of {self._key} is already finished: start a new one")
        self._finished = True
        if self._worker is None:
            self._put_whole()
        else:
            self._send(None)
            self._worker.join()
            if self._error is not None:
                raise self._failed(self._error, self._key)
        stored = self._head(self._key)
        if stored is None:
            raise StorageError(f"{self._key} is missing right after its upload: check the bucket's lifecycle rules")
        return stored

    def abort(self) -> None:
        """Abandon the upload (the service frees the parts); never raises, waits at most the request timeouts."""
        if self._finished:
            return
        self._finished = True
        self._first.clear()
        if self._worker is None:
            return
        self._aborting = True
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put_nowait(None)
        self._worker.join(timeout=self._wait)

    def _put_whole(self) -> None:
        """Send an object smaller than one part in one PUT."""
        import obstore

        data = b"".join(self._first)
        self._first.clear()
        try:
            obstore.put(self._store, self._key, data, use_multipart=False)
        except Exception as exc:
            raise self._failed(exc, self._key) from exc

    def _start(self) -> None:
        self._worker = threading.Thread(target=self._run, name=f"s3 upload {self._key}", daemon=True)
        self._worker.start()

    def _run(self) -> None:
        import obstore

        try:
            obstore.put(
                self._store, self._key, self._chunks(), use_multipart=True, chunk_size=PART_SIZE,
                max_concurrency=PARTS_IN_FLIGHT,
            )  # fmt: skip
        except _Aborted:
            pass
        except BaseException as exc:  # reported by the writer: write() or commit() raises it as one line
            self._error = exc

    def _chunks(self) -> Iterator[bytes]:
        """What obstore uploads: the first part's writes, then each queued write until the end (an abort raises)."""
        first, self._first = self._first, []
        yield from first
        del first
        while (item := self._queue.get()) is not None:
            yield item
        if self._aborting:
            raise _Aborted

    def _send(self, item: bytes | None) -> None:
        """Queue *item* for the worker, waiting for room; the worker's failure if it stopped."""
        while True:
            if self._worker is None or not self._worker.is_alive():
                self._finished = True
                raise self._failed(self._error or StorageError("the upload stopped"), self._key)
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue
