"""The PostgreSQL driver's maintenance (dbkeeper_plan_maintenance) and ``dbkeeper optimize`` on a real server.

The plan measures and changes nothing; applying runs VACUUM (ANALYZE), ANALYZE and REINDEX
INDEX CONCURRENTLY; a step whose lock another session holds is skipped within the lock
timeout, and that session goes on and commits.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from pg_monitoring import driver, session, superuser_url
from pg_server import Server

from dbkeeper.plugin import Maintenance, MaintenanceRequest, MaintenanceStep
from helpers import dbkeeper, eventually, finishes

BLOATED = """
CREATE TABLE "Churn Log" (id int PRIMARY KEY, payload text) WITH (autovacuum_enabled = false);
INSERT INTO "Churn Log" SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g;
DELETE FROM "Churn Log" WHERE id % 5 <> 0;
CREATE TABLE fresh (id int) WITH (autovacuum_enabled = false);
INSERT INTO fresh SELECT generate_series(1, 100);
CREATE TABLE tag (name text);
INSERT INTO tag VALUES ('a'), ('a');
"""
TABLE = 'public."Churn Log"'
STATISTICS = (
    "SELECT relname, last_vacuum, last_analyze, n_dead_tup, vacuum_count, analyze_count "
    "FROM pg_stat_user_tables ORDER BY relname"
)
_names = itertools.count(1)


@pytest.fixture
def bloated(pg: Server) -> str:
    """A database with a bloated table (80 % dead rows), a table never analysed and an invalid index."""
    name = pg.app_database(f"optimize_{next(_names)}", BLOATED)
    pg.psql("CREATE UNIQUE INDEX CONCURRENTLY tag_name ON tag (name)", database=name, check=False)  # left invalid
    pg.psql("DELETE FROM tag WHERE ctid = (SELECT min(ctid) FROM tag)", database=name)  # a rebuild can succeed now
    return name


def maintenance(pg: Server, database: str) -> Maintenance:
    """The driver's maintenance of *database*, as the core asks for it."""
    return driver().maintenance(MaintenanceRequest("postgresql", superuser_url(pg, database)))


def planned(pg: Server, database: str) -> list[MaintenanceStep]:
    """The plan once the statistics show the dead rows (they are flushed about once a second)."""
    steps: list[MaintenanceStep] = []

    def ready() -> bool:
        work = maintenance(pg, database)
        try:
            steps[:] = work.plan()
        finally:
            work.close()
        return any(step.action == "vacuum" for step in steps)

    eventually(ready, "a VACUUM step for the bloated table")
    return steps


def statistics(pg: Server, database: str) -> list[tuple[Any, ...]]:
    """Each table's vacuum and analyze facts and dead rows, and the indexes' validity."""
    with session(pg, database) as other:
        tables = other.execute(STATISTICS).fetchall()
        indexes = other.execute("SELECT indexrelid::regclass::text, indisvalid FROM pg_index ORDER BY 1").fetchall()
    return [*tables, *indexes]


def test_the_plan_names_each_step_with_its_sql_and_lock_and_changes_nothing(pg: Server, bloated: str) -> None:
    steps = planned(pg, bloated)
    before = statistics(pg, bloated)
    again = maintenance(pg, bloated)
    try:
        assert again.plan() == steps
    finally:
        again.close()
    assert statistics(pg, bloated) == before
    by_sql = {step.sql: step for step in steps}
    assert set(by_sql) == {
        f"VACUUM (ANALYZE) {TABLE}",
        f"VACUUM (FULL, ANALYZE) {TABLE}",
        "ANALYZE public.fresh",
        "ANALYZE public.tag",
        "REINDEX INDEX CONCURRENTLY public.tag_name",
    }
    vacuum = by_sql[f"VACUUM (ANALYZE) {TABLE}"]
    assert (vacuum.object, vacuum.lock, vacuum.blocking) == (TABLE, "SHARE UPDATE EXCLUSIVE", False)
    assert vacuum.reason.startswith("4000 dead of 5000 rows (0.80")
    assert vacuum.bytes_before is not None and vacuum.bytes_before > 1_000_000
    full = by_sql[f"VACUUM (FULL, ANALYZE) {TABLE}"]
    assert (full.lock, full.blocking) == ("ACCESS EXCLUSIVE", True)
    assert not any(step.blocking for step in steps if step is not full)


def test_applying_vacuums_analyses_and_rebuilds_the_invalid_index(pg: Server, bloated: str) -> None:
    steps = [step for step in planned(pg, bloated) if not step.blocking]
    work = maintenance(pg, bloated)
    try:
        outcomes = {step.sql: work.apply(step, lock_timeout=5) for step in steps}
    finally:
        work.close()
    assert {sql: outcome.status for sql, outcome in outcomes.items()} == dict.fromkeys(outcomes, "done")
    vacuumed = outcomes[f"VACUUM (ANALYZE) {TABLE}"]
    assert vacuumed.bytes_after is not None
    with session(pg, bloated) as other:
        assert other.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'tag_name'::regclass").fetchone() == (
            True,
        )
        assert other.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'fresh'").fetchone() == (1,)
    eventually(
        lambda: (row := statistics(pg, bloated)[0])[1] is not None and row[3] == 0,
        "VACUUM clearing the dead rows of the bloated table",
    )


def test_a_step_blocked_by_another_sessions_lock_is_skipped_and_that_session_survives(pg: Server, bloated: str) -> None:
    vacuum = next(step for step in planned(pg, bloated) if step.action == "vacuum")
    with session(pg, bloated, autocommit=False) as locker:
        locker.execute('LOCK TABLE "Churn Log" IN SHARE MODE')
        work = maintenance(pg, bloated)
        try:
            outcome = finishes(lambda: work.apply(vacuum, lock_timeout=1), "a VACUUM behind a SHARE lock")
        finally:
            work.close()
        assert outcome.status == "skipped"
        assert "SHARE UPDATE EXCLUSIVE lock was not granted within 1 s" in outcome.detail
        locker.execute("INSERT INTO \"Churn Log\" VALUES (9999, 'written by the session that held the lock')")
        locker.commit()
    with session(pg, bloated) as other:
        assert other.execute('SELECT payload FROM "Churn Log" WHERE id = 9999').fetchone() == (
            "written by the session that held the lock",
        )
    assert statistics(pg, bloated)[0][1] is None  # never vacuumed


def test_dbkeeper_optimize_plans_then_applies_only_the_non_blocking_steps(pg: Server, bloated: str) -> None:
    planned(pg, bloated)
    url = pg.url(bloated)
    before = statistics(pg, bloated)
    plan = dbkeeper("optimize", url, "--json")
    assert f"VACUUM (FULL, ANALYZE) {TABLE}" in [step["sql"] for step in json.loads(plan.out)["steps"]]
    assert statistics(pg, bloated) == before
    with session(pg, bloated) as other:
        ((file_before,),) = other.execute("SELECT pg_relation_filenode('\"Churn Log\"')").fetchall()
    applied = dbkeeper("optimize", url, "--apply", "--lock-timeout", "5", "--json")
    assert applied.code == 0, applied.err
    eventually(lambda: statistics(pg, bloated)[0][4] >= 1, "the VACUUM showing in the statistics")
    with session(pg, bloated) as other:
        ((file_after,),) = other.execute("SELECT pg_relation_filenode('\"Churn Log\"')").fetchall()
    assert file_after == file_before  # VACUUM FULL (it rewrites the table) did not run without --allow-blocking
    assert "s3cret" not in plan.out + plan.err + applied.out + applied.err
