"""Fixtures for the PostgreSQL driver: one throwaway server per session, databases copied from templates.

The server is started here for developers and CI alike (``bash scripts/test.sh``); when
it cannot start, every test using it fails with the reason — never a silent skip.
"""

from __future__ import annotations

import functools
import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pg_server import APP_USER, Server
from throwaway_servers import postgresql_server

from helpers import DATASETS, private_copy

CHINOOK_POSTGRES = DATASETS / "chinook" / "Chinook_PostgreSql.sql"
FIDELITY = Path(__file__).with_name("fidelity.sql")
_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg() -> Iterator[Server]:
    """The session's server on 127.0.0.1 (passwords required over TCP), stopped and removed at the end."""
    with postgresql_server() as server:
        yield server


def _template(pg: Server, name: str, sql: str) -> str:
    pg.psql(f"CREATE DATABASE {name} OWNER {APP_USER}")
    pg.psql(f"SET ROLE {APP_USER};\n{sql}", database=name)
    pg.psql(f"ANALYZE; ALTER DATABASE {name} IS_TEMPLATE true", database=name)
    return name


@pytest.fixture(scope="session")
def chinook_template(pg: Server) -> str:
    """Chinook, loaded once from the shared dataset (read in place) and owned by the test role."""
    if not CHINOOK_POSTGRES.is_file():
        pytest.fail(f"the shared Chinook dataset is missing: {CHINOOK_POSTGRES}", pytrace=False)
    script = CHINOOK_POSTGRES.read_text(encoding="utf-8")
    skipped = ("DROP DATABASE", "CREATE DATABASE", "\\c ")  # it creates its own database; we made one
    body = "\n".join(line for line in script.splitlines() if not line.startswith(skipped))
    return _template(pg, "chinook_template", body)


@pytest.fixture(scope="session")
def fidelity_template(pg: Server) -> str:
    """The schema of tests/postgresql/fidelity.sql: the objects real applications use."""
    return _template(pg, "fidelity_template", FIDELITY.read_text(encoding="utf-8"))


def copy_of(pg: Server, template: str) -> str:
    """A new database copied from *template*, owned by the test role; returns its name."""
    name = f"{template.removesuffix('_template')}_{next(_names)}"
    pg.psql(f"CREATE DATABASE {name} TEMPLATE {template} OWNER {APP_USER}")
    return name


@pytest.fixture
def database_copy(pg: Server) -> Callable[[str], str]:
    """Makes a new database from a template, owned by the test role; returns its name (see :func:`copy_of`)."""
    return functools.partial(copy_of, pg)


@pytest.fixture
def chinook(pg: Server, chinook_template: str) -> str:
    """A private copy of Chinook a test may change (its name)."""
    return copy_of(pg, chinook_template)


@pytest.fixture
def fidelity(pg: Server, fidelity_template: str) -> str:
    """A private copy of the fidelity schema (its name)."""
    return copy_of(pg, fidelity_template)


@pytest.fixture
def new_name() -> str:
    """A database name not used yet (restore targets)."""
    return f"restored_{next(_names)}"


@pytest.fixture
def backup(made: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    """A private copy of the test module's ``made`` backup (its drill records are this test's)."""
    return private_copy(made, tmp_path)


@pytest.fixture
def drill_tmp() -> Iterator[Path]:
    """The drills' TMPDIR: a fresh directory the server user may pass through."""
    path = Path(tempfile.mkdtemp(prefix="pgdrill-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)
