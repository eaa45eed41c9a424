"""SQL text as ``mariadb-dump`` writes it: quoting, lines, statements and the rows of INSERTs.

Dumps are handled as bytes, never decoded. Data comes as extended INSERTs of about 1 MiB
(``INSERT INTO `t` VALUES`` and one row per line, or all rows on one line from older
tools) in which no value holds a raw line break: the tools escape them. That is what
lets :class:`ScriptScanner` pass INSERTs through in chunk-sized pieces, finding their end
and counting their rows with C-speed byte operations, while definitions (triggers and
routines in ``DELIMITER`` blocks, multi-line views) are handled line by line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

LINE_HEAD = 64 << 10
"""A line's first piece is the whole line or at least this many bytes (enough to classify it)."""

INSERT = b"INSERT INTO "
_ESCAPES = {0: b"\\0", 10: b"\\n", 13: b"\\r", 26: b"\\Z", 34: b'\\"', 39: b"\\'", 92: b"\\\\"}
_NEEDS_ESCAPE = re.compile(rb"[\x00\n\r\x1a\"'\\]")
_QUOTED_OR_COMMENT = re.compile(
    rb"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`]|``)*`|/\*(?!!)[\s\S]*?\*/|(?:--[ \t]|#)[^\n]*", re.DOTALL
)
_OPEN_QUOTE_OR_COMMENT = re.compile(rb"['\"`]|/\*(?!!)|(?:--[ \t]|#)")


def quote_identifier(name: str) -> str:
    """*name* as a backtick-quoted MySQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def shown(name: str) -> str:
    """*name* quoted for a one-line message: line breaks in it are shown escaped."""
    return quote_identifier(name).replace("\n", "\\n").replace("\r", "\\r")


def quote_bytes(value: bytes) -> bytes:
    """*value* as a single-quoted string literal, escaped as ``mysql_real_escape_string`` does."""
    if _NEEDS_ESCAPE.search(value) is None:
        return b"'" + value + b"'"
    return b"'" + _NEEDS_ESCAPE.sub(lambda match: _ESCAPES[match.group()[0]], value) + b"'"


def comment_name(name: str) -> str:
    """*name* quoted for a ``-- …`` comment line, as mariadb-dump writes it (newlines continue the comment)."""
    return quote_identifier(name).replace("\n", "\n-- ")


class LineFeeder:
    """Cuts bytes pushed in chunks into ``(piece, ends_line)`` pieces of lines.

    A line's first piece is the whole line or at least :data:`LINE_HEAD` bytes; longer
    lines follow in further pieces, the last with ``ends_line`` true. A final line without
    a newline is ended by :meth:`end`.
    """

    def __init__(self) -> None:
        self._carry = b""
        self._mid_line = False

    def feed(self, chunk: bytes) -> Iterator[tuple[bytes, bool]]:
        """The pieces *chunk* completes."""
        data = self._carry + chunk if self._carry else chunk
        self._carry = b""
        start = 0
        while (newline := data.find(b"\n", start)) >= 0:
            yield data[start : newline + 1], True
            start = newline + 1
            self._mid_line = False
        if start < len(data):
            rest = data[start:] if start else data
            if self._mid_line or len(rest) >= LINE_HEAD:
                yield rest, False
                self._mid_line = True
            else:
                self._carry = rest

    def end(self) -> Iterator[tuple[bytes, bool]]:
        """The last piece, if the stream did not end with a newline."""
        if self._carry or self._mid_line:
            yield self._carry, True
        self._carry, self._mid_line = b"", False


def _identifier(text: bytes, start: int) -> tuple[str, int] | None:
    """The backtick-quoted identifier at *start* and the offset after it, or None."""
    if text[start : start + 1] != b"`":
        return None
    position = start + 1
    while True:
        close = text.find(b"`", position)
        if close < 0:
            return None
        if text[close + 1 : close + 2] == b"`":
            position = close + 2
            continue
        return text[start + 1 : close].replace(b"``", b"`").decode("utf-8", "surrogateescape"), close + 1


def parse_insert(head: bytes) -> tuple[str, int] | None:
    """For ``INSERT INTO `t` [(`a`, …)] VALUES …`` return ``(t, offset just after VALUES)``.

    Returns None when *head* (a line's first piece) is not an INSERT of that shape.
    """
    if not head.startswith(INSERT):
        return None
    parsed = _identifier(head, len(INSERT))
    if parsed is None:
        return None
    table, position = parsed
    if head.startswith(b" (", position):
        position += 2
        while True:
            column = _identifier(head, position)
            if column is None:
                return None
            position = column[1]
            if head.startswith(b")", position):
                position += 1
                break
            if head.startswith(b", ", position):
                position += 2
            elif head.startswith(b",", position):
                position += 1
            else:
                return None
    if not head.startswith(b" VALUES", position) or head[position + 7 : position + 8] not in (b" ", b"\n", b"("):
        return None
    return table, position + 7


def insert_head_open(head: bytes) -> bool:
    """Whether *head* starts an INSERT whose table or column name goes on past the line's end.

    Names may hold line breaks; before ``VALUES`` only names hold backticks (doubled
    inside), so an odd count means one is still open.
    """
    return head.startswith(INSERT) and head.count(b"`") % 2 == 1


ROW_SEPARATOR = b"),("


class RowCounter:
    """Counts the rows of one extended INSERT's values, fed in pieces after ``VALUES``.

    mariadb-dump 10.11+ and the pure-Python dumper put each row on a line of its own.
    Values never hold a raw line break (the dump tools escape them), so then the rows are
    counted from the line breaks alone, at C speed, without reading strings. Values on
    one line (older mariadb-dump, MySQL's mysqldump) are separated by ``),(``, which a
    string may hold too: there escape pairs are dropped, the text is split at quotes,
    and only the parts outside strings are searched.
    """

    def __init__(self) -> None:
        self._leading: int | None = None  # 1 for ``VALUES`` newline ``(…``: that line break separates no rows
        self._newlines = 0
        self._separators = 0
        self._has_rows = False
        self._in_string = False
        self._backslashes = b""  # a trailing run of backslashes, resolved by the next piece
        self._tail = b""  # the last bytes outside strings, for a ``),(`` split between pieces

    def feed(self, data: bytes) -> None:
        """Count the next piece of the values (the last piece ends with the ``;`` newline)."""
        if self._leading is None and data:
            self._leading = int(data.startswith(b"\n"))
        self._newlines += data.count(b"\n")
        if self._newlines - (self._leading or 0) < 2:  # no line break between rows yet: they may be on one line
            self._feed_one_line(data)

    def _feed_one_line(self, data: bytes) -> None:
        if self._backslashes:
            data, self._backslashes = self._backslashes + data, b""
        if data.endswith(b"\\"):
            kept = data.rstrip(b"\\")
            data, self._backslashes = kept, data[len(kept) :]
        if not data:
            return
        if b"\\" in data:
            data = data.replace(b"\\\\", b"").replace(b"\\'", b"")
        parts = data.split(b"'")
        outside = parts[1::2] if self._in_string else [self._tail + parts[0], *parts[2::2]]
        text = b"'".join(outside)  # a quote between the parts: no ``),(`` across a string
        self._separators += text.count(ROW_SEPARATOR)
        self._has_rows = self._has_rows or b"(" in text
        if len(parts) % 2 == 0:
            self._in_string = not self._in_string
        self._tail = b"" if self._in_string else outside[-1][-2:]

    @property
    def rows(self) -> int:
        """The rows, once the whole statement was fed."""
        if (between_rows := self._newlines - (self._leading or 0) - 1) > 0:
            return between_rows + 1
        return self._separators + 1 if self._has_rows else 0


class Event(NamedTuple):
    """What :class:`ScriptScanner` found: a ``line``, or an INSERT's ``head``, ``values`` and ``end``."""

    kind: str
    data: bytes = b""
    table: str = ""
    rows: int = 0


HEAD_LIMIT = 1 << 20
"""The most bytes an INSERT's head (``INSERT INTO `t` (columns) VALUES``) may take."""
HEAD_WINDOW = 4096
"""Where an INSERT's head is looked for first (copying the whole limit every time costs)."""
_STATEMENT_END = re.compile(rb";\n")
"""Where an INSERT ends (values hold no raw line break); ``re`` finds it several times faster than ``bytes.find``."""


class ScriptScanner:
    """Walks a dump pushed in chunks: whole lines, except INSERTs, which go by at C speed.

    An INSERT is recognised at a line start when :attr:`inserts_allowed` (the consumer
    clears it inside other statements); its values are handed on in chunk-sized pieces
    up to the ``;`` + newline that ends it (values hold no raw line breaks), with their
    rows counted. Other lines are yielded whole.
    """

    def __init__(self) -> None:
        self.inserts_allowed = True
        self._carry = b""
        self._rows: RowCounter | None = None

    def feed(self, chunk: bytes) -> Iterator[Event]:
        """The events *chunk* completes."""
        data = self._carry + chunk if self._carry else chunk
        self._carry = b""
        position, size = 0, len(data)
        while position < size:
            if self._rows is not None:
                found = _STATEMENT_END.search(data, position)
                end = found.start() if found else -1
                stop = end + 2 if end >= 0 else size - 1 if data.endswith(b";") else size
                if stop > position:
                    piece = data[position:stop]
                    self._rows.feed(piece)
                    yield Event("values", piece)
                if end < 0:
                    self._carry = data[stop:]  # a ";" that a newline may follow
                    return
                yield Event("end", rows=self._rows.rows)
                self._rows = None
                position = stop
                continue
            newline = data.find(b"\n", position)
            if self.inserts_allowed and (data.startswith(INSERT, position) or INSERT.startswith(data[position:])):
                parsed = parse_insert(data[position : position + HEAD_WINDOW])
                if parsed is None and (newline < 0 or newline - position >= HEAD_WINDOW):
                    parsed = parse_insert(data[position : position + HEAD_LIMIT])  # a long column list
                if parsed is not None:
                    table, offset = parsed
                    yield Event("head", data[position : position + offset], table)
                    self._rows = RowCounter()
                    position += offset
                    continue
                waiting = newline < 0 or insert_head_open(data[position : newline + 1])
                if waiting and size - position < HEAD_LIMIT:
                    self._carry = data[position:]
                    return
            if newline < 0:
                self._carry = data[position:]
                return
            yield Event("line", data[position : newline + 1])
            position = newline + 1

    def end(self) -> Iterator[Event]:
        """What is left at the end of the stream: a last line without a newline."""
        if self._carry and self._rows is None:
            yield Event("line", self._carry)
        elif self._carry and self._rows is not None:
            self._rows.feed(self._carry)
            yield Event("values", self._carry)
        self._carry = b""

    @property
    def in_insert(self) -> bool:
        """Whether the stream so far ends inside an INSERT."""
        return self._rows is not None


def statement_complete(text: bytes, delimiter: bytes) -> bool:
    """Whether *text* (one or more lines) is a whole statement ending with *delimiter*.

    Strings, quoted identifiers and comments are skipped (``/*!…*/`` version comments are
    code, as the server reads them); an unclosed one means the statement goes on.
    """
    bare = _QUOTED_OR_COMMENT.sub(b" ", text)
    if _OPEN_QUOTE_OR_COMMENT.search(bare):
        return False
    return bare.rstrip().endswith(delimiter)


def delimiter_command(line: bytes) -> bytes | None:
    """The new delimiter if *line* is the client command ``DELIMITER x``, else None."""
    if line[:10].upper() != b"DELIMITER ":
        return None
    parts = line.split()
    return parts[1] if len(parts) > 1 else None


SANDBOX = b"/*M!999999\\- enable the sandbox mode */"
"""The first line of newer mariadb-dump output: a command to the ``mariadb`` client, not SQL."""


def is_comment_or_blank(line: bytes) -> bool:
    """Whether *line* is empty or a ``--`` comment line (outside any statement)."""
    stripped = line.strip()
    return not stripped or stripped == b"--" or line.startswith((b"-- ", b"--\t"))
