"""Shared fixtures: real SQLite files (Chinook from ../shared/datasets)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import CHINOOK_SQLITE


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
