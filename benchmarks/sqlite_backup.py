"""Time dbkeeper's SQLite backup and restore against the native sqlite3 + zstd pipeline.

    .venv/bin/python benchmarks/sqlite_backup.py [--size 1GB | --sizes 100MB,1GB] [--runs 3] [--workdir .bench]

For each size it builds (or reuses) a sample shop database with scripts/sample_db.py, then
measures, in one run:

    backup   dbkeeper -q backup sqlite:///DB --dir backups
             vs  sqlite3 DB ".backup tmp.db" && zstd -q -3 -T<cores> tmp.db -o tmp.db.zst
                 && sha256sum tmp.db.zst
    restore  dbkeeper -q restore ID sqlite:///restored.db --dir backups
             vs  zstd -q -dc tmp.db.zst > restored_native.db

Wall time is the best of --runs runs; each side first runs once untimed, then the two
sides alternate, so both see the same warm page cache (it cannot be dropped here); before
every run the previous output is deleted and ``sync`` empties the write-back queue. Peak
RSS comes from GNU time's %M wrapped around each command: for dbkeeper the dbkeeper
process; for the native pipeline, which runs under one bash, the largest of bash and
every process it waited for (Linux reports the maximum over a process's reaped children),
i.e. the biggest of sqlite3, zstd and sha256sum. The reported RSS is the highest of the
runs. dbkeeper fsyncs what it writes and the native commands do not; --native-fsync
appends ``sync FILE .`` to them for a like-for-like comparison. This is a measurement,
not a test: it never fails on slow numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DBKEEPER = REPO / ".venv" / "bin" / "dbkeeper"
SAMPLE_DB = REPO / "scripts" / "sample_db.py"
GNU_TIME = "/usr/bin/time"

sys.path.insert(0, str(SAMPLE_DB.parent))
from sample_db import parse_size  # noqa: E402


@dataclass
class Sample:
    """One timed run of a command."""

    seconds: float
    cpu_seconds: float
    rss_kib: int
    stdout: str


@dataclass
class Side:
    """All timed runs of one side (dbkeeper or native) of one operation."""

    samples: list[Sample] = field(default_factory=list)

    @property
    def best(self) -> float:
        """The fastest run, in seconds."""
        return min(s.seconds for s in self.samples)

    @property
    def cpu(self) -> float:
        """The least CPU time (user + system, all processes) of any run, in seconds."""
        return min(s.cpu_seconds for s in self.samples)

    @property
    def rss_mib(self) -> float:
        """The highest peak RSS of any run, in MiB."""
        return max(s.rss_kib for s in self.samples) / 1024


@dataclass
class Result:
    """Everything measured for one database size."""

    size_label: str
    db_bytes: int
    dbkeeper_stored: int
    native_stored: int
    operations: dict[str, tuple[Side, Side]]


def human(size: int) -> str:
    """Bytes as MiB or GiB."""
    return f"{size / 2**30:.2f} GiB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"


def measure(argv: Sequence[str], cwd: Path) -> Sample:
    """Run *argv* under GNU time in *cwd*; return wall and CPU seconds, peak RSS and its stdout."""
    rss_file = cwd / ".rss"
    started = time.perf_counter()
    proc = subprocess.run(
        [GNU_TIME, "-f", "%M %U %S", "-o", str(rss_file), *argv], cwd=cwd, stdout=subprocess.PIPE, text=True
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"command failed with status {proc.returncode}: {shlex.join(argv)}")
    rss, user, system = rss_file.read_text().splitlines()[-1].split()
    rss_file.unlink()
    return Sample(seconds, float(user) + float(system), int(rss), proc.stdout)


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


def compare(
    runs: int,
    cwd: Path,
    ours: tuple[Sequence[str], Callable[[], None]],
    native: tuple[Sequence[str], Callable[[], None]],
) -> tuple[Side, Side]:
    """Warm up each side once, then alternate them *runs* times.

    Before each run its cleanup deletes the previous run's output, and ``sync`` writes
    all dirty pages out: otherwise a run pays for the write-back of whatever the run
    before it left in the page cache (the native pipeline leaves a 1 GB ``tmp.db``).
    """
    sides = (Side(), Side())
    for attempt in range(runs + 1):
        for side, (argv, cleanup) in zip(sides, (ours, native), strict=True):
            cleanup()
            os.sync()
            sample = measure(argv, cwd)
            if attempt:  # the first round only warms the cache
                side.samples.append(sample)
        print(f"  {progress_line(sides, attempt)}", flush=True)
    return sides


def progress_line(sides: tuple[Side, Side], attempt: int) -> str:
    """The last run of both sides, for the progress log."""
    if not attempt:
        return "warm-up done"
    ours, native = sides[0].samples[-1], sides[1].samples[-1]
    return (
        f"run {attempt}: dbkeeper {ours.seconds:.2f}s (CPU {ours.cpu_seconds:.2f}s) {ours.rss_kib / 1024:.0f} MiB, "
        f"native {native.seconds:.2f}s (CPU {native.cpu_seconds:.2f}s) {native.rss_kib / 1024:.0f} MiB"
    )


def remove(*paths: Path) -> Callable[[], None]:
    """A cleanup that deletes *paths* (files or directories) if they exist."""

    def cleanup() -> None:
        for path in paths:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    return cleanup


def bench_size(size: int, seed: int, runs: int, workdir: Path, threads: int, *, keep: bool, fsync: bool) -> Result:
    """Measure backup and restore of one database size; *fsync* makes the native side durable too."""
    db = sample_database(size, seed, workdir)
    run_dir = workdir / f"run-{size}"
    remove(run_dir)()
    run_dir.mkdir(parents=True)
    backups = run_dir / "backups"
    restored = run_dir / "restored.db"

    print(f"backup, {runs} runs each:", flush=True)
    dbkeeper_backup = [str(DBKEEPER), "--quiet", "backup", f"sqlite:///{db}", "--dir", str(backups)]
    native_backup = [
        "bash",
        "-c",
        f'sqlite3 {shlex.quote(str(db))} ".backup tmp.db" && '
        f"zstd -q -3 -T{threads} tmp.db -o tmp.db.zst && sha256sum tmp.db.zst"
        + (" && sync tmp.db.zst ." if fsync else ""),
    ]
    backup = compare(
        runs,
        run_dir,
        (dbkeeper_backup, remove(backups)),
        (native_backup, remove(run_dir / "tmp.db", run_dir / "tmp.db.zst")),
    )
    backup_id = backup[0].samples[-1].stdout.strip().splitlines()[-1]
    (artifact,) = (backups / backup_id).glob("*.zst")

    print(f"restore of {backup_id}, {runs} runs each:", flush=True)
    dbkeeper_restore = [str(DBKEEPER), "--quiet", "restore", backup_id, f"sqlite:///{restored}", "--dir", str(backups)]
    native_restore = [
        "bash",
        "-c",
        "zstd -q -dc tmp.db.zst > restored_native.db" + (" && sync restored_native.db ." if fsync else ""),
    ]
    restore = compare(
        runs, run_dir, (dbkeeper_restore, remove(restored)), (native_restore, remove(run_dir / "restored_native.db"))
    )

    result = Result(
        size_label=human(size),
        db_bytes=db.stat().st_size,
        dbkeeper_stored=artifact.stat().st_size,
        native_stored=(run_dir / "tmp.db.zst").stat().st_size,
        operations={"backup": backup, "restore": restore},
    )
    if restored.stat().st_size != (run_dir / "restored_native.db").stat().st_size:
        print("warning: the two restored databases differ in size", file=sys.stderr)
    if not keep:
        remove(run_dir)()
    return result


def print_results(results: Sequence[Result], threads: int, runs: int, fsync: bool) -> None:
    """The summary table, one block per database size."""
    headers = [
        "database",
        "operation",
        "dbkeeper s",
        "native s",
        "ratio",
        "dbkeeper RSS MiB",
        "native RSS MiB",
        "dbkeeper CPU s",
        "native CPU s",
    ]
    rows = []
    for result in results:
        for operation, (ours, native) in result.operations.items():
            rows.append(
                [
                    human(result.db_bytes),
                    operation,
                    f"{ours.best:.2f}",
                    f"{native.best:.2f}",
                    f"{ours.best / native.best:.2f}",
                    f"{ours.rss_mib:.0f}",
                    f"{native.rss_mib:.0f}",
                    f"{ours.cpu:.2f}",
                    f"{native.cpu:.2f}",
                ]
            )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print()
    print(f"wall time: best of {runs} runs, ratio = dbkeeper / native; zstd -3 with {threads} threads on both sides")
    print("RSS: highest peak of any run; CPU: user + system seconds of all processes, lowest run")
    if fsync:
        print("native commands end with 'sync FILE .' (fsync of the output and its directory)")
    print("  ".join(h.rjust(w) if i > 1 else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True))))
    for row in rows:
        print("  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    print()
    for result in results:
        print(
            f"{human(result.db_bytes)} database: dbkeeper artifact {human(result.dbkeeper_stored)} "
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
    for tool in ("sqlite3", "zstd", "sha256sum", GNU_TIME, str(DBKEEPER)):
        if not shutil.which(tool):
            parser.error(f"{tool} is not installed (dbkeeper: run bash scripts/setup.sh)")
    threads = os.cpu_count() or 1
    args.workdir.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    print(
        f"dbkeeper at {commit or 'unknown commit'}; {threads} cores; workdir {args.workdir}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    results = []
    for size in sizes:
        print(f"\n== {human(size)} ==")
        result = bench_size(size, args.seed, args.runs, args.workdir, threads, keep=args.keep, fsync=args.native_fsync)
        results.append(result)
    print_results(results, threads, args.runs, args.native_fsync)
    print(f"load average at the end {os.getloadavg()[0]:.2f} (timings are only comparable on an idle machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
