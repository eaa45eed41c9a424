"""``dbkeeper drill`` of SQLite backups through the real CLI, on a local directory and on S3 (moto).

Real SQLite files (Chinook, or a database written by ``make_db``), real backups, real
``age`` keys, a real kill -9. Each drill runs with ``TMPDIR`` set to a directory of this
test, so its private ``dbkeeper-drill-*`` directory is this drill's own: drills running on
the machine at the same time cannot be mistaken for leftovers. The PostgreSQL and MariaDB
sides have their own tests (tests/postgresql/test_pg_drill.py, tests/mysql/test_mysql_drill.py).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from s3_server import S3Server

from dbkeeper import BackupManager
from helpers import BIN, Run, artifact_of, assert_one_line_error, dbkeeper, eventually, make_db, private_copy

DRILLED = "a temporary SQLite file"
"""The target a drill without ``--into`` reports."""


@pytest.fixture(scope="module")
def made(chinook_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(directory, id) of one backup of Chinook, made once; tests drill private copies of it."""
    directory = tmp_path_factory.mktemp("made") / "backups"
    ident = dbkeeper("--quiet", "backup", f"sqlite:///{chinook_template}", "--dir", str(directory)).out.strip()
    return directory, ident


@pytest.fixture
def backup(made: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    """A private copy of the module's backup (its drill records are this test's)."""
    return private_copy(made, tmp_path)


@pytest.fixture
def drill_tmp(tmp_path: Path) -> Path:
    """The drills' TMPDIR: where their private directories appear."""
    path = tmp_path / "drill-tmp"
    path.mkdir()
    return path


def drill(directory: Path | str, tmp: Path, *args: str, ref: str = "latest", env: dict[str, str] | None = None) -> Run:
    """``dbkeeper drill REF --dir DIRECTORY ARGS`` with TMPDIR=*tmp* (it may fail)."""
    return dbkeeper("drill", ref, "--dir", str(directory), *args, env={"TMPDIR": str(tmp), **(env or {})}, check=False)


def report_of(run: Run) -> dict[str, Any]:
    """The report ``dbkeeper drill --json`` printed."""
    return dict(json.loads(run.out))


def checks(run: Run) -> dict[str, dict[str, Any]]:
    """The checks of the report *run* printed, by name."""
    return {check["name"]: check for check in report_of(run)["checks"]}


def listed(directory: Path | str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The one backup ``backups list --json`` shows in *directory*."""
    (entry,) = json.loads(dbkeeper("backups", "list", "--dir", str(directory), "--json", env=env).out)
    return dict(entry)


def manifest_of(directory: Path, ident: str) -> dict[str, Any]:
    """The backup's manifest as ``backups show --json`` prints it."""
    return dict(json.loads(dbkeeper("backups", "show", ident, "--dir", str(directory), "--json").out))


def assert_nothing_left(tmp: Path) -> None:
    """No drill directory remains in *tmp*, nor a process naming it (polled: the watchdog may be finishing)."""

    def leftovers() -> list[str]:
        found = [str(path) for path in tmp.glob("dbkeeper-drill-*")]
        for process in psutil.process_iter(["cmdline"]):
            if any(str(tmp) in arg for arg in process.info["cmdline"] or ()):
                found.append(f"pid {process.pid}: {' '.join(process.info['cmdline'])}")
        return found

    deadline = time.monotonic() + 60
    while (found := leftovers()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not found, found


def flip_a_byte(directory: Path, ident: str) -> None:
    """Damage the backup's artifact in the middle, keeping its size."""
    artifact = artifact_of(directory, ident)
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))


def drill_metrics(directory: Path, source_url: str, project: Path) -> dict[str, float]:
    """The ``dbkeeper_backup_last_drill_*`` samples of a connection to *source_url* whose backups are in *directory*."""
    project.mkdir()
    (project / "dbkeeper.toml").write_text(
        f'backup_dir = "{directory}"\n[connections.app]\nurl = "{source_url}"\n', encoding="utf-8"
    )
    (scrape,) = json.loads(dbkeeper("metrics", "app", "--format", "json", cwd=project).out)  # one connection
    return {s["metric"]: s["value"] for s in scrape["samples"] if s["metric"].startswith("dbkeeper_backup_last_drill")}


def test_a_good_backup_passes_and_is_recorded_where_people_look(
    backup: tuple[Path, str], drill_tmp: Path, tmp_path: Path
) -> None:
    directory, ident = backup
    run = drill(directory, drill_tmp, "--json")
    assert run.code == 0, run.err
    report = report_of(run)
    manifest = manifest_of(directory, ident)
    assert report["ok"] is True and report["id"] == ident and report["problem"] is None, report
    assert report["target"] == DRILLED
    assert isinstance(report["restore_seconds"], float) and report["restore_seconds"] > 0
    assert report["rows"] == sum(manifest["row_counts"].values()) > 0
    assert (report["stored_bytes"], report["raw_bytes"]) == (manifest["stored_bytes"], manifest["raw_bytes"])
    tables = len(manifest["row_counts"])
    assert checks(run) == {
        "row counts": {
            "name": "row counts", "ok": True, "skipped": False,
            "detail": f"{tables} tables, {report['rows']} rows, as the manifest records",
        },
        "integrity_check": {"name": "integrity_check", "ok": True, "skipped": False, "detail": "ok"},
    }  # fmt: skip
    assert_nothing_left(drill_tmp)

    shown = dbkeeper("backups", "show", ident, "--dir", str(directory)).out
    assert f"last drill       ok at {report['at'][:10]} " in shown and f"(into {DRILLED})" in shown, shown
    header, row = dbkeeper("backups", "list", "--dir", str(directory)).out.splitlines()
    assert header.split()[-1] == "DRILL" and row.endswith("s") and row.split()[-2] == "ok,", (header, row)
    record = listed(directory)["last_drill"]
    assert record == {
        "ok": True, "at": report["at"], "restore_seconds": report["restore_seconds"], "target": DRILLED,
        "problem": None, "options": {},
    }  # fmt: skip
    assert report["options"] == {}  # the SQLite driver declares no option for drills

    metrics = drill_metrics(directory, manifest["source_url"], tmp_path / "project")
    assert metrics["dbkeeper_backup_last_drill_success"] == 1
    assert metrics["dbkeeper_backup_last_drill_restore_seconds"] == pytest.approx(report["restore_seconds"])
    at = datetime.fromisoformat(report["at"]).timestamp()
    assert metrics["dbkeeper_backup_last_drill_timestamp_seconds"] == pytest.approx(at, abs=1e-3)


def test_an_option_the_backups_driver_does_not_declare_is_a_usage_error(
    backup: tuple[Path, str], drill_tmp: Path
) -> None:
    directory, _ = backup
    run = drill(directory, drill_tmp, "--jobs", "2")
    assert run.code == 2, (run.code, run.err)
    assert "the sqlite driver does not support the 'jobs' option for drills" in run.err, run.err
    assert "--jobs is an option of the mysql and postgresql drivers" in run.err, run.err
    assert "Traceback" not in run.err
    assert "last_drill" not in listed(directory)  # refused before anything ran: nothing recorded
    assert_nothing_left(drill_tmp)


def test_a_corrupt_backup_fails_is_recorded_and_leaves_nothing(
    backup: tuple[Path, str], drill_tmp: Path, tmp_path: Path
) -> None:
    directory, ident = backup
    flip_a_byte(directory, ident)
    assert_one_line_error(drill(directory, drill_tmp), f"error: drill of {ident} failed: ", "SHA256 mismatch")
    run = drill(directory, drill_tmp, "--json")
    assert_one_line_error(run, f"error: drill of {ident} failed: ")  # stdout is the report, stderr says why
    report = report_of(run)
    assert report["ok"] is False and report["restore_seconds"] is None, report
    assert checks(run)["restore"]["ok"] is False and "SHA256 mismatch" in report["problem"], report
    record = listed(directory)["last_drill"]
    assert record["ok"] is False and record["problem"] == report["problem"], record
    assert dbkeeper("backups", "list", "--dir", str(directory)).out.splitlines()[1].endswith("failed")
    assert "last drill       failed at " in dbkeeper("backups", "show", ident, "--dir", str(directory)).out
    metrics = drill_metrics(directory, manifest_of(directory, ident)["source_url"], tmp_path / "project")
    assert metrics.keys() == {"dbkeeper_backup_last_drill_success", "dbkeeper_backup_last_drill_timestamp_seconds"}
    assert metrics["dbkeeper_backup_last_drill_success"] == 0
    assert_nothing_left(drill_tmp)


def test_a_corrupt_backups_error_names_its_artifact(backup: tuple[Path, str], drill_tmp: Path) -> None:
    directory, ident = backup
    flip_a_byte(directory, ident)
    run = drill(directory, drill_tmp)
    assert_one_line_error(run, f"error: drill of {ident} failed: artifact {ident}/{artifact_of(directory, ident).name}")


@pytest.mark.parametrize("ref", ["id", "latest"])
def test_a_truncated_backup_is_refused_with_one_line_and_leaves_nothing(
    backup: tuple[Path, str], drill_tmp: Path, ref: str
) -> None:
    directory, ident = backup
    artifact = artifact_of(directory, ident)
    with artifact.open("r+b") as handle:
        handle.truncate(artifact.stat().st_size // 2)
    run = drill(directory, drill_tmp, ref=ident if ref == "id" else "latest")
    assert_one_line_error(run, "truncated" if ref == "id" else "no complete backup")
    assert listed(directory)["status"] == "damaged"
    if ref == "id":  # a drill of the named backup is a verdict on it: recorded as failed
        assert listed(directory)["last_drill"]["ok"] is False
    assert_nothing_left(drill_tmp)


def corrupt_index(path: Path) -> Path:
    """A database whose table is sound (row counts work) but one leaf page of its index holds garbage."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO t (name) VALUES (?)", ((f"name {i:06d}",) for i in range(5000)))
    conn.execute("CREATE INDEX t_name ON t (name)")
    conn.commit()
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 't_name'").fetchone()
    (size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    data = bytearray(path.read_bytes())
    leaf = next(page for page in range(root, len(data) // size) if data[page * size] == 0x0A)  # an index leaf
    data[leaf * size + size // 2 : leaf * size + size // 2 + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    return path


def test_a_database_corrupt_inside_fails_on_integrity_check(tmp_path: Path, drill_tmp: Path) -> None:
    source = corrupt_index(tmp_path / "broken.db")
    directory = tmp_path / "backups"
    ident = dbkeeper("--quiet", "backup", f"sqlite:///{source}", "--dir", str(directory)).out.strip()
    assert_one_line_error(drill(directory, drill_tmp), f"error: drill of {ident} failed: integrity_check: ")
    by_name = checks(drill(directory, drill_tmp, "--json"))
    assert by_name["row counts"]["ok"] is True and by_name["integrity_check"]["ok"] is False, by_name
    assert listed(directory)["last_drill"]["ok"] is False
    assert_nothing_left(drill_tmp)


@pytest.mark.parametrize(
    ("sql", "ok", "detail"),
    [
        ("SELECT count(*) = 412 FROM Invoice", True, "returned 1"),
        ("SELECT count(*) = 5 FROM Invoice", False, "returned 0"),
        ("SELECT max(InvoiceDate) > '2999-01-01' FROM Invoice", False, "returned 0"),
        ("SELEC nonsense FROM", False, 'failed: near "SELEC": syntax error'),
        ("SELECT * FROM Invoice WHERE 0", False, "returned no row"),
    ],
)
def test_check_sql_decides_the_verdict(
    backup: tuple[Path, str], drill_tmp: Path, sql: str, ok: bool, detail: str
) -> None:
    directory, ident = backup
    run = drill(directory, drill_tmp, "--check-sql", sql)
    if ok:
        assert run.code == 0 and run.err == "", run
    else:
        assert_one_line_error(run, f"error: drill of {ident} failed: check-sql: {sql}: {detail}")
    assert listed(directory)["last_drill"]["ok"] is ok
    assert_nothing_left(drill_tmp)


@pytest.mark.slow
def test_kill_9_in_the_middle_leaves_no_directory(tmp_path: Path, drill_tmp: Path) -> None:
    source = make_db(tmp_path / "big.db", 140_000, blob_size=1000)  # ~150 MB that zstd cannot shrink
    directory = tmp_path / "backups"
    dbkeeper("--quiet", "backup", f"sqlite:///{source}", "--dir", str(directory))
    source.unlink()
    process = subprocess.Popen(
        [str(BIN / "dbkeeper"), "drill", "latest", "--dir", str(directory)],
        env={**os.environ, "TMPDIR": str(drill_tmp)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:

        def restoring() -> bool:
            if process.poll() is not None:
                pytest.fail(f"the drill ended before its restore was caught: {process.communicate()}")
            return any(any(workdir.iterdir()) for workdir in drill_tmp.glob("dbkeeper-drill-*"))

        eventually(restoring, "a restore into the drill's directory")
        process.kill()
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -9
    assert_nothing_left(drill_tmp)
    assert "last_drill" not in listed(directory), "a drill that was killed has no verdict"


def into_url(directory: Path) -> str:
    """The ``--into`` URL naming a directory for SQLite's scratch files."""
    return f"sqlite:///{directory.resolve()}"


@pytest.mark.parametrize("damaged", [False, True])
def test_into_a_directory_uses_a_scratch_file_and_removes_it(
    backup: tuple[Path, str], drill_tmp: Path, tmp_path: Path, damaged: bool
) -> None:
    directory, ident = backup
    if damaged:
        flip_a_byte(directory, ident)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "dbkeeper-drill-someone-else.db").write_bytes(b"not ours")
    before = {path.name: path.read_bytes() for path in scratch.iterdir()}
    run = drill(directory, drill_tmp, "--into", into_url(scratch), "--json")
    assert run.code == (1 if damaged else 0), run.err
    assert report_of(run)["target"] == f"a scratch file in {scratch.resolve()}"
    assert {path.name: path.read_bytes() for path in scratch.iterdir()} == before
    assert listed(directory)["last_drill"]["ok"] is not damaged
    assert_nothing_left(drill_tmp)


def test_into_a_file_is_one_line(backup: tuple[Path, str], drill_tmp: Path, tmp_path: Path) -> None:
    directory, _ = backup
    not_a_directory = tmp_path / "plain.db"
    not_a_directory.write_bytes(b"")
    run = drill(directory, drill_tmp, "--into", into_url(not_a_directory))
    assert_one_line_error(run, f"--into {into_url(not_a_directory)} must name an existing directory")
    assert not_a_directory.read_bytes() == b""
    assert "last_drill" not in listed(directory), "a drill that never got a target is no verdict on the backup"
    assert_nothing_left(drill_tmp)


@pytest.mark.parametrize("into", [False, True])
def test_keep_leaves_the_file_and_its_stop_command_removes_it(
    backup: tuple[Path, str], drill_tmp: Path, tmp_path: Path, into: bool
) -> None:
    directory, _ = backup
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    run = drill(directory, drill_tmp, "--keep", "--json", *(["--into", into_url(scratch)] if into else []))
    assert run.code == 0, run.err
    kept = report_of(run)["kept"]
    count = subprocess.run(
        f"{kept['connect']} 'SELECT count(*) FROM Invoice'", shell=True, capture_output=True, text=True, timeout=60
    )
    assert count.stdout.strip() == "412", count
    assert list(scratch.iterdir()) if into else list(drill_tmp.glob("dbkeeper-drill-*")), "--keep left nothing"
    stop = subprocess.run(kept["stop"], shell=True, capture_output=True, text=True, timeout=60)
    assert stop.returncode == 0, stop
    assert list(scratch.iterdir()) == []
    assert list(drill_tmp.iterdir()) == []  # no watchdog: the stop command alone must leave nothing


def test_a_scratch_file_under_into_is_private(backup: tuple[Path, str], drill_tmp: Path, tmp_path: Path) -> None:
    directory, _ = backup
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    run = drill(directory, drill_tmp, "--keep", "--json", "--into", into_url(scratch))
    assert run.code == 0, run.err
    (kept,) = scratch.iterdir()
    mode = kept.stat().st_mode & 0o777
    kept.unlink()
    assert mode == 0o600, oct(mode)


def test_keep_prints_how_to_connect_and_stop(backup: tuple[Path, str], drill_tmp: Path) -> None:
    directory, _ = backup
    run = drill(directory, drill_tmp, "--keep")
    assert run.code == 0, run.err
    connect = next(line for line in run.out.splitlines() if line.startswith("  connect: "))
    stop = next(line for line in run.out.splitlines() if line.startswith("  stop:    "))
    assert connect.startswith("  connect: sqlite3 ") and str(drill_tmp) in connect, run.out
    subprocess.run(stop.removeprefix("  stop:    "), shell=True, check=True, timeout=60)
    assert_nothing_left(drill_tmp)


def test_an_encrypted_backup_drills_with_its_identity(chinook: Path, tmp_path: Path, drill_tmp: Path) -> None:
    identity = tmp_path / "key.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True)
    directory = tmp_path / "backups"
    args = ("--quiet", "backup", f"sqlite:///{chinook}", "--dir", str(directory), "--recipient")
    ident = dbkeeper(*args, recipient.stdout.strip()).out.strip()
    without = drill(directory, drill_tmp)
    assert_one_line_error(without, "pass --identity FILE")
    backup = listed(directory)
    assert backup["id"] == ident and "last_drill" not in backup, "a missing key is no verdict on the backup"
    assert_nothing_left(drill_tmp)
    run = drill(directory, drill_tmp, "--identity", str(identity), "--json")
    assert run.code == 0, run.err
    assert report_of(run)["ok"] is True and checks(run)["integrity_check"]["ok"] is True
    assert listed(directory)["last_drill"]["ok"] is True
    assert_nothing_left(drill_tmp)


def test_a_backup_on_s3_drills_and_its_record_is_kept_there(chinook: Path, s3: S3Server, drill_tmp: Path) -> None:
    url = f"s3://{s3.bucket('drill')}/backups"
    ident = dbkeeper("--quiet", "backup", f"sqlite:///{chinook}", "--dir", url, env=s3.env).out.strip()
    run = drill(url, drill_tmp, "--json", env=s3.env)
    assert run.code == 0, run.err
    report = report_of(run)
    assert report["ok"] is True and report["rows"] > 0 and report["target"] == DRILLED, report
    shown = dbkeeper("backups", "show", ident, "--dir", url, env=s3.env).out
    assert f"last drill       ok at {report['at'][:10]} " in shown, shown
    assert listed(url, env=s3.env)["last_drill"]["restore_seconds"] == report["restore_seconds"]
    assert_nothing_left(drill_tmp)


def test_python_api_returns_a_report_also_when_the_drill_fails(backup: tuple[Path, str]) -> None:
    directory, ident = backup
    good = BackupManager(directory).drill("latest", check_sql=["SELECT count(*) > 0 FROM Invoice"])
    assert good.ok and good.id == ident and good.problem is None
    assert good.restore_seconds is not None and good.restore_seconds > 0
    assert [check.name for check in good.checks] == [
        "row counts", "integrity_check", "check-sql: SELECT count(*) > 0 FROM Invoice"
    ]  # fmt: skip
    flip_a_byte(directory, ident)
    bad = BackupManager(directory).drill(ident)
    assert not bad.ok and bad.restore_seconds is None
    assert bad.problem is not None and "SHA256 mismatch" in bad.problem
    assert [(check.name, check.ok) for check in bad.checks] == [("restore", False)]
