"""``dbkeeper schema generate``: DDL that runs as it is on real SQLite, PostgreSQL and MariaDB.

A feature-rich definition (every portable type, literal and expression defaults, identity,
a composite primary key, a unique constraint, foreign keys with actions, a partial and an
expression index, checks, an enum, views, comments) is generated for each dialect by the
real command, applied to a fresh database with the engine's own client, and the tables,
columns, keys and indexes are then read back from the engine's catalog.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers import dbkeeper

if TYPE_CHECKING:
    from mariadb_server import MariaDBServer
    from pg_server import Server

RICH = """\
version: 1
enums:
  status:
    values: [new, "it's paid", shipped]
    comment: Where an order is.
tables:
  customers:
    comment: People who buy.
    columns:
      id: {type: bigint, identity: true, nullable: false}
      email: {type: varchar(200), nullable: false}
      name: {type: text, nullable: false, default: "O'Brien \\\\ Co", comment: Full name.}
      active: {type: bool, nullable: false, default: true}
      created_at: {type: timestamptz, nullable: false, default: {expression: CURRENT_TIMESTAMP}}
      external_id: {type: uuid}
    primary_key: [id]
    unique:
      - columns: [email]
    indexes:
      - columns: [{expression: lower(email)}]
        unique: true
  orders:
    columns:
      id: {type: int, identity: true, nullable: false}
      customer_id: {type: bigint, nullable: false}
      status: {type: enum(status), nullable: false, default: new}
      total: {type: "decimal(10, 2)", nullable: false, default: 0}
      discount: {type: float, default: 0.5}
      placed_on: {type: date}
    primary_key: [id]
    foreign_keys:
      - columns: [customer_id]
        references: {table: customers, columns: [id]}
        on_delete: cascade
    indexes:
      - columns: [customer_id, placed_on]
      - columns: [placed_on]
        where: total > 0
    checks:
      total_not_negative: total >= 0
  order_lines:
    columns:
      order_id: {type: int, nullable: false}
      line: {type: smallint, nullable: false}
      quantity: {type: int, nullable: false, default: 1}
      weight: {type: double}
      options: {type: json}
      picture: {type: bytes}
      ship_at: {type: time}
      scanned_at: {type: timestamp}
    primary_key: {columns: [order_id, line], name: order_lines_pkey}
    foreign_keys:
      - columns: [order_id]
        references: {table: orders, columns: [id]}
        on_delete: cascade
        on_update: no action
    checks:
      positive_quantity: {expression: quantity > 0, name: order_lines_quantity_check}
views:
  order_totals:
    sql: SELECT order_id, sum(quantity) AS items FROM order_lines GROUP BY order_id
    comment: Items per order.
  recent_orders:
    sql: SELECT id, placed_on FROM orders WHERE placed_on > CURRENT_DATE - 30
    dialects:
      sqlite: SELECT id, placed_on FROM orders WHERE placed_on > date('now', '-30 days')
"""

TABLES = ["customers", "orders", "order_lines"]
INDEXES = {"ix_customers_lower_email", "ix_orders_customer_id_placed_on", "ix_orders_placed_on"}

NOTES = {
    "sqlite": [
        "tables.customers.columns.email.type: varchar(200) is VARCHAR(200) on SQLite: the length is not enforced",
        "tables.customers.columns.name.comment: SQLite keeps no comments; left out",
        "tables.customers.columns.active.type: bool has no SQLite type; stored as BOOLEAN (INTEGER 0/1: any integer "
        "is accepted)",
        "tables.customers.columns.created_at.type: timestamptz has no SQLite type; stored as DATETIME (ISO 8601 text, "
        "UTC by convention, no zone)",
        "tables.customers.columns.external_id.type: uuid has no SQLite type; stored as TEXT (36 characters, not "
        "checked)",
        "tables.customers.comment: SQLite keeps no comments; left out",
        "tables.orders.columns.total.type: decimal(10, 2) is NUMERIC(10, 2) on SQLite: stored as an integer or an "
        "8-byte float, not exactly",
        "tables.orders.columns.discount.type: float is REAL on SQLite: 8 bytes, not 4",
        "enums.status.comment: SQLite keeps no enum comments; left out",
        "views.order_totals.comment: SQLite keeps no view comments; left out",
    ],
    "postgresql": [],
    "mysql": [
        "tables.customers.columns.created_at.type: timestamptz has no MySQL type; stored as DATETIME(6) (UTC by "
        "convention, no zone)",
        "tables.customers.columns.external_id.type: uuid has no MySQL type; stored as CHAR(36) (36 characters, not "
        "checked)",
        "tables.customers.indexes.0: MariaDB has no expression indexes (MySQL 8.0.13 has); left out",
        "tables.orders.indexes.1.where: MySQL has no partial indexes; the index covers every row",
        "enums.status.comment: MySQL keeps no enum comments; left out",
        "views.order_totals.comment: MySQL keeps no view comments; left out",
    ],
}


@pytest.fixture
def rich(tmp_path: Path) -> Path:
    """The feature-rich definition as a file."""
    path = tmp_path / "rich.yaml"
    path.write_text(RICH)
    return path


def generate(path: Path, dialect: str) -> str:
    """``schema generate`` for *dialect*: the DDL; its stderr must be exactly the expected notes."""
    run = dbkeeper("schema", "generate", str(path), "--dialect", dialect)
    assert run.err.splitlines() == [f"note: {note}" for note in NOTES[dialect]]
    assert run.out.endswith(";\n")
    return run.out


def test_sqlite_runs_the_ddl_as_it_is(rich: Path, tmp_path: Path) -> None:
    ddl = generate(rich, "sqlite")
    database = tmp_path / "rich.db"
    subprocess.run(["sqlite3", "-bail", str(database)], input=ddl, text=True, check=True, capture_output=True)
    db = sqlite3.connect(database)
    objects = db.execute(
        "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY rowid"
    ).fetchall()
    assert [name for kind, name in objects if kind == "table"] == TABLES  # dependency order
    assert {name for kind, name in objects if kind == "view"} == {"order_totals", "recent_orders"}
    assert {name for kind, name in objects if kind == "index"} == INDEXES
    columns = {row[1]: row[2] for row in db.execute("PRAGMA table_info(customers)")}
    assert columns == {
        "id": "INTEGER", "email": "VARCHAR(200)", "name": "TEXT", "active": "BOOLEAN", "created_at": "DATETIME",
        "external_id": "TEXT",
    }  # fmt: skip
    assert [row[1:5] for row in db.execute("PRAGMA table_info(order_lines)") if row[5]] == [
        ("order_id", "INTEGER", 1, None), ("line", "SMALLINT", 1, None)
    ]  # fmt: skip
    keys = db.execute("PRAGMA foreign_key_list(orders)").fetchall()
    assert [(row[2], row[3], row[4], row[6]) for row in keys] == [("customers", "customer_id", "id", "CASCADE")]
    partial = {row[1]: row[4] for row in db.execute("PRAGMA index_list(orders)")}
    assert partial["ix_orders_placed_on"] == 1
    # identity (the rowid), literal and expression defaults, the enum's check, the named check
    db.execute("INSERT INTO customers (email) VALUES ('a@example.com')")
    assert db.execute("SELECT id, name, active, created_at IS NOT NULL FROM customers").fetchall() == [
        (1, "O'Brien \\ Co", 1, 1)
    ]
    db.execute("INSERT INTO orders (customer_id) VALUES (1)")
    assert db.execute("SELECT id, status, total, discount FROM orders").fetchall() == [(1, "new", 0, 0.5)]
    with pytest.raises(sqlite3.IntegrityError, match="ck_orders_status_enum"):
        db.execute("INSERT INTO orders (customer_id, status) VALUES (1, 'lost')")
    with pytest.raises(sqlite3.IntegrityError, match="order_lines_quantity_check"):
        db.execute("INSERT INTO order_lines (order_id, line, quantity) VALUES (1, 1, 0)")


def test_postgresql_runs_the_ddl_as_it_is(rich: Path, pg: Server) -> None:
    ddl = generate(rich, "postgresql")
    pg.psql("CREATE DATABASE rich")
    pg.psql(ddl, database="rich")  # psql -v ON_ERROR_STOP=1

    def rows(sql: str) -> list[list[str]]:
        return [line.split("|") for line in pg.psql(sql, database="rich").splitlines()]

    assert rows("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                "AND table_type = 'BASE TABLE' ORDER BY 1") == [[t] for t in sorted(TABLES)]  # fmt: skip
    types = dict(map(tuple, rows(
        "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public'"
    )))  # fmt: skip
    assert types["customers.id"] == "bigint"
    assert types["customers.created_at"] == "timestamp with time zone"
    assert types["customers.external_id"] == "uuid"
    assert types["orders.status"] == "USER-DEFINED"
    assert types["orders.total"] == "numeric"
    assert types["orders.discount"] == "real"
    assert types["order_lines.options"] == "jsonb"
    assert types["order_lines.picture"] == "bytea"
    assert types["order_lines.ship_at"] == "time without time zone"
    assert types["order_lines.scanned_at"] == "timestamp without time zone"
    assert rows("SELECT enum_range(NULL::status)") == [['{new,"it\'s paid",shipped}']]
    assert rows("SELECT is_identity FROM information_schema.columns WHERE table_name = 'customers' "
                "AND column_name = 'id'") == [["YES"]]  # fmt: skip
    assert rows("SELECT constraint_name, delete_rule FROM information_schema.referential_constraints ORDER BY 1") == [
        ["fk_order_lines_order_id_orders", "CASCADE"], ["fk_orders_customer_id_customers", "CASCADE"]
    ]  # fmt: skip
    indexes = dict(map(tuple, rows("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")))
    assert INDEXES | {"pk_customers", "uq_customers_email", "pk_orders", "order_lines_pkey"} == set(indexes)
    assert indexes["ix_orders_placed_on"].endswith("WHERE (total > (0)::numeric)")
    assert "lower((email)::text)" in indexes["ix_customers_lower_email"]
    assert rows("SELECT obj_description('customers'::regclass), col_description('customers'::regclass, 3), "
                "obj_description('order_totals'::regclass), obj_description('status'::regtype)") == [
        ["People who buy.", "Full name.", "Items per order.", "Where an order is."]
    ]  # fmt: skip
    pg.psql("INSERT INTO customers (email) VALUES ('a@example.com'); INSERT INTO orders (customer_id) VALUES (1)",
            database="rich")  # fmt: skip
    assert rows("SELECT c.id, name, active, status, total FROM customers c JOIN orders ON customer_id = c.id") == [
        ["1", "O'Brien \\ Co", "t", "new", "0.00"]
    ]
    assert rows("SELECT count(*) FROM recent_orders") == [["0"]]


def test_mariadb_runs_the_ddl_as_it_is(rich: Path, mariadb: MariaDBServer) -> None:
    ddl = generate(rich, "mysql")
    mariadb.recreate("rich")
    mariadb.load_sql("rich", ddl.encode())  # the mariadb client

    def rows(sql: str) -> list[tuple[object, ...]]:
        return mariadb.execute(sql, database="rich")

    assert set(rows("SELECT table_name FROM information_schema.tables WHERE table_schema = 'rich' "
                    "AND table_type = 'BASE TABLE'")) == {(t,) for t in TABLES}  # fmt: skip
    types = dict(rows("SELECT concat(table_name, '.', column_name), column_type FROM information_schema.columns "
                      "WHERE table_schema = 'rich'"))  # fmt: skip
    assert types["customers.created_at"] == "datetime(6)"
    assert types["customers.external_id"] == "char(36)"
    assert types["customers.name"] == "longtext"
    assert types["orders.status"] == "enum('new','it''s paid','shipped')"
    assert types["orders.total"] == "decimal(10,2)"
    assert types["order_lines.ship_at"] == "time(6)"
    assert types["order_lines.picture"] == "longblob"
    assert rows("SELECT extra FROM information_schema.columns WHERE table_schema = 'rich' "
                "AND table_name = 'customers' AND column_name = 'id'") == [("auto_increment",)]  # fmt: skip
    assert set(rows("SELECT constraint_name, delete_rule FROM information_schema.referential_constraints "
                    "WHERE constraint_schema = 'rich'")) == {
        ("fk_order_lines_order_id_orders", "CASCADE"), ("fk_orders_customer_id_customers", "CASCADE")
    }  # fmt: skip
    indexes = {row[0] for row in rows("SELECT DISTINCT index_name FROM information_schema.statistics "
                                      "WHERE table_schema = 'rich'")}  # fmt: skip
    assert {"ix_orders_customer_id_placed_on", "ix_orders_placed_on", "uq_customers_email", "PRIMARY"} <= indexes
    assert rows("SELECT table_comment FROM information_schema.tables WHERE table_schema = 'rich' "
                "AND table_name = 'customers'") == [("People who buy.",)]  # fmt: skip
    rows("INSERT INTO customers (email) VALUES ('a@example.com')")
    rows("INSERT INTO orders (customer_id) VALUES (1)")
    assert rows(
        "SELECT c.id, name, active, status, total, discount FROM customers c JOIN orders ON customer_id = c.id"
    ) == [(1, "O'Brien \\ Co", 1, "new", pytest.approx(0), 0.5)]
    assert rows("SELECT count(*) FROM recent_orders") == [(0,)]


AWKWARD = """\
enums:
  Kind:
    values: [a, b]
tables:
  order:
    columns:
      group: {type: varchar(20), nullable: false}
      line: {type: int, identity: true, nullable: false}
      kind: {type: enum(Kind), default: a}
      select: {type: text, default: "it's"}
      day: {type: date, default: {expression: CURRENT_DATE}}
      code: {type: varchar(20), default: {expression: "lower('X')"}}
    primary_key: [group, line]
    checks:
      positive: line > 0
views:
  user:
    sql: SELECT "group", kind FROM "order"
    dialects:
      mysql: SELECT `group`, kind FROM `order`
"""


def test_reserved_and_mixed_case_names_are_quoted(tmp_path: Path, pg: Server, mariadb: MariaDBServer) -> None:
    path = tmp_path / "awkward.yaml"
    path.write_text(AWKWARD)
    ddl = {
        d: dbkeeper("schema", "generate", str(path), "--dialect", d, "-q").out
        for d in ("sqlite", "postgresql", "mysql")
    }
    db = sqlite3.connect(tmp_path / "awkward.db")
    db.executescript(ddl["sqlite"])
    db.execute("""INSERT INTO "order" ("group", line) VALUES ('x', 1)""")
    assert db.execute('SELECT "group", line, kind, "select", code, day IS NOT NULL FROM "order"').fetchall() == [
        ("x", 1, "a", "it's", "x", 1)
    ]
    assert db.execute("SELECT * FROM user").fetchall() == [("x", "a")]
    pg.psql("CREATE DATABASE awkward")
    pg.psql(ddl["postgresql"] + """INSERT INTO "order" ("group") VALUES ('x');""", database="awkward")
    assert pg.psql('SELECT "group", line, kind, "select", code, day IS NOT NULL FROM "order"; SELECT * FROM "user"',
                   database="awkward").splitlines() == [
        "x|1|a|it's|x|t", "x|a"
    ]  # fmt: skip
    mariadb.recreate("awkward")
    mariadb.load_sql("awkward", ddl["mysql"].encode())
    mariadb.execute("INSERT INTO `order` (`group`, line) VALUES ('x', 1)", database="awkward")
    assert mariadb.execute(
        "SELECT `group`, line, kind, `select`, code, day IS NOT NULL FROM `order`", database="awkward"
    ) == [("x", 1, "a", "it's", "x", 1)]
    # identity outside a one-column (SQLite) or first (MySQL) primary key column: said, not numbered
    sqlite_notes = dbkeeper("schema", "generate", str(path), "--dialect", "sqlite").err.splitlines()
    mysql_notes = dbkeeper("schema", "generate", str(path), "--dialect", "mysql").err.splitlines()
    assert (
        "note: tables.order.columns.line.identity: SQLite numbers only a one-column INTEGER PRIMARY KEY; not "
        "numbered" in sqlite_notes
    )
    assert (
        "note: tables.order.columns.line.identity: MySQL numbers only the first column of the primary key; not "
        "numbered" in mysql_notes
    )


def test_the_output_is_the_same_on_every_run(rich: Path, tmp_path: Path) -> None:
    for dialect in ("sqlite", "postgresql", "mysql"):
        first = dbkeeper("schema", "generate", str(rich), "--dialect", dialect).out
        assert dbkeeper("schema", "generate", str(rich), "--dialect", dialect).out == first
        out = tmp_path / f"{dialect}.sql"
        dbkeeper("schema", "generate", str(rich), "--dialect", dialect, "-o", str(out))
        assert out.read_text() == first
        assert out.stat().st_mode & 0o777 == 0o644  # the test process's umask is 022: no secret
        quiet = dbkeeper("schema", "generate", str(rich), "--dialect", dialect, "-q")
        assert (quiet.out, quiet.err) == (first, "")  # --quiet: no notes


def test_a_bad_definition_gives_the_validation_lines(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tables:\n  orders:\n    columns: {id: {type: money2, nullable: maybe}}\n")
    run = dbkeeper("schema", "generate", str(bad), "--dialect", "postgresql", check=False)
    assert (run.code, run.out) == (1, "")
    assert run.err.splitlines() == [
        "error: tables.orders.columns.id.type: unknown type 'money2' (portable types: bool, smallint, int, bigint, "
        "decimal(p, s), float, double, text, varchar(n), bytes, date, time, timestamp, timestamptz, json, uuid, "
        "enum(name))",
        "error: tables.orders.columns.id.nullable: 'maybe' is not of type 'boolean'",
    ]


def test_what_an_engine_cannot_express_is_an_error_line(tmp_path: Path) -> None:
    wide = tmp_path / "wide.yaml"
    wide.write_text('tables:\n  t:\n    columns: {amount: {type: "decimal(70, 2)"}}\n')
    assert dbkeeper("schema", "generate", str(wide), "--dialect", "postgresql").code == 0
    run = dbkeeper("schema", "generate", str(wide), "--dialect", "mysql", check=False)
    assert (run.code, run.out) == (1, "")
    assert run.err == (
        "error: tables.t.columns.amount.type: decimal(70, 2): "
        "MySQL's DECIMAL allows a precision up to 65 and a scale up to 30\n"
    )


def test_what_mysql_refuses_is_an_error_line(tmp_path: Path) -> None:
    notes = tmp_path / "notes.yaml"
    notes.write_text(
        "tables:\n  parents:\n    columns: {id: {type: int}, code: {type: text}}\n    primary_key: [id]\n"
        "  notes:\n    columns: {id: {type: int}, body: {type: text}, parent: {type: int, default: 0}}\n"
        "    unique: [{columns: [body]}]\n    indexes: [{columns: [id, body]}]\n"
        "    foreign_keys: [{columns: [parent], references: {table: parents, columns: [id]}, on_delete: set default}]\n"
    )
    assert dbkeeper("schema", "generate", str(notes), "--dialect", "sqlite", "-q").err == ""
    run = dbkeeper("schema", "generate", str(notes), "--dialect", "mysql", check=False)
    assert (run.code, run.out) == (1, "")
    assert run.err.splitlines() == [
        "error: tables.notes.unique.0: MySQL cannot index the text column 'body' (no prefix length); use varchar(n)",
        "error: tables.notes.indexes.0: MySQL cannot index the text column 'body' (no prefix length); use varchar(n)",
        "error: tables.notes.foreign_keys.0.on_delete: MySQL (InnoDB) refuses 'set default'",
    ]


def test_usage_errors_exit_2(rich: Path) -> None:
    assert dbkeeper("schema", "generate", str(rich), check=False).code == 2  # --dialect is required
    assert dbkeeper("schema", "generate", str(rich), "--dialect", "oracle", check=False).code == 2


def test_the_python_api() -> None:
    from dbkeeper import SchemaGenerator, generate_schema
    from dbkeeper.schema import parse_definition

    definition = parse_definition(RICH)
    ddl = generate_schema(definition, "sqlite")
    assert ddl.warnings == NOTES["sqlite"]
    assert ddl.statements[0].startswith("CREATE TABLE customers (")
    assert all(statement.endswith(";") for statement in ddl.statements)
    assert SchemaGenerator("sqlite").generate(definition) == ddl
