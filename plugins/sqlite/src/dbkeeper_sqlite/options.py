"""The options of the SQLite driver, declared once: the CLI, dbkeeper.toml and the driver read them."""

from __future__ import annotations

from dataclasses import dataclass

from dbkeeper.plugin import DriverOptions, option


@dataclass(frozen=True)
class SqliteOptions(DriverOptions):
    """What ``backup`` may ask of the SQLite driver."""

    check: bool = option(
        False,
        help="Check the source's integrity too (PRAGMA quick_check) and refuse a damaged one.",
        operations=("backup",),
    )
