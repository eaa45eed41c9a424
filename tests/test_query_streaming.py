"""``dbkeeper query`` streams its rows: memory stays flat however many there are, output stays whole."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from helpers import assert_one_line_error, dbkeeper, make_db, query_peak_mib

ROWS = 1_000_000
BOUND_MIB = 100
"""Peak RSS allowed for a query of any size (measured: about 47 MiB for 1 M rows; before streaming, 613-785 MiB)."""


@pytest.fixture(scope="module")
def million(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database whose ``item`` table holds :data:`ROWS` rows."""
    return make_db(tmp_path_factory.mktemp("stream") / "big.db", ROWS)


def test_query_json_of_a_million_rows_stays_flat_and_complete(million: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    peak = query_peak_mib(
        out, f"sqlite:///{million}", "SELECT id, name, price, payload FROM item ORDER BY id", "--json"
    )
    assert peak < BOUND_MIB, f"peak RSS {peak:.0f} MiB for {ROWS} rows"
    with out.open(encoding="utf-8") as stream:
        document = json.load(stream)
    assert document["columns"] == ["id", "name", "price", "payload"]
    assert len(document["rows"]) == ROWS
    assert document["rows"][0] == [1, "item 0 ünïcode", 0.0, None]
    assert document["rows"][-1] == [ROWS, f"item {ROWS - 1} ünïcode", (ROWS - 1) * 1.25, None]
    assert document["rowcount"] == -1 and document["duration"] > 0


def test_query_table_of_a_million_rows_stays_flat_and_complete(million: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.txt"
    peak = query_peak_mib(out, f"sqlite:///{million}", "SELECT id, name FROM item ORDER BY id")
    assert peak < BOUND_MIB, f"peak RSS {peak:.0f} MiB for {ROWS} rows"
    with out.open(encoding="utf-8") as stream:
        header = next(stream)
        count = sum(1 for _ in stream)
    assert header.split() == ["id", "name"] and count == ROWS


def test_streamed_json_is_what_json_dumps_prints(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (a, b)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(1, "x"), (None, b"\xca\xfe"), (2.5, "ü")])
    for sql in ("SELECT * FROM t", "SELECT * FROM t WHERE 0", "UPDATE t SET a = a"):
        out = dbkeeper("query", f"sqlite:///{db}", sql, "--json").out
        assert out == json.dumps(json.loads(out), indent=2, ensure_ascii=False) + "\n", out
    assert dbkeeper("query", f"sqlite:///{db}", "SELECT * FROM t", "--json").json()["rows"] == [
        [1, "x"],
        [None, {"base64": "yv4="}],
        [2.5, "ü"],
    ]


def test_a_query_failing_in_its_first_rows_prints_no_json(tmp_path: Path) -> None:
    url = f"sqlite:///{make_db(tmp_path / 'm.db', 10)}"
    run = dbkeeper("query", url, "SELECT abs(-9223372036854775807 - 1 + id - 1) FROM item", "--json", check=False)
    assert_one_line_error(run)
    assert "integer overflow" in run.err and run.out == ""


def test_table_widths_come_from_the_first_rows(tmp_path: Path) -> None:
    db = make_db(tmp_path / "w.db", 1500)
    sql = "SELECT CASE WHEN id <= 1000 THEN 'short' ELSE 'a longer value' END AS v, id FROM item ORDER BY id"
    lines = dbkeeper("query", f"sqlite:///{db}", sql).out.splitlines()
    assert len(lines) == 1501
    assert lines[:2] == ["v      id", "short  1"]
    assert lines[1000] == "short  1000"
    assert lines[1001] == "a longer value  1001"  # measured on the first 1000 rows: a later value sticks out
