"""``backup``, ``backups list|show|delete``, ``verify``, ``restore`` and ``prune``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from dbkeeper.cli.app import App, dir_option, global_flags, identity_option, json_option, pass_app
from dbkeeper.cli.driver_options import DriverOptionsCommand, driver_values
from dbkeeper.cli.lazy_commands import LazyCommands
from dbkeeper.cli.output import emit_json, human_bytes, note, plural, print_table, seconds, with_options
from dbkeeper.connections.urls import DatabaseURL
from dbkeeper.errors import ConfigError, DbkeeperError, PruneError

if TYPE_CHECKING:
    from dbkeeper.backups.manager import PrunePlan
    from dbkeeper.backups.record_types import DrillRecord, VerifyRecord
    from dbkeeper.backups.storage import BackupStorage, Entry


@click.command(cls=DriverOptionsCommand, operation="backup")
@click.argument("connection", required=False)
@dir_option
@click.option("--compress", help="Compression stage: zstd (default), gzip or none.")
@click.option("--level", type=int, help="Compression level (zstd 1-22, default 3; gzip 1-9).")
@click.option("--threads", type=int, help="zstd worker threads (default: the cores, shared among --jobs).")
@click.option(
    "--format", "format_", help="Dump format (the driver's formats: dbkeeper plugins); default: the driver's first."
)
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    metavar="KEY",
    help="Encrypt for this age public key (age1…, ssh-ed25519 …; repeatable; default: [backup] recipients).",
)
@json_option
@global_flags
@pass_app
def backup(
    app: App,
    /,
    connection: str | None,
    directory: Path | str | None,
    compress: str | None,
    level: int | None,
    threads: int | None,
    format_: str | None,
    recipients: tuple[str, ...],
    json_output: bool,
    **flags: object,
) -> None:
    """Back up CONNECTION (a name from dbkeeper.toml or a URL; default: DATABASE_URL).

    Prints the new backup's id, or its manifest with --json. The driver's options
    (--jobs, --check …) are listed by 'dbkeeper plugins' and may be set in dbkeeper.toml.
    """
    defaults = app.config.backup
    label, url = app.config.resolve(connection)
    codec = compress or defaults.compress or "zstd"
    given = {key: value for key, value in (("level", level), ("threads", threads)) if value is not None}
    source = DatabaseURL.parse(url)
    driver = app.plugins.driver_for(source)
    options = driver_values(app, driver, "backup", flags)
    chosen = driver.backup_format(format_ or defaults.format)
    # the driver's first server work starts now, while the storage and the stages are set up
    with app.head_start(driver, url, source, chosen, driver.options_for("backup", options)) as prepared:
        manager = app.backups(directory, json_output=json_output)
        for name, configured in defaults.stage_options.items():  # a typo in dbkeeper.toml is an error, not ignored
            try:
                manager.stage_plan(name, configured)
            except DbkeeperError as exc:
                raise ConfigError(f"{app.config.path} [backup.{name}]: {exc}") from None
        manifest = manager.backup(
            source,
            compression=codec,
            compression_options={**defaults.stage_options.get(codec, {}), **given},
            format=chosen,
            options=options,
            recipients=recipients or defaults.recipients,
            prepared=prepared,
        )
    if json_output:
        emit_json(manifest.to_dict())
        return
    click.echo(manifest.id)
    if not app.quiet:
        took = (manifest.finished_at - manifest.started_at).total_seconds()
        note(
            f"backed up {label} ({manifest.engine}, {manifest.format}): {human_bytes(manifest.raw_bytes)} → "
            f"{human_bytes(manifest.stored_bytes)}, {plural(sum(manifest.row_counts.values()), 'row')} "
            f"in {plural(len(manifest.row_counts), 'table')}, {took:.1f}s"
        )


@click.group(commands=LazyCommands({"copy": "dbkeeper.cli.copy_command:copy"}))
def backups() -> None:
    """List, show, delete and copy backups."""


def _summary(entry: Entry, drill: DrillRecord | None) -> dict[str, Any]:
    manifest = entry.manifest
    data: dict[str, Any] = {"id": entry.id, "status": str(entry.status)}
    if manifest:
        data |= {
            "engine": manifest.engine,
            "database": manifest.database,
            "format": manifest.format,
            "source_url": manifest.source_url,
            "finished_at": manifest.to_dict()["finished_at"],
            "raw_bytes": manifest.raw_bytes,
            "stored_bytes": manifest.stored_bytes,
        }
    if entry.problem:
        data["problem"] = entry.problem
    if drill is not None:
        data["last_drill"] = drill.to_data()
    return data


def _drills(storage: BackupStorage, entries: list[Entry]) -> dict[str, DrillRecord]:
    """The drill record of each complete backup that has one."""
    found = {e.id: storage.last_drill(e.id) for e in entries if e.manifest is not None}
    return {backup_id: record for backup_id, record in found.items() if record is not None}


@backups.command("list")
@dir_option
@json_option
@global_flags
@pass_app
def list_backups(app: App, directory: Path | str | None, json_output: bool) -> None:
    """List every backup, oldest first, including incomplete ones."""
    manager = app.backups(directory)
    entries = manager.list()
    drills = _drills(manager.repository, entries)
    if json_output:
        emit_json([_summary(e, drills.get(e.id)) for e in entries])
        return
    if not entries:
        note(f"no backups in {manager.repository.location}")
        return
    headers = ["ID", "STATUS", "ENGINE", "DATABASE", "FORMAT", "SIZE", "FINISHED"]
    extra = (["DRILL"] if drills else []) + (["PROBLEM"] if any(entry.problem for entry in entries) else [])
    rows = [_row(entry) + [_extra(column, entry, drills) for column in extra] for entry in entries]
    print_table([*headers, *extra], rows)


def _extra(column: str, entry: Entry, drills: dict[str, DrillRecord]) -> str:
    """The DRILL (``ok, 41.2s`` / ``failed``) or PROBLEM cell of a backup."""
    if column == "PROBLEM":
        return entry.problem or ""
    drill = drills.get(entry.id)
    if drill is None:
        return ""
    if not drill.ok:
        return "failed"
    return f"ok, {seconds(drill.restore_seconds)}" if drill.restore_seconds is not None else "ok"


def _row(entry: Entry) -> list[str]:
    """The table cells of one backup: what its manifest records, when it has a sound one."""
    m = entry.manifest
    if not m:
        return [entry.id, entry.status, "", "", "", "", ""]
    finished = f"{m.finished_at:%Y-%m-%d %H:%M:%S}Z"
    return [entry.id, entry.status, m.engine, m.database, m.format, human_bytes(m.stored_bytes), finished]


@backups.command("show")
@click.argument("backup_id")
@dir_option
@json_option
@global_flags
@pass_app
def show_backup(app: App, backup_id: str, directory: Path | str | None, json_output: bool) -> None:
    """Show the manifest of BACKUP_ID (an id, a unique prefix, or 'latest'), and its last verify."""
    storage = app.backups(directory).repository
    entry = storage.complete(backup_id)
    assert entry.manifest is not None
    data = entry.manifest.to_dict()
    if json_output:
        emit_json(data)
        return
    for key in (
        "id",
        "engine",
        "engine_version",
        "database",
        "source_url",
        "format",
        "started_at",
        "finished_at",
        "dbkeeper_version",
    ):
        click.echo(f"{key:16} {data[key]}")
    driver = data["driver"]
    click.echo(f"{'driver':16} {driver['name']} ({driver['distribution']} {driver['version']})")
    click.echo(f"{'size':16} {human_bytes(data['raw_bytes'])} raw, {human_bytes(data['stored_bytes'])} stored")
    for artifact in data["artifacts"]:
        stages = " → ".join(s["name"] for s in artifact["stages"])
        click.echo(f"{'artifact':16} {artifact['file']} ({stages})")
        for stage in artifact["stages"]:
            if "digest" in stage:
                click.echo(f"{stage['name']:16} {stage['digest']}")
    click.echo(f"{'last verify':16} {_verify_summary(storage.last_verify(entry.id))}")
    click.echo(f"{'last drill':16} {_drill_summary(storage.last_drill(entry.id))}")
    click.echo("rows")
    print_table(["  TABLE", "ROWS"], [[f"  {t}", n] for t, n in sorted(data["row_counts"].items())])


def _verify_summary(record: VerifyRecord | None) -> str:
    """``ok (deep) at 2026-…Z, 1.2 MB checked``, ``failed at …: <first problem>``, or ``never``."""
    if record is None:
        return "never"
    how = " (deep)" if record.deep else ""
    when = f"{record.at:%Y-%m-%d %H:%M:%S}Z"
    if record.ok:
        return f"ok{how} at {when}, {human_bytes(record.checked_bytes)} checked"
    return f"failed{how} at {when}: {record.problems[0] if record.problems else 'no detail recorded'}"


def _drill_summary(record: DrillRecord | None) -> str:
    """``ok at 2026-…Z, restore 41.2s with jobs 2 (into a throwaway …)``, ``failed at …: <problem>``, or ``never``."""
    if record is None:
        return "never"
    when = f"{record.at:%Y-%m-%d %H:%M:%S}Z"
    if not record.ok:
        return f"failed at {when}: {record.problem or 'no detail recorded'}"
    took = f", restore {seconds(record.restore_seconds)}" if record.restore_seconds is not None else ""
    return f"ok at {when}{took}{with_options(record.options)} (into {record.target})"


@backups.command("delete")
@click.argument("backup_id")
@dir_option
@global_flags
@pass_app
def delete_backup(app: App, backup_id: str, directory: Path | str | None) -> None:
    """Delete BACKUP_ID (complete or incomplete)."""
    deleted = app.backups(directory).delete(backup_id)
    note(f"deleted {deleted}")


@click.command()
@click.argument("backup_id")
@click.option("--deep", is_flag=True, help="Also decompress (and decrypt) everything and check the database inside.")
@dir_option
@identity_option
@json_option
@global_flags
@pass_app
def verify(
    app: App,
    backup_id: str,
    deep: bool,
    directory: Path | str | None,
    identities: tuple[Path, ...],
    json_output: bool,
) -> None:
    """Check BACKUP_ID's stored bytes against its manifest's SHA256 (exit 1 if they differ).

    No key is needed for that, also when the backup is encrypted; --deep decrypts it with
    --identity to check the database inside.
    """
    report = app.backups(directory, json_output=json_output, identities=identities).verify(backup_id, deep=deep)
    if json_output:
        emit_json(
            {
                "id": report.id,
                "deep": report.deep,
                "ok": report.ok,
                "checked_bytes": report.checked_bytes,
                "problems": report.problems,
            }
        )
    elif report.ok:
        click.echo(f"ok {report.id} ({'deep, ' if deep else ''}{human_bytes(report.checked_bytes)} checked)")
    else:
        for problem in report.problems:
            click.echo(f"problem: {problem}", err=True)
        click.echo(f"error: backup {report.id} failed verification; do not restore it — use another backup", err=True)
    if not report.ok:
        raise click.exceptions.Exit(1)


@click.command(cls=DriverOptionsCommand, operation="restore")
@click.argument("backup_id")
@click.argument("target")
@click.option("--force", is_flag=True, help="Replace a target that already holds data.")
@dir_option
@identity_option
@json_option
@global_flags
@pass_app
def restore(
    app: App,
    /,
    backup_id: str,
    target: str,
    force: bool,
    directory: Path | str | None,
    identities: tuple[Path, ...],
    json_output: bool,
    **flags: object,
) -> None:
    """Restore BACKUP_ID into TARGET (a connection name or URL), verifying as it streams.

    The driver's options (--jobs, --table …) are listed by 'dbkeeper plugins' and may be
    set in dbkeeper.toml.
    """
    _, url = app.config.resolve(target)
    manager = app.backups(directory, json_output=json_output, identities=identities)
    recorded = manager.get(backup_id)
    backup_id = recorded.id
    driver = app.plugins.driver_named(recorded.driver.name, recorded.driver.distribution)
    options = driver_values(app, driver, "restore", flags)
    result = manager.restore(backup_id, url, force=force, options=options)
    if json_output:
        emit_json({"id": backup_id, "database": result.database, "row_counts": result.row_counts})
    elif not app.quiet:
        note(
            f"restored {backup_id} into {result.database}: {plural(sum(result.row_counts.values()), 'row')} "
            f"in {plural(len(result.row_counts), 'table')}, checksum verified"
        )


@click.command()
@click.option("--keep-last", type=int, help="Keep the N newest backups of each source.")
@click.option("--keep-within", help="Keep backups within this long of each source's newest (7d, 2w, 1m).")
@click.option("--keep-daily", type=int, help="Keep the newest backup of each of the last N days with one.")
@click.option("--keep-weekly", type=int, help="Keep the newest backup of each of the last N weeks with one.")
@click.option("--dry-run", is_flag=True, help="Print what would be deleted; delete nothing.")
@dir_option
@json_option
@global_flags
@pass_app
def prune(
    app: App,
    keep_last: int | None,
    keep_within: str | None,
    keep_daily: int | None,
    keep_weekly: int | None,
    dry_run: bool,
    directory: Path | str | None,
    json_output: bool,
) -> None:
    """Delete backups no policy keeps, and incomplete ones; per source, never the newest.

    On object storage it also aborts the multipart uploads that killed writers left.
    """
    from dbkeeper.backups.retention import Policy, parse_duration

    policy = Policy(keep_last, parse_duration(keep_within) if keep_within else None, keep_daily, keep_weekly)
    try:
        plan = app.backups(directory).prune(policy, dry_run=dry_run)
    except PruneError as error:
        _print_prune(cast("PrunePlan", error.plan), dry_run, json_output)
        raise
    _print_prune(plan, dry_run, json_output)


def _print_prune(plan: PrunePlan, dry_run: bool, json_output: bool) -> None:
    if json_output:
        emit_json(
            {
                "dry_run": dry_run,
                "keep": [{"id": d.manifest.id, "reasons": list(d.reasons)} for d in plan.decisions if d.keep],
                "delete": [i for i in plan.doomed if i not in plan.failed],
                "failed": plan.failed,
                "damaged": [e.id for e in plan.damaged],
            }
        )
        return
    verb = "would delete" if dry_run else "deleted"
    for decision in plan.decisions:
        backup_id = decision.manifest.id
        if decision.keep:
            click.echo(f"keep {backup_id} ({', '.join(decision.reasons)})")
        elif backup_id not in plan.failed:
            click.echo(f"{verb} {backup_id}")
    for entry in plan.incomplete:
        if entry.id not in plan.failed:
            click.echo(f"{verb} {entry.id} (incomplete)")
    for entry in plan.damaged:
        note(f"warning: {entry.id} is damaged and was left alone: {entry.problem}")
    for failed_id, reason in plan.failed.items():
        click.echo(f"failed {failed_id}: {reason}", err=True)
