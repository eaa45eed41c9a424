"""Migration files: the format, parsing, checksums, and ``migrate new``.

A migration is a file ``<id>.sql`` (``20261121093000_create_users.sql``)::

    -- dbkeeper: depends-on 20261120120000_create_accounts
    -- dbkeeper: no-transaction
    -- migrate:up
    CREATE TABLE users (id INTEGER PRIMARY KEY, account_id INTEGER);
    -- migrate:down
    DROP TABLE users;

Header lines before ``-- migrate:up`` may be blank, plain SQL comments, or directives
``-- dbkeeper: <directive>``; an unknown directive is an error. The checksum is the
SHA256 of the file with a UTF-8 BOM stripped and CRLF turned into LF, so a checkout with
other line endings is not an edit.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dbkeeper.errors import MigrationError

UP_MARKER = "-- migrate:up"
DOWN_MARKER = "-- migrate:down"
DIRECTIVE_PREFIX = "-- dbkeeper:"
DIRECTIVES = ("depends-on", "no-transaction")
DEFAULT_DIRECTORY = "migrations"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Migration:
    """One migration file, parsed. ``transaction`` is false for ``no-transaction`` ones."""

    id: str
    path: Path
    up: str
    down: str
    depends_on: tuple[str, ...]
    transaction: bool
    checksum: str


def normalise(raw: bytes, path: Path) -> str:
    """The file's text with a BOM stripped and line endings turned into LF."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MigrationError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_migration(path: Path) -> Migration:
    """Parse one migration file; any malformation is a MigrationError naming the file and line."""
    text = normalise(path.read_bytes(), path)
    if not _ID.match(path.stem):
        raise MigrationError(f"{path}: a migration id may hold letters, digits, '_', '.' and '-' only")
    if not text.strip():
        raise MigrationError(f"{path} is empty; a migration needs a '{UP_MARKER}' part")
    if UP_MARKER not in (line.strip().lower() for line in text.split("\n")):
        raise MigrationError(f"{path} has no '{UP_MARKER}' line; put it before the up part")
    depends: list[str] = []
    transaction = True
    part: str | None = None
    parts: dict[str, list[str]] = {"up": [], "down": []}
    for number, line in enumerate(text.split("\n"), start=1):
        marker = line.strip().lower()
        if marker in (UP_MARKER, DOWN_MARKER):
            name = "up" if marker == UP_MARKER else "down"
            if part == name or (name == "up" and part is not None) or (name == "down" and part is None):
                raise MigrationError(
                    f"{path}:{number}: '{line.strip()}' is out of place (one up part, then one down part)"
                )
            part = name
        elif part is not None:
            parts[part].append(line)
        elif line.strip().startswith(DIRECTIVE_PREFIX):
            words = line.strip()[len(DIRECTIVE_PREFIX) :].split()
            if not words or words[0] not in DIRECTIVES:
                found = words[0] if words else ""
                raise MigrationError(f"{path}:{number}: unknown directive {found!r} (known: {', '.join(DIRECTIVES)})")
            if words[0] == "depends-on":
                if len(words) < 2:
                    raise MigrationError(f"{path}:{number}: depends-on needs at least one migration id")
                depends.extend(words[1:])
            else:
                transaction = False
        elif line.strip() and not line.strip().startswith("--"):
            raise MigrationError(f"{path}:{number}: SQL before '{UP_MARKER}'; put the up part after that line")
    up, down = ("\n".join(parts[name]).strip() for name in ("up", "down"))
    if not _has_sql(up):
        raise MigrationError(f"{path}: its up part is empty")
    return Migration(
        id=path.stem,
        path=path,
        up=up,
        down=down if _has_sql(down) else "",
        depends_on=tuple(depends),
        transaction=transaction,
        checksum=hashlib.sha256(text.encode()).hexdigest(),
    )


def _has_sql(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.split("\n"))


def load_migrations(directory: Path) -> list[Migration]:
    """Every ``*.sql`` migration in *directory*, sorted by id; a missing directory holds none."""
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise MigrationError(f"{directory} is not a directory of migrations")
    names = sorted(entry.name for entry in os.scandir(directory) if entry.name.endswith(".sql") and entry.is_file())
    return [parse_migration(directory / name) for name in names]


def create_migration(directory: Path | str, name: str) -> Path:
    """Create ``<directory>/<UTC timestamp>_<name>.sql`` from the template; return its path."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise MigrationError(f"{name!r} makes no usable file name; use letters and digits")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{datetime.now(UTC):%Y%m%d%H%M%S}_{slug}.sql"
    if path.exists():
        raise MigrationError(f"{path} already exists; wait a second or choose another name")
    path.write_text(
        f"-- {name}\n"
        "-- Directives (optional): '-- dbkeeper: depends-on <id> ...', '-- dbkeeper: no-transaction'\n"
        f"{UP_MARKER}\n\n"
        f"{DOWN_MARKER}\n\n",
        encoding="utf-8",
    )
    return path
