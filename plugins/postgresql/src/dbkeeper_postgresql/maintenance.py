"""PostgreSQL maintenance behind ``dbkeeper optimize``: a measured plan, then steps applied one by one.

The plan (nothing changed) has, per table or index:

- ``VACUUM (ANALYZE)`` for tables whose dead rows exceed the ``[health]`` limits
  (``dead_tuple_min_rows`` and ``dead_tuple_ratio_max``): SHARE UPDATE EXCLUSIVE, so reads
  and writes go on;
- ``VACUUM FULL`` as well when at least :data:`HEAVY_BLOAT_RATIO` of a table's rows are dead:
  it rewrites the table and gives the space back to the system, under ACCESS EXCLUSIVE
  (blocking: run only with ``--allow-blocking``);
- ``ANALYZE`` for tables holding rows without planner statistics (SHARE UPDATE EXCLUSIVE);
- ``REINDEX INDEX CONCURRENTLY`` for invalid indexes (SHARE UPDATE EXCLUSIVE), except the
  ``_ccnew``/``_ccold`` leftovers of an interrupted concurrent reindex, which only
  ``DROP INDEX CONCURRENTLY`` clears.

Every step runs in autocommit (``VACUUM`` and ``REINDEX CONCURRENTLY`` cannot run in a
transaction) with the session's ``lock_timeout`` set to the step's lock timeout and no
statement timeout: a step whose lock is not granted in time fails with SQLSTATE 55P03 and
is reported ``skipped``; no other session is ever cancelled or terminated. Sizes are
``pg_total_relation_size`` before and after.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dbkeeper.plugin import MaintenanceRequest, MaintenanceStep, StepOutcome, error_line
from dbkeeper_postgresql.bounded import open_bounded, set_timeouts

if TYPE_CHECKING:
    import psycopg

HEAVY_BLOAT_RATIO = 0.5
"""Share of dead rows from which a table is also planned for ``VACUUM FULL``."""
CONNECT_WITHIN = 10.0
"""Seconds allowed to connect (libpq's ``connect_timeout``) when the URL sets none lower."""
NON_BLOCKING_LOCK = "SHARE UPDATE EXCLUSIVE"

BLOATED_TABLES = """
SELECT format('%%I.%%I', schemaname, relname), n_dead_tup, n_live_tup,
       n_dead_tup::float8 / (n_live_tup + n_dead_tup)
FROM pg_stat_user_tables
WHERE n_dead_tup >= %s AND n_dead_tup::float8 / (n_live_tup + n_dead_tup) > %s
ORDER BY 1
"""
UNANALYZED_TABLES = """
SELECT format('%I.%I', t.schemaname, t.relname), t.n_live_tup FROM pg_stat_user_tables t
WHERE t.last_analyze IS NULL AND t.last_autoanalyze IS NULL AND (t.n_live_tup > 0 OR t.n_mod_since_analyze > 0)
  AND NOT EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = t.schemaname AND s.tablename = t.relname)
ORDER BY 1
"""
INVALID_INDEXES = r"""
SELECT format('%I.%I', n.nspname, c.relname), format('%I.%I', tn.nspname, t.relname)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE NOT i.indisvalid AND c.relname !~ '_cc(new|old)\d*$' AND n.nspname !~ '^pg_'
ORDER BY 1
"""


@dataclass
class PostgresMaintenance:
    """The maintenance of one database over one autocommit connection (see the module's docstring)."""

    connection: psycopg.Connection[tuple[Any, ...]]
    request: MaintenanceRequest

    @classmethod
    def open(cls, request: MaintenanceRequest) -> PostgresMaintenance:
        """Connect (bounded) for planning; DatabaseError when the server cannot be reached."""
        connection = open_bounded(
            request.url,
            "optimize",
            within=CONNECT_WITHIN,
            statement_timeout=request.statement_timeout,
            lock_timeout=request.statement_timeout,
        )
        return cls(connection, request)

    def rows(self, sql: str, params: tuple[object, ...] | None = None) -> list[tuple[Any, ...]]:
        """Every row of *sql* (with *params*, ``%`` is written ``%%``)."""
        return self.connection.execute(sql, params).fetchall()

    def plan(self) -> list[MaintenanceStep]:
        """The steps worth running now, measured; changes nothing."""
        vacuums = self.vacuums()
        vacuumed = {step.object for step in vacuums}
        analyzes = [step for step in self.analyzes() if step.object not in vacuumed]  # VACUUM (ANALYZE) does it
        return [*vacuums, *analyzes, *self.reindexes()]

    def vacuums(self) -> list[MaintenanceStep]:
        """``VACUUM (ANALYZE)`` per bloated table, and ``VACUUM FULL`` per heavily bloated one."""
        limits = self.request.thresholds
        steps = []
        for table, dead, live, ratio in self.rows(
            BLOATED_TABLES, (limits.dead_tuple_min_rows, limits.dead_tuple_ratio_max)
        ):
            reason = f"{dead} dead of {dead + live} rows ({ratio:.2f}, limit {limits.dead_tuple_ratio_max:g})"
            size = self.size(table)
            steps.append(
                MaintenanceStep(table, "vacuum", reason, f"VACUUM (ANALYZE) {table}", NON_BLOCKING_LOCK, False, size)
            )
            if ratio >= HEAVY_BLOAT_RATIO:
                steps.append(
                    MaintenanceStep(
                        table,
                        "vacuum full",
                        f"{reason}: heavy bloat, the space goes back to the system only by rewriting the table",
                        f"VACUUM (FULL, ANALYZE) {table}",
                        "ACCESS EXCLUSIVE",
                        True,
                        size,
                    )
                )
        return steps

    def analyzes(self) -> list[MaintenanceStep]:
        """``ANALYZE`` per table holding rows without planner statistics."""
        return [
            MaintenanceStep(
                table,
                "analyze",
                f"about {rows} rows and no planner statistics",
                f"ANALYZE {table}",
                NON_BLOCKING_LOCK,
                False,
                self.size(table),
            )
            for table, rows in self.rows(UNANALYZED_TABLES)
        ]

    def reindexes(self) -> list[MaintenanceStep]:
        """``REINDEX INDEX CONCURRENTLY`` per invalid index."""
        return [
            MaintenanceStep(
                index,
                "reindex",
                f"invalid index on {table} (a failed concurrent build): unused by "
                "queries, yet maintained on every write",
                f"REINDEX INDEX CONCURRENTLY {index}",
                NON_BLOCKING_LOCK,
                False,
                self.size(index),
            )
            for index, table in self.rows(INVALID_INDEXES)
        ]

    def size(self, relation: str) -> int | None:
        """``pg_total_relation_size`` of *relation*; None when it cannot be had now (a lock, a timeout)."""
        import psycopg

        try:
            ((size,),) = self.rows("SELECT pg_total_relation_size(%s::regclass)", (relation,))
        except psycopg.Error:
            return None
        return int(size)

    def apply(self, step: MaintenanceStep, lock_timeout: float) -> StepOutcome:
        """Run *step*'s SQL, waiting at most *lock_timeout* s for its lock (else ``skipped``)."""
        import psycopg

        started = time.monotonic()
        try:
            set_timeouts(self.connection, None, lock_timeout)
            self.connection.execute(step.sql)  # SQL the plan built, identifiers quoted
        except psycopg.errors.LockNotAvailable:
            return StepOutcome(
                "skipped",
                time.monotonic() - started,
                f"the {step.lock} lock was not granted within {lock_timeout:g} s: another session holds a "
                "conflicting lock; no session was interrupted",
            )
        except psycopg.Error as exc:
            return StepOutcome("failed", time.monotonic() - started, error_line(exc))
        finally:
            self.restore_timeouts()
        return StepOutcome("done", time.monotonic() - started, bytes_after=self.size(step.object))

    def restore_timeouts(self) -> None:
        """Back to the planning timeouts (sizes measured after a step wait no longer than planning does)."""
        import psycopg

        with contextlib.suppress(psycopg.Error):  # the connection broke: the next statement says so
            set_timeouts(self.connection, self.request.statement_timeout, self.request.statement_timeout)

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()
