"""The test servers' guard: the product's own watchdog (:mod:`dbkeeper.system.watchdog`).

A shell holds the read end of a pipe whose write end only the test process holds. However
that process ends — a clean stop, a crash, ``kill -9`` — the pipe closes; the watchdog then
runs the stop command (if the server's *guard* still exists, i.e. the server was not
already stopped) and removes the server's directory. No server outlives its tests, in a
developer's shell or in CI.
"""

from __future__ import annotations

import subprocess

from dbkeeper.system.watchdog import release_watchdog
from dbkeeper.system.watchdog import start_watchdog as start_watchdog  # re-exported for the test servers


def release(watchdog: subprocess.Popen[bytes] | None) -> None:
    """Let *watchdog* finish now (the server was stopped normally)."""
    if watchdog is not None:
        release_watchdog(watchdog)
