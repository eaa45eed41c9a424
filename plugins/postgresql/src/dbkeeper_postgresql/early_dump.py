"""pg_dump started as soon as the snapshot is exported, before the dump attaches its artifact.

A backup of one part (:func:`dbkeeper_postgresql.layout.plan` with one ``pg_dump`` writing
one artifact) knows that ``pg_dump``'s command line once the snapshot is exported: the head
start (:func:`dbkeeper_postgresql.dump.prepare`) starts it right then, while the core still
sets the backup up. It writes into its pipe until the pipe is full and waits there; its
output is read when the dump attaches the part's artifact, which adopts it when it runs
what the dump would run (:func:`adopted`), and kills it otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

from dbkeeper.plugin import Tool, WorkerPool, started_tool
from dbkeeper_postgresql.clients import Client
from dbkeeper_postgresql.connections import Endpoint


class StartedDump(NamedTuple):
    """A pg_dump started by the head start: its command line and the running tool."""

    argv: list[str]
    tool: Tool


def dump_command(pg_dump: Client, source: Endpoint, snapshot: str, options: Sequence[str]) -> list[str]:
    """The command line of *pg_dump* dumping *source* in *snapshot* with *options* (the password is not in it)."""
    return [pg_dump.path, f"--dbname={source.conninfo()}", f"--snapshot={snapshot}", "--no-password", *options]


@contextlib.contextmanager
def started(argv: list[str], env: Mapping[str, str], stops: WorkerPool | None = None) -> Iterator[StartedDump]:
    """pg_dump, started now, for the block: read by the dump in it, or never; killed at its end."""
    with started_tool(argv, env=env, stops=stops) as tool:
        yield StartedDump(argv, tool)


def adopted(early: StartedDump | None, commands: Sequence[Sequence[str]]) -> StartedDump | None:
    """*early* when it runs the only one of *commands*; else None, *early* killed (a snapshot held for nothing).

    A killed early dump is not waited for: its exit is no failure of the backup.
    """
    if early is None:
        return None
    if [early.argv] == [list(command) for command in commands]:
        return early
    early.tool.kill()
    return None
