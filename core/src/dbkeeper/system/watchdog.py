"""A guard that stops a child server and removes its files when the process that started it dies.

The watchdog is a shell holding the read end of a pipe whose write end only the starting
process holds. However that process ends — a clean stop, a crash, ``kill -9`` — the pipe
closes; the watchdog then runs the stop command (if the *guard* file still exists, i.e.
the server was not stopped already) and removes the directory. It runs in its own session,
so a Ctrl-C at the terminal does not reach it before it has done its work.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from dbkeeper.system.processes import wait_ended

_RELEASE_SECONDS = 60.0
_SCRIPT = 'cat >/dev/null; [ -n "$2" ] && [ -e "$2" ] && "${@:3}" >/dev/null 2>&1; rm -rf "$1"'


def start_watchdog(directory: Path, guard: Path | None = None, stop: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """Watch this process: when it ends, run *stop* if *guard* exists, then remove *directory*.

    Call :func:`release_watchdog` after stopping the server normally (or to hand it over:
    ``--keep``), so the watchdog exits without doing anything more.
    """
    return subprocess.Popen(
        ["bash", "-c", _SCRIPT, "watchdog", str(directory), str(guard) if guard and stop else "", *stop],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def release_watchdog(watchdog: subprocess.Popen[bytes], *, remove: bool = True) -> None:
    """Let *watchdog* finish now: it removes its directory (unless *remove* is false, then it does nothing).

    With *remove* false the watchdog is killed before its pipe closes, so the directory
    and the server outlive this process (``--keep``).
    """
    if not remove:
        os.killpg(watchdog.pid, signal.SIGKILL)  # the shell and its `cat`: the pipe then closes on nobody
    elif watchdog.stdin is not None:
        watchdog.stdin.close()
    if not wait_ended(watchdog, _RELEASE_SECONDS):
        raise subprocess.TimeoutExpired(watchdog.args, _RELEASE_SECONDS)
