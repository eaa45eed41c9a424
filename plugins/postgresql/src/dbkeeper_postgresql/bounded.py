"""The one connection a scrape, a health check, ``top`` or ``optimize`` opens: bounded in time.

The connection is built from the driver's own :class:`~dbkeeper_postgresql.connections.Endpoint`
(the password handed to psycopg in-process, never in argv, environment or logs). It is
autocommit, named after its purpose (``application_name=dbkeeper-metrics``, ``-health``,
``-top``, ``-optimize``, unless the URL names one), gives up connecting within the time
left (libpq's ``connect_timeout``: whole seconds, at least 2, never longer than the
URL's), and carries ``statement_timeout`` and ``lock_timeout`` on its session, so a
query stuck behind another session's lock fails instead of waiting.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from dbkeeper.plugin import DatabaseURL
from dbkeeper_postgresql.connections import CONNECTION_DEFAULTS, Endpoint, database_error

if TYPE_CHECKING:
    import psycopg

MIN_CONNECT_TIMEOUT = 2
"""libpq's smallest connect timeout (it reads 1 as 2)."""


def milliseconds(seconds: float) -> str:
    """A PostgreSQL timeout setting for *seconds*: whole milliseconds, at least 1 (0 would disable it)."""
    return str(max(1, round(seconds * 1000)))


def connect_timeout(url_value: str | None, remaining: float) -> str:
    """The libpq ``connect_timeout`` for a connection that must be made within *remaining* seconds."""
    bound = max(MIN_CONNECT_TIMEOUT, math.ceil(remaining))
    given = int(url_value) if url_value and url_value.isdigit() and int(url_value) > 0 else None
    return str(min(bound, given) if given is not None else bound)


def set_timeouts(connection: psycopg.Connection[tuple[object, ...]], statement: float | None, lock: float) -> None:
    """Set the session's ``statement_timeout`` (None: none) and ``lock_timeout``, in seconds (at least 1 ms)."""
    connection.execute(
        "SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)",
        ("0" if statement is None else milliseconds(statement), milliseconds(lock)),
    )


def open_bounded(
    url: DatabaseURL,
    purpose: str,
    *,
    within: float,
    statement_timeout: float,
    lock_timeout: float,
    unacknowledged: float | None = None,
) -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection for *purpose* (``metrics`` …), connected within *within* seconds.

    *unacknowledged*: seconds the server may leave what we sent unacknowledged before the
    connection is given up (libpq's ``tcp_user_timeout``, TCP only), so that a connection
    kept open across a silently vanished peer fails instead of retransmitting for minutes.
    Raises :class:`~dbkeeper.plugin.DatabaseError` (one line, password masked) when the
    server cannot be reached, including one that accepts and never answers.
    """
    endpoint = Endpoint.from_url(url)
    params = dict(endpoint.params)
    if "application_name" not in url.query:
        params["application_name"] = f"dbkeeper-{purpose}"
    if unacknowledged is not None and "tcp_user_timeout" not in url.query:
        params["tcp_user_timeout"] = milliseconds(unacknowledged)
    given = url.query.get("connect_timeout")
    params["connect_timeout"] = connect_timeout(given if given else CONNECTION_DEFAULTS["connect_timeout"], within)
    import psycopg

    bound = (
        f"the time left of the {purpose} deadline, or the URL's connect_timeout if shorter — check that the "
        "server is up and not overloaded"
    )
    bounded = Endpoint(url, params, endpoint.password, bound)
    connection = bounded.connect(autocommit=True)
    try:
        set_timeouts(connection, statement_timeout, lock_timeout)
    except psycopg.Error as exc:
        connection.close()
        raise database_error(exc, f"cannot set the session's timeouts on {bounded.label}") from None
    return connection
