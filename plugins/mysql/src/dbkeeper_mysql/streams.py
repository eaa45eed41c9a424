"""Readers composed for restores: a verified header before each part, cancellation, filters.

Each reader returns ``b""`` only when the artifacts it wraps have returned ``b""``, i.e.
after their checksums were proven, so :func:`dbkeeper.tools.stream_in` still withholds the
final chunk of a damaged artifact from the client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from dbkeeper.errors import DatabaseError
from dbkeeper.pipeline import Readable
from dbkeeper_mysql.sqltext import LineFeeder


class Cancelled(DatabaseError):
    """Raised from a reader whose restore was abandoned because another part failed."""


class Concat:
    """Read *parts* one after the other; ``bytes`` parts are already-verified text."""

    def __init__(self, *parts: bytes | Readable) -> None:
        self._parts = list(parts)

    def read(self, size: int = -1, /) -> bytes:
        """Up to *size* bytes of the current part; ``b""`` after the last."""
        while self._parts:
            part = self._parts[0]
            if isinstance(part, bytes):
                self._parts.pop(0)
                if part:
                    return part
                continue
            if data := part.read(size):
                return data
            self._parts.pop(0)
        return b""


class Cancellable:
    """A reader that raises :class:`Cancelled` once *event* is set."""

    def __init__(self, reader: Readable, event: threading.Event) -> None:
        self._reader = reader
        self._event = event

    def read(self, size: int = -1, /) -> bytes:
        """Read on, unless the work was cancelled."""
        if self._event.is_set():
            raise Cancelled("cancelled because another part of the restore failed")
        return self._reader.read(size)


class LineFilter:
    """A reader passing whole-line *edit* over the lines that start with *prefix*.

    Filtering stops at the first line starting with *until* (the rows, in a table's
    part): from there on everything passes through untouched, at full speed.
    """

    def __init__(self, reader: Readable, prefix: bytes, until: bytes, edit: Callable[[bytes], bytes]) -> None:
        self._reader = reader
        self._prefix = prefix
        self._until = until
        self._edit = edit
        self._feeder: LineFeeder | None = LineFeeder()
        self._held: list[bytes] = []
        self._editing = False
        self._at_line_start = True

    def read(self, size: int = -1, /) -> bytes:
        """The next filtered bytes; ``b""`` when the wrapped reader has ended."""
        while (feeder := self._feeder) is not None:
            chunk = self._reader.read(size)
            pieces = feeder.feed(chunk) if chunk else feeder.end()
            out = b"".join(self._filter(piece, ends) for piece, ends in pieces)
            if not chunk:
                self._feeder = None
            elif self._feeder is None:  # filtering stopped in this chunk: its last partial line too
                out += b"".join(piece for piece, _ in feeder.end())
            if out:
                return out
        return self._reader.read(size)

    def _filter(self, piece: bytes, ends_line: bool) -> bytes:
        if self._feeder is None:  # past *until*: the rest of this chunk passes as it is
            return piece
        if self._at_line_start and piece.startswith(self._until):
            self._feeder = None
            return piece
        if self._at_line_start:
            self._editing = piece.startswith(self._prefix)
        self._at_line_start = ends_line
        if not self._editing:
            return piece
        self._held.append(piece)
        if not ends_line:
            return b""
        line, self._held = b"".join(self._held), []
        return self._edit(line)
