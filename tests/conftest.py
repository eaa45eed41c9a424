"""Shared fixtures: real SQLite files (Chinook from ../shared/datasets), and throwaway servers per module.

Tests under tests/postgresql and tests/mysql have session-wide servers of their own (their
conftest.py); the ``pg`` and ``mariadb`` here serve one test module each elsewhere.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from s3_server import S3Server, s3_server
from throwaway_servers import mariadb_server, postgresql_server

from helpers import CHINOOK_SQLITE

if TYPE_CHECKING:
    from mariadb_server import MariaDBServer
    from pg_server import Server


@pytest.fixture(scope="session", autouse=True)
def drill_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The drills' cache of pristine data directories: the session's own, not the user's ``~/.cache``."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(cache))
        yield cache


@pytest.fixture(scope="session")
def chinook_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Chinook database, built once per session with the native ``sqlite3``."""
    if not CHINOOK_SQLITE.is_file():
        pytest.fail(f"the shared Chinook dataset is missing: {CHINOOK_SQLITE}")
    path = tmp_path_factory.mktemp("chinook") / "chinook.db"
    with CHINOOK_SQLITE.open("rb") as script:
        subprocess.run(["sqlite3", str(path)], stdin=script, check=True)
    return path


@pytest.fixture
def chinook(tmp_path: Path, chinook_template: Path) -> Path:
    """A private copy of Chinook that a test may change."""
    path = tmp_path / "chinook.db"
    shutil.copyfile(chinook_template, path)
    return path


@pytest.fixture
def backups(tmp_path: Path) -> Path:
    """An empty backup directory path."""
    return tmp_path / "backups"


@pytest.fixture(scope="module")
def pg() -> Iterator[Server]:
    """A throwaway PostgreSQL server for this module."""
    with postgresql_server() as server:
        yield server


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDBServer]:
    """A throwaway MariaDB server for this module."""
    with mariadb_server() as server:
        yield server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """A throwaway S3-compatible server (moto) on loopback for this module; ``s3.bucket()`` makes a fresh bucket."""
    with s3_server() as server:
        yield server
