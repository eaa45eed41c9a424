"""A backup's first server work, begun on a thread of its own while the core sets up.

The usual value of a driver's ``DriverInfo.prepare_backup``: the core knows the URL and
the options of a backup some 15 to 25 ms (measured) before it calls the dump (it still
imports and builds the backup's storage, its stages, its draft). A :class:`HeadStart` spends them on the
server: it enters the driver's context manager (a connection, a catalog query) on a
thread while the command goes on, and the dump takes its value with :meth:`HeadStart.taken`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Generic, TypeVar, cast

from dbkeeper.plugin.workers import WorkerPool

T = TypeVar("T")

UNDERWAY_SECONDS = 0.05
"""How long :meth:`HeadStart.started` waits at most for the opening's first child process (``underway=True``)."""

Opening = Callable[[WorkerPool], AbstractContextManager[T]]
"""What a head start enters on its thread; it registers how to stop its waits with ``stops.stoppable(…)``."""


class HeadStart(Generic[T]):
    """The value of ``opening(stops)``, entered on a thread of its own; the dump takes it with :meth:`taken`.

    *opening* registers how to stop what it waits for (kill the client it started) with
    ``stops.stoppable(stop)``, as a :class:`~dbkeeper.plugin.WorkerPool` task does, and
    may look at ``stops.stopped`` before a step that cannot be stopped. Errors raised by
    *opening* are raised by :meth:`taken`, where the dump would have raised them itself.
    When the value is never taken (the backup failed or was interrupted before its dump),
    the end of :meth:`started` stops the work, waits for the thread and closes whatever
    *opening* had opened: no thread and no child process outlives the command.
    """

    def __init__(self, opening: Opening[T]) -> None:
        self._opening = opening
        self._stops = _Stops()
        self._opened = contextlib.ExitStack()
        self._value: T | None = None
        self._error: BaseException | None = None
        self._taken = False
        self._thread = threading.Thread(target=self._open, name="head start", daemon=True)

    @classmethod
    @contextlib.contextmanager
    def started(cls, opening: Opening[T], *, underway: bool = False) -> Iterator[HeadStart[T]]:
        """Start *opening* on its thread for the block; afterwards stop it if it was not taken, and close it.

        With *underway*, the command waits (at most :data:`UNDERWAY_SECONDS`) until *opening*
        has registered its first stop, that is until its first client runs, or has ended:
        for a head start that takes longer than the core's set-up, whose first steps would
        otherwise wait for the interpreter while the core imports (measured: PostgreSQL's
        snapshot, 6-9 ms sooner; MariaDB's ``mariadb-dump``, started before its facts query, 4-6 ms).
        """
        head = cls(opening)
        head._thread.start()
        try:
            if underway:  # an interrupt while waiting still stops the opening (finally, below)
                head._stops.underway.wait(UNDERWAY_SECONDS)
            yield head
        finally:
            head._close()

    def _open(self) -> None:
        try:
            self._value = self._opened.enter_context(self._opening(self._stops))
        except BaseException as exc:  # raised by taken(), in the thread that dumps
            self._error = exc
        finally:
            self._stops.underway.set()

    @contextlib.contextmanager
    def taken(self) -> Iterator[T]:
        """Wait for the opening to finish and hold its value for the block; its error is raised here.

        What it opened is closed when the block ends. Once only.
        """
        if self._taken:
            raise RuntimeError("a head start is taken once")
        self._taken = True
        self._thread.join()
        with self._opened:
            if self._error is not None:
                raise self._error
            yield cast(T, self._value)

    def _close(self) -> None:
        """Stop the work (nothing is left to stop once taken), wait for the thread, close what it opened."""
        self._stops.stop()
        self._thread.join()
        with contextlib.suppress(Exception):  # not taken: the error that ended the backup is the one to report
            self._opened.close()  # taken: already closed by taken(), which raised what closing raised


class _Stops(WorkerPool):
    """The head start's stops; :attr:`underway` is set once the opening has registered its first one."""

    def __init__(self) -> None:
        super().__init__(1)
        self.underway = threading.Event()

    @contextlib.contextmanager
    def stoppable(self, stop: Callable[[], None]) -> Iterator[None]:
        """As :meth:`WorkerPool.stoppable`; the first registration means a child process of the opening runs."""
        with super().stoppable(stop):
            self.underway.set()
            yield
