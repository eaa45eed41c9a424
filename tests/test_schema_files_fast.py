"""The quick paths of loading and dumping definitions give exactly what the generic ones give.

``validation._passes`` remembers each distinct small part (a column, a key, a name) that
passed the JSON Schema; ``files._Builder`` builds plain YAML nodes without PyYAML's
constructor; ``files._node_builder`` builds the nodes to write without its representer.
Each is compared here with the library's own path on documents made to catch a wrong
shortcut: a value seen passing and then the same value with another type, aliases, merge
keys, duplicate keys, scalars that need quotes.
"""

from __future__ import annotations

import copy
import gc
import subprocess
import sys
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from dbkeeper.errors import SchemaError
from dbkeeper.schema import files
from dbkeeper.schema.definition import Column, ColumnType, SchemaDefinition, Table
from dbkeeper.schema.files import dump_definition, parse_definition
from dbkeeper.schema.validation import _passes, json_schema, schema_problems
from helpers import BIN

COLUMN = {"type": "bigint", "nullable": False, "identity": True}


def document(tables: int = 3, **last_column: Any) -> dict[str, Any]:
    """*tables* tables with the same columns; the last table's column ``odd`` is *last_column* when given."""
    body = {"columns": {"id": dict(COLUMN), "name": {"type": "varchar(100)"}}, "primary_key": ["id"]}
    result: dict[str, Any] = {"version": 1, "tables": {f"t{n}": copy.deepcopy(body) for n in range(tables)}}
    if last_column:
        result["tables"][f"t{tables - 1}"]["columns"]["odd"] = last_column
    return result


# A value that passes where the same-looking value seen before would not: the type must count.
EDGES = {
    "valid": {},
    "id's column with 0 and 1": {"type": "bigint", "nullable": 0, "identity": 1},
    "nullable 0.0": {"type": "int", "nullable": 0.0},
    "type as a number": {"type": 5},
    "unknown type": {"type": "money2"},
    "default as a list": {"type": "int", "default": [1]},
    "default expression empty": {"type": "int", "default": {"expression": ""}},
    "default true": {"type": "bool", "default": True},
    "default a set": {"type": "int", "default": {1, 2}},  # not hashable: checked without the memory
    "an unknown field": {"type": "int", "size": 4},
}


@pytest.mark.parametrize("column", EDGES.values(), ids=EDGES.keys())
def test_the_quick_pass_agrees_with_the_json_schema(column: dict[str, Any]) -> None:
    doc = document(**column)
    expected = Draft202012Validator(json_schema()).is_valid(doc)
    assert _passes(doc) is expected
    assert (schema_problems(doc) == []) is expected


def test_a_problem_after_the_same_value_passed_is_named_where_it_is() -> None:
    doc = document(4)
    doc["tables"]["t3"]["columns"]["id"] = dict(COLUMN, identity=1)  # equal to t0-t2's in Python: 1 == True
    assert schema_problems(doc) == [("tables.t3.columns.id.identity", "1 is not of type 'boolean'")]


def test_what_passed_is_forgotten_after_each_call() -> None:
    assert _passes(document(2))
    bad = document(2)
    bad["tables"]["t1"]["columns"]["name"] = {"type": "varchar(100)", "nullable": "no"}
    assert not _passes(bad)


def reference_load(text: str) -> Any:
    """*text* through PyYAML's own construction, with the duplicate-key check files.py adds."""

    class Reference(files._loader()):  # type: ignore[misc]  # the generic constructor, the same mapping check
        construct_document = yaml.SafeLoader.construct_document

    return yaml.load(text, Loader=Reference)


YAML = {
    "scalars": "a: 1\nb: [1, 2.5, true, null, ~, 2020-01-02, '3', 0x10, .inf]\nc: !!str 5\nd: !!binary aGVsbG8=\n",
    "an alias": "base: &b {x: [1, 2]}\nuse: *b\nagain: *b\n",
    "a set and an omap": "s: !!set {a, b}\no: !!omap [{x: 1}, {y: 2}]\n",
    "keys of other types": "1: a\n'1': b\ntrue: c\n2020-01-02: d\n",
    "a definition": "tables:\n  t:\n    columns: {id: {type: int, default: 1.5}, é: {type: text}}\n",
}


@pytest.mark.parametrize("text", YAML.values(), ids=YAML.keys())
def test_plain_yaml_is_built_as_pyyaml_builds_it(text: str) -> None:
    assert files._parse(text, "yaml", "x.yaml") == reference_load(text)


BAD_YAML = {
    "a duplicate key": ("a:\n  b: 1\n  c: {d: 1}\n  b: 2\n", "x.yaml:4:3", "invalid YAML: duplicate key 'b'"),
    "a duplicate in flow": ("a: {x: 1, x: 2}\n", "x.yaml:1:11", "invalid YAML: duplicate key 'x'"),
    "an unhashable key": ("? [1, 2]\n: x\n", "x.yaml:1:3", "invalid YAML: found unhashable key"),
    "a merge key": ("b: &b {x: 1}\nu:\n  <<: *b\n", "x.yaml:3:3", None),
    "a Python tag": ("x: !!python/object:os.system ls\n", "x.yaml:1:4", None),
    "a date that is none": ("t: 2020-13-45\n", "x.yaml", "invalid YAML: month must be in 1..12"),
}


@pytest.mark.parametrize(("text", "where", "message"), BAD_YAML.values(), ids=BAD_YAML.keys())
def test_bad_yaml_is_one_problem_at_its_place(text: str, where: str, message: str | None) -> None:
    with pytest.raises(SchemaError) as raised:
        files._parse(text, "yaml", "x.yaml")
    [(path, problem)] = raised.value.problems
    assert path == where
    assert problem.startswith("invalid YAML: ")
    if message is not None:
        assert problem == message


def test_a_recursive_alias_is_left_to_pyyaml() -> None:
    loaded = files._parse("a: &x [1, *x]\n", "yaml", "x.yaml")
    assert loaded["a"][1] is loaded["a"]


def test_the_dump_is_pyyamls_text_for_the_same_document() -> None:
    """Scalars that need quotes, floats, non-ASCII text, and the one-line rule for short mappings."""
    columns = {
        "id": Column("id", ColumnType.parse("bigint"), nullable=False, identity=True),
        "flag": Column("flag", ColumnType.parse("text"), default="yes"),
        "number_text": Column("number_text", ColumnType.parse("text"), default="1.5"),
        "null_text": Column("null_text", ColumnType.parse("text"), default="null"),
        "ratio": Column("ratio", ColumnType.parse("double"), default=1e20),
        "price": Column("price", ColumnType.parse("decimal(12, 2)"), default=0.5),
        "on": Column("on", ColumnType.parse("bool"), default=True),
        "note": Column("note", ColumnType.parse("text"), comment="prix en € — « long » " * 6),
    }
    definition = SchemaDefinition(tables={"t": Table("t", columns)})
    text = dump_definition(definition)
    assert text == reference_dump(files.to_document(definition))
    assert parse_definition(text) == definition
    assert "      'on': {type: bool, default: true}\n" in text  # YAML 1.1 reads a bare on as true
    assert "      ratio: {type: double, default: 1.0e+20}\n" in text
    assert "      flag: {type: text, default: 'yes'}\n" in text


def reference_dump(document: dict[str, Any]) -> str:
    """*document* through PyYAML's representer, with the one-line rule written as representers."""

    class Reference(yaml.SafeDumper):
        """The pure-Python safe dumper with short leaf lists and mappings in flow style."""

    def represent_list(dumper: yaml.SafeDumper, items: list[Any]) -> yaml.Node:
        return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=files._is_leaf(items))

    def represent_dict(dumper: yaml.SafeDumper, items: dict[str, Any]) -> yaml.Node:
        leaf = all(files._is_scalar(value) or files._is_leaf(value) for value in items.values())
        short = sum(len(str(key)) + len(str(value)) + 4 for key, value in items.items()) <= files.FLOW_WIDTH
        return dumper.represent_mapping("tag:yaml.org,2002:map", items, flow_style=leaf and short)

    Reference.add_representer(list, represent_list)
    Reference.add_representer(dict, represent_dict)
    dumped: str = yaml.dump(document, Dumper=Reference, sort_keys=False, allow_unicode=True, width=100)
    return dumped


def test_loading_a_definition_imports_neither_the_diff_nor_sqlalchemy(tmp_path: Any) -> None:
    path = tmp_path / "schema.yaml"
    table = Table("t", {"id": Column("id", ColumnType.parse("int"))})
    path.write_text(dump_definition(SchemaDefinition(tables={"t": table})), encoding="utf-8")
    code = (
        "import sys; from dbkeeper.schema import load_definition; load_definition(sys.argv[1]); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic') "
        "or m in ('dbkeeper.schema.diff', 'dbkeeper.schema.render', 'dbkeeper.schema.generate')))"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_diff_of_two_files_without_a_dialect_imports_neither_sqlalchemy_nor_alembic(tmp_path: Any) -> None:
    """The changes only: no SQL, so neither SQLAlchemy nor Alembic (0.2-0.3 s of imports)."""
    old = SchemaDefinition(tables={"t": Table("t", {"id": Column("id", ColumnType.parse("int"))})})
    new = SchemaDefinition(
        tables={"t": Table("t", {**old.tables["t"].columns, "x": Column("x", ColumnType.parse("text"))})}
    )
    (tmp_path / "old.yaml").write_text(dump_definition(old), encoding="utf-8")
    (tmp_path / "new.yaml").write_text(dump_definition(new), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(BIN / "dbkeeper"), "-q", "schema", "diff", "old.yaml", "new.yaml"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "+ add column t.x text\n"
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "dbkeeper.schema.diff" in imported  # the diff did run here
    assert not {name for name in imported if name.split(".")[0] in ("sqlalchemy", "alembic")}


def test_the_cycle_collector_is_paused_only_while_a_definition_is_read_or_written() -> None:
    assert gc.isenabled()
    with pytest.raises(SchemaError):
        parse_definition("tables: {t: {columns: {}}}\n")
    assert gc.isenabled()
    definition = parse_definition("tables: {t: {columns: {id: {type: int}}}}\n")
    assert dump_definition(definition).startswith("version: 1\n")
    assert gc.isenabled()
    gc.disable()
    try:
        parse_definition(dump_definition(definition))
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()
