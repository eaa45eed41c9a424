"""One scrape of one connection: the driver's collectors, dbkeeper's own knowledge, self-metrics.

:class:`DatabaseMonitor` resolves a connection to its driver, asks it for one scrape
(``Driver.collect_metrics``) bounded by ``[monitoring]``'s deadline, adds what only
dbkeeper knows (backups, migrations: :mod:`dbkeeper.monitoring.knowledge`) and returns a
:class:`DatabaseMetrics`. A database that is down, or a scrape that overruns its
deadline, is ``up 0`` and a note with the reason, never an exception.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

from dbkeeper.connections.config import DATABASE_URL_ENV, DEFAULT_CONNECTION, Config, load_config
from dbkeeper.connections.urls import DatabaseURL, error_line, redact
from dbkeeper.errors import DbkeeperError
from dbkeeper.monitoring.knowledge import backup_samples, migration_samples
from dbkeeper.plugin.monitoring import (
    CollectorResult,
    Collectors,
    ConnectionKeeper,
    Deadline,
    MetricsOptions,
    MetricsRequest,
    Sample,
)
from dbkeeper.system.notes import note

if TYPE_CHECKING:
    from dbkeeper.backups.storage import BackupStorage
    from dbkeeper.plugin.manager import Plugins

CONNECTION_LABEL = "connection"
"""The label the core puts on every sample: the configured connection's name, or ``default``."""
DEADLINE_GRACE = 1.0
"""Seconds the core waits past the deadline for a driver to return before it reports ``up 0``."""
CONCURRENT_SCRAPES = 4
"""At most this many connections are scraped at once by :meth:`DatabaseMonitor.scrape_all`."""

T = TypeVar("T")


class DeadlineExceeded(DbkeeperError):
    """A scrape did not finish within its deadline (plus :data:`DEADLINE_GRACE`)."""


@dataclass(frozen=True)
class DatabaseMetrics:
    """The result of one scrape of one connection.

    ``up`` is whether the database answered; ``reason`` says why not (one line, no
    password). ``collectors`` holds the driver's collectors, then dbkeeper's own
    (``backups``, ``migrations``), each with its samples, success and duration.
    """

    connection: str
    driver: str
    up: bool
    collectors: tuple[CollectorResult, ...]
    duration_seconds: float
    reason: str | None = None

    def samples(self) -> list[Sample]:
        """Every sample, self-metrics first, each labelled with the connection."""
        return [self._labelled(sample) for sample in self.unlabelled_samples()]

    def unlabelled_samples(self) -> Iterator[Sample]:
        """Every sample, self-metrics first, without the ``connection`` label (the exposition adds it)."""
        yield Sample("up", "gauge", "Whether the database answered the last scrape (1) or not (0).", float(self.up))
        yield Sample("scrape_duration", "gauge", "How long the last scrape took.", self.duration_seconds, "seconds")
        for result in self.collectors:
            yield Sample(
                "scrape_collector_success",
                "gauge",
                "Whether a collector of the last scrape succeeded (1) or failed (0).",
                float(result.success),
                labels={"collector": result.name},
            )
        for result in self.collectors:
            yield Sample(
                "scrape_collector_duration",
                "gauge",
                "How long a collector of the last scrape took.",
                result.duration_seconds,
                "seconds",
                {"collector": result.name},
            )
        for result in self.collectors:
            yield from result.samples

    def _labelled(self, sample: Sample) -> Sample:
        labels = {key: value for key, value in sample.labels.items() if key != CONNECTION_LABEL}
        return replace(sample, labels={CONNECTION_LABEL: self.connection, **labels})

    def failed_collectors(self) -> list[CollectorResult]:
        """The collectors that failed, with their reasons."""
        return [result for result in self.collectors if not result.success]


def run_within(deadline: Deadline | float, work: Callable[[], T], grace: float = 0.0) -> T:
    """*work*'s result, or :class:`DeadlineExceeded` when it has not returned *grace* seconds after *deadline*.

    *deadline* is a :class:`Deadline`, or a number of seconds from now.

    It runs on a daemon thread, so a driver stuck in a system call cannot hold the caller
    (or the process's exit) past the deadline; the thread ends when the call returns.
    """
    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name="dbkeeper-scrape", daemon=True)
    thread.start()
    if not isinstance(deadline, Deadline):
        deadline = Deadline(deadline)
    thread.join(deadline.remaining() + grace)
    if thread.is_alive():
        raise DeadlineExceeded(f"the scrape did not finish within its deadline ({deadline.seconds:g} s)")
    if failure:
        raise failure[0]
    return outcome[0]


class DatabaseMonitor:
    """Scrapes the connections of a configuration (``dbkeeper.toml``, ``DATABASE_URL``).

    *config* defaults to the loaded ``dbkeeper.toml``; *plugins* to every installed plugin.
    With *keep_connections* (``dbkeeper metrics --serve``) each database's driver keeps
    its one connection open between scrapes (a :class:`~dbkeeper.plugin.ConnectionKeeper`
    per database) until :meth:`close`.
    """

    def __init__(
        self, config: Config | None = None, *, plugins: Plugins | None = None, keep_connections: bool = False
    ) -> None:
        self.config = config if config is not None else load_config()
        self.settings = self.config.monitoring
        self._given_plugins = plugins
        self._keep_connections = keep_connections
        self._busy: dict[str, threading.Lock] = {}
        self._keepers: dict[str, ConnectionKeeper] = {}
        self._busy_guard = threading.Lock()

    def close(self) -> None:
        """Close the connections kept between scrapes (if any); a later scrape opens its own again."""
        with self._busy_guard:
            keepers, self._keepers = list(self._keepers.values()), {}
        for keeper in keepers:
            keeper.close()

    @cached_property
    def plugins(self) -> Plugins:
        """The plugins, loaded on first use."""
        if self._given_plugins is not None:
            return self._given_plugins
        from dbkeeper.plugin.manager import load_plugins

        return load_plugins()

    def targets(self) -> list[str]:
        """The connections ``scrape_all`` scrapes: every configured name, and ``default`` for ``DATABASE_URL``.

        ``DATABASE_URL`` is scraped as ``default`` unless a connection of that name is configured.
        """
        names = sorted(self.config.connections)
        if os.environ.get(DATABASE_URL_ENV) and DEFAULT_CONNECTION not in names:
            names.append(DEFAULT_CONNECTION)
        return names

    def _resolve(self, connection: str | None) -> tuple[str, str]:
        """``(label, url)`` of a name, a URL, or nothing (``DATABASE_URL``, then ``default``)."""
        if connection == DEFAULT_CONNECTION and DEFAULT_CONNECTION not in self.config.connections:
            connection = None
        shown, url = self.config.resolve(connection)
        return (shown if shown in self.config.connections else DEFAULT_CONNECTION), url

    def scrape(self, connection: str | None = None) -> DatabaseMetrics:
        """Scrape *connection* (a configured name or a URL; default: ``DATABASE_URL``, then ``default``).

        Raises :class:`~dbkeeper.errors.ConfigError` for a name that is not configured;
        anything that goes wrong after that is ``up 0`` with the reason.
        """
        label, url_text = self._resolve(connection)
        started = time.monotonic()
        try:
            url = DatabaseURL.parse(url_text)
            driver_name = self.plugins.driver_for(url).name
        except DbkeeperError as exc:
            return self._down(label, "", started, redact(str(exc)), [])
        deadline = Deadline(self.settings.deadline)
        database = self._scrape_database(label, url, driver_name, started, deadline)
        own = self._knowledge(label, url, database.up, deadline)
        return replace(
            database, collectors=database.collectors + tuple(own), duration_seconds=time.monotonic() - started
        )

    def _scrape_database(
        self, label: str, url: DatabaseURL, driver_name: str, started: float, deadline: Deadline
    ) -> DatabaseMetrics:
        """The driver's part of the scrape, bounded by *deadline* (and :data:`DEADLINE_GRACE`)."""
        settings = self.settings
        request = MetricsRequest(
            driver=driver_name,
            url=url,
            deadline=deadline,
            statement_timeout=settings.statement_timeout,
            lock_timeout=settings.lock_timeout,
            options=MetricsOptions(
                settings.table_limit, settings.statements, settings.statements_limit, settings.query_text
            ),
            keeper=self._keeper(url),
        )
        driver = self.plugins.driver_for(url)
        busy = self._busy_lock(url)
        if not busy.acquire(timeout=deadline.remaining()):
            return self._down(
                label, driver_name, started, "another scrape of this database took the whole deadline", []
            )

        def collect() -> list[CollectorResult]:
            try:
                return driver.collect_metrics(request)
            finally:
                busy.release()  # when the driver returns, even after the deadline: one connection per database

        try:
            results = run_within(deadline, collect, DEADLINE_GRACE)
        except DbkeeperError as exc:
            return self._down(label, driver_name, started, redact(str(exc)), [])
        except Exception as exc:  # a driver's bug must not take the scrape (or the server) down
            return self._down(
                label, driver_name, started, f"the {driver_name} driver failed: {error_line(exc, with_type=True)}", []
            )
        return DatabaseMetrics(label, driver_name, True, tuple(results), time.monotonic() - started)

    def _busy_lock(self, url: DatabaseURL) -> threading.Lock:
        """The lock a scrape of *url* holds: concurrent requests for one database take turns."""
        with self._busy_guard:
            return self._busy.setdefault(url.safe(), threading.Lock())

    def _keeper(self, url: DatabaseURL) -> ConnectionKeeper | None:
        """The keeper of *url*'s connection between scrapes, with *keep_connections*; else None.

        Keyed by the whole URL, credentials included (held in memory only), so that two
        connections differing only by their password never share a session; the scrapes
        of one keeper take turns through :meth:`_busy_lock`.
        """
        if not self._keep_connections:
            return None
        with self._busy_guard:
            return self._keepers.setdefault(url.raw, ConnectionKeeper())

    def _down(
        self, label: str, driver: str, started: float, reason: str, collectors: list[CollectorResult]
    ) -> DatabaseMetrics:
        note(f"{label}: down: {reason}")
        return DatabaseMetrics(label, driver, False, tuple(collectors), time.monotonic() - started, reason)

    @cached_property
    def backup_storage(self) -> BackupStorage:
        """The configured backup storage (``backup_dir``: a directory or a storage URL), opened on first use."""
        from dbkeeper.backups.opening import open_storage

        location = self.config.backup_directory(None)
        return open_storage(location, self.plugins, self.config.storage_settings(location))

    def _knowledge(self, label: str, url: DatabaseURL, up: bool, deadline: Deadline) -> list[CollectorResult]:
        """The collectors only dbkeeper has: the backups of this database, and its migrations when it is up.

        Backups are read from their storage even when the database is down or the deadline has
        passed; migrations need the database, within what is left of *deadline*.
        """
        local = Collectors(Deadline(self.settings.deadline))
        local.run("backups", lambda: backup_samples(self.backup_storage, url))
        remote = Collectors(deadline)
        migrations = self.config.migration_dirs.get(label)
        if up and migrations is not None and migrations.is_dir():
            remote.run(
                "migrations",
                lambda: run_within(deadline, lambda: migration_samples(url, migrations, self.plugins)),
            )
        return local.results() + remote.results()

    def scrape_all(self, connections: Iterable[str] | None = None) -> list[DatabaseMetrics]:
        """Scrape every connection of :meth:`targets` (or *connections*), several at once.

        At most :data:`CONCURRENT_SCRAPES` run at the same time; a connection that cannot
        be resolved (an unset ``${VAR}``) is ``up 0`` with the reason.
        """
        names = list(self.targets() if connections is None else connections)
        if len(names) == 1:  # /probe, or one connection: no pool to start (about 0.5 ms a scrape)
            return [self._scrape_or_down(names[0])]
        with ThreadPoolExecutor(max_workers=max(1, min(CONCURRENT_SCRAPES, len(names)))) as pool:
            return list(pool.map(self._scrape_or_down, names))

    def _scrape_or_down(self, name: str) -> DatabaseMetrics:
        try:
            return self.scrape(name)
        except DbkeeperError as exc:  # an unset ${VAR}, a bad URL in the file: this connection only
            return self._down(name, "", time.monotonic(), redact(str(exc)), [])


def monitor_database(
    connection: str | None = None, *, config: Config | None = None, plugins: Plugins | None = None
) -> DatabaseMetrics:
    """Scrape *connection* (a configured name or a URL) once; see :meth:`DatabaseMonitor.scrape`."""
    return DatabaseMonitor(config, plugins=plugins).scrape(connection)
