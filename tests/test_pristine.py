"""``dbkeeper.plugin.pristine_data_directory`` on real directories: what the cache keeps, and what it removes.

The engines' drills test the cache with real servers (tests/postgresql/test_pg_drill_cache.py,
tests/mysql/test_mysql_drill_cache.py); here the "server binaries" are files of the test and
the build writes a small directory, so that pruning can be seen quickly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dbkeeper.plugin import PristineKey, pristine_data_directory
from dbkeeper.plugin.pristine import MAX_ENTRIES

Built = list[Path]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The drill-templates directory of a private ``XDG_CACHE_HOME``."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    monkeypatch.delenv("DBKEEPER_DRILL_CACHE", raising=False)
    return tmp_path / "home-cache" / "dbkeeper" / "drill-templates"


def key_of(program: Path, option: str = "--encoding=UTF8") -> PristineKey:
    """A key of one "server binary" (a file of the test)."""
    return PristineKey("testdb", (program,), "testdb 1.0", (option,))


def make(target: Path, key: PristineKey, built: Built) -> bool:
    """``pristine_data_directory`` with a build that writes two files and records that it ran."""

    def build(path: Path) -> None:
        built.append(path)
        (path / "base").mkdir(parents=True, mode=0o700)
        (path / "base" / "1").write_text("pristine")
        (path / "VERSION").write_text("1.0")
        (path / "VERSION").chmod(0o600)

    return pristine_data_directory(target, key, build)


def entries(cache: Path) -> list[str]:
    """Names of every directory in the cache, hidden ones too."""
    return sorted(path.name for path in cache.iterdir())


def test_the_build_runs_once_and_later_copies_are_whole(cache: Path, tmp_path: Path) -> None:
    program = tmp_path / "server"
    program.write_text("v1")
    built: Built = []
    assert make(tmp_path / "a", key_of(program), built) is False
    assert make(tmp_path / "b", key_of(program), built) is True
    assert built == [tmp_path / "a"]
    assert (tmp_path / "b" / "base" / "1").read_text() == "pristine"
    assert (tmp_path / "b" / "VERSION").stat().st_mode & 0o777 == 0o600


def test_an_upgraded_binary_makes_a_new_entry_and_the_old_one_goes(cache: Path, tmp_path: Path) -> None:
    program = tmp_path / "server"
    program.write_text("v1")
    built: Built = []
    make(tmp_path / "a", key_of(program), built)
    (old,) = entries(cache)
    program.write_text("version 2")  # another size: another build
    assert make(tmp_path / "b", key_of(program), built) is False
    assert len(built) == 2
    (new,) = entries(cache)
    assert new != old


def test_at_most_max_entries_are_kept_the_least_recently_used_go(cache: Path, tmp_path: Path) -> None:
    program = tmp_path / "server"
    program.write_text("v1")
    built: Built = []
    keys = [key_of(program, f"--option={n}") for n in range(MAX_ENTRIES + 1)]
    for n, key in enumerate(keys):
        make(tmp_path / f"built-{n}", key, built)
        os.utime(cache / key.name() / "complete.json", (1000 + n, 1000 + n))  # used in this order, ties impossible
    assert len(entries(cache)) == MAX_ENTRIES
    assert keys[0].name() not in entries(cache)
    assert keys[-1].name() in entries(cache)


def test_a_dead_builders_leftover_is_removed_a_live_ones_kept(cache: Path, tmp_path: Path) -> None:
    program = tmp_path / "server"
    program.write_text("v1")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    cache.mkdir(parents=True)
    (cache / f".building-{dead.stdout.strip()}-x").mkdir()
    (cache / f".building-{os.getpid()}-y").mkdir()  # ours: alive
    make(tmp_path / "a", key_of(program), [])
    assert entries(cache) == sorted([f".building-{os.getpid()}-y", key_of(program).name()])


def test_a_failed_build_leaves_no_entry(cache: Path, tmp_path: Path) -> None:
    program = tmp_path / "server"
    program.write_text("v1")

    def build(path: Path) -> None:
        path.mkdir()
        raise RuntimeError("initdb failed")

    with pytest.raises(RuntimeError, match="initdb failed"):
        pristine_data_directory(tmp_path / "a", key_of(program), build)
    assert not cache.exists()
