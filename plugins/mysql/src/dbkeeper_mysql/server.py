"""Reaching a MySQL or MariaDB server: URLs, PyMySQL connections, client option files.

URLs: ``mysql://``, ``mariadb://`` and ``mysql+pymysql://user:password@host:port/database``,
with ``?unix_socket=/path/to/mysqld.sock`` for a local socket, ``?charset=`` (utf8mb4
by default), TLS (``ssl_mode``, ``ssl_ca``, ``ssl_cert``, ``ssl_key``; see :class:`Tls`) and
timeouts (``connect_timeout``, ``read_timeout``, ``write_timeout``, ``lock_wait_timeout``;
see :class:`Timeouts`).
The client tools get the same connection through an option file held in memory, so that
the password never appears in a command line, an environment variable or a file.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from dbkeeper.plugin import (
    DatabaseError,
    DatabaseNotFoundError,
    DatabaseURL,
    InvalidURLError,
    error_line,
    secret_file,
)

if TYPE_CHECKING:
    import pymysql
    from sqlalchemy.engine import URL

DEFAULT_CHARSET = "utf8mb4"
DEFAULT_PORT = 3306
TIMEOUT_PARAMETERS = ("connect_timeout", "read_timeout", "write_timeout", "lock_wait_timeout")
URL_PARAMETERS = ("unix_socket", "charset", "ssl_mode", "ssl_ca", "ssl_cert", "ssl_key", *TIMEOUT_PARAMETERS)
SSL_MODES = ("disabled", "required", "verify_ca", "verify_identity")
MAX_PACKET = 1 << 30
"""The largest statement sent or received (the server's ``max_allowed_packet`` still applies)."""
UNKNOWN_DATABASE = 1049
CONNECT_FAILED = 2003
"""PyMySQL's "Can't connect to MySQL server" (also a TCP connect that timed out)."""
CONNECTION_LOST = 2013
"""PyMySQL's "Lost connection to MySQL server" (also a handshake that timed out)."""
MAX_TIMEOUT = 31_536_000
"""The longest timeout accepted, in seconds (one year, PyMySQL's own limit)."""
TIMED_OUT = "no answer within"
"""How a connection that timed out is worded (:func:`connect_failure`), whichever client timed out."""


class Timeouts(NamedTuple):
    """How long a connection waits for the server, in seconds; from the URL or the defaults.

    ``connect``: for the TCP connection *and* the server's greeting and authentication, so a
    server that accepts the connection and never answers is given up on after it.
    ``read``/``write``: for any one wait on an established connection (a query's answer, a
    full send buffer). ``lock_wait``: the ``lock_wait_timeout`` a restore's swap waits for
    the target's tables (see :mod:`dbkeeper_mysql.restore`). Whole seconds from a URL; the
    monitoring connection's are fractions of its deadline (see :mod:`dbkeeper_mysql.bounded`).
    """

    connect: float = 10
    read: float = 600
    write: float = 600
    lock_wait: int = 60

    @classmethod
    def from_query(cls, query: Mapping[str, str], label: str) -> Timeouts:
        """Read the ``*_timeout`` parameters of the URL shown as *label*; absent ones keep their default."""
        given = {name: _seconds(query[name], name, label) for name in TIMEOUT_PARAMETERS if name in query}
        return cls(**{name.removesuffix("_timeout"): value for name, value in given.items()})

    def pymysql_options(self) -> dict[str, Any]:
        """Keyword arguments for ``pymysql.connect()`` (the handshake is bounded by :meth:`open`)."""
        return {"connect_timeout": self.connect, "read_timeout": self.connect, "write_timeout": self.write}

    def open(self, connection: pymysql.connections.Connection) -> None:
        """Connect *connection* (made with ``defer_connect=True``), the greeting bounded by ``connect``.

        PyMySQL waits for the server's greeting with its read timeout; the connection is
        therefore made with ``read_timeout=connect`` and given the real read timeout once
        it stands (PyMySQL applies ``_read_timeout`` to the socket before each read).
        """
        connection.connect()
        connection._read_timeout = self.read  # type: ignore[attr-defined]  # private to PyMySQL, absent from its stubs

    def option_lines(self) -> list[str]:
        """Option-file lines for the ``mariadb``/``mysql`` client (``mariadb-dump`` has no such option)."""
        return ["[mysql]", f"connect-timeout={self.connect}"]


def _seconds(text: str, name: str, label: str) -> int:
    """A whole number of seconds from 1 to a year, or a one-line error naming the parameter."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_TIMEOUT:
        raise InvalidURLError(f"{name}={text!r} in {label}: give whole seconds from 1 to {MAX_TIMEOUT}")
    return value


@dataclass(frozen=True)
class Tls:
    """TLS to the server, from the URL's ``ssl_*`` parameters, for PyMySQL and the client tools alike.

    ``ssl_mode`` is MySQL's: ``disabled``, ``required`` (encrypted, the certificate not
    checked), ``verify_ca`` (signed by ``ssl_ca``; the default when ``ssl_ca`` is given) or
    ``verify_identity`` (also issued to the host name in the URL). ``ssl_cert`` and
    ``ssl_key`` present a client certificate. Without any of them, each client does what
    it does by default.
    """

    mode: str | None = None
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str], label: str) -> Tls:
        """Read and check the ``ssl_*`` parameters of the URL shown as *label*."""
        ca, cert, key = (query.get(name) or None for name in ("ssl_ca", "ssl_cert", "ssl_key"))
        mode = (query.get("ssl_mode") or ("verify_ca" if ca else "required" if cert else "")).lower() or None
        if mode is not None and mode not in SSL_MODES:
            raise InvalidURLError(f"ssl_mode={mode!r} in {label}: use one of {', '.join(SSL_MODES)}")
        if mode in ("verify_ca", "verify_identity") and not ca:
            raise InvalidURLError(f"ssl_mode={mode} in {label} needs ssl_ca=/path/to/ca.pem (the CA of the server)")
        if bool(cert) != bool(key):
            raise InvalidURLError(f"ssl_cert and ssl_key go together in {label} (the client certificate and its key)")
        if mode == "disabled" and (ca or cert):
            raise InvalidURLError(f"ssl_mode=disabled in {label} contradicts its ssl_ca/ssl_cert")
        return cls(mode, ca, cert, key)

    @functools.cached_property
    def pymysql_options(self) -> dict[str, Any]:
        """Keyword arguments for ``pymysql.connect()``: an ``ssl.SSLContext`` doing what the mode says.

        Built once (the files are read once), then shared by every connection to the target.
        """
        if self.mode is None:
            return {"ssl_disabled": True}  # PyMySQL's own TLS preference is replaced by prefer_tls()
        if self.mode == "disabled":
            return {"ssl_disabled": True}
        import ssl

        try:
            context = ssl.create_default_context(cafile=self.ca)
            if self.mode != "verify_identity":
                context.check_hostname = False
            if self.mode == "required":
                context.verify_mode = ssl.CERT_NONE
            if self.cert:
                context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidURLError(f"cannot use the TLS files of the URL ({exc.strerror or exc}): check ssl_ca, "
                                  "ssl_cert and ssl_key") from None  # fmt: skip
        return {"ssl": context}

    def option_lines(self) -> list[str]:
        """``[client]`` option lines for MariaDB's and MySQL's tools (``loose-``: each ignores the other's)."""
        if self.mode is None:
            return []
        if self.mode == "disabled":
            return ["loose-skip-ssl", "loose-ssl-mode=DISABLED"]
        files = (("ssl-ca", self.ca), ("ssl-cert", self.cert), ("ssl-key", self.key))
        lines = ["loose-ssl", f"loose-ssl-mode={self.mode.upper()}"]
        lines += [f"{option}={_option_value(path)}" for option, path in files if path]
        if self.mode != "required":  # MariaDB's tools have no CA-only check: they check the host name too
            lines.append("loose-ssl-verify-server-cert")
        return lines


class ServerTarget(NamedTuple):
    """Where and as whom to connect, taken from a URL; ``str()`` never shows the password."""

    url: DatabaseURL
    host: str
    port: int
    unix_socket: str | None
    user: str | None
    password: str | None
    database: str | None
    charset: str
    tls: Tls = Tls()
    timeouts: Timeouts = Timeouts()

    @classmethod
    def from_url(cls, url: DatabaseURL) -> ServerTarget:
        """Read *url*; refuse parameters this driver does not understand."""
        if unknown := sorted(set(url.query) - set(URL_PARAMETERS)):
            raise InvalidURLError(
                f"unsupported parameter {unknown[0]!r} in {url.safe()} (supported: {', '.join(URL_PARAMETERS)})"
            )
        return cls(
            url=url,
            host=url.host or "localhost",
            port=url.port or DEFAULT_PORT,
            unix_socket=url.query.get("unix_socket") or None,
            user=url.username,
            password=url.password,
            database=url.database,
            charset=url.query.get("charset") or DEFAULT_CHARSET,
            tls=Tls.from_query(url.query, url.safe()),
            timeouts=Timeouts.from_query(url.query, url.safe()),
        )

    def __str__(self) -> str:
        return self.url.safe()

    def require_database(self) -> str:
        """The database the URL names, or an error showing where it goes."""
        if not self.database:
            raise InvalidURLError(f"{self} names no database; add it to the URL: mysql://user@host/DATABASE")
        return self.database

    def sa_url(self) -> URL:
        """SQLAlchemy's URL for the ``mysql+pymysql`` dialect (which serves MariaDB too)."""
        from sqlalchemy.engine import URL

        query = {"charset": self.charset}
        if self.unix_socket:
            query["unix_socket"] = self.unix_socket
        return URL.create(
            "mysql+pymysql",
            username=self.user,
            password=self.password,
            host=None if self.unix_socket else self.host,
            port=None if self.unix_socket else self.port,
            database=self.database,
            query=query,
        )

    def connect(self, database: str | None = None, **options: Any) -> pymysql.connections.Connection:
        """An autocommit PyMySQL connection to *database* (default: none selected)."""
        import pymysql

        settings: dict[str, Any] = {
            "user": self.user,
            "password": self.password or "",
            "database": database,
            "charset": self.charset,
            "autocommit": True,
            "max_allowed_packet": MAX_PACKET,
            **self.timeouts.pymysql_options(),
            **self.tls.pymysql_options,
            **options,
            "defer_connect": True,
        }
        if self.unix_socket:
            settings["unix_socket"] = self.unix_socket
        else:
            settings |= {"host": self.host, "port": self.port}
        try:
            connection = pymysql.connect(**settings)
            if self.tls.mode is None:
                prefer_tls(connection)
            self.timeouts.open(connection)
        except pymysql.MySQLError as exc:
            raise self.connect_error(exc, database) from None
        return connection

    def connect_error(self, exc: BaseException, database: str | None) -> DatabaseError:
        """The one-line error for a failed connection, whichever client failed (see :func:`connect_failure`)."""
        code = exc.args[0] if exc.args else None
        if code == UNKNOWN_DATABASE:
            return DatabaseNotFoundError(f"database {database!r} does not exist on {self}")
        return connect_failure(self, error_line(exc), timed_out="timed out" in str(exc))

    @contextlib.contextmanager
    def option_file(self) -> Iterator[str]:
        """A ``[client]`` option file for ``mariadb``/``mariadb-dump``, as a path, for the block.

        Pass it as the *first* option: ``--defaults-file=PATH``. It is a
        :func:`dbkeeper.plugin.secret_file` (in memory, read as ``/dev/fd/N``): the password
        is never written to a file system, so a killed backup or restore leaves it nowhere.
        Without a socket the tools are told to use TCP, as PyMySQL does (they would take
        ``localhost`` to mean the default socket).
        """
        lines = ["[client]", f"default-character-set={_option_value(self.charset)}"]
        if self.user:
            lines.append(f"user={_option_value(self.user)}")
        if self.password is not None:
            lines.append(f"password={_option_value(self.password)}")
        if self.unix_socket:
            lines += [f"socket={_option_value(self.unix_socket)}", "protocol=socket"]
        else:
            lines += [f"host={_option_value(self.host)}", f"port={self.port}", "protocol=tcp"]
        lines += self.tls.option_lines()
        lines += self.timeouts.option_lines()  # last: it opens the [mysql] group
        with secret_file("\n".join(lines) + "\n", secret=self.password) as path:
            yield path


def connect_failure(target: ServerTarget, reason: str, *, timed_out: bool = False) -> DatabaseError:
    """``cannot connect to URL: REASON``: the one form every path (PyMySQL, SQLAlchemy, the tools) reports.

    A connection that timed out names the timeout and how to change it.
    """
    if timed_out:
        reason = (
            f"{TIMED_OUT} {target.timeouts.connect:g} s (connect_timeout; the server accepts no connection or "
            "never answers — check the host and port, or raise ?connect_timeout= in the URL)"
        )
    return DatabaseError(f"cannot connect to {target}: {reason}")


_TOOL_CONNECT_ERROR = re.compile(
    r"Got error: (?P<dump>\d+): \"?(?P<dump_text>.*?)\"? when trying to connect"
    r"|ERROR (?P<client>\d+) \([0-9A-Z]+\)(?: at line \d+)?: (?P<client_text>.*)"
)
_CLIENT_CONNECT_CODES = {1045, 2002, 2003, 2005, 2026}
"""The ``mariadb`` client's errors that mean its connection failed (2013 only during the handshake)."""


def tool_connect_failure(target: ServerTarget, exc: DatabaseError) -> DatabaseError | None:
    """A client tool's failure to connect as :func:`connect_failure` words it, or None for other failures.

    ``mariadb-dump`` says ``Got error: 2003: "…" when trying to connect``; the ``mariadb``
    client says ``ERROR 2003 (HY000): …``.
    """
    match = _TOOL_CONNECT_ERROR.search(str(exc))
    if match is None:
        return None
    if match["dump"]:
        code, text = int(match["dump"]), match["dump_text"]
    else:
        code, text = int(match["client"]), match["client_text"]
        handshake = code == CONNECTION_LOST and ("handshake" in text or "authorization" in text)
        if code not in _CLIENT_CONNECT_CODES and not handshake:
            return None
    timed_out = code == CONNECTION_LOST and ("system error: 110" in text or "timed out" in text)
    return connect_failure(target, f"({code}) {text.strip()}", timed_out=timed_out)


@contextlib.contextmanager
def tool_errors(target: ServerTarget) -> Iterator[None]:
    """For the block: a client tool's failure to connect is reported as every connection failure is."""
    try:
        yield
    except DatabaseError as exc:
        raise tool_connect_failure(target, exc) or exc from None


def _option_value(value: str) -> str:
    """*value* double-quoted for an option file (``#`` and ``;`` would start a comment otherwise)."""
    if "\n" in value or "\r" in value:
        raise InvalidURLError("a user name, password or socket path with a line break cannot be passed to the tools")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ServerInfo(NamedTuple):
    """The server's flavour (``mariadb`` or ``mysql``) and version string."""

    flavor: str
    version: str

    @property
    def dump_tools(self) -> tuple[str, ...]:
        """The dump tool names to look for, this flavour's own first."""
        return ("mariadb-dump", "mysqldump") if self.flavor == "mariadb" else ("mysqldump", "mariadb-dump")

    @property
    def client_tools(self) -> tuple[str, ...]:
        """The command-line client names to look for, this flavour's own first."""
        return ("mariadb", "mysql") if self.flavor == "mariadb" else ("mysql", "mariadb")


def server_info(conn: pymysql.connections.Connection) -> ServerInfo:
    """Ask the server what it is."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT VERSION(), @@version_comment")
        ((version, comment),) = cursor.fetchall()
    text = _text(version)
    flavor = "mariadb" if "mariadb" in f"{text} {_text(comment)}".lower() else "mysql"
    return ServerInfo(flavor, text)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def prefer_tls(connection: pymysql.connections.Connection) -> None:
    """Have *connection* use TLS when the server offers it, its certificate unchecked: PyMySQL's default.

    PyMySQL builds that default's context with ``ssl.create_default_context()``, which reads
    the system's CA certificates (about 17 ms) that an unchecked connection never consults;
    this context reads none. Call it before the connection connects (``defer_connect``).
    """
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection.ssl = True
    connection.ctx = context  # type: ignore[attr-defined]  # PyMySQL's TLS context attribute, missing from its stubs


@contextlib.contextmanager
def admin_connection(target: ServerTarget) -> Iterator[pymysql.connections.Connection]:
    """A connection with no database selected, closed afterwards; errors become one line."""
    import pymysql

    conn = target.connect()
    try:
        yield conn
    except pymysql.MySQLError as exc:
        raise DatabaseError(f"{target}: {error_line(exc)}") from None
    finally:
        conn.close()
