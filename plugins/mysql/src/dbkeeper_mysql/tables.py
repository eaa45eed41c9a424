"""Tables' sizes and indexes as ``information_schema`` reports them.

Sizes are InnoDB's estimates: ``DATA_LENGTH`` and ``INDEX_LENGTH`` are the pages its
statistics last counted (refreshed by ``ANALYZE TABLE`` and automatically after about a
tenth of the rows changed), ``DATA_FREE`` the free extents of the table's file, read
when asked. The scope is the URL's database, or every database but the system ones when
the URL names none. Reading ``information_schema.TABLES`` opens each table; the session's
``lock_wait_timeout`` and statement timeout bound a read that another session's lock holds up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dbkeeper_mysql.bounded import Probe

SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
TABLE_TYPES = "('BASE TABLE', 'SYSTEM VERSIONED')"
"""Tables that hold rows (not views, not sequences)."""
FREE_SPACE_MIN_BYTES = 16 << 20
"""Free space below this is never worth a rebuild: InnoDB keeps a few free extents in every
growing table (4 MiB at a time), so a young table shows megabytes free."""


def scope(database: str | None) -> tuple[str, tuple[str, ...]]:
    """The ``TABLE_SCHEMA`` condition for *database* (every non-system database when None), with its parameters."""
    if database:
        return "TABLE_SCHEMA = %s", (database,)
    return f"TABLE_SCHEMA NOT IN ({', '.join(['%s'] * len(SYSTEM_SCHEMAS))})", SYSTEM_SCHEMAS


@dataclass(frozen=True)
class TableSize:
    """One table's size: data, indexes and free space, in bytes; when its rows last changed."""

    schema: str
    name: str
    data: int
    index: int
    free: int
    update_time: datetime | None

    @property
    def total(self) -> int:
        """Data, indexes and free space: about the size of the table's file."""
        return self.data + self.index + self.free

    @property
    def free_ratio(self) -> float:
        """The share of the table's file that is free, 0 to 1."""
        return self.free / self.total if self.total else 0.0

    def wasteful(self, ratio_max: float) -> bool:
        """Whether a rebuild gives space back: over *ratio_max* free and at least :data:`FREE_SPACE_MIN_BYTES`."""
        return self.free >= FREE_SPACE_MIN_BYTES and self.free_ratio > ratio_max

    def qualified(self) -> str:
        """``schema.table``."""
        return f"{self.schema}.{self.name}"


def table_count(probe: Probe, database: str) -> int:
    """How many tables *database* has (read from the directory, without opening them)."""
    ((count,),) = probe.rows(
        f"SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_TYPE IN {TABLE_TYPES}",
        (database,),
    )
    return int(count)


def table_sizes(probe: Probe, database: str | None, table: str | None = None) -> list[TableSize]:
    """Every table's size in *database*'s scope (see :func:`scope`), or only *table*'s."""
    where, params = scope(database)
    if table is not None:
        where, params = f"{where} AND TABLE_NAME = %s", (*params, table)
    rows = probe.rows(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(DATA_LENGTH, 0), COALESCE(INDEX_LENGTH, 0), "
        f"COALESCE(DATA_FREE, 0), UPDATE_TIME FROM information_schema.TABLES WHERE {where} "
        f"AND TABLE_TYPE IN {TABLE_TYPES} ORDER BY TABLE_SCHEMA, TABLE_NAME",
        params,
    )
    return [TableSize(str(s), str(n), int(d), int(i), int(f), u) for s, n, d, i, f, u in rows]


def database_size(probe: Probe, database: str) -> int:
    """Data and index bytes of every table of *database*."""
    ((size,),) = probe.rows(
        "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
        (database,),
    )
    return int(size)
