"""Restoring a backup into a database without ever leaving it half-written.

Tables are loaded into a private staging database on the same server
(``dbkeeper_restore_<hex>``), one table per worker with ``--jobs``. The target is not
touched until every artifact has been read to its verified end and every staging table
holds exactly the rows the manifest records. Then the triggers, views, routines and
events are rehearsed in staging (so that, for example, a DEFINER the restoring user may
not set fails before the target changes) and dropped again, and the swap is journaled and
made (see :mod:`dbkeeper_mysql.swap`): the tables move into the target with one atomic
``RENAME TABLE`` (with ``--force``, the target's old tables move out in the same
statement), and the triggers, views, routines and events are created in the target.
Whenever the process dies, the next restore on the server finishes or undoes the swap
from its journal, so the target is the old database or the new one, whole.

A selective restore (``--table``) brings only the chosen tables and their triggers; the
rest of the target stays as it is. Foreign keys of the chosen tables that point at tables
not restored are pointed at the target's tables of that name; with ``--force`` the chosen
tables' old versions are dropped just before the new ones are renamed into place, so
that foreign keys of the target's other tables keep pointing at them.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from dbkeeper.plugin import (
    CHUNK_SIZE,
    ArtifactSource,
    ConfigError,
    DatabaseError,
    RestoreRequest,
    RestoreResult,
    TargetNotEmptyError,
    WorkerPool,
)
from dbkeeper_mysql.catalog import Inventory, drop_programs, inventory, q
from dbkeeper_mysql.catalog import query as _query
from dbkeeper_mysql.layout import Layout, TablePart
from dbkeeper_mysql.load import Loader
from dbkeeper_mysql.options import MysqlOptions
from dbkeeper_mysql.pydump import trigger_script
from dbkeeper_mysql.row_counts import RowCounter
from dbkeeper_mysql.server import ServerTarget, admin_connection, tool_errors
from dbkeeper_mysql.sqltext import shown
from dbkeeper_mysql.streams import Cancellable, Concat, PartFilter, unchanged
from dbkeeper_mysql.swap import Journal, Plan, report, settle_leftovers

if TYPE_CHECKING:
    import pymysql

_FOREIGN_KEY = re.compile(rb"(  CONSTRAINT `(?:[^`]|``)*` FOREIGN KEY \(.*?\) REFERENCES )`((?:[^`]|``)*)`(?= \()")


class Restore:
    """One restore of a backup into the database a URL names; see the module docstring."""

    def __init__(self, request: RestoreRequest[MysqlOptions], loader: Loader) -> None:
        self.request = request
        self.loader = loader
        self.layout = Layout.from_details(request.backup.details, request.backup.id)
        self.target = ServerTarget.from_url(request.url)
        self.database = self.target.require_database()
        self.selective = bool(request.options.tables)
        self.parts = self._chosen_parts()
        self.jobs = request.options.jobs
        details = request.backup.details
        self.charset = str(details.get("character_set") or "utf8mb4")
        self.collation = str(details.get("collation") or "")

    def _chosen_parts(self) -> list[TablePart]:
        if not self.selective:
            return list(self.layout.tables)
        by_name = {part.name: part for part in self.layout.tables}
        chosen = list(dict.fromkeys(self.request.options.tables))
        if missing := [name for name in chosen if name not in by_name]:
            known = ", ".join(sorted(by_name)[:10]) + (" …" if len(by_name) > 10 else "")
            raise ConfigError(f"backup {self.request.backup.id} has no table {missing[0]!r} (its tables: {known})")
        return [by_name[name] for name in chosen]

    def run(self) -> RestoreResult:
        """Restore; see the module docstring for the steps."""
        report(settle_leftovers(self.target, self.database))
        with tool_errors(self.target), admin_connection(self.target) as conn:
            _query(conn, "SET SESSION foreign_key_checks = 0")
            existing = inventory(conn, self.database)
            self._refuse_unless_empty(existing)
            header = _read_all(self.request.artifacts, self.layout.header)
            with Journal.opened(self.target, self._defaults(), conn) as journal:
                staging = journal.workspace.staging
                programs = self._spool_programs()
                counts = self._load_tables(staging, header)
                new = Inventory()
                if programs is not None:
                    self._run_programs(staging, header, programs)
                    new = _present(inventory(conn, staging)).programs()
                    drop_programs(conn, staging, new)
                plan = self._plan(conn, new, header + programs.read_bytes() if programs else b"")
                journal.record(conn, plan)
                journal.swap(conn, plan, self.request.committing)
        selected = [part.name for part in self.parts if not part.sequence] if self.selective else None
        return RestoreResult(database=self.target.url.safe(), row_counts=counts, tables=selected)

    def _plan(self, conn: pymysql.connections.Connection, new: Inventory, programs: bytes) -> Plan:
        """What the swap will change; the target's old triggers kept as a script to create them again."""
        old = inventory(conn, self.database)
        if old is None or self.selective:
            return Plan(self.database, self.selective, old is None, Inventory(), new, b"", programs)
        import pymysql

        with closing(
            self.target.connect(self.database, use_unicode=False, conv=dict(pymysql.converters.encoders))
        ) as raw:
            old_triggers = b"".join(trigger_script(raw, name) for name in old.triggers)
        return Plan(self.database, False, False, old.programs(), new, old_triggers, programs)

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
                    shutil.copyfileobj(reader, spool, CHUNK_SIZE)
        return path

    # -- loading ---------------------------------------------------------------------

    def _load_tables(self, staging: str, header: bytes) -> dict[str, int]:
        """Load the chosen tables into *staging*, ``jobs`` at a time, biggest first; return their rows.

        Their rows are counted beside the loads (:mod:`dbkeeper_mysql.row_counts`).
        """
        parts = sorted(self.parts, key=lambda part: part.raw_bytes, reverse=True)
        tables = [part.name for part in parts if not part.sequence]
        counter = RowCounter(self.target, staging, tables, self.request.backup.row_counts, self.request.table_loaded)
        pool = WorkerPool(self.jobs + 1)
        counting = functools.partial(counter.drain, pool)
        loads = [functools.partial(self._load_table, part, staging, header, pool, counter) for part in parts]
        pool.run([counting, *loads, *[counting] * (self.jobs - 1)])
        return {part.name: counter.counts[part.name] for part in self.parts if part.name in counter.counts}

    def _load_table(self, part: TablePart, staging: str, header: bytes, pool: WorkerPool, counter: RowCounter) -> None:
        """Load one table, then hand it to *counter* and go on to the next one."""
        with self.request.artifacts.open(part.data) as reader:
            edit = self._retarget_foreign_key if self.selective else unchanged
            source = PartFilter(Cancellable(reader, pool.stopped), edit)
            try:
                self.loader.load(staging, Concat(header, source))
            except DatabaseError as exc:
                if pool.stopped.is_set():
                    raise
                raise DatabaseError(f"restoring table {shown(part.name)} failed: {exc}") from None
        if not part.sequence:
            counter.loaded(part.name)

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


def _present(contents: Inventory | None) -> Inventory:
    assert contents is not None, "the staging database disappeared"
    return contents


def _read_all(artifacts: ArtifactSource, name: str) -> bytes:
    """A small artifact, read whole and verified."""
    with artifacts.open(name) as reader:
        parts = []
        while data := reader.read(CHUNK_SIZE):
            parts.append(data)
    return b"".join(parts)
