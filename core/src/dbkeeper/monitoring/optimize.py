"""Optimising one database: the driver's maintenance plan, shown, and applied on request.

::

    from dbkeeper.monitoring import optimize_database

    report = optimize_database("app")                      # the plan: nothing changes
    report = optimize_database("app", apply=True)          # the steps that block nobody
    report = optimize_database("app", apply=True, allow_blocking=True, lock_timeout=10)

Planning measures and changes nothing. Applying runs the steps in order: a blocking
step only with *allow_blocking* (else it is ``not run``); a step whose lock is not
granted within *lock_timeout* seconds is ``skipped``; no other session is terminated.
An interruption (Ctrl-C, SIGTERM) while applying raises
:class:`~dbkeeper.errors.Interrupted` saying which steps finished, which one was running
and which never started. The driver's maintenance is always closed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from dbkeeper.errors import DbkeeperError, Interrupted
from dbkeeper.monitoring.target import resolve_target
from dbkeeper.plugin.monitoring import Maintenance, MaintenanceRequest, MaintenanceStep

if TYPE_CHECKING:
    from dbkeeper.connections.config import Config
    from dbkeeper.plugin.manager import Plugins

DEFAULT_LOCK_TIMEOUT = 5.0
"""Seconds a step waits for its lock before it is skipped (``--lock-timeout``)."""
PLANNING_TIMEOUT = 60.0
"""Seconds the driver's planning queries may take (SQLite's reads every page of the file)."""
NEEDS_ALLOW_BLOCKING = "it blocks other sessions: needs --allow-blocking"

ResultStatus = Literal["planned", "done", "skipped", "failed", "not run"]


@dataclass(frozen=True)
class StepResult:
    """A planned step and what became of it (``planned`` when nothing was applied)."""

    step: MaintenanceStep
    status: ResultStatus
    detail: str = ""
    seconds: float | None = None
    bytes_after: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The step's fields and its outcome, flat."""
        return asdict(self.step) | {
            "status": self.status,
            "detail": self.detail,
            "seconds": self.seconds,
            "bytes_after": self.bytes_after,
        }


@dataclass(frozen=True)
class OptimizeReport:
    """The plan of one database and, when applied, each step's outcome."""

    connection: str
    driver: str
    applied: bool
    steps: tuple[StepResult, ...]

    def failed(self) -> list[StepResult]:
        """The steps that failed."""
        return [result for result in self.steps if result.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        """The report as ``dbkeeper optimize --json`` prints it."""
        return {
            "connection": self.connection,
            "driver": self.driver,
            "applied": self.applied,
            "failed": len(self.failed()),
            "steps": [result.to_dict() for result in self.steps],
        }


def describe(step: MaintenanceStep) -> str:
    """``vacuum app.db``: a step in a few words."""
    return f"{step.action} {step.object}"


@dataclass
class _Run:
    """Applying a plan: the steps finished so far, and the one running."""

    steps: Sequence[MaintenanceStep]
    results: list[StepResult] = field(default_factory=list)
    running: MaintenanceStep | None = None

    def interrupted(self, label: str) -> Interrupted:
        """What an interruption now leaves behind, as the exception the CLI reports."""
        finished = ", ".join(f"{describe(r.step)} ({r.status})" for r in self.results) or "none"
        parts = [f"interrupted while optimising {label}: finished: {finished}"]
        recorded = bool(self.results) and self.results[-1].step is self.running  # stopped just after recording it
        running = None if recorded else self.running
        if running is not None:
            parts.append(f"running: {describe(running)}, which may or may not have finished")
        later = self.steps[len(self.results) + (running is not None) :]
        parts.append(f"not started: {', '.join(describe(step) for step in later) or 'none'}")
        return Interrupted("; ".join(parts) + "; run 'dbkeeper optimize' again to see what is left")


def optimize_database(
    connection: str | None = None,
    *,
    apply: bool = False,
    allow_blocking: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    config: Config | None = None,
    plugins: Plugins | None = None,
    starting: Callable[[int, MaintenanceStep], None] | None = None,
) -> OptimizeReport:
    """Plan the maintenance of *connection* (a name or a URL), and apply it when *apply*.

    *starting* is called with the step's index and the step before each step is applied
    (``dbkeeper optimize`` prints progress with it). Raises
    :class:`~dbkeeper.errors.DatabaseError` when the database cannot be reached.
    """
    target, config = resolve_target(connection, config, plugins)
    request = MaintenanceRequest(target.driver.name, target.url, PLANNING_TIMEOUT, config.health_thresholds)
    maintenance = target.driver.maintenance(request)
    try:
        steps = maintenance.plan()
        if not apply:
            return OptimizeReport(
                target.label, target.driver.name, False, tuple(StepResult(s, "planned") for s in steps)
            )
        run = _Run(steps)
        try:
            _apply(maintenance, run, allow_blocking, lock_timeout, starting)
        except KeyboardInterrupt:
            raise run.interrupted(target.label) from None
        return OptimizeReport(target.label, target.driver.name, True, tuple(run.results))
    finally:
        maintenance.close()


def _apply(
    maintenance: Maintenance,
    run: _Run,
    allow_blocking: bool,
    lock_timeout: float,
    starting: Callable[[int, MaintenanceStep], None] | None,
) -> None:
    """Apply *run*'s steps in order, recording each outcome as it comes."""
    for index, step in enumerate(run.steps):
        if step.blocking and not allow_blocking:
            run.results.append(StepResult(step, "not run", NEEDS_ALLOW_BLOCKING))
            continue
        run.running = step
        if starting is not None:
            starting(index, step)
        try:
            outcome = maintenance.apply(step, lock_timeout)
        except DbkeeperError as exc:
            run.results.append(StepResult(step, "failed", str(exc)))
        else:
            run.results.append(StepResult(step, outcome.status, outcome.detail, outcome.seconds, outcome.bytes_after))
        run.running = None
