"""The ``psql`` that Debian's ``pg_wrapper`` would run, found without running the wrapper.

On Debian and Ubuntu, ``/usr/bin/psql`` (like ``pg_dump``) is a link to postgresql-common's
``pg_wrapper``, a Perl script that takes 15-35 ms to pick a binary under
``/usr/lib/postgresql/<version>/bin``. For ``psql`` its choice is simple: it always runs the
newest installed ``psql``, except that a target cluster older than 9.2 (chosen from
``PGCLUSTER``, ``~/.postgresqlrc``, ``/etc/postgresql-common/user_clusters`` or the local
clusters) limits it to version 14; it also sets ``PGSYSCONFDIR`` when unset, preloads
libreadline into a ``psql`` older than 13, and may set ``PGHOST``, ``PGPORT`` and
``PGDATABASE`` from that cluster. :func:`wrapped_psql` gives the same binary and environment
only where every one of those rules provably makes no difference, and otherwise says to run
the wrapper. ``pg_dump`` is always run through the wrapper: its choice depends on the cluster.
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


def wrapped_psql(path: str, params: Mapping[str, str]) -> tuple[str, dict[str, str]] | None:
    """The binary and extra environment the wrapper at *path* would give ``psql``; None to run the wrapper.

    *params* are the connection string's: when it names the host, port and database, nothing
    the wrapper puts in ``PGHOST``/``PGPORT``/``PGDATABASE`` reaches libpq.
    """
    if os.path.realpath(path) != WRAPPER or not all(params.get(key) for key in _TARGET):
        return None
    home = Path(os.environ.get("HOME") or Path.home())  # as the wrapper: $HOME, else the passwd entry
    if "PGCLUSTER" in os.environ or _has_entries(home / ".postgresqlrc") or _has_entries(USER_CLUSTERS):
        return None
    binaries = _versions(BINROOT)
    psqls = sorted((float(v), BINROOT / v / "bin" / "psql") for v in binaries)
    psqls = [(version, psql) for version, psql in psqls if os.access(psql, os.X_OK)]
    versions = [float(v) for v in binaries | _versions(CLUSTER_CONFIG)]
    if not psqls or min(versions) < OLDEST_UNLIMITED or psqls[-1][0] < NEWEST_PRELOADED:
        return None
    env = {} if "PGSYSCONFDIR" in os.environ else {"PGSYSCONFDIR": SYSCONFDIR}
    return str(psqls[-1][1]), env


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
