"""The PostgreSQL client tools (``pg_dump``, ``pg_restore``, ``psql``): where they are, which version.

Tools are taken from ``$DBKEEPER_PG_BINDIR`` when it is set (for instance
``/usr/lib/postgresql/16/bin``), else from ``PATH``. Their versions are checked before any
work starts: ``pg_dump`` must be at least as new as the server it dumps (an older one
refuses, or worse, misses features), and ``pg_restore``/``psql`` at least as new as the
``pg_dump`` that wrote the backup.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dbkeeper.plugin import DatabaseError, child_environment, find_tool
from dbkeeper_postgresql.pg_wrapper import wrapped_client

BINDIR_ENV = "DBKEEPER_PG_BINDIR"
_VERSION = re.compile(r"\(PostgreSQL\)\s+(?P<major>\d+)(?:\.(?P<minor>\d+))?")


def install_hint(major: int | str = "<version>") -> str:
    """How to get client tools of a given major version."""
    return (
        f"install the PostgreSQL {major} client tools (Debian/Ubuntu: apt-get install postgresql-client-{major}) "
        f"and put them first on PATH, or set {BINDIR_ENV} to their bin directory "
        f"(e.g. /usr/lib/postgresql/{major}/bin)"
    )


@dataclass(frozen=True)
class Client:
    """A client tool found on this machine, the version it reports, and the environment it runs with."""

    name: str
    path: str
    major: int
    minor: int
    env: Mapping[str, str] = field(default_factory=dict)  # what Debian's pg_wrapper would have set

    @property
    def version(self) -> str:
        """``major.minor``."""
        return f"{self.major}.{self.minor}"


def server_major(version_num: int) -> int:
    """The major version of a ``server_version_num`` (150018 → 15)."""
    return version_num // 10000


def tool_path(name: str) -> str:
    """The path of the tool *name*: in ``$DBKEEPER_PG_BINDIR`` when it is set, else on ``PATH``."""
    bindir = os.environ.get(BINDIR_ENV)
    if bindir:
        path = Path(bindir) / name
        if not os.access(path, os.X_OK):
            raise DatabaseError(f"{name} not found in {BINDIR_ENV}={bindir}; point it at a PostgreSQL bin directory")
        return str(path)
    return find_tool([name], install_hint())


def locate(name: str, params: Mapping[str, str] | None = None) -> Client:
    """The tool *name* (see :func:`tool_path`), with its version.

    Given the connection string's *params*, Debian's ``pg_wrapper`` is skipped where the
    binary it would run is provably known (:func:`~dbkeeper_postgresql.pg_wrapper.wrapped_client`).
    """
    path = tool_path(name)
    binary, env = wrapped_client(path, params or {}) or (path, {})
    return _probe(name, binary, tuple(sorted(env.items())))


@functools.lru_cache(maxsize=16)
def _probe(name: str, path: str, env: tuple[tuple[str, str], ...] = ()) -> Client:
    try:
        output = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, env=child_environment(dict(env))
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise DatabaseError(f"cannot run {path} --version: {exc}") from None
    match = _VERSION.search(output)
    if not match:
        raise DatabaseError(f"{path} --version printed {output.strip()!r}, not a PostgreSQL version")
    return Client(name, path, int(match["major"]), int(match["minor"] or 0), dict(env))


def check_dump_client(pg_dump: Client, server_version_num: int, server_version: str) -> Client:
    """*pg_dump*, checked to be at least as new as the server."""
    major = server_major(server_version_num)
    if pg_dump.major < major:
        raise DatabaseError(
            f"pg_dump {pg_dump.version} ({pg_dump.path}) is older than the server ({server_version}) and cannot "
            f"dump it: {install_hint(major)}"
        )
    return pg_dump


def restore_client(name: str, written_by: str, params: Mapping[str, str] | None = None) -> Client:
    """``pg_restore`` or ``psql`` for the target of *params*, at least as new as the pg_dump that wrote the backup."""
    client = locate(name, params)
    major = int(written_by.split(".")[0])
    if client.major < major:
        raise DatabaseError(
            f"{name} {client.version} ({client.path}) is older than the pg_dump {written_by} that wrote this "
            f"backup and cannot read it: {install_hint(major)}"
        )
    return client
