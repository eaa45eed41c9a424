"""The two backup formats: ``sqlite`` (the database file itself) and ``sql`` (a text dump).

Each format knows how to *dump* a consistent snapshot of a source file into an artifact
and how to *materialize* an artifact back into a database file. Restore and deep verify
both materialize; they differ only in where the file goes and what is checked.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from dbkeeper.plugin import (
    BACKUP_ELSEWHERE,
    CHUNK_SIZE,
    ArtifactReader,
    ArtifactSink,
    BackupFacts,
    DatabaseError,
    DumpResult,
    copy_into,
    disk_full,
    full_error,
    human_bytes,
    naming,
)
from dbkeeper_sqlite.files import disk_is_full, integrity_problems, opened, row_counts
from dbkeeper_sqlite.statements import split_statements

HEADER_PRAGMAS = ("user_version", "application_id")
"""Database header values a SQL dump must carry itself (``iterdump`` leaves them out)."""
SQL_BATCH = 1 << 20  # bytes of SQL text gathered before one write into the pipeline


class Format(Protocol):
    """How one backup format is written and read back."""

    name: str
    suffix: str

    def dump(self, source: Path, artifacts: ArtifactSink, scratch: Path, *, check: bool) -> DumpResult:
        """Write a consistent snapshot of *source* as one artifact; *check* runs ``PRAGMA quick_check`` too."""
        ...

    def materialize(self, reader: ArtifactReader, dest: Path) -> None:
        """Write the database the artifact holds into the (new, empty) file *dest*.

        A file system that refuses the writes raises an ``OSError`` naming *dest*; the
        caller, who knows whether *dest* is a restore target or scratch space, says
        what to do about it.
        """
        ...


def _details(conn: sqlite3.Connection) -> dict[str, object]:
    return {
        "page_size": conn.execute("PRAGMA page_size").fetchone()[0],
        "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
        "user_version": conn.execute("PRAGMA user_version").fetchone()[0],
        "application_id": conn.execute("PRAGMA application_id").fetchone()[0],
    }


def _refuse_damage(source: Path, problems: list[str]) -> None:
    """A damaged database is not backed up: it would not restore, and a 'good' backup would hide it."""
    if problems:
        more = f", and {len(problems) - 1} more" if len(problems) > 1 else ""
        raise DatabaseError(
            f"SQLite database {source} is damaged ({problems[0]}{more}); it was not backed up — save what can be "
            f"saved with: sqlite3 {source} .dump > salvaged.sql (or .recover, where your sqlite3 has it)"
        )


def _quick_check(path: Path) -> list[str]:
    """``PRAGMA quick_check`` of the file at *path*, on a connection of its own."""
    with opened(path, readonly=True) as conn:
        return integrity_problems(conn, quick=True)


def _result(source: Path, snapshot: sqlite3.Connection, origin: sqlite3.Connection) -> DumpResult:
    """Count the rows of the consistent *snapshot*; describe the *origin* database's settings."""
    return DumpResult(
        engine="sqlite",
        engine_version=sqlite3.sqlite_version,
        database=source.stem,
        row_counts=row_counts(snapshot),
        details=_details(origin),
    )


def _private_file(path: Path) -> None:
    """Create *path* empty and readable by its owner only (SQLite keeps the mode)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class FileFormat:
    """The database file, copied with SQLite's online backup API in one step.

    One step means one read transaction on the source: a consistent snapshot even while
    other processes write (in WAL mode they are not even blocked). The copy goes to a
    scratch file, which is then streamed into the pipeline; ``zstd -dc`` of the artifact
    is a database equal to the source.
    """

    name = "sqlite"
    suffix = ".db"

    def dump(self, source: Path, artifacts: ArtifactSink, scratch: Path, *, check: bool) -> DumpResult:
        """Snapshot *source* into *scratch*, count its rows, stream it into the artifact."""
        snapshot = scratch / "snapshot.db"
        _private_file(snapshot)
        with opened(source, readonly=True) as src, opened(snapshot) as dst:
            dst.execute("PRAGMA journal_mode = OFF")
            dst.execute("PRAGMA synchronous = OFF")
            try:
                # Take the read lock through the busy handler rather than backup()'s 250 ms polling.
                src.execute("BEGIN")
                src.execute("SELECT count(*) FROM sqlite_schema")
                src.backup(dst, pages=-1)
                src.execute("COMMIT")
            except sqlite3.Error as exc:
                if disk_is_full(exc):  # the snapshot's file system, not the source
                    needed = f"the snapshot needs {human_bytes(source.stat().st_size)}"
                    raise disk_full(snapshot, elsewhere=BACKUP_ELSEWHERE, needed=needed) from None
                raise DatabaseError(f"cannot read SQLite database {source}: {exc}") from None
            try:
                result = _result(source, dst, src)
            except sqlite3.DatabaseError as exc:  # counting met damage: say what the check says
                _refuse_damage(source, integrity_problems(dst, quick=True) or [str(exc)])
                raise
        with (
            ThreadPoolExecutor(max_workers=1) as checker,
            snapshot.open("rb") as file,
            artifacts.open(source.stem + self.suffix, size_hint=snapshot.stat().st_size) as out,
        ):
            checked = checker.submit(_quick_check, snapshot) if check else None  # overlaps the streaming
            shutil.copyfileobj(file, out, CHUNK_SIZE)
            if checked is not None:
                _refuse_damage(source, checked.result())  # before the artifact is committed
        snapshot.unlink()
        return result

    def materialize(self, reader: ArtifactReader, dest: Path) -> None:
        """The artifact is the file: copy it."""
        with naming(dest), dest.open("r+b") as file:
            copy_into(reader, file)
            file.flush()
            os.fsync(file.fileno())


class SqlFormat:
    """A logical dump (``CREATE``/``INSERT`` statements) that ``sqlite3 new.db < dump.sql`` loads.

    Written by Python's ``iterdump`` inside one read transaction, so the text is a
    consistent snapshot; read back statement by statement, never whole.
    """

    name = "sql"
    suffix = ".sql"

    def dump(self, source: Path, artifacts: ArtifactSink, scratch: Path, *, check: bool) -> DumpResult:
        """Dump *source* as SQL text, in one read transaction."""
        with opened(source, readonly=True) as conn:
            conn.execute("BEGIN")
            if check:
                _refuse_damage(source, integrity_problems(conn, quick=True))
            result = _result(source, conn, conn)
            with artifacts.open(source.stem + self.suffix) as out:
                batch = [f"PRAGMA {name} = {result.details[name]};" for name in HEADER_PRAGMAS if result.details[name]]
                size = 0
                for statement in conn.iterdump():
                    batch.append(statement)
                    size += len(statement)
                    if size >= SQL_BATCH:
                        out.write(("\n".join(batch) + "\n").encode())
                        batch, size = [], 0
                out.write(("\n".join(batch) + "\n").encode())
            conn.execute("COMMIT")
        return result

    def materialize(self, reader: ArtifactReader, dest: Path) -> None:
        """Run the dump's statements one at a time against *dest*."""
        with opened(dest) as conn:
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            for statement in split_statements(_lines(reader)):
                try:
                    conn.execute(statement)
                except sqlite3.Error as exc:
                    if disk_is_full(exc):  # the file system of dest, not the dump
                        raise full_error(dest) from None
                    raise DatabaseError(f"the SQL dump does not load: {exc} in {statement[:80]!r}") from None
            conn.execute("PRAGMA synchronous = FULL")
        with dest.open("rb") as file:
            os.fsync(file.fileno())


def _lines(reader: ArtifactReader) -> Iterator[str]:
    """Yield decoded lines (with their newline) from *reader*, streaming."""
    rest = b""
    while chunk := reader.read(CHUNK_SIZE):
        *lines, rest = (rest + chunk).split(b"\n")
        for line in lines:
            yield line.decode() + "\n"
    if rest:
        yield rest.decode()


FORMATS: dict[str, Format] = {fmt.name: fmt for fmt in (FileFormat(), SqlFormat())}


def format_of(backup: BackupFacts) -> Format:
    """The format a backup was written in, or an error if this driver does not know it."""
    try:
        return FORMATS[backup.format]
    except KeyError:
        raise DatabaseError(
            f"backup {backup.id} is in format {backup.format!r}, which this SQLite driver does not "
            f"read ({', '.join(FORMATS)}); upgrade dbkeeper-sqlite"
        ) from None
