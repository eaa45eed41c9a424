"""Small real file systems for the tests of full disks and read-only directories (tmpfs; needs root)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_file_system(path: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of *size* mounted at *path* (created) for the block, unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs at {path} (the tests of full disks need root): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def read_only(path: Path) -> None:
    """Remount the file system mounted at *path* read-only."""
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)


def everything_in(path: Path) -> list[str]:
    """Every file and directory below *path*, as relative paths, sorted (hidden ones too)."""
    return sorted(
        str(Path(root, name).relative_to(path)) for root, dirs, files in os.walk(path) for name in dirs + files
    )


def incompressible_db(path: Path, megabytes: int) -> Path:
    """A SQLite database of about *megabytes* MiB of random bytes (zstd cannot shrink it)."""
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE blob (id INTEGER PRIMARY KEY, data BLOB)")
    conn.executemany("INSERT INTO blob (data) VALUES (?)", ((os.urandom(4000),) for _ in range(megabytes * 256)))
    conn.commit()
    conn.close()
    return path


def compressible_db(path: Path, megabytes: int) -> Path:
    """A SQLite database of about *megabytes* MiB that compresses to a small fraction of that."""
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany(
        "INSERT INTO note (body) VALUES (?)", ((f"note {i} " + "lorem ipsum " * 80,) for i in range(megabytes * 1000))
    )
    conn.commit()
    conn.close()
    return path
