"""Splitting SQLite SQL text into complete statements, streaming, the way ``sqlite3`` does."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator


def split_statements(lines: Iterable[str]) -> Iterator[str]:
    """Yield each complete statement (triggers' ``BEGIN … END;`` bodies included).

    *lines* keep their newlines. Text after the last ``;`` that holds only comments or
    blanks is dropped; anything else there is an unterminated statement and is yielded
    too, so that SQLite reports it.
    """
    pending = ""
    for line in lines:
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if any(part.strip() and not part.strip().startswith("--") for part in pending.splitlines()):
        yield pending.strip()
