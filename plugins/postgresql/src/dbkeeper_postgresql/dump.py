"""Dumping a database: pg_dump streamed into the pipeline under one exported snapshot.

A control session opens a ``REPEATABLE READ, READ ONLY`` transaction and exports its
snapshot (``pg_export_snapshot()``). Every pg_dump runs with ``--snapshot`` set to it,
and the control session counts each table's rows in that same transaction while the
dumps run: the archive and the manifest's row counts describe the same instant, however
busy the writers are. The transaction stays open until every pg_dump has finished. The
control session is ``psql`` driven over pipes (:mod:`dbkeeper_postgresql.control_session`), not
psycopg, whose import would cost every backup about 70 ms. A backup of one part starts its
pg_dump as soon as the snapshot is exported (:mod:`dbkeeper_postgresql.early_dump`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

from dbkeeper.plugin import (
    DatabaseError,
    DatabaseURL,
    DbkeeperError,
    DumpRequest,
    DumpResult,
    HeadStart,
    PrepareRequest,
    WorkerPool,
    running,
)
from dbkeeper_postgresql import catalog, layout
from dbkeeper_postgresql.clients import Client, check_dump_client, locate
from dbkeeper_postgresql.connections import Endpoint
from dbkeeper_postgresql.control_session import ControlSession, control_session
from dbkeeper_postgresql.early_dump import StartedDump, adopted, dump_command, started
from dbkeeper_postgresql.options import PostgresqlOptions
from dbkeeper_postgresql.streams import dump_into

SESSION_SETTINGS = (
    "SET statement_timeout = 0",
    "SET lock_timeout = 0",
    "SET idle_in_transaction_session_timeout = 0",
    "SET row_security = off",  # as pg_dump: fail rather than count rows a policy hides
    "SET max_parallel_workers_per_gather = 0",  # counts run beside the dumps: take one core, not three
)

Described = tuple[list[catalog.Relation], dict[str, int], dict[str, int], list[str]]
"""What the control connection reads in the snapshot: relations, schemas, row counts, roles."""


class Opened(NamedTuple):
    """What a dump waits for first: the session holding the snapshot, what it read, the pg_dump being located.

    ``early`` is the pg_dump started as soon as the snapshot was exported, if any (see :func:`opened`).
    """

    endpoint: Endpoint
    env: Mapping[str, str]
    session: ControlSession
    facts: dict[str, Any]
    snapshot: str
    tables: list[catalog.Table]
    extension_tables: list[str]
    pg_dump: Future[Client]
    early: StartedDump | None = None


@contextlib.contextmanager
def opened(url: DatabaseURL, fmt: str, jobs: int, stops: WorkerPool | None = None) -> Iterator[Opened]:
    """The control session of *url* with its snapshot exported, for the block; *stops* can kill its clients.

    When a backup in *fmt* on *jobs* streams is one part, its pg_dump starts right after the
    snapshot is exported; killed at the end of the block unless it has exited.
    """
    endpoint = Endpoint.from_url(url)
    with (
        ThreadPoolExecutor(max_workers=1) as probe,
        endpoint.client_env() as env,
        contextlib.ExitStack() as stack,
    ):
        found = probe.submit(locate, "pg_dump", endpoint.params)  # while the session connects, reads the catalog
        session = stack.enter_context(control_session(endpoint, env, stops))
        facts, snapshot, (tables, extension_tables) = _open_snapshot(session, endpoint)
        ready = Opened(endpoint, env, session, facts, snapshot, tables, extension_tables, found)
        yield ready._replace(early=_early_dump(stack, ready, fmt, jobs, stops))


def prepare(request: PrepareRequest[PostgresqlOptions]) -> AbstractContextManager[HeadStart[Opened]]:
    """The control session opened, the snapshot exported and a one-part backup's pg_dump started, on a thread.

    All of it while the core sets up; the command waits for ``psql``'s start (``underway``).
    """
    opening = functools.partial(opened, request.url, request.format, request.options.jobs)
    return HeadStart.started(opening, underway=True)  # the snapshot is awaited


def dump(request: DumpRequest[PostgresqlOptions]) -> DumpResult:
    """Dump ``request.url`` in ``request.format``, on ``request.options.jobs`` streams at once."""
    head = request.prepared if isinstance(request.prepared, HeadStart) else None
    jobs = request.options.jobs
    with head.taken() if head else opened(request.url, request.format, jobs) as ready:
        session, facts, tables = ready.session, ready.facts, ready.tables
        pg_dump = _checked_pg_dump(ready)
        parts = layout.plan(facts["database"], request.format, tables, jobs)
        commands = _commands(ready, pg_dump, request.format, parts)
        early = adopted(ready.early, commands)
        env = {**ready.env, **pg_dump.env}
        pool = WorkerPool(jobs + 1)

        def describe() -> Described:
            """The rest of the catalog, the row counts and the roles, in the snapshot, while pg_dump runs."""
            with pool.stoppable(session.cancel):
                try:
                    relations, schemas = catalog.relations(session), catalog.schemas(session)
                    counts = catalog.count_rows(session, ((t.schema, t.name) for t in tables))
                except DatabaseError as exc:
                    raise DatabaseError(f"cannot count rows in the snapshot: {exc}") from None
                return relations, schemas, counts, catalog.roles(session)  # not after the dumps: one wait less

        writers = [
            functools.partial(_dump_part, request, argv, part, tables, env, pool, early)
            for part, argv in zip(parts, commands, strict=True)
        ]
        tasks: list[Callable[[], Described | int]] = [describe, *writers]
        described = pool.run(tasks)[0]
        assert not isinstance(described, int), "the first task is describe()"
        relations, schemas, counts, roles = described
        session.statement("ROLLBACK")
    details: dict[str, Any] = {
        "server_version": facts["server_version"],
        "server_version_num": facts["server_version_num"],
        "pg_dump_version": pg_dump.version,
        "format": request.format,
        "layout": "single" if jobs <= 1 else "parallel",
        "parts": [part.to_json() for part in parts],
        **{key: facts[key] for key in ("encoding", "lc_collate", "lc_ctype", "icu_locale") if key in facts},
        "schemas": schemas,
        "relations": {r.key: r.to_json() for r in relations},
        "extension_tables": ready.extension_tables,
        "roles": roles,
    }
    return DumpResult(
        engine="postgresql",
        engine_version=facts["server_version"].split()[0],
        database=facts["database"],
        row_counts=counts,
        details=details,
    )


def _open_snapshot(
    session: ControlSession, endpoint: Endpoint
) -> tuple[dict[str, Any], str, tuple[list[catalog.Table], list[str]]]:
    """Begin the snapshot's transaction; the database's facts, the exported snapshot and the dumped tables."""
    try:
        session.statement(";\n".join(["BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", *SESSION_SETTINGS]))
        facts = catalog.database_facts(session)
        snapshot = str(session.execute("SELECT pg_export_snapshot()").fetchall()[0][0])
        tables = catalog.dumped_tables(session)
    except DatabaseError as exc:
        raise DatabaseError(f"cannot read the catalog of {endpoint.label}: {exc}") from None
    return facts, snapshot, tables


def _checked_pg_dump(ready: Opened) -> Client:
    """The located pg_dump, checked to be at least as new as the server."""
    facts = ready.facts
    return check_dump_client(ready.pg_dump.result(), facts["server_version_num"], facts["server_version"])


def _commands(ready: Opened, pg_dump: Client, fmt: str, parts: list[layout.Part]) -> list[list[str]]:
    """The pg_dump command line of each of *parts*, in the snapshot of *ready*."""
    by_key = {t.key: t for t in ready.tables}
    source = ready.endpoint.with_database(ready.facts["database"])
    return [
        dump_command(pg_dump, source, ready.snapshot, layout.pg_dump_options(part, fmt, parts, by_key))
        for part in parts
    ]


def _early_dump(
    stack: contextlib.ExitStack, ready: Opened, fmt: str, jobs: int, stops: WorkerPool | None
) -> StartedDump | None:
    """The pg_dump of a one-part backup, started now until *stack* closes; else None.

    None also when it cannot start (no pg_dump, or one older than the server): the dump meets
    the same error and reports it where it would have.
    """
    parts = layout.plan(ready.facts["database"], fmt, ready.tables, jobs)
    if len(parts) != 1:
        return None
    try:
        pg_dump = _checked_pg_dump(ready)
        (argv,) = _commands(ready, pg_dump, fmt, parts)
        return stack.enter_context(started(argv, {**ready.env, **pg_dump.env}, stops))
    except DbkeeperError:
        return None


def _dump_part(
    request: DumpRequest[PostgresqlOptions],
    argv: list[str],
    part: layout.Part,
    tables: list[catalog.Table],
    env: Mapping[str, str],
    pool: WorkerPool,
    early: StartedDump | None,
) -> int:
    """Stream one part from its own pg_dump into its artifact: *early*, when given, is that pg_dump running."""
    by_key = {t.key: t for t in tables}
    if part.role in (layout.WHOLE, layout.DATA):
        held = part.tables if part.role == layout.DATA else by_key
        hint: int | None = sum(by_key[key].size for key in held)
    else:
        hint = None
    with (
        contextlib.nullcontext(early.tool) if early else running(argv, env=env, stdout=True) as tool,  # first
        request.artifacts.open(part.artifact, size_hint=hint) as out,
    ):
        written = dump_into(tool, out, pool)
    if written == 0:
        raise DatabaseError(f"pg_dump wrote nothing for {part.artifact} (a pg_dump failure without a message)")
    return written
