"""The hook implementations of dbkeeper-{{name}}.

dbkeeper loads this module through the ``dbkeeper`` entry point in ``pyproject.toml``.
The driver registered here serves ``{{name}}://`` URLs: the core sends it every
connect, dump and restore for them, and nothing else. As rendered it keeps SQLite files
(``{{name}}:///app.db``) with a plain SQL dump — a complete example of the contract,
meant to be replaced by your engine's code, hook by hook:

- ``dbkeeper_connect``: a SQLAlchemy engine, opening no connection yet;
- ``dbkeeper_dump``: one consistent snapshot written into ``request.artifacts``
  (streamed: the core compresses and hashes it on the way), with its row counts;
- ``dbkeeper_restore``: the artifacts read back — verified while streaming — into the
  target, which is never left half-written and never overwritten unless ``force``.

Optional hooks, skipped by the conformance kit when absent: ``dbkeeper_inspect_backup``
(``verify --deep``), ``dbkeeper_migrate`` (``dbkeeper migrate``), the monitoring hooks, and
``dbkeeper_schema_dialect`` (``dbkeeper schema``: return a subclass of
``dbkeeper.plugin.SchemaDialect`` overriding what your engine does differently). See
dbkeeper's ``docs/hooks.md`` for every hook's contract.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dbkeeper.plugin import (
    ArtifactReader,
    ConnectRequest,
    DatabaseError,
    DatabaseNotFoundError,
    DatabaseURL,
    DriverInfo,
    DriverOptions,
    DumpRequest,
    DumpResult,
    InvalidURLError,
    RestoreRequest,
    RestoreResult,
    TargetNotEmptyError,
    hookimpl,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

DRIVER = DriverInfo(
    name="{{name}}",
    schemes=("{{name}}",),
    formats=("sql",),
    description="{{name}}: SQLite files with a plain SQL dump (rendered from dbkeeper's plugin template)",
)
CHUNK = 1 << 20
"""Bytes read or written at a time: memory stays flat whatever the database's size."""


@hookimpl
def dbkeeper_register_drivers(register: Callable[[DriverInfo], None]) -> None:
    """Register the driver: its name, URL schemes and dump formats (the first is the default)."""
    register(DRIVER)


def _path(url: DatabaseURL) -> Path:
    if not url.database:
        raise InvalidURLError(f"{url.safe()} names no file: use {{name}}:///relative.db or {{name}}:////absolute.db")
    return Path(url.database)


def _tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1")
    return [name for (name,) in rows]


def _row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    quoted = {table: '"' + table.replace('"', '""') + '"' for table in _tables(conn)}
    return {table: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for table, name in quoted.items()}


@hookimpl
def dbkeeper_connect(request: ConnectRequest) -> Engine:
    """A SQLAlchemy engine for the file; a missing file is an error unless ``request.create``."""
    from sqlalchemy import create_engine

    path = _path(request.url)
    if not request.create and not path.is_file():
        raise DatabaseNotFoundError(f"database file {path} does not exist")
    return create_engine(f"sqlite:///{path}")


@hookimpl
def dbkeeper_dump(request: DumpRequest[DriverOptions]) -> DumpResult:
    """The SQL text of the whole database and its row counts, both from one read transaction."""
    path = _path(request.url)
    if not path.is_file():
        raise DatabaseNotFoundError(f"database file {path} does not exist")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("BEGIN")  # one snapshot for the counts and the dump, while others write
        counts = _row_counts(conn)
        with request.artifacts.open(f"{path.stem}.sql") as out:
            batch: list[str] = []
            size = 0
            for line in conn.iterdump():
                batch.append(line + "\n")
                size += len(line) + 1
                if size >= CHUNK:
                    out.write("".join(batch).encode())
                    batch, size = [], 0
            out.write("".join(batch).encode())
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot dump {path}: {exc}") from None
    finally:
        conn.close()
    return DumpResult(engine="sqlite", engine_version=sqlite3.sqlite_version, database=path.stem, row_counts=counts)


def _statements(reader: ArtifactReader) -> Iterator[str]:
    """Whole SQL statements from a streamed script, one at a time."""
    pending, rest = "", b""
    while chunk := reader.read(CHUNK):
        *lines, rest = (rest + chunk).split(b"\n")
        for line in lines:
            pending += line.decode() + "\n"
            if sqlite3.complete_statement(pending):
                yield pending
                pending = ""
    if (pending + rest.decode()).strip():
        raise DatabaseError("the SQL dump ends inside a statement: it was cut short")


@hookimpl
def dbkeeper_restore(request: RestoreRequest[DriverOptions]) -> RestoreResult:
    """Load the dump into a new file beside the target, then swap it in with one rename."""
    target = _path(request.url)
    if target.is_file() and not request.force:
        with sqlite3.connect(f"file:{target}?mode=ro", uri=True) as existing:
            if tables := _tables(existing):
                raise TargetNotEmptyError(f"{target} already holds tables ({', '.join(tables[:3])}); pass --force")
    (name,) = request.artifacts.names()
    fresh = target.with_name(f".{target.name}.restoring")
    fresh.unlink(missing_ok=True)
    conn = sqlite3.connect(fresh, isolation_level=None)
    try:
        with request.artifacts.open(name) as reader:
            try:
                for statement in _statements(reader):
                    conn.execute(statement)
            except sqlite3.Error as exc:
                while reader.read(CHUNK):  # damage is reported as damage, not as the SQL error it caused
                    pass
                raise DatabaseError(f"the SQL dump does not load: {exc}") from None
        counts = _row_counts(conn)  # the reader has returned its verified end: the data is proven
        conn.close()
        with fresh.open("rb") as file:
            os.fsync(file.fileno())
        with request.committing():  # Ctrl-C/SIGTERM wait for the rename, then say the target was replaced
            os.replace(fresh, target)
    finally:
        conn.close()
        fresh.unlink(missing_ok=True)
    return RestoreResult(database=target.stem, row_counts=counts)
