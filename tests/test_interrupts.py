"""Interruptions around a restore's commit: held while it runs, reported truthfully afterwards (real signals)."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbkeeper.errors import Interrupted
from dbkeeper.system import interrupts
from dbkeeper.system.interrupts import CommitPoint
from helpers import BIN, dbkeeper, make_db


@pytest.fixture(autouse=True)
def handlers() -> Iterator[None]:
    """The CLI's handlers for the test, the previous ones afterwards."""
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    interrupts.install()
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def test_sigterm_during_the_commit_waits_for_it_and_says_the_target_was_replaced() -> None:
    point = CommitPoint()
    steps: list[str] = []
    with pytest.raises(Interrupted) as caught, interrupts.reported(point, "sqlite:///t.db", "B1"):
        with point.committing():
            os.kill(os.getpid(), signal.SIGTERM)
            steps.append("committed")  # the signal is held: the commit finishes
        steps.append("after")  # delivered as the window closes
    assert steps == ["committed"]
    assert point.state == CommitPoint.REPLACED
    assert "now holds backup B1" in caught.value.message
    assert interrupts.message(caught.value) == caught.value.message


def test_sigterm_before_the_commit_refuses_it_and_says_unchanged() -> None:
    point = CommitPoint()
    with pytest.raises(Interrupted) as caught, interrupts.reported(point, "sqlite:///t.db", "B1"):
        os.kill(os.getpid(), signal.SIGTERM)
        with point.committing():
            pytest.fail("an interrupted restore must not commit")
    assert point.state == CommitPoint.UNCHANGED
    assert "sqlite:///t.db is unchanged" in caught.value.message
    interrupts.install()  # forget the request for the next test


def test_a_commit_on_a_worker_thread_holds_the_signal_of_the_main_thread() -> None:
    point = CommitPoint()
    inside, release = threading.Event(), threading.Event()

    def commit() -> None:
        with point.committing():
            inside.set()
            release.wait(30)

    worker = threading.Thread(target=commit)
    with pytest.raises(Interrupted) as caught, interrupts.reported(point, "pg", "B2"):
        worker.start()
        inside.wait(30)
        os.kill(os.getpid(), signal.SIGTERM)  # held: the worker is committing
        release.set()
        worker.join()
        threading.Event().wait(5)  # the signal is raised again here, on the main thread
    assert "pg now holds backup B2" in caught.value.message


def test_partial_commits_say_partly_restored() -> None:
    point = CommitPoint()
    with point.committing(final=False):
        pass
    with pytest.raises(Interrupted) as caught, interrupts.reported(point, "pg", "B3"):
        raise KeyboardInterrupt
    assert "partly restored" in caught.value.message


def test_sigterm_during_a_sqlite_restore_says_the_target_is_unchanged(tmp_path: Path) -> None:
    """A real ``dbkeeper restore`` into an existing SQLite file, stopped while it writes beside the target."""
    source = make_db(tmp_path / "big.db", 60_000, blob_size=1000)  # ~60 MB: the restore runs long enough
    backups = tmp_path / "backups"
    ident = dbkeeper("--quiet", "backup", f"sqlite:///{source}", "--dir", str(backups)).out.strip()
    target = make_db(tmp_path / "target.db", 3)
    restore = subprocess.Popen(
        [str(BIN / "dbkeeper"), "restore", ident, f"sqlite:///{target}", "--force", "--dir", str(backups)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    while not list(tmp_path.glob(".target.db.dbkeeper-restore-*")):
        assert restore.poll() is None, restore.communicate()
        time.sleep(0.005)
    restore.send_signal(signal.SIGTERM)
    _, err = restore.communicate(timeout=120)
    assert restore.returncode == 130, err
    assert f"interrupted before the restore committed: sqlite:///{target} is unchanged" in err, err
    with contextlib.closing(sqlite3.connect(target)) as conn:
        assert conn.execute("SELECT count(*) FROM item").fetchone() == (3,)


def test_an_interruption_after_the_restore_finished_says_so() -> None:
    point = CommitPoint()
    with interrupts.reported(point, "sqlite:///t.db", "B4"), point.committing():
        pass
    try:
        raise KeyboardInterrupt  # while the CLI prints the result
    except KeyboardInterrupt as exc:
        said = interrupts.message(exc)
    assert said.startswith("interrupted after the restore finished: sqlite:///t.db holds backup B4"), said
    interrupts.install()  # forget it for the next test


def test_a_second_signal_during_the_commit_stops_it_at_once_and_says_the_outcome_is_unknown() -> None:
    point = CommitPoint()
    steps: list[str] = []
    with pytest.raises(Interrupted) as caught, interrupts.reported(point, "pg", "B5"), point.committing():
        os.kill(os.getpid(), signal.SIGTERM)  # held
        steps.append("held")
        os.kill(os.getpid(), signal.SIGTERM)  # stops now
        steps.append("not reached")
    assert steps == ["held"]
    assert point.state == CommitPoint.UNKNOWN
    assert "pg may be unchanged or may hold backup B5" in caught.value.message
    interrupts.install()
