"""SQL text as ``mariadb-dump`` writes it: quoting, lines, statements and the rows of INSERTs.

Dumps are handled as bytes, never decoded: ``mariadb-dump`` and the pure-Python dumper
write one statement per line for data (``INSERT INTO `t` VALUES (…),(…);`` with newlines
inside strings escaped), and multi-line statements only for definitions. Lines are read
in pieces so that a huge row never has to be held whole, except where a statement must be
sent to the server in one packet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

CHUNK = 1 << 20
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


def line_pieces(read: Callable[[int], bytes]) -> Iterator[tuple[bytes, bool]]:
    """Yield the stream from *read* as ``(piece, ends_line)`` pieces (see :class:`LineFeeder`)."""
    feeder = LineFeeder()
    while chunk := read(CHUNK):
        yield from feeder.feed(chunk)
    yield from feeder.end()


def whole_lines(read: Callable[[int], bytes]) -> Iterator[bytes]:
    """Yield complete lines from *read* (for statements that must be sent whole)."""
    parts: list[bytes] = []
    for piece, ends_line in line_pieces(read):
        if ends_line:
            yield b"".join([*parts, piece]) if parts else piece
            parts = []
        else:
            parts.append(piece)


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


def _separators(text: bytes) -> int:
    return text.count(b"),(") + text.count(b"),\n(")


class RowCounter:
    """Follows the values of one extended INSERT, fed in pieces: its rows and its end.

    Values are literals: numbers, NULL, ``0x…`` and single-quoted strings in which quotes
    and backslashes are backslash-escaped (newlines too, so a newline outside a string only
    separates rows, as newer mariadb-dump writes them). Rows are one more than the ``),(``
    (or ``),`` newline ``(``) outside strings. Each piece is scanned with C-speed byte
    operations: escape pairs are dropped, the text is split at quotes, and the parts
    outside strings are searched.
    """

    def __init__(self) -> None:
        self.separators = 0
        self.has_rows = False
        self.in_string = False
        self._backslashes = b""  # a trailing run of backslashes, resolved by the next piece
        self._tail = b""  # the last bytes outside strings, for a separator split between pieces
        self._end = b""

    def feed(self, data: bytes) -> None:
        """Scan the next piece of the values."""
        self._end = (self._end + data)[-3:]
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
        outside = parts[1::2] if self.in_string else parts[0::2]
        if not self.in_string:
            joined = self._tail + parts[0]
            self.separators += _separators(joined) - _separators(self._tail)
            outside = outside[1:]
            self.has_rows = self.has_rows or b"(" in parts[0]
        self.separators += sum(_separators(part) for part in outside)
        self.has_rows = self.has_rows or any(b"(" in part for part in outside)
        if len(parts) % 2 == 0:
            self.in_string = not self.in_string
        if self.in_string:
            self._tail = b""
        elif len(parts) == 1:
            self._tail = (self._tail + parts[0])[-3:]
        else:
            self._tail = parts[-1][-3:]

    def ended(self) -> bool:
        """Whether what was fed so far ends the statement (``;`` at a line end, outside strings)."""
        return not self.in_string and not self._backslashes and self._end.rstrip().endswith(b";")

    @property
    def rows(self) -> int:
        """The rows seen so far."""
        return self.separators + 1 if self.has_rows else 0


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
