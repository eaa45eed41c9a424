"""The one module a plugin author imports: everything a driver or a pipeline stage needs.

::

    from dbkeeper.plugin import DatabaseError, DriverInfo, DumpRequest, DumpResult, hookimpl

Re-exported from the modules of the plugin contract, which live beside this one:

- ``hookspecs``: every hook, its signature and docstring (``hookimpl`` marks an implementation);
- ``contract``: the request, result and protocol types that cross the plugin boundary;
- ``monitoring``: metrics samples, health checks, sessions and maintenance steps;
- ``schema``: the schema dialect a driver gives ``dbkeeper schema`` (:class:`SchemaDialect`) and
  the portable schema model it works on (:class:`Table`, :class:`Column`, :class:`ColumnType` …);
- ``drills``: the engine's side of ``dbkeeper drill`` (:class:`DrillDialect`, its target and checks);
- ``storage``: storage backends for ``--dir s3://…`` (:class:`ObjectStore`, :class:`StorageInfo`);
- ``options``: a driver's options, declared as fields of a :class:`DriverOptions` dataclass;
- ``streams``: byte streams, the chunk size and the :class:`Stage` protocols (:class:`EncryptionStage`);
- ``tools``: running native client tools as ends of the pipeline, secrets held in memory;
- ``sql``: SQL text helpers several engines share (:func:`end_of_quoted`);
- ``workers``: tasks on several threads that all stop at the first failure (:class:`WorkerPool`);
- ``head_start``: a backup's first server work begun while the core sets up (:class:`HeadStart`);
- ``pristine``: a drill's fresh data directory copied from a cached one (:func:`pristine_data_directory`);
- a watchdog that stops a child server when dbkeeper dies (:func:`start_watchdog`),
- the commit points of a restore (:class:`CommitPoint`), notes to the user (:func:`note`), a
  local file system's refusals (:func:`writing` and friends), database URLs, and the errors
  a plugin may raise.

The conformance kit, ``dbkeeper.plugin.testing``, is the one other module a plugin's
*tests* import. ``dbkeeper.plugin.manager`` loads plugins; it is the core's, not a
plugin's. Importing this module loads no database library (no SQLAlchemy).
"""

from typing import TYPE_CHECKING, Any

from dbkeeper.connections.urls import DatabaseURL, error_line, redact
from dbkeeper.errors import (
    BackupError,
    ConfigError,
    DatabaseError,
    DatabaseNotFoundError,
    DbkeeperError,
    DiskFullError,
    IntegrityError,
    InvalidURLError,
    KeyRequiredError,
    MigrationError,
    StageOptionError,
    StorageError,
    TargetNotEmptyError,
)
from dbkeeper.plugin.contract import (
    ArtifactReader,
    ArtifactSink,
    ArtifactSource,
    ArtifactWriter,
    BackupFacts,
    DriverInfo,
    DumpRequest,
    DumpResult,
    FingerprintDialect,
    HistorySchemaDialect,
    MigrationDialect,
    PrepareRequest,
)
from dbkeeper.plugin.head_start import HeadStart
from dbkeeper.plugin.hookspecs import hookimpl
from dbkeeper.plugin.options import DriverOptions, Operation, Option, option
from dbkeeper.plugin.sql import end_of_quoted
from dbkeeper.plugin.storage import OBJECT_STORE_TYPES, StorageInfo, StorageRequest
from dbkeeper.plugin.streams import (
    CHUNK_SIZE,
    THREADS_OPTION,
    Encoder,
    EncryptionStage,
    ProgramDecodedStage,
    Readable,
    Stage,
    StageKind,
    ThreadedStage,
    Writable,
    check_options,
)
from dbkeeper.plugin.tools import (
    Tool,
    child_environment,
    copy_into,
    copy_output,
    feed_pipe,
    feed_verified,
    find_tool,
    running,
    secret_file,
    started_tool,
    stream_in,
    stream_out,
)
from dbkeeper.plugin.workers import WorkerPool
from dbkeeper.system.filesystem import (
    BACKUP_ELSEWHERE,
    TARGET_ELSEWHERE,
    disk_full,
    full_error,
    human_bytes,
    naming,
    writing,
)
from dbkeeper.system.interrupts import CommitPoint
from dbkeeper.system.lazy import LazyNames
from dbkeeper.system.notes import note
from dbkeeper.system.processes import wait_ended
from dbkeeper.system.watchdog import release_watchdog, start_watchdog

if TYPE_CHECKING:
    from dbkeeper.plugin.drills import DrillDialect, DrillRequest, DrillTarget, IntegrityCheck
    from dbkeeper.plugin.engines import ConnectRequest, MigrateRequest
    from dbkeeper.plugin.monitoring import (
        CollectorResult,
        Collectors,
        ConnectionKeeper,
        Deadline,
        HealthCheck,
        HealthRequest,
        HealthThresholds,
        Maintenance,
        MaintenanceRequest,
        MaintenanceStep,
        MetricsOptions,
        MetricsRequest,
        MetricType,
        Sample,
        Session,
        SessionsRequest,
        StepOutcome,
        StepStatus,
        Verdict,
        judge,
    )
    from dbkeeper.plugin.object_store import ObjectReader, ObjectStore, PendingUpload, StoredObject, Upload
    from dbkeeper.plugin.pristine import PristineKey, pristine_data_directory
    from dbkeeper.plugin.restore import BackupContents, InspectRequest, RestoreRequest, RestoreResult
    from dbkeeper.plugin.schema import (
        Change,
        Check,
        Column,
        ColumnType,
        Default,
        Enum,
        EnumStorage,
        Expression,
        ForeignKey,
        Index,
        LiveSchema,
        Numbering,
        PrimaryKey,
        Reflected,
        SchemaDefinition,
        SchemaDialect,
        SchemaRequest,
        Table,
        TypeFactory,
        UniqueConstraint,
        View,
    )

_MONITORING = frozenset(
    {
        "CollectorResult",
        "Collectors",
        "ConnectionKeeper",
        "Deadline",
        "HealthCheck",
        "HealthRequest",
        "HealthThresholds",
        "Maintenance",
        "MaintenanceRequest",
        "MaintenanceStep",
        "MetricsOptions",
        "MetricsRequest",
        "MetricType",
        "Sample",
        "Session",
        "SessionsRequest",
        "StepOutcome",
        "StepStatus",
        "Verdict",
        "judge",
    }
)
"""Names of ``dbkeeper.plugin.monitoring``, imported on first use: most commands never need them (about 5 ms)."""

_SCHEMA = frozenset(
    {
        "Change",
        "Check",
        "Column",
        "ColumnType",
        "Default",
        "Enum",
        "EnumStorage",
        "Expression",
        "ForeignKey",
        "Index",
        "LiveSchema",
        "Numbering",
        "PrimaryKey",
        "Reflected",
        "SchemaDefinition",
        "SchemaDialect",
        "SchemaRequest",
        "Table",
        "TypeFactory",
        "UniqueConstraint",
        "View",
    }
)
"""Names of ``dbkeeper.plugin.schema``, imported on first use: only the schema commands need them."""

_DRILLS = frozenset({"DrillDialect", "DrillRequest", "DrillTarget", "IntegrityCheck"})
_RESTORE = ("BackupContents", "InspectRequest", "RestoreRequest", "RestoreResult")
"""The names of :mod:`dbkeeper.plugin.restore`: only ``restore``, ``drill`` and ``verify --deep`` use them."""
_ENGINES = ("ConnectRequest", "MigrateRequest")
"""The names of :mod:`dbkeeper.plugin.engines`: only the commands that work through SQLAlchemy use them."""
"""Names of ``dbkeeper.plugin.drills``, imported on first use: only ``dbkeeper drill`` needs them (about 1.5 ms)."""

__all__ = [
    "BACKUP_ELSEWHERE",
    "CHUNK_SIZE",
    "TARGET_ELSEWHERE",
    "THREADS_OPTION",
    "ArtifactReader",
    "ArtifactSink",
    "ArtifactSource",
    "ArtifactWriter",
    "BackupContents",
    "BackupError",
    "BackupFacts",
    "Change",
    "Check",
    "CollectorResult",
    "Collectors",
    "Column",
    "ColumnType",
    "CommitPoint",
    "ConfigError",
    "ConnectRequest",
    "ConnectionKeeper",
    "DatabaseError",
    "DatabaseNotFoundError",
    "DatabaseURL",
    "DbkeeperError",
    "Deadline",
    "Default",
    "DiskFullError",
    "DrillDialect",
    "DrillRequest",
    "DrillTarget",
    "DriverInfo",
    "DriverOptions",
    "DumpRequest",
    "DumpResult",
    "Encoder",
    "EncryptionStage",
    "Enum",
    "EnumStorage",
    "Expression",
    "FingerprintDialect",
    "ForeignKey",
    "HeadStart",
    "HealthCheck",
    "HealthRequest",
    "HealthThresholds",
    "HistorySchemaDialect",
    "Index",
    "InspectRequest",
    "IntegrityCheck",
    "IntegrityError",
    "InvalidURLError",
    "KeyRequiredError",
    "LiveSchema",
    "Maintenance",
    "MaintenanceRequest",
    "MaintenanceStep",
    "MetricType",
    "MetricsOptions",
    "MetricsRequest",
    "MigrateRequest",
    "MigrationDialect",
    "MigrationError",
    "Numbering",
    "ObjectReader",
    "ObjectStore",
    "Operation",
    "Option",
    "PendingUpload",
    "PrepareRequest",
    "PrimaryKey",
    "PristineKey",
    "ProgramDecodedStage",
    "Readable",
    "Reflected",
    "RestoreRequest",
    "RestoreResult",
    "Sample",
    "SchemaDefinition",
    "SchemaDialect",
    "SchemaRequest",
    "Session",
    "SessionsRequest",
    "Stage",
    "StageKind",
    "StageOptionError",
    "StepOutcome",
    "StepStatus",
    "StorageError",
    "StorageInfo",
    "StorageRequest",
    "StoredObject",
    "Table",
    "TargetNotEmptyError",
    "ThreadedStage",
    "Tool",
    "TypeFactory",
    "UniqueConstraint",
    "Upload",
    "Verdict",
    "View",
    "WorkerPool",
    "Writable",
    "check_options",
    "child_environment",
    "copy_into",
    "copy_output",
    "disk_full",
    "end_of_quoted",
    "error_line",
    "feed_pipe",
    "feed_verified",
    "find_tool",
    "full_error",
    "hookimpl",
    "human_bytes",
    "judge",
    "naming",
    "note",
    "option",
    "pristine_data_directory",
    "redact",
    "release_watchdog",
    "running",
    "secret_file",
    "start_watchdog",
    "started_tool",
    "stream_in",
    "stream_out",
    "wait_ended",
    "writing",
]


_LAZY = LazyNames(
    __name__,
    {
        "dbkeeper.plugin.monitoring": _MONITORING,
        "dbkeeper.plugin.schema": _SCHEMA,
        "dbkeeper.plugin.drills": _DRILLS,
        "dbkeeper.plugin.restore": _RESTORE,
        "dbkeeper.plugin.engines": _ENGINES,
        "dbkeeper.plugin.object_store": OBJECT_STORE_TYPES,
        "dbkeeper.plugin.pristine": ("PristineKey", "pristine_data_directory"),  # drills only
    },
)
"""The names a backup does not use, each imported from its module on first use (``from dbkeeper.plugin import X``)."""


def __getattr__(name: str) -> Any:
    """A name of :data:`_LAZY` (a monitoring, schema, drill, restore, engine or object store name), imported now."""
    return _LAZY.attribute(name)


def __dir__() -> list[str]:
    """Every name of the module, those imported on first use included."""
    return _LAZY.names()
