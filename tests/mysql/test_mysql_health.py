"""The MySQL/MariaDB driver's health checks (dbkeeper_check_health) find planted problems on a real MariaDB.

Each problem is real: a statement sleeping in another session, a transaction left open,
a session waiting behind ``LOCK TABLES … WRITE``, a duplicate index, a table mostly free
space, a table without a primary key. Thresholds are lowered where waiting for the
defaults (a minute) would only slow the test down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing

import pytest
from mariadb_server import MariaDBServer
from mysql_monitoring import driver, running, thread_state, url, watcher

from dbkeeper.plugin import DatabaseURL, Deadline, HealthCheck, HealthRequest, HealthThresholds
from helpers import dbkeeper, eventually

CLEAN = (
    "CREATE TABLE customer (id INT PRIMARY KEY, email VARCHAR(80) NOT NULL, UNIQUE KEY (email))",
    "CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, customer_id INT NOT NULL, placed DATE, "
    "KEY by_customer (customer_id, placed), FOREIGN KEY (customer_id) REFERENCES customer (id))",
    "INSERT INTO customer SELECT seq, CONCAT('c', seq, '@example.org') FROM seq_1_to_200",
    "INSERT INTO orders (customer_id, placed) SELECT seq % 200 + 1, '2026-01-01' FROM seq_1_to_2000",
)
SESSION_CHECKS = ("long_queries", "long_transactions", "idle_in_transaction", "blocked_sessions")
FAST = HealthThresholds(long_query_seconds=1, long_transaction_seconds=1, idle_in_transaction_seconds=1)


def checks(target: DatabaseURL, thresholds: HealthThresholds = FAST) -> dict[str, HealthCheck]:
    """Every check of *target* through the core's Driver facade, by name."""
    request = HealthRequest("mysql", target, thresholds, Deadline(30))
    return {check.name: check for check in driver().check_health(request)}


def failed(found: dict[str, HealthCheck]) -> set[str]:
    """The names of the checks that failed."""
    return {name for name, check in found.items() if check.verdict == "failed"}


@pytest.fixture
def shop(mariadb: MariaDBServer, new_database: Callable[[str], str]) -> str:
    """A clean database: primary keys, no duplicate index, no free space to speak of."""
    name = new_database("health")
    mariadb.recreate(name)
    mariadb.execute(*CLEAN, database=name)
    return name


@pytest.fixture
def restricted(mariadb: MariaDBServer, shop: str) -> Iterator[DatabaseURL]:
    """A URL for *shop* as an account with SELECT on it and nothing else."""
    with watcher(mariadb, shop) as target:
        yield target


def seconds_in_state(mariadb: MariaDBServer, session: int) -> int:
    """How long *session* has been in its current state (0 when it is gone)."""
    return (thread_state(mariadb, session) or ("", 0))[1]


def test_a_clean_database_fails_nothing_and_health_exits_0(mariadb: MariaDBServer, shop: str) -> None:
    found = checks(url(mariadb, shop), HealthThresholds())
    assert failed(found) == set(), found
    expected = {"cache_hit_ratio", "connections", *SESSION_CHECKS, "duplicate_indexes", "free_space",
                "missing_primary_keys"}  # fmt: skip
    assert set(found) == expected  # replication_lag only on a replica
    run = dbkeeper("health", mariadb.url(shop), "--json")
    assert run.json()["failed"] == 0  # type: ignore[index]
    assert mariadb.password not in run.out + run.err


def test_a_query_sleeping_longer_than_the_threshold_is_found(mariadb: MariaDBServer, shop: str) -> None:
    with running(mariadb, shop, "SELECT SLEEP(120)") as sleeper:
        eventually(lambda: seconds_in_state(mariadb, sleeper.thread_id()) >= 2, "a 2 s sleep")
        found = checks(url(mariadb, shop))
    check = found["long_queries"]
    assert check.verdict == "failed"
    assert check.advice
    (finding,) = check.findings
    assert finding.startswith(f"session {sleeper.thread_id()} (root@{shop}): ")
    assert finding.endswith(": SELECT SLEEP(120)")
    assert failed(found) == {"long_queries"}


def test_a_session_idle_in_a_transaction_is_found(mariadb: MariaDBServer, shop: str) -> None:
    with closing(mariadb.admin(shop)) as idle, idle.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("UPDATE customer SET email = 'changed@example.org' WHERE id = 1")
        eventually(lambda: seconds_in_state(mariadb, idle.thread_id()) >= 2, "2 s of idleness")
        found = checks(url(mariadb, shop))
        relaxed = checks(url(mariadb, shop), HealthThresholds(idle_in_transaction_seconds=600))
        cursor.execute("ROLLBACK")
    assert failed(found) == {"idle_in_transaction", "long_transactions"}
    for name in ("idle_in_transaction", "long_transactions"):
        (finding,) = found[name].findings
        assert finding.startswith(f"session {idle.thread_id()} (root@{shop}): ")
    assert relaxed["idle_in_transaction"].verdict == "ok"


def test_a_session_waiting_behind_lock_tables_is_found(mariadb: MariaDBServer, shop: str) -> None:
    with closing(mariadb.admin(shop)) as holder, holder.cursor() as cursor:
        cursor.execute("LOCK TABLES orders WRITE")
        with running(mariadb, shop, "SET SESSION lock_wait_timeout = 50", "SELECT COUNT(*) FROM orders") as waiter:
            eventually(lambda: "lock" in (thread_state(mariadb, waiter.thread_id()) or ("",))[0], "the lock wait")
            found = checks(url(mariadb, shop))
            cursor.execute("UNLOCK TABLES")
    check = found["blocked_sessions"]
    assert check.verdict == "failed"
    (finding,) = check.findings
    assert finding.startswith(f"session {waiter.thread_id()} (root@{shop}) waits ")
    assert "Waiting for table metadata lock" in finding
    assert finding.endswith(": SELECT COUNT(*) FROM orders")


def test_duplicate_indexes_are_found_and_a_unique_one_is_kept(mariadb: MariaDBServer, shop: str) -> None:
    mariadb.execute(
        "CREATE TABLE tag (id INT PRIMARY KEY, a INT, b INT, c INT, d INT, KEY a_only (a), KEY a_b (a, b), "
        "UNIQUE KEY b_unique (b), KEY b_plain (b), UNIQUE KEY c_unique (c), KEY c_d (c, d), KEY id_again (id))",
        database=shop,
    )
    check = checks(url(mariadb, shop))["duplicate_indexes"]
    assert check.verdict == "failed"
    assert sorted(check.findings) == [
        f"{shop}.tag: a_only (a) is covered by a_b (a, b)",
        f"{shop}.tag: b_plain (b) is covered by b_unique (b)",
        f"{shop}.tag: id_again (id) is covered by PRIMARY (id)",
    ]
    run = dbkeeper("health", mariadb.url(shop), "--json", check=False)
    assert run.code == 1
    assert run.json()["failed"] == 1  # type: ignore[index]


def test_a_table_mostly_free_space_and_one_without_a_primary_key_are_found(mariadb: MariaDBServer, shop: str) -> None:
    mariadb.execute(
        "CREATE TABLE log (id INT PRIMARY KEY AUTO_INCREMENT, line VARCHAR(200))",
        "INSERT INTO log (line) SELECT REPEAT('x', 200) FROM seq_1_to_100000",
        "DELETE FROM log WHERE id > 10000",
        "CREATE TABLE loose (a INT, b INT)",
        database=shop,
    )

    def free_space_found() -> dict[str, HealthCheck] | None:
        found = checks(url(mariadb, shop))
        return found if found["free_space"].verdict == "failed" else None

    found = eventually(free_space_found, "InnoDB's purge freeing the deleted rows' pages")
    assert failed(found) == {"free_space", "missing_primary_keys"}
    free_space = found["free_space"]
    (finding,) = free_space.findings
    assert finding.startswith(f"{shop}.log: ")
    assert found["missing_primary_keys"].findings == (f"{shop}.loose",)


def test_without_process_the_session_checks_are_skipped_and_the_rest_made(restricted: DatabaseURL) -> None:
    found = checks(restricted)
    for name in SESSION_CHECKS:
        assert found[name].verdict == "skipped", found[name]
        assert "PROCESS" in found[name].figure
    assert found["duplicate_indexes"].verdict == "ok"
    assert found["missing_primary_keys"].verdict == "ok"
    assert failed(found) == set()
