"""Time ``dbkeeper migrate up`` against the native client running the same SQL, and ``migrate status``.

    .venv/bin/python benchmarks/sqlite_migrations.py [--count 1000] [--status-files 10000] [--workdir .bench]

Applies --count small migrations (a table, an index, a row each) to a fresh SQLite file
with dbkeeper, and the same statements with ``sqlite3``, each migration in its own
transaction as dbkeeper runs them (``BEGIN IMMEDIATE; …; COMMIT;``), both with SQLite's
default durability. dbkeeper does more per migration — it takes the lock, reads the
history, checks every applied checksum and records the run — and the ratio says what
that costs. Then times ``migrate status`` over --status-files migration files. Best of
three runs each. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DBKEEPER = str(REPO / ".venv" / "bin" / "dbkeeper")


def up_part(n: int) -> str:
    """The up part of the n-th migration."""
    return (
        f"CREATE TABLE item_{n} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL);\n"
        f"CREATE INDEX item_{n}_name ON item_{n} (name);\n"
        f"INSERT INTO item_{n} (name, price) VALUES ('first of {n}', {n}.5);"
    )


def write_migrations(directory: Path, count: int) -> None:
    """*count* migration files, with down parts."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for n in range(count):
        (directory / f"{n:06d}_item_{n}.sql").write_text(
            f"-- migrate:up\n{up_part(n)}\n-- migrate:down\nDROP INDEX item_{n}_name;\nDROP TABLE item_{n};\n"
        )


def best_of(runs: int, prepare: Callable[[], None], command: list[str], stdin: Path | None = None) -> float:
    """The fastest of *runs* timed runs of *command*, each after *prepare*."""
    times = []
    for _ in range(runs):
        prepare()
        started = time.perf_counter()
        with open(stdin, "rb") if stdin else open("/dev/null", "rb") as source:
            subprocess.run(command, stdin=source, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return min(times)


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
    migrations, db, native_db, script = work / "files", work / "dbkeeper.db", work / "native.db", work / "all.sql"
    write_migrations(migrations, args.count)
    script.write_text("".join(f"BEGIN IMMEDIATE;\n{up_part(n)}\nCOMMIT;\n" for n in range(args.count)))

    def fresh(path: Path) -> Callable[[], None]:
        return lambda: path.unlink(missing_ok=True)

    ours = best_of(args.runs, fresh(db), [DBKEEPER, "-q", "migrate", "up", f"sqlite:///{db}", "--dir", str(migrations)])
    native = best_of(args.runs, fresh(native_db), ["sqlite3", str(native_db)], stdin=script)
    many = work / "status-files"
    write_migrations(many, args.status_files)
    status_db = work / "status.db"
    status = best_of(
        args.runs, lambda: None, [DBKEEPER, "migrate", "status", f"sqlite:///{status_db}", "--dir", str(many)]
    )

    print(f"{'operation':<44} {'dbkeeper s':>10} {'native s':>9} {'ratio':>6}")
    print(f"{f'migrate up: {args.count} migrations':<44} {ours:>10.2f} {native:>9.2f} {ours / native:>6.2f}")
    print(f"{f'migrate status: {args.status_files} files':<44} {status:>10.2f} {'':>9} {'':>6}")


if __name__ == "__main__":
    main()
