"""The PostgreSQL half of schema migrations: transactional DDL under a session advisory lock."""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Iterator

from sqlalchemy import Connection

from dbkeeper.plugin import MigrationError, end_of_quoted

LOCK_KEY = int.from_bytes(hashlib.sha256(b"dbkeeper.migrations").digest()[:8], "big", signed=True)
"""The advisory lock every dbkeeper migration run on a database takes (one bigint)."""
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")
_POLL = 0.05

FINGERPRINT = """
SELECT md5(coalesce(string_agg(item, E'\\n' ORDER BY item), '')) FROM (
  SELECT format('rel %s.%s %s', n.nspname, c.relname, c.relkind) AS item
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
  UNION ALL
  SELECT format('col %s %s %s %s', a.attrelid::regclass, a.attname, format_type(a.atttypid, a.atttypmod),
                a.attnotnull)
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE a.attnum > 0 AND NOT a.attisdropped AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname NOT LIKE 'pg_toast%'
  UNION ALL
  SELECT format('con %s %s', conrelid::regclass, pg_get_constraintdef(oid)) FROM pg_constraint
   WHERE connamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
  UNION ALL
  SELECT format('fn %s', p.oid::regprocedure) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  UNION ALL
  SELECT format('trg %s %s', tgrelid::regclass, tgname) FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL
  SELECT format('type %s', t.oid::regtype) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND t.typtype IN ('e', 'd', 'c', 'r')
) AS schema_items
"""
"""A digest of the user schema: relations, columns, constraints, functions, triggers, types."""


def split_statements(script: str) -> list[str]:
    """Split at top-level ``;`` — not inside strings, quoted names, comments or ``$tag$`` bodies."""
    statements: list[str] = []
    start = position = 0
    size = len(script)
    while position < size:
        char = script[position]
        if char == "'":
            escapes = position > 0 and script[position - 1] in "eE"  # an E'…' string
            position = end_of_quoted(script, position, backslash_escapes=escapes)
        elif char == '"':
            position = end_of_quoted(script, position, backslash_escapes=False)
        elif script.startswith("--", position):
            newline = script.find("\n", position)
            position = size if newline < 0 else newline + 1
        elif script.startswith("/*", position):
            position = _end_of_block_comment(script, position)
        elif char == "$" and (tag := _DOLLAR_TAG.match(script, position)):
            close = script.find(tag.group(), tag.end())
            position = size if close < 0 else close + len(tag.group())
        elif char == ";":
            statements.append(script[start:position])
            start = position = position + 1
        else:
            position += 1
    statements.append(script[start:])
    return [s.strip() for s in statements if _has_code(s)]


def _end_of_block_comment(script: str, position: int) -> int:
    """The index after the ``*/`` closing the comment at *position* (PostgreSQL nests them)."""
    depth, index = 0, position
    while index < len(script):
        if script.startswith("/*", index):
            depth, index = depth + 1, index + 2
        elif script.startswith("*/", index):
            depth, index = depth - 1, index + 2
            if depth == 0:
                return index
        else:
            index += 1
    return len(script)


def _has_code(statement: str) -> bool:
    without_comments = re.sub(r"--[^\n]*|/\*.*?\*/", "", statement, flags=re.DOTALL)
    return bool(without_comments.strip())


class PostgresMigrations:
    """Migrations on PostgreSQL: each in one transaction, the run under an advisory lock.

    The lock is session-level (``pg_try_advisory_lock``), taken on the run's dedicated
    connection and released with it, even when the process is killed. Inside a
    migration's transaction ``lock_timeout`` bounds how long DDL waits for table locks
    held by the application. ``no-transaction`` migrations (``CREATE INDEX
    CONCURRENTLY``) run journaled, with the schema fingerprint to settle a kill.
    """

    transactional_ddl = True
    supports_no_transaction = True
    history_schema = "public"
    """``_migrations`` always lives in ``public``: with the default ``search_path``
    (``"$user", public``) an unqualified name would move to a schema a migration creates."""

    def split(self, script: str) -> list[str]:
        """The statements of *script*; function bodies in ``$$`` stay whole."""
        return split_statements(script)

    @contextlib.contextmanager
    def lock(self, conn: Connection, timeout: float) -> Iterator[None]:
        """Take the advisory lock, waiting up to *timeout* seconds."""
        deadline = time.monotonic() + timeout
        while not conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({LOCK_KEY})").scalar():
            if time.monotonic() >= deadline:
                holder = conn.exec_driver_sql(
                    "SELECT coalesce(max(a.application_name || ' pid ' || a.pid), 'another session') "
                    f"FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' "
                    f"AND l.objid = ({LOCK_KEY} & 4294967295)::oid AND l.granted"
                ).scalar()
                raise MigrationError(
                    f"waited {timeout:g}s for the migration lock, held by {holder} (another migration run); "
                    "try again, or give more time with --lock-timeout"
                )
            time.sleep(_POLL)
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({LOCK_KEY})")

    def begin(self, conn: Connection, timeout: float) -> None:
        """``BEGIN``, with DDL waiting at most *timeout* seconds for locks held by others."""
        conn.exec_driver_sql("BEGIN")
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{round(timeout * 1000)}ms'")

    def schema_fingerprint(self, conn: Connection) -> str:
        """A digest of the user schema, to tell whether an interrupted statement took effect."""
        return str(conn.exec_driver_sql(FINGERPRINT).scalar())
