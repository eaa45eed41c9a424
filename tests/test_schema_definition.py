"""The schema definition: types, the naming convention, YAML/JSON round trips, the JSON Schema, semantic checks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from dbkeeper.errors import ConfigError, SchemaError
from dbkeeper.schema import (
    Check,
    Column,
    ColumnType,
    Expression,
    ForeignKey,
    Index,
    PrimaryKey,
    SchemaDefinition,
    Table,
    UniqueConstraint,
    constraint_name,
    dump_definition,
    load_definition,
    parse_definition,
    validate_definition,
)
from dbkeeper.schema.naming import NAME_LIMIT, conventional_name, table_constraints
from dbkeeper.schema.validation import json_schema
from helpers import ROOT

SCHEMA_FILE = ROOT / "core" / "src" / "dbkeeper" / "schema" / "definition.schema.json"
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def docs_definitions() -> list[tuple[str, str]]:
    """Every ```yaml block of the docs that is a schema definition (it has ``tables:``), with where it is."""
    found = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in YAML_BLOCK.finditer(text):
            if re.search(r"^tables:", match.group(1), re.MULTILINE):
                found.append((f"{page.name}:{text[: match.start()].count(chr(10)) + 1}", match.group(1)))
    return found


DOCS_DEFINITIONS = docs_definitions()
SHOP = DOCS_DEFINITIONS[0][1]  # docs/schema.md's example, which uses every feature of the format


@pytest.fixture
def shop() -> SchemaDefinition:
    return parse_definition(SHOP)


def table(name: str, columns: dict[str, str], **fields: object) -> Table:
    """A table whose columns are given as name → type text."""
    built = {column: Column(column, ColumnType.parse(kind)) for column, kind in columns.items()}
    return Table(name, built, **fields)  # type: ignore[arg-type]  # the fields are Table's own


def problems_of(definition: SchemaDefinition) -> list[tuple[str, str]]:
    with pytest.raises(SchemaError) as caught:
        validate_definition(definition)
    return list(caught.value.problems)


# -- types


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("bool", "bool"),
        ("smallint", "smallint"),
        ("int", "int"),
        ("bigint", "bigint"),
        ("decimal(10, 2)", "decimal(10, 2)"),
        ("decimal(10,2)", "decimal(10, 2)"),
        ("decimal(12)", "decimal(12, 0)"),
        ("float", "float"),
        ("double", "double"),
        ("text", "text"),
        ("varchar(255)", "varchar(255)"),
        ("bytes", "bytes"),
        ("date", "date"),
        ("time", "time"),
        ("timestamp", "timestamp"),
        ("timestamptz", "timestamptz"),
        ("json", "json"),
        ("uuid", "uuid"),
        ("enum(order_status)", "enum(order_status)"),
    ],
)
def test_a_portable_type_parses_and_prints_canonically(text: str, canonical: str) -> None:
    parsed = ColumnType.parse(text)
    assert str(parsed) == canonical
    assert ColumnType.parse(canonical) == parsed


@pytest.mark.parametrize("text", ["money2", "varchar", "varchar(0)", "decimal(a, b)", "enum()", "INT", "int(4)", ""])
def test_an_unknown_type_is_refused_by_name(text: str) -> None:
    with pytest.raises(ValueError, match=f"unknown type {re.escape(repr(text))}"):
        ColumnType.parse(text)


def test_the_schemas_type_pattern_accepts_exactly_what_parse_accepts() -> None:
    pattern = re.compile(json_schema()["$defs"]["column"]["properties"]["type"]["pattern"])
    for text in ["bool", "decimal(10, 2)", "decimal(10,2)", "decimal(3)", "varchar(1)", "enum(a_b)", "timestamptz"]:
        assert pattern.search(text), text
        ColumnType.parse(text)
    for text in ["money2", "varchar", "varchar(0)", "decimal(a)", "INT", "int(4)", "enum(1x)"]:
        assert not pattern.search(text), text


# -- naming convention


def test_the_convention_names_every_unnamed_constraint(shop: SchemaDefinition) -> None:
    names = {
        f"{t.name}.{path}": constraint_name(t, item)
        for t in shop.tables.values()
        for path, item in table_constraints(t)
    }
    assert names == {
        "customers.primary_key": "pk_customers",
        "customers.unique.0": "uq_customers_email",
        "customers.indexes.0": "ix_customers_lower_email",
        "orders.primary_key": "pk_orders",
        "orders.foreign_keys.0": "fk_orders_customer_id_customers",
        "orders.indexes.0": "ix_orders_customer_id_placed_on",
        "orders.indexes.1": "ix_orders_placed_on",
        "orders.checks.total_not_negative": "ck_orders_total_not_negative",
        "order_lines.primary_key": "order_lines_pkey",  # named in the definition
        "order_lines.foreign_keys.0": "fk_order_lines_order_id_orders",
        "order_lines.checks.positive_quantity": "order_lines_quantity_check",
    }


def test_a_long_name_is_cut_to_the_shortest_engine_limit_with_a_stable_hash() -> None:
    columns = [f"column_number_{n}" for n in range(6)]
    long = table("a_rather_long_table_name_for_orders", dict.fromkeys(columns, "int"))
    key = ForeignKey(tuple(columns), "another_long_table_name", tuple(columns))
    name = constraint_name(long, key)
    assert len(name) == NAME_LIMIT == 63
    assert re.fullmatch(r"fk_a_rather_long_table_name_for_orders_column_number_0_[0-9a-f]{8}", name), name
    assert constraint_name(long, key) == name  # the same every time
    other = constraint_name(long, replace(key, referenced_table="another_long_table_name2"))
    assert other != name and other[:54] == name[:54]  # same head, another hash: still unique
    assert conventional_name("ix", "t", "a") == "ix_t_a"  # short names are left whole


def test_the_convention_is_the_same_in_another_process(shop: SchemaDefinition) -> None:
    columns = ", ".join(f"'c{n}_with_a_long_name': 'int'" for n in range(8))
    code = (
        "from dbkeeper.schema import Column, ColumnType, Table, Index, constraint_name\n"
        f"cols = {{{columns}}}\n"
        "t = Table('t', {n: Column(n, ColumnType.parse(k)) for n, k in cols.items()})\n"
        "print(constraint_name(t, Index(tuple(cols))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    cols = {f"c{n}_with_a_long_name": "int" for n in range(8)}
    assert out == constraint_name(table("t", cols), Index(tuple(cols)))
    assert len(out) == 63


# -- round trips


def test_yaml_round_trip_is_exact(shop: SchemaDefinition) -> None:
    text = dump_definition(shop)
    again = parse_definition(text)
    assert again == shop
    assert dump_definition(again) == text
    assert list(again.tables) == ["customers", "orders", "order_lines"]  # order kept, not sorted
    assert list(again.tables["order_lines"].columns)[:3] == ["order_id", "line", "sku"]


def test_json_round_trip_is_exact(shop: SchemaDefinition, tmp_path: Path) -> None:
    text = dump_definition(shop, "json")
    assert parse_definition(text, "json") == shop
    (tmp_path / "shop.json").write_text(text)
    assert load_definition(tmp_path / "shop.json") == shop
    assert json.loads(text)["tables"]["orders"]["columns"]["total"] == {
        "type": "decimal(10, 2)",
        "nullable": False,
        "default": 0,
    }


def test_the_example_reads_as_written(shop: SchemaDefinition, tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(SHOP)
    assert load_definition(tmp_path / "shop.yaml") == shop
    customers, orders = shop.tables["customers"], shop.tables["orders"]
    assert customers.columns["id"] == Column("id", ColumnType("bigint"), nullable=False, identity=True)
    assert customers.columns["created_at"].default == Expression("CURRENT_TIMESTAMP")
    assert customers.columns["active"].default is True
    assert customers.indexes == (Index((Expression("lower(email)"),), unique=True),)
    assert orders.columns["status"].type == ColumnType("enum", enum="order_status")
    assert orders.columns["note"].renamed_from == "remark"
    assert orders.foreign_keys == (ForeignKey(("customer_id",), "customers", ("id",), on_delete="cascade"),)
    assert orders.indexes[1] == Index(("placed_on",), where="status <> 'cancelled'")
    assert orders.checks == {"total_not_negative": Check("total_not_negative", "total >= 0")}
    assert shop.tables["order_lines"].primary_key == PrimaryKey(("order_id", "line"), "order_lines_pkey")
    assert (
        shop.views["recent_orders"].sql_for("sqlite")
        == "SELECT * FROM orders WHERE placed_on > date('now', '-30 days')"
    )
    assert shop.views["recent_orders"].sql_for("mysql") == "SELECT * FROM orders WHERE placed_on > CURRENT_DATE - 30"
    assert shop.enums["order_status"].values == ("new", "paid", "shipped", "cancelled")


def test_a_definition_built_in_python_validates_and_round_trips() -> None:
    users = table("users", {"id": "bigint", "email": "varchar(100)"}, primary_key=PrimaryKey(("id",)))
    posts = table(
        "posts",
        {"id": "bigint", "user_id": "bigint", "parent_id": "bigint"},
        primary_key=PrimaryKey(("id",)),
        foreign_keys=(
            ForeignKey(("user_id",), "users", ("id",), on_delete="set null"),
            ForeignKey(("parent_id",), "posts", ("id",)),  # a table may reference itself
        ),
        unique=(UniqueConstraint(("user_id", "id")),),
    )
    definition = SchemaDefinition({"users": users, "posts": posts})
    assert validate_definition(definition) == definition
    assert parse_definition(dump_definition(definition)) == definition


# -- the JSON Schema


def test_the_json_schema_is_valid_and_shipped_in_the_package() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert json_schema() == schema  # read through importlib.resources, as from the wheel


def test_the_docs_have_definition_examples() -> None:
    assert any(where.startswith("schema.md") for where, _ in DOCS_DEFINITIONS)


@pytest.mark.parametrize(("where", "text"), DOCS_DEFINITIONS, ids=[where for where, _ in DOCS_DEFINITIONS])
def test_the_json_schema_accepts_every_example_in_the_docs(where: str, text: str) -> None:
    import yaml

    document = yaml.safe_load(text)
    assert list(Draft202012Validator(json_schema()).iter_errors(document)) == []
    parse_definition(text)  # and the semantic checks too


# -- semantic checks


def test_semantic_problems_name_their_paths(shop: SchemaDefinition) -> None:
    orders = shop.tables["orders"]
    broken = replace(
        orders,
        columns={
            **orders.columns,
            "total": Column("total", ColumnType("decimal", precision=2, scale=5)),
            "status": Column("status", ColumnType("enum", enum="state")),
            "note": Column("note", ColumnType("text"), identity=True),
        },
        unique=(UniqueConstraint(("id", "nope")),),
        indexes=(Index(("missing", Expression("lower(note)"))), Index(("id",), name="PK_ORDERS")),
        foreign_keys=(
            ForeignKey(("customer_id",), "customers", ("email", "name")),
            ForeignKey(("customer_id",), "customers", ("name",)),
            ForeignKey(("customer_id",), "clients", ("id",)),
        ),
    )
    problems = problems_of(replace(shop, tables={**shop.tables, "orders": broken}))
    fk = "fk_orders_customer_id_customers"  # two foreign keys from one column to one table: one name
    assert problems == [
        ("tables.orders.columns.status.type", "enum 'state' is not declared under enums"),
        ("tables.orders.columns.total.type", "scale 5 is greater than precision 2 in decimal(2, 5)"),
        ("tables.orders.columns.note.identity", "identity needs an integer type (smallint, int, bigint), not text"),
        ("tables.orders.unique.0.columns.1", "no column 'nope' in table 'orders'"),
        ("tables.orders.indexes.0.columns.0", "no column 'missing' in table 'orders'"),
        ("tables.orders.foreign_keys.0.references.columns", "1 columns reference 2"),
        ("tables.orders.foreign_keys.1.references.columns", "customers(name) is neither its primary key nor unique"),
        ("tables.orders.foreign_keys.2.references.table", "no table 'clients' in the definition"),
        ("tables.orders.foreign_keys.1", f"name {fk!r} is already used by tables.orders.foreign_keys.0"),
        ("tables.orders.indexes.1", "name 'PK_ORDERS' is already used by tables.orders.primary_key"),
    ]


def test_two_tables_with_one_name_after_the_convention_collide() -> None:
    first = table("a", {"x": "int"}, indexes=(Index(("x",)), Index(("x",), where="x > 0")))
    other = table("b", {"x": "int"}, unique=(UniqueConstraint(("x",), name="ix_a_x"),))
    problems = problems_of(SchemaDefinition({"a": first, "b": other}))
    assert problems == [
        ("tables.a.indexes.1", "name 'ix_a_x' is already used by tables.a.indexes.0"),
        ("tables.b.unique.0", "name 'ix_a_x' is already used by tables.a.indexes.0"),
    ]


def test_a_cycle_of_foreign_keys_names_its_tables() -> None:
    def linked(name: str, target: str) -> Table:
        return table(
            name,
            {"id": "int", "other": "int"},
            primary_key=PrimaryKey(("id",)),
            foreign_keys=(ForeignKey(("other",), target, ("id",)),),
        )

    definition = SchemaDefinition({"a": linked("a", "b"), "b": linked("b", "c"), "c": linked("c", "a")})
    [(path, message)] = problems_of(definition)
    assert path == "tables.a.foreign_keys"
    assert message.startswith("foreign keys form a cycle a -> b -> c -> a: ")
    assert "deferred constraints" in message


def test_schema_error_is_a_config_error_with_one_line_per_problem() -> None:
    error = SchemaError([("a.b", "first"), ("c", "second")])
    assert isinstance(error, ConfigError)
    assert str(error) == "a.b: first\nc: second"


def test_the_api_is_exported_lazily_and_help_loads_neither_yaml_nor_jsonschema() -> None:
    import dbkeeper

    assert dbkeeper.SchemaDefinition is SchemaDefinition
    assert dbkeeper.load_definition is load_definition
    assert dbkeeper.validate_definition is validate_definition
    code = (
        "import sys\nimport dbkeeper.cli\n"
        "print(','.join(m for m in ('yaml', 'jsonschema', 'dbkeeper.schema') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_an_item_kept_under_another_name_is_refused(shop: SchemaDefinition) -> None:
    orders = shop.tables["orders"]
    moved = replace(
        orders,
        columns={**orders.columns, "sum": orders.columns["total"]},
        checks={"other": orders.checks["total_not_negative"]},
    )
    problems = problems_of(replace(shop, tables={**shop.tables, "orders": moved, "clients": shop.tables["customers"]}))
    assert problems == [
        ("tables.clients", "is keyed 'clients' but named 'customers'"),
        ("tables.orders.columns.sum", "is keyed 'sum' but named 'total'"),
        ("tables.orders.checks.other", "is keyed 'other' but labelled 'total_not_negative'"),
    ]
