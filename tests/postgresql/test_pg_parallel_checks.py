"""amcheck and the restore's row counts on several connections at once: the same verdicts, names and errors.

A real server and real corruption: B-tree indexes built with an operator class whose
comparison function is then reversed, which ``bt_index_check`` finds out of order — several
of them, beside healthy indexes of other sizes, so that they are checked on different
connections and finish in another order than their names.
"""

from __future__ import annotations

import re

import pytest
from pg_server import Server

from dbkeeper.plugin import DatabaseError, DatabaseURL
from dbkeeper_postgresql.amcheck import check_indexes
from dbkeeper_postgresql.connections import Endpoint
from dbkeeper_postgresql.restore import _count

FLIPPED = 7
"""Indexes made out of order (more than the report shows: it names 5 and says how many more)."""
SIZES = {"tiny": 3, "small": 500, "big": 60_000}
"""Healthy tables and their rows."""
COMPARE = "SELECT CASE WHEN $1 < $2 THEN {less} WHEN $1 > $2 THEN {more} ELSE 0 END"


@pytest.fixture(scope="module")
def database(pg: Server) -> str:
    """A database with healthy tables and indexes, *FLIPPED* out-of-order indexes, and a table its owner only reads."""
    pg.psql("CREATE DATABASE parallel_checks")
    compare = COMPARE.format(less=-1, more=1).replace("'", "''")
    script = [
        f"CREATE FUNCTION flip_cmp(int, int) RETURNS int LANGUAGE sql IMMUTABLE AS '{compare}';",
        "CREATE OPERATOR CLASS flip_ops FOR TYPE int USING btree AS OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, "
        "OPERATOR 4 >=, OPERATOR 5 >, FUNCTION 1 flip_cmp(int, int);",
    ]
    for name, rows in SIZES.items():
        script.append(
            f"CREATE TABLE {name} (id int PRIMARY KEY); INSERT INTO {name} SELECT generate_series(1, {rows});"
        )
    for i in range(FLIPPED):
        script.append(
            f"CREATE TABLE f{i} (a int); INSERT INTO f{i} SELECT generate_series(1, {100 * (i + 1)});"
            f"CREATE INDEX f{i}_flip ON f{i} (a flip_ops);"
        )
    reversed_compare = COMPARE.format(less=1, more=-1).replace("'", "''")
    script.append(
        f"CREATE OR REPLACE FUNCTION flip_cmp(int, int) RETURNS int LANGUAGE sql IMMUTABLE AS '{reversed_compare}';"
    )
    pg.psql("\n".join(script), database="parallel_checks")
    return "parallel_checks"


def test_amcheck_names_every_failing_index_in_name_order(pg: Server, database: str) -> None:
    check = check_indexes(DatabaseURL.parse(pg.socket_url(database)))
    assert check.ok is False and not check.skipped
    indexes = int(pg.psql(
        "SELECT count(*) FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.relkind = 'i' AND a.amname = 'btree'",
        database=database,
    ))  # fmt: skip
    shown = "; ".join(f'public.f{i}_flip: [a-z ]+ invariant violated for index "f{i}_flip"' for i in range(5))
    assert re.fullmatch(
        f"{FLIPPED} of {indexes} B-tree indexes failed: {shown} \\(and {FLIPPED - 5} more\\)", check.detail
    )


def test_amcheck_of_healthy_indexes_passes(pg: Server, database: str) -> None:
    pg.psql("CREATE DATABASE parallel_checks_ok")
    pg.psql(
        "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, v text UNIQUE);"
        "INSERT INTO a SELECT generate_series(1, 9000); INSERT INTO b SELECT i, i::text FROM generate_series(1, 99) i",
        database="parallel_checks_ok",
    )
    check = check_indexes(DatabaseURL.parse(pg.socket_url("parallel_checks_ok")))
    assert check.ok is True and check.detail.startswith("bt_index_check of ") and check.detail.endswith(": ok")


def test_row_counts_are_exact_in_the_order_asked_and_skip_missing_tables(pg: Server, database: str) -> None:
    keys = ["public.f3", "public.big", "public.gone", "public.tiny", "public.small", "public.f0"]
    counts = _count(Endpoint.from_url(DatabaseURL.parse(pg.socket_url(database))), keys)
    assert list(counts.items()) == [
        ("public.f3", 400), ("public.big", 60_000), ("public.tiny", 3), ("public.small", 500), ("public.f0", 100),
    ]  # fmt: skip


def test_a_table_that_cannot_be_counted_fails_the_counts_with_one_line(pg: Server, database: str) -> None:
    pg.psql("CREATE ROLE counter LOGIN; GRANT SELECT ON big, small, tiny TO counter", database=database)
    url = DatabaseURL.parse(pg.socket_url(database, user="counter"))
    with pytest.raises(DatabaseError) as caught:
        _count(Endpoint.from_url(url), ["public.big", "public.small", "public.f1", "public.tiny"])
    message = str(caught.value)
    assert message.startswith("cannot count the restored rows in ") and "permission denied for table f1" in message
    assert "\n" not in message


def test_row_counts_on_a_role_allowed_one_connection_are_counted_on_that_one(pg: Server, database: str) -> None:
    pg.psql("CREATE ROLE one_session LOGIN CONNECTION LIMIT 1; GRANT SELECT ON big, small, tiny TO one_session",
            database=database)  # fmt: skip
    url = DatabaseURL.parse(pg.socket_url(database, user="one_session"))
    counts = _count(Endpoint.from_url(url), ["public.tiny", "public.big", "public.small"])
    assert counts == {"public.tiny": 3, "public.big": 60_000, "public.small": 500}
