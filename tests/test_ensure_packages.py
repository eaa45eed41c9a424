"""scripts/ensure-packages.sh waits for apt's locks (bounded) and stops only the servers it installed.

These run the script's apt part for real: a PATH without ``sqlite3`` (or ``mariadbd``)
makes it install a package that is in fact installed already, which apt-get (with
``--no-upgrade``) leaves as it is. Another process holds apt's locks the way apt does,
with an ``fcntl`` lock, and releases them when told — dpkg's state is never touched.
Root and apt are needed (the script's own requirements); elsewhere the tests skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helpers import ROOT

SCRIPT = ROOT / "scripts" / "ensure-packages.sh"
DPKG_FRONTEND_LOCK = Path("/var/lib/dpkg/lock-frontend")
LISTS_LOCK = Path("/var/lib/apt/lists/lock")
HOLD = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("held", flush=True)
sys.stdin.read()
"""

Holder = Callable[[Path], "subprocess.Popen[str]"]

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("apt-get") is None, reason="needs root and apt-get, as the script does"
)


@pytest.fixture
def shim() -> Iterator[Path]:
    """An empty directory for a PATH, readable by apt's unprivileged ``_apt`` methods (they run gpgv from it)."""
    with tempfile.TemporaryDirectory(prefix="dbkeeper-path-") as directory:
        os.chmod(directory, 0o755)
        yield Path(directory)


def path_without(shim: Path, *hidden: str, service: str | None = None) -> str:
    """A PATH holding every command of the system's but *hidden*; *service*, if given, replaces ``service``."""
    for directory in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"):
        for entry in Path(directory).iterdir() if Path(directory).is_dir() else ():
            link = shim / entry.name
            if entry.name not in hidden and not link.exists():
                link.symlink_to(entry)
    if service is not None:
        (shim / "service").unlink(missing_ok=True)
        (shim / "service").write_text(service)
        (shim / "service").chmod(0o755)
    return str(shim)


@pytest.fixture
def hold_lock() -> Iterator[Holder]:
    """``hold_lock(path)`` locks *path* as apt does, in another process, until ``release()``."""
    holders: list[subprocess.Popen[str]] = []

    def hold(path: Path) -> subprocess.Popen[str]:
        argv = [sys.executable, "-c", HOLD, str(path)]
        holder = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        holders.append(holder)
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        return holder

    yield hold
    for holder in holders:
        release(holder)


def release(holder: subprocess.Popen[str]) -> None:
    """Let the holder exit, which releases its lock."""
    if holder.poll() is None:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)


def start_script(path: str, timeout: int) -> subprocess.Popen[str]:
    """Run the script with *path* as PATH, waiting at most *timeout* seconds for apt's locks."""
    env = {"PATH": path, "APT_LOCK_TIMEOUT": str(timeout), "APT_LOCK_POLL": "1", "LANG": "C.UTF-8"}
    argv = ["/bin/bash", str(SCRIPT)]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("lock", [DPKG_FRONTEND_LOCK, LISTS_LOCK], ids=["dpkg-frontend", "apt-lists"])
def test_the_script_waits_for_a_held_apt_lock(shim: Path, hold_lock: Holder, lock: Path) -> None:
    holder = hold_lock(lock)
    script = start_script(path_without(shim, "sqlite3"), timeout=600)
    try:
        script.wait(timeout=4)
    except subprocess.TimeoutExpired:
        pass  # still waiting for the lock, as it should
    else:
        pytest.fail(f"the script ended (exit {script.returncode}) while the lock was held:\n{script.stderr.read()}")
    release(holder)
    _, err = script.communicate(timeout=600)
    assert script.returncode == 0, err
    assert "installing Debian packages: sqlite3" in err
    if lock == LISTS_LOCK:  # apt-get waits for dpkg's lock itself, silently; the script says why it waits
        assert "another apt or dpkg process holds a package lock; waiting" in err


def test_the_wait_is_bounded(shim: Path, hold_lock: Holder) -> None:
    hold_lock(LISTS_LOCK)
    script = start_script(path_without(shim, "sqlite3"), timeout=2)
    _, err = script.communicate(timeout=600)
    assert script.returncode != 0
    assert "Could not get lock /var/lib/apt/lists/lock" in err
    assert "gave up after waiting 2s (APT_LOCK_TIMEOUT) for apt's locks" in err


def test_only_the_servers_it_installed_are_stopped(shim: Path, tmp_path: Path) -> None:
    """A stop that fails (the server was not running) does not make it stop another server."""
    calls = tmp_path / "service-calls"
    recorder = f'#!/bin/sh\necho "$*" >> {calls}\nexit 1\n'
    script = start_script(path_without(shim, "mariadbd", service=recorder), timeout=600)
    _, err = script.communicate(timeout=600)
    assert script.returncode == 0, err
    assert "installing Debian packages: mariadb-server" in err
    assert calls.read_text().splitlines() == ["mariadb stop"]
