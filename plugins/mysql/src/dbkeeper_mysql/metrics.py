"""One scrape of a MySQL or MariaDB server: the collectors behind ``dbkeeper_collect_metrics``.

Every collector reads over the scrape's one connection (see :mod:`dbkeeper_mysql.bounded`)
and runs through :class:`~dbkeeper.plugin.Collectors`, so a missing privilege fails that
collector alone: ``activity`` needs ``PROCESS``, ``replication`` needs ``SLAVE MONITOR``
(MariaDB) or ``REPLICATION CLIENT`` (MySQL); the ``SHOW GLOBAL STATUS`` ones need nothing.
Counters are the server's own, raw (since it started). Metric names follow
:class:`~dbkeeper.plugin.Sample`; docs/mysql.md lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from dbkeeper.plugin import CollectorResult, Collectors, MetricsOptions, MetricsRequest, MetricType, Sample
from dbkeeper_mysql import activity, tables
from dbkeeper_mysql.bounded import Probe, connect_probe

STATEMENTS = ("select", "insert", "update", "delete")
"""The ``Com_*`` statement counters exported by ``mysql_statements{command}``."""
PARSE_ERROR = 1064
"""``You have an error in your SQL syntax``: a server older than ``SHOW REPLICA STATUS``."""


@dataclass(frozen=True)
class StatusMetric:
    """A metric read from one ``SHOW GLOBAL STATUS`` variable, divided by ``divisor`` (milliseconds to seconds)."""

    name: str
    kind: MetricType
    variable: str
    help: str
    unit: str = ""
    divisor: float = 1.0


CONNECTION_STATUS = (
    StatusMetric("mysql_aborted_connects", "counter", "Aborted_connects", "Connection attempts that failed."),
)
STATEMENT_STATUS = (
    StatusMetric("mysql_questions", "counter", "Questions", "Statements sent by clients (Questions)."),
    StatusMetric("mysql_slow_queries", "counter", "Slow_queries", "Statements that took longer than long_query_time."),
)
INNODB_STATUS = (
    StatusMetric("mysql_innodb_buffer_pool_reads", "counter", "Innodb_buffer_pool_reads",
                 "Page reads the buffer pool could not satisfy (from disk)."),
    StatusMetric("mysql_innodb_buffer_pool_read_requests", "counter", "Innodb_buffer_pool_read_requests",
                 "Page reads asked of the buffer pool."),
    StatusMetric("mysql_innodb_buffer_pool_dirty_pages", "gauge", "Innodb_buffer_pool_pages_dirty",
                 "Buffer pool pages changed but not yet written."),
    StatusMetric("mysql_innodb_buffer_pool_pages", "gauge", "Innodb_buffer_pool_pages_total",
                 "Pages of the buffer pool."),
    StatusMetric("mysql_innodb_row_lock_waits", "counter", "Innodb_row_lock_waits",
                 "Times a row lock had to be waited for."),
    StatusMetric("mysql_innodb_row_lock_time", "counter", "Innodb_row_lock_time", "Time spent waiting for row locks.",
                 "seconds", 1000),
    StatusMetric("deadlocks", "counter", "Innodb_deadlocks", "Deadlocks detected (InnoDB)."),
)  # fmt: skip
"""Each collector's status metrics; one whose variable the server lacks is left out (MySQL has no Innodb_deadlocks)."""


def sample(name: str, kind: MetricType, help: str, value: Any, unit: str = "", /, **labels: str) -> Sample:
    """A :class:`Sample` from a server value (int, float, Decimal or numeric text)."""
    return Sample(name=name, type=kind, help=help, value=float(value), unit=unit, labels=labels)


def collect(request: MetricsRequest) -> list[CollectorResult]:
    """Scrape ``request.url`` once on one bounded connection; raises DatabaseError when it cannot connect.

    With ``request.keeper`` the connection is the one the previous scrape kept (see
    :func:`scrape_probe`), and is kept again afterwards unless it broke.
    """
    deadline = request.deadline
    probe = scrape_probe(request)
    try:
        scrape = Scrape(probe, request.options)
        collectors = Collectors(deadline)
        for name, collector in scrape.collectors():
            collectors.run(name, scrape.within(deadline.remaining, request.statement_timeout, collector))
        return collectors.results()
    finally:
        if request.keeper is not None and probe.connection.open:
            request.keeper.keep(probe)
        else:
            probe.close()


def scrape_probe(request: MetricsRequest) -> Probe:
    """The probe the keeper kept, renewed (status unread, timeouts set again), or else a new bounded one.

    A kept connection that no longer answers (the server restarted, the session was
    killed) is closed and a new one is opened, once, within the deadline. A kept
    connection keeps the read timeout it was opened with (the deadline's length).
    """
    import pymysql

    kept = request.keeper.take(Probe) if request.keeper is not None else None
    if kept is not None:
        try:
            kept.renew(request.statement_timeout, request.lock_timeout)
        except pymysql.MySQLError:
            kept.close()
        else:
            return kept
    return connect_probe(
        request.url,
        within=request.deadline.remaining(),
        statement_timeout=request.statement_timeout,
        lock_timeout=request.lock_timeout,
    )


class Scrape:
    """The collectors of one scrape, sharing its connection, its ``SHOW GLOBAL STATUS`` and options."""

    def __init__(self, probe: Probe, options: MetricsOptions) -> None:
        self.probe = probe
        self.options = options

    def within(
        self, remaining: Callable[[], float], statement_timeout: float, collect: Callable[[], Iterable[Sample]]
    ) -> Callable[[], Iterable[Sample]]:
        """*collect*, first shortening the session's statement timeout to the time the deadline leaves."""

        def bounded() -> Iterable[Sample]:
            left = remaining()
            if 0 < left < statement_timeout:
                self.probe.set_timeouts(left, self.probe.lock_timeout)
            return collect()

        return bounded

    def collectors(self) -> list[tuple[str, Callable[[], Iterable[Sample]]]]:
        """Each collector's name and function, in the order they run."""
        return [
            ("server", self.server),
            ("connections", self.connections),
            ("statements", self.statements),
            ("innodb", self.innodb),
            ("activity", self.activity),
            ("tables", self.tables),
            ("replication", self.replication),
        ]

    def counters(self, pairs: Iterable[tuple[str, str]]) -> Iterator[tuple[str, float]]:
        """``(label, value)`` for each ``(label, status variable)`` this server has."""
        for label, variable in pairs:
            value = self.probe.counter(variable)
            if value is not None:
                yield label, value

    def status_samples(self, metrics: Iterable[StatusMetric]) -> Iterator[Sample]:
        """A sample of each of *metrics* whose status variable this server has."""
        for metric in metrics:
            value = self.probe.counter(metric.variable)
            if value is not None:
                yield sample(metric.name, metric.kind, metric.help, value / metric.divisor, metric.unit)

    def server(self) -> Iterable[Sample]:
        """Version and uptime."""
        info = self.probe.info
        yield sample("version", "info", "The server's engine and version.", 1, engine=info.flavor, version=info.version)
        yield sample("uptime", "gauge", "Time since the server started.", self.probe.counter("Uptime"), "seconds")

    def connections(self) -> Iterable[Sample]:
        """Connected threads by state (running a statement or idle), ``max_connections``, aborted connects."""
        running = self.probe.counter("Threads_running") or 0
        connected = self.probe.counter("Threads_connected") or 0
        for state, count in (("running", running), ("idle", connected - running)):
            yield sample(
                "connections", "gauge", "Client connections by state (the scrape's own is running).", count, state=state
            )
        yield sample(
            "connections_max",
            "gauge",
            "The most connections the server accepts (max_connections).",
            self.probe.variable("max_connections"),
        )
        yield from self.status_samples(CONNECTION_STATUS)

    def statements(self) -> Iterable[Sample]:
        """Questions, slow queries, statements by command, transactions by outcome."""
        yield from self.status_samples(STATEMENT_STATUS)
        for command, count in self.counters((name, f"Com_{name}") for name in STATEMENTS):
            yield sample(
                "mysql_statements", "counter", "Statements run, by command (Com_select …).", count, command=command
            )
        for outcome, count in self.counters((("commit", "Com_commit"), ("rollback", "Com_rollback"))):
            yield sample(
                "transactions",
                "counter",
                "COMMIT and ROLLBACK statements (autocommit statements are not counted).",
                count,
                outcome=outcome,
            )

    def innodb(self) -> Iterable[Sample]:
        """Buffer pool reads and dirty pages, row-lock waits and their time, deadlocks."""
        yield from self.status_samples(INNODB_STATUS)

    def activity(self) -> Iterable[Sample]:
        """The oldest transaction and running query, sessions waiting for a lock (needs ``PROCESS``)."""
        threads = activity.threads(self.probe)
        transactions = [t.transaction_seconds for t in threads if t.transaction_seconds is not None]
        queries = [t.seconds for t in threads if t.running]
        yield sample(
            "oldest_transaction_age",
            "gauge",
            "Age of the oldest open InnoDB transaction (0 when none).",
            max(transactions, default=0),
            "seconds",
        )
        yield sample(
            "oldest_query_age",
            "gauge",
            "Age of the oldest running statement (0 when none).",
            max(queries, default=0),
            "seconds",
        )
        yield sample(
            "lock_waiting_sessions", "gauge", "Sessions waiting for a lock now.", sum(1 for t in threads if t.wait)
        )

    def tables(self) -> Iterable[Sample]:
        """The database's size; per table data, index and free bytes when it has at most ``table_limit`` tables."""
        database = self.probe.database
        if not database:
            return
        limit = self.options.table_limit
        if limit <= 0 or tables.table_count(self.probe, database) > limit:
            yield self.database_size(tables.database_size(self.probe, database))
            return
        sizes = tables.table_sizes(self.probe, database)
        yield self.database_size(sum(size.data + size.index for size in sizes))
        for size in sizes:
            for kind, value in (("data", size.data), ("index", size.index), ("free", size.free)):
                yield sample(
                    "table_size",
                    "gauge",
                    "Bytes of a table's data, indexes and free space (InnoDB's estimates).",
                    value,
                    "bytes",
                    table=size.name,
                    kind=kind,
                )

    @staticmethod
    def database_size(size: int) -> Sample:
        """The ``database_size`` sample."""
        return sample(
            "database_size", "gauge", "Bytes of the database's data and indexes (InnoDB's estimates).", size, "bytes"
        )

    def replication(self) -> Iterable[Sample]:
        """Replication lag and the replica's threads, where this server is a replica."""
        for row in replica_status(self.probe)[:1]:  # the default connection (MariaDB) or first channel (MySQL)
            for thread in ("IO", "SQL"):
                running = row.get(f"Replica_{thread}_Running", row.get(f"Slave_{thread}_Running"))
                yield sample(
                    "mysql_replica_running",
                    "gauge",
                    "Whether the replica's IO and SQL threads run (1) or not (0).",
                    running == "Yes",
                    thread=thread.lower(),
                )
            lag = row.get("Seconds_Behind_Source", row.get("Seconds_Behind_Master"))
            if lag is not None:
                yield sample("replication_lag", "gauge", "How far the replica is behind its source.", lag, "seconds")


def replica_status(probe: Probe) -> list[dict[str, Any]]:
    """``SHOW REPLICA STATUS`` (``SHOW SLAVE STATUS`` on older servers): empty when this server is no replica."""
    import pymysql

    try:
        return probe.named_rows("SHOW REPLICA STATUS")
    except pymysql.MySQLError as exc:
        if exc.args and exc.args[0] == PARSE_ERROR:
            return probe.named_rows("SHOW SLAVE STATUS")
        raise
