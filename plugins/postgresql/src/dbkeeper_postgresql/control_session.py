r"""The backup's control session through ``psql``: a snapshot held open without importing psycopg.

Importing psycopg costs a command about 70 ms; a backup needs its control connection only
for a handful of catalog queries, the exported snapshot and the row counts. ``psql`` holds
that session instead, driven over pipes: each query is sent as a script line followed by
``\echo`` of a marker, and its rows come back as one line of JSON built by the server
(``json_agg(row_to_json(…))``), so that numbers, booleans, NULLs and ``jsonb`` columns
arrive typed as psycopg would return them. ``ON_ERROR_STOP`` ends the session at the first
error, whose message ``psql`` wrote on stderr. The password reaches ``psql`` through the
in-memory passfile of :meth:`Endpoint.client_env`; the connection parameters (with their
bounded waits) are the endpoint's.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from dbkeeper.plugin import DatabaseError, Tool, WorkerPool, error_line
from dbkeeper_postgresql.clients import tool_path
from dbkeeper_postgresql.connections import Endpoint
from dbkeeper_postgresql.pg_wrapper import wrapped_client

if TYPE_CHECKING:
    import psycopg


PSQL_CONNECTION_FAILED = 2
"""``psql``'s exit status when the connection failed (1 is its own fatal error, 3 an error in the script)."""


class PsqlUnusable(DatabaseError):
    """``psql`` could not hold the session for a reason other than the server (missing, broken, not psql)."""


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's members in order, duplicates kept (two columns may share a name)."""


def _values(value: Any) -> Any:
    """*value* with every nested JSON object as a dict (a row's columns stay a tuple, see :meth:`Rows`)."""
    if isinstance(value, _Pairs):
        return {key: _values(item) for key, item in value}
    if isinstance(value, list):
        return [_values(item) for item in value]
    return value


class Rows:
    """The rows of one query, as a psycopg cursor would give them."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def fetchone(self) -> tuple[Any, ...] | None:
        """The first row, or None."""
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Every row."""
        return list(self._rows)


class PsqlSession:
    """One ``psql`` process holding one server session; not for use by two threads at once."""

    def __init__(self, tool: Tool, endpoint: Endpoint) -> None:
        self._tool = tool
        self._endpoint = endpoint
        self._marker = f"--dbkeeper-{os.urandom(8).hex()}--"

    @classmethod
    @contextlib.contextmanager
    def opened(
        cls, psql: str, endpoint: Endpoint, env: Mapping[str, str], stops: WorkerPool | None = None
    ) -> Iterator[PsqlSession]:
        """A session to *endpoint* for the block; ``psql`` is ended (killed if still busy) afterwards.

        A connection failure is raised as psycopg's would be; a ``psql`` that ends without
        answering for another reason (exit status other than 2) raises :class:`PsqlUnusable`.
        *stops*, when given, can kill ``psql`` from another thread (a backup abandoned while
        its head start connects: see :class:`~dbkeeper.plugin.HeadStart`).
        """
        conninfo = endpoint.with_params(client_encoding="UTF8").conninfo()
        argv = [psql, "--no-psqlrc", "--quiet", "--no-align", "--tuples-only", "--no-password",
                "--set=ON_ERROR_STOP=1", f"--dbname={conninfo}"]  # fmt: skip
        try:
            tool = Tool(argv, env=env, stdin=True, stdout=True)
        except DatabaseError as exc:  # it cannot be run
            raise PsqlUnusable(str(exc)) from None
        session = cls(tool, endpoint)
        try:
            with stops.stoppable(tool.kill) if stops else contextlib.nullcontext():
                session._sync(connecting=True)
                yield session
        finally:
            tool.kill()

    def execute(self, query: str) -> Rows:
        """Run *query* (one statement, no parameters) and return its rows."""
        wrapped = f"SELECT coalesce(json_agg(row_to_json(q)), '[]') FROM (\n{query}\n) q"
        (line,) = self._run(wrapped) or ["[]"]
        rows = json.loads(line, object_pairs_hook=_Pairs)
        return Rows([tuple(_values(value) for _, value in row) for row in rows])

    def statement(self, sql: str) -> None:
        """Run *sql*, a statement without rows (``BEGIN``, ``SET``)."""
        self._run(sql)

    def cancel(self) -> None:
        """Cancel the running query (``psql`` sends the server a cancel request on SIGINT); the session ends."""
        with contextlib.suppress(ProcessLookupError):
            self._tool.process.send_signal(signal.SIGINT)

    def _run(self, sql: str) -> list[str]:
        self._send(sql.rstrip().rstrip(";") + ";\n")
        return self._sync()

    def _send(self, text: str) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):  # psql has ended: _sync says why
            self._tool.stdin.write(text.encode())

    def _sync(self, *, connecting: bool = False) -> list[str]:
        """The output lines up to the marker, which is echoed next; an error if ``psql`` ends first."""
        self._send(f"\\echo {self._marker}\n")
        with contextlib.suppress(BrokenPipeError, ValueError):
            self._tool.stdin.flush()
        lines: list[str] = []
        for raw in self._tool.stdout:
            line = raw.decode().rstrip("\n")
            if line == self._marker:
                return lines
            lines.append(line)
        raise self._failure(connecting)

    def _failure(self, connecting: bool) -> DatabaseError:
        """Why ``psql`` ended: its error, as the psycopg path words it."""
        self._tool.kill()  # it has closed its output: it is ending, or is not a psql that answers
        status = self._tool.process.returncode
        message = self._tool.error_line()
        if connecting and status != PSQL_CONNECTION_FAILED:
            return PsqlUnusable(f"{self._tool.name} ended without answering (exit {status}): {message}")
        if connecting:
            return self._endpoint.connect_error(message.removeprefix("psql: error: "))
        detail = message.split("ERROR:", 1)[-1].strip() if "ERROR:" in message else message
        return DatabaseError(detail)


class PsycopgSession:
    """The same session through psycopg: where ``psql`` cannot hold it."""

    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        self._conn = conn

    @classmethod
    @contextlib.contextmanager
    def opened(cls, endpoint: Endpoint) -> Iterator[PsycopgSession]:
        """An autocommit connection (the block begins its own transaction), closed afterwards."""
        with endpoint.connect(autocommit=True) as conn:
            yield cls(conn)

    def execute(self, query: str) -> Rows:
        """Run *query* (one statement, no parameters) and return its rows."""
        with self._errors():
            return Rows(self._conn.execute(query.encode()).fetchall())

    def statement(self, sql: str) -> None:
        """Run *sql*, a statement without rows."""
        with self._errors():
            self._conn.execute(sql.encode())

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.Error as exc:
            raise DatabaseError(error_line(exc)) from None

    def cancel(self) -> None:
        """Cancel the running query."""
        self._conn.cancel()


ControlSession = PsqlSession | PsycopgSession


@contextlib.contextmanager
def control_session(
    endpoint: Endpoint, env: Mapping[str, str], stops: WorkerPool | None = None
) -> Iterator[ControlSession]:
    """A session to *endpoint* for the block: ``psql`` (see the module docstring), else psycopg.

    psycopg holds it when ``psql`` is not installed or cannot hold it (:class:`PsqlUnusable`),
    unless *stops* was stopped meanwhile (its connection could not be stopped: the
    ``psql`` it would replace was killed on purpose).
    Where ``psql`` is Debian's ``pg_wrapper``, the binary it would run is run directly when
    that is provably the same (:func:`~dbkeeper_postgresql.pg_wrapper.wrapped_client`).
    """
    try:
        psql: str | None = tool_path("psql")
    except DatabaseError:  # not installed: psycopg is a dependency of this driver, psql is not
        psql = None
    with contextlib.ExitStack() as stack:
        session: ControlSession | None = None
        if psql is not None:
            program, extra = wrapped_client(psql, endpoint.params) or (psql, {})
            with contextlib.suppress(PsqlUnusable):
                session = stack.enter_context(PsqlSession.opened(program, endpoint, {**env, **extra}, stops))
        if session is None and stops is not None and stops.stopped.is_set():
            raise DatabaseError("stopped before the control session was open")
        yield session or stack.enter_context(PsycopgSession.opened(endpoint))
