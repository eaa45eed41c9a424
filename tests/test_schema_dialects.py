"""Schema engine knowledge comes from the drivers: ``dbkeeper_schema_dialect`` and its ``SchemaDialect``.

A dialect name resolves through the plugin manager (a missing driver is a usage error
naming the distribution to install); a third-party driver's dialect generates DDL that runs on
a real database; the core's schema modules name no engine outside their docstrings.
"""

from __future__ import annotations

import ast
import sqlite3
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import pytest
from test_schema_generate import RICH

from dbkeeper.plugin import (
    ColumnType,
    Default,
    DriverInfo,
    SchemaDialect,
    SchemaRequest,
    hookimpl,
)
from helpers import ROOT, dbkeeper

ENGINE_NAMES = ("sqlite", "postgres", "mysql", "mariadb")
#: Every module of the core's schema package.
NEUTRAL = [path.name for path in sorted((ROOT / "core/src/dbkeeper/schema").glob("*.py"))]


@pytest.fixture
def rich(tmp_path: Path) -> Path:
    """The feature-rich definition of test_schema_generate as a file."""
    path = tmp_path / "rich.yaml"
    path.write_text(RICH)
    return path


def test_a_dialect_without_its_driver_names_the_distribution_to_install(rich: Path) -> None:
    run = dbkeeper(
        "schema", "generate", str(rich), "--dialect", "mysql", env={"DBKEEPER_DISABLE_PLUGINS": "mysql"}, check=False
    )
    assert (run.code, run.out) == (2, "")  # a usage error, as an unknown dialect is
    assert run.err.endswith(
        "Error: Invalid value for '--dialect': no driver for dialect 'mysql' — pip install dbkeeper-mysql\n"
    )


def test_a_url_scheme_names_its_driver_dialect(rich: Path) -> None:
    """``mariadb`` is the ``mysql`` driver's scheme: the same DDL and notes."""
    mysql = dbkeeper("schema", "generate", str(rich), "--dialect", "mysql")
    assert dbkeeper("schema", "generate", str(rich), "--dialect", "mariadb") == mysql


class AcmeSchema(SchemaDialect):
    """A third-party engine that SQLAlchemy compiles as SQLite; TRUE/FALSE as 1/0, notes of its own."""

    name = "acme"
    title = "Acme"
    lossy_types: ClassVar[Mapping[str, str]] = {"uuid": "{type} is {sql} on Acme"}
    no_partial_indexes = "Acme indexes every row"

    @cached_property
    def sqlalchemy_dialect(self) -> Any:
        from sqlalchemy.dialects import sqlite

        return sqlite.dialect()

    def default(self, value: Default, portable: ColumnType) -> Any:
        import sqlalchemy as sa

        return sa.text(str(int(value))) if isinstance(value, bool) else super().default(value, portable)


class PlainPlugin:
    """A driver plugin that only registers its driver."""

    @hookimpl
    def dbkeeper_register_drivers(self, register: Callable[[DriverInfo], None]) -> None:
        register(DriverInfo(name="acme", schemes=("acme",), formats=("sql",)))


class AcmePlugin(PlainPlugin):
    """A driver plugin whose only other hook is the schema dialect."""

    @hookimpl
    def dbkeeper_schema_dialect(self, request: SchemaRequest) -> SchemaDialect:
        return AcmeSchema()


def test_a_third_party_dialect_generates_ddl_that_runs(rich: Path, tmp_path: Path) -> None:
    from dbkeeper.plugin.manager import load_plugins
    from dbkeeper.schema import generate_schema, load_definition
    from dbkeeper.schema.metadata import schema_dialect

    plugins = load_plugins(entry_points_group=None, extra=[("acme", AcmePlugin())])
    dialect = schema_dialect("acme", plugins)
    assert isinstance(dialect, AcmeSchema)
    ddl = generate_schema(load_definition(rich), dialect)
    assert "tables.customers.columns.external_id.type: uuid is CHAR(32) on Acme" in ddl.warnings
    assert "tables.orders.indexes.1.where: Acme indexes every row" in ddl.warnings
    assert "views.order_totals.comment: Acme keeps no view comments; left out" in ddl.warnings
    assert "active BOOLEAN DEFAULT 1 NOT NULL" in ddl.sql
    assert "WHERE" not in ddl.sql.split("CREATE VIEW")[0]  # no partial index
    with sqlite3.connect(tmp_path / "acme.db") as db:
        for statement in ddl.statements:
            db.execute(statement)
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone() == (3,)


def test_a_driver_without_the_hook_is_told_so() -> None:
    from dbkeeper.errors import UnsupportedOperationError
    from dbkeeper.plugin.manager import load_plugins
    from dbkeeper.schema.metadata import schema_dialect

    plugins = load_plugins(entry_points_group=None, extra=[("acme", PlainPlugin())])
    with pytest.raises(UnsupportedOperationError, match=r"the acme driver .* does not support schema dialect"):
        schema_dialect("acme", plugins)


@pytest.mark.parametrize("name", NEUTRAL)
def test_the_core_schema_modules_name_no_engine(name: str) -> None:
    """Outside docstrings and comments, no string in a core schema module names an engine."""
    tree = ast.parse((ROOT / "core/src/dbkeeper/schema" / name).read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    strings = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]
    named = [text for text in strings if any(engine in text.lower() for engine in ENGINE_NAMES)]
    assert not named, f"{name} names an engine: {named}"


def test_a_third_party_dialect_diffs_by_what_its_members_say(rich: Path, tmp_path: Path) -> None:
    """Acme writes no read-back rule: its types, partial indexes, enum storage and comments say what it keeps."""
    from dataclasses import replace

    from dbkeeper.plugin.manager import load_plugins
    from dbkeeper.schema import Column, ColumnType, diff_schemas, generate_schema, load_definition
    from dbkeeper.schema.metadata import schema_dialect
    from dbkeeper.schema.migration import diff_migration
    from dbkeeper.schema.normalise import read_back

    dialect = schema_dialect("acme", load_plugins(entry_points_group=None, extra=[("acme", AcmePlugin())]))
    definition = load_definition(rich)
    back = read_back(definition, dialect)
    assert back != definition
    assert [index.where for table in back.tables.values() for index in table.indexes if index.where] == []
    assert [table.comment for table in back.tables.values() if table.comment] == []
    assert not diff_schemas(definition, back, dialect=dialect)
    customers = definition.tables["customers"]
    note = Column("note", ColumnType.parse("varchar(20)"))
    wider = replace(
        definition,
        tables={**definition.tables, "customers": replace(customers, columns={**customers.columns, "note": note})},
    )
    migration = diff_migration(definition, wider, dialect)
    assert [change.kind for change in migration.diff.changes] == ["add_column"]
    with sqlite3.connect(tmp_path / "acme.db") as db:
        for statement in (*generate_schema(definition, dialect).statements, *migration.up.statements):
            db.execute(statement)
        assert "note" in [row[1] for row in db.execute("PRAGMA table_info(customers)")]
        for statement in migration.down.statements:
            db.execute(statement)
        assert "note" not in [row[1] for row in db.execute("PRAGMA table_info(customers)")]
