r"""Deep verification: read every artifact to its end and count the rows of each table.

A custom archive goes through ``pg_restore --data-only --file=-``, which must read the
whole archive (a truncated one fails where ``pg_restore --list`` still succeeds); a plain
script is read as it is and must end with pg_dump's completion line. The rows between
each ``COPY … FROM stdin;`` and its ``\.`` are counted, streaming, and the core compares
the counts with the manifest.
"""

from __future__ import annotations

from dbkeeper.plugin import CHUNK_SIZE, BackupContents, DatabaseError, InspectRequest
from dbkeeper_postgresql import layout
from dbkeeper_postgresql.catalog import qualified, read_name
from dbkeeper_postgresql.clients import restore_client
from dbkeeper_postgresql.streams import filter_through

DUMP_COMPLETE = b"-- PostgreSQL database dump complete"
_COPY_PREFIX = b"COPY "
_COPY_SUFFIX = b" FROM stdin;"
_END_OF_ROWS = b"\n\\.\n"
TAIL_BYTES = 64 * 1024
"""How much of a plain script's end is kept to look for pg_dump's completion line."""


class CopyCounter:
    r"""Counts rows per table in SQL text written by pg_dump or pg_restore, fed in chunks.

    Outside a ``COPY`` block the text is read line by line (it holds only statements);
    inside, rows are counted with ``bytes.count`` up to the ``\.`` line, so counting
    keeps up with the data. In COPY's text format a data line never starts with ``\.``
    (a backslash in data is written ``\\``), so that line ends the block.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._buffer = b""
        self._table: str | None = None
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        """Consume the next piece of text."""
        self._tail = (self._tail + chunk)[-TAIL_BYTES:]
        data = self._buffer + chunk
        pos, size = 0, len(data)
        while pos < size:
            if self._table is None:
                newline = data.find(b"\n", pos)
                if newline < 0:
                    break
                if data.startswith(_COPY_PREFIX, pos) and data.endswith(_COPY_SUFFIX, pos, newline):
                    self._table = copy_target(data[pos:newline].decode())
                    # Start at the newline ending the statement, so that an end marker right
                    # after it is found too; that newline is not a row.
                    self.counts[self._table] = self.counts.get(self._table, 0) - 1
                    pos = newline
                else:
                    pos = newline + 1
            else:
                end = data.find(_END_OF_ROWS, pos)
                if end < 0:
                    cut = max(pos, size - (len(_END_OF_ROWS) - 1))  # keep what may be the start of the marker
                    self.counts[self._table] += data.count(b"\n", pos, cut)
                    pos = cut
                    break
                self.counts[self._table] += data.count(b"\n", pos, end + 1)
                pos = end + len(_END_OF_ROWS)
                self._table = None
        self._buffer = data[pos:]

    def finish(self) -> list[str]:
        """Problems with how the text ended (inside a table's rows)."""
        if self._table is not None:
            return [f"the dump ends inside the rows of table {self._table}: it was cut short"]
        return []

    @property
    def complete(self) -> bool:
        """Whether pg_dump's completion line is near the end (for plain scripts)."""
        return DUMP_COMPLETE in self._tail


def copy_target(statement: str) -> str:
    """The table key of a ``COPY schema.table (columns) FROM stdin;`` statement."""
    text = statement[len("COPY ") :]
    schema, index = read_name(text, 0, ends='. ("')
    if not text.startswith(".", index):
        raise DatabaseError(f"unexpected COPY statement (no schema): {statement[:200]!r}")
    table, _ = read_name(text, index + 1, ends='. ("')
    return qualified(schema, table)


def inspect(request: InspectRequest) -> BackupContents:
    """Read every part of the backup and count its rows."""
    details = request.backup.details
    fmt = str(details.get("format", request.backup.format))
    parts = layout.parts_of(details, request.backup.id)
    ignored = set(details.get("extension_tables", ()))
    pg_restore = restore_client("pg_restore", str(details.get("pg_dump_version", "0"))) if fmt == "custom" else None
    counts: dict[str, int] = {}
    problems: list[str] = []
    for part in parts:
        counter = CopyCounter()
        with request.artifacts.open(part.artifact) as reader:
            if pg_restore is not None:
                try:
                    filter_through([pg_restore.path, "--data-only", "--file=-"], reader, counter.feed, {})
                except DatabaseError as exc:
                    problems.append(f"{part.artifact}: {exc}")
                    continue
            else:
                while chunk := reader.read(CHUNK_SIZE):
                    counter.feed(chunk)
                if not counter.complete:
                    problems.append(f"{part.artifact} does not end with pg_dump's completion line: it was cut short")
        problems += [f"{part.artifact}: {problem}" for problem in counter.finish()]
        for table, rows in counter.counts.items():
            if table not in ignored:
                counts[table] = counts.get(table, 0) + max(rows, 0)
    return BackupContents(row_counts=counts, problems=problems)
