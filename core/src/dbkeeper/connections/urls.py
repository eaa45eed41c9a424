"""Database URLs: parsing, driver selection, and keeping passwords out of sight.

URLs follow SQLAlchemy's ``dialect+driver://user:password@host:port/database?key=value``
form (``sqlite:///relative.db``, ``sqlite:////absolute.db``). Every
password seen while parsing is remembered so that :func:`redact` can blank it out of any
text that leaves the process: errors, logs and manifests; :func:`error_line` makes a
database library's error one such line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from dbkeeper.errors import InvalidURLError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

_MASK = "***"
_known_secrets: set[str] = set()
_USERINFO_PASSWORD = re.compile(
    r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]*:)(?P<password>\S*?)(?=@[^@\s/?]*(?:[/?\s'\"]|$))"
)
_SCHEME = re.compile(r"^(?P<scheme>[a-zA-Z][\w+.-]*)://")


def remember_secret(secret: str | None) -> None:
    """Register a secret (a password) so that :func:`redact` hides it wherever it appears."""
    if secret and len(secret) >= 3:
        _known_secrets.add(secret)


def redact(text: str) -> str:
    """Return *text* with every known password and every ``user:password@`` replaced by ***."""
    text = _USERINFO_PASSWORD.sub(lambda m: m.group("head") + _MASK, text)
    for secret in sorted(_known_secrets, key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text


def error_line(error: BaseException, *, with_type: bool = False) -> str:
    """A database library's error as one line for a message, passwords masked.

    A SQLAlchemy error stands for the driver's error it wraps (``.orig``). An error made of a
    numeric code and a message (PyMySQL's ``(1146, "Table … doesn't exist")``) reads
    ``(1146) Table … doesn't exist``, its line breaks turned into spaces (the message may
    quote SQL across lines); of any other error the first line is kept (later lines are
    detail, such as PostgreSQL's ``LINE 1: …``). An error without a message is named by its
    type; *with_type* puts the type's name first (``OperationalError: no such table: x``).
    """
    detail = getattr(error, "orig", None) or error
    args = detail.args
    if len(args) >= 2 and isinstance(args[0], int):
        text = " ".join(f"({args[0]}) {args[1]}".split())
    else:
        text = next((line.strip() for line in str(detail).splitlines() if line.strip()), "")
    name = type(detail).__name__
    if with_type:
        return redact(f"{name}: {text}")
    return redact(text or name)


def malformed(raw: str, problem: str, origin: str | None = None) -> InvalidURLError:
    """The error for a URL that does not parse: the URL (password masked), where it came from, what is wrong.

    *origin* names the URL's source when the user did not type it, e.g. ``the DATABASE_URL
    environment variable``, so the message says where to look.
    """
    source = f" (from {origin})" if origin else ""
    return InvalidURLError(f"malformed database URL {redact(raw)!r}{source}: {problem}")


def url_scheme(raw: str, origin: str | None = None) -> str:
    """Return the part of *raw* before ``://`` (``postgresql+psycopg``), or raise InvalidURLError."""
    match = _SCHEME.match(raw)
    if not match:
        raise malformed(
            raw, "expected scheme://..., for example sqlite:///path/to/app.db or postgresql://user@host/dbname", origin
        )
    return match.group("scheme").lower()


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database URL. ``str()`` and ``repr()`` never show the password.

    Parsing uses the standard library, so dispatching a URL to its driver imports no
    database library; :attr:`sa_url` builds SQLAlchemy's URL when a driver needs one.
    """

    raw: str
    scheme: str
    username: str | None
    password: str | None
    host: str | None
    port: int | None
    database: str | None
    query: dict[str, str]

    @classmethod
    def parse(cls, raw: str, *, origin: str | None = None) -> DatabaseURL:
        """Parse *raw*; raise InvalidURLError with an example of a valid URL when it is malformed.

        *origin* says where *raw* came from when the user did not type it (see :func:`malformed`).
        """
        scheme = url_scheme(raw, origin)
        parts = urlsplit(raw)
        try:
            port = parts.port
        except ValueError:
            raise malformed(
                raw,
                "the port is not a number; expected dialect[+driver]://[user[:password]@]host[:port]/database",
                origin,
            ) from None
        password = unquote(parts.password) if parts.password is not None else None
        remember_secret(password)
        return cls(
            raw=raw,
            scheme=scheme,
            username=unquote(parts.username) if parts.username else None,
            password=password,
            host=parts.hostname,
            port=port,
            database=unquote(parts.path[1:]) or None,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
        )

    @property
    def backend(self) -> str:
        """The scheme without the ``+driver`` part, e.g. ``postgresql``; it selects the driver."""
        return self.scheme.split("+", 1)[0]

    @cached_property
    def sa_url(self) -> URL:
        """SQLAlchemy's URL object for the same text (imports SQLAlchemy)."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            return make_url(self.raw)
        except (ArgumentError, ValueError) as exc:
            raise InvalidURLError(f"malformed database URL {self.safe()!r}: {redact(str(exc))}") from None

    def safe(self) -> str:
        """The URL as text with the password replaced by ***."""
        parts = urlsplit(self.raw)
        if parts.password is None:
            return self.raw
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        return urlunsplit(parts._replace(netloc=f"{user}:{_MASK}@{hostport}"))

    def __str__(self) -> str:
        return self.safe()

    def __repr__(self) -> str:
        return f"DatabaseURL({self.safe()!r})"
