"""What a database holds, as the server's catalog says, and dropping its stored programs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dbkeeper_mysql.sqltext import quote_identifier

if TYPE_CHECKING:
    import pymysql


def q(name: str) -> str:
    """Shorthand for a quoted identifier in SQL text."""
    return quote_identifier(name)


def query(conn: pymysql.connections.Connection, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run *sql* and return all its rows."""
    with conn.cursor() as cursor:
        cursor.execute(sql, args or None)
        return list(cursor.fetchall())


@dataclass(frozen=True)
class Inventory:
    """What a database holds."""

    tables: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    routines: list[tuple[str, str]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Whether it holds nothing at all."""
        return not (self.tables or self.views or self.routines or self.events)

    def summary(self) -> str:
        """What it holds, as ``3 tables, 1 view``."""
        counts = [("table", len(self.tables)), ("view", len(self.views)), ("routine", len(self.routines))]
        counts.append(("event", len(self.events)))
        return ", ".join(f"{n} {what}{'s' if n != 1 else ''}" for what, n in counts if n)

    def programs(self) -> Inventory:
        """The same without its tables: the triggers, views, routines and events."""
        return Inventory([], self.views, self.routines, self.events, self.triggers)

    def __or__(self, other: Inventory) -> Inventory:
        def both(mine: list[Any], theirs: list[Any]) -> list[Any]:
            return list(dict.fromkeys([*mine, *theirs]))

        return Inventory(
            both(self.tables, other.tables),
            both(self.views, other.views),
            both(self.routines, other.routines),
            both(self.events, other.events),
            both(self.triggers, other.triggers),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON object (for the swap journal)."""
        return {
            "tables": self.tables,
            "views": self.views,
            "routines": [list(routine) for routine in self.routines],
            "events": self.events,
            "triggers": self.triggers,
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Inventory:
        """Read what :meth:`to_json` wrote."""
        routines = [(str(kind), str(name)) for kind, name in record["routines"]]
        return cls(list(record["tables"]), list(record["views"]), routines, list(record["events"]),
                   list(record["triggers"]))  # fmt: skip


def _names(conn: pymysql.connections.Connection, sql: str, database: str) -> list[str]:
    return [_text(name) for (name,) in query(conn, sql, (database,))]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def inventory(conn: pymysql.connections.Connection, database: str) -> Inventory | None:
    """The contents of *database*, or None when it does not exist."""
    if not query(conn, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (database,)):
        return None
    listing = [
        (_text(name), _text(kind))
        for name, kind in query(
            conn, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (database,)
        )
    ]
    routines = query(
        conn,
        "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES "
        "WHERE ROUTINE_SCHEMA = %s AND ROUTINE_TYPE <> 'PACKAGE BODY'",
        (database,),
    )
    return Inventory(
        tables=sorted(name for name, kind in listing if kind != "VIEW"),
        views=sorted(name for name, kind in listing if kind == "VIEW"),
        routines=[(_text(kind), _text(name)) for kind, name in routines],
        events=_names(conn, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s", database),
        triggers=_names(
            conn,
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s "
            "ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER",
            database,
        ),
    )


def drop_programs(conn: pymysql.connections.Connection, database: str, contents: Inventory) -> None:
    """Drop the triggers, views, routines and events of *database* named in *contents* (not its tables)."""
    statements = [f"DROP TRIGGER IF EXISTS {q(database)}.{q(name)}" for name in contents.triggers]
    statements += [f"DROP VIEW IF EXISTS {q(database)}.{q(name)}" for name in contents.views]
    statements += [f"DROP {kind} IF EXISTS {q(database)}.{q(name)}" for kind, name in contents.routines]
    statements += [f"DROP EVENT IF EXISTS {q(database)}.{q(name)}" for name in contents.events]
    for statement in statements:
        query(conn, statement)
