"""Native client tools (``pg_dump``, ``mariadb-dump``, ``psql`` …) as ends of the pipeline.

Engine-neutral plumbing for drivers: a tool's stdout streamed into an artifact; a
verified artifact streamed into a tool's stdin, holding back the final chunk until the
checksum has been proven, so a tool that commits at the end of its input never commits
unverified data; stderr kept for a one-line error; and secrets (a passfile, an option
file) handed to the tools without ever being written to a file system nor shown in
their arguments or environment (:func:`secret_file`, :func:`child_environment`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import unquote

from dbkeeper.connections.urls import redact
from dbkeeper.errors import DatabaseError
from dbkeeper.plugin.contract import ArtifactReader, ArtifactWriter
from dbkeeper.plugin.streams import CHUNK_SIZE

if TYPE_CHECKING:
    from dbkeeper.plugin.workers import WorkerPool

READ_AHEAD = 8
"""Chunks of a tool's output read ahead of the pipeline (bounds the memory it takes)."""


def find_tool(names: Sequence[str], install_hint: str) -> str:
    """The path of the first of *names* on ``PATH``, or an error saying what to install."""
    for name in names:
        if path := shutil.which(name):
            return path
    raise DatabaseError(f"{' or '.join(names)} not found on PATH — {install_hint}")


def private_file(path: Path, text: str) -> Path:
    """Create *path* readable by its owner only, holding *text*."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    return path


# -- secrets -----------------------------------------------------------------------

SECRET_MIN_LENGTH = 4
"""Secrets shorter than this are not searched for in the environment (they would match everything)."""
SCRUBBED_VARIABLES = ("DATABASE_URL",)
"""Variables never passed to a child process."""
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@")
RUNTIME_DIR_NAME = "dbkeeper-{uid}"
"""Where secrets go where in-memory files are unavailable: under ``$XDG_RUNTIME_DIR``, else
``/dev/shm``, else the temporary directory; mode 0700, one locked subdirectory per run."""

_live_lock = threading.Lock()
_live_secrets: dict[str, tuple[int | None, str | None]] = {}  # path → (descriptor children need, secret)


@contextlib.contextmanager
def secret_file(text: str, *, secret: str | None) -> Iterator[str]:
    """A private file holding *text* for the tools started here, as a path to pass them.

    On Linux it is an in-memory file (``memfd``, mode 0600, sealed) that a tool opens as
    ``/dev/fd/N``, as often as it likes (libpq re-reads a passfile for every connection,
    pg_dump's and pg_restore's ``--jobs`` workers too): it is never on a file system and
    vanishes with the process, however it ends — ``kill -9`` included. Elsewhere it is a
    0600 file in a private runtime directory outside the backup directory
    (:func:`runtime_directory`), removed afterwards, or by the next run if this one is
    killed. While the block runs, *secret* (the password in *text*) is also kept out of the
    environment of every child process (:func:`child_environment`).
    """
    if hasattr(os, "memfd_create"):
        with _memory_file(text) as (path, fd), _registered(path, fd, secret):
            yield path
        return
    with runtime_directory() as directory:
        path = str(private_file(directory / f"secret-{os.urandom(4).hex()}", text))
        with _registered(path, None, secret):
            yield path


@contextlib.contextmanager
def _memory_file(text: str) -> Iterator[tuple[str, int]]:
    fd = os.memfd_create("dbkeeper-secret", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.fchmod(fd, 0o600)  # libpq ignores a passfile others could read
        data = text.encode()
        while data:
            data = data[os.write(fd, data) :]
        seals = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)  # no tool can change it
        yield f"/dev/fd/{fd}", fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def _registered(path: str, fd: int | None, secret: str | None) -> Iterator[None]:
    with _live_lock:
        _live_secrets[path] = (fd, secret)
    try:
        yield
    finally:
        with _live_lock:
            del _live_secrets[path]


def _hides(value: str, hidden: Sequence[str]) -> bool:
    """Whether *value* holds one of the secrets, or a URL with a password in it."""
    if _URL_WITH_PASSWORD.search(value):
        return True
    decoded = unquote(value)
    return any(secret in value or secret in decoded for secret in hidden)


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: this one's, without secrets, plus *extra*.

    Dropped: ``DATABASE_URL``, any variable holding a URL with a password, and any variable
    holding the secret of a live :func:`secret_file` (as is or percent-encoded: a
    ``${VAR}`` that ``dbkeeper.toml`` names), so that no password can be read from the
    tool's ``/proc/PID/environ``.
    """
    with _live_lock:
        hidden = [s for _, s in _live_secrets.values() if s and len(s) >= SECRET_MIN_LENGTH]
    kept = {
        name: value
        for name, value in os.environ.items()
        if name not in SCRUBBED_VARIABLES and not _hides(value, hidden)
    }
    return {**kept, **(extra or {})}


def _descriptors_named(argv: Sequence[str], env: Mapping[str, str]) -> tuple[int, ...]:
    """The descriptors of the live secret files that *argv* or *env* name (the child must inherit them)."""
    text = "\0".join([*argv, *env.values()])
    with _live_lock:
        return tuple(fd for path, (fd, _) in _live_secrets.items() if fd is not None and path in text)


@contextlib.contextmanager
def runtime_directory(*, on_disk: bool = False) -> Iterator[Path]:
    """A private directory (0700) for this run's secrets, outside any backup directory, removed afterwards.

    It holds a lock for as long as it exists; directories whose lock nobody holds belong
    to runs that were killed and are removed first. *on_disk* puts it under the temporary
    directory rather than in memory (``$XDG_RUNTIME_DIR``, ``/dev/shm``): for scratch
    files as large as a database.
    """
    root = runtime_root(on_disk=on_disk)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(root_fd, fcntl.LOCK_EX)  # no sweep removes a directory between its creation and its lock
        _sweep_runtime(root)
        import tempfile  # here, not at the top: it imports random, which most commands never need

        directory = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX)
    finally:
        os.close(root_fd)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        os.close(fd)


def runtime_root(*, on_disk: bool = False) -> Path:
    """``dbkeeper-UID`` under the runtime, shared-memory or (*on_disk*) temporary directory; ours alone."""
    import tempfile

    in_memory = [] if on_disk else [os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"]
    candidates = [*in_memory, tempfile.gettempdir()]
    base = next(Path(c) for c in candidates if c and os.path.isdir(c) and os.access(c, os.W_OK | os.X_OK))
    root = base / RUNTIME_DIR_NAME.format(uid=os.getuid())
    with contextlib.suppress(FileExistsError):
        root.mkdir(mode=0o700)
    info = root.lstat()
    if not os.path.isdir(root) or root.is_symlink() or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise DatabaseError(f"{root} is not a private directory of this user: remove it and retry")
    return root


def _sweep_runtime(root: Path) -> None:
    """Remove the directories of runs that were killed (their lock is free)."""
    for directory in root.iterdir():
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(directory, ignore_errors=True)
        except BlockingIOError:
            continue  # a run in progress
        finally:
            os.close(fd)


def feed_verified(
    reader: ArtifactReader, write: Callable[[bytes], Any], *, before_last: Callable[[], Any] | None = None
) -> int:
    """Copy *reader* into *write*, delivering the last chunk only after the end was verified.

    :class:`~dbkeeper.plugin.contract.ArtifactReader` proves the checksum when it returns
    ``b""``; until then the final chunk is withheld, so a consumer never sees a complete
    input that turns out to be damaged. *before_last* is called once the end is proven,
    just before the final chunk goes out (where a tool that commits at the end of its
    input can start to commit). Returns the number of bytes written.
    """
    total = 0
    pending = reader.read(CHUNK_SIZE)
    while pending:
        following = reader.read(CHUNK_SIZE)  # raises IntegrityError at a bad end
        if not following and before_last is not None:
            before_last()
        write(pending)
        total += len(pending)
        pending = following
    return total


@runtime_checkable
class _FeedsPipes(Protocol):
    """A reader that can decode straight into a pipe (the core's :class:`~dbkeeper.backups.pipeline.DecodeChain`)."""

    def feed_pipe(self, fd: int, before_last: Callable[[], Any] | None) -> int | None: ...


def feed_pipe(reader: ArtifactReader, pipe: IO[bytes], *, before_last: Callable[[], Any] | None = None) -> int:
    """:func:`feed_verified` into *pipe* (a tool's stdin); return the bytes written.

    When the artifact's codec has a program on this machine (``zstd -d``, see
    :class:`~dbkeeper.plugin.streams.ProgramDecodedStage`), it decodes in that program and
    its output is spliced into *pipe* without passing through Python; the tool gets the
    same bytes at the same moments (the last chunk after the end is proven). A
    ``BrokenPipeError`` means the tool stopped reading, as with :func:`feed_verified`.
    """
    pipe.flush()
    if isinstance(reader, _FeedsPipes) and (fed := reader.feed_pipe(pipe.fileno(), before_last)) is not None:
        return fed
    return feed_verified(reader, pipe.write, before_last=before_last)


def copy_into(reader: ArtifactReader, file: IO[bytes], *, behind: int = READ_AHEAD) -> int:
    """Copy *reader* to its end into *file* (buffered); return the bytes copied.

    The writes happen on a thread, up to *behind* chunks after the reads, so that
    decompressing and checking (this thread) go on while a write waits for the page
    cache's write-back — as ``zstd -d -o FILE`` writes asynchronously too. The end of
    *reader* proves its checksum before this returns; if reading fails, the chunks already
    queued may still be written, so *file* is only good when this returns.
    """
    chunks: queue.Queue[bytes | None] = queue.Queue(behind)
    failures: list[BaseException] = []

    def writer_loop() -> None:
        while (chunk := chunks.get()) is not None:
            if not failures:  # after a failure, only drain, so the reader never blocks
                try:
                    file.write(chunk)
                except BaseException as exc:  # reported by the reading thread
                    failures.append(exc)

    writer = threading.Thread(target=writer_loop, name="write behind", daemon=True)
    writer.start()
    total = 0
    try:
        while not failures and (chunk := reader.read(CHUNK_SIZE)):
            chunks.put(chunk)
            total += len(chunk)
    finally:
        chunks.put(None)
        writer.join()
    if failures:
        raise failures[0]
    return total


class Tool:
    """A running tool; stderr is drained in the background and its tail kept for errors."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str] | None, stdin: bool, stdout: bool) -> None:
        self.name = Path(argv[0]).name
        self._stderr_tail: deque[str] = deque(maxlen=20)
        self.moved = 0
        """Bytes through the tool's stdin and stdout so far (see :meth:`watch`)."""
        self.stalled: float | None = None
        """The stall timeout that stopped the tool, if :meth:`watch` stopped it."""
        try:
            self.process = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=child_environment(env),
                pass_fds=_descriptors_named(argv, env or {}),
            )
        except OSError as exc:
            raise DatabaseError(f"cannot run {self.name}: {exc.strerror}") from None
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                _widen(pipe)
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    @property
    def stdin(self) -> IO[bytes]:
        """The pipe into the tool's stdin (the tool was started with ``stdin=True``)."""
        if self.process.stdin is None:
            raise RuntimeError(f"{self.name} was started without a pipe to its stdin")
        return self.process.stdin

    @property
    def stdout(self) -> IO[bytes]:
        """The pipe from the tool's stdout (the tool was started with ``stdout=True``)."""
        if self.process.stdout is None:
            raise RuntimeError(f"{self.name} was started without a pipe from its stdout")
        return self.process.stdout

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if text := line.decode(errors="replace").strip():
                self._stderr_tail.append(redact(text))

    @property
    def stderr_lines(self) -> list[str]:
        """The last lines the tool wrote to stderr (passwords masked)."""
        self._drain.join(timeout=5)
        return list(self._stderr_tail)

    def error_line(self) -> str:
        """The most telling stderr line: the last error, else the last line."""
        lines = self.stderr_lines
        errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
        return (errors or lines or ["(no message)"])[-1]

    def wait(self) -> None:
        """Wait for the tool; a non-zero exit becomes a DatabaseError with its stderr."""
        code = self.process.wait()
        if self.stalled is not None:
            raise self.stall_error()
        if code != 0:
            raise DatabaseError(f"{self.name} failed (exit {code}): {self.error_line()}")

    def watch(self, seconds: float) -> None:
        """Stop the tool when no byte has passed through its stdin or stdout for *seconds*.

        A read timeout for tools that have none (``mariadb-dump``): a server that stops
        answering would otherwise hang them, and dbkeeper with them, for good.
        """

        def watchdog() -> None:
            moved, since = self.moved, time.monotonic()
            while self.process.poll() is None:
                time.sleep(min(1.0, seconds / 4))
                if self.moved != moved:
                    moved, since = self.moved, time.monotonic()
                elif time.monotonic() - since >= seconds and self.process.poll() is None:
                    self.stalled = seconds
                    self.process.kill()
                    return

        threading.Thread(target=watchdog, name=f"watch {self.name}", daemon=True).start()

    def stall_error(self) -> DatabaseError:
        """What to say about a tool :meth:`watch` stopped."""
        return DatabaseError(
            f"{self.name} got nothing through for {self.stalled:g} s and was stopped: the server does not answer "
            "(if it is only slow, raise the connection's read timeout)"
        )

    def kill(self) -> None:
        """Stop the tool at once (its work is abandoned) and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def _widen(pipe: IO[bytes]) -> None:
    """Give *pipe* a chunk-sized kernel buffer (Linux; 64 KiB otherwise), where allowed.

    With the default 64 KiB, a tool writing a stream and dbkeeper reading it in 1 MiB
    chunks wake each other sixteen times per chunk; a chunk-sized buffer saves both
    sides CPU. Where the system refuses (``fs.pipe-max-size``), the pipe stays as it is.
    """
    if (set_size := getattr(fcntl, "F_SETPIPE_SZ", None)) is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe.fileno(), set_size, CHUNK_SIZE)


@contextlib.contextmanager
def running(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: bool = False,
    stdout: bool = False,
    stall_timeout: float | None = None,
) -> Iterator[Tool]:
    """Run a tool for the block; on an error in the block, kill it; on success, wait for it.

    With *stall_timeout*, the tool is stopped when nothing passes through it for that long
    (see :meth:`Tool.watch`).
    """
    tool = Tool(argv, env=env, stdin=stdin, stdout=stdout)
    if stall_timeout:
        tool.watch(stall_timeout)
    try:
        yield tool
    except BaseException:
        tool.kill()
        raise
    finally:
        for pipe in (tool.process.stdin, tool.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
    tool.wait()


@contextlib.contextmanager
def started_tool(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, stops: WorkerPool | None = None
) -> Iterator[Tool]:
    """A tool writing to stdout, started now, for the block: read in it by whoever adopts it, or never.

    For a dump tool started by a head start before anything reads its output (which waits
    in its pipe meanwhile). At the end of the block it is killed — nothing to do once it
    has exited; whoever read it checks its exit status — and its pipe closed. *stops*, when
    given, can kill it from another thread.
    """
    tool = Tool(argv, env=env, stdin=False, stdout=True)
    try:
        with stops.stoppable(tool.kill) if stops else contextlib.nullcontext():
            yield tool
    finally:
        tool.kill()
        tool.stdout.close()


def stream_out(
    argv: Sequence[str], out: ArtifactWriter, *, env: Mapping[str, str] | None = None,
    stall_timeout: float | None = None,
) -> int:  # fmt: skip
    """Run a tool and stream its stdout into *out*; return the bytes copied (see :func:`copy_output`)."""
    with running(argv, env=env, stdout=True, stall_timeout=stall_timeout) as tool:
        return copy_output(tool, out)


def copy_output(tool: Tool, out: ArtifactWriter, *, read_ahead: int = READ_AHEAD) -> int:
    """Copy a running tool's stdout into *out*; return the bytes copied.

    A thread reads the tool's output ahead, at most *read_ahead* chunks, so that the
    tool keeps writing while *out* compresses and hashes — as it would into a shell
    pipeline — instead of waiting on a full pipe. If *out* fails, the tool is killed.
    """
    stdout = tool.stdout
    chunks: queue.Queue[bytes] = queue.Queue(read_ahead)
    failures: list[BaseException] = []

    def reader_loop() -> None:
        try:
            while chunk := stdout.read(CHUNK_SIZE):
                tool.moved += len(chunk)
                chunks.put(chunk)
        except (OSError, ValueError) as exc:  # the pipe was closed under it: the copy was abandoned
            failures.append(exc)
        finally:
            chunks.put(b"")

    reader = threading.Thread(target=reader_loop, name=f"read {tool.name}", daemon=True)
    reader.start()
    total = 0
    try:
        while chunk := chunks.get():
            out.write(chunk)
            total += len(chunk)
    except BaseException:
        tool.kill()  # then let the reader see the end of the pipe and finish
        while reader.is_alive():
            with contextlib.suppress(queue.Empty):
                chunks.get(timeout=0.1)
        raise
    reader.join()
    if failures:
        raise DatabaseError(f"reading the output of {tool.name} failed: {failures[0]}")
    return total


def stream_in(
    argv: Sequence[str], reader: ArtifactReader, *, env: Mapping[str, str] | None = None,
    stall_timeout: float | None = None,
) -> int:  # fmt: skip
    """Run a tool fed from a verified artifact (see :func:`feed_verified`); return the bytes fed.

    If the artifact turns out damaged, the tool is killed before it sees the end of its
    input. If the tool stops reading early, its own error is raised. *stall_timeout*: see
    :func:`running`.
    """
    with running(argv, env=env, stdin=True, stall_timeout=stall_timeout) as tool:
        stdin = tool.stdin

        def write(data: bytes) -> None:
            stdin.write(data)
            tool.moved += len(data)

        try:
            return feed_verified(reader, write)
        except BrokenPipeError:
            code = tool.process.wait()
            if tool.stalled is not None:
                raise tool.stall_error() from None
            raise DatabaseError(
                f"{tool.name} failed (exit {code}) before reading all its input: {tool.error_line()}"
            ) from None
