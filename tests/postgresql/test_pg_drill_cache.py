"""The drill cache of PostgreSQL: initdb once per server build, a copy of its result after (real clusters).

Each test has a cache of its own (``XDG_CACHE_HOME``). That a drill ran initdb or copied
the cached directory is read from what it says: the note "starts on a copy of initdb's data
directory cached in ENTRY", printed only when the copy was made.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from pg_server import Server
from test_pg_drill import assert_nothing_left, report_of

from dbkeeper_postgresql.cluster import server_bindir
from helpers import Run, dbkeeper

COPIED = "starts on a copy of initdb's data directory cached in "
ROWS = 250


@pytest.fixture(scope="module")
def made(pg: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(directory, id) of one backup of a one-table database, made once for the module."""
    pg.psql("CREATE DATABASE drill_cache")
    pg.psql(
        f"CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, {ROWS})", database="drill_cache"
    )
    directory = tmp_path_factory.mktemp("made")
    ident = dbkeeper("--quiet", "backup", pg.socket_url("drill_cache"), "--dir", str(directory)).out.strip()
    return directory, ident


def drill(directory: Path, tmp: Path, cache: Path, **env: str) -> Run:
    """A drill of the latest backup with *cache* as ``XDG_CACHE_HOME``; it must pass with the exact rows."""
    run = dbkeeper("drill", "latest", "--dir", str(directory), "--json",
                   env={"TMPDIR": str(tmp), "XDG_CACHE_HOME": str(cache), **env}, check=False)  # fmt: skip
    assert run.code == 0, (run.out, run.err)
    assert report_of(run)["rows"] == ROWS
    assert_nothing_left(tmp)
    return run


def entries(cache: Path) -> list[Path]:
    """The cache's entries (hidden directories being built or removed not counted)."""
    templates = cache / "dbkeeper" / "drill-templates"
    return sorted(path for path in templates.iterdir() if not path.name.startswith("."))


def test_the_second_drill_starts_on_a_copy_of_the_first_ones_initdb(
    backup: tuple[Path, str], drill_tmp: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first = drill(backup[0], drill_tmp, cache)
    assert COPIED not in first.err, first.err
    (entry,) = entries(cache)
    assert (entry / "complete.json").is_file() and (entry / "data" / "PG_VERSION").is_file()
    second = drill(backup[0], drill_tmp, cache)
    assert f"{COPIED}{entry} " in second.err, second.err
    assert entries(cache) == [entry]


def test_the_cache_is_private_and_holds_no_password(backup: tuple[Path, str], drill_tmp: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    drill(backup[0], drill_tmp, cache)
    (entry,) = entries(cache)
    for path in [cache / "dbkeeper", entry.parent, *entry.rglob("*")]:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is {oct(path.stat().st_mode)}"
    hba = (entry / "data" / "pg_hba.conf").read_text()
    assert [line.split()[-1] for line in hba.splitlines() if line.strip() and not line.startswith("#")] == ["trust"] * 6


def test_an_entry_without_its_marker_is_rebuilt(backup: tuple[Path, str], drill_tmp: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    drill(backup[0], drill_tmp, cache)
    (entry,) = entries(cache)
    (entry / "complete.json").unlink()  # as if the copy had been cut short
    (entry / "data" / "PG_VERSION").unlink()
    rebuilt = drill(backup[0], drill_tmp, cache)
    assert COPIED not in rebuilt.err, rebuilt.err
    assert entries(cache) == [entry]
    assert (entry / "complete.json").is_file() and (entry / "data" / "PG_VERSION").is_file()
    assert COPIED in drill(backup[0], drill_tmp, cache).err


def test_other_server_binaries_make_another_entry(backup: tuple[Path, str], drill_tmp: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    drill(backup[0], drill_tmp, cache)
    bindir = Path(tempfile.mkdtemp(prefix="pgdrill-bin-"))  # under /tmp: the server's user runs initdb from it
    try:
        bindir.chmod(0o755)
        for tool in server_bindir("15").iterdir():
            (bindir / tool.name).symlink_to(tool)
        elsewhere = drill(backup[0], drill_tmp, cache, DBKEEPER_PG_BINDIR=str(bindir))
        assert COPIED not in elsewhere.err, elsewhere.err
        assert len(entries(cache)) == 2
        assert COPIED in drill(backup[0], drill_tmp, cache, DBKEEPER_PG_BINDIR=str(bindir)).err
    finally:
        shutil.rmtree(bindir)


def test_drill_cache_0_runs_initdb_and_keeps_nothing(backup: tuple[Path, str], drill_tmp: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for _ in range(2):
        run = drill(backup[0], drill_tmp, cache, DBKEEPER_DRILL_CACHE="0")
        assert COPIED not in run.err and "cache" not in run.err, run.err
    assert not cache.exists()


def test_a_cache_that_cannot_be_written_costs_one_note(
    backup: tuple[Path, str], drill_tmp: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "a file"
    cache.write_text("")  # no directory can be made under it, not even by root
    run = drill(backup[0], drill_tmp, cache)
    notes = [line for line in run.err.splitlines() if "cannot cache" in line]
    templates = cache / "dbkeeper" / "drill-templates"
    assert notes == [f"note: cannot cache initdb's data directory for the next drills in {templates} "
                     f"(File exists: {cache}): each drill makes its own"], run.err  # fmt: skip
