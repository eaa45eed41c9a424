"""A one-part backup's pg_dump starts as soon as the snapshot is exported: how that early dump ends.

It is adopted by the dump when it runs what the dump would run; otherwise (a backup asking
for another format or layout than the head start guessed) it is killed on purpose, which
is no failure; and an interrupted backup leaves it behind no more than its ``psql``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pg_server import SUPERUSER, Server
from processes import interrupted, start, wait_for
from test_pg_prepare import WITHIN, processes_mentioning

from dbkeeper.backups.manager import BackupManager
from dbkeeper.backups.manifest import Manifest
from dbkeeper.plugin import DatabaseURL
from dbkeeper.system.interrupts import DEFAULT_MESSAGE
from helpers import dbkeeper


@pytest.fixture(scope="module")
def source(pg: Server) -> str:
    """A small database with a sequence, shared by the tests that only read it."""
    return pg.app_database(
        "early_source",
        "CREATE TABLE t (id serial PRIMARY KEY, name text);"
        "INSERT INTO t (name) SELECT 'n' || g FROM generate_series(1, 500) g",
    )


def backed_up_after_a_guess(url: str, directory: Path, guess: tuple[str, int], fmt: str, jobs: int) -> Manifest:
    """A backup in *fmt* on *jobs* streams, given the head start of a backup in *guess* (format, jobs)."""
    manager = BackupManager(directory)
    parsed = DatabaseURL.parse(url)
    driver = manager.plugins.driver_for(parsed)
    guessed = driver.options_for("backup", {"jobs": guess[1]})
    with driver.prepare_backup(parsed, guess[0], guessed) as prepared:
        return manager.backup(parsed, format=fmt, options={"jobs": jobs}, prepared=prepared)


@pytest.mark.parametrize(
    ("guess", "fmt", "jobs"),
    [(("custom", 1), "sql", 1), (("custom", 1), "custom", 2), (("sql", 1), "custom", 1), (("custom", 2), "custom", 1)],
    ids=["format-differs", "jobs-differ", "sql-guess", "parallel-guess"],
)
def test_a_backup_other_than_the_guess_is_correct_and_the_early_dump_is_gone(
    pg: Server, source: str, tmp_path: Path, guess: tuple[str, int], fmt: str, jobs: int
) -> None:
    marker = f"early{os.getpid()}g{guess[0]}{guess[1]}{fmt}{jobs}"
    url = pg.url(source, query=f"application_name={marker}")
    manifest = backed_up_after_a_guess(url, tmp_path / "b", guess, fmt, jobs)
    assert (manifest.format, manifest.details["layout"]) == (fmt, "single" if jobs == 1 else "parallel")
    assert manifest.row_counts == {"public.t": 500}
    assert processes_mentioning(marker) == []
    target = f"early_restored_{guess[0]}{guess[1]}{fmt}{jobs}"
    restored = dbkeeper("restore", manifest.id, pg.url(target), "--dir", str(tmp_path / "b"), "--json")
    assert restored.json()["row_counts"] == {"public.t": 500}
    assert pg.contents(target) == pg.contents(source)


@pytest.fixture
def locked(pg: Server) -> Iterator[str]:
    """A database whose table another session holds locked: pg_dump waits for it, and keeps running."""
    name = pg.app_database("early_locked", "CREATE TABLE t (id int)")
    with psycopg.connect(host=str(pg.socket_dir), port=pg.port, user=SUPERUSER, dbname=name) as holder:
        holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        yield name
        holder.rollback()


def test_an_interrupted_backup_kills_the_early_dump_and_psql(pg: Server, locked: str, tmp_path: Path) -> None:
    marker = f"early{os.getpid()}i"
    url = pg.url(locked, query=f"application_name={marker}")
    owner = start("backup", url, "--dir", str(tmp_path / "b"), cwd=tmp_path, env={})
    dumps = wait_for("pg_dump", owner)  # started by the head start, waiting for the lock
    status, err = interrupted(owner, WITHIN)
    assert status == 130 and err.strip() == DEFAULT_MESSAGE, err
    assert [pid for pid in dumps if Path(f"/proc/{pid}").exists()] == []
    assert processes_mentioning(marker) == []
