"""The errors dbkeeper raises on purpose.

Every message is one line that says what went wrong and what to do about it; the CLI
prints it as ``error: <message>`` and exits with status 1, without a traceback unless
``--debug`` is given. Anything that is not a :class:`DbkeeperError` is a bug, except
:class:`Interrupted`, which is how Ctrl-C and SIGTERM end a command (exit status 130).

The whole hierarchy lives in this one module; plugins find the errors they may raise
re-exported by :mod:`dbkeeper.plugin`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol


class DbkeeperError(Exception):
    """Base class: a failure the user can act on, described in one line."""


class ConfigError(DbkeeperError):
    """The configuration file, an environment variable or a connection name is wrong."""


class InvalidURLError(DbkeeperError):
    """A database URL cannot be parsed."""


class PluginError(DbkeeperError):
    """A plugin is missing, broken, or conflicts with another."""


class DriverNotFoundError(PluginError):
    """No installed plugin provides a driver for a URL scheme."""


class StageNotFoundError(PluginError):
    """A pipeline stage named by a command or a manifest is not installed."""


class PluginConflictError(PluginError):
    """Two plugins claim the same driver, URL scheme or stage name."""


class UnsupportedOperationError(PluginError):
    """The driver selected for a URL does not implement an operation."""


class DatabaseError(DbkeeperError):
    """The database refused or failed an operation (connection, query, dump or restore)."""


class DatabaseNotFoundError(DatabaseError):
    """The database a URL names does not exist."""


class TargetNotEmptyError(DatabaseError):
    """A restore target already holds data and ``force`` was not given."""


class BackupError(DbkeeperError):
    """A backup cannot be found, read, written or deleted."""


class PruneOutcome(Protocol):
    """What :class:`PruneError` needs of a prune's plan (``dbkeeper.backups.manager.PrunePlan``)."""

    @property
    def failed(self) -> Mapping[str, str]:
        """The ids of the backups that could not be deleted, each with the reason."""
        ...


class PruneError(BackupError):
    """Some deletions failed; ``plan.failed`` says which and why, the rest were done."""

    def __init__(self, plan: PruneOutcome) -> None:
        first_id, first_error = next(iter(plan.failed.items()))
        more = f" (and {len(plan.failed) - 1} more)" if len(plan.failed) > 1 else ""
        super().__init__(f"prune could not delete {first_id}: {first_error}{more}")
        self.plan = plan


class BackupNotFoundError(BackupError):
    """No complete backup matches an id."""


class ManifestError(BackupError):
    """A manifest is unreadable, of an unknown schema version, or was edited."""


class IntegrityError(BackupError):
    """Stored bytes or restored contents differ from what the manifest records."""


class KeyRequiredError(BackupError):
    """An encrypted backup was read without an identity, or with none that can decrypt it."""


class StageOptionError(DbkeeperError):
    """A stage was given an option it does not know or a value it cannot use."""


class MigrationError(DbkeeperError):
    """A migration file, the set of migrations, or the history is not in a state to proceed."""


class SchemaError(ConfigError):
    """A schema definition cannot be read or is invalid: one ``path: problem`` line per problem.

    ``problems`` holds each ``(path, message)`` pair; the path names the bad field with
    dots (``tables.orders.columns.total.type``), or the file for one that cannot be read.
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{path}: {message}" for path, message in self.problems))


class StorageError(DbkeeperError):
    """A storage refused an operation.

    A local file system (read-only, permission denied, a file where a directory belongs) or
    an object store (wrong credentials, a missing bucket, an unreachable endpoint).
    """


class DiskFullError(StorageError):
    """A local file system (or the user's quota on it) has no room left for a write."""


class Interrupted(KeyboardInterrupt):
    """A ``KeyboardInterrupt`` that knows what the interrupted operation left behind.

    Not a :class:`DbkeeperError`: an interruption is not a failure of the operation.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
