"""One scrape of a SQLite file: its sizes and pages, per-table bytes (DBSTAT), whether ANALYZE ran.

Three collectors, each isolated by :class:`~dbkeeper.plugin.Collectors`: ``file`` (the
header's pragmas and the file sizes: cheap), ``tables`` (DBSTAT reads every page, so it
runs only when the file has at most ``options.table_limit`` tables) and ``statistics``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from dbkeeper.plugin import CollectorResult, Collectors, MetricsRequest, Sample
from dbkeeper_sqlite.facts import Reader, btrees, has_statistics, pages, reading, user_tables
from dbkeeper_sqlite.files import database_path

NO_FILE = "has no file to monitor"


def collect(request: MetricsRequest) -> list[CollectorResult]:
    """Scrape the file *request* names, read-only; DatabaseError when it is missing or no database."""
    path = database_path(request.url, why_not=NO_FILE)
    with reading(path, lock_timeout=request.lock_timeout, deadline=request.deadline) as reader:
        collectors = Collectors(request.deadline)
        collectors.run("file", lambda: file_samples(reader))
        limit = request.options.table_limit
        if limit > 0 and len(user_tables(reader)) <= limit:
            collectors.run("tables", lambda: table_samples(reader))
        collectors.run("statistics", lambda: statistics_samples(reader))
        return collectors.results()


def _bytes(name: str, help: str, value: float) -> Sample:
    return Sample(name, "gauge", help, value, unit="bytes")


def file_samples(reader: Reader) -> Iterator[Sample]:
    """The engine's version, the file's size, its pages and free pages, journal mode and WAL size."""
    layout = pages(reader)
    yield Sample("version", "info", "The database engine and its version.", 1, labels=_version())
    yield _bytes("database_size", "Size of the database on disk.", reader.file_size())
    yield _bytes("sqlite_page_size", "SQLite page size.", layout.page_size)
    yield Sample("sqlite_pages", "gauge", "Pages in the SQLite database, free ones included.", layout.page_count)
    yield _bytes("sqlite_freelist_size", "Bytes on the freelist: free pages VACUUM would return.", layout.free_bytes)
    mode = layout.journal_mode
    yield Sample("sqlite_journal_mode", "info", "The SQLite journal mode.", 1, labels={"mode": mode})
    if mode == "wal":
        yield _bytes("sqlite_wal_size", "Size of the write-ahead log file.", _size(Path(f"{reader.path}-wal")))


def _version() -> dict[str, str]:
    return {"engine": "sqlite", "version": sqlite3.sqlite_version}


def _size(path: Path) -> int:
    """*path*'s size, 0 when it does not exist (an empty WAL may have been removed at the last close)."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def table_samples(reader: Reader) -> Iterator[Sample]:
    """Bytes per user table: its own B-tree (``kind="data"``) and its indexes' (``kind="index"``)."""
    totals: dict[tuple[str, str], int] = {}
    for tree in btrees(reader):
        key = (tree.table, "index" if tree.is_index else "data")
        totals[key] = totals.get(key, 0) + tree.bytes
    for table in user_tables(reader):
        for kind in ("data", "index"):
            yield Sample(
                "table_size",
                "gauge",
                "Bytes of a table's data or of its indexes.",
                totals.get((table, kind), 0),
                unit="bytes",
                labels={"table": table, "kind": kind},
            )


def statistics_samples(reader: Reader) -> Iterator[Sample]:
    """Whether ANALYZE has run (``sqlite_stat1`` holds statistics)."""
    yield Sample(
        "sqlite_analyzed",
        "gauge",
        "1 when ANALYZE has recorded statistics (sqlite_stat1), 0 when it never ran.",
        1 if has_statistics(reader) else 0,
    )
