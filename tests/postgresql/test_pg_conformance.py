"""The PostgreSQL driver runs the driver conformance kit (dbkeeper.plugin.testing) on a real server."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from pg_server import APP_USER, Server

from dbkeeper.plugin.testing import DriverConformance

_names = itertools.count(1)


class TestPostgreSQLConformance(DriverConformance):
    @pytest.fixture
    def source_url(self, pg: Server) -> str:
        name = f"kit_{next(_names)}"
        pg.psql(f"CREATE DATABASE {name} OWNER {APP_USER}")
        return pg.url(name)

    @pytest.fixture
    def new_url(self, pg: Server) -> Callable[[], str]:
        return lambda: pg.url(f"kit_target_{next(_names)}")
