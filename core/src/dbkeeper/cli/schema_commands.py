"""``schema validate``, ``generate`` and ``inspect``, and the options and helpers ``schema diff`` shares with them."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from dbkeeper.cli.app import App, global_flags, json_option, pass_app
from dbkeeper.cli.lazy_commands import LazyCommands
from dbkeeper.cli.output import emit_json
from dbkeeper.errors import SchemaError, StorageError
from dbkeeper.system.collector import collector_paused
from dbkeeper.system.notes import note

Command = TypeVar("Command", bound=Callable[..., object])

if TYPE_CHECKING:
    from dbkeeper.schema import SchemaDefinition


def dialect_option(help: str, *, required: bool = False) -> Callable[[Command], Command]:
    """``--dialect NAME``: an installed driver's schema dialect (``mariadb`` is ``mysql``); else a usage error."""
    return click.option(
        "--dialect",
        metavar="sqlite|postgresql|mysql|…",
        required=required,
        callback=lambda _ctx, _param, value: None if value is None else _installed_dialect(value),
        help=help,
    )


def _installed_dialect(name: str) -> str:
    """The name of the installed schema dialect *name*; a usage error naming what to install when there is none."""
    from dbkeeper.errors import DriverNotFoundError, UnsupportedOperationError

    with collector_paused():
        from dbkeeper.schema.metadata import schema_dialect
    try:
        return schema_dialect(name).name
    except (DriverNotFoundError, UnsupportedOperationError) as exc:
        raise click.BadParameter(str(exc)) from None


@click.group(commands=LazyCommands({"diff": "dbkeeper.cli.schema_diff_command:diff"}))  # it imports this module
def schema() -> None:
    """Schema definitions: portable tables, views and enums in YAML or JSON."""


@schema.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@json_option
@global_flags
def validate(file: Path, json_output: bool) -> None:
    """Check FILE, a schema definition in YAML (or JSON for a .json file).

    Valid: a one-line summary, exit 0. Invalid: one 'error: PATH: PROBLEM' line per
    problem on stderr, exit 1.
    """
    definition = load_or_exit(file, json_output)
    if json_output:
        emit_json({"valid": True, "problems": []})
        return
    counts = [(len(definition.tables), "table"), (len(definition.views), "view"), (len(definition.enums), "enum")]
    click.echo(f"{file}: valid, " + ", ".join(f"{n} {word}{'' if n == 1 else 's'}" for n, word in counts))


@schema.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@dialect_option("The engine the DDL is for: an installed driver's name (mysql: MySQL and MariaDB).", required=True)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write the DDL to this file, not stdout."
)
@global_flags
def generate(file: Path, dialect: str, output: Path | None) -> None:
    """Print the DDL that creates FILE's schema on one engine.

    FILE is validated first (as 'schema validate' does: error lines, exit 1). The
    statements come in dependency order, each ending with ';'; what the engine cannot
    keep (a lossy type, a comment) is a 'note:' line on stderr.
    """
    definition = load_or_exit(file, json_output=False)
    with collector_paused():
        from dbkeeper.schema.generate import generate_schema

    try:
        ddl = generate_schema(definition, dialect)
    except SchemaError as exc:
        print_problems(exc)
        sys.exit(1)
    for warning in ddl.warnings:
        note(warning)  # 'note: …' on stderr; --quiet leaves them out
    if output is None:
        click.echo(ddl.sql, nl=False)
    else:
        _write_file(output, ddl.sql)


@schema.command()
@click.argument("connection", required=False)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["yaml", "json", "sql"]),
    default="yaml",
    show_default=True,
    help="A definition in YAML or JSON, or its DDL.",
)
@dialect_option("With --format sql: the engine the DDL is for (default: the connection's).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write to this file, not stdout.")
@global_flags
@pass_app
def inspect(app: App, connection: str | None, output_format: str, dialect: str | None, output: Path | None) -> None:
    """Read the live database CONNECTION (a name or URL; default: DATABASE_URL) into a definition.

    Tables, columns, keys, indexes, checks, comments, views and enums are read; an engine
    type with no portable type is an error line naming the column, exit 1.
    """
    with collector_paused():
        from dbkeeper.schema import dump_definition
        from dbkeeper.schema.generate import generate_schema
        from dbkeeper.schema.inspect import dialect_of, inspect_schema

    from dbkeeper.connections.urls import DatabaseURL

    _, url = app.config.resolve(connection)
    try:
        definition = inspect_schema(url, app.config, app.plugins)
        if output_format == "sql":
            ddl = generate_schema(definition, dialect or dialect_of(DatabaseURL.parse(url).backend))
            for warning in ddl.warnings:
                note(warning)
            text = ddl.sql
        else:
            text = dump_definition(definition, output_format)  # type: ignore[arg-type]  # click.Choice checked it
    except SchemaError as exc:
        print_problems(exc)
        sys.exit(1)
    if output is None:
        click.echo(text, nl=False)
    else:
        _write_file(output, text)


def load_or_exit(file: Path, json_output: bool) -> SchemaDefinition:
    """The validated definition in *file*; its problems as error lines (or JSON), exit 1."""
    with collector_paused():
        from dbkeeper.schema import load_definition
    try:
        return load_definition(file)
    except SchemaError as exc:
        if json_output:
            emit_json({"valid": False, "problems": [{"path": p, "message": m} for p, m in exc.problems]})
        else:
            print_problems(exc)
        sys.exit(1)


def print_problems(exc: SchemaError) -> None:
    """One ``error: PATH: PROBLEM`` line on stderr per problem of *exc*."""
    for path, message in exc.problems:
        click.echo(f"error: {path}: {message}", err=True)


def _write_file(path: Path, text: str) -> None:
    """Write *text* to *path* atomically (a temporary file beside it, renamed), with the usual permissions."""
    import tempfile

    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it 0600; DDL is no secret
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
