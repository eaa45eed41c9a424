"""Waiting for a child process to end, woken the moment it does."""

from __future__ import annotations

import os
import select
import subprocess


def wait_ended(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to *timeout* seconds for *process* to end (and reap it); whether it did.

    Woken by the kernel the moment it ends (a pidfd), where :meth:`subprocess.Popen.wait`
    with a timeout polls, sleeping up to 50 ms between looks: a drill stopping its server
    and releasing two watchdogs paid that wait three times.
    """
    if process.returncode is not None:
        return True
    try:
        pidfd = os.pidfd_open(process.pid)
    except OSError:  # no pidfd on this kernel, or the process is gone and reaped by someone else
        pidfd = None
    if pidfd is not None:
        try:
            select.select([pidfd], [], [], timeout)
        finally:
            os.close(pidfd)
    try:
        process.wait(timeout=0 if pidfd is not None else timeout)
    except subprocess.TimeoutExpired:
        return False
    return True
