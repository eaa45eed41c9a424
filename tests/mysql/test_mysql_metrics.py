"""The MySQL/MariaDB driver's metrics (dbkeeper_collect_metrics) and sessions (dbkeeper_sessions) on a real MariaDB.

Scrapes go through the core's Driver facade, as ``dbkeeper metrics`` makes them; the
Prometheus output is checked by promtool through the real CLI. Other sessions that hold
locks or run statements are real connections as root (see ``mysql_monitoring``).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import closing

import pytest
from mariadb_server import MariaDBServer
from mysql_monitoring import driver, replication_pair, running, thread_state, url, watcher
from promtool import check_metrics

from dbkeeper.plugin import (
    CollectorResult,
    DatabaseError,
    DatabaseURL,
    Deadline,
    HealthCheck,
    HealthRequest,
    HealthThresholds,
    MetricsOptions,
    MetricsRequest,
    SessionsRequest,
)
from helpers import dbkeeper, eventually, failed, finishes, samples, value

SHOP = (
    "CREATE TABLE item (id INT PRIMARY KEY, name VARCHAR(50))",
    "CREATE TABLE `order line` (id INT PRIMARY KEY AUTO_INCREMENT, item_id INT, KEY (item_id))",
    "INSERT INTO item SELECT seq, CONCAT('item ', seq) FROM seq_1_to_500",
    "INSERT INTO `order line` (item_id) VALUES (1)",
)


def scrape(target: DatabaseURL, *, deadline: float = 10, **options: int) -> dict[str, CollectorResult]:
    """One scrape through the core's Driver facade, by collector name."""
    request = MetricsRequest("mysql", target, Deadline(deadline), options=MetricsOptions(**options))
    return {result.name: result for result in driver().collect_metrics(request)}


@pytest.fixture
def shop(mariadb: MariaDBServer, new_database: Callable[[str], str]) -> str:
    """A database with two tables (one whose name needs quoting), 500 rows in one, 1 in the other."""
    name = new_database("metrics")
    mariadb.recreate(name)
    mariadb.execute(*SHOP, database=name)
    return name


@pytest.fixture
def restricted(mariadb: MariaDBServer, shop: str) -> Iterator[DatabaseURL]:
    """A URL for *shop* as an account with SELECT on it and nothing else."""
    with watcher(mariadb, shop) as target:
        yield target


def test_a_scrape_has_every_figure_the_issue_lists_named_by_the_rules(mariadb: MariaDBServer, shop: str) -> None:
    results = scrape(url(mariadb, shop))
    assert failed(results) == {}
    ((version,),) = mariadb.execute("SELECT VERSION()")
    assert samples(results, "version")[0].labels == {"engine": "mariadb", "version": version}
    assert value(results, "uptime") >= 0  # whole seconds: 0 in the first second of the session's server
    assert value(results, "connections", state="running") >= 1  # the scrape's own
    assert value(results, "connections", state="idle") >= 0
    assert value(results, "connections_max") == 151  # MariaDB's default max_connections
    for name in ("mysql_questions", "mysql_slow_queries", "mysql_aborted_connects", "deadlocks",
                 "mysql_innodb_buffer_pool_reads", "mysql_innodb_buffer_pool_read_requests",
                 "mysql_innodb_row_lock_waits", "mysql_innodb_row_lock_time", "mysql_innodb_buffer_pool_dirty_pages",
                 "oldest_transaction_age", "oldest_query_age", "lock_waiting_sessions"):  # fmt: skip
        assert len(samples(results, name)) == 1, name
    commands = {sample.labels["command"] for sample in samples(results, "mysql_statements")}
    assert commands == {"select", "insert", "update", "delete"}
    assert value(results, "mysql_statements", command="insert") >= 1
    assert {s.labels["outcome"] for s in samples(results, "transactions")} == {"commit", "rollback"}
    assert value(results, "mysql_innodb_buffer_pool_read_requests") > 0
    assert value(results, "database_size") > 0
    for table in ("item", "order line"):
        assert {s.labels["kind"] for s in samples(results, "table_size", table=table)} == {"data", "index", "free"}
    assert value(results, "table_size", table="item", kind="data") > 0
    assert samples(results, "replication_lag") == []  # not a replica: omitted, not 0
    everything = [sample for result in results.values() for sample in result.samples]
    for sample in everything:
        assert sample.name == "version" or not sample.name.startswith("mariadb"), sample.name
    kinds = {(s.name, s.type, s.unit, tuple(sorted(s.labels))) for s in everything}
    assert len({kind[0] for kind in kinds}) == len(kinds), "one type, unit and label set per family"


def test_promtool_accepts_the_output_and_the_password_is_not_in_it(mariadb: MariaDBServer, shop: str) -> None:
    run = dbkeeper("metrics", mariadb.url(shop), "--format", "prometheus")
    check_metrics(run.out)
    assert 'dbkeeper_up{connection="default"} 1.0' in run.out
    assert 'dbkeeper_table_size_bytes{connection="default",kind="data",table="order line"}' in run.out
    assert 'dbkeeper_transactions_total{connection="default",outcome="commit"}' in run.out
    assert 'dbkeeper_scrape_collector_success{collector="activity",connection="default"} 1.0' in run.out
    assert mariadb.password not in run.out + run.err


def test_a_thousand_commits_raise_the_commit_counter_by_at_least_a_thousand(mariadb: MariaDBServer, shop: str) -> None:
    target = url(mariadb, shop)
    before = value(scrape(target), "transactions", outcome="commit")
    with closing(mariadb.admin(shop)) as conn, conn.cursor() as cursor:
        conn.autocommit(False)
        for number in range(1000):
            cursor.execute("INSERT INTO `order line` (item_id) VALUES (%s)", (number % 500 + 1,))
            conn.commit()
    assert value(scrape(target), "transactions", outcome="commit") - before >= 1000


def test_per_table_series_stop_above_the_table_limit(mariadb: MariaDBServer, shop: str) -> None:
    for limit in (1, 0):
        results = scrape(url(mariadb, shop), table_limit=limit)
        assert samples(results, "table_size") == [], limit
        assert value(results, "database_size") > 0
    assert len(samples(scrape(url(mariadb, shop), table_limit=2), "table_size")) == 6


def test_a_port_nobody_listens_on_is_a_database_error_and_dbkeeper_up_0(mariadb: MariaDBServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = f"mysql://keeper:secret@127.0.0.1:{port}/shop"
    with pytest.raises(DatabaseError, match=r"cannot connect to .*Connection refused"):
        scrape(DatabaseURL.parse(target))
    run = dbkeeper("metrics", target, "--format", "prometheus")
    assert 'dbkeeper_up{connection="default"} 0.0' in run.out
    assert "secret" not in run.out + run.err


def test_a_server_that_never_answers_is_given_up_on_at_the_deadline() -> None:
    """The URL allows ten minutes to connect; the scrape's 1 s deadline wins (before: a 600 s wait)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts the connections; nothing ever answers them
        target = DatabaseURL.parse(f"mysql://keeper:pw@127.0.0.1:{silent.getsockname()[1]}/shop?connect_timeout=600")
        with pytest.raises(DatabaseError, match=r"no answer within 1 s"):
            finishes(lambda: scrape(target, deadline=1), "a scrape of a silent server")


def test_a_missing_privilege_fails_only_the_collectors_that_need_it(restricted: DatabaseURL) -> None:
    results = scrape(restricted)
    errors = failed(results)
    assert set(errors) == {"activity", "replication"}
    assert "PROCESS" in (errors["activity"] or "")
    assert "SLAVE MONITOR" in (errors["replication"] or "")
    assert len(samples(results, "uptime")) == 1
    assert value(results, "table_size", table="item", kind="data") > 0
    assert samples(results, "oldest_query_age") == []


def test_a_scrape_beside_lock_tables_write_returns_and_counts_the_waiting_session(
    mariadb: MariaDBServer, shop: str
) -> None:
    with closing(mariadb.admin(shop)) as holder, holder.cursor() as cursor:
        cursor.execute("LOCK TABLES item WRITE")
        with running(mariadb, shop, "SET SESSION lock_wait_timeout = 50", "SELECT COUNT(*) FROM item") as waiter:
            eventually(lambda: "lock" in (thread_state(mariadb, waiter.thread_id()) or ("",))[0], "the lock wait")
            results = finishes(lambda: scrape(url(mariadb, shop), deadline=5), "a scrape beside LOCK TABLES")
            cursor.execute("UNLOCK TABLES")
    assert failed(results) == {}
    assert value(results, "lock_waiting_sessions") >= 1
    assert value(results, "table_size", table="item", kind="data") > 0


def test_sessions_show_others_with_their_waits_blockers_and_short_queries(mariadb: MariaDBServer, shop: str) -> None:
    with closing(mariadb.admin(shop)) as holder, holder.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("UPDATE item SET name = 'held' WHERE id = 1")
        long_text = "x" * 300
        update = f"UPDATE item SET name = 'waiting' WHERE id = 1 AND name <> '{long_text}'"
        with running(mariadb, shop, "SET SESSION innodb_lock_wait_timeout = 50", update) as waiter:
            eventually(lambda: (thread_state(mariadb, waiter.thread_id()) or ("", 0))[1] >= 1, "the row lock wait")
            found = driver().sessions(SessionsRequest("mysql", url(mariadb, shop), Deadline(10)))
            cursor.execute("ROLLBACK")
    by_id = {session.id: session for session in found}
    waiting = by_id[str(waiter.thread_id())]
    assert waiting.state == "active"
    assert waiting.wait == "row lock"
    assert waiting.blocked_by == (str(holder.thread_id()),)
    assert len(waiting.query) == 200
    assert waiting.query.startswith("UPDATE item SET name = 'waiting' WHERE id = 1 AND name <> 'xxx")
    assert by_id[str(holder.thread_id())].state == "idle in transaction"
    assert all(session.user != "keeper" for session in found), "the scrape's own connection is not listed"


def test_a_replica_reports_its_lag_and_threads_and_health_judges_them() -> None:
    """A second pair of servers: a source with a binary log and a replica of it."""
    with replication_pair() as (source, replica):
        source.execute(
            "CREATE DATABASE shop", "CREATE TABLE shop.item (id INT PRIMARY KEY)", "INSERT INTO shop.item VALUES (1)"
        )
        eventually(lambda: replica.execute("SELECT COUNT(*) FROM shop.item") == [(1,)], "the row reaching the replica")
        target = url(replica, "shop")
        running_replica = scrape(target)
        exposition = dbkeeper("metrics", replica.url("shop"), "--format", "prometheus").out
        check = replica_health(target)
        replica.execute("STOP SLAVE SQL_THREAD")
        stopped, stopped_check = scrape(target), replica_health(target)
        on_source = scrape(url(source, "shop"))
    assert failed(running_replica) == {}
    assert value(running_replica, "replication_lag") >= 0
    assert value(running_replica, "mysql_replica_running", thread="io") == 1
    assert value(running_replica, "mysql_replica_running", thread="sql") == 1
    check_metrics(exposition)
    assert 'dbkeeper_replication_lag_seconds{connection="default"}' in exposition
    assert check.verdict == "ok"
    assert samples(stopped, "replication_lag") == []  # NULL while the SQL thread is stopped: left out, not 0
    assert value(stopped, "mysql_replica_running", thread="sql") == 0
    assert (stopped_check.verdict, stopped_check.figure) == ("failed", "replication is not running")
    assert samples(on_source, "replication_lag") == samples(on_source, "mysql_replica_running") == []


def replica_health(target: DatabaseURL) -> HealthCheck:
    """The replication_lag health check of *target*."""
    request = HealthRequest("mysql", target, HealthThresholds(), Deadline(30))
    (check,) = (check for check in driver().check_health(request) if check.name == "replication_lag")
    return check
