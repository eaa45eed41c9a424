"""Readers composed for restores: a verified header before each part, cancellation, filters.

Each reader returns ``b""`` only when the artifacts it wraps have returned ``b""``, i.e.
after their checksums were proven, so :func:`dbkeeper.plugin.stream_in` still withholds the
final chunk of a damaged artifact from the client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from dbkeeper.plugin import DatabaseError, Readable
from dbkeeper_mysql.sqltext import INSERT, LineFeeder

ROWS_LOCK = b"LOCK TABLES "


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


def unchanged(line: bytes) -> bytes:
    """The identity edit."""
    return line


class PartFilter:
    """A table's part ready for loading beside others: no ``LOCK TABLES``, definition edited.

    mariadb-dump wraps each table's rows in ``LOCK TABLES `t` WRITE``. With tables loaded
    at once, MariaDB refuses such a table's rows when another worker has meanwhile created
    a table with a foreign key to it (error 1100, "was not locked with LOCK TABLES"); the
    lock only ever helped MyISAM, so the line is dropped (the ``UNLOCK TABLES`` after the
    rows is then a no-op). The lines before it (the definition) go whole through *edit*;
    from the rows on, everything passes untouched, at full speed.
    """

    def __init__(self, reader: Readable, edit: Callable[[bytes], bytes] = unchanged) -> None:
        self._reader = reader
        self._edit = edit
        self._feeder: LineFeeder | None = LineFeeder()
        self._held: list[bytes] = []
        self._at_line_start = True
        self._locking = False

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
        if self._feeder is None:  # past the definition: the rest of this chunk passes as it is
            return piece
        if self._at_line_start and piece.startswith(INSERT) and not self._locking:
            self._feeder = None
            return piece
        if self._at_line_start and piece.startswith(ROWS_LOCK):
            self._locking = True  # dropped up to its ";" (a table name may hold a line break)
        self._at_line_start = ends_line
        if self._locking:
            if ends_line and piece.rstrip().endswith(b";"):
                self._feeder = None
            return b""
        self._held.append(piece)
        if not ends_line:
            return b""
        line, self._held = b"".join(self._held), []
        return self._edit(line)
