"""Backups of real PostgreSQL databases, restored and compared with pg_dump and table by table."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from pg_server import Server

from helpers import dbkeeper

LAYOUTS = [
    pytest.param("custom", [], [], id="custom"),
    pytest.param("sql", [], [], id="sql"),
    pytest.param("custom", ["--jobs", "2"], ["--jobs", "2"], id="custom-jobs2"),
    pytest.param("custom", ["--jobs", "3"], [], id="custom-jobs3-restored-serially"),
    pytest.param("sql", ["--jobs", "2"], ["--jobs", "2"], id="sql-jobs2"),
]


def backup(pg: Server, database: str, backups: Path, *args: str) -> dict:
    """Back up *database* with the CLI and return the manifest."""
    return dbkeeper("backup", pg.url(database), "--dir", str(backups), "--json", *args).json()  # type: ignore[return-value]


def assert_same_database(pg: Server, source: str, target: str) -> None:
    """pg_dump --schema-only identical, and every table, sequence and large object equal."""
    assert pg.schema_dump(target) == pg.schema_dump(source)
    assert pg.contents(target) == pg.contents(source)


@pytest.mark.parametrize(("fmt", "dump_args", "restore_args"), LAYOUTS)
def test_chinook_round_trip(
    pg: Server, chinook: str, backups: Path, new_name: str, fmt: str, dump_args: list[str], restore_args: list[str]
) -> None:
    manifest = backup(pg, chinook, backups, "--format", fmt, *dump_args)
    assert manifest["row_counts"]["public.track"] == 3503
    assert manifest["row_counts"]["public.playlist_track"] == 8715
    assert len(manifest["row_counts"]) == 11
    run = dbkeeper("restore", manifest["id"], pg.url(new_name), "--dir", str(backups), "--json", *restore_args)
    assert run.json()["row_counts"] == manifest["row_counts"]
    assert new_name in pg.databases()
    assert_same_database(pg, chinook, new_name)


@pytest.mark.parametrize(("fmt", "dump_args", "restore_args"), LAYOUTS)
def test_fidelity_round_trip(
    pg: Server, fidelity: str, backups: Path, new_name: str, fmt: str, dump_args: list[str], restore_args: list[str]
) -> None:
    manifest = backup(pg, fidelity, backups, "--format", fmt, *dump_args)
    assert manifest["row_counts"] == {
        '"Sales Dept"."Order""Items"': 500,
        "audit.log": 5,
        "inventory.product": 4,
        "public.empty_table": 0,
        "public.measurement_2023": 365,
        "public.measurement_2024": 336,
        "public.settings": 4,
    }
    dbkeeper("restore", manifest["id"], pg.url(new_name), "--dir", str(backups), *restore_args)
    assert_same_database(pg, fidelity, new_name)
    restored = pg.psql(
        "SELECT name, note IS NULL, note = '', photo, attributes -> 'emoji', tags FROM inventory.product ORDER BY id;"
        "SELECT last_value FROM public.invoice_number;"
        "SELECT count(*), sum(products) FROM inventory.tag_counts;",
        database=new_name,
    )
    assert restored.splitlines() == [
        "Kettle|f|f|\\x89504e470d0a1a0a00ff||{kitchen,steel}",
        'Théière «Jasmin»|f|t|\\x|| {kitchen,"with space","quote\\"d"}'.replace("| {", "|{"),
        "Lamp 💡|f|f|||{}",
        '茶壶|f|f|\\x00010203|"🎉"|{NULL,""}',
        "7742",  # setval(4242) then 500 rows taking nextval with INCREMENT 7
        "6|7",
    ]


def test_manifest_records_what_restore_needs(pg: Server, fidelity: str, backups: Path) -> None:
    manifest = backup(pg, fidelity, backups, "--jobs", "2")
    details = manifest["details"]
    assert manifest["engine"] == "postgresql" and manifest["engine_version"].startswith("15.")
    assert manifest["driver"]["distribution"] == "dbkeeper-postgresql"
    assert manifest["source_url"] == pg.url(fidelity, password=None).replace("app@", "app:***@")
    assert details["server_version"].startswith("15.") and details["server_version_num"] // 10000 == 15
    assert details["pg_dump_version"].startswith("15.")
    assert (details["format"], details["layout"], details["encoding"]) == ("custom", "parallel", "UTF8")
    roles = [part["role"] for part in details["parts"]]
    assert roles == ["pre-data", "data", "data", "post-data"]
    in_parts = sorted(t for part in details["parts"] for t in part["tables"])
    assert in_parts == sorted(manifest["row_counts"]), "every table's rows are in exactly one data part"
    stored = sorted(a["name"] for a in manifest["artifacts"])
    assert stored == sorted(part["artifact"] for part in details["parts"])
    assert set(details["schemas"]) == {"Sales Dept", "audit", "inventory", "public"}
    assert details["relations"]["inventory.product"]["kind"] == "r"


def test_artifacts_restore_with_stock_tools(
    pg: Server, chinook: str, fidelity: str, backups: Path, tmp_path: Path
) -> None:
    """No lock-in: zstd -dc | pg_restore, zstd -dc | psql, and a --jobs backup part by part."""
    stock = {**pg.admin_env()}
    custom = backup(pg, chinook, backups)
    (artifact,) = (backups / custom["id"]).glob("*.dump.zst")
    pg.psql("CREATE DATABASE stock_custom OWNER app")
    subprocess.run(
        f"zstd -dc {artifact} | pg_restore --exit-on-error --single-transaction -d stock_custom",
        shell=True, check=True, env=stock,
    )  # fmt: skip
    assert_same_database(pg, chinook, "stock_custom")

    plain = backup(pg, chinook, backups, "--format", "sql")
    (script,) = (backups / plain["id"]).glob("*.sql.zst")
    pg.psql("CREATE DATABASE stock_sql OWNER app")
    subprocess.run(
        f"zstd -dc {script} | psql -X -q -v ON_ERROR_STOP=1 --single-transaction -d stock_sql -f - >/dev/null",
        shell=True, check=True, env=stock,
    )  # fmt: skip
    assert_same_database(pg, chinook, "stock_sql")

    parallel = backup(pg, fidelity, backups, "--jobs", "2")
    pg.psql("CREATE DATABASE stock_parallel OWNER app")
    for part in parallel["details"]["parts"]:  # in the recorded order: pre-data, data parts, post-data
        path = backups / parallel["id"] / (part["artifact"] + ".zst")
        subprocess.run(
            f"zstd -dc {path} | pg_restore --exit-on-error -d stock_parallel", shell=True, check=True, env=stock
        )
    assert_same_database(pg, fidelity, "stock_parallel")
    manifest = json.loads((backups / parallel["id"] / "manifest.json").read_text())
    assert manifest["details"]["parts"] == parallel["details"]["parts"]
