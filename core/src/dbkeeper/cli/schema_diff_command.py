"""``schema diff``: the changes between two schemas (files or live databases), as SQL and as a migration file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dbkeeper.cli.app import App, global_flags, json_option, pass_app
from dbkeeper.cli.output import emit_json
from dbkeeper.cli.schema_commands import dialect_option, load_or_exit, print_problems
from dbkeeper.errors import ConfigError, SchemaError
from dbkeeper.system.collector import collector_paused
from dbkeeper.system.notes import note

if TYPE_CHECKING:
    from dbkeeper.schema import SchemaDefinition
    from dbkeeper.schema.changes import SchemaDiff
    from dbkeeper.schema.migration import DiffMigration

#: What names a definition file rather than a connection.
DEFINITION_SUFFIXES = (".yaml", ".yml", ".json")


@click.command("diff")
@click.argument("source", metavar="FROM")
@click.argument("target", metavar="TO")
@dialect_option("The engine the SQL is for (default: FROM's connection, else TO's).")
@click.option("--exit-code", is_flag=True, help="Exit 1 when there are differences, 0 when there are none.")
@json_option
@click.option(
    "--write-migration",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write the changes as a migration (up and down parts) into this directory.",
)
@click.option("--name", help="With --write-migration: the migration's name (its id is <UTC timestamp>_<name>).")
@click.option("--allow-destructive", is_flag=True, help="Write changes that lose data (dropped tables or columns …).")
@global_flags
@pass_app
def diff(
    app: App,
    source: str,
    target: str,
    dialect: str | None,
    exit_code: bool,
    json_output: bool,
    directory: Path | None,
    name: str | None,
    allow_destructive: bool,
) -> None:
    """Print the changes that turn schema FROM into schema TO, and their SQL.

    FROM and TO are each a definition file (.yaml, .yml, .json; validated) or a live
    database (a connection name or URL; inspected). The changes come one a line in the
    order they run ('+' creates, '-' drops, '~' alters), then the migration's up and down
    parts for the dialect: --dialect, else FROM's connection's, else TO's (two files and
    no --dialect: the changes only). A 'renamed_from' hint in TO renames instead of
    dropping and adding. Changes that lose data are marked; --write-migration refuses
    them unless --allow-destructive (one error line, exit 1, nothing written). What the
    engine cannot keep is a 'note:' line on stderr.
    """
    if (directory is None) != (name is None):
        raise click.UsageError("--write-migration and --name go together")
    old, old_dialect = _side(app, source)
    new, new_dialect = _side(app, target)
    dialect = dialect or old_dialect or new_dialect
    if directory is not None and dialect is None:
        raise click.UsageError("--write-migration needs a dialect: pass --dialect, or a connection as FROM or TO")
    changes, migration = _compare(old, new, dialect)
    if directory is not None and name is not None and migration is not None:
        _write(changes, migration, directory, name, allow_destructive)
    for path, message in migration.notes if migration is not None else ():
        note(f"{path}: {message}")
    if json_output:
        emit_json(_as_json(changes, migration))
    else:
        _print(changes, migration if directory is None else None)  # written: the SQL is in the file
    if exit_code and changes:
        sys.exit(1)


def _side(app: App, argument: str) -> tuple[SchemaDefinition, str | None]:
    """FROM or TO: a definition file (and no dialect), or a live database inspected (and its dialect)."""
    path = Path(argument)
    if path.suffix.lower() in DEFINITION_SUFFIXES:
        if not path.is_file():
            raise ConfigError(f"{argument} is neither a definition file (no such file) nor a connection")
        return load_or_exit(path, json_output=False), None
    with collector_paused():
        from dbkeeper.connections.urls import DatabaseURL
        from dbkeeper.schema.inspect import dialect_of, inspect_schema
    try:
        _, url = app.config.resolve(argument)
    except ConfigError as exc:
        raise ConfigError(f"{argument} is neither a definition file nor a connection: {exc}") from None
    try:
        return inspect_schema(url, app.config, app.plugins), dialect_of(DatabaseURL.parse(url).backend)
    except SchemaError as exc:
        print_problems(exc)
        sys.exit(1)


def _compare(
    old: SchemaDefinition, new: SchemaDefinition, dialect: str | None
) -> tuple[SchemaDiff, DiffMigration | None]:
    """The changes, and with a dialect their migration; a definition the dialect cannot express: error lines, exit 1."""
    with collector_paused():
        from dbkeeper.schema.diff import diff_schemas
        from dbkeeper.schema.migration import diff_migration
    try:
        if dialect is None:
            return diff_schemas(old, new), None
        migration = diff_migration(old, new, dialect)
    except SchemaError as exc:
        print_problems(exc)
        sys.exit(1)
    return migration.diff, migration


def _write(changes: SchemaDiff, migration: DiffMigration, directory: Path, name: str, allow_destructive: bool) -> None:
    """Write the migration file, or refuse destructive changes (one line, exit 1, nothing written)."""
    from dbkeeper.schema.migration import write_migration

    if changes.destructive and not allow_destructive:
        listed = "; ".join(str(change.destructive) for change in changes.destructive)
        click.echo(
            f"error: refusing changes that lose data ({listed}): pass --allow-destructive to write them", err=True
        )
        sys.exit(1)
    if not changes:
        note("no differences: no migration written")
        return
    path = write_migration(
        directory, name, migration.up.statements, migration.down.statements,
        changes=changes.changes, notes=migration.notes,
    )  # fmt: skip
    note(f"wrote {path}", always=True)


def _print(changes: SchemaDiff, migration: DiffMigration | None) -> None:
    """The changes one a line, then the up and down parts (when there is a dialect)."""
    from dbkeeper.schema.migration import describe

    if not changes:
        click.echo("no differences")
        return
    for change in changes.changes:
        click.echo(describe(change))
    if migration is not None:
        from dbkeeper.migrations.files import DOWN_MARKER, UP_MARKER  # dbkeeper.migrations imports SQLAlchemy

        click.echo(f"\n{UP_MARKER}\n{migration.up.sql}\n{DOWN_MARKER}\n{migration.down.sql}", nl=False)


def _as_json(changes: SchemaDiff, migration: DiffMigration | None) -> dict[str, Any]:
    """``{"changes": [{kind, target, destructive}], "up": [...], "down": [...], "notes": [...]}``."""
    return {
        "changes": [
            {"kind": change.kind, "target": change.target, "destructive": change.destructive}
            for change in changes.changes
        ],
        "up": list(migration.up.statements) if migration is not None else [],
        "down": list(migration.down.statements) if migration is not None else [],
        "notes": [f"{path}: {message}" for path, message in migration.notes] if migration is not None else [],
    }
