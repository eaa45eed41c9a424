"""The MySQL/MariaDB half of schema migrations: journaled statements under ``GET_LOCK``.

DDL commits implicitly on these servers, so no transaction can undo a half-run
migration: the core journals every statement and, on failure, runs the down part's
matching statements; this module supplies the lock, the statement splitter (the
``mariadb`` client's, ``DELIMITER`` included) and a schema fingerprint that tells the
next run whether a statement interrupted by a kill took effect.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from sqlalchemy import Connection

from dbkeeper.plugin import MigrationError, end_of_quoted
from dbkeeper_mysql.sqltext import delimiter_command

_COMMENT_OR_BLANK = re.compile(r"(?:--[ \t][^\n]*|--\n|#[^\n]*|/\*(?!!).*?\*/|\s)*", re.DOTALL)

FINGERPRINT = """
SELECT MD5(COALESCE(GROUP_CONCAT(item ORDER BY item SEPARATOR '\\n'), '')) FROM (
  SELECT CONCAT_WS(' ', 'tab', TABLE_NAME, TABLE_TYPE, ENGINE) AS item
    FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()
  UNION ALL
  SELECT CONCAT_WS(' ', 'col', TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA)
    FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()
  UNION ALL
  SELECT CONCAT_WS(' ', 'idx', TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE)
    FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()
  UNION ALL
  SELECT CONCAT_WS(' ', 'rtn', ROUTINE_TYPE, ROUTINE_NAME, MD5(ROUTINE_DEFINITION))
    FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()
  UNION ALL
  SELECT CONCAT_WS(' ', 'trg', TRIGGER_NAME, EVENT_OBJECT_TABLE, MD5(ACTION_STATEMENT))
    FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()
  UNION ALL
  SELECT CONCAT_WS(' ', 'view', TABLE_NAME, MD5(VIEW_DEFINITION))
    FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()
) AS schema_items
"""
"""A digest of the current database's schema: tables, columns, indexes, routines, triggers, views."""


def split_statements(script: str) -> list[str]:
    """Split as the ``mariadb`` client does: at the delimiter outside quotes and comments.

    ``DELIMITER //`` lines change the delimiter (for routine and trigger bodies) and are
    client commands, not statements.
    """
    statements: list[str] = []
    delimiter = ";"
    pending = ""
    for line in script.split("\n"):
        at_statement_start = _COMMENT_OR_BLANK.fullmatch(pending) is not None
        if at_statement_start and (changed := delimiter_command(line.strip().encode())):
            delimiter = changed.decode()
            continue
        pending += line + "\n"
        while (end := _find_delimiter(pending, delimiter)) >= 0:
            statements.append(pending[:end])
            pending = pending[end + len(delimiter) :]
    statements.append(pending)
    return [s.strip() for s in statements if _COMMENT_OR_BLANK.fullmatch(s) is None]


def _find_delimiter(text: str, delimiter: str) -> int:
    """Where *delimiter* first occurs outside strings, quoted names and comments; -1 if not yet."""
    position = 0
    while position < len(text):
        char = text[position]
        if char in "'\"`":
            position = end_of_quoted(text, position, backslash_escapes=char != "`")
        elif text.startswith(("-- ", "--\t", "--\n", "#"), position):
            newline = text.find("\n", position)
            position = len(text) if newline < 0 else newline + 1
        elif text.startswith("/*", position) and not text.startswith("/*!", position):
            close = text.find("*/", position + 2)
            position = len(text) if close < 0 else close + 2
        elif text.startswith(delimiter, position):
            return position
        else:
            position += 1
    return -1


class MysqlMigrations:
    """Migrations on MySQL/MariaDB: journaled statement by statement under ``GET_LOCK``.

    The lock is named after the database and held by the run's dedicated connection;
    the server releases it when that connection ends, even when the process is killed.
    A failed migration is undone with its down part, which must mirror the up part
    statement for statement (see docs/migrations.md).
    """

    transactional_ddl = False
    supports_no_transaction = True

    def split(self, script: str) -> list[str]:
        """The statements of *script*, ``DELIMITER`` blocks included."""
        return split_statements(script)

    @contextlib.contextmanager
    def lock(self, conn: Connection, timeout: float) -> Iterator[None]:
        """``GET_LOCK('dbkeeper.migrate.<database>', timeout)``, released at the end."""
        name = conn.exec_driver_sql("SELECT CONCAT('dbkeeper.migrate.', DATABASE())").scalar()
        if not conn.exec_driver_sql("SELECT GET_LOCK(%s, %s)", (name, timeout)).scalar():
            holder = conn.exec_driver_sql("SELECT IS_USED_LOCK(%s)", (name,)).scalar()
            raise MigrationError(
                f"waited {timeout:g}s for the migration lock, held by connection {holder} (another migration "
                "run); try again, or give more time with --lock-timeout"
            )
        try:
            yield
        finally:
            conn.exec_driver_sql("SELECT RELEASE_LOCK(%s)", (name,))

    def begin(self, conn: Connection, timeout: float) -> None:
        """``START TRANSACTION`` (it covers data, not DDL; the core journals DDL instead)."""
        conn.exec_driver_sql("START TRANSACTION")

    def schema_fingerprint(self, conn: Connection) -> str:
        """A digest of the database's schema, to tell whether an interrupted statement took effect."""
        return str(conn.exec_driver_sql(FINGERPRINT).scalar())
