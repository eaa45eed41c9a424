"""The drill's integrity check of a restored PostgreSQL database: ``amcheck`` on every B-tree index.

``bt_index_check`` verifies each B-tree index's structure (ordering within and across
pages, page-level invariants) under the same light lock as a ``SELECT``. The extension
is created in the checked database when it is available and missing there (the drill's
own database: a throwaway server's, or the scratch database of ``--into``); when it is
not installed on the server, or may not be created by the connecting user, the check is
``skipped`` with the reason. Every statement is bounded by ``statement_timeout``. The
indexes are checked on up to one connection per CPU at once, biggest first
(:mod:`dbkeeper_postgresql.parallel`); the problems are reported in the order of the
indexes' names.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, NamedTuple, cast

from dbkeeper.plugin import DatabaseURL, IntegrityCheck, error_line
from dbkeeper_postgresql.bounded import open_bounded
from dbkeeper_postgresql.parallel import on_connections

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

NAME = "amcheck"
CONNECT_SECONDS = 30.0
STATEMENT_SECONDS = 600.0
"""The longest one index's check (or the extension's creation) may take."""
LOCK_SECONDS = 30.0
SHOWN_PROBLEMS = 5
INDEXES = """
SELECT c.oid, format('%I.%I', n.nspname, c.relname), pg_relation_size(c.oid)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am a ON a.oid = c.relam
WHERE a.amname = 'btree' AND c.relpersistence <> 't'
ORDER BY 2
"""
"""Every B-tree index of the database (system catalogs' too), but other sessions' temporary ones, and its size."""
SCHEMA = (
    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'"
)


class Index(NamedTuple):
    """A B-tree index to check: its oid, ``schema.name`` and size in bytes."""

    oid: object
    name: str
    size: int


def check_indexes(url: DatabaseURL) -> IntegrityCheck:
    """``bt_index_check`` of every B-tree index of the database at *url*; skipped when amcheck is unavailable."""
    from psycopg import sql

    connect = functools.partial(
        open_bounded,
        url,
        "drill",
        within=CONNECT_SECONDS,
        statement_timeout=STATEMENT_SECONDS,
        lock_timeout=LOCK_SECONDS,
    )
    with connect() as connection:
        schema, why_not = _amcheck_schema(connection)
        if schema is None:
            return IntegrityCheck(NAME, True, why_not, skipped=True)
        check = sql.SQL("SELECT {}.bt_index_check(%s::oid::regclass)").format(sql.Identifier(schema))
        indexes = [Index(oid, str(name), cast(int, size)) for oid, name, size in connection.execute(INDEXES).fetchall()]
        found = on_connections(
            connection, connect, indexes, functools.partial(_problem, check=check), size=lambda index: index.size
        )
    problems = [problem for problem in found if problem]
    if not problems:
        return IntegrityCheck(NAME, True, f"bt_index_check of {len(indexes)} B-tree indexes: ok")
    shown = "; ".join(problems[:SHOWN_PROBLEMS])
    more = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
    return IntegrityCheck(NAME, False, f"{len(problems)} of {len(indexes)} B-tree indexes failed: {shown}{more}")


def _amcheck_schema(connection: psycopg.Connection[tuple[object, ...]]) -> tuple[str | None, str]:
    """The schema of the amcheck extension, created when available; else None and why."""
    import psycopg

    row = connection.execute(SCHEMA).fetchone()
    if row is not None:
        return str(row[0]), ""
    if connection.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck'").fetchone() is None:
        return (
            None,
            "the amcheck extension is not installed on the server (it ships with the PostgreSQL server packages)",
        )
    try:
        connection.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
    except psycopg.Error as exc:
        return None, f"cannot create the amcheck extension: {error_line(exc)}"
    row = connection.execute(SCHEMA).fetchone()
    return (str(row[0]), "") if row else (None, "the amcheck extension could not be found after creating it")


def _problem(connection: psycopg.Connection[tuple[object, ...]], index: Index, *, check: sql.Composed) -> str | None:
    """What ``bt_index_check`` says is wrong with *index*, or None."""
    import psycopg

    try:
        connection.execute(check, (index.oid,))
    except psycopg.Error as exc:
        return f"{index.name}: {error_line(exc)}"
    return None
