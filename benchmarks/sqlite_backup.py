"""Time dbkeeper's SQLite backup and restore against the native sqlite3 + zstd pipeline.

    .venv/bin/python benchmarks/sqlite_backup.py [--size 1GB | --sizes 100MB,1GB] [--runs 3] [--workdir .bench]

For each size it builds (or reuses) a sample shop database with scripts/sample_db.py, then
measures, in one run:

    backup   dbkeeper -q backup sqlite:///DB --dir backups
             vs  sqlite3 DB ".backup tmp.db" && zstd -q -3 -T<cores> tmp.db -o tmp.db.zst
                 && sha256sum tmp.db.zst
    restore  dbkeeper -q restore ID sqlite:///restored.db --dir backups
             vs  zstd -q -dc tmp.db.zst > restored_native.db

For a database without tables it also times the backup alone on both sides: what every
command costs whatever the size (interpreter start, imports, plugins, the snapshot).
Wall time, CPU and peak RSS are measured as benchmarks/harness.py describes: best of
--runs runs, every command run once untimed first, then in turn. dbkeeper fsyncs what it
writes and the native commands do not; --native-fsync appends ``sync FILE .`` to them for
a like-for-like comparison. This is a measurement, not a test: it never fails on slow
numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import CORES, REPO, Side, compare, dbkeeper, print_end, print_start, print_table, remove, require

SAMPLE_DB = REPO / "scripts" / "sample_db.py"
sys.path.insert(0, str(SAMPLE_DB.parent))
from sample_db import parse_size  # noqa: E402


@dataclass
class Result:
    """Everything measured for one database size."""

    db_bytes: int
    dbkeeper_stored: int
    native_stored: int
    sides: list[Side]
    references: dict[str, str]


def human(size: int) -> str:
    """Bytes as MiB or GiB."""
    return f"{size / 2**30:.2f} GiB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"


def sample_database(size: int, seed: int, workdir: Path) -> Path:
    """The sample database for *size* and *seed*, built unless an identical one exists.

    The file name holds the size, the seed and a hash of the generator, so a changed
    generator builds a new file; the generator renames a database into place only when it
    is complete.
    """
    generator = hashlib.sha256(SAMPLE_DB.read_bytes()).hexdigest()[:8]
    path = workdir / f"shop-{size}-seed{seed}-{generator}.db"
    if path.exists():
        print(f"reusing {path.relative_to(REPO) if path.is_relative_to(REPO) else path} ({human(path.stat().st_size)})")
        return path
    for stale in workdir.glob(f"shop-{size}-seed{seed}-*.db"):
        stale.unlink()
    print(f"building a {human(size)} sample database (seed {seed}) ...", flush=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, str(SAMPLE_DB), str(path), "--size", str(size), "--seed", str(seed)], check=True)
    print(f"built in {time.perf_counter() - started:.1f}s")
    return path


def native_backup(database: str, fsync: bool) -> list[str]:
    """sqlite3's online backup, zstd and sha256sum, as one shell command."""
    command = f'sqlite3 {shlex.quote(database)} ".backup tmp.db" && zstd -q -3 -T{CORES} tmp.db -o tmp.db.zst'
    return ["bash", "-c", f"{command} && sha256sum tmp.db.zst" + (" && sync tmp.db.zst ." if fsync else "")]


def bench_size(size: int, seed: int, runs: int, workdir: Path, *, keep: bool, fsync: bool) -> Result:
    """Measure backup and restore of one database size; *fsync* makes the native side durable too."""
    db = sample_database(size, seed, workdir)
    run_dir = workdir / f"run-{size}"
    remove(run_dir)()
    run_dir.mkdir(parents=True)
    backups = run_dir / "backups"
    restored = run_dir / "restored.db"

    print(f"backup, {runs} runs each:", flush=True)
    ours = Side("dbkeeper backup", dbkeeper("backup", f"sqlite:///{db}", "--dir", str(backups)), remove(backups))
    native = Side(
        "sqlite3 .backup && zstd && sha256sum",
        native_backup(str(db), fsync),
        remove(run_dir / "tmp.db", run_dir / "tmp.db.zst"),
    )
    compare([ours, native], runs, run_dir)
    backup_id = ours.last_line
    (artifact,) = (backups / backup_id).glob("*.zst")
    stored = artifact.stat().st_size, (run_dir / "tmp.db.zst").stat().st_size

    print(f"restore of {backup_id}, {runs} runs each:", flush=True)
    ours_restore = Side(
        "dbkeeper restore",
        dbkeeper("restore", backup_id, f"sqlite:///{restored}", "--dir", str(backups)),
        remove(restored),
    )
    native_restore = Side(
        "zstd -dc > file",
        [
            "bash",
            "-c",
            "zstd -q -dc tmp.db.zst > restored_native.db" + (" && sync restored_native.db ." if fsync else ""),
        ],
        remove(run_dir / "restored_native.db"),
    )
    compare([ours_restore, native_restore], runs, run_dir)
    if restored.stat().st_size != (run_dir / "restored_native.db").stat().st_size:
        print("warning: the two restored databases differ in size", file=sys.stderr)

    print(f"backup of a database without tables, {runs} runs each:", flush=True)
    empty = run_dir / "empty.db"
    with sqlite3.connect(empty) as conn:  # a table made and dropped: a database file that holds no table
        conn.execute("CREATE TABLE t (x)")
        conn.execute("DROP TABLE t")
    conn.close()
    ours_empty = Side(
        "dbkeeper backup, empty database",
        dbkeeper("backup", f"sqlite:///{empty}", "--dir", str(run_dir / "backups-empty")),
        remove(run_dir / "backups-empty"),
    )
    native_empty = Side(
        "native backup, empty database",
        native_backup(str(empty), fsync),
        remove(run_dir / "tmp.db", run_dir / "tmp.db.zst"),
    )
    compare([ours_empty, native_empty], runs, run_dir)

    if not keep:
        remove(run_dir)()
    return Result(
        db_bytes=db.stat().st_size,
        dbkeeper_stored=stored[0],
        native_stored=stored[1],
        sides=[ours, native, ours_restore, native_restore, ours_empty, native_empty],
        references={
            ours.label: native.label,
            ours_restore.label: native_restore.label,
            ours_empty.label: native_empty.label,
        },
    )


def print_results(results: Sequence[Result], runs: int, fsync: bool) -> None:
    """The summary: one table per database size, and what each side stored."""
    print(f"\nwall time: best of {runs} runs; zstd -3 with {CORES} threads on both sides")
    if fsync:
        print("native commands end with 'sync FILE .' (fsync of the output and its directory)")
    for result in results:
        print(f"\n{human(result.db_bytes)} database:")
        print_table(result.sides, result.references)
        print(
            f"stored: dbkeeper artifact {human(result.dbkeeper_stored)} "
            f"({result.db_bytes / result.dbkeeper_stored:.2f}x), native .zst {human(result.native_stored)} "
            f"({result.db_bytes / result.native_stored:.2f}x)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run every size, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, help="database size (default 1GB)")
    parser.add_argument("--sizes", help="several sizes, comma-separated (e.g. 100MB,1GB)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side (default 3; best is reported)")
    parser.add_argument("--seed", type=int, default=42, help="sample database seed (default 42)")
    parser.add_argument("--workdir", type=Path, default=REPO / ".bench", help="where databases and runs go")
    parser.add_argument("--keep", action="store_true", help="keep the backups and restored files")
    parser.add_argument(
        "--native-fsync",
        action="store_true",
        help="end the native commands with 'sync FILE .' (fsync), as dbkeeper does",
    )
    args = parser.parse_args(argv)
    if args.size and args.sizes:
        parser.error("give --size or --sizes, not both")
    sizes = [parse_size(s) for s in args.sizes.split(",")] if args.sizes else [args.size or parse_size("1GB")]
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if problem := require(["sqlite3", "zstd", "sha256sum"], "dbkeeper: run bash scripts/setup.sh"):
        parser.error(problem)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print_start(args.workdir)
    results = []
    for size in sizes:
        print(f"\n== {human(size)} ==")
        results.append(bench_size(size, args.seed, args.runs, args.workdir, keep=args.keep, fsync=args.native_fsync))
    print_results(results, args.runs, args.native_fsync)
    print_end()
    return 0


if __name__ == "__main__":
    sys.exit(main())
