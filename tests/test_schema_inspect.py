"""``dbkeeper schema inspect``: a live database read back into a definition, on SQLite, PostgreSQL and MariaDB.

Round trips: the feature-rich definition of test_schema_generate → ``schema generate`` →
applied to an empty database → ``schema inspect`` gives the definition back (with the
documented normalisation); and the inspected definition (and Chinook's) → generate →
applied to another empty database → inspect gives an equal definition again.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from test_schema_generate import RICH

from helpers import dbkeeper

if TYPE_CHECKING:
    from mariadb_server import MariaDBServer
    from pg_server import Server

    from dbkeeper.schema import SchemaDefinition

CHINOOK = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "chinook"


def inspect(url: str, tmp_path: Path, name: str) -> SchemaDefinition:
    """``schema inspect URL -o FILE``, the file validated and loaded."""
    from dbkeeper.schema import load_definition

    path = tmp_path / f"{name}.yaml"
    dbkeeper("schema", "inspect", url, "-o", str(path))
    dbkeeper("schema", "validate", str(path))
    return load_definition(path)


def generate(definition: SchemaDefinition, dialect: str, tmp_path: Path, name: str) -> str:
    """The DDL ``schema generate`` writes for *definition* (dumped to a file first)."""
    from dbkeeper.schema import dump_definition

    path = tmp_path / f"{name}.yaml"
    path.write_text(dump_definition(definition))
    return dbkeeper("schema", "generate", str(path), "--dialect", dialect).out


def sqlite_apply(tmp_path: Path, name: str, sql: str) -> str:
    """*sql* run by ``sqlite3 -bail`` into a new database; its URL."""
    path = tmp_path / f"{name}.db"
    subprocess.run(["sqlite3", "-bail", str(path)], input=sql, text=True, check=True)
    return f"sqlite:///{path}"


def round_trip(
    first: SchemaDefinition, dialect: str, apply: Callable[[str, str], str], tmp_path: Path
) -> SchemaDefinition:
    """*first* → generate → applied to an empty database → inspect; the result must equal *first*."""
    again = inspect(apply("second", generate(first, dialect, tmp_path, "first")), tmp_path, "second")
    assert again == first
    return again


def test_sqlite_gives_the_definition_back(tmp_path: Path) -> None:
    from dbkeeper.schema import parse_definition

    rich = tmp_path / "rich.yaml"
    rich.write_text(RICH)
    ddl = dbkeeper("schema", "generate", str(rich), "--dialect", "sqlite").out
    got = inspect(sqlite_apply(tmp_path, "rich", ddl), tmp_path, "got")
    want = parse_definition(NORMALISED_SQLITE)
    assert got == want
    round_trip(got, "sqlite", lambda n, sql: sqlite_apply(tmp_path, n, sql), tmp_path)


def test_postgresql_round_trip(tmp_path: Path, pg: Server) -> None:
    rich = tmp_path / "rich.yaml"
    rich.write_text(RICH)
    pg.psql("CREATE DATABASE rich")
    pg.psql(dbkeeper("schema", "generate", str(rich), "--dialect", "postgresql").out, database="rich")
    got = inspect(pg.url("rich"), tmp_path, "got")
    from dbkeeper.schema import load_definition

    original = load_definition(rich)
    assert got.enums == original.enums
    assert set(got.tables) == set(original.tables)
    for name, table in original.tables.items():
        assert got.tables[name].columns == table.columns, name
        assert got.tables[name].foreign_keys == tuple(
            key if key.on_update != "no action" else type(key)(**{**key.__dict__, "on_update": None})
            for key in table.foreign_keys
        )
        # PostgreSQL's casts (lower(email::text), total > (0)::numeric, total >= 0::numeric) are removed
        assert got.tables[name].indexes == table.indexes, name
        expressions = [(c.name, c.expression) for c in got.tables[name].checks.values()]
        assert expressions == [(c.name, c.expression) for c in table.checks.values()], name  # labels differ
        assert got.tables[name].comment == table.comment
    assert got.views["order_totals"].comment == original.views["order_totals"].comment == "Items per order."
    round_trip(got, "postgresql", lambda n, sql: _pg_apply(pg, n, sql), tmp_path)


_numbers = itertools.count(1)


def _pg_apply(pg: Server, name: str, sql: str) -> str:
    """*sql* run by psql into a new database; its URL."""
    name = f"{name}_{next(_numbers)}"
    pg.psql(f"CREATE DATABASE {name}")
    pg.psql(sql, database=name)
    return pg.url(name)


def _maria_apply(mariadb: MariaDBServer, name: str, sql: str) -> str:
    """*sql* run by the mariadb client into a new database; its URL."""
    name = f"{name}_{next(_numbers)}"
    mariadb.recreate(name)
    mariadb.load_sql(name, sql.encode())
    return mariadb.url(name)


def test_mariadb_round_trip(tmp_path: Path, mariadb: MariaDBServer) -> None:
    rich = tmp_path / "rich.yaml"
    rich.write_text(RICH)
    url = _maria_apply(mariadb, "rich", dbkeeper("schema", "generate", str(rich), "--dialect", "mysql").out)
    got = inspect(url, tmp_path, "got")
    assert got.enums["orders_status"].values == ("new", "it's paid", "shipped")
    assert str(got.tables["orders"].columns["status"].type) == "enum(orders_status)"
    from dbkeeper.schema import load_definition

    original = load_definition(rich).tables["customers"]
    customers = got.tables["customers"]
    assert customers.columns["name"] == original.columns["name"]  # a default with ' and \, a comment
    assert (customers.comment, customers.unique) == (original.comment, original.unique)
    round_trip(got, "mysql", lambda n, sql: _maria_apply(mariadb, n, sql), tmp_path)


def test_chinook_sqlite(tmp_path: Path) -> None:
    database = tmp_path / "chinook.db"
    subprocess.run(["sqlite3", str(database)], stdin=(CHINOOK / "Chinook_Sqlite.sql").open("rb"), check=True)
    got = inspect(f"sqlite:///{database}", tmp_path, "chinook")
    assert len(got.tables) == 11
    round_trip(got, "sqlite", lambda n, sql: sqlite_apply(tmp_path, n, sql), tmp_path)


def test_chinook_postgresql(tmp_path: Path, pg: Server) -> None:
    pg.psql("CREATE DATABASE chinook")
    script = (CHINOOK / "Chinook_PostgreSql.sql").read_text(encoding="utf-8")
    skipped = ("DROP DATABASE", "CREATE DATABASE", "\\c ")  # it makes its own database; we made one
    pg.psql("\n".join(line for line in script.splitlines() if not line.startswith(skipped)), database="chinook")
    got = inspect(pg.url("chinook"), tmp_path, "chinook")
    assert len(got.tables) == 11
    round_trip(got, "postgresql", lambda n, sql: _pg_apply(pg, n, sql), tmp_path)


def test_chinook_mariadb(tmp_path: Path, mariadb: MariaDBServer) -> None:
    mariadb.recreate("chinook")
    script = (CHINOOK / "Chinook_MySql.sql").read_bytes()
    mariadb.load_sql("chinook", re.sub(rb"(?mi)^(DROP DATABASE|CREATE DATABASE|USE)\b.*$", b"", script))
    got = inspect(mariadb.url("chinook"), tmp_path, "chinook")
    assert len(got.tables) == 11
    round_trip(got, "mysql", lambda n, sql: _maria_apply(mariadb, n, sql), tmp_path)


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    run = dbkeeper("schema", "inspect", "postgresql://nobody@127.0.0.1:1/none", check=False)
    assert run.code == 1
    assert run.out == ""
    assert len(run.err.splitlines()) == 1
    assert run.err.startswith("error: cannot inspect postgresql://nobody@127.0.0.1:1/none: ")


def test_sql_format_and_dmp_dbkeeper_own_tables_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        db.execute("CREATE TABLE _migrations (id TEXT)")
    run = dbkeeper("schema", "inspect", f"sqlite:///{path}", "--format", "sql", "--dialect", "postgresql")
    assert run.out == (
        "CREATE TABLE t (\n    id INTEGER GENERATED BY DEFAULT AS IDENTITY,\n    name TEXT NOT NULL,\n"
        "    CONSTRAINT pk_t PRIMARY KEY (id)\n);\n"
    )
    assert '"tables"' in dbkeeper("schema", "inspect", f"sqlite:///{path}", "--format", "json").out


#: What SQLite gives back: int rowid, timestamp, text, float, enum orders_status, no comments,
#: the named check labelled by its name, the view's SQLite SQL.
NORMALISED_SQLITE = """\
version: 1
enums:
  orders_status: {values: [new, it's paid, shipped]}
tables:
  customers:
    columns:
      id: {type: int, nullable: false, identity: true}
      email: {type: varchar(200), nullable: false}
      name: {type: text, nullable: false, default: O'Brien \\ Co}
      active: {type: bool, nullable: false, default: true}
      created_at:
        type: timestamp
        nullable: false
        default: {expression: CURRENT_TIMESTAMP}
      external_id: {type: text}
    primary_key: [id]
    unique:
    - {columns: [email]}
    indexes:
    - columns:
      - {expression: lower(email)}
      unique: true
  order_lines:
    columns:
      order_id: {type: int, nullable: false}
      line: {type: smallint, nullable: false}
      quantity: {type: int, nullable: false, default: 1}
      weight: {type: float}
      options: {type: json}
      picture: {type: bytes}
      ship_at: {type: time}
      scanned_at: {type: timestamp}
    primary_key: {columns: [order_id, line], name: order_lines_pkey}
    foreign_keys:
    - columns: [order_id]
      references: {table: orders, columns: [id]}
      on_delete: cascade
    checks:
      order_lines_quantity_check: {expression: quantity > 0, name: order_lines_quantity_check}
  orders:
    columns:
      id: {type: int, nullable: false, identity: true}
      customer_id: {type: bigint, nullable: false}
      status: {type: enum(orders_status), nullable: false, default: new}
      total: {type: 'decimal(10, 2)', nullable: false, default: 0}
      discount: {type: float, default: 0.5}
      placed_on: {type: date}
    primary_key: [id]
    foreign_keys:
    - columns: [customer_id]
      references: {table: customers, columns: [id]}
      on_delete: cascade
    indexes:
    - {columns: [customer_id, placed_on]}
    - {columns: [placed_on], where: total > 0}
    checks: {total_not_negative: total >= 0}
views:
  order_totals:
    sql: SELECT order_id, sum(quantity) AS items FROM order_lines GROUP BY order_id
  recent_orders:
    sql: SELECT id, placed_on FROM orders WHERE placed_on > date('now', '-30 days')
"""


def test_sqlite_column_constraints_and_unnamed_checks(tmp_path: Path) -> None:
    """UNIQUE and REFERENCES … ON DELETE written on a column (SQLAlchemy misses both); an unnamed check."""
    from dbkeeper.schema import Check, ForeignKey, UniqueConstraint

    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(255) NOT NULL UNIQUE);"
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers (id) "
            "ON DELETE CASCADE, total NUMERIC(10, 2) NOT NULL DEFAULT 0 CHECK (total >= 0));"
        )
    got = inspect(f"sqlite:///{path}", tmp_path, "shop")
    assert got.tables["customers"].unique == (UniqueConstraint(("email",)),)
    assert got.tables["orders"].foreign_keys == (ForeignKey(("customer_id",), "customers", ("id",), "cascade"),)
    assert got.tables["orders"].checks == {"check_0": Check("check_0", "total >= 0", name=None)}
    round_trip(got, "sqlite", lambda n, sql: sqlite_apply(tmp_path, n, sql), tmp_path)


def test_a_type_with_no_portable_type_is_an_error_line(tmp_path: Path, pg: Server) -> None:
    pg.psql("CREATE DATABASE odd")
    pg.psql("CREATE TABLE hosts (id int PRIMARY KEY, address inet, tags text[])", database="odd")
    run = dbkeeper("schema", "inspect", pg.url("odd"), check=False)
    assert (run.code, run.out) == (1, "")
    assert run.err.splitlines() == [
        "error: tables.hosts.columns.address.type: INET has no portable type",
        "error: tables.hosts.columns.tags.type: TEXT[] has no portable type",
    ]


#: Checks as a user writes them on PostgreSQL, which inspect must give back as they are:
#: PostgreSQL stores each with the casts it adds (``n >= 0::numeric``,
#: ``'-1'::integer``, ``v::text <> ''::text``, ``~~``), which inspect removes.
PG_PORTABLE = (
    "n >= 0 AND n <= 10",
    "n > -1",
    "i > -1",
    "b > -5",
    "r > 0.5",
    "d > 0.1",
    "v <> ''",
    "t <> 'x'",
    "length(v) > 2",
    "s <> 'a'",
    "dt > '2020-01-01'",
    "ts > '2020-01-01 10:00:00'",
    "u <> '00000000-0000-0000-0000-000000000000'",
    "v IN ('x', 'it''s')",
    "i NOT IN (1, 2)",
    "t NOT IN ('a', 'b')",
)
#: Checks PostgreSQL gives back in other words: the casts a user wrote on purpose, which
#: change the result, kept as PostgreSQL writes them; its own layout of a CASE.
PG_WRITTEN_BACK = {
    "i / 2::numeric > 1": "(i::numeric / 2::numeric) > 1::numeric",  # no integer division
    "ts::date > '2020-01-01'": "ts::date > '2020-01-01'::date",  # a cast of a column
    "v = 'abcdef'::varchar(3)": "v = 'abcdef'::character varying(3)::text",  # truncates
    "t = 'a '::bpchar": "t = 'a '::bpchar::text",  # trailing spaces dropped
    "CASE WHEN n > 0 THEN t <> 'x' ELSE true END": "CASE\n    WHEN n > 0 THEN t <> 'x'\n    ELSE true\nEND",
}


def test_postgresql_casts_it_added_are_removed(tmp_path: Path, pg: Server) -> None:
    """Each check comes back as written; kept casts stay; the text PostgreSQL re-reads gives the same back."""
    checks = [*PG_PORTABLE, *PG_WRITTEN_BACK]
    labelled = ", ".join(f"CONSTRAINT c{n} CHECK ({sql})" for n, sql in enumerate(checks))
    pg.psql("CREATE DATABASE casts")
    pg.psql(
        "CREATE TYPE st AS ENUM ('a', 'b');"
        "CREATE TABLE p (i int, b bigint, n numeric(10, 2), r real, d double precision, v varchar(20), t text,"
        f" dt date, ts timestamp, s st, u uuid, {labelled});"
        "CREATE INDEX p_v ON p (lower(v), upper(t)) WHERE v LIKE 'a%' AND n > 0 AND s = 'b';"
        "CREATE TABLE q (id int PRIMARY KEY DEFAULT -1, code varchar(10) DEFAULT '5%', at date DEFAULT '2020-01-01',"
        " label text DEFAULT lower('X'));",
        database="casts",
    )
    got = inspect(pg.url("casts"), tmp_path, "casts")
    from dbkeeper.schema import Expression

    table = got.tables["p"]
    assert {check.name: check.expression for check in table.checks.values()} == {
        f"c{n}": want for n, want in enumerate([*PG_PORTABLE, *PG_WRITTEN_BACK.values()])
    }
    (index,) = table.indexes
    assert [str(getattr(c, "sql", c)) for c in index.columns] == ["lower(v)", "upper(t)"]
    assert index.where == "(v LIKE 'a%') AND (n > 0) AND (s = 'b')"
    defaults = {name: column.default for name, column in got.tables["q"].columns.items()}
    assert defaults == {"id": -1, "code": "5%", "at": "2020-01-01", "label": Expression("lower('X')")}
    round_trip(got, "postgresql", lambda n, sql: _pg_apply(pg, n, sql), tmp_path)
    portable = {k: c for k, c in table.checks.items() if int((c.name or "")[1:]) < len(PG_PORTABLE)}
    only_portable = replace(got, tables={**got.tables, "p": replace(table, checks=portable)})
    sqlite_apply(tmp_path, "casts", generate(only_portable, "sqlite", tmp_path, "portable"))


def test_mariadb_checks_come_back_as_sql(tmp_path: Path, mariadb: MariaDBServer, pg: Server) -> None:
    """MariaDB's back quotes are removed where no engine needs them, its escaped quote is doubled."""
    url = _maria_apply(
        mariadb,
        "checks",
        "CREATE TABLE m (id int PRIMARY KEY, `order` int, name varchar(20),"
        " CONSTRAINT c1 CHECK (`order` > 0), CONSTRAINT c2 CHECK (name <> 'O''Brien'),"
        " CONSTRAINT c3 CHECK (name LIKE 'a%' AND id >= 1 AND id % 2 = 1));",
    )
    got = inspect(url, tmp_path, "checks")
    table = got.tables["m"]
    assert {check.name: check.expression for check in table.checks.values()} == {
        "c1": "`order` > 0",  # a reserved word: quoted as MySQL quotes it
        "c2": "name <> 'O''Brien'",
        "c3": "name like 'a%' and id >= 1 and id % 2 = 1",
    }
    round_trip(got, "mysql", lambda n, sql: _maria_apply(mariadb, n, sql), tmp_path)
    portable = replace(table, checks={k: c for k, c in table.checks.items() if c.name != "c1"})
    only_portable = replace(got, tables={"m": portable})
    sqlite_apply(tmp_path, "checks", generate(only_portable, "sqlite", tmp_path, "sqlite"))
    _pg_apply(pg, "checks", generate(only_portable, "postgresql", tmp_path, "postgresql"))
