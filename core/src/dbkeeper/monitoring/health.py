"""Health checks of one database: the driver's verdicts against ``[health]``'s thresholds.

::

    from dbkeeper.monitoring import check_health

    report = check_health("app")          # a name from dbkeeper.toml, or a URL
    for check in report.failed():
        print(check.title, check.figure, check.advice)

The driver makes the checks (``Driver.check_health``) on one connection of its own,
read-only, with ``[monitoring]``'s statement and lock timeouts, within
:data:`HEALTH_DEADLINE` seconds. A database that cannot be reached raises
:class:`~dbkeeper.errors.DatabaseError`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from dbkeeper.errors import DatabaseError
from dbkeeper.monitoring.scrape import DEADLINE_GRACE, DeadlineExceeded, run_within
from dbkeeper.monitoring.target import resolve_target
from dbkeeper.plugin.monitoring import Deadline, HealthCheck, HealthRequest, HealthThresholds

if TYPE_CHECKING:
    from dbkeeper.connections.config import Config
    from dbkeeper.plugin.manager import Plugins

HEALTH_DEADLINE = 30.0
"""Seconds all the checks of one database may take together (the driver stops its queries then)."""


@dataclass(frozen=True)
class HealthReport:
    """Every check of one database: ``ok`` unless a check failed (skipped checks do not fail it)."""

    connection: str
    driver: str
    checks: tuple[HealthCheck, ...]

    def failed(self) -> list[HealthCheck]:
        """The checks whose verdict is ``failed``."""
        return [check for check in self.checks if check.verdict == "failed"]

    @property
    def ok(self) -> bool:
        """Whether no check failed."""
        return not self.failed()

    def to_dict(self) -> dict[str, Any]:
        """The report as ``dbkeeper health --json`` prints it."""
        return {
            "connection": self.connection,
            "driver": self.driver,
            "ok": self.ok,
            "failed": len(self.failed()),
            "checks": [asdict(check) | {"findings": list(check.findings)} for check in self.checks],
        }


def check_health(
    connection: str | None = None,
    *,
    config: Config | None = None,
    plugins: Plugins | None = None,
    thresholds: HealthThresholds | None = None,
) -> HealthReport:
    """Check *connection* (a configured name or a URL; default ``DATABASE_URL``, then ``default``).

    *thresholds* default to ``[health]`` in ``dbkeeper.toml`` over :class:`HealthThresholds`'
    defaults. Raises :class:`~dbkeeper.errors.DatabaseError` when the database cannot be
    reached, :class:`~dbkeeper.errors.UnsupportedOperationError` when its driver has no checks.
    """
    target, config = resolve_target(connection, config, plugins)
    settings = config.monitoring
    request = HealthRequest(
        driver=target.driver.name,
        url=target.url,
        thresholds=thresholds if thresholds is not None else config.health_thresholds,
        deadline=Deadline(HEALTH_DEADLINE),
        statement_timeout=settings.statement_timeout,
        lock_timeout=settings.lock_timeout,
    )
    try:
        checks = run_within(HEALTH_DEADLINE + DEADLINE_GRACE, lambda: target.driver.check_health(request))
    except DeadlineExceeded:
        raise DatabaseError(
            f"the health checks of {target.label} did not finish within {HEALTH_DEADLINE:g} s; is the database busy?"
        ) from None
    return HealthReport(target.label, target.driver.name, tuple(checks))
