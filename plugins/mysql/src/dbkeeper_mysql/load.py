"""Running SQL scripts against the server: the ``mariadb`` client, or PyMySQL without it.

Both take a reader (verified artifacts, see :mod:`dbkeeper_mysql.streams`) and a database
to run it in, and stop at the first failing statement with a one-line error.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Protocol

from dbkeeper.plugin import CHUNK_SIZE, DatabaseError, Readable, error_line, stream_in
from dbkeeper_mysql.server import ServerTarget
from dbkeeper_mysql.sqltext import (
    SANDBOX,
    ScriptScanner,
    delimiter_command,
    is_comment_or_blank,
    statement_complete,
)


class Loader(Protocol):
    """Something that runs an SQL script in a database."""

    def load(self, database: str, script: Readable) -> None:
        """Run *script* in *database*; raise DatabaseError at the first failure."""
        ...


@dataclass(frozen=True)
class ClientLoader:
    """The ``mariadb`` (or ``mysql``) client, fed through :func:`dbkeeper.plugin.stream_in`.

    The connection comes from a private option file read with ``--defaults-file``, so the
    user's own option files cannot change how the script is read.
    """

    tool: str
    option_file: str
    stall_timeout: float | None = None
    """Stop the client when nothing passes through it for this long (the URL's ``read_timeout``)."""

    def load(self, database: str, script: Readable) -> None:
        """Stream *script* into the client connected to *database*."""
        argv = [self.tool, f"--defaults-file={self.option_file}", "--max-allowed-packet=1G", f"--database={database}"]
        stream_in(argv, script, stall_timeout=self.stall_timeout)


@dataclass(frozen=True)
class PythonLoader:
    """Statements sent one by one over PyMySQL, cut as the ``mariadb`` client cuts them."""

    target: ServerTarget

    def load(self, database: str, script: Readable) -> None:
        """Run each statement of *script* in *database*."""
        import pymysql

        with closing(self.target.connect(database)) as conn:
            conn.query(f"SET SESSION lock_wait_timeout = {self.target.timeouts.lock_wait}")
            for statement in statements(script.read):
                try:
                    conn.query(statement)
                except pymysql.MySQLError as exc:
                    preview = " ".join(statement[:80].decode("utf-8", "replace").split())
                    raise DatabaseError(f"{error_line(exc)} (in: {preview} …)") from None


def statements(read: Callable[[int], bytes]) -> Iterator[bytes]:
    """The statements of a ``mariadb-dump``-style script, without their delimiters.

    Comment lines and client commands (``DELIMITER``, the sandbox line) are handled here,
    as the client handles them; INSERTs come whole from :class:`ScriptScanner`, other
    statements are cut with a full scan for quotes and comments.
    """
    scanner = ScriptScanner()
    delimiter = b";"
    lines: list[bytes] = []
    insert: list[bytes] = []
    chunks = iter(lambda: read(CHUNK_SIZE), b"")
    for events in itertools.chain(map(scanner.feed, chunks), [scanner.end()]):
        for event in events:
            if event.kind in ("head", "values"):
                insert.append(event.data)
            elif event.kind == "end":
                yield b"".join(insert).rstrip()[:-1]
                insert = []
            elif not lines and (is_comment_or_blank(event.data) or event.data.startswith(SANDBOX)):
                continue
            elif not lines and (new_delimiter := delimiter_command(event.data)) is not None:
                delimiter = new_delimiter
            else:
                lines.append(event.data)
                if event.data.rstrip().endswith(delimiter):
                    text = b"".join(lines)
                    if statement_complete(text, delimiter):
                        yield text.rstrip()[: -len(delimiter)].rstrip()
                        lines = []
            scanner.inserts_allowed = not lines and delimiter == b";"
    if lines or insert:
        raise DatabaseError("the SQL script ends inside a statement")
