"""``drill``: restore a backup into a throwaway target, check it, and record how long the restore took."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from dbkeeper.cli.app import App, dir_option, global_flags, identity_option, json_option, pass_app
from dbkeeper.cli.driver_options import DriverOptionsCommand, driver_values
from dbkeeper.cli.output import emit_json, human_bytes, plural, print_table, seconds, with_options

if TYPE_CHECKING:
    from dbkeeper.backups.drill import DrillReport
    from dbkeeper.backups.manager import BackupManager


@click.command(cls=DriverOptionsCommand, operation="drill")
@click.argument("backup_id")
@dir_option
@click.option(
    "--into",
    metavar="URL",
    help="Restore into a new scratch database on this existing server (a URL or connection name), "
    "dropped afterwards; default: a throwaway server or file of the drill's own.",
)
@click.option(
    "--check-sql",
    "check_sql",
    multiple=True,
    metavar="SQL",
    help="A query whose first column must be true or non-zero on the restored database (repeatable).",
)
@click.option("--keep", is_flag=True, help="Leave the restored target running and print how to reach and stop it.")
@identity_option
@json_option
@global_flags
@pass_app
def drill(
    app: App,
    /,
    backup_id: str,
    directory: Path | str | None,
    into: str | None,
    check_sql: tuple[str, ...],
    keep: bool,
    identities: tuple[Path, ...],
    json_output: bool,
    **flags: object,
) -> None:
    """Prove that BACKUP_ID (an id, a prefix or 'latest') restores: restore it, check it, time it.

    Checks the row count of every table against the manifest, the engine's integrity
    check and each --check-sql query, records the verdict and the restore's seconds beside
    the backup (backups list, backups show, metrics), and exits 1 when the drill fails.
    The restore takes the driver's options as 'dbkeeper restore' does (--jobs …; see
    'dbkeeper plugins'; dbkeeper.toml's [drivers.NAME] applies).
    """
    server = app.config.resolve(into)[1] if into else None
    manager = app.backups(directory, json_output=json_output, identities=identities)
    backup_id, options = _options(app, manager, backup_id, flags)
    report = manager.drill(backup_id, into=server, check_sql=check_sql, keep=keep, options=options)
    if json_output:
        emit_json(report.to_dict())
    else:
        _print(report, options, quiet=app.quiet)
    if not report.ok:  # with --json too: stdout stays the report, stderr says why in one line
        click.echo(f"error: drill of {report.id} failed: {report.problem}", err=True)
        raise click.exceptions.Exit(1)


def _options(app: App, manager: BackupManager, ref: str, flags: dict[str, object]) -> tuple[str, dict[str, object]]:
    """The backup's id, and the options for its driver's restore (a flag it does not declare is a usage error).

    A backup without a readable manifest has no driver: the drill itself says what is wrong with it.
    """
    found = manager.repository.find(ref)
    if found.manifest is None:
        return found.id, {}
    recorded = found.manifest.driver
    return found.id, driver_values(app, app.plugins.driver_named(recorded.name, recorded.distribution), "drill", flags)


def _print(report: DrillReport, options: dict[str, object], *, quiet: bool) -> None:
    size = f"({human_bytes(report.raw_bytes)}, {plural(report.rows, 'row')})"
    if report.restore_seconds is None:
        click.echo(f"drill {report.id} FAILED: the restore into {report.target} failed {size}")
    else:
        verdict = "ok" if report.ok else "FAILED"
        took = f"{seconds(report.restore_seconds)}{with_options(options)}"
        click.echo(f"drill {report.id} {verdict}: restored into {report.target} in {took} {size}")
    if not quiet:
        rows = [["skipped" if c.skipped else "ok" if c.ok else "FAILED", c.name, c.detail] for c in report.checks]
        print_table(["CHECK", "NAME", "DETAIL"], rows)
    if report.kept is not None:
        click.echo(f"kept: {report.kept.kind}")
        click.echo(f"  connect: {report.kept.connect}")
        click.echo(f"  stop:    {report.kept.stop}")
