"""A schema diff as a migration file: the up part turns the old schema into the new, the down part back.

:func:`diff_migration` compares two definitions and renders both directions for one
dialect: up is ``render(diff(old, new))``, down is ``render(diff(new, old, renames
inverted))``. Where DDL is not transactional (MySQL/MariaDB), ``migrate`` undoes a
migration that fails half-way with the down part's last statements (see
:mod:`dbkeeper.migrations.runner`): there the down part is the up part inverted statement
by statement (:mod:`dbkeeper.schema.inverse`). :func:`write_migration` writes the file in ``migrate``'s format, under
``migrate new``'s id (``<UTC timestamp>_<name>``), with a comment header listing the
changes and what the dialect cannot keep.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dbkeeper.schema.changes import Change, SchemaDiff
from dbkeeper.schema.definition import SchemaDefinition
from dbkeeper.schema.metadata import Note
from dbkeeper.schema.render import RenderedDiff

if TYPE_CHECKING:
    from dbkeeper.plugin.schema import SchemaDialect


@dataclass(frozen=True)
class DiffMigration:
    """The changes from one definition to another, and both parts of their migration for one dialect."""

    diff: SchemaDiff
    up: RenderedDiff
    down: RenderedDiff

    @property
    def notes(self) -> tuple[Note, ...]:
        """What the dialect cannot keep, in either direction, each once."""
        return tuple(dict.fromkeys([*self.up.notes, *self.down.notes]))


def diff_migration(old: SchemaDefinition, new: SchemaDefinition, dialect: str | SchemaDialect) -> DiffMigration:
    """Compare *old* and *new* and render the up (old → new) and down (new → old) parts for *dialect*.

    Both definitions are first taken as the engine reads them back
    (:func:`~dbkeeper.schema.normalise.read_back`), so that a database and the definition it was
    generated from do not differ, and the statements name what the engine holds. Where the
    dialect's DDL is not transactional, the down part is the up part inverted statement by
    statement (:mod:`dbkeeper.schema.inverse`).
    """
    from dbkeeper.schema.diff import diff_read_back, renames_of
    from dbkeeper.schema.inverse import render_inverse
    from dbkeeper.schema.metadata import schema_dialect
    from dbkeeper.schema.normalise import read_back
    from dbkeeper.schema.render import render_diff

    engine = schema_dialect(dialect)
    renames = renames_of(old, new)
    old, new = read_back(old, engine), read_back(new, engine)  # both sides as the engine holds them
    diff = diff_read_back(old, new, renames, engine)
    if not engine.transactional_ddl:  # migrate undoes a failed run with the down part, statement by statement
        return DiffMigration(diff, render_diff(diff, old, new, engine), render_inverse(diff, old, new, engine))
    backward = diff_read_back(new, old, renames.inverted(), engine)
    return DiffMigration(diff, render_diff(diff, old, new, engine), render_diff(backward, new, old, engine))


def describe(change: Change) -> str:
    """One line for *change*: ``+ add column orders.note varchar(200)``, ``- drop table legacy  (destructive: …)``."""
    sign = (
        "+" if change.kind.startswith(("add", "create")) else "-" if change.kind.startswith(("drop", "remove")) else "~"
    )
    text = f"{sign} {change.kind.replace('_', ' ')} {change.target}"
    detail = _detail(change)
    if detail:
        text += f" {detail}"
    if change.destructive is not None:
        text += f"  (destructive: {change.destructive})"
    return text


def _detail(change: Change) -> str:
    """What a change sets, when one word says it: a column's type, a rename's old name, an enum's values."""
    before, after = change.before, change.after
    if change.kind in ("rename_table", "rename_column"):
        return f"(from {getattr(before, 'name', '')})"
    if change.kind == "add_column":
        return str(getattr(after, "type", ""))
    if change.kind == "alter_column" and getattr(before, "type", None) != getattr(after, "type", None):
        return f"{getattr(before, 'type', '')} -> {getattr(after, 'type', '')}"
    if change.kind in ("add_enum_values", "remove_enum_values", "create_enum"):
        return "(" + ", ".join(getattr(after, "values", ())) + ")"
    return ""


def migration_text(
    name: str, up: Sequence[str], down: Sequence[str], *, changes: Sequence[Change] = (), notes: Sequence[Note] = ()
) -> str:
    """A migration file's text: a header listing *changes* and *notes*, then the up and the down part."""
    from dbkeeper.migrations.files import DOWN_MARKER, UP_MARKER

    header = [f"-- {name}", "-- Written by 'dbkeeper schema diff'. Changes:"]
    header += [f"--   {describe(change)}" for change in changes]
    if notes:
        header += ["-- Notes (what the engine cannot keep):", *(f"--   {path}: {message}" for path, message in notes)]
    return "\n".join([*header, UP_MARKER, _part(up), DOWN_MARKER, _part(down)]).rstrip("\n") + "\n"


def _part(statements: Iterable[str]) -> str:
    """The statements a blank line apart, and a blank line after the last."""
    return "".join(f"{statement}\n\n" for statement in statements).removesuffix("\n")


def write_migration(
    directory: Path | str,
    name: str,
    up: Sequence[str],
    down: Sequence[str],
    *,
    changes: Sequence[Change] = (),
    notes: Sequence[Note] = (),
) -> Path:
    """Write a new migration ``<directory>/<UTC timestamp>_<slug of name>.sql`` of *up* and *down*; its path.

    The id is ``migrate new``'s; an existing file is never overwritten, and the text is
    written atomically (a partial file renamed into place), so ``migrate`` never reads
    half a migration. The header lists *changes* and *notes* as comments.
    """
    from dbkeeper.backups.repository import write_atomically
    from dbkeeper.migrations.files import create_migration

    text = migration_text(name, up, down, changes=changes, notes=notes)
    path = create_migration(directory, name)  # reserves the id; refuses an existing file
    try:
        mode = path.stat().st_mode & 0o777  # as 'migrate new' makes it (the umask's), not a partial file's 0600
        write_atomically(path, text.encode())
        path.chmod(mode)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
