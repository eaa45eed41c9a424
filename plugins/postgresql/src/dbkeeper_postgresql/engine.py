"""The SQLAlchemy engine behind ``dbkeeper query`` and :class:`dbkeeper.database.Connection`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbkeeper.errors import DatabaseNotFoundError
from dbkeeper.urls import redact
from dbkeeper_postgresql.connections import MISSING_DATABASE, connection_failure

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine


def create(url: URL) -> Engine:
    """An engine on psycopg 3 for *url*; a missing database raises DatabaseNotFoundError when connecting."""
    from sqlalchemy import create_engine, event

    engine = create_engine(url)

    @event.listens_for(engine, "handle_error")
    def _missing_database(context: Any) -> None:
        if context.connection is None:  # a failure to connect, not a failed statement
            reason = redact(connection_failure(str(context.original_exception)))
            if MISSING_DATABASE.search(reason):
                raise DatabaseNotFoundError(
                    f"cannot connect to {url.render_as_string(hide_password=True)}: {reason} — check the database name"
                )

    return engine
