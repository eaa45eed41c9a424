"""``dbkeeper metrics``: one scrape printed, or ``--serve`` for Prometheus."""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from dbkeeper.cli.app import App, global_flags, pass_app
from dbkeeper.cli.output import emit_json, human_bytes, note, print_table

if TYPE_CHECKING:
    from dbkeeper.monitoring import DatabaseMetrics
    from dbkeeper.plugin.monitoring import Sample

FORMATS = ("table", "json", "prometheus")


@click.command()
@click.argument("connection", required=False)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    help="Output format (default: table on a terminal, prometheus otherwise).",
)
@click.option(
    "--serve",
    "listen",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[HOST:PORT]",
    help="Serve /metrics and /probe?target=NAME over HTTP (default: listen in [monitoring], 127.0.0.1:9861).",
)
@global_flags
@pass_app
def metrics(app: App, connection: str | None, output_format: str | None, listen: str | None) -> None:
    """Scrape CONNECTION (a name or URL; default: every configured connection) once and print the metrics.

    A database that is down is reported as up 0 (exit 0): that is data, not an error.
    """
    from dbkeeper.monitoring import DatabaseMonitor

    if listen is not None:
        if connection or output_format:
            raise click.UsageError(
                "--serve serves every configured connection (one at /probe?target=NAME) as Prometheus text; "
                "give it neither CONNECTION nor --format"
            )
        _serve(app, listen or app.config.monitoring.listen)
        return
    monitor = DatabaseMonitor(app.config, plugins=app.plugins)
    scrapes = [monitor.scrape(connection)] if connection else monitor.scrape_all()
    if not scrapes:
        note('no connections: add [connections.NAME] url = "..." to dbkeeper.toml, or set DATABASE_URL')
    for scrape in scrapes:
        for failed in scrape.failed_collectors():
            note(f"note: {scrape.connection}: collector {failed.name} failed: {failed.error}")
    chosen = output_format or ("table" if sys.stdout.isatty() else "prometheus")
    {"table": _print_table, "json": _print_json, "prometheus": _print_prometheus}[chosen](scrapes)


def _serve(app: App, listen: str) -> None:
    """Serve until Ctrl-C or SIGTERM, then stop cleanly (exit 0)."""
    from dbkeeper.monitoring import DatabaseMonitor
    from dbkeeper.monitoring.server import serve

    monitor = DatabaseMonitor(app.config, plugins=app.plugins, keep_connections=True)
    names = ", ".join(monitor.targets()) or "none configured"
    try:
        serve(monitor, listen, lambda url: note(f"serving {url} (connections: {names}); Ctrl-C stops"))
    except KeyboardInterrupt:
        note("stopped")


def _print_prometheus(scrapes: list[DatabaseMetrics]) -> None:
    from dbkeeper.monitoring.prometheus import exposition

    sys.stdout.flush()
    sys.stdout.buffer.write(exposition(scrapes))


def _print_json(scrapes: list[DatabaseMetrics]) -> None:
    from dbkeeper.monitoring.prometheus import family_name

    emit_json(
        [
            {
                "connection": scrape.connection,
                "driver": scrape.driver,
                "up": scrape.up,
                "reason": scrape.reason,
                "duration_seconds": round(scrape.duration_seconds, 6),
                "collectors": [
                    {
                        "name": c.name,
                        "success": c.success,
                        "duration_seconds": round(c.duration_seconds, 6),
                        "error": c.error,
                    }
                    for c in scrape.collectors
                ],
                "samples": [_sample_json(s, family_name(s)) for s in scrape.samples()],
            }
            for scrape in scrapes
        ]
    )


def _sample_json(sample: Sample, family: str) -> dict[str, Any]:
    return {
        "metric": family,
        "type": sample.type,
        "unit": sample.unit,
        "labels": dict(sample.labels),
        "value": sample.value if math.isfinite(sample.value) else None,  # JSON has no NaN or infinity
    }


def _print_table(scrapes: list[DatabaseMetrics]) -> None:
    from dbkeeper.monitoring.prometheus import family_name
    from dbkeeper.monitoring.scrape import CONNECTION_LABEL

    for number, scrape in enumerate(scrapes):
        state = "up" if scrape.up else f"down ({scrape.reason})"
        click.echo(("\n" if number else "") + f"{scrape.connection}: {state}, {scrape.duration_seconds:.3f} s")
        rows = [
            [
                family_name(s),
                ",".join(f"{k}={v}" for k, v in s.labels.items() if k != CONNECTION_LABEL),
                _shown(s),
            ]
            for s in scrape.samples()
        ]
        print_table(["METRIC", "LABELS", "VALUE"], rows)


def _shown(sample: Sample) -> str:
    """The value for people: bytes in KiB/MiB, times as UTC, seconds with their unit."""
    if sample.type == "info":
        return "1"
    if sample.unit == "bytes":
        return human_bytes(int(sample.value))
    if sample.unit == "seconds" and sample.name.endswith("_timestamp"):
        return f"{datetime.fromtimestamp(sample.value, UTC):%Y-%m-%d %H:%M:%S}Z"
    if sample.unit == "seconds":
        return f"{sample.value:.3f} s"
    return f"{sample.value:g}"
