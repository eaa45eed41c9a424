"""``diff_schemas``: the ordered changes between two definitions, pure Python (no database).

Definitions are written as YAML, as users write them, and read with ``parse_definition``
(validated). Each test states the exact list of changes it expects, in order.
"""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest
from test_schema_generate import RICH

from dbkeeper.schema import (
    Change,
    Column,
    ColumnType,
    Enum,
    ForeignKey,
    Index,
    PrimaryKey,
    Renames,
    SchemaDefinition,
    Table,
    View,
    diff_schemas,
    generate_schema,
    inspect_schema,
    parse_definition,
    renames_of,
)
from dbkeeper.schema.changes import ORDER
from dbkeeper.schema.normalise import RULES, normalise, read_back

SHOP = """\
enums:
  order_status:
    values: [new, paid, shipped, cancelled]
views:
  big_orders:
    sql: SELECT id FROM orders WHERE total > 100
tables:
  customers:
    columns:
      id: {type: bigint, identity: true, nullable: false}
      email: {type: varchar(255), nullable: false}
      name: {type: text}
    primary_key: [id]
    unique:
      - columns: [email]
  orders:
    columns:
      id: {type: bigint, identity: true, nullable: false}
      customer_id: {type: bigint, nullable: false}
      status: {type: enum(order_status), nullable: false, default: new}
      total: {type: "decimal(12, 2)", nullable: false, default: 0}
      note: {type: text}
    primary_key: [id]
    foreign_keys:
      - columns: [customer_id]
        references: {table: customers, columns: [id]}
    indexes:
      - columns: [customer_id]
    checks:
      total_not_negative: total >= 0
"""


def load(text: str) -> SchemaDefinition:
    """A definition from YAML text (dedented), validated."""
    return parse_definition(textwrap.dedent(text))


def edited(text: str, *replacements: tuple[str, str]) -> SchemaDefinition:
    """The definition of *text* with each (old, new) replacement made exactly once."""
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return load(text)


def listed(old: SchemaDefinition, new: SchemaDefinition) -> list[tuple[str, str]]:
    """The diff as (kind, target) pairs, in order."""
    return [(change.kind, change.target) for change in diff_schemas(old, new).changes]


def down(old: SchemaDefinition, new: SchemaDefinition) -> tuple[Change, ...]:
    """The changes of the down migration: new → old, the renames inverted."""
    return diff_schemas(new, old, renames_of(old, new).inverted()).changes


# --- nothing to do ---------------------------------------------------------------------


@pytest.mark.parametrize("text", [SHOP, RICH], ids=["shop", "rich"])
def test_a_definition_equals_itself(text: str) -> None:
    definition = load(text)
    assert not diff_schemas(definition, definition)
    assert diff_schemas(definition, load(text)).changes == ()
    assert not diff_schemas(SchemaDefinition(), SchemaDefinition())


def test_normalisation_equivalents_give_no_changes() -> None:
    plain = load(
        """\
        tables:
          t:
            columns:
              id: {type: int}
              a: {type: int, default: {expression: "0"}}
              b: {type: text, default: {expression: "'x'"}}
              c: {type: bool, default: {expression: "TRUE"}}
              d: {type: timestamp, default: {expression: "current_timestamp(6)"}}
              e: {type: text, default: {expression: "NULL"}}
              f: {type: bigint, identity: true, default: 7}
              g: {type: "decimal(8, 2)", default: {expression: "(1.50)"}}
            primary_key: [id]
            unique:
              - columns: [a]
              - columns: [b]
            foreign_keys:
              - columns: [a]
                references: {table: t, columns: [id]}
                on_delete: no action
            indexes:
              - columns: [c]
              - columns: [d]
            checks:
              a_positive: a > 0
              b_short: length(b) < 9
        """
    )
    spelled_out = load(
        """\
        tables:
          t:
            columns:
              g: {type: "decimal(8, 2)", default: 1.5}
              f: {type: bigint, identity: true, nullable: false}
              e: {type: text}
              d: {type: timestamp, default: {expression: CURRENT_TIMESTAMP}}
              c: {type: bool, default: true}
              b: {type: text, default: x}
              a: {type: int, default: 0}
              id: {type: int, nullable: false, renamed_from: key}
            primary_key: {columns: [id], name: pk_t}
            unique:
              - {columns: [b], name: uq_t_b}
              - columns: [a]
            foreign_keys:
              - columns: [a]
                references: {table: t, columns: [id]}
                name: fk_t_a_t
            indexes:
              - {columns: [d], name: ix_t_d}
              - columns: [c]
            checks:
              b_short: {expression: length(b) < 9, name: ck_t_b_short}
              a_positive: a > 0
        """
    )
    assert listed(plain, spelled_out) == []
    assert listed(spelled_out, plain) == []


def test_every_rule_is_documented() -> None:
    assert [rule.__name__ for rule in RULES] == [
        "resolve_names",
        "primary_key_not_null",
        "forget_hints",
        "identity_without_default",
        "defaults_as_read",
        "default_actions",
    ]
    assert all(rule.__doc__ for rule in RULES)


# --- each kind of change ---------------------------------------------------------------

NEXT = """\
enums:
  order_status:
    values: [new, paid, packed, shipped, cancelled, refunded]
  priority:
    values: [low, high]
tables:
  customers:
    comment: People who buy.
    columns:
      id: {type: bigint, identity: true, nullable: false}
      email: {type: varchar(255), nullable: false}
      name: {type: text, nullable: false}
      phone: {type: varchar(40)}
    primary_key: [id]
    indexes:
      - columns: [email]
        unique: true
  orders:
    columns:
      id: {type: bigint, identity: true, nullable: false}
      customer_id: {type: bigint, nullable: false}
      status: {type: enum(order_status), nullable: false, default: new}
      total: {type: "decimal(14, 2)", nullable: false, default: 0}
      priority: {type: enum(priority)}
    primary_key: [id]
    foreign_keys:
      - columns: [customer_id]
        references: {table: customers, columns: [id]}
        on_delete: cascade
    indexes:
      - columns: [customer_id]
    checks:
      total_not_negative: total >= 0
      total_small: total < 1000000
  payments:
    columns:
      id: {type: bigint, identity: true, nullable: false}
      order_id: {type: bigint, nullable: false}
    primary_key: [id]
    foreign_keys:
      - columns: [order_id]
        references: {table: orders, columns: [id]}
views:
  big_orders:
    sql: SELECT id FROM orders WHERE total > 1000
  paid_orders:
    sql: SELECT id FROM orders WHERE status = 'paid'
"""


def test_every_kind_of_change_in_order() -> None:
    assert listed(load(SHOP), load(NEXT)) == [
        ("create_enum", "priority"),
        ("add_enum_values", "order_status"),
        ("drop_view", "big_orders"),
        ("drop_foreign_key", "orders.fk_orders_customer_id_customers"),
        ("drop_unique", "customers.uq_customers_email"),
        ("create_table", "payments"),
        ("add_column", "customers.phone"),
        ("add_column", "orders.priority"),
        ("alter_column", "customers.name"),
        ("alter_column", "orders.total"),
        ("drop_column", "orders.note"),
        ("add_check", "orders.ck_orders_total_small"),
        ("add_index", "customers.ix_customers_email"),
        ("add_foreign_key", "orders.fk_orders_customer_id_customers"),
        ("alter_table_comment", "customers"),
        ("create_view", "big_orders"),
        ("create_view", "paid_orders"),
    ]
    assert [kind for kind, _ in listed(load(NEXT), load(SHOP))] == [
        "drop_view",
        "drop_view",
        "drop_foreign_key",
        "drop_index",
        "drop_check",
        "add_column",
        "alter_column",
        "alter_column",
        "drop_column",
        "drop_column",
        "drop_table",
        "add_unique",
        "add_foreign_key",
        "alter_table_comment",
        "remove_enum_values",
        "drop_enum",
        "create_view",
    ]


def test_changes_carry_the_objects_and_a_summary() -> None:
    old, new = load(SHOP), load(NEXT)
    changes = {change.target: change for change in diff_schemas(old, new).changes}
    name = changes["customers.name"]
    assert isinstance(name.before, Column) and isinstance(name.after, Column)
    assert (name.before.nullable, name.after.nullable, name.destructive) == (True, False, None)
    assert name.summary == "alter column customers.name: not null (fails while a row holds NULL)"
    total = changes["orders.total"]
    assert total.summary == "alter column orders.total: type decimal(12, 2) → decimal(14, 2)"
    assert total.destructive is None
    assert changes["order_status"].summary == "add 'packed', 'refunded' to enum order_status"
    assert changes["orders.note"].summary == "drop column orders.note"
    assert changes["orders.ck_orders_total_small"].summary == "add check orders.ck_orders_total_small"
    assert changes["payments"].after == normalise(new).tables["payments"]
    assert changes["payments"].after.primary_key == PrimaryKey(("id",), "pk_payments")  # type: ignore[union-attr]
    assert changes["customers"].summary == "change the comment of table customers"
    foreign_key = next(c for c in diff_schemas(old, new).changes if c.kind == "add_foreign_key")
    assert foreign_key.after == ForeignKey(
        ("customer_id",), "customers", ("id",), on_delete="cascade", name="fk_orders_customer_id_customers"
    )


def test_a_changed_primary_key_is_dropped_and_added() -> None:
    old = load(SHOP)
    key = "    primary_key: [id]\n    foreign_keys"
    wider = edited(SHOP, (key, "    primary_key: [id, customer_id]\n    foreign_keys"))
    assert listed(old, wider) == [("drop_primary_key", "orders.pk_orders"), ("add_primary_key", "orders.pk_orders")]
    renamed = edited(SHOP, (key, "    primary_key: {columns: [id], name: orders_pkey}\n    foreign_keys"))
    assert listed(old, renamed) == [("drop_primary_key", "orders.pk_orders"), ("add_primary_key", "orders.orders_pkey")]
    keyless = edited(SHOP, (key, "    foreign_keys"))
    assert listed(old, keyless) == [("drop_primary_key", "orders.pk_orders")]
    assert listed(keyless, old) == [("add_primary_key", "orders.pk_orders")]


def test_same_name_other_content_is_dropped_then_added() -> None:
    old = load(SHOP)
    new = edited(
        SHOP,
        (
            "      - columns: [customer_id]\n    checks",
            "      - {columns: [customer_id, total], name: ix_orders_customer_id}\n    checks",
        ),
        ("total_not_negative: total >= 0", "total_not_negative: total > 0"),
    )
    assert listed(old, new) == [
        ("drop_index", "orders.ix_orders_customer_id"),
        ("drop_check", "orders.ck_orders_total_not_negative"),
        ("add_check", "orders.ck_orders_total_not_negative"),
        ("add_index", "orders.ix_orders_customer_id"),
    ]


def test_views_compare_sql_dialects_and_comment() -> None:
    old = load(SHOP)
    for replacement in [
        "    sql: SELECT id FROM orders WHERE total > 100\n    comment: Big ones.\n",
        "    sql: SELECT id FROM orders WHERE total > 100\n    dialects: {sqlite: SELECT id FROM orders}\n",
        "    sql: SELECT id FROM orders WHERE total > 200\n",
    ]:
        new = edited(SHOP, ("    sql: SELECT id FROM orders WHERE total > 100\n", replacement))
        assert listed(old, new) == [("drop_view", "big_orders"), ("create_view", "big_orders")]
    gone = edited(SHOP, ("views:\n  big_orders:\n    sql: SELECT id FROM orders WHERE total > 100\n", ""))
    assert listed(old, gone) == [("drop_view", "big_orders")]
    assert listed(gone, old) == [("create_view", "big_orders")]


def test_enum_values() -> None:
    old = load(SHOP)
    appended = edited(SHOP, ("shipped, cancelled]", "shipped, cancelled, refunded]"))
    removed = edited(SHOP, ("shipped, cancelled]", "shipped]"))
    reordered = edited(SHOP, ("[new, paid, shipped, cancelled]", "[new, shipped, paid, cancelled]"))
    commented = edited(SHOP, ("shipped, cancelled]\n", "shipped, cancelled]\n    comment: Where an order is.\n"))
    assert listed(old, appended) == [("add_enum_values", "order_status")]
    assert [(c.kind, c.summary, c.destructive) for c in diff_schemas(old, removed).changes] == [
        (
            "remove_enum_values",
            "remove 'cancelled' from enum order_status",
            "removes 'cancelled' from enum order_status",
        )
    ]
    assert [(c.kind, c.summary, c.destructive) for c in diff_schemas(old, reordered).changes] == [
        ("remove_enum_values", "reorder the values of enum order_status", None)
    ]
    assert [(c.kind, c.summary) for c in diff_schemas(old, commented).changes] == [
        ("add_enum_values", "change the comment of enum order_status")
    ]


# --- renames ---------------------------------------------------------------------------

RENAMED = (
    ("  customers:\n    columns:", "  clients:\n    renamed_from: customers\n    columns:"),
    ("      name: {type: text}", "      full_name: {type: text, renamed_from: name}"),
    ("      note: {type: text}", "      remark: {type: text, renamed_from: note}"),
    ("references: {table: customers, columns: [id]}", "references: {table: clients, columns: [id]}"),
)


def test_rename_hints_rename_tables_and_columns() -> None:
    old, new = load(SHOP), edited(SHOP, *RENAMED)
    assert renames_of(old, new) == Renames(
        tables={"clients": "customers"},
        columns={("clients", "full_name"): "name", ("orders", "remark"): "note"},
    )
    assert listed(old, new) == [
        ("drop_foreign_key", "orders.fk_orders_customer_id_customers"),
        ("drop_unique", "customers.uq_customers_email"),
        ("drop_primary_key", "customers.pk_customers"),
        ("rename_table", "clients"),
        ("rename_column", "clients.full_name"),
        ("rename_column", "orders.remark"),
        ("add_primary_key", "clients.pk_clients"),
        ("add_unique", "clients.uq_clients_email"),
        ("add_foreign_key", "orders.fk_orders_customer_id_clients"),
    ]
    summaries = [c.summary for c in diff_schemas(old, new).changes if c.kind.startswith("rename")]
    assert summaries == [
        "rename table customers to clients",
        "rename column clients.name to clients.full_name",
        "rename column orders.note to orders.remark",
    ]


def test_named_constraints_survive_renames() -> None:
    shop = SHOP.replace(
        "      - columns: [customer_id]\n        references",
        "      - name: orders_customer\n        columns: [customer_id]\n        references",
    )
    named = shop.replace("      - columns: [email]", "      - {columns: [email], name: customers_email}")
    old = load(named)
    new = edited(
        named,
        ("  customers:\n    columns:", "  clients:\n    renamed_from: customers\n    columns:"),
        (
            "      email: {type: varchar(255), nullable: false}",
            "      mail: {type: varchar(255), nullable: false, renamed_from: email}",
        ),
        ("{columns: [email], name: customers_email}", "{columns: [mail], name: customers_email}"),
        ("references: {table: customers, columns: [id]}", "references: {table: clients, columns: [id]}"),
        ("    primary_key: [id]\n    unique", "    primary_key: {columns: [id], name: pk_customers}\n    unique"),
    )
    assert listed(old, new) == [("rename_table", "clients"), ("rename_column", "clients.mail")]


def test_a_hint_that_no_longer_applies_gives_nothing() -> None:
    new = edited(SHOP, *RENAMED)
    applied = load(
        SHOP.replace("customers", "clients")
        .replace("name: {type: text}", "full_name: {type: text}")
        .replace("note:", "remark:")
    )
    assert renames_of(applied, new) == Renames()
    assert listed(applied, new) == []
    # the old definition has both names: the hint does not apply, and both tables are compared as they are
    both = load(SHOP + "  clients:\n    columns: {id: {type: int}}\n")
    assert renames_of(both, new) == Renames(columns={("orders", "remark"): "note"})
    assert ("rename_table", "clients") not in listed(both, new)
    assert ("drop_table", "customers") in listed(both, new)


OPPOSITE = {
    "create_table": "drop_table",
    "add_column": "drop_column",
    "create_view": "drop_view",
    "create_enum": "drop_enum",
    "add_enum_values": "remove_enum_values",
    **{f"add_{kind}": f"drop_{kind}" for kind in ("primary_key", "unique", "foreign_key", "index", "check")},
}
OPPOSITE.update({value: key for key, value in list(OPPOSITE.items())})


def test_the_down_migration_is_the_inverse() -> None:
    old = load(SHOP)
    new = edited(
        SHOP,
        *RENAMED,
        (
            "  orders:\n",
            "  audit:\n    columns: {id: {type: int, nullable: false}}\n    primary_key: [id]\n  orders:\n",
        ),
        ("shipped, cancelled]", "shipped]"),
        ('      total: {type: "decimal(12, 2)", nullable: false, default: 0}\n', ""),
        ("    checks:\n      total_not_negative: total >= 0\n", ""),
        ("WHERE total > 100", "WHERE id > 100"),  # the view read the dropped column
    )
    up = diff_schemas(old, new).changes
    back = down(old, new)
    assert [(c.kind, c.target) for c in back] == [
        ("add_enum_values", "order_status"),
        ("drop_view", "big_orders"),
        ("drop_foreign_key", "orders.fk_orders_customer_id_clients"),
        ("drop_unique", "clients.uq_clients_email"),
        ("drop_primary_key", "clients.pk_clients"),
        ("rename_table", "customers"),
        ("rename_column", "customers.name"),
        ("rename_column", "orders.note"),
        ("add_column", "orders.total"),
        ("drop_table", "audit"),
        ("add_primary_key", "customers.pk_customers"),
        ("add_unique", "customers.uq_customers_email"),
        ("add_check", "orders.ck_orders_total_not_negative"),
        ("add_foreign_key", "orders.fk_orders_customer_id_customers"),
        ("create_view", "big_orders"),
    ]
    # the same objects, each change reversed: renames the other way, drops for creates
    mirrored = [(c.kind, c.after, c.before) for c in up]
    for change in back:
        mirrored.remove((OPPOSITE.get(change.kind, change.kind), change.before, change.after))
    assert mirrored == []
    assert [c.destructive for c in back if c.destructive] == ["drops table audit and its rows"]


def test_inverted_renames() -> None:
    renames = Renames(tables={"clients": "customers"}, columns={("clients", "full_name"): "name", ("orders", "x"): "y"})
    assert renames.inverted() == Renames(
        tables={"customers": "clients"}, columns={("customers", "name"): "full_name", ("orders", "y"): "x"}
    )
    assert renames.inverted().inverted() == renames


# --- destructive changes ---------------------------------------------------------------


def test_destructive_changes_and_their_reasons() -> None:
    old = load(SHOP + "  legacy:\n    columns: {id: {type: int}}\n")
    new = edited(
        SHOP,
        ("      note: {type: text}\n", ""),
        ("decimal(12, 2)", "decimal(8, 2)"),
        ("shipped, cancelled]", "shipped]"),
        ("      name: {type: text}", "      name: {type: int}"),
    )
    assert [(c.target, c.destructive) for c in diff_schemas(old, new).destructive] == [
        ("customers.name", "converts customers.name from text to int: values may not convert"),
        ("orders.total", "narrows orders.total from decimal(12, 2) to decimal(8, 2)"),
        ("orders.note", "drops column orders.note"),
        ("legacy", "drops table legacy and its rows"),
        ("order_status", "removes 'cancelled' from enum order_status"),
    ]


def column_change(old_type: str, new_type: str) -> Change:
    """The one change of column t.c's type from *old_type* to *new_type*."""
    text = 'enums: {e: {values: [ab, abcd]}}\ntables:\n  t:\n    columns: {c: {type: "%s"}}\n'
    changes = diff_schemas(load(text % old_type), load(text % new_type)).changes
    assert [change.kind for change in changes] == ["alter_column"]
    return changes[0]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("smallint", "int"),
        ("int", "bigint"),
        ("smallint", "bigint"),
        ("float", "double"),
        ("varchar(10)", "varchar(10000)"),
        ("varchar(10)", "text"),
        ("decimal(8, 2)", "decimal(12, 2)"),
        ("decimal(8, 2)", "decimal(9, 3)"),
        ("int", "decimal(10, 0)"),
        ("bigint", "decimal(21, 2)"),
        ("enum(e)", "text"),
        ("enum(e)", "varchar(4)"),
    ],
)
def test_widening_is_not_destructive(old: str, new: str) -> None:
    assert column_change(old, new).destructive is None


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("bigint", "int", "narrows t.c from bigint to int"),
        ("double", "float", "narrows t.c from double to float"),
        ("varchar(10)", "varchar(9)", "narrows t.c from varchar(10) to varchar(9)"),
        ("text", "varchar(100)", "narrows t.c from text to varchar(100)"),
        ("decimal(8, 2)", "decimal(8, 3)", "narrows t.c from decimal(8, 2) to decimal(8, 3)"),
        ("decimal(8, 2)", "decimal(9, 1)", "narrows t.c from decimal(8, 2) to decimal(9, 1)"),
        ("int", "decimal(9, 0)", "narrows t.c from int to decimal(9, 0)"),
        ("decimal(8, 0)", "bigint", "narrows t.c from decimal(8, 0) to bigint"),
        ("enum(e)", "varchar(3)", "narrows t.c from enum(e) to varchar(3)"),
        ("text", "enum(e)", "narrows t.c from text to enum(e)"),
        ("int", "double", "narrows t.c from int to double"),
        ("timestamp", "date", "converts t.c from timestamp to date: values may not convert"),
        ("text", "bytes", "converts t.c from text to bytes: values may not convert"),
    ],
)
def test_narrowing_is_destructive(old: str, new: str, reason: str) -> None:
    assert column_change(old, new).destructive == reason


# --- order -----------------------------------------------------------------------------

CHAIN = """\
tables:
  lines:
    columns: {id: {type: int}, order_id: {type: int}}
    foreign_keys:
      - columns: [order_id]
        references: {table: orders, columns: [id]}
  orders:
    columns: {id: {type: int}, customer_id: {type: int}}
    primary_key: [id]
    foreign_keys:
      - columns: [customer_id]
        references: {table: customers, columns: [id]}
  notes:
    columns: {id: {type: int}}
  customers:
    columns: {id: {type: int}}
    primary_key: [id]
"""


def test_tables_are_created_referenced_first_and_dropped_children_first() -> None:
    empty = SchemaDefinition()
    chain = load(CHAIN)
    assert listed(empty, chain) == [
        ("create_table", "customers"),
        ("create_table", "orders"),
        ("create_table", "lines"),
        ("create_table", "notes"),
    ]
    assert listed(chain, empty) == [
        ("drop_table", "notes"),
        ("drop_table", "lines"),
        ("drop_table", "orders"),
        ("drop_table", "customers"),
    ]


def test_changes_follow_order() -> None:
    changes = [*diff_schemas(load(SHOP), load(NEXT)).changes, *diff_schemas(load(NEXT), load(SHOP)).changes]
    for one in (changes[: len(changes) // 2], changes[len(changes) // 2 :]):
        ranks = [ORDER.index(change.kind) for change in one]
        assert ranks == sorted(ranks)


def test_a_diff_built_in_python() -> None:
    int_type = ColumnType("int")
    old = SchemaDefinition(tables={"t": Table("t", {"a": Column("a", int_type)})}, enums={"e": Enum("e", ("x",))})
    new = SchemaDefinition(tables={"t": Table("t", {"a": Column("a", int_type, nullable=False)})})
    assert [(c.kind, c.target) for c in diff_schemas(old, new).changes] == [
        ("alter_column", "t.a"),
        ("drop_enum", "e"),
    ]


def test_a_long_chain_of_tables_is_ordered() -> None:
    count = 1200  # deeper than Python's recursion limit
    tables = {
        f"t{n}": Table(
            f"t{n}",
            {"id": Column("id", ColumnType("int")), "up": Column("up", ColumnType("int"))},
            PrimaryKey(("id",)),
            foreign_keys=(ForeignKey(("up",), f"t{n + 1}", ("id",)),) if n < count else (),
        )
        for n in range(1, count + 1)
    }  # each table references the next one, listed after it
    chain = SchemaDefinition(tables=tables)
    created = [change.name for change in diff_schemas(SchemaDefinition(), chain).changes]
    assert created == [f"t{n}" for n in range(count, 0, -1)]
    dropped = [change.name for change in diff_schemas(chain, SchemaDefinition()).changes]
    assert dropped == [f"t{n}" for n in range(1, count + 1)]


# --- as an engine reads a definition back ----------------------------------------------

ENGINE = """\
enums:
  mood:
    values: [ok, bad]
    comment: How it went.
  unused:
    values: [x]
tables:
  a:
    comment: Rows.
    columns:
      id: {type: bigint, identity: true, nullable: false}
      mood: {type: enum(mood), comment: Feeling.}
      seen: {type: timestamptz}
      ref: {type: uuid}
      weight: {type: double}
    primary_key: [id]
    indexes:
      - columns: [{expression: lower(ref)}]
      - columns: [weight]
        where: weight > 0
  b:
    columns:
      id: {type: int}
      line: {type: int, identity: true}
    primary_key: {columns: [id, line], name: b_key}
  c:
    columns:
      id: {type: int}
    primary_key: [id]
views:
  v:
    sql: SELECT 1
    dialects: {sqlite: SELECT 2}
    comment: One.
"""


def test_read_back_by_sqlite() -> None:
    back = read_back(load(ENGINE), "sqlite")
    a, b, c = back.tables["a"], back.tables["b"], back.tables["c"]
    assert a.columns["id"] == Column("id", ColumnType("int"), nullable=False, identity=True)
    assert c.columns["id"] == Column("id", ColumnType("int"), identity=True)  # INTEGER PRIMARY KEY: the rowid
    assert b.columns["line"].identity is False  # not a one-column key: not numbered
    assert [str(column.type) for column in a.columns.values()] == ["int", "enum(a_mood)", "timestamp", "text", "float"]
    assert back.enums == {"a_mood": Enum("a_mood", ("ok", "bad"))}
    assert (a.comment, a.columns["mood"].comment) == (None, None)
    assert back.views["v"] == View("v", "SELECT 2")
    assert a.indexes == load(ENGINE).tables["a"].indexes
    assert read_back(back, "sqlite") == back


def test_read_back_by_mysql() -> None:
    back = read_back(load(ENGINE), "mysql")
    a, b = back.tables["a"], back.tables["b"]
    assert a.columns["id"].type == ColumnType("bigint") and a.columns["id"].identity
    assert b.columns["line"].identity is False  # not the first column of the key
    assert [str(column.type) for column in a.columns.values()] == [
        "bigint",
        "enum(a_mood)",
        "timestamp",
        "uuid",
        "double",
    ]
    assert a.indexes == (Index(("weight",)),)  # the expression index left out, the partial one covers every row
    assert b.primary_key == PrimaryKey(("id", "line"))  # PRIMARY, read as the convention's name
    assert (a.comment, a.columns["mood"].comment) == ("Rows.", "Feeling.")
    assert back.views["v"] == View("v", "SELECT 1")
    assert back.enums == {"a_mood": Enum("a_mood", ("ok", "bad"))}
    assert read_back(back, "mysql") == back


def test_read_back_by_postgresql_keeps_everything_but_other_dialects_sql() -> None:
    definition = load(ENGINE)
    back = read_back(definition, "postgresql")
    assert back.views["v"] == View("v", "SELECT 1", comment="One.")
    assert back.tables == definition.tables and back.enums == definition.enums


def test_the_dialect_applies_to_both_sides() -> None:
    definition = load(ENGINE)
    assert listed(definition, read_back(definition, "sqlite")) != []
    for dialect in ("sqlite", "mysql", "postgresql"):
        assert not diff_schemas(definition, read_back(definition, dialect), dialect=dialect)
        assert not diff_schemas(read_back(definition, dialect), definition, dialect=dialect)
    wider = edited(
        ENGINE, ("      id: {type: int}\n    primary_key: [id]", "      id: {type: bigint}\n    primary_key: [id]")
    )
    assert [(c.kind, c.summary) for c in diff_schemas(definition, wider, dialect="sqlite").changes] == [
        ("alter_column", "alter column c.id: type int → bigint; no identity")
    ]


def test_a_sqlite_database_generated_from_a_definition_diffs_empty(tmp_path: Path) -> None:
    definition = load(RICH)
    database = tmp_path / "rich.db"
    with sqlite3.connect(database) as conn:
        conn.executescript(generate_schema(definition, "sqlite").sql)
    conn.close()
    live = inspect_schema(f"sqlite:///{database}")
    assert diff_schemas(live, definition)  # the lossy mappings, without the dialect
    assert listed(live, definition) != listed(definition, definition)
    assert not diff_schemas(live, definition, dialect="sqlite")
    assert not diff_schemas(definition, live, dialect="sqlite")
