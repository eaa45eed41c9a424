"""``s3://bucket/prefix`` URLs: the bucket and the key prefix they name, checked and normalised."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from dbkeeper.plugin import StorageError


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix inside it (``""`` or ``a/b``: no leading, trailing or doubled slashes)."""

    bucket: str
    prefix: str = ""

    @property
    def url(self) -> str:
        """The normalised URL, for messages (it never holds credentials)."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def key(self, relative: str) -> str:
        """The full key in the bucket of *relative* (a key under the prefix)."""
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def relative(self, key: str) -> str:
        """The key under the prefix of the full key *key*."""
        return key[len(self.prefix) + 1 :] if self.prefix else key


def parse_location(url: str) -> S3Location:
    """The bucket and prefix of *url*; a StorageError for anything else (never echoing a password)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "s3":
        raise StorageError("an S3 storage URL starts with s3://, as in s3://bucket/prefix")
    if "@" in parts.netloc:
        raise StorageError(
            "an s3:// URL must not hold credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "or put them in a [storage.NAME] section"
        )
    if parts.query or parts.fragment:
        raise StorageError(
            f"s3://{parts.netloc}/…: an s3:// URL takes no ?options: put them in a [storage.NAME] section"
        )
    if not parts.netloc or ":" in parts.netloc:
        raise StorageError(
            "an s3:// URL names a bucket, as in s3://bucket/prefix: set the endpoint with AWS_ENDPOINT_URL"
        )
    segments = [segment for segment in parts.path.split("/") if segment]
    if any(segment in (".", "..") for segment in segments):
        raise StorageError(f"s3://{parts.netloc}{parts.path}: a prefix must not hold '.' or '..' segments")
    return S3Location(parts.netloc, "/".join(segments))
