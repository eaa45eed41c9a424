"""The drill cache of MariaDB: mariadb-install-db once per server build, a copy of its result after (real servers).

Each test has a cache of its own (``XDG_CACHE_HOME``); that a drill copied the cached
directory instead of running mariadb-install-db is read from its note.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mariadb_server import MariaDBServer
from test_mysql_drill import assert_nothing_left, drill_tmp, kill_9_drill_once  # noqa: F401 (drill_tmp: a fixture)

from helpers import Run, dbkeeper

COPIED = "starts on a copy of mariadb-install-db's data directory cached in "
CHINOOK_ROWS = 15607


def drill(backups: Path, tmp: Path, cache: Path) -> Run:
    """A drill of the latest backup with *cache* as ``XDG_CACHE_HOME``; it must pass with Chinook's exact rows."""
    run = dbkeeper("drill", "latest", "--dir", str(backups), "--json",
                   env={"TMPDIR": str(tmp), "XDG_CACHE_HOME": str(cache)}, check=False)  # fmt: skip
    assert run.code == 0, (run.out, run.err)
    assert run.json()["rows"] == CHINOOK_ROWS
    assert_nothing_left(tmp)
    return run


@pytest.fixture
def filled(mariadb: MariaDBServer, chinook_db: str, backups: Path, drill_tmp: Path, tmp_path: Path) -> Path:  # noqa: F811
    """A cache that one drill of a Chinook backup in *backups* has filled (``XDG_CACHE_HOME``)."""
    dbkeeper("--quiet", "backup", mariadb.url(chinook_db), "--dir", str(backups))
    cache = tmp_path / "cache"
    first = drill(backups, drill_tmp, cache)
    assert COPIED not in first.err, first.err
    return cache


def test_the_second_drill_starts_on_a_copy_and_the_copy_holds_no_password(
    filled: Path,
    backups: Path,
    drill_tmp: Path,  # noqa: F811
) -> None:
    (entry,) = (filled / "dbkeeper" / "drill-templates").iterdir()
    assert f"{COPIED}{entry} " in drill(backups, drill_tmp, filled).err
    for path in [entry.parent, *entry.rglob("*")]:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is {oct(path.stat().st_mode)}"
    accounts = (entry / "data" / "mysql" / "global_priv.MAD").read_bytes()
    assert b"root" in accounts
    assert set(re.findall(rb'"authentication_string":"([^"]*)"', accounts)) <= {b""}, "a password hash is cached"


def test_kill_9_while_the_copy_is_made_leaves_nothing(
    filled: Path,
    backups: Path,
    drill_tmp: Path,  # noqa: F811
) -> None:
    env = {"XDG_CACHE_HOME": str(filled)}
    kill_9_drill_once(backups, drill_tmp, env, "dbkeeper-drill-*/server/data", "the copy at work")
    assert COPIED in drill(backups, drill_tmp, filled).err  # the cache is still whole
