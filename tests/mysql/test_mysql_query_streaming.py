"""``dbkeeper query`` reads MySQL/MariaDB results unbuffered: memory stays flat."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from mariadb_server import MariaDBServer

from helpers import dbkeeper, query_peak_mib

ROWS = 1_000_000
BOUND_MIB = 100


def test_query_json_of_a_million_rows_stays_flat(
    mariadb: MariaDBServer, new_database: Callable[[str], str], tmp_path: Path
) -> None:
    name = new_database("stream")
    mariadb.recreate(name)
    out = tmp_path / "rows.json"
    sql = f"SELECT seq AS id, md5(seq) AS ref FROM seq_1_to_{ROWS}"
    peak = query_peak_mib(out, mariadb.url(name), sql, "--json")
    assert peak < BOUND_MIB, f"peak RSS {peak:.0f} MiB for {ROWS} rows"
    with out.open(encoding="utf-8") as stream:
        document = json.load(stream)
    rows = document["rows"]
    assert len(rows) == ROWS and rows[-1] == [ROWS, "8155bc545f84d9652f1012ef2bdfb6eb"]
    assert document["rowcount"] in (-1, ROWS), document["rowcount"]  # what the driver reports, never garbage
    dbkeeper("query", mariadb.url(name), "CREATE TABLE note (id INT)")
    assert dbkeeper("query", mariadb.url(name), "INSERT INTO note VALUES (1), (2)", "--json").json()["rowcount"] == 2  # type: ignore[index]
