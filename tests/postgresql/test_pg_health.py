"""The PostgreSQL driver's health checks (dbkeeper_check_health) find planted problems on a real server.

Each problem is made for real in its own database: a sleeping query, a session idle in an
open transaction, a session blocked by another's lock, a duplicate index, dead rows in a
table autovacuum leaves alone, an invalid index, a nearly exhausted sequence, an unindexed
foreign key, a table never analysed. Small thresholds in the request keep the waits short.
"""

from __future__ import annotations

import itertools

from pg_monitoring import app_url, driver, running, session, superuser_url
from pg_server import Server

from dbkeeper.plugin import DatabaseURL, Deadline, HealthCheck, HealthRequest, HealthThresholds
from helpers import dbkeeper, eventually

CLEAN = """
CREATE TABLE customer (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE invoice (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customer, total numeric);
CREATE INDEX invoice_customer ON invoice (customer_id);
INSERT INTO customer SELECT g, 'customer ' || g FROM generate_series(1, 2000) g;
INSERT INTO invoice (customer_id, total) SELECT 1 + g % 2000, g FROM generate_series(1, 20000) g;
ANALYZE;
"""
CHECKS = {
    "cache_hit_ratio", "connections", "long_queries", "long_transactions", "idle_in_transaction", "blocked_sessions",
    "wraparound", "sequences", "invalid_indexes", "duplicate_indexes", "unused_indexes", "foreign_keys_without_index",
    "never_analyzed", "dead_tuples",
}  # fmt: skip
_names = itertools.count(1)


def database(pg: Server, sql: str = "") -> str:
    """A new database owned by the test role, with the clean schema and then *sql*."""
    return pg.app_database(f"health_{next(_names)}", CLEAN + sql)


def health(url: DatabaseURL, **thresholds: float) -> dict[str, HealthCheck]:
    """Every check's verdict by name, through the core's Driver facade."""
    request = HealthRequest("postgresql", url, HealthThresholds(**thresholds), Deadline(20))  # type: ignore[arg-type]
    return {check.name: check for check in driver().check_health(request)}


def failing(url: DatabaseURL, name: str, **thresholds: float) -> HealthCheck:
    """Check *name* once it fails (the statistics views lag behind by up to a second or so)."""

    def failed() -> HealthCheck | None:
        check = health(url, **thresholds)[name]
        return check if check.verdict == "failed" else None

    return eventually(failed, f"the {name} check failing")


def test_a_clean_database_passes_every_check(pg: Server) -> None:
    checks = health(superuser_url(pg, database(pg)))
    assert set(checks) == CHECKS  # no replication here: that check is left out
    assert {name: check.figure for name, check in checks.items() if check.verdict != "ok"} in (
        {},
        {"cache_hit_ratio": checks["cache_hit_ratio"].figure},  # too few reads yet to judge: skipped
    )
    assert all(check.advice == "" and check.findings == () for check in checks.values())


def test_a_query_running_longer_than_the_threshold_is_found(pg: Server) -> None:
    name = database(pg)
    with running(pg, name, "SELECT pg_sleep(60) AS planted") as sleeper:
        check = failing(superuser_url(pg, name), "long_queries", long_query_seconds=0.5)
        assert len(check.findings) == 1
        assert check.findings[0].startswith(f"pid {sleeper.info.backend_pid} (postgres@{name}), ")
        assert "SELECT pg_sleep(60) AS planted" in check.findings[0]
        assert "pg_cancel_backend" in check.advice
    assert health(superuser_url(pg, name), long_query_seconds=0.5)["long_queries"].verdict == "ok"


def test_a_session_idle_in_transaction_is_found(pg: Server) -> None:
    name = database(pg)
    with session(pg, name, autocommit=False) as idle:
        idle.execute("SELECT count(*) FROM customer")
        check = failing(superuser_url(pg, name), "idle_in_transaction", idle_in_transaction_seconds=0.5)
        assert check.findings[0].startswith(f"pid {idle.info.backend_pid} ")
        assert "idle_in_transaction_session_timeout" in check.advice
        assert health(superuser_url(pg, name), long_transaction_seconds=0.5)["long_transactions"].verdict == "failed"
        idle.rollback()


def test_a_session_blocked_by_a_lock_is_found_with_its_blocker(pg: Server) -> None:
    name = database(pg)
    with session(pg, name, autocommit=False) as locker:
        locker.execute("LOCK TABLE customer IN ACCESS EXCLUSIVE MODE")
        with running(pg, name, "SELECT count(*) FROM customer") as waiter:
            check = failing(superuser_url(pg, name), "blocked_sessions")
            assert check.findings[0].startswith(f"pid {waiter.info.backend_pid} ")
            assert f"blocked by pid {locker.info.backend_pid}" in check.figure
            locker.rollback()


def test_a_duplicate_index_is_found_and_a_unique_or_constraint_index_is_not_reported(pg: Server) -> None:
    name = database(
        pg,
        "CREATE INDEX customer_name ON customer (name); CREATE INDEX customer_name_id ON customer (name, id);"
        "CREATE UNIQUE INDEX customer_id_again ON customer (id);",
    )
    check = health(superuser_url(pg, name))["duplicate_indexes"]
    assert check.verdict == "failed"
    assert check.findings == (
        "public.customer_id_again is covered by public.customer_pkey (on public.customer)",
        "public.customer_name is covered by public.customer_name_id (on public.customer)",
    )
    assert "DROP INDEX CONCURRENTLY" in check.advice


def test_a_table_with_many_dead_tuples_is_found(pg: Server) -> None:
    name = database(
        pg,
        "CREATE TABLE churn (id int PRIMARY KEY, payload text) WITH (autovacuum_enabled = false);"
        "INSERT INTO churn SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g;"
        "DELETE FROM churn WHERE id > 1000;",
    )
    check = failing(superuser_url(pg, name), "dead_tuples")
    assert check.findings == ("public.churn: 4000 dead of 5000 rows (0.800)",)
    assert "VACUUM (ANALYZE)" in check.advice


def test_an_invalid_index_an_exhausted_sequence_an_unindexed_foreign_key_and_an_unanalysed_table_are_found(
    pg: Server,
) -> None:
    name = database(
        pg,
        "INSERT INTO customer VALUES (2001, 'customer 1');"
        "CREATE SEQUENCE ticket AS smallint; SELECT setval('ticket', 32000);"
        "CREATE TABLE payment (id int, invoice_id int REFERENCES invoice) WITH (autovacuum_enabled = false);"
        "INSERT INTO payment SELECT g, g FROM generate_series(1, 12000) g;",
    )
    pg.psql("CREATE UNIQUE INDEX CONCURRENTLY customer_name_unique ON customer (name)", database=name, check=False)
    url = superuser_url(pg, name)
    assert health(url)["invalid_indexes"].findings == ("public.customer_name_unique",)
    assert health(url)["sequences"].findings == ("public.ticket: 0.977 used",)
    assert failing(url, "never_analyzed").findings == ("public.payment",)
    pg.psql("ANALYZE payment", database=name)
    assert failing(url, "foreign_keys_without_index").findings == (
        "payment_invoice_id_fkey: CREATE INDEX CONCURRENTLY ON public.payment (invoice_id)",
    )


def test_without_pg_read_all_stats_session_checks_are_skipped_with_the_reason(pg: Server) -> None:
    checks = health(app_url(pg, database(pg)))
    for name in ("long_queries", "long_transactions", "idle_in_transaction", "blocked_sessions"):
        assert checks[name].verdict == "skipped", name
        assert "GRANT pg_read_all_stats" in checks[name].figure
    assert checks["duplicate_indexes"].verdict == "ok"
    assert checks["never_analyzed"].verdict == "ok"


def test_dbkeeper_health_exits_1_on_a_failed_check_and_0_on_a_clean_database(pg: Server) -> None:
    clean = dbkeeper("health", pg.url(database(pg)))
    assert clean.code == 0
    assert "Duplicate indexes" in clean.out
    name = database(
        pg, "CREATE INDEX customer_name ON customer (name); CREATE INDEX customer_name_id ON customer (name, id);"
    )
    planted = dbkeeper("health", pg.url(name), "--json", check=False)
    assert planted.code == 1, planted.err
    assert "public.customer_name is covered by public.customer_name_id (on public.customer)" in planted.out
    assert "s3cret" not in clean.out + clean.err + planted.out + planted.err
