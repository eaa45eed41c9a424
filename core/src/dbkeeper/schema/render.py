"""A schema diff as SQL for one dialect: the statements of a migration's up (or down) part.

:func:`render_diff` turns each :class:`~dbkeeper.schema.changes.Change` of a
:class:`~dbkeeper.schema.changes.SchemaDiff` into the dialect's statements, in the diff's
order. Column, constraint, index and table operations go through Alembic's operations in
offline mode (``as_sql``), with the old column's type, nullability, default and comment as
an engine's ``MODIFY``/``CHANGE`` needs them. ``CREATE TABLE``/``CREATE INDEX``, enum types
and views come from :mod:`dbkeeper.schema.generate`. What Alembic has no operation for is
written here, by how the engine stores enums (the dialect's ``enum_storage``): a named
type's ``ALTER TYPE … ADD VALUE`` and the rename-create-convert-drop that removes values;
an inline enum's columns altered to the new values; a checked enum's ``CHECK`` dropped and
added again. Whatever else depends on the engine is asked of its
:class:`~dbkeeper.plugin.SchemaDialect`: which changes ``ALTER TABLE`` cannot make (those
tables are rebuilt, :mod:`dbkeeper.schema.rebuild`), how a constraint is renamed or
dropped, how a new table's indexes are written. Only the tables the changes touch are
mapped to SQLAlchemy ``MetaData``.

SQLAlchemy and Alembic are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from dbkeeper.schema.changes import ORDER, Change, SchemaDiff
from dbkeeper.schema.definition import (
    Check,
    Column,
    Enum,
    ForeignKey,
    Index,
    PrimaryKey,
    SchemaDefinition,
    Table,
    UniqueConstraint,
    View,
)
from dbkeeper.schema.generate import SchemaGenerator, generate_schema
from dbkeeper.schema.metadata import Dialect, Note, SchemaMetaData, build_metadata

if TYPE_CHECKING:
    from alembic.operations import Operations

    from dbkeeper.plugin.schema import SchemaDialect

_S = TypeVar("_S")
#: The kinds that run before ``rename_table`` in a migration: their table still has its old name.
_BEFORE_RENAMES = frozenset(ORDER[: ORDER.index("rename_table")])
#: Alembic's constraint types, by the kind of change that drops the constraint.
_CONSTRAINT_TYPES = {
    "drop_foreign_key": "foreignkey",
    "drop_unique": "unique",
    "drop_check": "check",
    "drop_primary_key": "primary",
}


@dataclass(frozen=True)
class RenderedDiff:
    """A diff as one dialect's statements (each ending with ``;``), and the notes on what it cannot keep."""

    dialect: Dialect
    statements: tuple[str, ...]
    notes: tuple[Note, ...] = ()

    @property
    def sql(self) -> str:
        """The statements as one script, a blank line between them."""
        return "".join(f"{statement}\n\n" for statement in self.statements).rstrip("\n") + "\n"


def render_diff(
    diff: SchemaDiff, old: SchemaDefinition, new: SchemaDefinition, dialect: str | SchemaDialect
) -> RenderedDiff:
    """The statements that turn a database holding *old* into one holding *new* (*diff* between them).

    *dialect* is a driver's name or its :class:`~dbkeeper.plugin.SchemaDialect`. Raises
    :class:`~dbkeeper.errors.SchemaError` for what it cannot express at all (as
    ``generate`` does).
    """
    renderer = DiffRenderer(old, new, dialect)
    statements = renderer.render(diff)
    prefixes = tuple(prefix for change in diff.changes if (prefix := _noted(change)) is not None)
    lossy = [note for note in renderer.new_built.notes if f"{note[0]}.".startswith(prefixes)]
    return RenderedDiff(renderer.name, tuple(statements), tuple(dict.fromkeys([*lossy, *renderer.notes])))


def _noted(change: Change) -> str | None:
    """The start of the paths of the notes that concern *change*'s object: what it creates or alters."""
    if change.kind == "create_table":
        return f"tables.{change.name}."
    if change.kind in ("add_column", "alter_column", "rename_column"):
        return f"tables.{change.table}.columns.{change.name}."
    if change.kind == "add_index":
        return f"tables.{change.table}.indexes."
    if change.kind == "alter_table_comment":
        return f"tables.{change.name}.comment."
    return None


@dataclass
class DiffRenderer:
    """Renders the changes between two definitions for one dialect (see :func:`render_diff`)."""

    old: SchemaDefinition
    new: SchemaDefinition
    dialect: str | SchemaDialect
    notes: list[Note] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.generator = SchemaGenerator(self.dialect)
        self.engine = self.generator.schema_dialect
        self.name: Dialect = self.engine.name
        self.old_name: dict[str, str] = {}  # a renamed table's new name → its old name
        self.renamings: dict[int, str] = {}  # id of an add_… change → the statement renaming what a drop_… dropped
        self.touched: tuple[set[str], set[str]] | None = None  # the tables to map: old names, new names

    @cached_property
    def old_built(self) -> SchemaMetaData:
        """The old definition as ``MetaData``: the tables the diff touches (all before :meth:`render`)."""
        return build_metadata(self.old, self.engine, None if self.touched is None else self.touched[0])

    @cached_property
    def new_built(self) -> SchemaMetaData:
        """The new definition as ``MetaData``: the tables the diff touches (all before :meth:`render`)."""
        return build_metadata(self.new, self.engine, None if self.touched is None else self.touched[1])

    def render(self, diff: SchemaDiff) -> list[str]:
        """Every change's statements, in the diff's order; rebuilds where the dialect asks for them."""
        from dbkeeper.schema.rebuild import render_with_rebuilds

        renames = [c for c in diff.changes if c.kind == "rename_table"]
        self.old_name = {c.name: subject_as(c.before, Table).name for c in renames}
        if self.touched is None:
            self.touched = _touched(diff, self.old, self.new, self.old_name)
        return render_with_rebuilds(self, diff)

    def rendered_changes(self, diff: SchemaDiff) -> list[Change]:
        """The changes that have statements of their own.

        A constraint or index dropped and added again under another name only (a renamed
        table's ``pk_…``) is renamed at the add where the dialect can rename it
        (PostgreSQL's ``RENAME CONSTRAINT``, ``ALTER INDEX … RENAME``), so a renamed table's
        primary key is not dropped under the foreign keys that reference it.
        """
        self.renamings, renamed = {}, set()
        found = _renamed_constraints(diff.changes, self.old_name)
        for change in diff.changes:
            drop = found.get(id(change))
            if drop is None:
                continue
            statement = self.engine.rename_constraint(change.kind, str(change.table), drop.name, change.name)
            if statement is not None:
                self.renamings[id(change)] = self.compile(statement)
                renamed.add(id(drop))
        return [change for change in diff.changes if id(change) not in renamed]

    def change(self, change: Change) -> list[str]:
        """The statements of one change."""
        if id(change) in self.renamings:
            return [self.renamings[id(change)]]
        handler: Callable[[Change], list[str]] = getattr(self, f"_{change.kind}")
        return handler(change)

    # --- helpers -------------------------------------------------------------------

    def table_now(self, change: Change) -> str:
        """The name *change*'s table has when the change runs (the old name before the renames)."""
        table = str(change.table)
        return self.old_name.get(table, table) if change.kind in _BEFORE_RENAMES else table

    def old_column(self, table: str, column: str) -> Any:
        """The SQLAlchemy column *column* of the old definition's table *table* (new or old name)."""
        return self.old_built.metadata.tables[self.old_name.get(table, table)].columns[column]

    def new_table(self, table: str) -> Any:
        """The SQLAlchemy table *table* of the new definition."""
        return self.new_built.metadata.tables[table]

    def compile(self, element: Any) -> str:
        """A DDL element compiled as ``generate`` compiles it."""
        return self.generator.compile(element)

    def quote(self, name: str) -> str:
        """*name* quoted for the dialect where it needs quotes."""
        return self.generator.quote(name)

    def alembic(self, operation: Callable[[Operations], object]) -> list[str]:
        """The statements Alembic writes for *operation* in offline mode."""
        from alembic.operations import Operations
        from alembic.runtime.migration import MigrationContext

        buffer = io.StringIO()
        options = {"as_sql": True, "output_buffer": buffer, "literal_binds": True}
        operation(Operations(MigrationContext.configure(dialect=self.engine.sqlalchemy_dialect, opts=options)))
        return [part.strip() + ";" for part in buffer.getvalue().split(";\n\n") if part.strip()]

    def note(self, path: str, message: str) -> None:
        """Record a note about what the dialect cannot keep."""
        self.notes.append((path, message))

    @property
    def title(self) -> str:
        """The dialect as messages name it."""
        return self.engine.title

    # --- tables --------------------------------------------------------------------

    def create_table(self, name: str, built: SchemaMetaData | None = None) -> list[str]:
        """``CREATE TABLE`` of table *name* of *built* (default: the new definition), its indexes, its comments."""
        from sqlalchemy.schema import CreateIndex, CreateTable

        built = built or self.new_built
        sa_table = built.metadata.tables[name]
        indexes = [self.compile(CreateIndex(index)) for index in self.indexes(sa_table, built)]
        create = self.compile(CreateTable(sa_table))
        return self.engine.create_table(create, indexes) + self.generator.comments(sa_table)

    def indexes(self, sa_table: Any, built: SchemaMetaData | None = None) -> list[Any]:
        """The indexes of *sa_table* in the order of its definition (*built*'s, default: the new one)."""
        from dbkeeper.schema.naming import constraint_name

        table = (built or self.new_built).definition.tables[sa_table.name]
        by_name = {str(index.name): index for index in sa_table.indexes}
        names = [constraint_name(table, index) for index in table.indexes]
        return [by_name[name] for name in names if name in by_name]

    def _create_table(self, change: Change) -> list[str]:
        return self.create_table(change.name)

    def _drop_table(self, change: Change) -> list[str]:
        return self.alembic(lambda op: op.drop_table(change.name))

    def _rename_table(self, change: Change) -> list[str]:
        return self.rename_table(self.old_name[change.name], change.name)

    def rename_table(self, old: str, new: str) -> list[str]:
        """``ALTER TABLE old RENAME TO new``."""
        return self.alembic(lambda op: op.rename_table(old, new))

    def _alter_table_comment(self, change: Change) -> list[str]:
        comment, existing = subject_as(change.after, Table).comment, subject_as(change.before, Table).comment
        return self.table_comment(change.name, comment, existing)

    def table_comment(self, table: str, comment: str | None, existing: str | None) -> list[str]:
        """Set (or with None, remove) *table*'s comment, *existing* before."""
        if not self.engine.sqlalchemy_dialect.supports_comments:
            return []  # build_metadata's note says the engine keeps no comments
        if comment is None:
            return self.alembic(lambda op: op.drop_table_comment(table, existing_comment=existing))
        return self.alembic(lambda op: op.create_table_comment(table, comment, existing_comment=existing))

    # --- columns -------------------------------------------------------------------

    def _add_column(self, change: Change) -> list[str]:
        return self.add_column(str(change.table), self.new_table(str(change.table)).columns[change.name])

    def add_column(self, table: str, sa_column: Any) -> list[str]:
        """``ADD COLUMN`` *sa_column* (a column of built metadata) to *table*."""
        return self.alembic(lambda op: op.add_column(table, sa_column._copy()))

    def _drop_column(self, change: Change) -> list[str]:
        return self.drop_column(str(change.table), change.name)

    def drop_column(self, table: str, column: str) -> list[str]:
        """``DROP COLUMN``."""
        return self.alembic(lambda op: op.drop_column(table, column))

    def _rename_column(self, change: Change) -> list[str]:
        old = self.old_column(str(change.table), subject_as(change.before, Column).name)
        return self.rename_column(str(change.table), old.name, change.name, old)

    def rename_column(self, table: str, name: str, new: str, sa_column: Any) -> list[str]:
        """Rename column *name* of *table* to *new*; MySQL repeats its definition, *sa_column*'s."""
        arguments = self.existing_of(sa_column) | {"new_column_name": new}
        return self.alter_column(table, name, arguments)

    def existing(self, table: str | None, column: str) -> dict[str, Any]:
        """What MySQL's ``MODIFY``/``CHANGE`` must repeat of the old column: type, null, default, comment."""
        return self.existing_of(self.old_column(str(table), column))

    def existing_of(self, sa_column: Any) -> dict[str, Any]:
        """Alembic's ``existing_*`` arguments for *sa_column*, a column as it is before the change."""
        default = sa_column.server_default
        return {
            "existing_type": sa_column.type,
            "existing_nullable": sa_column.nullable,
            "existing_server_default": default.arg if default is not None else None,
            "existing_comment": sa_column.comment,
        } | self.engine.existing_column(sa_column)

    def _alter_column(self, change: Change) -> list[str]:
        before, after = subject_as(change.before, Column), subject_as(change.after, Column)
        table = str(change.table)
        if before.identity != after.identity:
            self.note(f"tables.{table}.columns.{after.name}.identity", "identity changes are not rendered; left as is")
        old, new = self.old_column(table, before.name), self.new_table(table).columns[after.name]
        return self.change_column(table, (before, old), (after, new))

    def change_column(self, table: str, before: tuple[Column, Any], after: tuple[Column, Any]) -> list[str]:
        """Alter column *after* of *table* from *before*: each a (column, its built column) pair, named as now."""
        (column, old), (target, new) = before, after
        arguments = self.existing_of(old)
        if column.type != target.type:
            arguments["type_"] = new.type
            arguments |= self.engine.type_change(target, new.type.compile(dialect=self.engine.sqlalchemy_dialect))
        if column.nullable != target.nullable:
            arguments["nullable"] = target.nullable
        if column.default != target.default:
            arguments["server_default"] = new.server_default.arg if new.server_default is not None else None
        if column.comment != target.comment:
            arguments["comment"] = target.comment
        if "existing_autoincrement" in arguments:  # the engine repeats it: keep it
            arguments["autoincrement"] = arguments["existing_autoincrement"]
        return self.alter_column(table, target.name, arguments)

    def alter_column(self, table: str, column: str, arguments: dict[str, Any]) -> list[str]:
        """Alembic's ``alter_column`` of *table*.*column* with *arguments*."""
        return self.alembic(lambda op: op.alter_column(table, column, **arguments))

    # --- constraints and indexes ---------------------------------------------------

    def _drop_constraint(self, change: Change) -> list[str]:
        return self.drop_constraint(change.kind, change.name, self.table_now(change), change.before, self.old_built)

    def drop_constraint(self, kind: str, name: str, table: str, item: object, built: SchemaMetaData) -> list[str]:
        """Drop constraint *name* (*item*, its object in *built*) of *table*; *kind* is its drop_… change kind.

        The dialect's statement where it has one (an index the engine made for a foreign
        key goes with the key), else Alembic's.
        """
        with_index = (
            self.engine.implicit_foreign_key_index
            and kind == "drop_foreign_key"
            and _implicit_index(built, table, item)
        )
        statement = self.engine.drop_constraint(kind, table, name, with_index=with_index)
        if statement is not None:
            return [self.compile(statement)]
        constraint_type = _CONSTRAINT_TYPES[kind]
        return self.alembic(lambda op: op.drop_constraint(name, table, type_=constraint_type))

    _drop_foreign_key = _drop_unique = _drop_check = _drop_primary_key = _drop_constraint

    def _add_constraint(self, change: Change) -> list[str]:
        return self.add_constraint(change.name, str(change.table), change.after, self.new_built)

    _add_primary_key = _add_unique = _add_check = _add_foreign_key = _add_index = _add_constraint

    def add_constraint(self, name: str, table: str, item: object, built: SchemaMetaData) -> list[str]:
        """Add *item*, a key, constraint or index named *name*, to *table* (as *built* has it)."""
        if isinstance(item, Index):
            return self.create_index(name, table, built)
        if isinstance(item, ForeignKey):
            return self.alembic(
                lambda op: op.create_foreign_key(
                    name,
                    table,
                    item.referenced_table,
                    list(item.columns),
                    list(item.referenced_columns),
                    ondelete=item.on_delete.upper() if item.on_delete else None,
                    onupdate=item.on_update.upper() if item.on_update else None,
                )
            )
        if isinstance(item, Check):
            return self.alembic(lambda op: op.create_check_constraint(name, table, item.expression))
        if isinstance(item, UniqueConstraint):
            return self.alembic(lambda op: op.create_unique_constraint(name, table, list(item.columns)))
        return self.alembic(lambda op: op.create_primary_key(name, table, list(_columns_of(item))))

    def create_index(self, name: str, table: str, built: SchemaMetaData) -> list[str]:
        """``CREATE INDEX`` of index *name* of *table* as *built* has it (none: an index MariaDB cannot have)."""
        from sqlalchemy.schema import CreateIndex

        indexes = {str(index.name): index for index in built.metadata.tables[table].indexes}
        if name not in indexes:
            return []  # an index the engine cannot have (an expression index): build_metadata's note says so
        return [self.compile(CreateIndex(indexes[name]))]

    def _drop_index(self, change: Change) -> list[str]:
        return self.drop_index(change.name, self.table_now(change), self.old_built)

    def drop_index(self, name: str, table: str, built: SchemaMetaData) -> list[str]:
        """``DROP INDEX`` *name* of *table* (nothing for an index *built* lacks: the engine never made it)."""
        if name not in {str(index.name) for index in built.metadata.tables[table].indexes}:
            return []
        return self.alembic(lambda op: op.drop_index(name, table_name=table))

    # --- views and enums -----------------------------------------------------------

    def create_view(self, view: View) -> list[str]:
        """``CREATE VIEW`` (and its comment) as ``generate`` writes it."""
        ddl = generate_schema(SchemaDefinition(views={view.name: view}), self.engine)
        self.notes += ddl.notes
        return list(ddl.statements)

    def drop_view(self, name: str) -> str:
        """``DROP VIEW``."""
        return f"DROP VIEW {self.quote(name)};"

    def _create_view(self, change: Change) -> list[str]:
        return self.create_view(subject_as(change.after, View))

    def _drop_view(self, change: Change) -> list[str]:
        return [self.drop_view(change.name)]

    def _create_enum(self, change: Change) -> list[str]:
        if self.engine.enum_storage != "named":
            return []  # an inline enum or a check: part of the columns
        ddl = generate_schema(SchemaDefinition(enums={change.name: subject_as(change.after, Enum)}), self.engine)
        return list(ddl.statements)

    def _drop_enum(self, change: Change) -> list[str]:
        return [self.compile(element) for element in self.engine.drop_enum(subject_as(change.before, Enum))]

    def _add_enum_values(self, change: Change) -> list[str]:
        before, after = subject_as(change.before, Enum), subject_as(change.after, Enum)
        if self.engine.enum_storage != "named":
            return self.enum_columns(self.old, after, renamed=False)  # before the renames: the old names
        added = [value for value in after.values if value not in before.values]
        statements = [self._add_value(after, value) for value in added]
        return statements + self._enum_comment(before, after)

    def _add_value(self, enum: Enum, value: str) -> str:
        """``ALTER TYPE … ADD VALUE 'v' AFTER 'previous'`` (or ``BEFORE`` the first), keeping the order."""
        position = enum.values.index(value)
        where = f"AFTER {_literal(enum.values[position - 1])}" if position else f"BEFORE {_literal(enum.values[1])}"
        return f"ALTER TYPE {self.quote(enum.name)} ADD VALUE {_literal(value)} {where};"

    def _enum_comment(self, before: Enum, after: Enum) -> list[str]:
        if before.comment == after.comment:
            return []
        comment = "NULL" if after.comment is None else _literal(after.comment)
        return [f"COMMENT ON TYPE {self.quote(after.name)} IS {comment};"]

    def _remove_enum_values(self, change: Change) -> list[str]:
        after = subject_as(change.after, Enum)
        if self.engine.enum_storage != "named":
            return self.enum_columns(self.new, after, renamed=True)  # after the renames: the new names
        name, kept = self.quote(after.name), self.quote(f"{after.name}_old")
        statements = [f"ALTER TYPE {name} RENAME TO {kept};"]
        statements += generate_schema(SchemaDefinition(enums={after.name: after}), self.engine).statements
        for table, column in _enum_columns(self.new, after.name):
            statements += self._convert(table, column)
        return [*statements, f"DROP TYPE {kept};"]

    def _convert(self, table: Table, column: Column) -> list[str]:
        """A named enum's *column* to the new type, its default dropped first and set again after."""
        new = self.new_table(table.name).columns[column.name]
        sql = new.type.compile(dialect=self.engine.sqlalchemy_dialect)
        convert = self.alter_column(
            table.name, column.name, {"type_": new.type, **self.engine.type_change(column, sql)}
        )
        if new.server_default is None:
            return convert
        default = new.server_default.arg
        drop = self.alter_column(table.name, column.name, {"server_default": None, "existing_server_default": default})
        return [*drop, *convert, *self.alter_column(table.name, column.name, {"server_default": default})]

    def enum_columns(self, source: SchemaDefinition, after: Enum, *, renamed: bool) -> list[str]:
        """Every column of *source* using the enum, to *after*'s values.

        An inline enum's column is altered (its type written again), a checked enum's
        ``CHECK`` dropped and added again. *renamed*: *source* is the new definition, its
        tables and columns under their new names (the change runs after the renames); else the old one. A column the old
        definition lacks is skipped: it is created with the new values.
        """
        statements = []
        for table, column in _enum_columns(source, after.name):
            old_table = self.old_name.get(table.name, table.name) if renamed else table.name
            old_columns = self.old.tables[old_table].columns
            hint = column.renamed_from if renamed else None
            old_name = hint if hint is not None and hint in old_columns else column.name
            if old_name in old_columns:
                statements += self._enum_column(table.name, column.name, (old_table, old_name), after)
        return statements

    def _enum_column(self, table: str, column: str, old: tuple[str, str], after: Enum) -> list[str]:
        """*table*.*column* (named as now; *old*: as in the old definition) to *after*'s values."""
        if self.engine.enum_storage == "inline":
            return self.alter_column(table, column, self.existing(*old) | {"type_": self.engine.enum_type(after)})
        import sqlalchemy as sa

        from dbkeeper.schema.naming import conventional_name

        name = conventional_name("ck", old[0], old[1], "enum")
        statements = self.drop_constraint("drop_check", name, table, None, self.old_built)
        condition = sa.column(column).in_(after.values)
        check = conventional_name("ck", table, column, "enum")
        return statements + self.alembic(lambda op: op.create_check_constraint(check, table, condition))


def _touched(
    diff: SchemaDiff, old: SchemaDefinition, new: SchemaDefinition, old_name: dict[str, str]
) -> tuple[set[str], set[str]]:
    """The tables of *old* and of *new* the changes of *diff* name, or use an enum they change."""
    new_name = {previous: name for name, previous in old_name.items()}
    names: set[str] = set()
    for change in diff.changes:
        if change.table is not None:
            names |= {change.table, old_name.get(change.table, change.table), new_name.get(change.table, change.table)}
        elif change.kind in ("add_enum_values", "remove_enum_values"):
            for definition in (old, new):
                names |= {table.name for table, _ in _enum_columns(definition, change.name)}
    names |= {old_name.get(name, name) for name in names} | {new_name.get(name, name) for name in names}
    return names & set(old.tables), names & set(new.tables)


# --- helpers ---------------------------------------------------------------------------


#: The change that drops what each add_… change adds.
_DROPPED_BY = {
    "add_primary_key": "drop_primary_key",
    "add_unique": "drop_unique",
    "add_check": "drop_check",
    "add_foreign_key": "drop_foreign_key",
    "add_index": "drop_index",
}


def _renamed_constraints(changes: tuple[Change, ...], old_name: dict[str, str]) -> dict[int, Change]:
    """Each add_… change (by id) that adds what a drop_… change of the same table dropped, under another name."""
    drops: dict[tuple[str, str | None], list[Change]] = {}
    for change in changes:
        if change.kind in _DROPPED_BY.values():
            drops.setdefault((change.kind, change.table), []).append(change)
    found: dict[int, Change] = {}
    for change in changes:
        table = old_name.get(str(change.table), change.table)
        candidates = drops.get((_DROPPED_BY.get(change.kind, ""), table), [])
        match = next((drop for drop in candidates if _same_but_name(drop.before, change.after)), None)
        if match is not None:
            candidates.remove(match)
            found[id(change)] = match
    return found


def _same_but_name(before: object, after: object) -> bool:
    """Whether two constraints or indexes differ in their names only."""
    from dataclasses import replace

    named = (PrimaryKey, UniqueConstraint, ForeignKey, Index, Check)
    if not isinstance(before, named) or not isinstance(after, named) or type(before) is not type(after):
        return False
    return replace(before, name=None) == replace(after, name=None)


def _implicit_index(built: SchemaMetaData, table: str, key: object) -> bool:
    """Whether InnoDB made an index named after the foreign key *key*: no index or key starts with its columns."""
    columns = _columns_of(key)
    sa_table = built.metadata.tables[table]
    leading = [tuple(c.name for c in index.columns)[: len(columns)] for index in sa_table.indexes]
    constraints: list[Any] = [constraint for constraint in sa_table.constraints if _keyed(constraint)]
    leading += [tuple(c.name for c in constraint.columns)[: len(columns)] for constraint in constraints]
    return columns not in leading


def _enum_columns(definition: SchemaDefinition, enum: str) -> Iterator[tuple[Table, Column]]:
    """Every (table, column) of *definition* whose type is ``enum(<enum>)``."""
    for table in definition.tables.values():
        for column in table.columns.values():
            if column.type.enum == enum:
                yield table, column


def _literal(text: str) -> str:
    """*text* as an SQL string literal (``'`` doubled)."""
    return "'" + text.replace("'", "''") + "'"


def _keyed(constraint: Any) -> bool:
    """Whether *constraint* makes an index: a primary key or a unique constraint."""
    import sqlalchemy as sa

    return isinstance(constraint, sa.PrimaryKeyConstraint | sa.UniqueConstraint)


def subject_as(subject: object, kind: type[_S]) -> _S:
    """*subject* (a change's before or after), which the change's kind says is a *kind*."""
    assert isinstance(subject, kind), subject
    return subject


def _columns_of(subject: object) -> tuple[str, ...]:
    """The column names of a key, unique constraint or foreign key."""
    assert isinstance(subject, PrimaryKey | UniqueConstraint | ForeignKey), subject
    return subject.columns
