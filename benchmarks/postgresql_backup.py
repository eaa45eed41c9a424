"""Time dbkeeper's PostgreSQL backup and restore against pg_dump/pg_restore with zstd.

    .venv/bin/python benchmarks/postgresql_backup.py [--size 1GB] [--runs 3] [--seed 42]

It starts a throwaway PostgreSQL 15 server (the test suite's, tests/postgresql/pg_server.py:
127.0.0.1, a temp dir, ``fsync=off`` for both sides alike), loads about --size of the
realistic shop data (benchmarks/postgresql_sample.py), and measures, in one run:

    backup   dbkeeper -q backup URL --dir backups                    (custom format, zstd -3, sha256)
             dbkeeper -q backup URL --dir backups --jobs 2
             dbkeeper -q backup URL --dir backups --jobs 2 --threads CORES   (each compressor a thread per core,
                                                                   not its share: what sharing saves)
             dbkeeper -q backup EMPTY_URL … vs the zstd pipeline on an empty database (the fixed cost)
             pg_dump -Fc -Z0 | zstd -q -3 -T2 | tee >(sha256sum > sum) > shop.dump.zst
             pg_dump -Fc > shop.dump                                  (pg_dump's own compression)
    restore  dbkeeper -q restore ID URL                               (one transaction)
             createdb && zstd -dc shop.dump.zst | pg_restore -d DB
             createdb && zstd -dc shop.dump.zst | pg_restore --single-transaction -d DB
             dbkeeper -q restore ID URL --jobs 2                      (the default backup)
             dbkeeper -q restore ID URL --jobs 2                      (the --jobs 2 backup)
             createdb && zstd -dc shop.dump.zst > tmp.dump && pg_restore -j2 -d DB tmp.dump

``pg_restore -j`` cannot read a pipe, so the native parallel restore decompresses to a file
first and that is timed too (dbkeeper --jobs does the same with a verified copy). Every
command connects over TCP with a password, dbkeeper through its URL, the native tools
through a passfile. Wall time is the best of --runs runs; every command runs once
untimed first, then they alternate, so all see the same warm page cache; before every run
the previous output is removed (restore targets dropped) and ``sync`` empties the
write-back queue. CPU is user + system of the command's own processes (not the server's).
Peak RSS: "self" is dbkeeper's Python process alone (``getrusage(RUSAGE_SELF)``, measured
by running the CLI inside this script's --self-rss wrapper); "tree" is GNU time's %M, the
largest of the process and every child it waited for (pg_dump, pg_restore, zstd …).
The time to count every table's rows in one snapshot (what dbkeeper backup does on the
server beside pg_dump) is printed too.
This is a measurement, not a test: it never fails on slow numbers.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = REPO / ".venv" / "bin" / "python"
GNU_TIME = "/usr/bin/time"
CORES = os.cpu_count() or 1
sys.path[:0] = [str(REPO / d) for d in ("scripts", "tests", "tests/postgresql", "benchmarks")]

from pg_server import APP_PASSWORD, APP_USER, Server, start_server  # noqa: E402
from postgresql_sample import load  # noqa: E402
from sample_db import parse_size  # noqa: E402


@dataclass
class Sample:
    """One timed run of a command."""

    seconds: float
    cpu_seconds: float
    tree_rss_kib: int
    self_rss_kib: int | None
    stdout: str


@dataclass
class Side:
    """One command and its timed runs."""

    label: str
    argv: list[str]
    cleanup: Callable[[], None]
    ours: bool
    samples: list[Sample] = field(default_factory=list)

    @property
    def best(self) -> float:
        """The fastest run, in seconds."""
        return min(s.seconds for s in self.samples)

    @property
    def cpu(self) -> float:
        """The least CPU time of any run, in seconds."""
        return min(s.cpu_seconds for s in self.samples)

    @property
    def tree_rss_mib(self) -> float:
        """The highest peak RSS (GNU time %M) of any run, in MiB."""
        return max(s.tree_rss_kib for s in self.samples) / 1024

    @property
    def self_rss_mib(self) -> float | None:
        """The highest peak RSS of dbkeeper's own process, in MiB (None for native commands)."""
        values = [s.self_rss_kib for s in self.samples if s.self_rss_kib is not None]
        return max(values) / 1024 if values else None


def self_rss_main(out: str, argv: list[str]) -> None:
    """Run the dbkeeper CLI in this process and write its own peak RSS (KiB) to *out*."""
    from dbkeeper.cli import main

    sys.argv = ["dbkeeper", *argv]
    try:
        main()
    finally:
        Path(out).write_text(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def dbkeeper(*args: str) -> list[str]:
    """The CLI, run through the --self-rss wrapper of this script."""
    return [str(PYTHON), __file__, "--self-rss", "{self_rss}", "--", "-q", *args]


def measure(side: Side, cwd: Path, env: dict[str, str]) -> Sample:
    """Run *side*'s command under GNU time; return its timings, RSS and stdout."""
    rss_file, self_file = cwd / ".rss", cwd / ".self-rss"
    self_file.unlink(missing_ok=True)
    argv = [a.replace("{self_rss}", str(self_file)) for a in side.argv]
    started = time.perf_counter()
    proc = subprocess.run([GNU_TIME, "-f", "%M %U %S", "-o", str(rss_file), *argv], cwd=cwd, env=env,
                          capture_output=True, text=True)  # fmt: skip
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"command failed with status {proc.returncode}: {shlex.join(argv)}\n{proc.stderr}")
    rss, user, system = rss_file.read_text().splitlines()[-1].split()
    own = int(self_file.read_text()) if self_file.exists() else None
    return Sample(seconds, float(user) + float(system), int(rss), own, proc.stdout)


def compare(sides: Sequence[Side], runs: int, cwd: Path, env: dict[str, str]) -> None:
    """Warm every side up once, then alternate them *runs* times (cleanup and sync before each run)."""
    for attempt in range(runs + 1):
        for side in sides:
            side.cleanup()
            os.sync()
            sample = measure(side, cwd, env)
            if attempt:
                side.samples.append(sample)
            own = f", self {sample.self_rss_kib / 1024:.0f} MiB" if sample.self_rss_kib else ""
            print(
                f"  {'run ' + str(attempt) if attempt else 'warm-up'}: {side.label}: {sample.seconds:.2f}s "
                f"(CPU {sample.cpu_seconds:.2f}s, tree {sample.tree_rss_kib / 1024:.0f} MiB{own})",
                flush=True,
            )


def print_table(sides: Sequence[Side], references: dict[str, str]) -> None:
    """One row per command, with its ratio to the command it is compared with."""
    by_label = {side.label: side for side in sides}
    headers = ["command", "best s", "vs", "ratio", "CPU s", "RSS self MiB", "RSS tree MiB"]
    rows = []
    for side in sides:
        reference = by_label.get(references.get(side.label, ""))
        rows.append([
            side.label, f"{side.best:.2f}", references.get(side.label, ""),
            f"{side.best / reference.best:.3f}" if reference else "", f"{side.cpu:.2f}",
            f"{side.self_rss_mib:.0f}" if side.self_rss_mib is not None else "", f"{side.tree_rss_mib:.0f}",
        ])  # fmt: skip
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for row in (headers, *rows):
        cells = enumerate(zip(row, widths, strict=True))
        print("  ".join(c.ljust(w) if i in (0, 2) else c.rjust(w) for i, (c, w) in cells))


def count_seconds(url: str) -> float:
    """Seconds to count every table's rows in one REPEATABLE READ snapshot (no parallel workers)."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.execute("SET max_parallel_workers_per_gather = 0")
        tables = [row[0] for row in conn.execute(
            "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables")]  # fmt: skip
        started = time.perf_counter()
        for table in tables:
            conn.execute(f"SELECT count(*) FROM ONLY {table}").fetchone()
        return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    """Start a server, load the data, measure, print, stop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1GB"), help="database size (default 1GB)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per command (default 3; best is reported)")
    parser.add_argument("--seed", type=int, default=42, help="sample data seed (default 42)")
    parser.add_argument("--workdir", type=Path, default=REPO / ".bench", help="where backups and dumps go")
    args = parser.parse_args(argv)
    for tool in ("pg_dump", "pg_restore", "createdb", "zstd", "sha256sum", GNU_TIME, str(PYTHON)):
        if not shutil.which(tool):
            parser.error(f"{tool} is not installed (run bash scripts/setup.sh and bash scripts/ensure-packages.sh)")
    work = args.workdir / "postgresql"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    print(f"dbkeeper at {commit or 'unknown commit'}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    server = start_server()
    try:
        run(server, args.size, args.seed, args.runs, work)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f} (timings are only comparable on an idle machine)")
    return 0


def run(server: Server, size: int, seed: int, runs: int, work: Path) -> None:
    """Everything measured on one server."""
    server.psql(f"CREATE DATABASE shop OWNER {APP_USER}")
    print(f"loading about {size / 2**30:.2f} GiB of shop data ...", flush=True)
    started = time.perf_counter()
    counts = load(server.url("shop"), size, seed)
    db_bytes = int(server.psql("SELECT pg_database_size('shop')"))
    print(f"loaded {db_bytes / 2**30:.2f} GiB in {time.perf_counter() - started:.0f}s: "
          + ", ".join(f"{n} {t}" for t, n in counts.items()))  # fmt: skip

    passfile = work / "pgpass"
    passfile.write_text(f"*:*:*:{APP_USER}:{APP_PASSWORD.replace(chr(92), chr(92) * 2).replace(':', chr(92) + ':')}\n")
    passfile.chmod(0o600)
    env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(server.port), "PGUSER": APP_USER,
           "PGPASSFILE": str(passfile), "PGDATABASE": "postgres"}  # fmt: skip
    env.pop("DATABASE_URL", None)
    url = server.url("shop")

    def remove(*names: str) -> Callable[[], None]:
        def cleanup() -> None:
            for name in names:
                path = work / name
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)

        return cleanup

    def drop(database: str) -> Callable[[], None]:
        return lambda: server.psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")

    counting = min(count_seconds(url) for _ in range(3))
    print(f"count(*) of every table in one snapshot, as dbkeeper backup does beside pg_dump: {counting:.2f}s")
    server.psql(f"CREATE DATABASE empty OWNER {APP_USER}")

    print(f"\nbackup, {runs} runs each:", flush=True)
    zstd_pipe = "pg_dump -Fc -Z0 | zstd -3 -T2 | tee >(sha256sum) > file"
    backup_sides = [
        Side("dbkeeper backup", dbkeeper("backup", url, "--dir", "backups"), remove("backups"), ours=True),
        Side(zstd_pipe, ["bash", "-c", "pg_dump -Fc -Z0 shop | zstd -q -3 -T2 | tee >(sha256sum) > shop.dump.zst"],
             remove("shop.dump.zst"), ours=False),
        Side("pg_dump -Fc (default compression)", ["pg_dump", "-Fc", "-f", "shop.dump", "shop"],
             remove("shop.dump"), ours=False),
        Side("dbkeeper backup --jobs 2", dbkeeper("backup", url, "--dir", "backups-jobs", "--jobs", "2"),
             remove("backups-jobs"), ours=True),
        Side(f"dbkeeper backup --jobs 2 --threads {CORES}", dbkeeper("backup", url, "--dir", "backups-jobs-tn",
             "--jobs", "2", "--threads", str(CORES)), remove("backups-jobs-tn"), ours=True),
        Side("dbkeeper backup, empty database", dbkeeper("backup", server.url("empty"), "--dir", "backups-empty"),
             remove("backups-empty"), ours=True),
        Side("zstd pipeline, empty database", ["bash", "-c", "pg_dump -Fc -Z0 empty | zstd -q -3 -T2 | "
             "tee >(sha256sum) > empty.dump.zst"], remove("empty.dump.zst"), ours=False),
    ]  # fmt: skip
    compare(backup_sides, runs, work, env)
    single_id = backup_sides[0].samples[-1].stdout.strip().splitlines()[-1]
    parallel_id = backup_sides[3].samples[-1].stdout.strip().splitlines()[-1]
    stored = {
        "dbkeeper": sum(p.stat().st_size for p in (work / "backups" / single_id).glob("*.zst")),
        "zstd pipeline": (work / "shop.dump.zst").stat().st_size,
        "pg_dump -Fc": (work / "shop.dump").stat().st_size,
    }

    print(f"\nrestore, {runs} runs each:", flush=True)
    native = "createdb {db} && zstd -dc shop.dump.zst | pg_restore {opts} -d {db}"
    restore_sides = [
        Side("dbkeeper restore", dbkeeper("restore", single_id, server.url("r_dk"), "--dir", "backups"),
             drop("r_dk"), ours=True),
        Side("zstd -dc | pg_restore", ["bash", "-c", native.format(db="r_native", opts="")],
             drop("r_native"), ours=False),
        Side("zstd -dc | pg_restore --single-transaction",
             ["bash", "-c", native.format(db="r_native1", opts="--single-transaction")], drop("r_native1"), ours=False),
        Side("dbkeeper restore --jobs 2", dbkeeper("restore", single_id, server.url("r_dk2"), "--dir", "backups",
             "--jobs", "2"), drop("r_dk2"), ours=True),
        Side("dbkeeper restore --jobs 2 (of the --jobs 2 backup)", dbkeeper(
             "restore", parallel_id, server.url("r_dkp"), "--dir", "backups-jobs", "--jobs", "2"),
             drop("r_dkp"), ours=True),
        Side("zstd -dc > file && pg_restore -j2", ["bash", "-c", "createdb r_nat2 && zstd -q -dc shop.dump.zst "
             "-o tmp.dump && pg_restore -j2 -d r_nat2 tmp.dump && rm tmp.dump"],
             lambda: (drop("r_nat2")(), remove("tmp.dump")()), ours=False),
    ]  # fmt: skip
    compare(restore_sides, runs, work, env)

    print(f"\n{db_bytes / 2**30:.2f} GiB database ({sum(counts.values())} rows); wall time best of {runs}; "
          "ratio = this command / the one in 'vs'")  # fmt: skip
    print_table(backup_sides, {
        "dbkeeper backup": zstd_pipe, "dbkeeper backup --jobs 2": zstd_pipe,
        f"dbkeeper backup --jobs 2 --threads {CORES}": zstd_pipe,
        "dbkeeper backup, empty database": "zstd pipeline, empty database",
        "pg_dump -Fc (default compression)": "dbkeeper backup",
    })  # fmt: skip
    print()
    print_table(restore_sides, {
        "dbkeeper restore": "zstd -dc | pg_restore --single-transaction",
        "zstd -dc | pg_restore": "dbkeeper restore",
        "dbkeeper restore --jobs 2": "zstd -dc > file && pg_restore -j2",
        "dbkeeper restore --jobs 2 (of the --jobs 2 backup)": "zstd -dc > file && pg_restore -j2",
    })  # fmt: skip
    print("\nstored: " + ", ".join(f"{k} {v / 2**20:.0f} MiB ({db_bytes / v:.1f}x)" for k, v in stored.items()))


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--self-rss" and sys.argv[3] == "--":
        self_rss_main(sys.argv[2], sys.argv[4:])
    else:
        sys.exit(main())
