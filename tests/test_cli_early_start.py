"""A backup's head start begun from the arguments (dbkeeper.cli.early), before the commands are imported.

Against a listener that accepts and never answers, so what the command line begins is seen as a
connection: ``--help`` begins nothing, a usage error or an interrupt stops what was begun, and
no client is left running afterwards.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from dbkeeper.cli.early import backup_url
from helpers import BIN, WAIT, dbkeeper, eventually


class Listener:
    """A port on 127.0.0.1 that accepts every connection, counts it, and never answers."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.socket.settimeout(0.1)
        self.port: int = self.socket.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.done = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.done.is_set():
            with suppress(TimeoutError, OSError):
                self.accepted.append(self.socket.accept()[0])

    def close(self) -> None:
        """Stop accepting; close every socket."""
        self.done.set()
        for sock in [self.socket, *self.accepted]:
            sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    made = Listener()
    yield made
    made.close()


def url_of(listener: Listener) -> str:
    return f"postgresql://keeper@127.0.0.1:{listener.port}/shop?connect_timeout=30"


def clients_of(listener: Listener) -> list[int]:
    """Processes whose command line names the listener's port (psql, pg_dump): none may be left."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with suppress(OSError):
            if f"port={listener.port}" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                found.append(int(pid))
    return found


@pytest.mark.parametrize(
    ("args", "url"),
    [
        (["backup", "pg://h/db"], "pg://h/db"),
        (["-q", "--debug", "--config", "x.toml", "backup", "pg://h/db", "--dir", "b"], "pg://h/db"),
        (["--config=x.toml", "-q", "backup", "pg://h/db", "--json"], "pg://h/db"),
        (["backup", "pg://h/db", "--help"], None),
        (["backup", "-h", "pg://h/db"], None),
        (["backup", "--dir", "s3://b/p", "pg://h/db"], None),
        (["backup", "production"], None),
        (["restore", "latest", "pg://h/db"], None),
        (["backup"], None),
    ],
)
def test_only_a_backup_of_a_url_right_after_the_command_begins_early(args: list[str], url: str | None) -> None:
    assert backup_url(args) == url


def test_help_connects_nowhere_while_a_usage_error_stops_what_was_begun(listener: Listener) -> None:
    shown = dbkeeper("backup", url_of(listener), "--help")
    assert "Usage: dbkeeper backup" in shown.out
    assert not listener.accepted, "--help began no head start"
    started = time.monotonic()
    refused = dbkeeper("backup", url_of(listener), "--no-such-flag", check=False)
    assert refused.code == 2 and "No such option" in refused.err
    assert time.monotonic() - started < 20, "the usage error did not wait for the silent server"
    assert listener.accepted, "the head start was begun before the arguments were parsed"
    assert not clients_of(listener), "the client it started was stopped"


def test_an_interrupt_while_the_begun_head_start_waits_leaves_nothing_running(
    listener: Listener, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        [str(BIN / "dbkeeper"), "backup", url_of(listener), "--dir", str(tmp_path / "bk")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    eventually(lambda: listener.accepted or None, "a connection from the head start")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("interrupted"), err
    assert "Traceback" not in err
    assert not clients_of(listener)
    assert not list((tmp_path / "bk").glob("2*")), "no backup directory is left"
