"""The migration engine: status, history, up, down, check and repair over one database.

The protocol that makes every migration run exactly once, however many processes start
at the same moment: the engine's lock is taken on a dedicated connection, and the
history is read *after* it (inside the migration's own transaction where the engine has
transactional DDL), one migration at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from dbkeeper.connections.urls import DatabaseURL, error_line
from dbkeeper.errors import DatabaseError, DatabaseNotFoundError, MigrationError
from dbkeeper.migrations import history
from dbkeeper.migrations.files import DEFAULT_DIRECTORY, Migration, load_migrations
from dbkeeper.migrations.graph import order
from dbkeeper.migrations.history import State as HistoryState
from dbkeeper.migrations.runner import (
    MigrationResult,
    recover,
    run_in_transaction,
    run_journaled,
    statements_of,
)
from dbkeeper.plugin.contract import HistorySchemaDialect, MigrationDialect
from dbkeeper.plugin.manager import Plugins, load_plugins

DEFAULT_LOCK_TIMEOUT = 60.0


@dataclass(frozen=True)
class MigrationStatus:
    """One migration's state.

    ``applied``, ``pending``, ``drifted`` (edited after it was applied), ``missing``
    (applied, but its file is gone) or ``failed``.
    """

    id: str
    state: str
    applied_at: str | None = None
    note: str = ""


@dataclass(frozen=True)
class PlannedMigration:
    """A migration ``up``/``down`` would run: its statements, and whether in one transaction."""

    migration: Migration
    statements: list[str]
    in_transaction: bool


@dataclass
class _Run:
    """One ``up`` or ``down`` under the lock: the migrations it may run and the history read so far."""

    direction: str
    by_id: Mapping[str, Migration]
    choose: Callable[[HistoryState], list[Migration]]
    """Makes the plan from the history first read under the lock."""
    current: HistoryState = field(default_factory=HistoryState)
    plan: list[Migration] | None = None


class MigrationManager:
    """Migrations of one database from one directory of migration files."""

    def __init__(
        self,
        url: str | DatabaseURL,
        directory: Path | str = DEFAULT_DIRECTORY,
        *,
        plugins: Plugins | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        on_result: Callable[[MigrationResult], None] | None = None,
    ) -> None:
        self.url = url if isinstance(url, DatabaseURL) else DatabaseURL.parse(url)
        self.directory = Path(directory)
        self.lock_timeout = lock_timeout
        self.on_result = on_result
        """Called with each result as it happens (the CLI prints progress with it)."""
        self._driver = (plugins or load_plugins()).driver_for(self.url)

    def migrations(self) -> list[Migration]:
        """The migration files in dependency order (raises on a broken graph)."""
        return order(load_migrations(self.directory))

    @contextlib.contextmanager
    def _connection(self, *, create: bool) -> Iterator[tuple[Connection, MigrationDialect]]:
        dialect = self._driver.migration_dialect(self.url)
        engine = self._driver.connect(self.url, create=create)
        try:
            with engine.connect() as conn:
                # no_parameters: statements go to the driver as written, so a '%' in a migration is just a '%'
                options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT", "no_parameters": True}
                # The dialect may name the schema _migrations lives in, whatever a migration does to search_path.
                if isinstance(dialect, HistorySchemaDialect):
                    options["schema_translate_map"] = {None: dialect.history_schema}
                yield conn.execution_options(**options), dialect
        except SQLAlchemyError as error:
            raise DatabaseError(f"migrations on {self.url}: {error_line(error)}") from None
        finally:
            engine.dispose()

    def _read_state(self) -> HistoryState:
        try:
            with self._connection(create=False) as (conn, _):
                return HistoryState().refresh(conn)
        except DatabaseNotFoundError:
            return HistoryState()

    def status(self) -> list[MigrationStatus]:
        """Every migration on disk or in the history, in order, with its state."""
        current = self._read_state()
        migrations = self.migrations()
        on_disk = {m.id for m in migrations}
        result = []
        for migration in migrations:
            applied = current.applied.get(migration.id)
            if migration.id in current.broken:
                event = current.broken[migration.id]
                result.append(MigrationStatus(migration.id, "failed", event.started_at, event.detail or event.outcome))
            elif applied is None:
                result.append(MigrationStatus(migration.id, "pending"))
            elif applied.checksum != migration.checksum:
                result.append(
                    MigrationStatus(
                        migration.id, "drifted", applied.started_at, f"{migration.path} was edited after it was applied"
                    )
                )
            else:
                result.append(MigrationStatus(migration.id, "applied", applied.started_at))
        for missing in sorted(set(current.applied) - on_disk):
            result.append(
                MigrationStatus(
                    missing,
                    "missing",
                    current.applied[missing].started_at,
                    f"applied, but {self.directory}/{missing}.sql is gone",
                )
            )
        return result

    def history(self) -> list[history.Event]:
        """Every recorded attempt, oldest first."""
        try:
            with self._connection(create=False) as (conn, _):
                return history.read(conn)
        except DatabaseNotFoundError:
            return []

    def check(self) -> list[str]:
        """Everything that stands in the way of a clean ``up``: one line each (CI gate)."""
        try:
            statuses = self.status()
        except MigrationError as error:
            return [str(error)]
        return [f"{s.id}: {s.state}" + (f" — {s.note}" if s.note else "") for s in statuses if s.state != "applied"]

    def _guard(self, current: HistoryState, by_id: Mapping[str, Migration], ids: Iterable[str] | None = None) -> None:
        """Refuse to run over a failed migration, drift or a deleted migration file.

        Only the applied migrations in *ids* are compared with their files (all by
        default): a long run checks each migration once, when it first sees it applied.
        """
        if current.broken:
            event = next(iter(current.broken.values()))
            raise MigrationError(
                f"migration {event.id} is marked {event.outcome}: {event.detail or 'its run was interrupted'}; "
                "resolve it and run 'dbkeeper migrate repair' before migrating further"
            )
        for migration_id in current.applied if ids is None else ids:
            event = current.applied[migration_id]
            migration = by_id.get(migration_id)
            if migration is None:
                raise MigrationError(
                    f"migration {migration_id} is applied but its file is missing from {self.directory}; "
                    "restore the file (a deleted migration is not undone by deleting it)"
                )
            if migration.checksum != event.checksum:
                raise MigrationError(
                    f"migration {migration_id} was edited after it was applied ({migration.path}); "
                    "put back the applied version and write a new migration for the change"
                )

    def _next_up(
        self, current: HistoryState, migrations: Sequence[Migration], to: str | None, allow_out_of_order: bool
    ) -> list[Migration]:
        """Pending migrations in order, up to and including *to*."""
        ids = [m.id for m in migrations]
        if to is not None and to not in ids:
            raise MigrationError(f"no migration {to!r} in {self.directory}")
        limit = ids.index(to) + 1 if to is not None else len(ids)
        pending = [m for m in migrations[:limit] if m.id not in current.applied]
        newest = max(current.applied, default="")
        late = [m.id for m in pending if m.id < newest]
        if late and not allow_out_of_order:
            raise MigrationError(
                f"migration {late[0]} sorts before {newest}, which is already applied (a merge from another "
                "branch?); rename it to a newer id, or apply it anyway with --allow-out-of-order"
            )
        return pending

    def _next_down(
        self,
        current: HistoryState,
        migrations: Sequence[Migration],
        steps: int | None = None,
        to: str | None = None,
        through: str | None = None,
    ) -> list[Migration]:
        """Applied migrations to roll back, newest first.

        The newest *steps* (default 1), or every one after *to*, or every one from *through* on.
        """
        ids = [m.id for m in migrations]
        for named in (to, through):
            if named is not None and named not in ids:
                raise MigrationError(f"no migration {named!r} in {self.directory}")
        if to is not None and to not in current.applied:
            raise MigrationError(f"migration {to!r} is not applied; 'down --to' needs an applied migration")
        applied = [m for m in reversed(migrations) if m.id in current.applied]
        if to is not None:
            first = ids.index(to) + 1
        elif through is not None:
            first = ids.index(through)
        else:
            return applied[: steps if steps is not None else 1]
        return [m for m in applied if ids.index(m.id) >= first]

    def plan(self, direction: str, **target: Any) -> list[PlannedMigration]:
        """What ``up``/``down`` would run now, with the exact statements (``--dry-run``)."""
        current = self._read_state()
        migrations = self.migrations()
        self._guard(current, {m.id: m for m in migrations})
        if direction == "up":
            chosen = self._next_up(current, migrations, target.get("to"), bool(target.get("allow_out_of_order")))
        else:
            chosen = self._next_down(current, migrations, target.get("steps"), target.get("to"), target.get("through"))
        dialect = self._driver.migration_dialect(self.url)
        return [
            PlannedMigration(m, statements_of(m, direction, dialect), dialect.transactional_ddl and m.transaction)
            for m in chosen
        ]

    def up(self, *, to: str | None = None, allow_out_of_order: bool = False) -> list[MigrationResult]:
        """Apply pending migrations in order (up to and including *to*); return what was applied."""
        migrations = self.migrations()
        return self._run("up", migrations, lambda current: self._next_up(current, migrations, to, allow_out_of_order))

    def down(
        self, *, steps: int | None = None, to: str | None = None, through: str | None = None
    ) -> list[MigrationResult]:
        """Roll back migrations, newest first; return what was rolled back.

        The newest applied one, or *steps* of them, or those after *to*, or those from *through* on.
        """
        migrations = self.migrations()
        return self._run("down", migrations, lambda current: self._next_down(current, migrations, steps, to, through))

    def _run(
        self, direction: str, migrations: Sequence[Migration], choose: Callable[[HistoryState], list[Migration]]
    ) -> list[MigrationResult]:
        """The locking protocol: lock; then per migration: begin, read the history, run one, commit.

        The plan is made from the history read under the lock; each step reads it again,
        so a migration another process ran meanwhile is not run twice.
        """
        results: list[MigrationResult] = []
        run = _Run(direction, {m.id: m for m in migrations}, choose)
        with self._connection(create=direction == "up") as (conn, dialect), dialect.lock(conn, self.lock_timeout):
            history.ensure_table(conn)
            for recovered in self._recover(conn, dialect, run.by_id):
                self._done(results, recovered)
            while (result := self._run_next(conn, dialect, run)) is not None:
                self._done(results, result)
        return results

    def _run_next(self, conn: Connection, dialect: MigrationDialect, run: _Run) -> MigrationResult | None:
        """Run the next migration of *run*; None when none is left.

        Where the engine has transactional DDL, the history is read inside the transaction
        the migration runs in. A ``no-transaction`` migration runs journaled, after that
        transaction is committed.
        """
        in_transaction = dialect.transactional_ddl
        if in_transaction:
            dialect.begin(conn, self.lock_timeout)
        result = None
        try:
            if (migration := self._next_migration(conn, run)) is not None:
                statements = statements_of(migration, run.direction, dialect)
                if in_transaction and migration.transaction:
                    result = run_in_transaction(conn, migration, run.direction, statements)
                else:
                    self._require_no_transaction(dialect, migration)
                    if in_transaction:
                        conn.exec_driver_sql("COMMIT")
                        in_transaction = False
                    result = run_journaled(conn, migration, run.direction, statements, dialect)
        except BaseException:
            if in_transaction:
                conn.exec_driver_sql("ROLLBACK")
            raise
        if in_transaction:
            conn.exec_driver_sql("COMMIT")
        return result

    def _next_migration(self, conn: Connection, run: _Run) -> Migration | None:
        """The next migration *run* has to run, after reading what the history gained meanwhile."""
        checked = set(run.current.applied)
        run.current.refresh(conn)
        self._guard(run.current, run.by_id, set(run.current.applied) - checked)
        if run.plan is None:
            run.plan = run.choose(run.current)
        going_down = run.direction == "down"
        return next((m for m in run.plan if (m.id in run.current.applied) == going_down), None)

    def _require_no_transaction(self, dialect: MigrationDialect, migration: Migration) -> None:
        """Refuse a ``no-transaction`` migration the driver cannot journal safely."""
        if not dialect.supports_no_transaction:
            raise MigrationError(
                f"migration {migration.id} asks for no-transaction, which the {self._driver.name} "
                "driver cannot run safely; remove the directive"
            )

    def _done(self, results: list[MigrationResult], result: MigrationResult) -> None:
        results.append(result)
        if self.on_result is not None:
            self.on_result(result)

    def _recover(
        self, conn: Connection, dialect: MigrationDialect, by_id: Mapping[str, Migration]
    ) -> list[MigrationResult]:
        """Settle journaled runs left ``running`` by a killed process (we hold the lock: it is gone)."""
        interrupted = [e for e in HistoryState().refresh(conn).broken.values() if e.outcome == "running"]
        return [
            MigrationResult(e.id, e.direction, "recovered", [], 0.0, recover(conn, e, by_id.get(e.id), dialect))
            for e in interrupted
        ]

    def repair(self, *, applied: bool = False) -> list[str]:
        """Resolve failed or interrupted migrations after a human fixed the database.

        By default they count as not applied (``up`` runs them again); with *applied*,
        as applied. Returns the ids repaired.
        """
        with self._connection(create=False) as (conn, dialect), dialect.lock(conn, self.lock_timeout):
            history.ensure_table(conn)
            broken = HistoryState().refresh(conn).broken
            for event in broken.values():
                history.record(
                    conn,
                    event.id,
                    event.direction,
                    event.checksum,
                    "repaired",
                    detail=f"resolved by hand after: {event.detail or event.outcome}",
                )
                if applied:
                    history.record(
                        conn,
                        event.id,
                        event.direction,
                        event.checksum,
                        "success",
                        detail="recorded as applied by 'migrate repair --applied'",
                    )
        return sorted(broken)


def run_migrations(
    url: str | DatabaseURL, directory: Path | str = DEFAULT_DIRECTORY, **options: Any
) -> list[MigrationResult]:
    """Apply every pending migration in *directory* to *url* (options as for ``up``)."""
    return MigrationManager(url, directory).up(**options)


def apply_migration(
    url: str | DatabaseURL, migration_id: str, directory: Path | str = DEFAULT_DIRECTORY
) -> list[MigrationResult]:
    """Apply *migration_id* and the pending migrations that come before it in order."""
    return MigrationManager(url, directory).up(to=migration_id)


def rollback_migration(
    url: str | DatabaseURL, migration_id: str, directory: Path | str = DEFAULT_DIRECTORY
) -> list[MigrationResult]:
    """Roll back *migration_id* and every applied migration after it, newest first."""
    return MigrationManager(url, directory).down(through=migration_id)
