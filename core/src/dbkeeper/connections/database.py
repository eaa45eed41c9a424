"""Connections and queries: named connections over SQLAlchemy engines made by drivers.

>>> with DatabaseManager() as dbs:
...     app = dbs.add("app", "sqlite:///app.db")
...     result = app.execute("SELECT name FROM artists WHERE id = :id", {"id": 1})
...     with app.transaction() as tx:
...         tx.execute("UPDATE artists SET name = :n WHERE id = 1", {"n": "AC/DC"})
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dbkeeper.connections.config import Config
from dbkeeper.connections.urls import DatabaseURL, error_line
from dbkeeper.errors import DatabaseError
from dbkeeper.plugin.manager import Plugins, load_plugins

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection as SAConnection
    from sqlalchemy.engine import CursorResult, Engine


STREAM_BATCH = 1000
"""Rows fetched at a time by :meth:`Connection.stream`: what a streamed query holds in memory."""

_QUERY_START = re.compile(r"(?:\s|--[^\n]*(?:\n|$)|/\*.*?\*/)*(SELECT|VALUES|TABLE|WITH)\b", re.IGNORECASE | re.DOTALL)
_DATA_MODIFYING = re.compile(r"\b(?:INSERT|UPDATE|DELETE|MERGE|INTO)\b", re.IGNORECASE)


@dataclass(frozen=True)
class QueryResult:
    """The outcome of one statement: column names, rows, affected row count, seconds taken."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    rowcount: int
    duration: float

    def as_dicts(self) -> list[dict[str, Any]]:
        """The rows as ``{column: value}`` dictionaries."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class RowStream:
    """The rows of one statement, read from the database as they are iterated.

    Iterate it once. :attr:`columns` is known at once; :attr:`rows_read`, :attr:`rowcount`
    and :attr:`duration` are final when the iteration has ended.
    """

    def __init__(self, cursor: CursorResult[Any], started: float) -> None:
        self._cursor = cursor
        self._started = started
        self.columns: list[str] = list(cursor.keys()) if cursor.returns_rows else []
        self.rows_read = 0
        self.duration = time.perf_counter() - started

    @property
    def rowcount(self) -> int:
        """Rows affected, as the database driver reports it; ``-1`` when it does not know.

        SQLite reports ``-1`` for a ``SELECT``; MySQL's unbuffered (streaming) cursor reports
        "unknown" as ``2**64 - 1``, which is ``-1`` here too.
        """
        count = self._cursor.rowcount
        return count if 0 <= count < 2**63 else -1

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        from sqlalchemy import exc

        if not self._cursor.returns_rows:
            return
        try:
            for batch in self._cursor.partitions(STREAM_BATCH):
                self.rows_read += len(batch)
                yield from (tuple(row) for row in batch)
        except exc.SQLAlchemyError as error:
            raise DatabaseError(f"query failed: {error_line(error, with_type=True)}") from None
        self.duration = time.perf_counter() - self._started


def streamable(sql: str) -> bool:
    """Whether *sql* can be read through a server-side cursor: a query that changes nothing.

    PostgreSQL declares a cursor only for a ``SELECT``, ``VALUES``, ``TABLE`` or ``WITH``
    query without ``INTO`` or a data-modifying part. A statement that merely mentions one
    of those words (in a string, say) is read the ordinary way: correct, only not streamed.
    """
    return _QUERY_START.match(sql) is not None and _DATA_MODIFYING.search(sql) is None


def _open(conn: SAConnection, sql: str, params: Mapping[str, Any] | None, *, stream: bool = False) -> RowStream:
    """Execute one statement and return its rows, unread.

    With *params*, ``:name`` placeholders are bound; without, the SQL goes to the
    database as written (so ``'10:30'`` needs no escaping). With *stream*, a query is read
    through a server-side cursor where the driver has one (PostgreSQL, MySQL), so only
    :data:`STREAM_BATCH` rows are in memory at a time; SQLite reads rows lazily anyway.
    """
    from sqlalchemy import exc, text

    started = time.perf_counter()
    if stream and streamable(sql):
        conn = conn.execution_options(stream_results=True, max_row_buffer=STREAM_BATCH)
    try:
        if params is None:  # no_parameters: the driver sees no parameter list, so '%' needs no escaping
            cursor = conn.execution_options(no_parameters=True).exec_driver_sql(sql)
        else:
            cursor = conn.execute(text(sql), dict(params))
    except exc.SQLAlchemyError as error:
        raise DatabaseError(f"query failed: {error_line(error, with_type=True)}") from None
    return RowStream(cursor, started)


def _run(conn: SAConnection, sql: str, params: Mapping[str, Any] | None) -> QueryResult:
    """Run one statement and read all of its rows."""
    rows = _open(conn, sql, params)
    fetched = list(rows)
    return QueryResult(rows.columns, fetched, rows.rowcount, rows.duration)


class Transaction:
    """Statements run on one connection inside one transaction."""

    def __init__(self, conn: SAConnection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        """Run a statement inside the transaction."""
        return _run(self._conn, sql, params)


class Connection:
    """A named database connection. The engine is created on first use."""

    def __init__(self, name: str, url: DatabaseURL, plugins: Plugins) -> None:
        self.name = name
        self.url = url
        self._plugins = plugins
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, made by the driver that serves the URL."""
        if self._engine is None:
            self._engine = self._plugins.driver_for(self.url).connect(self.url)
        return self._engine

    @contextlib.contextmanager
    def _connection(self) -> Iterator[SAConnection]:
        from sqlalchemy import exc

        try:
            conn = self.engine.connect()
        except exc.SQLAlchemyError as error:
            raise DatabaseError(f"cannot connect to {self.url}: {error_line(error, with_type=True)}") from None
        with conn:
            yield conn

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        """Run one statement in its own transaction, committed when it succeeds."""
        with self._connection() as conn, conn.begin():
            return _run(conn, sql, params)

    @contextlib.contextmanager
    def stream(self, sql: str, params: Mapping[str, Any] | None = None) -> Iterator[RowStream]:
        """Run one statement in its own transaction and yield its rows as they arrive.

        Memory holds :data:`STREAM_BATCH` rows whatever the result's size. The transaction
        is committed when the block ends without an exception.
        """
        with self._connection() as conn, conn.begin():
            yield _open(conn, sql, params, stream=True)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A transaction: committed when the block succeeds, rolled back when it raises."""
        with self._connection() as conn, conn.begin():
            yield Transaction(conn)

    def server_version(self) -> str:
        """Connect and return the server's version as the dialect reports it."""
        with self._connection() as conn:
            info = conn.dialect.server_version_info
        return ".".join(str(part) for part in info) if info else "unknown"

    def close(self) -> None:
        """Close every pooled connection."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


class DatabaseManager:
    """Several named connections at once, from a configuration or added by hand."""

    def __init__(self, config: Config | None = None, *, plugins: Plugins | None = None) -> None:
        self.config = config or Config()
        self.plugins = plugins or load_plugins()
        self._connections: dict[str, Connection] = {}

    def add(self, name: str, url: str | DatabaseURL) -> Connection:
        """Add (or replace) connection *name*."""
        if name in self._connections:
            self._connections.pop(name).close()
        parsed = url if isinstance(url, DatabaseURL) else DatabaseURL.parse(url)
        self.plugins.driver_for(parsed)  # fail now, with the install hint, not at first query
        connection = self._connections[name] = Connection(name, parsed, self.plugins)
        return connection

    def get(self, ref: str | None = None) -> Connection:
        """A connection by name or URL (see :meth:`Config.resolve`), opened on first use."""
        if ref in self._connections:
            return self._connections[ref]
        label, url = self.config.resolve(ref)
        return self._connections.get(label) or self.add(label, url)

    def close(self) -> None:
        """Close every connection."""
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def __enter__(self) -> DatabaseManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
