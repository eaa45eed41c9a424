"""Both sides of a diff made comparable: the normalisation every definition gets, and the engine's read-back.

:func:`normalise` applies :data:`RULES` (one small function per rule) so that equal
schemas written differently compare equal: resolved constraint names, primary-key columns
NOT NULL, identity columns NOT NULL without a default, defaults as inspect reads them,
``no action`` as no action given, no ``renamed_from`` hints. :func:`read_back` applies
:data:`READ_BACK`: what a definition becomes once an engine holds it (its stored types,
numbering, enum storage, view SQL, comments and index kinds), each rule asking the
engine's :class:`~dbkeeper.plugin.SchemaDialect`, so that a database generated from a
definition diffs empty against it. Pure Python: no database, no SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Literal, TypeVar

from dbkeeper.schema.definition import (
    Check,
    Column,
    ColumnType,
    Enum,
    Expression,
    ForeignKey,
    Index,
    SchemaDefinition,
    Table,
    UniqueConstraint,
    View,
)
from dbkeeper.schema.naming import constraint_name

_Named = TypeVar("_Named", UniqueConstraint, ForeignKey, Index, Check)

if TYPE_CHECKING:
    from dbkeeper.plugin.schema import SchemaDialect


def resolve_names(table: Table) -> Table:
    """Every constraint and index is compared under its resolved name.

    An unnamed unique constraint and the same one named ``uq_<table>_<columns>`` are equal:
    the name is the one the naming convention gives (or its own).
    """

    def named(items: Iterable[_Named]) -> tuple[_Named, ...]:
        return tuple(replace(item, name=constraint_name(table, item)) for item in items)

    key = table.primary_key
    return replace(
        table,
        primary_key=None if key is None else replace(key, name=constraint_name(table, key)),
        unique=named(table.unique),
        foreign_keys=named(table.foreign_keys),
        indexes=named(table.indexes),
        checks={check.label: replace(check, name=constraint_name(table, check)) for check in table.checks.values()},
    )


def primary_key_not_null(table: Table) -> Table:
    """Primary-key and identity columns are NOT NULL, whatever the definition says: every engine makes them so."""
    key = () if table.primary_key is None else table.primary_key.columns
    return _with_columns(
        table,
        lambda column: (
            replace(column, nullable=False) if column.nullable and (column.name in key or column.identity) else column
        ),
    )


def forget_hints(table: Table) -> Table:
    """``renamed_from`` hints are not compared: they say how to get there, not what is there."""
    table = table if table.renamed_from is None else replace(table, renamed_from=None)
    return _with_columns(
        table, lambda column: column if column.renamed_from is None else replace(column, renamed_from=None)
    )


def identity_without_default(table: Table) -> Table:
    """An identity column has no default: the database numbers it (inspect reads none)."""
    return _with_columns(
        table,
        lambda column: replace(column, default=None) if column.identity and column.default is not None else column,
    )


def defaults_as_read(table: Table) -> Table:
    """A default is compared as a database reads it back.

    An expression that is a literal (``{expression: "0"}``, ``'new'``, ``TRUE``, ``NULL``)
    is that literal (``NULL``: no default); ``CURRENT_TIMESTAMP(6)`` is ``CURRENT_TIMESTAMP``;
    ``0``/``1`` on a ``bool`` column is ``false``/``true``.
    """
    return _with_columns(table, _default_as_read)


def default_actions(table: Table) -> Table:
    """A foreign key's ``no action`` is the engine's default: the same as no action given."""

    def plain(key: ForeignKey) -> ForeignKey:
        if "no action" not in (key.on_delete, key.on_update):
            return key
        on_delete = None if key.on_delete == "no action" else key.on_delete
        on_update = None if key.on_update == "no action" else key.on_update
        return replace(key, on_delete=on_delete, on_update=on_update)

    if not table.foreign_keys:
        return table
    return replace(table, foreign_keys=tuple(plain(key) for key in table.foreign_keys))


#: The normalisation applied to every table of both definitions before comparing, in order.
#: Not compared either: the order of columns (no engine reorders them without rebuilding
#: the table) and the order of unique constraints, foreign keys, indexes and checks (each
#: is matched by its resolved name).
RULES: tuple[Callable[[Table], Table], ...] = (
    resolve_names,
    primary_key_not_null,
    forget_hints,
    identity_without_default,
    defaults_as_read,
    default_actions,
)


def normalise(definition: SchemaDefinition) -> SchemaDefinition:
    """*definition* with :data:`RULES` applied to each table."""
    tables = {}
    for name, table in definition.tables.items():
        for rule in RULES:
            table = rule(table)
        tables[name] = table
    return replace(definition, tables=tables)


def _with_columns(table: Table, change: Callable[[Column], Column]) -> Table:
    """*table* with *change* applied to each column (*table* itself when *change* changes none)."""
    columns = {name: change(column) for name, column in table.columns.items()}
    if all(columns[name] is column for name, column in table.columns.items()):
        return table
    return replace(table, columns=columns)


def _default_as_read(column: Column) -> Column:
    """One column's default as a database reads it back (see :func:`defaults_as_read`)."""
    from dbkeeper.schema.defaults import read_default

    default = column.default
    if isinstance(default, Expression):
        default = read_default(default.sql, column.type)
    if column.type.name == "bool" and isinstance(default, int) and not isinstance(default, bool):
        default = bool(default)
    return column if default is column.default else replace(column, default=default)


# --- what an engine reads back --------------------------------------------------------


def read_back(definition: SchemaDefinition, dialect: str | SchemaDialect) -> SchemaDefinition:
    """*definition* as ``inspect`` reads it back from a *dialect* database it was generated into.

    *dialect* is a driver's name or its :class:`~dbkeeper.plugin.SchemaDialect`; the rules of
    :data:`READ_BACK` ask it what the engine keeps, so a third-party dialect needs no rule
    of its own. SQL text (views, checks, ``where``) is kept as written: engines rewrite it
    in their own ways (PostgreSQL's casts), which no rule can foresee.
    """
    from dbkeeper.schema.metadata import schema_dialect

    engine = schema_dialect(dialect)
    for rule in READ_BACK:
        definition = rule(definition, engine)
    return definition


def stored_types(definition: SchemaDefinition, dialect: SchemaDialect) -> SchemaDefinition:
    """A type the engine cannot keep is the type it stores (:meth:`~dbkeeper.plugin.SchemaDialect.stored_type`).

    On SQLite ``uuid`` is ``text``, ``timestamptz`` ``timestamp`` and ``double`` ``float``
    (``REAL``); on MySQL ``timestamptz`` is ``timestamp``.
    """

    def column(table: Table, item: Column) -> Column:
        if item.type.name == "enum":
            return item
        stored = dialect.stored_type(item.type)
        return item if stored == item.type else replace(item, type=stored)

    return _each_column(definition, column)


def numbered(definition: SchemaDefinition, dialect: SchemaDialect) -> SchemaDefinition:
    """``identity`` is what the engine numbers, as ``inspect`` tells it (the dialect's numbering, ``is_identity``).

    SQLite numbers only its rowid, a one-column ``INTEGER PRIMARY KEY`` (such a key of type
    ``int`` is an identity column, of another integer type with ``identity`` is ``int``);
    MySQL only the first column of the primary key; ``identity`` anywhere else is not kept.
    """

    def column(table: Table, item: Column) -> Column:
        key = table.primary_key.columns if table.primary_key is not None else ()
        if not item.identity and item.name not in key:
            return item
        portable, numbered = item.type, False
        if item.identity:
            numbering = dialect.numbering(table, item)
            numbered = numbering.note is None
            if numbered and numbering.type is not None:
                text = numbering.type.compile(dialect=dialect.sqlalchemy_dialect).upper()
                portable = dialect.portable_type(text) or portable
        reflected = {"name": item.name, "identity": numbered or None, "autoincrement": numbered}
        identity = dialect.is_identity(reflected, key, portable)
        if identity == item.identity and portable == item.type:
            return item
        return replace(item, type=portable, identity=identity, default=None if identity else item.default)

    return _each_column(definition, column)


def enums_per_column(definition: SchemaDefinition, dialect: SchemaDialect) -> SchemaDefinition:
    """Without named enum types (SQLite's checks, MySQL's ``ENUM(...)``), each column has its own enum.

    It is named ``<table>_<column>`` and has the values (and no comment); an enum no
    column uses is gone.
    """
    if dialect.enum_storage == "named":
        return definition
    enums: dict[str, Enum] = {}

    def column(table: Table, item: Column) -> Column:
        used = definition.enums.get(str(item.type.enum)) if item.type.name == "enum" else None
        if used is None:
            return item
        name = f"{table.name}_{item.name}"
        enums[name] = Enum(name, used.values)
        return replace(item, type=ColumnType("enum", enum=name))

    return replace(_each_column(definition, column), enums=enums)


def view_sql(definition: SchemaDefinition, dialect: SchemaDialect) -> SchemaDefinition:
    """A view is the SQL it runs on the engine: its ``dialects`` entry for it, else ``sql``."""
    views = {name: View(name, view.sql_for(dialect.name), {}, view.comment) for name, view in definition.views.items()}
    return replace(definition, views=views)


def no_comments(definition: SchemaDefinition, dialect: SchemaDialect) -> SchemaDefinition:
    """Comments the engine does not keep are gone.

    SQLite keeps none (tables, columns, views, enums); MySQL none on views and enums: a
    view's or enum's when the dialect has no ``comment_on`` for it, a table's or column's
    when SQLAlchemy's dialect does not support comments.
    """

    def kept(kind: Literal["TYPE", "VIEW"], name: str, comment: str | None) -> str | None:
        return comment if comment is not None and dialect.comment_on(kind, name, comment) is not None else None

    views = {name: replace(view, comment=kept("VIEW", name, view.comment)) for name, view in definition.views.items()}
    named = dialect.enum_storage == "named"
    enums = {
        name: replace(enum, comment=kept("TYPE", name, enum.comment) if named else None)
        for name, enum in definition.enums.items()
    }
    definition = replace(definition, views=views, enums=enums)
    if dialect.sqlalchemy_dialect.supports_comments:
        return definition
    tables = {name: replace(table, comment=None) for name, table in definition.tables.items()}
    return _each_column(replace(definition, tables=tables), lambda _, item: replace(item, comment=None))


def indexes_kept(definition: SchemaDefinition, dialect: SchemaDialect) -> SchemaDefinition:
    """The indexes and key names the engine keeps.

    Without partial indexes (MySQL) an index covers every row; without expression indexes
    (MariaDB) an expression index is left out; where primary keys keep no name of their own
    (MySQL's are all ``PRIMARY``, SQLite's cannot be renamed), a primary key has the
    convention's name.
    """
    partial, expressions = dialect.no_partial_indexes is None, dialect.no_expression_indexes is None
    if partial and expressions and dialect.primary_key_names:
        return definition

    def table(item: Table) -> Table:
        indexes = tuple(
            index if partial else replace(index, where=None)
            for index in item.indexes
            if expressions or all(isinstance(column, str) for column in index.columns)
        )
        key = item.primary_key
        if key is not None and not dialect.primary_key_names:
            key = replace(key, name=None)
        return replace(item, indexes=indexes, primary_key=key)

    return replace(definition, tables={name: table(item) for name, item in definition.tables.items()})


#: The rules of :func:`read_back`, in order; each asks the dialect what its engine keeps.
READ_BACK: tuple[Callable[[SchemaDefinition, SchemaDialect], SchemaDefinition], ...] = (
    stored_types,
    numbered,
    enums_per_column,
    view_sql,
    no_comments,
    indexes_kept,
)


def _each_column(definition: SchemaDefinition, change: Callable[[Table, Column], Column]) -> SchemaDefinition:
    """*definition* with *change* applied to each column of each table."""
    tables = {name: _with_columns(table, partial(change, table)) for name, table in definition.tables.items()}
    return replace(definition, tables=tables)
