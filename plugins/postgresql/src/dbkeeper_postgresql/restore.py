"""Restoring a backup: pg_restore or psql fed from the verified artifacts.

What a restore guarantees depends on how it runs:

- **one transaction** (a single-archive backup restored without ``--jobs``): a damaged
  artifact or a failing statement rolls everything back; the target is exactly as it
  was. A whole custom archive goes to ``pg_restore --single-transaction``, which needs
  every byte of it, and the last chunk is held back until the checksum is proven. A
  plain script, or a selection (``pg_restore --use-list --file=-``, which stops reading
  once it has what was asked for), goes to ``psql`` between a ``BEGIN`` and a
  ``COMMIT`` that is written only after the whole artifact was verified.
- **parallel** (``--jobs N``, or a backup made with ``--jobs``): the definitions, then
  the tables' rows several parts at once (each part in its own transaction), then
  indexes and constraints with ``pg_restore --jobs`` from a verified scratch copy. Not one
  transaction: if it fails part-way, a database created by the restore is dropped
  again; an existing one is left partly restored, and the error says so.

A target database that does not exist is created (``TEMPLATE template0`` with the
source's encoding and locale). A target holding anything is refused unless ``force``,
which makes the restore drop and re-create every object the backup holds
(``--clean --if-exists``) in the same transaction; objects the backup does not hold are
left alone. ``force`` is refused where the restore is not one transaction.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbkeeper.plugin import (
    ArtifactSource,
    ConfigError,
    DatabaseError,
    DatabaseNotFoundError,
    DbkeeperError,
    RestoreRequest,
    RestoreResult,
    TargetNotEmptyError,
    WorkerPool,
    child_environment,
    copy_into,
    feed_verified,
)
from dbkeeper_postgresql import catalog, layout
from dbkeeper_postgresql.clients import Client, restore_client
from dbkeeper_postgresql.connections import Endpoint, database_error
from dbkeeper_postgresql.contents import DUMP_COMPLETE, TAIL_BYTES
from dbkeeper_postgresql.options import PostgresqlOptions
from dbkeeper_postgresql.parallel import on_connections
from dbkeeper_postgresql.selection import Entry, Selection
from dbkeeper_postgresql.streams import feed_into, filter_through, one_transaction, read_head_through, run_alone


@dataclass(frozen=True)
class Plan:
    """Everything a restore needs to know before it starts."""

    request: RestoreRequest[PostgresqlOptions]
    target: Endpoint
    fmt: str
    parts: list[layout.Part]
    jobs: int
    selection: Selection | None
    pg_restore: Client | None
    psql: Client | None

    @property
    def atomic(self) -> bool:
        """Whether the whole restore runs in one transaction (a plain script ignores ``--jobs``)."""
        return len(self.parts) == 1 and (self.jobs <= 1 or self.fmt == "sql")

    def psql_argv(self) -> list[str]:
        """The psql command reading SQL from stdin into the target, stopping at the first error."""
        assert self.psql is not None
        return [self.psql.path, "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--no-password",
                f"--dbname={self.target.conninfo()}", "--file=-"]  # fmt: skip

    def pg_restore_argv(self, *, into_target: bool = True) -> list[str]:
        """The pg_restore command restoring into the target (or writing SQL to stdout), cleaning first for --force."""
        assert self.pg_restore is not None
        argv = [self.pg_restore.path, "--exit-on-error", "--no-password"]
        argv += [f"--dbname={self.target.conninfo()}"] if into_target else ["--file=-"]
        return argv + (["--clean", "--if-exists"] if self.request.force else [])


def restore(request: RestoreRequest[PostgresqlOptions]) -> RestoreResult:
    """Restore ``request.backup`` into ``request.url``; see the module documentation for the guarantees."""
    plan = _plan(request)
    with _prepared_target(plan) as created, plan.target.client_env() as env:
        try:
            _run(plan, env)
        except DbkeeperError as exc:
            raise _explained(exc, plan, created) from None
        if not plan.atomic:
            request.commit_point.finished()
        scope = plan.selection.tables(request.backup.row_counts) if plan.selection else list(request.backup.row_counts)
        counts = _count(plan.target, scope)
    assert plan.target.database is not None
    return RestoreResult(database=plan.target.database, row_counts=counts, tables=scope if plan.selection else None)


def _plan(request: RestoreRequest[PostgresqlOptions]) -> Plan:
    details = request.backup.details
    fmt = str(details.get("format", request.backup.format))
    if fmt not in layout.FORMATS:
        raise DatabaseError(
            f"backup {request.backup.id} is in format {fmt!r}, which this driver does not read "
            f"({', '.join(layout.FORMATS)}); upgrade dbkeeper-postgresql"
        )
    parts = layout.parts_of(details, request.backup.id)
    jobs = request.options.jobs
    selection = Selection.resolve(details, request.options.tables, request.options.schemas)
    if selection is not None and fmt == "sql":
        raise ConfigError(
            f"backup {request.backup.id} is a plain SQL script, which cannot be restored selectively; "
            "--table and --schema need a custom-format backup (the default)"
        )
    target = Endpoint.from_url(request.url)
    if not target.database:
        raise ConfigError(f"the restore target {request.url} names no database; add /DATABASE to the URL")
    written_by = str(details.get("pg_dump_version", "0"))
    pg_restore = restore_client("pg_restore", written_by, target.params) if fmt == "custom" else None
    psql = restore_client("psql", written_by, target.params) if fmt == "sql" or selection is not None else None
    plan = Plan(request, target, fmt, parts, jobs, selection, pg_restore, psql)
    if request.force and not plan.atomic:
        raise ConfigError(
            "--force replaces objects in place, which is only safe in one transaction: restore this backup without "
            "--jobs" + (" (it was made with --jobs, so its parts restore separately)" if len(parts) > 1 else "")
            + ", or drop the target database first"
        )  # fmt: skip
    return plan


@contextlib.contextmanager
def _prepared_target(plan: Plan) -> Iterator[bool]:
    """Create the target database when missing (and drop it again if the restore fails); check it is empty."""
    created = False
    try:
        with plan.target.connect(autocommit=True) as conn:
            _refuse_unless_empty(conn, plan)
    except DatabaseNotFoundError:
        create_database(plan.target, plan.request.backup.details)
        created = True
    try:
        yield created
    except BaseException:
        point = plan.request.commit_point
        if created and point.state != point.REPLACED:  # a committed restore stays, whatever happens after
            _drop_database(plan.target)
            point.undone()
        raise


def _refuse_unless_empty(conn: Any, plan: Plan) -> None:
    import psycopg

    label = plan.target.label
    try:
        if plan.selection is not None:
            clashes = catalog.existing_relations(conn, plan.selection.relation_names())
            clashes += [f"schema {s}" for s in _existing_schemas(conn, plan.selection.schemas)]
            if clashes and not plan.request.force:
                raise TargetNotEmptyError(
                    f"restore target {label} already has {', '.join(clashes[:5])}; pass --force to replace "
                    "what the selection holds, or restore into another database"
                )
            return
        found = catalog.user_objects(conn)
    except psycopg.Error as exc:
        raise database_error(exc, f"cannot inspect the restore target {label}") from None
    if found and not plan.request.force:
        raise TargetNotEmptyError(
            f"restore target {label} already holds data ({', '.join(found)}); pass --force to replace the objects "
            "the backup holds, or restore into a new database"
        )


def _existing_schemas(conn: Any, schemas: Mapping[str, int]) -> list[str]:
    if not schemas:
        return []
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s) AND nspname <> 'public'", (list(schemas),)
    )
    return [row[0] for row in rows]


def create_database(target: Endpoint, details: Mapping[str, Any]) -> None:
    """Create the target database from ``template0`` with the backup's encoding and locale (recorded in *details*)."""
    import psycopg
    from psycopg import sql

    options: list[sql.Composable] = [sql.SQL("TEMPLATE template0")]
    for keyword, key in (("ENCODING", "encoding"), ("LC_COLLATE", "lc_collate"), ("LC_CTYPE", "lc_ctype")):
        if details.get(key):
            options.append(sql.SQL("{} {}").format(sql.SQL(keyword), sql.Literal(details[key])))
    if details.get("icu_locale"):
        options.append(sql.SQL("LOCALE_PROVIDER icu ICU_LOCALE {}").format(sql.Literal(details["icu_locale"])))
    name = sql.Identifier(target.database or "")
    statement = sql.SQL("CREATE DATABASE {} {}").format(name, sql.SQL(" ").join(options))
    with target.connect_maintenance() as admin:
        try:
            admin.execute(statement)
        except psycopg.Error as exc:
            raise database_error(exc, f"cannot create the restore target {target.label}") from None


def _drop_database(target: Endpoint) -> None:
    import psycopg
    from psycopg import sql

    with contextlib.suppress(DatabaseError, psycopg.Error), target.connect_maintenance() as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target.database or "")))


def _explained(exc: DbkeeperError, plan: Plan, created: bool) -> DbkeeperError:
    """*exc* with what it means for the target added (same class, one line)."""
    name = plan.target.database
    if created:
        outcome = f"the new database '{name}' was removed again"
    elif plan.atomic:
        outcome = f"nothing was restored: '{name}' is unchanged"
    else:
        outcome = f"'{name}' is partly restored: drop it and restore again"
    hint = ""
    if plan.selection is not None and "does not exist" in str(exc):
        hint = (
            " (a selective restore needs what the chosen tables refer to: add it with --table or --schema, "
            "or restore into a database that has it)"
        )
    return type(exc)(f"{exc}; {outcome}{hint}")


def _run(plan: Plan, env: Mapping[str, str]) -> None:
    """Restore every part in order: definitions, rows (several parts at once), then indexes and constraints."""
    for parts, workers in _stages(plan):
        pool = WorkerPool(workers)
        pool.run([functools.partial(_restore_part, plan, part, env, pool) for part in parts])


def _stages(plan: Plan) -> list[tuple[list[layout.Part], int]]:
    """Parts grouped by what must finish before the next group starts, with how many run at once."""
    if len(plan.parts) == 1:
        return [(plan.parts, 1)]
    wanted = set(plan.selection.tables(plan.request.backup.row_counts)) if plan.selection else None
    pre = [p for p in plan.parts if p.role == layout.PRE_DATA]
    data = [p for p in plan.parts if p.role == layout.DATA and (wanted is None or wanted & set(p.tables))]
    post = [p for p in plan.parts if p.role == layout.POST_DATA]
    return [(pre, 1), (data, plan.jobs), (post, 1)]


def _restore_part(plan: Plan, part: layout.Part, env: Mapping[str, str], pool: WorkerPool) -> None:
    """Restore one part, in one transaction unless pg_restore can use several jobs on it."""
    source = plan.request.artifacts
    if plan.jobs > 1 and plan.fmt == "custom" and part.role in (layout.WHOLE, layout.POST_DATA):
        _restore_from_file(plan, part, source, env, pool)
        return
    commit = functools.partial(plan.request.committing, final=plan.atomic)
    with source.open(part.artifact) as reader:
        if plan.fmt == "sql":
            with one_transaction(plan.psql_argv(), env, pool, commit) as write:
                script = ScriptTail(write)
                feed_verified(reader, script.write)
                script.require_complete(part.artifact)
        elif plan.selection is None:
            feed_into([*plan.pg_restore_argv(), "--single-transaction"], reader, env, pool, commit)
        else:
            assert plan.pg_restore is not None
            toc, reader = read_head_through([plan.pg_restore.path, "--list", "--verbose"], reader, env)
            listing = _write_list(plan, part, toc)
            with one_transaction(plan.psql_argv(), env, pool, commit) as write:
                argv = [*plan.pg_restore_argv(into_target=False), f"--use-list={listing}"]
                filter_through(argv, reader, write, env, pool)


class ScriptTail:
    """Passes a plain script on, keeping its end to check that pg_dump finished writing it."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self._tail = b""

    def write(self, data: bytes) -> None:
        """Pass *data* on."""
        self._write(data)
        self._tail = (self._tail + data)[-TAIL_BYTES:]

    def require_complete(self, name: str) -> None:
        """Raise unless the script ends with pg_dump's completion line (checked before COMMIT)."""
        if DUMP_COMPLETE not in self._tail:
            raise DatabaseError(f"{name} does not end with pg_dump's completion line: the script was cut short")


def _restore_from_file(
    plan: Plan, part: layout.Part, source: ArtifactSource, env: Mapping[str, str], pool: WorkerPool
) -> None:
    """Copy a part to scratch space (verified), then let ``pg_restore --jobs`` work on it in parallel."""
    assert plan.pg_restore is not None
    path = plan.request.scratch_dir / f"{part.artifact}.restore"
    with source.open(part.artifact) as reader, path.open("xb") as file:
        copy_into(reader, file)
    try:
        argv = [*plan.pg_restore_argv(), f"--jobs={plan.jobs}"]
        if plan.selection is not None:
            listed = subprocess.run(
                [plan.pg_restore.path, "--list", "--verbose", str(path)],
                capture_output=True,
                text=True,
                check=False,
                env=child_environment(),
            )
            if listed.returncode != 0:
                raise DatabaseError(f"pg_restore --list failed: {(listed.stderr.strip().splitlines() or ['?'])[-1]}")
            argv.append(f"--use-list={_write_list(plan, part, listed.stdout)}")
        plan.request.commit_point.partly()  # pg_restore --jobs commits as it goes
        run_alone([*argv, str(path)], env, pool)
    finally:
        path.unlink(missing_ok=True)


def _write_list(plan: Plan, part: layout.Part, toc: str) -> Path:
    """The ``--use-list`` file for *part*: the selection, plus what it needs and the target lacks."""
    import psycopg

    assert plan.selection is not None

    def missing(entries: list[Entry]) -> set[int]:
        with plan.target.connect(autocommit=True) as conn:
            try:
                lacking = catalog.absent(conn, [(e.desc or "", e.namespace, e.tag or "") for e in entries])
            except psycopg.Error as exc:
                raise database_error(exc, f"cannot inspect the restore target {plan.target.label}") from None
        return {entry.id for entry, lacks in zip(entries, lacking, strict=True) if lacks}

    path = plan.request.scratch_dir / f"{part.artifact}.list"
    path.write_text(plan.selection.list_file(toc, missing), encoding="utf-8")
    return path


def _count(target: Endpoint, keys: Sequence[str]) -> dict[str, int]:
    """Rows of each restored table, counted in the target on up to one connection per CPU, biggest first."""
    import psycopg

    pairs = [catalog.split_key(key) for key in keys]
    with target.connect() as conn:
        try:
            sizes = catalog.relation_sizes(conn, pairs)
            present = [pair for pair, key in zip(pairs, keys, strict=True) if key in sizes]
            counted = on_connections(
                conn, target.connect, present, _count_one, size=lambda p: sizes[catalog.qualified(*p)]
            )
            return dict(counted)
        except psycopg.Error as exc:
            raise database_error(exc, f"cannot count the restored rows in {target.label}") from None
        finally:
            conn.rollback()


def _count_one(conn: Any, table: tuple[str, str]) -> tuple[str, int]:
    """``(schema.name, rows)`` of one table."""
    ((key, rows),) = catalog.count_rows(conn, [table]).items()
    return key, rows
