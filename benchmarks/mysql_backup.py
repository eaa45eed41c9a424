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
    restore  dbkeeper -q restore ID mysql://…/r_single            (one stream)
             dbkeeper -q restore ID mysql://…/r_jobs --jobs 2     (two tables at a time)
             vs  zstd -q -dc dump.sql.zst | mariadb r_native
    python   DBKEEPER_MYSQL_TOOLS=python dbkeeper -q backup …     (the pure-Python dumper)

Every restore goes into a new database. Both sides use the same server, settings and
credentials (a private option file for the native tools). A first, untimed dump warms
the buffer pool (2 GiB, larger than the data) so that neither side reads from disk; the
two backups then alternate --runs times and the best of each is reported (restores,
about a minute and a half each, run once). dbkeeper fsyncs what it writes; with
--native-fsync the native backup ends with ``sync dump.sql.zst .`` to do the same. Peak
RSS of the dbkeeper process is its VmHWM, read from /proc until it exits; the tools'
peak is the largest of the command and every process it waited for (wait4's
ru_maxrss). This is a measurement, not a test: it never fails on slow numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

REPO = Path(__file__).resolve().parents[1]
DBKEEPER = REPO / ".venv" / "bin" / "dbkeeper"
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


@dataclass
class Sample:
    """One timed command."""

    seconds: float
    cpu_seconds: float
    own_rss_kib: int
    tree_rss_kib: int
    stdout: str


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


def run(argv: Sequence[str], env: dict[str, str] | None = None) -> Sample:
    """Run *argv*: wall time, CPU time of it and its children, its own peak RSS (VmHWM), its tree's peak."""
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-{os.getpid()}.out"
    started = time.perf_counter()
    with out_path.open("w+") as out:
        proc = subprocess.Popen(argv, env={**os.environ, **(env or {})}, stdout=out)
        own = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            try:
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        own = max(own, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        stdout = out.read()
    out_path.unlink()
    if proc.returncode != 0:
        raise SystemExit(f"command failed with status {proc.returncode}: {shlex.join(argv)}")
    return Sample(seconds, usage.ru_utime + usage.ru_stime, own, usage.ru_maxrss, stdout)


def counts(server: MariaDBServer, database: str) -> dict[str, int]:
    """Rows per table."""
    return {t: int(server.execute(f"SELECT COUNT(*) FROM `{database}`.`{t}`")[0][0]) for t in SCHEMA}


def bench(
    server: MariaDBServer, workdir: Path, threads: int, runs: int, native_fsync: bool, python_dumper: bool
) -> dict[str, Any]:
    """Every measurement; returns what the summary prints."""
    url = server.url(DATABASE)
    env = {"NO_COLOR": "1"}
    options = workdir / "client.cnf"
    options.write_text(f"[client]\nuser={ADMIN_USER}\nsocket={server.socket}\ndefault-character-set=utf8mb4\n")
    dump_tool, client = shutil.which("mariadb-dump"), shutil.which("mariadb")
    native_dump = (
        f"{dump_tool} --defaults-file={options} --single-transaction --routines --triggers --events --hex-blob "
        f"{DATABASE} | zstd -q -3 -T{threads} | tee >(sha256sum > dump.sha256) > dump.sql.zst"
        + (" && sync dump.sql.zst ." if native_fsync else "")
    )
    backups = workdir / "backups"
    shutil.rmtree(backups, ignore_errors=True)
    results: dict[str, Any] = {}

    def step(label: str, action: Callable[[], Sample]) -> Sample:
        print(f"  {label} ...", end="", flush=True)
        sample = action()
        print(f" {sample.seconds:.1f}s (CPU {sample.cpu_seconds:.1f}s), own RSS {sample.own_rss_kib / 1024:.0f} MiB, "
              f"tree RSS {sample.tree_rss_kib / 1024:.0f} MiB", flush=True)  # fmt: skip
        return sample

    os.chdir(workdir)
    step("warm-up: mariadb-dump > /dev/null", lambda: run(["bash", "-c", native_dump.split(" | ")[0] + " > /dev/null"]))
    natives, ours = [], []
    for attempt in range(runs):
        natives.append(step(f"native backup ({attempt + 1}/{runs})", lambda: run(["bash", "-c", native_dump])))
        shutil.rmtree(backups, ignore_errors=True)
        ours.append(
            step(
                f"dbkeeper backup ({attempt + 1}/{runs})",
                lambda: run([str(DBKEEPER), "-q", "backup", url, "--dir", str(backups)], env),
            )
        )
    results["native backup"] = min(natives, key=lambda sample: sample.seconds)
    results["backup"] = min(ours, key=lambda sample: sample.seconds)
    backup_id = ours[-1].stdout.strip().splitlines()[-1]
    manifest = json.loads((backups / backup_id / "manifest.json").read_text())

    for database in ("r_native", "r_single", "r_jobs"):
        server.execute(f"DROP DATABASE IF EXISTS {database}")
    server.execute("CREATE DATABASE r_native CHARACTER SET utf8mb4")
    results["native restore"] = step(
        "native restore",
        lambda: run(
            ["bash", "-o", "pipefail", "-c", f"zstd -q -dc dump.sql.zst | {client} --defaults-file={options} r_native"]
        ),
    )
    results["restore"] = step(
        "dbkeeper restore",
        lambda: run([str(DBKEEPER), "-q", "restore", backup_id, server.url("r_single"), "--dir", str(backups)], env),
    )
    results["restore --jobs 2"] = step(
        "dbkeeper restore --jobs 2",
        lambda: run(
            [str(DBKEEPER), "-q", "restore", backup_id, server.url("r_jobs"), "--dir", str(backups), "--jobs", "2"], env
        ),
    )
    if python_dumper:
        results["python dumper"] = step(
            "pure-Python dumper",
            lambda: run(
                [str(DBKEEPER), "-q", "backup", url, "--dir", str(workdir / "python")],
                {**env, "DBKEEPER_MYSQL_TOOLS": "python"},
            ),
        )
    expected = counts(server, DATABASE)
    for database in ("r_native", "r_single", "r_jobs"):
        if counts(server, database) != expected:
            print(f"warning: {database} has different row counts from {DATABASE}", file=sys.stderr)
    results["manifest"] = manifest
    results["native bytes"] = (workdir / "dump.sql.zst").stat().st_size
    return results


def summary(results: dict[str, Any], threads: int, runs: int, native_fsync: bool) -> None:
    """The table of timings, ratios and memory."""
    manifest = results["manifest"]
    raw = manifest["raw_bytes"]
    print()
    print(
        f"data: {sum(manifest['row_counts'].values()):,} rows; dump {raw / 2**20:.0f} MiB of SQL; "
        f"dbkeeper stored {manifest['stored_bytes'] / 2**20:.0f} MiB in {len(manifest['artifacts'])} artifacts, "
        f"native .zst {results['native bytes'] / 2**20:.0f} MiB; zstd -3, {threads} threads on both sides"
    )
    print(f"{'operation':<22}{'dbkeeper s':>11}{'native s':>10}{'ratio':>8}{'CPU s':>14}"
          f"{'dbkeeper RSS MiB':>18}{'tools RSS MiB':>15}")  # fmt: skip
    pairs = [("backup", "native backup"), ("restore", "native restore"), ("restore --jobs 2", "native restore")]
    for ours, native in pairs:
        a, b = results[ours], results[native]
        print(f"{ours:<22}{a.seconds:>11.1f}{b.seconds:>10.1f}{a.seconds / b.seconds:>8.2f}"
              f"{f'{a.cpu_seconds:.1f}/{b.cpu_seconds:.1f}':>14}"
              f"{a.own_rss_kib / 1024:>18.0f}{a.tree_rss_kib / 1024:>15.0f}")  # fmt: skip
    if "python dumper" in results:
        python = results["python dumper"]
        print(f"{'python dumper':<22}{python.seconds:>11.1f}{results['native backup'].seconds:>10.1f}"
              f"{python.seconds / results['native backup'].seconds:>8.2f}{python.cpu_seconds:>14.1f}"
              f"{python.own_rss_kib / 1024:>18.0f}"
              f"{python.tree_rss_kib / 1024:>15.0f}   ({raw / 2**20 / python.seconds:.1f} MiB/s of SQL)")  # fmt: skip
    print("CPU s = dbkeeper/native, user + system of the command and its children (not the server's)")
    print(
        f"ratio = dbkeeper / native (below 1: dbkeeper is faster); backups: best of {runs}, native "
        f"{'with' if native_fsync else 'without'} fsync; restores: one run, the native restore is one stream"
    )


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
    for tool in ("mariadb-dump", "mariadb", "zstd", "sha256sum", str(DBKEEPER)):
        if not shutil.which(tool):
            parser.error(f"{tool} is not installed (bash scripts/setup.sh; bash scripts/ensure-packages.sh)")
    threads = os.cpu_count() or 1
    args.workdir.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    print(f"dbkeeper at {commit or 'unknown commit'}; {threads} cores; load average {os.getloadavg()[0]:.2f}")
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
        results = bench(server, args.workdir, threads, args.runs, args.native_fsync, not args.skip_python_dumper)
    summary(results, threads, args.runs, args.native_fsync)
    print(f"load average at the end {os.getloadavg()[0]:.2f} (timings are only comparable on an idle machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
