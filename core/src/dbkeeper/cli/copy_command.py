"""``backups copy``: replicate backups to another storage, every byte verified, resumable."""

from __future__ import annotations

from pathlib import Path

import click

from dbkeeper.cli.app import App, BackupDirectory, dir_option, global_flags, identity_option, json_option, pass_app
from dbkeeper.cli.output import emit_json, human_bytes, note


@click.command("copy")
@click.argument("backup_ids", nargs=-1)
@click.option("--all", "copy_all", is_flag=True, help="Copy every complete backup.")
@click.option(
    "--to",
    "target",
    required=True,
    type=BackupDirectory(),
    metavar="DIR|URL",
    help="Where to copy: a directory or a storage URL (s3://bucket/prefix).",
)
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    metavar="KEY",
    help="Re-encrypt the copies for this age public key (repeatable; needs --identity for encrypted backups).",
)
@dir_option
@identity_option
@json_option
@global_flags
@pass_app
def copy(
    app: App,
    backup_ids: tuple[str, ...],
    copy_all: bool,
    target: Path | str,
    recipients: tuple[str, ...],
    directory: Path | str | None,
    identities: tuple[Path, ...],
    json_output: bool,
) -> None:
    """Copy BACKUP_IDS (ids, prefixes or 'latest'), or --all, from --dir to --to.

    Each backup keeps its id; its bytes are checked against its SHA256 while they stream,
    and its manifest is written last. Backups already complete on the target are
    skipped, so running the same copy again after an interruption resumes it.
    """
    from dbkeeper.backups.opening import open_storage

    if bool(backup_ids) == copy_all:
        raise click.UsageError("name the backups to copy, or pass --all (not both)")
    manager = app.backups(directory, json_output=json_output, identities=identities)
    destination = open_storage(target, app.plugins, app.config.storage_settings(target))
    outcomes = manager.copy(backup_ids, destination, recipients=recipients)
    if json_output:
        emit_json(
            [{"id": o.id, "action": o.action, "stored_bytes": o.stored_bytes, "problem": o.problem} for o in outcomes]
        )
    else:
        for outcome in outcomes:
            if outcome.action == "failed":
                click.echo(f"failed {outcome.id}: {outcome.problem}", err=True)
            else:
                click.echo(f"{outcome.action} {outcome.id} ({human_bytes(outcome.stored_bytes)})")
        if not outcomes and not app.quiet:
            note(f"no complete backups in {manager.repository.location}")
    if any(outcome.action == "failed" for outcome in outcomes):
        raise click.exceptions.Exit(1)
