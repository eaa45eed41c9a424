"""Reading an object as a stream: obstore's chunks handed out ``read(size)`` at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from dbkeeper.plugin import StorageError


class S3Reader:
    """An :class:`~dbkeeper.plugin.ObjectReader` over an obstore byte stream; holds one chunk at a time."""

    def __init__(self, chunks: Iterator[bytes], failed: Callable[[Exception], StorageError]) -> None:
        self._chunks: Iterator[bytes] | None = chunks
        self._failed = failed
        self._chunk = memoryview(b"")
        self._offset = 0

    def read(self, size: int = -1, /) -> bytes:
        """At most *size* bytes (everything left when *size* is -1); ``b""`` at the end."""
        if size < 0:
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        if self._offset == len(self._chunk) and not self._next_chunk():
            return b""
        piece = bytes(self._chunk[self._offset : self._offset + size])
        self._offset += len(piece)
        return piece

    def close(self) -> None:
        """Stop reading: the connection is dropped with the stream."""
        self._chunks = None
        self._chunk = memoryview(b"")
        self._offset = 0

    def _next_chunk(self) -> bool:
        """Move to the stream's next non-empty chunk; False at the end (or once closed)."""
        while self._chunks is not None:
            try:
                chunk = next(self._chunks, None)
            except Exception as exc:
                raise self._failed(exc) from exc
            if chunk is None:
                self._chunks = None
                return False
            self._chunk, self._offset = memoryview(chunk), 0
            if len(self._chunk):
                return True
        return False
