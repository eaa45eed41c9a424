"""The changes that turn one schema definition into another: what ``schema diff`` prints and renders.

A :class:`SchemaDiff` is an ordered list of :class:`Change` values between two definitions
(``old`` → ``new``). Every change names its object, carries the object as it was and as
it becomes, and says whether it loses data (``destructive``). The order is the order the
statements run in (:data:`ORDER`): what other changes depend on comes first, what they
might break comes last. Rendering a diff as SQL for one dialect is
:mod:`dbkeeper.schema.render`'s; the comparison that finds the changes is
:mod:`dbkeeper.schema.diff`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from dbkeeper.schema.definition import (
    Check,
    Column,
    Enum,
    Expression,
    ForeignKey,
    Index,
    PrimaryKey,
    Table,
    UniqueConstraint,
    View,
)

#: Every kind of change, in the order a migration applies them.
ChangeKind = Literal[
    "create_enum",
    "add_enum_values",
    "drop_view",
    "drop_foreign_key",
    "drop_index",
    "drop_unique",
    "drop_check",
    "drop_primary_key",
    "rename_table",
    "rename_column",
    "create_table",
    "add_column",
    "alter_column",
    "drop_column",
    "drop_table",
    "add_primary_key",
    "add_unique",
    "add_check",
    "add_index",
    "add_foreign_key",
    "alter_table_comment",
    "remove_enum_values",
    "drop_enum",
    "create_view",
]
ORDER: tuple[ChangeKind, ...] = get_args(ChangeKind)

#: What a change is about: a table, a column, a constraint or index, a view or an enum.
Subject = Table | Column | PrimaryKey | UniqueConstraint | ForeignKey | Index | Check | View | Enum


@dataclass(frozen=True)
class Change:
    """One change from the old definition to the new.

    ``table`` is the table the change belongs to (its name in the new definition; for a
    dropped table or its parts, in the old one; for the constraints, keys and indexes
    dropped before ``rename_table`` runs, in the old one too), None for views and enums. ``name`` is the
    object's own name: the column, the constraint or index (as the naming convention
    resolves it), the view, the enum, or the table itself. ``before`` is the object in the
    old definition (None for what is created), ``after`` in the new (None for what is
    dropped); a rename has both. ``destructive`` says what data the change loses, None
    when it loses none: dropping a table or column, narrowing a type, removing enum values.
    """

    kind: ChangeKind
    table: str | None
    name: str
    before: Subject | None = None
    after: Subject | None = None
    destructive: str | None = None

    @property
    def target(self) -> str:
        """The object as a dotted name: ``orders``, ``orders.total``, ``orders.ix_orders_placed``."""
        if self.table is None or self.kind in ("create_table", "drop_table", "rename_table", "alter_table_comment"):
            return self.name
        return f"{self.table}.{self.name}"

    @property
    def summary(self) -> str:
        """The change as one line: ``add column orders.note``, ``alter column orders.total: type …``."""
        verb, noun = self.kind.split("_", 1)
        noun = noun.replace("_", " ")
        if self.kind in ("rename_table", "rename_column"):
            return f"rename {noun} {_old_target(self)} to {self.target}"
        if self.kind == "alter_column":
            return f"alter column {self.target}: {'; '.join(_column_changes(self.before, self.after))}"
        if self.kind == "alter_table_comment":
            return f"change the comment of table {self.target}"
        if self.kind in ("add_enum_values", "remove_enum_values"):
            return _enum_summary(self)
        return f"{verb} {noun} {self.target}"


@dataclass(frozen=True)
class SchemaDiff:
    """The ordered changes from one definition to another; empty when they are equal."""

    changes: tuple[Change, ...]

    def __bool__(self) -> bool:
        return bool(self.changes)

    @property
    def destructive(self) -> tuple[Change, ...]:
        """The changes that lose data: refused unless the user allows them."""
        return tuple(change for change in self.changes if change.destructive is not None)


def _old_target(change: Change) -> str:
    """The dotted name a renamed table or column had."""
    before = change.before
    name = getattr(before, "name", change.name)
    if change.kind == "rename_table":
        return str(name)
    return f"{change.table}.{name}"


def _column_changes(before: Subject | None, after: Subject | None) -> list[str]:
    """What differs between two versions of a column, one phrase each."""
    if not isinstance(before, Column) or not isinstance(after, Column):
        return []
    found = []
    if before.type != after.type:
        found.append(f"type {before.type} → {after.type}")
    if before.nullable and not after.nullable:
        found.append("not null (fails while a row holds NULL)")
    elif after.nullable and not before.nullable:
        found.append("nullable")
    if before.default != after.default:
        found.append(f"default {_shown(before.default)} → {_shown(after.default)}")
    if before.identity != after.identity:
        found.append("identity" if after.identity else "no identity")
    if before.comment != after.comment:
        found.append("comment")
    return found


def _shown(default: object) -> str:
    """A default as a phrase: ``none``, ``0``, ``'new'``, ``CURRENT_TIMESTAMP``."""
    if default is None:
        return "none"
    if isinstance(default, Expression):
        return default.sql
    if isinstance(default, bool):
        return str(default).lower()
    return repr(default)


def _enum_summary(change: Change) -> str:
    """``add 'refunded' to enum order_status``, ``remove 'cancelled' from enum order_status``."""
    before = change.before.values if isinstance(change.before, Enum) else ()
    after = change.after.values if isinstance(change.after, Enum) else ()
    added = ", ".join(repr(value) for value in after if value not in before)
    gone = ", ".join(repr(value) for value in before if value not in after)
    if change.kind == "add_enum_values":
        return f"add {added} to enum {change.name}" if added else f"change the comment of enum {change.name}"
    if gone:
        return f"remove {gone} from enum {change.name}" + (f" and add {added}" if added else "")
    return f"reorder the values of enum {change.name}"
