"""Time dbkeeper's MySQL/MariaDB backup and restore against mariadb-dump, zstd and the mariadb client.

    .venv/bin/python benchmarks/mysql_backup.py [--size 1GB] [--runs 3] [--native-fsync] [--workdir .bench/mysql]

It starts a throwaway MariaDB server (tests/mysql/mariadb_server.py: its own data
directory, port and socket, stopped at the end), loads about --size of the sample shop
data of scripts/sample_db.py into it (the same generator, rows written as tab-separated
files and read with LOAD DATA INFILE, six tables loaded at once), then measures, in one
run of this script:

    backup   dbkeeper -q backup mysql://…/shop --dir backups
             vs  mariadb-dump --single-transaction --routines --triggers --events --hex-blob shop
                 | zstd -q -3 -T<cores> | tee >(sha256sum > dump.sha256) > dump.sql.zst
    restore  dbkeeper -q restore ID mysql://…/r_single --jobs 1   (one stream)
             dbkeeper -q restore ID mysql://…/r_jobs --jobs 2     (two tables at a time, the default)
             vs  zstd -q -dc dump.sql.zst | mariadb r_native
    python   DBKEEPER_MYSQL_TOOLS=python dbkeeper -q backup …     (the pure-Python dumper)

    empty    the backup alone on both sides, of a database without tables: what every
             command costs whatever the size (interpreter start, imports, plugins, the snapshot)

Every restore goes into a new database. Both sides use the same server, settings and
credentials (a private option file for the native tools). The buffer pool (2 GiB) is
larger than the data, and the backups run once untimed first, so that neither side reads
from disk; then they take turns --runs times (restores, about a minute and a half each,
and the pure-Python dumper run once). Wall time, CPU and peak RSS are measured as
benchmarks/harness.py describes. dbkeeper fsyncs what it writes; with --native-fsync the
native backup ends with ``sync dump.sql.zst .`` to do the same. This is a measurement, not
a test: it never fails on slow numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from harness import CORES, REPO, Side, compare, dbkeeper, print_end, print_start, print_table, remove, require

sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests"), str(REPO / "tests" / "mysql")]
from mariadb_server import ADMIN_USER, MariaDBServer  # noqa: E402
from sample_db import DEFAULT_SEED, ShopGenerator, parse_size  # noqa: E402

DATABASE = "shop"
SERVER_OPTIONS = ("--innodb-buffer-pool-size=2G", "--innodb-log-file-size=1G", "--max-allowed-packet=1G")
SCHEMA = {
    "products": """CREATE TABLE products (
        id INT NOT NULL PRIMARY KEY, sku VARCHAR(32) NOT NULL UNIQUE, name VARCHAR(200) NOT NULL,
        category VARCHAR(40) NOT NULL, description TEXT NOT NULL, price DECIMAL(10,2) NOT NULL,
        stock INT NOT NULL, weight_kg DECIMAL(8,3) NULL)""",
    "customers": """CREATE TABLE customers (
        id INT NOT NULL PRIMARY KEY, first_name VARCHAR(60) NOT NULL, last_name VARCHAR(60) NOT NULL,
        email VARCHAR(160) NOT NULL, phone VARCHAR(30) NULL, city VARCHAR(60) NOT NULL, country CHAR(2) NOT NULL,
        created_at DATETIME NOT NULL, is_active TINYINT NOT NULL, loyalty_points INT NOT NULL)""",
    "orders": """CREATE TABLE orders (
        id INT NOT NULL PRIMARY KEY, customer_id INT NOT NULL, ordered_at DATETIME NOT NULL,
        status VARCHAR(16) NOT NULL, currency CHAR(3) NOT NULL, total DECIMAL(12,2) NOT NULL,
        shipping_city VARCHAR(60) NOT NULL, note VARCHAR(200) NULL, KEY orders_customer (customer_id))""",
    "order_items": """CREATE TABLE order_items (
        id INT NOT NULL PRIMARY KEY, order_id INT NOT NULL, product_id INT NOT NULL, quantity INT NOT NULL,
        unit_price DECIMAL(10,2) NOT NULL, KEY order_items_order (order_id))""",
    "reviews": """CREATE TABLE reviews (
        id INT NOT NULL PRIMARY KEY, product_id INT NOT NULL, customer_id INT NOT NULL, rating TINYINT NOT NULL,
        title VARCHAR(200) NOT NULL, body TEXT NOT NULL, created_at DATETIME NOT NULL)""",
    "events": """CREATE TABLE events (
        id INT NOT NULL PRIMARY KEY, customer_id INT NULL, created_at DATETIME NOT NULL, kind VARCHAR(32) NOT NULL,
        payload TEXT NOT NULL, message TEXT NULL, KEY events_created (created_at))""",
}
_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def tsv_line(row: Sequence[object]) -> str:
    """A row as LOAD DATA's default format reads it (NULL is \\N)."""
    return "\t".join("\\N" if v is None else v.translate(_TSV_ESCAPES) if isinstance(v, str) else repr(v)
                     for v in row) + "\n"  # fmt: skip


def generate(directory: Path, size: int, seed: int) -> dict[str, int]:
    """Write about *size* bytes of shop rows as one TSV file per table; return rows per table."""
    files: dict[str, TextIO] = {t: (directory / f"{t}.tsv").open("w", encoding="utf-8") for t in SCHEMA}
    counts = dict.fromkeys(SCHEMA, 0)
    written = 0
    generator = ShopGenerator(seed, products=max(50, min(50_000, size // 40_000)))
    try:
        for row in generator.products():
            written += files["products"].write(tsv_line(row))
            counts["products"] += 1
        while written < size:
            for table, rows in generator.batch(2000, written / size).items():
                out = files[table]
                written += sum(out.write(tsv_line(row)) for row in rows)
                counts[table] += len(rows)
            if sys.stderr.isatty():
                print(f"\r  generated {written / 2**20:8.1f} / {size / 2**20:.0f} MiB", end="", file=sys.stderr)
    finally:
        for out in files.values():
            out.close()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return counts


def load(server: MariaDBServer, directory: Path) -> None:
    """LOAD DATA INFILE every table at once (one connection each)."""
    server.recreate(DATABASE)
    server.execute(*SCHEMA.values(), database=DATABASE)
    errors: list[BaseException] = []

    def load_table(table: str) -> None:
        try:
            server.execute(
                "SET SESSION unique_checks = 0, foreign_key_checks = 0",
                f"LOAD DATA INFILE '{directory / (table + '.tsv')}' INTO TABLE {table} CHARACTER SET utf8mb4",
                database=DATABASE,
            )
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=load_table, args=(table,)) for table in SCHEMA]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def counts(server: MariaDBServer, database: str) -> dict[str, int]:
    """Rows per table."""
    return {t: int(server.execute(f"SELECT COUNT(*) FROM `{database}`.`{t}`")[0][0]) for t in SCHEMA}


@dataclass
class Measured:
    """What the summary says besides the table."""

    manifest: dict[str, Any]
    native_bytes: int
    python_dumper: Side | None


def bench(server: MariaDBServer, workdir: Path, runs: int, native_fsync: bool, python_dumper: bool) -> Measured:
    """Every measurement, printed as a table as it ends."""
    env = {**os.environ, "NO_COLOR": "1"}
    options = workdir / "client.cnf"
    options.write_text(f"[client]\nuser={ADMIN_USER}\nsocket={server.socket}\ndefault-character-set=utf8mb4\n")

    def native_dump(database: str) -> list[str]:
        dump = (
            f"{shutil.which('mariadb-dump')} --defaults-file={options} --single-transaction --routines --triggers "
            f"--events --hex-blob {database} | zstd -q -3 -T{CORES} | tee >(sha256sum > dump.sha256) > dump.sql.zst"
        )
        return ["bash", "-o", "pipefail", "-c", dump + (" && sync dump.sql.zst ." if native_fsync else "")]

    def drop(database: str) -> Callable[[], None]:
        return lambda: server.execute(f"DROP DATABASE IF EXISTS {database}")

    backups = workdir / "backups"
    server.recreate("empty")
    native_files = remove(workdir / "dump.sql.zst", workdir / "dump.sha256")
    ours = Side("dbkeeper backup", dbkeeper("backup", server.url(DATABASE), "--dir", str(backups)), remove(backups))
    native = Side("mariadb-dump | zstd | sha256sum", native_dump(DATABASE), native_files)
    ours_empty = Side(
        "dbkeeper backup, empty database",
        dbkeeper("backup", server.url("empty"), "--dir", "backups-empty"),
        remove(workdir / "backups-empty"),
    )
    native_empty = Side("native backup, empty database", native_dump("empty"), native_files)
    print(f"backup, {runs} runs each:", flush=True)
    compare([ours_empty, native_empty, ours, native], runs, workdir, env)  # the shop's dumps last: restored below
    backup_id = ours.last_line

    native_restore = f"zstd -q -dc dump.sql.zst | {shutil.which('mariadb')} --defaults-file={options} r_native"
    restores = [
        Side(
            "zstd -dc | mariadb",
            ["bash", "-o", "pipefail", "-c", native_restore],
            lambda: server.execute(
                "DROP DATABASE IF EXISTS r_native", "CREATE DATABASE r_native CHARACTER SET utf8mb4"
            ),
        ),
        Side(
            "dbkeeper restore --jobs 1",
            dbkeeper("restore", backup_id, server.url("r_single"), "--dir", str(backups), "--jobs", "1"),
            drop("r_single"),
        ),
        Side(
            "dbkeeper restore --jobs 2",
            dbkeeper("restore", backup_id, server.url("r_jobs"), "--dir", str(backups), "--jobs", "2"),
            drop("r_jobs"),
        ),
    ]
    print("restore, one run each:", flush=True)
    compare(restores, 1, workdir, env, warm_up=False)
    sides = [ours, native, ours_empty, native_empty, *restores]
    python = None
    if python_dumper:
        python = Side(
            "pure-Python dumper",
            dbkeeper("backup", server.url(DATABASE), "--dir", "python"),
            remove(workdir / "python"),
        )
        compare([python], 1, workdir, {**env, "DBKEEPER_MYSQL_TOOLS": "python"}, warm_up=False)
        sides.append(python)
    expected = counts(server, DATABASE)
    for database in ("r_native", "r_single", "r_jobs"):
        if counts(server, database) != expected:
            print(f"warning: {database} has different row counts from {DATABASE}", file=sys.stderr)

    fsync = "with" if native_fsync else "without"
    print(f"\nzstd -3, {CORES} threads on both sides; backups: best of {runs}, native {fsync} fsync; restores: one run")
    references = {ours.label: native.label, ours_empty.label: native_empty.label, "pure-Python dumper": native.label}
    print_table(sides, references | {side.label: restores[0].label for side in restores[1:]})
    manifest = json.loads((backups / backup_id / "manifest.json").read_text())
    return Measured(manifest, (workdir / "dump.sql.zst").stat().st_size, python)


def summary(measured: Measured) -> None:
    """What was backed up, and what each side stored."""
    manifest = measured.manifest
    raw = manifest["raw_bytes"]
    print(
        f"data: {sum(manifest['row_counts'].values()):,} rows; dump {raw / 2**20:.0f} MiB of SQL; "
        f"dbkeeper stored {manifest['stored_bytes'] / 2**20:.0f} MiB in {len(manifest['artifacts'])} artifacts, "
        f"native .zst {measured.native_bytes / 2**20:.0f} MiB"
    )
    if measured.python_dumper is not None:
        print(f"pure-Python dumper: {raw / 2**20 / measured.python_dumper.best:.1f} MiB/s of SQL")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, set up the server and data, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1GB"), help="data size (default 1GB)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"sample data seed (default {DEFAULT_SEED})")
    parser.add_argument("--workdir", type=Path, default=REPO / ".bench" / "mysql", help="backups and dumps go here")
    parser.add_argument("--runs", type=int, default=3, help="backups of each side, alternating (default 3)")
    parser.add_argument("--native-fsync", action="store_true", help="end the native backup with sync, as dbkeeper does")
    parser.add_argument("--skip-python-dumper", action="store_true", help="do not time the pure-Python dumper")
    args = parser.parse_args(argv)
    tools = ["mariadb-dump", "mariadb", "zstd", "sha256sum"]
    if problem := require(tools, "bash scripts/setup.sh; bash scripts/ensure-packages.sh"):
        parser.error(problem)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print_start(args.workdir)
    with MariaDBServer.started(SERVER_OPTIONS) as server:
        ((version,),) = server.execute("SELECT VERSION()")
        print(f"MariaDB {version} on 127.0.0.1:{server.port} ({server.base})")
        staging = server.base / "load"
        staging.mkdir(mode=0o755)
        started = time.perf_counter()
        rows = generate(staging, args.size, args.seed)
        print(f"generated {sum(rows.values()):,} rows in {time.perf_counter() - started:.0f}s; loading ...", flush=True)
        for path in staging.iterdir():
            path.chmod(0o644)
        started = time.perf_counter()
        load(server, staging)
        shutil.rmtree(staging)
        print(f"loaded in {time.perf_counter() - started:.0f}s", flush=True)
        results = bench(server, args.workdir, args.runs, args.native_fsync, not args.skip_python_dumper)
    summary(results)
    print_end()
    return 0


if __name__ == "__main__":
    sys.exit(main())
