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
import stat
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
    fingerprint,
    flip_middle_byte,
    make_keys,
    stock_decrypt,
)

from dbkeeper.backups.manifest import MANIFEST_FILE
from helpers import BIN, WAIT, Run, assert_one_line_error, dbkeeper, make_db

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

    def damage(self, backup_id: str, name: str) -> None:
        """Flip one bit in the middle of file *name* of backup *backup_id*, and change nothing else."""
        if self.bucket is None:
            flip_middle_byte(Path(self.url) / backup_id / name)
            return
        data = bytearray(self.read(backup_id, name))
        data[len(data) // 2] ^= 0x01
        self.s3.client().put_object(Bucket=self.bucket, Key=f"backups/{backup_id}/{name}", Body=bytes(data))

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


def assert_private(place: Place) -> None:
    """Every backup directory of a local *place* is 0700 and every file in it 0600 (objects have no modes)."""
    if place.bucket is None:
        for folder in Path(place.url).iterdir():
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
            assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in folder.iterdir()), folder


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
    assert_private(target)
    for backup_id in (first, second):
        assert_identical(source, target, backup_id)
        target.dbkeeper("verify", backup_id, "--deep", "--identity", str(keys.key))


@pytest.mark.parametrize(("source_kind", "target_kind"), [("local", "local"), ("local", "s3"), ("s3", "local")])
def test_damaged_source_fails_and_leaves_nothing_complete(
    chinook: Path, places: Callable[[str, str], Place], source_kind: str, target_kind: str
) -> None:
    source, target = places(source_kind, "source"), places(target_kind, "target")
    backup_id = source.backup(f"sqlite:///{chinook}")
    source.damage(backup_id, "chinook.db.zst")
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
    """A backup directory holding a small backup, then one of 160 MiB of random bytes: its copy takes a while."""
    folder = tmp_path_factory.mktemp("large")
    for name, rows, blob_size in (("small", 100, 0), ("large", 160, MIB)):
        database = make_db(folder / f"{name}.db", rows, blob_size=blob_size)
        dbkeeper("backup", f"sqlite:///{database}", "--dir", str(folder / "backups"), "--level", "1")
        database.unlink()
    return folder / "backups"


def copying_large(target: Place) -> Callable[[], bool]:
    """A probe: whether a copy to *target* has begun writing the large artifact (a ``.partial`` file, an upload)."""
    if target.bucket is None:
        return lambda: any(p.stat().st_size > 0 for p in Path(target.url).glob("*/large.db.zst.partial"))
    bucket = target.bucket
    return lambda: any(key.endswith("/large.db.zst") for key in target.s3.pending_keys(bucket))


@pytest.mark.parametrize(("source_kind", "target_kind"), [("local", "local"), ("local", "s3"), ("s3", "local")])
def test_copy_killed_mid_way_resumes(
    large_backup: Path, places: Callable[[str, str], Place], s3: S3Server, source_kind: str, target_kind: str
) -> None:
    large = Place(str(large_backup), s3)
    source, target = large, places(target_kind, "target")
    if source_kind == "s3":
        source = places("s3", "source")
        copy(large, source, "--all")
    small_id, large_id = (backup_id for backup_id, _ in source.statuses())
    argv = [str(BIN / "dbkeeper"), "-q", "backups", "copy", "--all", "--dir", source.url, "--to", target.url]
    proc = subprocess.Popen(argv, env={**os.environ, **s3.env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe = copying_large(target)
        deadline = time.monotonic() + WAIT
        while not probe() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)  # the copy of 160 MiB takes well under a second on a fast disk: look often
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the copy ended before it could be killed mid-way"
    assert target.statuses() == [(small_id, "complete"), (large_id, "incomplete")]
    resumed = copy(source, target, "--all", "--json").json()
    assert isinstance(resumed, list)
    assert [(outcome["id"], outcome["action"]) for outcome in resumed] == [(small_id, "present"), (large_id, "copied")]
    target.dbkeeper("prune", "--keep-last", "5")
    assert target.statuses() == [(small_id, "complete"), (large_id, "complete")]
    for backup_id in (small_id, large_id):
        assert_identical(source, target, backup_id)
    assert leftovers(target) == []


def leftovers(target: Place) -> list[str]:
    """What the target holds beyond the backups' manifests and artifacts: partial files, pending uploads."""
    if target.bucket is None:
        return [str(p) for p in Path(target.url).rglob("*") if p.name.endswith(".partial")]
    return target.s3.pending_keys(target.bucket)


def assert_encrypted_copy(
    target: Place, backup_id: str, identity: Path, public: str, chinook: Path, tmp_path: Path
) -> None:
    """The copy is encrypted for *public* only, and *identity* opens it: stock age and zstd, verify --deep, restore."""
    manifest = target.manifest(backup_id)
    (artifact,) = manifest["artifacts"]
    assert artifact["file"] == "chinook.db.zst.age"
    assert age_recipients(manifest) == [fingerprint(public)]
    stored = tmp_path / "stored.age"
    stored.write_bytes(target.read(backup_id, artifact["file"]))
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == artifact["stages"][-1]["digest"]
    assert stored.stat().st_size == artifact["stored_bytes"] == manifest["stored_bytes"]
    stock_decrypt(stored, identity, tmp_path / "stock.db")
    assert_same_database(tmp_path / "stock.db", chinook)
    target.dbkeeper("verify", backup_id, "--deep", "--identity", str(identity))
    target.dbkeeper("restore", backup_id, f"sqlite:///{tmp_path / 'restored.db'}", "--identity", str(identity))
    assert_same_database(tmp_path / "restored.db", chinook)


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_key_rotation_through_copy(
    chinook: Path, keys: Keys, tmp_path: Path, places: Callable[[str, str], Place], kind: str
) -> None:
    source, target = places(kind, "old"), places(kind, "new")
    backup_id = source.backup(f"sqlite:///{chinook}", "--recipient", keys.public)
    run = copy(source, target, backup_id, "--identity", str(keys.key), "--recipient", keys.other_public)
    assert run.out.startswith(f"copied {backup_id} (")
    assert all(secret not in run.out + run.err for secret in keys.secrets())
    assert_encrypted_copy(target, backup_id, keys.other, keys.other_public, chinook, tmp_path)
    refused = tmp_path / "refused.db"
    old = target.dbkeeper("restore", backup_id, f"sqlite:///{refused}", "--identity", str(keys.key), check=False)
    assert_one_line_error(old, fingerprint(keys.other_public), "key.txt")
    assert not refused.exists()


def test_re_encrypting_needs_the_identity(chinook: Path, keys: Keys, places: Callable[[str, str], Place]) -> None:
    source, target = places("local", "old"), places("local", "new")
    backup_id = source.backup(f"sqlite:///{chinook}", "--recipient", keys.public)
    run = copy(source, target, backup_id, "--recipient", keys.other_public, check=False)
    assert_one_line_error(run, "--identity")
    assert target.statuses() == []


def test_encrypting_a_plain_backup_through_copy(
    chinook: Path, keys: Keys, tmp_path: Path, places: Callable[[str, str], Place]
) -> None:
    source, target = places("local", "plain"), places("s3", "encrypted")
    backup_id = source.backup(f"sqlite:///{chinook}")
    copy(source, target, backup_id, "--recipient", keys.public)
    assert_encrypted_copy(target, backup_id, keys.key, keys.public, chinook, tmp_path)


def test_copy_with_recipient_never_keeps_a_plain_copy_as_present(
    chinook: Path, keys: Keys, places: Callable[[str, str], Place]
) -> None:
    """A copy already there counts as present only when it is encrypted for the recipients asked for."""
    source, target = places("local", "plain"), places("local", "offsite")
    backup_id = source.backup(f"sqlite:///{chinook}")
    copy(source, target, backup_id)
    run = copy(source, target, backup_id, "--recipient", keys.public, check=False)
    assert_one_line_error(run, f"backup {backup_id} is already in", "not encrypted for these recipients", "delete")
    stages = [stage["name"] for stage in target.manifest(backup_id)["artifacts"][0]["stages"]]
    assert "age" not in stages
    encrypted = places("local", "encrypted")
    copy(source, encrypted, backup_id, "--recipient", keys.public)
    again = copy(source, encrypted, backup_id, "--recipient", keys.public)
    assert again.out.startswith(f"present {backup_id}"), again.out
