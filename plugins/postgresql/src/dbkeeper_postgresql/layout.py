"""How a backup is cut into artifacts, and the pg_dump options that write each one.

Two formats: ``custom`` (pg_dump's archive, ``-Fc`` with its own compression off, since
the pipeline compresses) and ``sql`` (a plain script for ``psql``). Two layouts:

- ``single``: one artifact holds the whole database (``<db>.dump`` or ``<db>.sql``);
- ``parallel`` (``--jobs N``): ``<db>.pre-data`` (definitions, sequence values, large
  objects), ``<db>.data-1`` … ``<db>.data-N`` (the tables' rows, balanced by size over
  N artifacts dumped at once) and ``<db>.post-data`` (indexes, constraints, triggers).
  Every part is written by its own pg_dump under the same exported snapshot, so the
  parts together are one consistent snapshot.

The manifest's ``details["parts"]`` lists the parts in restore order.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from dbkeeper.plugin import DatabaseError

if TYPE_CHECKING:  # annotations only: the catalog's queries are not needed to load the plugin
    from dbkeeper_postgresql.catalog import Table

FORMATS: dict[str, str] = {"custom": ".dump", "sql": ".sql"}
"""Format name → artifact suffix; the first is the default."""

WHOLE, PRE_DATA, DATA, POST_DATA = "database", "pre-data", "data", "post-data"


class Part(NamedTuple):
    """One artifact of a backup: its name, its role, and for data parts the tables it holds."""

    artifact: str
    role: str
    tables: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The manifest's form."""
        return {"artifact": self.artifact, "role": self.role, "tables": list(self.tables)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Part:
        """Read the manifest's form back."""
        return cls(str(data["artifact"]), str(data["role"]), tuple(data.get("tables", ())))


def artifact_base(database: str) -> str:
    """A file-name-safe stem for *database*'s artifacts."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", database).lstrip(".") or "database"


def balance(tables: Sequence[Table], buckets: int) -> list[list[Table]]:
    """Spread *tables* over at most *buckets* groups of similar total size (largest first)."""
    count = min(buckets, len(tables))
    heap = [(0, index) for index in range(count)]
    groups: list[list[Table]] = [[] for _ in range(count)]
    for table in sorted(tables, key=lambda t: (-t.size, t.key)):
        total, index = heapq.heappop(heap)
        groups[index].append(table)
        heapq.heappush(heap, (total + max(table.size, 1), index))
    return groups


def plan(database: str, fmt: str, tables: Sequence[Table], jobs: int) -> list[Part]:
    """The parts of a backup of *database*, in restore order."""
    base, suffix = artifact_base(database), FORMATS[fmt]
    if jobs <= 1:
        return [Part(base + suffix, WHOLE)]
    data = [
        Part(f"{base}.{DATA}-{number}{suffix}", DATA, tuple(t.key for t in group))
        for number, group in enumerate(balance(tables, jobs), start=1)
    ]
    return [Part(f"{base}.{PRE_DATA}{suffix}", PRE_DATA), *data, Part(f"{base}.{POST_DATA}{suffix}", POST_DATA)]


def pg_dump_options(part: Part, fmt: str, parts: Sequence[Part], tables: Mapping[str, Table]) -> list[str]:
    """The pg_dump options (besides connection and snapshot) that write *part*."""
    options = ["--format=custom", "--compress=0"] if fmt == "custom" else ["--format=plain"]
    if part.role == WHOLE:
        # A plain script replaces what it restores (restore --force); on an empty target the drops are no-ops.
        return options + ([] if fmt == "custom" else ["--clean", "--if-exists"])
    if part.role == PRE_DATA:
        elsewhere = [key for p in parts if p.role == DATA for key in p.tables]
        return [*options, "--section=pre-data", "--section=data",
                *(f"--exclude-table-data={tables[key].pattern}" for key in elsewhere)]  # fmt: skip
    if part.role == DATA:
        return [*options, "--section=data", *(f"--table={tables[key].pattern}" for key in part.tables)]
    if part.role == POST_DATA:
        return [*options, "--section=post-data"]
    raise DatabaseError(f"unknown backup part role {part.role!r} (a driver bug)")


def parts_of(details: Mapping[str, Any], backup_id: str) -> list[Part]:
    """The parts a manifest records, or an error naming the upgrade when it records none."""
    try:
        return [Part.from_json(p) for p in details["parts"]]
    except (KeyError, TypeError) as exc:
        raise DatabaseError(
            f"backup {backup_id} does not describe its parts ({exc}); it was written by another driver "
            "version — upgrade dbkeeper-postgresql"
        ) from None
