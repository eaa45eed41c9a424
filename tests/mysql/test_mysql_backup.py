"""Backups and restores of real MariaDB databases through the real CLI, with both dump paths.

``client`` dumps with mariadb-dump and loads with the mariadb client; ``python`` sets
DBKEEPER_MYSQL_TOOLS=python, so the pure-Python dumper writes the backup and PyMySQL
loads it. Every round trip is judged by the server: SHOW CREATE of every object and every
row, table by table (tests/mysql/mysql_snapshot.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mariadb_server import MariaDBServer
from mysql_snapshot import assert_same_database, count, snapshot, staging_leftovers

from helpers import BIN, assert_one_line_error, dbkeeper

TOOLS = {"client": {}, "python": {"DBKEEPER_MYSQL_TOOLS": "python"}}


@pytest.fixture(params=sorted(TOOLS))
def tools(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment selecting one dump/load path."""
    return TOOLS[request.param]


def backup(server: MariaDBServer, database: str, backups: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Back up *database* through the CLI; return the manifest."""
    return dbkeeper("backup", server.url(database), "--dir", str(backups), "--json", env=env).json()  # type: ignore[return-value]


def restore(server: MariaDBServer, backup_id: str, database: str, backups: Path, *options: str, **kwargs: Any) -> Any:
    """Restore through the CLI (``check=False`` returns the failed run)."""
    run = dbkeeper("restore", backup_id, server.url(database), "--dir", str(backups), "--json", *options, **kwargs)
    return run.json() if run.code == 0 else run


def table_counts(server: MariaDBServer, database: str) -> dict[str, int]:
    """Rows per base table, counted by the server."""
    names = server.execute(
        f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{database}' "
        "AND TABLE_TYPE = 'BASE TABLE'"
    )
    return {str(name): count(server, database, str(name)) for (name,) in names}


def test_chinook_round_trip(
    mariadb: MariaDBServer, chinook_db: str, backups: Path, new_database: Callable[[str], str], tools: dict[str, str]
) -> None:
    manifest = backup(mariadb, chinook_db, backups, tools)
    ((version,),) = mariadb.execute("SELECT VERSION()")
    assert manifest["engine"] == "mariadb"
    assert manifest["engine_version"] == version
    assert manifest["format"] == "sql"
    assert manifest["details"]["flavor"] == "mariadb"
    assert manifest["details"]["server_version"] == version
    expected_dumper = "pure-Python" if tools else "mariadb-dump"
    assert expected_dumper in manifest["details"]["dumper"]
    if not tools:  # read from the early dump's first line: the same as the tool's --version says
        line = subprocess.run(["mariadb-dump", "--version"], capture_output=True, text=True, check=True).stdout
        assert manifest["details"]["dumper"] == " ".join(line.split())
    assert manifest["row_counts"] == table_counts(mariadb, chinook_db)
    names = [artifact["file"] for artifact in manifest["artifacts"]]
    assert sorted(names)[0] == "0-header.sql.zst"
    assert sorted(names)[-1] == "3-objects.sql.zst"
    assert "1-00011-Track.sql.zst" in names

    target = new_database("chinook")
    result = restore(mariadb, manifest["id"], target, backups, env=tools)
    assert result["row_counts"] == manifest["row_counts"]
    assert_same_database(mariadb, chinook_db, target)
    assert not staging_leftovers(mariadb)


def test_rich_schema_round_trip_in_parallel(
    mariadb: MariaDBServer, rich_db: str, backups: Path, new_database: Callable[[str], str], tools: dict[str, str]
) -> None:
    manifest = backup(mariadb, rich_db, backups, tools)
    assert manifest["row_counts"] == table_counts(mariadb, rich_db)
    assert manifest["row_counts"]["order lines"] == 3002
    assert manifest["row_counts"]["empty_table"] == 0
    assert manifest["details"]["non_transactional_tables"] == ["audit_log"]
    layout = {part["name"]: part for part in manifest["details"]["layout"]["tables"]}
    assert layout["customers"]["triggers"] is not None
    assert layout["blobs"]["triggers"] is None

    target = new_database("rich")
    restore(mariadb, manifest["id"], target, backups, "--jobs", "3", env=tools)
    assert_same_database(mariadb, rich_db, target)
    ((data,),) = mariadb.execute(f"SELECT data FROM `{target}`.blobs WHERE id = 1")
    assert data == bytes(range(256))
    assert mariadb.execute(f"SELECT nickname IS NULL, note IS NULL FROM `{target}`.customers ORDER BY id")[:2] == [
        (1, 1),
        (0, 0),
    ]


def test_stock_tools_restore_the_artifacts_alone(
    mariadb: MariaDBServer, rich_db: str, backups: Path, new_database: Callable[[str], str], tools: dict[str, str]
) -> None:
    """``zstd -dc <backup>/*.sql.zst | mariadb DB`` needs nothing of dbkeeper."""
    manifest = backup(mariadb, rich_db, backups, tools)
    target = new_database("stock")
    details = manifest["details"]
    mariadb.execute(
        f"CREATE DATABASE `{target}` CHARACTER SET {details['character_set']} COLLATE {details['collation']}"
    )
    client = subprocess.list2cmdline(mariadb.client_argv(target))
    subprocess.run(
        ["bash", "-o", "pipefail", "-c", f'zstd -dc "$1"/*.sql.zst | {client}', "_", str(backups / manifest["id"])],
        check=True,
        capture_output=True,
    )
    assert_same_database(mariadb, rich_db, target)


def test_without_client_tools_the_python_paths_are_used(
    mariadb: MariaDBServer, chinook_db: str, backups: Path, new_database: Callable[[str], str]
) -> None:
    """With no mariadb-dump or mariadb on PATH, ``pip install dbkeeper-mysql`` alone backs up and restores."""
    no_tools = {"PATH": str(BIN)}
    manifest = backup(mariadb, chinook_db, backups, no_tools)
    assert "pure-Python" in manifest["details"]["dumper"]
    target = new_database("no_tools")
    restore(mariadb, manifest["id"], target, backups, "--jobs", "2", env=no_tools)
    assert_same_database(mariadb, chinook_db, target)
    required = dbkeeper(
        "backup", mariadb.url(chinook_db), "--dir", str(backups), env={**no_tools, "DBKEEPER_MYSQL_TOOLS": "client"},
        check=False,
    )  # fmt: skip
    assert_one_line_error(required, "mariadb-dump or mysqldump not found on PATH", "DBKEEPER_MYSQL_TOOLS=python")


def test_deep_verify_counts_the_rows_of_every_table(mariadb: MariaDBServer, rich_db: str, backups: Path) -> None:
    manifest = backup(mariadb, rich_db, backups)
    report = dbkeeper("verify", manifest["id"], "--deep", "--json", "--dir", str(backups)).json()
    assert report == {"id": manifest["id"], "deep": True, "ok": True, "checked_bytes": report["checked_bytes"],
                      "problems": []}  # fmt: skip


def test_restore_chosen_tables(
    mariadb: MariaDBServer, chinook_db: str, backups: Path, new_database: Callable[[str], str]
) -> None:
    manifest = backup(mariadb, chinook_db, backups)
    source = snapshot(mariadb, chinook_db)

    pair = new_database("pair")
    result = restore(mariadb, manifest["id"], pair, backups, "--table", "Album", "--table", "Artist")
    assert result["row_counts"] == {"Album": 347, "Artist": 275}
    restored = snapshot(mariadb, pair)
    assert sorted(restored) == ["database", "rows Album", "rows Artist", "table Album", "table Artist"]
    assert all(restored[key] == source[key] for key in restored if key != "database")

    live = new_database("live")
    restore(mariadb, manifest["id"], live, backups)
    mariadb.execute(
        f"UPDATE `{live}`.Track SET Name = 'changed'", f"UPDATE `{live}`.Album SET Title = 'kept' WHERE AlbumId = 1"
    )
    refused = restore(mariadb, manifest["id"], live, backups, "--table", "Track", check=False)
    assert_one_line_error(refused, "table `Track` already exists", "--force")
    restore(mariadb, manifest["id"], live, backups, "--table", "Track", "--force")
    after = snapshot(mariadb, live)
    assert after["table Track"] == source["table Track"]  # its foreign keys name this database's tables
    assert after["rows Track"] == source["rows Track"]
    assert after["rows Album"] != source["rows Album"]  # untouched
    with pytest.raises(Exception, match=r"foreign key constraint fails.*REFERENCES `Track`"):
        mariadb.execute(f"INSERT INTO `{live}`.PlaylistTrack VALUES (1, 999999)")
    mariadb.execute(f"INSERT INTO `{live}`.PlaylistTrack VALUES (2, 1)")  # the new Track is referenced

    unknown = restore(mariadb, manifest["id"], new_database("x"), backups, "--table", "Nope", check=False)
    assert_one_line_error(unknown, "has no table 'Nope'", "Album")


def test_non_empty_target_is_refused_and_force_replaces_everything(
    mariadb: MariaDBServer, chinook_db: str, rich_db: str, backups: Path, new_database: Callable[[str], str]
) -> None:
    chinook = backup(mariadb, chinook_db, backups)
    rich = backup(mariadb, rich_db, backups)
    target = new_database("busy")
    restore(mariadb, rich["id"], target, backups)
    refused = restore(mariadb, chinook["id"], target, backups, check=False)
    assert_one_line_error(refused, f"restore target `{target}`", "already holds 7 tables, 2 views, 2 routines, 1 event",
                          "--force")  # fmt: skip
    assert_same_database(mariadb, rich_db, target)
    restore(mariadb, chinook["id"], target, backups, "--force", "--jobs", "2")
    assert_same_database(mariadb, chinook_db, target)
    assert not staging_leftovers(mariadb)


@pytest.mark.parametrize("damaged", ["1-00011-Track.sql.zst", "3-objects.sql.zst"])
def test_damaged_artifact_is_refused_and_target_unchanged(
    mariadb: MariaDBServer,
    chinook_db: str,
    rich_db: str,
    backups: Path,
    new_database: Callable[[str], str],
    damaged: str,
) -> None:
    good = backup(mariadb, rich_db, backups)
    target = new_database("kept")
    restore(mariadb, good["id"], target, backups)
    before = snapshot(mariadb, target)
    manifest = backup(mariadb, chinook_db, backups)
    artifact = backups / manifest["id"] / damaged
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    for jobs in ("1", "3"):
        run = restore(mariadb, manifest["id"], target, backups, "--force", "--jobs", jobs, check=False)
        assert_one_line_error(run, "damaged")
        assert snapshot(mariadb, target) == before
        assert not staging_leftovers(mariadb)
