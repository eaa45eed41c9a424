"""Copying backups between storages (local → S3, S3 → local, S3 → S3), every byte verified.

A copy keeps the backup's id and, unless it is re-encrypted, its manifest and stored bytes
exactly: each artifact is streamed from the source through its integrity stages (so a
damaged source is refused before the copy is sealed) into a draft on the target, and the
manifest is written last, as for a new backup. A backup already complete on the target is
skipped; one left incomplete there by a killed copy is removed and copied again, so
running the same copy after a kill resumes it.

Re-encrypting (``--recipient``, key rotation) decrypts the stored bytes with the
manager's identities and encrypts them for the new recipients; the compressed bytes are
not touched, and the manifest records the new stages, file names and sizes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from dbkeeper.backups.manifest import ArtifactRecord, Manifest
from dbkeeper.backups.pipeline import DecodeChain, EncodeChain, StagePlan
from dbkeeper.backups.progress import Reporter
from dbkeeper.backups.storage import BackupStorage, Draft, Entry, Status
from dbkeeper.errors import BackupError
from dbkeeper.plugin.manager import Plugins
from dbkeeper.plugin.streams import CHUNK_SIZE, Stage, Writable


@dataclass(frozen=True)
class CopyOutcome:
    """What became of one backup: ``copied``, already ``present`` on the target, or ``failed`` (with why)."""

    id: str
    action: Literal["copied", "present", "failed"]
    stored_bytes: int = 0
    problem: str | None = None


@dataclass(frozen=True)
class Copier:
    """Copies complete backups from *source* to *target*; *encryption* re-encrypts (cipher and sha256 plans)."""

    source: BackupStorage
    target: BackupStorage
    plugins: Plugins
    reporter: Reporter
    identities: Sequence[Path] = ()
    encryption: Sequence[StagePlan] = ()

    def copy(self, entry: Entry) -> CopyOutcome:
        """Copy complete backup *entry*, unless the target already holds it complete."""
        manifest = entry.manifest
        assert manifest is not None
        present = self._on_target.get(entry.id)
        if present is not None and present.status is Status.COMPLETE and present.manifest is not None:
            self._refuse_other_encryption(present.manifest)
            return CopyOutcome(entry.id, "present", present.manifest.stored_bytes)
        if present is not None and present.status is Status.RUNNING:
            raise BackupError(f"backup {entry.id} is being written to {self.target.location} by another process")
        if present is not None and present.status in (Status.DAMAGED, Status.FOREIGN):
            raise BackupError(
                f"backup {entry.id} in {self.target.location} is {present.status} ({present.problem}); it is left "
                f"alone — inspect it, then delete it there to copy it again "
                f"({self.target.command(f'backups delete {entry.id}')})"
            )
        if present is not None:  # left by a copy that was killed: start it again
            self.target.delete(present)
        with self.target.preparing(), self.target.draft(entry.id) as draft:
            artifacts = [self._artifact(entry, artifact, draft) for artifact in manifest.artifacts]
            copied = replace(manifest, artifacts=artifacts)
            draft.commit(copied)
        return CopyOutcome(entry.id, "copied", copied.stored_bytes)

    def _refuse_other_encryption(self, present: Manifest) -> None:
        """A copy already on the target counts as present only if it is encrypted as this copy would be.

        Re-encrypting (``--recipient``) must never leave a plain copy, or one for the old
        keys, and report success: the present copy's cipher records must be those the new
        cipher writes (for age: the recipients' fingerprints).
        """
        if not self.encryption:
            return
        plan = self.encryption[0]
        wanted = plan.record_of_nothing()
        for artifact in present.artifacts:
            found = [r for r in artifact.stages if r.get("name") == plan.stage.name]
            if not found or any(found[0].get(key) != value for key, value in wanted.items()):
                raise BackupError(
                    f"backup {present.id} is already in {self.target.location}, but not encrypted for these "
                    f"recipients; delete it there first to copy it re-encrypted "
                    f"({self.target.command(f'backups delete {present.id}')})"
                )

    @cached_property
    def _on_target(self) -> dict[str, Entry]:
        """The target's backups by id, listed once (a copy of many backups lists it once, not once each)."""
        return {entry.id: entry for entry in self.target.entries()}

    def _stages(self, artifact: ArtifactRecord) -> list[tuple[Stage, Mapping[str, Any]]]:
        return [(self.plugins.stage(r["name"], r.get("distribution")).stage, r) for r in artifact.stages]

    def _artifact(self, entry: Entry, artifact: ArtifactRecord, draft: Draft) -> ArtifactRecord:
        """Stream one artifact into *draft*: as stored, or decrypted and encrypted again."""
        stages = self._stages(artifact)
        # What is read back: the integrity stages only (the stored bytes, checked), or, to
        # re-encrypt, everything after compression (the compressed plaintext, checked).
        passed = {"compression"} if self.encryption else {"compression", "encryption"}
        kept = next((i for i, (stage, _) in enumerate(stages) if stage.kind not in passed), len(stages))
        file_name = artifact.file
        if self.encryption:
            suffixes = [stage.suffix for stage, _ in stages[:kept]] + [plan.stage.suffix for plan in self.encryption]
            file_name = artifact.name + "".join(suffixes)
        label = f"{entry.id}/{artifact.file}"
        stored = contextlib.closing(self.source.open_artifact(entry, artifact))
        out = draft.create(file_name)
        try:
            with stored as file, self.reporter.task(f"copy {artifact.name}", artifact.stored_bytes) as advance:
                chain = DecodeChain(stages[kept:], file, label, on_stored=advance, identities=self.identities)
                records = self._write(chain, out.writer)
            out.commit()
        except BaseException:
            out.discard()
            raise
        if records is None:
            return artifact
        new_records, stored_bytes = records
        head = [dict(record) for _, record in stages[:kept]]
        return ArtifactRecord(artifact.name, file_name, artifact.raw_bytes, stored_bytes, [*head, *new_records])

    def _write(self, chain: DecodeChain, writer: Writable) -> tuple[list[dict[str, Any]], int] | None:
        """Pump *chain* into *writer*, through the new encryption when there is one: its records and size."""
        sink: Writable = EncodeChain(self.encryption, writer, None) if self.encryption else writer
        while chunk := chain.read(CHUNK_SIZE):
            sink.write(chunk)
        if isinstance(sink, EncodeChain):
            return sink.finish(), sink.stored.total
        return None
