"""A definition as SQLAlchemy ``MetaData`` for one dialect: the tables ``generate`` compiles.

:func:`build_metadata` maps every table of a :class:`~dbkeeper.schema.SchemaDefinition`
to a ``sqlalchemy.Table`` with each portable type turned into the dialect's type (the
mapping of docs/schema.md), defaults, identity columns, keys, indexes and checks, every
constraint and index under its name from the naming convention. What a dialect cannot
keep is reported as a *lossy* note ``(path, message)``, the path naming the field.

Everything engine-specific is the driver's :class:`~dbkeeper.plugin.SchemaDialect`
(the ``dbkeeper_schema_dialect`` hook): a dialect named by a string (``"sqlite"``) is
resolved through the plugin manager to the driver of that name (:func:`schema_dialect`).
Views, named enum types and ``COMMENT ON`` statements are not part of ``MetaData``'s
``CREATE TABLE``: :mod:`dbkeeper.schema.generate` emits them. SQLAlchemy is imported
inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from functools import cache
from typing import TYPE_CHECKING, Any

from dbkeeper.errors import SchemaError
from dbkeeper.schema.definition import Check, Column, ColumnType, ForeignKey, Index, SchemaDefinition, Table
from dbkeeper.schema.naming import constraint_name, conventional_name

if TYPE_CHECKING:
    import sqlalchemy

    from dbkeeper.plugin.manager import Plugins
    from dbkeeper.plugin.schema import SchemaDialect

#: A dialect's name: the name of the driver whose schema dialect it is (``"sqlite"``, ``"mysql"``).
Dialect = str
#: A note about something the dialect cannot keep: (path of the field, message).
Note = tuple[str, str]


@dataclass
class SchemaMetaData:
    """A definition mapped for one dialect: the ``MetaData``, and the notes about what was lost."""

    definition: SchemaDefinition
    dialect: SchemaDialect
    metadata: sqlalchemy.MetaData
    notes: list[Note] = field(default_factory=list)


def schema_dialect(dialect: str | SchemaDialect, plugins: Plugins | None = None) -> SchemaDialect:
    """The schema dialect of the driver *dialect* names (``mariadb`` → the ``mysql`` driver's).

    *plugins* defaults to every installed plugin, loaded once. A dialect whose driver is
    not installed raises :class:`~dbkeeper.errors.DriverNotFoundError` naming the
    distribution to install.
    """
    from dbkeeper.plugin.schema import SchemaDialect

    if isinstance(dialect, SchemaDialect):
        return dialect
    if plugins is None:
        return _installed_dialect(dialect)
    return plugins.driver_for_dialect(dialect).schema_dialect()


@cache
def _installed_dialect(name: str) -> SchemaDialect:
    return _installed_plugins().driver_for_dialect(name).schema_dialect()


@cache
def _installed_plugins() -> Plugins:
    from dbkeeper.plugin.manager import load_plugins

    return load_plugins()


def sqlalchemy_dialect(dialect: str | SchemaDialect) -> Any:
    """SQLAlchemy's dialect object for *dialect*, for compiling DDL without a connection."""
    return schema_dialect(dialect).sqlalchemy_dialect


def build_metadata(
    definition: SchemaDefinition, dialect: str | SchemaDialect, tables: Collection[str] | None = None
) -> SchemaMetaData:
    """*definition* (validated) as SQLAlchemy ``MetaData`` for *dialect*, with the notes on lossy mappings.

    With *tables*, only those tables (and, without their own foreign keys, the tables their
    foreign keys reference) are mapped: what ``diff`` renders needs no more. Raises
    :class:`~dbkeeper.errors.SchemaError` for what the dialect cannot express at all (a
    ``decimal`` beyond MySQL's limits).
    """
    import sqlalchemy as sa

    built = SchemaMetaData(definition, schema_dialect(dialect), sa.MetaData())
    problems: list[Note] = []
    wanted = definition.tables if tables is None else {name: definition.tables[name] for name in tables}
    for table in wanted.values():
        _add_table(built, table, problems)
    referenced = {key.referenced_table for table in wanted.values() for key in table.foreign_keys} - set(wanted)
    for name in sorted(referenced):
        _add_table(built, replace(definition.tables[name], foreign_keys=()), [], notes=False)
    if problems:
        raise SchemaError(problems)
    return built


def _add_table(built: SchemaMetaData, table: Table, problems: list[Note], *, notes: bool = True) -> None:
    """Add *table* to ``built.metadata`` with its columns, keys, checks and indexes; its notes unless not *notes*."""
    import sqlalchemy as sa

    if not notes:
        kept = built.notes
        built.notes = []
        _add_table(built, table, problems)
        built.notes = kept
        return

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
    problems += built.dialect.table_problems(table)
    items += [_index(built, table, index, f"{path}.indexes.{n}") for n, index in enumerate(table.indexes)]
    sa.Table(table.name, built.metadata, *[item for item in items if item is not None], comment=table.comment)
    _comment_note(built, table.comment, f"{path}.comment")


def _comment_note(built: SchemaMetaData, comment: str | None, path: str) -> None:
    """A note at *path* when there is a table or column comment and the dialect keeps none."""
    if comment is not None and not built.dialect.sqlalchemy_dialect.supports_comments:
        built.notes.append((path, f"{built.dialect.title} keeps no comments; left out"))


def _column(built: SchemaMetaData, table: Table, column: Column, problems: list[Note]) -> Any:
    """The ``sqlalchemy.Column`` of *column*: its dialect type, default, identity and comment."""
    import sqlalchemy as sa

    path = f"tables.{table.name}.columns.{column.name}"
    sa_type = _dialect_type(built, column.type, f"{path}.type", problems)
    arguments: dict[str, Any] = {"nullable": column.nullable, "comment": column.comment, "autoincrement": False}
    if column.default is not None:
        arguments["server_default"] = built.dialect.default(column.default, column.type)
    items: list[Any] = []
    if column.identity:
        numbering = built.dialect.numbering(table, column)
        items, arguments["autoincrement"] = list(numbering.items), numbering.autoincrement
        sa_type = sa_type if numbering.type is None else numbering.type
        if numbering.note is not None:
            built.notes.append((f"{path}.identity", numbering.note))
        elif table.primary_key is None or column.name not in table.primary_key.columns:
            arguments["nullable"] = False  # numbered: NOT NULL (PostgreSQL refuses IDENTITY … NULL); a key's already is
    _comment_note(built, column.comment, f"{path}.comment")
    return sa.Column(column.name, sa_type, *items, **arguments)


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
    """Enums stored as checked text: a ``CHECK (column IN (...))`` per enum column, ``ck_<table>_<column>_enum``."""
    import sqlalchemy as sa

    if built.dialect.enum_storage != "check":
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

    None for an index with an expression on a dialect without expression indexes (a note says so).
    """
    import sqlalchemy as sa

    dialect = built.dialect
    if dialect.no_expression_indexes is not None and len(index.column_names) < len(index.columns):
        built.notes.append((path, dialect.no_expression_indexes))
        return None
    parts = [entry if isinstance(entry, str) else sa.text(entry.sql) for entry in index.columns]
    options: dict[str, Any] = {}
    if index.where is not None:
        if dialect.no_partial_indexes is not None:
            built.notes.append((f"{path}.where", dialect.no_partial_indexes))
        else:
            options[f"{dialect.sqlalchemy_dialect.name}_where"] = sa.text(index.where)
    return sa.Index(constraint_name(table, index), *parts, unique=index.unique, **options)


def _dialect_type(built: SchemaMetaData, portable: ColumnType, path: str, problems: list[Note]) -> Any:
    """The SQLAlchemy type *portable* becomes on ``built.dialect``; a lossy one adds a note at *path*."""
    dialect = built.dialect
    if portable.name == "enum" and portable.enum is not None:
        return dialect.enum_type(built.definition.enums[portable.enum])
    problem = dialect.type_problem(portable)
    if problem is not None:
        problems.append((path, problem))
    sa_type = dialect.column_type(portable)
    lossy = dialect.lossy_types.get(portable.name)
    if lossy is not None:
        sql = sa_type.compile(dialect=dialect.sqlalchemy_dialect)
        built.notes.append((path, lossy.format(type=portable, sql=sql)))
    return sa_type
