"""Running ``mariadb-dump``/``mysqldump``: started (as early as the backup allows), then read through the splitter.

A started dump tool writes into its pipe until the pipe is full and waits there: its
output is read only when :func:`split` attaches the splitter, which may come later (a
backup starts ``mariadb-dump`` before its facts query, see :func:`dbkeeper_mysql.dump.prepare`).
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from dbkeeper.plugin import DumpRequest, Tool, copy_output
from dbkeeper_mysql.options import MysqlOptions
from dbkeeper_mysql.split import DumpSplitter


class StartedDump(NamedTuple):
    """A dump tool started before the backup's facts chose their tool: its path and the running tool."""

    path: str
    tool: Tool


def dump_command(tool: str, options: str, database: str, *, mysql_tool: bool) -> list[str]:
    """The dump tool's command line for *database*, connected through the option file *options*."""
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
    if mysql_tool:
        argv.append("--set-gtid-purged=OFF")  # MySQL's mysqldump: GTID state belongs to replication setups
    return [*argv, database]


def split(tool: Tool, request: DumpRequest[MysqlOptions], stall_timeout: float) -> DumpSplitter:
    """Stream the running dump tool's output through the splitter into the layout's artifacts.

    The tool has no timeout of its own: from now on, it is stopped when its output stalls
    for *stall_timeout* seconds (the URL's ``read_timeout``). Watched from here, not from
    its start: a dump started early waits on its full pipe until now without stalling.
    """
    tool.watch(stall_timeout)
    spool_path = request.scratch_dir / "objects.sql"
    with os.fdopen(os.open(spool_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), "w+b") as spool:
        splitter = DumpSplitter(request.artifacts, spool)
        try:
            copy_output(tool, splitter)
            tool.wait()  # its failure, not what the splitter makes of a cut-off dump
            splitter.finish()
        except BaseException as exc:
            splitter.abandon(exc)
            raise
    return splitter


_VERSION_IN_HEADER = re.compile(r"-- MariaDB dump (\S+) +Distrib (.+)")


def version_in_header(tool: str, first_line: bytes | None) -> str | None:
    """What ``TOOL --version`` prints, read from the first line of its dump; None unless it is MariaDB's.

    MariaDB's ``mariadb-dump`` writes both from the same values (``-- MariaDB dump 10.19  Distrib
    10.11.6-MariaDB, for debian-linux-gnu (x86_64)``, ``mariadb-dump  Ver 10.19 Distrib …``): the
    dump started early needs no ``--version`` run beside it.
    """
    match = _VERSION_IN_HEADER.fullmatch((first_line or b"").decode(errors="replace").strip())
    return f"{os.path.basename(tool)} Ver {match[1]} Distrib {match[2]}" if match else None
