"""``health`` and ``optimize``: checks with verdicts, and a maintenance plan applied on request."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dbkeeper.cli.app import App, global_flags, json_option, pass_app
from dbkeeper.cli.output import emit_json, human_bytes, note, plural, print_table

if TYPE_CHECKING:
    from dbkeeper.monitoring.health import HealthReport
    from dbkeeper.monitoring.optimize import OptimizeReport
    from dbkeeper.plugin.monitoring import MaintenanceStep

DEFAULT_LOCK_TIMEOUT = 5.0  # dbkeeper.monitoring.optimize.DEFAULT_LOCK_TIMEOUT, not imported for --help's sake


@click.command()
@click.argument("connection", required=False)
@json_option
@global_flags
@pass_app
def health(app: App, connection: str | None, json_output: bool) -> int:
    """Check CONNECTION (a name or URL) against [health]'s thresholds; exit 1 when a check fails."""
    from dbkeeper.monitoring.health import check_health

    report = check_health(connection, config=app.config, plugins=app.plugins)
    if json_output:
        emit_json(report.to_dict())
    else:
        _print_health(report)
    return 0 if report.ok else 1


def _print_health(report: HealthReport) -> None:
    """One row per check, its findings on the rows below; a summary on stderr."""
    rows = []
    for check in report.checks:
        findings = list(check.findings) or [""]
        rows.append([check.verdict, check.title, check.figure, check.advice, findings[0]])
        rows.extend(["", "", "", "", finding] for finding in findings[1:])
    print_table(["VERDICT", "CHECK", "FIGURE", "ADVICE", "FINDINGS"], rows)
    failed = len(report.failed())
    note(f"{report.connection}: {plural(failed, 'check')} of {len(report.checks)} failed")


@click.command()
@click.argument("connection", required=False)
@click.option("--apply", "apply", is_flag=True, help="Run the steps that block nobody (plan only without it).")
@click.option("--allow-blocking", is_flag=True, help="With --apply, also run steps that block other sessions.")
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_LOCK_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="Skip a step whose lock is not granted within this time.",
)
@json_option
@global_flags
@pass_app
def optimize(
    app: App, connection: str | None, apply: bool, allow_blocking: bool, lock_timeout: float, json_output: bool
) -> int:
    """Plan the maintenance of CONNECTION (a name or URL); --apply runs it. Exit 1 when a step fails."""
    if allow_blocking and not apply:
        raise click.UsageError("--allow-blocking needs --apply")
    from dbkeeper.monitoring.optimize import optimize_database

    report = optimize_database(
        connection,
        apply=apply,
        allow_blocking=allow_blocking,
        lock_timeout=lock_timeout,
        config=app.config,
        plugins=app.plugins,
        starting=None if json_output else _starting,
    )
    if json_output:
        emit_json(report.to_dict())
    elif apply:
        _print_outcomes(report)
    else:
        _print_plan(report)
    return 1 if report.failed() else 0


def _starting(index: int, step: MaintenanceStep) -> None:
    note(f"step {index + 1}: {step.action} {step.object} …")


def _print_plan(report: OptimizeReport) -> None:
    """Each step: the object, the action, the measured reason, the exact SQL and the lock."""
    if not report.steps:
        note(f"{report.connection}: nothing to optimise")
        return
    for number, result in enumerate(report.steps, 1):
        step = result.step
        blocking = "BLOCKS other sessions (needs --allow-blocking)" if step.blocking else "does not block"
        click.echo(f"{number}. {step.action} {step.object}: {step.reason}")
        click.echo(f"   sql:  {step.sql}")
        click.echo(f"   lock: {step.lock}; {blocking}")
    note(f"{report.connection}: {plural(len(report.steps), 'step')} planned; nothing changed (run with --apply)")


def _size(value: int | None) -> str:
    return "-" if value is None else human_bytes(value)


def _print_outcomes(report: OptimizeReport) -> None:
    """One row per step: what became of it, the object's size before and after, how long it took."""
    rows = [
        [
            r.status,
            r.step.action,
            r.step.object,
            _size(r.step.bytes_before),
            _size(r.bytes_after),
            "-" if r.seconds is None else f"{r.seconds:.2f}",
            r.detail,
        ]
        for r in report.steps
    ]
    if rows:
        print_table(["STATUS", "ACTION", "OBJECT", "BEFORE", "AFTER", "SECONDS", "DETAIL"], rows)
    counts = {
        status: sum(r.status == status for r in report.steps) for status in ("done", "skipped", "failed", "not run")
    }
    note(f"{report.connection}: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
