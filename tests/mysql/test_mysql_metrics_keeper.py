"""MySQL/MariaDB scrapes on a kept connection (``ConnectionKeeper``, as ``dbkeeper metrics --serve`` does).

One connection serves scrape after scrape, with ``SHOW GLOBAL STATUS`` read afresh each
time; a killed connection is replaced within the next scrape; closing the keeper ends it.
"""

from __future__ import annotations

from collections.abc import Callable

from mariadb_server import TEST_USER, MariaDBServer
from mysql_monitoring import driver, url

from dbkeeper.plugin import CollectorResult, ConnectionKeeper, Deadline, MetricsRequest
from helpers import eventually, failed, value


def scrape(mariadb: MariaDBServer, database: str, keeper: ConnectionKeeper) -> dict[str, CollectorResult]:
    """One scrape of *database* given *keeper*, by collector name."""
    request = MetricsRequest("mysql", url(mariadb, database), Deadline(10), keeper=keeper)
    return {result.name: result for result in driver().collect_metrics(request)}


def scrape_sessions(mariadb: MariaDBServer, database: str) -> list[int]:
    """The ids of the test user's sessions on *database* (the scrapes')."""
    rows = mariadb.execute(
        f"SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{TEST_USER}' AND DB = '{database}'"
    )
    return sorted(int(str(row[0])) for row in rows)


def test_one_kept_connection_serves_every_scrape_with_fresh_counters(
    mariadb: MariaDBServer, new_database: Callable[[str], str]
) -> None:
    name = new_database("keeper_reused")
    mariadb.recreate(name)
    keeper = ConnectionKeeper()
    try:
        first = scrape(mariadb, name, keeper)
        assert failed(first) == {}
        kept = scrape_sessions(mariadb, name)
        assert len(kept) == 1, "the scrape's connection stays open, kept for the next scrape"
        second = scrape(mariadb, name, keeper)
        assert failed(second) == {}
        assert scrape_sessions(mariadb, name) == kept, "the second scrape used the kept connection"
        assert value(second, "mysql_questions") > value(first, "mysql_questions"), "status read afresh"
    finally:
        keeper.close()
    eventually(lambda: scrape_sessions(mariadb, name) == [], "the kept connection closing with the keeper")


def test_a_killed_kept_connection_is_replaced_within_the_next_scrape(
    mariadb: MariaDBServer, new_database: Callable[[str], str]
) -> None:
    name = new_database("keeper_killed")
    mariadb.recreate(name)
    keeper = ConnectionKeeper()
    try:
        scrape(mariadb, name, keeper)
        (kept,) = scrape_sessions(mariadb, name)
        mariadb.execute(f"KILL CONNECTION {kept}")
        eventually(lambda: kept not in scrape_sessions(mariadb, name), "the kept session ending")
        results = scrape(mariadb, name, keeper)
        assert failed(results) == {}, "the broken connection was replaced before the collectors ran"
        (replacement,) = scrape_sessions(mariadb, name)
        assert replacement != kept
    finally:
        keeper.close()
