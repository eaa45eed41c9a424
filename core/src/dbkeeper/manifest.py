"""The backup manifest: what a backup holds, written last as the mark that it is complete.

The manifest is JSON (schema: ``manifest.schema.json`` beside this module, documented in
``docs/manifest.md``). It is sealed with a SHA256 of its own canonical form, so a manifest
edited by hand or damaged on disk is refused instead of trusted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from dbkeeper.errors import ManifestError

SCHEMA_VERSION = 1
SEAL = "manifest_sha256"


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse a time written by :func:`format_time`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class Provenance:
    """Which plugin distribution, at which version, did a piece of work."""

    name: str
    distribution: str
    version: str


@dataclass(frozen=True)
class ArtifactRecord:
    """One stored file of a backup.

    ``name`` is what the driver called it, ``file`` the stored file name (with the
    codec's suffix); ``stages`` are the stage records in the order they were applied.
    """

    name: str
    file: str
    raw_bytes: int
    stored_bytes: int
    stages: list[dict[str, Any]]

    @property
    def sha256(self) -> str | None:
        """The SHA256 of the stored file, when the ``sha256`` stage was applied."""
        for record in self.stages:
            if record.get("name") == "sha256":
                return record.get("digest")
        return None


@dataclass(frozen=True)
class Manifest:
    """Everything recorded about one complete backup. Never holds a password."""

    id: str
    dbkeeper_version: str
    driver: Provenance
    engine: str
    engine_version: str
    database: str
    source_url: str
    format: str
    started_at: datetime
    finished_at: datetime
    artifacts: list[ArtifactRecord]
    row_counts: dict[str, int]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def raw_bytes(self) -> int:
        """Bytes the driver produced, before any stage."""
        return sum(a.raw_bytes for a in self.artifacts)

    @property
    def stored_bytes(self) -> int:
        """Bytes stored on disk."""
        return sum(a.stored_bytes for a in self.artifacts)

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready data, sealed with its own checksum."""
        data = {
            "schema_version": SCHEMA_VERSION,
            **asdict(self),
            "started_at": format_time(self.started_at),
            "finished_at": format_time(self.finished_at),
            "raw_bytes": self.raw_bytes,
            "stored_bytes": self.stored_bytes,
        }
        data[SEAL] = seal(data)
        return data

    def to_json(self) -> str:
        """The sealed manifest as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, *, label: str) -> Manifest:
        """Parse and check a manifest; *label* names it in errors (the backup id)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"manifest of backup {label} is not valid JSON ({exc}); it is damaged") from None
        if not isinstance(data, dict):
            raise ManifestError(f"manifest of backup {label} is not a JSON object; it is damaged")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ManifestError(
                f"manifest of backup {label} has schema version {version!r}; this dbkeeper reads "
                f"version {SCHEMA_VERSION} — upgrade dbkeeper"
            )
        if data.get(SEAL) != seal(data):
            raise ManifestError(
                f"manifest of backup {label} does not match its own checksum: it was edited or "
                "damaged, so it cannot be trusted — put back the original or use another backup"
            )
        try:
            return cls(
                id=data["id"],
                dbkeeper_version=data["dbkeeper_version"],
                driver=Provenance(**data["driver"]),
                engine=data["engine"],
                engine_version=data["engine_version"],
                database=data["database"],
                source_url=data["source_url"],
                format=data["format"],
                started_at=parse_time(data["started_at"]),
                finished_at=parse_time(data["finished_at"]),
                artifacts=[ArtifactRecord(**a) for a in data["artifacts"]],
                row_counts=dict(data["row_counts"]),
                details=dict(data.get("details", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"manifest of backup {label} is incomplete or malformed ({exc!r})") from None


def seal(data: dict[str, Any]) -> str:
    """SHA256 of the canonical JSON of *data* without its seal."""
    body = {key: value for key, value in data.items() if key != SEAL}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
