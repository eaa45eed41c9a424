"""One query per item, on up to one connection per CPU at once: the restore's row counts, the drill's amcheck.

The items start biggest first (so that the longest one does not start last): each
connection takes the next one as soon as it is free. The results come in the items' order. One
connection is the caller's; the others are opened here and closed when their work is
done. One that cannot be opened (a server at its ``max_connections``) leaves the work to
the others: the result is the same, only slower. The first failure cancels the queries
of the other connections and is raised (:class:`~dbkeeper.plugin.WorkerPool`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

from dbkeeper.plugin import DatabaseError, WorkerPool

if TYPE_CHECKING:
    import psycopg

    Connection = psycopg.Connection[tuple[object, ...]]

T = TypeVar("T")
R = TypeVar("R")


def workers_for(items: int) -> int:
    """How many connections work on *items* at once: one per CPU, no more than there are items."""
    return max(1, min(os.cpu_count() or 1, items))


def on_connections(
    first: Connection,
    connect: Callable[[], Connection],
    items: Sequence[T],
    work: Callable[[Connection, T], R],
    *,
    size: Callable[[T], int],
) -> list[R]:
    """``work(connection, item)`` for every item, biggest *size* first, on *first* and up to one more per CPU.

    Returns the results in the order of *items*.
    """
    queue: _Queue[T, R] = _Queue(items, size)
    pool = WorkerPool(workers_for(len(items)))
    tasks = [functools.partial(queue.drain, pool, first, work)]
    tasks += [functools.partial(_drain_own, queue, pool, connect, work)] * (pool.workers - 1)
    pool.run(tasks)
    return queue.results()


def _drain_own(
    queue: _Queue[T, R], pool: WorkerPool, connect: Callable[[], Connection], work: Callable[[Connection, T], R]
) -> None:
    """Work through *queue* on a connection of its own (none when it cannot be opened: the others do the work)."""
    with _opened(connect) as connection:
        if connection is not None:
            queue.drain(pool, connection, work)


@contextlib.contextmanager
def _opened(connect: Callable[[], Connection]) -> Iterator[Connection | None]:
    """A new connection, closed at the end of the block; None when it cannot be opened."""
    try:
        connection = connect()
    except DatabaseError:
        yield None
        return
    with connection:
        yield connection


class _Queue(Generic[T, R]):
    """The items not started yet, and the results of those done."""

    def __init__(self, items: Sequence[T], size: Callable[[T], int]) -> None:
        self._pending = iter(sorted(enumerate(items), key=lambda pair: -size(pair[1])))
        self._items = len(items)
        self._results: dict[int, R] = {}
        self._lock = threading.Lock()

    def drain(self, pool: WorkerPool, connection: Connection, work: Callable[[Connection, T], R]) -> None:
        """Take items until none is left (or the pool stopped), running *work* on *connection*."""
        with pool.stoppable(connection.cancel_safe):
            while not pool.stopped.is_set() and (taken := self._take()) is not None:
                index, item = taken
                self._results[index] = work(connection, item)

    def _take(self) -> tuple[int, T] | None:
        with self._lock:
            return next(self._pending, None)

    def results(self) -> list[R]:
        """Every item's result, in item order (all items were done: :meth:`WorkerPool.run` raised otherwise)."""
        return [self._results[index] for index in range(self._items)]
