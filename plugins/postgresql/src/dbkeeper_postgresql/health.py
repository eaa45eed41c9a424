"""PostgreSQL health checks (PgHero's list) behind ``dbkeeper_check_health``.

Each check reads the statistics views and catalogs over one bounded connection (see
:mod:`dbkeeper_postgresql.bounded`) and changes nothing. A check that raises (a missing
privilege, a lock or statement timeout) is ``skipped`` with the reason as its figure; the
others still run. Checks of other sessions (long queries and transactions, idle in
transaction, blocked sessions) see every role's sessions only with ``pg_read_all_stats``
(or as a superuser): without it they fail on what they can see and are ``skipped``
rather than ``ok`` when they see nothing wrong.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dbkeeper.plugin import Deadline, HealthCheck, HealthRequest, HealthThresholds, error_line, judge
from dbkeeper_postgresql.bounded import open_bounded
from dbkeeper_postgresql.metrics import CLIENT_SESSIONS, one_line

if TYPE_CHECKING:
    import psycopg

WRAPAROUND_LIMIT = 2**31
"""Transaction IDs a database can age by before wraparound (PostgreSQL stops well before)."""
CACHE_MIN_BLOCKS = 10_000
"""Block reads of user tables and indexes below which the cache hit ratio is not judged."""
UNUSED_INDEX_MIN_BYTES = 1024 * 1024
"""Indexes smaller than this are not reported as unused (they cost little)."""
FOREIGN_KEY_MIN_ROWS = 10_000
"""Referencing tables with fewer (estimated) rows are not reported for a missing foreign-key index."""
FINDINGS_QUERY_LENGTH = 100
"""Characters of a session's statement quoted in a finding."""

ACTIVITY = (
    "SELECT pid, coalesce(usename, ''), coalesce(datname, ''), {age}, coalesce(query, '') FROM pg_stat_activity "
    f"WHERE {CLIENT_SESSIONS} AND pid <> pg_backend_pid() AND {{condition}} ORDER BY 4 DESC"
)
"""Sessions matching a condition, each with an age; formatted with literal SQL only."""


def skipped(name: str, title: str, reason: str) -> HealthCheck:
    """A check that could not be made, *reason* as its figure."""
    return HealthCheck(name=name, title=title, verdict="skipped", figure=reason)


def counted(number: int, singular: str, plural: str) -> str:
    """*number* and the noun it takes: ``1 index``, ``2 indexes``."""
    return f"{number} {singular if number == 1 else plural}"


def session_finding(pid: int, user: str, database: str, seconds: Any, query: str) -> str:
    """One session as a finding: ``pid 123 (app@shop), 95 s: SELECT …``."""
    return f"pid {pid} ({user}@{database}), {float(seconds):.0f} s: {one_line(query, FINDINGS_QUERY_LENGTH)}"


class Checkup:
    """The health checks of one database, sharing one connection and the thresholds."""

    def __init__(self, connection: psycopg.Connection[tuple[Any, ...]], limits: HealthThresholds) -> None:
        self.connection = connection
        self.limits = limits

    def rows(self, sql: str, params: Sequence[object] | None = None) -> list[tuple[Any, ...]]:
        """Every row of *sql* (with *params*, ``%`` is written ``%%``)."""
        return self.connection.execute(sql, params).fetchall()

    def checks(self) -> list[tuple[str, str, Callable[[], HealthCheck | None]]]:
        """Each check's name, title and function (None: the check does not apply here)."""
        return [
            ("cache_hit_ratio", "Cache hit ratio", self.cache_hit_ratio),
            ("connections", "Connections", self.connections),
            ("long_queries", "Long-running queries", self.long_queries),
            ("long_transactions", "Long transactions", self.long_transactions),
            ("idle_in_transaction", "Idle in transaction", self.idle_in_transaction),
            ("blocked_sessions", "Blocked sessions", self.blocked_sessions),
            ("wraparound", "Transaction ID wraparound", self.wraparound),
            ("sequences", "Sequences near exhaustion", self.sequences),
            ("invalid_indexes", "Invalid indexes", self.invalid_indexes),
            ("duplicate_indexes", "Duplicate indexes", self.duplicate_indexes),
            ("unused_indexes", "Unused indexes", self.unused_indexes),
            ("foreign_keys_without_index", "Foreign keys without an index", self.foreign_keys_without_index),
            ("never_analyzed", "Tables never analysed", self.never_analyzed),
            ("dead_tuples", "Dead-tuple bloat", self.dead_tuples),
            ("replication_lag", "Replication lag", self.replication_lag),
        ]

    @functools.cached_property
    def sees_all_sessions(self) -> bool:
        """Whether this role sees other roles' sessions (``pg_read_all_stats`` or superuser)."""
        ((member,),) = self.rows("SELECT pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER')")
        return bool(member)

    def cache_hit_ratio(self) -> HealthCheck:
        """Share of user table and index block reads found in shared buffers."""
        ((hit, read),) = self.rows(
            "SELECT coalesce(sum(heap_blks_hit), 0) + coalesce(sum(idx_blks_hit), 0), "
            "coalesce(sum(heap_blks_read), 0) + coalesce(sum(idx_blks_read), 0) FROM pg_statio_user_tables"
        )
        total = int(hit) + int(read)
        if total < CACHE_MIN_BLOCKS:
            return skipped("cache_hit_ratio", "Cache hit ratio", f"{total} block reads so far: too few to judge")
        ((shared_buffers,),) = self.rows("SELECT current_setting('shared_buffers')")
        ratio = int(hit) / total
        return judge(
            "cache_hit_ratio",
            "Cache hit ratio",
            ratio,
            self.limits.cache_hit_ratio_min,
            at_least=True,
            figure=f"{ratio:.4f} of {total} block reads found in shared buffers",
            advice=f"raise shared_buffers (now {shared_buffers}) or the server's memory, or find the queries reading "
            "most (pg_stat_statements) and index them",
        )

    def connections(self) -> HealthCheck:
        """Client connections against ``max_connections`` less the superuser reserve."""
        ((used, usable),) = self.rows(
            f"SELECT (SELECT count(*) FROM pg_stat_activity WHERE {CLIENT_SESSIONS}), "
            "current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
        )
        busiest = self.rows(
            "SELECT coalesce(usename, ''), coalesce(datname, ''), count(*) FROM pg_stat_activity "
            f"WHERE {CLIENT_SESSIONS} GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5"
        )
        return judge(
            "connections",
            "Connections",
            used / usable,
            self.limits.connections_used_ratio_max,
            figure=f"{used} of {usable} connections in use ({used / usable:.2f})",
            advice="put a connection pooler (PgBouncer) in front of the server, close idle connections in the "
            "applications, or raise max_connections (needs a restart)",
            findings=[f"{user}@{database}: {count} connections" for user, database, count in busiest],
        )

    def sessions_check(
        self, name: str, title: str, found: list[tuple[Any, ...]], limit: int, figure: str, advice: str
    ) -> HealthCheck:
        """A check of other sessions: failed when more than *limit* are *found*, skipped when blind."""
        result = judge(
            name,
            title,
            len(found),
            limit,
            figure=figure,
            advice=advice,
            findings=[session_finding(*row) for row in found],
        )
        if result.verdict == "ok" and not self.sees_all_sessions:
            return skipped(
                name,
                title,
                "only this role's sessions are visible: GRANT pg_read_all_stats TO this role (or use a "
                "superuser) to check every session",
            )
        return result

    def long_queries(self) -> HealthCheck:
        """Queries running longer than ``long_query_seconds``."""
        seconds = self.limits.long_query_seconds
        found = self.rows(
            ACTIVITY.format(
                age="extract(epoch FROM now() - query_start)",
                condition="state = 'active' AND now() - query_start > make_interval(secs => %s)",
            ),
            (seconds,),
        )
        return self.sessions_check(
            "long_queries",
            "Long-running queries",
            found,
            0,
            f"{counted(len(found), 'query', 'queries')} running longer than {seconds:g} s",
            "cancel one with SELECT pg_cancel_backend(PID); bound them with statement_timeout "
            "(ALTER ROLE name SET statement_timeout = '60s')",
        )

    def long_transactions(self) -> HealthCheck:
        """Transactions open longer than ``long_transaction_seconds``."""
        seconds = self.limits.long_transaction_seconds
        found = self.rows(
            ACTIVITY.format(
                age="extract(epoch FROM now() - xact_start)",
                condition="now() - xact_start > make_interval(secs => %s)",
            ),
            (seconds,),
        )
        return self.sessions_check(
            "long_transactions",
            "Long transactions",
            found,
            0,
            f"{counted(len(found), 'transaction', 'transactions')} open longer than {seconds:g} s",
            "they hold back VACUUM: have the application commit sooner; end one with SELECT pg_cancel_backend(PID) "
            "(or pg_terminate_backend(PID) when idle)",
        )

    def idle_in_transaction(self) -> HealthCheck:
        """Sessions idle in an open transaction for longer than ``idle_in_transaction_seconds``."""
        seconds = self.limits.idle_in_transaction_seconds
        found = self.rows(
            ACTIVITY.format(
                age="extract(epoch FROM now() - state_change)",
                condition="state LIKE 'idle in transaction%%' AND now() - state_change > make_interval(secs => %s)",
            ),
            (seconds,),
        )
        return self.sessions_check(
            "idle_in_transaction",
            "Idle in transaction",
            found,
            0,
            f"{counted(len(found), 'session', 'sessions')} idle in a transaction for longer than {seconds:g} s",
            "fix the application to commit or roll back; set idle_in_transaction_session_timeout "
            "(ALTER DATABASE name SET idle_in_transaction_session_timeout = '60s'); end one with "
            "SELECT pg_terminate_backend(PID)",
        )

    def blocked_sessions(self) -> HealthCheck:
        """Sessions waiting for a lock another session holds."""
        found = self.rows(
            ACTIVITY.format(
                age="extract(epoch FROM now() - coalesce(query_start, state_change))",
                condition="cardinality(pg_blocking_pids(pid)) > 0",
            )
        )
        blockers = self.rows(
            "SELECT DISTINCT unnest(pg_blocking_pids(pid)) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
        )
        return self.sessions_check(
            "blocked_sessions",
            "Blocked sessions",
            found,
            self.limits.blocked_sessions_max,
            f"{counted(len(found), 'session', 'sessions')} waiting for another session's lock"
            + (f" (blocked by pid {', '.join(str(pid) for (pid,) in blockers)})" if blockers else ""),
            "see what the blocking sessions run (dbkeeper top) and have them commit; cancel one with "
            "SELECT pg_cancel_backend(PID)",
        )

    def wraparound(self) -> HealthCheck:
        """The oldest database's transaction-ID age against the 2^31 wraparound limit."""
        ages = self.rows("SELECT datname, age(datfrozenxid) FROM pg_database ORDER BY 2 DESC")
        limit = self.limits.wraparound_ratio_max
        return judge(
            "wraparound",
            "Transaction ID wraparound",
            ages[0][1] / WRAPAROUND_LIMIT,
            limit,
            figure=f"{ages[0][0]} is {ages[0][1]} transactions old ({ages[0][1] / WRAPAROUND_LIMIT:.3f} of 2^31)",
            advice="run VACUUM (FREEZE) in those databases (vacuumdb --freeze --all) and find what holds autovacuum "
            "back: long transactions, abandoned replication slots, prepared transactions",
            findings=[
                f"{name}: {age} ({age / WRAPAROUND_LIMIT:.3f})" for name, age in ages if age / WRAPAROUND_LIMIT > limit
            ],
        )

    def sequences(self) -> HealthCheck:
        """The share of each sequence's range already used."""
        used = [
            (f"{schema}.{name}", (last - low) / (high - low) if step > 0 else (high - last) / (high - low))
            for schema, name, last, low, high, step in self.rows(
                "SELECT quote_ident(schemaname), quote_ident(sequencename), last_value, min_value, max_value, "
                "increment_by FROM pg_sequences WHERE last_value IS NOT NULL"
            )
        ]
        worst = max((ratio for _, ratio in used), default=0.0)
        limit = self.limits.sequence_used_ratio_max
        return judge(
            "sequences",
            "Sequences near exhaustion",
            worst,
            limit,
            figure=f"{counted(len(used), 'sequence', 'sequences')} in use, the fullest at {worst:.3f} of its range",
            advice="widen them: ALTER SEQUENCE name AS bigint, and the columns they fill: ALTER TABLE table "
            "ALTER COLUMN column TYPE bigint",
            findings=[f"{name}: {ratio:.3f} used" for name, ratio in used if ratio > limit],
        )

    def invalid_indexes(self) -> HealthCheck:
        """Indexes left invalid by a failed CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY."""
        found = [name for (name,) in self.rows(INVALID_INDEXES)]
        return judge(
            "invalid_indexes",
            "Invalid indexes",
            len(found),
            0,
            figure=counted(len(found), "invalid index", "invalid indexes"),
            advice="rebuild each: REINDEX INDEX CONCURRENTLY name (dbkeeper optimize --apply does it), or drop it: "
            "DROP INDEX CONCURRENTLY name",
            findings=found,
        )

    def duplicate_indexes(self) -> HealthCheck:
        """Indexes whose columns lead another index of the same kind on the same table."""
        found = self.rows(DUPLICATE_INDEXES)
        return judge(
            "duplicate_indexes",
            "Duplicate indexes",
            len(found),
            0,
            figure=f"{counted(len(found), 'index', 'indexes')} covered by another index",
            advice="drop each covered index: DROP INDEX CONCURRENTLY name",
            findings=[f"{index} is covered by {cover} (on {table})" for index, cover, table in found],
        )

    def unused_indexes(self) -> HealthCheck:
        """Indexes never scanned since the statistics were reset (not unique, not backing a constraint)."""
        found = self.rows(UNUSED_INDEXES, (UNUSED_INDEX_MIN_BYTES,))
        return judge(
            "unused_indexes",
            "Unused indexes",
            len(found),
            0,
            figure=f"{counted(len(found), 'index', 'indexes')} of at least "
            f"{UNUSED_INDEX_MIN_BYTES // 1024 // 1024} MiB never scanned since the statistics were reset",
            advice="check that no standby or monthly job uses them, then DROP INDEX CONCURRENTLY name",
            findings=[f"{name} on {table}: {size} bytes" for name, table, size in found],
        )

    def foreign_keys_without_index(self) -> HealthCheck:
        """Foreign keys of sizeable tables whose columns lead no index (deletes on the parent scan the table)."""
        found = self.rows(FOREIGN_KEYS_WITHOUT_INDEX, (FOREIGN_KEY_MIN_ROWS,))
        return judge(
            "foreign_keys_without_index",
            "Foreign keys without an index",
            len(found),
            0,
            figure=f"{counted(len(found), 'foreign key', 'foreign keys')} of tables with at least "
            f"{FOREIGN_KEY_MIN_ROWS} rows without an index",
            advice="create the index each finding names (CREATE INDEX CONCURRENTLY does not block writes)",
            findings=[
                f"{constraint}: CREATE INDEX CONCURRENTLY ON {table} ({columns})"
                for constraint, table, columns in found
            ],
        )

    def never_analyzed(self) -> HealthCheck:
        """Tables holding rows that have no planner statistics."""
        found = [name for (name,) in self.rows(NEVER_ANALYZED)]
        return judge(
            "never_analyzed",
            "Tables never analysed",
            len(found),
            0,
            figure=f"{counted(len(found), 'table', 'tables')} never analysed",
            advice="run ANALYZE on each (dbkeeper optimize --apply does it); check that autovacuum is on",
            findings=found,
        )

    def dead_tuples(self) -> HealthCheck:
        """Tables whose dead rows exceed ``dead_tuple_ratio_max`` of their rows (and ``dead_tuple_min_rows``)."""
        found = self.rows(DEAD_TUPLES, (self.limits.dead_tuple_min_rows, self.limits.dead_tuple_ratio_max))
        worst = max((float(ratio) for *_, ratio in found), default=0.0)
        return judge(
            "dead_tuples",
            "Dead-tuple bloat",
            worst,
            self.limits.dead_tuple_ratio_max,
            figure=f"{counted(len(found), 'table', 'tables')} with at least {self.limits.dead_tuple_min_rows} "
            f"dead rows over the limit, the worst at {worst:.3f} of its rows",
            advice="VACUUM (ANALYZE) each table (dbkeeper optimize --apply does it); if it recurs, lower the table's "
            "autovacuum_vacuum_scale_factor and look for long transactions holding VACUUM back",
            findings=[
                f"{table}: {dead} dead of {dead + live} rows ({float(ratio):.3f})" for table, dead, live, ratio in found
            ],
        )

    def replication_lag(self) -> HealthCheck | None:
        """The standby's replay lag, or each standby's on a primary; None without replication."""
        lags = self.rows(REPLICATION_LAGS)
        if not lags:
            return None
        worst = max(float(seconds) for _, seconds in lags)
        return judge(
            "replication_lag",
            "Replication lag",
            worst,
            self.limits.replication_lag_seconds_max,
            figure=f"{counted(len(lags), 'replication link', 'replication links')}, "
            f"the furthest behind by {worst:.1f} s",
            advice="check the standby's disk and network, long queries on it (hot_standby_feedback, "
            "max_standby_streaming_delay), and the primary's WAL volume",
            findings=[f"{name}: {float(seconds):.1f} s behind" for name, seconds in lags],
        )


INVALID_INDEXES = (
    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisvalid ORDER BY 1"
)
DUPLICATE_INDEXES = """
SELECT format('%I.%I', an.nspname, ac.relname), format('%I.%I', bn.nspname, bc.relname),
       (SELECT format('%I.%I', tn.nspname, t.relname) FROM pg_class t JOIN pg_namespace tn ON tn.oid = t.relnamespace
        WHERE t.oid = a.indrelid)
FROM pg_index a JOIN pg_index b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid
JOIN pg_class ac ON ac.oid = a.indexrelid JOIN pg_namespace an ON an.oid = ac.relnamespace
JOIN pg_class bc ON bc.oid = b.indexrelid JOIN pg_namespace bn ON bn.oid = bc.relnamespace
WHERE a.indisvalid AND b.indisvalid AND ac.relam = bc.relam AND an.nspname !~ '^pg_'
  AND coalesce(pg_get_expr(a.indexprs, a.indrelid), '') = coalesce(pg_get_expr(b.indexprs, b.indrelid), '')
  AND coalesce(pg_get_expr(a.indpred, a.indrelid), '') = coalesce(pg_get_expr(b.indpred, b.indrelid), '')
  AND (b.indkey::text || ' ') LIKE (a.indkey::text || ' %')
  AND (b.indclass::text || ' ') LIKE (a.indclass::text || ' %')
  AND (NOT a.indisunique OR b.indisunique AND a.indkey::text = b.indkey::text)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = a.indexrelid)
  AND NOT (a.indkey::text = b.indkey::text AND a.indisunique = b.indisunique AND a.indexrelid < b.indexrelid
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = b.indexrelid))
ORDER BY 1
"""
"""Index *a* is covered by *b*: same table, kind, expressions and predicate, its columns leading *b*'s;
a unique index only by an identical unique one; an index backing a constraint is never reported; of two
identical indexes the later one is."""
UNUSED_INDEXES = """
SELECT format('%%I.%%I', s.schemaname, s.indexrelname), format('%%I.%%I', s.schemaname, s.relname),
       pg_relation_size(s.indexrelid)
FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.idx_scan = 0 AND NOT i.indisunique AND i.indisvalid
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = s.indexrelid)
  AND pg_relation_size(s.indexrelid) >= %s
ORDER BY 3 DESC
"""
FOREIGN_KEYS_WITHOUT_INDEX = """
SELECT format('%%I', k.conname), format('%%I.%%I', t.schemaname, t.relname),
       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY key.position)
        FROM unnest(k.conkey) WITH ORDINALITY AS key(attnum, position)
        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = key.attnum)
FROM pg_constraint k JOIN pg_stat_user_tables t ON t.relid = k.conrelid
WHERE k.contype = 'f' AND t.n_live_tup >= %s
  AND NOT EXISTS (
    SELECT 1 FROM pg_index i WHERE i.indrelid = k.conrelid AND i.indpred IS NULL
      AND (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(k.conkey)] @> k.conkey
      AND (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(k.conkey)] <@ k.conkey)
ORDER BY 2, 1
"""
NEVER_ANALYZED = """
SELECT format('%I.%I', t.schemaname, t.relname) FROM pg_stat_user_tables t
WHERE t.last_analyze IS NULL AND t.last_autoanalyze IS NULL AND (t.n_live_tup > 0 OR t.n_mod_since_analyze > 0)
  AND NOT EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = t.schemaname AND s.tablename = t.relname)
ORDER BY 1
"""
DEAD_TUPLES = """
SELECT format('%%I.%%I', schemaname, relname), n_dead_tup, n_live_tup,
       n_dead_tup::float8 / (n_live_tup + n_dead_tup)
FROM pg_stat_user_tables
WHERE n_dead_tup >= %s AND n_dead_tup::float8 / (n_live_tup + n_dead_tup) > %s
ORDER BY 4 DESC
"""
REPLICATION_LAGS = """
SELECT 'this standby', CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
       ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END
WHERE pg_is_in_recovery()
  AND (pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() OR pg_last_xact_replay_timestamp() IS NOT NULL)
UNION ALL
SELECT application_name, coalesce(extract(epoch FROM replay_lag), 0) FROM pg_stat_replication
WHERE NOT pg_is_in_recovery() AND replay_lsn IS NOT NULL
"""


def run_check(deadline: Deadline, name: str, title: str, check: Callable[[], HealthCheck | None]) -> HealthCheck | None:
    """*check*'s verdict; skipped with the reason when it raises or its turn comes after the deadline."""
    if deadline.expired():
        return skipped(name, title, "the health check's deadline passed")
    try:
        return check()
    except Exception as exc:
        return skipped(name, title, f"could not check: {error_line(exc)}")


def check(request: HealthRequest) -> list[HealthCheck]:
    """Every check that applies to ``request.url``, on one bounded connection."""
    remaining = request.deadline.remaining()
    connection = open_bounded(
        request.url,
        "health",
        within=remaining,
        statement_timeout=min(request.statement_timeout, remaining),
        lock_timeout=request.lock_timeout,
    )
    with connection:
        checkup = Checkup(connection, request.thresholds)
        results = (run_check(request.deadline, *entry) for entry in checkup.checks())
        return [result for result in results if result is not None]
