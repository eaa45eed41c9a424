"""The comparison behind ``schema diff``: the ordered changes that turn one definition into another.

:func:`diff_schemas` normalises both definitions (:func:`~dbkeeper.schema.normalise.normalise`,
so that equal schemas written differently compare equal), matches tables
and columns by name or by the ``renamed_from`` hints :func:`renames_of` resolves, compares
every constraint and index under its resolved name (:func:`~dbkeeper.schema.naming.constraint_name`),
and returns a :class:`~dbkeeper.schema.changes.SchemaDiff` in the order a migration applies
it (:data:`~dbkeeper.schema.changes.ORDER`). Pure Python: no database, no SQLAlchemy.
Given a dialect, both sides are first taken as that engine reads a definition back
(:func:`~dbkeeper.schema.normalise.read_back`: what the engine's dialect says it keeps), so
that a database generated from a definition diffs empty against it.

The down migration of ``diff_schemas(old, new)`` is
``diff_schemas(new, old, renames_of(old, new).inverted())``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

from dbkeeper.schema.changes import ORDER, Change, ChangeKind, SchemaDiff, Subject
from dbkeeper.schema.definition import (
    INTEGER_TYPES,
    Check,
    Column,
    ColumnType,
    Enum,
    ForeignKey,
    Index,
    PrimaryKey,
    SchemaDefinition,
    Table,
    UniqueConstraint,
    View,
)
from dbkeeper.schema.naming import Constraint
from dbkeeper.schema.normalise import normalise, read_back
from dbkeeper.schema.ordering import names_read, readers_of, tables_in_order, views_in_order

if TYPE_CHECKING:
    from dbkeeper.plugin.schema import SchemaDialect

_Named = TypeVar("_Named", UniqueConstraint, ForeignKey, Index, Check)
#: Decimal digits each integer type holds: ``int`` → ``decimal(10, 0)`` is wide enough.
_INTEGER_DIGITS = {"smallint": 5, "int": 10, "bigint": 19}
_RANK = {kind: n for n, kind in enumerate(ORDER)}


@dataclass(frozen=True)
class Renames:
    """Which tables and columns of the new definition are renamed ones of the old.

    ``tables`` maps a table's new name to its old one; ``columns`` maps (the table's name in
    the new definition, the column's new name) to the column's old name.
    """

    tables: Mapping[str, str] = field(default_factory=dict)
    columns: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def inverted(self) -> Renames:
        """The same renames seen from the other side: for the down migration."""
        return Renames(
            tables={old: new for new, old in self.tables.items()},
            columns={(self.tables.get(table, table), old): new for (table, new), old in self.columns.items()},
        )


def renames_of(old: SchemaDefinition, new: SchemaDefinition) -> Renames:
    """The ``renamed_from`` hints of *new* that apply to *old*.

    A hint applies only when *old* has the old name and lacks the new one: once the rename
    has run, diffing the database against the same file finds nothing to rename.
    """
    tables: dict[str, str] = {}
    columns: dict[tuple[str, str], str] = {}
    for table in new.tables.values():
        hint = table.renamed_from
        if hint is not None and hint in old.tables and table.name not in old.tables and hint not in tables.values():
            tables[table.name] = hint
        previous = old.tables.get(tables.get(table.name, table.name))
        if previous is None:
            continue
        for column in table.columns.values():
            hint = column.renamed_from
            if hint is not None and hint in previous.columns and column.name not in previous.columns:
                columns[(table.name, column.name)] = hint
    return Renames(tables, columns)


def diff_schemas(
    old: SchemaDefinition,
    new: SchemaDefinition,
    renames: Renames | None = None,
    *,
    dialect: str | SchemaDialect | None = None,
) -> SchemaDiff:
    """The ordered changes that turn *old* into *new*; empty when they are equal once normalised.

    *renames* defaults to :func:`renames_of` (the hints of *new*). With *dialect* (a
    driver's name, ``sqlite``, or its :class:`~dbkeeper.plugin.SchemaDialect`), both sides
    are first taken as that engine reads them back (:func:`read_back`), so that a
    definition and the database generated from it are equal.

    The tables, columns, keys and indexes the changes carry are the normalised ones
    (:func:`normalise`, after :func:`read_back` with a dialect): every constraint and index
    has its resolved name.
    """
    if renames is None:
        renames = renames_of(old, new)
    if dialect is None:
        return diff_read_back(old, new, renames)
    return diff_read_back(read_back(old, dialect), read_back(new, dialect), renames, dialect)


def diff_read_back(
    old: SchemaDefinition, new: SchemaDefinition, renames: Renames, dialect: str | SchemaDialect | None = None
) -> SchemaDiff:
    """:func:`diff_schemas` of two definitions already :func:`read_back` for *dialect* (or of none).

    Where the dialect's primary keys keep no name of their own (``primary_key_names``),
    keys are compared by their columns only.
    """
    key_names = True
    if dialect is not None:
        from dbkeeper.schema.metadata import schema_dialect

        key_names = schema_dialect(dialect).primary_key_names
    differ = _Differ(normalise(old), normalise(new), renames, key_names=key_names)
    return SchemaDiff(tuple(differ.changes()))


class _Differ:
    """Compares two normalised definitions; :meth:`changes` gives the changes in ORDER."""

    def __init__(self, old: SchemaDefinition, new: SchemaDefinition, renames: Renames, *, key_names: bool) -> None:
        self.key_names = key_names
        self.old = old
        self.new = new
        self.renames = renames
        self.table_of = {
            name: renames.tables.get(name, name) for name in new.tables if renames.tables.get(name, name) in old.tables
        }  # new name → old name, for every table in both
        self.new_name = {previous: name for name, previous in self.table_of.items()}
        self.new_column = renames.inverted().columns  # (old table, old column) → new column
        self.found: list[Change] = []

    def changes(self) -> list[Change]:
        """Every change, sorted by kind (ORDER), stable within a kind; tables in dependency order."""
        self._enums()
        self._tables()
        self._views()  # after the tables: which of them change shape
        created = tables_in_order(self.new, [c.name for c in self.found if c.kind == "create_table"])
        dropped = tables_in_order(self.old, [c.name for c in self.found if c.kind == "drop_table"])[::-1]
        position = {("create_table", name): n for n, name in enumerate(created)}
        position.update({("drop_table", name): n for n, name in enumerate(dropped)})
        indexed = list(enumerate(self.found))
        indexed.sort(key=lambda item: (_RANK[item[1].kind], position.get((item[1].kind, item[1].name), item[0])))
        return [change for _, change in indexed]

    def add(
        self,
        kind: ChangeKind,
        table: str | None,
        name: str,
        before: Subject | None = None,
        after: Subject | None = None,
        destructive: str | None = None,
    ) -> None:
        """Record one change."""
        self.found.append(Change(kind, table, name, before, after, destructive))

    # enums and views

    def _enums(self) -> None:
        """create_enum, drop_enum, add_enum_values, remove_enum_values."""
        old, new = self.old.enums, self.new.enums
        for name, enum in new.items():
            if name not in old:
                self.add("create_enum", None, name, after=enum)
            elif enum != old[name]:
                self._enum_values(old[name], enum)
        for name, enum in old.items():
            if name not in new:
                self.add("drop_enum", None, name, before=enum)

    def _enum_values(self, before: Enum, after: Enum) -> None:
        """Values added in place (or a comment changed): add; a value gone or the order changed: remove."""
        gone = [value for value in before.values if value not in after.values]
        if _is_subsequence(before.values, after.values):
            self.add("add_enum_values", None, after.name, before=before, after=after)
            return
        reason = None
        if gone:
            reason = f"removes {', '.join(repr(value) for value in gone)} from enum {after.name}"
        self.add("remove_enum_values", None, after.name, before=before, after=after, destructive=reason)

    def _views(self) -> None:
        """create_view, drop_view; a changed view is dropped and created again, and so is every view in the way.

        In the way: a view that reads a changed view, or a table whose columns change type or
        go (PostgreSQL refuses to drop a view another view reads, or to change or drop a
        column a view reads). Views are created after the views they read and dropped
        before them (:mod:`dbkeeper.schema.ordering`).
        """
        old, new = self.old.views, self.new.views
        gone = {name for name, view in old.items() if name not in new or not _same_view(view, new[name])}
        gone |= self._in_the_way(old)
        gone |= readers_of(old, gone, _view_sql)
        for name in reversed(views_in_order(old, _view_sql)):
            if name in gone:
                self.add("drop_view", None, name, before=old[name])
        for name in views_in_order(new, _view_sql):
            if name not in old or name in gone:
                self.add("create_view", None, name, after=new[name])

    def _in_the_way(self, views: Mapping[str, View]) -> set[str]:
        """The *views* that read a column whose type changes or that goes (by name, or with ``*``)."""
        reshaped = self._reshaped_columns()
        tables = names_read(views, reshaped.keys(), _view_sql)
        columns = names_read(views, {column for names in reshaped.values() for column in names}, _view_sql)
        return {
            name
            for name, view in views.items()
            if tables[name]
            and (columns[name] & {c for table in tables[name] for c in reshaped[table]} or _selects_all(view))
        }

    def _reshaped_columns(self) -> dict[str, set[str]]:
        """Old table name → its columns (old names) whose type changes or that are dropped (enum values removed too)."""
        reshaped: dict[str, set[str]] = {}
        for change in self.found:
            if isinstance(change.before, Column) and (change.kind == "drop_column" or _retyped(change)):
                old_name = self.table_of.get(str(change.table), str(change.table))
                reshaped.setdefault(old_name, set()).add(change.before.name)
        removed = {change.name for change in self.found if change.kind == "remove_enum_values"}
        for table in self.old.tables.values():
            for column in table.columns.values():
                if column.type.enum in removed:
                    reshaped.setdefault(table.name, set()).add(column.name)
        return reshaped

    # tables

    def _tables(self) -> None:
        """Tables created, dropped, renamed and changed."""
        for name, table in self.new.tables.items():
            previous = self.table_of.get(name)
            if previous is None:
                self.add("create_table", name, name, after=table)
            else:
                self._table(self.old.tables[previous], table)
        for name, table in self.old.tables.items():
            if name not in self.new_name:
                self.add("drop_table", name, name, before=table, destructive=f"drops table {name} and its rows")

    def _table(self, before: Table, after: Table) -> None:
        """Everything that changed in one table found in both definitions."""
        if before.name != after.name:
            self.add("rename_table", after.name, after.name, before=before, after=after)
        columns = self._columns(before, after)
        translated = _Translation(self, columns)
        self._primary_key(before, after, translated)
        self._named(("drop_unique", "add_unique"), before, after, before.unique, after.unique, translated)
        self._named(
            ("drop_foreign_key", "add_foreign_key"), before, after, before.foreign_keys, after.foreign_keys, translated
        )
        self._named(("drop_index", "add_index"), before, after, before.indexes, after.indexes, translated)
        self._named(
            ("drop_check", "add_check"), before, after, before.checks.values(), after.checks.values(), translated
        )
        if before.comment != after.comment:
            self.add("alter_table_comment", after.name, after.name, before=before, after=after)

    def _columns(self, before: Table, after: Table) -> dict[str, str]:
        """Columns renamed, added, altered and dropped; returns old name → new name of those in both."""
        matched: dict[str, str] = {}
        for name, column in after.columns.items():
            previous = self.renames.columns.get((after.name, name), name)
            if previous not in before.columns:
                self.add("add_column", after.name, name, after=column)
                continue
            matched[previous] = name
            old = before.columns[previous]
            if previous != name:
                self.add("rename_column", after.name, name, before=old, after=column)
            if replace(old, name=name) != column:
                reason = _narrowing(f"{after.name}.{name}", old.type, column.type, self.old.enums)
                self.add("alter_column", after.name, name, before=old, after=column, destructive=reason)
        for name, column in before.columns.items():
            if name not in matched:
                where = f"{after.name}.{name}"
                self.add("drop_column", after.name, name, before=column, destructive=f"drops column {where}")
        return matched

    def _primary_key(self, before: Table, after: Table, translated: _Translation) -> None:
        """drop_primary_key and add_primary_key when the key changed (columns or name)."""
        old, new = before.primary_key, after.primary_key
        changed = old is None or new is None or translated.key(old) != new
        if not self.key_names and old is not None and new is not None:
            changed = translated.key(old).columns != new.columns  # the engine keeps no name of its own
        if old is not None and changed:
            self.add("drop_primary_key", before.name, str(old.name), before=old)
        if new is not None and changed:
            self.add("add_primary_key", after.name, str(new.name), after=new)

    def _named(
        self,
        kinds: tuple[ChangeKind, ChangeKind],
        before: Table,
        after: Table,
        old: Iterable[_Named],
        new: Iterable[_Named],
        translated: _Translation,
    ) -> None:
        """drop_<kind> and add_<kind> by resolved name: missing, extra, or same name with other content."""
        old_items = {str(item.name): item for item in old}
        new_items = {str(item.name): item for item in new}
        for name, item in old_items.items():
            if name not in new_items or not translated.same(item, new_items[name]):
                self.add(kinds[0], before.name, name, before=item)
        for name, item in new_items.items():
            if name not in old_items or not translated.same(old_items[name], item):
                self.add(kinds[1], after.name, name, after=item)


class _Translation:
    """Reads an old table's constraints in the new definition's names (renamed tables and columns)."""

    def __init__(self, differ: _Differ, columns: dict[str, str]) -> None:
        self.differ = differ
        self.columns = columns

    def key(self, key: PrimaryKey) -> PrimaryKey:
        """*key* over the new names of its columns."""
        return replace(key, columns=self._names(key.columns, self.columns))

    def same(self, old: Constraint, new: Constraint) -> bool:
        """Whether *old* (of the old table) is *new* once its names are translated."""
        if isinstance(old, Check) and isinstance(new, Check):
            return old.expression == new.expression  # the label only names it, and the names are equal
        return self._translated(old) == new

    def _translated(self, item: Constraint) -> Constraint:
        """*item* with the new names of the columns and tables it names."""
        if isinstance(item, UniqueConstraint):
            return replace(item, columns=self._names(item.columns, self.columns))
        if isinstance(item, Index):
            columns = tuple(self.columns.get(c, c) if isinstance(c, str) else c for c in item.columns)
            return replace(item, columns=columns)
        if isinstance(item, ForeignKey):
            table = self.differ.new_name.get(item.referenced_table, item.referenced_table)
            referenced = self.differ.new_column
            return replace(
                item,
                columns=self._names(item.columns, self.columns),
                referenced_table=table,
                referenced_columns=tuple(
                    referenced.get((item.referenced_table, c), c) for c in item.referenced_columns
                ),
            )
        return item

    @staticmethod
    def _names(names: tuple[str, ...], mapping: Mapping[str, str]) -> tuple[str, ...]:
        """*names* through *mapping* (a name it lacks stays)."""
        return tuple(mapping.get(name, name) for name in names)


def _retyped(change: Change) -> bool:
    """Whether *change* gives a column another type."""
    before, after = change.before, change.after
    return isinstance(before, Column) and isinstance(after, Column) and before.type != after.type


def _selects_all(view: View) -> bool:
    """Whether *view*'s SQL may select every column (``*``): PostgreSQL then depends on each."""
    return any("*" in sql for sql in _view_sql(view))


def _view_sql(view: View) -> list[str]:
    """Every SQL text of *view*: the portable one and each dialect's."""
    return [text for text in (view.sql, *view.dialects.values()) if text]


def _same_view(old: View, new: View) -> bool:
    """Whether two views are the same: SQL, dialects' SQL and comment."""
    return old.sql == new.sql and dict(old.dialects) == dict(new.dialects) and old.comment == new.comment


def _is_subsequence(values: tuple[str, ...], within: tuple[str, ...]) -> bool:
    """Whether *values* appear in *within* in the same order (others inserted among them)."""
    remaining = iter(within)
    return all(value in remaining for value in values)


# --- destructive type changes ----------------------------------------------------------


def _narrowing(where: str, old: ColumnType, new: ColumnType, enums: Mapping[str, Enum]) -> str | None:
    """Why changing column *where* from *old* to *new* may lose data; None when it widens (or is the same)."""
    if old == new or _widens(old, new, enums):
        return None
    if _family(old) == _family(new):
        return f"narrows {where} from {old} to {new}"
    return f"converts {where} from {old} to {new}: values may not convert"


def _widens(old: ColumnType, new: ColumnType, enums: Mapping[str, Enum]) -> bool:
    """Whether every value of *old* fits *new* unchanged."""
    if old.name in INTEGER_TYPES and new.name in INTEGER_TYPES:
        return INTEGER_TYPES.index(new.name) >= INTEGER_TYPES.index(old.name)
    if old.name in INTEGER_TYPES and new.name == "decimal":
        return _digits(new) >= _INTEGER_DIGITS[old.name]
    if old.name == "decimal" and new.name == "decimal":
        return _scale(new) >= _scale(old) and _digits(new) >= _digits(old)
    if (old.name, new.name) == ("float", "double"):
        return True
    if new.name == "text":
        return old.name in ("varchar", "enum")
    if new.name == "varchar" and old.name == "varchar":
        return (new.length or 0) >= (old.length or 0)
    if new.name == "varchar" and old.name == "enum":
        enum = enums.get(str(old.enum))
        return enum is not None and max(map(len, enum.values)) <= (new.length or 0)
    return False


def _family(kind: ColumnType) -> str:
    """The family of a type, to tell a narrowing from a conversion."""
    if kind.name in INTEGER_TYPES or kind.name in ("decimal", "float", "double"):
        return "number"
    if kind.name in ("text", "varchar", "enum"):
        return "text"
    return kind.name


def _scale(kind: ColumnType) -> int:
    """A decimal's scale."""
    return kind.scale or 0


def _digits(kind: ColumnType) -> int:
    """A decimal's digits before the point: precision minus scale."""
    return (kind.precision or 0) - _scale(kind)
