"""One scrape of a PostgreSQL database: the collectors behind ``dbkeeper_collect_metrics``.

Every collector reads the statistics views over the scrape's one connection (see
:mod:`dbkeeper_postgresql.bounded`) and is run through :class:`~dbkeeper.plugin.Collectors`,
so a missing privilege, an absent extension or a lock wait fails that collector alone.
Per-database figures are the connected database's. Only ``table_sizes`` takes locks (an
ACCESS SHARE lock per table, as ``pg_table_size`` does): behind another session's ACCESS
EXCLUSIVE lock it fails after the session's ``lock_timeout``, and the rest of the scrape
stands. Metric names follow :class:`~dbkeeper.plugin.Sample`; docs/postgresql.md lists them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from dbkeeper.plugin import (
    CollectorResult,
    Collectors,
    Deadline,
    MetricsOptions,
    MetricsRequest,
    MetricType,
    Sample,
)
from dbkeeper_postgresql.bounded import milliseconds, open_bounded, set_timeouts
from dbkeeper_postgresql.catalog import qualified

if TYPE_CHECKING:
    import psycopg

STATES = (
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
)
"""pg_stat_activity's states: each is reported, 0 when no session is in it (``unknown`` only when hidden)."""
CLIENT_SESSIONS = "(backend_type = 'client backend' OR backend_type IS NULL AND datid IS NOT NULL)"
"""SQL condition on pg_stat_activity: client sessions, including other roles' whose type is hidden from us
(their database still shows, which background processes lack)."""
USER_TABLES = (
    "c.relkind IN ('r', 'm', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname !~ '^pg_toast'"
)
"""SQL condition on ``pg_class c`` joined with ``pg_namespace n``: the relations ``pg_stat_user_tables`` lists."""
QUERY_LABEL_LENGTH = 200
"""Characters of statement text kept in the ``query`` label (only with ``query_text``)."""
REPLICATION_LAG_HELP = "How far a standby's replay is behind its primary."
"""The help of ``replication_lag``, the same on a primary (per standby) and on a standby."""


def sample(name: str, metric_type: MetricType, help: str, value: Any, unit: str = "", **labels: str) -> Sample:
    """A :class:`Sample` from a database value (int, float, Decimal or numeric text)."""
    return Sample(name=name, type=metric_type, help=help, value=float(value), unit=unit, labels=labels)


def one_line(text: str, limit: int) -> str:
    """*text* with its whitespace runs collapsed, at most *limit* characters."""
    return re.sub(r"\s+", " ", text).strip()[:limit]


class Scrape:
    """The collectors of one scrape, sharing its connection and options."""

    def __init__(self, connection: psycopg.Connection[tuple[Any, ...]], options: MetricsOptions) -> None:
        self.connection = connection
        self.options = options

    def within(
        self, deadline: Deadline, statement_timeout: float, collect: Callable[[], Iterable[Sample]]
    ) -> Callable[[], Iterable[Sample]]:
        """*collect*, first shortening the session's ``statement_timeout`` to the time the deadline leaves."""

        def bounded() -> Iterable[Sample]:
            left = deadline.remaining()
            if left < statement_timeout:
                self.connection.execute("SELECT set_config('statement_timeout', %s, false)", (milliseconds(left),))
            return collect()

        return bounded

    def rows(self, sql: str, params: Sequence[object] | None = None) -> list[tuple[Any, ...]]:
        """Every row of *sql* (with *params*, ``%`` is written ``%%``)."""
        return self.connection.execute(sql, params).fetchall()

    def collectors(self) -> list[tuple[str, Callable[[], Iterable[Sample]]]]:
        """Each collector's name and function, in the order they run."""
        return [
            ("server", self.server),
            ("activity", self.activity),
            ("database", self.database),
            ("database_size", self.database_size),
            ("tables", self.tables),
            ("table_sizes", self.table_sizes),
            ("wraparound", self.wraparound),
            ("bgwriter", self.bgwriter),
            ("replication", self.replication),
            *([("statements", self.statements)] if self.options.statements else []),
        ]

    def server(self) -> Iterable[Sample]:
        """Version, uptime and ``max_connections``."""
        ((version, uptime, maximum),) = self.rows(
            "SELECT current_setting('server_version'), extract(epoch FROM now() - pg_postmaster_start_time()), "
            "current_setting('max_connections')"
        )
        yield sample(
            "version",
            "info",
            "The server's engine and version.",
            1,
            engine="postgresql",
            version=str(version).split()[0],
        )
        yield sample("uptime", "gauge", "Time since the server started.", uptime, "seconds")
        yield sample("connections_max", "gauge", "The most connections the server accepts (max_connections).", maximum)

    def activity(self) -> Iterable[Sample]:
        """Client connections by state, the oldest transaction and query, sessions waiting on locks."""
        counts = dict.fromkeys(STATES, 0)
        for state, count in self.rows(
            f"SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity WHERE {CLIENT_SESSIONS} GROUP BY 1"
        ):
            counts[state] = count
        for state, count in counts.items():
            yield sample("connections", "gauge", "Client connections by state.", count, state=state)
        ((transaction, query, waiting),) = self.rows(
            "SELECT coalesce(max(extract(epoch FROM now() - xact_start)), 0), "
            "coalesce(max(extract(epoch FROM now() - query_start)) FILTER (WHERE state = 'active'), 0), "
            "count(*) FILTER (WHERE wait_event_type = 'Lock') "
            f"FROM pg_stat_activity WHERE {CLIENT_SESSIONS} AND pid <> pg_backend_pid()"
        )
        yield sample(
            "oldest_transaction_age",
            "gauge",
            "Age of the oldest open transaction (0 when none).",
            transaction,
            "seconds",
        )
        yield sample("oldest_query_age", "gauge", "Age of the oldest running query (0 when none).", query, "seconds")
        yield sample("lock_waiting_sessions", "gauge", "Sessions waiting for a lock now.", waiting)

    def database(self) -> Iterable[Sample]:
        """The connected database's counters from pg_stat_database."""
        ((commits, rollbacks, read, hit, *tuples, temp, deadlocks),) = self.rows(
            "SELECT xact_commit, xact_rollback, blks_read, blks_hit, tup_returned, tup_fetched, tup_inserted, "
            "tup_updated, tup_deleted, temp_bytes, deadlocks FROM pg_stat_database WHERE datname = current_database()"
        )
        for outcome, count in (("commit", commits), ("rollback", rollbacks)):
            yield sample("transactions", "counter", "Transactions ended, by outcome.", count, outcome=outcome)
        for source, count in (("disk", read), ("cache", hit)):
            yield sample(
                "postgresql_blocks",
                "counter",
                "Blocks read from disk (or the OS cache) or found in shared buffers.",
                count,
                source=source,
            )
        for operation, count in zip(("returned", "fetched", "inserted", "updated", "deleted"), tuples, strict=True):
            yield sample(
                "postgresql_tuples",
                "counter",
                "Rows returned, fetched, inserted, updated and deleted by queries.",
                count,
                operation=operation,
            )
        yield sample("postgresql_temp", "counter", "Bytes written to temporary files by queries.", temp, "bytes")
        yield sample("deadlocks", "counter", "Deadlocks detected.", deadlocks)

    def database_size(self) -> Iterable[Sample]:
        """The connected database's size on disk."""
        ((size,),) = self.rows("SELECT pg_database_size(current_database())")
        yield sample("database_size", "gauge", "Size of the database on disk.", size, "bytes")

    @functools.cached_property
    def per_table(self) -> bool:
        """Whether per-table series are wanted: at least one table and no more than ``table_limit``.

        Not counted when the limit is 0; counted in ``pg_class`` (the tables
        ``pg_stat_user_tables`` shows, without its statistics), at most ``table_limit + 1``.
        """
        limit = self.options.table_limit
        if limit <= 0:
            return False
        ((count,),) = self.rows(
            f"SELECT count(*) FROM (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE {USER_TABLES} LIMIT %s) t",
            (limit + 1,),
        )
        return bool(0 < count <= limit)

    def tables(self) -> Iterable[Sample]:
        """Per table: scans, live and dead rows, ages of the last (auto)vacuum and (auto)analyze."""
        if not self.per_table:
            return
        for schema, name, seq_scan, idx_scan, live, dead, *ages in self.rows(
            "SELECT schemaname, relname, seq_scan, idx_scan, n_live_tup, n_dead_tup, "
            "extract(epoch FROM now() - last_vacuum), extract(epoch FROM now() - last_autovacuum), "
            "extract(epoch FROM now() - last_analyze), extract(epoch FROM now() - last_autoanalyze) "
            "FROM pg_stat_user_tables"
        ):
            table = qualified(schema, name)
            yield from table_samples(table, seq_scan, idx_scan, live, dead, ages)

    def table_sizes(self) -> Iterable[Sample]:
        """Per table: bytes of data (with TOAST) and of indexes; waits for a lock at most ``lock_timeout``."""
        if not self.per_table:
            return
        for schema, name, data, indexes in self.rows(
            "SELECT schemaname, relname, pg_table_size(relid), pg_indexes_size(relid) FROM pg_stat_user_tables"
        ):
            for kind, size in (("data", data), ("index", indexes)):
                yield sample(
                    "table_size",
                    "gauge",
                    "Bytes a table takes, by kind.",
                    size,
                    "bytes",
                    table=qualified(schema, name),
                    kind=kind,
                )

    def wraparound(self) -> Iterable[Sample]:
        """Every database's transaction-ID age (``age(datfrozenxid)``)."""
        for database, age in self.rows("SELECT datname, age(datfrozenxid) FROM pg_database"):
            yield sample(
                "postgresql_transaction_id_age",
                "gauge",
                "Transactions since the database's oldest unfrozen ID; wraparound comes at 2^31.",
                age,
                database=database,
            )

    def bgwriter(self) -> Iterable[Sample]:
        """Checkpoints and buffer writes from pg_stat_bgwriter."""
        ((timed, requested, write_ms, sync_ms, checkpointer, cleaner, maxwritten, backend, fsync, alloc),) = self.rows(
            "SELECT checkpoints_timed, checkpoints_req, checkpoint_write_time, checkpoint_sync_time, "
            "buffers_checkpoint, buffers_clean, maxwritten_clean, buffers_backend, buffers_backend_fsync, "
            "buffers_alloc FROM pg_stat_bgwriter"
        )
        for trigger, count in (("timed", timed), ("requested", requested)):
            yield sample(
                "postgresql_checkpoints", "counter", "Checkpoints, by what started them.", count, trigger=trigger
            )
        for phase, ms in (("write", write_ms), ("sync", sync_ms)):
            yield sample(
                "postgresql_checkpoint_time",
                "counter",
                "Time checkpoints spent writing and syncing files.",
                float(ms) / 1000,
                "seconds",
                phase=phase,
            )
        for writer, count in (("checkpointer", checkpointer), ("bgwriter", cleaner), ("backend", backend)):
            yield sample(
                "postgresql_buffers_written",
                "counter",
                "Shared buffers written, by who wrote them.",
                count,
                writer=writer,
            )
        yield sample(
            "postgresql_bgwriter_maxwritten_clean",
            "counter",
            "Times the background writer stopped because it had written too many buffers.",
            maxwritten,
        )
        yield sample("postgresql_buffers_backend_fsync", "counter", "Times a backend had to fsync itself.", fsync)
        yield sample("postgresql_buffers_allocated", "counter", "Shared buffers allocated.", alloc)

    def replication(self) -> Iterable[Sample]:
        """Whether the server is a standby, and replication lag (per standby on a primary)."""
        ((standby,),) = self.rows("SELECT pg_is_in_recovery()")
        yield sample("postgresql_in_recovery", "gauge", "1 on a standby (in recovery), 0 on a primary.", int(standby))
        yield from (self.standby_lag() if standby else self.standbys_lag())

    def standby_lag(self) -> Iterable[Sample]:
        """On a standby: time since the last replayed transaction, 0 when all WAL received is replayed."""
        ((lag,),) = self.rows(
            "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
            "ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END"
        )
        if lag is not None:
            yield sample("replication_lag", "gauge", REPLICATION_LAG_HELP, lag, "seconds")

    def standbys_lag(self) -> Iterable[Sample]:
        """On a primary: each connected standby's replay lag in seconds and bytes."""
        seen: set[str] = set()
        for name, pid, seconds, behind in self.rows(
            "SELECT application_name, pid, extract(epoch FROM replay_lag), "
            "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication ORDER BY pid"
        ):
            standby = name if name not in seen else f"{name} (pid {pid})"
            seen.add(standby)
            if behind is None:  # hidden without pg_read_all_stats
                continue
            if seconds is not None or behind == 0:
                yield sample("replication_lag", "gauge", REPLICATION_LAG_HELP, seconds or 0, "seconds", standby=standby)
            yield sample(
                "postgresql_replication_lag",
                "gauge",
                "WAL bytes a standby has yet to replay.",
                behind,
                "bytes",
                standby=standby,
            )

    def statements(self) -> Iterable[Sample]:
        """The top ``statements_limit`` statements of this database by total time (pg_stat_statements)."""
        found = self.rows(
            "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_stat_statements'"
        )
        if not found:
            raise LookupError(
                "pg_stat_statements is not installed in this database: add it to shared_preload_libraries "
                "and run CREATE EXTENSION pg_stat_statements, or turn [monitoring] statements off"
            )
        text = self.options.query_text
        for queryid, query, calls, total_ms, rows in self.rows(
            f"SELECT queryid, query, calls, total_exec_time, rows FROM {found[0][0]}.pg_stat_statements(%s) "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND queryid IS NOT NULL "
            "ORDER BY total_exec_time DESC LIMIT %s",
            (text, self.options.statements_limit),
        ):
            labels = {"queryid": str(queryid), **({"query": one_line(query or "", QUERY_LABEL_LENGTH)} if text else {})}
            yield sample("postgresql_statement_calls", "counter", "Times a statement ran.", calls, **labels)
            yield sample(
                "postgresql_statement_time",
                "counter",
                "Time a statement spent executing.",
                float(total_ms) / 1000,
                "seconds",
                **labels,
            )
            yield sample(
                "postgresql_statement_rows", "counter", "Rows a statement returned or changed.", rows, **labels
            )


def table_samples(
    table: str, seq_scan: int, idx_scan: int | None, live: int, dead: int, ages: Sequence[object]
) -> Iterable[Sample]:
    """One table's statistics as samples; a scan kind or an age the table lacks is omitted."""
    for method, count in (("sequential", seq_scan), ("index", idx_scan)):
        if count is not None:
            yield sample(
                "postgresql_table_scans", "counter", "Scans of a table, by method.", count, table=table, method=method
            )
    for state, count in (("live", live), ("dead", dead)):
        yield sample(
            "postgresql_table_tuples",
            "gauge",
            "Estimated live and dead rows of a table.",
            count,
            table=table,
            state=state,
        )
    for (what, kind), age in zip(
        (("vacuum", "manual"), ("vacuum", "auto"), ("analyze", "manual"), ("analyze", "auto")), ages, strict=True
    ):
        if age is not None:
            yield sample(
                f"postgresql_table_last_{what}_age",
                "gauge",
                f"Time since a table's last {what}, by kind.",
                age,
                "seconds",
                table=table,
                kind=kind,
            )


def collect(request: MetricsRequest) -> list[CollectorResult]:
    """One scrape of ``request.url`` on one bounded connection; DatabaseError when it cannot connect.

    With ``request.keeper`` the connection is the one the previous scrape kept (see
    :func:`scrape_connection`), and is kept again afterwards unless it broke.
    """
    connection = scrape_connection(request)
    try:
        scrape = Scrape(connection, request.options)
        collectors = Collectors(request.deadline)
        for name, function in scrape.collectors():
            collectors.run(name, scrape.within(request.deadline, request.statement_timeout, function))
        return collectors.results()
    finally:
        if request.keeper is not None and not (connection.closed or connection.broken):
            request.keeper.keep(connection)
        else:
            connection.close()


def scrape_connection(request: MetricsRequest) -> psycopg.Connection[tuple[Any, ...]]:
    """The connection the keeper kept, its timeouts set afresh, or else a new bounded one.

    A kept connection that no longer answers (the server restarted, the session was
    terminated) is closed and a new one is opened, once, within the deadline. One meant to
    be kept gives up after the deadline's length without an acknowledgement from the
    server (``tcp_user_timeout``): a peer gone silently (a dropped NAT entry) fails one
    scrape instead of holding the database's turn for the minutes TCP retransmits.
    """
    import psycopg

    statement_timeout = min(request.statement_timeout, request.deadline.remaining())
    kept = request.keeper.take(psycopg.Connection) if request.keeper is not None else None
    if kept is not None:
        try:
            set_timeouts(kept, statement_timeout, request.lock_timeout)
        except psycopg.Error:
            kept.close()
        else:
            return kept
    return open_bounded(
        request.url,
        "metrics",
        within=request.deadline.remaining(),
        statement_timeout=statement_timeout,
        lock_timeout=request.lock_timeout,
        unacknowledged=request.deadline.seconds if request.keeper is not None else None,
    )
