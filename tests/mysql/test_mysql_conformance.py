"""The MySQL/MariaDB driver runs the driver conformance kit (dbkeeper.plugin.testing) on a real MariaDB."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from mariadb_server import MariaDBServer

from dbkeeper.plugin.testing import DriverConformance


class TestMySQLConformance(DriverConformance):
    @pytest.fixture
    def source_url(self, mariadb: MariaDBServer, new_database: Callable[[str], str]) -> str:
        name = new_database("kit")
        mariadb.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        return mariadb.url(name)

    @pytest.fixture
    def new_url(self, mariadb: MariaDBServer, new_database: Callable[[str], str]) -> Callable[[], str]:
        return lambda: mariadb.url(new_database("kit_target"))
