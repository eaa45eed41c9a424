"""Reaching a server from a dbkeeper URL: libpq parameters, passwords and connection errors.

``postgresql://``, ``postgres://`` and ``postgresql+psycopg://`` URLs are accepted. The
host, port, user and database come from the URL; every query parameter (``sslmode``,
``host=/unix/socket/dir``, ``connect_timeout``, ``application_name`` …) is a libpq
connection parameter and is passed through unchanged, both to psycopg and to the client
tools; :data:`CONNECTION_DEFAULTS` bound the waits for a silent server unless the URL
sets them. The password never reaches a command line: psycopg gets it in-process, the tools
through a passfile in memory (see :func:`Endpoint.client_env`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote, urlsplit, urlunsplit

from dbkeeper.plugin import (
    DatabaseError,
    DatabaseNotFoundError,
    DatabaseURL,
    InvalidURLError,
    error_line,
    redact,
    secret_file,
)

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import URL

DBAPI = "psycopg"
APPLICATION_NAME = "dbkeeper"
CONNECTION_DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "60000",
}
"""libpq parameters every connection gets unless the URL gives its own (``?connect_timeout=30``).

``connect_timeout`` (seconds) bounds the whole connection attempt — TCP, TLS and
authentication — so a server that accepts and never answers is given up on after 10 s
per address (libpq's default is to wait forever; the kernel gave up after about 130 s).
Over TCP, keepalives (first probe after 30 s of silence, then every 10 s, 3 unanswered
probes) and ``tcp_user_timeout`` (60,000 ms for sent data to be acknowledged) drop a
connection whose server or network went away. A server that stays reachable but takes
long to answer a query is waited for: dumps and restores run long statements.
"""
MAINTENANCE_DATABASES = ("postgres", "template1")
"""Where to connect to create a database or look one up, in order of preference."""

MISSING_DATABASE = re.compile(r'database "(?P<name>.*)" does not exist')


def connection_failure(text: str) -> str:
    """The telling part of a libpq connection error, on one line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    fatal = [line for line in lines if "FATAL:" in line or "failed:" in line]
    line = (fatal or lines or ["unknown error"])[-1]
    line = re.sub(r"^connection failed:\s*", "", line)
    line = re.sub(r"^connection to server (at|on) .*? failed:\s*", "", line)
    return re.sub(r"\s+", " ", line.replace("FATAL:", "")).strip()


def explained(reason: str, params: Mapping[str, Any], bound: str | None = None) -> str:
    """*reason* (see :func:`connection_failure`), saying how long was waited when it is a timeout.

    *bound* says why ``connect_timeout`` is what it is when a caller chose it (a deadline).
    """
    if "timeout expired" not in reason:
        return reason
    if bound is not None:
        return f"{reason}: the server did not answer within connect_timeout={params.get('connect_timeout')} s ({bound})"
    seconds = params.get("connect_timeout")
    given = seconds is not None and str(seconds) != CONNECTION_DEFAULTS["connect_timeout"]
    waited = f"connect_timeout={seconds} s from the URL" if given else f"{CONNECTION_DEFAULTS['connect_timeout']} s"
    return (
        f"{reason}: the server did not answer within {waited} — check that it is a PostgreSQL server and not "
        "overloaded, or wait longer with ?connect_timeout=SECONDS in the URL"
    )


def _conninfo_value(value: str) -> str:
    escaped = re.sub(r"([\\'])", r"\\\1", value)
    return f"'{escaped}'" if not value or re.search(r"\s", escaped) else escaped


def database_error(exc: BaseException, what: str) -> DatabaseError:
    """A one-line DatabaseError for a psycopg error, passwords masked."""
    return DatabaseError(f"{what}: {error_line(exc)}")


class Endpoint(NamedTuple):
    """One database on one server, as libpq parameters plus a password kept apart."""

    url: DatabaseURL
    params: dict[str, str]
    password: str | None
    timeout_bound: str | None = None
    """Why ``connect_timeout`` is what it is, when a caller chose it (see :func:`explained`)."""

    @classmethod
    def from_url(cls, url: DatabaseURL) -> Endpoint:
        """The libpq parameters of *url*; an error for a DBAPI other than psycopg."""
        if "+" in url.scheme and url.scheme.split("+", 1)[1] != DBAPI:
            raise InvalidURLError(
                f"{url} names the DBAPI {url.scheme.split('+', 1)[1]!r}; dbkeeper-postgresql connects with "
                f"psycopg 3: use postgresql://, postgres:// or postgresql+psycopg://"
            )
        params: dict[str, str] = {"application_name": APPLICATION_NAME, **CONNECTION_DEFAULTS}
        for key, value in (
            ("host", url.host),
            ("port", str(url.port) if url.port else None),
            ("user", url.username),
            ("dbname", url.database),
        ):
            if value:
                params[key] = value
        params.update(url.query)  # libpq parameters, passed through (host=/socket/dir too)
        if "password" in params:
            raise InvalidURLError(f"{url.safe()}: put the password in the URL's user:password@ part, not in ?password=")
        return cls(url, params, url.password)

    @property
    def database(self) -> str | None:
        """The database name the URL gives (libpq defaults it to the user name when absent)."""
        return self.params.get("dbname")

    def with_database(self, name: str) -> Endpoint:
        """The same server and credentials, another database."""
        return self._replace(params={**self.params, "dbname": name})

    def with_params(self, **params: str) -> Endpoint:
        """The same endpoint with more libpq parameters (``client_encoding=UTF8``)."""
        return self._replace(params={**self.params, **params})

    def conninfo(self) -> str:
        """A libpq connection string without the password (safe for a command line).

        Each value is escaped as libpq reads it (and as psycopg's ``make_conninfo`` writes
        it): a backslash or quote gets a backslash, a value with white space or an empty
        one is single-quoted. libpq itself (psycopg, ``psql``, ``pg_dump``) refuses an
        unknown parameter name.
        """
        return " ".join(f"{key}={_conninfo_value(value)}" for key, value in self.params.items())

    @property
    def label(self) -> str:
        """The URL for messages, password masked, naming the database actually used."""
        if self.params.get("dbname") == self.url.database:
            return self.url.safe()
        parts = urlsplit(self.url.safe())
        return urlunsplit(parts._replace(path="/" + quote(self.params.get("dbname", ""), safe="")))

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
        """A psycopg connection; a missing database raises DatabaseNotFoundError, any failure one line."""
        import psycopg

        try:
            return psycopg.connect(self.conninfo(), password=self.password, autocommit=autocommit)
        except psycopg.Error as exc:
            raise self.connect_error(str(exc)) from None

    def connect_error(self, message: str) -> DatabaseError:
        """The one-line error for libpq's connection failure *message*; DatabaseNotFoundError for a missing database."""
        reason = explained(redact(connection_failure(message)), self.params, self.timeout_bound)
        if MISSING_DATABASE.search(reason):
            return DatabaseNotFoundError(f"cannot connect to {self.label}: {reason} — check the database name")
        return DatabaseError(f"cannot connect to {self.label}: {reason}")

    def connect_maintenance(self) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit connection to a maintenance database on the same server."""
        failure: DatabaseError | None = None
        for name in MAINTENANCE_DATABASES:
            try:
                return self.with_database(name).connect(autocommit=True)
            except DatabaseNotFoundError as exc:
                failure = exc
        assert failure is not None
        raise failure

    @contextlib.contextmanager
    def client_env(self) -> Iterator[dict[str, str]]:
        """Environment for pg_dump/pg_restore/psql: the password in a private passfile.

        The passfile (:func:`dbkeeper.plugin.secret_file`: in memory, read as ``/dev/fd/N``,
        never in the backup directory) matches any host, port, database and user, so it
        serves every connection of this operation; an inherited ``PGPASSWORD`` is blanked so
        that it cannot take precedence over the URL's password. Without a password in the
        URL the user's own ``~/.pgpass`` or ``PGPASSWORD`` apply.
        """
        if self.password is None:
            yield {}
            return
        escaped = self.password.replace("\\", "\\\\").replace(":", "\\:")
        with secret_file(f"*:*:*:*:{escaped}\n", secret=self.password) as path:
            yield {"PGPASSFILE": path, "PGPASSWORD": ""}


def sqlalchemy_url(url: DatabaseURL) -> URL:
    """SQLAlchemy's URL for *url*, with the psycopg 3 dialect whatever the scheme's spelling."""
    Endpoint.from_url(url)  # reject a foreign DBAPI with our message
    return url.sa_url.set(drivername=f"postgresql+{DBAPI}")
