"""The naming convention: the name of every constraint and index the definition leaves unnamed.

=================  ======================================
primary key        ``pk_<table>``
foreign key        ``fk_<table>_<columns>_<referenced table>``
unique constraint  ``uq_<table>_<columns>``
index              ``ix_<table>_<columns>`` (unique or not)
check              ``ck_<table>_<label>``
=================  ======================================

``<columns>`` are the column names joined by ``_``; an index expression contributes its
words (``lower(email)`` → ``lower_email``). A name longer than :data:`NAME_LIMIT` (63,
PostgreSQL's limit; MySQL allows 64, SQLite has none) keeps its first 54 characters
(without a trailing ``_``) and ends with ``_`` and 8 hexadecimal digits of its SHA-256, so it stays unique and never
changes from one run to the next.
"""

from __future__ import annotations

import hashlib
import re

from dbkeeper.schema.definition import Check, ForeignKey, Index, PrimaryKey, Table, UniqueConstraint

#: The longest name every engine accepts: PostgreSQL's 63 bytes (MySQL: 64).
NAME_LIMIT = 63
_HASH_DIGITS = 8
_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")

Constraint = PrimaryKey | UniqueConstraint | ForeignKey | Index | Check


def conventional_name(*parts: str) -> str:
    """*parts* joined by ``_``, shortened with a hash to :data:`NAME_LIMIT` characters if longer."""
    name = "_".join(parts)
    if len(name.encode()) <= NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_DIGITS]
    head = name.encode()[: NAME_LIMIT - _HASH_DIGITS - 1].decode(errors="ignore").rstrip("_")
    return f"{head}_{digest}"


def constraint_name(table: Table, item: Constraint) -> str:
    """The name of *item*, a constraint or index of *table*: its own, else the convention's."""
    if item.name is not None:
        return item.name
    if isinstance(item, PrimaryKey):
        return conventional_name("pk", table.name)
    if isinstance(item, ForeignKey):
        return conventional_name("fk", table.name, *item.columns, item.referenced_table)
    if isinstance(item, UniqueConstraint):
        return conventional_name("uq", table.name, *item.columns)
    if isinstance(item, Check):
        return conventional_name("ck", table.name, item.label)
    words = [column if isinstance(column, str) else _words(column.sql) for column in item.columns]
    return conventional_name("ix", table.name, *words)


def table_constraints(table: Table) -> list[tuple[str, Constraint]]:
    """Every constraint and index of *table* with the path of its field (``indexes.0``), in order."""
    found: list[tuple[str, Constraint]] = []
    if table.primary_key is not None:
        found.append(("primary_key", table.primary_key))
    found += [(f"unique.{i}", item) for i, item in enumerate(table.unique)]
    found += [(f"foreign_keys.{i}", item) for i, item in enumerate(table.foreign_keys)]
    found += [(f"indexes.{i}", item) for i, item in enumerate(table.indexes)]
    found += [(f"checks.{label}", item) for label, item in table.checks.items()]
    return found


def _words(sql: str) -> str:
    """The words of an SQL expression joined by ``_``: ``lower(email)`` → ``lower_email``."""
    return _NOT_WORD.sub("_", sql).strip("_").lower() or "expr"
