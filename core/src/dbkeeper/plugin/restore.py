"""What a driver receives and returns to restore a backup, or to read one whole (``verify --deep``).

Only ``restore``, ``drill`` and ``verify --deep`` use these types, so a backup does not create
them: ``dbkeeper.plugin`` imports this module on first use of one of its names.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic

from dbkeeper.plugin.contract import OptionsT
from dbkeeper.system.interrupts import CommitPoint

if TYPE_CHECKING:
    from pathlib import Path

    from dbkeeper.connections.urls import DatabaseURL
    from dbkeeper.plugin.contract import ArtifactSource, BackupFacts


@dataclass(frozen=True)
class RestoreRequest(Generic[OptionsT]):
    """Asks a driver to restore ``backup`` from ``artifacts`` into ``url``.

    The target must never be left half-written: write beside it and swap, or restore in
    one transaction. An existing target holding data is refused with
    :class:`dbkeeper.errors.TargetNotEmptyError` unless ``force`` is true.

    Wrap the step that makes the target the restored database (the ``COMMIT``, the
    rename) in :meth:`committing`, so that an interruption says what is true.
    ``options`` is an instance of the driver's options class (``DriverInfo.options``).
    ``table_loaded``, when given (by a drill whose dialect checks tables while the restore
    runs, see :class:`~dbkeeper.plugin.drills.CheckingWhileRestoring`), is called with
    (database, table) as each table is complete; a driver may ignore it (the drill then
    checks every table afterwards).
    """

    driver: str
    url: DatabaseURL
    backup: BackupFacts
    artifacts: ArtifactSource
    scratch_dir: Path
    options: OptionsT
    force: bool = False
    table_loaded: Callable[[str, str], None] | None = field(default=None, compare=False, repr=False)
    commit_point: CommitPoint = field(default_factory=CommitPoint, compare=False, repr=False)

    def committing(self, *, final: bool = True) -> AbstractContextManager[None]:
        """The block that makes the target the restored database; see :meth:`CommitPoint.committing`.

        SIGINT/SIGTERM wait for the block to end; after it succeeds, an interruption reports
        that the target holds the backup (``final=False``: one of several commits, the target
        is partly restored). A driver that takes its changes back calls ``commit_point.undone()``.
        """
        return self.commit_point.committing(final=final)


@dataclass(frozen=True)
class RestoreResult:
    """What a driver reports after a restore: the database it wrote and its row counts.

    ``tables`` names the tables a selective restore (``tables``/``schemas`` options)
    brought back, as the manifest's row counts name them; the core then compares only
    those. ``None`` means the whole backup was restored and every table is compared.
    """

    database: str
    row_counts: dict[str, int]
    tables: list[str] | None = None


@dataclass(frozen=True)
class InspectRequest:
    """Asks a driver to read a whole backup and report what is inside (``verify --deep``)."""

    driver: str
    backup: BackupFacts
    artifacts: ArtifactSource
    scratch_dir: Path


@dataclass(frozen=True)
class BackupContents:
    """What a driver found inside a backup: row counts per table and any problems.

    ``problems`` are one-line descriptions (a failed integrity check, an unreadable
    object); the core adds any difference from the manifest's row counts. ``row_counts``
    is None when the contents are too damaged to count.
    """

    row_counts: dict[str, int] | None
    problems: list[str] = field(default_factory=list)
