"""PostgreSQL's SQL text, as it gives back checks, ``where`` clauses, index expressions and defaults, made portable.

PostgreSQL keeps an expression parsed and writes it back from the parse tree
(``pg_get_expr``, ``pg_get_constraintdef``), with every cast it added while parsing:
``total >= 0`` comes back as ``total >= 0::numeric``, ``lower(email)`` on a ``varchar``
column as ``lower(email::text)``, ``status <> 'x'`` as ``status <> 'x'::status``, ``LIKE``
as ``~~``. :func:`portable_sql` removes a cast only where PostgreSQL, reading the text
without it, would add the very same cast again, so the meaning is unchanged on PostgreSQL:

1. everywhere: a string literal cast to ``text`` or ``character varying`` without a
   length (``'x'::character varying(3)`` truncates, ``'x '::bpchar`` ignores trailing
   spaces: both kept); an integer literal cast to ``integer`` (``'-1'::integer`` →
   ``-1``), a decimal literal to ``numeric``; a ``text`` or ``varchar`` column cast to
   ``text`` or ``character varying`` (``email::text`` → ``email``);
2. where the literal is a whole side of a comparison (``=``, ``<>``, ``!=``, ``<``,
   ``<=``, ``>``, ``>=``; a whole side runs from the operator to a parenthesis, ``AND``,
   ``OR``, ``NOT``, ``WHEN``, ``THEN``, ``ELSE`` or the end) whose other side is a column
   of the table, alone: a string literal cast to that column's own type (``date``,
   ``time without time zone``, ``timestamp [with|without] time zone``, ``uuid``,
   ``boolean``, ``jsonb``, ``bytea``, or the column's enum type); a whole number cast to
   any number type when the column is a number; a decimal literal cast to ``double
   precision`` when the column is ``real`` or ``double precision`` (what PostgreSQL
   picks for it).

Every other cast is kept as PostgreSQL wrote it, being one a user wrote on purpose:
on a column (``created_at::date``), in arithmetic (``quantity / 2::numeric`` divides
without truncating, ``quantity / 2`` does not), compared with an expression, to a type
with a length or an array. Such text stays PostgreSQL's own: SQLite and MySQL refuse
``::``. The parentheses around a cast's operand go with the cast (``(0)::numeric`` →
``0``). Two operators are written back as SQL's: ``~~`` and ``!~~`` as ``LIKE`` and
``NOT LIKE``; ``= ANY (ARRAY[…])`` and ``<> ALL (ARRAY[…])`` of plain literals (how
PostgreSQL keeps ``IN`` and ``NOT IN``) as ``IN (…)`` and ``NOT IN (…)``; an array whose
literals keep a cast (an enum's, ``numeric``'s) stays as it is. Nothing else changes:
the other parentheses PostgreSQL adds are valid everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from dbkeeper.plugin import Column

_TOKENS = re.compile(
    r"""
    (?P<string>'(?:[^']|'')*')
    |(?P<number>[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)
    |(?P<name>"(?:[^"]|"")+"|[^\W\d]\w*)
    |(?P<cast>::)
    |(?P<open>\()
    |(?P<close>\))
    |(?P<space>\s+)
    |(?P<operator>[-+*/<>=~!@#%^&|`?]+)
    |(?P<other>.)
    """,
    re.X | re.S,
)
_COMPARISONS = frozenset({"=", "<>", "!=", "<", "<=", ">", ">="})
#: Words around a whole operand: ``… AND x = 1``, ``CASE WHEN x = 1 THEN …``.
_CONNECTIVES = frozenset({"and", "or", "not", "when", "then", "else"})
_OPERATORS = {"~~": "LIKE", "!~~": "NOT LIKE"}
#: Words that continue a type name: ``character varying``, ``timestamp with time zone`` …
_TYPE_WORDS = frozenset({"varying", "precision", "with", "without", "time", "zone"})
_TEXT_TYPES = frozenset({"text", "character varying"})
_NUMBER_TYPES = frozenset({"smallint", "integer", "bigint", "numeric", "real", "double precision"})
_NUMBERS = frozenset({"smallint", "int", "bigint", "decimal", "float", "double"})
#: PostgreSQL's name of each portable type that is not a number, text or an enum.
_OWN_TYPES = {
    "date": "date",
    "time": "time without time zone",
    "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone",
    "uuid": "uuid",
    "bool": "boolean",
    "json": "jsonb",
    "bytes": "bytea",
}
_NUMERIC_TEXT = re.compile(r"'(-?[0-9]+(?:\.[0-9]+)?)'")
_LITERAL = r"(?:'(?:[^']|'')*'|-?[0-9]+(?:\.[0-9]+)?)"
#: ``= ANY (ARRAY[…])`` and ``<> ALL (ARRAY[…])`` of literals (with the array's cast), as PostgreSQL writes ``IN``.
_ANY_ARRAY = re.compile(
    rf"\s(?:(=)\s+ANY|<>\s+ALL)\s+\((\()?ARRAY\[({_LITERAL}(?:,\s*{_LITERAL})*)\](?(2)\))(?:::[a-z ]+\[\])?\)"
)


@dataclass
class _Atom:
    """A token, or a cast: *kind* ``cast`` with its operand and its type (lower case, quotes removed)."""

    kind: str
    text: str
    operand: _Atom | None = None
    type: str = ""


def portable_sql(sql: str, columns: Mapping[str, Column]) -> str:
    """*sql* as PostgreSQL wrote it, without the casts it added (the module's rules); *columns* are the table's."""
    if "::" not in sql and "~~" not in sql and "ARRAY[" not in sql:
        return sql
    atoms = _atoms(sql)
    for index, atom in enumerate(atoms):
        if atom.kind == "cast":
            column = _compared_column(atoms, index, columns)
            if column is not None and atom.operand is not None and _implied(atom, column):
                kind = "name" if atom.operand.kind == "column-text" else atom.operand.kind
                atoms[index] = _Atom(kind, atom.operand.text)
    return _ANY_ARRAY.sub(_in_list, _join(atoms))


def _in_list(match: re.Match[str]) -> str:
    """``= ANY (ARRAY[a, b])`` as `` IN (a, b)``, ``<> ALL (…)`` as `` NOT IN (…)``."""
    return f" {'IN' if match.group(1) else 'NOT IN'} ({match.group(3)})"


def _atoms(sql: str) -> list[_Atom]:
    """The tokens of *sql*, each cast (its operand, ``::``, its type) one atom; context-free casts already removed."""
    tokens = [_Atom(match.lastgroup or "other", match.group()) for match in _TOKENS.finditer(sql)]
    atoms: list[_Atom] = []
    position = 0
    while position < len(tokens):
        token = tokens[position]
        position += 1
        if token.kind == "operator" and token.text in _OPERATORS:
            atoms.append(_Atom("operator", _OPERATORS[token.text]))
            continue
        operand = _operand(atoms) if token.kind == "cast" else None
        type_name, end = _type_name(tokens, position) if operand is not None else ("", position)
        if operand is None or not type_name:
            atoms.append(token)
            continue
        text = "".join(atom.text for atom in atoms[operand:]) + "::" + "".join(t.text for t in tokens[position:end])
        cast = _Atom("cast", text, _plain(atoms[operand:]), type_name)
        del atoms[operand:]
        atoms.append(_natural(cast))
        position = end
    return atoms


def _operand(atoms: list[_Atom]) -> int | None:
    """Where the operand of a ``::`` after *atoms* starts: a literal, a name or a cast, maybe in parentheses."""
    simple = ("string", "number", "name", "cast")
    if atoms and atoms[-1].kind in simple:
        start = len(atoms) - 1
        if atoms[-1].kind == "name" and start > 0 and atoms[start - 1].text == ".":
            return None  # a qualified name: left as it is
        return start
    if len(atoms) >= 3 and atoms[-1].kind == "close" and atoms[-3].kind == "open" and atoms[-2].kind in simple:
        function_call = len(atoms) >= 4 and atoms[-4].kind in ("name", "close")
        return None if function_call else len(atoms) - 3
    return None


def _plain(atoms: list[_Atom]) -> _Atom:
    """The operand among *atoms* (itself, or in parentheses)."""
    return atoms[1] if len(atoms) == 3 else atoms[0]


def _type_name(tokens: list[_Atom], position: int) -> tuple[str, int]:
    """The type name after a ``::`` at *position*, lower case (``character varying``), and where it ends.

    An empty name for what this module leaves alone: a type with a length or precision, an array.
    """
    if position >= len(tokens) or tokens[position].kind != "name":
        return "", position
    words = [tokens[position].text]
    end = position + 1
    while end + 1 < len(tokens) and tokens[end].kind == "space" and tokens[end + 1].text.lower() in _TYPE_WORDS:
        words.append(tokens[end + 1].text)
        end += 2
    if end < len(tokens) and tokens[end].text in ("(", "["):
        return "", position
    first = words[0]
    if first.startswith('"'):
        return first[1:-1].replace('""', '"'), end
    return " ".join(word.lower() for word in words), end


def _natural(cast: _Atom) -> _Atom:
    """*cast* reduced to its operand when the cast is implied wherever it is (the module's rule 1)."""
    operand = cast.operand
    assert operand is not None
    kind, kind_type = operand.kind, cast.type
    if kind == "string" and kind_type in _TEXT_TYPES:
        return operand
    number = _number(operand)
    if number is not None and kind_type == ("numeric" if "." in number else "integer"):
        return _Atom("number", number)
    if kind == "name" and kind_type in ("text", "character varying"):
        operand.kind = "column-text"  # resolved against the columns: a cast of a text column only
        return cast
    return cast


def _number(atom: _Atom) -> str | None:
    """The number *atom* is (``0``, or ``'-1'`` as PostgreSQL quotes a negative one), or None."""
    if atom.kind == "number":
        return None if "e" in atom.text.lower() else atom.text
    match = _NUMERIC_TEXT.fullmatch(atom.text) if atom.kind == "string" else None
    return match.group(1) if match else None


def _compared_column(atoms: list[_Atom], index: int, columns: Mapping[str, Column]) -> Column | None:
    """The column the atom at *index* is compared with, when it is a whole side of a comparison; a text column it casts.

    (For a cast of a column, that column when it is ``text``/``varchar``.)
    """
    cast = atoms[index]
    if cast.operand is not None and cast.operand.kind == "column-text":
        column = columns.get(_unquoted(cast.operand.text))
        return column if column is not None and column.type.name in ("text", "varchar") else None
    before, after = _neighbour(atoms, index, -1), _neighbour(atoms, index, 1)
    for operator, other, step in ((before, after, -1), (after, before, 1)):
        if operator is None or atoms[operator].text not in _COMPARISONS or not _edge(atoms, other, -step):
            continue
        side = _neighbour(atoms, operator, step)
        if side is not None and atoms[side].kind == "name" and _edge(atoms, _neighbour(atoms, side, step), step):
            return columns.get(_unquoted(atoms[side].text))
    return None


def _neighbour(atoms: list[_Atom], index: int, step: int) -> int | None:
    """The index of the nearest atom before (*step* -1) or after (1) *index* that is not a space."""
    index += step
    while 0 <= index < len(atoms) and atoms[index].kind == "space":
        index += step
    return index if 0 <= index < len(atoms) else None


def _edge(atoms: list[_Atom], index: int | None, step: int) -> bool:
    """Whether the atom at *index*, just after (*step* 1) or before (-1) an operand, ends it (or there is none)."""
    if index is None:
        return True
    atom = atoms[index]
    closing = "close" if step == 1 else "open"
    return atom.kind == closing or (atom.kind == "name" and atom.text.lower() in _CONNECTIVES)


def _implied(cast: _Atom, column: Column) -> bool:
    """Whether PostgreSQL adds *cast* to a literal compared with *column* (rule 2), or to that text column itself."""
    operand = cast.operand
    assert operand is not None
    if operand.kind == "column-text":
        return True
    number = _number(operand)
    portable = column.type.name
    if number is not None and portable in _NUMBERS and cast.type in _NUMBER_TYPES:
        whole = "." not in number
        return whole or cast.type == "numeric" or (cast.type == "double precision" and portable in ("float", "double"))
    own = column.type.enum if portable == "enum" else _OWN_TYPES.get(portable)
    return operand.kind == "string" and cast.type == own


def _unquoted(name: str) -> str:
    """*name* without its double quotes."""
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def _join(atoms: list[_Atom]) -> str:
    """The text of *atoms*; a space between an operator and a negative number that follows it (``- -1``)."""
    parts: list[str] = []
    for atom in atoms:
        text = atom.text
        if text.startswith("-") and parts and parts[-1][-1:] in "-+*/<>=~!@#%^&|`?":
            text = " " + text
        parts.append(text)
    return "".join(parts)
