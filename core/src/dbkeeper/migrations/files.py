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
_MARKERS = {UP_MARKER: "up", DOWN_MARKER: "down"}


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
    _check_outline(path, text)
    lines = text.split("\n")
    first_marker = next(index for index, line in enumerate(lines) if _marker(line) is not None)
    depends, transaction = _read_header(path, lines[:first_marker])
    up, down = _read_parts(path, lines, first_marker)
    if not _has_sql(up):
        raise MigrationError(f"{path}: its up part is empty")
    return Migration(
        id=path.stem,
        path=path,
        up=up,
        down=down if _has_sql(down) else "",
        depends_on=depends,
        transaction=transaction,
        checksum=hashlib.sha256(text.encode()).hexdigest(),
    )


def _check_outline(path: Path, text: str) -> None:
    """Refuse a file whose name is no migration id, or which has no up part at all."""
    if not _ID.match(path.stem):
        raise MigrationError(f"{path}: a migration id may hold letters, digits, '_', '.' and '-' only")
    if not text.strip():
        raise MigrationError(f"{path} is empty; a migration needs a '{UP_MARKER}' part")
    if not any(_marker(line) == "up" for line in text.split("\n")):
        raise MigrationError(f"{path} has no '{UP_MARKER}' line; put it before the up part")


def _marker(line: str) -> str | None:
    """``"up"`` or ``"down"`` when *line* is the marker that starts that part, else None."""
    return _MARKERS.get(line.strip().lower())


def _read_header(path: Path, lines: list[str]) -> tuple[tuple[str, ...], bool]:
    """The directives of the lines before the first marker: the ids depended on, and whether in a transaction."""
    depends: list[str] = []
    transaction = True
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if text.startswith(DIRECTIVE_PREFIX):
            words = text[len(DIRECTIVE_PREFIX) :].split()
            _check_directive(f"{path}:{number}", words)
            if words[0] == "depends-on":
                depends.extend(words[1:])
            else:
                transaction = False
        elif text and not text.startswith("--"):
            raise MigrationError(f"{path}:{number}: SQL before '{UP_MARKER}'; put the up part after that line")
    return tuple(depends), transaction


def _check_directive(where: str, words: list[str]) -> None:
    """Refuse an unknown directive, or a ``depends-on`` that names nothing."""
    if not words or words[0] not in DIRECTIVES:
        found = words[0] if words else ""
        raise MigrationError(f"{where}: unknown directive {found!r} (known: {', '.join(DIRECTIVES)})")
    if words[0] == "depends-on" and len(words) < 2:
        raise MigrationError(f"{where}: depends-on needs at least one migration id")


def _read_parts(path: Path, lines: list[str], first_marker: int) -> tuple[str, str]:
    """The up and down parts, from the first marker on: one up part, then at most one down part."""
    if _marker(lines[first_marker]) != "up":
        raise _out_of_place(path, first_marker + 1, lines[first_marker])
    parts: dict[str, list[str]] = {"up": [], "down": []}
    part = "up"
    for number, line in enumerate(lines[first_marker + 1 :], start=first_marker + 2):
        name = _marker(line)
        if name is None:
            parts[part].append(line)
        elif (part, name) == ("up", "down"):
            part = name
        else:
            raise _out_of_place(path, number, line)
    return "\n".join(parts["up"]).strip(), "\n".join(parts["down"]).strip()


def _out_of_place(path: Path, number: int, line: str) -> MigrationError:
    return MigrationError(f"{path}:{number}: '{line.strip()}' is out of place (one up part, then one down part)")


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
