"""A definition as SQLAlchemy ``MetaData`` for one dialect: the tables ``generate`` compiles.

:func:`build_metadata` maps every table of a :class:`~dbkeeper.schema.SchemaDefinition`
to a ``sqlalchemy.Table`` with each portable type turned into the dialect's type (the
mapping of docs/schema.md), defaults, identity columns, keys, indexes and checks, every
constraint and index under its name from the naming convention. What a dialect cannot
keep is reported as a *lossy* note ``(path, message)``, the path naming the field.

Views, PostgreSQL enum types and comments are not part of ``MetaData``'s ``CREATE TABLE``:
:mod:`dbkeeper.schema.generate` emits them. SQLAlchemy is imported inside the functions,
so importing this module stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from dbkeeper.errors import SchemaError
from dbkeeper.schema.definition import (
    Check,
    Column,
    ColumnType,
    Expression,
    ForeignKey,
    Index,
    SchemaDefinition,
    Table,
)
from dbkeeper.schema.naming import constraint_name, conventional_name

if TYPE_CHECKING:
    import sqlalchemy

Dialect = Literal["sqlite", "postgresql", "mysql"]
#: The dialects ``generate`` writes DDL for, as the CLI spells them.
GENERATE_DIALECTS: tuple[Dialect, ...] = ("sqlite", "postgresql", "mysql")
#: How each dialect is named in messages.
DIALECT_TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MySQL"}
#: A note about something the dialect cannot keep: (path of the field, message).
Note = tuple[str, str]

#: Expressions every engine takes as a default without parentheses (SQLite and MySQL want
#: any other in parentheses, such as ``(lower('X'))`` or ``(CURRENT_DATE)``).
_BARE_DEFAULT = re.compile(r"CURRENT_TIMESTAMP(?:\([0-9]\))?|NULL|TRUE|FALSE|-?[0-9]+(?:\.[0-9]+)?", re.ASCII | re.I)
#: MySQL's DECIMAL limits: precision and scale.
MYSQL_DECIMAL = (65, 30)


@dataclass
class SchemaMetaData:
    """A definition mapped for one dialect: the ``MetaData``, and the notes about what was lost."""

    definition: SchemaDefinition
    dialect: Dialect
    metadata: sqlalchemy.MetaData
    notes: list[Note] = field(default_factory=list)


#: Makes the dialect's type of a portable type (``decimal(10, 2)`` → ``NUMERIC(10, 2)``).
TypeFactory = Callable[[ColumnType], Any]


def build_metadata(definition: SchemaDefinition, dialect: Dialect) -> SchemaMetaData:
    """*definition* (validated) as SQLAlchemy ``MetaData`` for *dialect*, with the notes on lossy mappings.

    Raises :class:`~dbkeeper.errors.SchemaError` for what the dialect cannot express at
    all (a ``decimal`` beyond MySQL's limits).
    """
    import sqlalchemy as sa

    if dialect not in GENERATE_DIALECTS:
        raise SchemaError([("dialect", f"unknown dialect {dialect!r} (one of: {', '.join(GENERATE_DIALECTS)})")])
    built = SchemaMetaData(definition, dialect, sa.MetaData())
    problems: list[Note] = []
    for table in definition.tables.values():
        _add_table(built, table, problems)
    if problems:
        raise SchemaError(problems)
    return built


def _add_table(built: SchemaMetaData, table: Table, problems: list[Note]) -> None:
    """Add *table* to ``built.metadata`` with its columns, keys, checks and indexes."""
    import sqlalchemy as sa

    path = f"tables.{table.name}"
    items: list[Any] = [_column(built, table, column, problems) for column in table.columns.values()]
    if table.primary_key is not None:
        items.append(
            sa.PrimaryKeyConstraint(*table.primary_key.columns, name=constraint_name(table, table.primary_key))
        )
    items += [sa.UniqueConstraint(*unique.columns, name=constraint_name(table, unique)) for unique in table.unique]
    items += [_foreign_key(table, key) for key in table.foreign_keys]
    items += [_check(table, check) for check in table.checks.values()]
    items += _enum_checks(built, table)
    if built.dialect == "mysql":
        problems += _mysql_problems(table)
    items += [_index(built, table, index, f"{path}.indexes.{n}") for n, index in enumerate(table.indexes)]
    sa.Table(table.name, built.metadata, *[item for item in items if item is not None], comment=table.comment)
    if table.comment is not None and built.dialect == "sqlite":
        built.notes.append((f"{path}.comment", "SQLite keeps no comments; left out"))


def _column(built: SchemaMetaData, table: Table, column: Column, problems: list[Note]) -> Any:
    """The ``sqlalchemy.Column`` of *column*: its dialect type, default, identity and comment."""
    import sqlalchemy as sa

    path = f"tables.{table.name}.columns.{column.name}"
    sa_type = _dialect_type(built, column.type, f"{path}.type", problems)
    arguments: dict[str, Any] = {"nullable": column.nullable, "comment": column.comment, "autoincrement": False}
    if column.default is not None:
        arguments["server_default"] = _default(column.default, column.type, built.dialect)
    items: list[Any] = []
    if column.identity:
        items, sa_type, arguments["autoincrement"] = _identity(built, table, column, path, sa_type)
    if column.comment is not None and built.dialect == "sqlite":
        built.notes.append((f"{path}.comment", "SQLite keeps no comments; left out"))
    return sa.Column(column.name, sa_type, *items, **arguments)


def _identity(
    built: SchemaMetaData, table: Table, column: Column, path: str, sa_type: Any
) -> tuple[list[Any], Any, bool | str]:
    """How *column*, an identity column, is numbered: IDENTITY, AUTO_INCREMENT or SQLite's rowid.

    Returns the column's extra items, its type and its ``autoincrement`` for SQLAlchemy.
    """
    import sqlalchemy as sa

    if built.dialect == "postgresql":
        return [sa.Identity()], sa_type, "auto"
    primary = table.primary_key.columns if table.primary_key is not None else ()
    if built.dialect == "sqlite":
        if primary == (column.name,):
            return [], sa.INTEGER(), True  # INTEGER PRIMARY KEY: the rowid numbers the rows
        built.notes.append((f"{path}.identity", "SQLite numbers only a one-column INTEGER PRIMARY KEY; not numbered"))
        return [], sa_type, False
    if not primary or primary[0] != column.name:
        built.notes.append((f"{path}.identity", "MySQL numbers only the first column of the primary key; not numbered"))
        return [], sa_type, False
    return [], sa_type, True


def _default(default: object, portable: ColumnType, dialect: Dialect) -> Any:
    """*default* as a server default: a quoted literal, a number, a boolean, or an SQL expression."""
    import sqlalchemy as sa

    if isinstance(default, Expression):
        sql = default.sql.strip()
        if dialect == "mysql" and portable.name in ("timestamp", "timestamptz") and sql.upper() == "CURRENT_TIMESTAMP":
            sql = "CURRENT_TIMESTAMP(6)"  # DATETIME(6) needs the same precision
        return sa.text(sql if _BARE_DEFAULT.fullmatch(sql) else f"({sql})")
    if isinstance(default, bool):
        if dialect == "sqlite":
            return sa.text("1" if default else "0")
        return sa.text("TRUE" if default else "FALSE")
    if isinstance(default, int | float):
        return sa.text(repr(default))
    if dialect == "mysql" and portable.name in _MYSQL_UNKEYED:
        literal = sa.literal(str(default)).compile(dialect=sqlalchemy_dialect(dialect), compile_kwargs=_LITERAL)
        return sa.text(f"({literal})")  # MySQL takes a TEXT/BLOB/JSON default only as an expression
    return str(default)  # SQLAlchemy quotes it as a string literal of the dialect


#: Portable types MySQL stores as TEXT/BLOB/JSON: no literal default, no key without a prefix length.
_MYSQL_UNKEYED = ("text", "bytes", "json")
_LITERAL = {"literal_binds": True}


def _mysql_problems(table: Table) -> list[Note]:
    """What MySQL refuses in *table*: a key or index on a TEXT/BLOB/JSON column, a SET DEFAULT action."""
    path = f"tables.{table.name}"
    keyed: list[tuple[str, tuple[str, ...]]] = [(f"{path}.unique.{n}", u.columns) for n, u in enumerate(table.unique)]
    if table.primary_key is not None:
        keyed.append((f"{path}.primary_key", table.primary_key.columns))
    keyed += [(f"{path}.indexes.{n}", index.column_names) for n, index in enumerate(table.indexes)]
    keyed += [(f"{path}.foreign_keys.{n}", key.columns) for n, key in enumerate(table.foreign_keys)]
    problems = []
    for where, columns in keyed:
        unkeyed = [name for name in columns if table.columns[name].type.name in _MYSQL_UNKEYED]
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


def _foreign_key(table: Table, key: ForeignKey) -> Any:
    """The ``ForeignKeyConstraint`` of *key*, with its actions."""
    import sqlalchemy as sa

    return sa.ForeignKeyConstraint(
        list(key.columns),
        [f"{key.referenced_table}.{column}" for column in key.referenced_columns],
        name=constraint_name(table, key),
        ondelete=key.on_delete.upper() if key.on_delete else None,
        onupdate=key.on_update.upper() if key.on_update else None,
    )


def _check(table: Table, check: Check) -> Any:
    """The ``CheckConstraint`` of *check*."""
    import sqlalchemy as sa

    return sa.CheckConstraint(check.expression, name=constraint_name(table, check))


def _enum_checks(built: SchemaMetaData, table: Table) -> list[Any]:
    """On SQLite, a ``CHECK (column IN (...))`` for each enum column (``ck_<table>_<column>_enum``)."""
    import sqlalchemy as sa

    if built.dialect != "sqlite":
        return []
    checks = []
    for column in table.columns.values():
        if column.type.name == "enum" and column.type.enum is not None:
            values = built.definition.enums[column.type.enum].values
            condition = sa.column(column.name).in_(values)
            checks.append(sa.CheckConstraint(condition, name=conventional_name("ck", table.name, column.name, "enum")))
    return checks


def _index(built: SchemaMetaData, table: Table, index: Index, path: str) -> Any:
    """The ``sqlalchemy.Index`` of *index*: expressions as SQL text, ``where`` as the dialect's partial index.

    None on MySQL for an index with an expression: MariaDB has none (a note says so).
    """
    import sqlalchemy as sa

    if built.dialect == "mysql" and len(index.column_names) < len(index.columns):
        built.notes.append((path, "MariaDB has no expression indexes (MySQL 8.0.13 has); left out"))
        return None
    parts = [entry if isinstance(entry, str) else sa.text(entry.sql) for entry in index.columns]
    options: dict[str, Any] = {}
    if index.where is not None:
        if built.dialect == "mysql":
            built.notes.append((f"{path}.where", "MySQL has no partial indexes; the index covers every row"))
        else:
            options[f"{built.dialect}_where"] = sa.text(index.where)
    return sa.Index(constraint_name(table, index), *parts, unique=index.unique, **options)


def _dialect_type(built: SchemaMetaData, portable: ColumnType, path: str, problems: list[Note]) -> Any:
    """The SQLAlchemy type *portable* becomes on ``built.dialect``; a lossy one adds a note at *path*."""
    if portable.name == "enum" and portable.enum is not None:
        return _enum_type(built, portable.enum)
    if built.dialect == "mysql" and portable.name == "decimal":
        precision, scale = portable.precision or 0, portable.scale or 0
        if precision > MYSQL_DECIMAL[0] or scale > MYSQL_DECIMAL[1]:
            problems.append((path, f"{portable}: MySQL's DECIMAL allows a precision up to 65 and a scale up to 30"))
    factory, lossy = type_map()[built.dialect][portable.name]
    sa_type = factory(portable)
    if lossy is not None:
        built.notes.append((path, lossy.format(type=portable, sql=_type_sql(sa_type, built.dialect))))
    return sa_type


def _enum_type(built: SchemaMetaData, name: str) -> Any:
    """An enum column's type: TEXT (SQLite, with a check), the named PostgreSQL type, an inline MySQL ENUM."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql, postgresql

    values = built.definition.enums[name].values
    if built.dialect == "postgresql":
        return postgresql.ENUM(*values, name=name, create_type=False)
    if built.dialect == "mysql":
        return mysql.ENUM(*values)
    return sa.TEXT()


def _type_sql(sa_type: Any, dialect: Dialect) -> str:
    """How *sa_type* is written in *dialect*'s DDL: ``NUMERIC(10, 2)``."""
    compiled: str = sa_type.compile(dialect=sqlalchemy_dialect(dialect))
    return compiled


def sqlalchemy_dialect(dialect: Dialect) -> Any:
    """SQLAlchemy's dialect object for *dialect*, for compiling DDL without a connection."""
    return _dialects()[dialect]


@cache
def _dialects() -> dict[str, Any]:
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    factories: dict[str, Any] = {"sqlite": sqlite.dialect, "postgresql": postgresql.dialect, "mysql": mysql.dialect}
    return {name: factory() for name, factory in factories.items()}


#: The lossy mappings' messages: ``{type}`` is the portable type, ``{sql}`` the dialect's.
_NO_TYPE = "{type} has no %s type; stored as {sql}"
_SQLITE_LOSSY = {
    "bool": (_NO_TYPE % "SQLite") + " (INTEGER 0/1: any integer is accepted)",
    "decimal": "{type} is {sql} on SQLite: stored as an integer or an 8-byte float, not exactly",
    "float": "{type} is {sql} on SQLite: 8 bytes, not 4",
    "varchar": "{type} is {sql} on SQLite: the length is not enforced",
    "timestamptz": (_NO_TYPE % "SQLite") + " (ISO 8601 text, UTC by convention, no zone)",
    "uuid": (_NO_TYPE % "SQLite") + " (36 characters, not checked)",
}
_MYSQL_LOSSY = {
    "timestamptz": (_NO_TYPE % "MySQL") + " (UTC by convention, no zone)",
    "uuid": (_NO_TYPE % "MySQL") + " (36 characters, not checked)",
}


@cache
def type_map() -> dict[str, dict[str, tuple[TypeFactory, str | None]]]:
    """Portable type name → (factory of the dialect's type, lossy message or None), per dialect."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql, postgresql

    def numeric(t: ColumnType) -> Any:
        return sa.NUMERIC(t.precision, t.scale)

    def varchar(t: ColumnType) -> Any:
        return sa.VARCHAR(t.length)

    def fixed(factory: Callable[[], Any]) -> TypeFactory:
        return lambda _t: factory()

    common: dict[str, TypeFactory] = {
        "bool": fixed(sa.BOOLEAN),
        "smallint": fixed(sa.SMALLINT),
        "int": fixed(sa.INTEGER),
        "bigint": fixed(sa.BIGINT),
        "decimal": numeric,
        "varchar": varchar,
        "date": fixed(sa.DATE),
    }
    sqlite: dict[str, TypeFactory] = {
        **common,
        "float": fixed(sa.REAL),
        "double": fixed(sa.REAL),
        "text": fixed(sa.TEXT),
        "bytes": fixed(sa.BLOB),
        "time": fixed(sa.TIME),
        "timestamp": fixed(sa.DATETIME),
        "timestamptz": fixed(sa.DATETIME),
        "json": fixed(sa.JSON),
        "uuid": fixed(sa.TEXT),
    }
    postgres: dict[str, TypeFactory] = {
        **common,
        "float": fixed(sa.REAL),
        "double": fixed(sa.DOUBLE_PRECISION),
        "text": fixed(sa.TEXT),
        "bytes": fixed(postgresql.BYTEA),
        "time": fixed(sa.TIME),
        "timestamp": fixed(lambda: sa.TIMESTAMP(timezone=False)),
        "timestamptz": fixed(lambda: sa.TIMESTAMP(timezone=True)),
        "json": fixed(postgresql.JSONB),
        "uuid": fixed(postgresql.UUID),
    }
    mysql_types: dict[str, TypeFactory] = {
        **common,
        "int": fixed(mysql.INTEGER),
        "decimal": lambda t: mysql.DECIMAL(t.precision, t.scale),
        "float": fixed(mysql.FLOAT),
        "double": fixed(mysql.DOUBLE),
        "text": fixed(mysql.LONGTEXT),
        "bytes": fixed(mysql.LONGBLOB),
        "time": fixed(lambda: mysql.TIME(fsp=6)),
        "timestamp": fixed(lambda: mysql.DATETIME(fsp=6)),
        "timestamptz": fixed(lambda: mysql.DATETIME(fsp=6)),
        "json": fixed(mysql.JSON),
        "uuid": fixed(lambda: mysql.CHAR(36)),
    }

    def with_notes(types: dict[str, TypeFactory], lossy: dict[str, str]) -> dict[str, tuple[TypeFactory, str | None]]:
        return {name: (factory, lossy.get(name)) for name, factory in types.items()}

    return {
        "sqlite": with_notes(sqlite, _SQLITE_LOSSY),
        "postgresql": with_notes(postgres, {}),
        "mysql": with_notes(mysql_types, _MYSQL_LOSSY),
    }
