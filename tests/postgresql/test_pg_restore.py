"""Restore behaviour: new and existing targets, --force, failures that change nothing, selective restores."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pg_artifacts import artifact_path, flip_byte
from pg_server import APP_USER, Server

from helpers import Run, assert_one_line_error, dbkeeper, noting_tool


def backup_id(pg: Server, database: str, backups: Path, *args: str) -> str:
    """Back up *database* with the CLI; return the backup's id."""
    return dbkeeper("-q", "backup", pg.url(database), "--dir", str(backups), *args).out.strip()


def restore(pg: Server, ident: str, target: str, backups: Path, *args: str, check: bool = True) -> Run:
    """Restore backup *ident* into database *target* with the CLI."""
    return dbkeeper("restore", ident, pg.url(target), "--dir", str(backups), *args, check=check)


def test_new_target_gets_the_source_encoding_and_locale(pg: Server, chinook: str, backups: Path, new_name: str) -> None:
    pg.psql(f"ALTER DATABASE {chinook} SET work_mem = '8MB'")  # database settings are not part of a dump
    ident = backup_id(pg, chinook, backups)
    restore(pg, ident, new_name, backups)
    facts = "SELECT pg_encoding_to_char(encoding), datcollate, datctype, pg_get_userbyid(datdba) FROM pg_database"
    assert pg.psql(f"{facts} WHERE datname = '{new_name}'") == pg.psql(f"{facts} WHERE datname = '{chinook}'")


def test_target_holding_data_is_refused_unless_forced(pg: Server, chinook: str, backups: Path) -> None:
    ident = backup_id(pg, chinook, backups)
    pg.psql("UPDATE artist SET name = 'changed' WHERE artist_id = 1; CREATE TABLE keep_me (id int)", database=chinook)
    before = pg.contents(chinook)
    run = restore(pg, ident, chinook, backups, check=False)
    assert_one_line_error(run, "already holds data", "relation public.", "pass --force")
    assert pg.contents(chinook) == before

    restore(pg, ident, chinook, backups, "--force")
    assert pg.psql("SELECT name FROM artist WHERE artist_id = 1", database=chinook).strip() == "AC/DC"
    assert "public.keep_me" in pg.contents(chinook), "--force replaces what the backup holds, nothing else"


def test_force_is_refused_where_the_restore_is_not_one_transaction(
    pg: Server, chinook: str, backups: Path, new_name: str
) -> None:
    ident = backup_id(pg, chinook, backups)
    run = restore(pg, ident, chinook, backups, "--force", "--jobs", "2", check=False)
    assert_one_line_error(run, "--force", "only safe in one transaction", "without --jobs")
    parallel = backup_id(pg, chinook, backups, "--jobs", "2")
    run = restore(pg, parallel, chinook, backups, "--force", check=False)
    assert_one_line_error(run, "--force", "it was made with --jobs")


@pytest.mark.parametrize("fmt", ["custom", "sql"])
@pytest.mark.parametrize("where", [-1, 0.5], ids=["last-byte", "middle"])
def test_damaged_artifact_is_refused_and_changes_nothing(
    pg: Server, chinook: str, backups: Path, new_name: str, fmt: str, where: float
) -> None:
    ident = backup_id(pg, chinook, backups, "--format", fmt)
    (stored,) = (backups / ident).glob("*.zst")
    flip_byte(stored, -1 if where == -1 else int(stored.stat().st_size * where))

    run = restore(pg, ident, new_name, backups, check=False)
    assert_one_line_error(run, "damaged", f"the new database '{new_name}' was removed again")
    assert new_name not in pg.databases(), "a database the restore created is removed again"

    pg.psql("DELETE FROM playlist_track WHERE playlist_id = 1", database=chinook)
    before = pg.contents(chinook)
    run = restore(pg, ident, chinook, backups, "--force", check=False)
    assert_one_line_error(run, "damaged", f"nothing was restored: '{chinook}' is unchanged")
    assert pg.contents(chinook) == before, "the single transaction never committed"


def test_failing_statement_rolls_the_whole_restore_back(pg: Server, chinook: str, backups: Path) -> None:
    ident = backup_id(pg, chinook, backups)
    pg.psql("CREATE VIEW album_titles AS SELECT title FROM album; DELETE FROM invoice_line", database=chinook)
    before = pg.contents(chinook)
    run = restore(pg, ident, chinook, backups, "--force", check=False)
    assert_one_line_error(run, "pg_restore failed", "other objects depend on it", "unchanged")
    assert pg.contents(chinook) == before


def test_parallel_restore_that_fails_removes_the_database_it_created(
    pg: Server, fidelity: str, backups: Path, new_name: str
) -> None:
    manifest = dbkeeper("backup", pg.url(fidelity), "--dir", str(backups), "--jobs", "2", "--json").json()
    post_data = next(p["artifact"] for p in manifest["details"]["parts"] if p["role"] == "post-data")  # type: ignore[index]
    flip_byte(artifact_path(backups, manifest["id"], post_data), -1)  # type: ignore[index]
    run = restore(pg, manifest["id"], new_name, backups, "--jobs", "2", check=False)  # type: ignore[index]
    assert_one_line_error(run, "SHA256 mismatch", f"the new database '{new_name}' was removed again")
    assert new_name not in pg.databases()


def test_parallel_restore_into_an_existing_empty_database(
    pg: Server, fidelity: str, backups: Path, new_name: str
) -> None:
    ident = backup_id(pg, fidelity, backups, "--jobs", "3")
    pg.psql(f"CREATE DATABASE {new_name} OWNER app")
    restore(pg, ident, new_name, backups, "--jobs", "2")
    assert pg.schema_dump(new_name) == pg.schema_dump(fidelity)
    assert pg.contents(new_name) == pg.contents(fidelity)


@pytest.mark.parametrize("jobs", [[], ["--jobs", "2"]], ids=["single", "parallel"])
def test_restore_one_table_into_a_new_database(
    pg: Server, fidelity: str, backups: Path, new_name: str, jobs: list[str]
) -> None:
    ident = backup_id(pg, fidelity, backups, *jobs)
    run = restore(pg, ident, new_name, backups, "--table", "inventory.product", "--json", *jobs)
    assert run.json()["row_counts"] == {"inventory.product": 4}  # type: ignore[index]
    restored = pg.psql(
        "SELECT string_agg(format('%I.%I', n.nspname, c.relname), ' ' ORDER BY n.nspname, c.relname) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', "
        "'pg_toast') AND c.relkind IN ('r', 'i', 'S', 'v', 'm')",
        database=new_name,
    ).split()
    assert restored == [
        "inventory.product", "inventory.product_active_name", "inventory.product_attributes",
        "inventory.product_id_seq", "inventory.product_pkey", "inventory.product_sku_key",
    ]  # fmt: skip
    definitions = pg.schema_dump(new_name)
    assert "CREATE TRIGGER product_audit" in definitions, "its trigger, and the function it calls, came along"
    assert "CREATE TYPE inventory.status AS ENUM" in definitions and "CREATE DOMAIN inventory.price" in definitions
    assert "COMMENT ON TABLE inventory.product IS 'what we sell'" in definitions
    source = pg.contents(fidelity)
    assert pg.contents(new_name)["inventory.product"] == source["inventory.product"]


def test_restore_a_dropped_table_into_the_live_database(pg: Server, chinook: str, backups: Path) -> None:
    ident = backup_id(pg, chinook, backups)
    source = pg.contents(chinook)
    pg.psql("DROP TABLE playlist_track; UPDATE artist SET name = 'kept' WHERE artist_id = 1", database=chinook)
    restore(pg, ident, chinook, backups, "--table", "playlist_track")
    after = pg.contents(chinook)
    assert after["public.playlist_track"] == source["public.playlist_track"]
    assert "kept" in after["public.artist"][0], "nothing else was touched"
    assert "playlist_track_playlist_id_fkey" in pg.schema_dump(chinook), "with its foreign keys"

    run = restore(pg, ident, chinook, backups, "--table", "playlist_track", check=False)
    assert_one_line_error(run, "already has public.playlist_track", "pass --force")
    pg.psql("DELETE FROM playlist_track WHERE playlist_id > 5", database=chinook)
    restore(pg, ident, chinook, backups, "--table", "public.playlist_track", "--force")
    assert pg.contents(chinook)["public.playlist_track"] == source["public.playlist_track"]


def test_selection_needing_missing_tables_fails_whole_and_says_why(
    pg: Server, chinook: str, backups: Path, new_name: str
) -> None:
    ident = backup_id(pg, chinook, backups)
    run = restore(pg, ident, new_name, backups, "--table", "track", check=False)
    assert_one_line_error(run, 'relation "public.album" does not exist', "add it with --table", "removed again")
    assert new_name not in pg.databases()
    tables = ["--table", "track", "--table", "album", "--table", "artist", "--table", "genre", "--table", "media_type"]
    counts = restore(pg, ident, new_name, backups, *tables, "--json").json()["row_counts"]  # type: ignore[index]
    assert counts == {"public.album": 347, "public.artist": 275, "public.genre": 25, "public.media_type": 5,
                      "public.track": 3503}  # fmt: skip


def test_restore_schemas(pg: Server, fidelity: str, backups: Path, new_name: str) -> None:
    ident = backup_id(pg, fidelity, backups)
    run = restore(pg, ident, new_name, backups, "--schema", "inventory", "--schema", '"Sales Dept"', "--json")
    assert run.json()["row_counts"] == {'"Sales Dept"."Order""Items"': 500, "inventory.product": 4}  # type: ignore[index]
    source, restored = pg.contents(fidelity), pg.contents(new_name)
    for name in ('"Sales Dept"."Order""Items"', "inventory.product", "inventory.tag_counts", "public.invoice_number"):
        assert restored[name] == source[name], name
    assert "audit.log" not in restored
    assert 'CREATE VIEW "Sales Dept".order_summary' in pg.schema_dump(new_name)


def test_selection_errors(pg: Server, fidelity: str, backups: Path, new_name: str) -> None:
    ident = backup_id(pg, fidelity, backups)
    run = restore(pg, ident, new_name, backups, "--table", "nope", check=False)
    assert_one_line_error(run, "no table 'nope' in this backup", "inventory.product")
    run = restore(pg, ident, new_name, backups, "--schema", "nope", check=False)
    assert_one_line_error(run, "no schema 'nope' in this backup", "Sales Dept, audit, inventory, public")
    pg.psql("SET ROLE app; CREATE TABLE audit.product (id int)", database=fidelity)
    second = backup_id(pg, fidelity, backups)
    run = restore(pg, second, new_name, backups, "--table", "product", check=False)
    assert_one_line_error(run, "table 'product' is ambiguous", "audit.product, inventory.product")
    plain = backup_id(pg, fidelity, backups, "--format", "sql")
    run = restore(pg, plain, new_name, backups, "--table", "inventory.product", check=False)
    assert_one_line_error(run, "plain SQL script", "custom-format")
    assert new_name not in pg.databases()


def test_a_large_archive_is_decoded_by_zstd_and_damage_still_changes_nothing(
    pg: Server, new_name: str, backups: Path, tmp_path: Path
) -> None:
    """Past 16 MiB the archive goes through ``zstd -d`` into pg_restore (spliced, tests/test_piped_decoding.py).

    The restore gives the same rows, and a damaged archive still never commits: the new
    database is removed again, an existing one is left as it was.
    """
    source = f"{new_name}_big"
    pg.psql(f"CREATE DATABASE {source} OWNER {APP_USER}")
    pg.psql(
        f"SET ROLE {APP_USER}; CREATE TABLE events AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS ref, "
        "g * 1.5 AS amount FROM generate_series(1, 300000) g; ALTER TABLE events ADD PRIMARY KEY (id)",
        database=source,
    )
    digest = "SELECT count(*), md5(string_agg(ref || amount, ',' ORDER BY id)) FROM events"
    ident = backup_id(pg, source, backups)
    assert json.loads((backups / ident / "manifest.json").read_text())["artifacts"][0]["raw_bytes"] > 16 * 2**20
    bindir, runs = tmp_path / "bin", tmp_path / "zstd-runs"
    noting_tool(bindir, "zstd", runs)
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}

    dbkeeper("-q", "restore", ident, pg.url(new_name), "--dir", str(backups), env=env)
    assert runs.read_text().split() == ["--decompress", "--stdout", "--quiet"]
    assert pg.psql(digest, database=new_name) == pg.psql(digest, database=source)

    (stored,) = (backups / ident).glob("*.zst")
    for position in (-1, stored.stat().st_size // 2):
        flip_byte(stored, position)
        run = dbkeeper("restore", ident, pg.url(f"{new_name}_2"), "--dir", str(backups), env=env, check=False)
        assert_one_line_error(run, "damaged", f"the new database '{new_name}_2' was removed again")
        assert f"{new_name}_2" not in pg.databases()
        pg.psql("DELETE FROM events WHERE id % 2 = 0", database=new_name)
        before = pg.psql(digest, database=new_name)
        run = dbkeeper("restore", ident, pg.url(new_name), "--dir", str(backups), "--force", env=env, check=False)
        assert_one_line_error(run, "damaged", f"nothing was restored: '{new_name}' is unchanged")
        assert pg.psql(digest, database=new_name) == before
        flip_byte(stored, position)
    assert len(runs.read_text().splitlines()) == 5
