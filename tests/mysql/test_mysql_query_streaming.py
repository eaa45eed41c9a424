"""``dbkeeper query`` reads MySQL/MariaDB results unbuffered: memory stays flat."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mariadb_server import MariaDBServer

from helpers import assert_million_ids_stream, dbkeeper

ROWS = 1_000_000
BOUND_MIB = 100


def test_query_json_of_a_million_rows_stays_flat(
    mariadb: MariaDBServer, new_database: Callable[[str], str], tmp_path: Path
) -> None:
    name = new_database("stream")
    mariadb.recreate(name)
    out = tmp_path / "rows.json"
    sql = f"SELECT seq AS id, md5(seq) AS ref FROM seq_1_to_{ROWS}"
    assert_million_ids_stream(out, mariadb.url(name), sql, rows=ROWS, bound_mib=BOUND_MIB)
    dbkeeper("query", mariadb.url(name), "CREATE TABLE note (id INT)")
    assert dbkeeper("query", mariadb.url(name), "INSERT INTO note VALUES (1), (2)", "--json").json()["rowcount"] == 2  # type: ignore[index]
