"""``dbkeeper drill --into URL``: a new, uniquely named scratch database on an existing server, dropped afterwards.

The database is created by the drill (``dbkeeper_drill_`` and random hex, from
``template0`` with the backup's encoding and locale, as a restore would), so it is known
to be the drill's own: ``CREATE DATABASE`` fails rather than adopt an existing one. Only
that name is ever dropped, and only when this drill created it. The connecting user needs
``CREATEDB`` (and owns the scratch database, so it may drop it).
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

from dbkeeper.plugin import DatabaseError, DatabaseURL, DrillRequest, DrillTarget, error_line, note
from dbkeeper_postgresql.bounded import set_timeouts
from dbkeeper_postgresql.connections import APPLICATION_NAME, CONNECTION_DEFAULTS, MAINTENANCE_DATABASES, Endpoint
from dbkeeper_postgresql.restore import create_database

DROP_SECONDS = 60.0
"""How long the ``DROP DATABASE`` may take (or wait for a lock) before it is given up."""
FORCE_SINCE = 130000
"""``DROP DATABASE … WITH (FORCE)`` exists from PostgreSQL 13."""


@contextlib.contextmanager
def scratch_database(request: DrillRequest, into: DatabaseURL) -> Iterator[DrillTarget]:
    """A new database on *into*'s server for the drill to restore into; dropped on exit (unless kept)."""
    name = f"dbkeeper_drill_{os.urandom(4).hex()}"
    target = Endpoint.from_url(into).with_database(name)
    create_database(target, request.backup.details)
    kept = False
    try:
        yield DrillTarget(
            url=_with_database(into, name),
            kind=f"a scratch database {name} on {into.host or 'the local socket'}",
            connect=f"psql {shlex.quote(_shown(target).conninfo())}",
            stop=f"psql {shlex.quote(_shown(target).with_database(MAINTENANCE_DATABASES[0]).conninfo())} -c "
            + shlex.quote(f"DROP DATABASE {name}"),
        )
        kept = request.keep
    finally:
        if not kept:
            _drop(target)


def _with_database(url: DatabaseURL, name: str) -> DatabaseURL:
    """*url* (credentials, host, parameters) naming the database *name*."""
    parts = urlsplit(url.raw)
    return DatabaseURL.parse(urlunsplit(parts._replace(path="/" + quote(name, safe=""))))


def _shown(endpoint: Endpoint) -> Endpoint:
    """*endpoint* with only the parameters a person types (no defaults of ours, no password)."""
    defaults = {"application_name": APPLICATION_NAME, **CONNECTION_DEFAULTS}
    params = {key: value for key, value in endpoint.params.items() if defaults.get(key) != value}
    return endpoint._replace(params=params, password=None)


def _drop(target: Endpoint) -> None:
    """Drop the scratch database (closing any session left on it); say so if that fails."""
    import psycopg
    from psycopg import sql

    statement = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(target.database or ""))
    try:
        with target.connect_maintenance() as admin:
            set_timeouts(admin, DROP_SECONDS, DROP_SECONDS)
            force = sql.SQL(" WITH (FORCE)") if admin.info.server_version >= FORCE_SINCE else sql.SQL("")
            admin.execute(statement + force)
    except (DatabaseError, psycopg.Error) as exc:
        note(
            f"could not drop the drill's scratch database {target.database} on {target.label}: {error_line(exc)}; "
            "drop it by hand",
            always=True,
        )
