"""Progress reporting for long work: bytes, rate and ETA on stderr, or nothing at all."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Protocol


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
    """A rich progress bar on stderr with bytes done, rate and time remaining."""

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """Show a bar for the duration of the block."""
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
        with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
            task_id = progress.add_task(description, total=total)
            yield lambda n: progress.advance(task_id, n)


def reporter_for(*, quiet: bool) -> Reporter:
    """A terminal reporter when stderr is a terminal and output is not quiet, else silence."""
    return SilentReporter() if quiet or not sys.stderr.isatty() else TerminalReporter()
