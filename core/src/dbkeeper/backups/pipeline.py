"""Pipeline stages and the chains that run them.

A backup artifact flows ``driver → stage 1 → … → stage n → file``; a restore reads it back
through the inverse chain. Stages are registered by plugins through
``dbkeeper_register_stages`` (the built-in ``zstd``, ``gzip``, ``none`` and ``sha256``
too). Encoders are *pushed* into (``write``), decoders are *pulled* from (``read``), so
every stage works on bounded chunks and memory does not grow with the database.

Each stage contributes a record to the manifest: its name, the distribution that
provided it, its parameters and its results (for ``sha256``, the digest). Restoring hands
the same record back to the stage's decoder.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, BinaryIO, Literal, Protocol

from dbkeeper.errors import IntegrityError, StageOptionError

CHUNK_SIZE = 1 << 20
"""Bytes moved per read or write through a chain; the unit that bounds memory."""

StageKind = Literal["compression", "integrity"]
THREADS_OPTION = "threads"
"""The option a ``threaded`` codec takes for its number of worker threads (``--threads``)."""


class Writable(Protocol):
    """Anything bytes can be pushed into."""

    def write(self, data: bytes, /) -> int:
        """Consume *data*; return ``len(data)``."""
        ...


class Readable(Protocol):
    """Anything bytes can be pulled from; ``b""`` means the end."""

    def read(self, size: int = -1, /) -> bytes:
        """Return up to *size* bytes, or ``b""`` at the end."""
        ...


class Encoder(Writable, Protocol):
    """A running encoding stage: bytes are written in; ``finish()`` flushes and reports."""

    def finish(self) -> dict[str, Any]:
        """Flush everything downstream (without closing it) and return the stage's record.

        The record holds JSON values: the parameters used and any result (a digest).
        """
        ...


class Stage(Protocol):
    """A pipeline stage: a codec (``compression``) or a check (``integrity``).

    ``suffix`` is appended to the artifact's file name (``.zst``; empty for a check).
    Integrity stages pass bytes through unchanged and must run after every compression
    stage so that they cover the stored bytes; ``dbkeeper verify`` runs only them.

    A codec that compresses on worker threads may say so with a class attribute
    ``threaded = True``; it must then take an integer ``threads`` option (0: no worker
    threads), which the core sets when several artifacts are written at once
    (:meth:`StagePlan.sharing_cores`).
    """

    name: str
    kind: StageKind
    suffix: str

    def encoder(self, sink: Writable, options: Mapping[str, Any]) -> Encoder:
        """Return an encoder writing into *sink*; reject unknown *options* with StageOptionError."""
        ...

    def decoder(self, source: Readable, record: Mapping[str, Any]) -> Readable:
        """Return a reader decoding *source* with the *record* this stage's encoder made.

        An integrity decoder raises IntegrityError from ``read()`` at the end of *source*
        when the bytes do not match the record.
        """
        ...


def check_options(stage: str, options: Mapping[str, Any], known: Mapping[str, type]) -> None:
    """Raise StageOptionError unless every option is known to *stage* and of the right type."""
    for key, value in options.items():
        if key not in known:
            allowed = ", ".join(sorted(known)) or "none"
            raise StageOptionError(f"stage {stage!r} has no option {key!r} (its options: {allowed})")
        if not isinstance(value, known[key]) or isinstance(value, bool):
            kind = "an integer" if known[key] is int else known[key].__name__
            raise StageOptionError(f"stage {stage!r} option {key!r} must be {kind}, not {value!r}")


@dataclass(frozen=True)
class StagePlan:
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
        if writers <= 1 or not getattr(self.stage, "threaded", False) or THREADS_OPTION in self.options:
            return self
        share = (os.cpu_count() or 1) // writers
        return replace(self, options={**self.options, THREADS_OPTION: share if share > 1 else 0})


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
    """Stored bytes in from a file, raw bytes out at ``read()``, every check enforced.

    The end (``b""``) is returned only after the whole stored file went through the
    integrity stages: a codec that stops at the end of its frame does not hide trailing or
    missing bytes. A codec error is reported as damage, naming the artifact.
    """

    def __init__(
        self,
        stages: Sequence[tuple[Stage, Mapping[str, Any]]],
        source: BinaryIO,
        label: str,
        on_stored: Callable[[int], None] | None = None,
    ) -> None:
        self.stored = Counter(on_stored)
        self._label = label
        reader: Readable = CountingReader(source, self.stored)
        # The integrity stages come last when encoding, so they wrap the file first here;
        # ``_checks`` is the outermost of them: draining it pulls the file through them all.
        self._checks: Readable | None = None
        only_checks_so_far = True
        for stage, record in reversed(stages):
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
        except IntegrityError:
            raise
        except Exception as exc:  # a codec's own error type, whatever the plugin
            self._drain_after(exc)
            raise

    def _drain(self) -> None:
        """Read the integrity layers to the end of the file so their checks run."""
        if self._checks is not None:
            while self._checks.read(CHUNK_SIZE):
                pass

    def _drain_after(self, exc: Exception) -> None:
        """A codec failed: report a checksum mismatch if there is one, else the codec error."""
        try:
            self._drain()
        except IntegrityError:
            raise
        except Exception:  # the codec layer fails again: the checks above it decide
            pass
        raise IntegrityError(
            f"artifact {self._label} is damaged ({exc}); it cannot be restored — use another backup"
        ) from exc
