"""The objects that cross the plugin boundary: what hooks receive and what they return.

Hooks take a single request object so that fields can be added without breaking plugins
written against an older core; results are plain dataclasses the core records in the
manifest. Nothing here imports a database library.

This module holds what every command needs (the driver's registration) and what a backup
uses; the types of the other operations live beside it, and ``dbkeeper.plugin`` imports
them on first use of their names: the restore's and ``verify --deep``'s in
:mod:`dbkeeper.plugin.restore`, the requests for an engine or a migration dialect in
:mod:`dbkeeper.plugin.engines`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

from dbkeeper.plugin.options import DriverOptions

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy import Connection

    from dbkeeper.connections.urls import DatabaseURL


@dataclass(frozen=True)
class DriverInfo:
    """A driver a plugin provides, as registered through ``dbkeeper_register_drivers``.

    ``schemes`` are the URL backends it serves (``postgresql`` serves ``postgresql://`` and
    ``postgresql+psycopg://``); ``formats`` are the dump formats it writes, the first being
    the default. ``options`` is the driver's :class:`~dbkeeper.plugin.DriverOptions`
    class: its fields declare the options the driver accepts (name, type, default, help,
    operations). The CLI makes them flags, ``dbkeeper.toml`` sets them in
    ``[drivers.NAME]``, and the driver receives an instance of the class, every value
    converted and checked, as ``DumpRequest.options`` and ``RestoreRequest.options``.

    ``prepare_backup``, optional, starts a backup's first server work (a connection, a
    query, a client's start-up) as soon as the core knows the URL, the format and the
    options, before the core's own set-up (the backup's storage, its stages): called with a
    :class:`PrepareRequest`, it returns a context manager whose value the core hands to the
    dump as ``DumpRequest.prepared``. The core enters it, then sets up, then dumps, and
    exits it afterwards however the backup ended (failed, interrupted, or stopped before
    the dump). :class:`~dbkeeper.plugin.HeadStart` is the usual value: work on a thread of
    its own, stopped and waited for when the dump never takes it.
    """

    name: str
    schemes: tuple[str, ...]
    formats: tuple[str, ...]
    description: str = ""
    options: type[DriverOptions] = DriverOptions
    prepare_backup: Callable[[PrepareRequest[Any]], AbstractContextManager[object]] | None = field(
        default=None, compare=False, repr=False
    )


OptionsT = TypeVar("OptionsT", bound=DriverOptions)
"""The driver's options class, as a request carries it: ``DumpRequest[PostgresqlOptions]``."""


class ArtifactWriter(Protocol):
    """A writable, binary stream into the backup pipeline (compression, then checksum)."""

    def write(self, data: bytes, /) -> int:
        """Push *data* into the pipeline; returns ``len(data)``."""
        ...


class ArtifactReader(Protocol):
    """A readable, binary stream out of a stored artifact, decoded and verified.

    ``read()`` returns ``b""`` only after the whole stored file has been read and every
    integrity stage has matched; a mismatch raises :class:`dbkeeper.errors.IntegrityError`
    from ``read()``. Commit nothing before it has returned ``b""``.
    """

    def read(self, size: int = -1, /) -> bytes:
        """Return up to *size* decoded bytes; ``b""`` at the verified end."""
        ...


class ArtifactSink(Protocol):
    """Where a driver writes the artifacts of one backup."""

    def open(self, name: str, *, size_hint: int | None = None) -> AbstractContextManager[ArtifactWriter]:
        """Open artifact *name* (``chinook.db``); the core adds the stages' suffixes.

        *size_hint* is the expected number of raw bytes, for progress and ETA. The artifact
        is complete when the context exits without an exception.
        """
        ...


class ArtifactSource(Protocol):
    """Where a driver reads the artifacts of one backup from."""

    def names(self) -> list[str]:
        """The artifact names, in the order they were written."""
        ...

    def open(self, name: str) -> AbstractContextManager[ArtifactReader]:
        """Open artifact *name* for reading, decoded and verified while streaming."""
        ...


@dataclass(frozen=True)
class PrepareRequest(Generic[OptionsT]):
    """Asks a driver to start the server work of a backup of ``url`` (see ``DriverInfo.prepare_backup``).

    ``format`` is the dump format chosen and checked; ``options`` the driver's options
    object, as the dump will get it. The work must not make the command wait: start it
    (on a thread, in a child process) and let the dump take its result, errors included,
    so that they are raised where the dump would have raised them.
    """

    driver: str
    url: DatabaseURL
    format: str
    options: OptionsT


@dataclass(frozen=True)
class DumpRequest(Generic[OptionsT]):
    """Asks a driver to write a consistent snapshot of ``url`` into ``artifacts``.

    ``scratch_dir`` is a private directory (mode 0700, on the backup's file system) for
    any temporary file the driver needs; the core removes it afterwards. ``options`` is
    an instance of the driver's options class (``DriverInfo.options``). ``prepared`` is the
    value of the driver's ``DriverInfo.prepare_backup`` for this backup, or None (the
    driver has none, or the backup was started without it: a library call).
    """

    driver: str
    url: DatabaseURL
    format: str
    artifacts: ArtifactSink
    scratch_dir: Path
    options: OptionsT
    prepared: object = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class DumpResult:
    """What a driver reports about a dump; recorded in the manifest.

    ``row_counts`` maps each table (schema-qualified where the engine has schemas) to the
    number of rows in the snapshot. ``details`` holds driver-specific facts (JSON values).
    """

    engine: str
    engine_version: str
    database: str
    row_counts: dict[str, int]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BackupFacts:
    """What a backup recorded, as far as a driver needs it to restore or inspect it."""

    id: str
    format: str
    engine_version: str
    database: str
    row_counts: Mapping[str, int]
    details: Mapping[str, Any]


class MigrationDialect(Protocol):
    """What migrations need from an engine; the core does the rest (see ``dbkeeper.migrations``).

    Every method receives a SQLAlchemy connection in autocommit mode, dedicated to the
    migration run: the core sends ``COMMIT``/``ROLLBACK`` itself.

    Two capabilities are optional, each a protocol of its own that the core checks with
    ``isinstance``: :class:`HistorySchemaDialect` and :class:`FingerprintDialect`.
    """

    transactional_ddl: bool
    """Whether DDL can be rolled back (SQLite, PostgreSQL: yes; MySQL/MariaDB: no)."""

    supports_no_transaction: bool
    """Whether ``-- dbkeeper: no-transaction`` migrations can run safely on this engine."""

    def split(self, script: str) -> list[str]:
        """Split a migration part into the statements to execute one by one, in order."""
        ...

    def lock(self, conn: Connection, timeout: float) -> AbstractContextManager[None]:
        """Hold the engine's migration lock on *conn* for the block.

        ``pg_advisory_lock``, ``GET_LOCK``: a lock that dies with the session. Raise
        :class:`dbkeeper.migrations.MigrationError` when *timeout* seconds pass first.
        Engines whose write lock is per transaction (SQLite) may take nothing here.
        """
        ...

    def begin(self, conn: Connection, timeout: float) -> None:
        """Open the transaction one migration runs in, holding the write lock.

        ``BEGIN IMMEDIATE`` on SQLite; raise MigrationError after *timeout* seconds.
        """
        ...


@runtime_checkable
class HistorySchemaDialect(MigrationDialect, Protocol):
    """A dialect that names the schema the ``_migrations`` table lives in.

    For engines whose name lookup follows a search path that migrations can change
    (PostgreSQL): the core qualifies the history table with ``history_schema`` whatever a
    migration does to the search path.
    """

    history_schema: str
    """The schema of the ``_migrations`` table (``public``)."""


@runtime_checkable
class FingerprintDialect(MigrationDialect, Protocol):
    """A dialect that can digest the schema, so that journaled migrations can be settled.

    The journal stores the fingerprint before each statement, so that a run killed inside
    a statement can be settled by the next run: an unchanged fingerprint means the
    statement did not take effect.
    """

    def schema_fingerprint(self, conn: Connection) -> str:
        """A digest of the schema: tables, columns, indexes, views, routines, triggers."""
        ...
