"""The restore's row counts, run beside the loads: a wrong count still stops everything before the target changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mariadb_server import MariaDBServer
from mysql_snapshot import snapshot, staging_leftovers
from test_bad_input import edit_manifest

from dbkeeper.plugin import DatabaseURL
from dbkeeper_mysql.drill import MysqlDrill
from helpers import assert_one_line_error, dbkeeper


def backup_with_a_wrong_count(server: MariaDBServer, database: str, backups: Path) -> tuple[str, str, int]:
    """Back up *database*, then record one row too many for the table loaded in the middle (resealed).

    Returns the backup id, the table and its true row count.
    """
    manifest: dict[str, Any] = dbkeeper("backup", server.url(database), "--dir", str(backups), "--json").json()
    by_size = sorted(manifest["details"]["layout"]["tables"], key=lambda part: part["raw_bytes"], reverse=True)
    table = by_size[len(by_size) // 2]["name"]
    rows = manifest["row_counts"][table]
    edit_manifest(backups, manifest["id"], lambda m: m["row_counts"].update({table: rows + 1}), reseal=True)
    return manifest["id"], table, rows


@pytest.mark.parametrize("jobs", ["1", "3"])
def test_a_wrong_count_in_the_middle_fails_and_leaves_the_target_untouched(
    mariadb: MariaDBServer, chinook_db: str, backups: Path, new_database: Any, jobs: str
) -> None:
    backup_id, table, rows = backup_with_a_wrong_count(mariadb, chinook_db, backups)
    target = new_database("counts")
    mariadb.recreate(target)
    mariadb.execute("CREATE TABLE kept (id INT PRIMARY KEY)", "INSERT INTO kept VALUES (1), (2)", database=target)
    before = snapshot(mariadb, target)
    run = dbkeeper(
        "restore", backup_id, mariadb.url(target), "--dir", str(backups), "--force", "--jobs", jobs, check=False
    )
    assert_one_line_error(
        run, f"table `{table}` loaded {rows} rows, the backup records {rows + 1}; the target was not touched"
    )
    assert snapshot(mariadb, target) == before
    assert not staging_leftovers(mariadb), "the loads were stopped and the staging database dropped"


def test_a_drill_with_a_wrong_count_fails_and_drops_its_scratch_database(
    mariadb: MariaDBServer, chinook_db: str, backups: Path, tmp_path: Path
) -> None:
    backup_id, table, rows = backup_with_a_wrong_count(mariadb, chinook_db, backups)
    before = sorted(name for (name,) in mariadb.execute("SHOW DATABASES"))
    run = dbkeeper("drill", backup_id, "--dir", str(backups), "--into", mariadb.url(), "--json", check=False)
    assert run.code == 1, run.err
    report = json.loads(run.out)
    assert report["ok"] is False
    assert f"table `{table}` loaded {rows} rows, the backup records {rows + 1}" in report["checks"][-1]["detail"]
    assert sorted(name for (name,) in mariadb.execute("SHOW DATABASES")) == before
    assert not staging_leftovers(mariadb)


def test_a_table_the_swap_moved_before_its_early_check_is_checked_in_the_target(mariadb: MariaDBServer) -> None:
    mariadb.recreate("drill_moved")
    mariadb.execute("CREATE TABLE good (id INT PRIMARY KEY)", "INSERT INTO good VALUES (1)", database="drill_moved")
    url = DatabaseURL.parse(mariadb.url("drill_moved"))
    with MysqlDrill().checking(url) as checker:
        checker.loaded("dbkeeper_restore_gone", "good")  # its staging database was swapped and dropped meanwhile
        checks = checker.checks()
    mariadb.execute("DROP DATABASE drill_moved")
    assert [(check.ok, check.detail) for check in checks] == [(True, "1 tables OK")]
    assert checker.checked == {"good"}
