"""Maintenance of a MySQL or MariaDB database: the plan and steps behind ``dbkeeper optimize``.

Two kinds of step, for the tables of the URL's database:

- ``OPTIMIZE NO_WRITE_TO_BINLOG TABLE`` for a table whose file is mostly free space
  (more than ``free_space_ratio_max`` of it, and at least 16 MiB). On InnoDB it rebuilds
  the table (``ALTER TABLE … FORCE``) and analyses it. **Blocking**: the rebuild is
  online (reads and writes go on while the copy is made, except for tables with a
  full-text index), but it takes the table's exclusive metadata lock at its start and its
  end, waiting for every open transaction that used the table, and while it waits every
  new statement on the table queues behind it; it needs free disk space for a second copy.
- ``ANALYZE NO_WRITE_TO_BINLOG TABLE`` for a table of which at least 50 rows and 5 % have
  changed since InnoDB last computed its statistics (``MODIFIED_COUNTER`` of
  ``INNODB_SYS_TABLESTATS``; InnoDB recomputes them by itself after 10 %). It samples a
  few pages (``innodb_stats_persistent_sample_pages``) under a shared metadata lock: it
  runs beside readers and writers and waits only behind ``LOCK TABLES … WRITE`` or DDL.

``NO_WRITE_TO_BINLOG``: free space and statistics belong to each server's own files, so
the statements are not replicated; replicas would otherwise all rebuild the table at
once, in their one SQL thread, and fall behind for as long as it takes. Run ``dbkeeper
optimize`` on a replica for that replica.

Applying a step sets ``lock_wait_timeout`` (and ``innodb_lock_wait_timeout``) to the
lock timeout, whole seconds, at least 1: a step that cannot get its lock in that time is
``skipped``; no session is ever killed. Sizes are InnoDB's estimates (see
:mod:`dbkeeper_mysql.tables`); both steps recompute the statistics, so the bytes after a
step are current while the bytes before may be older.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass

from dbkeeper.plugin import (
    DatabaseError,
    HealthThresholds,
    MaintenanceRequest,
    MaintenanceStep,
    StepOutcome,
    StepStatus,
    error_line,
    note,
)
from dbkeeper_mysql.bounded import Probe, lock_seconds, open_probe
from dbkeeper_mysql.server import ServerTarget
from dbkeeper_mysql.sqltext import quote_identifier
from dbkeeper_mysql.tables import TableSize, table_sizes

LOCK_WAIT_TIMEOUT = 1205
"""``Lock wait timeout exceeded``, for metadata and row locks alike."""
PLANNING_LOCK_TIMEOUT = 1.0
"""Seconds a planning query waits for a lock (``MaintenanceRequest`` names none; steps get their own)."""
ANALYZE_MIN_ROWS = 50
ANALYZE_MIN_RATIO = 0.05
OPTIMIZE_LOCK = (
    "exclusive metadata lock at the start and the end of an online rebuild (waits for open transactions on "
    "the table; new statements on it queue meanwhile); writes blocked throughout if it has a FULLTEXT index"
)
ANALYZE_LOCK = "shared metadata lock (runs beside reads and writes; waits only behind LOCK TABLES … WRITE or DDL)"
MIB = 1 << 20


def decoded(name: str) -> str:
    """A table name from InnoDB's ``schema/table`` form: ``@0020`` back to a space, and so on."""
    return re.sub(r"@([0-9a-f]{4})", lambda match: chr(int(match[1], 16)), name)


@dataclass(frozen=True)
class Changes:
    """Rows changed since InnoDB last computed a table's statistics, out of about ``rows``."""

    changed: int
    rows: int

    def worth_analysing(self) -> bool:
        """At least :data:`ANALYZE_MIN_ROWS` rows and :data:`ANALYZE_MIN_RATIO` of the table changed."""
        return self.changed >= max(ANALYZE_MIN_ROWS, ANALYZE_MIN_RATIO * self.rows)


class MysqlMaintenance:
    """The maintenance of one database on one connection (see the module docstring)."""

    def __init__(self, probe: Probe, database: str, thresholds: HealthThresholds, statement_timeout: float) -> None:
        self.probe = probe
        self.database = database
        self.thresholds = thresholds
        self.statement_timeout = statement_timeout
        self._closing = contextlib.ExitStack()
        self._planned: dict[str, str] = {}

    @classmethod
    def open(cls, request: MaintenanceRequest) -> MysqlMaintenance:
        """Connect to the request's database (which the URL must name) with the URL's timeouts."""
        database = ServerTarget.from_url(request.url).require_database()
        with contextlib.ExitStack() as stack:
            probe = stack.enter_context(
                open_probe(
                    request.url,
                    within=None,
                    statement_timeout=request.statement_timeout,
                    lock_timeout=PLANNING_LOCK_TIMEOUT,
                )
            )
            maintenance = cls(probe, database, request.thresholds, request.statement_timeout)
            maintenance._closing = stack.pop_all()
        return maintenance

    def close(self) -> None:
        """Close the connection."""
        self._closing.close()

    def plan(self) -> list[MaintenanceStep]:
        """OPTIMIZE for tables mostly free space, else ANALYZE for tables much changed; changes nothing."""
        changes = self.changes()
        steps = []
        for size in table_sizes(self.probe, self.database):
            if size.wasteful(self.thresholds.free_space_ratio_max):
                steps.append(self.optimize_step(size))
            elif (changed := changes.get(size.name)) and changed.worth_analysing():
                steps.append(self.analyze_step(size, changed))
        self._planned = {step.object: step.object.removeprefix(f"{self.database}.") for step in steps}
        return steps

    def changes(self) -> dict[str, Changes]:
        """Rows changed per table since its statistics (empty, with a note, without ``PROCESS``)."""
        import pymysql

        view = "INNODB_SYS_TABLESTATS" if self.probe.info.flavor == "mariadb" else "INNODB_TABLESTATS"
        prefix = self.database.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        try:
            rows = self.probe.rows(
                f"SELECT NAME, MODIFIED_COUNTER, NUM_ROWS FROM information_schema.{view} WHERE NAME LIKE %s",
                (f"{prefix}/%",),
            )
        except pymysql.MySQLError as exc:
            note(f"no ANALYZE TABLE steps planned: cannot read information_schema.{view} ({error_line(exc)})")
            return {}
        found = {decoded(str(name)).partition("/"): Changes(int(changed), int(rows)) for name, changed, rows in rows}
        return {table: changes for (schema, _, table), changes in found.items() if schema == self.database}

    def step(self, size: TableSize, action: str, reason: str, lock: str, *, blocking: bool) -> MaintenanceStep:
        """A step on *size*'s table: ``ACTION NO_WRITE_TO_BINLOG TABLE `schema`.`table```."""
        table = f"{quote_identifier(size.schema)}.{quote_identifier(size.name)}"
        return MaintenanceStep(
            object=size.qualified(),
            action=action,
            reason=reason,
            sql=f"{action.upper()} NO_WRITE_TO_BINLOG TABLE {table}",
            lock=lock,
            blocking=blocking,
            bytes_before=size.total,
        )

    def optimize_step(self, size: TableSize) -> MaintenanceStep:
        """OPTIMIZE TABLE, the reason being the free space it gives back."""
        reason = (
            f"{size.free / MIB:.0f} MiB free of {size.total / MIB:.0f} MiB ({size.free_ratio:.0%}, above "
            f"{self.thresholds.free_space_ratio_max:.0%})"
        )
        return self.step(size, "optimize", reason, OPTIMIZE_LOCK, blocking=True)

    def analyze_step(self, size: TableSize, changes: Changes) -> MaintenanceStep:
        """ANALYZE TABLE, the reason being the rows changed since the statistics."""
        reason = f"{changes.changed} of about {changes.rows} rows changed since InnoDB last computed its statistics"
        return self.step(size, "analyze", reason, ANALYZE_LOCK, blocking=False)

    def apply(self, step: MaintenanceStep, lock_timeout: float) -> StepOutcome:
        """Run *step*, waiting at most *lock_timeout* for its lock; measure the table afterwards."""
        import pymysql

        table = self._planned.get(step.object)
        if table is None:
            raise DatabaseError(f"{step.object} is not in this database's plan: plan first")
        started = time.monotonic()
        try:
            self.probe.set_timeouts(0, lock_timeout)
            messages = [(str(kind), str(text)) for _, _, kind, text in self.probe.rows(step.sql)]
        except pymysql.MySQLError as exc:
            messages = [("error", error_line(exc))]
        finally:
            with contextlib.suppress(pymysql.MySQLError):
                self.probe.set_timeouts(self.statement_timeout, lock_timeout)
        status, detail = outcome(messages, lock_timeout)
        return StepOutcome(status, time.monotonic() - started, detail, self.measure(table))

    def measure(self, table: str) -> int | None:
        """The table's size now (None when it cannot be read)."""
        import pymysql

        try:
            sizes = table_sizes(self.probe, self.database, table)
        except pymysql.MySQLError:
            return None
        return sizes[0].total if sizes else None


def outcome(messages: list[tuple[str, str]], lock_timeout: float) -> tuple[StepStatus, str]:
    """The status (``done``, ``skipped``, ``failed``) and detail of a step from its ``Msg_type``/``Msg_text`` rows."""
    errors = [text for kind, text in messages if kind.lower() == "error"]
    if any("Lock wait timeout" in text for text in errors):
        return (
            "skipped",
            f"its lock was not granted within {lock_seconds(lock_timeout)} s: another session holds the table",
        )
    if errors:
        return "failed", "; ".join(errors)
    return "done", "; ".join(text for kind, text in messages if kind.lower() == "note")
