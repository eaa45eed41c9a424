"""Fixtures for the MySQL/MariaDB driver: one throwaway server per session, source databases.

The server is started by :class:`mariadb_server.MariaDBServer` (see its docstring); if it
cannot start, every test here fails with the reason — they are never skipped. Source
databases are built once per session and must not be changed by tests; each test
restores into databases of its own, named by the ``new_database`` fixture.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from mariadb_server import MariaDBServer
from throwaway_servers import mariadb_server

from helpers import DATASETS

CHINOOK_MYSQL = DATASETS / "chinook" / "Chinook_MySql.sql"
FIDELITY_SQL = Path(__file__).with_name("fidelity.sql")
_DATABASE_LINES = re.compile(rb"^(DROP DATABASE|CREATE DATABASE|USE )[^\n]*\n", re.MULTILINE)
_names = itertools.count(1)


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDBServer]:
    """A running throwaway MariaDB server, stopped (and its files removed) at the end."""
    with mariadb_server() as server:
        yield server


@pytest.fixture(scope="session")
def chinook_db(mariadb: MariaDBServer) -> str:
    """Chinook loaded from ../shared/datasets (its DROP/CREATE DATABASE and USE lines removed)."""
    if not CHINOOK_MYSQL.is_file():
        pytest.fail(f"the shared Chinook dataset is missing: {CHINOOK_MYSQL}", pytrace=False)
    mariadb.recreate("src_chinook")
    mariadb.load_sql("src_chinook", _DATABASE_LINES.sub(b"", CHINOOK_MYSQL.read_bytes()))
    return "src_chinook"


@pytest.fixture(scope="session")
def rich_db(mariadb: MariaDBServer) -> str:
    """The schema of fidelity.sql with rows that exercise every type and escape."""
    mariadb.recreate("src_rich")
    mariadb.load_sql("src_rich", FIDELITY_SQL.read_bytes())
    with closing(mariadb.admin("src_rich")) as conn, conn.cursor() as cursor:
        _fill_rich(cursor)
    return "src_rich"


def _fill_rich(cursor: object) -> None:
    execute = cursor.execute  # type: ignore[attr-defined]
    execute("SET SESSION time_zone = '+00:00'")
    columns = (
        "name, nickname, email, status, tags, profile, balance, ratio, score, created_at, updated_at, birthday, "
        "wake_up, since, flags, big, secret, note"
    )
    insert = f"INSERT INTO customers ({columns}) VALUES ({', '.join(['%s'] * 18)})"
    rows = [
        ("Ada Lovelace", None, "ADA@Example.COM", "active", "vip,beta",
         '{"lang": "en", "emoji": "🎉", "nested": {"a": [1, 2.5, null], "s": "x\\"y"}}', "12345.6789", 1 / 3, 2.5,
         "2024-02-29 23:59:59.999999", "2024-03-01 00:00:00.123", "1815-12-10", "06:30:15.25", 2024, 0b10101,
         -9223372036854775808, "hidden", None),
        ("", "", "empty@example.com", "suspended", "", None, "0", None, None,
         "1000-01-01 00:00:00.000000", "1970-01-01 00:00:01.000", None, None, None, 0, 0, "", ""),
        ("O'Brien \\ \"quoted\" ),( tricky ');", "trigger-test", "t@x.example", "closed", "newsletter,staff",
         '["é", "中文", "🙂"]', "-0.0001", -1.5e-300, -3.25, "2038-01-19 03:14:07.500000",
         "2038-01-19 03:14:07.999", "9999-12-31", "-838:59:59.00", 1901, 0b11111, 9223372036854775807,
         "s'cret", None),
        ("Zoë 中文 🙂", "line1\nline2\r\n\ttab \x00 nul \x1a ctrl-z", "zoe@example.org", "active", "vip",
         '{}', "99999999999.9999", 1e308, 3.4e38, "2000-01-01 00:00:00.000001", "2000-01-01 00:00:00.001",
         "2000-02-29", "00:00:00.01", 2155, 1, 1, None,
         "multi\nline\\note -- not a comment; INSERT INTO `x` VALUES (1),(2);"),
    ]  # fmt: skip
    for row in rows:
        execute(insert, row)
    execute("INSERT INTO customers (name, email, created_at) VALUES ('to be deleted', 'gone@example.org', NOW(6))")
    execute("DELETE FROM customers WHERE email = 'gone@example.org'")  # the AUTO_INCREMENT counter moves past max(id)
    execute("CALL add_line(1000, 3, 19.99)")
    execute("CALL add_line(1002, 1, 250.00)")
    execute(
        "INSERT INTO `order lines` (`customer-id`, `select`, qty, price) "
        "SELECT 1000 + (seq % 4), CONCAT('bulk ', seq, ' ),(''x'), seq % 7 + 1, seq / 100 FROM seq_1_to_3000"
    )
    rng = random.Random(4)
    blobs = [
        (1, bytes(range(256)), bytes(range(255, 0, -1)), b"\x00\x01\x02\x03"),
        (2, b"", b"", b"\x00\x00\x00\x00"),
        (3, None, None, None),
        (4, rng.randbytes(1_500_000), b"'\\\x00\n\r\x1a\"", b"''\\\\"),
        (5, b"),(" * 1000 + b"'", b"\\", b"\xff\xfe\xfd\xfc"),
    ]
    for row in blobs:
        execute("INSERT INTO blobs (id, data, tiny, fixed) VALUES (%s, %s, %s, %s)", row)
    execute(
        "INSERT INTO `weird``name\"with'quotes; -- and more` VALUES "
        "(1, 'a),(b', 'ç'), (2, NULL, ''), (3, '', NULL), (4, ');\\n--', '🙂')"
    )


@pytest.fixture
def new_database(mariadb: MariaDBServer) -> Iterator[Callable[[str], str]]:
    """Names for databases a test creates; they are dropped afterwards."""
    made: list[str] = []

    def name(label: str) -> str:
        made.append(f"t{next(_names)}_{label}")
        return made[-1]

    yield name
    for database in made:
        mariadb.execute("SET SESSION foreign_key_checks = 0", f"DROP DATABASE IF EXISTS `{database}`")
