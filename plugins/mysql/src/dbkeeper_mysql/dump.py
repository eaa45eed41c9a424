"""Backing up one database: with ``mariadb-dump``/``mysqldump`` when installed, else in Python.

Which tools are used is chosen by the driver's ``tools`` option (``--tools``, ``tools`` in
``[drivers.mysql]`` of dbkeeper.toml, else the ``DBKEEPER_MYSQL_TOOLS`` environment
variable): ``auto`` (the default: the client tools when they are on ``PATH``, else PyMySQL),
``client`` (the client tools or an error) or ``python`` (never the client tools). Restores
follow the same choice.
"""

from __future__ import annotations

import contextlib
import functools
import re
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from dbkeeper.plugin import (
    DatabaseError,
    DatabaseNotFoundError,
    DatabaseURL,
    DbkeeperError,
    DumpRequest,
    DumpResult,
    HeadStart,
    PrepareRequest,
    WorkerPool,
    child_environment,
    find_tool,
    running,
    started_tool,
)
from dbkeeper_mysql.client_dump import StartedDump, dump_command, split, version_in_header
from dbkeeper_mysql.layout import Layout
from dbkeeper_mysql.options import MysqlOptions
from dbkeeper_mysql.server import (
    TIMED_OUT,
    ServerInfo,
    ServerTarget,
    admin_connection,
    tool_errors,
)

if TYPE_CHECKING:
    from dbkeeper_mysql.load import Loader

INSTALL_HINT = (
    "install the client tools (Debian: apt-get install mariadb-client), or use --tools python "
    "(or DBKEEPER_MYSQL_TOOLS=python)"
)
PYTHON_DUMPER = "dbkeeper-mysql pure-Python dumper"
DUMP_TOOLS = ("mariadb-dump", "mysqldump")
"""The dump tools in the order a MariaDB server prefers them (:attr:`ServerInfo.dump_tools`)."""
CLIENTS = ("mariadb", "mysql")
"""The command-line clients that can read the server's facts, in order of preference."""


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
    from dbkeeper_mysql.load import ClientLoader, PythonLoader  # restores only: a backup never loads SQL

    tool = _tool(info.client_tools, choice)
    if tool is None:
        yield PythonLoader(target)
        return
    with target.option_file() as options:
        yield ClientLoader(tool, options, target.timeouts.read)


def _probe_likely_dump_tool(choice: str) -> tuple[str, str] | None:
    """The first dump tool installed and its version (MariaDB's, unless a MySQL server wants ``mysqldump``)."""
    if choice == "python":
        return None
    path = next(filter(None, map(shutil.which, DUMP_TOOLS)), None)
    return (path, _tool_version(path)) if path else None


def _tool_version(tool: str) -> str:
    proc = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False, env=child_environment())
    return " ".join(proc.stdout.split()) or Path(tool).name


Facts = tuple[ServerInfo, tuple[str, str], set[str], list[str]]
"""The server, the database's character set and collation, its sequences and its non-transactional tables."""


def facts_query(database: str) -> str:
    """One query for everything :data:`Facts` holds, as rows tagged by what they are (ordered by tag, then name).

    The database name is a hex literal read as utf8mb4 (compared as a quoted string would be),
    so the same text runs through PyMySQL and the ``mariadb`` client.
    """
    name = f"_utf8mb4 X'{database.encode().hex()}'"
    return (
        "SELECT 'server', VERSION(), @@version_comment"
        " UNION ALL SELECT 'defaults', DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME"
        f" FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {name}"
        " UNION ALL SELECT 'sequence', TABLE_NAME, '' FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA = {name} AND TABLE_TYPE = 'SEQUENCE'"
        " UNION ALL SELECT 'non-transactional', t.TABLE_NAME, '' FROM information_schema.TABLES t"
        " JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE"
        f" WHERE t.TABLE_SCHEMA = {name} AND e.TRANSACTIONS <> 'YES'"
        " ORDER BY 1, 2"
    )


def _facts(target: ServerTarget, database: str, rows: list[tuple[str, str, str]]) -> Facts:
    """:data:`Facts` from the rows of :func:`facts_query`."""
    by_tag: dict[str, list[tuple[str, str]]] = {}
    for tag, first, second in rows:
        by_tag.setdefault(tag, []).append((first, second))
    ((version, comment),) = by_tag["server"]
    flavor = "mariadb" if "mariadb" in f"{version} {comment}".lower() else "mysql"
    if "defaults" not in by_tag:
        raise DatabaseNotFoundError(f"database {database!r} does not exist on {target}")
    sequences = {name for name, _ in by_tag.get("sequence", [])}
    non_transactional = [name for name, _ in by_tag.get("non-transactional", [])]
    return ServerInfo(flavor, version), by_tag["defaults"][0], sequences, non_transactional


def _rows_through_pymysql(target: ServerTarget, database: str) -> list[tuple[str, str, str]]:
    with admin_connection(target) as conn, conn.cursor() as cursor:
        cursor.execute(facts_query(database))
        return [(_decoded(tag), _decoded(first), _decoded(second)) for tag, first, second in cursor.fetchall()]


def _rows_through_client(
    client: str, target: ServerTarget, database: str, stops: WorkerPool | None
) -> list[tuple[str, str, str]]:
    """The rows of :func:`facts_query` read by the ``mariadb`` client (its ``--batch`` output, unescaped).

    *stops*, when given, can kill the client from another thread (see :func:`prepare`).
    """
    with target.option_file() as options, tool_errors(target):
        argv = [client, f"--defaults-file={options}", "--batch", "--skip-column-names", "-e", facts_query(database)]
        with (
            running(argv, stdout=True, stall_timeout=target.timeouts.read) as tool,
            stops.stoppable(tool.kill) if stops else contextlib.nullcontext(),
        ):
            output = tool.stdout.read().decode()
    rows = [[_unescape(field) for field in line.split("\t")] for line in output.split("\n") if line]
    return [(tag, first, second) for tag, first, second in rows]


def _decoded(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_BATCH_ESCAPES = {"\\\\": "\\", "\\n": "\n", "\\t": "\t", "\\0": "\0"}


def _unescape(field: str) -> str:
    """A value as the client's ``--batch`` mode escaped it (backslash, newline, tab, NUL), unescaped."""
    return re.sub(r"\\[\\nt0]", lambda match: _BATCH_ESCAPES[match.group()], field)


def _table_facts(target: ServerTarget, database: str, choice: str, stops: WorkerPool | None = None) -> Facts:
    """:data:`Facts`, read outside any snapshot by the ``mariadb`` client, else PyMySQL.

    The client takes a few milliseconds where importing PyMySQL takes 25. PyMySQL reads them
    when it is the chosen path or the only one, and when the client fails for another reason
    than a timeout: then it reports the failure as every other command does (the client
    words a refused connection differently); a timeout is not waited for twice, nor a
    client that *stops* killed.
    """
    client = None if choice == "python" else next(filter(None, map(shutil.which, CLIENTS)), None)
    if client is None:
        return _facts(target, database, _rows_through_pymysql(target, database))
    try:
        rows = _rows_through_client(client, target, database, stops)
    except DatabaseError as exc:
        if TIMED_OUT in str(exc) or (stops is not None and stops.stopped.is_set()):
            raise
        rows = _rows_through_pymysql(target, database)
    return _facts(target, database, rows)


class Ready(NamedTuple):
    """What a dump waits for first: the server and database, their facts; the dump tool, started or probed."""

    target: ServerTarget
    database: str
    facts: Facts
    probing: Future[tuple[str, str] | None] | None
    """The likely dump tool and its version: waited for only where its answer is needed. None beside an
    early ``mariadb-dump``, whose dump says its version (:func:`~dbkeeper_mysql.client_dump.version_in_header`)."""
    early: StartedDump | None
    """``mariadb-dump``, started before the facts in case they choose it (they do on MariaDB)."""

    def dump_tool_version(self, tool: str) -> str:
        """*tool*'s version line: the probe's, when it probed that tool."""
        probed = self.probing.result() if self.probing else None
        return probed[1] if probed and probed[0] == tool else _tool_version(tool)


def _ready(url: DatabaseURL, choice: str, early: StartedDump | None, stops: WorkerPool | None = None) -> Ready:
    """The facts of the database *url* names; without an *early* dump, the dump tool's version is probed beside.

    *choice*: the ``tools`` option.
    """
    target = ServerTarget.from_url(url)
    database = target.require_database()
    probing = None
    if early is None:
        side = ThreadPoolExecutor(max_workers=1)
        try:
            probing = side.submit(_probe_likely_dump_tool, choice)
        finally:
            side.shutdown(wait=False)  # the probe goes on beside the facts and the dump; its thread ends after it
    return Ready(target, database, _table_facts(target, database, choice, stops), probing, early)


def _early_dump(
    stack: contextlib.ExitStack, url: DatabaseURL, path: str | None, stops: WorkerPool | None
) -> StartedDump | None:
    """``mariadb-dump`` at *path* started now, with its option file, until *stack* closes (see :func:`prepare`).

    None without a *path* (see :func:`_early_tool`), or when it cannot start: the facts meet
    the same error (a URL without a database, say) and report it where they would have.
    *stops*, when given, can kill it from another thread.
    """
    if path is None:
        return None
    try:
        target = ServerTarget.from_url(url)
        options = stack.enter_context(target.option_file())
        argv = dump_command(path, options, target.require_database(), mysql_tool=False)
        return StartedDump(path, stack.enter_context(started_tool(argv, stops=stops)))
    except DbkeeperError:
        return None


def _early_tool(choice: str) -> str | None:
    """The ``mariadb-dump`` to start before the facts are read: installed, and the tools may be used."""
    return None if choice == "python" else shutil.which("mariadb-dump")


@contextlib.contextmanager
def opened(url: DatabaseURL, choice: str, dump_tool: str | None, stops: WorkerPool | None = None) -> Iterator[Ready]:
    """``mariadb-dump`` at *dump_tool* started, then the facts read, for the block (*choice*: ``tools``).

    An early dump the facts do not choose, or whose output is never read, is killed at the
    end of the block; when the facts fail, their error is the one raised.
    """
    with contextlib.ExitStack() as stack:
        early = _early_dump(stack, url, dump_tool, stops)
        yield _ready(url, choice, early, stops)


def prepare(request: PrepareRequest[MysqlOptions]) -> AbstractContextManager[HeadStart[Ready]]:
    """``mariadb-dump`` started and the facts read on a thread (else the tool probed) while the core sets up.

    On a MariaDB server ``mariadb-dump`` is the tool the facts choose: it starts first. The
    command does not wait for its start (``underway`` in :meth:`HeadStart.started`): begun
    from the arguments (:mod:`dbkeeper.cli.early`), the head start has the core's imports to
    run beside, and it is done well before the dump asks for it; waiting cost a backup 3 ms.
    """
    early = _early_tool(request.options.tools)
    return HeadStart.started(functools.partial(opened, request.url, request.options.tools, early))


def dump(request: DumpRequest[MysqlOptions]) -> DumpResult:
    """Back up the database the URL names into the layout's artifacts."""
    choice = request.options.tools
    head = request.prepared if isinstance(request.prepared, HeadStart) else None
    with head.taken() if head else opened(request.url, choice, _early_tool(choice)) as prepared:
        info, (charset, collation), sequences, non_transactional = prepared.facts
        layout, counts, dumper = _dumped(prepared, request)
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
        database=prepared.database,
        row_counts={part.name: counts.get(part.name, 0) for part in layout.tables if not part.sequence},
        details=details,
    )


def _dumped(prepared: Ready, request: DumpRequest[MysqlOptions]) -> tuple[Layout, dict[str, int], str]:
    """The layout, the row counts and the dumper's name, of a dump by the tool the facts choose or in Python."""
    info = prepared.facts[0]
    tool = _tool(info.dump_tools, request.options.tools)
    if tool:
        with tool_errors(prepared.target):
            return _client_dump(tool, prepared, request)
    from dbkeeper_mysql.pydump import PythonDumper  # only on this path: it imports importlib.metadata

    python = PythonDumper(prepared.target, prepared.database, info.version)
    python.dump(request.artifacts)
    return python.layout, python.row_counts, PYTHON_DUMPER


def _client_dump(tool: str, prepared: Ready, request: DumpRequest[MysqlOptions]) -> tuple[Layout, dict[str, int], str]:
    """The layout, row counts and version line of a dump by *tool*: the early ``mariadb-dump`` when the facts chose it.

    Another tool (a MySQL server's ``mysqldump``) starts once the early one is killed;
    ``mysqldump`` waits for its probe, as its options depend on its version.
    """
    early, target = prepared.early, prepared.target
    if early is not None and early.path == tool:
        dumped = split(early.tool, request, target.timeouts.read)
        version = version_in_header(tool, dumped.first_line) or prepared.dump_tool_version(tool)
        return dumped.layout, dumped.row_counts, version
    if early is not None:
        early.tool.kill()  # not the tool chosen: it would hold a snapshot on the server for nothing
    with target.option_file() as options:
        mysql_tool = Path(tool).name != "mariadb-dump" and "mariadb" not in prepared.dump_tool_version(tool).lower()
        argv = dump_command(tool, options, prepared.database, mysql_tool=mysql_tool)
        with started_tool(argv) as dumping:
            dumped = split(dumping, request, target.timeouts.read)
    return dumped.layout, dumped.row_counts, prepared.dump_tool_version(tool)
