"""The options of the MySQL/MariaDB driver, declared once: the CLI, dbkeeper.toml and the driver read them."""

from __future__ import annotations

from dataclasses import dataclass

from dbkeeper.plugin import DriverOptions, option

TOOLS_ENV = "DBKEEPER_MYSQL_TOOLS"
"""The environment variable read for ``tools`` when neither ``--tools`` nor dbkeeper.toml sets it."""


@dataclass(frozen=True)
class MysqlOptions(DriverOptions):
    """What ``backup``, ``restore`` and ``drill`` may ask of the MySQL driver."""

    jobs: int = option(
        2,
        help="Load this many tables at once (default 2; MariaDB loads each on about one core).",
        operations=("restore", "drill"),
        minimum=1,
    )
    tables: tuple[str, ...] = option(
        (), help="Restore only this table (repeatable).", operations=("restore",), flag="--table"
    )
    tools: str = option(
        "auto",
        help="Dump and load with: auto (the client tools when on PATH, else Python), client or python.",
        operations=("backup", "restore", "drill"),
        choices=("auto", "client", "python"),
        env=TOOLS_ENV,
    )
