"""Interruptions that say what is true: Ctrl-C and SIGTERM around the moment a restore commits.

A restore changes its target in one step — a ``COMMIT``, a rename, a ``RENAME TABLE``.
A driver wraps that step in :meth:`CommitPoint.committing` (reached through
:meth:`dbkeeper.plugin.restore.RestoreRequest.committing`):

- while the step runs, SIGINT and SIGTERM are *held* (when the CLI installed its handlers
  with :func:`install`) and delivered the moment it ends, so the process never stops
  between "the server committed" and "dbkeeper knows it did";
- an interruption that arrived before the step refuses to start it;
- when the step succeeds, the commit point records that the target now holds the backup.

:func:`reported` (used by the core around a restore) turns a ``KeyboardInterrupt`` into
an :class:`Interrupted` whose message says whether the target is still the old database
or already the restored one, and what was not checked yet. The CLI prints that message.

Engine-neutral: any thread may open a window (the PostgreSQL driver commits on worker
threads); Python runs signal handlers on the main thread, which is where the held
signal is raised again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from dbkeeper.errors import Interrupted

DEFAULT_MESSAGE = "interrupted; nothing partial was left behind"
"""What an interruption means when no restore had changed its target."""
HOLDING_NOTE = (
    "dbkeeper: the restore is committing; stopping as soon as the commit has finished "
    "(interrupt again to stop now, without knowing whether it committed)\n"
)
"""Printed to stderr when a signal arrives while a commit runs (it is delivered afterwards)."""

_lock = threading.RLock()
_open: list[CommitPoint] = []  # the commit points with a window open (one entry per window)
_held: int | None = None
_requested = False
_finished: str | None = None  # what an interruption means once a restore has finished (the CLI prints its result)


def _handle(signum: int, frame: FrameType | None) -> None:
    """SIGINT/SIGTERM: hold the signal while a commit runs, else unwind like Ctrl-C."""
    global _held, _requested
    with _lock:
        if _open and _held is None:
            _held = signum  # before the note: a second signal may run this handler again, nested, once it is out
            os.write(2, HOLDING_NOTE.encode())
            return
        for point in _open:  # a second signal during a commit: stop now, the outcome unknown
            point.state = CommitPoint.UNKNOWN
        _held, _requested = None, True
    raise KeyboardInterrupt


def install() -> None:
    """Make SIGINT and SIGTERM unwind as ``KeyboardInterrupt``, held during commits (main thread only)."""
    global _requested, _finished
    _requested, _finished = False, None
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _handle)


def message(exc: BaseException) -> str:
    """What to tell the user about interruption *exc* (an :class:`Interrupted`, or its cause)."""
    link: BaseException | None = exc
    while link is not None:
        if isinstance(link, Interrupted):
            return link.message
        link = link.__cause__ or link.__context__
    return _finished or DEFAULT_MESSAGE


class CommitPoint:
    """Where one restore stands: its target unchanged, partly written, replaced by the backup, or unknown.

    Unknown: a second signal stopped the restore while it was committing.
    """

    UNCHANGED = "unchanged"
    PARTIAL = "partial"
    REPLACED = "replaced"
    UNKNOWN = "unknown"

    def __init__(self) -> None:
        self.state = self.UNCHANGED

    @contextlib.contextmanager
    def committing(self, *, final: bool = True) -> Iterator[None]:
        """Hold SIGINT/SIGTERM while the block makes the target the restored database.

        On success the target counts as replaced (or, with ``final=False`` — one of several
        commits of a restore that is not one transaction — as partly restored). A signal
        that arrived during the block is delivered right after it; one that arrived before
        it raises ``KeyboardInterrupt`` here, and the block does not run. A second signal
        during the block raises ``KeyboardInterrupt`` at once, the outcome unknown.
        """
        with _lock:
            if _requested:
                raise KeyboardInterrupt
            _open.append(self)
        succeeded = False
        try:
            yield
            succeeded = True
        finally:
            self._close(succeeded, final)

    def partly(self) -> None:
        """The driver starts changing the target in place, step by step (a restore that is not one transaction)."""
        with _lock:
            if self.state == self.UNCHANGED:
                self.state = self.PARTIAL

    def finished(self) -> None:
        """Every step of a restore that is not one transaction has completed: the target holds the backup."""
        with _lock:
            self.state = self.REPLACED

    def undone(self) -> None:
        """The driver has taken its changes back (a database it created was dropped again)."""
        self.state = self.UNCHANGED

    def _close(self, succeeded: bool, final: bool) -> None:
        global _held
        with _lock:
            if succeeded:
                if final:
                    self.state = self.REPLACED
                else:
                    self.partly()
            _open.remove(self)
            held, _held = (_held, None) if not _open else (None, _held)
        if held is not None:  # to the main thread, which runs the handler (now unheld), waking it from a wait
            signal.pthread_kill(threading.main_thread().ident or 0, held)


@contextlib.contextmanager
def reported(point: CommitPoint, target: str, backup_id: str, show: str | None = None) -> Iterator[None]:
    """Turn an interruption of the block (a restore of *backup_id* into *target*) into an :class:`Interrupted`.

    *show* is the command that shows the backup (with the ``--dir`` it is in), for the message.
    Once the block has succeeded, an interruption (while the result is printed) says that
    the restore finished.
    """
    global _finished
    try:
        yield
    except KeyboardInterrupt as exc:
        if isinstance(exc, Interrupted):
            raise
        show = show or f"dbkeeper backups show {backup_id}"
        raise Interrupted(_outcome(point.state, target, backup_id, show)) from None
    _finished = f"interrupted after the restore finished: {target} holds backup {backup_id}, its row counts checked"


def _outcome(state: str, target: str, backup_id: str, show: str) -> str:
    if state == CommitPoint.REPLACED:
        return (
            f"interrupted after the restore committed: {target} now holds backup {backup_id}, but its row counts "
            f"were not compared with the backup's; compare them with '{show}', or "
            "restore again with --force"
        )
    if state == CommitPoint.UNKNOWN:
        return (
            f"interrupted again while the restore was committing: {target} may be unchanged or may hold backup "
            f"{backup_id}; compare its row counts with '{show}', or restore again with --force"
        )
    if state == CommitPoint.PARTIAL:
        return (
            f"interrupted during the restore: {target} is partly restored from backup {backup_id}; drop it and "
            "restore again"
        )
    return f"interrupted before the restore committed: {target} is unchanged; nothing partial was left behind"
