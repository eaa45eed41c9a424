"""``dbkeeper top``: a live terminal view of one database (see :mod:`dbkeeper.monitoring.top`)."""

from __future__ import annotations

import sys

import click

from dbkeeper.cli.app import App, global_flags, pass_app

NOT_A_TERMINAL = (
    "error: dbkeeper top needs a terminal on stdin and stdout; "
    "for one reading as data use: dbkeeper metrics CONNECTION --format json"
)


@click.command()
@click.argument("connection")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.5),
    default=2.0,
    show_default=True,
    help="Seconds between two readings (at least 0.5).",
)
@global_flags
@pass_app
@click.pass_context
def top(ctx: click.Context, app: App, connection: str, interval: float) -> None:
    """Watch CONNECTION (a name or URL) live: rates, sessions, waits; q or Ctrl-C quits."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        click.echo(NOT_A_TERMINAL, err=True)
        ctx.exit(2)
    from rich.console import Console

    from dbkeeper.connections.urls import DatabaseURL
    from dbkeeper.monitoring.top import Target, watch

    label, raw = app.config.resolve(connection)
    url = DatabaseURL.parse(raw)
    target = Target(label, url, app.plugins.driver_for(url), app.config.monitoring)
    watch(target, interval, Console(), sys.stdin.fileno())
