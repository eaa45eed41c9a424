"""Backing up one database: with ``mariadb-dump``/``mysqldump`` when installed, else in Python.

Which tools are used is chosen by the driver's ``tools`` option (``--tools``, ``tools`` in
``[drivers.mysql]`` of dbkeeper.toml, else the ``DBKEEPER_MYSQL_TOOLS`` environment
variable): ``auto`` (the default: the client tools when they are on ``PATH``, else PyMySQL),
``client`` (the client tools or an error) or ``python`` (never the client tools). Restores
follow the same choice.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dbkeeper.plugin import (
    DatabaseNotFoundError,
    DumpRequest,
    DumpResult,
    child_environment,
    find_tool,
    stream_out,
)
from dbkeeper_mysql.layout import Layout
from dbkeeper_mysql.load import ClientLoader, Loader, PythonLoader
from dbkeeper_mysql.options import MysqlOptions
from dbkeeper_mysql.pydump import PythonDumper
from dbkeeper_mysql.server import (
    ServerInfo,
    ServerTarget,
    admin_connection,
    database_defaults,
    server_info,
    tool_errors,
)
from dbkeeper_mysql.split import DumpSplitter

INSTALL_HINT = (
    "install the client tools (Debian: apt-get install mariadb-client), or use --tools python "
    "(or DBKEEPER_MYSQL_TOOLS=python)"
)
PYTHON_DUMPER = "dbkeeper-mysql pure-Python dumper"


def _tool(names: tuple[str, ...], choice: str) -> str | None:
    """The client tool to use, None for the Python path; an error if ``client`` and none is installed."""
    if choice == "python":
        return None
    if choice == "client":
        return find_tool(names, INSTALL_HINT)
    return next((path for name in names if (path := shutil.which(name))), None)


@contextlib.contextmanager
def loader_for(target: ServerTarget, info: ServerInfo, choice: str) -> Iterator[Loader]:
    """For the block: the ``mariadb`` client with its option file, or PyMySQL (*choice*: the ``tools`` option)."""
    tool = _tool(info.client_tools, choice)
    if tool is None:
        yield PythonLoader(target)
        return
    with target.option_file() as options:
        yield ClientLoader(tool, options, target.timeouts.read)


def _tool_version(tool: str) -> str:
    proc = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False, env=child_environment())
    return " ".join(proc.stdout.split()) or Path(tool).name


def _table_facts(target: ServerTarget, database: str) -> tuple[ServerInfo, tuple[str, str], set[str], list[str]]:
    """Server info, the database's defaults, its sequences, and its tables outside any snapshot."""
    with admin_connection(target) as conn, conn.cursor() as cursor:
        info = server_info(conn)
        defaults = database_defaults(conn, database)
        if defaults is None:
            raise DatabaseNotFoundError(f"database {database!r} does not exist on {target}")
        cursor.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'SEQUENCE'",
            (database,),
        )
        sequences = {name for (name,) in cursor.fetchall()}
        cursor.execute(
            "SELECT t.TABLE_NAME FROM information_schema.TABLES t JOIN information_schema.ENGINES e "
            "ON e.ENGINE = t.ENGINE WHERE t.TABLE_SCHEMA = %s AND e.TRANSACTIONS <> 'YES' ORDER BY t.TABLE_NAME",
            (database,),
        )
        non_transactional = [name for (name,) in cursor.fetchall()]
    return info, defaults, sequences, non_transactional


def dump(request: DumpRequest[MysqlOptions]) -> DumpResult:
    """Back up the database the URL names into the layout's artifacts."""
    choice = request.options.tools
    target = ServerTarget.from_url(request.url)
    database = target.require_database()
    info, (charset, collation), sequences, non_transactional = _table_facts(target, database)
    tool = _tool(info.dump_tools, choice)
    if tool:
        dumper = _tool_version(tool)
        with tool_errors(target):
            layout, counts = _client_dump(tool, dumper, target, database, request)
    else:
        python = PythonDumper(target, database, info.version)
        python.dump(request.artifacts)
        layout, counts, dumper = python.layout, python.row_counts, PYTHON_DUMPER
    for part in layout.tables:
        part.sequence = part.name in sequences
    details: dict[str, Any] = {
        "flavor": info.flavor,
        "server_version": info.version,
        "dumper": dumper,
        "character_set": charset,
        "collation": collation,
        "layout": layout.to_json(),
    }
    if non_transactional:
        details["non_transactional_tables"] = non_transactional
    return DumpResult(
        engine=info.flavor,
        engine_version=info.version,
        database=database,
        row_counts={part.name: counts.get(part.name, 0) for part in layout.tables if not part.sequence},
        details=details,
    )


def _client_dump(
    tool: str, tool_version: str, target: ServerTarget, database: str, request: DumpRequest[MysqlOptions]
) -> tuple[Layout, dict[str, int]]:
    """Stream ``mariadb-dump`` through the splitter."""
    with target.option_file() as options:
        return _run_client_dump(tool, tool_version, options, database, request, target.timeouts.read)


def _run_client_dump(
    tool: str, tool_version: str, options: str, database: str, request: DumpRequest[MysqlOptions], stall_timeout: float
) -> tuple[Layout, dict[str, int]]:
    """Stream ``mariadb-dump``, connected through the option file *options*, through the splitter.

    ``mariadb-dump`` has no timeout of its own: it is stopped when its output stalls for
    *stall_timeout* seconds (the URL's ``read_timeout``).
    """
    argv = [
        tool,
        f"--defaults-file={options}",
        "--single-transaction",
        "--routines",
        "--triggers",
        "--events",
        "--hex-blob",
        "--default-character-set=utf8mb4",
        "--no-tablespaces",
        "--max-allowed-packet=1G",
    ]
    if "mariadb" not in tool_version.lower():
        argv.append("--set-gtid-purged=OFF")  # MySQL's mysqldump: GTID state belongs to replication setups
    spool_path = request.scratch_dir / "objects.sql"
    with os.fdopen(os.open(spool_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), "w+b") as spool:
        splitter = DumpSplitter(request.artifacts, spool)
        try:
            stream_out([*argv, database], splitter, stall_timeout=stall_timeout)
            splitter.finish()
        except BaseException as exc:
            splitter.abandon(exc)
            raise
    return splitter.layout, splitter.row_counts
