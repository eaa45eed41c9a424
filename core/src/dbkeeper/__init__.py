"""dbkeeper: keep databases healthy — connections, queries and verified, streaming backups.

The Python API is importable from here; each name loads its module only when first used,
so ``dbkeeper --help`` stays fast::

    from dbkeeper import BackupManager, DatabaseManager

The package is grouped by capability: ``connections`` (URLs, configuration,
``DatabaseManager``), ``backups`` (``BackupManager``, the repository on disk, manifests,
retention, the pipeline and its stages), ``migrations`` (``MigrationManager``), ``cli``,
``errors`` (every error dbkeeper raises), ``system`` (file systems and signals),
``schema`` (portable schema definitions), and ``plugin``, the one module plugin authors
import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dbkeeper.backups.manager import BackupManager, VerifyReport, backup_database
    from dbkeeper.backups.manifest import Manifest
    from dbkeeper.connections.config import load_config
    from dbkeeper.connections.database import Connection, DatabaseManager, QueryResult, RowStream
    from dbkeeper.connections.urls import DatabaseURL
    from dbkeeper.errors import DbkeeperError
    from dbkeeper.migrations import MigrationManager
    from dbkeeper.monitoring import check_health, optimize_database
    from dbkeeper.plugin.hookspecs import hookimpl
    from dbkeeper.plugin.manager import load_plugins
    from dbkeeper.schema import (
        SchemaDefinition,
        SchemaDiff,
        SchemaGenerator,
        diff_schemas,
        dump_definition,
        generate_schema,
        load_definition,
        render_diff,
        validate_definition,
    )

_LAZY = {
    "BackupManager": "dbkeeper.backups.manager",
    "backup_database": "dbkeeper.backups.manager",
    "VerifyReport": "dbkeeper.backups.manager",
    "DatabaseManager": "dbkeeper.connections.database",
    "Connection": "dbkeeper.connections.database",
    "QueryResult": "dbkeeper.connections.database",
    "RowStream": "dbkeeper.connections.database",
    "Manifest": "dbkeeper.backups.manifest",
    "MigrationManager": "dbkeeper.migrations",
    "check_health": "dbkeeper.monitoring",
    "optimize_database": "dbkeeper.monitoring",
    "load_config": "dbkeeper.connections.config",
    "load_plugins": "dbkeeper.plugin.manager",
    "DatabaseURL": "dbkeeper.connections.urls",
    "DbkeeperError": "dbkeeper.errors",
    "hookimpl": "dbkeeper.plugin.hookspecs",
    "SchemaDefinition": "dbkeeper.schema",
    "SchemaGenerator": "dbkeeper.schema",
    "generate_schema": "dbkeeper.schema",
    "load_definition": "dbkeeper.schema",
    "dump_definition": "dbkeeper.schema",
    "validate_definition": "dbkeeper.schema",
    "SchemaDiff": "dbkeeper.schema",
    "diff_schemas": "dbkeeper.schema",
    "render_diff": "dbkeeper.schema",
}

__all__ = [
    "BackupManager",
    "Connection",
    "DatabaseManager",
    "DatabaseURL",
    "DbkeeperError",
    "Manifest",
    "MigrationManager",
    "QueryResult",
    "RowStream",
    "SchemaDefinition",
    "SchemaDiff",
    "SchemaGenerator",
    "VerifyReport",
    "backup_database",
    "check_health",
    "diff_schemas",
    "dump_definition",
    "generate_schema",
    "hookimpl",
    "load_config",
    "load_definition",
    "load_plugins",
    "optimize_database",
    "render_diff",
    "validate_definition",
]


def __getattr__(name: str) -> Any:
    """Import the module that defines *name* the first time it is used (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dbkeeper' has no attribute {name!r}")
