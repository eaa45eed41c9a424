"""Selective restore: which entries of an archive's table of contents belong to the chosen tables or schemas.

``--table`` restores the table with everything that belongs to it — its rows, column
defaults, constraints (foreign keys included), indexes, triggers, rules, policies,
comments, privileges and owned sequences with their current values; a partitioned or
inheritance parent brings its children. ``--schema`` restores the schema and everything
in it. Objects the selection needs but does not contain (a table a foreign key points
to, a function a trigger calls) must already exist in the target, or the restore fails
as a whole and changes nothing.

Entries are matched by the catalog ids pg_dump prints in ``pg_restore --list`` (recorded
per table in the manifest at dump time), by schema name, and through the dependencies
``pg_restore --list --verbose`` shows — never by parsing object names out of tags.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dbkeeper.plugin import ConfigError
from dbkeeper_postgresql.catalog import Relation, split_key

PG_CLASS = 1259
PG_NAMESPACE = 2615
BELONGING = frozenset(
    {"COMMENT", "ACL", "SECURITY LABEL", "SEQUENCE OWNED BY", "SEQUENCE SET", "TABLE DATA", "DEFAULT",
     "MATERIALIZED VIEW DATA", "ROW SECURITY", "TABLE ATTACH", "INDEX ATTACH", "STATISTICS DATA"}
)  # fmt: skip
"""Entries that are part of what they depend on: selected when everything they depend on is."""
KNOWN_DESCS = sorted(
    {*BELONGING, "TABLE", "VIEW", "MATERIALIZED VIEW", "SEQUENCE", "FOREIGN TABLE", "SCHEMA", "INDEX", "CONSTRAINT",
     "FK CONSTRAINT", "CHECK CONSTRAINT", "TRIGGER", "EVENT TRIGGER", "RULE", "POLICY", "FUNCTION", "PROCEDURE",
     "AGGREGATE", "TYPE", "DOMAIN", "SHELL TYPE", "CAST", "COLLATION", "CONVERSION", "EXTENSION", "OPERATOR",
     "OPERATOR CLASS", "OPERATOR FAMILY", "TEXT SEARCH CONFIGURATION", "TEXT SEARCH DICTIONARY",
     "TEXT SEARCH PARSER", "TEXT SEARCH TEMPLATE", "DEFAULT ACL", "STATISTICS", "PUBLICATION", "PUBLICATION TABLE",
     "PUBLICATION TABLES IN SCHEMA", "SUBSCRIPTION", "FOREIGN DATA WRAPPER", "SERVER", "USER MAPPING",
     "TRANSFORM", "ACCESS METHOD", "PROCEDURAL LANGUAGE", "LARGE OBJECT", "BLOB", "BLOBS", "ENCODING",
     "STDSTRINGS", "SEARCHPATH", "DATABASE", "DATABASE PROPERTIES"},
    key=len,
    reverse=True,
)  # fmt: skip
ALWAYS = frozenset({"ENCODING", "STDSTRINGS", "SEARCHPATH"})
PREREQUISITES = frozenset(
    {"SCHEMA", "TYPE", "DOMAIN", "SHELL TYPE", "FUNCTION", "PROCEDURE", "AGGREGATE", "SEQUENCE", "COLLATION"}
)
"""What a selection depends on and brings along when the target lacks it (a schema, a column's type …)."""
_ENTRY = re.compile(r"^(?P<id>-?\d+); (?P<classid>\d+) (?P<objid>\d+) (?P<rest>.*)$")
_DEPENDS = re.compile(r"^;\s*depends on:(?P<ids>(?: \d+)*)\s*$")


@dataclass
class Entry:
    """One line of ``pg_restore --list --verbose``."""

    line: str
    id: int
    catalog_id: tuple[int, int]
    desc: str | None
    namespace: str | None
    tag: str | None
    depends_on: list[int] = field(default_factory=list)


def parse_toc(text: str, schemas: Iterable[str]) -> list[Entry]:
    """The entries of a ``pg_restore -l -v`` listing; *schemas* are the names a namespace can be."""
    by_length = sorted(schemas, key=len, reverse=True)
    entries: list[Entry] = []
    for line in text.splitlines():
        if match := _ENTRY.match(line):
            rest = match["rest"]
            desc = next((d for d in KNOWN_DESCS if rest.startswith(d + " ")), None)
            namespace = tag = None
            if desc is not None:
                after = rest[len(desc) + 1 :]
                namespace = next((s for s in by_length if after.startswith(s + " ")), None)
                named = after[len(namespace) + 1 :] if namespace is not None else after.removeprefix("- ")
                tag = named.rsplit(" ", 1)[0]  # the owner comes last
            catalog_id = (int(match["classid"]), int(match["objid"]))
            entries.append(Entry(line, int(match["id"]), catalog_id, desc, namespace, tag))
        elif (depends := _DEPENDS.match(line)) and entries:
            entries[-1].depends_on.extend(int(i) for i in depends["ids"].split())
    return entries


@dataclass(frozen=True)
class Selection:
    """The relations and schemas a selective restore brings back."""

    relations: dict[str, Relation]
    schemas: dict[str, int]
    all_schemas: dict[str, int]

    @classmethod
    def resolve(cls, details: Mapping[str, Any], tables: Sequence[str], schemas: Sequence[str]) -> Selection | None:
        """What ``--table``/``--schema`` name in this backup, or None when neither was given."""
        if not tables and not schemas:
            return None
        all_schemas = {str(k): int(v) for k, v in details.get("schemas", {}).items()}
        relations = _relations(details)
        chosen: dict[str, Relation] = {}
        for name in tables:
            for relation in _find_relation(name, relations):
                _add_with_children(relation, relations, chosen)
        chosen_schemas = {}
        for name in schemas:
            if name not in all_schemas:
                unquoted = name[1:-1].replace('""', '"') if len(name) > 1 and name[0] == name[-1] == '"' else None
                if unquoted not in all_schemas:
                    raise ConfigError(
                        f"no schema {name!r} in this backup; it has: {', '.join(sorted(all_schemas)) or 'none'}"
                    )
                name = unquoted
            chosen_schemas[name] = all_schemas[name]
        return cls(chosen, chosen_schemas, all_schemas)

    def tables(self, row_count_keys: Iterable[str]) -> list[str]:
        """The keys (among *row_count_keys*) of the tables whose rows this selection restores."""
        keys = set(row_count_keys)
        wanted = {key for key in self.relations if key in keys}
        wanted |= {key for key in keys if split_key(key)[0] in self.schemas}
        return sorted(wanted)

    def relation_names(self) -> list[tuple[str, str]]:
        """``(schema, name)`` of every chosen relation."""
        return [(r.schema, r.name) for r in self.relations.values()]

    def list_file(self, toc: str, missing: Callable[[list[Entry]], set[int]]) -> str:
        """A ``pg_restore --use-list`` file restoring just this selection from the archive listed in *toc*.

        *missing* says which of the given prerequisite entries the target lacks (by id).
        """
        entries = parse_toc(toc, self.all_schemas)
        by_id = {entry.id: entry for entry in entries}
        catalog_ids = {(PG_NAMESPACE, oid) for oid in self.schemas.values()}
        own_rows: set[int] = set()
        for relation in self.relations.values():
            catalog_ids |= {(PG_CLASS, relation.oid), *relation.objects}
            own_rows.add(relation.oid)
        selected = {
            e.id
            for e in entries
            if e.catalog_id in catalog_ids
            or (e.catalog_id[0] == 0 and e.catalog_id[1] in own_rows)  # TABLE DATA, ROW SECURITY …
            or (e.namespace is not None and e.namespace in self.schemas)
            or e.desc in ALWAYS
        }
        required = {cid for relation in self.relations.values() for cid in relation.requires}
        extra = {e.id for e in entries if e.catalog_id in required and e.id not in selected}
        selected |= _prerequisites(by_id, selected, extra, missing)
        changed = True
        while changed:  # what belongs to selected entries: their comments, privileges, sequence values …
            changed = False
            for entry in entries:
                if entry.id in selected or entry.desc not in BELONGING:
                    continue
                present = [d for d in entry.depends_on if d in by_id]
                if present and all(d in selected for d in present):
                    selected.add(entry.id)
                    changed = True
        return "".join(entry.line + "\n" for entry in entries if entry.id in selected)


def _prerequisites(
    by_id: Mapping[int, Entry], selected: set[int], extra: set[int], missing: Callable[[list[Entry]], set[int]]
) -> set[int]:
    """What the selection needs (schemas, types, functions, sequences) and the target lacks.

    Candidates are the selected entries' dependencies, transitively, and *extra*.
    """
    needed: set[int] = set()
    frontier = set(selected)
    candidates = set(extra)
    while frontier or candidates:
        candidates |= {
            d for e in frontier for d in by_id[e].depends_on
            if d in by_id and d not in selected and d not in needed and by_id[d].desc in PREREQUISITES
        }  # fmt: skip
        lacking = missing([by_id[d] for d in sorted(candidates)]) if candidates else set()
        needed |= lacking
        frontier, candidates = lacking, set()
    return needed


def _relations(details: Mapping[str, Any]) -> dict[str, Relation]:
    relations = {}
    for key, data in details.get("relations", {}).items():
        schema, name = split_key(key)
        relations[key] = Relation.from_json(schema, name, data)
    return relations


def _find_relation(name: str, relations: Mapping[str, Relation]) -> list[Relation]:
    """The relation *name* denotes: an exact key, ``schema.table`` (quoted or not), or an unqualified name."""
    if name in relations:
        return [relations[name]]
    candidates: list[Relation] = []
    try:
        schema, table = split_key(name)
    except ValueError:
        pass
    else:
        candidates = [r for r in relations.values() if (r.schema, r.name) == (schema, table)]
    if not candidates:  # unquoted names with dots or spaces: try every split, then the bare name
        candidates = [r for r in relations.values() if f"{r.schema}.{r.name}" == name]
    if not candidates:
        candidates = [r for r in relations.values() if r.name == name]
    if len(candidates) > 1:
        raise ConfigError(
            f"table {name!r} is ambiguous in this backup: {', '.join(sorted(r.key for r in candidates))}; "
            "name it with its schema"
        )
    if not candidates:
        known = sorted(key for key, r in relations.items() if r.kind in ("r", "p"))
        shown = ", ".join(known[:12]) + (" …" if len(known) > 12 else "")
        raise ConfigError(f"no table {name!r} in this backup; it has: {shown or 'no tables'}")
    return candidates


def _add_with_children(relation: Relation, relations: Mapping[str, Relation], chosen: dict[str, Relation]) -> None:
    if relation.key in chosen:
        return
    chosen[relation.key] = relation
    for child in relation.children:
        if child in relations:
            _add_with_children(relations[child], relations, chosen)
