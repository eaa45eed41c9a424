"""Byte streams and pipeline stages: what a driver reads and writes, and what a stage is.

A backup artifact flows ``driver → stage 1 → … → stage n → file``; a restore reads it back
through the inverse chain (:mod:`dbkeeper.backups.pipeline` runs both). Stages are
registered by plugins through ``dbkeeper_register_stages`` (the built-in ``zstd``,
``gzip``, ``none`` and ``sha256`` too). Encoders are *pushed* into (``write``), decoders
are *pulled* from (``read``), so every stage works on bounded chunks of at most
:data:`CHUNK_SIZE` and memory does not grow with the database.

Each stage contributes a record to the manifest: its name, the distribution that
provided it, its parameters and its results (for ``sha256``, the digest). Restoring hands
the same record back to the stage's decoder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from dbkeeper.errors import StageOptionError

CHUNK_SIZE = 1 << 20
"""Bytes moved per read or write through a chain; the unit that bounds memory."""

StageKind = Literal["compression", "encryption", "integrity"]
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
    """A pipeline stage: a codec (``compression``), a cipher (``encryption``) or a check (``integrity``).

    ``suffix`` is appended to the artifact's file name (``.zst``, ``.age``; empty for a check).
    The chain is always compression → encryption → integrity: integrity stages pass bytes
    through unchanged and run last so that they cover the stored bytes (``dbkeeper verify``
    runs only them, so it needs no key); an encryption stage is an :class:`EncryptionStage`.

    A codec that compresses on worker threads says so by being a :class:`ThreadedStage`.
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


@runtime_checkable
class ThreadedStage(Stage, Protocol):
    """A codec that compresses on worker threads: it has ``threaded = True``.

    It must take an integer ``threads`` option (0: no worker threads), which the core sets
    when several artifacts are written at once (``StagePlan.sharing_cores``).
    """

    threaded: bool


@runtime_checkable
class ProgramDecodedStage(Stage, Protocol):
    """A codec whose stored form a program on this machine also decodes (``zstd -d``).

    Where a restore feeds a tool's pipe (:func:`dbkeeper.plugin.feed_pipe`), the core may run
    that program instead of the stage's Python decoder: the stored bytes, checked as
    always, go into the program, and its output is spliced into the tool's input without
    passing through Python — the decompression leaves the interpreter and its copies.
    """

    def decode_program(self, record: Mapping[str, Any]) -> list[str] | None:
        """The command decoding this stage's output from stdin to stdout for *record*, or None.

        None when the program is not installed (the Python decoder is used). The program
        must exit non-zero on damaged input and write nothing but the decoded bytes.
        """
        ...


@runtime_checkable
class EncryptionStage(Stage, Protocol):
    """A cipher (``kind = "encryption"``): encrypting needs only public recipients, decrypting an identity.

    Its encoder takes the option ``recipients`` (a list of public keys as the user wrote
    them) and records only their fingerprints in the manifest, never key material. Its
    plain ``decoder`` raises :class:`~dbkeeper.errors.KeyRequiredError` (no identity was
    given); :meth:`decrypter` is what restore, ``verify --deep`` and ``copy`` call.
    """

    def decrypter(self, source: Readable, record: Mapping[str, Any], identities: Sequence[Path]) -> Readable:
        """Return a reader decrypting *source* with the identity files *identities*.

        Raises :class:`~dbkeeper.errors.KeyRequiredError` when none of them can decrypt it
        (naming the record's recipient fingerprints), and
        :class:`~dbkeeper.errors.IntegrityError` from ``read()`` when the ciphertext was
        tampered with. Decrypted bytes may be returned before the end is authenticated:
        consumers only trust what they read once ``read()`` has returned ``b""``.
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
