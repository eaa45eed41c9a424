"""The ``dbkeeper`` command line: a thin layer over the Python API.

Data goes to stdout, notes and progress to stderr. Exit status: 0 success, 1 error,
2 usage error, 130 interrupted. Errors are one line; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click

from dbkeeper.cli.app import App
from dbkeeper.cli.backup_commands import backup, backups, prune, restore, verify
from dbkeeper.cli.connection_commands import connections, query
from dbkeeper.cli.migrate_commands import migrate
from dbkeeper.cli.output import show_notes
from dbkeeper.cli.plugin_commands import plugins
from dbkeeper.cli.top_command import top
from dbkeeper.connections.urls import redact
from dbkeeper.errors import DbkeeperError
from dbkeeper.system import interrupts


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    ctx.obj = App(config_path=config_path, quiet=quiet, debug=debug)


for command in (backup, backups, verify, restore, prune, migrate, connections, query, plugins, top):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with its status; errors are one line unless --debug."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    show_notes()  # drivers' notes (dbkeeper.plugin.note) as 'note: …' lines on stderr
    interrupts.install()  # SIGTERM unwinds like Ctrl-C (partial files are cleaned up), held while a restore commits
    try:
        status = cli.main(args=args, prog_name="dbkeeper", standalone_mode=False)
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
