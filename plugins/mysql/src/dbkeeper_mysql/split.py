"""Cutting ``mariadb-dump`` output into the layout's artifacts as it streams, counting rows.

``mariadb-dump`` (and MySQL's ``mysqldump``) mark every part of a dump with a comment
block; a table's part starts at ``-- Table structure for table `t```, its triggers at the
first ``/*!50003 SET @saved_cs_client …`` after its rows, and views, routines and events
come under their own headings. Headings are only recognised between statements and
outside ``DELIMITER`` blocks, so text inside a routine cannot move a boundary. Rows are
counted from the INSERTs themselves: the counts describe exactly the snapshot the dump
holds.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from typing import BinaryIO

from dbkeeper.plugin import CHUNK_SIZE, ArtifactSink, ArtifactWriter, DatabaseError
from dbkeeper_mysql.layout import Layout, TablePart, triggers_artifact
from dbkeeper_mysql.sqltext import (
    SANDBOX,
    Event,
    ScriptScanner,
    delimiter_command,
    is_comment_or_blank,
    shown,
    statement_complete,
)

TABLE_TITLE = b"-- Table structure for table `"
_TABLE_TITLE_DONE = re.compile(rb"-- Table structure for table `((?:[^`]|``)*)`\n", re.DOTALL)
_TABLE_TITLE_OPEN = re.compile(rb"-- Table structure for table `(?:[^`]|``)*", re.DOTALL)
OBJECT_TITLES = (
    b"-- Temporary table structure for view ",
    b"-- Temporary view structure for view ",
    b"-- Dumping events for database ",
    b"-- Dumping routines for database ",
    b"-- Final view structure for view ",
)
TRIGGERS_START = b"/*!50003 SET @saved_cs_client"
FOOTER_START = b"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;"
COMPLETED = b"-- Dump completed"
MAX_TITLE_LINES = 8


class DumpFormatError(DatabaseError):
    """The dump tool wrote something this driver does not know how to cut."""


class DumpSplitter:
    """An artifact writer for a dump tool's stdout: cuts the script into the layout's parts.

    The header and each table's part go straight into their artifacts; views, routines
    and events go to *spool* (a scratch file) and become the last artifact in
    :meth:`finish`, since ``mysqldump`` may write view placeholders between tables.
    """

    def __init__(self, artifacts: ArtifactSink, spool: BinaryIO) -> None:
        self.layout = Layout()
        self.row_counts: dict[str, int] = {}
        self._artifacts = artifacts
        self._spool = spool
        self._stack = contextlib.ExitStack()
        self._out: ArtifactWriter | BinaryIO = self._stack.enter_context(artifacts.open(self.layout.header))
        self._part: TablePart | None = None
        self._in_triggers = False
        self._in_objects = False
        self._scanner = ScriptScanner()
        self._statement: list[bytes] = []
        self._pending: list[bytes] = []
        self._title: list[bytes] = []
        self._delimiter = b";"
        self._completed = False
        self.first_line: bytes | None = None
        """The dump's first line (``-- MariaDB dump 10.19  Distrib …``), once written."""

    # -- the writer side -------------------------------------------------------------

    def write(self, data: bytes, /) -> int:
        """Take the next chunk of the dump."""
        for event in self._scanner.feed(data):
            self._event(event)
        return len(data)

    def finish(self) -> None:
        """Check the dump ended cleanly and commit the last artifacts."""
        for event in self._scanner.end():
            self._event(event)
        if self._statement or self._scanner.in_insert or self._title:
            raise DumpFormatError("the dump ends inside a statement: the dump tool stopped early")
        if not self._completed:
            raise DumpFormatError("the dump has no '-- Dump completed' line: the dump tool stopped early")
        self._flush_pending()
        self._stack.close()
        self._spool.seek(0)
        with self._artifacts.open(self.layout.objects) as out:
            shutil.copyfileobj(self._spool, out, CHUNK_SIZE)

    def abandon(self, exc: BaseException) -> None:
        """Discard the artifact being written (the dump failed)."""
        self._stack.__exit__(type(exc), exc, exc.__traceback__)

    # -- lines and INSERTs -----------------------------------------------------------

    def _event(self, event: Event) -> None:
        if self.first_line is None and event.kind == "line":
            self.first_line = event.data
        if event.kind == "line":
            self._whole_line(event.data)
        elif event.kind == "head":
            self._start_insert(event.table, event.data)
        elif event.kind == "values":
            self._emit(event.data)
        else:
            assert self._part is not None
            self.row_counts[self._part.name] = self.row_counts.get(self._part.name, 0) + event.rows
        self._scanner.inserts_allowed = not self._statement and not self._title

    def _start_insert(self, table: str, head: bytes) -> None:
        if self._part is None or self._in_triggers:
            raise DumpFormatError(f"unexpected INSERT in the dump: {head[:80]!r}")
        if table != self._part.name:
            raise DumpFormatError(f"an INSERT into {shown(table)} inside the part of table {shown(self._part.name)}")
        self._flush_pending()
        self._emit(head)

    def _whole_line(self, line: bytes) -> None:
        if self._title:
            self._title.append(line)
            self._read_table_title()
            return
        if not self._statement:
            if is_comment_or_blank(line):
                self._comment(line)
                return
            if line.startswith(SANDBOX):
                self._flush_pending()
                self._emit(line)
                return
            if (delimiter := delimiter_command(line)) is not None:
                self._flush_pending()
                self._emit(line)
                self._delimiter = delimiter
                return
            if self._delimiter == b";":
                if self._part is not None and not self._in_triggers and line.startswith(TRIGGERS_START):
                    self._start_triggers()
                elif line.startswith(FOOTER_START):
                    self._start_objects()
        self._flush_pending()
        self._emit(line)
        self._statement.append(line)
        if line.rstrip().endswith(self._delimiter) and statement_complete(b"".join(self._statement), self._delimiter):
            self._statement = []

    def _comment(self, line: bytes) -> None:
        if self._delimiter == b";":
            if line.startswith(TABLE_TITLE):
                self._title = [line]
                self._read_table_title()
                return
            if line.startswith(OBJECT_TITLES):
                self._start_objects()
            elif line.startswith(COMPLETED):
                self._completed = True
        self._pending.append(line)

    def _read_table_title(self) -> None:
        text = b"".join(self._title)
        if match := _TABLE_TITLE_DONE.fullmatch(text):
            name = match.group(1).replace(b"``", b"`").replace(b"\n-- ", b"\n").decode("utf-8", "surrogateescape")
            self._title = []
            self._start_table(name, text)
        elif not _TABLE_TITLE_OPEN.fullmatch(text.rstrip(b"\n")) or len(self._title) > MAX_TITLE_LINES:
            raise DumpFormatError(f"unreadable table heading in the dump: {text[:120]!r}")

    # -- destinations ----------------------------------------------------------------

    def _switch(self, name: str | None) -> None:
        """Commit the artifact being written; continue in artifact *name*, or in the spool."""
        self._stack.close()
        self._out = self._stack.enter_context(self._artifacts.open(name)) if name else self._spool

    def _start_table(self, name: str, title: bytes) -> None:
        if any(part.name == name for part in self.layout.tables):
            raise DumpFormatError(f"table {shown(name)} appears twice in the dump")
        self._part = self.layout.add_table(name)
        self._in_triggers = self._in_objects = False
        self._switch(self._part.data)
        self._flush_pending()
        self._emit(title)

    def _start_triggers(self) -> None:
        assert self._part is not None
        self._part.triggers = triggers_artifact(len(self.layout.tables), self._part.name)
        self._in_triggers = True
        self._switch(self._part.triggers)

    def _start_objects(self) -> None:
        if not self._in_objects:
            self._part = None
            self._in_triggers = False
            self._in_objects = True
            self._switch(None)

    def _flush_pending(self) -> None:
        for line in self._pending:
            self._emit(line)
        self._pending = []

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        if self._part is not None and not self._in_triggers:
            self._part.raw_bytes += len(data)
