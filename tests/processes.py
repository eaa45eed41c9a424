"""Watching the real processes dbkeeper starts: their tree, environments, a hard kill, and where secrets lie.

Shared by the PostgreSQL and MySQL/MariaDB secret tests; nothing here is a mock.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from helpers import BIN


def start(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """The real CLI as a background process (without an inherited DATABASE_URL unless *env* gives one)."""
    inherited = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.Popen(
        [str(BIN / "dbkeeper"), *args], cwd=cwd, env={**inherited, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def interrupted(owner: subprocess.Popen[str], within: float) -> tuple[int, str]:
    """SIGTERM *owner*, then its exit status and stderr once it ends (killed, and the test failed, after *within* s)."""
    owner.send_signal(signal.SIGTERM)
    try:
        _, err = owner.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        owner.kill()
        raise
    return owner.returncode, err


def process_tree(root: int) -> dict[int, str]:
    """*root* and every process below it, with their arguments as ``ps`` shows them."""
    listing = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    arguments: dict[int, str] = {}
    for line in listing.splitlines():
        pid, ppid, args = [*line.split(None, 2), ""][:3]
        children.setdefault(int(ppid), []).append(int(pid))
        arguments[int(pid)] = args
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in arguments:
            tree[pid] = arguments[pid]
        todo.extend(children.get(pid, []))
    return tree


def wait_for(tool: str, owner: subprocess.Popen[str], count: int = 1) -> list[int]:
    """Pids of *tool* processes (at least *count*) started by *owner*; fails if it ends first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [
            pid
            for pid, args in process_tree(owner.pid).items()
            if Path(args.split(" ")[0]).name == tool and "--version" not in args  # not the short version probe
        ]
        if len(found) >= count:
            return found
        if owner.poll() is not None:
            pytest.fail(f"the command ended before {tool} was seen: {owner.communicate()}")
        time.sleep(0.02)
    pytest.fail(f"{tool} never appeared")


def environment_of(pid: int) -> dict[str, str]:
    """The environment a running process was started with (``/proc/PID/environ``)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def assert_environment_holds_no_secret(pid: int, password: str) -> None:
    """No DATABASE_URL, and no variable holding *password* as is or percent-encoded."""
    environ = environment_of(pid)
    assert "DATABASE_URL" not in environ, environ.get("DATABASE_URL")
    leaking = [name for name, value in environ.items() if password in value or password in unquote(value)]
    assert leaking == [], f"the password is in {leaking} of pid {pid}"


def kill_hard(owner: subprocess.Popen[str], pids: Iterable[int]) -> None:
    """``kill -9`` dbkeeper, then the tools it had started (they would wait for a lock forever)."""
    owner.kill()
    owner.communicate(timeout=60)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def assert_secret_nowhere(password: str, *directories: Path) -> None:
    """No file under *directories* holds *password*: as is, percent-encoded, or its start (however it was escaped)."""
    needles = {password.encode(), quote(password, safe="").encode(), password[:6].encode()}
    holding = []
    for directory in directories:
        for path in directory.rglob("*") if directory.is_dir() else []:
            if path.is_file() and not path.is_symlink() and any(n in path.read_bytes() for n in needles):
                holding.append(str(path))
    assert holding == [], f"the password is in {holding}"


def assert_runtime_directory_clean(password: str) -> None:
    """dbkeeper's private runtime directory (secrets where in-memory files are missing) holds no *password*.

    Removed afterwards when empty (it is created by looking).
    """
    from dbkeeper.plugin.tools import runtime_root

    root = runtime_root()
    assert_secret_nowhere(password, root)
    with contextlib.suppress(OSError):
        root.rmdir()
