"""The dbkeeper plugin contract: every hook a plugin may implement.

Plugins are modules or objects with functions marked ``@dbkeeper.hookimpl`` whose names
and arguments match the specifications below (pluggy checks both when a plugin loads).
Distributions advertise their plugin through the ``dbkeeper`` entry-point group::

    [project.entry-points.dbkeeper]
    mydb = "dbkeeper_mydb.plugin"

**Dispatch.** Registration hooks are called once per plugin. The driver hooks
(``dbkeeper_connect``, ``dbkeeper_dump``, ``dbkeeper_restore``,
``dbkeeper_inspect_backup``, ``dbkeeper_migrate``, ``dbkeeper_collect_metrics``,
``dbkeeper_check_health``, ``dbkeeper_sessions``, ``dbkeeper_plan_maintenance``,
``dbkeeper_schema_dialect``, ``dbkeeper_drill``) are
``firstresult`` and are called only on the plugin that registered the driver selected
by the URL scheme, plus any plugin that registers no driver at all — so a plugin that
only observes (timing, audit, notification) can wrap every call with
``@hookimpl(wrapper=True)`` without ever being asked to do a driver's work. A driver
plugin never has to return ``None`` for "not mine"; returning ``None``
means the operation is not supported by that driver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from dbkeeper.plugin.contract import DriverInfo, DumpRequest, DumpResult, MigrationDialect
    from dbkeeper.plugin.drills import DrillDialect, DrillRequest
    from dbkeeper.plugin.engines import ConnectRequest, MigrateRequest
    from dbkeeper.plugin.monitoring import (
        CollectorResult,
        HealthCheck,
        HealthRequest,
        Maintenance,
        MaintenanceRequest,
        MetricsRequest,
        Session,
        SessionsRequest,
    )
    from dbkeeper.plugin.options import DriverOptions
    from dbkeeper.plugin.restore import BackupContents, InspectRequest, RestoreRequest, RestoreResult
    from dbkeeper.plugin.schema import SchemaDialect, SchemaRequest
    from dbkeeper.plugin.storage import StorageInfo
    from dbkeeper.plugin.streams import Stage

PROJECT = "dbkeeper"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def dbkeeper_register_drivers(register: Callable[[DriverInfo], None]) -> None:
    """Register the database drivers this plugin provides.

    Call ``register(DriverInfo(name=..., schemes=(...), formats=(...)))`` once per driver.
    A driver name or URL scheme already registered by another plugin is an error that
    names both distributions. Called once per plugin, when the plugin manager is built.
    Returns nothing.
    """


@hookspec
def dbkeeper_register_stages(register: Callable[[Stage], None]) -> None:
    """Register the pipeline stages (compression codecs, integrity checks) this plugin provides.

    Call ``register(stage)`` with an object following :class:`dbkeeper.plugin.streams.Stage`.
    The built-in ``zstd``, ``gzip``, ``none`` and ``sha256`` stages are registered this
    way too. A stage name already registered is an error naming both distributions.
    Returns nothing.
    """


@hookspec
def dbkeeper_register_storages(register: Callable[[StorageInfo], None]) -> None:
    """Register the backup storages (object stores for URL schemes such as ``s3``) this plugin provides.

    Call ``register(StorageInfo(name=..., schemes=(...), open=...))`` once per backend;
    ``open`` returns a :class:`dbkeeper.plugin.storage.ObjectStore`. The local directory
    is built in (paths and ``file://``). A storage name or scheme already registered is an
    error naming both distributions. Returns nothing.
    """


@hookspec(firstresult=True)
def dbkeeper_connect(request: ConnectRequest) -> Engine | None:
    """Return a SQLAlchemy :class:`~sqlalchemy.engine.Engine` for ``request.url``.

    Creating the engine must not open a connection. Raise
    :class:`dbkeeper.errors.DatabaseNotFoundError` when the database does not exist and
    ``request.create`` is false. ``firstresult``: the selected driver answers.
    """


@hookspec(firstresult=True)
def dbkeeper_dump(request: DumpRequest[DriverOptions]) -> DumpResult | None:
    """Write a consistent snapshot of ``request.url`` into ``request.artifacts``.

    Stream: never hold the database, or a large part of it, in memory. Open each artifact
    with ``request.artifacts.open(name, size_hint=...)`` and write raw bytes in chunks;
    the core compresses and checksums them on the way to disk. Return a
    :class:`~dbkeeper.plugin.contract.DumpResult` with the row count of every table *in the
    snapshot*. Raise :class:`dbkeeper.errors.DatabaseError` on failure.
    ``firstresult``: the selected driver answers.
    """


@hookspec(firstresult=True)
def dbkeeper_restore(request: RestoreRequest[DriverOptions]) -> RestoreResult | None:
    """Restore ``request.backup`` from ``request.artifacts`` into ``request.url``.

    Read every artifact to its end (``b""``) before making anything visible: the end is
    where the checksum is proven. Never leave the target half-written, and refuse a
    target holding data unless ``request.force``. Return a
    :class:`~dbkeeper.plugin.restore.RestoreResult`. ``firstresult``: the selected driver answers.
    """


@hookspec(firstresult=True)
def dbkeeper_inspect_backup(request: InspectRequest) -> BackupContents | None:
    """Read a whole backup and report what is inside, for ``dbkeeper verify --deep``.

    Check what the engine can check (SQLite: ``PRAGMA integrity_check``) and count the
    rows of every table; the core compares the counts with the manifest. Use
    ``request.scratch_dir`` for temporary files. ``firstresult``: the selected driver answers.
    """


@hookspec(firstresult=True)
def dbkeeper_migrate(request: MigrateRequest) -> MigrationDialect | None:
    """Return the engine-specific half of schema migrations for ``request.url``.

    The result follows :class:`~dbkeeper.plugin.contract.MigrationDialect`: whether DDL is
    transactional, how a script is split into statements, the migration lock and how a
    migration's transaction begins. Discovery, ordering, checksums, history, the locking
    protocol and recovery are the core's. ``firstresult``: the selected driver answers.
    """


@hookspec(firstresult=True)
def dbkeeper_collect_metrics(request: MetricsRequest) -> list[CollectorResult] | None:
    """Scrape ``request.url`` once and return every collector's result.

    Open one connection (bounded by ``request.deadline``), set the statement and lock
    timeouts on its session, and run each collector through
    :class:`~dbkeeper.plugin.monitoring.Collectors` so that one failing collector (a
    missing privilege, an absent extension) never hides the others. Raise
    :class:`dbkeeper.errors.DatabaseError` when the database cannot be reached at all: the
    core reports ``dbkeeper_up 0``. Name samples as :class:`~dbkeeper.plugin.Sample`
    says. ``firstresult``: the selected driver answers.
    """


@hookspec(firstresult=True)
def dbkeeper_check_health(request: HealthRequest) -> list[HealthCheck] | None:
    """Check ``request.url`` against ``request.thresholds`` and return one verdict per check.

    A check the engine cannot make is left out; one it cannot make *now* (a missing
    privilege) is ``skipped`` with the reason as its figure. Use
    :func:`~dbkeeper.plugin.judge` for threshold checks. Read only: change nothing.
    ``firstresult``: the selected driver answers.
    """


@hookspec(firstresult=True)
def dbkeeper_sessions(request: SessionsRequest) -> list[Session] | None:
    """The server's sessions other than the caller's own, for ``dbkeeper top``.

    An engine without sessions to show (SQLite) returns an empty list; ``None`` means the
    driver does not support ``top``. ``firstresult``: the selected driver answers.
    """


@hookspec(firstresult=True)
def dbkeeper_plan_maintenance(request: MaintenanceRequest) -> Maintenance | None:
    """Return the maintenance of ``request.url``: a plan of steps, and how to apply one.

    The result follows :class:`~dbkeeper.plugin.Maintenance`. Planning measures and
    changes nothing; applying a step waits at most its lock timeout and never terminates
    another session. ``firstresult``: the selected driver answers.
    """


@hookspec(firstresult=True)
def dbkeeper_schema_dialect(request: SchemaRequest) -> SchemaDialect | None:
    """Return the engine-specific half of ``dbkeeper schema`` (generate, inspect, diff).

    The result is a :class:`~dbkeeper.plugin.SchemaDialect`, usually a subclass
    overriding the base class's engine-neutral defaults where the engine differs: its
    SQLAlchemy dialect, type mapping both ways, identity, defaults, enums, indexes,
    comments, refusals, and what inspect reads besides SQLAlchemy's ``Inspector``. The
    mapping of definitions to ``MetaData``, DDL order, naming and comparison are the
    core's. ``firstresult``: the driver the dialect name or the URL selects answers.
    """


@hookspec(firstresult=True)
def dbkeeper_drill(request: DrillRequest) -> DrillDialect | None:
    """Return the engine-specific half of ``dbkeeper drill`` for ``request.backup``.

    The result follows :class:`~dbkeeper.plugin.DrillDialect`: the drill's target (a
    throwaway server or temporary file, or a scratch database on ``request.into``), brought
    up and removed by a context manager, and the engine's integrity check of the restored
    database. Finding the backup, restoring it (through ``dbkeeper_restore``), timing it,
    row counts, ``--check-sql`` and the record are the core's. ``firstresult``: the driver
    that made the backup answers.
    """
