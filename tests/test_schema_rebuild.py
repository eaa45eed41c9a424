"""SQLite table rebuilds and rows pointing nowhere: only those the rebuild made fail the migration.

SQLite lets rows that point nowhere in while foreign keys are off (dbkeeper's connections
leave them off). A rebuild's last guard compares ``PRAGMA foreign_key_check`` before and
after, for the rebuilt table and for the keys of other tables that point at it: an orphan
that was there before, or one of a key that points elsewhere, is kept and the migration
runs; a rebuild that orphans rows fails with one line and changes nothing.
"""

from __future__ import annotations

import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from helpers import dbkeeper

SHOP = """\
tables:
  customers:
    columns:
      id: {type: int, identity: true, nullable: false}
      name: {type: varchar(100), nullable: false}
    primary_key: [id]
  products:
    columns:
      id: {type: int, identity: true, nullable: false}
      title: {type: varchar(100), nullable: false}
    primary_key: [id]
  reviews:
    columns:
      id: {type: int, identity: true, nullable: false}
      customer_id: {type: int, nullable: false}
      product_id: {type: int, nullable: false}
      body: {type: varchar(100)}
    primary_key: [id]
    foreign_keys:
      - columns: [customer_id]
        references: {table: customers, columns: [id]}
      - columns: [product_id]
        references: {table: products, columns: [id]}
  notes:
    columns:
      id: {type: int, identity: true, nullable: false}
      customer_id: {type: int}
      text: {type: varchar(100)}
    primary_key: [id]
"""

ROWS = """\
INSERT INTO customers (id, name) VALUES (1, 'ann'), (2, 'bob');
INSERT INTO products (id, title) VALUES (1, 'pen');
INSERT INTO reviews (id, customer_id, product_id, body) VALUES (1, 1, 1, 'good'), (2, 2, 99, 'gone');
INSERT INTO notes (id, customer_id, text) VALUES (1, 42, 'nobody');
"""
#: The orphan inserted while foreign keys were off: review 2 points at no product.
OLD_ORPHAN = [("reviews", 2, "products", 0)]


def _database(tmp_path: Path) -> Path:
    """SHOP with ROWS (foreign keys off, as sqlite3 leaves them), review 2 an orphan."""
    shop = tmp_path / "shop.yaml"
    shop.write_text(SHOP)
    ddl = dbkeeper("schema", "generate", str(shop), "--dialect", "sqlite").out
    path = tmp_path / "shop.db"
    subprocess.run(["sqlite3", "-bail", str(path)], input=ddl + ROWS, text=True, check=True)
    assert _rows(path, "PRAGMA foreign_key_check") == OLD_ORPHAN
    return path


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


def _migration(tmp_path: Path, path: Path, target: str) -> Path:
    """``schema diff`` of the database at *path* to *target* written as a migration; the file."""
    wanted = tmp_path / "target.yaml"
    wanted.write_text(target)
    migrations = tmp_path / "migrations"
    dbkeeper("schema", "diff", f"sqlite:///{path}", str(wanted), "--write-migration", str(migrations), "--name", "x")
    (written,) = migrations.iterdir()
    assert "DROP TABLE" in written.read_text()  # a rebuild
    return written


def _type(path: Path, table: str, column: str) -> list[tuple[object, ...]]:
    return _rows(path, f"SELECT type FROM pragma_table_info('{table}') WHERE name = '{column}'")


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("customers", "name"),  # referenced by reviews, whose orphan points at products
        ("products", "title"),  # the parent the orphan points at
        ("reviews", "body"),  # the table with the orphan
        ("notes", "text"),  # unrelated, with a row pointing nowhere (no key yet)
    ],
)
def test_rows_pointing_nowhere_before_do_not_stop_a_rebuild(tmp_path: Path, table: str, column: str) -> None:
    path = _database(tmp_path)
    assert SHOP.count(f"{column}: {{type: varchar(100)") == 1
    migration = _migration(tmp_path, path, SHOP.replace(f"{column}: {{type: varchar(100)", f"{column}: {{type: text"))
    dbkeeper("migrate", "up", f"sqlite:///{path}", "--dir", str(migration.parent))
    assert _type(path, table, column) == [("TEXT",)]
    assert _rows(path, "PRAGMA foreign_key_check") == OLD_ORPHAN  # kept, as it was
    assert _rows(path, "SELECT count(*) FROM reviews") == [(2,)]


def _failing(tmp_path: Path, path: Path, target: str, statement: str) -> str:
    """The migration to *target* with *statement* run inside the rebuild, after the rename; its error."""
    migration = _migration(tmp_path, path, target)
    up, down = migration.read_text().split("-- migrate:down")
    renamed = up.index(" RENAME TO customers;\n") + len(" RENAME TO customers;\n")
    migration.write_text(up[:renamed] + statement + "\n" + up[renamed:] + "-- migrate:down" + down)
    failed = dbkeeper("migrate", "up", f"sqlite:///{path}", "--dir", str(migration.parent), check=False)
    assert failed.code == 1
    return failed.err


def test_a_rebuild_that_orphans_rows_fails(tmp_path: Path) -> None:
    """Customer 1 deleted inside the rebuild: review 1 points nowhere; the orphan of before changes nothing."""
    path = _database(tmp_path)
    target = SHOP.replace("name: {type: varchar(100)", "name: {type: text")
    error = _failing(tmp_path, path, target, "DELETE FROM customers WHERE id = 1;")
    assert "rebuilding customers left rows pointing nowhere: PRAGMA foreign_key_check lists them" in error
    assert "Traceback" not in error
    assert _type(path, "customers", "name") == [("VARCHAR(100)",)]  # rolled back
    assert _rows(path, "SELECT id FROM customers") == [(1,), (2,)]
    assert _rows(path, "PRAGMA foreign_key_check") == OLD_ORPHAN


def test_a_key_added_by_a_rebuild_that_rows_break_fails(tmp_path: Path) -> None:
    """notes gains a key to customers that its row 1 (customer 42) breaks: a violation the rebuild made."""
    path = _database(tmp_path)
    key = "      - columns: [customer_id]\n        references: {table: customers, columns: [id]}\n"
    target = SHOP.replace("      text: {type: varchar(100)}\n    primary_key: [id]\n", "")
    target += "      text: {type: varchar(100)}\n    primary_key: [id]\n    foreign_keys:\n" + key
    migration = _migration(tmp_path, path, target)
    failed = dbkeeper("migrate", "up", f"sqlite:///{path}", "--dir", str(migration.parent), check=False)
    assert failed.code == 1
    assert "rebuilding notes left rows pointing nowhere" in failed.err
    assert _rows(path, "PRAGMA foreign_key_list('notes')") == []
