"""The SQLite driver's hook implementations.

URLs: ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` (SQLAlchemy's
form, ``sqlite+pysqlite://`` too). Formats: ``sqlite`` (default, the database file) and
``sql`` (a text dump ``sqlite3`` loads).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dbkeeper.plugin import TARGET_ELSEWHERE, DriverInfo, hookimpl, writing
from dbkeeper_sqlite.options import SqliteOptions

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from dbkeeper.plugin import (  # annotations only: these types load when their command needs them
        BackupContents,
        CollectorResult,
        ConnectRequest,
        DrillRequest,
        DumpRequest,
        DumpResult,
        HealthCheck,
        HealthRequest,
        InspectRequest,
        Maintenance,
        MaintenanceRequest,
        MetricsRequest,
        MigrateRequest,
        MigrationDialect,
        RestoreRequest,
        RestoreResult,
        SchemaDialect,
        SchemaRequest,
        Session,
        SessionsRequest,
    )
    from dbkeeper_sqlite.drill import SqliteDrill

DRIVER = DriverInfo(
    name="sqlite",
    schemes=("sqlite",),
    formats=("sqlite", "sql"),  # formats.FORMATS, whose modules (and sqlite3) load when a command uses them
    description="SQLite files: online-backup snapshots and SQL dumps",
    options=SqliteOptions,
)

IN_MEMORY_CONNECT = "starts empty and is gone when dbkeeper exits, so there is nothing in it to query, test or migrate"


@hookimpl
def dbkeeper_register_drivers(register: Callable[[DriverInfo], None]) -> None:
    """Register the ``sqlite`` driver."""
    register(DRIVER)


@hookimpl
def dbkeeper_connect(request: ConnectRequest) -> Engine:
    """A SQLAlchemy engine for the file; a missing file is an error unless creating."""
    from sqlalchemy import create_engine

    from dbkeeper_sqlite.files import database_path, require_file

    path = database_path(request.url, why_not=IN_MEMORY_CONNECT)
    if not request.create:
        require_file(path)
    return create_engine(request.url.sa_url)


@hookimpl
def dbkeeper_dump(request: DumpRequest[SqliteOptions]) -> DumpResult:
    """Snapshot the database in the requested format; with the ``check`` option, quick_check it too."""
    from dbkeeper_sqlite.files import database_path, require_file
    from dbkeeper_sqlite.formats import FORMATS

    source = database_path(request.url)
    require_file(source)
    return FORMATS[request.format].dump(source, request.artifacts, request.scratch_dir, check=request.options.check)


@hookimpl
def dbkeeper_restore(request: RestoreRequest[SqliteOptions]) -> RestoreResult:
    """Materialize the backup beside the target, check it, and swap it into place."""
    from dbkeeper.plugin import RestoreResult  # restore's types: created when a restore runs
    from dbkeeper_sqlite.files import check_restored, database_path
    from dbkeeper_sqlite.formats import format_of
    from dbkeeper_sqlite.target import beside, refuse_unless_empty

    target = database_path(request.url)
    refuse_unless_empty(target, request.force)
    fmt = format_of(request.backup)
    (name,) = request.artifacts.names()
    with writing(target, elsewhere=TARGET_ELSEWHERE), beside(target, request.committing) as temp:
        with request.artifacts.open(name) as reader:
            fmt.materialize(reader, temp)
        counts = check_restored(temp, dict(request.backup.row_counts))
    return RestoreResult(database=str(target), row_counts=counts)


@hookimpl
def dbkeeper_inspect_backup(request: InspectRequest) -> BackupContents:
    """Materialize the backup in scratch space; run ``PRAGMA integrity_check`` and count rows."""
    from dbkeeper.plugin import BackupContents
    from dbkeeper_sqlite.files import integrity_problems, opened, row_counts
    from dbkeeper_sqlite.formats import format_of

    fmt = format_of(request.backup)
    (name,) = request.artifacts.names()
    scratch = request.scratch_dir / "inspect.db"
    scratch.touch(mode=0o600)
    with request.artifacts.open(name) as reader:
        fmt.materialize(reader, scratch)
    with opened(scratch) as conn:
        problems = integrity_problems(conn, quick=False)
        counts = None if problems else row_counts(conn)
    return BackupContents(row_counts=counts, problems=problems)


@hookimpl
def dbkeeper_migrate(request: MigrateRequest) -> MigrationDialect:
    """Transactional migrations serialised on SQLite's write lock."""
    from dbkeeper_sqlite.migrations import SqliteMigrations  # imports SQLAlchemy: only when migrating

    return SqliteMigrations()


@hookimpl
def dbkeeper_collect_metrics(request: MetricsRequest) -> list[CollectorResult]:
    """The file's sizes, pages, journal mode, per-table bytes and statistics, read-only."""
    from dbkeeper_sqlite.metrics import collect

    return collect(request)


@hookimpl
def dbkeeper_check_health(request: HealthRequest) -> list[HealthCheck]:
    """quick_check, free space, statistics, foreign keys and indexes, read-only."""
    from dbkeeper_sqlite.health import check

    return check(request)


@hookimpl
def dbkeeper_sessions(request: SessionsRequest) -> list[Session]:
    """SQLite has no server and no sessions to list."""
    return []


@hookimpl
def dbkeeper_plan_maintenance(request: MaintenanceRequest) -> Maintenance:
    """ANALYZE where statistics are missing or stale, VACUUM or incremental_vacuum where pages are free."""
    from dbkeeper_sqlite.maintenance import maintenance

    return maintenance(request)


@hookimpl
def dbkeeper_schema_dialect(request: SchemaRequest) -> SchemaDialect:
    """SQLite's types, its rowid, enums as checks; no comments."""
    from dbkeeper_sqlite.schema import SqliteSchema  # imports SQLAlchemy when used: only for dbkeeper schema

    return SqliteSchema()


@hookimpl
def dbkeeper_drill(request: DrillRequest) -> SqliteDrill:
    """A temporary file (or a scratch file under --into) to restore into; PRAGMA integrity_check."""
    from dbkeeper_sqlite.drill import SqliteDrill

    return SqliteDrill()
