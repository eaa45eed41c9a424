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
through a passfile. Wall time, CPU and peak RSS (own: dbkeeper's Python process alone;
tree: the largest of the command and every child it waited for, pg_dump, pg_restore,
zstd …) are measured as benchmarks/harness.py describes: best of --runs runs, every
command run once untimed first, then in turn; restore targets are dropped before each run.
CPU is the command's own processes' (not the server's).
The time to count every table's rows in one snapshot (what dbkeeper backup does on the
server beside pg_dump) is printed too.
This is a measurement, not a test: it never fails on slow numbers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness import CORES, REPO, Side, compare, dbkeeper, print_end, print_start, print_table, remove, require

sys.path[:0] = [str(REPO / d) for d in ("scripts", "tests", "tests/postgresql")]

from pg_server import APP_PASSWORD, APP_USER, Server, start_server  # noqa: E402
from postgresql_sample import load  # noqa: E402
from sample_db import parse_size  # noqa: E402


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
    tools = ["pg_dump", "pg_restore", "createdb", "zstd", "sha256sum"]
    if problem := require(tools, "run bash scripts/setup.sh and bash scripts/ensure-packages.sh"):
        parser.error(problem)
    work = args.workdir / "postgresql"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print_start(work)
    server = start_server()
    try:
        run(server, args.size, args.seed, args.runs, work)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print_end()
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

    def drop(database: str) -> Callable[[], None]:
        return lambda: server.psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")

    counting = min(count_seconds(url) for _ in range(3))
    print(f"count(*) of every table in one snapshot, as dbkeeper backup does beside pg_dump: {counting:.2f}s")
    server.psql(f"CREATE DATABASE empty OWNER {APP_USER}")

    print(f"\nbackup, {runs} runs each:", flush=True)
    zstd_pipe = "pg_dump -Fc -Z0 | zstd -3 -T2 | tee >(sha256sum) > file"
    backup_sides = [
        Side("dbkeeper backup", dbkeeper("backup", url, "--dir", "backups"), remove(work / "backups")),
        Side(zstd_pipe, ["bash", "-c", "pg_dump -Fc -Z0 shop | zstd -q -3 -T2 | tee >(sha256sum) > shop.dump.zst"],
             remove(work / "shop.dump.zst")),
        Side("pg_dump -Fc (default compression)", ["pg_dump", "-Fc", "-f", "shop.dump", "shop"],
             remove(work / "shop.dump")),
        Side("dbkeeper backup --jobs 2", dbkeeper("backup", url, "--dir", "backups-jobs", "--jobs", "2"),
             remove(work / "backups-jobs")),
        Side(f"dbkeeper backup --jobs 2 --threads {CORES}", dbkeeper("backup", url, "--dir", "backups-jobs-tn",
             "--jobs", "2", "--threads", str(CORES)), remove(work / "backups-jobs-tn")),
        Side("dbkeeper backup, empty database", dbkeeper("backup", server.url("empty"), "--dir", "backups-empty"),
             remove(work / "backups-empty")),
        Side("zstd pipeline, empty database", ["bash", "-c", "pg_dump -Fc -Z0 empty | zstd -q -3 -T2 | "
             "tee >(sha256sum) > empty.dump.zst"], remove(work / "empty.dump.zst")),
    ]  # fmt: skip
    compare(backup_sides, runs, work, env)
    single_id = backup_sides[0].last_line
    parallel_id = backup_sides[3].last_line
    stored = {
        "dbkeeper": sum(p.stat().st_size for p in (work / "backups" / single_id).glob("*.zst")),
        "zstd pipeline": (work / "shop.dump.zst").stat().st_size,
        "pg_dump -Fc": (work / "shop.dump").stat().st_size,
    }

    print(f"\nrestore, {runs} runs each:", flush=True)
    native = "createdb {db} && zstd -dc shop.dump.zst | pg_restore {opts} -d {db}"
    restore_sides = [
        Side("dbkeeper restore", dbkeeper("restore", single_id, server.url("r_dk"), "--dir", "backups"),
             drop("r_dk")),
        Side("zstd -dc | pg_restore", ["bash", "-c", native.format(db="r_native", opts="")],
             drop("r_native")),
        Side("zstd -dc | pg_restore --single-transaction",
             ["bash", "-c", native.format(db="r_native1", opts="--single-transaction")], drop("r_native1")),
        Side("dbkeeper restore --jobs 2", dbkeeper("restore", single_id, server.url("r_dk2"), "--dir", "backups",
             "--jobs", "2"), drop("r_dk2")),
        Side("dbkeeper restore --jobs 2 (of the --jobs 2 backup)", dbkeeper(
             "restore", parallel_id, server.url("r_dkp"), "--dir", "backups-jobs", "--jobs", "2"),
             drop("r_dkp")),
        Side("zstd -dc > file && pg_restore -j2", ["bash", "-c", "createdb r_nat2 && zstd -q -dc shop.dump.zst "
             "-o tmp.dump && pg_restore -j2 -d r_nat2 tmp.dump && rm tmp.dump"],
             lambda: (drop("r_nat2")(), remove(work / "tmp.dump")())),
    ]  # fmt: skip
    compare(restore_sides, runs, work, env)

    print(f"\n{db_bytes / 2**30:.2f} GiB database ({sum(counts.values())} rows); wall time best of {runs}")
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
    sys.exit(main())
