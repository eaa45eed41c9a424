"""Time ``dbkeeper migrate up`` against the native clients running the same SQL, and ``migrate status``.

    .venv/bin/python benchmarks/migrations.py [--count 1000] [--status-files 10000] [--runs 3] [--workdir .bench]

Applies --count small migrations (a table, an index, a row each) to a fresh SQLite file
and to a fresh PostgreSQL database (a throwaway server, the test suite's
tests/postgresql/pg_server.py, on 127.0.0.1) with dbkeeper, and the same statements with
``sqlite3`` and ``psql``, each migration in its own transaction as dbkeeper runs them
(``BEGIN; …; COMMIT;``). dbkeeper does more per migration — it takes the lock, reads the
new history events, checks checksums and records the run — and the ratio says what that
costs. Then times ``migrate status`` over --status-files migration files. Best of
--runs runs each. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DBKEEPER = str(REPO / ".venv" / "bin" / "dbkeeper")
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "postgresql")]

from pg_server import APP_USER, start_server  # noqa: E402


def up_part(n: int) -> str:
    """The up part of the n-th migration (SQL both engines accept)."""
    return (
        f"CREATE TABLE item_{n} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL);\n"
        f"CREATE INDEX item_{n}_name ON item_{n} (name);\n"
        f"INSERT INTO item_{n} (id, name, price) VALUES (1, 'first of {n}', {n}.5);"
    )


def write_migrations(directory: Path, count: int) -> None:
    """*count* migration files, with down parts."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for n in range(count):
        (directory / f"{n:06d}_item_{n}.sql").write_text(
            f"-- migrate:up\n{up_part(n)}\n-- migrate:down\nDROP INDEX item_{n}_name;\nDROP TABLE item_{n};\n"
        )


def best_of(runs: int, prepare: Callable[[], list[str]], stdin: Path | None = None) -> float:
    """The fastest of *runs* timed runs of the command *prepare* sets up and returns."""
    times = []
    for _ in range(runs):
        command = prepare()
        with open(stdin or "/dev/null", "rb") as source:
            started = time.perf_counter()
            subprocess.run(command, stdin=source, stdout=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - started)
    return min(times)


def sqlite_side(runs: int, migrations: Path, script: Path, work: Path) -> tuple[float, float]:
    """(dbkeeper, sqlite3) seconds, each on a fresh file."""
    ours_db, native_db = work / "dbkeeper.db", work / "native.db"

    def ours() -> list[str]:
        ours_db.unlink(missing_ok=True)
        return [DBKEEPER, "-q", "migrate", "up", f"sqlite:///{ours_db}", "--dir", str(migrations)]

    def native() -> list[str]:
        native_db.unlink(missing_ok=True)
        return ["sqlite3", str(native_db)]

    return best_of(runs, ours), best_of(runs, native, stdin=script)


def postgres_side(runs: int, migrations: Path, script: Path) -> tuple[float, float]:
    """(dbkeeper, psql) seconds, each on a fresh database of a throwaway server."""
    server = start_server()
    numbers = itertools.count()

    def fresh() -> str:
        name = f"bench_{next(numbers)}"
        server.psql(f"CREATE DATABASE {name} OWNER {APP_USER} TEMPLATE template0")
        return name

    def ours() -> list[str]:
        return [DBKEEPER, "-q", "migrate", "up", server.url(fresh()), "--dir", str(migrations)]

    def native() -> list[str]:
        return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(server.socket_dir), "-p", str(server.port),
                "-U", APP_USER, "-d", fresh()]  # fmt: skip

    try:
        return best_of(runs, ours), best_of(runs, native, stdin=script)
    finally:
        server.stop()


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--status-files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=REPO / ".bench")
    args = parser.parse_args()
    work = args.workdir / "migrations"
    work.mkdir(parents=True, exist_ok=True)
    migrations, script = work / "files", work / "all.sql"
    write_migrations(migrations, args.count)
    script.write_text("".join(f"BEGIN;\n{up_part(n)}\nCOMMIT;\n" for n in range(args.count)))
    rows = [
        ("SQLite", *sqlite_side(args.runs, migrations, script, work)),
        ("PostgreSQL", *postgres_side(args.runs, migrations, script)),
    ]
    many, status_db = work / "status-files", work / "status.db"
    write_migrations(many, args.status_files)
    status = best_of(args.runs, lambda: [DBKEEPER, "migrate", "status", f"sqlite:///{status_db}", "--dir", str(many)])

    print(f"{'operation':<44} {'dbkeeper s':>10} {'native s':>9} {'ratio':>6}")
    for engine, ours, native in rows:
        label = f"{engine}: migrate up, {args.count} migrations"
        print(f"{label:<44} {ours:>10.2f} {native:>9.2f} {ours / native:>6.2f}")
    print(f"{f'migrate status: {args.status_files} files':<44} {status:>10.2f}")


if __name__ == "__main__":
    main()
