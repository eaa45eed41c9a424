"""A throwaway PostgreSQL cluster for ``dbkeeper drill``: initdb (or a copy of its cached result), start, stop.

The cluster runs from the locally installed server binaries of the backup's major version
(``$DBKEEPER_PG_BINDIR`` when it holds them, else Debian's ``/usr/lib/postgresql/MAJOR/bin``).
Its data directory, log and Unix socket live in the drill's private directory; it listens
on no TCP port (``listen_addresses=''``; the port only names the socket file). PostgreSQL
refuses to run as root, so when dbkeeper runs as root the cluster runs as the system user
``postgres`` (``nobody`` when there is none; no user is ever created). Durability is
traded for speed — ``fsync``, ``full_page_writes`` and ``synchronous_commit`` are off —
since the cluster is thrown away. The first drill of a server build runs ``initdb`` and keeps
its result in the drill cache; later drills start on a copy of it
(:func:`~dbkeeper.plugin.pristine_data_directory`, keyed by the binaries and :data:`INITDB_OPTIONS`).

A watchdog (:func:`~dbkeeper.plugin.start_watchdog`) stops the postmaster if dbkeeper dies,
even by ``kill -9``, while the core's own watchdog removes the directory. It stops the
server with a signal to the postmaster's process id, not with ``pg_ctl``: the stop must not
depend on files the other watchdog may be deleting at that very moment.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

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
from dbkeeper_postgresql.catalog import quote_identifier
from dbkeeper_postgresql.clients import BINDIR_ENV

SUPERUSER = "postgres"
"""The cluster's superuser (``initdb -U``); the socket trusts it, no password exists."""
PORT = "5432"
"""Only names the socket file (``.s.PGSQL.5432``): the server opens no TCP port."""
SERVER_USERS = ("postgres", "nobody")
"""Who runs the server when dbkeeper runs as root, in order of preference (existing users only)."""
SETTINGS = {
    "listen_addresses": "",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
}
"""No TCP; no durability (the cluster is thrown away, a crash loses nothing worth keeping); the least WAL.

With ``wal_level=minimal`` a table created in the restore's transaction is loaded and
indexed without writing WAL for its rows (``max_wal_senders=0`` is what that level requires)."""
INITDB_OPTIONS = ("-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--no-locale")
"""What ``initdb`` makes: superuser ``postgres`` trusted on the socket (no password exists), UTF8, no locale."""
INITDB_SECONDS = 120
START_SECONDS = 60
STOP_SECONDS = 30
READY_POLL_SECONDS = 0.01
"""How often the start looks whether the server is ready (reading one small file)."""
_VERSION = re.compile(r"(\d+)")
_SERVER_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")


def server_major(engine_version: str) -> str:
    """The major version of a backup's ``engine_version`` (``15.10`` → ``15``)."""
    match = _VERSION.match(engine_version)
    if match is None:
        raise DatabaseError(
            f"the backup records the server version {engine_version!r}, not a PostgreSQL version: pass --into URL "
            "to drill it on an existing server"
        )
    return match[1]


def server_bindir(major: str) -> Path:
    """The directory of this machine's PostgreSQL *major* server binaries (``initdb``, ``postgres``)."""
    candidates = [Path(path) for path in (os.environ.get(BINDIR_ENV), f"/usr/lib/postgresql/{major}/bin") if path]
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "postgres")) and _major_of(bindir) == major:
            return bindir
    looked = " or ".join(str(path) for path in candidates)
    raise DatabaseError(
        f"no PostgreSQL {major} server binaries (initdb, postgres) in {looked} for the drill's throwaway server: "
        f"install them (Debian/Ubuntu: apt-get install postgresql-{major}), or pass --into URL of an existing server"
    )


def _major_of(bindir: Path) -> str | None:
    match = _SERVER_VERSION.search(server_version(bindir))
    return match[1] if match else None


@functools.cache
def server_version(bindir: Path) -> str:
    """What ``postgres --version`` of *bindir* says (empty when it does not answer); asked once per process."""
    try:
        return subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def server_account() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as when we are root; None: run it as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise DatabaseError(
        "dbkeeper runs as root and there is no 'postgres' or 'nobody' user to run the drill's throwaway server as: "
        "run the drill as an unprivileged user, or pass --into URL of an existing server"
    )


@dataclass
class Cluster:
    """A throwaway cluster in ``root`` (a directory of the drill's private directory), run by *account*."""

    major: str
    bindir: Path
    root: Path
    account: pwd.struct_passwd | None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    watchdog: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @contextlib.contextmanager
    def running(self, *, keep: bool) -> Iterator[None]:
        """The cluster made and started for the block, stopped on exit — unless *keep* and the block succeeded."""
        kept = False
        try:
            self.make_data()
            self.start()
            yield
            kept = keep
        finally:
            if kept:
                self.hand_over()
            else:
                self.stop()

    @classmethod
    def prepared(cls, major: str, workdir: Path) -> Cluster:
        """The cluster's directory in *workdir*, owned by the user who will run the server."""
        bindir = server_bindir(major)
        account = server_account()
        root = workdir / "pg"
        root.mkdir(mode=0o700)
        if account is not None:
            workdir.chmod(0o711)  # the server user passes through the drill's directory to its own
            os.chown(root, account.pw_uid, account.pw_gid)
        return cls(major, bindir, root, account)

    @property
    def data(self) -> Path:
        """The data directory."""
        return self.root / "data"

    @property
    def log(self) -> Path:
        """The server's log (its stderr)."""
        return self.root / "server.log"

    def url(self, database: str) -> DatabaseURL:
        """The superuser's URL of *database* over the cluster's socket."""
        return DatabaseURL.parse(
            f"postgresql://{SUPERUSER}@/{quote(database, safe='')}?host={quote(str(self.root))}&port={PORT}"
        )

    def connect_command(self, database: str) -> str:
        """How a person reaches *database* with ``psql``."""
        return shlex.join(["psql", "-h", str(self.root), "-p", PORT, "-U", SUPERUSER, database])

    def stop_command(self, workdir: Path) -> str:
        """How a person stops the kept cluster and removes *workdir*."""
        pg_ctl = shlex.join([*self._runuser(), str(self.bindir / "pg_ctl"), "-D", str(self.data), "stop", "-m", "fast"])
        return f"{pg_ctl} && rm -rf {shlex.quote(str(workdir))}"

    def make_data(self) -> None:
        """The data directory: a copy of the cached result of ``initdb`` with these binaries, else initdb's own."""
        key = PristineKey(
            engine=f"postgresql-{self.major}",
            programs=(self.bindir / "initdb", self.bindir / "postgres"),
            version=server_version(self.bindir),
            options=(*INITDB_OPTIONS, f"run as {self.account.pw_name if self.account else 'ourselves'}"),
        )
        pristine_data_directory(self.data, key, self.initdb, owner=self.account, what="initdb's data directory")

    def initdb(self, data: Path) -> None:
        """Create the cluster in *data* (:data:`INITDB_OPTIONS`), no fsync of the new files."""
        argv = [str(self.bindir / "initdb"), "-D", str(data), *INITDB_OPTIONS, "--no-sync"]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=INITDB_SECONDS, **self._as_server())
        except subprocess.TimeoutExpired:
            raise DatabaseError(f"initdb of the drill's throwaway server took over {INITDB_SECONDS} s") from None
        if proc.returncode != 0:
            raise DatabaseError(f"initdb of the drill's throwaway server failed: {_last_line(proc.stderr)}")

    def start(self) -> None:
        """Start the postmaster under a watchdog and wait (bounded) until it accepts connections."""
        argv = [str(self.bindir / "postgres"), "-D", str(self.data), "-k", str(self.root), "-p", PORT]
        for key, value in SETTINGS.items():
            argv += ["-c", f"{key}={value}"]
        log = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, **self._as_server()
            )
        finally:
            os.close(log)
        pid = str(self.process.pid)
        # kill as the server's user: a recycled pid of anyone else's process is out of reach
        self.watchdog = start_watchdog(self.root, Path("/proc") / pid, [*self._runuser(), "kill", "-QUIT", pid])
        self._wait_ready(self.process)

    def create_roles(self, names: Iterable[str]) -> None:
        """Create the roles a backup's objects belong to (without login), so the restore can keep its owners."""
        wanted = sorted({name for name in names if name != SUPERUSER and not name.startswith("pg_")})
        if not wanted:
            return
        script = "".join(f"CREATE ROLE {quote_identifier(name)} NOLOGIN;\n" for name in wanted)
        argv = [str(self.bindir / "psql"), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "-h", str(self.root),
                "-p", PORT, "-U", SUPERUSER, "-d", "postgres"]  # fmt: skip
        proc = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=START_SECONDS)
        if proc.returncode != 0:
            raise DatabaseError(f"cannot create the backup's roles in the drill's throwaway server: "
                                f"{_last_line(proc.stderr)}")  # fmt: skip

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_SECONDS
        while not self._ready():
            if process.poll() is not None:
                raise DatabaseError(
                    f"the drill's throwaway PostgreSQL {self.major} server did not start: {self._tail()}"
                )
            if time.monotonic() > deadline:
                raise DatabaseError(
                    f"the drill's throwaway PostgreSQL {self.major} server did not accept connections within "
                    f"{START_SECONDS} s: {self._tail()}"
                )
            time.sleep(READY_POLL_SECONDS)

    def _ready(self) -> bool:
        """Whether the postmaster says it accepts connections (``ready`` on line 8 of postmaster.pid)."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def stop(self) -> None:
        """Stop the server at once (its data is thrown away) and remove its directory."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # immediate shutdown: the postmaster ends its children first
            if not wait_ended(process, STOP_SECONDS):
                process.kill()
                process.wait(timeout=STOP_SECONDS)
        if self.watchdog is not None:
            shutil.rmtree(self.root, ignore_errors=True)  # here, not by the watchdog: one process fewer to wait for
            release_watchdog(self.watchdog)  # the server is gone: it only removes what is left of the directory

    def hand_over(self) -> None:
        """Leave the server running for the person who asked for ``--keep``."""
        if self.watchdog is not None:
            release_watchdog(self.watchdog, remove=False)

    def _as_server(self) -> dict[str, Any]:
        """Arguments of :class:`subprocess.Popen` that run the child as the server's user, in its directory."""
        env = child_environment({"HOME": self.account.pw_dir} if self.account else None)
        if self.account is None:
            return {"cwd": self.root, "env": env}
        return {"cwd": self.root, "env": env, "user": self.account.pw_uid, "group": self.account.pw_gid,
                "extra_groups": []}  # fmt: skip

    def _runuser(self) -> list[str]:
        """The prefix of a shell command run as the server's user."""
        return ["runuser", "-u", self.account.pw_name, "--"] if self.account else []

    def _tail(self) -> str:
        try:
            return _last_line(self.log.read_text(errors="replace"))
        except OSError as exc:
            return f"no server log ({exc.strerror})"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"
