"""Client tools wired to the pipeline, several at once, stopping together when one fails.

Built on the toolkit of :mod:`dbkeeper.plugin`: ``running`` (a tool killed on error, waited for on
success) and ``feed_verified`` (an artifact fed to a tool, its last chunk held back
until the checksum is proven). What this module adds is what a parallel dump or restore
needs: each tool is registered with the :class:`~dbkeeper.plugin.WorkerPool` it runs in, so
that the first failure kills every other tool (and cancels every query), and nothing keeps
running after the operation has failed.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager

from dbkeeper.plugin import (
    CHUNK_SIZE,
    ArtifactReader,
    ArtifactWriter,
    DatabaseError,
    IntegrityError,
    Tool,
    WorkerPool,
    copy_output,
    feed_pipe,
    feed_verified,
    running,
)

READ_AHEAD = 2
"""Chunks of a tool's output read ahead while the previous one is compressed and hashed:
enough to keep pg_dump writing; the core's eight cost 6 MiB more per stream, which adds
up with ``--jobs``."""


def _kill(tool: Tool) -> Callable[[], None]:
    def kill() -> None:
        if tool.process.poll() is None:
            tool.process.kill()

    return kill


def dump_into(tool: Tool, out: ArtifactWriter, pool: WorkerPool) -> int:
    """Stream a running tool's stdout into *out* (:func:`dbkeeper.plugin.copy_output`); return the bytes copied.

    The tool's exit status is checked before this returns, so that a failed tool's artifact
    is discarded, not committed. The tool is also killed when the pool stops — even while
    it waits for a lock and writes nothing.
    """
    with pool.stoppable(_kill(tool)):
        copied = copy_output(tool, out, read_ahead=READ_AHEAD)
        tool.wait()
        return copied


def run_alone(argv: Sequence[str], env: Mapping[str, str], pool: WorkerPool) -> None:
    """Run a tool that reads and writes files of its own (``pg_restore --jobs FILE``).

    A failure is reported with the tool's *first* error: with ``--jobs`` the last one is
    only "a worker process died unexpectedly".
    """
    tool = None
    try:
        with running(argv, env=env) as tool, pool.stoppable(_kill(tool)):
            tool.process.wait()
    except DatabaseError:
        errors = [] if tool is None else [
            line for line in tool.stderr_lines if "error:" in line and "worker process died" not in line
        ]  # fmt: skip
        if tool is None or not errors:
            raise
        raise DatabaseError(f"{tool.name} failed (exit {tool.process.returncode}): {errors[0]}") from None


Commit = Callable[[], AbstractContextManager[None]]
"""Opens the window in which a tool commits (:meth:`dbkeeper.plugin.RestoreRequest.committing`)."""


@contextlib.contextmanager
def one_transaction(
    argv: Sequence[str], env: Mapping[str, str], pool: WorkerPool | None = None, commit: Commit = contextlib.nullcontext
) -> Iterator[Callable[[bytes], None]]:
    """``psql`` fed SQL between our own ``BEGIN`` and ``COMMIT``; yields the function to write SQL with.

    ``COMMIT`` is written only when the block succeeds. Should anything fail — damage
    found at the end of an artifact, a tool upstream failing, even this process being
    killed — psql reaches the end of its input inside the open transaction, and the
    server rolls it back. (``psql --single-transaction`` would commit at any end of input.)
    From writing ``COMMIT`` until psql has exited, the *commit* window is open.
    """
    with (
        contextlib.ExitStack() as window,  # closed after psql has exited: it holds the outcome
        running(argv, env=env, stdin=True) as tool,
        pool.stoppable(_kill(tool)) if pool else contextlib.nullcontext(),
    ):
        stdin = tool.stdin

        def write(data: bytes) -> None:
            try:
                stdin.write(data)
            except BrokenPipeError:
                code = tool.process.wait()
                raise DatabaseError(f"{tool.name} failed (exit {code}): {tool.error_line()}") from None

        write(b"BEGIN;\n")
        yield write
        window.enter_context(commit())
        write(b"\nCOMMIT;\n")
        _end_input_and_wait(tool)


def feed_into(
    argv: Sequence[str],
    reader: ArtifactReader,
    env: Mapping[str, str],
    pool: WorkerPool | None = None,
    commit: Commit = contextlib.nullcontext,
) -> int:
    """Run a tool fed from a verified artifact (:func:`dbkeeper.plugin.feed_pipe`); return the bytes fed.

    Damage found at the end kills the tool before it sees its last chunk. When the tool
    fails first, the rest of the artifact is still checked, so damage is reported as
    damage rather than as whatever the tool made of it. From the last chunk until the
    tool has exited (``pg_restore --single-transaction`` commits then), the *commit*
    window is open.
    """
    with (
        contextlib.ExitStack() as window,  # closed after the tool has exited: it holds the outcome
        running(argv, env=env, stdin=True) as tool,
        pool.stoppable(_kill(tool)) if pool else contextlib.nullcontext(),
    ):
        stdin = tool.stdin
        try:
            fed = feed_pipe(reader, stdin, before_last=lambda: window.enter_context(commit()))
            _end_input_and_wait(tool)
            return fed
        except BrokenPipeError:
            code = tool.process.wait()
            if not (pool and pool.stopped.is_set()):  # stopped: nobody waits for the checksum any more
                _drain(reader)
            raise DatabaseError(
                f"{tool.name} failed (exit {code}) before reading all its input: {tool.error_line()}"
            ) from None


def _end_input_and_wait(tool: Tool) -> None:
    """Close the tool's input and wait for it to exit, while the pool can still kill it.

    Its exit status is checked by :func:`dbkeeper.plugin.running` afterwards.
    """
    with contextlib.suppress(OSError):
        tool.stdin.close()
    tool.process.wait()


def _drain(reader: ArtifactReader) -> None:
    """Read *reader* to its end, so that damage raises IntegrityError (other errors are not ours to report)."""
    try:
        while reader.read(CHUNK_SIZE):
            pass
    except IntegrityError:
        raise
    except Exception:  # the tool's failure is the error to report
        return


def filter_through(
    argv: Sequence[str],
    reader: ArtifactReader,
    consume: Callable[[bytes], None],
    env: Mapping[str, str],
    pool: WorkerPool | None = None,
) -> None:
    """Feed a verified artifact to a tool and pass everything it prints to *consume*.

    The artifact is read to its end even when the tool stops reading early (``pg_restore
    --use-list`` does, once it has what it was asked for): the checksum is proven before
    this returns.
    """
    with (
        running(argv, env=env, stdin=True, stdout=True) as tool,
        pool.stoppable(_kill(tool)) if pool else contextlib.nullcontext(),
    ):
        stdin = tool.stdin
        stdout = tool.stdout
        failure: list[BaseException] = []
        abandoned = threading.Event()

        def feed() -> None:
            try:
                feed_verified(reader, stdin.write)
            except BrokenPipeError:  # the tool stopped reading: still prove the checksum, unless we gave up
                if not abandoned.is_set() and not (pool and pool.stopped.is_set()):
                    _drain_into(failure, reader)
            except BaseException as exc:
                failure.append(exc)
                _kill(tool)()
            finally:
                with contextlib.suppress(OSError):
                    stdin.close()

        feeder = threading.Thread(target=feed, name="pg-feed", daemon=True)
        feeder.start()
        try:
            while chunk := stdout.read(CHUNK_SIZE):
                consume(chunk)
        except BaseException:
            abandoned.set()
            _kill(tool)()  # nobody reads its output any more: do not let the feeder wait for it
            raise
        finally:
            feeder.join()
        if failure:
            raise failure[0]


def _drain_into(failure: list[BaseException], reader: ArtifactReader) -> None:
    try:
        _drain(reader)
    except IntegrityError as exc:
        failure.append(exc)


class PrefixedReader:
    """An artifact reader whose first chunks were already read (and are replayed first)."""

    def __init__(self, head: Sequence[bytes], rest: ArtifactReader) -> None:
        self._head = deque(head)
        self._rest = rest

    def read(self, size: int = -1, /) -> bytes:
        """The replayed chunks first, then the rest of the artifact (verified at its end)."""
        if self._head:
            return self._head.popleft()
        return self._rest.read(size)


def read_head_through(
    argv: Sequence[str], reader: ArtifactReader, env: Mapping[str, str]
) -> tuple[str, PrefixedReader]:
    """Run a tool that reads only the start of an artifact (``pg_restore -l``); return its output.

    The chunks the tool was given are kept and replayed by the returned reader, so the
    artifact is decompressed once even though two tools read its start. Memory is bounded
    by what the tool reads before it exits (an archive's table of contents).
    """
    head: list[bytes] = []
    output: list[bytes] = []
    with running(argv, env=env, stdin=True, stdout=True) as tool:
        stdin = tool.stdin
        stdout = tool.stdout
        collector = threading.Thread(target=lambda: output.extend(iter(lambda: stdout.read(CHUNK_SIZE), b"")))
        collector.start()
        try:
            while chunk := reader.read(CHUNK_SIZE):
                head.append(chunk)
                stdin.write(chunk)
        except BrokenPipeError:
            pass  # it has read what it needs
        finally:
            with contextlib.suppress(OSError):
                stdin.close()
            collector.join()
    return b"".join(output).decode(errors="replace"), PrefixedReader(head, reader)
