"""The restore's row counts, off the load's path: each staging table is counted while the next one loads.

A restore worker hands each table it has loaded to :meth:`RowCounter.loaded` and goes on
to the next table; :meth:`RowCounter.drain`, a task of the same
:class:`~dbkeeper.plugin.WorkerPool`, counts it on a connection of its own, compares the
count with the manifest and then reports the table (``RestoreRequest.table_loaded``: a
drill checks it there). The first counter starts with the loads; with ``--jobs N`` the
pool runs N-1 more after the loads, on the threads the loads leave free, so that the
tables finishing last are counted N at a time as before. A counter opens its connection
when it takes its first table. A count that fails or differs from the manifest stops the
pool (the loads still running are cancelled) and is raised, before the target is touched.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Mapping, Sequence

from dbkeeper.plugin import IntegrityError, WorkerPool
from dbkeeper_mysql.catalog import q, query
from dbkeeper_mysql.server import MAX_TIMEOUT, ServerTarget, admin_connection
from dbkeeper_mysql.sqltext import shown


class RowCounter:
    """Counts *tables* of *staging* as they are loaded; see the module docstring."""

    def __init__(
        self,
        target: ServerTarget,
        staging: str,
        tables: Sequence[str],
        expected: Mapping[str, int],
        table_loaded: Callable[[str, str], None] | None,
    ) -> None:
        self.target = target
        self.staging = staging
        self.expected = expected
        self.table_loaded = table_loaded
        self.counts: dict[str, int] = {}
        """Rows per table counted so far."""
        self._untaken = len(tables)
        self._loaded: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._lock = threading.Lock()

    def loaded(self, table: str) -> None:
        """*table* is loaded in staging: a counter counts it (called by the loading workers)."""
        self._loaded.put(table)

    def drain(self, pool: WorkerPool) -> None:
        """Count loaded tables on a connection of its own until every table is taken (or *pool* stopped)."""
        with pool.stoppable(lambda: self._loaded.put(None)), contextlib.ExitStack() as stack:
            conn = None
            while not pool.stopped.is_set() and (table := self._take()) is not None:
                if conn is None:
                    conn = stack.enter_context(admin_connection(self.target))
                    query(conn, f"SET SESSION wait_timeout = {MAX_TIMEOUT}")  # idle while tables load
                ((rows,),) = query(conn, f"SELECT COUNT(*) FROM {q(self.staging)}.{q(table)}")
                self._check(table, int(rows))

    def _take(self) -> str | None:
        """The next loaded table, waiting for it; None when every table was taken or the work stopped."""
        with self._lock:
            if not self._untaken:
                return None
            self._untaken -= 1
        return self._loaded.get()

    def _check(self, table: str, rows: int) -> None:
        expected = self.expected.get(table)
        if expected is not None and rows != expected:
            raise IntegrityError(
                f"table {shown(table)} loaded {rows} rows, the backup records {expected}; the target was not touched"
            )
        self.counts[table] = rows
        if self.table_loaded is not None:  # a drill checks it while the next table loads
            self.table_loaded(self.staging, table)
