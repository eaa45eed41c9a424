"""Indexes from ``information_schema.STATISTICS``: duplicate ones, tables without a primary key.

An index is a duplicate when its columns (with their prefix lengths) lead another index
of the same table and the same type: ``(a)`` beside ``(a, b)``, or two indexes on
``(a, b)``. A unique index is kept when the other one is longer (it enforces something
the longer one does not); of two identical ones the primary key, then a unique one, then
the first by name is kept. Full-text and spatial indexes are not compared.
"""

from __future__ import annotations

from dataclasses import dataclass

from dbkeeper_mysql.bounded import Probe
from dbkeeper_mysql.tables import TABLE_TYPES, scope


@dataclass(frozen=True)
class Index:
    """One index: its table (``schema.table``), name, uniqueness, type and columns (name, prefix length)."""

    table: str
    name: str
    unique: bool
    type: str
    columns: tuple[tuple[str, int | None], ...]

    def rank(self) -> tuple[bool, bool]:
        """Which of two identical indexes to keep: the primary key, then a unique one."""
        return self.name == "PRIMARY", self.unique

    def covered_by(self, other: Index) -> bool:
        """Whether *other* makes this index needless (see the module docstring)."""
        if other.name == self.name or other.type != self.type or other.columns[: len(self.columns)] != self.columns:
            return False
        if other.columns != self.columns:
            return not self.unique
        return self.rank() < other.rank() or (self.rank() == other.rank() and self.name > other.name)

    def describe(self) -> str:
        """``name (a, b(10))``."""
        columns = ", ".join(f"{name}({length})" if length else name for name, length in self.columns)
        return f"{self.name} ({columns})"


@dataclass(frozen=True)
class Duplicate:
    """An index made needless by another of its table."""

    index: Index
    covered_by: Index

    def __str__(self) -> str:
        return f"{self.index.table}: {self.index.describe()} is covered by {self.covered_by.describe()}"


def table_indexes(probe: Probe, database: str | None) -> dict[str, list[Index]]:
    """Every B-tree and hash index of the tables in *database*'s scope, by ``schema.table``."""
    where, params = scope(database)
    columns: dict[tuple[str, str], list[tuple[str, int | None]]] = {}
    facts: dict[tuple[str, str], tuple[bool, str]] = {}
    for schema, table, name, non_unique, kind, column, length in probe.rows(
        "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, INDEX_TYPE, COLUMN_NAME, SUB_PART "
        f"FROM information_schema.STATISTICS WHERE {where} AND INDEX_TYPE IN ('BTREE', 'HASH') "
        "ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
        params,
    ):
        key = (f"{schema}.{table}", str(name))
        columns.setdefault(key, []).append((str(column), None if length is None else int(length)))
        facts[key] = (not int(non_unique), str(kind))
    found: dict[str, list[Index]] = {}
    for (table, name), index_columns in columns.items():
        unique, kind = facts[(table, name)]
        found.setdefault(table, []).append(Index(table, name, unique, kind, tuple(index_columns)))
    return found


def duplicates(probe: Probe, database: str | None) -> list[Duplicate]:
    """Each needless index with the index that covers it."""
    found = []
    for indexes in table_indexes(probe, database).values():
        for index in indexes:
            cover = next((other for other in indexes if index.covered_by(other)), None)
            if cover is not None:
                found.append(Duplicate(index, cover))
    return found


def without_primary_key(probe: Probe, database: str | None) -> list[str]:
    """``schema.table`` of every table in *database*'s scope that has no primary key."""
    where, params = scope(database)
    rows = probe.rows(
        f"SELECT t.TABLE_SCHEMA, t.TABLE_NAME FROM information_schema.TABLES t WHERE t.{where} "
        f"AND t.TABLE_TYPE IN {TABLE_TYPES} AND NOT EXISTS (SELECT 1 FROM information_schema.STATISTICS s "
        "WHERE s.TABLE_SCHEMA = t.TABLE_SCHEMA AND s.TABLE_NAME = t.TABLE_NAME AND s.INDEX_NAME = 'PRIMARY') "
        "ORDER BY t.TABLE_SCHEMA, t.TABLE_NAME",
        params,
    )
    return [f"{schema}.{table}" for schema, table in rows]
