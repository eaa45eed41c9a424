"""A definition as a document (the dicts and lists YAML and JSON hold), and back.

:func:`to_document` writes every field in a fixed order and leaves out what has its
default value, so a dump is stable and small; :func:`from_document` reads a document that
the JSON Schema accepted (:mod:`dbkeeper.schema.validation` checks that first) and gives
back exactly the definition that was dumped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from dbkeeper.schema.definition import (
    Action,
    Check,
    Column,
    ColumnType,
    Default,
    Enum,
    Expression,
    ForeignKey,
    Index,
    PrimaryKey,
    SchemaDefinition,
    Table,
    UniqueConstraint,
    View,
)

Document = dict[str, Any]


def to_document(definition: SchemaDefinition) -> Document:
    """*definition* as plain dicts, lists and scalars, ready for YAML or JSON."""
    document: Document = {"version": definition.version}
    if definition.enums:
        document["enums"] = {name: _enum(enum) for name, enum in definition.enums.items()}
    document["tables"] = {name: _table(table) for name, table in definition.tables.items()}
    if definition.views:
        document["views"] = {name: _view(view) for name, view in definition.views.items()}
    return document


def from_document(document: Mapping[str, Any]) -> SchemaDefinition:
    """The definition a schema-valid *document* describes."""
    return SchemaDefinition(
        tables={name: _read_table(name, body) for name, body in (document.get("tables") or {}).items()},
        views={name: _read_view(name, body) for name, body in (document.get("views") or {}).items()},
        enums={name: _read_enum(name, body) for name, body in (document.get("enums") or {}).items()},
        version=document.get("version", 1),
    )


def _optional(**fields: Any) -> Document:
    """The *fields* whose value is not None, False or empty, in the order given."""
    return {key: value for key, value in fields.items() if value is not None and value is not False and value != {}}


def _enum(enum: Enum) -> Document:
    return {"values": list(enum.values), **_optional(comment=enum.comment)}


def _view(view: View) -> Document:
    return _optional(sql=view.sql, dialects=dict(view.dialects), comment=view.comment)


def _table(table: Table) -> Document:
    document = _optional(comment=table.comment, renamed_from=table.renamed_from)
    document["columns"] = {name: _column(column) for name, column in table.columns.items()}
    if table.primary_key is not None:
        key = table.primary_key
        document["primary_key"] = list(key.columns) if key.name is None else _keyed(key.columns, key.name)
    parts = {
        "unique": [_keyed(item.columns, item.name) for item in table.unique],
        "foreign_keys": [_foreign_key(item) for item in table.foreign_keys],
        "indexes": [_index(item) for item in table.indexes],
        "checks": {label: _check(check) for label, check in table.checks.items()},
    }
    return document | {key: value for key, value in parts.items() if value}


def _keyed(columns: tuple[str, ...], name: str | None) -> Document:
    return {"columns": list(columns), **_optional(name=name)}


def _column(column: Column) -> Document:
    document: Document = {"type": str(column.type)}
    if not column.nullable:
        document["nullable"] = False
    if column.default is not None:
        default = column.default
        document["default"] = {"expression": default.sql} if isinstance(default, Expression) else default
    return document | _optional(identity=column.identity, comment=column.comment, renamed_from=column.renamed_from)


def _foreign_key(key: ForeignKey) -> Document:
    return {
        "columns": list(key.columns),
        "references": {"table": key.referenced_table, "columns": list(key.referenced_columns)},
        **_optional(on_delete=key.on_delete, on_update=key.on_update, name=key.name),
    }


def _index(index: Index) -> Document:
    columns = [column if isinstance(column, str) else {"expression": column.sql} for column in index.columns]
    return {"columns": columns, **_optional(unique=index.unique, where=index.where, name=index.name)}


def _check(check: Check) -> str | Document:
    return check.expression if check.name is None else {"expression": check.expression, "name": check.name}


def _read_table(name: str, body: Mapping[str, Any]) -> Table:
    key = body.get("primary_key")
    return Table(
        name=name,
        columns={column: _read_column(column, spec) for column, spec in body["columns"].items()},
        primary_key=None if key is None else PrimaryKey(*_read_keyed(key)),
        unique=tuple(UniqueConstraint(*_read_keyed(item)) for item in body.get("unique", [])),
        foreign_keys=tuple(_read_foreign_key(item) for item in body.get("foreign_keys", [])),
        indexes=tuple(_read_index(item) for item in body.get("indexes", [])),
        checks={label: _read_check(label, spec) for label, spec in body.get("checks", {}).items()},
        comment=body.get("comment"),
        renamed_from=body.get("renamed_from"),
    )


def _read_keyed(spec: list[str] | Mapping[str, Any]) -> tuple[tuple[str, ...], str | None]:
    """Columns and name of a key written as a list of columns or as ``{columns, name}``."""
    if isinstance(spec, list):
        return tuple(spec), None
    return tuple(spec["columns"]), spec.get("name")


def _read_column(name: str, spec: Mapping[str, Any]) -> Column:
    default = spec.get("default")
    return Column(
        name=name,
        type=ColumnType.parse(spec["type"]),
        nullable=spec.get("nullable", True),
        default=Expression(default["expression"]) if isinstance(default, dict) else cast(Default | None, default),
        identity=spec.get("identity", False),
        comment=spec.get("comment"),
        renamed_from=spec.get("renamed_from"),
    )


def _read_foreign_key(spec: Mapping[str, Any]) -> ForeignKey:
    return ForeignKey(
        columns=tuple(spec["columns"]),
        referenced_table=spec["references"]["table"],
        referenced_columns=tuple(spec["references"]["columns"]),
        on_delete=cast(Action | None, spec.get("on_delete")),
        on_update=cast(Action | None, spec.get("on_update")),
        name=spec.get("name"),
    )


def _read_index(spec: Mapping[str, Any]) -> Index:
    columns = tuple(item if isinstance(item, str) else Expression(item["expression"]) for item in spec["columns"])
    return Index(columns=columns, unique=spec.get("unique", False), where=spec.get("where"), name=spec.get("name"))


def _read_check(label: str, spec: str | Mapping[str, Any]) -> Check:
    if isinstance(spec, str):
        return Check(label, spec)
    return Check(label, spec["expression"], spec.get("name"))


def _read_view(name: str, spec: Mapping[str, Any]) -> View:
    return View(name=name, sql=spec.get("sql"), dialects=dict(spec.get("dialects", {})), comment=spec.get("comment"))


def _read_enum(name: str, spec: Mapping[str, Any]) -> Enum:
    return Enum(name=name, values=tuple(spec["values"]), comment=spec.get("comment"))
