"""``migrate new|up|down|status|history|check|repair``; ``rollback`` is another name for ``down``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import click

from dbkeeper.cli.app import App, global_flags, json_option, pass_app
from dbkeeper.cli.output import emit_json, note, plural, print_table

if TYPE_CHECKING:
    from dbkeeper.migrations import MigrationManager, MigrationResult
    from dbkeeper.migrations.manager import PlannedMigration

migrations_dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="Migrations directory (default: the connection's 'migrations' setting, else ./migrations).",
)
connection_argument = click.argument("connection", required=False)
lock_timeout_option = click.option(
    "--lock-timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for the migration lock."
)


def _manager(
    app: App, connection: str | None, directory: Path | None, lock_timeout: float = 60.0, *, live: bool = False
) -> MigrationManager:
    """The manager for a command; with *live*, each result is printed as it happens."""
    from dbkeeper.migrations import MigrationManager

    label, url = app.config.resolve(connection)
    return MigrationManager(
        url,
        app.config.migrations_directory(label, directory),
        plugins=app.plugins,
        lock_timeout=lock_timeout,
        on_result=_print_result if live else None,
    )


class AliasedGroup(click.Group):
    """A command group in which some commands also answer to a second name.

    ``ALIASES`` maps an alias to the command it stands for; ``--help`` lists the command
    as ``down (rollback)``, and ``dbkeeper migrate rollback`` runs ``down`` itself (same
    options, same output), with ``rollback`` in its usage line.
    """

    ALIASES: ClassVar[dict[str, str]] = {"rollback": "down"}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command named *cmd_name*, or the one it is an alias of."""
        return super().get_command(ctx, self.ALIASES.get(cmd_name, cmd_name))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Keep the name the user typed (``rollback``) for the usage line and errors."""
        _, command, rest = super().resolve_command(ctx, args)
        return args[0] if command is not None else None, command, rest

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List each command once, its aliases in parentheses after its name."""
        aliases_of: dict[str, list[str]] = {}
        for alias, name in self.ALIASES.items():
            aliases_of.setdefault(name, []).append(alias)
        shown = [
            (f"{name} ({', '.join(aliases_of[name])})" if name in aliases_of else name, self.commands[name])
            for name in self.list_commands(ctx)
            if not self.commands[name].hidden
        ]
        if shown:
            limit = formatter.width - 6 - max(len(label) for label, _ in shown)
            with formatter.section("Commands"):
                formatter.write_dl([(label, command.get_short_help_str(limit)) for label, command in shown])


@click.group(cls=AliasedGroup)
def migrate() -> None:
    """Schema migrations: tracked, checksummed, dependency-ordered, never half-applied."""


@migrate.command("new")
@click.argument("name")
@migrations_dir_option
@global_flags
@pass_app
def new(app: App, name: str, directory: Path | None) -> None:
    """Create an empty migration file NAME (timestamped) and print its path."""
    from dbkeeper.migrations import create_migration

    click.echo(create_migration(directory or app.config.migrations_directory("default", None), name))


def _print_plan(plan: list[PlannedMigration], direction: str) -> None:
    """What --dry-run prints: each migration's statements, exactly as they would run."""
    for step in plan:
        mode = "in one transaction" if step.in_transaction else "statement by statement, journaled"
        click.echo(f"-- {step.migration.id} ({direction}, {mode})")
        for statement in step.statements:
            click.echo(statement if statement.rstrip().endswith(";") else statement + ";")
    if not plan:
        note("nothing to do")


@migrate.command("up")
@connection_argument
@click.option("--to", "to", metavar="ID", help="Stop after this migration.")
@click.option("--dry-run", is_flag=True, help="Print exactly the SQL that would run; change nothing.")
@click.option("--allow-out-of-order", is_flag=True, help="Apply migrations older than the newest applied one.")
@migrations_dir_option
@lock_timeout_option
@json_option
@global_flags
@pass_app
def up(
    app: App,
    connection: str | None,
    to: str | None,
    dry_run: bool,
    allow_out_of_order: bool,
    directory: Path | None,
    lock_timeout: float,
    json_output: bool,
) -> None:
    """Apply pending migrations to CONNECTION (a name or URL; default: DATABASE_URL)."""
    manager = _manager(app, connection, directory, lock_timeout, live=not json_output)
    if dry_run:
        _print_plan(manager.plan("up", to=to, allow_out_of_order=allow_out_of_order), "up")
        return
    _run_and_report(lambda: manager.up(to=to, allow_out_of_order=allow_out_of_order), manager, json_output, "up")


def _print_result(result: MigrationResult) -> None:
    """One line per migration, as it completes (so a failure later still shows what was done)."""
    if result.note:
        note(result.note)
    else:
        click.echo(
            f"{result.outcome} {result.id} ({plural(len(result.statements), 'statement')}, "
            f"{result.duration * 1000:.0f} ms)"
        )


def _run_and_report(
    run: Callable[[], list[MigrationResult]], manager: MigrationManager, json_output: bool, direction: str
) -> None:
    """Run ``up``/``down``; text mode prints as it goes, JSON mode at the end — failure included."""
    done: list[MigrationResult] = []
    if json_output:
        manager.on_result = done.append
    try:
        results = run()
    finally:
        if json_output:
            emit_json([_as_json(r) for r in done])
    if not results and not json_output:
        note("nothing to do: the database is up to date" if direction == "up" else "nothing to roll back")


def _as_json(result: MigrationResult) -> dict[str, object]:
    return {
        "id": result.id,
        "direction": result.direction,
        "outcome": result.outcome,
        "statements": len(result.statements),
        "seconds": round(result.duration, 4),
        "note": result.note,
    }


@migrate.command("down")
@connection_argument
@click.option("--steps", type=click.IntRange(min=1), help="Roll back this many migrations (default 1).")
@click.option("--to", "to", metavar="ID", help="Roll back every migration applied after this one.")
@click.option("--dry-run", is_flag=True, help="Print exactly the SQL that would run; change nothing.")
@migrations_dir_option
@lock_timeout_option
@json_option
@global_flags
@pass_app
def down(
    app: App,
    connection: str | None,
    steps: int | None,
    to: str | None,
    dry_run: bool,
    directory: Path | None,
    lock_timeout: float,
    json_output: bool,
) -> None:
    """Roll back the newest applied migration(s) of CONNECTION with their down parts.

    'dbkeeper migrate rollback' is the same command.
    """
    if steps is not None and to is not None:
        raise click.UsageError("give --steps or --to, not both")
    manager = _manager(app, connection, directory, lock_timeout, live=not json_output)
    if dry_run:
        _print_plan(manager.plan("down", steps=steps, to=to), "down")
        return
    _run_and_report(lambda: manager.down(steps=steps, to=to), manager, json_output, "down")


@migrate.command("status")
@connection_argument
@migrations_dir_option
@json_option
@global_flags
@pass_app
def status(app: App, connection: str | None, directory: Path | None, json_output: bool) -> None:
    """Show every migration and whether it is applied, pending, drifted, missing or failed."""
    statuses = _manager(app, connection, directory).status()
    if json_output:
        emit_json([s.__dict__ for s in statuses])
    elif statuses:
        print_table(
            ["ID", "STATE", "APPLIED AT", "NOTE"], [[s.id, s.state, s.applied_at or "", s.note] for s in statuses]
        )
    else:
        note("no migrations: create one with 'dbkeeper migrate new NAME'")


@migrate.command("history")
@connection_argument
@migrations_dir_option
@json_option
@global_flags
@pass_app
def history(app: App, connection: str | None, directory: Path | None, json_output: bool) -> None:
    """Show every recorded attempt to apply or roll back a migration, oldest first."""
    events = _manager(app, connection, directory).history()
    if json_output:
        emit_json([e.as_dict() for e in events])
        return
    rows = [
        [
            e.seq,
            e.id,
            e.direction,
            e.outcome,
            e.started_at,
            e.applied_by,
            "" if e.duration_ms is None else f"{e.duration_ms} ms",
            e.detail or "",
        ]
        for e in events
    ]
    print_table(["SEQ", "ID", "DIR", "OUTCOME", "AT", "BY", "TOOK", "DETAIL"], rows)


@migrate.command("check")
@connection_argument
@migrations_dir_option
@global_flags
@pass_app
def check(app: App, connection: str | None, directory: Path | None) -> None:
    """Exit 1 if a migration is pending, drifted, missing or failed, or the graph is broken (for CI)."""
    problems = _manager(app, connection, directory).check()
    for problem in problems:
        click.echo(problem)
    if problems:
        raise click.exceptions.Exit(1)
    if not app.quiet:
        note("ok: every migration is applied and unchanged")


@migrate.command("repair")
@connection_argument
@click.option("--applied", is_flag=True, help="Record the failed migrations as applied (you completed them by hand).")
@migrations_dir_option
@lock_timeout_option
@global_flags
@pass_app
def repair(app: App, connection: str | None, applied: bool, directory: Path | None, lock_timeout: float) -> None:
    """Clear failed or interrupted migrations after fixing the database by hand."""
    repaired = _manager(app, connection, directory, lock_timeout).repair(applied=applied)
    for migration_id in repaired:
        click.echo(f"repaired {migration_id} (now {'applied' if applied else 'pending'})")
    if not repaired:
        note("nothing to repair")
