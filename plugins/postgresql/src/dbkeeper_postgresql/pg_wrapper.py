"""The ``psql``, ``pg_dump`` and ``pg_restore`` that Debian's ``pg_wrapper`` would run, found without running it.

On Debian and Ubuntu, ``/usr/bin/psql``, ``/usr/bin/pg_dump`` and ``/usr/bin/pg_restore`` are links to
postgresql-common's ``pg_wrapper``, a Perl script that takes 15-35 ms to pick a binary under
``/usr/lib/postgresql/<version>/bin``. It runs the newest installed one unless a cluster
chooses the version: ``PGCLUSTER``, ``~/.postgresqlrc``, ``/etc/postgresql-common/user_clusters``,
or (for programs other than ``psql``) the local cluster on the given or default port. For
``psql`` a target cluster older than 9.2 limits it to version 14, and it preloads
libreadline into a ``psql`` older than 13. It also sets ``PGSYSCONFDIR`` when unset, and may
set ``PGHOST``, ``PGPORT`` and ``PGDATABASE`` from a cluster. :func:`wrapped_client` gives
the same binary and environment only where every one of those rules provably makes no
difference (for ``pg_dump`` and ``pg_restore``: every local cluster is of the newest version), and otherwise
says to run the wrapper.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

WRAPPER = "/usr/share/postgresql-common/pg_wrapper"
"""postgresql-common's wrapper, which ``/usr/bin/psql`` links to on Debian and Ubuntu."""
BINROOT = Path("/usr/lib/postgresql")
"""Where the wrapper looks for ``<version>/bin/<program>``."""
CLUSTER_CONFIG = Path("/etc/postgresql")
"""Where local clusters are configured (``<version>/<cluster>/postgresql.conf``)."""
USER_CLUSTERS = Path("/etc/postgresql-common/user_clusters")
"""The system's map of users to clusters (``~/.postgresqlrc`` is each user's); an entry is left to the wrapper."""
SYSCONFDIR = "/etc/postgresql-common"
"""The ``PGSYSCONFDIR`` the wrapper sets when it is unset."""
OLDEST_UNLIMITED = 9.2
"""A cluster older than this makes the wrapper choose a psql of version 14 at most."""
NEWEST_PRELOADED = 13
"""The wrapper preloads libreadline into a psql older than this."""
_VERSION_DIR = re.compile(r"\d+\.?\d+")  # the wrapper's own pattern: "15", "9.6" (not "9")
_TARGET = ("host", "port", "dbname")
_UNWRAPPED = ("psql", "pg_dump", "pg_restore")


def wrapped_client(path: str, params: Mapping[str, str]) -> tuple[str, dict[str, str]] | None:
    """The binary and extra environment the wrapper at *path* would run; None to run the wrapper.

    *path* is ``psql``, ``pg_dump`` or ``pg_restore`` as found on ``PATH``. *params* are the connection
    string's: when it names the host, port and database, nothing the wrapper puts in
    ``PGHOST``/``PGPORT``/``PGDATABASE`` reaches libpq.
    """
    program = Path(path).name
    if program not in _UNWRAPPED or os.path.realpath(path) != WRAPPER or not all(params.get(k) for k in _TARGET):
        return None
    home = Path(os.environ.get("HOME") or Path.home())  # as the wrapper: $HOME, else the passwd entry
    if "PGCLUSTER" in os.environ or _has_entries(home / ".postgresqlrc") or _has_entries(USER_CLUSTERS):
        return None
    binaries = _versions(BINROOT)
    found = sorted((float(v), BINROOT / v / "bin" / program) for v in binaries)
    found = [(version, binary) for version, binary in found if os.access(binary, os.X_OK)]
    clusters = [float(v) for v in _versions(CLUSTER_CONFIG)]
    if not found:
        return None
    newest, binary = found[-1]
    if program == "psql":
        if min([float(v) for v in binaries] + clusters) < OLDEST_UNLIMITED or newest < NEWEST_PRELOADED:
            return None
    elif any(version != newest for version in clusters):
        return None  # the wrapper may take a local cluster's version: the one on the given or default port
    env = {} if "PGSYSCONFDIR" in os.environ else {"PGSYSCONFDIR": SYSCONFDIR}
    return str(binary), env


def _versions(root: Path) -> set[str]:
    """The version-named folders of *root* (``15``, ``9.6``)."""
    try:
        names: Iterable[str] = os.listdir(root)
    except OSError:
        return set()
    return {name for name in names if _VERSION_DIR.fullmatch(name)}


def _has_entries(file: Path) -> bool:
    """Whether the cluster map *file* exists with a line other than a comment or blank."""
    try:
        lines = file.read_text(errors="replace").splitlines()
    except OSError:
        return False
    return any(line.strip() and not line.lstrip().startswith("#") for line in lines)
