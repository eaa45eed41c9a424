"""The ``dbkeeper`` root command and its run: every command, errors as one line, the exit status.

Data goes to stdout, notes and progress to stderr. Exit status: 0 success, 1 error,
2 usage error, 130 interrupted. Errors are one line; ``--debug`` adds the traceback.
Imported by :func:`dbkeeper.cli.main` once a backup's head start has begun
(:mod:`dbkeeper.cli.early`).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from dbkeeper.cli.app import App
from dbkeeper.cli.lazy_commands import LazyCommands
from dbkeeper.cli.output import show_notes
from dbkeeper.connections.urls import redact
from dbkeeper.errors import DbkeeperError
from dbkeeper.system import interrupts

if TYPE_CHECKING:
    from dbkeeper.cli.early import EarlyBackup

_early: EarlyBackup | None = None
"""The backup head start the arguments began (:func:`run`), for the root command's :class:`App`."""

COMMANDS = {
    "backup": "dbkeeper.cli.backup_commands:backup",
    "backups": "dbkeeper.cli.backup_commands:backups",
    "verify": "dbkeeper.cli.backup_commands:verify",
    "restore": "dbkeeper.cli.backup_commands:restore",
    "drill": "dbkeeper.cli.drill_command:drill",
    "prune": "dbkeeper.cli.backup_commands:prune",
    "migrate": "dbkeeper.cli.migrate_commands:migrate",
    "schema": "dbkeeper.cli.schema_commands:schema",
    "connections": "dbkeeper.cli.connection_commands:connections",
    "query": "dbkeeper.cli.connection_commands:query",
    "plugins": "dbkeeper.cli.plugin_commands:plugins",
    "metrics": "dbkeeper.cli.metrics_commands:metrics",
    "top": "dbkeeper.cli.top_command:top",
    "health": "dbkeeper.cli.health_commands:health",
    "optimize": "dbkeeper.cli.health_commands:optimize",
}
"""Every command, imported when it runs or --help lists it: a command imports only its own module (LazyCommands)."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, commands=LazyCommands(COMMANDS))
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="DBKEEPER_CONFIG",
    help="Configuration file (default: ./dbkeeper.toml).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or notes, only results.")
@click.option("--debug", is_flag=True, help="Show the traceback of an error.")
@click.version_option(package_name="dbkeeper", prog_name="dbkeeper")  # the version is read only for --version
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, quiet: bool, debug: bool) -> None:
    """Keep databases healthy: verified, streaming backups and restores, queries, plugins."""
    ctx.obj = App(config_path=config_path, quiet=quiet, debug=debug, early=_early)


def run(args: list[str], early: EarlyBackup | None = None) -> NoReturn:
    """Run the command in *args* and end the process with its status; errors are one line unless --debug.

    *early* is what the arguments began (:mod:`dbkeeper.cli.early`): its head start is stopped
    at the end if the command did not take it.
    """
    global _early
    _early = early
    try:
        _run(args)
    except SystemExit as exc:
        _exit(exc.code)
    _exit(0)


def _run(args: list[str]) -> None:
    """Run the command in *args*; every outcome raises SystemExit with the exit status."""
    debug = "--debug" in args
    show_notes()  # drivers' notes (dbkeeper.plugin.note) as 'note: …' lines on stderr
    try:
        try:
            status = cli.main(args=args, prog_name="dbkeeper", standalone_mode=False)
        finally:
            if _early is not None:
                _early.close()  # a head start the command did not take: its processes are stopped
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:  # click turns Ctrl-C into Abort
        click.echo(redact(interrupts.message(exc)), err=True)
        sys.exit(130)
    except DbkeeperError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {redact(str(exc))}", err=True)
        sys.exit(1)
    except Exception as exc:
        if debug:
            raise
        click.echo(
            f"error: unexpected {type(exc).__name__}: {redact(str(exc))} "
            "(this is a bug: rerun with --debug and report the traceback)",
            err=True,
        )
        sys.exit(1)
    sys.exit(status if isinstance(status, int) else 0)


def _exit(code: object) -> NoReturn:
    """End the process with *code* as :func:`sys.exit` would, without tearing the interpreter down.

    Everything a command writes is on disk (fsynced) before it returns; what is left is
    Python's finalisation of every imported module, which costs a backup 10 to 30 ms (psycopg
    most). So: wait for any thread still running, run the ``atexit`` handlers (logging's
    flush, temporary directories' cleanup), flush stdout and stderr, then ``os._exit``.
    """
    status = code if isinstance(code, int) else 0 if code is None else 1
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: Python itself exits 120 when stdout cannot be flushed
            status = status or 120
    os._exit(status)
