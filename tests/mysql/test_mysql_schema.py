"""``dbkeeper schema`` on MariaDB: the index InnoDB makes for a foreign key is not part of the definition.

InnoDB gives a foreign key that no index starts with an index of its own, named after the
key; ``schema inspect`` leaves it out, so the definition validates, ``generate`` → apply →
``inspect`` gives it back equal, a diff against the database is empty, and dropping the
key drops its index.
"""

from __future__ import annotations

from pathlib import Path

from mariadb_server import MariaDBServer

from helpers import dbkeeper

PARENT_AND_CHILD = b"""
CREATE TABLE parents (id int PRIMARY KEY, code int NOT NULL);
CREATE TABLE children (id int PRIMARY KEY, parent_id int, parent_code int, other_id int,
  CONSTRAINT fk_children_parent_id_parents FOREIGN KEY (parent_id) REFERENCES parents (id),
  FOREIGN KEY (other_id) REFERENCES parents (id));
CREATE TABLE pets (id int PRIMARY KEY, owner int);
ALTER TABLE pets ADD CONSTRAINT owned_by FOREIGN KEY (owner) REFERENCES parents (id) ON DELETE CASCADE;
"""


def _database(mariadb: MariaDBServer, name: str, sql: bytes) -> str:
    mariadb.recreate(name)
    mariadb.load_sql(name, sql)
    return mariadb.url(name)


def _inspect(url: str, path: Path) -> str:
    """``schema inspect URL -o PATH``, validated; the file's text."""
    dbkeeper("schema", "inspect", url, "-o", str(path))
    dbkeeper("schema", "validate", str(path))
    return path.read_text()


def _indexes(mariadb: MariaDBServer, database: str, table: str) -> list[object]:
    rows = mariadb.execute(
        "SELECT index_name, column_name FROM information_schema.statistics WHERE table_schema = DATABASE()"
        f" AND table_name = '{table}' AND index_name <> 'PRIMARY' ORDER BY index_name, seq_in_index",
        database=database,
    )
    return [tuple(row) for row in rows]


def test_innodb_foreign_key_indexes_are_left_out(tmp_path: Path, mariadb: MariaDBServer) -> None:
    url = _database(mariadb, "fk_implicit", PARENT_AND_CHILD)
    assert _indexes(mariadb, "fk_implicit", "pets") == [("owned_by", "owner")]  # InnoDB's, named after the key
    first = _inspect(url, tmp_path / "first.yaml")
    from dbkeeper.schema import load_definition

    definition = load_definition(tmp_path / "first.yaml")
    assert definition.tables["pets"].indexes == ()
    assert [key.name for key in definition.tables["pets"].foreign_keys] == ["owned_by"]
    names = {key.columns: key.name for key in definition.tables["children"].foreign_keys}
    assert names == {("parent_id",): None, ("other_id",): "children_ibfk_1"}  # None: the convention's
    # an unnamed key's index is named after its column, not the key: an index of the definition
    assert [(index.name, index.columns) for index in definition.tables["children"].indexes] == [
        ("other_id", ("other_id",))
    ]
    assert dbkeeper("schema", "diff", url, str(tmp_path / "first.yaml"), "--exit-code").code == 0

    ddl = dbkeeper("schema", "generate", str(tmp_path / "first.yaml"), "--dialect", "mysql").out
    again = _database(mariadb, "fk_implicit_again", ddl.encode())
    assert _inspect(again, tmp_path / "again.yaml") == first
    assert dbkeeper("schema", "diff", url, again, "--exit-code").code == 0


def test_dropping_the_key_drops_innodb_index(tmp_path: Path, mariadb: MariaDBServer) -> None:
    url = _database(mariadb, "fk_dropped", PARENT_AND_CHILD)
    text = _inspect(url, tmp_path / "before.yaml")
    from dbkeeper.schema import dump_definition, load_definition

    before = load_definition(tmp_path / "before.yaml")
    pets = before.tables["pets"]
    after = before.__class__(
        tables={**before.tables, "pets": pets.__class__(pets.name, pets.columns, primary_key=pets.primary_key)},
        views=before.views,
        enums=before.enums,
    )
    (tmp_path / "after.yaml").write_text(dump_definition(after))
    migrations = tmp_path / "migrations"
    dbkeeper("schema", "diff", url, str(tmp_path / "after.yaml"), "--write-migration", str(migrations), "--name", "x")
    dbkeeper("migrate", "up", url, "--dir", str(migrations))
    assert _indexes(mariadb, "fk_dropped", "pets") == []
    assert dbkeeper("schema", "diff", url, str(tmp_path / "after.yaml"), "--exit-code").code == 0
    dbkeeper("migrate", "down", url, "--dir", str(migrations))
    assert _indexes(mariadb, "fk_dropped", "pets") == [("owned_by", "owner")]
    assert _inspect(url, tmp_path / "back.yaml") == text
