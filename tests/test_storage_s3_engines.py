"""Every engine's backups through S3 storage and back, plain and encrypted with age, through the real CLI.

Chinook on SQLite, PostgreSQL and MariaDB is backed up to a fresh bucket on moto's S3
server, verified deeply and restored; the restored database must hold the same data as
the source (by the native tools), and an encrypted backup must be unreadable without
its identity file, on S3 as on a disk.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from s3_server import S3Server

from helpers import DATASETS, Run, assert_one_line_error, dbkeeper, sqlite_dump

if TYPE_CHECKING:
    from mariadb_server import MariaDBServer
    from pg_server import Server

AGE_HEADER = b"age-encryption.org/v1\n"
ENCRYPTION = [pytest.param(False, id="plain"), pytest.param(True, id="age")]


@dataclass(frozen=True)
class Keys:
    """An age identity file made by ``age-keygen`` and its public key, and another identity (the wrong one)."""

    identity: Path
    public: str
    other: Path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Two fresh age identities; backups are encrypted for the first."""
    folder = tmp_path_factory.mktemp("keys")
    for name in ("key.txt", "other.txt"):
        subprocess.run(["age-keygen", "-o", str(folder / name)], capture_output=True, check=True)
    public = subprocess.run(["age-keygen", "-y", str(folder / "key.txt")], capture_output=True, text=True, check=True)
    return Keys(folder / "key.txt", public.stdout.strip(), folder / "other.txt")


def document(run: Run) -> dict[str, Any]:
    """The JSON object a command printed."""
    found = run.json()
    assert isinstance(found, dict), run.out
    return found


def round_trip(s3: S3Server, source: str, target: str, keys: Keys | None) -> dict[str, Any]:
    """Back *source* up to a fresh bucket (for *keys*, when given), verify it deeply and restore it into *target*.

    Returns the manifest; the restore's row counts are checked against it, and an
    encrypted backup is checked to be age ciphertext that needs the identity file.
    """
    url = f"s3://{s3.bucket()}/{source.partition(':')[0]}"
    recipients = ["--recipient", keys.public] if keys else []
    identities = ["--identity", str(keys.identity)] if keys else []
    manifest = document(dbkeeper("backup", source, "--dir", url, "--json", *recipients, env=s3.env))
    if keys:
        assert_encrypted(s3, url, manifest, target, keys)
    report = document(dbkeeper("verify", "latest", "--deep", "--json", "--dir", url, *identities, env=s3.env))
    assert (report["id"], report["ok"], report["problems"]) == (manifest["id"], True, [])
    restored = document(dbkeeper("restore", manifest["id"], target, "--json", "--dir", url, *identities, env=s3.env))
    assert restored["row_counts"] == manifest["row_counts"]
    return manifest


def assert_encrypted(s3: S3Server, url: str, manifest: dict[str, Any], target: str, keys: Keys) -> None:
    """The stored artifacts are age files; verify checks them without a key, deep verify and restore need the key.

    Without an identity the error says how to pass one; with the wrong one it says so,
    without showing any identity's secret.
    """
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    for artifact in manifest["artifacts"]:
        assert "age" in [stage["name"] for stage in artifact["stages"]]
        stored = s3.client().get_object(Bucket=bucket, Key=f"{prefix}/{manifest['id']}/{artifact['file']}")
        assert stored["Body"].read(len(AGE_HEADER)) == AGE_HEADER
    assert document(dbkeeper("verify", "latest", "--json", "--dir", url, env=s3.env))["ok"] is True
    for needs_key in (("verify", "latest", "--deep"), ("restore", "latest", target)):
        assert_one_line_error(dbkeeper(*needs_key, "--dir", url, env=s3.env, check=False), "--identity")
        wrong = dbkeeper(*needs_key, "--dir", url, "--identity", str(keys.other), env=s3.env, check=False)
        assert_one_line_error(wrong, str(keys.other))
        assert "AGE-SECRET-KEY-" not in wrong.err


@pytest.mark.parametrize("encrypted", ENCRYPTION)
def test_sqlite(s3: S3Server, chinook: Path, tmp_path: Path, keys: Keys, encrypted: bool) -> None:
    restored = tmp_path / "restored.db"
    manifest = round_trip(s3, f"sqlite:///{chinook}", f"sqlite:///{restored}", keys if encrypted else None)
    assert manifest["row_counts"]["Track"] == 3503
    assert sqlite_dump(restored) == sqlite_dump(chinook)


@pytest.fixture(scope="module")
def pg_chinook(pg: Server) -> str:
    """Chinook loaded into PostgreSQL from the shared dataset, owned by the test role; its name."""
    script = (DATASETS / "chinook" / "Chinook_PostgreSql.sql").read_text(encoding="utf-8")
    skipped = ("DROP DATABASE", "CREATE DATABASE", "\\c ")  # it creates its own database; we made one
    return pg.app_database("chinook", "\n".join(line for line in script.splitlines() if not line.startswith(skipped)))


@pytest.mark.parametrize("encrypted", ENCRYPTION)
def test_postgresql(s3: S3Server, pg: Server, pg_chinook: str, keys: Keys, encrypted: bool) -> None:
    target = f"restored_{'age' if encrypted else 'plain'}"
    manifest = round_trip(s3, pg.url(pg_chinook), pg.url(target), keys if encrypted else None)
    assert manifest["row_counts"]["public.track"] == 3503
    assert pg.schema_dump(target) == pg.schema_dump(pg_chinook)
    assert pg.contents(target) == pg.contents(pg_chinook)


_DATABASE_LINES = re.compile(rb"^(DROP DATABASE|CREATE DATABASE|USE )[^\n]*\n", re.MULTILINE)


@pytest.fixture(scope="module")
def maria_chinook(mariadb: MariaDBServer) -> str:
    """Chinook loaded into MariaDB from the shared dataset; its name."""
    mariadb.recreate("chinook")
    mariadb.load_sql("chinook", _DATABASE_LINES.sub(b"", (DATASETS / "chinook" / "Chinook_MySql.sql").read_bytes()))
    return "chinook"


def checksums(mariadb: MariaDBServer, database: str) -> dict[str, tuple[object, ...]]:
    """Each table's row count and ``CHECKSUM TABLE`` (of its rows' contents)."""
    tables = [str(row[0]) for row in mariadb.execute("SHOW TABLES", database=database)]
    return {
        table: (
            *mariadb.execute(f"SELECT COUNT(*) FROM `{table}`", database=database)[0],
            mariadb.execute(f"CHECKSUM TABLE `{table}` EXTENDED", database=database)[0][1],
        )
        for table in tables
    }


@pytest.mark.parametrize("encrypted", ENCRYPTION)
def test_mariadb(s3: S3Server, mariadb: MariaDBServer, maria_chinook: str, keys: Keys, encrypted: bool) -> None:
    target = f"restored_{'age' if encrypted else 'plain'}"
    manifest = round_trip(s3, mariadb.url(maria_chinook), mariadb.url(target), keys if encrypted else None)
    assert manifest["row_counts"]["Track"] == 3503
    assert len(checksums(mariadb, target)) == len(manifest["row_counts"]) == 11
    assert checksums(mariadb, target) == checksums(mariadb, maria_chinook)
