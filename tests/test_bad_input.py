"""Bad input gets one clear error line, exit 1 (2 for usage), no traceback, and no damage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbkeeper.backups.manifest import seal
from helpers import artifact_of, assert_one_line_error, dbkeeper, sqlite_dump


@pytest.fixture
def backup_id(chinook: Path, backups: Path) -> str:
    return dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups)).out.strip()


def edit_manifest(backups: Path, backup_id: str, change: callable, *, reseal: bool) -> None:
    path = backups / backup_id / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    if reseal:
        data["manifest_sha256"] = seal(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("url", ["not a url", "sqlite:/missing-slash.db", "postgresql://u:pw@host:port/db"])
def test_malformed_url(url: str) -> None:
    run = dbkeeper("backup", url, check=False)
    assert_one_line_error(run, "malformed database URL")
    assert ":pw@" not in run.err


def test_unknown_scheme_names_the_distribution_and_hides_the_password() -> None:
    run = dbkeeper("backup", "oracle://app:hunter22@db.example/shop", check=False)
    assert_one_line_error(run, "no driver for 'oracle://'", "no installed plugin provides it", "dbkeeper plugins")
    assert "hunter22" not in run.err + run.out
    run = dbkeeper(
        "backup", "mysql://app:hunter22@db.example/shop", env={"DBKEEPER_DISABLE_PLUGINS": "mysql"}, check=False
    )
    assert_one_line_error(run, "no driver for 'mysql://'", "pip install dbkeeper-mysql")
    assert "hunter22" not in run.err + run.out


def test_missing_database_file(tmp_path: Path, backups: Path) -> None:
    run = dbkeeper("backup", f"sqlite:///{tmp_path}/nope.db", "--dir", str(backups), check=False)
    assert_one_line_error(run, "nope.db does not exist")
    assert not (tmp_path / "nope.db").exists(), "a backup must never create the source"
    assert not backups.exists() or not list(backups.iterdir())


def test_not_a_database(tmp_path: Path, backups: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    run = dbkeeper("backup", f"sqlite:///{junk}", "--dir", str(backups), check=False)
    assert_one_line_error(run, "junk.db")
    assert [e["status"] for e in dbkeeper("backups", "list", "--dir", str(backups), "--json").json()] == []


def test_unknown_backup_id(backups: Path, backup_id: str) -> None:
    for command in (["verify", "nope"], ["restore", "nope", "sqlite:///x.db"], ["backups", "show", "nope"]):
        assert_one_line_error(dbkeeper(*command, "--dir", str(backups), check=False), "no backup 'nope'")


def test_flipped_byte_is_caught_by_verify_and_restore(backups: Path, backup_id: str, tmp_path: Path) -> None:
    artifact = artifact_of(backups, backup_id)
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    artifact.write_bytes(bytes(data))
    run = dbkeeper("verify", backup_id, "--dir", str(backups), check=False)
    assert run.code == 1 and "SHA256 mismatch" in run.err and "Traceback" not in run.err
    target = tmp_path / "target.db"
    restored = dbkeeper("restore", backup_id, f"sqlite:///{target}", "--dir", str(backups), check=False)
    assert_one_line_error(restored)
    assert "SHA256 mismatch" in restored.err or "damaged" in restored.err
    assert not target.exists(), "a failed restore leaves no target"
    assert not list(tmp_path.glob(".target.db.*"))


def test_truncated_artifact(backups: Path, backup_id: str, chinook: Path, tmp_path: Path) -> None:
    artifact = artifact_of(backups, backup_id)
    artifact.write_bytes(artifact.read_bytes()[:-1000])
    run = dbkeeper("verify", backup_id, "--dir", str(backups), check=False)
    assert run.code == 1 and "truncated" in run.err
    target = tmp_path / "existing.db"
    target.write_bytes(chinook.read_bytes())
    before = sqlite_dump(target)
    assert_one_line_error(
        dbkeeper("restore", backup_id, f"sqlite:///{target}", "--force", "--dir", str(backups), check=False),
        "truncated",
    )
    assert sqlite_dump(target) == before, "the existing target is untouched"


def test_truncated_artifact_with_matching_size_record(backups: Path, backup_id: str, tmp_path: Path) -> None:
    """Even a manifest re-sealed to the truncated size cannot hide a missing tail."""
    artifact = artifact_of(backups, backup_id)
    artifact.write_bytes(artifact.read_bytes()[:-1000])
    edit_manifest(
        backups, backup_id, lambda m: m["artifacts"][0].update(stored_bytes=artifact.stat().st_size), reseal=True
    )
    target = tmp_path / "t.db"
    run = dbkeeper("restore", backup_id, f"sqlite:///{target}", "--dir", str(backups), check=False)
    assert_one_line_error(run)
    assert not target.exists()


def test_manifest_edited_by_hand(backups: Path, backup_id: str) -> None:
    edit_manifest(backups, backup_id, lambda m: m["row_counts"].update(Track=1), reseal=False)
    for command in (["verify", backup_id], ["restore", backup_id, "sqlite:///x.db"], ["backups", "show", backup_id]):
        assert_one_line_error(dbkeeper(*command, "--dir", str(backups), check=False), "edited or damaged")
    listed = dbkeeper("backups", "list", "--dir", str(backups), "--json").json()
    assert [e["status"] for e in listed] == ["damaged"]


def test_manifest_that_is_not_json(backups: Path, backup_id: str) -> None:
    (backups / backup_id / "manifest.json").write_text('{"id": ')
    assert_one_line_error(dbkeeper("verify", backup_id, "--dir", str(backups), check=False), "not valid JSON")


def test_stage_that_is_not_installed(backups: Path, backup_id: str, tmp_path: Path) -> None:
    def use_lz4(manifest: dict) -> None:
        manifest["artifacts"][0]["stages"][0] = {"name": "lz4", "distribution": "dbkeeper-lz4"}

    edit_manifest(backups, backup_id, use_lz4, reseal=True)
    for command in (["verify", backup_id, "--deep"], ["restore", backup_id, f"sqlite:///{tmp_path}/t.db"]):
        assert_one_line_error(
            dbkeeper(*command, "--dir", str(backups), check=False), "'lz4'", "pip install dbkeeper-lz4"
        )


def test_unknown_compression_stage(chinook: Path, backups: Path) -> None:
    run = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), "--compress", "brotli", check=False)
    assert_one_line_error(run, "'brotli'", "no installed plugin provides it")
    assert_one_line_error(
        dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), "--compress", "sha256", check=False),
        "not a compression stage",
    )


def test_bad_stage_options(chinook: Path, backups: Path) -> None:
    run = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), "--level", "99", check=False)
    assert_one_line_error(run, "zstd level must be 1 to 22")
    run = dbkeeper(
        "backup", f"sqlite:///{chinook}", "--dir", str(backups), "--compress", "gzip", "--threads", "2", check=False
    )
    assert_one_line_error(run, "stage 'gzip' has no option 'threads'")
    assert not backups.exists() or not list(backups.iterdir()), "nothing is started with bad options"


def test_deep_verify_compares_row_counts(backups: Path, backup_id: str) -> None:
    edit_manifest(backups, backup_id, lambda m: m["row_counts"].update(Track=3502), reseal=True)
    assert dbkeeper("verify", backup_id, "--dir", str(backups)).code == 0, "the bytes are intact"
    run = dbkeeper("verify", backup_id, "--deep", "--dir", str(backups), "--json", check=False)
    assert run.code == 1
    assert run.json()["problems"] == ["table 'Track' has 3503 rows, the manifest records 3502"]


def test_restore_into_another_engine_is_refused(backups: Path, backup_id: str) -> None:
    run = dbkeeper("restore", backup_id, "postgresql://u:pw@localhost/x", "--dir", str(backups), check=False)
    assert_one_line_error(run, "is a sqlite backup", "restore it into a URL the sqlite driver serves")


def test_debug_shows_the_traceback(backups: Path) -> None:
    run = dbkeeper("--debug", "verify", "nope", "--dir", str(backups), check=False)
    assert run.code == 1 and "Traceback" in run.err and "error: no backup 'nope'" in run.err


def test_usage_errors_exit_2() -> None:
    assert dbkeeper("restore", check=False).code == 2
    assert dbkeeper("no-such-command", check=False).code == 2
    assert dbkeeper("prune", "--keep-last", "many", check=False).code == 2


def test_prune_without_policy(backups: Path) -> None:
    assert_one_line_error(dbkeeper("prune", "--dir", str(backups), check=False), "--keep-last")
    assert_one_line_error(dbkeeper("prune", "--keep-within", "soon", "--dir", str(backups), check=False), "7d")


def test_options_the_driver_does_not_support(chinook: Path, backups: Path, backup_id: str) -> None:
    """A flag another driver declares is a usage error (exit 2) naming the drivers that have it (issue 10)."""
    run = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), "--jobs", "2", check=False)
    assert run.code == 2, run.err
    assert "the sqlite driver does not support the 'jobs' option for backups" in run.err
    assert "(--jobs is an option of the postgresql driver)" in run.err
    run = dbkeeper("restore", backup_id, "sqlite:///x.db", "--table", "Album", "--dir", str(backups), check=False)
    assert run.code == 2, run.err
    assert "does not support the 'tables' option for restores" in run.err
    assert "(--table is an option of the mysql and postgresql drivers)" in run.err
    assert "Traceback" not in run.err


def test_manifest_without_an_integrity_stage_is_refused(backups: Path, backup_id: str) -> None:
    edit_manifest(backups, backup_id, lambda m: m["artifacts"][0]["stages"].pop(), reseal=True)
    for command in (["verify", backup_id], ["restore", backup_id, "sqlite:///x.db"]):
        assert_one_line_error(dbkeeper(*command, "--dir", str(backups), check=False), "no integrity stage")


def test_a_damaged_source_is_not_backed_up(chinook: Path, backups: Path) -> None:
    with chinook.open("r+b") as file:  # wreck the header of a b-tree page
        file.seek(4096 * 2)
        file.write(b"\0" * 8)
    run = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), check=False)
    assert_one_line_error(run, "is damaged", ".dump > salvaged.sql")
    assert dbkeeper("backups", "list", "--dir", str(backups), "--json").json() == []


def test_damage_only_the_integrity_check_sees_is_refused_too(tmp_path: Path, backups: Path) -> None:
    """A broken freelist: every table still counts; backup --check (quick_check) and verify --deep see it."""
    import sqlite3
    import struct

    db = tmp_path / "freelist.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE kept (x)")
        conn.execute("CREATE TABLE dropped (y)")
        conn.executemany("INSERT INTO dropped VALUES (?)", [("z" * 500,)] * 2000)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE dropped")
        conn.execute("INSERT INTO kept VALUES (1)")
    with db.open("r+b") as file:  # the header's first freelist trunk page
        file.seek(32)
        file.write(struct.pack(">I", 999_999))
    dbkeeper("backup", f"sqlite:///{db}", "--dir", str(backups), "--quiet")  # counts pass: stored by default
    run = dbkeeper("backup", f"sqlite:///{db}", "--dir", str(backups), "--check", check=False)
    assert_one_line_error(run, "freelist.db is damaged", "invalid page number 999999", "more")
    assert dbkeeper("verify", "latest", "--deep", "--dir", str(backups), check=False).code == 1
    assert len(dbkeeper("backups", "list", "--dir", str(backups), "--json").json()) == 1, "--check stored nothing"


def test_latest_is_refused_when_the_directory_holds_several_databases(
    chinook: Path, backups: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.db"
    other.write_bytes(chinook.read_bytes())
    dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups))
    dbkeeper("backup", f"sqlite:///{other}", "--dir", str(backups))
    run = dbkeeper("restore", "latest", f"sqlite:///{tmp_path}/r.db", "--dir", str(backups), check=False)
    assert_one_line_error(run, "'latest' is ambiguous", "2 databases")


def test_quiet_means_quiet(backups: Path, backup_id: str) -> None:
    assert dbkeeper("backups", "delete", backup_id, "--dir", str(backups), "--quiet").err == ""
    assert dbkeeper("backups", "list", "--dir", str(backups), "-q").err == ""
