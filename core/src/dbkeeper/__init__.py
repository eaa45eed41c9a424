"""dbkeeper: keep databases healthy — connections, queries and verified, streaming backups.

The public API is importable from here; heavy modules load only when first used::

    from dbkeeper import BackupManager, DatabaseManager, hookimpl
"""

from __future__ import annotations

import importlib
from typing import Any

from dbkeeper.hookspecs import hookimpl

_LAZY = {
    "BackupManager": "dbkeeper.backups.manager",
    "backup_database": "dbkeeper.backups.manager",
    "VerifyReport": "dbkeeper.backups.manager",
    "DatabaseManager": "dbkeeper.connections.database",
    "Connection": "dbkeeper.connections.database",
    "QueryResult": "dbkeeper.connections.database",
    "RowStream": "dbkeeper.connections.database",
    "Manifest": "dbkeeper.backups.manifest",
    "load_config": "dbkeeper.connections.config",
    "load_plugins": "dbkeeper.plugins",
    "DatabaseURL": "dbkeeper.connections.urls",
    "DbkeeperError": "dbkeeper.errors",
}

__all__ = ["hookimpl", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dbkeeper' has no attribute {name!r}")
