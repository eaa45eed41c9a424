"""``dbkeeper backups copy`` through the real CLI: local directories and buckets on a real (moto) S3 server.

A copy keeps ids, manifests and stored bytes exactly, verifies what it streams, is sealed
last (a damaged source or a killed copy never leaves a complete backup behind), resumes
when run again, and re-encrypts for new recipients (key rotation).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from s3_server import SECRET_ACCESS_KEY, S3Server
from test_encryption import (
    Keys,
    age_recipients,
    assert_same_database,
    encrypted_backup,
    fingerprint,
    flip_middle_byte,
    make_keys,
    restore,
    stock_decrypt,
)

from dbkeeper.backups.manifest import MANIFEST_FILE
from helpers import BIN, WAIT, Run, artifact_of, assert_one_line_error, dbkeeper, make_db

MIB = 1 << 20


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Two age keys for this module."""
    return make_keys(tmp_path_factory.mktemp("keys"))


@dataclass(frozen=True)
class Place:
    """A backup storage to copy from or to: a local directory, or a prefix in a fresh bucket on the moto server."""

    url: str
    s3: S3Server
    bucket: str | None = None

    def read(self, backup_id: str, name: str) -> bytes:
        """The bytes of file *name* of backup *backup_id*, read directly (not through dbkeeper)."""
        if self.bucket is None:
            return (Path(self.url) / backup_id / name).read_bytes()
        body = self.s3.client().get_object(Bucket=self.bucket, Key=f"backups/{backup_id}/{name}")["Body"]
        data: bytes = body.read()
        return data

    def dbkeeper(self, *args: str, check: bool = True) -> Run:
        """``dbkeeper ARGS --dir URL`` with the server's credentials."""
        return dbkeeper(*args, "--dir", self.url, env=self.s3.env, check=check)

    def backup(self, *args: str) -> str:
        """``dbkeeper backup ARGS`` into this place; the new backup's id."""
        return self.dbkeeper("backup", *args).out.strip()

    def statuses(self) -> list[tuple[str, str]]:
        """``backups list``: every backup's id and status."""
        listed = self.dbkeeper("backups", "list", "--json").json()
        assert isinstance(listed, list)
        return [(entry["id"], entry["status"]) for entry in listed]

    def manifest(self, backup_id: str) -> dict[str, Any]:
        """The manifest of *backup_id* as stored."""
        manifest: dict[str, Any] = json.loads(self.read(backup_id, MANIFEST_FILE))
        return manifest


@pytest.fixture
def places(tmp_path: Path, s3: S3Server) -> Callable[[str, str], Place]:
    """Makes a place: ``places("local", "name")`` a directory, ``places("s3", "name")`` a fresh bucket."""

    def make(kind: str, name: str) -> Place:
        if kind == "local":
            return Place(str(tmp_path / name), s3)
        bucket = s3.bucket(name)
        return Place(f"s3://{bucket}/backups", s3, bucket)

    return make


def copy(source: Place, target: Place, *args: str, check: bool = True) -> Run:
    """``dbkeeper backups copy ARGS --dir SOURCE --to TARGET``; its output never holds the S3 secret key."""
    run = source.dbkeeper("backups", "copy", *args, "--to", target.url, check=check)
    assert SECRET_ACCESS_KEY not in run.out + run.err
    return run


def assert_identical(source: Place, target: Place, backup_id: str) -> None:
    """The copy has the source's manifest byte for byte, and artifacts that hash to the manifest's digests."""
    manifest = source.read(backup_id, MANIFEST_FILE)
    assert target.read(backup_id, MANIFEST_FILE) == manifest
    for artifact in json.loads(manifest)["artifacts"]:
        copied = target.read(backup_id, artifact["file"])
        assert hashlib.sha256(copied).hexdigest() == artifact["stages"][-1]["digest"]
        assert copied == source.read(backup_id, artifact["file"])


@pytest.mark.parametrize(
    ("source_kind", "target_kind"), [("local", "local"), ("local", "s3"), ("s3", "local"), ("s3", "s3")]
)
def test_copy_is_identical_verified_and_idempotent(
    chinook: Path, keys: Keys, places: Callable[[str, str], Place], source_kind: str, target_kind: str
) -> None:
    source, target = places(source_kind, "source"), places(target_kind, "target")
    first = source.backup(f"sqlite:///{chinook}")
    second = source.backup(f"sqlite:///{chinook}", "--format", "sql", "--recipient", keys.public)
    assert copy(source, target, "latest").out.startswith(f"copied {second} (")
    assert copy(source, target, first, "--json").json() == [
        {"id": first, "action": "copied", "stored_bytes": source.manifest(first)["stored_bytes"], "problem": None}
    ]
    again = copy(source, target, "--all", "--json").json()
    assert again == [
        {
            "id": backup_id,
            "action": "present",
            "stored_bytes": source.manifest(backup_id)["stored_bytes"],
            "problem": None,
        }
        for backup_id in (first, second)
    ]
    assert copy(source, target, "latest").out.startswith(f"present {second} (")
    assert target.statuses() == [(first, "complete"), (second, "complete")]
    for backup_id in (first, second):
        assert_identical(source, target, backup_id)
        target.dbkeeper("verify", backup_id, "--deep", "--identity", str(keys.key))


@pytest.mark.parametrize("target_kind", ["local", "s3"])
def test_damaged_source_fails_and_leaves_nothing_complete(
    chinook: Path, places: Callable[[str, str], Place], target_kind: str
) -> None:
    source, target = places("local", "source"), places(target_kind, "target")
    backup_id = source.backup(f"sqlite:///{chinook}")
    flip_middle_byte(artifact_of(Path(source.url), backup_id))
    assert_one_line_error(copy(source, target, backup_id, check=False), "SHA256 mismatch")
    assert target.statuses() == []
    every = copy(source, target, "--all", "--json", check=False)
    assert every.code == 1
    outcomes = every.json()
    assert isinstance(outcomes, list)
    (outcome,) = outcomes
    assert (outcome["id"], outcome["action"]) == (backup_id, "failed") and "SHA256 mismatch" in outcome["problem"]
    assert target.statuses() == []


@pytest.fixture(scope="module")
def large_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backup directory holding one backup of 160 MiB of random bytes (stored as much): a copy takes a while."""
    folder = tmp_path_factory.mktemp("large")
    database = make_db(folder / "large.db", 160, blob_size=MIB)
    dbkeeper("backup", f"sqlite:///{database}", "--dir", str(folder / "backups"), "--level", "1")
    database.unlink()
    return folder / "backups"


def copy_in_progress(target: Place) -> Callable[[], bool]:
    """A probe: whether a copy to *target* has begun writing an artifact (a ``.partial`` file, a pending upload)."""
    if target.bucket is None:
        return lambda: any(p.stat().st_size > 0 for p in Path(target.url).glob("*/*.partial"))
    bucket = target.bucket
    return lambda: bool(target.s3.pending_keys(bucket))


@pytest.mark.parametrize("target_kind", ["local", "s3"])
def test_copy_killed_mid_way_resumes(
    large_backup: Path, places: Callable[[str, str], Place], s3: S3Server, target_kind: str
) -> None:
    source, target = Place(str(large_backup), s3), places(target_kind, "target")
    ((backup_id, _),) = source.statuses()
    argv = [str(BIN / "dbkeeper"), "-q", "backups", "copy", "latest", "--dir", source.url, "--to", target.url]
    proc = subprocess.Popen(argv, env={**os.environ, **s3.env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe = copy_in_progress(target)
        deadline = time.monotonic() + WAIT
        while not probe() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)  # the copy of 160 MiB takes well under a second on a fast disk: look often
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the copy ended before it could be killed mid-way"
    assert target.statuses() == [(backup_id, "incomplete")]
    assert copy(source, target, "latest").out.startswith(f"copied {backup_id} (")
    target.dbkeeper("prune", "--keep-last", "5")
    assert target.statuses() == [(backup_id, "complete")]
    assert_identical(source, target, backup_id)
    assert leftovers(target) == []


def leftovers(target: Place) -> list[str]:
    """What the target holds beyond the backups' manifests and artifacts: partial files, pending uploads."""
    if target.bucket is None:
        return [str(p) for p in Path(target.url).rglob("*") if p.name.endswith(".partial")]
    return target.s3.pending_keys(target.bucket)


def test_key_rotation_through_copy(
    chinook: Path, keys: Keys, tmp_path: Path, places: Callable[[str, str], Place]
) -> None:
    source, target = places("local", "old"), places("local", "new")
    backup_id = encrypted_backup(chinook, Path(source.url), keys.public)["id"]
    run = copy(source, target, backup_id, "--identity", str(keys.key), "--recipient", keys.other_public)
    assert run.out.startswith(f"copied {backup_id} (")
    assert all(secret not in run.out + run.err for secret in keys.secrets())
    assert age_recipients(target.manifest(backup_id)) == [fingerprint(keys.other_public)]
    artifact = artifact_of(Path(target.url), backup_id)
    assert artifact.name == "chinook.db.zst.age"
    stock_decrypt(artifact, keys.other, tmp_path / "stock.db")
    assert_same_database(tmp_path / "stock.db", chinook)
    target.dbkeeper("verify", backup_id, "--deep", "--identity", str(keys.other))
    restored = tmp_path / "restored.db"
    assert restore(Path(target.url), restored, keys.other).code == 0
    assert_same_database(restored, chinook)
    refused = tmp_path / "refused.db"
    assert_one_line_error(restore(Path(target.url), refused, keys.key), fingerprint(keys.other_public))
    assert not refused.exists()


def test_re_encrypting_needs_the_identity(chinook: Path, keys: Keys, places: Callable[[str, str], Place]) -> None:
    source, target = places("local", "old"), places("local", "new")
    backup_id = encrypted_backup(chinook, Path(source.url), keys.public)["id"]
    run = copy(source, target, backup_id, "--recipient", keys.other_public, check=False)
    assert_one_line_error(run, "--identity")
    assert target.statuses() == []


def test_encrypting_a_plain_backup_through_copy(
    chinook: Path, keys: Keys, tmp_path: Path, places: Callable[[str, str], Place]
) -> None:
    source, target = places("local", "plain"), places("s3", "encrypted")
    backup_id = source.backup(f"sqlite:///{chinook}")
    copy(source, target, backup_id, "--recipient", keys.public)
    manifest = target.manifest(backup_id)
    assert manifest["artifacts"][0]["file"] == "chinook.db.zst.age"
    assert age_recipients(manifest) == [fingerprint(keys.public)]
    stored = target.read(backup_id, "chinook.db.zst.age")
    assert hashlib.sha256(stored).hexdigest() == manifest["artifacts"][0]["stages"][-1]["digest"]
    target.dbkeeper("verify", backup_id, "--deep", "--identity", str(keys.key))
    restored = tmp_path / "restored.db"
    target.dbkeeper("restore", backup_id, f"sqlite:///{restored}", "--identity", str(keys.key))
    assert_same_database(restored, chinook)
