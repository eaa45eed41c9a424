"""Time dbkeeper schema inspect against the native schema dumps, and schema diff, on 1,000 tables.

    .venv/bin/python benchmarks/schema.py [--tables 1000] [--runs 5] [--workdir .bench]

It starts a throwaway PostgreSQL 15 server (tests/postgresql/pg_server.py) and a throwaway
MariaDB server (tests/mysql/mariadb_server.py) and creates in one database of each the
same --tables tables, from a definition ``schema generate`` turns into DDL: each table has
5 columns (an identity primary key, a foreign key to the table before it, a varchar, a
decimal and a timestamp), 2 indexes and 1 foreign key. Then, over TCP with a password on
both sides, in turn (harness.py: one untimed run, then --runs runs each, ``sync`` before
each):

    PostgreSQL  dbkeeper schema inspect URL -o out.yaml  vs  pg_dump --schema-only -f out.sql
    MariaDB     dbkeeper schema inspect URL -o out.yaml  vs  mariadb-dump --no-data -r out.sql

and a diff of two definitions of --tables tables: the one inspected from PostgreSQL and a
copy with about 50 changes (16 added columns, 16 widened types, 16 new indexes, a table
renamed through a ``renamed_from`` hint, a dropped foreign key):

    diff_schemas(old, new)         in a child process (this script with --diff-api): the
                                   definitions loaded, then the call timed on its own
    dbkeeper schema diff a.yaml b.yaml   the command, when this checkout has it: the changes only,
                                   and with --dialect postgresql (the changes and their SQL)

For each: the best and the median wall time, CPU, the peak RSS of the command's own process
("RSS own") and of its tree, and the ratio to the native dump (goal: inspect ≤ 1.5x; a diff
under 2 s and 150 MB). A measurement, not a test: it exits 0 whatever the numbers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from harness import DBKEEPER, REPO, Side, compare, dbkeeper, print_end, print_start, print_table, remove, require

if TYPE_CHECKING:
    from dbkeeper.schema import SchemaDefinition

DATABASE = "bench"
INSPECTED = "inspected.yaml"
CHANGED = "changed.yaml"
GOAL_RATIO = 1.5
GOAL_DIFF_SECONDS = 2.0
GOAL_DIFF_MIB = 150 * 1000**2 / 1024**2  # 150 MB
PYTHON = DBKEEPER.parent / "python"


def definition(tables: int) -> SchemaDefinition:
    """*tables* tables ``t0001``…: 5 columns, 2 indexes, 1 foreign key each (the first one references itself)."""
    from dbkeeper.schema import Column, ColumnType, ForeignKey, Index, PrimaryKey, SchemaDefinition, Table

    width = len(str(tables))
    names = [f"t{n:0{width}}" for n in range(1, tables + 1)]
    columns = {
        "id": Column("id", ColumnType("bigint"), nullable=False, identity=True),
        "parent_id": Column("parent_id", ColumnType("bigint"), nullable=False),
        "name": Column("name", ColumnType.parse("varchar(100)"), nullable=False),
        "amount": Column("amount", ColumnType.parse("decimal(12, 2)"), default=0),
        "created_at": Column("created_at", ColumnType("timestamp"), nullable=False),
    }
    return SchemaDefinition(
        {
            name: Table(
                name,
                columns,
                PrimaryKey(("id",)),
                foreign_keys=(ForeignKey(("parent_id",), names[max(n - 1, 0)], ("id",)),),
                indexes=(Index(("parent_id",)), Index(("name", "created_at"))),
            )
            for n, name in enumerate(names)
        }
    )


def changed(old: SchemaDefinition) -> SchemaDefinition:
    """*old* with about 50 changes: 16 added columns, 16 widened types, 16 new indexes, a rename, a dropped FK."""
    from dbkeeper.schema import Column, ColumnType, Index

    tables = dict(old.tables)
    names = list(tables)
    for name in names[0:16]:
        note = Column("note", ColumnType("text"))
        tables[name] = replace(tables[name], columns={**tables[name].columns, "note": note})
    for name in names[16:32]:
        widened = replace(tables[name].columns["name"], type=ColumnType.parse("varchar(200)"))
        tables[name] = replace(tables[name], columns={**tables[name].columns, "name": widened})
    for name in names[32:48]:
        tables[name] = replace(tables[name], indexes=(*tables[name].indexes, Index(("amount",))))
    dropped = names[len(names) * 9 // 10]
    tables[dropped] = replace(tables[dropped], foreign_keys=())
    old_name = names[len(names) // 2]
    new_name = f"{old_name}_renamed"
    for name, table in tables.items():
        keys = tuple(
            replace(key, referenced_table=new_name) if key.referenced_table == old_name else key
            for key in table.foreign_keys
        )
        tables[name] = replace(table, foreign_keys=keys)
    tables = {
        (new_name if name == old_name else name): (
            replace(table, name=new_name, renamed_from=old_name) if name == old_name else table
        )
        for name, table in tables.items()
    }
    return replace(old, tables=tables)


def inspect_sides(url: str, native: list[str], work: Path) -> list[Side]:
    """``dbkeeper schema inspect URL -o inspected.yaml`` and the *native* schema dump (writing native.sql)."""
    return [
        Side("dbkeeper schema inspect", dbkeeper("schema", "inspect", url, "-o", INSPECTED), remove(work / INSPECTED)),
        Side(native[0].rsplit("/", 1)[-1], native, remove(work / "native.sql")),
    ]


@contextmanager
def postgresql(tables: int, work: Path) -> Iterator[tuple[list[Side], dict[str, str]]]:
    """A throwaway PostgreSQL server with the database of *tables* tables; the two sides and their environment."""
    sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "postgresql")]
    from pg_server import APP_PASSWORD, APP_USER, PG_BIN, start_server

    from dbkeeper.schema import generate_schema

    server = start_server()
    try:
        started = time.perf_counter()
        server.app_database(DATABASE, generate_schema(definition(tables), "postgresql").sql)
        print(f"PostgreSQL: {tables} tables created in {time.perf_counter() - started:.1f}s", flush=True)
        native = [str(PG_BIN / "pg_dump"), "--schema-only", "-h", "127.0.0.1", "-p", str(server.port)]
        native += ["-U", APP_USER, "-d", DATABASE, "-f", "native.sql"]
        yield inspect_sides(server.url(DATABASE), native, work), {**environment(), "PGPASSWORD": APP_PASSWORD}
    finally:
        server.stop()


@contextmanager
def mariadb(tables: int, work: Path) -> Iterator[tuple[list[Side], dict[str, str]]]:
    """A throwaway MariaDB server with the database of *tables* tables; the two sides and their environment."""
    sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "mysql")]
    from mariadb_server import TEST_USER, MariaDBServer

    from dbkeeper.schema import generate_schema

    with MariaDBServer.started() as server:
        started = time.perf_counter()
        server.recreate(DATABASE)
        server.load_sql(DATABASE, generate_schema(definition(tables), "mysql").sql.encode())
        print(f"MariaDB: {tables} tables created in {time.perf_counter() - started:.1f}s", flush=True)
        dump = shutil.which("mariadb-dump") or "mariadb-dump"
        native = [dump, "--no-defaults", "-h", "127.0.0.1", "-P", str(server.port), "-u", TEST_USER]
        native += ["--no-data", "-r", "native.sql", DATABASE]
        yield inspect_sides(server.url(DATABASE), native, work), {**environment(), "MYSQL_PWD": server.password}


def environment() -> dict[str, str]:
    """This process's environment without ``DATABASE_URL``."""
    return {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}


def has_diff_command() -> bool:
    """Whether the dbkeeper measured has ``schema diff``."""
    probe = subprocess.run([str(DBKEEPER), "schema", "diff", "--help"], capture_output=True, check=False)
    return probe.returncode == 0


def diff_sides(work: Path) -> list[Side]:
    """diff_schemas in a child process, and ``dbkeeper schema diff`` when there is one."""
    sides = [Side("diff_schemas (Python API)", [str(PYTHON), __file__, "--diff-api", INSPECTED, CHANGED])]
    if has_diff_command():
        sides.append(Side("dbkeeper schema diff", dbkeeper("schema", "diff", INSPECTED, CHANGED)))
        sql = dbkeeper("schema", "diff", INSPECTED, CHANGED, "--dialect", "postgresql")
        sides.append(Side("dbkeeper schema diff --dialect postgresql", sql))
    return sides


def diff_api(old_path: str, new_path: str) -> int:
    """The child process of the diff side: load both files, then time ``diff_schemas`` alone; print the figures."""
    from dbkeeper.schema import diff_schemas, load_definition

    started = time.perf_counter()
    old, new = load_definition(old_path), load_definition(new_path)
    loaded = time.perf_counter()
    found = diff_schemas(old, new)
    done = time.perf_counter()
    print(f"{loaded - started:.4f} {done - loaded:.4f} {len(found.changes)}")
    return 0


def print_medians(sides: Sequence[Side], reference: Side | None) -> None:
    """Each side's median wall time, and its ratio to *reference*'s median."""
    for side in sides:
        median = statistics.median(s.seconds for s in side.samples)
        ratio = ""
        if reference is not None and side is not reference:
            ratio = f", {median / statistics.median(s.seconds for s in reference.samples):.3f}x {reference.label}'s"
        print(f"  median {side.label}: {median:.2f}s{ratio}")


def report_inspect(engine: str, sides: list[Side]) -> str:
    """Print one engine's table; the verdict against the goal, one line."""
    ours, native = sides
    print(f"\n{engine}: schema inspect against {native.label}, {len(ours.samples)} runs each")
    print_table(sides, {ours.label: native.label})
    print_medians(sides, native)
    ratio = ours.best / native.best
    met = "met" if ratio <= GOAL_RATIO else "missed"
    return f"{engine} inspect: {ratio:.2f}x {native.label} (best runs; goal ≤ {GOAL_RATIO}x): {met}"


def report_diff(sides: list[Side]) -> list[str]:
    """Print the diff table and diff_schemas' own timing; the verdicts against the goals."""
    api = sides[0]
    figures = [tuple(map(float, s.stdout.split())) for s in api.samples]
    loads, diffs, changes = [f[0] for f in figures], [f[1] for f in figures], int(figures[0][2])
    print(f"\ndiff of {INSPECTED} and {CHANGED} ({changes} changes), {len(api.samples)} runs each")
    print_table(sides, {})
    print_medians(sides, None)
    print(
        f"  inside the child: load_definition of both files best {min(loads):.3f}s, "
        f"diff_schemas best {min(diffs):.3f}s, median {statistics.median(diffs):.3f}s"
    )
    if len(sides) == 1:
        print("  dbkeeper schema diff: not in this checkout; the Python API alone was timed")
    verdicts = []
    for side in sides:
        met = side.best < GOAL_DIFF_SECONDS and side.own_rss_mib < GOAL_DIFF_MIB
        verdicts.append(
            f"{side.label}: {side.best:.2f}s, {side.own_rss_mib:.0f} MiB own RSS "
            f"(goal < {GOAL_DIFF_SECONDS:.0f} s and < 150 MB): {'met' if met else 'missed'}"
        )
    return verdicts


def main(argv: Sequence[str] | None = None) -> int:
    """Build both databases in turn, measure inspect against the native dump on each, then the diff; print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000, help="tables in each database (default 1000)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (default 5)")
    parser.add_argument("--workdir", type=Path, default=REPO / ".bench", help="where the definitions and dumps go")
    parser.add_argument("--diff-api", nargs=2, metavar=("OLD", "NEW"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.diff_api:
        return diff_api(*args.diff_api)
    hint = "run bash scripts/setup.sh and bash scripts/ensure-packages.sh"
    if problem := require(["pg_dump", "mariadb-dump", "psql"], hint):
        parser.error(problem)
    work = args.workdir / "schema"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print_start(work)
    verdicts = []
    for engine, servers in (("PostgreSQL 15", postgresql), ("MariaDB", mariadb)):
        with servers(args.tables, work) as (sides, env):
            compare(sides, args.runs, work, env)
            (work / f"{engine.split()[0].lower()}.yaml").write_bytes((work / INSPECTED).read_bytes())
        verdicts.append(report_inspect(engine, sides))
    from dbkeeper.schema import dump_definition, load_definition

    (work / INSPECTED).write_bytes((work / "postgresql.yaml").read_bytes())
    (work / CHANGED).write_text(dump_definition(changed(load_definition(work / INSPECTED))))
    sides = diff_sides(work)
    compare(sides, args.runs, work, environment())
    verdicts += report_diff(sides)
    print()
    print("\n".join(verdicts))
    print_end()
    return 0


if __name__ == "__main__":
    sys.exit(main())
