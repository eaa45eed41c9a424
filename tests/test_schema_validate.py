"""``dbkeeper schema validate`` as a real process: one line per problem, exit 1; usage errors exit 2; --json."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import dbkeeper

VALID = """\
tables:
  customers:
    columns:
      id: {type: bigint, identity: true, nullable: false}
      email: {type: varchar(255)}
    primary_key: [id]
  orders:
    columns:
      id: {type: bigint}
      customer_id: {type: bigint}
      total: {type: "decimal(10, 2)"}
    primary_key: [id]
    foreign_keys:
      - columns: [customer_id]
        references: {table: customers, columns: [id]}
"""

CYCLE = """\
tables:
  authors:
    columns: {id: {type: int}, favourite_book: {type: int}}
    primary_key: [id]
    foreign_keys: [{columns: [favourite_book], references: {table: books, columns: [id]}}]
  books:
    columns: {id: {type: int}, author: {type: int}}
    primary_key: [id]
    foreign_keys: [{columns: [author], references: {table: authors, columns: [id]}}]
"""

# Each bad input of the issue, and the one line it must give.
BAD = {
    "invalid YAML": (
        "tables:\n  orders:\n    columns: {id: {type: int}\n",
        "error: bad.yaml:4:1: invalid YAML: did not find expected ',' or '}'",
    ),
    "JSON Schema": (
        VALID.replace("email: {type: varchar(255)}", "email: {type: varchar(255), nullable: maybe}"),
        "error: tables.customers.columns.email.nullable: 'maybe' is not of type 'boolean'",
    ),
    "unknown type": (
        VALID.replace('total: {type: "decimal(10, 2)"}', "total: {type: money2}"),
        "error: tables.orders.columns.total.type: unknown type 'money2' (portable types: bool, smallint, int, bigint, "
        "decimal(p, s), float, double, text, varchar(n), bytes, date, time, timestamp, timestamptz, json, uuid, "
        "enum(name))",
    ),
    "foreign key to a missing table": (
        VALID.replace("references: {table: customers", "references: {table: clients"),
        "error: tables.orders.foreign_keys.0.references.table: no table 'clients' in the definition",
    ),
    "cycle of foreign keys": (
        CYCLE,
        "error: tables.authors.foreign_keys: foreign keys form a cycle authors -> books -> authors: creating and "
        "filling these tables would need deferred constraints, which not every engine has; remove one of these "
        "foreign keys",
    ),
    "duplicate key": (
        VALID.replace("email: {type: varchar(255)}", "email: {type: varchar(255)}\n      email: {type: text}"),
        "error: bad.yaml:6:7: invalid YAML: duplicate key 'email'",
    ),
    "view without SQL": (
        "tables: {}\nviews:\n  recent: {comment: no sql}\n",
        "error: views.recent: a view needs sql or dialects",
    ),
    "missing column": (
        VALID.replace("primary_key: [id]\n  orders", "primary_key: [id]\n    unique: [{columns: [name]}]\n  orders"),
        "error: tables.customers.unique.0.columns.0: no column 'name' in table 'customers'",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_bad_input_gives_exactly_one_line_and_exit_1(case: str, tmp_path: Path) -> None:
    text, line = BAD[case]
    (tmp_path / "bad.yaml").write_text(text)
    run = dbkeeper("schema", "validate", "bad.yaml", cwd=tmp_path, check=False)
    assert (run.code, run.out, run.err) == (1, "", line + "\n")


def test_a_valid_file_prints_one_summary_line(tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(VALID)
    run = dbkeeper("schema", "validate", "shop.yaml", cwd=tmp_path)
    assert (run.out, run.err) == ("shop.yaml: valid, 2 tables, 0 views, 0 enums\n", "")


def test_every_problem_is_listed(tmp_path: Path) -> None:
    text = VALID.replace('total: {type: "decimal(10, 2)"}', 'total: {type: "decimal(2, 10)", identity: true}')
    (tmp_path / "bad.yaml").write_text(text.replace("varchar(255)", "enum(mood)"))
    run = dbkeeper("schema", "validate", "bad.yaml", cwd=tmp_path, check=False)
    assert run.code == 1
    assert run.err.splitlines() == [
        "error: tables.customers.columns.email.type: enum 'mood' is not declared under enums",
        "error: tables.orders.columns.total.type: scale 10 is greater than precision 2 in decimal(2, 10)",
        "error: tables.orders.columns.total.identity: identity needs an integer type (smallint, int, bigint), "
        "not decimal(2, 10)",
    ]


def test_json_output(tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(VALID)
    (tmp_path / "bad.yaml").write_text(BAD["foreign key to a missing table"][0])
    good = dbkeeper("schema", "validate", "--json", "shop.yaml", cwd=tmp_path)
    assert good.json() == {"valid": True, "problems": []}
    bad = dbkeeper("schema", "validate", "bad.yaml", "--json", cwd=tmp_path, check=False)
    assert (bad.code, bad.err) == (1, "")
    assert bad.json() == {
        "valid": False,
        "problems": [
            {"path": "tables.orders.foreign_keys.0.references.table", "message": "no table 'clients' in the definition"}
        ],
    }


def test_a_json_file_is_read_as_json(tmp_path: Path) -> None:
    (tmp_path / "shop.json").write_text('{"tables": {"t": {"columns": {"id": {"type": "int"}}}}}')
    assert (
        dbkeeper("schema", "validate", "shop.json", cwd=tmp_path).out == "shop.json: valid, 1 table, 0 views, 0 enums\n"
    )
    (tmp_path / "bad.json").write_text('{"tables": {\n  "t": {"columns": {}},\n}}')
    run = dbkeeper("schema", "validate", "bad.json", cwd=tmp_path, check=False)
    assert (run.code, run.err) == (
        1,
        "error: bad.json:3:1: invalid JSON: Expecting property name enclosed in double quotes\n",
    )
    (tmp_path / "twice.json").write_text('{"tables": {}, "tables": {}}')
    run = dbkeeper("schema", "validate", "twice.json", cwd=tmp_path, check=False)
    assert (run.code, run.err) == (1, "error: twice.json: invalid JSON: duplicate key 'tables'\n")


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("missing.yaml", "error: missing.yaml: no such file"),
        ("empty.yaml", "error: (top level): the document is empty; a definition needs at least 'tables'"),
    ],
)
def test_a_file_that_is_not_there_or_not_a_definition_is_one_line(name: str, line: str, tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    run = dbkeeper("schema", "validate", name, cwd=tmp_path, check=False)
    assert (run.code, run.out, run.err) == (1, "", line + "\n")


@pytest.mark.parametrize(
    "args",
    [
        ["schema", "validate"],
        ["schema", "validate", "a.yaml", "--bogus"],
        ["schema", "nope"],
        ["schema", "validate", "."],
    ],
)
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    run = dbkeeper(*args, cwd=tmp_path, check=False)
    assert run.code == 2
    assert "Traceback" not in run.err and run.err.splitlines()[-1].startswith("Error: ")
