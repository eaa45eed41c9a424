"""The SQLite schema dialect: what ``dbkeeper schema`` needs to know about SQLite.

SQLite has few types (a column's type only sets its affinity), so several portable
types are stored as another and ``generate`` says so; it keeps no comments; an enum is
text with a ``CHECK (column IN (…))``; only a one-column ``INTEGER PRIMARY KEY`` is
numbered (it is the rowid). SQLAlchemy's ``Inspector`` misses expression indexes and
what is written on a column (``UNIQUE``, ``REFERENCES … ON DELETE``): they are read from
``sqlite_master`` and its ``PRAGMA`` statements. SQLAlchemy is imported inside the methods.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from dbkeeper.plugin import (
    Change,
    Column,
    ColumnType,
    Default,
    Expression,
    Numbering,
    Reflected,
    SchemaDialect,
    Table,
    TypeFactory,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection

_NO_TYPE = "{type} has no SQLite type; stored as {sql}"
_INDEX = re.compile(r"CREATE\s+(UNIQUE\s+)?INDEX\s+.*?\s+ON\s+\S+\s*\((.*?)\)(?:\s+WHERE\s+(.*))?", re.S | re.I)
_BARE_NAME = re.compile(r'\s*"?\w+"?\s*')


class SqliteSchema(SchemaDialect):
    """SQLite: type affinities, the rowid, enums as checks, no comments."""

    name = "sqlite"
    title = "SQLite"
    lossy_types: ClassVar[Mapping[str, str]] = {
        "bool": _NO_TYPE + " (INTEGER 0/1: any integer is accepted)",
        "decimal": "{type} is {sql} on SQLite: stored as an integer or an 8-byte float, not exactly",
        "float": "{type} is {sql} on SQLite: 8 bytes, not 4",
        "varchar": "{type} is {sql} on SQLite: the length is not enforced",
        "timestamptz": _NO_TYPE + " (ISO 8601 text, UTC by convention, no zone)",
        "uuid": _NO_TYPE + " (36 characters, not checked)",
    }
    enum_storage = "check"
    primary_key_names = False  # kept only in the table's SQL: a renamed table's pk_<old> stays

    def alters_in_place(self, change: Change, table: Table | None) -> bool:
        """``ALTER TABLE`` renames tables and columns, adds a column it can fill and drops one nothing uses.

        Anything else — a column's type, nullability or default, a key, constraint or
        check added or dropped, an enum's values (a ``CHECK``) — rebuilds the table. A
        comment alone changes nothing (SQLite keeps none).
        """
        if change.kind in _REBUILT or change.kind in ("add_enum_values", "remove_enum_values"):
            return False
        if change.kind == "alter_column":
            before, after = _column(change.before), _column(change.after)
            return _without_comment(before, after.name) == _without_comment(after, after.name)
        if change.kind == "add_column":
            return _addable(_column(change.after))
        if change.kind == "drop_column":
            return table is None or not _pinned(table, _column(change.before))
        return True

    def rebuild_guards(self, table: str, referencing: list[str]) -> tuple[list[str], list[str]]:
        """A TEMP table whose named ``CHECK`` fails when *table* has triggers or the rebuild orphaned rows.

        SQLite's pragmas cannot fail a statement by themselves: the constraint's name is
        the error the user reads. Rows pointing nowhere are counted before and after, by
        ``pragma_foreign_key_check``: every one of *table*, and those of the tables
        *referencing* it whose key points at *table*. A count that grew fails; rows that
        pointed nowhere before (SQLite lets them in while foreign keys are off) do not.
        """
        guard = f'"_dbkeeper_guard_{_quote(table)}"'
        sources = ", ".join(f"({_text(name)})" for name in [table, *referencing])
        before = [
            f"CREATE TEMP TABLE {guard} (\n"
            "    source TEXT,\n"
            f"    triggers INTEGER CONSTRAINT {_message(_TRIGGERS, table)} CHECK (triggers = 0),\n"
            f"    orphans INTEGER CONSTRAINT {_message(_ORPHANS, table)} CHECK (orphans <= 0)\n)",
            f"INSERT INTO {guard} SELECT NULL, count(*), 0 FROM sqlite_master\n"
            f"WHERE type = 'trigger' AND tbl_name = {_text(table)}",
            f"INSERT INTO {guard} SELECT column1, 0, -{_orphans(table, 'column1')}\nFROM (VALUES {sources})",
        ]
        after = [
            f"UPDATE {guard} SET orphans = orphans + {_orphans(table, 'source')}\nWHERE source IS NOT NULL",
            f"DROP TABLE temp.{guard}",
        ]
        return before, after

    def engine_types(self) -> Mapping[str, TypeFactory]:
        """REAL for both floats, DATETIME for timestamps, TEXT for UUIDs."""
        import sqlalchemy as sa

        return {
            "double": lambda _t: sa.REAL(),
            "bytes": lambda _t: sa.BLOB(),
            "timestamp": lambda _t: sa.DATETIME(),
            "timestamptz": lambda _t: sa.DATETIME(),
            "uuid": lambda _t: sa.TEXT(),
        }

    def numbering(self, table: Table, column: Column) -> Numbering:
        """Only a one-column ``INTEGER PRIMARY KEY`` is numbered: the rowid."""
        import sqlalchemy as sa

        primary = table.primary_key.columns if table.primary_key is not None else ()
        if primary == (column.name,):
            return Numbering(type=sa.INTEGER(), autoincrement=True)
        return Numbering(autoincrement=False, note="SQLite numbers only a one-column INTEGER PRIMARY KEY; not numbered")

    def default(self, value: Default, portable: ColumnType) -> Any:
        """Booleans as 1 and 0 (SQLite has no TRUE before 3.23)."""
        import sqlalchemy as sa

        if isinstance(value, bool):
            return sa.text("1" if value else "0")
        return super().default(value, portable)

    def is_identity(self, column: Mapping[str, Any], primary_key: tuple[str, ...], portable: ColumnType) -> bool:
        """A one-column integer primary key is the rowid, which SQLite numbers."""
        rowid = primary_key == (column["name"],) and portable.name == "int"
        return rowid or super().is_identity(column, primary_key, portable)

    def amend_reflection(self, conn: Connection, tables: list[str], found: Reflected) -> None:
        """Expression indexes, and the ``UNIQUE`` and foreign key actions written on a column."""
        for table in tables:
            found["indexes"].setdefault(table, []).extend(_expression_indexes(conn, table, found["indexes"]))
            _column_constraints(conn, table, found)


#: Changes SQLite's ALTER TABLE cannot make at all.
_REBUILT = frozenset(
    (
        "drop_foreign_key",
        "drop_unique",
        "drop_check",
        "drop_primary_key",
        "add_primary_key",
        "add_unique",
        "add_check",
        "add_foreign_key",
    )
)
_TRIGGERS = "{table} has triggers, which rebuilding it would lose: drop them before this migration, create them after"
_ORPHANS = "rebuilding {table} left rows pointing nowhere: PRAGMA foreign_key_check lists them"


def _orphans(table: str, source: str) -> str:
    """The rows of the table named by the SQL *source* that point nowhere: all of *table*'s, else those into it."""
    return (
        f"(SELECT count(*) FROM pragma_foreign_key_check({source})\n"
        f"    WHERE {source} = {_text(table)} OR parent = {_text(table)})"
    )


def _message(template: str, table: str) -> str:
    """A guard's error message, as the quoted name of its CHECK constraint."""
    return '"' + template.format(table=table).replace('"', '""') + '"'


def _text(value: str) -> str:
    """*value* as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _column(subject: object) -> Column:
    assert isinstance(subject, Column), subject
    return subject


def _without_comment(column: Column, name: str) -> Column:
    """*column* under *name* with no comment: SQLite keeps none, so a comment alone changes nothing."""
    return replace(column, name=name, comment=None, renamed_from=None)


def _addable(column: Column) -> bool:
    """Whether ``ALTER TABLE … ADD COLUMN`` can add *column*: no expression default, NOT NULL only with a default."""
    if column.identity or column.type.name == "enum" or isinstance(column.default, Expression):
        return False
    return column.nullable or column.default is not None


def _pinned(table: Table, column: Column) -> bool:
    """Whether a key, unique constraint, foreign key, check or enum check uses *column* (SQLite refuses the drop)."""
    keys = [table.primary_key.columns] if table.primary_key is not None else []
    keys += [unique.columns for unique in table.unique] + [key.columns for key in table.foreign_keys]
    checks = " ".join(check.expression for check in table.checks.values())
    return column.type.name == "enum" or any(column.name in key for key in keys) or column.name in checks


def _quote(name: str) -> str:
    """*name* ready to go between double quotes."""
    return name.replace('"', '""')


def _column_constraints(conn: Connection, table: str, found: Reflected) -> None:
    """What SQLAlchemy misses when written on a column: ``UNIQUE``, and ``REFERENCES … ON DELETE``."""
    pragma = conn.exec_driver_sql
    known = {tuple(info["column_names"]) for info in found["unique"].get(table, [])}
    for _, index, _, origin, _ in pragma(f'PRAGMA index_list("{_quote(table)}")').all():
        columns = tuple(row[2] for row in pragma(f'PRAGMA index_info("{_quote(index)}")').all())
        if origin == "u" and columns not in known:
            found["unique"].setdefault(table, []).append({"name": None, "column_names": list(columns)})
    groups: dict[int, tuple[str, list[str], dict[str, str]]] = {}
    for row in pragma(f'PRAGMA foreign_key_list("{_quote(table)}")').all():
        groups.setdefault(row[0], (row[2], [], {"onupdate": row[5], "ondelete": row[6]}))[1].append(row[3])
    actions = {(referenced, tuple(columns)): options for referenced, columns, options in groups.values()}
    for info in found["fks"].get(table, []):
        options = actions.get((info["referred_table"], tuple(info["constrained_columns"])))
        if options is not None and not info.get("options"):
            info["options"] = options


def _expression_indexes(conn: Connection, table: str, found: dict[str, Any]) -> list[dict[str, Any]]:
    """The indexes of *table* SQLAlchemy skips (those with an expression), parsed from their SQL."""
    import sqlalchemy as sa

    known = {info["name"] for info in found.get(table, [])}
    rows = conn.execute(
        sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"),
        {"t": table},
    )
    indexes = []
    for name, sql in rows:
        match = _INDEX.fullmatch(sql)
        if name in known or match is None:
            continue
        parts = _split(match.group(2))
        indexes.append(
            {
                "name": name,
                "unique": bool(match.group(1)),
                "column_names": [None if not _BARE_NAME.fullmatch(p) else p.strip('"') for p in parts],
                "expressions": parts,
                "dialect_options": {"sqlite_where": match.group(3)} if match.group(3) else {},
            }
        )
    return indexes


def _split(sql: str) -> list[str]:
    """The comma-separated parts of *sql* at the outer level: ``lower(a), b`` → ``['lower(a)', 'b']``."""
    parts, depth, current = [], 0, ""
    for char in sql:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()]
