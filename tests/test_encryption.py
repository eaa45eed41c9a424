"""Encrypted backups through the real CLI: age recipients in, identities out, no lock-in, one-line failures.

The age stage itself is tested in test_age_stage.py; this module tests what a user sees:
``backup --recipient`` (or ``[backup] recipients``), ``verify``, ``verify --deep`` and
``restore`` with ``--identity`` or ``DBKEEPER_IDENTITY_FILE``, and Debian's ``age`` and
``zstd`` opening the artifact without dbkeeper.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dbkeeper.backups.manifest import MANIFEST_FILE, SEAL, seal
from helpers import Run, artifact_of, assert_one_line_error, dbkeeper, sqlite_dump

AGE_MAGIC = b"age-encryption.org/v1\n"
SQLITE_MAGIC = b"SQLite format 3\x00"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class Keys:
    """Two age key files made by ``age-keygen``, and their public keys."""

    key: Path
    public: str
    other: Path
    other_public: str

    def secrets(self) -> list[str]:
        """The ``AGE-SECRET-KEY-…`` lines of both key files: they must never appear anywhere we write."""
        return [line for path in (self.key, self.other) for line in path.read_text().splitlines() if "SECRET" in line]


def make_keys(folder: Path) -> Keys:
    """Two fresh age keys in *folder* (``key.txt``, ``other.txt``), made by the real ``age-keygen``."""
    publics = []
    for name in ("key.txt", "other.txt"):
        subprocess.run(["age-keygen", "-o", str(folder / name)], capture_output=True, check=True)
        found = subprocess.run(["age-keygen", "-y", str(folder / name)], capture_output=True, text=True, check=True)
        publics.append(found.stdout.strip())
    return Keys(folder / "key.txt", publics[0], folder / "other.txt", publics[1])


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Two age keys for this module."""
    return make_keys(tmp_path_factory.mktemp("keys"))


def fingerprint(public: str) -> str:
    """What the manifest records for an age public key instead of the key."""
    return "sha256:" + hashlib.sha256(public.encode()).hexdigest()[:16]


def age_recipients(manifest: dict[str, Any], artifact: int = 0) -> list[str]:
    """The fingerprints the age stage of one artifact records."""
    (stage,) = [s for s in manifest["artifacts"][artifact]["stages"] if s["name"] == "age"]
    recipients: list[str] = stage["recipients"]
    return recipients


def backup_json(*args: str, cwd: Path | None = None) -> dict[str, Any]:
    """``dbkeeper backup ARGS --json`` (it must succeed); the new backup's manifest."""
    manifest = dbkeeper("backup", *args, "--json", cwd=cwd).json()
    assert isinstance(manifest, dict)
    return manifest


def encrypted_backup(chinook: Path, backups: Path, *recipients: str, fmt: str = "sqlite") -> dict[str, Any]:
    """``dbkeeper backup --recipient R…`` of *chinook* into *backups*; its manifest."""
    flags = [arg for recipient in recipients for arg in ("--recipient", recipient)]
    return backup_json(f"sqlite:///{chinook}", "--dir", str(backups), "--format", fmt, *flags)


def stock_decrypt(artifact: Path, key: Path, out: Path) -> None:
    """``age -d -i KEY ARTIFACT | zstd -dc > OUT`` with Debian's binaries, no dbkeeper involved."""
    with out.open("wb") as sink:
        age = subprocess.Popen(["age", "-d", "-i", str(key), str(artifact)], stdout=subprocess.PIPE)
        assert age.stdout is not None
        zstd = subprocess.run(["zstd", "-dc"], stdin=age.stdout, stdout=sink, check=False)
        age.stdout.close()
        assert age.wait(timeout=60) == 0 and zstd.returncode == 0


def assert_no_secret(keys: Keys, *texts: str) -> None:
    """None of *texts* holds a secret key."""
    for secret in keys.secrets():
        assert all(secret not in text for text in texts)


def row_counts(path: Path) -> dict[str, int]:
    """Every table's row count, as ``sqlite3`` sees it."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in tables}


def assert_same_database(restored: Path, chinook: Path) -> None:
    """*restored* passes ``PRAGMA integrity_check`` and holds exactly Chinook (row counts and ``.dump``)."""
    with contextlib.closing(sqlite3.connect(restored)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert row_counts(restored) == row_counts(chinook)
    assert sum(row_counts(restored).values()) == 15607
    assert sqlite_dump(restored) == sqlite_dump(chinook)


def restore(backups: Path, target: Path, *identities: Path, env: dict[str, str] | None = None) -> Run:
    """``dbkeeper restore latest sqlite:///TARGET --identity I…`` (not checked)."""
    flags = [arg for identity in identities for arg in ("--identity", str(identity))]
    return dbkeeper("restore", "latest", f"sqlite:///{target}", "--dir", str(backups), *flags, env=env, check=False)


def assert_nothing_written(target: Path) -> None:
    """Neither the restore target nor any temporary file beside it exists."""
    assert not target.exists()
    assert not [p for p in target.parent.iterdir() if target.name in p.name], "a leftover beside the target"


@pytest.mark.parametrize("source", ["--recipient", "dbkeeper.toml"])
def test_encrypted_backup_holds_no_plaintext_and_no_key(
    chinook: Path, backups: Path, tmp_path: Path, keys: Keys, source: str
) -> None:
    if source == "--recipient":
        manifest = encrypted_backup(chinook, backups, keys.public)
    else:
        (tmp_path / "dbkeeper.toml").write_text(
            f'backup_dir = "{backups}"\n[backup]\nrecipients = ["{keys.public}"]\n'
            f'[connections.default]\nurl = "sqlite:///{chinook}"\n'
        )
        manifest = backup_json(cwd=tmp_path)
    backup_id = manifest["id"]
    artifact = artifact_of(backups, backup_id)
    assert artifact.name == "chinook.db.zst.age"
    head = artifact.read_bytes()[:64]
    assert head.startswith(AGE_MAGIC) and SQLITE_MAGIC not in head and ZSTD_MAGIC not in head
    assert subprocess.run(["zstd", "-t", str(artifact)], capture_output=True).returncode != 0
    assert subprocess.run(["sqlite3", str(artifact), "PRAGMA schema_version"], capture_output=True).returncode != 0
    assert age_recipients(manifest) == [fingerprint(keys.public)]
    assert "age1" not in (backups / backup_id / MANIFEST_FILE).read_text()
    for path in (backups / backup_id).iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        data = path.read_bytes()
        assert keys.public.encode() not in data
        assert all(secret.encode() not in data for secret in keys.secrets())


@pytest.mark.parametrize("fmt", ["sqlite", "sql"])
def test_stock_age_and_zstd_give_the_database_back(
    chinook: Path, backups: Path, tmp_path: Path, keys: Keys, fmt: str
) -> None:
    manifest = encrypted_backup(chinook, backups, keys.public, fmt=fmt)
    plain = tmp_path / "plain"
    stock_decrypt(artifact_of(backups, manifest["id"]), keys.key, plain)
    if fmt == "sqlite":
        assert_same_database(plain, chinook)
    else:
        loaded = tmp_path / "loaded.db"
        with plain.open("rb") as dump:
            subprocess.run(["sqlite3", str(loaded)], stdin=dump, check=True)
        assert_same_database(loaded, chinook)


def test_verify_reads_stored_bytes_without_a_key_and_deep_needs_one(chinook: Path, backups: Path, keys: Keys) -> None:
    backup_id = encrypted_backup(chinook, backups, keys.public)["id"]
    assert dbkeeper("verify", backup_id, "--dir", str(backups)).out.startswith(f"ok {backup_id}")
    deep = dbkeeper("verify", backup_id, "--deep", "--dir", str(backups), check=False)
    assert_one_line_error(deep, "--identity", fingerprint(keys.public))
    report = dbkeeper(
        "verify", backup_id, "--deep", "--dir", str(backups), "--identity", str(keys.key), "--json"
    ).json()
    assert report == {
        "id": backup_id,
        "deep": True,
        "ok": True,
        "checked_bytes": artifact_of(backups, backup_id).stat().st_size,
        "problems": [],
    }


@pytest.mark.parametrize("how", ["--identity", "DBKEEPER_IDENTITY_FILE"])
def test_restore_with_the_identity(chinook: Path, backups: Path, tmp_path: Path, keys: Keys, how: str) -> None:
    encrypted_backup(chinook, backups, keys.public)
    target = tmp_path / "restored.db"
    if how == "--identity":
        run = restore(backups, target, keys.key)
    else:
        run = restore(backups, target, env={"DBKEEPER_IDENTITY_FILE": str(keys.key)})
    assert run.code == 0, run.err
    assert_same_database(target, chinook)
    assert_no_secret(keys, run.out, run.err)


def test_either_of_two_recipients_restores(chinook: Path, backups: Path, tmp_path: Path, keys: Keys) -> None:
    manifest = encrypted_backup(chinook, backups, keys.public, keys.other_public)
    assert age_recipients(manifest) == [fingerprint(keys.public), fingerprint(keys.other_public)]
    for identity in (keys.key, keys.other):
        target = tmp_path / f"from-{identity.stem}.db"
        run = restore(backups, target, identity)
        assert run.code == 0, run.err
        assert_same_database(target, chinook)


def flip_middle_byte(path: Path) -> None:
    """Change one bit in the middle of *path*, and nothing else."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("case", ["wrong identity", "no identity", "unreadable identity", "tampered"])
def test_restore_failures_are_one_line_and_write_nothing(
    chinook: Path, backups: Path, tmp_path: Path, keys: Keys, case: str
) -> None:
    backup_id = encrypted_backup(chinook, backups, keys.public)["id"]
    target = tmp_path / "out" / "restored.db"
    target.parent.mkdir()
    identities, expected = {
        "wrong identity": ([keys.other], [fingerprint(keys.public), fingerprint(keys.other_public)]),
        "no identity": ([], ["--identity", fingerprint(keys.public)]),
        "unreadable identity": ([tmp_path / "missing.txt"], ["missing.txt", "cannot be read"]),
        "tampered": ([keys.key], ["age authentication"]),
    }[case]
    if case == "tampered":
        flip_middle_byte(artifact_of(backups, backup_id))
        checked = dbkeeper("verify", backup_id, "--dir", str(backups), check=False)
        assert checked.code == 1 and "SHA256 mismatch" in checked.err
    run = restore(backups, target, *identities)
    assert_one_line_error(run, *expected)
    assert_nothing_written(target)
    assert_no_secret(keys, run.out, run.err)


def test_forged_checksum_is_still_caught_by_age(chinook: Path, backups: Path, tmp_path: Path, keys: Keys) -> None:
    """Damage with the manifest's sha256 and seal rewritten to match: the checksum passes, age's authentication not."""
    backup_id = encrypted_backup(chinook, backups, keys.public)["id"]
    artifact = artifact_of(backups, backup_id)
    flip_middle_byte(artifact)
    manifest_file = backups / backup_id / MANIFEST_FILE
    data = json.loads(manifest_file.read_text())
    data["artifacts"][0]["stages"][-1]["digest"] = hashlib.sha256(artifact.read_bytes()).hexdigest()
    data[SEAL] = seal(data)
    manifest_file.write_text(json.dumps(data))
    assert dbkeeper("verify", backup_id, "--dir", str(backups)).code == 0
    deep = dbkeeper("verify", backup_id, "--deep", "--dir", str(backups), "--identity", str(keys.key), check=False)
    assert deep.code == 1 and "age authentication" in deep.out + deep.err
    target = tmp_path / "out" / "restored.db"
    target.parent.mkdir()
    assert_one_line_error(restore(backups, target, keys.key), "age authentication")
    assert_nothing_written(target)


@pytest.mark.parametrize("source", ["--recipient", "dbkeeper.toml"])
def test_unknown_recipient_is_one_line_and_writes_nothing(
    chinook: Path, backups: Path, tmp_path: Path, source: str
) -> None:
    if source == "--recipient":
        run = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), "--recipient", "foo", check=False)
    else:
        (tmp_path / "dbkeeper.toml").write_text(
            f'backup_dir = "{backups}"\n[backup]\nrecipients = ["foo"]\n[connections.default]\nurl = "sqlite:///{chinook}"\n'
        )
        run = dbkeeper("backup", cwd=tmp_path, check=False)
    assert_one_line_error(run, "'foo'", "age1")
    assert not backups.exists() or not any(backups.iterdir())
