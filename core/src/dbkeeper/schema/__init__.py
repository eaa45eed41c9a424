"""Schema definitions: a portable description of tables, views and enums, in YAML or JSON.

``definition`` holds the model, ``naming`` the convention that names unnamed constraints
and indexes, ``document`` the mapping to and from YAML/JSON documents, ``validation`` the
JSON Schema and the checks it cannot express, ``files`` loading and dumping files,
``metadata`` a definition as SQLAlchemy ``MetaData`` for one dialect, ``generate`` its DDL
and ``inspect`` a live database read back into a definition; ``changes``, ``diff``, ``render``
(a diff as one dialect's SQL), ``rebuild`` (SQLite's table rebuilds) and ``migration`` (a diff as a
migration file) are ``schema diff``'s.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dbkeeper.schema.changes import Change, SchemaDiff
    from dbkeeper.schema.definition import (
        Check,
        Column,
        ColumnType,
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
    from dbkeeper.schema.diff import Renames, diff_schemas, renames_of
    from dbkeeper.schema.files import dump_definition, load_definition, parse_definition
    from dbkeeper.schema.generate import GeneratedDDL, SchemaGenerator, generate_schema
    from dbkeeper.schema.inspect import inspect_schema
    from dbkeeper.schema.naming import constraint_name
    from dbkeeper.schema.render import RenderedDiff, render_diff
    from dbkeeper.schema.validation import validate_definition

#: Where each public name is defined: imported on first use, so that loading a definition
#: does not import the diff, the renderer or the DDL generator.
_MODULES = {
    "dbkeeper.schema.changes": ("Change", "SchemaDiff"),
    "dbkeeper.schema.definition": (
        "Check", "Column", "ColumnType", "Enum", "Expression", "ForeignKey", "Index", "PrimaryKey",
        "SchemaDefinition", "Table", "UniqueConstraint", "View",
    ),
    "dbkeeper.schema.diff": ("Renames", "diff_schemas", "renames_of"),
    "dbkeeper.schema.files": ("dump_definition", "load_definition", "parse_definition"),
    "dbkeeper.schema.generate": ("GeneratedDDL", "SchemaGenerator", "generate_schema"),
    "dbkeeper.schema.inspect": ("inspect_schema",),
    "dbkeeper.schema.naming": ("constraint_name",),
    "dbkeeper.schema.render": ("RenderedDiff", "render_diff"),
    "dbkeeper.schema.validation": ("validate_definition",),
}  # fmt: skip
_LAZY = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    """The public name *name*, imported from its module on first use (and kept here)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The names here and the public names not imported yet."""
    return sorted([*globals(), *_LAZY])


__all__ = [
    "Change",
    "Check",
    "Column",
    "ColumnType",
    "Enum",
    "Expression",
    "ForeignKey",
    "GeneratedDDL",
    "Index",
    "PrimaryKey",
    "Renames",
    "RenderedDiff",
    "SchemaDefinition",
    "SchemaDiff",
    "SchemaGenerator",
    "Table",
    "UniqueConstraint",
    "View",
    "constraint_name",
    "diff_schemas",
    "dump_definition",
    "generate_schema",
    "inspect_schema",
    "load_definition",
    "parse_definition",
    "renames_of",
    "render_diff",
    "validate_definition",
]
