"""Tasks on several threads that stop together: the first failure stops all the others.

A parallel dump or restore runs one task per part or table. When one of them fails, the
others must not run on (a tool still writing, a query still loading), and the error
reported must be the one that stopped them, not what stopping did to the others.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")


class WorkerPool:
    """Tasks on up to *workers* threads; the first failure stops the others and is raised.

    A task registers how to stop its work (kill its tool, cancel its query) with
    :meth:`stoppable`, or looks at :attr:`stopped` between steps. When a task fails, every
    registered stop runs, queued tasks are dropped, and :meth:`run` raises the failure once
    every thread has finished. Failures that come after the stop are taken for its
    consequences (a killed tool, a cancelled query) and are not raised in its place.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self.stopped = threading.Event()
        """Set once a task has failed (or :meth:`run` was interrupted): the work is abandoned."""
        self._lock = threading.Lock()
        self._stops: dict[int, Callable[[], None]] = {}
        self._next_token = 0
        self._failed_after_stop: set[int] = set()

    @contextlib.contextmanager
    def stoppable(self, stop: Callable[[], None]) -> Iterator[None]:
        """Within the block, a failure elsewhere calls *stop* (from another thread)."""
        with self._lock:
            token = self._next_token
            self._next_token += 1
            self._stops[token] = stop
            already = self.stopped.is_set()
        if already:
            stop()
        try:
            yield
        finally:
            with self._lock:
                del self._stops[token]

    def stop(self) -> None:
        """Stop every task (idempotent); a stop that fails is ignored."""
        with self._lock:
            self.stopped.set()
            stops = list(self._stops.values())
        for stop in stops:
            with contextlib.suppress(Exception):
                stop()

    def run(self, tasks: Sequence[Callable[[], T]]) -> list[T]:
        """Run *tasks*; return their results in order, or raise the first failure.

        Of the failures that came before the stop, the first in task order is raised.
        Ctrl-C or SIGTERM while waiting stops the tasks rather than waiting for them to end.
        """
        if not tasks:
            return []
        with ThreadPoolExecutor(min(self.workers, len(tasks)), thread_name_prefix="worker") as pool:
            futures = [pool.submit(functools.partial(self._guarded, index, task)) for index, task in enumerate(tasks)]
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
            except BaseException:
                self._abandon(futures)
                raise
            if any(f.done() and f.exception() is not None for f in futures):
                self._abandon(futures)
        failures = [(i, e) for i, f in enumerate(futures) if not f.cancelled() and (e := f.exception()) is not None]
        if failures:
            raise next((e for i, e in failures if i not in self._failed_after_stop), failures[0][1])
        return [future.result() for future in futures]

    def _abandon(self, futures: Sequence[Future[T]]) -> None:
        """Stop every running task and drop the queued ones."""
        self.stop()
        for future in futures:
            future.cancel()

    def _guarded(self, index: int, task: Callable[[], T]) -> T:
        try:
            if self.stopped.is_set():
                raise _Stopped("stopped because another task failed")
            return task()
        except BaseException:
            if self.stopped.is_set():
                with self._lock:
                    self._failed_after_stop.add(index)
            raise


class _Stopped(Exception):
    """A task that never started because another one had failed."""
