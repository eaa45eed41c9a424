"""Table rebuilds: the changes an engine's ``ALTER TABLE`` cannot make, done by copying the table.

Which changes those are is the dialect's answer
(:meth:`~dbkeeper.plugin.SchemaDialect.alters_in_place`; SQLite's ``ALTER TABLE`` renames
tables and columns, adds a column and drops one nothing uses, and nothing else). A table
is rebuilt by the recipe of SQLite's documentation
(https://www.sqlite.org/lang_altertable.html#otheralter), inside the migration's one
transaction:

1. the dialect's guards that run before (:meth:`~dbkeeper.plugin.SchemaDialect.rebuild_guards`:
   on SQLite, one that fails the migration when the table has triggers, which the
   definition does not model, so a rebuild would lose them, and the count of rows
   pointing nowhere that the last guard compares with);
2. ``CREATE TABLE "_dbkeeper_new_<t>"`` in the new shape, with the final constraint names;
3. ``INSERT INTO`` it the kept columns (renamed ones mapped) ``SELECT … FROM "<t>"``;
4. ``DROP TABLE "<t>"`` and ``ALTER TABLE "_dbkeeper_new_<t>" RENAME TO "<t>"``;
5. the table's indexes created again;
6. the dialect's guards that run after (on SQLite, one that fails the migration when
   ``PRAGMA foreign_key_check`` finds more rows pointing nowhere than before: rows of the
   table, or rows of the tables referencing it whose key points at it; rows that pointed
   nowhere before the rebuild, which SQLite lets in while foreign keys are off, are no
   reason to fail).

The engine must not enforce foreign keys while the old table is dropped (dbkeeper's SQLite
connections leave ``PRAGMA foreign_keys`` off, so it neither cascades into the children
nor fails). Every view is dropped before the rebuilds and the new definition's views are
created after them (SQLite checks views when a table is renamed). Several changes to one
table are one rebuild. A renamed table is renamed in place first, so the tables
referencing it follow the new name.

:func:`rebuilt_tables` is the one place that asks the dialect between in place and a rebuild.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from dbkeeper.schema.changes import Change, SchemaDiff
from dbkeeper.schema.definition import Column, SchemaDefinition, View

if TYPE_CHECKING:
    from dbkeeper.plugin.schema import SchemaDialect
    from dbkeeper.schema.metadata import SchemaMetaData


class DiffRenderer(Protocol):
    """What a rebuild needs of the renderer it is part of (:class:`dbkeeper.schema.render.DiffRenderer`)."""

    engine: SchemaDialect
    old: SchemaDefinition  # both sides as the engine holds them
    new: SchemaDefinition
    old_name: dict[str, str]  # a renamed table's new name → its old name

    @property
    def new_built(self) -> SchemaMetaData:
        """The new side's tables the diff touches, as SQLAlchemy ``MetaData``."""
        ...

    def rendered_changes(self, diff: SchemaDiff) -> list[Change]:
        """The changes to render, in order (some engines fold a few together)."""
        ...

    def change(self, change: Change) -> list[str]:
        """One change as the dialect's statements (in place)."""
        ...

    def new_table(self, table: str) -> Any:
        """The new side's ``sqlalchemy.Table`` *table*."""
        ...

    def indexes(self, sa_table: Any) -> list[Any]:
        """The indexes of *sa_table* to create after it."""
        ...

    def create_view(self, view: View) -> list[str]:
        """The statements that create *view*."""
        ...

    def compile(self, element: Any) -> str:
        """A DDL element compiled for the dialect, ending with ``;``."""
        ...

    def quote(self, name: str) -> str:
        """*name* quoted for the dialect where it needs it."""
        ...


#: The prefix of the table a rebuild copies the rows into.
NEW_PREFIX = "_dbkeeper_new_"


def rebuilt_tables(
    change: Change,
    old: SchemaDefinition,
    new: SchemaDefinition,
    new_name: Mapping[str, str],
    dialect: SchemaDialect,
) -> tuple[str, ...]:
    """The tables (new names) *dialect* must rebuild to make *change*; () when ``ALTER TABLE`` can.

    *new_name* maps a renamed table's old name to its new one. An enum's change concerns
    every table using the enum.
    """
    if change.table is None:
        if change.kind not in ("add_enum_values", "remove_enum_values") or dialect.alters_in_place(change, None):
            return ()
        return tuple(t.name for t in new.tables.values() if any(c.type.enum == change.name for c in t.columns.values()))
    table = new_name.get(change.table, change.table)
    previous = old.tables.get(next((o for o, n in new_name.items() if n == table), table))
    return () if dialect.alters_in_place(change, previous) else (table,)


def render_with_rebuilds(renderer: DiffRenderer, diff: SchemaDiff) -> list[str]:
    """The statements of *diff*: in place where ``ALTER TABLE`` can, the rest as rebuilds."""
    new_name = {old: new for new, old in renderer.old_name.items()}
    wanted: set[str] = set()
    for change in diff.changes:
        wanted.update(rebuilt_tables(change, renderer.old, renderer.new, new_name, renderer.engine))
    changes = renderer.rendered_changes(diff)
    if not wanted:
        return [statement for change in changes for statement in renderer.change(change)]
    created = {change.name for change in diff.changes if change.kind == "create_table"}
    order = [sa_table.name for sa_table in renderer.new_built.metadata.sorted_tables]
    rebuilt = [name for name in order if name in wanted and name not in created]
    statements = [f"DROP VIEW IF EXISTS {renderer.quote(name)};" for name in renderer.old.views]
    for change in changes:
        if not _absorbed(change, rebuilt, new_name, renderer.engine):
            statements += renderer.change(change)
    for name in rebuilt:
        statements += _rebuild(renderer, diff, name)
    for view in renderer.new.views.values():
        statements += renderer.create_view(view)
    return statements


def _absorbed(change: Change, rebuilt: list[str], new_name: Mapping[str, str], dialect: SchemaDialect) -> bool:
    """Whether *change* is part of a rebuild (or of the views dropped and created around them)."""
    if change.kind in ("drop_view", "create_view"):
        return True
    if change.kind in ("add_enum_values", "remove_enum_values"):
        return not dialect.alters_in_place(change, None)  # its tables are rebuilt
    if change.kind in ("create_table", "drop_table", "rename_table", "create_enum", "drop_enum"):
        return False
    return new_name.get(str(change.table), str(change.table)) in rebuilt


def _rebuild(renderer: DiffRenderer, diff: SchemaDiff, name: str) -> list[str]:
    """The statements that rebuild the table *name* (already under its new name) in the new shape."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    quote = renderer.quote
    table, temporary = quote(name), quote(NEW_PREFIX + name)
    sa_table = renderer.new_table(name)
    created = renderer.compile(CreateTable(sa_table))
    head = f"CREATE TABLE {table} ("
    assert created.startswith(head), created
    columns = _copied_columns(renderer, diff, name)
    targets = ", ".join(quote(new) for new, _ in columns)
    sources = ", ".join(quote(old) for _, old in columns)
    children = [t.name for t in renderer.new.tables.values() if any(k.referenced_table == name for k in t.foreign_keys)]
    before, after = renderer.engine.rebuild_guards(name, [child for child in children if child != name])
    return [
        *[renderer.compile(statement) for statement in before],
        f"CREATE TABLE {temporary} (" + created[len(head) :],
        f"INSERT INTO {temporary} ({targets})\nSELECT {sources} FROM {table};",
        f"DROP TABLE {table};",
        f"ALTER TABLE {temporary} RENAME TO {table};",
        *[renderer.compile(CreateIndex(index)) for index in renderer.indexes(sa_table)],
        *[renderer.compile(statement) for statement in after],
    ]


def _column(subject: object) -> Column:
    assert isinstance(subject, Column), subject
    return subject


def _copied_columns(renderer: DiffRenderer, diff: SchemaDiff, name: str) -> list[tuple[str, str]]:
    """(new name, old name) of each column the rebuild copies: those of the new table the old one has."""
    renamed = {c.name: _column(c.before).name for c in diff.changes if c.kind == "rename_column" and c.table == name}
    previous = renderer.old.tables[renderer.old_name.get(name, name)]
    pairs = [(column, renamed.get(column, column)) for column in renderer.new.tables[name].columns]
    return [(new, old) for new, old in pairs if old in previous.columns]
