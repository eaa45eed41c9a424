"""Backups of real SQLite databases, restored and compared with the native tools."""

from __future__ import annotations

import gzip
import importlib.metadata
import json
import stat
import subprocess
from pathlib import Path

import jsonschema
import pytest

from helpers import ROOT, artifact_of, assert_one_line_error, dbkeeper, sqlite_dump

SCHEMA = ROOT / "core" / "src" / "dbkeeper" / "backups" / "manifest.schema.json"


@pytest.mark.parametrize("fmt", ["sqlite", "sql"])
@pytest.mark.parametrize("compress", ["zstd", "gzip", "none"])
def test_round_trip_is_identical(chinook: Path, backups: Path, tmp_path: Path, fmt: str, compress: str) -> None:
    manifest = dbkeeper(
        "backup", f"sqlite:///{chinook}", "--dir", str(backups), "--format", fmt, "--compress", compress, "--json"
    ).json()
    restored = tmp_path / "restored.db"
    dbkeeper("restore", manifest["id"], f"sqlite:///{restored}", "--dir", str(backups))
    assert sqlite_dump(restored) == sqlite_dump(chinook)
    assert manifest["row_counts"]["Track"] == 3503
    assert manifest["row_counts"]["PlaylistTrack"] == 8715


def test_artifact_opens_with_stock_zstd(chinook: Path, backups: Path, tmp_path: Path) -> None:
    backup_id = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups)).out.strip()
    artifact = artifact_of(backups, backup_id)
    assert artifact.name == "chinook.db.zst"
    plain = tmp_path / "plain.db"
    with plain.open("wb") as out:
        subprocess.run(["zstd", "-dc", str(artifact)], stdout=out, check=True)
    assert sqlite_dump(plain) == sqlite_dump(chinook)
    manifest = json.loads((backups / backup_id / "manifest.json").read_text())
    digest = subprocess.run(["sha256sum", str(artifact)], capture_output=True, text=True, check=True).stdout.split()[0]
    assert manifest["artifacts"][0]["stages"][-1] == {"name": "sha256", "distribution": "dbkeeper", "digest": digest}
    assert manifest["raw_bytes"] == chinook.stat().st_size
    assert manifest["stored_bytes"] == artifact.stat().st_size


def test_sql_format_loads_with_stock_sqlite3(chinook: Path, backups: Path, tmp_path: Path) -> None:
    backup_id = dbkeeper(
        "backup", f"sqlite:///{chinook}", "--dir", str(backups), "--format", "sql", "--compress", "gzip"
    ).out.strip()
    artifact = artifact_of(backups, backup_id)
    assert artifact.name == "chinook.sql.gz"
    loaded = tmp_path / "loaded.db"
    subprocess.run(["sqlite3", str(loaded)], input=gzip.decompress(artifact.read_bytes()), check=True)
    assert sqlite_dump(loaded) == sqlite_dump(chinook)


def test_manifest_content_and_schema(chinook: Path, backups: Path) -> None:
    manifest = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), "--json").json()
    jsonschema.validate(manifest, json.loads(SCHEMA.read_text()))
    on_disk = json.loads((backups / manifest["id"] / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["engine"] == "sqlite"
    assert manifest["driver"]["distribution"] == "dbkeeper-sqlite"
    assert manifest["dbkeeper_version"] == importlib.metadata.version("dbkeeper")
    assert manifest["driver"]["version"] == importlib.metadata.version("dbkeeper-sqlite")
    assert manifest["database"] == "chinook"
    assert manifest["format"] == "sqlite"
    assert [s["name"] for s in manifest["artifacts"][0]["stages"]] == ["zstd", "sha256"]
    assert manifest["artifacts"][0]["stages"][0]["level"] == 3
    assert manifest["started_at"] <= manifest["finished_at"]
    assert sum(manifest["row_counts"].values()) == 15607


def test_backup_files_are_private(chinook: Path, backups: Path) -> None:
    backup_id = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups)).out.strip()
    folder = backups / backup_id
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_compression_options_reach_the_codec(chinook: Path, backups: Path) -> None:
    fast = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), "--level", "1", "--json").json()
    strong = dbkeeper(
        "backup", f"sqlite:///{chinook}", "--dir", str(backups), "--level", "19", "--threads", "0", "--json"
    ).json()
    assert fast["artifacts"][0]["stages"][0]["level"] == 1
    assert strong["artifacts"][0]["stages"][0]["level"] == 19
    assert strong["stored_bytes"] < fast["stored_bytes"]


def test_verify_plain_and_deep(chinook: Path, backups: Path) -> None:
    backup_id = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups)).out.strip()
    assert dbkeeper("verify", backup_id, "--dir", str(backups)).out.startswith(f"ok {backup_id}")
    report = dbkeeper("verify", backup_id, "--deep", "--dir", str(backups), "--json").json()
    assert report == {
        "id": backup_id,
        "deep": True,
        "ok": True,
        "checked_bytes": artifact_of(backups, backup_id).stat().st_size,
        "problems": [],
    }


def test_list_show_delete_and_latest(chinook: Path, backups: Path) -> None:
    first = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups)).out.strip()
    second = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), "--format", "sql").out.strip()
    listed = dbkeeper("backups", "list", "--dir", str(backups), "--json").json()
    assert [(e["id"], e["status"], e["format"]) for e in listed] == [
        (first, "complete", "sqlite"),
        (second, "complete", "sql"),
    ]
    assert dbkeeper("backups", "show", "latest", "--dir", str(backups), "--json").json()["id"] == second
    shown = dbkeeper("backups", "show", first, "--dir", str(backups)).out
    assert "chinook.db.zst (zstd → sha256)" in shown and "PlaylistTrack" in shown
    dbkeeper("backups", "delete", second, "--dir", str(backups))
    assert [e["id"] for e in dbkeeper("backups", "list", "--dir", str(backups), "--json").json()] == [first]
    assert dbkeeper("backups", "show", "latest", "--dir", str(backups), "--json").json()["id"] == first


def test_backup_dir_from_config(chinook: Path, tmp_path: Path) -> None:
    (tmp_path / "dbkeeper.toml").write_text(
        f'backup_dir = "kept"\n[connections.default]\nurl = "sqlite:///{chinook}"\n'
    )
    backup_id = dbkeeper("backup", cwd=tmp_path).out.strip()
    assert (tmp_path / "kept" / backup_id / "manifest.json").is_file()
    assert dbkeeper("backups", "list", "--json", cwd=tmp_path).json()[0]["id"] == backup_id


def test_restore_refuses_non_empty_target_unless_forced(chinook: Path, backups: Path, tmp_path: Path) -> None:
    backup_id = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups)).out.strip()
    target = tmp_path / "busy.db"
    target.write_bytes(chinook.read_bytes())
    import sqlite3

    with sqlite3.connect(target) as conn:
        conn.execute("DELETE FROM InvoiceLine")
    before = sqlite_dump(target)
    refused = dbkeeper("restore", backup_id, f"sqlite:///{target}", "--dir", str(backups), check=False)
    assert refused.code == 1 and "--force" in refused.err
    assert sqlite_dump(target) == before
    dbkeeper("restore", backup_id, f"sqlite:///{target}", "--dir", str(backups), "--force")
    assert sqlite_dump(target) == sqlite_dump(chinook)
    assert not list(tmp_path.glob(".busy.db.*")), "no temporary file left beside the target"


def test_restore_into_wal_target_with_force(chinook: Path, backups: Path, tmp_path: Path) -> None:
    import sqlite3

    backup_id = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups)).out.strip()
    target = tmp_path / "wal.db"
    conn = sqlite3.connect(target)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE leftover (x)")
    conn.execute("INSERT INTO leftover VALUES (1)")
    conn.commit()
    conn.close()
    dbkeeper("restore", backup_id, f"sqlite:///{target}", "--dir", str(backups), "--force")
    assert sqlite_dump(target) == sqlite_dump(chinook)
    assert not Path(f"{target}-wal").exists()


def test_sql_format_keeps_header_pragmas_and_details_describe_the_source(
    chinook: Path, backups: Path, tmp_path: Path
) -> None:
    import sqlite3

    with sqlite3.connect(chinook) as conn:
        conn.execute("PRAGMA user_version = 7")
        conn.execute("PRAGMA application_id = 42")
        conn.execute("PRAGMA journal_mode = WAL")
    manifest = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), "--format", "sql", "--json").json()
    assert manifest["details"] == {"page_size": 4096, "journal_mode": "wal", "user_version": 7, "application_id": 42}
    restored = tmp_path / "restored.db"
    dbkeeper("restore", manifest["id"], f"sqlite:///{restored}", "--dir", str(backups))
    with sqlite3.connect(restored) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (7,)
        assert conn.execute("PRAGMA application_id").fetchone() == (42,)


def test_restore_never_replaces_a_target_with_an_open_transaction(chinook: Path, backups: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    backup_id = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups)).out.strip()
    target = tmp_path / "busy.db"
    target.write_bytes(chinook.read_bytes())
    reader = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys, time\n"
         "c = sqlite3.connect(sys.argv[1], isolation_level=None)\nc.execute('BEGIN')\n"
         "c.execute('SELECT count(*) FROM Track').fetchone()\nprint('reading', flush=True)\ntime.sleep(30)",
         str(target)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert reader.stdout.readline().strip() == "reading"
        run = dbkeeper("restore", backup_id, f"sqlite:///{target}", "--force", "--dir", str(backups), check=False)
        assert_one_line_error(run, "cannot replace", "in use")
    finally:
        reader.kill()
        reader.wait()
    assert target.read_bytes() == chinook.read_bytes()
