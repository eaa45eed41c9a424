"""Bounded waits: a server that accepts the connection and never answers, and one connection-failure message.

The silent server is a real listening socket on 127.0.0.1 that accepts connections and
never writes a byte, as a hung server or a wrong port behind a proxy does.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from pathlib import Path

import pytest
from mariadb_server import MariaDBServer

from dbkeeper.connections.urls import DatabaseURL
from dbkeeper.errors import DatabaseError
from dbkeeper_mysql.load import ClientLoader
from dbkeeper_mysql.server import ServerTarget, Timeouts, tool_errors
from helpers import assert_one_line_error, dbkeeper

COMMANDS = {
    "query": ("query", "{url}", "SELECT 1"),
    "connections test": ("connections", "test", "{url}"),
    "backup": ("backup", "{url}", "--dir", "{dir}"),
}


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 whose listener accepts every connection and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept_until_done() -> None:
        while not done.is_set():
            with suppress(TimeoutError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept_until_done, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        thread.join()
        listener.close()
        for conn in accepted:
            conn.close()


def _refused_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(command: str, url: str, tmp_path: Path, tools: str = "auto") -> str:
    args = [part.format(url=url, dir=tmp_path / "bk") for part in COMMANDS[command]]
    run = dbkeeper(*args, env={"DBKEEPER_MYSQL_TOOLS": tools}, check=False)
    assert_one_line_error(run, "cannot connect to")
    return run.err.strip()


@pytest.mark.parametrize(("command", "tools"), [*((name, "auto") for name in COMMANDS), ("backup", "python")])
def test_a_silent_server_is_given_up_on_after_connect_timeout(
    silent_port: int, tmp_path: Path, command: str, tools: str
) -> None:
    """Before: every command waited for ever (and ``connect_timeout`` was refused as a parameter)."""
    url = f"mysql://app:pw@127.0.0.1:{silent_port}/shop?connect_timeout=1"
    message = _run(command, url, tmp_path, tools)
    assert "no answer within 1 s (connect_timeout" in message
    assert "pw" not in message.replace("mysql://app:***", "")


def test_every_path_reports_a_refused_connection_the_same_way(tmp_path: Path) -> None:
    """Before: ``backup`` printed ``(2003) Can't connect…`` and ``query`` ``OperationalError: (2003, "Can't…")``."""
    url = f"mysql://app:pw@127.0.0.1:{_refused_port()}/shop"
    messages = {_run(command, url, tmp_path) for command in COMMANDS}
    messages.add(_run("backup", url, tmp_path, tools="python"))
    assert len(messages) == 1, messages
    (message,) = messages
    assert message.startswith(f"error: cannot connect to mysql://app:***@127.0.0.1:{url.split(':')[3]}")
    assert "(2003) Can't connect to MySQL server" in message


def test_the_timeouts_are_bounded_by_default_and_set_by_the_url(mariadb: MariaDBServer) -> None:
    defaults = ServerTarget.from_url(DatabaseURL.parse(mariadb.url("mysql")))
    assert defaults.timeouts == Timeouts(connect=10, read=600, write=600, lock_wait=60)
    with closing(defaults.connect()) as conn:
        assert (conn.connect_timeout, conn._read_timeout, conn._write_timeout) == (10, 600, 600)
    given = mariadb.url("mysql") + "?connect_timeout=3&read_timeout=4&write_timeout=5&lock_wait_timeout=6"
    target = ServerTarget.from_url(DatabaseURL.parse(given))
    assert target.timeouts == Timeouts(connect=3, read=4, write=5, lock_wait=6)
    with closing(target.connect()) as conn:
        assert (conn.connect_timeout, conn._read_timeout, conn._write_timeout) == (3, 4, 5)


def test_the_client_tools_get_the_connect_timeout(mariadb: MariaDBServer) -> None:
    target = ServerTarget.from_url(DatabaseURL.parse(mariadb.url("mysql") + "?connect_timeout=7"))
    with target.option_file() as path:
        lines = Path(path).read_text().splitlines()
    assert lines[-2:] == ["[mysql]", "connect-timeout=7"]


def test_a_query_longer_than_read_timeout_fails(mariadb: MariaDBServer) -> None:
    run = dbkeeper("query", mariadb.url("mysql") + "?read_timeout=1", "SELECT SLEEP(5)", check=False)
    assert_one_line_error(run, "timed out")


@pytest.mark.parametrize("value", ["0", "-1", "ten", "1.5", "99999999999"])
def test_bad_timeouts_are_one_line_errors(value: str) -> None:
    run = dbkeeper("query", f"mysql://app:pw@127.0.0.1/shop?read_timeout={value}", "SELECT 1", check=False)
    assert_one_line_error(run, f"read_timeout={value!r}", "whole seconds from 1 to 31536000")


DUMP_TOOLS = frozenset({"mariadb-dump", "mysqldump"})
"""The programs whose connections a :class:`Proxy` singles out (``/proc/PID/comm``)."""


def _socket_inode(local_port: int, remote_port: int) -> str | None:
    """The inode of the IPv4 TCP socket from 127.0.0.1:*local_port* to *remote_port* (``/proc/net/tcp``)."""
    wanted = (f"0100007F:{local_port:04X}", f"0100007F:{remote_port:04X}")
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (fields[1], fields[2]) == wanted:
            return fields[9]
    return None


def connecting_program(peer_port: int, proxy_port: int) -> str:
    """The name of the local program whose socket from *peer_port* reached *proxy_port* ("" when it is gone)."""
    link = f"socket:[{_socket_inode(peer_port, proxy_port)}]"
    for fds in Path("/proc").glob("[0-9]*/fd"):
        with suppress(OSError):  # a process that ended, or another user's
            if any(os.readlink(fd) == link for fd in fds.iterdir()):
                return (fds.parent / "comm").read_text().strip()
    return ""


class Proxy:
    """A proxy on 127.0.0.1 to the server that treats each connection by the program that made it.

    Connections of the dump tools (:data:`DUMP_TOOLS`) get *dump*, the others (the ``mariadb``
    client, PyMySQL in dbkeeper) get *others*: ``"forward"`` to the server, ``"close"``
    (accepted and closed at once: a server dropping the connection before its greeting) or
    ``"silent"`` (accepted and never answered).
    """

    def __init__(self, server_port: int, *, dump: str, others: str = "forward") -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port: int = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        self.programs: list[str] = []
        """The programs that connected, in order."""
        self._server_port = server_port
        self._dump, self._others = dump, others
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with suppress(OSError):  # closed at the end of the test
            while True:
                client, (_, peer_port) = self.listener.accept()
                self.sockets.append(client)
                self.programs.append(connecting_program(peer_port, self.port))
                action = self._dump if self.programs[-1] in DUMP_TOOLS else self._others
                if action == "forward":
                    self._forward(client)
                elif action == "close":
                    client.close()

    def _forward(self, client: socket.socket) -> None:
        server = socket.create_connection(("127.0.0.1", self._server_port))
        self.sockets.append(server)
        for source, sink in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)  # the end of one side reaches the other

    def close(self) -> None:
        """Close every socket (the threads then end)."""
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def proxy(mariadb: MariaDBServer) -> Iterator[Callable[..., str]]:
    """``proxy(database, dump=…, others=…)``: a URL of *database* through a :class:`Proxy`."""
    made: list[Proxy] = []

    def url(database: str, **treatment: str) -> str:
        made.append(Proxy(mariadb.port, **treatment))
        return mariadb.url(database).replace(f":{mariadb.port}/", f":{made[-1].port}/")

    yield url
    for each in made:
        each.close()


def test_mariadb_dump_cut_off_at_its_handshake_is_a_one_line_connection_error(
    chinook_db: str, tmp_path: Path, proxy: Callable[..., str]
) -> None:
    """The backup's facts get through, mariadb-dump's connection is closed before the server's greeting.

    Before: ``mariadb-dump failed (exit 2): mariadb-dump: Got error: 2013: …``.
    """
    url = proxy(chinook_db, dump="close")
    port = DatabaseURL.parse(url).port
    run = dbkeeper("backup", url, "--dir", str(tmp_path / "bk"), env={"DBKEEPER_MYSQL_TOOLS": "client"}, check=False)
    assert_one_line_error(run, f"cannot connect to mysql://keeper:***@127.0.0.1:{port}/{chinook_db}: (2013) "
                          "Lost connection to server at 'handshake: reading initial communication packet'")  # fmt: skip
    assert "mariadb-dump" not in run.err


def test_the_mariadb_client_gives_up_on_a_silent_server_after_connect_timeout(silent_port: int) -> None:
    target = ServerTarget.from_url(DatabaseURL.parse(f"mysql://app:pw@127.0.0.1:{silent_port}/shop?connect_timeout=1"))
    client = shutil.which("mariadb") or shutil.which("mysql")
    assert client is not None
    with pytest.raises(DatabaseError) as failure, tool_errors(target), target.option_file() as options:
        ClientLoader(client, options).load("shop", io.BytesIO(b"SELECT 1;\n"))
    assert str(failure.value).startswith(f"cannot connect to {target}: no answer within 1 s (connect_timeout")


def test_mariadb_dump_is_stopped_when_the_server_stops_answering(
    chinook_db: str, tmp_path: Path, proxy: Callable[..., str]
) -> None:
    """mariadb-dump has no timeout option: without the stall watch it waited for ever."""
    url = proxy(chinook_db, dump="silent") + "?read_timeout=2"
    run = dbkeeper("backup", url, "--dir", str(tmp_path / "bk"), env={"DBKEEPER_MYSQL_TOOLS": "client"}, check=False)
    assert_one_line_error(run, "mariadb-dump got nothing through for 2 s and was stopped: the server does not answer")
