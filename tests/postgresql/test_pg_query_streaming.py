"""``dbkeeper query`` reads PostgreSQL results through a server-side cursor: memory stays flat."""

from __future__ import annotations

from pathlib import Path

from pg_server import Server

from helpers import assert_million_ids_stream, dbkeeper

ROWS = 1_000_000
BOUND_MIB = 100


def test_query_json_of_a_million_rows_stays_flat(pg: Server, chinook: str, tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    sql = f"SELECT g AS id, md5(g::text) AS ref FROM generate_series(1, {ROWS}) g"
    assert_million_ids_stream(out, pg.url(chinook), sql, rows=ROWS, bound_mib=BOUND_MIB)


def test_statements_a_cursor_cannot_declare_still_run(pg: Server, chinook: str) -> None:
    url = pg.url(chinook)
    dbkeeper("query", url, "CREATE TABLE note (id int, body text)")
    inserted = dbkeeper("query", url, "INSERT INTO note VALUES (1, 'a'), (2, 'b') RETURNING id", "--json").json()
    assert inserted["rows"] == [[1], [2]]  # type: ignore[index]
    moved = dbkeeper("query", url, "WITH gone AS (DELETE FROM note WHERE id = 1 RETURNING body) SELECT * FROM gone")
    assert moved.out.split() == ["body", "a"]
    dbkeeper("query", url, "SELECT * INTO note_copy FROM note")
    assert dbkeeper("query", url, "TABLE note_copy", "--json").json()["rows"] == [[2, "b"]]  # type: ignore[index]
