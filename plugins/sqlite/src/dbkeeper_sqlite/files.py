"""SQLite database files: locating them from URLs, opening, counting and checking them."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from dbkeeper.plugin import DatabaseError, DatabaseNotFoundError, DatabaseURL, IntegrityError

IN_MEMORY = {"", ":memory:"}
BUSY_TIMEOUT = 60.0
"""Seconds to wait for another process's lock (a writer committing) before giving up."""


def database_path(url: DatabaseURL, *, why_not: str = "has no file to back up or restore") -> Path:
    """The file a ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` URL names.

    An in-memory URL is refused; *why_not* says why it is of no use to the caller.
    """
    if (url.database or "") in IN_MEMORY or url.query.get("mode") == "memory":
        raise DatabaseError(f"{url} is an in-memory database, which {why_not}; use sqlite:///path/to/file.db")
    return Path(url.database or "").expanduser()


def require_file(path: Path) -> None:
    """Raise DatabaseNotFoundError unless *path* is an existing file."""
    if not path.is_file():
        raise DatabaseNotFoundError(
            f"SQLite database file {path} does not exist — check the URL: sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db"
        )


@contextlib.contextmanager
def opened(path: Path, *, readonly: bool = False, timeout: float = BUSY_TIMEOUT) -> Iterator[sqlite3.Connection]:
    """An autocommit connection to the file at *path*, closed afterwards; never creates it when *readonly*.

    *timeout*: seconds to wait for another connection's lock before a statement fails as busy.
    """
    target = f"{path.resolve().as_uri()}?mode=ro" if readonly else str(path)
    try:
        conn = sqlite3.connect(target, uri=readonly, isolation_level=None, check_same_thread=False, timeout=timeout)
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot open SQLite database {path}: {exc}") from None
    try:
        yield conn
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"SQLite database {path}: {exc}") from None
    finally:
        conn.close()


def disk_is_full(exc: sqlite3.Error) -> bool:
    """Whether SQLite failed because the file system it wrote to had no room (``SQLITE_FULL``)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_FULL


def table_names(conn: sqlite3.Connection) -> list[str]:
    """User tables (not SQLite's own ``sqlite_*`` tables), sorted."""
    rows = conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    )
    return [name for (name,) in rows]


def quote_identifier(name: str) -> str:
    """``name`` as a double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per user table, read in the connection's current transaction."""
    return {
        name: conn.execute(f"SELECT count(*) FROM {quote_identifier(name)}").fetchone()[0] for name in table_names(conn)
    }


def has_tables(path: Path) -> bool:
    """Whether the file at *path* exists and holds any schema object (or is not SQLite at all)."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    try:
        with opened(path, readonly=True) as conn:
            objects: int = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
        return objects > 0
    except DatabaseError:
        return True  # not a database we understand: treat as data worth keeping


def integrity_problems(conn: sqlite3.Connection, *, quick: bool) -> list[str]:
    """What ``PRAGMA quick_check``/``integrity_check`` reports, or nothing when the file is sound."""
    pragma = "quick_check" if quick else "integrity_check"
    try:
        results = [row[0] for row in conn.execute(f"PRAGMA {pragma}(20)")]
    except sqlite3.DatabaseError as exc:
        return [f"{pragma} failed: {exc}"]
    return check_results(pragma, results)


def check_results(pragma: str, results: list[str]) -> list[str]:
    """The problems in what ``PRAGMA quick_check``/``integrity_check`` returned (nothing for ``ok``)."""
    if results == ["ok"]:
        return []
    lines = [line.strip() for result in results for line in result.splitlines()]  # one problem per line
    return [f"{pragma}: {line}" for line in lines if line and not line.startswith("***")]


def check_restored(path: Path, expected: dict[str, int] | None) -> dict[str, int]:
    """Open a freshly written database, count its rows, and compare them with the backup's.

    No ``quick_check`` here: the backup checked its snapshot when it was taken, and the
    SHA256 proved every restored byte equal to what was stored (``verify --deep`` runs
    the full ``integrity_check`` on demand).
    """
    try:
        with opened(path) as conn:
            counts = row_counts(conn)
    except DatabaseError as exc:
        raise IntegrityError(f"the restored database cannot be read ({exc}); the target was not touched") from None
    if expected is not None and counts != expected:
        differing = sorted(set(counts) ^ set(expected) | {t for t in counts if counts[t] != expected.get(t)})
        raise IntegrityError(
            f"the restored database's row counts differ from the backup's (tables: {', '.join(differing[:5])}); "
            "the target was not touched"
        )
    return counts
