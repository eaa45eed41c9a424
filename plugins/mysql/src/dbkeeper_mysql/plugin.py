"""The MySQL/MariaDB driver's hook implementations.

URLs: ``mysql://``, ``mariadb://`` and ``mysql+pymysql://user:password@host:port/database``
(``?unix_socket=/path`` for a socket, ``?charset=`` utf8mb4 by default), served by
SQLAlchemy's ``mysql+pymysql`` dialect. Format: ``sql``, a ``mariadb-dump`` script cut at
table boundaries (see :mod:`dbkeeper_mysql.layout`), written by ``mariadb-dump`` or, without
the client tools, by the pure-Python dumper. See docs/mysql.md.

Every dbkeeper command loads this module, whichever driver it uses: each hook imports the
modules it needs when it is called, so that loading the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from dbkeeper.plugin import DriverInfo, hookimpl
from dbkeeper_mysql.options import MysqlOptions

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
    from dbkeeper_mysql.drill import MysqlDrill


def prepare_backup(request: PrepareRequest[MysqlOptions]) -> AbstractContextManager[object]:
    """The server's facts are read (and the dump tool's version) while the core sets the backup up."""
    from dbkeeper_mysql.dump import prepare

    return prepare(request)


DRIVER = DriverInfo(
    name="mysql",
    schemes=("mysql", "mariadb"),
    formats=("sql",),
    description="MySQL and MariaDB: mariadb-dump or pure-Python dumps, parallel checked restores",
    options=MysqlOptions,
    prepare_backup=prepare_backup,
)


@hookimpl
def dbkeeper_register_drivers(register: Callable[[DriverInfo], None]) -> None:
    """Register the ``mysql`` driver (``mysql://``, ``mariadb://``, ``mysql+pymysql://``)."""
    register(DRIVER)


@hookimpl
def dbkeeper_connect(request: ConnectRequest) -> Engine:
    """A SQLAlchemy engine (``mysql+pymysql``, utf8mb4 by default); no connection is opened.

    Its connections are made by :meth:`ServerTarget.connect`, so they get the same
    timeouts, TLS and one-line connection errors as the driver's own connections.
    """
    from sqlalchemy import create_engine

    from dbkeeper_mysql.server import ServerTarget

    target = ServerTarget.from_url(request.url)

    def creator() -> object:
        return target.connect(target.database, autocommit=False)

    return create_engine(target.sa_url(), pool_pre_ping=True, creator=creator)


@hookimpl
def dbkeeper_dump(request: DumpRequest[MysqlOptions]) -> DumpResult:
    """Dump the database in one consistent snapshot, table by table, counting rows."""
    from dbkeeper_mysql import dump

    return dump.dump(request)


@hookimpl
def dbkeeper_restore(request: RestoreRequest[MysqlOptions]) -> RestoreResult:
    """Load into a staging database, check, and swap into the target (see :mod:`dbkeeper_mysql.restore`)."""
    from dbkeeper_mysql import dump
    from dbkeeper_mysql.restore import Restore
    from dbkeeper_mysql.server import ServerTarget, admin_connection, server_info

    target = ServerTarget.from_url(request.url)
    with admin_connection(target) as conn:
        info = server_info(conn)
    with dump.loader_for(target, info, request.options.tools) as loader:
        return Restore(request, loader).run()


@hookimpl
def dbkeeper_inspect_backup(request: InspectRequest) -> BackupContents:
    """Read the whole backup and count each table's rows from its INSERTs."""
    from dbkeeper_mysql import verify

    return verify.inspect(request)


@hookimpl
def dbkeeper_migrate(request: MigrateRequest) -> MigrationDialect:
    """Journaled migrations under GET_LOCK, undone with their down parts on failure."""
    from dbkeeper_mysql.migrations import MysqlMigrations  # imports SQLAlchemy: only when migrating

    return MysqlMigrations()


@hookimpl
def dbkeeper_collect_metrics(request: MetricsRequest) -> list[CollectorResult]:
    """One scrape on one bounded connection: status counters, activity, table sizes, replication."""
    from dbkeeper_mysql import metrics

    return metrics.collect(request)


@hookimpl
def dbkeeper_check_health(request: HealthRequest) -> list[HealthCheck]:
    """Buffer pool, connections, long and blocked sessions, indexes, free space, keys, replica lag."""
    from dbkeeper_mysql import health

    return health.check(request)


@hookimpl
def dbkeeper_sessions(request: SessionsRequest) -> list[Session]:
    """The process list (not this connection), with InnoDB's transactions and lock waits."""
    from dbkeeper_mysql import activity

    return activity.read_sessions(request)


@hookimpl
def dbkeeper_plan_maintenance(request: MaintenanceRequest) -> Maintenance:
    """``ANALYZE TABLE`` where many rows changed since the statistics, ``OPTIMIZE TABLE`` where much space is free."""
    from dbkeeper_mysql.maintenance import MysqlMaintenance

    return MysqlMaintenance.open(request)


@hookimpl
def dbkeeper_schema_dialect(request: SchemaRequest) -> SchemaDialect:
    """MySQL's types, AUTO_INCREMENT, inline enums, what MySQL refuses."""
    from dbkeeper_mysql.schema import MysqlSchema  # imports SQLAlchemy when used: only for dbkeeper schema

    return MysqlSchema()


@hookimpl
def dbkeeper_drill(request: DrillRequest) -> MysqlDrill:
    """A throwaway mariadbd on a socket (or a scratch database under --into) to restore into; CHECK TABLE."""
    from dbkeeper_mysql.drill import MysqlDrill

    return MysqlDrill()
