"""The server's client sessions for ``dbkeeper top``: pg_stat_activity, waits and blockers.

Our own backend is left out. Without ``pg_read_all_stats`` (or superuser) PostgreSQL
hides other roles' sessions' details: their state reads ``unknown`` and their query is
empty.
"""

from __future__ import annotations

from typing import Any

from dbkeeper.plugin import Session, SessionsRequest
from dbkeeper_postgresql.bounded import open_bounded
from dbkeeper_postgresql.metrics import CLIENT_SESSIONS, one_line

QUERY_LENGTH = 200
"""Characters of a session's statement shown (whitespace collapsed)."""
SESSIONS_SQL = (
    "SELECT pid, coalesce(usename, ''), coalesce(datname, ''), coalesce(state, 'unknown'), "
    "extract(epoch FROM now() - CASE WHEN state = 'active' THEN query_start ELSE state_change END), "
    "coalesce(wait_event_type || ': ' || wait_event, ''), "
    "CASE WHEN state IS NULL THEN '' ELSE coalesce(query, '') END, pg_blocking_pids(pid) "
    f"FROM pg_stat_activity WHERE {CLIENT_SESSIONS} AND pid <> pg_backend_pid() ORDER BY pid"
)


def sessions(request: SessionsRequest) -> list[Session]:
    """Every client session of the server but ours, on one bounded connection."""
    remaining = request.deadline.remaining()
    connection = open_bounded(
        request.url,
        "top",
        within=remaining,
        statement_timeout=min(request.statement_timeout, remaining),
        lock_timeout=request.statement_timeout,
    )
    with connection:
        rows: list[tuple[Any, ...]] = connection.execute(SESSIONS_SQL).fetchall()
        return [
            Session(
                id=str(pid),
                user=user,
                database=database,
                state=state,
                seconds=None if seconds is None else float(seconds),
                wait=wait,
                query=one_line(query, QUERY_LENGTH),
                blocked_by=tuple(str(blocker) for blocker in blockers),
            )
            for pid, user, database, state, seconds, wait, query, blockers in rows
        ]
