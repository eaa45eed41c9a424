"""Progress reporting for long work: bytes, rate and ETA on stderr, or nothing at all."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol


class Reporter(Protocol):
    """Something that shows progress of tasks measured in bytes."""

    def task(self, description: str, total: int | None) -> contextlib.AbstractContextManager[Callable[[int], None]]:
        """Start a task; the context yields a function to call with each chunk's size."""
        ...


def _ignore(_: int) -> None:
    """Discard a progress update."""


class SilentReporter:
    """Reports nothing (library use, pipes, ``--json``, ``--quiet``)."""

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """Yield a function that ignores updates."""
        yield _ignore


class TerminalReporter:
    """Rich progress bars on stderr with bytes done, rate and time remaining.

    Tasks may run at once (a driver dumping several tables in parallel): they share one
    display, which stays up while any task is running.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._display: Any = None
        self._active = 0

    def _open(self) -> Any:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        display = Progress(*columns, console=Console(stderr=True), transient=True)
        display.start()
        return display

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """Show a bar for the duration of the block."""
        with self._lock:
            if self._display is None:
                self._display = self._open()
            self._active += 1
            display = self._display
            task_id = display.add_task(description, total=total)
        try:
            yield lambda n: display.advance(task_id, n)
        finally:
            with self._lock:
                display.remove_task(task_id)
                self._active -= 1
                if self._active == 0:
                    display.stop()
                    self._display = None


def reporter_for(*, quiet: bool) -> Reporter:
    """A terminal reporter when stderr is a terminal and output is not quiet, else silence."""
    return SilentReporter() if quiet or not sys.stderr.isatty() else TerminalReporter()
