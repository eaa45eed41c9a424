"""A PostgreSQL "server" that accepts connections and never answers: every command gives up, in one line (item 11).

The server is a real listening socket on 127.0.0.1 (a thread accepting connections and
reading whatever comes, never replying). Without ``connect_timeout`` in the URL the
default (10 s) applies; with it, the URL's value.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import BIN, Run, assert_one_line_error

HANG = 90
"""Seconds after which a command counts as hanging (libpq alone waited about 130 s)."""


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 whose listener accepts every connection and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)  # accept() wakes up to see stop: closing the socket does not wake it
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)  # kept open, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()
    for conn in accepted:
        conn.close()
    thread.join(10)


def run(*args: str, cwd: Path) -> Run:
    """``dbkeeper ARGS``; a command still running after HANG seconds fails the test."""
    try:
        proc = subprocess.run([str(BIN / "dbkeeper"), *args], cwd=cwd, capture_output=True, text=True, timeout=HANG)
    except subprocess.TimeoutExpired:
        pytest.fail(f"dbkeeper {' '.join(args)} still waited for the silent server after {HANG} s")
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.parametrize(
    "command",
    [("query", "{url}", "SELECT 1"), ("connections", "test", "{url}"), ("backup", "{url}", "--dir", "bk")],
    ids=["query", "connections-test", "backup"],
)
def test_a_silent_server_is_given_up_on_after_the_urls_connect_timeout(
    silent_port: int, tmp_path: Path, command: tuple[str, ...]
) -> None:
    url = f"postgresql://app:pw-never-shown@127.0.0.1:{silent_port}/app?connect_timeout=2"
    result = run(*(part.format(url=url) for part in command), cwd=tmp_path)
    assert_one_line_error(
        result, f"cannot connect to postgresql://app:***@127.0.0.1:{silent_port}/app", "within connect_timeout=2 s"
    )
    assert "pw-never-shown" not in result.err


def test_a_silent_server_is_given_up_on_by_default(silent_port: int, tmp_path: Path) -> None:
    result = run("connections", "test", f"postgresql://app:pw@127.0.0.1:{silent_port}/app", cwd=tmp_path)
    assert_one_line_error(result, "cannot connect to", "did not answer within 10 s", "?connect_timeout=SECONDS")
