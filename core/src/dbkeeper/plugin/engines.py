"""What a driver is asked for a SQLAlchemy engine or a migration dialect of a URL.

Only the commands that work through SQLAlchemy (migrations, schema, monitoring, drills) send
these requests, so a backup does not create them: ``dbkeeper.plugin`` imports this module on
first use of one of its names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbkeeper.connections.urls import DatabaseURL


@dataclass(frozen=True)
class ConnectRequest:
    """Asks a driver for a SQLAlchemy engine for ``url``.

    ``create`` is true when the caller may create the database (a restore target);
    otherwise a missing database is an error (:class:`dbkeeper.errors.DatabaseNotFoundError`).
    """

    driver: str
    url: DatabaseURL
    create: bool = False


@dataclass(frozen=True)
class MigrateRequest:
    """Asks a driver for the engine-specific half of migrations for ``url``."""

    driver: str
    url: DatabaseURL
