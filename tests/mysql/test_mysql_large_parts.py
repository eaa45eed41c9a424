"""A table's part past 16 MiB goes from ``zstd -d`` into the ``mariadb`` client, spliced (tests/test_piped_decoding.py).

Only the head of the part (its definition, the ``LOCK TABLES`` line) passes through
Python; the rows go from the program to the client. The restore gives the same database,
a selective restore still points foreign keys at the target's tables, and damage anywhere
still changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from mariadb_server import MariaDBServer
from mysql_snapshot import assert_same_database, snapshot, staging_leftovers

from helpers import assert_one_line_error, dbkeeper, flip_byte, noting_tool

ROWS = 300_000


@pytest.fixture(scope="module")
def big_db(mariadb: MariaDBServer) -> str:
    """``kinds`` (5 rows) and ``events`` (300,000 rows, about 27 MB of SQL) with a foreign key to it."""
    name = "large_parts"
    mariadb.execute(f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
    mariadb.execute(
        "CREATE TABLE kinds (id INT PRIMARY KEY, label VARCHAR(20))",
        "INSERT INTO kinds SELECT seq, CONCAT('kind ', seq) FROM seq_1_to_5",
        "CREATE TABLE events (id INT PRIMARY KEY, ref CHAR(64), amount DECIMAL(12,1), kind INT, "
        "CONSTRAINT events_kind FOREIGN KEY (kind) REFERENCES kinds (id))",
        f"INSERT INTO events SELECT seq, CONCAT(md5(seq), md5(seq * 7)), seq * 1.5, 1 + seq % 5 FROM seq_1_to_{ROWS}",
        database=name,
    )
    return name


@pytest.fixture
def zstd_runs(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose ``zstd`` notes each run, and the file it notes them in."""
    bindir, runs = tmp_path / "bin", tmp_path / "zstd-runs"
    noting_tool(bindir, "zstd", runs)
    return {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}, runs


def backed_up(mariadb: MariaDBServer, database: str, backups: Path) -> tuple[str, Path]:
    """The backup's id and its ``events`` artifact (checked to be large enough for the program)."""
    manifest = dbkeeper("backup", mariadb.url(database), "--dir", str(backups), "--json").json()
    (events,) = [a for a in manifest["artifacts"] if a["name"].endswith("-events.sql")]
    assert events["raw_bytes"] > 16 * 2**20
    return manifest["id"], backups / manifest["id"] / events["file"]


def restore(mariadb: MariaDBServer, ident: str, database: str, backups: Path, *options: str, env: dict[str, str],
            check: bool = True):  # fmt: skip
    return dbkeeper("restore", ident, mariadb.url(database), "--dir", str(backups), *options, env=env, check=check)


def test_a_large_part_is_decoded_by_zstd_into_the_client(
    mariadb: MariaDBServer, big_db: str, backups: Path, new_database: Callable[[str], str], zstd_runs
) -> None:
    env, runs = zstd_runs
    ident, _ = backed_up(mariadb, big_db, backups)
    whole = new_database("whole")
    restore(mariadb, ident, whole, backups, "--jobs", "2", env=env)
    assert runs.read_text().split() == ["--decompress", "--stdout", "--quiet"]  # only the large part
    assert_same_database(mariadb, big_db, whole)

    chosen = new_database("chosen")
    mariadb.execute(f"CREATE DATABASE {chosen}", f"CREATE TABLE {chosen}.kinds (id INT PRIMARY KEY)",
                    f"INSERT INTO {chosen}.kinds VALUES (1), (2), (3), (4), (5), (99)")  # fmt: skip
    restore(mariadb, ident, chosen, backups, "--table", "events", env=env)
    assert len(runs.read_text().splitlines()) == 2
    assert snapshot(mariadb, chosen)["rows events"] == snapshot(mariadb, big_db)["rows events"]
    mariadb.execute(f"UPDATE {chosen}.events SET kind = 99 WHERE id = 1")  # the target's kinds: it has 99
    with pytest.raises(Exception, match=r"foreign key constraint fails.*REFERENCES `kinds`"):
        mariadb.execute(f"UPDATE {chosen}.events SET kind = 6 WHERE id = 1")


@pytest.mark.parametrize("where", ["end", "middle", "another table"])
def test_damage_anywhere_still_changes_nothing(
    mariadb: MariaDBServer, big_db: str, backups: Path, new_database: Callable[[str], str], zstd_runs, where: str
) -> None:
    """Damage in the large part (found by the checksum as zstd decodes it) or in a small part loaded beside it."""
    env, runs = zstd_runs
    ident, events = backed_up(mariadb, big_db, backups)
    target = new_database("kept")
    restore(mariadb, ident, target, backups, env=env)
    mariadb.execute(f"DELETE FROM {target}.events WHERE id % 2 = 0")
    before = snapshot(mariadb, target)
    damaged = events if where != "another table" else next((backups / ident).glob("*-kinds.sql.zst"))
    flip_byte(damaged, -1 if where == "end" else damaged.stat().st_size // 2)
    for jobs in ("1", "2"):
        run = restore(mariadb, ident, target, backups, "--force", "--jobs", jobs, env=env, check=False)
        assert_one_line_error(run, "damaged")
        assert snapshot(mariadb, target) == before
        assert not staging_leftovers(mariadb)
    assert len(runs.read_text().splitlines()) == 3
