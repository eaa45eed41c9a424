"""The down part of a migration on an engine whose DDL is not transactional: the inverse of each up statement.

On such an engine (the dialect's ``transactional_ddl`` is False: MySQL/MariaDB), ``migrate``
runs a migration statement by statement and, when statement *k* fails, undoes the *k - 1*
that ran with the down part's last *k - 1* statements
(:func:`dbkeeper.migrations.runner.inverse_statements`). That works only when the down part
is the up part inverted statement by statement: the down part's last statement undoes the
up part's first, and so on. :func:`inverse_statements` writes it so: each change's inverse
runs against the schema as that change left it (its tables and columns under the names
they have at that point), every statement paired with the one it undoes.

The dialect may write a table with its indexes as one statement
(:meth:`~dbkeeper.plugin.SchemaDialect.create_table`), so that one ``DROP TABLE`` undoes
it and the other way round. Were the parts ever to differ in length, ``migrate`` would
mark a failed run for ``migrate repair`` rather than guess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from dbkeeper.errors import SchemaError
from dbkeeper.schema.changes import Change, SchemaDiff
from dbkeeper.schema.definition import Column, Enum, SchemaDefinition, Table, View
from dbkeeper.schema.render import DiffRenderer, RenderedDiff
from dbkeeper.schema.render import subject_as as _as

if TYPE_CHECKING:
    from dbkeeper.plugin.schema import SchemaDialect

#: The change that undoes an added key, constraint or index.
_DROPS = {
    "add_primary_key": "drop_primary_key",
    "add_unique": "drop_unique",
    "add_check": "drop_check",
    "add_foreign_key": "drop_foreign_key",
}


def inverse_statements(renderer: DiffRenderer, diff: SchemaDiff) -> list[str]:
    """The down part for *diff* as *renderer* renders its up part: each statement's inverse, last first."""
    renderer.render(diff)  # the renames, as the up part sees them
    groups = [_inverse(renderer, change) for change in renderer.rendered_changes(diff)]
    return [statement for group in reversed(groups) for statement in reversed(group)]


def _inverse(renderer: DiffRenderer, change: Change) -> list[str]:
    """The statements that undo *change*'s, one for each, in the same order."""
    if change.kind.startswith("drop_") and change.kind not in ("drop_view", "drop_column", "drop_table", "drop_enum"):
        return renderer.add_constraint(change.name, renderer.table_now(change), change.before, renderer.old_built)
    if change.kind == "add_index":
        return renderer.drop_index(change.name, str(change.table), renderer.new_built)
    if change.kind in _DROPS:
        table = str(change.table)
        return renderer.drop_constraint(_DROPS[change.kind], change.name, table, change.after, renderer.new_built)
    return _INVERSES[change.kind](renderer, change)


def _enum_values(renderer: DiffRenderer, change: Change) -> list[str]:
    """An inline enum's columns back to the values they had (a named type's values cannot be taken back)."""
    before = _as(change.before, Enum)
    if renderer.engine.enum_storage != "inline":
        raise SchemaError(
            [(f"enums.{change.name}", f"{renderer.engine.title} cannot undo changed values statement by statement")]
        )
    if change.kind == "add_enum_values":
        return renderer.enum_columns(renderer.old, before, renamed=False)
    return renderer.enum_columns(renderer.new, before, renamed=True)


def _enum(renderer: DiffRenderer, change: Change) -> list[str]:
    """A created enum type dropped, a dropped one created again (nothing where enums are part of the columns)."""
    if change.kind == "create_enum":
        return renderer.change(Change("drop_enum", None, change.name, before=change.after))
    return renderer.change(Change("create_enum", None, change.name, after=change.before))


def _view(renderer: DiffRenderer, change: Change) -> list[str]:
    if change.kind == "drop_view":
        return renderer.create_view(_as(change.before, View))
    return [renderer.drop_view(change.name)]


def _table(renderer: DiffRenderer, change: Change) -> list[str]:
    """A created table dropped, a dropped one created again (with its indexes, as the dialect writes a new table)."""
    if change.kind == "drop_table":
        return renderer.create_table(change.name, renderer.old_built)
    return renderer.alembic(lambda op: op.drop_table(change.name))


def _rename_table(renderer: DiffRenderer, change: Change) -> list[str]:
    return renderer.rename_table(change.name, renderer.old_name[change.name])


def _rename_column(renderer: DiffRenderer, change: Change) -> list[str]:
    table, old = str(change.table), _as(change.before, Column).name
    return renderer.rename_column(table, change.name, old, renderer.old_column(table, old))


def _add_column(renderer: DiffRenderer, change: Change) -> list[str]:
    return renderer.drop_column(str(change.table), change.name)


def _drop_column(renderer: DiffRenderer, change: Change) -> list[str]:
    return renderer.add_column(str(change.table), renderer.old_column(str(change.table), change.name))


def _alter_column(renderer: DiffRenderer, change: Change) -> list[str]:
    table = str(change.table)
    before, after = _as(change.before, Column), _as(change.after, Column)
    new = renderer.new_table(table).columns[after.name]
    old = renderer.old_column(table, before.name)
    return renderer.change_column(table, (after, new), (replace(before, name=after.name), old))


def _table_comment(renderer: DiffRenderer, change: Change) -> list[str]:
    before, after = _as(change.before, Table), _as(change.after, Table)
    return renderer.table_comment(change.name, before.comment, after.comment)


_INVERSES: dict[str, Callable[[DiffRenderer, Change], list[str]]] = {
    "create_enum": _enum,
    "drop_enum": _enum,
    "add_enum_values": _enum_values,
    "remove_enum_values": _enum_values,
    "drop_view": _view,
    "create_view": _view,
    "create_table": _table,
    "drop_table": _table,
    "rename_table": _rename_table,
    "rename_column": _rename_column,
    "add_column": _add_column,
    "drop_column": _drop_column,
    "alter_column": _alter_column,
    "alter_table_comment": _table_comment,
}


def render_inverse(
    diff: SchemaDiff, old: SchemaDefinition, new: SchemaDefinition, dialect: str | SchemaDialect
) -> RenderedDiff:
    """The down part whose statements undo those of ``render_diff(diff, old, new, dialect)`` one by one."""
    renderer = DiffRenderer(old, new, dialect)
    return RenderedDiff(renderer.name, tuple(inverse_statements(renderer, diff)))
