"""The backup manifest: what a backup holds, written last as the mark that it is complete.

The manifest is JSON (schema: ``manifest.schema.json`` beside this module, documented in
``docs/manifest.md``). It is sealed with a SHA256 of its own canonical form, so a manifest
edited by hand or damaged on disk is refused instead of trusted.

The seal is a plain SHA256 that anyone can recompute, so a manifest is also read as
something a stranger may have written: every field is checked for its type and range
before it is used, an artifact's ``file`` must be a plain name inside its backup, and the
``id`` must be the backup directory's name. Whatever fails a check raises
:class:`~dbkeeper.errors.ManifestError` (the backup is *damaged*), never anything else.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from dbkeeper.errors import ManifestError

SCHEMA_VERSION = 1
SEAL = "manifest_sha256"
MANIFEST_FILE = "manifest.json"
MANIFEST_LIMIT = 16 * 1024 * 1024
"""Larger manifests are not read (the backup is listed as damaged): real ones are a few KiB."""
MAX_COUNT = 2**63 - 1
"""The largest byte or row count a manifest may record (what a signed 64-bit integer holds)."""
BACKUP_ID = re.compile(r"^\d{8}T\d{6}(\.\d{3})?Z-[0-9a-f]{4}$")
"""What a backup id looks like: only such directories are ever listed, pruned or deleted."""
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TIME_EXAMPLE = "2026-11-21T11:00:02.134020Z"


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def new_backup_id() -> str:
    """A fresh backup id: the UTC time to the millisecond and 16 random bits (``20261205T031502.123Z-ab12``)."""
    now = utc_now()
    return f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z-{os.urandom(2).hex()}"


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse a time written by :func:`format_time`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def artifact_file_problem(name: str) -> str | None:
    """Why *name* cannot be an artifact's stored file, or None: it must be a plain name inside its backup.

    No ``/`` (so neither a path into another directory nor an absolute one), no NUL, not
    ``.`` or ``..`` or any other name starting with ``.`` (dbkeeper's own hidden files), and
    not ``manifest.json``.
    """
    if not name:
        return "is empty"
    if "/" in name or "\0" in name:
        return "is not a plain file name inside the backup"
    if name.startswith("."):
        return "starts with '.'"
    if name == MANIFEST_FILE:
        return f"is {MANIFEST_FILE}"
    return None


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
    def from_json(cls, text: str, *, label: str, expected_id: str | None = None) -> Manifest:
        """Parse and check a manifest; *label* names it in errors (the backup id).

        *expected_id* is the name of the backup's directory, when known: a manifest that
        records another id was copied or its directory renamed, and is refused.
        """
        data = _load(text, label)
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ManifestError(
                f"manifest of backup {label} has schema version {_shown(version)}; this dbkeeper reads "
                f"version {SCHEMA_VERSION} — upgrade dbkeeper"
            )
        try:
            sealed = data.get(SEAL) == seal(data)
        except (RecursionError, ValueError):  # nested too deeply to serialize again
            sealed = False
        if not sealed:
            raise ManifestError(
                f"manifest of backup {label} does not match its own checksum: it was edited or "
                "damaged, so it cannot be trusted — put back the original or use another backup"
            )
        try:
            manifest = _build(cls, _Fields(data, ""))
        except _Malformed as exc:
            raise ManifestError(
                f"manifest of backup {label} is malformed ({exc}): it is damaged — put back the original "
                "or use another backup"
            ) from None
        if expected_id is not None and manifest.id != expected_id:
            raise ManifestError(
                f"manifest of backup {label} records the id {manifest.id}: a backup's id is its directory's "
                "name, so this manifest was copied from another backup or its directory was renamed — it is "
                f"damaged; if the directory was renamed, rename it back to {manifest.id}"
            )
        return manifest


class _Malformed(Exception):
    """A field of a manifest has the wrong type or value (the message names it)."""


def _shown(value: object) -> str:
    """*value* for an error message, cut short: a hostile manifest may hold anything."""
    if isinstance(value, dict | list):  # repr() of a deeply nested value would recurse
        return "an object" if isinstance(value, dict) else "a list"
    if isinstance(value, int) and abs(value) >= 10**20:
        return "a huge number"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _load(text: str, label: str) -> dict[str, Any]:
    """The JSON object in *text*; JSON that is invalid, nested too deeply or holds a too-long number is damage."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ManifestError(f"manifest of backup {label} is nested too deeply to read; it is damaged") from None
    except ValueError as exc:  # JSONDecodeError, and integers longer than Python converts (4300 digits)
        raise ManifestError(f"manifest of backup {label} is not valid JSON ({exc}); it is damaged") from None
    if not isinstance(data, dict):
        raise ManifestError(f"manifest of backup {label} is not a JSON object; it is damaged")
    return data


class _Fields:
    """Typed access to one JSON object of a manifest; a missing or ill-typed field raises :class:`_Malformed`."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise _Malformed(f"{where or 'the manifest'} is not an object")
        self.data: dict[str, Any] = data
        self.where = where

    def _get(self, key: str) -> Any:
        if key not in self.data:
            raise _Malformed(f"{self.where}{key} is missing")
        return self.data[key]

    def text(self, key: str) -> str:
        """The string at *key*."""
        value = self._get(key)
        if not isinstance(value, str):
            raise _Malformed(f"{self.where}{key} is {_shown(value)}, not a string")
        return value

    def count(self, key: str) -> int:
        """The count (0 to 2**63-1) at *key*."""
        return _count(self._get(key), f"{self.where}{key}")

    def object(self, key: str) -> _Fields:
        """The object at *key*."""
        return _Fields(self._get(key), f"{self.where}{key}.")

    def items(self, key: str) -> list[Any]:
        """The list at *key*."""
        value = self._get(key)
        if not isinstance(value, list):
            raise _Malformed(f"{self.where}{key} is not a list")
        return value

    def time(self, key: str) -> datetime:
        """The time at *key*, as :func:`format_time` writes it."""
        value = self.text(key)
        try:
            return parse_time(value)
        except ValueError:
            raise _Malformed(f"{self.where}{key} is {_shown(value)}, not a time like {_TIME_EXAMPLE}") from None


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise _Malformed(f"{where} is {_shown(value)}, not a count from 0 to 2**63-1")
    return value


def _build(cls: type[Manifest], fields: _Fields) -> Manifest:
    """The manifest *fields* describe, every field checked."""
    backup_id = fields.text("id")
    if not BACKUP_ID.match(backup_id):
        raise _Malformed(f"id {_shown(backup_id)} is not a backup id")
    driver = fields.object("driver")
    artifacts = [_artifact(_Fields(a, f"artifacts[{i}].")) for i, a in enumerate(fields.items("artifacts"))]
    if not artifacts:
        raise _Malformed("artifacts is empty")
    for attribute in ("name", "file"):
        if len({getattr(a, attribute) for a in artifacts}) != len(artifacts):
            raise _Malformed(f"two artifacts have the same {attribute}")
    row_counts = fields.object("row_counts").data
    manifest = cls(
        id=backup_id,
        dbkeeper_version=fields.text("dbkeeper_version"),
        driver=Provenance(driver.text("name"), driver.text("distribution"), driver.text("version")),
        engine=fields.text("engine"),
        engine_version=fields.text("engine_version"),
        database=fields.text("database"),
        source_url=fields.text("source_url"),
        format=fields.text("format"),
        started_at=fields.time("started_at"),
        finished_at=fields.time("finished_at"),
        artifacts=artifacts,
        row_counts={table: _count(n, f"row_counts[{_shown(table)}]") for table, n in row_counts.items()},
        details=dict(fields.object("details").data),
    )
    for total in ("raw_bytes", "stored_bytes"):
        if fields.count(total) != getattr(manifest, total):
            raise _Malformed(f"{total} is not the sum of the artifacts' {total}")
    return manifest


def _artifact(fields: _Fields) -> ArtifactRecord:
    """One artifact record, its file name a plain name inside the backup."""
    file = fields.text("file")
    if problem := artifact_file_problem(file):
        raise _Malformed(f"{fields.where}file {_shown(file)} {problem}")
    stages = [_stage(_Fields(s, f"{fields.where}stages[{i}].")) for i, s in enumerate(fields.items("stages"))]
    return ArtifactRecord(fields.text("name"), file, fields.count("raw_bytes"), fields.count("stored_bytes"), stages)


def _stage(fields: _Fields) -> dict[str, Any]:
    """One stage record: a name, a distribution, and (for ``sha256``) a well-formed digest."""
    if fields.text("name") == "sha256" and not _SHA256.match(fields.text("digest")):
        raise _Malformed(f"{fields.where}digest is not 64 lower-case hex digits")
    fields.text("distribution")
    return dict(fields.data)


def seal(data: dict[str, Any]) -> str:
    """SHA256 of the canonical JSON of *data* without its seal."""
    body = {key: value for key, value in data.items() if key != SEAL}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    import hashlib  # here: OpenSSL's start-up is paid after the dump tool started, not before

    return hashlib.sha256(canonical.encode()).hexdigest()
