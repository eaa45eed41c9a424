"""A throwaway PostgreSQL server for tests and benchmarks: initdb, start, stop, remove.

The server runs from the PostgreSQL 15 binaries as an unprivileged user (it refuses to
run as root): ``runuser -u postgres -- …`` when we are root, creating that user when it
does not exist, or the current user otherwise. Its data directory and unix socket live
in a fresh directory under the system temp dir; it listens on 127.0.0.1 only, on a free
port. Passwords are required over TCP (scram-sha-256); the unix socket trusts local
users, for the harness's own administration.

A watchdog process holds the read end of a pipe whose write end only this process
holds: if this process dies without stopping the server (killed, crashed), the pipe
closes, and the watchdog stops the server and removes its directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from server_watchdog import release, start_watchdog

PG_BIN = Path(os.environ.get("DBKEEPER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"
SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "root-pw-Ω"
APP_USER = "app"
APP_PASSWORD = "s3cret:pass\\word@/ü"
"""The password-protected role tests use; it has characters a passfile and a URL must escape."""


class ServerError(RuntimeError):
    """The server could not be set up; the message says why."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ensure_user(name: str) -> None:
    """Create the unprivileged system user *name* if it does not exist (we are root)."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)


@dataclass
class Server:
    """A running throwaway server; :meth:`stop` ends it and removes its files."""

    root: Path
    port: int
    run_as: list[str]
    watchdog: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        """The directory holding the server's unix socket."""
        return self.root / "socket"

    @property
    def log_file(self) -> Path:
        """The server log."""
        return self.root / "server.log"

    def url(
        self,
        database: str,
        *,
        user: str = APP_USER,
        password: str | None = APP_PASSWORD,
        scheme: str = "postgresql",
        query: str = "",
    ) -> str:
        """A TCP URL for *database* as *user* (password URL-encoded)."""
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
        return f"{scheme}://{auth}@127.0.0.1:{self.port}/{quote(database, safe='')}" + (f"?{query}" if query else "")

    def socket_url(self, database: str, *, user: str = SUPERUSER) -> str:
        """A unix-socket URL (``?host=/dir``) for *database*; the socket trusts local users."""
        return f"postgresql://{user}@/{quote(database, safe='')}?host={self.socket_dir}&port={self.port}"

    def psql(self, sql: str, *, database: str = "postgres", check: bool = True) -> str:
        """Run *sql* as the superuser over the unix socket with the stock ``psql``; return stdout."""
        proc = subprocess.run(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir), "-p", str(self.port),
             "-U", SUPERUSER, "-d", database],
            input=sql, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise ServerError(f"psql failed: {proc.stderr.strip()}")
        return proc.stdout

    def app_database(self, name: str, sql: str) -> str:
        """Create database *name* owned by the test role and run *sql* in it as that role; return *name*."""
        self.psql(f"CREATE DATABASE {name} OWNER {APP_USER}")
        self.psql(f"SET ROLE {APP_USER}; {sql}", database=name)
        return name

    def schema_dump(self, database: str) -> str:
        """``pg_dump --schema-only`` of *database*, without the lines that differ on every run."""
        proc = subprocess.run(
            ["pg_dump", "--schema-only", "-d", database], env=self.admin_env(), capture_output=True, text=True,
            check=True, timeout=120,
        )  # fmt: skip
        return "".join(
            line for line in proc.stdout.splitlines(keepends=True)
            if not line.startswith(("\\restrict", "\\unrestrict", "-- Dumped from", "-- Dumped by"))
        )  # fmt: skip

    def contents(self, database: str) -> dict[str, object]:
        """Everything a dump carries besides definitions, comparable across databases.

        Each table's rows (as ``COPY`` text, sorted), each sequence's position, each
        materialized view's rows and the large objects.
        """
        tables = self.psql(
            "SELECT format('%I.%I', n.nspname, c.relname), c.relkind FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'm', 'S') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' "
            "ORDER BY 1",
            database=database,
        ).splitlines()
        result: dict[str, object] = {}
        for line in tables:
            name, kind = line.rsplit("|", 1)
            if kind == "S":
                result[name] = self.psql(f"SELECT last_value, is_called FROM {name}", database=database)
            else:
                rows = self.psql(f"COPY (SELECT * FROM ONLY {name}) TO STDOUT", database=database)
                result[name] = sorted(rows.splitlines())
        result["large objects"] = self.psql(
            "SELECT oid, md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY 1", database=database
        )
        return result

    def databases(self) -> set[str]:
        """The names of the databases on the server."""
        return set(self.psql("SELECT datname FROM pg_database").split())

    def admin_env(self) -> dict[str, str]:
        """Environment for stock client tools to reach the server as the superuser."""
        return {**os.environ, "PGHOST": str(self.socket_dir), "PGPORT": str(self.port), "PGUSER": SUPERUSER}

    def stop(self) -> None:
        """Stop the server at once and remove its directory."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                subprocess.run(
                    [*self.run_as, str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"],
                    capture_output=True, timeout=60,
                )  # fmt: skip
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            release(self.watchdog)


def _run(argv: Sequence[str], what: str) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise ServerError(f"{what} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-2000:]}")


def start_server(*, settings: dict[str, str] | None = None) -> Server:
    """initdb a new cluster in a fresh temp dir and start it; raise ServerError with the reason."""
    if not (PG_BIN / "postgres").is_file():
        raise ServerError(f"PostgreSQL server binaries not found in {PG_BIN}: run bash scripts/ensure-packages.sh")
    if os.geteuid() == 0:
        _ensure_user(SERVER_USER)
        run_as = ["runuser", "-u", SERVER_USER, "--"]
        owner = pwd.getpwnam(SERVER_USER)
    else:
        run_as, owner = [], None
    root = Path(tempfile.mkdtemp(prefix="dbkeeper-pg-"))
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    root.chmod(0o755)  # the server user enters it; the test process (root) reads the socket
    server = Server(root, _free_port(), run_as)
    try:
        pg_ctl = [*run_as, str(PG_BIN / "pg_ctl"), "-D", str(server.data_dir), "-m", "immediate", "stop"]
        server.watchdog = start_watchdog(root, server.data_dir / "postmaster.pid", pg_ctl)
        (root / "socket").mkdir()
        password_file = root / "pwfile"
        password_file.write_text(SUPERUSER_PASSWORD + "\n")
        if owner is not None:
            for path in (root / "socket", password_file):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        _run(
            [*run_as, str(PG_BIN / "initdb"), "-D", str(server.data_dir), "-U", SUPERUSER, f"--pwfile={password_file}",
             "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
             "--no-instructions"],
            "initdb",
        )  # fmt: skip
        password_file.unlink()
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(server.port),
            "unix_socket_directories": f"'{server.socket_dir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "60",
            **(settings or {}),
        }
        with (server.data_dir / "postgresql.conf").open("a") as conf_file:
            conf_file.writelines(f"{key} = {value}\n" for key, value in conf.items())
        _run(
            [*run_as, str(PG_BIN / "pg_ctl"), "-D", str(server.data_dir), "-l", str(server.log_file), "-w", "-t", "60",
             "start"],
            "pg_ctl start",
        )  # fmt: skip
        _wait_ready(server)
        server.psql(f"CREATE ROLE {APP_USER} LOGIN CREATEDB PASSWORD '{APP_PASSWORD.replace(chr(39), chr(39) * 2)}';")
    except BaseException as exc:
        log = server.log_file.read_text(errors="replace")[-2000:] if server.log_file.exists() else ""
        server.stop()
        if isinstance(exc, ServerError) and log:
            raise ServerError(f"{exc}\nserver log:\n{log}") from None
        raise
    return server


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + 30
    while True:
        probe = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(server.port)], capture_output=True
        )
        if probe.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise ServerError("the server started but does not accept TCP connections on 127.0.0.1")
        time.sleep(0.1)


def start_standby(primary: Server) -> Server:
    """A streaming hot standby of *primary*: ``pg_basebackup -R`` into a fresh temp dir, started on its own port.

    It replicates over the primary's unix socket as the superuser (initdb's ``local
    replication all trust``), asking the primary for a fast checkpoint (a spread one waits
    minutes); stop it before the primary.
    """
    run_as = primary.run_as
    root = Path(tempfile.mkdtemp(prefix="dbkeeper-pg-standby-"))
    owner = pwd.getpwnam(SERVER_USER) if run_as else None
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    root.chmod(0o755)
    server = Server(root, _free_port(), run_as)
    try:
        pg_ctl = [*run_as, str(PG_BIN / "pg_ctl"), "-D", str(server.data_dir), "-m", "immediate", "stop"]
        server.watchdog = start_watchdog(root, server.data_dir / "postmaster.pid", pg_ctl)
        (root / "socket").mkdir()
        if owner is not None:
            os.chown(root / "socket", owner.pw_uid, owner.pw_gid)
        _run(
            [*run_as, str(PG_BIN / "pg_basebackup"), "-h", str(primary.socket_dir), "-p", str(primary.port),
             "-U", SUPERUSER, "-D", str(server.data_dir), "-R", "-X", "stream", "--no-sync", "--checkpoint=fast"],
            "pg_basebackup",
        )  # fmt: skip
        with (server.data_dir / "postgresql.conf").open("a") as conf_file:
            conf_file.write(f"port = {server.port}\nunix_socket_directories = '{server.socket_dir}'\n")
        _run(
            [*run_as, str(PG_BIN / "pg_ctl"), "-D", str(server.data_dir), "-l", str(server.log_file), "-w", "-t", "60",
             "start"],
            "pg_ctl start (standby)",
        )  # fmt: skip
        _wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server
