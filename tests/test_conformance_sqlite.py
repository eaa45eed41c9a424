"""The SQLite driver runs the driver conformance kit (dbkeeper.plugin.testing) on real files."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from dbkeeper.plugin.testing import DriverConformance


class TestSQLiteConformance(DriverConformance):
    @pytest.fixture
    def source_url(self, tmp_path: Path) -> str:
        (tmp_path / "source.db").touch()  # an empty file is an empty SQLite database
        return f"sqlite:///{tmp_path / 'source.db'}"

    @pytest.fixture
    def new_url(self, tmp_path: Path) -> Callable[[], str]:
        names = itertools.count(1)
        return lambda: f"sqlite:///{tmp_path / f'target{next(names)}.db'}"
