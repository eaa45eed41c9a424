"""docs/monitoring.md's table of metrics against real ``dbkeeper metrics`` output of every engine.

Every family the SQLite, PostgreSQL and MariaDB drivers (and dbkeeper itself) expose is in
the table with its type and labels; every family of the table appears in at least one
engine's real output, except those the table says appear only with replication or only
with pg_stat_statements. The databases are made to show what they can: a SQLite file with
backups, a verify, a drill and a migrations directory, one in WAL mode, PostgreSQL tables that have
been vacuumed and analysed.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from throwaway_servers import mariadb_server, postgresql_server

from helpers import ROOT, dbkeeper, make_db, write_migration

DOC = ROOT / "docs" / "monitoring.md"
ROW = re.compile(
    r"^\|\s*`(?P<name>dbkeeper_[a-z0-9_]+)`\s*\|\s*(?P<type>\w+)\s*\|\s*(?P<unit>\w*)\s*\|(?P<labels>[^|]*)\|"
)
CONDITIONAL = ("only with replication", "only with pg_stat_statements")


@dataclass(frozen=True)
class Documented:
    """One row of the table."""

    type: str
    unit: str
    labels: frozenset[str]
    conditional: bool


@dataclass(frozen=True)
class Exposed:
    """One family of real output: its type, unit and label names (without ``connection``)."""

    type: str
    unit: str
    labels: frozenset[str]


def documented() -> dict[str, Documented]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if match := ROW.match(line):
            names = re.sub(r"\([^)]*\)", "", match["labels"])  # without the values in parentheses
            labels = frozenset(re.findall(r"`([a-z_]+)`", names))
            conditional = any(marker in line.lower() for marker in CONDITIONAL)
            rows[match["name"]] = Documented(match["type"], match["unit"], labels, conditional)
    assert len(rows) > 40, "the table of metrics was not found"
    return rows


def exposed(*args: str, cwd: Path | None = None) -> dict[str, Exposed]:
    """The families of one ``dbkeeper metrics --format json`` run (every connection it scrapes)."""
    found: dict[str, Exposed] = {}
    scrapes = dbkeeper("metrics", *args, "--format", "json", cwd=cwd).json()
    assert isinstance(scrapes, list)
    for scrape in scrapes:
        assert scrape["up"], scrape["reason"]
        assert all(c["success"] for c in scrape["collectors"]), scrape["collectors"]
        for sample in scrape["samples"]:
            labels = frozenset(sample["labels"]) - {"connection"}
            seen = found.get(sample["metric"])
            found[sample["metric"]] = Exposed(
                sample["type"], sample["unit"], labels | (seen.labels if seen else frozenset())
            )
    return found


@pytest.fixture(scope="module")
def sqlite_families(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Exposed]:
    project = tmp_path_factory.mktemp("sqlite-metrics")
    make_db(project / "app.db", 100)
    make_db(project / "wal.db", 10)
    with sqlite3.connect(project / "wal.db") as conn:
        conn.execute("PRAGMA journal_mode=wal")
    write_migration(project / "migrations", "20240101000000_notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY);")
    (project / "dbkeeper.toml").write_text(
        '[connections.app]\nurl = "sqlite:///app.db"\nmigrations = "migrations"\n'
        '[connections.wal]\nurl = "sqlite:///wal.db"\n',
        encoding="utf-8",
    )
    dbkeeper("backup", "app", cwd=project)
    dbkeeper("verify", "latest", cwd=project)
    dbkeeper("drill", "latest", cwd=project)
    return exposed(cwd=project)


@pytest.fixture(scope="module")
def postgresql_families() -> Iterator[dict[str, Exposed]]:
    with postgresql_server() as server:
        server.app_database(
            "app",
            "CREATE TABLE t (id int PRIMARY KEY, x text); INSERT INTO t SELECT g, 'x' FROM generate_series(1, 100) g;"
            "VACUUM ANALYZE t;",
        )
        yield exposed(server.url("app"))


@pytest.fixture(scope="module")
def mysql_families() -> Iterator[dict[str, Exposed]]:
    with mariadb_server() as server:
        server.recreate("app")
        server.execute("CREATE TABLE t (id INT PRIMARY KEY, x TEXT)", "INSERT INTO t VALUES (1, 'x')", database="app")
        yield exposed(server.url("app"))


@pytest.fixture(scope="module")
def every_engine(
    sqlite_families: dict[str, Exposed],
    postgresql_families: dict[str, Exposed],
    mysql_families: dict[str, Exposed],
) -> dict[str, dict[str, Exposed]]:
    return {"sqlite": sqlite_families, "postgresql": postgresql_families, "mysql": mysql_families}


def test_every_exposed_family_is_documented_as_it_is(every_engine: dict[str, dict[str, Exposed]]) -> None:
    table = documented()
    problems = []
    for engine, families in every_engine.items():
        for name, family in sorted(families.items()):
            row = table.get(name)
            if row is None:
                problems.append(f"{engine}: {name} is not in the table of docs/monitoring.md")
            elif (row.type, row.unit) != (family.type, family.unit):
                problems.append(f"{engine}: {name} is a {family.type} in {family.unit or 'no unit'}, documented {row}")
            elif not family.labels <= row.labels:
                problems.append(f"{engine}: {name} has labels {sorted(family.labels)}, documented {sorted(row.labels)}")
    assert not problems, "\n".join(problems)


def test_every_documented_family_appears_in_real_output(every_engine: dict[str, dict[str, Exposed]]) -> None:
    seen = set().union(*(set(families) for families in every_engine.values()))
    never = [name for name, row in documented().items() if name not in seen and not row.conditional]
    assert not never, f"documented in docs/monitoring.md but in no engine's output: {never}"
