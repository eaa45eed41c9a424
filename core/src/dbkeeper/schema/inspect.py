"""A live database read back into a :class:`~dbkeeper.schema.SchemaDefinition`.

:func:`inspect_schema` opens the connection (a name or URL) through its driver and reads
the connected schema: tables, columns, keys, indexes, checks, comments, views and enums.
A driver whose :class:`~dbkeeper.plugin.SchemaDialect` reads it with its own catalog
queries (:meth:`~dbkeeper.plugin.SchemaDialect.read_schema`, PostgreSQL's) does so;
otherwise SQLAlchemy's ``Inspector`` reads it (its multi-table ``get_multi_*`` methods,
with the dialect's hooks for what it misses: named enum types, details). Both give a
:class:`~dbkeeper.plugin.LiveSchema`, from which the same code makes the definition,
asking the dialect what depends on the engine: engine types mapped back to portable
types (its generate mapping inverted), SQL text made portable, which columns it numbers.
A type with no portable equivalent is a problem line naming the column. Constraint and
index names are kept only where they differ from the naming convention. SQLAlchemy is
imported inside the functions, and only on the ``Inspector``'s path.
"""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING, Any

from dbkeeper.errors import DatabaseError, SchemaError
from dbkeeper.plugin.schema import LiveSchema, Reflected
from dbkeeper.schema.defaults import read_default, unwrap
from dbkeeper.schema.definition import (
    Check,
    Column,
    ColumnType,
    Enum,
    Expression,
    ForeignKey,
    Index,
    PrimaryKey,
    SchemaDefinition,
    Table,
    UniqueConstraint,
    View,
)
from dbkeeper.schema.metadata import Note, schema_dialect
from dbkeeper.schema.naming import constraint_name, conventional_name

if TYPE_CHECKING:
    from dbkeeper.connections.config import Config
    from dbkeeper.connections.database import Connection
    from dbkeeper.plugin.manager import Plugins
    from dbkeeper.plugin.schema import SchemaDialect

#: Tables dbkeeper keeps for itself, never part of a definition.
_OWN_TABLES = re.compile(r"_migrations.*")
_ENUM_CHECK = re.compile(r"\s*\(?\s*\"?(\w+)\"?\s+IN\s*\((.*)\)\s*\)?\s*", re.S | re.I)
_QUOTED = re.compile(r"'((?:[^']|'')*)'")
_CREATE_VIEW = re.compile(r"^CREATE\s.*?\bVIEW\s+\S+\s+AS\s+", re.I | re.S)


def inspect_schema(
    connection_or_url: str | None, config: Config | None = None, plugins: Plugins | None = None
) -> SchemaDefinition:
    """The definition of the database *connection_or_url* (a connection name or URL).

    The driver reads the schema itself when its dialect offers it
    (:meth:`~dbkeeper.plugin.SchemaDialect.read_schema`), else SQLAlchemy's ``Inspector``
    does; either way the same code below makes the definition of what was read.
    Raises :class:`~dbkeeper.errors.DatabaseError` (one line) when the database cannot be
    read, :class:`~dbkeeper.errors.SchemaError` for engine types with no portable type.
    """
    from dbkeeper.connections.database import DatabaseManager

    with DatabaseManager(config, plugins=plugins) as manager:
        connection = manager.get(connection_or_url)
        dialect = manager.plugins.driver_for(connection.url).schema_dialect()
        try:
            live = dialect.read_schema(connection.url)
        except DatabaseError as error:
            raise DatabaseError(f"cannot inspect {connection.url}: {error}") from None
        if live is None:
            live = _inspected(connection, dialect)
        return _Builder(dialect, live).definition()


def dialect_of(name: str, plugins: Plugins | None = None) -> str:
    """The dialect of a URL scheme or driver name *name* (``mariadb`` → ``mysql``): its driver's name.

    Raises :class:`~dbkeeper.errors.DriverNotFoundError` when no installed driver serves it.
    """
    return schema_dialect(name, plugins).name


def _inspected(connection: Connection, dialect: SchemaDialect) -> LiveSchema:
    """The schema of *connection* read with SQLAlchemy's ``Inspector`` and the dialect's inspect hooks."""
    from sqlalchemy import exc

    from dbkeeper.connections.urls import error_line

    try:
        with connection.engine.connect() as conn:
            return _InspectorReader(conn, dialect).read()
    except exc.SQLAlchemyError as error:
        raise DatabaseError(f"cannot inspect {connection.url}: {error_line(error, with_type=True)}") from None


class _InspectorReader:
    """Reads one connected schema with SQLAlchemy's ``Inspector`` into a :class:`LiveSchema`."""

    def __init__(self, conn: Any, dialect: SchemaDialect) -> None:
        import sqlalchemy as sa

        self.conn = conn
        dialect.prepare_inspection(conn)
        self.inspector = sa.inspect(conn)
        self.dialect = dialect
        self.sa_dialect = conn.dialect

    def read(self) -> LiveSchema:
        """Every table, view and enum of the schema, as the ``Inspector`` and the dialect read them."""
        inspector = self.inspector
        enums = self.dialect.read_enums(self.conn, inspector)
        names = [name for name in inspector.get_table_names() if not _OWN_TABLES.fullmatch(name)]
        reflected = self._multi(names)
        self._as_text(reflected)
        view_names = inspector.get_view_names()
        comments = self._view_comments(view_names)
        views = {name: (str(inspector.get_view_definition(name)), comments.get(name)) for name in view_names}
        return LiveSchema(names, reflected, views, enums)

    def _multi(self, names: list[str]) -> Reflected:
        """Everything about the tables *names*, read with the multi-table methods, keyed by table."""
        inspector = self.inspector
        kinds = {
            "columns": inspector.get_multi_columns,
            "pk": inspector.get_multi_pk_constraint,
            "unique": inspector.get_multi_unique_constraints,
            "fks": inspector.get_multi_foreign_keys,
            "indexes": inspector.get_multi_indexes,
            "checks": inspector.get_multi_check_constraints,
            "comment": inspector.get_multi_table_comment,
        }
        found: Reflected = {}
        for kind, method in kinds.items():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # what an engine's Inspector skips, its dialect reads
                    values = method(filter_names=names)
            except NotImplementedError:
                values = {}
            found[kind] = {key[1]: value for key, value in values.items()}
        self.dialect.amend_reflection(self.conn, names, found)
        return found

    def _as_text(self, found: Reflected) -> None:
        """SQLAlchemy's types as the engine's type text, enums and ``where`` as :class:`LiveSchema` has them."""
        import sqlalchemy as sa

        for columns in found["columns"].values():
            for info in columns:
                sa_type = info["type"]
                if isinstance(sa_type, sa.Enum):  # PostgreSQL's ENUM and MySQL's ENUM are both sa.Enum
                    info["enum"] = {"name": sa_type.name, "labels": list(sa_type.enums)}
                else:
                    info["type"] = sa_type.compile(dialect=self.sa_dialect).upper()
        where = f"{self.sa_dialect.name}_where"
        for indexes in found["indexes"].values():
            for info in indexes:
                info["where"] = (info.get("dialect_options") or {}).get(where)

    def _view_comments(self, names: list[str]) -> dict[str, str | None]:
        """The comments of the views *names*, on an engine that keeps them (its dialect writes ``COMMENT ON VIEW``)."""
        if not names or self.dialect.comment_on("VIEW", names[0], "") is None:
            return {}
        from sqlalchemy.engine.reflection import ObjectKind

        found = self.inspector.get_multi_table_comment(filter_names=names, kind=ObjectKind.VIEW)
        return {key[1]: value.get("text") for key, value in found.items()}


class _Builder:
    """Makes the definition of a :class:`LiveSchema`, however it was read, with the driver's schema dialect."""

    def __init__(self, dialect: SchemaDialect, live: LiveSchema) -> None:
        self.dialect = dialect
        self.live = live
        self.problems: list[Note] = []
        self.types: dict[str, ColumnType | None] = {}  # engine type text → portable type: a few for many columns
        self.enums: dict[str, Enum] = {enum.name: enum for enum in live.enums}

    def definition(self) -> SchemaDefinition:
        """Every table, view and enum of the schema."""
        live = self.live
        names = sorted(name for name in live.tables if not _OWN_TABLES.fullmatch(name))  # not in creation order
        tables = {name: self._table(name, live.reflected) for name in names}
        views = {name: self._view(name, sql, comment) for name, (sql, comment) in live.views.items()}
        if self.problems:
            raise SchemaError(self.problems)
        return SchemaDefinition(tables=tables, views=views, enums=dict(self.enums))

    def _table(self, name: str, multi: dict[str, dict[Any, Any]]) -> Table:
        """Table *name* from the multi-table results."""
        checks = multi["checks"].get(name, [])
        enum_checks = self._enum_checks(name, checks)
        pk = multi["pk"].get(name) or {}
        pk_columns = tuple(pk.get("constrained_columns") or ())
        columns = {
            info["name"]: self._column(name, info, pk_columns, enum_checks) for info in multi["columns"].get(name, [])
        }
        bare = Table(name, columns)
        primary = None
        if pk_columns:
            primary = PrimaryKey(pk_columns)
            primary = PrimaryKey(pk_columns, self._own_name(bare, primary, pk.get("name")))
        unique = multi["unique"].get(name, [])
        indexes = self._indexes(bare, multi["indexes"].get(name, []), {info.get("name") for info in unique})
        return Table(
            name,
            columns,
            primary_key=primary,
            unique=tuple(self._unique(bare, info) for info in unique),
            foreign_keys=tuple(self._foreign_key(bare, key) for key in multi["fks"].get(name, [])),
            indexes=indexes,
            checks=self._checks(bare, checks, enum_checks),
            comment=(multi["comment"].get(name) or {}).get("text"),
        )

    def _column(self, table: str, info: dict[str, Any], pk: tuple[str, ...], enum_checks: dict[str, Any]) -> Column:
        """One column: its portable type, nullability, default, identity and comment."""
        name = info["name"]
        portable = self._type(table, name, info, enum_checks)
        identity = self.dialect.is_identity(info, pk, portable)
        nullable = bool(info.get("nullable", True)) and name not in pk
        sql = info.get("default")
        default = None if identity or sql is None else read_default(self.dialect.portable_sql(sql, {}), portable)
        if portable.name == "bool" and isinstance(default, int) and not isinstance(default, bool):
            default = bool(default)
        return Column(
            name, portable, nullable=nullable, default=default, identity=identity, comment=info.get("comment")
        )

    def _type(self, table: str, column: str, info: dict[str, Any], enum_checks: dict[str, Any]) -> ColumnType:
        """The portable type of the column *info*; a problem line when it has none."""
        if column in enum_checks:
            return ColumnType("enum", enum=enum_checks[column][0])
        if "enum" in info:
            return self._enum_type(table, column, info["enum"])
        text = info["type"]
        if text not in self.types:
            self.types[text] = self.dialect.portable_type(text)
        portable = self.types[text]
        if portable is None:
            self.problems.append((f"tables.{table}.columns.{column}.type", f"{text} has no portable type"))
            return ColumnType("text")
        return portable

    def _enum_type(self, table: str, column: str, enum: dict[str, Any]) -> ColumnType:
        """An enum column of a named type (that type), or of an inline one (an enum ``<table>_<column>``)."""
        name = enum["name"] if self.dialect.enum_storage == "named" else None
        if name is None:
            name = f"{table}_{column}"
            self.enums[name] = Enum(name, tuple(enum["labels"]))
        return ColumnType("enum", enum=name)

    def _enum_checks(self, table: str, checks: list[dict[str, Any]]) -> dict[str, Any]:
        """The ``ck_<table>_<column>_enum`` checks generate writes for enums stored as checked text.

        Column → (enum name, check name); the enum is named ``<table>_<column>``.
        """
        found: dict[str, Any] = {}
        if self.dialect.enum_storage != "check":
            return found
        for check in checks:
            match = _ENUM_CHECK.fullmatch(check.get("sqltext") or "")
            if match is None or check.get("name") != conventional_name("ck", table, match.group(1), "enum"):
                continue
            name = f"{table}_{match.group(1)}"
            values = tuple(value.replace("''", "'") for value in _QUOTED.findall(match.group(2)))
            self.enums[name] = Enum(name, values)
            found[match.group(1)] = (name, check["name"])
        return found

    def _indexes(self, table: Table, found: list[dict[str, Any]], constraints: set[Any]) -> tuple[Index, ...]:
        """The indexes that back no constraint (some engines list a unique constraint's index among them)."""
        indexes: list[Index] = []
        for info in found:
            if info.get("duplicates_constraint") or info.get("name") in constraints:
                continue
            where = info.get("where")
            expressions = info.get("expressions") or info.get("column_names") or []
            names = info.get("column_names") or [None] * len(expressions)
            columns = tuple(
                column if column is not None else Expression(self._sql(str(expression), table))
                for column, expression in zip(names, expressions, strict=True)
            )
            index = Index(
                columns, unique=bool(info.get("unique")), where=None if where is None else self._sql(str(where), table)
            )
            indexes.append(Index(columns, index.unique, index.where, self._own_name(table, index, info.get("name"))))
        return tuple(indexes)

    def _unique(self, table: Table, info: dict[str, Any]) -> UniqueConstraint:
        """One unique constraint."""
        constraint = UniqueConstraint(tuple(info["column_names"]))
        return UniqueConstraint(constraint.columns, self._own_name(table, constraint, info.get("name")))

    def _foreign_key(self, table: Table, info: dict[str, Any]) -> ForeignKey:
        """One foreign key with its actions (the engine's default, no action, left out)."""
        options = info.get("options") or {}
        key = ForeignKey(
            tuple(info["constrained_columns"]),
            info["referred_table"],
            tuple(info["referred_columns"]),
            on_delete=_action(options.get("ondelete")),
            on_update=_action(options.get("onupdate")),
        )
        return ForeignKey(
            key.columns,
            key.referenced_table,
            key.referenced_columns,
            key.on_delete,
            key.on_update,
            self._own_name(table, key, info.get("name")),
        )

    def _checks(self, table: Table, found: list[dict[str, Any]], enum_checks: dict[str, Any]) -> dict[str, Check]:
        """The checks, labelled by the name without ``ck_<table>_`` (the enum checks left out)."""
        skip = {check_name for _, check_name in enum_checks.values()}
        checks: dict[str, Check] = {}
        prefix = f"ck_{table.name}_"
        for info in found:
            name = info.get("name")
            if name in skip:
                continue
            label = name[len(prefix) :] if name and name.startswith(prefix) else (name or f"check_{len(checks)}")
            check = Check(label, self._sql(info["sqltext"], table))
            checks[label] = Check(label, check.expression, self._own_name(table, check, name))
        return checks

    def _view(self, name: str, sql: str, comment: str | None) -> View:
        """A view with its SQL as the engine reports it (the SELECT, where it gives the whole CREATE VIEW)."""
        sql = sql.strip().rstrip(";").strip()
        return View(name, sql=_CREATE_VIEW.sub("", sql, count=1), comment=comment)

    def _sql(self, sql: str, table: Table) -> str:
        """A check, ``where`` or index expression of *table* as the engine gave it, as a user writes it."""
        return unwrap(self.dialect.portable_sql(unwrap(sql), table.columns))

    def _own_name(self, table: Table, item: Any, name: str | None) -> str | None:
        """*name* when it differs from the convention's name of *item* and is no name the engine gives itself."""
        if name is None or name in self.dialect.engine_names or name == constraint_name(table, item):
            return None
        return name


def _action(value: str | None) -> Any:
    """A foreign key action as the definition writes it; None for the default (no action)."""
    if value is None:
        return None
    action = value.lower()
    return None if action == "no action" else action
