"""What crosses the plugin boundary for monitoring, health checks and maintenance.

Four driver hooks use these types (see ``hookspecs``): ``dbkeeper_collect_metrics``
returns :class:`CollectorResult` objects full of :class:`Sample` values,
``dbkeeper_check_health`` returns :class:`HealthCheck` verdicts, ``dbkeeper_sessions``
returns the :class:`Session` objects ``dbkeeper top`` shows, and
``dbkeeper_plan_maintenance`` returns a :class:`Maintenance` that plans
:class:`MaintenanceStep` objects and applies them. The core turns samples into Prometheus
families, health checks into a report and an exit code, and plans into ``dbkeeper
optimize``. Nothing here imports a database library.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from dbkeeper.connections.urls import DatabaseURL, error_line

MetricType = Literal["gauge", "counter", "info"]
"""A sample's type. A counter only ever rises (until the server restarts); an info
metric is a gauge of 1 whose labels carry the facts (a version)."""


@dataclass(frozen=True)
class Sample:
    """One value of one metric, engine-neutral; the core adds the ``dbkeeper_`` prefix.

    ``name`` is the family name without the prefix and without the suffixes the type and
    unit imply: ``postgresql_blocks`` (a counter, exposed as
    ``dbkeeper_postgresql_blocks_total``), ``database_size`` with ``unit="bytes"``
    (``dbkeeper_database_size_bytes``), ``version`` of type ``info``
    (``dbkeeper_version_info``). ``unit`` is a base unit: ``seconds``, ``bytes``,
    ``ratio`` (0 to 1) or empty. Names shared by every engine (``uptime``, ``connections``,
    ``database_size`` …) carry no engine prefix; the rest start with the driver's name.
    Every sample of one family has the same ``type``, ``unit``, ``help`` and label names.
    Labels stay low-cardinality: schema and table names, states, never query text unless
    the operator asked for it. A figure an engine cannot provide is omitted, not 0.
    """

    name: str
    type: MetricType
    help: str
    value: float
    unit: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CollectorResult:
    """What one collector of a scrape produced: its samples, whether it worked, how long it took.

    A failed collector keeps the samples it produced before failing out of the scrape
    (``samples`` is empty) and says why in ``error``, one line, without secrets.
    """

    name: str
    samples: tuple[Sample, ...]
    success: bool
    duration_seconds: float
    error: str | None = None


class Deadline:
    """A point in time a scrape or health check must finish by (monotonic clock)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._at = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._at - time.monotonic())

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self.remaining() <= 0.0


@dataclass(frozen=True)
class MetricsOptions:
    """What a scrape collects beyond the defaults, from ``[monitoring]`` in ``dbkeeper.toml``.

    ``table_limit``: per-table series only when the database has at most this many tables
    (0 turns them off), so a database with a million tables cannot flood Prometheus.
    ``statements``: the top ``statements_limit`` statements by total time where the engine
    keeps such statistics (PostgreSQL ``pg_stat_statements``); ``query_text`` adds the
    statement text as a label (off: only the query id).
    """

    table_limit: int = 1000
    statements: bool = False
    statements_limit: int = 20
    query_text: bool = False


class Closable(Protocol):
    """What a :class:`ConnectionKeeper` holds: anything with a ``close()`` (a connection)."""

    def close(self) -> None:
        """Release it."""
        ...


C = TypeVar("C", bound=Closable)


class ConnectionKeeper:
    """Keeps one driver's connection to one database open between scrapes (``metrics --serve``).

    The core owns it: one keeper per database, handed to the driver in
    :attr:`MetricsRequest.keeper`, never to two scrapes at once, and closed when the
    server stops. A driver calls :meth:`take` for the connection the previous scrape kept
    (None: open a new one), checks it still answers (resetting its session's timeouts; a
    broken one is closed and a new one opened, once, within the deadline), and calls
    :meth:`keep` when the scrape is over and the connection is sound. What is kept after :meth:`close`
    is closed at once.
    """

    def __init__(self) -> None:
        self._kept: Closable | None = None
        self._closed = False
        self._lock = threading.Lock()

    def take(self, kind: type[C]) -> C | None:
        """The kept connection if it is a *kind* (it is no longer kept), else None."""
        with self._lock:
            kept, self._kept = self._kept, None
        if kept is None or isinstance(kept, kind):
            return kept
        kept.close()  # another driver's: the URL's scheme changed hands
        return None

    def keep(self, connection: Closable) -> None:
        """Keep *connection* for the next scrape (closing the one kept before, if any)."""
        with self._lock:
            if self._closed:
                stale: Closable | None = connection
            else:
                stale, self._kept = self._kept, connection
        if stale is not None:
            stale.close()

    def close(self) -> None:
        """Close the kept connection; from now on nothing is kept."""
        with self._lock:
            self._closed = True
            kept, self._kept = self._kept, None
        if kept is not None:
            kept.close()


@dataclass(frozen=True)
class MetricsRequest:
    """Asks a driver for one scrape of ``url``.

    Use one connection for the whole scrape, opened with a connect timeout no longer than
    ``deadline.remaining()``; set ``statement_timeout`` and ``lock_timeout`` (seconds) on
    its session so that a collector stuck behind another session's lock fails instead of
    hanging the scrape. Run the collectors through :class:`Collectors`.

    ``keeper`` is given by ``dbkeeper metrics --serve`` (None for a single scrape): reuse
    the connection it keeps instead of opening one, and give it back when done, as
    :class:`ConnectionKeeper` says. A driver that ignores it opens and closes its own.
    """

    driver: str
    url: DatabaseURL
    deadline: Deadline
    statement_timeout: float = 5.0
    lock_timeout: float = 1.0
    options: MetricsOptions = field(default_factory=MetricsOptions)
    keeper: ConnectionKeeper | None = None


class Collectors:
    """Runs a driver's collectors one by one, each isolated from the others.

    ``run(name, collect)`` calls *collect*, keeps its samples if it returns normally and
    records the failure otherwise (a missing privilege, an absent extension, a timeout),
    so that one failing collector never hides the others. A collector whose turn comes
    after the deadline is recorded as failed without being called.
    """

    def __init__(self, deadline: Deadline) -> None:
        self._deadline = deadline
        self._results: list[CollectorResult] = []

    def run(self, name: str, collect: Callable[[], Iterable[Sample]]) -> None:
        """Run collector *name*; its error, if any, becomes a failed :class:`CollectorResult`."""
        if self._deadline.expired():
            self._results.append(CollectorResult(name, (), False, 0.0, "skipped: the scrape's deadline passed"))
            return
        started = time.monotonic()
        try:
            samples = tuple(collect())
        except Exception as exc:
            self._results.append(CollectorResult(name, (), False, time.monotonic() - started, error_line(exc)))
        else:
            self._results.append(CollectorResult(name, samples, True, time.monotonic() - started))

    def results(self) -> list[CollectorResult]:
        """Every collector's result, in the order they ran."""
        return list(self._results)


Verdict = Literal["ok", "failed", "skipped"]
"""A health check's verdict; ``skipped`` when the engine or the privileges cannot tell."""


@dataclass(frozen=True)
class HealthThresholds:
    """The limits health checks judge by; ``[health]`` in ``dbkeeper.toml`` overrides each."""

    cache_hit_ratio_min: float = 0.99
    connections_used_ratio_max: float = 0.8
    long_query_seconds: float = 60.0
    long_transaction_seconds: float = 300.0
    idle_in_transaction_seconds: float = 60.0
    blocked_sessions_max: int = 0
    wraparound_ratio_max: float = 0.5
    sequence_used_ratio_max: float = 0.9
    dead_tuple_ratio_max: float = 0.2
    dead_tuple_min_rows: int = 1000
    replication_lag_seconds_max: float = 60.0
    free_space_ratio_max: float = 0.25


@dataclass(frozen=True)
class HealthRequest:
    """Asks a driver to check ``url`` against ``thresholds``, within ``deadline``, on one connection."""

    driver: str
    url: DatabaseURL
    thresholds: HealthThresholds
    deadline: Deadline
    statement_timeout: float = 5.0
    lock_timeout: float = 1.0


@dataclass(frozen=True)
class HealthCheck:
    """One health check's verdict, the measured figure and what to do about it.

    ``name`` is stable (``cache_hit_ratio``, ``idle_in_transaction``) for scripts and
    thresholds; ``title`` is for people. ``figure`` states what was measured against
    what limit (``0.982, below 0.99``); ``advice`` says what to do when the check
    failed (empty when it passed); ``findings`` name the objects concerned, one line each.
    """

    name: str
    title: str
    verdict: Verdict
    figure: str
    advice: str = ""
    findings: tuple[str, ...] = ()


def judge(
    name: str,
    title: str,
    measured: float,
    limit: float,
    *,
    figure: str,
    advice: str,
    at_least: bool = False,
    findings: Iterable[str] = (),
) -> HealthCheck:
    """A check that fails when *measured* is above *limit* (below it when *at_least*).

    *figure* describes the measurement (``"3 sessions, longest 95 s"``); the limit is
    appended. *advice* is kept only when the check fails.
    """
    failed = measured < limit if at_least else measured > limit
    bound = f"at least {limit:g}" if at_least else f"at most {limit:g}"
    return HealthCheck(
        name=name,
        title=title,
        verdict="failed" if failed else "ok",
        figure=f"{figure} (limit: {bound})",
        advice=advice if failed else "",
        findings=tuple(findings) if failed else (),
    )


@dataclass(frozen=True)
class Session:
    """One session of the server, as ``dbkeeper top`` lists it.

    ``seconds`` is how long the session has been in its current state (the running
    query's age for an active session); ``wait`` what it waits for (empty when it does
    not); ``query`` the current or last statement, at most 200 characters; ``blocked_by``
    the ids of the sessions holding what it waits for.
    """

    id: str
    user: str
    database: str
    state: str
    seconds: float | None
    wait: str = ""
    query: str = ""
    blocked_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class SessionsRequest:
    """Asks a driver for the sessions of the server ``url`` belongs to (not its own)."""

    driver: str
    url: DatabaseURL
    deadline: Deadline
    statement_timeout: float = 5.0


@dataclass(frozen=True)
class MaintenanceStep:
    """One step of a maintenance plan: what, why, the exact SQL and the lock it takes.

    ``blocking`` is true when the step blocks other sessions' reads or writes while it
    runs (PostgreSQL ``VACUUM FULL``, SQLite ``VACUUM``, MariaDB ``OPTIMIZE TABLE``):
    ``dbkeeper optimize --apply`` runs it only with ``--allow-blocking``.
    ``bytes_before`` is the object's size when planned (None when unknown).
    """

    object: str
    action: str
    reason: str
    sql: str
    lock: str
    blocking: bool
    bytes_before: int | None = None


StepStatus = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class StepOutcome:
    """What applying one step did: done, skipped (its lock was not granted in time) or failed."""

    status: StepStatus
    seconds: float
    detail: str = ""
    bytes_after: int | None = None


class Maintenance(Protocol):
    """A driver's maintenance of one database: plan steps, then apply the ones chosen.

    ``plan`` measures and changes nothing. ``apply`` runs one planned step, waiting at
    most *lock_timeout* seconds for its lock (a step that cannot get it is ``skipped``,
    and no other session is ever terminated), then measures the object again. ``close``
    releases the connection; the core always calls it.
    """

    def plan(self) -> list[MaintenanceStep]:
        """The steps worth running now, each with its measured reason."""
        ...

    def apply(self, step: MaintenanceStep, lock_timeout: float) -> StepOutcome:
        """Run *step*; never raise for a lock timeout (that is ``skipped``)."""
        ...

    def close(self) -> None:
        """Release what the maintenance holds (its connection)."""
        ...


@dataclass(frozen=True)
class MaintenanceRequest:
    """Asks a driver for the maintenance of ``url``.

    ``statement_timeout`` bounds the queries that plan; applying a step is bounded by its
    lock timeout only (a ``VACUUM`` may rightly run for a long time). ``thresholds`` are
    the health limits a plan measures against (dead-tuple bloat, free space), so that
    ``optimize`` plans what ``health`` reports.
    """

    driver: str
    url: DatabaseURL
    statement_timeout: float = 5.0
    thresholds: HealthThresholds = field(default_factory=HealthThresholds)
