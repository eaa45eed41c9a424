"""Health checks of a MySQL or MariaDB server: the checks behind ``dbkeeper_check_health``.

Each check reads over one bounded connection (see :mod:`dbkeeper_mysql.bounded`) and is
judged against :class:`~dbkeeper.plugin.HealthThresholds`. A check the server refuses
(a missing privilege: ``PROCESS`` for the session checks, ``SLAVE MONITOR`` or
``REPLICATION CLIENT`` for the replica's) or cannot answer in time is ``skipped`` with
the server's reason as its figure. Table checks cover the URL's database (every
non-system database when the URL names none). Nothing is changed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dbkeeper.plugin import HealthCheck, HealthRequest, HealthThresholds, error_line, judge
from dbkeeper_mysql import activity, indexes, tables
from dbkeeper_mysql.activity import Thread
from dbkeeper_mysql.bounded import Probe, open_probe
from dbkeeper_mysql.metrics import replica_status

MIN_READ_REQUESTS = 1_000_000
"""Fewer buffer pool read requests than this since the server started are too few to judge a hit ratio:
a server that just started reads its working set from disk once (a busy server asks a million in seconds)."""

TITLES = {
    "cache_hit_ratio": "InnoDB buffer pool hit ratio",
    "connections": "Connections near the maximum",
    "long_queries": "Long-running queries",
    "long_transactions": "Long transactions",
    "idle_in_transaction": "Sessions idle in a transaction",
    "blocked_sessions": "Sessions waiting for a lock",
    "duplicate_indexes": "Duplicate indexes",
    "free_space": "Tables with much free space",
    "missing_primary_keys": "Tables without a primary key",
    "replication_lag": "Replica lag",
}
"""Each check's title by its stable name (PostgreSQL's name where the checks match)."""
Check = Callable[[], HealthCheck | None]
"""A check: its verdict, or None when it does not apply to this server (no replica)."""


def check(request: HealthRequest) -> list[HealthCheck]:
    """Every check's verdict, on one connection bounded by ``request.deadline``."""
    with open_probe(
        request.url,
        within=request.deadline.remaining(),
        statement_timeout=request.statement_timeout,
        lock_timeout=request.lock_timeout,
    ) as probe:
        checks = HealthChecks(probe, request.thresholds).checks()
        return [verdict for name, run in checks.items() if (verdict := checked(name, run)) is not None]


def checked(name: str, run: Check) -> HealthCheck | None:
    """*run*'s verdict, or ``skipped`` with the server's reason when the server refused or failed."""
    import pymysql

    try:
        return run()
    except pymysql.MySQLError as exc:
        return HealthCheck(name, TITLES[name], "skipped", f"cannot tell: {error_line(exc)}")


def seconds(value: float) -> str:
    """*value* seconds, for a figure."""
    return f"{value:g} s"


@dataclass(frozen=True)
class SessionCheck:
    """A check of sessions: which ones to pick, the figure to judge them by, what to tell."""

    name: str
    picks: Callable[[Thread], bool]
    measure: Callable[[Thread], float]
    limit: float
    advice: str

    def judge(self, threads: list[Thread]) -> HealthCheck:
        """Fail when a picked session's measure is above the limit; name every such session."""
        picked = [thread for thread in threads if self.picks(thread)]
        over = sorted((t for t in picked if self.measure(t) > self.limit), key=self.measure, reverse=True)
        longest = max((self.measure(t) for t in picked), default=0.0)
        return judge(
            self.name,
            TITLES[self.name],
            longest,
            self.limit,
            figure=f"longest {seconds(longest)}, {len(over)} over the limit",
            advice=self.advice,
            findings=(f"{t.describe()}: {seconds(self.measure(t))}: {t.query or t.state or t.command}" for t in over),
        )


class HealthChecks:
    """The checks of one server, sharing its connection and the process list read once."""

    def __init__(self, probe: Probe, thresholds: HealthThresholds) -> None:
        self.probe = probe
        self.limits = thresholds

    @functools.cached_property
    def threads(self) -> list[Thread]:
        """The other sessions (needs ``PROCESS``; a failure fails each session check)."""
        return activity.threads(self.probe)

    def checks(self) -> dict[str, Check]:
        """Each check's function by name, in the order they run."""
        return {
            "cache_hit_ratio": self.cache_hit_ratio,
            "connections": self.connections,
            **{check.name: functools.partial(self.sessions, check) for check in self.session_checks()},
            "blocked_sessions": self.blocked_sessions,
            "duplicate_indexes": self.duplicate_indexes,
            "free_space": self.free_space,
            "missing_primary_keys": self.missing_primary_keys,
            "replication_lag": self.replication_lag,
        }

    def session_checks(self) -> Iterable[SessionCheck]:
        """Long-running queries, long transactions, sessions idle in a transaction."""
        limits = self.limits
        yield SessionCheck(
            "long_queries",
            lambda t: t.running,
            lambda t: t.seconds,
            limits.long_query_seconds,
            "Look at these statements (EXPLAIN them, add the index they lack); KILL QUERY ID stops one.",
        )
        yield SessionCheck(
            "long_transactions",
            lambda t: t.transaction_seconds is not None,
            lambda t: t.transaction_seconds or 0.0,
            limits.long_transaction_seconds,
            "Commit or roll back sooner: an open transaction holds its row locks and holds back InnoDB's purge "
            "(the history list grows).",
        )
        yield SessionCheck(
            "idle_in_transaction",
            lambda t: t.idle_in_transaction,
            lambda t: t.seconds,
            limits.idle_in_transaction_seconds,
            "The application opened a transaction and stopped talking: fix it to commit or roll back; its locks "
            "block others meanwhile.",
        )

    def sessions(self, session_check: SessionCheck) -> HealthCheck:
        """*session_check* judged on the process list."""
        return session_check.judge(self.threads)

    def cache_hit_ratio(self) -> HealthCheck:
        """The share of page reads served by the buffer pool since the server started."""
        reads = self.probe.counter("Innodb_buffer_pool_reads") or 0
        requests = self.probe.counter("Innodb_buffer_pool_read_requests") or 0
        title = TITLES["cache_hit_ratio"]
        if requests < MIN_READ_REQUESTS:
            return HealthCheck(
                "cache_hit_ratio",
                title,
                "skipped",
                f"only {requests:.0f} page reads since the server started: too few to judge",
            )
        ratio = 1 - reads / requests
        return judge(
            "cache_hit_ratio",
            title,
            ratio,
            self.limits.cache_hit_ratio_min,
            at_least=True,
            figure=f"{ratio:.4f} ({reads:.0f} of {requests:.0f} page reads went to disk)",
            advice="Raise innodb_buffer_pool_size towards the working set (most of the RAM of a dedicated server).",
        )

    def connections(self) -> HealthCheck:
        """Connected threads against ``max_connections``."""
        connected = self.probe.counter("Threads_connected") or 0
        maximum = float(self.probe.variable("max_connections"))
        return judge(
            "connections",
            TITLES["connections"],
            connected / maximum,
            self.limits.connections_used_ratio_max,
            figure=f"{connected / maximum:.2f} ({connected:.0f} of max_connections {maximum:.0f})",
            advice="Pool connections in the application, or raise max_connections (each costs memory).",
        )

    def blocked_sessions(self) -> HealthCheck:
        """Sessions waiting for a metadata, table or row lock now."""
        waiting = [thread for thread in self.threads if thread.wait]
        holders = activity.blockers(self.probe) if waiting else {}
        return judge(
            "blocked_sessions",
            TITLES["blocked_sessions"],
            len(waiting),
            self.limits.blocked_sessions_max,
            figure=f"{len(waiting)} waiting",
            advice="Find the session holding the lock (a long transaction, LOCK TABLES, DDL) and have it finish.",
            findings=(
                f"{t.describe()} waits {seconds(t.seconds)} for {t.wait}{blocked_by(holders.get(t.id, ()))}: {t.query}"
                for t in waiting
            ),
        )

    def duplicate_indexes(self) -> HealthCheck:
        """Indexes whose columns lead another index of the same table."""
        found = indexes.duplicates(self.probe, self.probe.database)
        return judge(
            "duplicate_indexes",
            TITLES["duplicate_indexes"],
            len(found),
            0,
            figure=f"{len(found)} found",
            advice="Drop them (ALTER TABLE … DROP INDEX): every write maintains them for nothing.",
            findings=(str(duplicate) for duplicate in found),
        )

    def free_space(self) -> HealthCheck:
        """Tables whose file is mostly free space."""
        limit = self.limits.free_space_ratio_max
        wasteful = [size for size in tables.table_sizes(self.probe, self.probe.database) if size.wasteful(limit)]
        worst = max((size.free_ratio for size in wasteful), default=0.0)
        return judge(
            "free_space",
            TITLES["free_space"],
            worst,
            limit,
            figure=f"{len(wasteful)} table(s) with at least {tables.FREE_SPACE_MIN_BYTES >> 20} MiB free, "
            f"the most {worst:.2f} free",
            advice="dbkeeper optimize --apply --allow-blocking rebuilds them (OPTIMIZE TABLE), giving the space back.",
            findings=(
                f"{s.qualified()}: {s.free >> 20} MiB free of {s.total >> 20} MiB ({s.free_ratio:.2f})"
                for s in wasteful
            ),
        )

    def missing_primary_keys(self) -> HealthCheck:
        """Tables with no primary key."""
        found = indexes.without_primary_key(self.probe, self.probe.database)
        return judge(
            "missing_primary_keys",
            TITLES["missing_primary_keys"],
            len(found),
            0,
            figure=f"{len(found)} found",
            advice="Add a primary key: InnoDB otherwise clusters rows on a hidden row id, and row-based "
            "replication searches the whole table for every row changed.",
            findings=found,
        )

    def replication_lag(self) -> HealthCheck | None:
        """How far behind its source this replica is (None when the server is no replica)."""
        rows = replica_status(self.probe)
        if not rows:
            return None
        lag = rows[0].get("Seconds_Behind_Source", rows[0].get("Seconds_Behind_Master"))
        title, limit = TITLES["replication_lag"], self.limits.replication_lag_seconds_max
        advice = (
            "Look at the replica's SQL thread (SHOW REPLICA STATUS: Last_SQL_Error) and at long writes on the source."
        )
        if lag is None:
            return HealthCheck("replication_lag", title, "failed", "replication is not running", advice)
        return judge("replication_lag", title, float(lag), limit, figure=f"{seconds(float(lag))} behind", advice=advice)


def blocked_by(holders: tuple[int, ...]) -> str:
    """`` (held by session 7)`` when InnoDB names the holders, else nothing."""
    return f" (held by session {', '.join(map(str, holders))})" if holders else ""
