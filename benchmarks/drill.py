"""Time ``dbkeeper drill latest`` against the same steps by hand in one shell pipeline, per engine.

    .venv/bin/python benchmarks/drill.py [--size 1GB] [--runs 3] [--engines postgresql,mysql]
                                         [--drill-options '--jobs 1']

Per engine it loads about --size of the sample shop data into a throwaway server, as the
backup benchmarks do (PostgreSQL: tests/postgresql/pg_server.py and postgresql_sample.py,
as the superuser;
MariaDB: tests/mysql/mariadb_server.py and mysql_backup.py's loader), takes one
``dbkeeper backup`` into a local directory, stops that server, and then times in turn:

    dbkeeper   dbkeeper -q drill latest --dir BACKUPS --json [--drill-options]  (MariaDB's
               restore, and so its drill, loads two tables at once unless given --jobs 1)
    by hand    one bash script (written to the work directory, printed):
               PostgreSQL: initdb -U postgres --auth=trust --no-sync; postgres on a socket in a
                 temp dir, no TCP (the drill's settings: fsync, full_page_writes and
                 synchronous_commit off), pg_isready every 50 ms; createdb -T template0;
                 zstd -dc ARTIFACT | pg_restore --single-transaction --exit-on-error (what
                 dbkeeper restore runs on a custom-format archive); SELECT count(*) of every
                 table; SIGQUIT to the postmaster (immediate stop, as the drill does); rm -rf
               MariaDB: mariadb-install-db; mariadbd --skip-networking --socket (the drill's
                 options); mariadb-admin ping every 50 ms; CREATE DATABASE with the backup's
                 character set and collation; zstd -dc ARTIFACTS | mariadb; SELECT COUNT(*) of
                 every table; SIGKILL to mariadbd (as the drill does); rm -rf
               with ``date +%s.%N`` marks between the steps.

Both run as root's drill does (servers as postgres / mysql when run as root). Whole
commands are timed as benchmarks/harness.py does (once untimed, then in turn, --runs
times; the median is reported). Each run's process tree is walked every 10 ms
(:class:`harness.Span`), which gives the phases of dbkeeper's drill from outside: when
``initdb``/``mariadb-install-db`` ran and when the restore's ``pg_restore``/``mariadb``
clients ran. The untimed first run fills the drill cache (``~/.cache/dbkeeper/drill-templates``,
docs/drills.md), so the timed drills start on a copy of its data directory, as every drill
after a machine's first does: no ``initdb``/``mariadb-install-db`` is seen, that phase reads
0, and the copy and the server's start count in "start-up". The drill's reported
``restore_seconds`` is compared with that window (the client processes' lifetime, first
start to last end); on PostgreSQL also with the restore's client sessions on the
throwaway server (its ``CREATE DATABASE``, pg_restore's and the row counts' sessions: the
postmaster's children, one process each), and with the by-hand restore step and row
counts. dbkeeper also runs what the by-hand script does not: amcheck's
``bt_index_check`` on every B-tree index (PostgreSQL), ``CHECK TABLE`` on every table
(MariaDB), and records the drill beside the backup. A measurement, not a test: it never
fails on slow numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness import REPO, Sample, Side, Span, compare, dbkeeper, print_columns, print_end, print_start, require

sys.path[:0] = [str(REPO / d) for d in ("scripts", "tests", "tests/postgresql", "tests/mysql")]

from mariadb_server import MariaDBServer  # noqa: E402
from mysql_backup import DATABASE, SERVER_OPTIONS, generate  # noqa: E402
from mysql_backup import load as load_mariadb  # noqa: E402
from pg_server import PG_BIN, start_server  # noqa: E402
from postgresql_sample import load as load_postgresql  # noqa: E402
from sample_db import DEFAULT_SEED, parse_size  # noqa: E402

from dbkeeper_mysql.throwaway import THROWAWAY_OPTIONS  # noqa: E402
from dbkeeper_postgresql.cluster import SETTINGS  # noqa: E402

PROBES = ("--version", "-V", "--list")
"""Arguments of a client run that only asks something (a version, an archive's table of contents)."""
MARKS = ("start", "ready", "restored", "counted", "end")
"""The by-hand script's ``date`` marks, in order."""
BY_HAND_PHASES = ("server up", "restore", "row counts", "stop + rm")
SESSION = re.compile(r"postgres: \S+ \S+ \[local\]")
"""The process title of a client session on the throwaway PostgreSQL server."""


@dataclasses.dataclass
class Engine:
    """What differs between the engines: the by-hand script, and the programs that show the drill's phases."""

    name: str
    backups: Path
    script: str
    setup_program: str
    restore_program: str


def mark(name: str) -> str:
    """A line of the by-hand script that prints *name* and the time."""
    return f'echo "{name} $(date +%s.%N)"'


def run_as(user: str) -> str:
    """The prefix that runs a server program as *user* when we are root (they refuse root or drop it)."""
    return f"setpriv --reuid={user} --regid={user} --init-groups " if os.geteuid() == 0 else ""


def owned_home(user: str, name: str) -> str:
    """Script lines: a private temp dir ``$D`` and in it ``$H``, the server user's own (as the drill makes them)."""
    chown = f'chmod 711 "$D"; chown {user}: "$H"' if os.geteuid() == 0 else ":"
    return f'D=$(mktemp -d /tmp/drill-by-hand-XXXXXX); H="$D/{name}"; mkdir -m 700 "$H"; {chown}'


def postgresql_script(artifact: Path, database: str) -> str:
    """The PostgreSQL drill by hand (see the module docstring)."""
    bindir, sock = PG_BIN, '-h "$H" -p 5432 -U postgres'
    settings = " ".join(f"-c {k}={shlex.quote(v)}" for k, v in SETTINGS.items())
    count = ("SELECT format('SELECT %L, count(*) FROM ONLY %I.%I;', relname, schemaname, relname) "
             "FROM pg_stat_user_tables")  # fmt: skip
    return "\n".join([
        "set -euo pipefail",
        mark("start"),
        owned_home("postgres", "pg"),
        f'{run_as("postgres")}{bindir}/initdb -D "$H/data" -U postgres --auth=trust --no-sync --encoding=UTF8 '
        "--no-locale >/dev/null",
        f'{run_as("postgres")}{bindir}/postgres -D "$H/data" -k "$H" -p 5432 {settings} 2>"$H/server.log" &',
        "pid=$!",
        f"until pg_isready -q {sock}; do sleep 0.05; done",
        mark("ready"),
        f"createdb {sock} -T template0 -E UTF8 {shlex.quote(database)}",
        f"zstd -q -dc {shlex.quote(str(artifact))} | pg_restore --single-transaction --exit-on-error --no-password "
        f"{sock} -d {shlex.quote(database)}",
        mark("restored"),
        f"psql -AtXq {sock} -d {shlex.quote(database)} -c {shlex.quote(count)} "
        f"| psql -AtXq {sock} -d {shlex.quote(database)} >/dev/null",
        mark("counted"),
        'kill -QUIT "$pid"; wait "$pid" || true',
        'rm -rf "$D"',
        mark("end"),
    ])  # fmt: skip


def mariadb_script(artifacts: Sequence[Path], database: str, character_set: str, collation: str) -> str:
    """The MariaDB drill by hand (see the module docstring)."""
    user = ["--user=mysql"] if os.geteuid() == 0 else []
    options = " ".join([*user, *THROWAWAY_OPTIONS])
    client = 'mariadb --no-defaults --socket="$H/mysqld.sock" --user=root'
    name = f"`{database}`"
    count = (
        "SELECT CONCAT('SELECT ', QUOTE(TABLE_NAME), ', COUNT(*) FROM `', TABLE_NAME, '`;') FROM "
        f"information_schema.TABLES WHERE TABLE_SCHEMA = '{database}' AND TABLE_TYPE = 'BASE TABLE'"
    )
    create = f"CREATE DATABASE {name} CHARACTER SET {character_set} COLLATE {collation}"
    return "\n".join([
        "set -euo pipefail",
        mark("start"),
        owned_home("mysql", "server"),
        f'mariadb-install-db --no-defaults --datadir="$H/data" --auth-root-authentication-method=normal '
        f'--skip-test-db --tmpdir="$H" {options} >"$H/install.log" 2>&1',
        f'mariadbd --no-defaults --datadir="$H/data" --socket="$H/mysqld.sock" --skip-networking '
        f'--pid-file="$H/mysqld.pid" --log-error="$H/error.log" --tmpdir="$H" {options} 2>"$H/stderr.log" &',
        "pid=$!",
        'until mariadb-admin --no-defaults --socket="$H/mysqld.sock" --user=root ping >/dev/null 2>&1; '
        "do sleep 0.05; done",
        mark("ready"),
        f"{client} -e {shlex.quote(create)}",
        f"zstd -q -dc {shlex.join(str(a) for a in artifacts)} | {client} {shlex.quote(database)}",
        mark("restored"),
        f"{client} -N -e {shlex.quote(count)} | {client} -N {shlex.quote(database)} >/dev/null",
        mark("counted"),
        'kill -KILL "$pid"; { wait "$pid" || true; } 2>/dev/null',
        'rm -rf "$D"',
        mark("end"),
    ])  # fmt: skip


def backup(url: str, backups: Path) -> dict[str, object]:
    """One ``dbkeeper backup`` of *url* into *backups*; its manifest."""
    started = time.perf_counter()
    backup_id = subprocess.run(dbkeeper("backup", url, "--dir", str(backups)), check=True, capture_output=True,
                               text=True).stdout.strip().splitlines()[-1]  # fmt: skip
    print(f"backed up in {time.perf_counter() - started:.1f}s: {backup_id}", flush=True)
    manifest: dict[str, object] = json.loads((backups / backup_id / "manifest.json").read_text())
    return manifest


def artifact_paths(backups: Path, manifest: dict[str, object]) -> list[Path]:
    """The backup's artifacts, in the order they restore (their names sort so)."""
    return sorted((backups / str(manifest["id"])).glob("*.zst"))


def postgresql_engine(work: Path, size: int, seed: int) -> Engine:
    """Load the sample as the superuser, back it up, stop the server; the PostgreSQL side."""
    server = start_server()
    try:
        server.psql("CREATE DATABASE shop")
        url = server.socket_url("shop")
        print(f"loading about {size / 2**30:.2f} GiB of shop data into PostgreSQL ...", flush=True)
        started = time.perf_counter()
        counts = load_postgresql(url, size, seed)
        print(f"loaded in {time.perf_counter() - started:.0f}s: {sum(counts.values())} rows", flush=True)
        manifest = backup(url, work / "backups")
    finally:
        server.stop()
    artifacts = artifact_paths(work / "backups", manifest)
    if len(artifacts) != 1:
        raise SystemExit(f"expected one custom-format archive, found {[a.name for a in artifacts]}")
    return Engine("PostgreSQL", work / "backups", postgresql_script(artifacts[0], "shop"), "initdb", "pg_restore")


def mariadb_engine(work: Path, size: int, seed: int) -> Engine:
    """Load the sample, back it up, stop the server; the MariaDB side."""
    with MariaDBServer.started(SERVER_OPTIONS) as server:
        staging = server.base / "load"
        staging.mkdir(mode=0o755)
        print(f"generating about {size / 2**30:.2f} GiB of shop rows for MariaDB ...", flush=True)
        started = time.perf_counter()
        rows = generate(staging, size, seed)
        for path in staging.iterdir():
            path.chmod(0o644)
        load_mariadb(server, staging)
        shutil.rmtree(staging)
        print(f"generated and loaded in {time.perf_counter() - started:.0f}s: {sum(rows.values())} rows", flush=True)
        manifest = backup(server.url(DATABASE), work / "backups")
    details = manifest["details"]
    assert isinstance(details, dict)
    script = mariadb_script(
        artifact_paths(work / "backups", manifest), DATABASE, str(details["character_set"]), str(details["collation"])
    )
    return Engine("MariaDB", work / "backups", script, "mariadb-install-db", "mariadb")


def restore_spans(sample: Sample, program: str) -> list[Span]:
    """The runs of *program* that did work (not a probe) in *sample*'s tree."""
    return [s for s in sample.processes if s.name == program and not any(a in PROBES for a in s.argv[1:])]


def window(spans: Sequence[Span]) -> tuple[float, float]:
    """From the first start to the last end of *spans*."""
    if not spans:
        raise SystemExit("the restore's client processes were not seen: see the progress lines above")
    return min(s.started for s in spans), max(s.ended for s in spans)


def setup_span(sample: Sample, program: str) -> Span | None:
    """The first process running *program* (a script's interpreter counts: ``sh mariadb-install-db``)."""
    return next((s for s in sample.processes if any(Path(a).name == program for a in s.argv[:2])), None)


def marks(sample: Sample) -> dict[str, float]:
    """The by-hand script's marks, in seconds after its start."""
    found = dict(line.split() for line in sample.stdout.splitlines() if line.split()[:1] and line.split()[0] in MARKS)
    return {name: float(found[name]) - float(found["start"]) for name in MARKS}


def by_hand_phases(sample: Sample) -> list[float]:
    """Seconds of each of :data:`BY_HAND_PHASES` in one by-hand run."""
    at = marks(sample)
    return [at[b] - at[a] for a, b in itertools.pairwise(MARKS)]


def drill_phases(sample: Sample, engine: Engine) -> list[float]:
    """Seconds of each of dbkeeper's phases seen from outside in one run (see :func:`report`)."""
    setup = setup_span(sample, engine.setup_program)
    first, last = window(restore_spans(sample, engine.restore_program))
    setup_start, setup_end = (setup.started, setup.ended) if setup else (first, first)
    return [setup_start, setup_end - setup_start, first - setup_end, last - first, sample.seconds - last]


def session_window(sample: Sample) -> tuple[float, float] | None:
    """From the first client session on the throwaway PostgreSQL server to the end of the last but one.

    The drill's restore opens the first sessions (the target's check, ``CREATE DATABASE``,
    pg_restore's, the row counts); amcheck's is the last one. Sessions are the
    postmaster's children titled ``postgres: USER DATABASE [local] …``. None for MariaDB
    (a thread per session).
    """
    sessions = [s for s in sample.processes if s.argv and SESSION.match(s.argv[0])]
    if len(sessions) < 2:
        return None
    restore = sessions[:-1]
    return min(s.started for s in restore), max(s.ended for s in restore)


def run_row(run: int, engine: Engine, mine: Sample, theirs: Sample) -> tuple[list[str], float]:
    """One run's row of the report, and restore_seconds / the restore clients' lifetime."""
    seconds = float(json.loads(mine.stdout)["restore_seconds"])
    first, last = window(restore_spans(mine, engine.restore_program))
    sessions = session_window(mine)
    at = marks(theirs)
    row = [str(run), f"{mine.seconds:.2f}", f"{theirs.seconds:.2f}", f"{mine.seconds / theirs.seconds:.3f}",
           f"{seconds:.2f}", f"{last - first:.2f}", f"{seconds / (last - first):.3f}",
           f"{sessions[1] - sessions[0]:.2f}" if sessions else "-",
           f"{seconds / (sessions[1] - sessions[0]):.3f}" if sessions else "-",
           f"{at['counted'] - at['ready']:.2f}"]  # fmt: skip
    return row, seconds / (last - first)


def report(engine: Engine, ours: Side, by_hand: Side) -> None:
    """Per run and median: the whole drill on both sides, the phases, restore_seconds against its windows."""
    rows, ratios = zip(*(run_row(run, engine, mine, theirs) for run, (mine, theirs) in
                         enumerate(zip(ours.samples, by_hand.samples, strict=True), 1)), strict=True)  # fmt: skip
    print(f"\n{engine.name}: whole drill, and the restore step (seconds)")
    client = f"{engine.restore_program} seen"
    headers = ["run", "dbkeeper", "by hand", "drill ratio", "restore_seconds", client, "ratio", "sessions seen",
               "ratio", "by-hand restore+counts"]  # fmt: skip
    print_columns(headers, rows)
    drill_ratio = ours.median / by_hand.median
    print(f"median: dbkeeper {ours.median:.2f}s, by hand {by_hand.median:.2f}s, ratio {drill_ratio:.3f} "
          f"(goal: <= 1); restore_seconds / {client}: median {statistics.median(ratios):.3f}, "
          f"{min(ratios):.3f}-{max(ratios):.3f} (goal: within 0.95-1.05)")  # fmt: skip
    names = ["start-up", engine.setup_program, "server start", client, "after the restore"]
    ours_phases = [statistics.median(p) for p in zip(*(drill_phases(s, engine) for s in ours.samples), strict=True)]
    hand_phases = [statistics.median(p) for p in zip(*map(by_hand_phases, by_hand.samples), strict=True)]
    print("dbkeeper phases (median): " + ", ".join(f"{n} {s:.2f}" for n, s in zip(names, ours_phases, strict=True)))
    print("by-hand phases (median): " + ", ".join(f"{n} {s:.2f}" for n, s in zip(BY_HAND_PHASES, hand_phases,
                                                                                   strict=True)))  # fmt: skip


def save(path: Path, ours: Side, by_hand: Side) -> None:
    """Every run's samples, with their process trees, as JSON (for a second look at the phases)."""
    data = {side.label: [dataclasses.asdict(sample) for sample in side.samples] for side in (ours, by_hand)}
    path.write_text(json.dumps(data))
    print(f"samples saved in {path}")


def measure_engine(engine: Engine, work: Path, runs: int, drill_options: Sequence[str] = ()) -> None:
    """Time the drill both ways, *runs* times in turn, and report."""
    script = work / f"drill-by-hand-{engine.name.lower()}.sh"
    script.write_text(engine.script + "\n")
    print(f"\n{engine.name} by hand ({script}):\n{engine.script}\n", flush=True)
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("DATABASE_URL", None)
    label = " ".join(["dbkeeper drill latest", *map(shlex.quote, drill_options)])
    ours = Side(label, dbkeeper("drill", "latest", "--dir", str(engine.backups), "--json", *drill_options),
                watch_tree=True)  # fmt: skip
    by_hand = Side("by hand", ["bash", str(script)], watch_tree=True)
    compare([ours, by_hand], runs, work, env)
    save(work.parent / f"samples-{engine.name.lower()}.json", ours, by_hand)
    report(engine, ours, by_hand)


ENGINES: dict[str, tuple[Callable[[Path, int, int], Engine], list[str]]] = {
    "postgresql": (postgresql_engine, ["pg_restore", "createdb", "psql", "pg_isready", str(PG_BIN / "initdb")]),
    "mysql": (mariadb_engine, ["mariadb", "mariadb-admin", "mariadb-install-db", "mariadbd"]),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Per engine: make the sample and its backup, time the drill both ways, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1GB"), help="database size (default 1GB)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side (default 3; the median is reported)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"sample data seed (default {DEFAULT_SEED})")
    parser.add_argument("--engines", default="postgresql,mysql", help="comma-separated: postgresql, mysql")
    parser.add_argument("--workdir", type=Path, default=REPO / ".bench" / "drill", help="where backups go")
    parser.add_argument("--drill-options", default="", help="more arguments for the drill, e.g. '--jobs 1'")
    args = parser.parse_args(argv)
    chosen = [e.strip() for e in args.engines.split(",") if e.strip()]
    if unknown := sorted(set(chosen) - set(ENGINES)):
        parser.error(f"unknown engine {unknown[0]}: choose from {', '.join(ENGINES)}")
    tools = ["zstd", "setpriv", *(tool for engine in chosen for tool in ENGINES[engine][1])]
    if problem := require(tools, "run bash scripts/setup.sh and bash scripts/ensure-packages.sh"):
        parser.error(problem)
    print_start(args.workdir)
    for name in chosen:
        work = args.workdir / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            engine = ENGINES[name][0](work, args.size, args.seed)
            measure_engine(engine, work, args.runs, shlex.split(args.drill_options))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print_end()
    return 0


if __name__ == "__main__":
    sys.exit(main())
