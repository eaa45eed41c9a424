"""The backup's control session through psql (no psycopg import), and psycopg where psql cannot hold it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pg_server import Server

from helpers import BIN, dbkeeper

AWKWARD = '''
CREATE SCHEMA "Odd ""Schema""";
CREATE TABLE "Odd ""Schema"""."line
break ü" (id int PRIMARY KEY, note text DEFAULT 'x');
INSERT INTO "Odd ""Schema"""."line
break ü" SELECT g, NULL FROM generate_series(1, 7) g;
CREATE TABLE public.parent (id int) PARTITION BY RANGE (id);
CREATE TABLE public.child PARTITION OF public.parent FOR VALUES FROM (0) TO (100);
INSERT INTO public.parent SELECT g FROM generate_series(1, 5) g;
CREATE VIEW public.v AS SELECT 1 AS one;
'''


def backup(pg: Server, database: str, directory: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    manifest: dict[str, Any] = dbkeeper("backup", pg.url(database), "--dir", str(directory), "--json", env=env).json()  # type: ignore[assignment]
    return manifest


def psql_that_is_not(directory: Path, status: int) -> Path:
    """A bin directory with the real pg_dump and a ``psql`` that ends at once with *status*."""
    directory.mkdir()
    (directory / "pg_dump").symlink_to("/usr/lib/postgresql/15/bin/pg_dump")
    fake = directory / "psql"
    fake.write_text(f"#!/bin/sh\necho 'psql (PostgreSQL) 15.0'\nexit {status}\n")
    fake.chmod(0o755)
    return directory


def comparable(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the control session read: row counts and the catalog details (not the parts' sizes or times)."""
    details = {k: v for k, v in manifest["details"].items() if k != "parts"}
    return {"row_counts": manifest["row_counts"], "database": manifest["database"], "details": details}


@pytest.mark.parametrize("status", [0, 1])
def test_psql_and_psycopg_read_the_same(pg: Server, new_name: str, tmp_path: Path, status: int) -> None:
    """The awkward names, NULLs, jsonb columns and partitions come back alike from both sessions."""
    pg.app_database(new_name, AWKWARD)
    through_psql = backup(pg, new_name, tmp_path / "psql")
    fallback = {"DBKEEPER_PG_BINDIR": str(psql_that_is_not(tmp_path / "bin", status))}
    through_psycopg = backup(pg, new_name, tmp_path / "psycopg", env=fallback)
    assert comparable(through_psql) == comparable(through_psycopg)
    assert through_psql["row_counts"] == {'"Odd ""Schema"""."line\nbreak ü"': 7, "public.child": 5}
    assert set(through_psql["details"]["relations"]) == {
        '"Odd ""Schema"""."line\nbreak ü"',
        "public.child",
        "public.parent",
        "public.v",
    }
    assert through_psql["details"]["relations"]["public.parent"]["children"] == ["public.child"]


def test_a_backup_does_not_import_psycopg(pg: Server, chinook: str, tmp_path: Path) -> None:
    """psycopg costs a command about 70 ms to import; psql holds the snapshot instead."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(BIN / "dbkeeper"), "-q", "backup", pg.url(chinook), "--dir",
         str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "dbkeeper_postgresql.control_session" in imported  # the backup did run here
    assert "psycopg" not in imported and "importlib.metadata" not in imported


def test_a_connection_failure_reads_the_same_through_psql_and_psycopg(pg: Server, tmp_path: Path) -> None:
    fallback = {"DBKEEPER_PG_BINDIR": str(psql_that_is_not(tmp_path / "bin", 1))}
    for url in (pg.url("postgres", password="wrong"), pg.url("no_such_database")):
        errors = {
            dbkeeper("backup", url, "--dir", str(tmp_path / "b"), env=env, check=False).err for env in (None, fallback)
        }
        assert len(errors) == 1, errors
        (error,) = errors
        assert error.startswith("error: cannot connect to postgresql://app:***@") and "wrong" not in error
