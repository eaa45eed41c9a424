"""Time one scrape of dbkeeper metrics --serve against Debian's Prometheus exporters.

    .venv/bin/python benchmarks/metrics.py [--tables 1000] [--scrapes 20] [--families] [--workdir .bench]

It starts a throwaway PostgreSQL 15 server (tests/postgresql/pg_server.py, with
pg_stat_statements preloaded) and a throwaway MariaDB server (tests/mysql/mariadb_server.py),
creates --tables tables (a primary key and 100 rows each) in one database of each, and
runs, on loopback, each on its own free port, from the packages scripts/ensure-packages.sh
extracts into .tools/deb/ (no service installed):

    PostgreSQL  dbkeeper metrics --serve  vs  prometheus-postgres-exporter (0.11, default flags)
    MariaDB     dbkeeper metrics --serve  vs  prometheus-mysqld-exporter (0.14, default flags)

dbkeeper runs one process per engine, its dbkeeper.toml naming that one database
(``[monitoring]`` defaults: per-table series up to 1000 tables, a 10 s deadline). Every
side connects as a role of its own with the same privileges (PostgreSQL ``pg_monitor``;
MariaDB ``PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT``). For each side, one untimed scrape of
``/metrics``, then --scrapes scrapes one after the other:

- **scrape s**: the median wall time of a scrape (an HTTP GET of the whole page), and the
  slowest;
- **queries/scrape**: statements the database server executed for the side, per scrape.
  PostgreSQL: the increase of ``sum(calls)`` in ``pg_stat_statements`` for the side's role
  (``track_utility`` on, so ``SET`` counts too; a statement that fails is not counted).
  MariaDB: the increase of the global ``Questions`` status over the block of scrapes, minus
  what the probe that reads it adds (measured by two probes back to back), so the sides'
  blocks run one after the other, never together;
- **series**: sample lines on the page (``# HELP``/``# TYPE`` lines not counted);
- **CPU s/scrape**: user + system time of the exporter's process over the block, per scrape
  (the database server's work is not in it);
- **peak RSS MiB**: the process's high-water mark (``VmHWM``) after all its scrapes.

An exporter that does not answer within 60 s of its start, or a scrape that takes more
than 120 s, stops the benchmark. It prints the figures, the ratios dbkeeper / exporter, the
number of metric families each side exposes (with --families, their names). A measurement,
not a test: it never fails on slow numbers.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import DBKEEPER, REPO, print_end, print_start, require

sys.path[:0] = [str(REPO / d) for d in ("tests", "tests/postgresql", "tests/mysql")]

from mariadb_server import MariaDBServer  # noqa: E402
from pg_server import Server, start_server  # noqa: E402

TOOLS = REPO / ".tools" / "deb"
POSTGRES_EXPORTER = TOOLS / "prometheus-postgres-exporter" / "usr" / "bin" / "prometheus-postgres-exporter"
MYSQLD_EXPORTER = TOOLS / "prometheus-mysqld-exporter" / "usr" / "bin" / "prometheus-mysqld-exporter"
DATABASE = "bench"
PASSWORD = "bench-pw-7c1e"
READY_TIMEOUT = 60.0  # seconds an exporter may take to answer its first scrape
SCRAPE_TIMEOUT = 120.0  # seconds one scrape may take before the benchmark gives up
OWN_TIMING = re.compile(
    r'^dbkeeper_scrape(?:_collector)?_duration_seconds\{(?:collector="(?P<collector>[^"]+)",)?[^}]*\} (?P<seconds>\S+)$'
)
"""dbkeeper's own timing lines: a collector's duration, or the whole scrape's."""


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def scrape(url: str) -> tuple[float, str]:
    """GET *url*: the wall time in seconds and the page."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT) as response:
        body: str = response.read().decode()
    return time.perf_counter() - started, body


def process_status(pid: int, field_name: str) -> int:
    """A KiB figure of ``/proc/PID/status`` (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    raise KeyError(field_name)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process *pid* (and its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Exporter:
    """One side: a command serving ``/metrics`` on *port*, started in *cwd* with *env*."""

    label: str
    argv: list[str]
    port: int
    cwd: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its metrics page."""
        return f"http://127.0.0.1:{self.port}/metrics"

    def start(self, log: Path) -> None:
        """Start it and wait until it serves a page (the first scrape is untimed)."""
        with log.open("wb") as out:
            self.process = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=out, stderr=out)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                scrape(self.url)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{self.label} did not serve {self.url}: see {log}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after 30 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Result:
    """What one side's block of scrapes measured."""

    label: str
    seconds: list[float]
    queries_per_scrape: float
    series: int
    cpu_per_scrape: float
    rss_mib: float
    families: list[str] = field(default_factory=list)
    collectors: dict[str, float] = field(default_factory=dict)
    """dbkeeper's own timing of its last scrape: each collector's seconds, and ``(scrape)`` for the whole."""
    failed: list[str] = field(default_factory=list)
    """dbkeeper's collectors that failed in its last scrape (a missing privilege)."""

    @property
    def median(self) -> float:
        """The median scrape time, in seconds."""
        return statistics.median(self.seconds)


def measure(exporter: Exporter, scrapes: int, queries: Callable[[], float]) -> Result:
    """*scrapes* timed scrapes of a running *exporter*, with the server's statement count before and after."""
    assert exporter.process is not None
    pid = exporter.process.pid
    scrape(exporter.url)  # warm: the first scrape after start may load code and open pools
    before, cpu_before = queries(), cpu_seconds(pid)
    timings, page = [], ""
    for _ in range(scrapes):
        seconds, page = scrape(exporter.url)
        timings.append(seconds)
    after, cpu_after = queries(), cpu_seconds(pid)
    lines = [line for line in page.splitlines() if line and not line.startswith("#")]
    families = sorted({line.split()[2] for line in page.splitlines() if line.startswith("# TYPE ")})
    result = Result(
        exporter.label,
        timings,
        (after - before) / scrapes,
        len(lines),
        (cpu_after - cpu_before) / scrapes,
        process_status(pid, "VmHWM") / 1024,
        families,
    )
    for line in lines:
        if found := OWN_TIMING.match(line):
            result.collectors[found["collector"] or "(scrape)"] = float(found["seconds"])
        elif line.startswith("dbkeeper_scrape_collector_success{") and line.endswith(" 0.0"):
            result.failed.append(line.split('collector="')[1].split('"')[0])
    return result


def dbkeeper_sides(engine: str, url: str, work: Path) -> list[Exporter]:
    """``dbkeeper metrics --serve`` for one connection named ``bench``, with the default ``table_limit`` (1000)
    and with ``table_limit = 0`` (no per-table series, as the exporters by default); each in a folder of its own."""
    sides = []
    for table_limit, label in ((None, ""), (0, ", table_limit 0")):
        folder = work / f"dbkeeper-{engine}{label.replace(', ', '-').replace(' ', '')}"
        folder.mkdir()
        monitoring = "" if table_limit is None else f"[monitoring]\ntable_limit = {table_limit}\n"
        (folder / "dbkeeper.toml").write_text(
            f'backup_dir = "backups"\n{monitoring}[connections.bench]\nurl = "{url}"\n'
        )
        port = free_port()
        env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
        argv = [str(DBKEEPER), "metrics", "--serve", f"127.0.0.1:{port}"]
        sides.append(Exporter(f"dbkeeper metrics --serve{label}", argv, port, folder, env))
    return sides


def postgresql(server: Server, tables: int, scrapes: int, work: Path) -> list[Result]:
    """dbkeeper and postgres_exporter on the same PostgreSQL database of *tables* tables."""
    server.psql(f"CREATE DATABASE {DATABASE}")
    server.psql("CREATE EXTENSION pg_stat_statements", database=DATABASE)
    server.psql(
        f"DO $$ BEGIN FOR i IN 1..{tables} LOOP "
        "EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', i); "
        "EXECUTE format('INSERT INTO t%s SELECT g, md5(g::text) FROM generate_series(1, 100) g', i); "
        "END LOOP; END $$; ANALYZE",
        database=DATABASE,
    )
    for role in ("dbkeeper_bench", "exporter_bench"):
        server.psql(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_monitor")
    base = f"127.0.0.1:{server.port}/{DATABASE}"
    dbkeeper_url = f"postgresql://dbkeeper_bench:{PASSWORD}@{base}"
    exporter_env = {"DATA_SOURCE_NAME": f"postgresql://exporter_bench:{PASSWORD}@{base}?sslmode=disable"}
    port = free_port()
    exporter = Exporter(
        "prometheus-postgres-exporter 0.11",
        [str(POSTGRES_EXPORTER), f"--web.listen-address=127.0.0.1:{port}"],
        port,
        work,
        exporter_env,
    )

    def statements(role: str) -> Callable[[], float]:
        sql = f"SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE userid = '{role}'::regrole"
        return lambda: float(server.psql(sql, database=DATABASE))

    sides = [*((side, "dbkeeper_bench") for side in dbkeeper_sides("postgresql", dbkeeper_url, work))]
    sides.append((exporter, "exporter_bench"))
    return run_sides(sides, statements, scrapes, work)


def mariadb(server: MariaDBServer, tables: int, scrapes: int, work: Path) -> list[Result]:
    """dbkeeper and mysqld_exporter on the same MariaDB database of *tables* tables."""
    server.recreate(DATABASE)
    rows = ",".join(f"({n}, md5({n}))" for n in range(1, 101))
    script = "".join(
        f"CREATE TABLE t{i} (id int PRIMARY KEY, v varchar(32)) ENGINE=InnoDB; INSERT INTO t{i} VALUES {rows};\n"
        for i in range(1, tables + 1)
    )
    server.load_sql(DATABASE, script.encode())
    for user in ("dbkeeper_bench", "exporter_bench"):
        server.execute(
            f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'",
            f"GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT ON *.* TO '{user}'@'127.0.0.1'",
        )
    dbkeeper_url = f"mysql://dbkeeper_bench:{PASSWORD}@127.0.0.1:{server.port}/{DATABASE}"
    port = free_port()
    exporter = Exporter(
        "prometheus-mysqld-exporter 0.14",
        [str(MYSQLD_EXPORTER), f"--web.listen-address=127.0.0.1:{port}", "--config.my-cnf=/dev/null"],
        port,
        work,
        {"DATA_SOURCE_NAME": f"exporter_bench:{PASSWORD}@(127.0.0.1:{server.port})/"},
    )

    def questions() -> float:
        ((_, value),) = server.execute("SHOW GLOBAL STATUS LIKE 'Questions'")
        return float(str(value))

    first = questions()
    probe = questions() - first  # what one probe (its connection and its SHOW) adds to the next reading
    sides = [*((side, "") for side in dbkeeper_sides("mariadb", dbkeeper_url, work)), (exporter, "")]
    results = run_sides(sides, lambda _: questions, scrapes, work)
    for result in results:
        result.queries_per_scrape -= probe / scrapes  # the block's closing probe
    return results


def run_sides(
    sides: Sequence[tuple[Exporter, str]], counter: Callable[[str], Callable[[], float]], scrapes: int, work: Path
) -> list[Result]:
    """Start each side, measure its block of scrapes, stop it; one side at a time."""
    results = []
    for exporter, role in sides:
        exporter.start(work / f"{exporter.label.split()[0]}-{exporter.port}.log")
        try:
            result = measure(exporter, scrapes, counter(role))
        finally:
            exporter.stop()
        print(f"  {result.label}: median {result.median:.3f}s, {result.series} series", flush=True)
        results.append(result)
    return results


def print_results(engine: str, results: Sequence[Result], scrapes: int, families: bool) -> None:
    """The table of one engine, then the ratios dbkeeper / exporter (and, if asked, each side's families)."""
    headers = ["side", "median s", "max s", "queries/scrape", "series", "CPU s/scrape", "peak RSS MiB"]
    rows = [
        [r.label, f"{r.median:.3f}", f"{max(r.seconds):.3f}", f"{r.queries_per_scrape:.1f}", str(r.series),
         f"{r.cpu_per_scrape:.3f}", f"{r.rss_mib:.1f}"]
        for r in results
    ]  # fmt: skip
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    print(f"\n{engine}: {scrapes} scrapes each")
    for row in (headers, *rows):
        print(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    *ours, theirs = results
    for side in ours:
        print(
            f"ratio {side.label} / exporter: scrape time {side.median / theirs.median:.2f}, "
            f"queries {side.queries_per_scrape / max(theirs.queries_per_scrape, 1e-9):.2f}, "
            f"series {side.series / theirs.series:.2f}, "
            f"CPU {side.cpu_per_scrape / max(theirs.cpu_per_scrape, 1e-9):.2f}, "
            f"peak RSS {side.rss_mib / theirs.rss_mib:.2f}"
        )
        timing = ", ".join(f"{name} {seconds * 1000:.1f}" for name, seconds in side.collectors.items())
        print(f"  its own timing of its last scrape, ms: {timing}; failed collectors: {side.failed or 'none'}")
    for result in results:
        listed = f": {' '.join(result.families)}" if families else " (--families lists them)"
        print(f"{len(result.families)} metric families from {result.label}{listed}")


def main(argv: Sequence[str] | None = None) -> int:
    """Start both servers, fill them, measure every side, print, stop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000, help="tables in each database (default 1000)")
    parser.add_argument("--scrapes", type=int, default=20, help="timed scrapes per side (default 20; median)")
    parser.add_argument("--workdir", type=Path, default=REPO / ".bench", help="where configurations and logs go")
    parser.add_argument("--families", action="store_true", help="list every metric family each side exposes")
    args = parser.parse_args(argv)
    hint = "run bash scripts/setup.sh and bash scripts/ensure-packages.sh"
    if problem := require([str(POSTGRES_EXPORTER), str(MYSQLD_EXPORTER), "psql"], hint):
        parser.error(problem)
    work = args.workdir / "metrics"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print_start(work)
    try:
        pg = start_server(settings={"shared_preload_libraries": "'pg_stat_statements'"})
        try:
            print(f"PostgreSQL: {args.tables} tables …", flush=True)
            pg_results = postgresql(pg, args.tables, args.scrapes, work)
        finally:
            pg.stop()
        with MariaDBServer.started() as maria:
            print(f"MariaDB: {args.tables} tables …", flush=True)
            maria_results = mariadb(maria, args.tables, args.scrapes, work)
        print_results("PostgreSQL 15", pg_results, args.scrapes, args.families)
        print_results("MariaDB", maria_results, args.scrapes, args.families)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_end()
    return 0


if __name__ == "__main__":
    sys.exit(main())
