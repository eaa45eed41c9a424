"""How one dump is cut into artifacts, and the record of it kept in the manifest.

A backup in the ``sql`` format is one ``mariadb-dump``-style SQL script cut at table
boundaries, so that tables can be restored one per worker (as myloader does) or alone:

- ``0-header.sql``: the session settings every part relies on (``SET NAMES utf8mb4``,
  ``TIME_ZONE='+00:00'``, ``FOREIGN_KEY_CHECKS=0`` …);
- ``1-NNNNN-<table>.sql``: one table's ``CREATE TABLE`` and its rows;
- ``2-NNNNN-<table>-triggers.sql``: that table's triggers, if it has any;
- ``3-objects.sql``: views, stored routines and events, and the closing settings.

The names sort in the order the script runs, so the stock tools restore a whole backup
with ``zstd -dc *.sql.zst | mariadb DATABASE``. The manifest's ``details["layout"]``
maps tables to their artifacts (table names are free text, artifact names are not).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dbkeeper.plugin import BackupError

HEADER = "0-header.sql"
OBJECTS = "3-objects.sql"
_UNSAFE = re.compile(r"[^A-Za-z0-9_$-]+")


def _slug(table: str) -> str:
    return _UNSAFE.sub("_", table)[:40] or "_"


def data_artifact(index: int, table: str) -> str:
    """The artifact name of table number *index* (from 1)."""
    return f"1-{index:05d}-{_slug(table)}.sql"


def triggers_artifact(index: int, table: str) -> str:
    """The artifact name of the triggers of table number *index*."""
    return f"2-{index:05d}-{_slug(table)}-triggers.sql"


@dataclass
class TablePart:
    """One table's artifacts: its definition and rows, and its triggers if any."""

    name: str
    data: str
    triggers: str | None = None
    raw_bytes: int = 0
    sequence: bool = False
    """A MariaDB sequence: restored like a table, but it has no rows to count."""

    def to_json(self) -> dict[str, Any]:
        """The JSON object recorded in the manifest."""
        return {
            "name": self.name,
            "data": self.data,
            "triggers": self.triggers,
            "raw_bytes": self.raw_bytes,
            "sequence": self.sequence,
        }


@dataclass
class Layout:
    """Which artifact holds what; recorded as ``details["layout"]``."""

    tables: list[TablePart] = field(default_factory=list)
    header: str = HEADER
    objects: str = OBJECTS

    def add_table(self, name: str) -> TablePart:
        """Append a table with the next artifact number."""
        part = TablePart(name, data_artifact(len(self.tables) + 1, name))
        self.tables.append(part)
        return part

    def to_json(self) -> dict[str, Any]:
        """The JSON object recorded in the manifest."""
        return {"header": self.header, "objects": self.objects, "tables": [t.to_json() for t in self.tables]}

    @classmethod
    def from_details(cls, details: Mapping[str, Any], backup_id: str) -> Layout:
        """Read the layout a backup recorded, or explain that it has none."""
        record = details.get("layout")
        try:
            assert isinstance(record, Mapping)
            tables = [
                TablePart(str(t["name"]), str(t["data"]), t.get("triggers"), int(t["raw_bytes"]), bool(t["sequence"]))
                for t in record["tables"]
            ]
            return cls(tables, str(record["header"]), str(record["objects"]))
        except (AssertionError, KeyError, TypeError, ValueError):
            raise BackupError(
                f"backup {backup_id} has no readable table layout in its manifest; it was not written by "
                "dbkeeper-mysql's sql format — restore it with the stock tools (see docs/mysql.md)"
            ) from None
