"""The per-command fixed cost: an empty database's backup, dbkeeper against the native pipeline, per engine.

    .venv/bin/python benchmarks/fixed_cost.py [--runs 15] [--engines sqlite,postgresql,mariadb] [--workdir .bench]
                                              [--before /other/checkout/.venv/bin/dbkeeper]

A database without tables costs every backup whatever its size: the interpreter, the
imports, loading the plugins, the snapshot and its connection, the version probes, the
manifest and its fsyncs. This script starts the test suite's throwaway servers
(tests/postgresql/pg_server.py, tests/mysql/mariadb_server.py), creates an empty
database in each (and an SQLite file that holds no table), then runs, in turn, --runs
times after one untimed warm-up each:

    sqlite      dbkeeper -q backup sqlite:///empty.db --dir backups
                vs  sqlite3 empty.db ".backup tmp.db" && zstd -q -3 tmp.db && sha256sum tmp.db.zst
    postgresql  dbkeeper -q backup postgresql://app:…@127.0.0.1:PORT/empty --dir backups
                vs  pg_dump -Fc -Z0 empty | zstd -q -3 -T2 | tee >(sha256sum) > empty.dump.zst
    mariadb     dbkeeper -q backup mysql://…@127.0.0.1:PORT/empty --dir backups
                vs  mariadb-dump --single-transaction --routines --triggers --events --hex-blob empty
                    | zstd -q -3 | tee >(sha256sum > dump.sha256) > dump.sql.zst

(the same native pipelines as sqlite_backup.py, postgresql_backup.py and mysql_backup.py).
Each run is timed by GNU time as benchmarks/harness.py describes. The table gives the
median wall time of each side, the difference, and whether it is under the issue-10
target of 0.1 s above the native pipeline. With --before, another checkout's CLI is timed
in turn with this one's (before, after, native, before, after, native …), so that a
change is measured under the same load on both sides. This is a measurement, not a test: it never
fails on slow numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import statistics
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from harness import CORES, REPO, Side, compare, compile_bytecode, dbkeeper, print_end, print_start, remove, require

sys.path[:0] = [str(REPO / d) for d in ("tests", "tests/postgresql", "tests/mysql")]

from mariadb_server import ADMIN_USER, MariaDBServer  # noqa: E402
from pg_server import APP_PASSWORD, APP_USER, start_server  # noqa: E402

TARGET_SECONDS = 0.1
"""Issue 10: a backup costs at most this much more than the native pipeline."""
ENGINES = ("sqlite", "postgresql", "mariadb")


def sqlite_sides(work: Path) -> tuple[Side, Side, dict[str, str]]:
    """An SQLite file that once held a table and holds none now, and the two sides."""
    empty = work / "empty.db"
    with contextlib.closing(sqlite3.connect(empty)) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("DROP TABLE t")
        conn.commit()
    ours = Side("sqlite", dbkeeper("backup", f"sqlite:///{empty}", "--dir", "backups"), remove(work / "backups"))
    native = Side(
        "sqlite native",
        ["bash", "-c", f'sqlite3 {empty} ".backup tmp.db" && zstd -q -3 -T{CORES} tmp.db -o tmp.db.zst '
         "&& sha256sum tmp.db.zst"],
        remove(work / "tmp.db", work / "tmp.db.zst"),
    )  # fmt: skip
    return ours, native, dict(os.environ)


@contextlib.contextmanager
def postgresql_sides(work: Path) -> Iterator[tuple[Side, Side, dict[str, str]]]:
    """A throwaway PostgreSQL server with an empty database, and the two sides (native: a passfile)."""
    server = start_server()
    try:
        server.psql(f"CREATE DATABASE empty OWNER {APP_USER}")
        passfile = work / "pgpass"
        escaped = APP_PASSWORD.replace("\\", "\\\\").replace(":", "\\:")
        passfile.write_text(f"*:*:*:{APP_USER}:{escaped}\n")
        passfile.chmod(0o600)
        env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(server.port), "PGUSER": APP_USER,
               "PGPASSFILE": str(passfile)}  # fmt: skip
        ours = Side("postgresql", dbkeeper("backup", server.url("empty"), "--dir", "backups"), remove(work / "backups"))
        native = Side(
            "postgresql native",
            ["bash", "-c", "pg_dump -Fc -Z0 empty | zstd -q -3 -T2 | tee >(sha256sum) > empty.dump.zst"],
            remove(work / "empty.dump.zst"),
        )
        yield ours, native, env
    finally:
        server.stop()


@contextlib.contextmanager
def mariadb_sides(work: Path) -> Iterator[tuple[Side, Side, dict[str, str]]]:
    """A throwaway MariaDB server with an empty database, and the two sides (native: an option file)."""
    with MariaDBServer.started() as server:
        server.recreate("empty")
        options = work / "client.cnf"
        options.write_text(f"[client]\nuser={ADMIN_USER}\nsocket={server.socket}\ndefault-character-set=utf8mb4\n")
        dump = (
            f"{shutil.which('mariadb-dump')} --defaults-file={options} --single-transaction --routines --triggers "
            f"--events --hex-blob empty | zstd -q -3 -T{CORES} | tee >(sha256sum > dump.sha256) > dump.sql.zst"
        )
        ours = Side("mariadb", dbkeeper("backup", server.url("empty"), "--dir", "backups"), remove(work / "backups"))
        native = Side(
            "mariadb native",
            ["bash", "-o", "pipefail", "-c", dump],
            remove(work / "dump.sql.zst", work / "dump.sha256"),
        )
        yield ours, native, {**os.environ, "NO_COLOR": "1"}


def measure_engine(engine: str, runs: int, work: Path, before: Path | None) -> tuple[float, float, float | None]:
    """The median seconds of dbkeeper's, the native and (with *before*, another CLI) the before backup of *engine*."""
    work.mkdir(parents=True)
    if engine == "sqlite":
        sides = contextlib.nullcontext(sqlite_sides(work))
    else:
        sides = postgresql_sides(work) if engine == "postgresql" else mariadb_sides(work)
    with sides as (ours, native, env):
        env.pop("DATABASE_URL", None)
        print(f"{engine}, {runs} runs each:", flush=True)
        earlier = [Side(f"{engine} before", [str(before), *ours.argv[1:]], ours.cleanup)] if before else []
        compare([ours, *earlier, native], runs, work, env)
    medians = [statistics.median(s.seconds for s in side.samples) for side in (ours, native, *earlier)]
    return medians[0], medians[1], medians[2] if earlier else None


def main(argv: Sequence[str] | None = None) -> int:
    """Measure each engine, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per side (default 15; the median is shown)")
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, of {', '.join(ENGINES)}")
    parser.add_argument("--workdir", type=Path, default=REPO / ".bench", help="where backups and dumps go")
    parser.add_argument(
        "--before", type=Path, help="another checkout's dbkeeper CLI, timed in turn with this one's (a column 'before')"
    )
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if unknown := set(engines) - set(ENGINES):
        parser.error(f"unknown engine {sorted(unknown)[0]!r} (choose from {', '.join(ENGINES)})")
    tools = ["sqlite3", "pg_dump", "mariadb-dump", "zstd", "sha256sum"]
    if problem := require(tools, "run bash scripts/setup.sh and bash scripts/ensure-packages.sh"):
        parser.error(problem)
    work = args.workdir / "fixed-cost"
    shutil.rmtree(work, ignore_errors=True)
    print_start(work)
    if args.before is not None and (other := args.before.absolute().parents[2] / "core" / "src").is_dir():
        compile_bytecode(other.parents[1])  # as this checkout's: without bytecode, each of its runs compiles
    medians: dict[str, tuple[float, float, float | None]] = {}
    try:
        for engine in engines:
            medians[engine] = measure_engine(engine, args.runs, work / engine, args.before)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nempty-database backup, median of {args.runs} runs (s)")
    before_header = f"{'before':>10}" if args.before else ""
    target = f"target: native + {TARGET_SECONDS}"
    print(f"{'engine':<12}{before_header}{'dbkeeper':>10}{'native':>10}{'above':>10}  {target}")
    for engine, (ours, native, before) in medians.items():
        verdict = "met" if ours - native < TARGET_SECONDS else "not met"
        before_cell = f"{before:>10.3f}" if before is not None else ""
        print(f"{engine:<12}{before_cell}{ours:>10.3f}{native:>10.3f}{ours - native:>10.3f}  {verdict}")
    print_end()
    return 0


if __name__ == "__main__":
    sys.exit(main())
