"""Decoding an artifact in a program (``zstd -d``) whose output is spliced into a tool's pipe.

Used by :meth:`dbkeeper.backups.pipeline.DecodeChain.feed_pipe` when its codec is a
:class:`~dbkeeper.plugin.streams.ProgramDecodedStage` whose program is installed. The
stored bytes go through the integrity stages as always, on a thread, into the program;
its output moves into the tool's pipe by ``splice(2)``, page by page, never copied
through Python. That leaves the interpreter's core to the tool and the server: on a
restore that keeps a CPU busy, the copies cost as much as the decompression.

What reaches the tool is what :func:`dbkeeper.plugin.feed_verified` would give it: the
last part of the decoded bytes (one chunk) is held back in memory until the program has
exited cleanly, every integrity stage has matched and the byte count is the manifest's.
Anything else — damage, a program error, more or fewer bytes than recorded — raises
:class:`~dbkeeper.errors.IntegrityError` with the tool still short of its last chunk.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dbkeeper.plugin.streams import CHUNK_SIZE, ProgramDecodedStage, Readable, Stage
from dbkeeper.plugin.tools import Tool

PROGRAM_FROM = 16 * CHUNK_SIZE
"""The smallest artifact (decoded bytes) worth a program: below it, starting one costs more than it saves."""


def decode_program(stages: Sequence[tuple[Stage, Mapping[str, Any]]], raw_bytes: int | None) -> list[str] | None:
    """The program to decode an artifact of *stages* with, if one is worth it here.

    Only for one codec followed by integrity stages only (no cipher: its identities stay
    in this process), a :class:`ProgramDecodedStage` whose program is installed, an
    artifact of at least :data:`PROGRAM_FROM` decoded bytes, on a system with ``splice(2)``.
    """
    if raw_bytes is None or raw_bytes < PROGRAM_FROM or len(stages) < 2 or not hasattr(os, "splice"):
        return None
    (codec, record), checks = stages[0], stages[1:]
    if not isinstance(codec, ProgramDecodedStage) or any(stage.kind != "integrity" for stage, _ in checks):
        return None
    return codec.decode_program(record)


class _Pump:
    """Copies the checked stored bytes into the program's input on a thread of its own."""

    def __init__(self, source: Readable, tool: Tool) -> None:
        self._source = source
        self._stdin = tool.stdin
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"feed {tool.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while chunk := self._source.read(CHUNK_SIZE):  # at b"": every integrity stage matched
                self._stdin.write(chunk)
        except BrokenPipeError:  # the program stopped reading: its exit status tells why
            pass
        except BaseException as exc:  # reported by the splicing thread
            self.failure = exc
        finally:
            with contextlib.suppress(OSError):
                self._stdin.close()  # the program's end of input (a truncated one after a failure)

    def join(self) -> None:
        """Wait for the pump (it ends once the program has read everything or stopped reading)."""
        self._thread.join()


class ProgramError(Exception):
    """The program failed, or its output is not the size the manifest records (the artifact is damaged)."""


def feed_through(
    argv: Sequence[str], source: Readable, fd: int, raw_bytes: int, before_last: Callable[[], Any] | None
) -> int:
    """Decode *source* (the stored bytes, checked) with *argv* into *fd*; return the decoded bytes fed.

    *raw_bytes* is the decoded size the manifest records: everything but the last chunk
    of it is spliced as it comes; the rest waits in memory for the program's clean exit
    and the checks. *before_last* runs just before it goes out. Raises what *source*
    raised (IntegrityError: a stage did not match), else :class:`ProgramError`; either way
    the program has ended and *source* is left where it was, for the caller to drain. A
    ``BrokenPipeError`` means the tool stopped reading (its own error is the one to report).
    """
    tool = Tool(argv, env=None, stdin=True, stdout=True)
    pump = _Pump(source, tool)
    try:
        src = tool.stdout.fileno()
        held = min(raw_bytes, CHUNK_SIZE)
        moved = _splice(src, fd, raw_bytes - held)
        tail = _read_up_to(src, raw_bytes - moved + 1)  # one byte more than expected tells "too many"
        decoded = moved + len(tail)
        if decoded > raw_bytes:
            tool.kill()
        pump.join()
        code = tool.process.wait()
    except BaseException:
        tool.kill()
        pump.join()
        raise
    finally:
        tool.stdout.close()
    if pump.failure is not None:
        raise pump.failure
    if decoded > raw_bytes:
        raise ProgramError(f"it decodes to more than the {raw_bytes} bytes the manifest records")
    if code != 0:
        raise ProgramError(f"{tool.name}: {tool.error_line()}")
    if decoded < raw_bytes:
        raise ProgramError(f"it decodes to {decoded} bytes, the manifest records {raw_bytes}")
    if tail and before_last is not None:
        before_last()
    _write_all(fd, tail)
    return raw_bytes


def _splice(src: int, dst: int, count: int) -> int:
    """Move up to *count* bytes from the pipe *src* into *dst*; fewer only when *src* ends first."""
    moved = 0
    while moved < count:
        n = os.splice(src, dst, count - moved)
        if n == 0:
            break
        moved += n
    return moved


def _read_up_to(src: int, limit: int) -> bytearray:
    """Read *src* to its end, but no more than *limit* bytes."""
    data = bytearray()
    while len(data) < limit and (chunk := os.read(src, min(CHUNK_SIZE, limit - len(data)))):
        data += chunk
    return data


def _write_all(fd: int, data: bytearray) -> None:
    """Write all of *data* to *fd*."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
