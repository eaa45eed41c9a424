"""verify --deep on PostgreSQL backups: every byte read through pg_restore, rows counted, compared."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pg_artifacts import artifact_path, flip_byte, rewrite_manifest, rewrite_raw
from pg_server import Server

from helpers import assert_one_line_error, dbkeeper


def make_backup(pg: Server, database: str, backups: Path, *args: str) -> dict:
    """Back up *database* with the CLI; return its manifest."""
    return dbkeeper("backup", pg.url(database), "--dir", str(backups), "--json", *args).json()  # type: ignore[return-value]


def verify(backups: Path, ident: str, *args: str) -> dict:
    """``verify --json`` (exit status 1 when problems are found)."""
    run = dbkeeper("verify", ident, "--dir", str(backups), "--json", *args, check=False)
    assert run.code in (0, 1), run.err
    return run.json()  # type: ignore[return-value]


@pytest.mark.parametrize("args", [[], ["--format", "sql"], ["--jobs", "2"]], ids=["custom", "sql", "jobs2"])
def test_deep_verify_reads_every_layout(pg: Server, fidelity: str, backups: Path, args: list[str]) -> None:
    manifest = make_backup(pg, fidelity, backups, *args)
    report = verify(backups, manifest["id"], "--deep")
    assert (report["ok"], report["deep"], report["problems"]) == (True, True, [])


def test_truncated_archive_that_pg_restore_list_accepts(
    pg: Server, chinook: str, backups: Path, tmp_path: Path, new_name: str
) -> None:
    manifest = make_backup(pg, chinook, backups)
    name = manifest["artifacts"][0]["name"]
    rewrite_raw(backups, manifest["id"], name, lambda raw: raw[: len(raw) * 6 // 10])
    raw = tmp_path / "truncated.dump"
    raw.write_bytes(subprocess.run(["zstd", "-dc", str(artifact_path(backups, manifest["id"], name))],
                                   capture_output=True, check=True).stdout)  # fmt: skip
    listed = subprocess.run(["pg_restore", "--list", str(raw)], capture_output=True, text=True)
    assert listed.returncode == 0 and "TABLE DATA public track" in listed.stdout, "pg_restore --list accepts it"
    assert verify(backups, manifest["id"])["ok"] is True, "its checksums are right"

    report = verify(backups, manifest["id"], "--deep")
    assert report["ok"] is False
    assert any("pg_restore failed" in p and "end of file" in p for p in report["problems"]), report["problems"]

    run = dbkeeper("restore", manifest["id"], pg.url(new_name), "--dir", str(backups), check=False)
    assert_one_line_error(run, "pg_restore failed", "was removed again")
    assert new_name not in pg.databases()


def test_plain_script_cut_at_a_statement_boundary(pg: Server, chinook: str, backups: Path, new_name: str) -> None:
    """Cut right after the rows, before the constraints: every row count is right, the script is not."""
    manifest = make_backup(pg, chinook, backups, "--format", "sql")
    name = manifest["artifacts"][0]["name"]
    rewrite_raw(backups, manifest["id"], name, lambda raw: raw[: raw.index(b"\n-- Name: album album_pkey") + 1])
    report = verify(backups, manifest["id"], "--deep")
    assert report["problems"] == [f"{name} does not end with pg_dump's completion line: it was cut short"]
    run = dbkeeper("restore", manifest["id"], pg.url(new_name), "--dir", str(backups), check=False)
    assert_one_line_error(run, "does not end with pg_dump's completion line", "was removed again")
    assert new_name not in pg.databases()


def test_row_counts_are_compared_with_the_manifest(pg: Server, chinook: str, backups: Path) -> None:
    manifest = make_backup(pg, chinook, backups, "--jobs", "2")
    counts = {**manifest["row_counts"], "public.track": 3502, "public.ghost": 1}
    rewrite_manifest(backups, manifest["id"], row_counts=counts)
    report = verify(backups, manifest["id"], "--deep")
    assert sorted(report["problems"]) == [
        "table 'public.ghost' is missing (the manifest records 1 rows)",
        "table 'public.track' has 3503 rows, the manifest records 3502",
    ]


def test_damaged_part_fails_both_verifies(pg: Server, fidelity: str, backups: Path) -> None:
    manifest = make_backup(pg, fidelity, backups, "--jobs", "2")
    data_part = next(p["artifact"] for p in manifest["details"]["parts"] if p["role"] == "data")
    flip_byte(artifact_path(backups, manifest["id"], data_part), 40)
    for args in ([], ["--deep"]):
        report = verify(backups, manifest["id"], *args)
        assert report["ok"] is False and "SHA256 mismatch" in report["problems"][0], report
