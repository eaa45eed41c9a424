"""The PostgreSQL driver's hook implementations.

URLs: ``postgresql://user:password@host:port/database?sslmode=require`` (also
``postgres://`` and ``postgresql+psycopg://``; a unix socket with ``?host=/run/postgresql``).
Formats: ``custom`` (default, a pg_dump archive) and ``sql`` (a plain script for psql).
Options: ``jobs`` for dumps; ``jobs``, ``tables`` and ``schemas`` for restores. Monitoring: metrics,
health checks, sessions and maintenance (VACUUM, ANALYZE, REINDEX CONCURRENTLY) on one bounded
connection each.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from dbkeeper.plugin import DriverInfo, hookimpl
from dbkeeper_postgresql.options import PostgresqlOptions

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
        PrepareRequest,
        RestoreRequest,
        RestoreResult,
        SchemaDialect,
        SchemaRequest,
        Session,
        SessionsRequest,
    )
    from dbkeeper_postgresql.drill import PostgresDrill


def prepare_backup(request: PrepareRequest[PostgresqlOptions]) -> AbstractContextManager[object]:
    """The control session connects and exports its snapshot while the core sets the backup up."""
    from dbkeeper_postgresql.dump import prepare

    return prepare(request)


DRIVER = DriverInfo(
    name="postgresql",
    schemes=("postgresql", "postgres"),  # postgresql+psycopg is postgresql with its DBAPI named
    formats=("custom", "sql"),  # layout.FORMATS, whose modules load when a command uses them
    description="PostgreSQL: pg_dump archives or SQL scripts under one snapshot, restored with pg_restore or psql",
    options=PostgresqlOptions,
    prepare_backup=prepare_backup,
)


@hookimpl
def dbkeeper_register_drivers(register: Callable[[DriverInfo], None]) -> None:
    """Register the ``postgresql`` driver (``postgresql://``, ``postgres://``, ``postgresql+psycopg://``)."""
    register(DRIVER)


@hookimpl
def dbkeeper_connect(request: ConnectRequest) -> Engine:
    """A SQLAlchemy engine on psycopg 3; no connection is opened until first use."""
    from dbkeeper_postgresql.connections import sqlalchemy_url
    from dbkeeper_postgresql.engine import create

    return create(sqlalchemy_url(request.url), request.url.safe())


@hookimpl
def dbkeeper_dump(request: DumpRequest[PostgresqlOptions]) -> DumpResult:
    """Dump with pg_dump under one exported snapshot, counting rows in that snapshot."""
    from dbkeeper_postgresql.dump import dump

    return dump(request)


@hookimpl
def dbkeeper_restore(request: RestoreRequest[PostgresqlOptions]) -> RestoreResult:
    """Restore with pg_restore or psql fed from the verified artifacts, then count the rows."""
    from dbkeeper_postgresql.restore import restore

    return restore(request)


@hookimpl
def dbkeeper_inspect_backup(request: InspectRequest) -> BackupContents:
    """Read every artifact to its end through pg_restore and count the rows of each table."""
    from dbkeeper_postgresql.contents import inspect

    return inspect(request)


@hookimpl
def dbkeeper_migrate(request: MigrateRequest) -> MigrationDialect:
    """Transactional migrations under a session advisory lock."""
    from dbkeeper_postgresql.migrations import PostgresMigrations  # imports SQLAlchemy: only when migrating

    return PostgresMigrations()


@hookimpl
def dbkeeper_collect_metrics(request: MetricsRequest) -> list[CollectorResult]:
    """One scrape on one bounded connection: the collectors of docs/postgresql.md, each isolated."""
    from dbkeeper_postgresql.metrics import collect

    return collect(request)


@hookimpl
def dbkeeper_check_health(request: HealthRequest) -> list[HealthCheck]:
    """PgHero's checks, read only, on one bounded connection."""
    from dbkeeper_postgresql.health import check

    return check(request)


@hookimpl
def dbkeeper_sessions(request: SessionsRequest) -> list[Session]:
    """pg_stat_activity's client sessions but our own, with waits and blocking sessions."""
    from dbkeeper_postgresql.sessions import sessions

    return sessions(request)


@hookimpl
def dbkeeper_plan_maintenance(request: MaintenanceRequest) -> Maintenance:
    """VACUUM (ANALYZE), ANALYZE, REINDEX INDEX CONCURRENTLY and, when bloat is heavy, VACUUM FULL."""
    from dbkeeper_postgresql.maintenance import PostgresMaintenance

    return PostgresMaintenance.open(request)


@hookimpl
def dbkeeper_schema_dialect(request: SchemaRequest) -> SchemaDialect:
    """PostgreSQL's types, identity columns, named enum types, ``COMMENT ON``."""
    from dbkeeper_postgresql.schema import PostgresqlSchema  # imports SQLAlchemy when used: only for dbkeeper schema

    return PostgresqlSchema()


@hookimpl
def dbkeeper_drill(request: DrillRequest) -> PostgresDrill:
    """A throwaway cluster of the backup's major version (or a scratch database on --into); amcheck."""
    from dbkeeper_postgresql.drill import PostgresDrill

    return PostgresDrill()
