"""``dbkeeper schema diff``: a live database against a definition, written as a migration, applied and reversed.

On SQLite, PostgreSQL and MariaDB (one throwaway server per module): V1 is generated and
filled with rows; V2 adds a column, widens a type, adds an index and a foreign key,
renames a table and a column by hint, adds an enum value and changes a view. ``schema diff
DB V2 --write-migration`` → ``migrate up`` → a second diff finds nothing → ``migrate
down`` → ``schema inspect`` gives exactly what it gave before; the rows survive renames
and SQLite's rebuilds. Then what is refused (destructive changes, a SQLite table with a
trigger), drift after a manual ALTER TABLE, the JSON shape and the usage errors.
"""

from __future__ import annotations

import itertools
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers import dbkeeper

if TYPE_CHECKING:
    from mariadb_server import MariaDBServer
    from pg_server import Server

    from dbkeeper.schema import SchemaDefinition

V1 = """\
tables:
  customers:
    columns:
      id: {type: int, identity: true, nullable: false}
      name: {type: varchar(100), nullable: false}
      status: {type: enum(customers_status), default: new}
    primary_key: [id]
  addresses:
    columns:
      id: {type: int, identity: true, nullable: false}
      customer_id: {type: int, nullable: false}
      city: {type: varchar(50)}
    primary_key: [id]
    foreign_keys:
      - columns: [customer_id]
        references: {table: customers, columns: [id]}
        on_delete: cascade
    indexes:  # of its own; purchases has none: InnoDB makes one named after the key, inspect leaves it out
      - columns: [customer_id]
  orders:
    columns:
      id: {type: int, identity: true, nullable: false}
      customer_id: {type: int}
      total: {type: "decimal(10, 2)"}
    primary_key: [id]
views:
  big_orders:
    sql: SELECT id, total FROM orders WHERE total > 100
    dialects:  # as the engine reads it back (engines rewrite a view's SQL), so that a second diff finds nothing
      postgresql: "SELECT orders.id,\\n    orders.total\\n   FROM orders\\n  WHERE (orders.total > (100)::numeric)"
      mysql: "select `orders`.`id` AS `id`,`orders`.`total` AS `total` from `orders` where `orders`.`total` > 100"
enums:
  customers_status:
    values: [new, active]
"""

V2 = """\
tables:
  customers:
    columns:
      id: {type: int, identity: true, nullable: false}
      full_name: {type: varchar(200), nullable: false, renamed_from: name}
      status: {type: enum(customers_status), default: new}
      note: {type: varchar(200)}
    primary_key: [id]
    indexes:
      - columns: [full_name]
  addresses:
    columns:
      id: {type: int, identity: true, nullable: false}
      customer_id: {type: int, nullable: false}
      city: {type: varchar(50)}
    primary_key: [id]
    foreign_keys:
      - columns: [customer_id]
        references: {table: customers, columns: [id]}
        on_delete: cascade
    indexes:  # of its own; purchases has none: InnoDB makes one named after the key, inspect leaves it out
      - columns: [customer_id]
  purchases:
    renamed_from: orders
    columns:
      id: {type: int, identity: true, nullable: false}
      customer_id: {type: int}
      total: {type: "decimal(10, 2)"}
    primary_key: [id]
    foreign_keys:
      - columns: [customer_id]
        references: {table: customers, columns: [id]}
        on_delete: cascade
views:
  big_orders:
    sql: SELECT id, total FROM purchases WHERE total > 50
    dialects:
      postgresql: "SELECT purchases.id,\\n    purchases.total\\n   FROM purchases\\n  WHERE (purchases.total \\
        > (50)::numeric)"
      mysql: "select `purchases`.`id` AS `id`,`purchases`.`total` AS `total` from `purchases` \\
        where `purchases`.`total` > 50"
enums:
  customers_status:
    values: [new, active, closed]
"""

ROWS = [
    "INSERT INTO customers (name, status) VALUES ('ann', 'active'), ('bob', 'new')",
    "INSERT INTO addresses (customer_id, city) VALUES (1, 'Oslo'), (2, 'Lima')",
    "INSERT INTO orders (customer_id, total) VALUES (1, 120), (2, 30)",
]
_numbers = itertools.count(1)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def ddl(tmp_path: Path, definition: str, dialect: str) -> str:
    return dbkeeper("schema", "generate", str(write(tmp_path, "gen.yaml", definition)), "--dialect", dialect).out


def sqlite_database(tmp_path: Path, definition: str = V1, rows: list[str] = ROWS) -> str:
    path = tmp_path / f"app{next(_numbers)}.db"
    subprocess.run(["sqlite3", "-bail", str(path)], input=ddl(tmp_path, definition, "sqlite"), text=True, check=True)
    with closing(sqlite3.connect(path)) as db, db:
        for statement in rows:
            db.execute(statement)
    return f"sqlite:///{path}"


def sqlite_rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
        return db.execute(sql).fetchall()


def pg_database(pg: Server, tmp_path: Path) -> str:
    name = f"app{next(_numbers)}"
    pg.app_database(name, ddl(tmp_path, V1, "postgresql") + ";\n".join(ROWS) + ";")
    return pg.url(name)


def maria_database(mariadb: MariaDBServer, tmp_path: Path) -> str:
    name = f"app{next(_numbers)}"
    mariadb.recreate(name)
    mariadb.load_sql(name, (ddl(tmp_path, V1, "mysql") + ";\n".join(ROWS) + ";").encode())
    return mariadb.url(name)


def inspected(url: str) -> SchemaDefinition:
    """``schema inspect URL`` as a definition (tables compared by name, whatever order the catalog lists them in)."""
    from dbkeeper.schema import parse_definition

    return parse_definition(dbkeeper("schema", "inspect", url).out)


def full_cycle(url: str, tmp_path: Path, rows: Callable[[str], list[tuple[object, ...]]]) -> Path:
    """V1 in *url* → diff → migrate up → no differences → rows kept → migrate down → inspect as before."""
    before = inspected(url)
    v2 = write(tmp_path, "v2.yaml", V2)
    migrations = tmp_path / f"migrations{next(_numbers)}"
    written = dbkeeper("schema", "diff", url, str(v2), "--write-migration", str(migrations), "--name", "v2")
    files = sorted(migrations.iterdir())
    template = Path(dbkeeper("migrate", "new", "template", "--dir", str(tmp_path / "new")).out.split()[-1])
    assert files[0].stat().st_mode & 0o777 == template.stat().st_mode & 0o777  # as 'migrate new' makes a file
    assert [f.name.endswith("_v2.sql") for f in files] == [True]
    assert f"wrote {files[0]}" in written.err
    text = files[0].read_text()
    assert "--   ~ rename table purchases (from orders)\n" in text and "-- migrate:down\n" in text
    dbkeeper("migrate", "up", url, "--dir", str(migrations))
    again = dbkeeper("schema", "diff", url, str(v2), "--exit-code", check=False)
    assert (again.code, again.out) == (0, "no differences\n"), again.out
    assert rows("SELECT id, full_name, status FROM customers ORDER BY id") == [(1, "ann", "active"), (2, "bob", "new")]
    assert rows("SELECT customer_id, city FROM addresses ORDER BY id") == [(1, "Oslo"), (2, "Lima")]
    assert [_ints(r) for r in rows("SELECT id, customer_id, total FROM purchases ORDER BY id")] == [
        (1, 1, 120),
        (2, 2, 30),
    ]
    assert [_ints(r) for r in rows("SELECT id, total FROM big_orders ORDER BY id")] == [(1, 120)]
    dbkeeper("migrate", "down", url, "--dir", str(migrations))
    assert inspected(url) == before
    assert rows("SELECT id, name FROM customers ORDER BY id") == [(1, "ann"), (2, "bob")]
    return files[0]


def test_sqlite_diff_migrate_up_and_down(tmp_path: Path) -> None:
    url = sqlite_database(tmp_path)
    printed = dbkeeper("schema", "diff", url, str(write(tmp_path, "v2.yaml", V2)))
    assert "note: tables.customers.columns.note.type: varchar(200) is VARCHAR(200) on SQLite" in printed.err
    assert "tables.addresses" not in printed.err  # notes only about what the migration creates or alters
    migration = full_cycle(url, tmp_path, lambda sql: sqlite_rows(url, sql))
    assert "CREATE TABLE _dbkeeper_new_customers (" in migration.read_text()  # a type change: a rebuild
    assert sqlite_rows(url, "PRAGMA foreign_key_check") == []


def test_postgresql_diff_migrate_up_and_down(tmp_path: Path, pg: Server) -> None:
    url = pg_database(pg, tmp_path)
    database = url.rsplit("/", 1)[-1].split("?")[0]

    def rows(sql: str) -> list[tuple[object, ...]]:
        out = pg.psql(f"\\pset format unaligned\n\\pset tuples_only on\n{sql}", database=database)
        return [tuple(_value(v) for v in line.split("|")) for line in out.splitlines() if "|" in line]

    migration = full_cycle(url, tmp_path, rows)
    text = migration.read_text()
    assert "ALTER TYPE customers_status ADD VALUE 'closed' AFTER 'active';" in text
    assert "ALTER TABLE orders RENAME TO purchases;" in text
    assert "ALTER TABLE purchases RENAME CONSTRAINT pk_orders TO pk_purchases;" in text  # not dropped and added


def test_mariadb_diff_migrate_up_and_down(tmp_path: Path, mariadb: MariaDBServer) -> None:
    url = maria_database(mariadb, tmp_path)
    database = url.rsplit("/", 1)[-1].split("?")[0]
    migration = full_cycle(url, tmp_path, lambda sql: mariadb.execute(sql, database=database))
    text = migration.read_text()
    assert "ALTER TABLE customers MODIFY status ENUM('new','active','closed') NULL DEFAULT 'new';" in text


def _ints(row: tuple[object, ...]) -> tuple[int, ...]:
    return tuple(int(float(str(value))) for value in row)


def _value(text: str) -> object:
    return int(text) if text.isdigit() else text


def test_destructive_changes_are_refused_without_the_flag(tmp_path: Path) -> None:
    url = sqlite_database(tmp_path)
    smaller = V1.replace("      city: {type: varchar(50)}\n", "")
    target = write(tmp_path, "smaller.yaml", smaller)
    migrations = tmp_path / "migrations"
    printed = dbkeeper("schema", "diff", url, str(target))
    assert printed.out.startswith("- drop column addresses.city  (destructive: drops column addresses.city)\n")
    refused = dbkeeper(
        "schema", "diff", url, str(target), "--write-migration", str(migrations), "--name", "x", check=False
    )
    assert (refused.code, refused.out) == (1, "")
    assert refused.err.splitlines()[-1] == (
        "error: refusing changes that lose data (drops column addresses.city): pass --allow-destructive to write them"
    )
    assert not migrations.exists()
    dbkeeper(
        "schema", "diff", url, str(target), "--write-migration", str(migrations), "--name", "x", "--allow-destructive"
    )
    dbkeeper("migrate", "up", url, "--dir", str(migrations))
    assert dbkeeper("schema", "diff", url, str(target), "--exit-code").out == "no differences\n"
    assert sqlite_rows(url, "SELECT id, customer_id FROM addresses ORDER BY id") == [(1, 1), (2, 2)]


def test_sqlite_type_change_keeps_rows_and_a_cascading_child(tmp_path: Path) -> None:
    url = sqlite_database(tmp_path)
    wider = write(tmp_path, "wider.yaml", V1.replace("name: {type: varchar(100)", "name: {type: text"))
    migrations = tmp_path / "migrations"
    dbkeeper("schema", "diff", url, str(wider), "--write-migration", str(migrations), "--name", "wider")
    assert "DROP TABLE customers;" in next(migrations.iterdir()).read_text()
    dbkeeper("migrate", "up", url, "--dir", str(migrations))
    assert sqlite_rows(url, "SELECT id, name FROM customers ORDER BY id") == [(1, "ann"), (2, "bob")]
    assert sqlite_rows(url, "SELECT customer_id, city FROM addresses ORDER BY id") == [(1, "Oslo"), (2, "Lima")]
    assert sqlite_rows(url, "PRAGMA foreign_key_check") == []
    assert sqlite_rows(url, "SELECT type FROM pragma_table_info('customers') WHERE name = 'name'") == [("TEXT",)]


def test_a_sqlite_table_with_a_trigger_is_not_rebuilt(tmp_path: Path) -> None:
    url = sqlite_database(tmp_path)
    path = url.removeprefix("sqlite:///")
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TRIGGER touch AFTER UPDATE ON customers BEGIN SELECT 1; END")
    before = inspected(url)
    wider = write(tmp_path, "wider.yaml", V1.replace("name: {type: varchar(100)", "name: {type: text"))
    migrations = tmp_path / "migrations"
    dbkeeper("schema", "diff", url, str(wider), "--write-migration", str(migrations), "--name", "wider")
    failed = dbkeeper("migrate", "up", url, "--dir", str(migrations), check=False)
    assert failed.code == 1
    assert "customers has triggers, which rebuilding it would lose" in failed.err
    assert len(failed.err.strip().splitlines()) == 1
    assert inspected(url) == before  # rolled back
    assert sqlite_rows(url, "SELECT name FROM sqlite_master WHERE type = 'trigger'") == [("touch",)]


def test_exit_code_after_a_manual_alter_table(tmp_path: Path) -> None:
    url = sqlite_database(tmp_path)
    v1 = write(tmp_path, "v1.yaml", V1)
    assert dbkeeper("schema", "diff", url, str(v1), "--exit-code").out == "no differences\n"
    with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
        db.execute("ALTER TABLE orders ADD COLUMN shipped_on DATE")
    drift = dbkeeper("schema", "diff", url, str(v1), "--exit-code", check=False)
    assert drift.code == 1
    assert drift.out.startswith("- drop column orders.shipped_on  (destructive: drops column orders.shipped_on)\n")
    assert "ALTER TABLE orders DROP COLUMN shipped_on;" in drift.out
    assert dbkeeper("schema", "diff", url, str(v1)).code == 0  # without --exit-code: 0 either way


def test_json_output(tmp_path: Path) -> None:
    v1, v2 = write(tmp_path, "v1.yaml", V1), write(tmp_path, "v2.yaml", V2)
    data = dbkeeper("schema", "diff", str(v1), str(v2), "--json", "--dialect", "postgresql").json()
    assert isinstance(data, dict)
    assert set(data) == {"changes", "up", "down", "notes"}
    assert data["changes"][:2] == [
        {"kind": "add_enum_values", "target": "customers_status", "destructive": None},
        {"kind": "drop_view", "target": "big_orders", "destructive": None},
    ]
    assert "ALTER TABLE orders RENAME TO purchases;" in data["up"]
    assert "ALTER TABLE purchases RENAME TO orders;" in data["down"]
    files_only = dbkeeper("schema", "diff", str(v1), str(v2), "--json").json()
    assert isinstance(files_only, dict)
    assert (files_only["up"], files_only["down"], len(files_only["changes"])) == ([], [], len(data["changes"]))
    same = dbkeeper("schema", "diff", str(v1), str(v1), "--json", "--dialect", "sqlite").json()
    assert same == {"changes": [], "up": [], "down": [], "notes": []}


def test_two_files_without_a_dialect_print_the_changes_only(tmp_path: Path) -> None:
    v1, v2 = write(tmp_path, "v1.yaml", V1), write(tmp_path, "v2.yaml", V2)
    run = dbkeeper("schema", "diff", str(v1), str(v2))
    assert "+ add column customers.note varchar(200)\n" in run.out
    assert "~ alter column customers.full_name varchar(100) -> varchar(200)\n" in run.out
    assert "migrate:up" not in run.out


def test_usage_errors_and_bad_arguments(tmp_path: Path) -> None:
    v1, v2 = write(tmp_path, "v1.yaml", V1), write(tmp_path, "v2.yaml", V2)
    no_dialect = dbkeeper("schema", "diff", str(v1), str(v2), "--write-migration", str(tmp_path / "m"), "--name", "x",
                          check=False)  # fmt: skip
    assert no_dialect.code == 2
    assert "--write-migration needs a dialect" in no_dialect.err
    no_name = dbkeeper("schema", "diff", str(v1), str(v2), "--write-migration", str(tmp_path / "m"), check=False)
    assert no_name.code == 2
    assert not (tmp_path / "m").exists()
    missing = dbkeeper("schema", "diff", str(tmp_path / "nope.yaml"), str(v2), check=False)
    assert (missing.code, missing.out) == (1, "")
    assert (
        missing.err == f"error: {tmp_path / 'nope.yaml'} is neither a definition file (no such file) nor a connection\n"
    )
    unknown = dbkeeper("schema", "diff", "nosuchconnection", str(v2), check=False, cwd=tmp_path)
    assert unknown.code == 1
    assert unknown.err.startswith("error: nosuchconnection is neither a definition file nor a connection: ")
    assert len(unknown.err.splitlines()) == 1
    bad = write(tmp_path, "bad.yaml", "tables:\n  t:\n    columns:\n      a: {type: money2}\n")
    invalid = dbkeeper("schema", "diff", str(v1), str(bad), check=False)
    assert invalid.code == 1
    assert invalid.err.startswith("error: tables.t.columns.a.type: unknown type 'money2'")


def test_python_api() -> None:
    code = (
        "import sys; from dbkeeper import diff_schemas, SchemaDiff, render_diff; "
        "from dbkeeper.schema import diff_schemas as d, render_diff as r, SchemaDiff as s; "
        "print(d is diff_schemas, r is render_diff, s is SchemaDiff)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.stdout == "True True True\n", run.stderr


def test_a_failing_mariadb_migration_is_undone_statement_by_statement(tmp_path: Path, mariadb: MariaDBServer) -> None:
    """MariaDB's DDL commits statement by statement: the down part undoes the statements that ran, one by one."""
    url = maria_database(mariadb, tmp_path)
    database = url.rsplit("/", 1)[-1]
    mariadb.execute("INSERT INTO addresses (customer_id, city) VALUES (1, 'Lima')", database=database)
    before = inspected(url)
    anchor = "      city: {type: varchar(50)}\n    primary_key: [id]\n"
    assert V2.count(anchor) == 1
    v3 = write(tmp_path, "v3.yaml", V2.replace(anchor, anchor + "    unique:\n      - columns: [city]\n"))
    migrations = tmp_path / "migrations"
    dbkeeper("schema", "diff", url, str(v3), "--write-migration", str(migrations), "--name", "v3")
    text = next(migrations.iterdir()).read_text()
    up, down = text.split("-- migrate:down\n")
    assert up.count(";\n") == down.count(";\n") == 10, text
    failed = dbkeeper("migrate", "up", url, "--dir", str(migrations), check=False)
    assert failed.code == 1
    assert "Duplicate entry 'Lima'" in failed.err
    assert "statement 7 of 10 failed" in failed.err and "statements 1-6 of" in failed.err
    assert "were undone — the database is as it was before" in failed.err
    assert inspected(url) == before
    assert mariadb.execute("SELECT id, name FROM customers ORDER BY id", database=database) == [(1, "ann"), (2, "bob")]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql", "mariadb"])
def test_a_whole_schema_created_and_dropped(tmp_path: Path, engine: str, request: pytest.FixtureRequest) -> None:
    """The feature-rich definition from an empty database and back: every kind of object created, then dropped."""
    from test_schema_generate import RICH

    if engine == "sqlite":
        sqlite3.connect(tmp_path / "empty.db").close()
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    elif engine == "postgresql":
        url = request.getfixturevalue("pg").url(request.getfixturevalue("pg").app_database("empty", ""))
    else:
        mariadb = request.getfixturevalue("mariadb")
        mariadb.recreate("empty")
        url = mariadb.url("empty")
    rich = write(tmp_path, "rich.yaml", RICH)
    migrations = tmp_path / "migrations"
    dbkeeper("schema", "diff", url, str(rich), "--write-migration", str(migrations), "--name", "rich")
    dbkeeper("migrate", "up", url, "--dir", str(migrations))
    assert set(inspected(url).tables) == set(parse(RICH).tables)
    if engine == "sqlite":  # PostgreSQL and MySQL rewrite the SQL of views, checks and expressions
        assert dbkeeper("schema", "diff", url, str(rich), "--exit-code").out == "no differences\n"
    dbkeeper("migrate", "down", url, "--dir", str(migrations))
    assert inspected(url) == parse("tables: {}\n")


def parse(text: str) -> SchemaDefinition:
    from dbkeeper.schema import parse_definition

    return parse_definition(text)


def test_sqlite_drops_a_column_alter_table_refuses_by_a_rebuild(tmp_path: Path) -> None:
    """SQLite refuses ``DROP COLUMN`` for a column a check uses (here an enum's): the table is rebuilt."""
    url = sqlite_database(tmp_path)
    without = V1.replace("      status: {type: enum(customers_status), default: new}\n", "")
    target = write(
        tmp_path, "no_status.yaml", without.replace("enums:\n  customers_status:\n    values: [new, active]\n", "")
    )
    migrations = tmp_path / "migrations"
    dbkeeper("schema", "diff", url, str(target), "--write-migration", str(migrations), "--name", "x",
             "--allow-destructive")  # fmt: skip
    assert "DROP TABLE customers;" in next(migrations.iterdir()).read_text()
    dbkeeper("migrate", "up", url, "--dir", str(migrations))
    assert dbkeeper("schema", "diff", url, str(target), "--exit-code").out == "no differences\n"
    assert sqlite_rows(url, "SELECT * FROM customers ORDER BY id") == [(1, "ann"), (2, "bob")]
    assert sqlite_rows(url, "SELECT count(*) FROM addresses") == [(2,)]
    dbkeeper("migrate", "down", url, "--dir", str(migrations))
    assert sqlite_rows(url, "SELECT id, name, status FROM customers ORDER BY id") == [
        (1, "ann", "new"),
        (2, "bob", "new"),
    ]


def test_a_sqlite_table_rename_is_an_alter_table_and_the_next_diff_is_empty(tmp_path: Path) -> None:
    """SQLite keeps a primary key's name only in the table's SQL: a renamed table keeps ``pk_orders``, not rebuilt."""
    url = sqlite_database(tmp_path)
    renamed = V1.replace("  orders:\n", "  purchases:\n    renamed_from: orders\n").replace(
        "FROM orders", "FROM purchases"
    )
    target = write(tmp_path, "renamed.yaml", renamed)
    migrations = tmp_path / "migrations"
    dbkeeper("schema", "diff", url, str(target), "--write-migration", str(migrations), "--name", "rename")
    text = next(migrations.iterdir()).read_text()
    assert "ALTER TABLE orders RENAME TO purchases;" in text
    assert "_dbkeeper_new_" not in text and "DROP TABLE" not in text  # no rebuild
    dbkeeper("migrate", "up", url, "--dir", str(migrations))
    assert dbkeeper("schema", "diff", url, str(target), "--exit-code").out == "no differences\n"
    assert [_ints(r) for r in sqlite_rows(url, "SELECT id, customer_id, total FROM purchases ORDER BY id")] == [
        (1, 1, 120),
        (2, 2, 30),
    ]
    dbkeeper("migrate", "down", url, "--dir", str(migrations))
    assert dbkeeper("schema", "diff", url, str(write(tmp_path, "v1.yaml", V1)), "--exit-code").out == (
        "no differences\n"
    )


IDENTITY_NULLABLE = """\
tables:
  events:
    columns:
      id: {type: bigint, identity: true}
      name: {type: text}
    primary_key: [name]
"""


def test_an_identity_column_left_nullable_is_not_null_on_postgresql(tmp_path: Path, pg: Server) -> None:
    """PostgreSQL refuses ``GENERATED BY DEFAULT AS IDENTITY NULL``: an identity column is NOT NULL."""
    sql = ddl(tmp_path, IDENTITY_NULLABLE, "postgresql")
    assert "id BIGINT GENERATED BY DEFAULT AS IDENTITY,\n" in sql  # not "… IDENTITY NULL"
    name = f"app{next(_numbers)}"
    pg.app_database(name, sql)
    url = pg.url(name)
    definition = write(tmp_path, "identity.yaml", IDENTITY_NULLABLE)
    assert dbkeeper("schema", "diff", url, str(definition), "--exit-code").out == "no differences\n"
    added = IDENTITY_NULLABLE.replace("      name: {type: text}\n", "      name: {type: text}\n      n: {type: int}\n")
    added = added.replace("  events:\n", "  other:\n    columns:\n      id: {type: int, identity: true}\n  events:\n")
    migrations = tmp_path / "identity"
    target = write(tmp_path, "identity2.yaml", added)
    dbkeeper("schema", "diff", url, str(target), "--write-migration", str(migrations), "--name", "identity")
    dbkeeper("migrate", "up", url, "--dir", str(migrations))
    assert dbkeeper("schema", "diff", url, str(target), "--exit-code").out == "no differences\n"


def test_dialect_is_any_installed_drivers(tmp_path: Path) -> None:
    """``--dialect`` takes a driver's name or scheme (``mariadb`` is the ``mysql`` driver); another is a usage error."""
    v1, v2 = str(write(tmp_path, "v1.yaml", V1)), str(write(tmp_path, "v2.yaml", V2))
    assert dbkeeper("schema", "diff", v1, v2, "--dialect", "mariadb").out == (
        dbkeeper("schema", "diff", v1, v2, "--dialect", "mysql").out
    )
    unknown = dbkeeper("schema", "diff", v1, v2, "--dialect", "acme", check=False)
    assert (unknown.code, unknown.out) == (2, "")
    assert "Invalid value for '--dialect': no driver for dialect 'acme'" in unknown.err


CHECKED = """\
tables:
  tickets:
    columns:
      id: {type: int, identity: true, nullable: false}
      state: {type: enum(state), default: open, nullable: false}
    primary_key: [id]
enums:
  state:
    values: [open, closed]
"""


def test_an_enum_stored_as_a_check_is_altered_in_place(tmp_path: Path, pg: Server) -> None:
    """Enums stored as checks, by an engine whose ALTER TABLE alters checks: the enum's CHECK dropped and added."""
    from dbkeeper.plugin import SchemaDialect
    from dbkeeper.schema import generate_schema
    from dbkeeper.schema.migration import diff_migration, write_migration
    from dbkeeper_postgresql.schema import PostgresqlSchema

    class Checked(PostgresqlSchema):
        enum_storage = "check"
        enum_type = SchemaDialect.enum_type  # text, not PostgreSQL's named type
        create_enum = SchemaDialect.create_enum

    dialect = Checked()
    before, after = parse(CHECKED), parse(CHECKED.replace("[open, closed]", "[open, waiting, closed]"))
    name = f"app{next(_numbers)}"
    pg.app_database(name, generate_schema(before, dialect).sql)
    migration = diff_migration(before, after, dialect)
    assert migration.up.statements == (
        "ALTER TABLE tickets DROP CONSTRAINT ck_tickets_state_enum;",
        "ALTER TABLE tickets ADD CONSTRAINT ck_tickets_state_enum CHECK (state IN ('open', 'waiting', 'closed'));",
    )
    directory = tmp_path / "checked"
    write_migration(directory, "waiting", migration.up.statements, migration.down.statements)
    url = pg.url(name)
    dbkeeper("migrate", "up", url, "--dir", str(directory))
    dbkeeper("query", url, "INSERT INTO tickets (state) VALUES ('waiting')")
    refused = dbkeeper("query", url, "INSERT INTO tickets (state) VALUES ('lost')", check=False)
    assert refused.code == 1 and "ck_tickets_state_enum" in refused.err
    dbkeeper("query", url, "DELETE FROM tickets")
    dbkeeper("migrate", "down", url, "--dir", str(directory))
    refused = dbkeeper("query", url, "INSERT INTO tickets (state) VALUES ('waiting')", check=False)
    assert refused.code == 1 and "ck_tickets_state_enum" in refused.err


VIEWS_V1 = """\
tables:
  t:
    columns:
      id: {type: int, nullable: false}
      x: {type: text}
    primary_key: [id]
views:
  top_v: {sql: SELECT id FROM base_v}
  base_v: {sql: 'SELECT id, x FROM t'}
"""


def test_a_changed_view_is_dropped_and_created_again_with_the_views_that_read_it(tmp_path: Path, pg: Server) -> None:
    """PostgreSQL refuses to drop a view another view reads: the reader goes first and comes back after it."""
    name = f"app{next(_numbers)}"
    pg.app_database(name, ddl(tmp_path, VIEWS_V1, "postgresql") + "INSERT INTO t VALUES (1, 'a'), (2, 'b');")
    v1 = write(tmp_path, "views1.yaml", VIEWS_V1)
    v2 = write(tmp_path, "views2.yaml", VIEWS_V1.replace("'SELECT id, x FROM t'", "'SELECT id, x FROM t WHERE id > 1'"))
    migrations = tmp_path / "view_migrations"
    printed = dbkeeper("schema", "diff", str(v1), str(v2), "--dialect", "postgresql").out
    assert [line.split()[:3] for line in printed.splitlines()[:4]] == [
        ["-", "drop", "view"],
        ["-", "drop", "view"],
        ["+", "create", "view"],
        ["+", "create", "view"],
    ]
    assert printed.index("drop view top_v") < printed.index("drop view base_v") < printed.index("create view top_v")
    dbkeeper(
        "schema",
        "diff",
        str(v1),
        str(v2),
        "--dialect",
        "postgresql",
        "--write-migration",
        str(migrations),
        "--name",
        "v2",
    )
    dbkeeper("migrate", "up", pg.url(name), "--dir", str(migrations))
    assert pg.psql("SELECT string_agg(id::text, ',') FROM top_v", database=name).strip() == "2"
    dbkeeper("migrate", "down", pg.url(name), "--dir", str(migrations))
    assert pg.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM top_v", database=name).strip() == "1,2"


def test_a_column_a_view_reads_changes_type_with_the_view_out_of_the_way(tmp_path: Path, pg: Server) -> None:
    """Inspect, widen a column, diff, migrate: PostgreSQL refuses ALTER COLUMN TYPE under a view, so it goes first."""
    name = f"app{next(_numbers)}"
    pg.app_database(name, ddl(tmp_path, VIEWS_V1, "postgresql") + "INSERT INTO t VALUES (1, 'a');")
    inspected_text = dbkeeper("schema", "inspect", pg.url(name)).out
    edited = write(tmp_path, "edited.yaml", inspected_text.replace("id: {type: int,", "id: {type: bigint,"))
    assert edited.read_text() != inspected_text
    migrations = tmp_path / "retyped"
    dbkeeper("schema", "diff", pg.url(name), str(edited), "--write-migration", str(migrations), "--name", "x")
    dbkeeper("migrate", "up", pg.url(name), "--dir", str(migrations))
    again = dbkeeper("schema", "diff", pg.url(name), str(edited), "--exit-code", check=False)
    assert (again.code, again.out) == (0, "no differences\n"), again.out
    assert pg.psql("SELECT id FROM top_v", database=name).strip() == "1"
    dbkeeper("migrate", "down", pg.url(name), "--dir", str(migrations))
    assert dbkeeper("schema", "inspect", pg.url(name)).out == inspected_text
