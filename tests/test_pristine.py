"""``dbkeeper.plugin.pristine_data_directory`` on real directories: what the cache keeps, and what it removes.

The engines' drills test the cache with real servers (tests/postgresql/test_pg_drill_cache.py,
tests/mysql/test_mysql_drill_cache.py); here the "server binaries" are files of the test and
the build writes a small directory, so that pruning can be seen quickly.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dbkeeper.plugin import PristineKey, pristine_data_directory
from dbkeeper.plugin.pristine import MAX_ENTRIES
from helpers import noting_tool

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


def tree(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under *root*: its mode and modification time, and a link's target or a file's bytes."""
    found: dict[str, tuple[object, ...]] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        status = path.lstat()
        what = os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else None
        found[str(path.relative_to(root))] = (status.st_mode, status.st_mtime_ns, what)
    return found


@pytest.mark.parametrize("with_tools", [True, False], ids=["cp and chown", "python"])
def test_a_copy_keeps_modes_times_and_links_and_is_given_to_its_owner(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_tools: bool
) -> None:
    """``cp`` and ``chown`` under ``setpriv`` where they are on PATH, else Python: the same copy, the same owner."""
    if os.geteuid() != 0:
        pytest.skip("giving files to another user needs root (as a drill run by root does)")
    owner = pwd.getpwnam("nobody")
    program = tmp_path / "server"
    program.write_text("v1")
    runs = tmp_path / "tool-runs"
    bindir = tmp_path / "bin"
    for tool in ("setpriv", "cp", "chown"):  # found first on PATH, noting that they ran
        noting_tool(bindir, tool, runs, note=tool)
    monkeypatch.setenv("PATH", str(bindir) if with_tools else str(tmp_path / "nothing"))

    def build(path: Path) -> None:
        (path / "base" / "1").mkdir(parents=True, mode=0o700)
        (path / "base" / "1" / "112").write_bytes(os.urandom(100_000))
        (path / "PG_VERSION").write_text("15\n")
        (path / "PG_VERSION").chmod(0o640)
        (path / "pg_wal").symlink_to("/elsewhere/pg_wal")
        for n, entry in enumerate([path / "base" / "1" / "112", path / "PG_VERSION", path / "base"]):
            os.utime(entry, ns=(1_600_000_000_123_456_789 + n, 1_600_000_000_123_456_789 + n))

    assert pristine_data_directory(tmp_path / "a", key_of(program), build) is False
    assert pristine_data_directory(tmp_path / "b", key_of(program), build, owner=owner) is True
    assert tree(tmp_path / "b") == tree(tmp_path / "a")
    owners = {(path.lstat().st_uid, path.lstat().st_gid) for path in [tmp_path / "b", *(tmp_path / "b").rglob("*")]}
    assert owners == {(owner.pw_uid, owner.pw_gid)}
    assert os.readlink(tmp_path / "b" / "pg_wal") == "/elsewhere/pg_wal"  # the link itself, not a target
    ran = ["setpriv", "cp", "setpriv", "cp", "setpriv", "chown"]
    assert runs.read_text().split() == ran if with_tools else not runs.exists()


def test_a_copy_dies_with_the_process_that_asked_for_it(tmp_path: Path) -> None:
    """kill -9 of the copying process takes its cp along: nothing writes on into the directory being removed."""
    source = tmp_path / "source"
    for n in range(40):
        (source / str(n)).mkdir(parents=True)
        for m in range(50):
            (source / str(n) / str(m)).write_bytes(b"x" * 65536)
    target = tmp_path / "target"
    code = (
        "from pathlib import Path\nfrom dbkeeper.plugin.pristine import _copy\n"
        f"_copy(Path({str(source)!r}), Path({str(target)!r}))"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while not (target / "0").exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    child.kill()
    child.wait()
    time.sleep(0.2)
    copying = subprocess.run(["pgrep", "-f", str(target)], capture_output=True, text=True).stdout.split()
    assert copying == [], "a cp outlived the process that started it"
    before = sum(1 for _ in target.rglob("*"))
    time.sleep(0.3)
    assert sum(1 for _ in target.rglob("*")) == before < 40 * 51 + 1, "the copy was stopped part way"
