"""The MySQL/MariaDB driver's maintenance (dbkeeper_plan_maintenance) on a real MariaDB.

The database has a table mostly free space (90 % of its rows deleted, once InnoDB's purge
has freed their pages) and a table with statistics older than 7.5 % of its rows (its
automatic recalculation turned off, so InnoDB does not refresh them behind the test's
back). Planning must change nothing: ``information_schema.TABLES``, InnoDB's persistent
statistics and the rows' checksums are compared before and after.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from contextlib import closing

import pytest
from mariadb_server import MariaDBServer
from mysql_monitoring import driver, thread_state, url, watcher

from dbkeeper.plugin import Maintenance, MaintenanceRequest, MaintenanceStep
from helpers import dbkeeper, eventually, finishes

PLANTED = (
    "CREATE TABLE log (id INT PRIMARY KEY AUTO_INCREMENT, line VARCHAR(200)) STATS_AUTO_RECALC = 0",
    "INSERT INTO log (line) SELECT REPEAT('x', 200) FROM seq_1_to_100000",
    "DELETE FROM log WHERE id > 10000",
    "CREATE TABLE item (id INT PRIMARY KEY, name VARCHAR(50)) STATS_AUTO_RECALC = 0",
    "INSERT INTO item SELECT seq, CONCAT('item ', seq) FROM seq_1_to_2000",
    "ANALYZE TABLE item",
    "UPDATE item SET name = 'renamed' WHERE id <= 150",
    "CREATE TABLE quiet (id INT PRIMARY KEY) STATS_AUTO_RECALC = 0",
    "INSERT INTO quiet SELECT seq FROM seq_1_to_100",
    "ANALYZE TABLE quiet",
)


def snapshot(mariadb: MariaDBServer, database: str) -> list[object]:
    """What planning must not change: table facts, persistent statistics, the rows' checksums."""
    return [
        mariadb.execute(
            "SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH, DATA_FREE, UPDATE_TIME, CHECK_TIME "
            f"FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{database}' ORDER BY TABLE_NAME"
        ),
        mariadb.execute(
            "SELECT table_name, last_update, n_rows, clustered_index_size FROM mysql.innodb_table_stats "
            f"WHERE database_name = '{database}' ORDER BY table_name"
        ),
        mariadb.execute("CHECKSUM TABLE log, item, quiet EXTENDED", database=database),
    ]


def maintenance(mariadb: MariaDBServer, database: str) -> Maintenance:
    """The driver's maintenance of *database*, through the core's Driver facade."""
    return driver().maintenance(MaintenanceRequest("mysql", url(mariadb, database)))


def plan(mariadb: MariaDBServer, database: str) -> dict[str, MaintenanceStep]:
    """The planned steps by table."""
    planner = maintenance(mariadb, database)
    try:
        return {step.object.split(".", 1)[1]: step for step in planner.plan()}
    finally:
        planner.close()


@pytest.fixture
def shop(mariadb: MariaDBServer, new_database: Callable[[str], str]) -> str:
    """The planted database, once InnoDB's purge has freed the deleted rows' pages."""
    name = new_database("optimize")
    mariadb.recreate(name)
    mariadb.execute(*PLANTED, database=name)
    eventually(lambda: "log" in plan(mariadb, name), "InnoDB's purge freeing the deleted rows' pages")
    eventually(
        lambda: mariadb.execute("SHOW GLOBAL STATUS LIKE 'Innodb_history_list_length'")[0][1] == "0",
        "InnoDB's purge finishing",
    )
    return name


def test_the_plan_names_each_step_with_reason_sql_and_lock_and_changes_nothing(
    mariadb: MariaDBServer, shop: str
) -> None:
    before = snapshot(mariadb, shop)
    steps = plan(mariadb, shop)
    run = dbkeeper("optimize", mariadb.url(shop), "--json")
    assert snapshot(mariadb, shop) == before
    assert set(steps) == {"log", "item"}  # quiet: nothing to do
    optimize, analyze = steps["log"], steps["item"]
    assert (optimize.action, optimize.blocking) == ("optimize", True)
    assert optimize.sql == f"OPTIMIZE NO_WRITE_TO_BINLOG TABLE `{shop}`.`log`"
    assert "exclusive metadata lock" in optimize.lock
    assert "MiB free of" in optimize.reason
    assert optimize.reason.endswith("above 25%)")
    assert (analyze.action, analyze.blocking) == ("analyze", False)
    assert analyze.sql == f"ANALYZE NO_WRITE_TO_BINLOG TABLE `{shop}`.`item`"
    assert analyze.reason.startswith("150 of about 2000 rows changed")
    assert optimize.bytes_before is not None and optimize.bytes_before > 16 << 20
    report = run.json()
    assert report["applied"] is False  # type: ignore[index]
    assert [step["object"] for step in report["steps"]] == [f"{shop}.item", f"{shop}.log"]  # type: ignore[index]


def test_applying_gives_the_space_back_and_refreshes_the_statistics(mariadb: MariaDBServer, shop: str) -> None:
    planner = maintenance(mariadb, shop)
    try:
        outcomes = {step.object.split(".", 1)[1]: (step, planner.apply(step, 5)) for step in planner.plan()}
    finally:
        planner.close()
    step, rebuilt = outcomes["log"]
    assert rebuilt.status == "done", rebuilt
    assert rebuilt.bytes_after is not None and step.bytes_before is not None
    assert rebuilt.bytes_after < step.bytes_before / 2
    assert outcomes["item"][1].status == "done"
    assert plan(mariadb, shop) == {}


def test_without_allow_blocking_the_cli_applies_analyze_only(mariadb: MariaDBServer, shop: str) -> None:
    run = dbkeeper("optimize", mariadb.url(shop), "--apply", "--lock-timeout", "2", "--json")
    statuses = {step["object"]: step["status"] for step in run.json()["steps"]}  # type: ignore[index]
    assert statuses == {f"{shop}.item": "done", f"{shop}.log": "not run"}
    assert set(plan(mariadb, shop)) == {"log"}


def test_a_step_blocked_by_another_session_is_skipped_and_that_session_survives(
    mariadb: MariaDBServer, shop: str
) -> None:
    planner = maintenance(mariadb, shop)
    try:
        steps = planner.plan()
        with closing(mariadb.admin(shop)) as holder, holder.cursor() as cursor:
            cursor.execute("LOCK TABLES log WRITE, item WRITE")
            outcomes = [finishes(functools.partial(planner.apply, step, 1), f"applying {step.sql}") for step in steps]
            cursor.execute("SELECT COUNT(*) FROM log")
            assert cursor.fetchall() == ((10000,),)
            assert thread_state(mariadb, holder.thread_id()) is not None
            cursor.execute("UNLOCK TABLES")
    finally:
        planner.close()
    assert [outcome.status for outcome in outcomes] == ["skipped", "skipped"]
    for outcome in outcomes:
        assert "not granted within 1 s" in outcome.detail
    assert set(plan(mariadb, shop)) == {"log", "item"}


def test_without_process_no_analyze_step_is_planned_and_a_note_says_why(
    mariadb: MariaDBServer, shop: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dbkeeper")
    with watcher(mariadb, shop) as target:
        planner = driver().maintenance(MaintenanceRequest("mysql", target))
        try:
            steps = planner.plan()
        finally:
            planner.close()
    assert [step.object for step in steps] == [f"{shop}.log"]
    assert "no ANALYZE TABLE steps planned: cannot read information_schema.INNODB_SYS_TABLESTATS" in caplog.text
    assert "PROCESS" in caplog.text
