"""What the monitoring hooks measure in a SQLite file: its pages, its B-trees and their statistics.

Everything here reads through a :class:`Reader`, a read-only connection (``mode=ro``: a
missing file is never created) whose statements stop when their deadline passes and whose
locks are waited for at most the lock timeout. Nothing here writes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbkeeper.plugin import DatabaseError, Deadline
from dbkeeper_sqlite.files import opened, require_file

PROGRESS_INSTRUCTIONS = 10_000
"""SQLite virtual-machine instructions between two looks at the deadline."""


class Reader:
    """A read-only connection to one SQLite file whose queries stop at a deadline."""

    def __init__(self, conn: sqlite3.Connection, path: Path, deadline: Deadline, lock_timeout: float) -> None:
        self.conn = conn
        self.path = path
        self.deadline = deadline
        self.lock_timeout = lock_timeout
        conn.set_progress_handler(self._stopping, PROGRESS_INSTRUCTIONS)

    def _stopping(self) -> int:
        """SQLite's progress handler: non-zero interrupts the running statement."""
        return int(self.deadline.expired())

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Every row of *sql*; a deadline that passes or a lock held too long is a one-line DatabaseError."""
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code == sqlite3.SQLITE_INTERRUPT:
                stopped = f"stopped at the deadline ({self.deadline.seconds:g} s) reading {self.path}"
                raise DatabaseError(stopped) from None
            if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise DatabaseError(
                    f"{self.path} was locked by another connection for more than {self.lock_timeout:g} s"
                ) from None
            raise

    def value(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """The first column of the first row of *sql*."""
        return self.rows(sql, params)[0][0]

    def file_size(self) -> int:
        """The main file's size on disk, in bytes."""
        return os.stat(self.path).st_size


@contextlib.contextmanager
def reading(path: Path, *, lock_timeout: float, deadline: Deadline) -> Iterator[Reader]:
    """A :class:`Reader` on the existing SQLite file *path*; DatabaseError when it is missing or no database."""
    require_file(path)
    with opened(path, readonly=True, timeout=lock_timeout) as conn:
        reader = Reader(conn, path, deadline, lock_timeout)
        reader.value("SELECT count(*) FROM sqlite_schema")  # 'file is not a database' here, not in a collector
        yield reader


@dataclass(frozen=True)
class Pages:
    """The file's page layout from its header: page size, pages, free pages, journal and auto-vacuum modes."""

    page_size: int
    page_count: int
    freelist_count: int
    journal_mode: str
    auto_vacuum: str

    @property
    def free_bytes(self) -> int:
        """Bytes on the freelist: pages SQLite reuses, and ``VACUUM`` gives back to the file system."""
        return self.freelist_count * self.page_size

    @property
    def free_ratio(self) -> float:
        """The share of the database's pages that are free (0 for an empty file)."""
        return self.freelist_count / self.page_count if self.page_count else 0.0


AUTO_VACUUM_MODES = {0: "none", 1: "full", 2: "incremental"}


def pages(reader: Reader) -> Pages:
    """The file's :class:`Pages`."""
    return Pages(
        page_size=reader.value("PRAGMA page_size"),
        page_count=reader.value("PRAGMA page_count"),
        freelist_count=reader.value("PRAGMA freelist_count"),
        journal_mode=str(reader.value("PRAGMA journal_mode")).lower(),
        auto_vacuum=AUTO_VACUUM_MODES.get(reader.value("PRAGMA auto_vacuum"), "unknown"),
    )


def user_tables(reader: Reader) -> list[str]:
    """User tables (not SQLite's own ``sqlite_*`` ones), sorted."""
    rows = reader.rows(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    )
    return [name for (name,) in rows]


@dataclass(frozen=True)
class Btree:
    """One B-tree of a user table: the table itself or one of its indexes, its bytes and entries."""

    name: str
    table: str
    is_index: bool
    bytes: int
    entries: int


BTREES_SQL = """
SELECT d.name, s.tbl_name, s.type = 'index' OR coalesce(t.wr, 0) AS keyed, sum(d.pgsize),
       sum(CASE WHEN d.pagetype = 'leaf' THEN d.ncell ELSE 0 END), sum(d.ncell)
FROM dbstat AS d
JOIN sqlite_schema AS s ON s.name = d.name
LEFT JOIN pragma_table_list AS t ON t.schema = 'main' AND t.name = s.name
WHERE s.tbl_name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
GROUP BY d.name, s.tbl_name, s.type
ORDER BY s.tbl_name, d.name
"""
"""Bytes and entries of every B-tree of a user table, from DBSTAT (it reads every page).

A rowid table's entries are the cells of its leaf pages; an index's (and a WITHOUT ROWID
table's) are the cells of all its pages."""


def btrees(reader: Reader) -> list[Btree]:
    """Every B-tree of the user tables, measured with DBSTAT (reads the whole file)."""
    return [
        Btree(name, table, name != table, size, total if keyed else leaves)
        for name, table, keyed, size, leaves, total in reader.rows(BTREES_SQL)
    ]


@dataclass(frozen=True)
class TableStatistics:
    """What the query planner knows about one table: its indexes, and which of them ANALYZE has measured.

    ``analysed_rows`` is the row count ANALYZE recorded (None: never analysed);
    ``rows`` the count now, from the table's B-tree.
    """

    table: str
    rows: int
    indexes: tuple[str, ...]
    unanalysed_indexes: tuple[str, ...]
    analysed_rows: int | None

    @property
    def never_analysed(self) -> bool:
        """Whether the table has rows and indexes but no statistics (ANALYZE records none for an empty table)."""
        return bool(self.indexes) and self.rows > 0 and self.analysed_rows is None


def _recorded(reader: Reader) -> dict[str, dict[str | None, int]]:
    """``sqlite_stat1``: table → index (None for a table without indexes) → rows when analysed."""
    if not reader.value("SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'"):
        return {}
    recorded: dict[str, dict[str | None, int]] = {}
    for table, index, stat in reader.rows("SELECT tbl, idx, stat FROM sqlite_stat1"):
        first = str(stat or "0").split(" ", 1)[0]
        recorded.setdefault(table, {})[index] = int(first) if first.isdigit() else 0
    return recorded


def statistics(reader: Reader, trees: list[Btree]) -> list[TableStatistics]:
    """Every user table's :class:`TableStatistics`, from *trees* (see :func:`btrees`) and ``sqlite_stat1``."""
    recorded = _recorded(reader)
    rows = {tree.table: tree.entries for tree in trees if not tree.is_index}
    indexes: dict[str, list[str]] = {}
    for name, table in reader.rows("SELECT name, tbl_name FROM sqlite_schema WHERE type = 'index' ORDER BY name"):
        indexes.setdefault(table, []).append(name)
    result = []
    for table in user_tables(reader):
        known = recorded.get(table, {})
        result.append(
            TableStatistics(
                table=table,
                rows=rows.get(table, 0),
                indexes=tuple(indexes.get(table, ())),
                unanalysed_indexes=tuple(i for i in indexes.get(table, ()) if i not in known),
                analysed_rows=max(known.values()) if known else None,
            )
        )
    return result


def has_statistics(reader: Reader) -> bool:
    """Whether ANALYZE has ever run on the file (``sqlite_stat1`` exists and holds a row)."""
    return bool(_recorded(reader))


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 index``, ``3 indexes``: *count* and the noun in the right number."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
