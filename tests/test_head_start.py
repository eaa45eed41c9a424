"""HeadStart: a driver's first server work on a thread of its own, taken by the dump or stopped and cleaned up.

Real threads and a real child process (``sleep``) stand for a client connecting to a
server; a driver without ``prepare_backup`` (SQLite) backs up as before.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbkeeper.connections.urls import DatabaseURL
from dbkeeper.errors import DatabaseError
from dbkeeper.plugin import HeadStart, Tool, WorkerPool
from dbkeeper.plugin.manager import load_plugins
from helpers import dbkeeper


def head_start_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "head start"]


class Sleeper:
    """An opening that starts a child which would wait for a minute, as a client connecting to a silent server."""

    def __init__(self) -> None:
        self.tool: Tool | None = None
        self.closed = False
        self.started = threading.Event()

    @contextlib.contextmanager
    def __call__(self, stops: WorkerPool) -> Iterator[str]:
        self.tool = Tool(["sleep", "60"], env=None, stdin=False, stdout=True)
        try:
            with stops.stoppable(self.tool.kill):
                self.started.set()
                self.tool.stdout.read()  # returns when the child ends: killed, or after 60 s
                if stops.stopped.is_set():
                    raise DatabaseError("stopped")
                yield "answered"
        finally:
            self.tool.kill()
            self.closed = True


def test_work_never_taken_is_killed_waited_for_and_closed() -> None:
    sleeper = Sleeper()
    with pytest.raises(KeyError), HeadStart.started(sleeper):
        assert sleeper.started.wait(30)
        raise KeyError("the core's set-up failed")  # the error the command reports, not the stopped work's
    assert sleeper.tool is not None and sleeper.tool.process.returncode is not None  # killed and reaped
    assert head_start_threads() == []


def test_the_dump_gets_the_value_and_what_was_opened_is_closed_after_its_block() -> None:
    @contextlib.contextmanager
    def opening(stops: WorkerPool) -> Iterator[list[str]]:
        log = ["opened"]
        yield log
        log.append("closed")

    with HeadStart.started(opening) as head:
        with head.taken() as value:
            assert value == ["opened"]
        assert value == ["opened", "closed"]
        with pytest.raises(RuntimeError), head.taken():
            pass
    assert head_start_threads() == []


def test_an_error_of_the_work_is_raised_by_the_dump_as_it_was() -> None:
    failure = DatabaseError("cannot connect to postgresql://app:***@db/app: password authentication failed")

    def opening(stops: WorkerPool) -> contextlib.AbstractContextManager[None]:
        raise failure

    with HeadStart.started(opening) as head, pytest.raises(DatabaseError) as raised, head.taken():
        pass
    assert raised.value is failure
    assert head_start_threads() == []


def test_a_driver_without_prepare_backup_backs_up_as_before(tmp_path: Path) -> None:
    database = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(database)) as conn:
        conn.execute("CREATE TABLE t (id INTEGER)")
        conn.commit()
    url = DatabaseURL.parse(f"sqlite:///{database}")
    driver = load_plugins().driver_for(url)
    assert driver.info.prepare_backup is None
    with driver.prepare_backup(url, driver.backup_format(None), driver.options_for("backup", {})) as prepared:
        assert prepared is None
    backup_id = dbkeeper("backup", f"sqlite:///{database}", "--dir", str(tmp_path / "b")).out.strip()
    assert dbkeeper("verify", backup_id, "--dir", str(tmp_path / "b")).code == 0


def test_underway_goes_on_once_the_first_client_runs() -> None:
    """``underway=True``: the block starts after the opening's first child runs, without waiting for the rest."""
    sleeper = Sleeper()
    with HeadStart.started(sleeper, underway=True):
        assert sleeper.tool is not None and sleeper.tool.process.poll() is None, "the client runs before the block"
        assert not sleeper.closed  # not taken: the end of the block stops the sleeping client
    assert sleeper.tool.process.poll() is not None and not head_start_threads()


def test_underway_is_bounded_for_an_opening_that_starts_no_child() -> None:
    """An opening that never starts a client (here: one waiting on an event) does not hold the command."""
    release = threading.Event()

    @contextlib.contextmanager
    def waiting(stops: WorkerPool) -> Iterator[str]:
        release.wait(60)
        yield "opened"

    with HeadStart.started(waiting, underway=True) as head:
        assert not release.is_set()
        release.set()
        with head.taken() as value:
            assert value == "opened"


def test_an_interrupt_while_waiting_for_underway_still_stops_the_opening() -> None:
    """Ctrl-C arriving while ``started(underway=True)`` waits: the opening is stopped and its thread ends."""
    release = threading.Event()

    @contextlib.contextmanager
    def slow_to_start(stops: WorkerPool) -> Iterator[str]:
        time.sleep(0.2)  # its first client is not running yet when the interrupt comes
        with stops.stoppable(release.set):
            release.wait(60)
            yield "opened"

    interrupt = threading.Timer(0.01, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    interrupt.start()
    with pytest.raises(KeyboardInterrupt), HeadStart.started(slow_to_start, underway=True):
        time.sleep(5)  # not reached: the interrupt comes at 0.01 s, during the wait (bounded at 0.05 s)
    interrupt.join()
    assert release.is_set(), "the opening's stop ran"
    assert not head_start_threads()
