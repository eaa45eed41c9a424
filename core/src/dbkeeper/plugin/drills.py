"""Restore drills: the engine's side of ``dbkeeper drill`` — a target to restore into, and its integrity check.

A drill restores a backup through the same code as ``dbkeeper restore``, then checks the
result. The core finds the backup, times the restore, compares row counts with the
manifest, runs the user's ``--check-sql`` queries and records the verdict; the driver's
:class:`DrillDialect` (from ``dbkeeper_drill``) provides what only the engine knows:

- :meth:`DrillDialect.target`: where to restore. Without ``request.into``, a throwaway of
  its own (SQLite: a temporary file; a server engine: a private server started from the
  locally installed binaries of the backup's major version, on a Unix socket in
  ``request.workdir``, no TCP port, as an unprivileged user when dbkeeper runs as root,
  under a :func:`~dbkeeper.plugin.start_watchdog` so that it dies with dbkeeper even on
  ``kill -9``). With ``request.into``, a new, uniquely named scratch database on that
  existing server, dropped afterwards — never touching any other database there.
- :meth:`DrillDialect.check_integrity`: the engine's own check of the restored database
  (SQLite ``PRAGMA integrity_check``, PostgreSQL ``amcheck`` on every B-tree index,
  MariaDB ``CHECK TABLE``).

A dialect whose check goes table by table may also be a :class:`CheckingWhileRestoring`:
the core then passes its :meth:`TableChecks.loaded` to the restore
(``RestoreRequest.table_loaded``), the restore calls it as each table is complete, and the
dialect checks that table on a connection of its own while the next one loads, so the
check costs the drill little more than the restore. The verdict is the same as
:meth:`DrillDialect.check_integrity`'s, over every table.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from dbkeeper.connections.urls import DatabaseURL
    from dbkeeper.plugin.contract import BackupFacts


@dataclass(frozen=True)
class DrillRequest:
    """Asks a driver for the engine's side of a drill of ``backup``.

    ``workdir`` is a private directory (0700, removed by the core afterwards — also after a
    ``kill -9``, by the core's own watchdog) for a throwaway server's files; a driver that
    runs its server as another user may make it traversable (0711) and give that user a
    directory inside. ``into`` is ``--into``: an existing server to create the scratch
    database on. ``keep`` is ``--keep``: leave the target running when the drill ends (and
    say how to reach and stop it in :class:`DrillTarget`).
    """

    driver: str
    backup: BackupFacts
    workdir: Path
    into: DatabaseURL | None = None
    keep: bool = False


@dataclass(frozen=True)
class DrillTarget:
    """Where the drill restores: a database that does not exist yet (or is empty).

    ``kind`` says what it is for the report (``throwaway PostgreSQL 15 server``, ``scratch
    database on db.internal``); ``connect`` and ``stop`` are the shell commands a person
    uses to reach it and to get rid of it, printed by ``--keep``. None of them holds a
    password.
    """

    url: DatabaseURL
    kind: str
    connect: str
    stop: str


@dataclass(frozen=True)
class IntegrityCheck:
    """One integrity check of the restored database: passed, failed, or skipped (with why)."""

    name: str
    ok: bool
    detail: str = ""
    skipped: bool = False


class DrillDialect(Protocol):
    """The engine's side of a restore drill (returned by ``dbkeeper_drill``)."""

    def target(self, request: DrillRequest) -> AbstractContextManager[DrillTarget]:
        """Bring up the drill's target and yield it; remove it on exit, whatever happened.

        Remove means: stop the throwaway server and delete its files, or drop the scratch
        database — unless ``request.keep`` and the block ended without an exception. When
        the engine's server binaries are missing, raise :class:`~dbkeeper.errors.DatabaseError`
        naming the package to install, or ``--into``. Waits are bounded.
        """
        ...

    def check_integrity(self, url: DatabaseURL) -> list[IntegrityCheck]:
        """The engine's integrity checks of the restored database at *url*, read only.

        A check the engine cannot make here (``amcheck`` not installed) is ``skipped`` with
        the reason in ``detail``.
        """
        ...


TableLoaded: TypeAlias = Callable[[str, str], None]
"""``RestoreRequest.table_loaded``: called by a restore with (database, table) once that table
holds all its rows, counted, in the database where it is now (a staging database before the
swap); the table does not change afterwards except by being moved into the target. Called
from the restore's worker threads; it must not block for long."""


class TableChecks(Protocol):
    """The integrity check of a drill, table by table while the restore runs (see :class:`CheckingWhileRestoring`)."""

    def loaded(self, database: str, table: str) -> None:
        """Check *table* of *database* soon, on a connection of the checker's own (a :data:`TableLoaded`)."""
        ...

    def checks(self) -> list[IntegrityCheck]:
        """After the restore: check every table of the restored database not checked yet, wait, and give the verdict.

        The same checks, names and details as :meth:`DrillDialect.check_integrity`.
        """
        ...


@runtime_checkable
class CheckingWhileRestoring(Protocol):
    """A :class:`DrillDialect` that checks each table as soon as the restore has loaded it (optional)."""

    def checking(self, url: DatabaseURL) -> AbstractContextManager[TableChecks]:
        """A checker of the database the drill restores into at *url*; stops its work on exit, whatever happened."""
        ...
