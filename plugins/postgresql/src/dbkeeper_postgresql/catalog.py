"""What the system catalogs say about a database: its tables, their rows, and its settings.

Table names are reported as ``schema.table`` keys, each part double-quoted only when it is
not a plain lower-case identifier (``public.album``, ``"Sales Dept"."Order""Items"``), so
a key names exactly one table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    import psycopg

_PLAIN = re.compile(r"[a-z_][a-z0-9_]*\Z")
USER_SCHEMAS = "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"
"""SQL condition on ``pg_namespace n``: not a system, toast or temporary schema."""


class Result(Protocol):
    """Rows of a query, as a psycopg cursor gives them."""

    def fetchone(self) -> Any:
        """The first row, or None."""

    def fetchall(self) -> list[Any]:
        """Every row."""


class Session(Protocol):
    """What the backup's catalog queries need of a session: a psycopg connection, or the ``psql`` session."""

    def execute(self, query: str) -> Result:
        """Run *query* (no parameters)."""


def quote_identifier(name: str) -> str:
    """*name* double-quoted for SQL (as psycopg's ``sql.Identifier`` quotes it)."""
    return '"' + name.replace('"', '""') + '"'


def quote_part(name: str) -> str:
    """*name* as it appears in a key: bare when plain lower case, else double-quoted."""
    return name if _PLAIN.match(name) else '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    """The key of table *name* in *schema*."""
    return f"{quote_part(schema)}.{quote_part(name)}"


def read_name(text: str, start: int, ends: str = ".") -> tuple[str, int]:
    """The identifier at *start* in *text*, unquoted, and the index just after it.

    A double-quoted identifier runs to its closing quote (``""`` inside stands for one
    ``"``); a bare one runs up to the first character in *ends*, or to the end of *text*.
    ValueError if a quote is not closed.
    """
    if not text.startswith('"', start):
        end = start
        while end < len(text) and text[end] not in ends:
            end += 1
        return text[start:end], end
    pieces = []
    position = start + 1
    while True:
        quote = text.find('"', position)
        if quote < 0:
            raise ValueError(f"unterminated quote in {text!r}")
        pieces.append(text[position:quote])
        if not text.startswith('"', quote + 1):
            return "".join(pieces), quote + 1
        pieces.append('"')
        position = quote + 2


def split_key(text: str) -> tuple[str, str]:
    """``schema.name`` (parts optionally double-quoted) → ``(schema, name)``; ValueError if not qualified."""
    parts: list[str] = []
    index = 0
    while True:
        name, index = read_name(text, index)
        parts.append(name)
        if len(parts) > 2:
            raise ValueError(f"too many dots in {text!r}")
        if index == len(text):
            break
        if text[index] != ".":
            raise ValueError(f"unexpected {text[index]!r} in {text!r}")
        index += 1
    if len(parts) != 2:
        raise ValueError(f"{text!r} is not schema-qualified")
    return parts[0], parts[1]


class Table(NamedTuple):
    """A table whose rows a dump holds."""

    schema: str
    name: str
    oid: int
    size: int

    @property
    def key(self) -> str:
        """``schema.table``, quoted where needed."""
        return qualified(self.schema, self.name)

    @property
    def pattern(self) -> str:
        """A pg_dump ``-t`` pattern matching exactly this table."""
        return '"' + self.schema.replace('"', '""') + '"."' + self.name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Relation:
    """A table, view, sequence … with the catalog ids of what belongs to it (for selective restore).

    ``objects`` are ``(catalog oid, object oid)`` pairs of its constraints, indexes,
    triggers, rules, policies, column defaults, statistics and owned sequences: the
    catalog ids that pg_dump's table of contents shows for them. ``children`` are the
    keys of its partitions or inheritance children. ``requires`` are objects it needs
    that pg_dump does not list as dependencies of its definition (its triggers' functions).
    """

    schema: str
    name: str
    oid: int
    kind: str
    objects: list[tuple[int, int]] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    requires: list[tuple[int, int]] = field(default_factory=list)

    @property
    def key(self) -> str:
        """``schema.name``, quoted where needed."""
        return qualified(self.schema, self.name)

    def to_json(self) -> dict[str, Any]:
        """The manifest's form."""
        return {"oid": self.oid, "kind": self.kind, "objects": [list(o) for o in self.objects],
                "children": self.children, "requires": [list(o) for o in self.requires]}  # fmt: skip

    @classmethod
    def from_json(cls, schema: str, name: str, data: Mapping[str, Any]) -> Relation:
        """Read the manifest's form back."""
        return cls(schema, name, int(data["oid"]), str(data["kind"]),
                   [(int(c), int(o)) for c, o in data.get("objects", [])], list(data.get("children", [])),
                   [(int(c), int(o)) for c, o in data.get("requires", [])])  # fmt: skip


def database_facts(conn: Session) -> dict[str, Any]:
    """Server version and the database's encoding and locale, as recorded in the manifest."""
    row = conn.execute(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int, current_database(),"
        " pg_encoding_to_char(d.encoding), to_jsonb(d)"
        " FROM pg_database d WHERE d.datname = current_database()"
    ).fetchone()
    assert row is not None
    version, version_num, name, encoding, database = row
    facts: dict[str, Any] = {
        "server_version": version,
        "server_version_num": version_num,
        "database": name,
        "encoding": encoding,
        "lc_collate": database.get("datcollate"),
        "lc_ctype": database.get("datctype"),
    }
    if database.get("datlocprovider") == "i":  # ICU (PostgreSQL 15+; the column was renamed in 17)
        facts["icu_locale"] = database.get("daticulocale") or database.get("datlocale")
    return facts


def dumped_tables(conn: Session) -> tuple[list[Table], list[str]]:
    """Tables whose rows pg_dump writes, largest first, and the keys of extension-owned tables.

    Sizes come from the statistics (``relpages``, as pg_dump's own ordering), which
    takes no lock: the catalog is read without waiting behind anyone's DDL.

    Extension tables are left out of the row counts: pg_dump writes only the rows an
    extension marked as configuration, so their counts cannot be compared.
    """
    rows = conn.execute(
        f"""
        SELECT n.nspname, c.relname, c.oid::int8,
               (c.relpages::int8 + coalesce(t.relpages, 0)) * current_setting('block_size')::int8,
               EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass
                       AND e.objid = c.oid AND e.deptype = 'e')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
        WHERE c.relkind = 'r' AND c.relpersistence <> 't' AND {USER_SCHEMAS}
        ORDER BY 4 DESC, n.nspname, c.relname
        """
    ).fetchall()
    tables = [Table(schema, name, oid, size) for schema, name, oid, size, in_extension in rows if not in_extension]
    extension_tables = [qualified(schema, name) for schema, name, _, _, in_extension in rows if in_extension]
    return tables, extension_tables


def relations(conn: Session) -> list[Relation]:
    """Every user relation and the catalog ids of what belongs to it."""
    rows = conn.execute(
        f"""
        SELECT n.nspname, c.relname, c.oid::int8, c.relkind::text,
          coalesce((SELECT jsonb_agg(jsonb_build_array(o.classid::int8, o.objid::int8) ORDER BY o.classid, o.objid)
            FROM (SELECT 'pg_constraint'::regclass::oid AS classid, oid AS objid FROM pg_constraint
                    WHERE conrelid = c.oid
                  UNION ALL SELECT 'pg_class'::regclass, indexrelid FROM pg_index WHERE indrelid = c.oid
                  UNION ALL SELECT 'pg_trigger'::regclass, oid FROM pg_trigger
                    WHERE tgrelid = c.oid AND NOT tgisinternal
                  UNION ALL SELECT 'pg_rewrite'::regclass, oid FROM pg_rewrite WHERE ev_class = c.oid
                  UNION ALL SELECT 'pg_policy'::regclass, oid FROM pg_policy WHERE polrelid = c.oid
                  UNION ALL SELECT 'pg_attrdef'::regclass, oid FROM pg_attrdef WHERE adrelid = c.oid
                  UNION ALL SELECT 'pg_statistic_ext'::regclass, oid FROM pg_statistic_ext WHERE stxrelid = c.oid
                  UNION ALL SELECT 'pg_class'::regclass, d.objid FROM pg_depend d
                    JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
                    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                      AND d.refobjid = c.oid AND d.deptype IN ('a', 'i')) o), '[]'::jsonb),
          coalesce((SELECT jsonb_agg(jsonb_build_array(cn.nspname, cc.relname) ORDER BY cn.nspname, cc.relname)
            FROM pg_inherits i JOIN pg_class cc ON cc.oid = i.inhrelid
            JOIN pg_namespace cn ON cn.oid = cc.relnamespace WHERE i.inhparent = c.oid), '[]'::jsonb),
          coalesce((SELECT jsonb_agg(DISTINCT jsonb_build_array('pg_proc'::regclass::oid::int8, tg.tgfoid::int8))
            FROM pg_trigger tg WHERE tg.tgrelid = c.oid AND NOT tg.tgisinternal), '[]'::jsonb)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relpersistence <> 't' AND {USER_SCHEMAS}
        ORDER BY n.nspname, c.relname
        """
    ).fetchall()
    return [
        Relation(schema, name, oid, kind, [(int(a), int(b)) for a, b in objects], [qualified(*c) for c in children],
                 [(int(a), int(b)) for a, b in requires])
        for schema, name, oid, kind, objects, children, requires in rows
    ]  # fmt: skip


def schemas(conn: Session) -> dict[str, int]:
    """User schemas by name, with their oids."""
    rows = conn.execute(f"SELECT n.nspname, n.oid::int8 FROM pg_namespace n WHERE {USER_SCHEMAS} ORDER BY 1")
    return dict(rows.fetchall())


def roles(conn: Session) -> list[str]:
    """The roles the database's objects belong to or grant to (``pg_shdepend``), and the bootstrap superuser.

    A restore keeps owners and privileges, so a server the backup is restored into needs
    these roles; a drill's throwaway cluster creates them (without login) from this list.
    """
    rows = conn.execute(
        "SELECT r.rolname FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid "
        "WHERE d.refclassid = 'pg_authid'::regclass "
        "AND d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "UNION SELECT rolname FROM pg_roles WHERE oid = 10 ORDER BY 1"
    )
    return [str(row[0]) for row in rows.fetchall()]


def count_rows(conn: Session, tables: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Exact rows of each ``(schema, table)`` (its own rows: ``ONLY``, as pg_dump copies them)."""
    counts = {}
    for schema, name in tables:
        row = conn.execute(f"SELECT count(*) FROM ONLY {quote_identifier(schema)}.{quote_identifier(name)}").fetchone()
        assert row is not None
        counts[qualified(schema, name)] = int(row[0])
    return counts


def user_objects(conn: psycopg.Connection[Any], limit: int = 3) -> list[str]:
    """Some of the things a database holds besides what a new database has (empty: nothing)."""
    rows = conn.execute(
        f"""
        SELECT 'relation ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER_SCHEMAS}
        UNION ALL SELECT 'schema ' || quote_ident(n.nspname) FROM pg_namespace n
          WHERE {USER_SCHEMAS} AND n.nspname <> 'public'
        UNION ALL SELECT 'function ' || p.oid::regprocedure::text
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {USER_SCHEMAS}
        UNION ALL SELECT 'type ' || t.oid::regtype::text
          FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {USER_SCHEMAS} AND t.typrelid = 0
            AND t.typelem = 0
        UNION ALL SELECT 'extension ' || quote_ident(extname) FROM pg_extension WHERE extname <> 'plpgsql'
        UNION ALL SELECT 'large object ' || oid FROM pg_largeobject_metadata
        ORDER BY 1 LIMIT %s
        """,
        (limit,),
    ).fetchall()
    return [row[0] for row in rows]


def relation_sizes(conn: psycopg.Connection[Any], wanted: Iterable[tuple[str, str]]) -> dict[str, int]:
    """The keys of the ``(schema, name)`` relations that exist, in schema and name order, with their sizes in bytes."""
    pairs = list(wanted)
    if not pairs:
        return {}
    rows = conn.execute(
        """
        SELECT n.nspname, c.relname, pg_relation_size(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN unnest(%s::text[], %s::text[]) AS w(schema, name) ON w.schema = n.nspname AND w.name = c.relname
        ORDER BY 1, 2
        """,
        ([s for s, _ in pairs], [n for _, n in pairs]),
    ).fetchall()
    return {qualified(schema, name): int(size) for schema, name, size in rows}


def existing_relations(conn: psycopg.Connection[Any], wanted: Iterable[tuple[str, str]]) -> list[str]:
    """The keys of the ``(schema, name)`` relations that already exist."""
    return list(relation_sizes(conn, wanted))


_PROBES = {
    "SCHEMA": "to_regnamespace(quote_ident(%(tag)s))",
    "TYPE": "to_regtype(quote_ident(%(ns)s) || '.' || quote_ident(%(tag)s))",
    "DOMAIN": "to_regtype(quote_ident(%(ns)s) || '.' || quote_ident(%(tag)s))",
    "SHELL TYPE": "to_regtype(quote_ident(%(ns)s) || '.' || quote_ident(%(tag)s))",
    "SEQUENCE": "to_regclass(quote_ident(%(ns)s) || '.' || quote_ident(%(tag)s))",
    "COLLATION": "to_regcollation(quote_ident(%(ns)s) || '.' || quote_ident(%(tag)s))",
    "FUNCTION": "to_regprocedure(quote_ident(%(ns)s) || '.' || quote_ident(%(name)s) || %(args)s)",
    "PROCEDURE": "to_regprocedure(quote_ident(%(ns)s) || '.' || quote_ident(%(name)s) || %(args)s)",
    "AGGREGATE": "to_regprocedure(quote_ident(%(ns)s) || '.' || quote_ident(%(name)s) || %(args)s)",
}


def absent(conn: psycopg.Connection[Any], objects: Iterable[tuple[str, str | None, str]]) -> list[bool]:
    """For each ``(kind, schema, name)`` as pg_restore lists it (a function with its arguments), whether it is missing.

    Kinds without a probe count as missing.
    """
    results = []
    for kind, schema, tag in objects:
        probe = _PROBES.get(kind)
        if probe is None:
            results.append(True)
            continue
        name, paren, args = tag.partition("(")
        values = {"ns": schema or "", "tag": tag, "name": name, "args": paren + args}
        row = conn.execute(f"SELECT {probe} IS NULL", values).fetchone()
        results.append(bool(row and row[0]))
    return results
