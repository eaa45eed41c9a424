"""Threads that let pyrage's blocking ``encrypt_io``/``decrypt_io`` run inside dbkeeper's chains.

pyrage pulls its input from a reader and pushes its output into a writer until the end,
on the thread that calls it. A chain's encoder is *pushed* into and its decoder *pulled*
from, so each runs pyrage on one worker thread and meets it at a :class:`Pipe`: a queue
of at most :data:`QUEUE_DEPTH` pieces of at most :data:`CHUNK_SIZE` bytes. Memory stays
flat whatever the size of the artifact.

Either side may stop. An error on the worker closes the pipe, and the caller raises it at
its next call: the original error when it came from the chain around us (a full disk, a
failed upload, a checksum mismatch), not pyrage's wrapping of it. A caller that goes
away (closes its reader, or drops its encoder or reader) closes the pipe, and the worker
stops at its next step. Every wait wakes each :data:`POLL` seconds to look at the other
side, so no thread is left blocked forever. The worker, not the caller, writes into an
encoder's sink and reads a decrypter's source, one call at a time.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any, NoReturn

from dbkeeper.plugin import CHUNK_SIZE, Readable, Writable

QUEUE_DEPTH = 4
"""Pieces waiting between the threads; with CHUNK_SIZE pieces, at most 4 MiB in flight."""
POLL = 0.1
"""Seconds a blocked thread waits before it looks whether the other side gave up."""

PyrageCall = Callable[[Readable, Writable], None]
"""``encrypt_io`` or ``decrypt_io`` with its keys bound: reads one end, writes the other."""
Translate = Callable[[BaseException], BaseException]
"""Turns an error pyrage raised into the error dbkeeper reports."""


class Cancelled(Exception):
    """The other side of a pipe gave up."""


class Pipe:
    """A bounded queue of byte pieces between two threads; ``None`` marks the end; closing aborts both sides."""

    def __init__(self) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue(QUEUE_DEPTH)
        self._closed = threading.Event()

    def close(self) -> None:
        """Abort: every later or waiting put and get raises Cancelled."""
        self._closed.set()

    def put(self, piece: bytes | None) -> None:
        """Queue *piece*, waiting for room while the pipe is open."""
        while not self._closed.is_set():
            try:
                self._queue.put(piece, timeout=POLL)
            except queue.Full:
                continue
            return
        raise Cancelled

    def get(self) -> bytes | None:
        """The next piece, waiting for one while the pipe is open."""
        while not self._closed.is_set():
            try:
                return self._queue.get(timeout=POLL)
            except queue.Empty:
                continue
        raise Cancelled


class PipeReader:
    """Reads the pieces of a pipe as one stream, in reads of at most the size asked."""

    def __init__(self, pipe: Pipe) -> None:
        self._pipe = pipe
        self._piece = b""
        self._offset = 0
        self._ended = False

    def fill(self) -> None:
        """Wait for the next piece if the current one is used up (or for the end)."""
        if self._offset >= len(self._piece) and not self._ended:
            piece = self._pipe.get()
            self._ended = piece is None
            self._piece, self._offset = piece or b"", 0

    def read(self, size: int = -1, /) -> bytes:
        """Up to *size* bytes of the current piece (all of it for a negative size); ``b""`` at the end."""
        self.fill()
        stop = len(self._piece) if size < 0 else self._offset + size
        data = self._piece[self._offset : stop]
        self._offset += len(data)
        return data


class PipeWriter:
    """Gathers small writes into pieces of CHUNK_SIZE bytes for a pipe."""

    def __init__(self, pipe: Pipe) -> None:
        self._pipe = pipe
        self._buffer = bytearray()

    def write(self, data: bytes, /) -> int:
        """Buffer *data*; pass a full piece on."""
        self._buffer += data
        if len(self._buffer) >= CHUNK_SIZE:
            self.flush()
        return len(data)

    def flush(self) -> None:
        """Pass on what is buffered."""
        if self._buffer:
            self._pipe.put(bytes(self._buffer))
            self._buffer.clear()


class Worker:
    """A daemon thread running one pyrage call, which keeps its first error for the caller."""

    def __init__(self, name: str, pipe: Pipe, translate: Translate) -> None:
        self._pipe = pipe
        self._translate = translate
        self._cause: BaseException | None = None
        self._error: BaseException | None = None
        self._name = name
        self._thread: threading.Thread | None = None

    def start(self, call: Callable[[], None]) -> None:
        """Run *call* on a new thread."""
        self._thread = threading.Thread(target=self._run, args=(call,), name=self._name, daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], None]) -> None:
        try:
            call()
        except BaseException as exc:  # handed to the caller's thread, which raises it
            self._error = exc
            self._pipe.close()

    def fail_at_end(self, exc: BaseException) -> None:
        """The chain around us failed (*exc*): remember it as the cause and stop both sides."""
        if self._cause is None:
            self._cause = exc
        self._pipe.close()

    def join(self) -> None:
        """Wait until the thread has ended."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(POLL)

    def failure(self) -> BaseException | None:
        """Once the thread has ended: the chain's own error, or pyrage's translated, or None if all went well."""
        self.join()
        if self._cause is not None:
            return self._cause
        if self._error is not None:
            return self._translate(self._error)
        return None

    def raise_failure(self) -> NoReturn:
        """Raise what made the pipe close: the worker's failure, or the caller's own closing."""
        raise self.failure() or ValueError("I/O on a closed age stream")


class GuardedWriter:
    """The encoder's sink, whose errors the worker keeps as they are."""

    def __init__(self, sink: Writable, worker: Worker) -> None:
        self._sink = sink
        self._worker = worker

    def write(self, data: bytes, /) -> int:
        """Forward *data* to the sink."""
        try:
            return self._sink.write(data)
        except BaseException as exc:
            self._worker.fail_at_end(exc)
            raise


class GuardedReader:
    """The decrypter's source, whose errors the worker keeps as they are."""

    def __init__(self, source: Readable, worker: Worker) -> None:
        self._source = source
        self._worker = worker

    def read(self, size: int = -1, /) -> bytes:
        """Read from the source."""
        try:
            return self._source.read(size)
        except BaseException as exc:
            self._worker.fail_at_end(exc)
            raise


class PushBridge:
    """An encoder: what is written is pulled by pyrage on a worker thread, which writes into the sink."""

    def __init__(self, run: PyrageCall, sink: Writable, translate: Translate, record: dict[str, Any]) -> None:
        self._pipe = Pipe()
        self._worker = Worker("dbkeeper-age-encrypt", self._pipe, translate)
        self._record = record
        weakref.finalize(self, self._pipe.close)
        reader, writer = PipeReader(self._pipe), GuardedWriter(sink, self._worker)
        self._worker.start(lambda: run(reader, writer))

    def _send(self, piece: bytes | None) -> None:
        try:
            self._pipe.put(piece)
        except Cancelled:
            self._worker.raise_failure()

    def write(self, data: bytes, /) -> int:
        """Queue *data* for encryption, in pieces of at most CHUNK_SIZE."""
        view = memoryview(data)
        for start in range(0, len(view), CHUNK_SIZE):
            self._send(bytes(view[start : start + CHUNK_SIZE]))
        return len(view)

    def finish(self) -> dict[str, Any]:
        """Mark the end, wait until the last bytes are in the sink, and return the record."""
        self._send(None)
        if failure := self._worker.failure():
            raise failure
        self._pipe.close()  # a write after the end fails instead of waiting for a reader that is gone
        return dict(self._record)


class PullBridge:
    """A reader: pyrage reads the source on a worker thread and its output is read here."""

    def __init__(self, run: PyrageCall, source: Readable, translate: Translate) -> None:
        pipe = Pipe()
        self._worker = Worker("dbkeeper-age-decrypt", pipe, translate)
        self._pieces = PipeReader(pipe)
        self._close = weakref.finalize(self, pipe.close)
        reader, writer = GuardedReader(source, self._worker), PipeWriter(pipe)

        def call() -> None:
            run(reader, writer)
            writer.flush()
            pipe.put(None)

        self._worker.start(call)

    def prime(self, early: type[BaseException]) -> None:
        """Wait for the first bytes; raise a failure of type *early* now, and keep any other for ``read()``."""
        try:
            self._pieces.fill()
        except Cancelled:
            if isinstance(failure := self._worker.failure(), early):
                raise failure from None

    def read(self, size: int = -1, /) -> bytes:
        """Decrypted bytes; ``b""`` only once pyrage has authenticated the whole stream."""
        if not self._close.alive:
            raise ValueError("read from a closed age decrypter")
        try:
            data = self._pieces.read(size)
        except Cancelled:
            self._worker.raise_failure()
        if not data:
            self._worker.join()
        return data

    def close(self) -> None:
        """Stop decrypting; the worker ends at its next step."""
        self._close()
