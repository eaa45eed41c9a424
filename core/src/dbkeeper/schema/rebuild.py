"""SQLite's table rebuilds: the changes ``ALTER TABLE`` cannot make, done by copying the table.

SQLite's ``ALTER TABLE`` renames tables and columns, adds a column (nullable, or with a
constant default) and drops one that no key, constraint or index uses. Anything else — a
column's type, nullability or default, a key or constraint added or dropped, an enum's
values (a ``CHECK``) — rebuilds the table, the recipe of SQLite's documentation
(https://www.sqlite.org/lang_altertable.html#otheralter), inside the migration's one
transaction:

1. a guard that fails the migration when the table has triggers (the definition does not
   model them, so a rebuild would lose them);
2. ``CREATE TABLE "_dbkeeper_new_<t>"`` in the new shape, with the final constraint names;
3. ``INSERT INTO`` it the kept columns (renamed ones mapped) ``SELECT … FROM "<t>"``;
4. ``DROP TABLE "<t>"`` and ``ALTER TABLE "_dbkeeper_new_<t>" RENAME TO "<t>"``;
5. the table's indexes created again;
6. a guard that fails the migration when ``PRAGMA foreign_key_check`` finds rows of the
   table, or of the tables referencing it, pointing nowhere.

dbkeeper's SQLite connections leave ``PRAGMA foreign_keys`` off, so dropping the old table
neither cascades into its children nor fails. Every view is dropped before the rebuilds
and the new definition's views are created after them (SQLite checks views when a table is
renamed). Several changes to one table are one rebuild. A renamed table is renamed in place
first, so the tables referencing it follow the new name.

A guard is a TEMP table whose named ``CHECK`` fails: SQLite's pragmas cannot fail a
statement by themselves, and the constraint's name is the error the user reads.

:func:`rebuilt_tables` is the one place that decides between in place and a rebuild.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from dbkeeper.schema.changes import Change, SchemaDiff
from dbkeeper.schema.definition import Column, Expression, SchemaDefinition, Table

if TYPE_CHECKING:
    from dbkeeper.schema.render import DiffRenderer

#: Changes SQLite's ALTER TABLE cannot make at all.
_ALWAYS = frozenset(
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
#: The prefix of the table a rebuild copies the rows into.
NEW_PREFIX = "_dbkeeper_new_"


def rebuilt_tables(
    change: Change, old: SchemaDefinition, new: SchemaDefinition, new_name: Mapping[str, str]
) -> tuple[str, ...]:
    """The tables (new names) SQLite must rebuild to make *change*; () when ``ALTER TABLE`` can.

    *new_name* maps a renamed table's old name to its new one.
    """
    table = new_name.get(str(change.table), str(change.table))
    if change.kind in _ALWAYS:
        return (table,)
    if change.kind in ("add_enum_values", "remove_enum_values"):
        return tuple(t.name for t in new.tables.values() if any(c.type.enum == change.name for c in t.columns.values()))
    if change.kind == "alter_column":
        before, after = _column(change.before), _column(change.after)
        return (table,) if _without_comment(before, after.name) != _without_comment(after, after.name) else ()
    if change.kind == "add_column":
        return (table,) if not _addable(_column(change.after)) else ()
    if change.kind == "drop_column":
        previous = old.tables[next((o for o, n in new_name.items() if n == table), table)]
        return (table,) if _pinned(previous, _column(change.before)) else ()
    return ()


def _without_comment(column: Column, name: str) -> Column:
    """*column* under *name* with no comment: SQLite keeps none, so a comment alone changes nothing."""
    from dataclasses import replace

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


def _column(subject: object) -> Column:
    assert isinstance(subject, Column)
    return subject


def render_sqlite(renderer: DiffRenderer, diff: SchemaDiff) -> list[str]:
    """The statements of *diff* on SQLite: in place where ``ALTER TABLE`` can, the rest as rebuilds."""
    new_name = {old: new for new, old in renderer.old_name.items()}
    wanted: set[str] = set()
    for change in diff.changes:
        wanted.update(rebuilt_tables(change, renderer.old, renderer.new, new_name))
    created = {change.name for change in diff.changes if change.kind == "create_table"}
    order = [sa_table.name for sa_table in renderer.new_built.metadata.sorted_tables]
    rebuilt = [name for name in order if name in wanted and name not in created]
    if not rebuilt:
        return [statement for change in diff.changes for statement in renderer.change(change)]
    statements = [f"DROP VIEW IF EXISTS {renderer.quote(name)};" for name in renderer.old.views]
    for change in diff.changes:
        if not _absorbed(change, rebuilt, new_name):
            statements += renderer.change(change)
    for name in rebuilt:
        statements += _rebuild(renderer, diff, name)
    for view in renderer.new.views.values():
        statements += renderer.create_view(view)
    return statements


def _absorbed(change: Change, rebuilt: list[str], new_name: Mapping[str, str]) -> bool:
    """Whether *change* is part of a rebuild (or of the views dropped and created around them)."""
    if change.kind in ("drop_view", "create_view"):
        return True
    if change.kind in ("create_table", "drop_table", "rename_table", "create_enum", "drop_enum"):
        return False
    return new_name.get(str(change.table), str(change.table)) in rebuilt


def _rebuild(renderer: DiffRenderer, diff: SchemaDiff, name: str) -> list[str]:
    """The statements that rebuild the table *name* (already under its new name) in the new shape."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    quote = renderer.quote
    table, temporary, guard = quote(name), quote(NEW_PREFIX + name), quote(f"_dbkeeper_guard_{name}")
    sa_table = renderer.new_table(name)
    created = renderer.compile(CreateTable(sa_table))
    head = f"CREATE TABLE {table} ("
    assert created.startswith(head), created
    columns = _copied_columns(renderer, diff, name)
    targets = ", ".join(quote(new) for new, _ in columns)
    sources = ", ".join(quote(old) for _, old in columns)
    return [
        f"CREATE TEMP TABLE {guard} (\n"
        f"    triggers INTEGER CONSTRAINT {_message(_TRIGGERS, name)} CHECK (triggers = 0),\n"
        f"    orphans INTEGER CONSTRAINT {_message(_ORPHANS, name)} CHECK (orphans = 0)\n);",
        f"INSERT INTO {guard} SELECT count(*), 0 FROM sqlite_master\n"
        f"WHERE type = 'trigger' AND tbl_name = {_text(name)};",
        f"CREATE TABLE {temporary} (" + created[len(head) :],
        f"INSERT INTO {temporary} ({targets})\nSELECT {sources} FROM {table};",
        f"DROP TABLE {table};",
        f"ALTER TABLE {temporary} RENAME TO {table};",
        *[renderer.compile(CreateIndex(index)) for index in renderer.indexes(sa_table)],
        f"INSERT INTO {guard} SELECT 0, {_orphans(renderer.new, name)};",
        f"DROP TABLE temp.{guard};",
    ]


_TRIGGERS = "{table} has triggers, which rebuilding it would lose: drop them before this migration, create them after"
_ORPHANS = "rebuilding {table} left rows pointing nowhere: PRAGMA foreign_key_check lists them"


def _message(template: str, table: str) -> str:
    """A guard's error message, as the quoted name of its CHECK constraint."""
    return '"' + template.format(table=table).replace('"', '""') + '"'


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _orphans(new: SchemaDefinition, name: str) -> str:
    """The count of rows ``foreign_key_check`` finds in table *name* and in the tables referencing it."""
    children = [t.name for t in new.tables.values() if any(k.referenced_table == name for k in t.foreign_keys)]
    tables = dict.fromkeys([name, *children])
    return " + ".join(f"(SELECT count(*) FROM pragma_foreign_key_check({_text(table)}))" for table in tables)


def _copied_columns(renderer: DiffRenderer, diff: SchemaDiff, name: str) -> list[tuple[str, str]]:
    """(new name, old name) of each column the rebuild copies: those of the new table the old one has."""
    renamed = {c.name: _column(c.before).name for c in diff.changes if c.kind == "rename_column" and c.table == name}
    previous = renderer.old.tables[renderer.old_name.get(name, name)]
    pairs = [(column, renamed.get(column, column)) for column in renderer.new.tables[name].columns]
    return [(new, old) for new, old in pairs if old in previous.columns]
