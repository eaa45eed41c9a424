"""Views come after the views they read: in generated DDL and in a diff's changes, whatever the definition's order."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from dbkeeper.schema import diff_schemas, generate_schema, parse_definition
from dbkeeper.schema.ordering import views_in_order

TABLE = "tables:\n  t:\n    columns:\n      id: {type: int}\n      x: {type: text}\n"


def views_of(yaml_views: str) -> str:
    """A definition of table ``t`` and *yaml_views* (the ``views:`` mapping's lines)."""
    return TABLE + "views:\n" + yaml_views


def created_views(statements: tuple[str, ...]) -> list[str]:
    return [s.split()[2].strip('"`') for s in statements if s.startswith("CREATE VIEW")]


def test_a_view_is_generated_after_the_views_it_reads() -> None:
    definition = parse_definition(
        views_of(
            "  top: {sql: SELECT id FROM middle}\n"
            "  middle: {sql: SELECT id FROM Base}\n"  # a word: whatever its case
            "  other: {sql: SELECT 1 AS one}\n"
            "  base: {sql: 'SELECT id, x FROM t'}\n"
        )
    )
    for dialect in ("postgresql", "mysql", "sqlite"):
        assert created_views(generate_schema(definition, dialect).statements) == ["base", "middle", "top", "other"]


def test_names_in_strings_and_comments_are_not_read_and_the_order_is_kept_otherwise() -> None:
    definition = parse_definition(
        views_of(
            "  a: {sql: \"SELECT 'b' AS label -- from b\\n/* b */ FROM t\"}\n"
            "  b: {sql: 'SELECT id FROM t'}\n"
            "  c: {sql: 'SELECT id FROM \"b\"'}\n"  # a quoted name matches exactly
        )
    )
    assert views_in_order(definition.views, lambda view: [view.sql or ""]) == ["a", "b", "c"]


def test_views_that_read_each_other_keep_their_order() -> None:
    definition = parse_definition(views_of("  p: {sql: SELECT id FROM q}\n  q: {sql: SELECT id FROM p}\n"))
    assert views_in_order(definition.views, lambda view: [view.sql or ""]) == ["q", "p"]


def test_a_diff_creates_views_after_those_they_read_and_drops_them_before() -> None:
    both = views_of("  top: {sql: SELECT id FROM base}\n  base: {sql: 'SELECT id, x FROM t'}\n")
    old, new = parse_definition(TABLE), parse_definition(both)
    assert [c.name for c in diff_schemas(old, new).changes if c.kind == "create_view"] == ["base", "top"]
    assert [c.name for c in diff_schemas(new, old).changes if c.kind == "drop_view"] == ["top", "base"]


def test_the_generated_views_apply_in_sqlite_order_too(tmp_path: Path) -> None:
    """SQLite would accept any order; the generated text is the same order there, and it applies."""
    definition = parse_definition(views_of("  top: {sql: SELECT id FROM base}\n  base: {sql: 'SELECT id, x FROM t'}\n"))
    with sqlite3.connect(tmp_path / "x.db") as conn:
        conn.executescript("\n".join(generate_schema(definition, "sqlite").statements))
        assert conn.execute("SELECT count(*) FROM top").fetchone() == (0,)
