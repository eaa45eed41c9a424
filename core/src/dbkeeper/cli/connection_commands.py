"""``connections list|test`` and ``query``."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import click

from dbkeeper.cli.app import App, global_flags, json_option, pass_app
from dbkeeper.cli.output import emit_json, emit_json_streamed, note, plural, print_table
from dbkeeper.connections.config import DATABASE_URL_ENV
from dbkeeper.connections.urls import redact

if TYPE_CHECKING:
    from dbkeeper.connections.database import RowStream


@click.group()
def connections() -> None:
    """List and test the configured connections."""


@connections.command("list")
@json_option
@global_flags
@pass_app
def list_connections(app: App, json_output: bool) -> None:
    """List connections from dbkeeper.toml and DATABASE_URL (passwords masked)."""
    found = [(name, redact(url), str(app.config.path)) for name, url in sorted(app.config.connections.items())]
    if env_url := os.environ.get(DATABASE_URL_ENV):
        found.append((DATABASE_URL_ENV, redact(env_url), "environment"))
    if json_output:
        emit_json([{"name": n, "url": u, "source": s} for n, u, s in found])
    elif found:
        print_table(["NAME", "URL", "SOURCE"], found)
    else:
        note('no connections: add [connections.NAME] url = "..." to dbkeeper.toml, or set DATABASE_URL')


@connections.command("test")
@click.argument("name", required=False)
@json_option
@global_flags
@pass_app
def test_connection(app: App, name: str | None, json_output: bool) -> None:
    """Connect to NAME (or DATABASE_URL) and report the server version and round-trip time."""
    from dbkeeper.connections.database import DatabaseManager

    with DatabaseManager(app.config, plugins=app.plugins) as dbs:
        connection = dbs.get(name)
        started = time.perf_counter()
        server = connection.server_version()
        connection.execute("SELECT 1")
        elapsed = time.perf_counter() - started
    if json_output:
        emit_json(
            {
                "name": connection.name,
                "url": str(connection.url),
                "ok": True,
                "server_version": server,
                "seconds": round(elapsed, 4),
            }
        )
    else:
        click.echo(f"ok {connection.name}: {connection.url} (server {server}, {elapsed * 1000:.1f} ms)")


@click.command()
@click.argument("connection")
@click.argument("sql")
@json_option
@global_flags
@pass_app
def query(app: App, connection: str, sql: str, json_output: bool) -> None:
    """Run SQL on CONNECTION (a name or URL) and print the result."""
    from dbkeeper.connections.database import DatabaseManager

    with DatabaseManager(app.config, plugins=app.plugins) as dbs, dbs.get(connection).stream(sql) as result:
        if result.columns:  # rows are printed as they arrive, inside the statement's transaction
            _print_rows(result, json_output)
            return
    _print_outcome(result, json_output)  # a statement without rows: reported once it is committed


def _print_rows(result: RowStream, json_output: bool) -> None:
    """A query's rows as a table (count and time on stderr) or as one JSON document, streamed."""
    if json_output:
        emit_json_streamed(
            {"columns": result.columns},
            "rows",
            result,
            lambda: {"rowcount": result.rowcount, "duration": result.duration},
        )
        return
    count = print_table(result.columns, result)
    note(f"({plural(count, 'row')}, {result.duration * 1000:.1f} ms)")


def _print_outcome(result: RowStream, json_output: bool) -> None:
    """What a statement that returns no rows did: rows affected when the driver says, and the time."""
    if json_output:
        emit_json({"columns": [], "rows": [], "rowcount": result.rowcount, "duration": result.duration})
    elif result.rowcount >= 0:
        note(f"ok ({plural(result.rowcount, 'row')} affected, {result.duration * 1000:.1f} ms)")
    else:
        note(f"ok ({result.duration * 1000:.1f} ms)")
