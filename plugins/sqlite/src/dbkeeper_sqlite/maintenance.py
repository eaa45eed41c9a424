"""Maintenance of a SQLite file: ANALYZE where statistics are missing or stale, VACUUM, incremental_vacuum.

Planning reads through a read-only connection and changes nothing. Applying opens a
read-write connection on first use and runs each step with SQLite's busy timeout set to
the step's lock timeout: a step that cannot get its lock within it is ``skipped``.

SQLite 3.40's ``PRAGMA optimize`` only reconsiders tables the same connection has
queried, so on dbkeeper's fresh connection it would do nothing. The plan therefore makes
the same decision itself, for every table: ``ANALYZE`` (under ``PRAGMA analysis_limit``)
a table with an index that was never analysed, or that grew 25-fold since it was (the
rule ``PRAGMA optimize`` applies).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from dbkeeper.plugin import (
    Deadline,
    MaintenanceRequest,
    MaintenanceStep,
    StepOutcome,
    error_line,
    human_bytes,
)
from dbkeeper_sqlite.facts import Pages, TableStatistics, btrees, counted, pages, reading, statistics
from dbkeeper_sqlite.files import database_path, quote_identifier

ANALYSIS_LIMIT = 1000
"""``PRAGMA analysis_limit``: rows ANALYZE samples per index (bounds its time on large tables)."""
GROWTH_FACTOR = 25
"""A table's statistics are stale once it holds this many times the rows it had when analysed."""
VACUUM_FREE_BYTES = 1 << 20
"""VACUUM is planned when more than ``free_space_ratio_max`` of the pages (``[health]``) are
free and they add up to at least this many bytes (1 MiB)."""

ANALYZE_LOCK = "write lock while it samples: writers wait, readers go on (rollback journal: until it commits)"
VACUUM_LOCK = "exclusive for the whole rebuild: writers wait, and readers too unless the file is in WAL mode"
INCREMENTAL_LOCK = "write lock while it moves free pages to the end and truncates the file: writers wait"


@dataclass(frozen=True)
class _Planned:
    """A planned step and the statements that apply it, one by one."""

    step: MaintenanceStep
    statements: tuple[str, ...]


class SqliteMaintenance:
    """The :class:`~dbkeeper.plugin.Maintenance` of one SQLite file."""

    def __init__(self, path: Path, statement_timeout: float, free_ratio_max: float) -> None:
        self._path = path
        self._statement_timeout = statement_timeout
        self._free_ratio_max = free_ratio_max
        self._planned: dict[MaintenanceStep, tuple[str, ...]] = {}
        self._writer: sqlite3.Connection | None = None

    def plan(self) -> list[MaintenanceStep]:
        """The steps worth running now, measured read-only (DBSTAT reads every page)."""
        deadline = Deadline(self._statement_timeout)
        with reading(self._path, lock_timeout=self._statement_timeout, deadline=deadline) as reader:
            size = reader.file_size()
            layout = pages(reader)
            planned = [_analyze(stats, size) for stats in statistics(reader, btrees(reader)) if _needs_analyze(stats)]
            if space := _space_step(self._path.name, layout, size, self._free_ratio_max):
                planned.append(space)
        self._planned.update((item.step, item.statements) for item in planned)
        return [item.step for item in planned]

    def apply(self, step: MaintenanceStep, lock_timeout: float) -> StepOutcome:
        """Run *step*'s statements, waiting at most *lock_timeout* for SQLite's locks."""
        started = time.monotonic()
        if step not in self._planned:
            return StepOutcome("failed", 0.0, "this step was not planned by this maintenance")
        if self._size() is None:
            return StepOutcome("failed", 0.0, f"{self._path} no longer exists")
        if step.action == "vacuum" and (refusal := _lacking_space(self._path)):
            return StepOutcome("skipped", 0.0, refusal, bytes_after=self._size())
        try:
            conn = self._connection()
            conn.execute(f"PRAGMA busy_timeout = {max(0, round(lock_timeout * 1000))}")
            conn.executescript(";\n".join(self._planned[step]))  # steps every statement to its end
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                detail = f"lock not granted within {lock_timeout:g} s (another connection holds it)"
                return StepOutcome("skipped", time.monotonic() - started, detail, self._size())
            return StepOutcome("failed", time.monotonic() - started, error_line(exc), self._size())
        except sqlite3.Error as exc:
            return StepOutcome("failed", time.monotonic() - started, error_line(exc), self._size())
        return StepOutcome("done", time.monotonic() - started, bytes_after=self._size())

    def close(self) -> None:
        """Close the read-write connection, if a step opened it."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _connection(self) -> sqlite3.Connection:
        """The read-write connection, opened on first use (``mode=rw``: a file removed meanwhile is not created)."""
        if self._writer is None:
            target = f"{self._path.resolve().as_uri()}?mode=rw"
            self._writer = sqlite3.connect(target, uri=True, isolation_level=None, check_same_thread=False)
        return self._writer

    def _size(self) -> int | None:
        """The file's size now; None when it is gone."""
        try:
            return os.stat(self._path).st_size
        except FileNotFoundError:
            return None


def maintenance(request: MaintenanceRequest) -> SqliteMaintenance:
    """The maintenance of the file *request* names (it must exist: planning checks)."""
    path = database_path(request.url, why_not="has no file to optimise")
    return SqliteMaintenance(path, request.statement_timeout, request.thresholds.free_space_ratio_max)


def _needs_analyze(stats: TableStatistics) -> bool:
    if not stats.indexes or not stats.rows:
        return False  # without an index the planner has no choice to make; an empty table gets no statistics
    if stats.analysed_rows is None or stats.unanalysed_indexes:
        return True
    return stats.rows >= GROWTH_FACTOR * max(stats.analysed_rows, 1)


def _analyze(stats: TableStatistics, size: int) -> _Planned:
    """ANALYZE one table, with the reason measured."""
    if stats.analysed_rows is None:
        reason = f"never analysed: {counted(stats.rows, 'row')}, {counted(len(stats.indexes), 'index', 'indexes')}"
    elif stats.unanalysed_indexes:
        reason = f"no statistics for index {', '.join(stats.unanalysed_indexes)}"
    else:
        reason = f"{stats.rows} rows, {stats.analysed_rows} when last analysed (stale at {GROWTH_FACTOR} times)"
    statements = (f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}", f"ANALYZE main.{quote_identifier(stats.table)}")
    step = MaintenanceStep(stats.table, "analyze", reason, "; ".join(statements), ANALYZE_LOCK, False, size)
    return _Planned(step, statements)


def _space_step(name: str, layout: Pages, size: int, free_ratio_max: float) -> _Planned | None:
    """VACUUM (or incremental_vacuum in that mode) when the freelist is large."""
    if layout.free_ratio <= free_ratio_max or layout.free_bytes < VACUUM_FREE_BYTES:
        return None
    reason = (
        f"{human_bytes(layout.free_bytes)} free in {human_bytes(size)} "
        f"({layout.free_ratio:.2f} of the pages, above {free_ratio_max:g})"
    )
    if layout.auto_vacuum == "incremental":
        statements: tuple[str, ...] = ("PRAGMA incremental_vacuum",)
        step = MaintenanceStep(name, "incremental vacuum", reason, statements[0], INCREMENTAL_LOCK, False, size)
        return _Planned(step, statements)
    statements = ("VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)") if layout.journal_mode == "wal" else ("VACUUM",)
    return _Planned(MaintenanceStep(name, "vacuum", reason, "; ".join(statements), VACUUM_LOCK, True, size), statements)


def sqlite_temp_directory() -> Path:
    """Where SQLite writes VACUUM's temporary copy: its environment variables, then its fixed list."""
    for candidate in (os.environ.get("SQLITE_TMPDIR"), os.environ.get("TMPDIR"), "/var/tmp", "/usr/tmp", "/tmp"):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return Path(candidate)
    return Path.cwd()


def _lacking_space(path: Path) -> str | None:
    """Why VACUUM must not start for lack of disk (None when there is room).

    The rebuilt copy goes to SQLite's temporary directory, the journal (or WAL) beside
    the file; each may grow to the file's size: twice the file on one file system.
    """
    size = os.stat(path).st_size
    needs: dict[int, list[Path]] = {}
    for place in (path.resolve().parent, sqlite_temp_directory()):
        needs.setdefault(os.stat(place).st_dev, []).append(place)
    for places in needs.values():
        free = shutil.disk_usage(places[0]).free
        if free < size * len(places):
            where = " and ".join(str(p) for p in places)
            return (
                f"not run: VACUUM needs {human_bytes(size * len(places))} free in {where}, "
                f"only {human_bytes(free)} is free"
            )
    return None
