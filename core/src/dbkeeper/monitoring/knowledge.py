"""What only dbkeeper knows about a database: its backups and its migrations, as samples.

A backup belongs to a connection when its manifest's ``source_url`` is the connection's
URL with the password masked (what ``dbkeeper backup`` records), character for character.
An incomplete backup has no manifest yet, nor has one whose manifest is unreadable, so
nobody can tell whose it is: such backups are counted for every connection whose backups
go to that directory.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from dbkeeper.backups.manifest import utc_now
from dbkeeper.connections.urls import DatabaseURL
from dbkeeper.plugin.monitoring import Sample

if TYPE_CHECKING:
    from dbkeeper.backups.storage import BackupStorage, Entry
    from dbkeeper.plugin.manager import Plugins

BACKUP_STATUSES = ("complete", "incomplete", "damaged")


def backup_samples(storage: BackupStorage, url: DatabaseURL) -> list[Sample]:
    """The backups of *url* in *storage*: counts by status, the last complete one, the last verify."""
    source = url.safe()
    entries = [e for e in storage.entries() if e.manifest is None or e.manifest.source_url == source]
    counts = {status: sum(1 for e in entries if e.status == status) for status in BACKUP_STATUSES}
    samples = [
        Sample(
            "backups", "gauge", "Backups of the database in its backup directory, by status.", count, "", {"status": s}
        )
        for s, count in counts.items()
    ]
    complete = [e for e in entries if e.status == "complete"]
    sealed = [e for e in entries if e.manifest is not None]
    return samples + _last_backup(complete) + _last_verify(storage, sealed) + _last_drill(storage, sealed)


def _last_backup(complete: list[Entry]) -> list[Sample]:
    """The newest complete backup's finish time, size, duration and age; nothing when there is none."""
    manifests = [e.manifest for e in complete if e.manifest is not None]
    if not manifests:
        return []
    last = max(manifests, key=lambda m: m.finished_at)
    finished = last.finished_at
    return [
        Sample(
            "backup_last_success_timestamp",
            "gauge",
            "When the newest complete backup finished (Unix time).",
            finished.timestamp(),
            "seconds",
        ),
        Sample("backup_last_size", "gauge", "Bytes stored by the newest complete backup.", last.stored_bytes, "bytes"),
        Sample(
            "backup_last_duration",
            "gauge",
            "How long the newest complete backup took.",
            (finished - last.started_at).total_seconds(),
            "seconds",
        ),
        Sample(
            "backup_last_age",
            "gauge",
            "How long ago the newest complete backup finished.",
            max(0.0, (utc_now() - finished).total_seconds()),
            "seconds",
        ),
    ]


def _last_verify(storage: BackupStorage, entries: Iterable[Entry]) -> list[Sample]:
    """The result and time of the most recent ``verify`` of any of these backups; nothing when none was verified."""
    records = [record for record in (storage.last_verify(e.id) for e in entries) if record is not None]
    if not records:
        return []
    last = max(records, key=lambda r: r.at)
    return [
        Sample(
            "backup_last_verify_success",
            "gauge",
            "Whether the most recent verify of a backup of the database passed (1) or failed (0).",
            float(last.ok),
        ),
        Sample(
            "backup_last_verify_timestamp",
            "gauge",
            "When the most recent verify of a backup of the database ran (Unix time).",
            last.at.timestamp(),
            "seconds",
        ),
    ]


def migration_samples(url: DatabaseURL, directory: Path, plugins: Plugins) -> list[Sample]:
    """How many migrations in *directory* are pending, and how many failed, on *url*."""
    from dbkeeper.migrations.manager import MigrationManager

    states = [status.state for status in MigrationManager(url, directory, plugins=plugins).status()]
    return [
        Sample("migrations_pending", "gauge", "Migrations on disk not yet applied.", states.count("pending")),
        Sample(
            "migrations_failed",
            "gauge",
            "Migrations whose last attempt failed (see dbkeeper migrate status).",
            states.count("failed"),
        ),
    ]


def _last_drill(storage: BackupStorage, entries: Iterable[Entry]) -> list[Sample]:
    """The verdict, time and restore seconds of the most recent drill of any of these backups; nothing when none."""
    records = [record for record in (storage.last_drill(e.id) for e in entries) if record is not None]
    if not records:
        return []
    last = max(records, key=lambda r: r.at)
    samples = [
        Sample(
            "backup_last_drill_success",
            "gauge",
            "Whether the most recent restore drill of a backup of the database passed (1) or failed (0).",
            float(last.ok),
        ),
        Sample(
            "backup_last_drill_timestamp",
            "gauge",
            "When the most recent restore drill of a backup of the database ran (Unix time).",
            last.at.timestamp(),
            "seconds",
        ),
    ]
    if last.restore_seconds is not None:
        samples.append(
            Sample(
                "backup_last_drill_restore",
                "gauge",
                "How long the restore of the most recent drill took: the measured recovery time.",
                last.restore_seconds,
                "seconds",
            )
        )
    return samples
