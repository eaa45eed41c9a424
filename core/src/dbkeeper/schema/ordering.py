"""The order DDL can run in: a table after the tables it references, a view after the views it reads.

A definition keeps its tables and views in the order it was given; an inspected one in the
catalog's order, which is not the order they can be created in (PostgreSQL lists a view that
``CREATE OR REPLACE VIEW`` replaced after the views that read it). PostgreSQL and MySQL refuse
a foreign key to a table, or a view reading a view, that does not exist yet.

A view reads the views, tables and columns whose names its SQL holds as identifiers: words
and quoted names outside string literals and comments. A quoted name matches exactly, a word
whatever its case (as an unquoted name does in SQL). A name that only looks like one (a column
called like a view) can only move a view later than it had to be, or have ``schema diff``
drop and create again a view it could have left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

from dbkeeper.schema.definition import SchemaDefinition, View

_TOKENS = re.compile(
    r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/"  # string literals and comments: no names
    r'|"((?:[^"]|"")+)"|`((?:[^`]|``)+)`'  # quoted names
    r"|([A-Za-z_][A-Za-z0-9_$]*)",  # words
    re.DOTALL,
)


def dependency_order(names: Sequence[str], requires: Callable[[str], Iterable[str]]) -> list[str]:
    """*names*, each after those among them that it *requires*.

    Stable: a name that requires nothing among *names* keeps its place. A cycle (which
    validation refuses for foreign keys) is broken where it is met.
    """
    wanted = set(names)
    ordered: list[str] = []
    seen: set[str] = set()
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        stack = [(name, iter(requires(name)))]  # not recursive: chains may be long
        while stack:
            current, needs = stack[-1]
            needed = next((other for other in needs if other in wanted), None)
            if needed is None:
                stack.pop()
                ordered.append(current)
            elif needed not in seen:
                seen.add(needed)
                stack.append((needed, iter(requires(needed))))
    return ordered


def tables_in_order(definition: SchemaDefinition, names: Sequence[str]) -> list[str]:
    """*names* (tables of *definition*), each after the tables its foreign keys reference."""
    return dependency_order(
        names, lambda table: (key.referenced_table for key in definition.tables[table].foreign_keys)
    )


def names_read(
    views: Mapping[str, View], names: Collection[str], sql_of: Callable[[View], Iterable[str]]
) -> dict[str, set[str]]:
    """For each of *views*, which of *names* (tables or views) its SQL reads (*sql_of*: the texts to look in)."""
    by_folded = {name.casefold(): name for name in names}
    reads: dict[str, set[str]] = {}
    for name, view in views.items():
        found: set[str] = set()
        for match in (match for sql in sql_of(view) for match in _TOKENS.finditer(sql)):
            if (quoted := match[1] or match[2]) is not None:
                found.add(quoted.replace('""', '"').replace("``", "`"))
            elif match[3] is not None and (folded := match[3].casefold()) in by_folded:
                found.add(by_folded[folded])
        reads[name] = found & set(names)
    return reads


def view_reads(views: Mapping[str, View], sql_of: Callable[[View], Iterable[str]]) -> dict[str, set[str]]:
    """For each of *views*, the other views its SQL reads."""
    return {name: read - {name} for name, read in names_read(views, views.keys(), sql_of).items()}


def views_in_order(views: Mapping[str, View], sql_of: Callable[[View], Iterable[str]]) -> list[str]:
    """The names of *views*, each after the views its SQL reads."""
    reads = view_reads(views, sql_of)
    position = {name: index for index, name in enumerate(views)}
    return dependency_order(list(views), lambda name: sorted(reads[name], key=position.__getitem__))


def readers_of(views: Mapping[str, View], names: set[str], sql_of: Callable[[View], Iterable[str]]) -> set[str]:
    """The views that read one of *names*, directly or through other views."""
    reads = view_reads(views, sql_of)
    found: set[str] = set()
    while more := {name for name, read in reads.items() if name not in found and read & (names | found)}:
        found |= more
    return found - names
