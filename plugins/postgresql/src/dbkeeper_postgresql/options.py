"""The options of the PostgreSQL driver, declared once: the CLI, dbkeeper.toml and the driver read them."""

from __future__ import annotations

from dataclasses import dataclass

from dbkeeper.plugin import DriverOptions, option


@dataclass(frozen=True)
class PostgresqlOptions(DriverOptions):
    """What ``backup``, ``restore`` and ``drill`` may ask of the PostgreSQL driver."""

    jobs: int = option(
        1, help="Work on this many tables at once.", operations=("backup", "restore", "drill"), minimum=1
    )
    tables: tuple[str, ...] = option(
        (), help="Restore only this table (repeatable).", operations=("restore",), flag="--table"
    )
    schemas: tuple[str, ...] = option(
        (), help="Restore only this schema (repeatable).", operations=("restore",), flag="--schema"
    )

    @property
    def artifacts_at_once(self) -> int:
        """A backup writes ``jobs`` tables' artifacts at once."""
        return self.jobs
