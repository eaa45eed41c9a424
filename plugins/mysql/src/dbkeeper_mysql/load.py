"""Running SQL scripts against the server: the ``mariadb`` client, or PyMySQL without it.

Both take a reader (verified artifacts, see :mod:`dbkeeper_mysql.streams`) and a database
to run it in, and stop at the first failing statement with a one-line error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dbkeeper.errors import DatabaseError
from dbkeeper.pipeline import Readable
from dbkeeper.tools import stream_in
from dbkeeper_mysql.server import ServerTarget, describe
from dbkeeper_mysql.sqltext import (
    SANDBOX,
    RowCounter,
    delimiter_command,
    is_comment_or_blank,
    parse_insert,
    statement_complete,
    whole_lines,
)


class Loader(Protocol):
    """Something that runs an SQL script in a database."""

    name: str

    def load(self, database: str, script: Readable) -> None:
        """Run *script* in *database*; raise DatabaseError at the first failure."""
        ...


@dataclass(frozen=True)
class ClientLoader:
    """The ``mariadb`` (or ``mysql``) client, fed through :func:`dbkeeper.tools.stream_in`.

    The connection comes from a private option file read with ``--defaults-file``, so the
    user's own option files cannot change how the script is read.
    """

    tool: str
    option_file: Path

    @property
    def name(self) -> str:
        """The client's file name."""
        return Path(self.tool).name

    def load(self, database: str, script: Readable) -> None:
        """Stream *script* into the client connected to *database*."""
        argv = [self.tool, f"--defaults-file={self.option_file}", "--max-allowed-packet=1G", f"--database={database}"]
        stream_in(argv, script)


@dataclass(frozen=True)
class PythonLoader:
    """Statements sent one by one over PyMySQL, cut as the ``mariadb`` client cuts them."""

    target: ServerTarget
    name: str = "PyMySQL"

    def load(self, database: str, script: Readable) -> None:
        """Run each statement of *script* in *database*."""
        import pymysql

        with closing(self.target.connect(database)) as conn:
            for statement in statements(script.read):
                try:
                    conn.query(statement)
                except pymysql.MySQLError as exc:
                    preview = " ".join(statement[:80].decode("utf-8", "replace").split())
                    raise DatabaseError(f"{describe(exc)} (in: {preview} …)") from None


def statements(read: Callable[[int], bytes]) -> Iterator[bytes]:
    """The statements of a ``mariadb-dump``-style script, without their delimiters.

    Comment lines and client commands (``DELIMITER``, the sandbox line) are handled here,
    as the client handles them; INSERTs are followed with :class:`RowCounter`, other
    statements with a full scan for quotes and comments.
    """
    delimiter = b";"
    lines: list[bytes] = []
    insert: RowCounter | None = None
    for line in whole_lines(read):
        if insert is not None:
            lines.append(line)
            insert.feed(line)
            if insert.ended():
                yield b"".join(lines).rstrip()[:-1]
                lines, insert = [], None
            continue
        if not lines:
            if is_comment_or_blank(line) or line.startswith(SANDBOX):
                continue
            if (new_delimiter := delimiter_command(line)) is not None:
                delimiter = new_delimiter
                continue
            if delimiter == b";" and (parsed := parse_insert(line)) is not None:
                insert = RowCounter()
                insert.feed(line[parsed[1] :])
                if insert.ended():
                    yield line.rstrip()[:-1]
                    insert = None
                else:
                    lines = [line]
                continue
        lines.append(line)
        if line.rstrip().endswith(delimiter):
            text = b"".join(lines)
            if statement_complete(text, delimiter):
                yield text.rstrip()[: -len(delimiter)].rstrip()
                lines = []
    if lines:
        raise DatabaseError("the SQL script ends inside a statement")
