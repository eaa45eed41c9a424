"""Damaging stored backups on purpose, the way disks, bugs and people do."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

from dbkeeper.backups.manifest import Manifest


def artifact_path(backups: Path, backup_id: str, name: str) -> Path:
    """The stored file of artifact *name* (``chinook.dump`` → ``chinook.dump.zst``)."""
    return backups / backup_id / f"{name}.zst"


def flip_byte(path: Path, position: int) -> None:
    """Invert one byte of *path* (negative positions count from the end)."""
    data = bytearray(path.read_bytes())
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))


def rewrite_raw(backups: Path, backup_id: str, name: str, change: Callable[[bytes], bytes]) -> None:
    """Replace an artifact's raw content and record it in a freshly sealed manifest.

    This is a backup whose stored bytes match its manifest — every checksum is right —
    but whose content is wrong: what a pg_dump cut short would leave if a bug let the
    backup complete. Only reading the content can catch it.
    """
    stored = artifact_path(backups, backup_id, name)
    raw = subprocess.run(["zstd", "-dc", str(stored)], capture_output=True, check=True).stdout
    changed = change(raw)
    recompressed = subprocess.run(["zstd", "-q", "-3", "-c"], input=changed, capture_output=True, check=True).stdout
    stored.write_bytes(recompressed)
    manifest_file = backups / backup_id / "manifest.json"
    manifest = Manifest.from_json(manifest_file.read_text(), label=backup_id)
    digest = hashlib.sha256(stored.read_bytes()).hexdigest()
    artifacts = [
        dataclasses.replace(
            a,
            raw_bytes=len(changed),
            stored_bytes=stored.stat().st_size,
            stages=[{**s, "digest": digest} if s["name"] == "sha256" else s for s in a.stages],
        )
        if a.name == name
        else a
        for a in manifest.artifacts
    ]
    manifest_file.write_text(dataclasses.replace(manifest, artifacts=artifacts).to_json())


def rewrite_manifest(backups: Path, backup_id: str, **changes: object) -> None:
    """Change manifest fields and seal it again (a manifest that lies but checks out)."""
    manifest_file = backups / backup_id / "manifest.json"
    manifest = Manifest.from_json(manifest_file.read_text(), label=backup_id)
    manifest_file.write_text(dataclasses.replace(manifest, **changes).to_json())  # type: ignore[arg-type]
