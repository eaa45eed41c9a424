"""The PostgreSQL driver's metrics (dbkeeper_collect_metrics) against real throwaway servers.

The session's server serves most tests; a second pair — a primary with pg_stat_statements
preloaded and a streaming standby made with ``pg_basebackup -R`` — serves the statements
and replication tests.
"""

from __future__ import annotations

import functools
import itertools
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_monitoring import app_url, driver, session, superuser_url
from pg_server import APP_USER, Server, ServerError, start_server, start_standby
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
)
from helpers import dbkeeper, eventually, failed, finishes, samples, value

TABLES = """
CREATE TABLE item (id int PRIMARY KEY, name text);
INSERT INTO item SELECT g, 'item ' || g FROM generate_series(1, 500) g;
CREATE TABLE "Order Line" (id int PRIMARY KEY, item_id int REFERENCES item);
ANALYZE;
"""
_names = itertools.count(1)


def scrape(url: DatabaseURL, *, deadline: float = 10, **options: object) -> dict[str, CollectorResult]:
    """One scrape through the core's Driver facade, by collector name."""
    request = MetricsRequest("postgresql", url, Deadline(deadline), options=MetricsOptions(**options))  # type: ignore[arg-type]
    return {result.name: result for result in driver().collect_metrics(request)}


@pytest.fixture
def shop(pg: Server) -> str:
    """A database owned by the test role with two tables (one with a name that needs quoting)."""
    return pg.app_database(f"shop_{next(_names)}", TABLES)


def test_a_scrape_has_every_figure_the_issue_lists_named_by_the_rules(pg: Server, shop: str) -> None:
    results = scrape(app_url(pg, shop))
    assert failed(results) == {}
    assert samples(results, "version")[0].labels == {
        "engine": "postgresql",
        "version": pg.psql("SHOW server_version").split()[0],
    }
    assert value(results, "connections_max") == 60
    assert value(results, "uptime") > 0
    assert {s.labels["state"] for s in samples(results, "connections")} >= {"active", "idle", "idle in transaction"}
    for name in ("oldest_transaction_age", "oldest_query_age", "lock_waiting_sessions", "deadlocks", "postgresql_temp"):
        assert len(samples(results, name)) == 1, name
    assert value(results, "transactions", outcome="commit") > 0
    assert value(results, "transactions", outcome="rollback") >= 0
    assert {s.labels["source"] for s in samples(results, "postgresql_blocks")} == {"disk", "cache"}
    operations = {s.labels["operation"] for s in samples(results, "postgresql_tuples")}
    assert operations == {"returned", "fetched", "inserted", "updated", "deleted"}
    assert value(results, "database_size") > 1_000_000
    assert value(results, "postgresql_table_tuples", table="public.item", state="live") > 0  # an estimate
    assert value(results, "postgresql_table_scans", table="public.item", method="index") >= 0
    assert value(results, "table_size", table="public.item", kind="data") > 0
    assert value(results, "table_size", table='public."Order Line"', kind="index") > 0
    assert value(results, "postgresql_table_last_analyze_age", table="public.item", kind="manual") >= 0
    assert samples(results, "postgresql_table_last_vacuum_age", table="public.item") == []  # never vacuumed: omitted
    assert value(results, "postgresql_transaction_id_age", database=shop) > 0
    assert {s.labels["trigger"] for s in samples(results, "postgresql_checkpoints")} == {"timed", "requested"}
    assert value(results, "postgresql_in_recovery") == 0
    assert samples(results, "replication_lag") == []  # no standby: omitted, not 0
    assert_families_consistent(results)


def assert_families_consistent(results: dict[str, CollectorResult]) -> None:
    """Every sample of one family has the same type, unit, help and label names; no engine-less extras."""
    shared = {"version", "uptime", "connections", "connections_max", "transactions", "deadlocks",
              "oldest_transaction_age", "oldest_query_age", "lock_waiting_sessions", "database_size", "table_size",
              "replication_lag"}  # fmt: skip
    families: dict[str, tuple[object, ...]] = {}
    for result in results.values():
        for sample in result.samples:
            shape = (sample.type, sample.unit, sample.help, sorted(sample.labels))
            assert families.setdefault(sample.name, shape) == shape, sample
            assert sample.name in shared or sample.name.startswith("postgresql_"), sample.name
            assert not sample.name.endswith(("_total", "_bytes", "_seconds", "_info")), sample.name


def test_promtool_accepts_the_exposition_and_the_names_are_prometheus_names(pg: Server, shop: str) -> None:
    run = dbkeeper("metrics", pg.url(shop), "--format", "prometheus")
    check_metrics(run.out)
    for line in (
        'dbkeeper_up{connection="default"} 1.0',
        'dbkeeper_version_info{connection="default",engine="postgresql"',
        'dbkeeper_transactions_total{connection="default",outcome="commit"}',
        'dbkeeper_postgresql_blocks_total{connection="default",source="cache"}',
        'dbkeeper_postgresql_temp_bytes_total{connection="default"}',
        'dbkeeper_table_size_bytes{connection="default",kind="data",table="public.item"}',
        'dbkeeper_postgresql_checkpoint_time_seconds_total{connection="default",phase="write"}',
        'dbkeeper_scrape_collector_success{collector="table_sizes",connection="default"} 1.0',
    ):
        assert line in run.out, line
    assert "s3cret" not in run.out and "s3cret" not in run.err


def test_a_thousand_commits_raise_the_commit_counter_by_a_thousand(pg: Server, shop: str) -> None:
    url = app_url(pg, shop)
    before = value(scrape(url), "transactions", outcome="commit")
    with session(pg, shop) as other:
        for number in range(1000):
            other.execute("INSERT INTO item VALUES (%s, 'more')", (1000 + number,))
    eventually(
        lambda: value(scrape(url), "transactions", outcome="commit") - before >= 1000,
        "the commit counter rising by 1,000",
    )


def test_per_table_series_are_left_out_above_the_table_limit(pg: Server, shop: str) -> None:
    url = app_url(pg, shop)
    for options in ({"table_limit": 1}, {"table_limit": 0}):
        results = scrape(url, **options)
        assert failed(results) == {}
        assert samples(results, "table_size") == samples(results, "postgresql_table_tuples") == [], options
        assert value(results, "database_size") > 0
    assert len(samples(scrape(url, table_limit=2), "table_size")) == 4


def test_a_port_nobody_listens_on_is_a_database_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = DatabaseURL.parse(f"postgresql://app:pw-never-shown@127.0.0.1:{port}/app")
    with pytest.raises(DatabaseError, match="cannot connect to") as caught:
        finishes(lambda: scrape(url, deadline=3), "a scrape of a closed port")
    assert "pw-never-shown" not in str(caught.value)
    run = dbkeeper("metrics", url.raw, "--format", "prometheus")  # the core's side: up 0, exit 0
    assert 'dbkeeper_up{connection="default"} 0.0' in run.out
    assert "Connection refused" in run.err and "pw-never-shown" not in run.out + run.err


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener never accepts: the kernel completes the handshake, nobody ever answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_a_server_that_never_answers_is_a_database_error_within_the_deadline(silent_port: int) -> None:
    url = DatabaseURL.parse(f"postgresql://app:pw-never-shown@127.0.0.1:{silent_port}/app")
    with pytest.raises(DatabaseError, match="timeout expired") as caught:
        finishes(lambda: scrape(url, deadline=3), "a scrape of a server that never answers", timeout=30)
    assert "within connect_timeout=3 s (the time left of the metrics deadline" in str(caught.value)
    assert "pw-never-shown" not in str(caught.value)


def test_a_revoked_privilege_fails_its_collector_and_keeps_the_others(pg: Server, shop: str) -> None:
    pg.psql(
        "REVOKE EXECUTE ON FUNCTION pg_database_size(name) FROM PUBLIC; REVOKE SELECT ON pg_stat_bgwriter FROM PUBLIC",
        database=shop,
    )
    results = scrape(app_url(pg, shop))
    assert set(failed(results)) == {"database_size", "bgwriter"}
    assert "permission denied for function pg_database_size" in (results["database_size"].error or "")
    assert "permission denied for view pg_stat_bgwriter" in (results["bgwriter"].error or "")
    assert value(results, "transactions", outcome="commit") > 0
    assert value(results, "table_size", table="public.item", kind="data") > 0
    assert value(scrape(superuser_url(pg, shop)), "database_size") > 0  # the superuser keeps every right


def test_statements_without_pg_stat_statements_fail_that_collector_alone(pg: Server, shop: str) -> None:
    results = scrape(app_url(pg, shop), statements=True)
    assert set(failed(results)) == {"statements"}
    assert "pg_stat_statements is not installed" in (results["statements"].error or "")
    assert value(results, "database_size") > 0


def test_an_access_exclusive_lock_fails_table_sizes_within_the_deadline(pg: Server, shop: str) -> None:
    with session(pg, shop, autocommit=False) as locker:
        locker.execute("LOCK TABLE item IN ACCESS EXCLUSIVE MODE")
        results = finishes(lambda: scrape(app_url(pg, shop), deadline=10), "a scrape behind an ACCESS EXCLUSIVE lock")
        locker.rollback()
    assert set(failed(results)) == {"table_sizes"}
    assert "lock timeout" in (results["table_sizes"].error or "")
    assert value(results, "lock_waiting_sessions") == 0  # our own wait ended before the activity reading
    assert value(results, "postgresql_table_tuples", table="public.item", state="live") > 0
    assert value(results, "database_size") > 0


@pytest.fixture(scope="module")
def replicated() -> Iterator[tuple[Server, Server]]:
    """A primary with pg_stat_statements preloaded and its streaming standby, stopped at the end."""
    try:
        primary = start_server(settings={"shared_preload_libraries": "'pg_stat_statements'"})
    except (ServerError, OSError) as exc:
        pytest.fail(f"cannot start the primary: {exc}", pytrace=False)
    try:
        primary.psql(f"CREATE DATABASE stats OWNER {APP_USER}")
        primary.psql("CREATE EXTENSION pg_stat_statements", database="stats")
        standby = start_standby(primary)
        try:
            yield primary, standby
        finally:
            standby.stop()
    finally:
        primary.stop()


def test_statements_report_the_top_statements_by_time_without_their_text_unless_asked(
    replicated: tuple[Server, Server],
) -> None:
    primary, _ = replicated
    primary.psql(
        "SET ROLE app; CREATE TABLE IF NOT EXISTS numbers (n int); "
        "INSERT INTO numbers SELECT generate_series(1, 20000); SELECT count(*) FROM numbers WHERE n % 7 = 0",
        database="stats",
    )
    url = superuser_url(primary, "stats")
    results = scrape(url, statements=True, statements_limit=3)
    assert failed(results) == {}
    calls = samples(results, "postgresql_statement_calls")
    assert 0 < len(calls) <= 3
    assert all(set(sample.labels) == {"queryid"} for sample in calls)
    assert all(sample.unit == "seconds" for sample in samples(results, "postgresql_statement_time"))
    with_text = samples(
        scrape(url, statements=True, query_text=True, statements_limit=20), "postgresql_statement_calls"
    )
    assert any("generate_series" in sample.labels["query"] for sample in with_text)
    assert all(len(sample.labels["query"]) <= 200 for sample in with_text)


def test_replication_lag_is_reported_on_the_primary_per_standby_and_on_the_standby(
    replicated: tuple[Server, Server],
) -> None:
    primary, standby = replicated
    on_primary = eventually(
        lambda: samples(scrape(superuser_url(primary, "stats")), "replication_lag"), "a standby in pg_stat_replication"
    )
    assert [sample.labels for sample in on_primary] == [{"standby": "walreceiver"}]
    assert samples(scrape(superuser_url(primary, "stats")), "postgresql_replication_lag", standby="walreceiver")
    results = scrape(superuser_url(standby, "stats"))
    assert failed(results) == {}
    assert value(results, "postgresql_in_recovery") == 1
    assert value(results, "replication_lag") >= 0
    assert samples(results, "replication_lag")[0].labels == {}
    check_metrics(dbkeeper("metrics", standby.url("stats"), "--format", "prometheus").out)


def test_health_judges_replication_lag_on_the_primary_and_the_standby(replicated: tuple[Server, Server]) -> None:
    def replication_check(server: Server) -> HealthCheck | None:
        request = HealthRequest("postgresql", superuser_url(server, "stats"), HealthThresholds(), Deadline(10))
        return next((check for check in driver().check_health(request) if check.name == "replication_lag"), None)

    for server in replicated:
        check = eventually(functools.partial(replication_check, server), "the replication_lag check")
        assert check.verdict == "ok", check
        assert check.figure.startswith("1 replication link, ")
    request = HealthRequest(
        "postgresql",
        superuser_url(replicated[1], "stats"),
        HealthThresholds(replication_lag_seconds_max=-1),
        Deadline(10),
    )
    check = next(check for check in driver().check_health(request) if check.name == "replication_lag")
    assert (check.verdict, check.findings[0]) == ("failed", "this standby: 0.0 s behind")


def test_a_scrape_behind_a_lock_ends_at_its_deadline_whatever_its_lock_and_statement_timeouts(
    pg: Server, shop: str
) -> None:
    url = app_url(pg, shop)
    request = MetricsRequest("postgresql", url, Deadline(3), statement_timeout=30, lock_timeout=30)
    with session(pg, shop, autocommit=False) as locker:
        locker.execute("LOCK TABLE item IN ACCESS EXCLUSIVE MODE")
        results = finishes(lambda: driver().collect_metrics(request), "a scrape with a 3 s deadline", timeout=20)
        locker.rollback()
    by_name = {result.name: result for result in results}
    assert "statement timeout" in (by_name["table_sizes"].error or "")
    assert by_name["server"].success and by_name["database"].success
    assert all(result.error == "skipped: the scrape's deadline passed" for result in results[6:]), results[6:]
