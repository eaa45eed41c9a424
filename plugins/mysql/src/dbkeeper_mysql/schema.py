"""The MySQL/MariaDB schema dialect: what ``dbkeeper schema`` needs to know about MySQL and MariaDB.

MySQL has no zone-aware timestamp and no UUID type (``generate`` says so), stores
``text``/``bytes`` as ``LONGTEXT``/``LONGBLOB`` (which it cannot key without a prefix
length, nor give a literal default), numbers only the first column of a primary key
(``AUTO_INCREMENT``), writes enums inline (``ENUM('a', 'b')``), has no partial indexes
and, on MariaDB, no expression indexes. SQLAlchemy's ``Inspector`` loses column defaults
and comments after an escaped quote (a backslash before a quote): ``inspect`` reads them from
``information_schema``. InnoDB makes an index for a foreign key no index starts with,
named after the key: ``inspect`` leaves it out (:func:`implicit_indexes_removed`), so
``generate`` → apply → ``inspect`` is equal. MySQL gives checks back with every name back-quoted and a quote
in a literal escaped with a backslash: ``inspect`` writes them as SQL's
(:meth:`MysqlSchema.portable_sql`). SQLAlchemy is imported inside the methods.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from dbkeeper.plugin import (
    Column,
    ColumnType,
    Default,
    Enum,
    Expression,
    Numbering,
    Reflected,
    SchemaDialect,
    Table,
    TypeFactory,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection

_NO_TYPE = "{type} has no MySQL type; stored as {sql}"
#: MySQL's DECIMAL limits: precision and scale.
DECIMAL_LIMITS = (65, 30)
#: Portable types MySQL stores as TEXT/BLOB/JSON: no literal default, no key without a prefix length.
UNKEYED = ("text", "bytes", "json")
_ESCAPE = re.compile(r"\\(.)", re.S)
#: A string literal (MySQL's escapes included), a back-quoted name (group 1), or MySQL's ``MOD`` (group 2).
_QUOTED_SQL = re.compile(r"'(?:[^'\\]|\\.|'')*'|`((?:[^`]|``)+)`|\b(MOD)\b", re.S | re.I)
_LITERAL = {"literal_binds": True}
#: ``CREATE [UNIQUE] INDEX name ON table (columns);`` as SQLAlchemy compiles it for MySQL.
_CREATE_INDEX = re.compile(r"CREATE (UNIQUE )?INDEX (\S+) ON \S+ (\(.*\));", re.DOTALL)


class MysqlSchema(SchemaDialect):
    """MySQL and MariaDB: LONGTEXT/LONGBLOB, DATETIME(6), AUTO_INCREMENT, inline ENUM."""

    name = "mysql"
    title = "MySQL"
    lossy_types: ClassVar[Mapping[str, str]] = {
        "timestamptz": _NO_TYPE + " (UTC by convention, no zone)",
        "uuid": _NO_TYPE + " (36 characters, not checked)",
    }
    type_aliases: ClassVar[Mapping[str, str]] = {"TINYINT(1)": "bool"}
    enum_storage = "inline"
    no_expression_indexes = "MariaDB has no expression indexes (MySQL 8.0.13 has); left out"
    no_partial_indexes = "MySQL has no partial indexes; the index covers every row"
    engine_names = frozenset({"PRIMARY"})
    primary_key_names = False  # every primary key is PRIMARY
    transactional_ddl = False
    implicit_foreign_key_index = True  # InnoDB's, named after the key

    def create_table(self, create: str, indexes: list[str]) -> list[str]:
        """``CREATE TABLE`` with its indexes inline: one statement, which one ``DROP TABLE`` undoes.

        A migration's down part must undo its up part statement by statement on MySQL,
        and an index a foreign key needs cannot be dropped before its table.
        """
        inline = []
        for index in indexes:
            match = _CREATE_INDEX.fullmatch(index)
            assert match is not None, index
            inline.append(f",\n    {match.group(1) or ''}INDEX {match.group(2)} {match.group(3)}")
        end = create.rfind("\n)")
        return [create[:end] + "".join(inline) + create[end:]]

    def drop_constraint(self, kind: str, table: str, name: str, *, with_index: bool) -> str | None:
        """``DROP CONSTRAINT`` for a check (MariaDB has no ``DROP CHECK``); a foreign key with InnoDB's index."""
        quote = self.sqlalchemy_dialect.identifier_preparer.quote
        if kind == "drop_check":
            return f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}"
        if kind == "drop_foreign_key" and with_index:
            return f"ALTER TABLE {quote(table)} DROP FOREIGN KEY {quote(name)}, DROP INDEX {quote(name)}"
        return None

    def existing_column(self, column: Any) -> dict[str, Any]:
        """``AUTO_INCREMENT``: ``MODIFY``/``CHANGE`` would drop it unless repeated."""
        return {"existing_autoincrement": column.autoincrement is True}

    def engine_types(self) -> Mapping[str, TypeFactory]:
        """MySQL's own types where SQL's standard ones differ."""
        from sqlalchemy.dialects import mysql

        return {
            "int": lambda _t: mysql.INTEGER(),
            "decimal": lambda t: mysql.DECIMAL(t.precision, t.scale),
            "float": lambda _t: mysql.FLOAT(),
            "double": lambda _t: mysql.DOUBLE(),
            "text": lambda _t: mysql.LONGTEXT(),
            "bytes": lambda _t: mysql.LONGBLOB(),
            "time": lambda _t: mysql.TIME(fsp=6),
            "timestamp": lambda _t: mysql.DATETIME(fsp=6),
            "timestamptz": lambda _t: mysql.DATETIME(fsp=6),
            "json": lambda _t: mysql.JSON(),
            "uuid": lambda _t: mysql.CHAR(36),
        }

    def type_problem(self, portable: ColumnType) -> str | None:
        """A ``decimal`` beyond DECIMAL's precision 65 and scale 30."""
        if portable.name == "decimal":
            precision, scale = portable.precision or 0, portable.scale or 0
            if precision > DECIMAL_LIMITS[0] or scale > DECIMAL_LIMITS[1]:
                return f"{portable}: MySQL's DECIMAL allows a precision up to 65 and a scale up to 30"
        return None

    def table_problems(self, table: Table) -> list[tuple[str, str]]:
        """A key or index on a TEXT/BLOB/JSON column; a ``set default`` foreign key action."""
        path = f"tables.{table.name}"
        keyed = [(f"{path}.unique.{n}", unique.columns) for n, unique in enumerate(table.unique)]
        if table.primary_key is not None:
            keyed.append((f"{path}.primary_key", table.primary_key.columns))
        keyed += [(f"{path}.indexes.{n}", index.column_names) for n, index in enumerate(table.indexes)]
        keyed += [(f"{path}.foreign_keys.{n}", key.columns) for n, key in enumerate(table.foreign_keys)]
        problems = []
        for where, columns in keyed:
            unkeyed = [name for name in columns if table.columns[name].type.name in UNKEYED]
            if unkeyed:
                kind = table.columns[unkeyed[0]].type
                problems.append(
                    (where, f"MySQL cannot index the {kind} column {unkeyed[0]!r} (no prefix length); use varchar(n)")
                )
        for n, key in enumerate(table.foreign_keys):
            for action, value in (("on_delete", key.on_delete), ("on_update", key.on_update)):
                if value == "set default":
                    problems.append((f"{path}.foreign_keys.{n}.{action}", "MySQL (InnoDB) refuses 'set default'"))
        return problems

    def numbering(self, table: Table, column: Column) -> Numbering:
        """``AUTO_INCREMENT``, on the first column of the primary key only."""
        primary = table.primary_key.columns if table.primary_key is not None else ()
        if not primary or primary[0] != column.name:
            note = "MySQL numbers only the first column of the primary key; not numbered"
            return Numbering(autoincrement=False, note=note)
        return Numbering(autoincrement=True)

    def default(self, value: Default, portable: ColumnType) -> Any:
        """``CURRENT_TIMESTAMP(6)`` for DATETIME(6); a TEXT/BLOB/JSON default as an expression."""
        import sqlalchemy as sa

        timestamp = portable.name in ("timestamp", "timestamptz")
        if isinstance(value, Expression) and timestamp and value.sql.strip().upper() == "CURRENT_TIMESTAMP":
            return super().default(Expression("CURRENT_TIMESTAMP(6)"), portable)  # the column's precision
        if isinstance(value, str) and portable.name in UNKEYED:
            literal = sa.literal(value).compile(dialect=self.sqlalchemy_dialect, compile_kwargs=_LITERAL)
            return sa.text(f"({literal})")  # MySQL takes a TEXT/BLOB/JSON default only as an expression
        return super().default(value, portable)

    def enum_type(self, enum: Enum) -> Any:
        """``ENUM('a', 'b')`` on the column."""
        from sqlalchemy.dialects import mysql

        return mysql.ENUM(*enum.values)

    def is_identity(self, column: Mapping[str, Any], primary_key: tuple[str, ...], portable: ColumnType) -> bool:
        """``AUTO_INCREMENT``."""
        return column.get("autoincrement") is True or super().is_identity(column, primary_key, portable)

    def portable_sql(self, sql: str, columns: Mapping[str, Column]) -> str:
        """*sql* with a back-quoted name bare where no engine needs it quoted; a quote a backslash escapes, doubled.

        A name stays back-quoted when SQLite, PostgreSQL or MySQL needs it quoted (a
        reserved word, capitals, other characters); other escapes stay as MySQL's. The
        ``MOD`` operator MySQL writes for ``%`` is ``%`` again.
        """
        return _QUOTED_SQL.sub(self._portable_quoted, sql)

    def _portable_quoted(self, match: re.Match[str]) -> str:
        """One literal or back-quoted name of :meth:`portable_sql`."""
        if match.group(2) is not None:
            return "%"
        if match.group(1) is None:
            return _ESCAPE.sub(lambda m: "''" if m[1] == "'" else m[0], match.group())
        name = match.group(1).replace("``", "`")
        return name if all(quote(name) == name for quote in self._quoters) else match.group()

    @cached_property
    def _quoters(self) -> list[Callable[[str], str]]:
        """SQLite's, PostgreSQL's and MySQL's quoting of a name (quoted only where the engine needs it)."""
        from sqlalchemy.engine import URL

        return [
            URL.create(name).get_dialect()().identifier_preparer.quote for name in ("sqlite", "postgresql", "mysql")
        ]

    def amend_reflection(self, conn: Connection, tables: list[str], found: Reflected) -> None:
        """Column defaults and comments from ``information_schema`` (SQLAlchemy loses both after an escaped quote).

        The indexes InnoDB made for foreign keys are left out (:func:`implicit_indexes_removed`).
        """
        import sqlalchemy as sa

        for table, indexes in found["indexes"].items():
            found["indexes"][table] = implicit_indexes_removed(indexes, found["fks"].get(table, []))

        rows = conn.execute(
            sa.text(
                "SELECT table_name, column_name, column_default, column_comment FROM information_schema.columns "
                "WHERE table_schema = DATABASE()"
            )
        ).all()
        details = {(table, column): (default, comment) for table, column, default, comment in rows}
        for table, infos in found["columns"].items():
            for info in infos:
                default, comment = details.get((table, info["name"]), (None, None))
                if default is not None and default.startswith("'"):  # MySQL's escapes as SQL's quotes
                    info["default"] = _ESCAPE.sub(lambda m: "''" if m[1] == "'" else m[1], default)
                elif info.get("default") is None and default not in (None, "NULL"):
                    info["default"] = default
                info["comment"] = comment or None


def implicit_indexes_removed(indexes: list[dict[str, Any]], keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """*indexes* (the ``Inspector``'s) without those InnoDB made for the foreign keys *keys*.

    InnoDB makes one for a foreign key that no index or key starts with: not unique, named
    after the key (when the key is named), on exactly its columns. Nothing in MariaDB's
    catalogue tells it from an index a user declared with that name and those columns, so
    that one is left out too: applying the definition makes the same index again.
    """
    made = {(key.get("name"), tuple(key.get("constrained_columns") or ())) for key in keys}
    return [
        index
        for index in indexes
        if index.get("unique") or (index.get("name"), tuple(index.get("column_names") or ())) not in made
    ]
