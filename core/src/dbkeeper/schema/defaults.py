"""A column default as a database gives it back, read into the definition's terms.

:func:`read_default` turns the SQL text of a default (``'new'``, ``(0)``, ``TRUE``,
``CURRENT_TIMESTAMP(6)``, ``'x'::text``) into what a definition says: a literal (text,
number, boolean), no default for ``NULL``, or an :class:`~dbkeeper.schema.definition.Expression`.
``diff`` compares the defaults a definition writes as that; ``inspect`` reads a live
database's the same way. Pure Python.
"""

from __future__ import annotations

import re

from dbkeeper.schema.definition import ColumnType, Default, Expression

_QUOTED = re.compile(r"'((?:[^']|'')*)'")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_CAST = re.compile(r"^(.*?)::[\w .\"]+(?:\[\])?$", re.S)
_TIMESTAMP = re.compile(r"CURRENT_TIMESTAMP(?:\(\d?\))?", re.I)


def read_default(sql: str, portable: ColumnType) -> Default | None:
    """The default *sql* of a column of type *portable*: a literal, an expression, or None for ``NULL``."""
    text = unwrap(sql)
    cast = _CAST.match(text)
    if cast is not None:
        text = unwrap(cast.group(1))
    if text.upper() == "NULL":
        return None
    quoted = _QUOTED.fullmatch(text)
    if quoted is not None:
        return quoted.group(1).replace("''", "'")
    if text.upper() in ("TRUE", "FALSE"):
        return text.upper() == "TRUE"
    if _NUMBER.fullmatch(text):
        return float(text) if "." in text and portable.name != "decimal" else _number(text)
    if _TIMESTAMP.fullmatch(text):
        text = "CURRENT_TIMESTAMP"
    return Expression(text)


def unwrap(sql: str) -> str:
    """*sql* without the parentheses around the whole of it, which engines add."""
    sql = sql.strip()
    while sql.startswith("(") and sql.endswith(")") and _balanced(sql[1:-1]):
        sql = sql[1:-1].strip()
    return sql


def _balanced(sql: str) -> bool:
    """Whether every parenthesis in *sql* closes one opened before it (quotes ignored)."""
    depth = 0
    for char in _QUOTED.sub("", sql):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _number(text: str) -> int | float:
    """*text* as an int when it is a whole number (``0.00`` → 0), else a float."""
    value = float(text)
    return int(value) if value.is_integer() else value
