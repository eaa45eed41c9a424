"""The ``gzip`` codec, for tools that only read gzip; slower than zstd by an order of magnitude."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

from dbkeeper.errors import StageOptionError
from dbkeeper.plugin.streams import CHUNK_SIZE, Encoder, Readable, StageKind, Writable, check_options

_GZIP_WBITS = 31  # zlib's gzip container; the header carries no name and mtime 0
DEFAULT_LEVEL = 6


class _GzipEncoder:
    def __init__(self, sink: Writable, level: int) -> None:
        self._sink = sink
        self._level = level
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)

    def write(self, data: bytes, /) -> int:
        if out := self._compressor.compress(data):
            self._sink.write(out)
        return len(data)

    def finish(self) -> dict[str, Any]:
        self._sink.write(self._compressor.flush())
        return {"level": self._level}


class _GzipReader:
    """Decompresses concatenated gzip members; output per read is bounded (no zip bombs)."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        self._pending = b""
        self._in_member = False
        self._source_done = False

    def read(self, size: int = -1, /) -> bytes:
        limit = size if size > 0 else CHUNK_SIZE
        while True:
            if not self._pending and not self._source_done:
                self._pending = self._source.read(CHUNK_SIZE)
                self._source_done = not self._pending
            if not self._pending:
                if self._in_member:
                    raise zlib.error("the gzip stream ends in the middle of a member (truncated)")
                return b""
            out = self._inflater.decompress(self._pending, limit)
            self._in_member = True
            self._pending = self._inflater.unconsumed_tail
            if self._inflater.eof:
                self._pending = self._inflater.unused_data + self._pending
                self._inflater = zlib.decompressobj(_GZIP_WBITS)
                self._in_member = False
            if out:
                return out


class GzipStage:
    """Gzip (deflate) compression, readable by ``gzip -d``. Option: ``level`` (1-9, default 6)."""

    name = "gzip"
    kind: StageKind = "compression"
    suffix = ".gz"

    def encoder(self, sink: Writable, options: Mapping[str, Any]) -> Encoder:
        """Compress into one gzip member."""
        check_options(self.name, options, {"level": int})
        level = options.get("level", DEFAULT_LEVEL)
        if not 1 <= level <= 9:
            raise StageOptionError(f"gzip level must be 1 to 9, not {level}")
        return _GzipEncoder(sink, level)

    def decoder(self, source: Readable, record: Mapping[str, Any]) -> Readable:
        """Decompress every gzip member of *source*."""
        return _GzipReader(source)
