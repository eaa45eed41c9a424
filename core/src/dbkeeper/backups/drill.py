"""Restore drills: restore a backup into a throwaway target, check it, time it, record the verdict.

A drill proves what checksums cannot: that the backup comes back as a working database,
and how long that takes (the recovery time an operator can expect). It runs the same
restore as ``dbkeeper restore`` into the driver's :class:`~dbkeeper.plugin.DrillTarget`
(a throwaway server or file, or a scratch database on ``--into``), then checks the
restored database: the row count of every table against the manifest (part of every
restore), the engine's own integrity check, and each ``--check-sql`` query. The result is
kept beside the backup (``.records/drill.json``; the sealed manifest never changes).

Whatever happens — a failed check, a failed restore, Ctrl-C, ``kill -9`` — the target and
every temporary file are removed: the driver's context manager stops its server or drops
its scratch database, and a watchdog removes the drill's private directory when this
process dies. ``--keep`` leaves a target that was restored running, and says how to reach
and stop it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbkeeper.backups.manifest import Manifest, format_time, utc_now
from dbkeeper.backups.records import json_options
from dbkeeper.connections.urls import DatabaseURL, error_line
from dbkeeper.errors import DbkeeperError, KeyRequiredError
from dbkeeper.plugin.drills import CheckingWhileRestoring, DrillRequest, DrillTarget, IntegrityCheck
from dbkeeper.system.notes import plural
from dbkeeper.system.watchdog import release_watchdog, start_watchdog

if TYPE_CHECKING:
    from dbkeeper.plugin.contract import BackupFacts
    from dbkeeper.plugin.drills import DrillDialect, TableLoaded
    from dbkeeper.plugin.manager import Driver
    from dbkeeper.plugin.options import OptionValue
    from dbkeeper.plugin.restore import RestoreResult


@dataclass(frozen=True)
class DrillReport:
    """The outcome of a drill: the verdict, each check, and the measured recovery time."""

    id: str
    ok: bool
    at: datetime
    target: str
    checks: list[IntegrityCheck] = field(default_factory=list)
    restore_seconds: float | None = None
    stored_bytes: int = 0
    raw_bytes: int = 0
    rows: int = 0
    problem: str | None = None
    kept: DrillTarget | None = None
    options: Mapping[str, OptionValue] = field(default_factory=dict)
    """The driver options the restore ran with (``{"jobs": 2, "tools": "auto"}``): a recovery time holds for them."""

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``dbkeeper drill --json``)."""
        data: dict[str, Any] = {
            "id": self.id,
            "ok": self.ok,
            "at": format_time(self.at),
            "target": self.target,
            "restore_seconds": self.restore_seconds,
            "options": json_options(self.options),
            "stored_bytes": self.stored_bytes,
            "raw_bytes": self.raw_bytes,
            "rows": self.rows,
            "problem": self.problem,
            "checks": [{"name": c.name, "ok": c.ok, "skipped": c.skipped, "detail": c.detail} for c in self.checks],
        }
        if self.kept is not None:
            data["kept"] = {"url": self.kept.url.safe(), "connect": self.kept.connect, "stop": self.kept.stop}
        return data


def effective_options(driver: Driver, given: Mapping[str, object]) -> dict[str, OptionValue]:
    """Every option *driver* declares for ``drill``, as its restore will run: *given*, else the environment or default.

    An option it does not declare for ``drill`` is a ConfigError naming those it does.
    """
    typed = driver.options_for("drill", given)
    return {declared.name: getattr(typed, declared.name) for declared in driver.options("drill")}


def damaged_report(manifest: Manifest, problem: str) -> DrillReport:
    """The failed drill of a backup whose stored files are missing or not their recorded size: nothing to restore."""
    return DrillReport(
        id=manifest.id,
        ok=False,
        at=utc_now(),
        target="nothing (its stored files are damaged)",
        checks=[IntegrityCheck("stored files", False, problem)],
        stored_bytes=manifest.stored_bytes,
        raw_bytes=manifest.raw_bytes,
        rows=sum(manifest.row_counts.values()),
        problem=problem,
    )


@contextlib.contextmanager
def drill_directory(*, keep: bool) -> Iterator[Path]:
    """A private directory (0700) for the drill's throwaway server, removed afterwards — also on ``kill -9``.

    Under the system's temporary directory, not dbkeeper's runtime directory: a server
    that runs as another user must be able to reach it (a driver may make it 0711). Its
    name carries this process's id (``dbkeeper-drill-<pid>-…``). With *keep*, a drill that
    succeeded leaves it for the kept server.
    """
    path = Path(tempfile.mkdtemp(prefix=f"dbkeeper-drill-{os.getpid()}-"))  # whose it is, at a glance
    watchdog = start_watchdog(path)
    kept = False
    try:
        yield path
        kept = keep
    finally:
        release_watchdog(watchdog, remove=not kept)
        if not kept:
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):  # a target kept elsewhere (--into) left nothing in it
                path.rmdir()


def check_sql(driver: Driver, url: DatabaseURL, queries: Sequence[str]) -> list[IntegrityCheck]:
    """Run the ``--check-sql`` queries on the restored database, on one connection.

    Each passes when its first column is true or non-zero; one that fails does not stop the others.
    """
    if not queries:
        return []
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    checks = []
    engine = driver.connect(url)
    try:
        with engine.connect() as connection:
            for sql in queries:
                name = f"check-sql: {sql}"
                try:
                    row = connection.execute(text(sql)).first()
                except SQLAlchemyError as exc:
                    connection.rollback()  # the next query starts clean
                    checks.append(IntegrityCheck(name, False, f"failed: {error_line(exc)}"))
                    continue
                checks.append(_verdict(name, row))
    finally:
        engine.dispose()
    return checks


def _verdict(name: str, row: Any) -> IntegrityCheck:
    """A query's verdict from its first row: passed when its first column is true or non-zero."""
    if row is None or len(row) == 0:
        return IntegrityCheck(name, False, "returned no row (its first column must be true or non-zero)")
    return IntegrityCheck(name, bool(row[0]), f"returned {row[0]!r}")


@dataclass
class Drill:
    """One drill of a complete backup by its driver; :meth:`run` reports what went wrong as a failed drill.

    Except what is no verdict on the backup, which it raises: no target could be brought up
    (missing server binaries, a wrong ``--into``), or no key was given for an encrypted backup.
    """

    manifest: Manifest
    facts: BackupFacts
    driver: Driver
    restore: Callable[[DatabaseURL, TableLoaded | None], RestoreResult]
    """The manager's restore of this backup into a URL (the same code as ``dbkeeper restore``), telling
    the callback, when given, as each table is complete."""
    into: DatabaseURL | None = None
    check_sql: Sequence[str] = ()
    keep: bool = False
    options: Mapping[str, OptionValue] = field(default_factory=dict)
    """The driver options *restore* runs with, for the report."""
    checks: list[IntegrityCheck] = field(default_factory=list)
    restore_seconds: float | None = None
    target: DrillTarget | None = None
    step: str = "target"
    """What the drill is doing: ``target`` (bringing it up), ``restore``, ``checks``."""

    def run(self) -> DrillReport:
        """Bring up the target, restore, check, remove the target; the report says what happened."""
        at = utc_now()
        problem = None
        kept = None
        try:
            with drill_directory(keep=self.keep) as workdir:
                request = DrillRequest(self.driver.name, self.facts, workdir, self.into, self.keep)
                dialect = self.driver.drill(request)
                with dialect.target(request) as target:
                    self.target = target
                    self._restore_and_check(dialect, target)
                kept = target if self.keep else None
        except DbkeeperError as exc:
            if self.step == "target" or isinstance(exc, KeyRequiredError):
                raise  # no target to restore into, or no key to read it with: not a verdict on the backup
            problem = str(exc)
            self.checks.append(IntegrityCheck(self.step, False, problem))
        failed = [c for c in self.checks if not c.ok and not c.skipped]
        if problem is None and failed:
            problem = f"{failed[0].name}: {failed[0].detail}"
        return DrillReport(
            id=self.manifest.id,
            ok=not failed,
            at=at,
            target=self.target.kind if self.target else "none",
            checks=self.checks,
            restore_seconds=self.restore_seconds,
            stored_bytes=self.manifest.stored_bytes,
            raw_bytes=self.manifest.raw_bytes,
            rows=sum(self.manifest.row_counts.values()),
            problem=problem,
            kept=kept,
            options=self.options,
        )

    def _restore_and_check(self, dialect: DrillDialect, target: DrillTarget) -> None:
        """Restore and check; a dialect that can checks each table while the next one loads."""
        if not isinstance(dialect, CheckingWhileRestoring):
            self._restore(target, None)
            self.checks.extend(dialect.check_integrity(target.url))
        else:
            with dialect.checking(target.url) as early:
                self._restore(target, early.loaded)
                self.checks.extend(early.checks())
        self.checks.extend(check_sql(self.driver, target.url, self.check_sql))

    def _restore(self, target: DrillTarget, table_loaded: TableLoaded | None) -> None:
        """The timed restore (its row counts compared with the manifest's), then ``step`` is ``checks``."""
        self.step = "restore"
        started = time.monotonic()
        result = self.restore(target.url, table_loaded)  # raises IntegrityError when a row count differs
        self.restore_seconds = time.monotonic() - started
        tables = len(result.row_counts)
        rows = sum(result.row_counts.values())
        counted = f"{plural(tables, 'table')}, {plural(rows, 'row')}, as the manifest records"
        self.checks.append(IntegrityCheck("row counts", True, counted))
        self.step = "checks"
