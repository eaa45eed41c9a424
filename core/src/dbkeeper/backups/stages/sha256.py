"""The ``sha256`` integrity stage: a digest of the stored bytes, checked on every read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dbkeeper.backups.stages.passthrough import PassThroughEncoder
from dbkeeper.errors import IntegrityError
from dbkeeper.plugin.streams import Encoder, Readable, StageKind, Writable, check_options

if TYPE_CHECKING:
    import hashlib


def _sha256() -> hashlib._Hash:
    """A new SHA-256 hash; hashlib (OpenSSL's start-up) is imported when the first is made, not with the stage."""
    import hashlib

    return hashlib.sha256()


class _HashingEncoder(PassThroughEncoder):
    def __init__(self, sink: Writable) -> None:
        super().__init__(sink)
        self._hash = _sha256()

    def _see(self, data: bytes) -> None:
        self._hash.update(data)

    def finish(self) -> dict[str, Any]:
        return {"digest": self._hash.hexdigest()}


class _VerifyingReader:
    """Hashes what it reads; at the end of the source, compares with the recorded digest."""

    def __init__(self, source: Readable, expected: str) -> None:
        self._source = source
        self._expected = expected
        self._hash = _sha256()

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        if data:
            self._hash.update(data)
        elif (actual := self._hash.hexdigest()) != self._expected:
            raise IntegrityError(
                f"SHA256 mismatch: the stored bytes hash to {actual[:16]}…, the manifest "
                f"records {self._expected[:16]}…; the file was damaged or changed after the backup"
            )
        return data


class Sha256Stage:
    """SHA256 of the stored artifact, the same digest ``sha256sum`` prints for the file."""

    name = "sha256"
    kind: StageKind = "integrity"
    suffix = ""

    def encoder(self, sink: Writable, options: Mapping[str, Any]) -> Encoder:
        """Hash the bytes on their way to the file; the record is ``{"digest": hex}``."""
        check_options(self.name, options, {})
        return _HashingEncoder(sink)

    def decoder(self, source: Readable, record: Mapping[str, Any]) -> Readable:
        """Hash the bytes read and raise IntegrityError at the end if the digest differs."""
        digest = record.get("digest")
        if not isinstance(digest, str) or len(digest) != 64:
            raise IntegrityError("the manifest's sha256 record has no valid digest")
        return _VerifyingReader(source, digest)
