"""The chains that run pipeline stages over an artifact's bytes.

:class:`EncodeChain` pushes what a driver writes through the encoders into a file;
:class:`DecodeChain` pulls a stored file back through the decoders, proving every
integrity stage before it reports the end. What a stage is, and the byte-stream
protocols, are part of the plugin contract (:mod:`dbkeeper.plugin.streams`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from dbkeeper.errors import DbkeeperError, IntegrityError
from dbkeeper.plugin.streams import (
    CHUNK_SIZE,
    THREADS_OPTION,
    Encoder,
    EncryptionStage,
    Readable,
    Stage,
    ThreadedStage,
    Writable,
)


class StagePlan(NamedTuple):
    """One stage of a chain, with the distribution that provides it and its options."""

    stage: Stage
    distribution: str
    options: Mapping[str, Any]

    def sharing_cores(self, writers: int) -> StagePlan:
        """The plan for each of *writers* encoders running at once (a driver's ``--jobs``).

        A ``threaded`` codec whose ``threads`` the user did not choose gets its share of
        the cores: ``cores // writers`` worker threads, or none when that share is one
        core or less (the writing thread compresses; it has a core of its own). Without
        this, *writers* codecs would each start a thread per core, and their buffers
        would multiply the memory for no speed.
        """
        threaded = isinstance(self.stage, ThreadedStage) and self.stage.threaded
        if writers <= 1 or not threaded or THREADS_OPTION in self.options:
            return self
        share = (os.cpu_count() or 1) // writers
        return self._replace(options={**self.options, THREADS_OPTION: share if share > 1 else 0})

    def record_of_nothing(self) -> dict[str, Any]:
        """Run the encoder over no bytes: StageOptionError now for bad options, else the record it writes."""
        return {"name": self.stage.name, **self.stage.encoder(_Discard(), self.options).finish()}


class _Discard:
    """A sink that drops everything."""

    def write(self, data: bytes, /) -> int:
        return len(data)


class Counter:
    """Counts bytes as they pass and reports each chunk to an optional callback."""

    def __init__(self, on_bytes: Callable[[int], None] | None = None) -> None:
        self.total = 0
        self._on_bytes = on_bytes

    def add(self, n: int) -> None:
        """Record *n* more bytes."""
        self.total += n
        if self._on_bytes is not None:
            self._on_bytes(n)


class CountingWriter:
    """A writer that counts what it forwards to *sink*."""

    def __init__(self, sink: Writable, counter: Counter) -> None:
        self._sink = sink
        self.counter = counter

    def write(self, data: bytes, /) -> int:
        """Forward *data* and count it."""
        self._sink.write(data)
        self.counter.add(len(data))
        return len(data)


class CountingReader:
    """A reader that counts what it returns from *source*."""

    def __init__(self, source: Readable, counter: Counter) -> None:
        self._source = source
        self.counter = counter

    def read(self, size: int = -1, /) -> bytes:
        """Read from the source and count it."""
        data = self._source.read(size)
        self.counter.add(len(data))
        return data


class EncodeChain:
    """Raw bytes in at ``write()``, stored bytes out into a file; ``finish()`` returns records."""

    def __init__(self, plans: Sequence[StagePlan], out: Writable, on_raw: Callable[[int], None] | None) -> None:
        self.stored = Counter()
        writer: Writable = CountingWriter(out, self.stored)
        encoders: list[Encoder] = []
        for plan in reversed(plans):
            encoder = plan.stage.encoder(writer, plan.options)
            encoders.append(encoder)
            writer = encoder
        self._plans = plans
        self._encoders = list(reversed(encoders))
        self.raw = Counter(on_raw)
        self._head = CountingWriter(writer, self.raw)

    def write(self, data: bytes, /) -> int:
        """Push raw bytes into the first stage."""
        return self._head.write(data)

    def finish(self) -> list[dict[str, Any]]:
        """Flush every stage, first to last, and return their manifest records in order."""
        records = []
        for plan, encoder in zip(self._plans, self._encoders, strict=True):
            records.append({"name": plan.stage.name, "distribution": plan.distribution, **encoder.finish()})
        return records


class DecodeChain:
    """Stored bytes in from a file or an object, raw bytes out at ``read()``, every check enforced.

    An encryption stage decrypts with *identities* (identity files); without them its
    decoder raises :class:`~dbkeeper.errors.KeyRequiredError`.

    The end (``b""``) is returned only after the whole stored file went through the
    integrity stages: a codec that stops at the end of its frame does not hide trailing or
    missing bytes. A codec error is reported as damage, naming the artifact.

    *raw_bytes*, the decoded size the manifest records, lets :meth:`feed_pipe` decode in a
    program instead (see :mod:`dbkeeper.backups.piped_decoding`).
    """

    def __init__(
        self,
        stages: Sequence[tuple[Stage, Mapping[str, Any]]],
        source: Readable,
        label: str,
        on_stored: Callable[[int], None] | None = None,
        identities: Sequence[Path] = (),
        raw_bytes: int | None = None,
    ) -> None:
        self.stored = Counter(on_stored)
        self._label = label
        self._stages = stages
        self._raw_bytes = raw_bytes
        reader: Readable = CountingReader(source, self.stored)
        # The integrity stages come last when encoding, so they wrap the file first here;
        # ``_checks`` is the outermost of them: draining it pulls the file through them all.
        self._checks: Readable | None = None
        only_checks_so_far = True
        for stage, record in reversed(stages):
            if identities and isinstance(stage, EncryptionStage):
                reader = stage.decrypter(reader, record, identities)
            else:
                reader = stage.decoder(reader, record)
            only_checks_so_far = only_checks_so_far and stage.kind == "integrity"
            if only_checks_so_far:
                self._checks = reader
        self._head = reader
        self._ended = False

    def read(self, size: int = -1, /) -> bytes:
        """Return decoded bytes; at the end, drain and check the stored bytes first."""
        if self._ended:
            return b""
        try:
            data = self._head.read(size)
            if not data:
                self._drain()
                self._ended = True
            return data
        except IntegrityError as exc:
            raise self._named(exc) from exc
        except DbkeeperError:  # a missing key, a storage that stopped answering
            raise
        except Exception as exc:  # a codec's own error type, whatever the plugin
            self._drain_after(exc)
            raise

    def feed_pipe(self, fd: int, before_last: Callable[[], Any] | None) -> int | None:
        """Decode the whole artifact into *fd* by the codec's program, or return None when it has none here.

        What *fd* receives, and when, is what :func:`dbkeeper.plugin.feed_verified` would
        give it (the last chunk only after the end is proven). Afterwards, whatever
        happened, ``read()`` only proves the rest of the stored bytes and returns ``b""``
        (after a ``BrokenPipeError``: the tool stopped reading).
        """
        from dbkeeper.backups.piped_decoding import decode_program, feed_through

        program = decode_program(self._stages, self._raw_bytes)
        if program is None or self._checks is None or self._ended or self.stored.total:
            return None
        assert self._raw_bytes is not None  # a program is only chosen for a known size
        self._head = _Drained(self._checks)
        try:
            fed = feed_through(program, self._checks, fd, self._raw_bytes, before_last)
        except IntegrityError as exc:
            raise self._named(exc) from exc
        except (DbkeeperError, BrokenPipeError):  # a missing key, a storage that stopped answering; the tool quit
            raise
        except Exception as exc:  # the program failed (ProgramError), or reading the stored file did: as in read()
            self._drain_after(exc)
            raise
        self._ended = True
        return fed

    def _drain(self) -> None:
        """Read the integrity layers to the end of the file so their checks run."""
        if self._checks is not None:
            while self._checks.read(CHUNK_SIZE):
                pass

    def _named(self, error: IntegrityError) -> IntegrityError:
        """*error*, naming the artifact when it does not already (a stage cannot know the name)."""
        return error if self._label in str(error) else IntegrityError(f"artifact {self._label}: {error}")

    def _drain_after(self, exc: Exception) -> None:
        """A codec failed: report a checksum mismatch if there is one, else the codec error."""
        try:
            self._drain()
        except IntegrityError as mismatch:
            raise self._named(mismatch) from exc
        except Exception:  # the codec layer fails again: the checks above it decide
            pass
        raise IntegrityError(
            f"artifact {self._label} is damaged ({exc}); it cannot be restored — use another backup"
        ) from exc


class _Drained:
    """What a chain reads after :meth:`DecodeChain.feed_pipe`: the rest of the stored bytes, proven, then the end."""

    def __init__(self, checks: Readable) -> None:
        self._checks = checks

    def read(self, size: int = -1, /) -> bytes:
        while self._checks.read(CHUNK_SIZE):
            pass
        return b""
