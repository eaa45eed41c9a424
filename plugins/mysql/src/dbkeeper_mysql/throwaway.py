"""A throwaway MariaDB server for ``dbkeeper drill``: the local ``mariadbd``, its files in the drill's directory.

``mariadb-install-db`` makes a data directory in ``WORKDIR/server`` (``root@localhost``
without a password, reachable only through the socket, which only the server's user and
root can reach); ``mariadbd`` serves it on ``WORKDIR/server/mysqld.sock`` with
``--skip-networking`` (no TCP port), as the ``mysql`` user (else ``nobody``) when dbkeeper
runs as root, and with the settings of a server whose data may be lost (no binary log, no
doublewrite, no flush at commit). The first drill of a server build runs ``mariadb-install-db``
and keeps its result in the drill cache; later drills start on a copy of it
(:func:`~dbkeeper.plugin.pristine_data_directory`, keyed by both binaries, the version and
:data:`INSTALL_OPTIONS`; the cached directory holds no password: root has none, and is reached
only through the socket). Both run in a session of their own, each under a
:func:`~dbkeeper.plugin.start_watchdog` that kills that session and removes the drill's
directory when dbkeeper dies, even by ``kill -9``. Waits are bounded.

One server binary serves a machine, so "the backup's major version" is checked, not
chosen: a backup of a newer MariaDB major than the local server is refused (its dump may
use collations and syntax the older server lacks); a backup of an older one is restored
(MariaDB reads its older versions' dumps). A MySQL backup is not refused up front: the
drill refuses it when its collation is unknown to the local server (MySQL 8's
``utf8mb4_0900_ai_ci`` on MariaDB before 11.4), see :func:`dbkeeper_mysql.drill.create_database`.
The throwaway is always MariaDB: a local ``mysqld`` that is MySQL's is refused (drill MySQL
servers with ``--into``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

from dbkeeper.plugin import (
    DatabaseError,
    DatabaseURL,
    PristineKey,
    child_environment,
    pristine_data_directory,
    release_watchdog,
    start_watchdog,
    wait_ended,
)
from dbkeeper_mysql.server import ServerTarget

START_TIMEOUT = 60.0
"""Seconds ``mariadb-install-db`` and the server's start may take each."""
STOP_TIMEOUT = 60.0
SERVER_USERS = ("mysql", "nobody")
"""The existing OS users the server runs as when dbkeeper runs as root, the first that exists."""
INSTALL_HINT = "install the mariadb-server package, or pass --into mysql://USER@HOST/ (an existing server)"
SEARCH_PATH = os.pathsep.join(("/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin"))
"""Where server binaries live besides ``PATH`` (``/usr/sbin`` is not on a normal user's ``PATH``)."""
THROWAWAY_OPTIONS = (
    "--skip-log-bin",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--innodb-log-file-size=64M",
    "--max-allowed-packet=1G",
    "--skip-name-resolve",
)
"""Settings for a server whose data may be lost, given to ``mariadb-install-db`` and ``mariadbd`` alike."""
INSTALL_OPTIONS = ("--auth-root-authentication-method=normal", "--skip-test-db", *THROWAWAY_OPTIONS)
"""What ``mariadb-install-db`` makes: ``root@localhost`` without a password (the socket is private), no test db."""
BUFFER_POOL_LIMIT = 2 << 30
"""The throwaway server's InnoDB buffer pool: a quarter of the memory available, at most this, at least 128 MiB."""
SERVER_UMASK = {"UMASK": "0600", "UMASK_DIR": "0700"}
"""The modes of the files and directories ``mariadbd`` creates (it reads these variables, in octal)."""
_VERSION = re.compile(r"Ver (?P<version>(?P<major>\d+\.\d+)\.\d+\S*)")


@dataclass(frozen=True)
class Binaries:
    """The local MariaDB server's programs and its version (``mariadbd --version``)."""

    server: str
    install_db: str
    version: str
    major: tuple[int, int]

    @classmethod
    def find(cls) -> Binaries:
        """The installed ``mariadbd`` and ``mariadb-install-db``, or a one-line error saying what to install.

        A ``mysqld`` that is MySQL's is refused: the throwaway is made the MariaDB way
        (MySQL 8 has no ``mysql_install_db``); MySQL's own servers are drilled with ``--into``.
        """
        server, install_db = _which("mariadbd", "mysqld"), _which("mariadb-install-db", "mysql_install_db")
        if server is None or install_db is None:
            raise DatabaseError(f"no local MariaDB server binaries (mariadbd, mariadb-install-db): {INSTALL_HINT}")
        try:
            output = subprocess.run(
                [server, "--no-defaults", "--version"],
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT,
                check=False,
            ).stdout
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DatabaseError(f"{server} --version did not answer ({exc}): {INSTALL_HINT}") from None
        found = _VERSION.search(output)
        if found is None or "mariadb" not in output.lower():
            raise DatabaseError(f"{server} is not a MariaDB server ({output.strip()!r}): {INSTALL_HINT}")
        return cls(server, install_db, found["version"], _major(found["major"]))

    def refuse_newer(self, engine_version: str) -> None:
        """Refuse a MariaDB backup of a newer major version than the local server (see the module docstring)."""
        found = _VERSION.search(f"Ver {engine_version}")
        if found is None or "mariadb" not in engine_version.lower() or _major(found["major"]) <= self.major:
            return
        raise DatabaseError(
            f"the backup comes from MariaDB {found['major']} but the local server is {self.version}, an older major "
            f"version that may not read its dump: install MariaDB {found['major']} or newer, or pass --into a server "
            "of that version"
        )


def _which(*names: str) -> str | None:
    search = os.pathsep.join((os.environ.get("PATH", ""), SEARCH_PATH))
    return next((path for name in names if (path := shutil.which(name, path=search))), None)


def _major(text: str) -> tuple[int, int]:
    first, second = text.split(".")
    return int(first), int(second)


@dataclass(frozen=True)
class Throwaway:
    """A running throwaway server: where its socket is, and the shell commands to reach and stop it."""

    socket: Path
    version: str
    connect: str
    stop: str

    def url(self, database: str) -> DatabaseURL:
        """The URL of *database* on this server (see :func:`socket_url`)."""
        return socket_url(self.socket, database)


def socket_url(socket: Path, database: str) -> DatabaseURL:
    """``mysql://root@localhost/DATABASE?unix_socket=…``: a throwaway server's root account over its socket."""
    return DatabaseURL.parse(f"mysql://root@localhost/{quote(database, safe='')}?{urlencode({'unix_socket': socket})}")


def server_user() -> pwd.struct_passwd | None:
    """The OS user the server runs as: an unprivileged one when dbkeeper runs as root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise DatabaseError(f"none of the OS users {', '.join(SERVER_USERS)} exists to run the drill's server as")


@contextlib.contextmanager
def throwaway_server(binaries: Binaries, workdir: Path, *, keep: bool) -> Iterator[Throwaway]:
    """Initialise and start a server in *workdir*; stop it afterwards unless *keep* (the core removes *workdir*)."""
    user = server_user()
    home = _home(workdir, user)
    user_option = _user_option(user)
    datadir, socket, log = home / "data", home / "mysqld.sock", home / "error.log"
    _make_data(binaries, datadir, workdir, user)
    server = [binaries.server, "--no-defaults", *user_option, f"--datadir={datadir}", f"--socket={socket}",
              "--skip-networking", f"--pid-file={home / 'mysqld.pid'}", f"--log-error={log}", f"--tmpdir={home}",
              *THROWAWAY_OPTIONS, f"--innodb-buffer-pool-size={_buffer_pool_bytes()}"]  # fmt: skip
    client = shlex.join([_which("mariadb", "mysql") or "mariadb", "--no-defaults", f"--socket={socket}", "--user=root"])
    admin = shlex.join([_which("mariadb-admin", "mysqladmin") or "mariadb-admin", "--no-defaults",
                        f"--socket={socket}", "--user=root", "shutdown"])  # fmt: skip
    with _guarded(server, workdir, keep=keep) as process:
        _wait_ready(process, socket, log)
        yield Throwaway(socket, binaries.version, client, f"{admin} && rm -rf {shlex.quote(str(workdir))}")


def _make_data(binaries: Binaries, datadir: Path, workdir: Path, user: pwd.struct_passwd | None) -> None:
    """*datadir*: a copy of the cached result of ``mariadb-install-db`` for these binaries, else its own."""
    home = datadir.parent
    user_option = _user_option(user)

    def install(target: Path) -> None:
        argv = [binaries.install_db, "--no-defaults", *user_option, f"--datadir={target}", f"--tmpdir={home}",
                *INSTALL_OPTIONS]  # fmt: skip
        with _guarded(argv, workdir, output=home / "install.log") as installing:
            _wait_installed(installing, home / "install.log")

    key = PristineKey("mariadb", (Path(binaries.server), Path(binaries.install_db)), binaries.version,
                      (*user_option, *INSTALL_OPTIONS))  # fmt: skip
    pristine_data_directory(datadir, key, install, owner=user, what="mariadb-install-db's data directory")


def _user_option(user: pwd.struct_passwd | None) -> list[str]:
    """``--user=NAME`` of the server's user, none when the server runs as ourselves."""
    return [f"--user={user.pw_name}"] if user else []


def _buffer_pool_bytes() -> int:
    """A buffer pool that holds what a drill restores and then checks (CHECK TABLE reads every page).

    The default 128 MiB makes ``CHECK TABLE`` read a large database back from disk; a
    quarter of the available memory, capped at :data:`BUFFER_POOL_LIMIT`, keeps the
    restored pages in memory for it.
    """
    available = 0
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    chunk = 128 << 20
    return max(chunk, min(BUFFER_POOL_LIMIT, available // 4) // chunk * chunk)


def _home(workdir: Path, user: pwd.struct_passwd | None) -> Path:
    """``WORKDIR/server``, the server user's own (*workdir* made traversable for it)."""
    home = workdir / "server"
    home.mkdir(mode=0o700)
    if user is not None:
        workdir.chmod(0o711)
        os.chown(home, user.pw_uid, user.pw_gid)
    return home


@contextlib.contextmanager
def _guarded(
    argv: Sequence[str], workdir: Path, *, output: Path | None = None, keep: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """Run *argv* in a session of its own, killed when the block ends or dbkeeper dies (then *workdir* goes too).

    Its output goes to a new 0600 file *output*, else nowhere; its environment holds no
    secret, and the files it makes are 0600 (``umask``; ``mariadbd`` reads ``UMASK``). With *keep*, a block that
    ended without an exception leaves it running.
    """
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600) if output else subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            env=child_environment(SERVER_UMASK),
            umask=0o077,
            start_new_session=True,
        )
    finally:
        if output:
            os.close(fd)
    watchdog = start_watchdog(workdir, Path(f"/proc/{process.pid}"), ["kill", "-KILL", "--", f"-{process.pid}"])
    kept = False
    try:
        yield process
        kept = keep
    finally:
        if not kept:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            if not wait_ended(process, STOP_TIMEOUT):
                raise subprocess.TimeoutExpired(process.args, STOP_TIMEOUT)
        release_watchdog(watchdog, remove=False)


def _wait_installed(process: subprocess.Popen[bytes], log: Path) -> None:
    try:
        status = process.wait(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise DatabaseError(
            f"mariadb-install-db did not finish in {START_TIMEOUT:.0f} s for the drill's server: {problem_line(log)}"
        ) from None
    if status != 0:
        raise DatabaseError(f"mariadb-install-db failed for the drill's server (status {status}): {problem_line(log)}")


def _wait_ready(process: subprocess.Popen[bytes], socket: Path, log: Path) -> None:
    """Wait until the server accepts root over its socket (bounded), or say why not in one line."""
    probe = ServerTarget.from_url(socket_url(socket, "mysql"))
    deadline = time.monotonic() + START_TIMEOUT
    while process.poll() is None:
        if socket.exists():
            with contextlib.suppress(DatabaseError):
                probe.connect().close()
                return
        if time.monotonic() > deadline:
            raise DatabaseError(f"the drill's mariadbd did not start within {START_TIMEOUT:.0f} s: {problem_line(log)}")
        time.sleep(0.05)
    raise DatabaseError(f"the drill's mariadbd exited with status {process.returncode}: {problem_line(log)}")


def problem_line(log: Path) -> str:
    """What a server's log says went wrong, on one line.

    Its first ``[ERROR]`` line (the cause, before the consequences), else its last line.
    """
    with contextlib.suppress(OSError):
        lines = log.read_text(errors="replace").strip().splitlines()
        errors = [line for line in lines if "[ERROR]" in line]
        if lines:
            return (errors or lines[-1:])[0].strip()
    return f"(nothing in {log})"
