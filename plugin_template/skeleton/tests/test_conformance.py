"""dbkeeper's conformance kit, run against this driver on real database files."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from dbkeeper.plugin.testing import DriverConformance


class TestConformance(DriverConformance):
    """Every contract test of dbkeeper.plugin.testing; capabilities the driver lacks are skipped and listed."""

    @pytest.fixture
    def source_url(self, tmp_path: Path) -> str:
        """An existing, empty database (for a server engine: create one on your test server)."""
        (tmp_path / "source.db").touch()
        return f"{{name}}:///{tmp_path / 'source.db'}"

    @pytest.fixture
    def new_url(self, tmp_path: Path) -> Callable[[], str]:
        """URLs of databases that do not exist yet: restore targets."""
        names = itertools.count(1)
        return lambda: f"{{name}}:///{tmp_path / f'target{next(names)}.db'}"
