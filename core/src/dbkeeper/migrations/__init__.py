"""Schema migrations: tracked, checksummed, dependency-ordered, exactly once, never half-applied.

The core owns discovery, ordering, checksums, history, the locking protocol and recovery;
each driver supplies a :class:`~dbkeeper.plugin.contract.MigrationDialect` through the
``dbkeeper_migrate`` hook. See ``docs/migrations.md`` for the file format.
"""

from dbkeeper.errors import MigrationError
from dbkeeper.migrations.files import Migration, create_migration
from dbkeeper.migrations.manager import (
    MigrationManager,
    MigrationStatus,
    apply_migration,
    rollback_migration,
    run_migrations,
)
from dbkeeper.migrations.runner import MigrationResult

__all__ = [
    "Migration",
    "MigrationError",
    "MigrationManager",
    "MigrationResult",
    "MigrationStatus",
    "apply_migration",
    "create_migration",
    "rollback_migration",
    "run_migrations",
]
