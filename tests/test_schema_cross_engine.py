"""Across engines: a definition inspected from PostgreSQL generates DDL that SQLite and MariaDB accept.

The feature-rich definition of test_schema_generate and Chinook are loaded into a throwaway
PostgreSQL server and read back with ``dbkeeper schema inspect`` (the CLI, as users do).
``dbkeeper schema generate FILE --dialect sqlite|mysql`` must then print exactly the
expected lossy notes, and its DDL must run as it is on a fresh SQLite file (``sqlite3 -bail``)
and a fresh MariaDB database (the ``mariadb`` client). Inspected again, each gives the
PostgreSQL definition back, changed exactly by the lossy mappings and normalisation
docs/schema.md documents; those are written out below (:func:`on_sqlite`,
:func:`on_mariadb`), so a loss that is not documented fails the test.

PostgreSQL gives the feature-rich definition's checks, ``where`` clause and index
expression back with the casts it added (``total >= 0::numeric``, ``lower(email::text)``),
which SQLite and MariaDB refuse: inspect removes them (dbkeeper_postgresql.portable_sql),
so the definition carries the SQL as it was written (``total >= 0``, ``lower(email)``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest
from test_schema_generate import NOTES as GENERATE_NOTES
from test_schema_generate import RICH
from test_schema_inspect import CHINOOK, inspect, sqlite_apply
from throwaway_servers import postgresql_server

from helpers import dbkeeper

if TYPE_CHECKING:
    from mariadb_server import MariaDBServer

    from dbkeeper.schema import Column, Enum, SchemaDefinition, Table
    from dbkeeper.schema.naming import Constraint

_SQLITE_VARCHAR = "{path}.type: varchar({n}) is VARCHAR({n}) on SQLite: the length is not enforced"
_SQLITE_DECIMAL = (
    "{path}.type: decimal(10, 2) is NUMERIC(10, 2) on SQLite: stored as an integer or an 8-byte float, not exactly"
)
#: Chinook's columns with a lossy SQLite type, in the order generate visits them (inspect
#: orders tables by name, columns as the table has them): column, and
#: varchar's length or ``decimal`` for decimal(10, 2).
_CHINOOK_SQLITE_LOSSY = """
album.title 160  artist.name 120
customer.first_name 40  customer.last_name 20  customer.company 80  customer.address 70  customer.city 40
customer.state 40  customer.country 40  customer.postal_code 10  customer.phone 24  customer.fax 24
customer.email 60
employee.last_name 20  employee.first_name 20  employee.title 30  employee.address 70  employee.city 40
employee.state 40  employee.country 40  employee.postal_code 10  employee.phone 24  employee.fax 24
employee.email 60
genre.name 120
invoice.billing_address 70  invoice.billing_city 40  invoice.billing_state 40  invoice.billing_country 40
invoice.billing_postal_code 10  invoice.total decimal
invoice_line.unit_price decimal
media_type.name 120  playlist.name 120
track.name 200  track.composer 220  track.unit_price decimal
"""


def _chinook_sqlite_notes() -> list[str]:
    """The notes of :data:`_CHINOOK_SQLITE_LOSSY`, as ``schema generate --dialect sqlite`` writes them."""
    words = _CHINOOK_SQLITE_LOSSY.split()
    notes = []
    for column, size in zip(words[::2], words[1::2], strict=True):
        table, name = column.split(".")
        path = f"tables.{table}.columns.{name}"
        notes.append(
            _SQLITE_DECIMAL.format(path=path) if size == "decimal" else _SQLITE_VARCHAR.format(path=path, n=size)
        )
    return notes


#: What ``schema generate`` must say on stderr for each sample inspected from PostgreSQL.
NOTES = {
    ("rich", "sqlite"): GENERATE_NOTES["sqlite"],  # the same as when generated from the file itself
    ("rich", "mysql"): GENERATE_NOTES["mysql"],
    ("chinook", "sqlite"): _chinook_sqlite_notes(),
    ("chinook", "mysql"): [],
}

#: SQLite's own type for a portable type whose mapping is lossy, as inspect reads it back
#: (docs/schema.md, 'Portable types' and 'What is read'): uuid is TEXT, timestamptz DATETIME, double REAL.
SQLITE_TYPES = {"uuid": "text", "timestamptz": "timestamp", "double": "float"}
#: The same on MariaDB: timestamptz is DATETIME(6), json a LONGTEXT (uuid's CHAR(36) reads back as uuid).
MARIADB_TYPES = {"timestamptz": "timestamp", "json": "text"}
#: How MariaDB reports the SQL of the feature-rich definition's views: it back-quotes and
#: qualifies every name and writes a view in its own words (its checks' back quotes inspect
#: removes). The keys are PostgreSQL's text; a text missing here fails the test.
MARIADB_SQL = {
    "SELECT order_lines.order_id,\n    sum(order_lines.quantity) AS items\n   FROM order_lines\n"
    "  GROUP BY order_lines.order_id": "select `order_lines`.`order_id` AS `order_id`,sum(`order_lines`.`quantity`) "
    "AS `items` from `order_lines` group by `order_lines`.`order_id`",
    "SELECT orders.id,\n    orders.placed_on\n   FROM orders\n  WHERE (orders.placed_on > (CURRENT_DATE - 30))": (
        "select `orders`.`id` AS `id`,`orders`.`placed_on` AS `placed_on` from `orders` where `orders`.`placed_on` > "
        "curdate() - 30"
    ),
}


def on_sqlite(definition: SchemaDefinition) -> SchemaDefinition:
    """*definition* as SQLite keeps it: lossy types, no comments, enums per column, the rowid."""
    from dbkeeper.schema import SchemaDefinition

    tables = {}
    for table in definition.tables.values():
        columns = {name: _rowid(table, _column(table, column, SQLITE_TYPES)) for name, column in table.columns.items()}
        columns = {name: replace(column, comment=None) for name, column in columns.items()}
        tables[table.name] = _conventional(replace(table, columns=columns, comment=None))
    views = {
        name: replace(view, sql=view.sql_for("sqlite"), dialects={}, comment=None)
        for name, view in definition.views.items()
    }
    return SchemaDefinition(tables, views, _column_enums(definition))


def on_mariadb(definition: SchemaDefinition) -> SchemaDefinition:
    """*definition* as MariaDB keeps it: lossy types, enums per column, no primary-key name,
    no expression indexes or ``where``, no view comments, views in MariaDB's words."""
    from dbkeeper.schema import SchemaDefinition

    tables = {}
    for table in definition.tables.values():
        columns = {name: _column(table, column, MARIADB_TYPES) for name, column in table.columns.items()}
        primary = replace(table.primary_key, name=None) if table.primary_key is not None else None
        indexes = tuple(replace(i, where=None) for i in table.indexes if len(i.column_names) == len(i.columns))
        changed = replace(table, columns=columns, primary_key=primary, indexes=indexes)
        tables[table.name] = _conventional(changed)
    views = {
        name: replace(view, sql=MARIADB_SQL[view.sql_for("mysql") or ""], dialects={}, comment=None)
        for name, view in definition.views.items()
    }
    return SchemaDefinition(tables, views, _column_enums(definition))


def _column(table: Table, column: Column, types: Mapping[str, str]) -> Column:
    """*column* with the engine's type: *types*, and an enum column's enum named ``<table>_<column>``."""
    from dbkeeper.schema import ColumnType

    if column.type.enum is not None:
        return replace(column, type=ColumnType("enum", enum=f"{table.name}_{column.name}"))
    if column.type.name in types:
        return replace(column, type=ColumnType(types[column.type.name]))
    return column


def _rowid(table: Table, column: Column) -> Column:
    """A one-column primary key that is an identity or an ``int`` is SQLite's rowid: ``int``, identity."""
    from dbkeeper.schema import ColumnType

    primary = table.primary_key.columns if table.primary_key is not None else ()
    if primary == (column.name,) and (column.identity or column.type.name == "int"):
        return replace(column, type=ColumnType("int"), identity=True)
    return column


def _column_enums(definition: SchemaDefinition) -> dict[str, Enum]:
    """SQLite and MySQL have no named enums: one enum ``<table>_<column>`` per enum column, without comment."""
    from dbkeeper.schema import Enum

    enums: dict[str, Enum] = {}
    for table in definition.tables.values():
        for column in table.columns.values():
            if column.type.enum is not None:
                name = f"{table.name}_{column.name}"
                enums[name] = Enum(name, definition.enums[column.type.enum].values)
    return enums


_Item = TypeVar("_Item", bound="Constraint")
_T = TypeVar("_T")


def _conventional(table: Table) -> Table:
    """*table* with the names the naming convention gives left out, as inspect leaves them out."""
    from dbkeeper.schema import constraint_name

    def plain(item: _Item) -> _Item:
        unnamed = replace(item, name=None)
        return unnamed if constraint_name(table, unnamed) == item.name else item

    return replace(
        table,
        primary_key=plain(table.primary_key) if table.primary_key is not None else None,
        unique=tuple(map(plain, table.unique)),
        foreign_keys=tuple(map(plain, table.foreign_keys)),
        indexes=tuple(map(plain, table.indexes)),
        checks={label: plain(check) for label, check in table.checks.items()},
    )


def ordered(definition: SchemaDefinition) -> str:
    """*definition* as YAML with its tables, views and enums sorted by name (engines list them differently)."""
    from dbkeeper.schema import dump_definition

    def by_name(items: Mapping[str, _T]) -> dict[str, _T]:
        return dict(sorted(items.items()))

    return dump_definition(
        replace(
            definition,
            tables=by_name(definition.tables),
            views=by_name(definition.views),
            enums=by_name(definition.enums),
        )
    )


@pytest.fixture(scope="module")
def from_postgresql(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The feature-rich definition and Chinook loaded into PostgreSQL, each inspected by the CLI to a YAML file."""
    work = tmp_path_factory.mktemp("postgresql")
    rich = work / "rich.yaml"
    rich.write_text(RICH)
    chinook = (CHINOOK / "Chinook_PostgreSql.sql").read_text(encoding="utf-8")
    skipped = ("DROP DATABASE", "CREATE DATABASE", "\\c ")  # the script makes its own database; we make one
    scripts = {
        "rich": dbkeeper("schema", "generate", str(rich), "--dialect", "postgresql").out,
        "chinook": "\n".join(line for line in chinook.splitlines() if not line.startswith(skipped)),
    }
    inspected = {}
    with postgresql_server() as pg:
        for name, script in scripts.items():
            pg.psql(f"CREATE DATABASE {name}")
            pg.psql(script, database=name)
            inspected[name] = work / f"{name}.yaml"
            dbkeeper("schema", "inspect", pg.url(name), "-o", str(inspected[name]))
    return inspected


def generate(path: Path, sample: str, dialect: str) -> str:
    """``schema generate PATH --dialect DIALECT``: its DDL; its stderr must be exactly the sample's notes."""
    run = dbkeeper("schema", "generate", str(path), "--dialect", dialect)
    assert run.err.splitlines() == [f"note: {note}" for note in NOTES[sample, dialect]]
    return run.out


@pytest.mark.parametrize("sample", ["chinook", "rich"])
def test_sqlite_accepts_the_postgresql_definition(
    sample: str, from_postgresql: dict[str, Path], tmp_path: Path
) -> None:
    from dbkeeper.schema import load_definition

    ddl = generate(from_postgresql[sample], sample, "sqlite")
    got = inspect(sqlite_apply(tmp_path, sample, ddl), tmp_path, "sqlite")
    want = on_sqlite(load_definition(from_postgresql[sample]))
    assert ordered(got) == ordered(want)
    assert got == want


@pytest.mark.parametrize("sample", ["chinook", "rich"])
def test_mariadb_accepts_the_postgresql_definition(
    sample: str, from_postgresql: dict[str, Path], mariadb: MariaDBServer, tmp_path: Path
) -> None:
    from dbkeeper.schema import load_definition

    ddl = generate(from_postgresql[sample], sample, "mysql")
    database = f"cross_{sample}"
    mariadb.recreate(database)
    subprocess.run(mariadb.client_argv(database), input=ddl, text=True, check=True, capture_output=True)
    got = inspect(mariadb.url(database), tmp_path, "mariadb")
    want = on_mariadb(load_definition(from_postgresql[sample]))
    assert ordered(got) == ordered(want)
    assert got == want
