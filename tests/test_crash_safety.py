"""A backup killed at any moment never looks complete; a busy writer never breaks a snapshot."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import BIN, assert_one_line_error, dbkeeper, make_db, peak_rss_mib, sqlite_dump


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 80 MB of half-compressible rows: long enough to be killed in the middle."""
    return make_db(tmp_path_factory.mktemp("big") / "big.db", 40_000, blob_size=2000)


def start_backup(db: Path, backups: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "dbkeeper"), "backup", f"sqlite:///{db}", "--dir", str(backups), "--quiet", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_kill_9_at_any_moment_leaves_nothing_that_looks_complete(big_db: Path, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    started = time.perf_counter()
    dbkeeper("backup", f"sqlite:///{big_db}", "--dir", str(tmp_path / "timing"), "--level", "1")
    duration = time.perf_counter() - started
    outcomes = []
    for step in range(8):
        proc = start_backup(big_db, backups, "--level", "1")
        time.sleep(duration * (0.1 + step * 0.11))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        outcomes.append(proc.returncode)
    entries = dbkeeper("backups", "list", "--dir", str(backups), "--json").json()
    incomplete = [e["id"] for e in entries if e["status"] == "incomplete"]
    complete = [e["id"] for e in entries if e["status"] == "complete"]
    assert {e["status"] for e in entries} <= {"complete", "incomplete"}
    assert incomplete, f"no kill landed mid-backup (duration {duration:.2f}s); the test proved nothing"
    for backup_id in incomplete:
        assert_one_line_error(dbkeeper("verify", backup_id, "--dir", str(backups), check=False), "incomplete")
        assert_one_line_error(
            dbkeeper("restore", backup_id, f"sqlite:///{tmp_path}/r.db", "--dir", str(backups), check=False),
            "incomplete",
        )
        assert not (backups / backup_id / "manifest.json").exists()
    for backup_id in complete:
        dbkeeper("verify", backup_id, "--deep", "--dir", str(backups))
    latest = dbkeeper("backups", "show", "latest", "--dir", str(backups), "--json", check=False)
    if not complete:
        assert_one_line_error(latest, "no complete backup")
    plan = dbkeeper("prune", "--keep-last", "5", "--dir", str(backups), "--json").json()
    assert set(incomplete) <= set(plan["delete"])
    assert {e["status"] for e in dbkeeper("backups", "list", "--dir", str(backups), "--json").json()} <= {"complete"}
    assert not list(backups.glob(".scratch-*")), "prune removes scratch space of killed processes"


def test_running_backup_is_listed_as_running(big_db: Path, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    proc = start_backup(big_db, backups, "--level", "19", "--threads", "0")
    try:
        deadline = time.monotonic() + 30
        while not (backups.is_dir() and [p for p in backups.iterdir() if not p.name.startswith(".")]):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        listed = dbkeeper("backups", "list", "--dir", str(backups), "--json").json()
        assert [e["status"] for e in listed] == ["running"]
        plan = dbkeeper("prune", "--keep-last", "1", "--dir", str(backups), "--json").json()
        assert plan["delete"] == [], "prune never touches a backup that is still being written"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    assert proc.returncode == 130
    assert b"Traceback" not in proc.stderr.read()
    assert not backups.exists(), "SIGTERM cleans up the partial backup, and the backup directory this run made"


WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
deadline = time.time() + float(sys.argv[2])
n = 0
while time.time() < deadline:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO ledger (amount) VALUES (?)", (n % 97,))
    conn.execute("UPDATE totals SET rows = rows + 1, amount = amount + ?", (n % 97,))
    conn.execute("COMMIT")
    n += 1
    time.sleep(float(sys.argv[3]))
print(n)
"""


@pytest.mark.parametrize(("journal_mode", "pause"), [("wal", 0), ("delete", 0.002)])
def test_snapshot_is_consistent_while_a_writer_is_busy(tmp_path: Path, journal_mode: str, pause: float) -> None:
    """WAL writers never wait; a rollback-journal writer with any idle time lets the backup in."""
    db = make_db(tmp_path / "busy.db", 20_000, blob_size=500)
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA journal_mode={journal_mode}")
        conn.execute("CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)")
        conn.execute("CREATE TABLE totals (rows INTEGER NOT NULL, amount INTEGER NOT NULL)")
        conn.execute("INSERT INTO totals VALUES (0, 0)")
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), "6", str(pause)], stdout=subprocess.PIPE, text=True
    )
    backups = tmp_path / "backups"
    ids = []
    time.sleep(0.5)
    while writer.poll() is None and len(ids) < 4:
        ids.append(dbkeeper("backup", f"sqlite:///{db}", "--dir", str(backups), "--level", "1").out.strip())
    written = int(writer.communicate()[0])
    assert written > 100, "the writer was not busy"
    seen = set()
    for backup_id in ids:
        restored = tmp_path / f"{backup_id}.db"
        dbkeeper("restore", backup_id, f"sqlite:///{restored}", "--dir", str(backups))
        with sqlite3.connect(restored) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            count, total = conn.execute("SELECT count(*), coalesce(sum(amount), 0) FROM ledger").fetchone()
            assert conn.execute("SELECT rows, amount FROM totals").fetchone() == (count, total)
        manifest = dbkeeper("backups", "show", backup_id, "--dir", str(backups), "--json").json()
        assert manifest["row_counts"]["ledger"] == count
        seen.add(count)
    assert len(seen) > 1, "every backup saw the same state: the writer was not running during them"


def test_source_is_never_modified(chinook: Path, backups: Path) -> None:
    before = sqlite_dump(chinook), chinook.stat().st_mtime_ns
    dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups))
    dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), "--format", "sql")
    assert (sqlite_dump(chinook), chinook.stat().st_mtime_ns) == before
    assert not [p for p in chinook.parent.iterdir() if p.name.startswith("chinook.db-")]


def test_memory_stays_flat(big_db: Path, tmp_path: Path) -> None:
    """Peak RSS of a backup and a restore of an 80 MB database stays well under 100 MB."""
    rss = [
        peak_rss_mib("backup", f"sqlite:///{big_db}", "--dir", str(tmp_path / "b")),
        peak_rss_mib("restore", "latest", f"sqlite:///{tmp_path}/r.db", "--dir", str(tmp_path / "b")),
    ]
    assert big_db.stat().st_size > 70 * 2**20
    assert max(rss) < 100, f"peak RSS {rss} MB"
    assert os.path.getsize(tmp_path / "r.db") == big_db.stat().st_size


def test_kill_9_during_restore_leaves_the_target_alone_and_no_litter(big_db: Path, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    dbkeeper("backup", f"sqlite:///{big_db}", "--dir", str(backups), "--level", "1")
    target = tmp_path / "target.db"
    proc = subprocess.Popen(
        [str(BIN / "dbkeeper"), "restore", "latest", f"sqlite:///{target}", "--dir", str(backups), "--quiet"]
    )
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob(".target.db.dbkeeper-restore-*")):
        assert time.monotonic() < deadline and proc.poll() is None, "the restore never started writing"
        time.sleep(0.005)
    time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert not target.exists(), "a killed restore never leaves a half-written target"
    assert list(tmp_path.glob(".target.db.dbkeeper-restore-*")), "the killed restore's file is still there"
    dbkeeper("restore", "latest", f"sqlite:///{target}", "--dir", str(backups))
    assert sqlite_dump(target) == sqlite_dump(big_db)
    assert not list(tmp_path.glob(".target.db.dbkeeper-restore-*")), "the next restore swept it away"


def _strace(log: Path, *args: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """``dbkeeper ARGS`` under strace (every thread), its calls written to *log* with file paths."""
    if not shutil.which("strace"):
        pytest.fail("strace is needed to watch a backup's system calls (apt-get install strace)", pytrace=False)
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    argv = ["strace", "-f", "-qq", "-y", "-o", str(log), *options, str(BIN / "dbkeeper"), *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def test_the_manifest_is_renamed_into_place_after_everything_else_is_durable(tmp_path: Path) -> None:
    """The fsyncs run on threads beside the dump, but the manifest's rename still comes after every one of them."""
    db = make_db(tmp_path / "small.db", 200)
    backups = tmp_path / "backups"
    log = tmp_path / "strace.log"
    ran = _strace(log, "backup", f"sqlite:///{db}", "--dir", str(backups), options=("-e", "trace=fsync,rename"))
    assert ran.returncode == 0, ran.stderr
    calls: list[tuple[str, Path]] = []  # (call, the path it renamed from or synced), in the order they started
    for line in log.read_text().splitlines():
        if match := re.search(r'rename\("([^"]+)"', line):
            calls.append(("rename", Path(match[1])))
        elif match := re.search(r"fsync\(\d+<([^>]+)>", line):
            calls.append(("fsync", Path(match[1])))
    (manifest,) = [
        i for i, (call, path) in enumerate(calls) if call == "rename" and path.name == "manifest.json.partial"
    ]
    artifacts = [i for i, (call, path) in enumerate(calls) if call == "rename" and path.name.endswith(".zst.partial")]
    synced = [i for i, (call, path) in enumerate(calls) if call == "fsync" and path.name.endswith(".zst.partial")]
    root = [i for i, (call, path) in enumerate(calls) if call == "fsync" and path == backups]
    assert len(artifacts) == len(synced) == 1 and len(root) == 1, calls
    assert max(artifacts + synced + root) < manifest, calls
    assert ("fsync", backups / ran.stdout.strip()) in calls[manifest + 1 :], "the manifest's rename is made durable"


def test_a_failing_fsync_fails_the_backup_and_leaves_no_backup(tmp_path: Path) -> None:
    """A disk that fails fsync (EIO, injected by strace): one error line, exit 1, nothing that looks like a backup."""
    db = make_db(tmp_path / "small.db", 200)
    backups = tmp_path / "backups"
    ran = _strace(
        tmp_path / "strace.log", "backup", f"sqlite:///{db}", "--dir", str(backups),
        options=("-e", "trace=fsync", "-e", "inject=fsync:error=EIO"),
    )  # fmt: skip
    assert ran.returncode == 1, ran.stderr
    assert ran.stderr.startswith("error: ") and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert "input/output error" in ran.stderr and "check that disk" in ran.stderr, ran.stderr
    assert not list(backups.glob("*/manifest.json")), "no backup looks complete"
    assert dbkeeper("backups", "list", "--dir", str(backups), "--json").json() == []
