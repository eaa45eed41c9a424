"""Database URLs: parsing, driver selection, and keeping passwords out of sight.

URLs follow SQLAlchemy's ``dialect+driver://user:password@host:port/database?key=value``
form. Parsing is done by SQLAlchemy (imported lazily, only when a URL is parsed). Every
password seen while parsing is remembered so that :func:`redact` can blank it out of any
text that leaves the process: errors, logs and manifests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

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


def url_scheme(raw: str) -> str:
    """Return the part of *raw* before ``://`` (``postgresql+psycopg``), or raise InvalidURLError."""
    match = _SCHEME.match(raw)
    if not match:
        raise InvalidURLError(
            f"malformed database URL {redact(raw)!r}: expected scheme://..., "
            "for example sqlite:///path/to/app.db or postgresql://user@host/dbname"
        )
    return match.group("scheme").lower()


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database URL. ``str()`` and ``repr()`` never show the password."""

    raw: str
    sa_url: URL

    @classmethod
    def parse(cls, raw: str) -> DatabaseURL:
        """Parse *raw*; raise InvalidURLError with an example of a valid URL when it is malformed."""
        url_scheme(raw)
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            sa_url = make_url(raw)
        except (ArgumentError, ValueError) as exc:
            raise InvalidURLError(
                f"malformed database URL {redact(raw)!r} ({redact(str(exc))}): "
                "expected dialect[+driver]://[user[:password]@]host[:port]/database"
            ) from None
        remember_secret(sa_url.password if isinstance(sa_url.password, str) else None)
        return cls(raw=raw, sa_url=sa_url)

    @property
    def scheme(self) -> str:
        """The full scheme, e.g. ``postgresql+psycopg``."""
        return url_scheme(self.raw)

    @property
    def backend(self) -> str:
        """The scheme without the ``+driver`` part, e.g. ``postgresql``; it selects the driver."""
        return self.sa_url.get_backend_name().lower()

    @property
    def database(self) -> str | None:
        """The database part: a name, or for file-based engines a path."""
        return self.sa_url.database

    @property
    def username(self) -> str | None:
        """The user name, if any."""
        return self.sa_url.username

    @property
    def password(self) -> str | None:
        """The password, if any. Never log or print it."""
        password = self.sa_url.password
        return password if isinstance(password, str) else None

    @property
    def host(self) -> str | None:
        """The host name, if any."""
        return self.sa_url.host

    @property
    def port(self) -> int | None:
        """The port, if any."""
        return self.sa_url.port

    @property
    def query(self) -> dict[str, str]:
        """Query parameters (``?sslmode=require``); repeated keys keep their last value."""
        return {key: value if isinstance(value, str) else value[-1] for key, value in self.sa_url.query.items()}

    def safe(self) -> str:
        """The URL as text with the password replaced by ***."""
        return self.sa_url.render_as_string(hide_password=True)

    def __str__(self) -> str:
        return self.safe()

    def __repr__(self) -> str:
        return f"DatabaseURL({self.safe()!r})"
