"""A guard that stops a throwaway database server when the process that started it dies.

The watchdog is a shell holding the read end of a pipe whose write end only the test
process holds. However that process ends — a clean stop, a crash, ``kill -9`` — the pipe
closes; the watchdog then runs the stop command (if the server's *guard* file still
exists, i.e. the server was not already stopped) and removes the server's directory.
No server outlives its tests, in a developer's shell or in CI.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

_SCRIPT = 'cat >/dev/null; [ -f "$2" ] && "${@:3}" >/dev/null 2>&1; rm -rf "$1"'


def start_watchdog(directory: Path, guard: Path, stop: Sequence[str]) -> subprocess.Popen[bytes]:
    """Watch this process: when it ends, run *stop* if *guard* exists, then remove *directory*.

    Close the returned process's stdin after stopping the server normally, and wait for it.
    """
    return subprocess.Popen(
        ["bash", "-c", _SCRIPT, "watchdog", str(directory), str(guard), *stop],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def release(watchdog: subprocess.Popen[bytes] | None) -> None:
    """Let *watchdog* finish now (the server was stopped normally)."""
    if watchdog is not None and watchdog.stdin is not None:
        watchdog.stdin.close()
        watchdog.wait(timeout=60)
