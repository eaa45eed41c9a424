"""``dbkeeper top`` in a real terminal: tmux runs it in a 160x40 pane, the tests read the screen and type keys.

Each test starts a tmux server of its own (``tmux -S``: a fresh socket in the temp dir,
removed afterwards; no configuration file) whose pane runs ``dbkeeper top …; echo "top
exited $?"; stty -a``: once top has quit, the pane shows its exit status and the
terminal's settings as top left them (canonical mode and echo back on). Waits poll the screen with a generous timeout
and fail with the last screen; nothing is timed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pymysql
import pytest

from helpers import BIN, dbkeeper

if TYPE_CHECKING:
    from mariadb_server import MariaDBServer
    from pg_server import Server

WAIT = 60.0  # seconds a screen may take to show what a test waits for (a loaded machine)
_sockets = itertools.count(1)


class Terminal:
    """A tmux pane running one shell command, on a tmux server of its own."""

    def __init__(self, command: str, env: dict[str, str]) -> None:
        self.socket = Path(tempfile.gettempdir()) / f"dbkeeper-top-{os.getpid()}-{next(_sockets)}.tmux"
        self.tmux("new-session", "-d", "-s", "top", "-x", "160", "-y", "40", command, env=env)
        self.tmux("set-option", "-t", "top", "remain-on-exit", "on")

    def tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Run a tmux command against this terminal's server; return its output."""
        tmux = shutil.which("tmux")
        if tmux is None:
            pytest.fail("tmux is not installed: run bash scripts/ensure-packages.sh", pytrace=False)
        argv = [tmux, "-S", str(self.socket), "-f", "/dev/null", *args]
        return subprocess.run(argv, env=env, check=True, capture_output=True, text=True, timeout=30).stdout

    def screen(self, *, history: bool = False) -> str:
        """What the pane shows now (with *history*: and the lines scrolled out of it)."""
        return self.tmux("capture-pane", "-p", "-t", "top", *(("-S", "-") if history else ()))

    def wait_for(self, what: str, shown: Callable[[str], bool]) -> str:
        """The first screen for which *shown* is true; fails, naming *what*, after :data:`WAIT` seconds."""
        deadline = time.monotonic() + WAIT
        while not shown(screen := self.screen()):
            if time.monotonic() > deadline:
                pytest.fail(f"the screen did not show {what} within {WAIT:g}s; it shows:\n{screen}")
            time.sleep(0.2)
        return screen

    def keys(self, *keys: str) -> None:
        """Type *keys* (tmux key names: ``q``, ``C-c``)."""
        self.tmux("send-keys", "-t", "top", *keys)

    def exited(self) -> str:
        """The pane's whole output once its command has ended (top quit, the shell printed its status)."""
        self.wait_for("top's exit", lambda _: self.tmux("display-message", "-p", "-t", "top", "#{pane_dead}") == "1\n")
        return self.screen(history=True)

    def close(self) -> None:
        """End the tmux server and everything in it; remove its socket (tmux leaves it)."""
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, timeout=30)
        self.socket.unlink(missing_ok=True)


@pytest.fixture
def terminal() -> Iterator[Callable[..., Terminal]]:
    """``terminal(*top_args)`` runs ``dbkeeper top TOP_ARGS`` in a new tmux pane; every pane is closed at the end."""
    opened: list[Terminal] = []

    def open_top(*args: str) -> Terminal:
        top = shlex.join([str(BIN / "dbkeeper"), "top", *args])
        env = {**os.environ, "NO_COLOR": "1", "LANG": "C.UTF-8"}
        env.pop("TMUX", None)
        opened.append(Terminal(f'{top}; echo "top exited $?"; stty -a', env))
        return opened[-1]

    yield open_top
    for term in opened:
        term.close()


def header(screen: str) -> str:
    """The view's first line."""
    return screen.splitlines()[0] if screen.strip() else ""


def clock(screen: str) -> str | None:
    """The time of the reading shown in the header (``at 12:34:56``)."""
    found = re.search(r"· at (\d\d:\d\d:\d\d)\b", header(screen))
    return found.group(1) if found else None


def gauge(screen: str, name: str) -> str | None:
    """The value shown for gauge *name* in the "now" table."""
    found = re.search(rf"\b{re.escape(name)}\s+(\S+(?: \S+)?)\s*$", screen, re.MULTILINE)
    return found.group(1) if found else None


def assert_quit_cleanly(screen: str) -> None:
    """top exited 0 and left the terminal in canonical mode with echo, as it found it."""
    assert "top exited 0" in screen, screen
    settings = screen[screen.index("top exited 0") :].split()
    assert "icanon" in settings and "echo" in settings, screen
    assert "-icanon" not in settings and "-echo" not in settings, screen


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A SQLite file with one table of 2,000 rows."""
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        db.executemany("INSERT INTO items (name) VALUES (?)", [("x" * 100,)] * 2000)
    return path


def test_top_needs_a_terminal() -> None:
    run = dbkeeper("top", "sqlite:///nowhere.db", check=False)
    assert run.code == 2
    assert run.err.splitlines() == [
        "error: dbkeeper top needs a terminal on stdin and stdout; "
        "for one reading as data use: dbkeeper metrics CONNECTION --format json"
    ]


def test_top_draws_a_sqlite_file_refreshes_and_quits_on_q(terminal: Callable[..., Terminal], shop: Path) -> None:
    term = terminal("--interval", "0.5", f"sqlite:///{shop}")
    first = term.wait_for("the SQLite file's figures", lambda s: gauge(s, "sqlite_pages") is not None)
    assert "(sqlite 3." in header(first) and "q quit" in first
    pages = gauge(first, "sqlite_pages")
    term.wait_for("a new reading's time", lambda s: clock(s) not in (None, clock(first)))
    with sqlite3.connect(shop) as db:
        db.executemany("INSERT INTO items (name) VALUES (?)", [("y" * 100,)] * 2000)
    term.wait_for("the file's new page count", lambda s: gauge(s, "sqlite_pages") not in (None, pages))
    term.keys("q")
    assert_quit_cleanly(term.exited())


def test_ctrl_c_quits_top_with_exit_0(terminal: Callable[..., Terminal], shop: Path) -> None:
    term = terminal(f"sqlite:///{shop}")
    term.wait_for("the view", lambda s: gauge(s, "sqlite_pages") is not None)
    term.keys("C-c")
    assert_quit_cleanly(term.exited())


def test_a_database_that_goes_away_shows_down_and_is_read_again(terminal: Callable[..., Terminal], shop: Path) -> None:
    term = terminal("--interval", "0.5", f"sqlite:///{shop}")
    term.wait_for("the view", lambda s: gauge(s, "sqlite_pages") is not None)
    away = shop.rename(shop.with_name("away.db"))
    down = term.wait_for("the database down", lambda s: "down: " in s)
    assert "does not exist" in down and "trying again every 0.5s" in down
    away.rename(shop)
    term.wait_for("the database back", lambda s: "down: " not in s and gauge(s, "sqlite_pages") is not None)
    term.keys("q")
    assert_quit_cleanly(term.exited())


def test_top_lists_a_sleeping_postgresql_session(terminal: Callable[..., Terminal], pg: Server) -> None:
    from pg_server import APP_PASSWORD, APP_USER

    database = pg.app_database("watched", "CREATE TABLE t (id int)")
    sleeper_url = f"postgresql://{APP_USER}@127.0.0.1:{pg.port}/{database}"
    sleeper = subprocess.Popen(
        ["psql", "-X", "-q", "-d", sleeper_url, "-c", "SELECT pg_sleep(120)"],
        env={**os.environ, "PGPASSWORD": APP_PASSWORD},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        term = terminal("--interval", "0.5", pg.url(database))
        screen = term.wait_for("the pg_sleep session", lambda s: "SELECT pg_sleep(120)" in s)
        row = next(line for line in screen.splitlines() if "SELECT pg_sleep(120)" in line)
        assert APP_USER in row and database in row and "active" in row and "PgSleep" in row
        assert "(postgresql 15." in header(screen) and "connections " in header(screen)
        assert APP_PASSWORD not in screen and "***" in header(screen)
        term.wait_for("a new reading's time", lambda s: clock(s) not in (None, clock(screen)))
        term.keys("q")
        assert_quit_cleanly(term.exited())
    finally:
        sleeper.terminate()
        sleeper.wait(timeout=60)


def test_top_shows_which_mariadb_session_blocks_another(
    terminal: Callable[..., Terminal], mariadb: MariaDBServer
) -> None:
    mariadb.recreate("watched")
    mariadb.execute(
        "CREATE TABLE t (id int PRIMARY KEY, n int) ENGINE=InnoDB", "INSERT INTO t VALUES (1, 0)", database="watched"
    )
    with contextlib.closing(mariadb.admin("watched")) as holder, contextlib.closing(mariadb.admin("watched")) as waiter:
        with holder.cursor() as cursor:
            cursor.execute("SELECT CONNECTION_ID()")
            ((holder_id,),) = cursor.fetchall()
            cursor.execute("BEGIN")
            cursor.execute("SELECT n FROM t WHERE id = 1 FOR UPDATE")
        blocked = threading.Thread(target=lambda: _wait_for_row_lock(waiter), daemon=True)
        blocked.start()
        term = terminal("--interval", "0.5", mariadb.url("watched"))
        screen = term.wait_for("the waiting UPDATE", lambda s: "UPDATE t SET n = n + 1" in s)
        row = next(line for line in screen.splitlines() if "UPDATE t SET n = n + 1" in line)
        assert f" {holder_id} " in f" {row} ", row  # the BLOCKED BY column names the holder
        assert "(mysql 10." in header(screen)
        term.keys("q")
        assert_quit_cleanly(term.exited())
        holder.rollback()
        blocked.join(timeout=60)


def _wait_for_row_lock(connection: pymysql.connections.Connection) -> None:
    """Run an UPDATE that waits for the row lock another session holds (a lock wait timeout ends it)."""
    with contextlib.suppress(pymysql.err.OperationalError), connection.cursor() as cursor:
        cursor.execute("SET SESSION innodb_lock_wait_timeout = 120")
        cursor.execute("UPDATE t SET n = n + 1 WHERE id = 1")
