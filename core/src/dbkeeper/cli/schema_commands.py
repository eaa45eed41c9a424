"""``schema validate``: check a schema definition file (YAML or JSON) and name every bad field."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dbkeeper.cli.app import collector_paused, global_flags, json_option
from dbkeeper.cli.output import emit_json
from dbkeeper.errors import SchemaError


@click.group()
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
    with collector_paused():
        from dbkeeper.schema import load_definition
    try:
        definition = load_definition(file)
    except SchemaError as exc:
        if json_output:
            emit_json({"valid": False, "problems": [{"path": p, "message": m} for p, m in exc.problems]})
        else:
            for path, message in exc.problems:
                click.echo(f"error: {path}: {message}", err=True)
        sys.exit(1)
    if json_output:
        emit_json({"valid": True, "problems": []})
        return
    counts = [(len(definition.tables), "table"), (len(definition.views), "view"), (len(definition.enums), "enum")]
    click.echo(f"{file}: valid, " + ", ".join(f"{n} {word}{'' if n == 1 else 's'}" for n, word in counts))
