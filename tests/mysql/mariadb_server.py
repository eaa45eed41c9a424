"""A throwaway MariaDB server for tests and benchmarks: own data directory, port and socket.

    with MariaDBServer.started() as server:
        url = server.url("app")   # mysql://keeper:…@127.0.0.1:PORT/app

The data directory is made by ``mariadb-install-db`` in a fresh directory under the
system temporary directory (one the ``mysql`` user can enter: pytest's own temporary
directories are private to root); ``mariadbd`` runs as ``mysql`` on 127.0.0.1 and a unix
socket, with utf8mb4 as the server character set, and grants are enforced (no
``--skip-grant-tables``). Administration uses the server's ``root@localhost`` account over
the socket (unix-socket authentication, as the OS root user; run as another user, the
server runs as that user and its account of the same name is used); the tests connect
as a password-protected user with every privilege. Stopping shuts the server down and removes
the directory; if the test process dies first, a watchdog (``server_watchdog``) does both.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pymysql
from pymysql.converters import escape_string

from server_watchdog import release, start_watchdog

AS_ROOT = os.geteuid() == 0
SERVER_USER = "mysql" if AS_ROOT else pwd.getpwuid(os.geteuid()).pw_name
"""The OS user mariadbd runs as: ``mysql`` when we are root (it refuses to run as root), else ourselves."""
ADMIN_USER = "root" if AS_ROOT else SERVER_USER
"""The server account administration uses: unix-socket authentication as the same OS user."""
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
TEST_USER = "keeper"
PASSWORD_PUNCTUATION = " #'\";%\\"
"""Characters a password may hold that URLs, option files and SQL must each escape."""


class ServerError(RuntimeError):
    """The server could not be initialised or started; the message says why."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tool(*names: str) -> str:
    for name in names:
        if path := shutil.which(name):
            return path
    raise ServerError(f"{' or '.join(names)} not found on PATH: install mariadb-server (scripts/ensure-packages.sh)")


@dataclass
class MariaDBServer:
    """A running throwaway server; see the module docstring."""

    base: Path
    port: int
    password: str
    process: subprocess.Popen[bytes]
    watchdog: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def socket(self) -> Path:
        """The server's unix socket."""
        return self.base / "mysqld.sock"

    @property
    def log(self) -> Path:
        """The server's error log."""
        return self.base / "error.log"

    def url(
        self, database: str = "", *, scheme: str = "mysql", password: str | None = None, socket: bool = False
    ) -> str:
        """A URL for *database* as the password-protected test user, over TCP or the socket."""
        secret = quote(self.password if password is None else password, safe="${}")
        if socket:
            return f"{scheme}://{TEST_USER}:{secret}@localhost/{database}?unix_socket={self.socket}"
        return f"{scheme}://{TEST_USER}:{secret}@127.0.0.1:{self.port}/{database}"

    def admin(self, database: str | None = None) -> pymysql.connections.Connection:
        """An autocommit utf8mb4 connection as root over the socket."""
        return pymysql.connect(
            unix_socket=str(self.socket), user=ADMIN_USER, database=database, charset="utf8mb4", autocommit=True
        )

    def execute(self, *statements: str, database: str | None = None) -> list[tuple[object, ...]]:
        """Run *statements* as root; return the rows of the last one."""
        with contextlib.closing(self.admin(database)) as conn, conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
            return list(cursor.fetchall())

    def client_argv(self, database: str | None = None) -> list[str]:
        """The ``mariadb`` client as root over the socket (for loading SQL in tests)."""
        argv = [_tool("mariadb", "mysql"), "--no-defaults", f"--socket={self.socket}", f"--user={ADMIN_USER}"]
        argv += ["--default-character-set=utf8mb4"]
        return [*argv, database] if database else argv

    def load_sql(self, database: str, sql: bytes) -> None:
        """Run an SQL script in *database* with the ``mariadb`` client, as root."""
        proc = subprocess.run(self.client_argv(database), input=sql, capture_output=True, check=False)
        if proc.returncode != 0:
            raise ServerError(f"loading SQL into {database} failed: {proc.stderr.decode(errors='replace').strip()}")

    def recreate(self, database: str) -> None:
        """Drop *database* if it exists and create it empty (utf8mb4)."""
        self.execute(f"DROP DATABASE IF EXISTS `{database}`", f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")

    def stop(self) -> None:
        """Shut the server down (SIGTERM, then SIGKILL after a minute) and remove its directory."""
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
            release(self.watchdog)

    @classmethod
    @contextlib.contextmanager
    def started(cls, extra_options: Sequence[str] = ()) -> Iterator[MariaDBServer]:
        """Initialise, start and yield a server; always stop it and remove its files."""
        server = cls.start(extra_options)
        try:
            yield server
        finally:
            server.stop()

    @classmethod
    def start(cls, extra_options: Sequence[str] = ()) -> MariaDBServer:
        """Initialise a data directory, start ``mariadbd`` on a free port, create the test user.

        Raises ServerError with the reason (the error log's last lines) when anything fails;
        nothing is left behind then.
        """
        install_db = _tool("mariadb-install-db", "mysql_install_db")
        mariadbd = _tool("mariadbd", "mysqld")
        try:
            account = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise ServerError(f"the {SERVER_USER!r} OS user does not exist: install mariadb-server") from None
        base = Path(tempfile.mkdtemp(prefix="dbkeeper-mariadb-"))
        try:
            if AS_ROOT:
                os.chown(base, account.pw_uid, account.pw_gid)
            datadir = base / "data"
            init = subprocess.run(
                [install_db, "--no-defaults", f"--user={SERVER_USER}", f"--datadir={datadir}",
                 "--auth-root-authentication-method=socket", "--skip-test-db"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if init.returncode != 0:
                raise ServerError(f"mariadb-install-db failed: {(init.stderr or init.stdout).strip()[-2000:]}")
            return cls._launch(mariadbd, base, datadir, extra_options)
        except BaseException:
            shutil.rmtree(base, ignore_errors=True)
            raise

    @classmethod
    def _launch(cls, mariadbd: str, base: Path, datadir: Path, extra_options: Sequence[str]) -> MariaDBServer:
        """Start the server on a free port (retrying once if the port was taken meanwhile)."""
        for attempt in range(3):
            port = _free_port()
            log = base / "error.log"
            process = subprocess.Popen(
                [
                    mariadbd, "--no-defaults", f"--user={SERVER_USER}", f"--datadir={datadir}",
                    f"--socket={base / 'mysqld.sock'}", f"--port={port}", "--bind-address=127.0.0.1",
                    f"--pid-file={base / 'mysqld.pid'}", f"--log-error={log}",
                    "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
                    "--skip-name-resolve", "--innodb-flush-log-at-trx-commit=2",
                    *extra_options,
                ],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            )  # fmt: skip
            server = cls(
                base=base, port=port, password=secrets.token_urlsafe(9) + PASSWORD_PUNCTUATION, process=process
            )
            pid_file = base / "mysqld.pid"
            server.watchdog = start_watchdog(base, pid_file, ["pkill", "-KILL", "-F", str(pid_file)])
            try:
                server._wait_ready()
            except ServerError:
                if process.poll() is None:
                    process.kill()
                process.wait()
                release(server.watchdog)
                if attempt < 2 and "already in use" in _tail(log):
                    continue
                raise
            server._create_test_user()
            return server
        raise AssertionError("unreachable")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise ServerError(f"mariadbd exited with status {self.process.returncode}: {_tail(self.log)}")
            try:
                self.admin().close()
                return
            except pymysql.err.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise ServerError(
                        f"mariadbd did not accept connections within {START_TIMEOUT:.0f}s: {exc}; {_tail(self.log)}"
                    ) from None
                time.sleep(0.1)

    def _create_test_user(self) -> None:
        statements = []
        for host in ("localhost", "127.0.0.1", "%"):
            statements += [
                f"CREATE USER '{TEST_USER}'@'{host}' IDENTIFIED BY '{escape_string(self.password)}'",
                f"GRANT ALL PRIVILEGES ON *.* TO '{TEST_USER}'@'{host}' WITH GRANT OPTION",
            ]
        self.execute(*statements)


def _tail(log: Path, lines: int = 8) -> str:
    """The last lines of the server's error log, on one line."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "(no error log)"
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])
