"""Restoring a backup into a database without ever leaving it half-written.

Tables are loaded into a private staging database on the same server
(``dbkeeper_restore_<hex>``), one table per worker with ``--jobs``. The target is not
touched until every artifact has been read to its verified end and every staging table
holds exactly the rows the manifest records. Then the triggers, views, routines and
events are rehearsed in staging (so that, for example, a DEFINER the restoring user may
not set fails before the target changes) and dropped again; the tables move into the
target with one atomic ``RENAME TABLE`` (with ``--force``, the target's old tables move
out in the same statement); and the triggers, views, routines and events are created in
the target.

A selective restore (``--table``) brings only the chosen tables and their triggers; the
rest of the target stays as it is. Foreign keys of the chosen tables that point at tables
not restored are pointed at the target's tables of that name; with ``--force`` the chosen
tables' old versions are dropped just before the new ones are renamed into place, so
that foreign keys of the target's other tables keep pointing at them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbkeeper.contract import ArtifactSource, RestoreRequest, RestoreResult
from dbkeeper.errors import ConfigError, DatabaseError, IntegrityError, TargetNotEmptyError
from dbkeeper_mysql.layout import Layout, TablePart
from dbkeeper_mysql.load import Loader
from dbkeeper_mysql.server import ServerTarget, admin_connection, describe
from dbkeeper_mysql.sqltext import CHUNK, quote_identifier, shown
from dbkeeper_mysql.streams import Cancellable, Concat, PartFilter, unchanged

if TYPE_CHECKING:
    import pymysql


STAGING_PREFIX = "dbkeeper_restore_"
REPLACED_PREFIX = "dbkeeper_replaced_"
_FOREIGN_KEY = re.compile(rb"(  CONSTRAINT `(?:[^`]|``)*` FOREIGN KEY \(.*?\) REFERENCES )`((?:[^`]|``)*)`(?= \()")


def q(name: str) -> str:
    """Shorthand for a quoted identifier in SQL text."""
    return quote_identifier(name)


@dataclass(frozen=True)
class Inventory:
    """What a database holds."""

    tables: list[str]
    views: list[str]
    routines: list[tuple[str, str]]
    events: list[str]
    triggers: list[str]

    @property
    def empty(self) -> bool:
        """Whether it holds nothing at all."""
        return not (self.tables or self.views or self.routines or self.events)

    def summary(self) -> str:
        """What it holds, as ``3 tables, 1 view``."""
        counts = [("table", len(self.tables)), ("view", len(self.views)), ("routine", len(self.routines))]
        counts.append(("event", len(self.events)))
        return ", ".join(f"{n} {what}{'s' if n != 1 else ''}" for what, n in counts if n)


def _query(conn: pymysql.connections.Connection, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with conn.cursor() as cursor:
        cursor.execute(sql, args or None)
        return list(cursor.fetchall())


def inventory(conn: pymysql.connections.Connection, database: str) -> Inventory | None:
    """The contents of *database*, or None when it does not exist."""
    if not _query(conn, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (database,)):
        return None
    listing = _query(
        conn, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (database,)
    )
    return Inventory(
        tables=sorted(name for name, kind in listing if kind != "VIEW"),
        views=sorted(name for name, kind in listing if kind == "VIEW"),
        routines=[
            (kind, name)
            for kind, name in _query(
                conn,
                "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES "
                "WHERE ROUTINE_SCHEMA = %s AND ROUTINE_TYPE <> 'PACKAGE BODY'",
                (database,),
            )
        ],
        events=[
            name
            for (name,) in _query(
                conn, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s", (database,)
            )
        ],
        triggers=[
            name
            for (name,) in _query(
                conn, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s", (database,)
            )
        ],
    )


def drop_programs(conn: pymysql.connections.Connection, database: str, contents: Inventory) -> None:
    """Drop the triggers, views, routines and events of *database* (not its tables)."""
    statements = [f"DROP TRIGGER IF EXISTS {q(database)}.{q(name)}" for name in contents.triggers]
    statements += [f"DROP VIEW IF EXISTS {q(database)}.{q(name)}" for name in contents.views]
    statements += [f"DROP {kind} IF EXISTS {q(database)}.{q(name)}" for kind, name in contents.routines]
    statements += [f"DROP EVENT IF EXISTS {q(database)}.{q(name)}" for name in contents.events]
    for statement in statements:
        _query(conn, statement)


class Restore:
    """One restore of a backup into the database a URL names; see the module docstring."""

    def __init__(self, request: RestoreRequest, loader: Loader) -> None:
        self.request = request
        self.loader = loader
        self.layout = Layout.from_details(request.backup.details, request.backup.id)
        self.target = ServerTarget.from_url(request.url)
        self.database = self.target.require_database()
        self.selective = "tables" in request.options
        self.parts = self._chosen_parts()
        self.jobs = int(request.options.get("jobs", 1))
        details = request.backup.details
        self.charset = str(details.get("character_set") or "utf8mb4")
        self.collation = str(details.get("collation") or "")

    def _chosen_parts(self) -> list[TablePart]:
        if not self.selective:
            return list(self.layout.tables)
        by_name = {part.name: part for part in self.layout.tables}
        chosen = list(dict.fromkeys(self.request.options["tables"]))
        if missing := [name for name in chosen if name not in by_name]:
            known = ", ".join(sorted(by_name)[:10]) + (" …" if len(by_name) > 10 else "")
            raise ConfigError(f"backup {self.request.backup.id} has no table {missing[0]!r} (its tables: {known})")
        return [by_name[name] for name in chosen]

    def run(self) -> RestoreResult:
        """Restore; see the module docstring for the steps."""
        with admin_connection(self.target) as conn:
            _query(conn, "SET SESSION foreign_key_checks = 0")
            existing = inventory(conn, self.database)
            self._refuse_unless_empty(existing)
            header = _read_all(self.request.artifacts, self.layout.header)
            with self._scratch_database(conn, STAGING_PREFIX) as staging:
                programs = self._spool_programs()
                counts = self._load_tables(staging, header)
                if programs is not None:
                    self._run_programs(staging, header, programs)
                    drop_programs(conn, staging, _present(inventory(conn, staging)))
                self._swap(conn, staging, existing)
                if programs is not None:
                    try:
                        self._run_programs(self.database, header, programs)
                    except DatabaseError as exc:
                        raise DatabaseError(
                            f"the tables were restored into {shown(self.database)}, but creating its triggers, views, "
                            f"routines or events failed: {exc}"
                        ) from None
        selected = [part.name for part in self.parts if not part.sequence] if self.selective else None
        return RestoreResult(database=self.target.url.safe(), row_counts=counts, tables=selected)

    # -- before anything is written --------------------------------------------------

    def _refuse_unless_empty(self, existing: Inventory | None) -> None:
        if existing is None or self.request.force:
            return
        if self.selective:
            present = set(existing.tables) | set(existing.views)
            if clash := [part.name for part in self.parts if part.name in present]:
                raise TargetNotEmptyError(
                    f"table {shown(clash[0])} already exists in {shown(self.database)}; pass --force to replace the "
                    "restored tables, or restore into another database"
                )
        elif not existing.empty:
            raise TargetNotEmptyError(
                f"restore target {shown(self.database)} on {self.target} already holds {existing.summary()}; pass "
                "--force to replace its whole contents, or restore into a new database"
            )

    @contextlib.contextmanager
    def _scratch_database(self, conn: pymysql.connections.Connection, prefix: str) -> Iterator[str]:
        """A new empty database for the duration of the block, dropped afterwards."""
        name = prefix + secrets.token_hex(4)
        try:
            _query(conn, f"CREATE DATABASE {q(name)} {self._defaults()}")
        except Exception as exc:
            raise DatabaseError(
                f"cannot create the working database {shown(name)} beside {shown(self.database)}: {describe(exc)} — "
                f"the restoring user needs all privileges on databases named {prefix}… (see docs/mysql.md)"
            ) from None
        try:
            yield name
        finally:
            with contextlib.suppress(Exception):
                _query(conn, f"DROP DATABASE IF EXISTS {q(name)}")

    def _defaults(self) -> str:
        collation = f" COLLATE {self.collation}" if self.collation else ""
        return f"CHARACTER SET {self.charset}{collation}"

    def _spool_programs(self) -> Path | None:
        """Copy the triggers (and, for a whole restore, the views, routines and events) to scratch.

        Reading them now proves their checksums before anything is written; they run after
        the tables are in place.
        """
        names = [part.triggers for part in self.parts if part.triggers]
        if not self.selective:
            names.append(self.layout.objects)
        if not names:
            return None
        path = self.request.scratch_dir / "programs.sql"
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as spool:
            for name in names:
                with self.request.artifacts.open(name) as reader:
                    shutil.copyfileobj(reader, spool, CHUNK)  # type: ignore[misc]
        return path

    # -- loading ---------------------------------------------------------------------

    def _load_tables(self, staging: str, header: bytes) -> dict[str, int]:
        """Load the chosen tables into *staging*, ``jobs`` at a time, biggest first; return their rows."""
        cancel = threading.Event()
        parts = sorted(self.parts, key=lambda part: part.raw_bytes, reverse=True)
        counts: dict[str, int] = {}
        with ThreadPoolExecutor(max_workers=max(1, min(self.jobs, len(parts)))) as pool:
            futures: list[Future[int | None]] = [
                pool.submit(self._load_table, part, staging, header, cancel) for part in parts
            ]
            try:
                for part, future in zip(parts, futures, strict=True):
                    if (rows := future.result()) is not None:
                        counts[part.name] = rows
            except BaseException:
                cancel.set()
                for future in futures:
                    future.cancel()
                raise
        return {part.name: counts[part.name] for part in self.parts if part.name in counts}

    def _load_table(self, part: TablePart, staging: str, header: bytes, cancel: threading.Event) -> int | None:
        """Load one table and count its rows (on this worker, while others still load)."""
        with self.request.artifacts.open(part.data) as reader:
            edit = self._retarget_foreign_key if self.selective else unchanged
            source = PartFilter(Cancellable(reader, cancel), edit)
            try:
                self.loader.load(staging, Concat(header, source))
            except DatabaseError as exc:
                if cancel.is_set():
                    raise
                raise DatabaseError(f"restoring table {shown(part.name)} failed: {exc}") from None
        if part.sequence:
            return None
        with admin_connection(self.target) as conn:
            ((rows,),) = _query(conn, f"SELECT COUNT(*) FROM {q(staging)}.{q(part.name)}")
        expected = self.request.backup.row_counts.get(part.name)
        if expected is not None and rows != expected:
            raise IntegrityError(
                f"table {shown(part.name)} loaded {rows} rows, the backup records {expected}; "
                "the target was not touched"
            )
        return int(rows)

    def _retarget_foreign_key(self, line: bytes) -> bytes:
        """Point a foreign key at the target's table when the table it names is not restored."""
        match = _FOREIGN_KEY.match(line)
        if match is None:
            return line
        referenced = match.group(2).replace(b"``", b"`").decode()
        if referenced in {part.name for part in self.parts}:
            return line
        target = q(self.database).encode()
        return match.group(1) + target + b"." + line[match.start(2) - 1 :]

    def _run_programs(self, database: str, header: bytes, programs: Path) -> None:
        with programs.open("rb") as script:
            self.loader.load(database, Concat(header, script))

    # -- making it visible -----------------------------------------------------------

    def _swap(self, conn: pymysql.connections.Connection, staging: str, existing: Inventory | None) -> None:
        """Move the staging tables into the target in one atomic RENAME TABLE."""
        _query(conn, f"CREATE DATABASE IF NOT EXISTS {q(self.database)} {self._defaults()}")
        moves = [f"{q(staging)}.{q(part.name)} TO {q(self.database)}.{q(part.name)}" for part in self.parts]
        if existing is not None and self.selective:
            chosen = {part.name for part in self.parts}
            for name in chosen & set(existing.views):
                _query(conn, f"DROP VIEW {q(self.database)}.{q(name)}")
            if old := sorted(chosen & set(existing.tables)):
                _query(conn, "DROP TABLE " + ", ".join(f"{q(self.database)}.{q(name)}" for name in old))
        elif existing is not None and not existing.empty:
            # A table with triggers cannot move to another database: its triggers go first.
            # Views, routines and events go after the swap, just before the backup's are made.
            drop_programs(conn, self.database, Inventory([], [], [], [], existing.triggers))
            with self._scratch_database(conn, REPLACED_PREFIX) as replaced:
                moves = [f"{q(self.database)}.{q(name)} TO {q(replaced)}.{q(name)}" for name in existing.tables] + moves
                if moves:
                    with self.request.committing():  # the target holds the backup's tables from here on
                        _query(conn, "RENAME TABLE " + ", ".join(moves))
            drop_programs(conn, self.database, dataclasses.replace(existing, triggers=[]))
            return
        if moves:
            with self.request.committing():  # the target holds the backup's tables from here on
                _query(conn, "RENAME TABLE " + ", ".join(moves))


def _present(contents: Inventory | None) -> Inventory:
    assert contents is not None, "the staging database disappeared"
    return contents


def _read_all(artifacts: ArtifactSource, name: str) -> bytes:
    """A small artifact, read whole and verified."""
    with artifacts.open(name) as reader:
        parts = []
        while data := reader.read(CHUNK):
            parts.append(data)
    return b"".join(parts)
