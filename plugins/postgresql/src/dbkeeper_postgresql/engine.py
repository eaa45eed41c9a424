"""The SQLAlchemy engine behind ``dbkeeper query`` and :class:`dbkeeper.connections.database.Connection`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbkeeper.plugin import DatabaseError, DatabaseNotFoundError, redact
from dbkeeper_postgresql.connections import CONNECTION_DEFAULTS, MISSING_DATABASE, connection_failure, explained

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine


def create(url: URL, label: str) -> Engine:
    """An engine on psycopg 3 for *url* (shown as *label*); connection failures are one line.

    A missing database raises DatabaseNotFoundError when connecting; connections get
    :data:`~dbkeeper_postgresql.connections.CONNECTION_DEFAULTS` where the URL sets nothing.
    """
    from sqlalchemy import create_engine, event

    engine = create_engine(url, connect_args={k: v for k, v in CONNECTION_DEFAULTS.items() if k not in url.query})

    @event.listens_for(engine, "handle_error")
    def _connect_failure(context: Any) -> None:
        if context.connection is None:  # a failure to connect, not a failed statement
            reason = explained(redact(connection_failure(str(context.original_exception))), url.query)
            if MISSING_DATABASE.search(reason):
                raise DatabaseNotFoundError(f"cannot connect to {label}: {reason} — check the database name")
            if "timeout expired" in reason:
                raise DatabaseError(f"cannot connect to {label}: {reason}")

    return engine
