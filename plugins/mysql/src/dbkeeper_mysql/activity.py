"""What the server's other sessions are doing: the process list joined with InnoDB's transactions.

One query reads ``information_schema.PROCESSLIST`` with ``INNODB_TRX`` (which needs the
``PROCESS`` privilege: without it the query fails, rather than showing only the user's
own sessions as the process list alone would). Background threads (``Daemon``) and the
reading connection itself are left out. The metrics' ``activity`` collector, the health
checks and ``dbkeeper top`` all read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dbkeeper.plugin import Session, SessionsRequest
from dbkeeper_mysql.bounded import Probe, open_probe

QUERY_LENGTH = 200
"""Characters of statement text kept for ``top`` and health findings."""
RUNNING_COMMANDS = frozenset({"Query", "Execute"})
"""Process-list commands of a session running a statement (replication threads are not)."""
_LOCK_STATE = re.compile(r"^Waiting for .*lock", re.IGNORECASE)
SESSIONS_LOCK_TIMEOUT = 1.0
"""Seconds ``top``'s reading waits for a lock (``SessionsRequest`` names none)."""
UNKNOWN_TABLE = 1109
"""``Unknown table … in information_schema``: MySQL 8 has no ``INNODB_LOCK_WAITS``."""

ACTIVITY_SQL = (
    "SELECT p.ID, p.USER, COALESCE(p.DB, ''), p.COMMAND, p.TIME, COALESCE(p.STATE, ''), COALESCE(p.INFO, ''), "
    "TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), COALESCE(t.trx_state, '') "
    "FROM information_schema.PROCESSLIST p LEFT JOIN information_schema.INNODB_TRX t "
    "ON t.trx_mysql_thread_id = p.ID WHERE p.ID <> CONNECTION_ID() AND p.COMMAND <> 'Daemon' ORDER BY p.ID"
)
LOCK_WAITS_SQL = (
    "SELECT r.trx_mysql_thread_id, b.trx_mysql_thread_id FROM information_schema.INNODB_LOCK_WAITS w "
    "JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id "
    "JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id"
)


def one_line(text: str, limit: int = QUERY_LENGTH) -> str:
    """*text* with its whitespace runs collapsed, at most *limit* characters."""
    return re.sub(r"\s+", " ", text).strip()[:limit]


@dataclass(frozen=True)
class Thread:
    """One session of the process list, with its InnoDB transaction if it has one.

    ``seconds`` is the time in the current state (the running statement's age, or how
    long an idle session has been idle); ``transaction_seconds`` the age of its InnoDB
    transaction (None when it has none).
    """

    id: int
    user: str
    database: str
    command: str
    seconds: float
    state: str
    query: str
    transaction_seconds: float | None
    transaction_state: str

    @property
    def running(self) -> bool:
        """Whether the session is running a statement."""
        return self.command in RUNNING_COMMANDS

    @property
    def idle_in_transaction(self) -> bool:
        """Whether the session sits idle with a transaction open."""
        return self.command == "Sleep" and self.transaction_seconds is not None

    @property
    def wait(self) -> str:
        """The lock the session waits for (a metadata or table lock by name, or ``row lock``), or empty."""
        if _LOCK_STATE.match(self.state):
            return self.state
        return "row lock" if self.transaction_state == "LOCK WAIT" else ""

    def describe(self) -> str:
        """``session 12 (app@shop)``: the session as health findings name it."""
        return f"session {self.id} ({self.user}@{self.database or '-'})"


def threads(probe: Probe) -> list[Thread]:
    """The server's sessions but this one and background threads (needs ``PROCESS``)."""
    return [
        Thread(
            id=int(row[0]),
            user=str(row[1]),
            database=str(row[2]),
            command=str(row[3]),
            seconds=float(row[4] or 0),
            state=str(row[5]),
            query=one_line(str(row[6])),
            transaction_seconds=None if row[7] is None else float(row[7]),
            transaction_state=str(row[8]),
        )
        for row in probe.rows(ACTIVITY_SQL)
    ]


def blockers(probe: Probe) -> dict[int, tuple[int, ...]]:
    """Each session waiting for a row lock, with the sessions holding it (empty where the server cannot tell)."""
    import pymysql

    try:
        rows = probe.rows(LOCK_WAITS_SQL)
    except pymysql.MySQLError as exc:
        if exc.args and exc.args[0] == UNKNOWN_TABLE:
            return {}
        raise
    holders: dict[int, tuple[int, ...]] = {}
    for waiting, holding in rows:
        holders[int(waiting)] = (*holders.get(int(waiting), ()), int(holding))
    return holders


def state(thread: Thread) -> str:
    """``active``, ``idle``, ``idle in transaction``, or the process-list command in lower case."""
    if thread.running:
        return "active"
    if thread.command == "Sleep":
        return "idle in transaction" if thread.idle_in_transaction else "idle"
    return thread.command.lower()


def sessions(probe: Probe) -> list[Session]:
    """The other sessions as ``dbkeeper top`` shows them, with who blocks whom where InnoDB tells."""
    holders = blockers(probe)
    return [
        Session(
            id=str(thread.id),
            user=thread.user,
            database=thread.database,
            state=state(thread),
            seconds=thread.seconds,
            wait=thread.wait,
            query=thread.query,
            blocked_by=tuple(str(holder) for holder in holders.get(thread.id, ())),
        )
        for thread in threads(probe)
    ]


def read_sessions(request: SessionsRequest) -> list[Session]:
    """The sessions of ``request.url``'s server, on one connection bounded by ``request.deadline``."""
    with open_probe(
        request.url,
        within=request.deadline.remaining(),
        statement_timeout=request.statement_timeout,
        lock_timeout=SESSIONS_LOCK_TIMEOUT,
    ) as probe:
        return sessions(probe)
