"""Health checks of a SQLite file, read-only: what of PgHero's list exists in SQLite.

``quick_check`` (the file's structure), free space on the freelist, tables never
analysed, foreign-key violations, duplicate indexes and foreign keys without an index.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator

from dbkeeper.plugin import DatabaseError, HealthCheck, HealthRequest, HealthThresholds, error_line, human_bytes, judge
from dbkeeper_sqlite.facts import Reader, btrees, counted, pages, reading, statistics, user_tables
from dbkeeper_sqlite.files import check_results, database_path

QUICK_CHECK_MAX_BYTES = 1 << 30
"""``PRAGMA quick_check`` reads the whole file: above this size (1 GiB) it is skipped."""
FINDINGS_MAX = 20
"""At most this many findings per check (the figure counts them all)."""


def check(request: HealthRequest) -> list[HealthCheck]:
    """Every SQLite health check of the file *request* names; DatabaseError when it cannot be read."""
    path = database_path(request.url, why_not="has no file to check")
    with reading(path, lock_timeout=request.lock_timeout, deadline=request.deadline) as reader:
        return [
            _guarded("quick_check", "File structure (quick_check)", lambda: quick_check(reader)),
            _guarded("free_space", "Free space", lambda: free_space(reader, request.thresholds)),
            _guarded("never_analyzed", "Tables never analysed", lambda: never_analysed(reader)),
            _guarded("foreign_key_violations", "Foreign-key violations", lambda: foreign_key_violations(reader)),
            _guarded("duplicate_indexes", "Duplicate indexes", lambda: duplicate_indexes(reader)),
            _guarded("foreign_keys_without_index", "Foreign keys without an index", lambda: unindexed_keys(reader)),
        ]


def _guarded(name: str, title: str, run: Callable[[], HealthCheck]) -> HealthCheck:
    """*run*'s check, or ``skipped`` with the reason when it could not be made (deadline, lock, damage)."""
    try:
        return run()
    except (DatabaseError, sqlite3.DatabaseError) as exc:
        return HealthCheck(name, title, "skipped", f"cannot tell: {error_line(exc)}")


def quick_check(reader: Reader) -> HealthCheck:
    """``PRAGMA quick_check`` on files up to :data:`QUICK_CHECK_MAX_BYTES`; larger ones are skipped."""
    name, title = "quick_check", "File structure (quick_check)"
    size = reader.file_size()
    if size > QUICK_CHECK_MAX_BYTES:
        return HealthCheck(
            name,
            title,
            "skipped",
            f"{human_bytes(size)} file, above {human_bytes(QUICK_CHECK_MAX_BYTES)}: quick_check would read all of it; "
            "run 'dbkeeper verify --deep' on a backup instead",
        )
    try:
        problems = check_results("quick_check", [row[0] for row in reader.rows("PRAGMA quick_check(20)")])
    except sqlite3.DatabaseError as exc:  # damage SQLite stops at; the deadline and locks are DatabaseErrors
        problems = [f"quick_check failed: {exc}"]
    return judge(
        name,
        title,
        len(problems),
        0,
        figure=f"{counted(len(problems), 'problem')} found in {human_bytes(size)}",
        advice="restore the latest verified backup, or copy what is readable with sqlite3's .recover",
        findings=problems[:FINDINGS_MAX],
    )


def free_space(reader: Reader, thresholds: HealthThresholds) -> HealthCheck:
    """The share of the file on the freelist, against ``free_space_ratio_max``."""
    layout = pages(reader)
    return judge(
        "free_space",
        "Free space",
        round(layout.free_ratio, 3),
        thresholds.free_space_ratio_max,
        figure=f"{layout.free_ratio:.3f} of the pages free ({human_bytes(layout.free_bytes)})",
        advice="run 'dbkeeper optimize --apply --allow-blocking' (VACUUM), or use auto_vacuum = INCREMENTAL",
    )


def never_analysed(reader: Reader) -> HealthCheck:
    """Tables with indexes on which ANALYZE never ran: the planner guesses which index to use."""
    tables = [s for s in statistics(reader, btrees(reader)) if s.never_analysed]
    return judge(
        "never_analyzed",
        "Tables never analysed",
        len(tables),
        0,
        figure=f"{len(tables)} found among the tables with indexes",
        advice="run 'dbkeeper optimize --apply' (ANALYZE)",
        findings=[
            f"{s.table}: {counted(s.rows, 'row')}, {counted(len(s.indexes), 'index', 'indexes')}"
            for s in tables[:FINDINGS_MAX]
        ],
    )


def foreign_key_violations(reader: Reader) -> HealthCheck:
    """Rows whose foreign key points at no row (``PRAGMA foreign_key_check``)."""
    rows = reader.rows("PRAGMA foreign_key_check")
    return judge(
        "foreign_key_violations",
        "Foreign-key violations",
        len(rows),
        0,
        figure=f"{counted(len(rows), 'row')} pointing at no row",
        advice="fix or delete the rows, and open connections with PRAGMA foreign_keys = ON",
        findings=[f"{table} rowid {rowid} → {parent}" for table, rowid, parent, _ in rows[:FINDINGS_MAX]],
    )


Key = tuple[tuple[str, int, str], ...]
"""An index's key columns in order: (column, descending, collation)."""


def _index_keys(reader: Reader, table: str) -> Iterator[tuple[str, Key, bool]]:
    """(name, key columns, unique) of each full index of *table*; expression and partial indexes are left out."""
    for _, name, unique, _, partial in reader.rows("SELECT * FROM pragma_index_list(?)", (table,)):
        columns = reader.rows("SELECT cid, name, desc, coll FROM pragma_index_xinfo(?) WHERE key = 1", (name,))
        if partial or any(cid == -2 for cid, *_ in columns):
            continue
        yield name, tuple((column, desc, coll.lower()) for _, column, desc, coll in columns), bool(unique)


def duplicate_indexes(reader: Reader) -> HealthCheck:
    """Indexes with the same key columns, in the same order, as another index of the same table."""
    findings = []
    for table in user_tables(reader):
        first: dict[Key, str] = {}
        kept_first = sorted(_index_keys(reader, table), key=lambda index: (not index[2], index[0]))  # unique first
        for name, key, _ in kept_first:
            if key in first:
                columns = ", ".join(column for column, _, _ in key)
                findings.append(f"{table}: {name} ({columns}) duplicates {first[key]}")
            else:
                first[key] = name
    return judge(
        "duplicate_indexes",
        "Duplicate indexes",
        len(findings),
        0,
        figure=f"{len(findings)} found",
        advice="drop the duplicates (DROP INDEX …): each slows every write and takes space",
        findings=findings[:FINDINGS_MAX],
    )


def _foreign_keys(reader: Reader, table: str) -> dict[int, tuple[str, list[str]]]:
    """*table*'s foreign keys: id → (parent table, child columns in order)."""
    keys: dict[int, tuple[str, list[str]]] = {}
    for key_id, _, parent, column, *_ in reader.rows("SELECT * FROM pragma_foreign_key_list(?)", (table,)):
        keys.setdefault(key_id, (parent, []))[1].append(column)
    return keys


def _rowid_alias(reader: Reader, table: str) -> str | None:
    """The INTEGER PRIMARY KEY column of a rowid table (an index in itself), if any."""
    primary = reader.rows("SELECT name, type FROM pragma_table_info(?) WHERE pk > 0", (table,))
    if len(primary) == 1 and str(primary[0][1]).upper() == "INTEGER":
        return str(primary[0][0])
    return None


def unindexed_keys(reader: Reader) -> HealthCheck:
    """Foreign keys whose child columns lead no index: deleting a parent row scans the child table."""
    findings = []
    for table in user_tables(reader):
        leading = {tuple(column for column, _, _ in key) for _, key, _ in _index_keys(reader, table)}
        if alias := _rowid_alias(reader, table):
            leading.add((alias,))
        for parent, columns in _foreign_keys(reader, table).values():
            if not any(index[: len(columns)] == tuple(columns) for index in leading):
                findings.append(f"{table} ({', '.join(columns)}) → {parent}")
    return judge(
        "foreign_keys_without_index",
        "Foreign keys without an index",
        len(findings),
        0,
        figure=f"{len(findings)} found",
        advice="index the child columns: deleting or updating a parent row scans the whole child table",
        findings=findings[:FINDINGS_MAX],
    )
