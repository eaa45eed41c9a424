"""Validating a definition: the JSON Schema first, then what a schema cannot express.

Every problem is a ``(path, message)`` pair, the path naming the bad field with dots
(``tables.orders.columns.total.type``); :func:`validate_definition` raises them all at once
as one :class:`~dbkeeper.errors.SchemaError`.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterator, Mapping
from contextvars import ContextVar
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from dbkeeper.errors import SchemaError
from dbkeeper.schema.definition import INTEGER_TYPES, Check, Column, SchemaDefinition, Table
from dbkeeper.schema.document import from_document, to_document
from dbkeeper.schema.naming import constraint_name, table_constraints

if TYPE_CHECKING:
    from jsonschema import ValidationError

Problem = tuple[str, str]
TOP = "(top level)"


def validate_definition(source: Mapping[str, Any] | SchemaDefinition) -> SchemaDefinition:
    """The definition *source* describes (a parsed YAML/JSON document, or a definition), checked whole.

    Raises :class:`~dbkeeper.errors.SchemaError` listing every problem: those of the JSON
    Schema, then (only when the document passes it) those of :func:`definition_problems`.
    """
    if isinstance(source, SchemaDefinition):
        problems = list(_misfiled(source))
        if problems:
            raise SchemaError(problems)
    document = to_document(source) if isinstance(source, SchemaDefinition) else source
    problems = schema_problems(document)
    if problems:
        raise SchemaError(problems)
    definition = from_document(document)
    problems = definition_problems(definition)
    if problems:
        raise SchemaError(problems)
    return definition


@cache
def json_schema() -> dict[str, Any]:
    """The published JSON Schema of a definition (``definition.schema.json``, draft 2020-12)."""
    text = resources.files("dbkeeper.schema").joinpath("definition.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def schema_problems(document: object) -> list[Problem]:
    """What the JSON Schema finds wrong in *document*, one problem per failing field, in document order."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    if document is None:
        return [(TOP, "the document is empty; a definition needs at least 'tables'")]
    if _passes(document):
        return []
    validator = Draft202012Validator(json_schema())
    problems = []
    for error in validator.iter_errors(document):
        shown = best_match(error.context) if error.context else error
        problems.append((_dotted(shown.absolute_path), _message(shown)))
    return sorted(set(problems), key=_document_order(document))


def _passes(document: object) -> bool:
    """Whether *document* passes the JSON Schema: the quick answer, the problems left to the full pass.

    The same validator, with each ``$ref`` to a small part (a column, a key, an index, a
    name …) checked once per distinct value: the 5,000 columns of 1,000 tables are a few
    dozen different mappings, and checking them one by one was most of the time (0.46 s
    per 1,000 tables, 0.17 s so). A value is remembered only when it passed, and only
    during this call.
    """
    token = _PASSED.set(set())
    try:
        return bool(_memoising_validator()(json_schema()).is_valid(document))
    finally:
        _PASSED.reset(token)


#: The ``(reference, frozen value)`` pairs seen passing during the current :func:`_passes`.
_PASSED: ContextVar[set[Hashable]] = ContextVar("passed")

#: References whose values are never repeated (a table's foreign keys name it): freezing them costs more than it saves.
_UNSHARED = frozenset({"#/$defs/table"})


@cache
def _memoising_validator() -> Any:
    """Draft 2020-12's validator whose ``$ref`` skips a value already seen passing it."""
    from jsonschema import Draft202012Validator, validators

    follow = Draft202012Validator.VALIDATORS["$ref"]

    def ref(validator: Any, ref: str, instance: object, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
        passed = _PASSED.get()
        key = _key(ref, instance)
        if key is not None and key in passed:
            return
        errors = list(follow(validator, ref, instance, schema))
        if key is not None and not errors:
            passed.add(key)
        yield from errors

    return validators.extend(Draft202012Validator, {"$ref": ref})  # type: ignore[no-untyped-call]  # untyped in the stubs


def _key(ref: str, instance: object) -> Hashable | None:
    """What remembers *instance* passing *ref*; None for a value not worth remembering or not hashable."""
    if ref in _UNSHARED:
        return None
    key = (ref, _frozen(instance))
    try:
        hash(key)
    except TypeError:  # a YAML !!set, say: checked every time
        return None
    return key


def _frozen(value: object) -> object:
    """*value* (a parsed document's node) as a tuple, its types kept, so that ``1`` and ``true`` differ."""
    if isinstance(value, dict):
        return dict, tuple((key, _frozen(item)) for key, item in value.items())
    if isinstance(value, list):
        return list, tuple(_frozen(item) for item in value)
    return type(value), value


def definition_problems(definition: SchemaDefinition) -> list[Problem]:
    """What the JSON Schema cannot see: types, references, names, cycles of foreign keys."""
    problems: list[Problem] = []
    for table in definition.tables.values():
        problems += _column_problems(definition, table)
        problems += _key_problems(table)
        problems += _foreign_key_problems(definition, table)
    problems += [(f"views.{name}", "a view needs sql or dialects") for name in _empty_views(definition)]
    problems += _name_problems(definition)
    problems += _cycle_problems(definition)
    return problems


def _misfiled(definition: SchemaDefinition) -> Iterator[Problem]:
    """Items of a definition built in Python kept under another name than their own (a document cannot say that)."""
    named: list[tuple[str, Mapping[str, Any]]] = [
        ("tables", definition.tables),
        ("views", definition.views),
        ("enums", definition.enums),
    ]
    for name, table in definition.tables.items():
        named += [(f"tables.{name}.columns", table.columns)]
    for path, items in named:
        for key, item in items.items():
            if item.name != key:
                yield f"{path}.{key}", f"is keyed {key!r} but named {item.name!r}"
    for name, table in definition.tables.items():
        for key, check in table.checks.items():
            if check.label != key:
                yield f"tables.{name}.checks.{key}", f"is keyed {key!r} but labelled {check.label!r}"


def _empty_views(definition: SchemaDefinition) -> list[str]:
    """The views with neither portable SQL nor SQL for any dialect."""
    return [name for name, view in definition.views.items() if view.sql is None and not view.dialects]


def _column_problems(definition: SchemaDefinition, table: Table) -> Iterator[Problem]:
    for column in table.columns.values():
        path = f"tables.{table.name}.columns.{column.name}"
        problem = _type_problem(definition, column)
        if problem:
            yield f"{path}.type", problem
        if column.identity and column.type.name not in INTEGER_TYPES:
            yield f"{path}.identity", f"identity needs an integer type (smallint, int, bigint), not {column.type}"


def _type_problem(definition: SchemaDefinition, column: Column) -> str | None:
    kind = column.type
    if kind.name == "decimal" and (kind.scale or 0) > (kind.precision or 0):
        return f"scale {kind.scale} is greater than precision {kind.precision} in {kind}"
    if kind.name == "enum" and kind.enum not in definition.enums:
        return f"enum {kind.enum!r} is not declared under enums"
    return None


def _key_problems(table: Table) -> Iterator[Problem]:
    """Keys, unique constraints, indexes and foreign keys naming a column the table does not have."""
    for path, item in table_constraints(table):
        columns = () if isinstance(item, Check) else item.columns
        listed = path == "primary_key" and item.name is None  # written as a bare list of columns
        for position, column in enumerate(columns):
            if isinstance(column, str) and column not in table.columns:
                field = f"{position}" if listed else f"columns.{position}"
                yield f"tables.{table.name}.{path}.{field}", f"no column {column!r} in table {table.name!r}"


def _foreign_key_problems(definition: SchemaDefinition, table: Table) -> Iterator[Problem]:
    for number, key in enumerate(table.foreign_keys):
        path = f"tables.{table.name}.foreign_keys.{number}.references"
        target = definition.tables.get(key.referenced_table)
        if target is None:
            yield f"{path}.table", f"no table {key.referenced_table!r} in the definition"
            continue
        missing = [column for column in key.referenced_columns if column not in target.columns]
        for column in missing:
            position = key.referenced_columns.index(column)
            yield f"{path}.columns.{position}", f"no column {column!r} in table {target.name!r}"
        if len(key.referenced_columns) != len(key.columns):
            yield f"{path}.columns", f"{len(key.columns)} columns reference {len(key.referenced_columns)}"
        elif not missing and set(key.referenced_columns) not in _unique_sets(target):
            columns = ", ".join(key.referenced_columns)
            yield f"{path}.columns", f"{target.name}({columns}) is neither its primary key nor unique"


def _unique_sets(table: Table) -> list[set[str]]:
    """The sets of columns of *table* that are unique: primary key, unique constraints, full unique indexes."""
    sets = [set(item.columns) for item in table.unique]
    sets += [
        set(index.column_names)
        for index in table.indexes
        if index.unique and index.where is None and len(index.column_names) == len(index.columns)
    ]
    if table.primary_key is not None:
        sets.append(set(table.primary_key.columns))
    return sets


def _name_problems(definition: SchemaDefinition) -> Iterator[Problem]:
    """Two tables, views or enums, or two constraints and indexes, with one name (after the convention)."""
    relations: dict[str, str] = {}
    for kind, names in (("tables", definition.tables), ("views", definition.views), ("enums", definition.enums)):
        for name in names:
            yield from _claim(relations, name, f"{kind}.{name}")
    constraints: dict[str, str] = {}
    for table in definition.tables.values():
        for path, item in table_constraints(table):
            yield from _claim(constraints, constraint_name(table, item), f"tables.{table.name}.{path}")


def _claim(taken: dict[str, str], name: str, path: str) -> Iterator[Problem]:
    if name.lower() in taken:
        yield path, f"name {name!r} is already used by {taken[name.lower()]}"
    else:
        taken[name.lower()] = path


def _cycle_problems(definition: SchemaDefinition) -> Iterator[Problem]:
    """Each cycle of foreign keys between two or more tables (a table referencing itself is fine)."""
    edges = {
        name: [key.referenced_table for key in table.foreign_keys if key.referenced_table != name]
        for name, table in definition.tables.items()
    }
    done: set[str] = set()
    for start in edges:
        cycle = _find_cycle(start, edges, done)
        if cycle:
            yield (
                f"tables.{cycle[0]}.foreign_keys",
                f"foreign keys form a cycle {' -> '.join([*cycle, cycle[0]])}: creating and filling these tables "
                "would need deferred constraints, which not every engine has; remove one of these foreign keys",
            )


def _find_cycle(start: str, edges: Mapping[str, list[str]], done: set[str]) -> list[str] | None:
    """A cycle reachable from *start* not through *done* tables (a depth-first walk), else None; marks what it saw."""
    path: list[str] = []
    stack: list[Iterator[str]] = []
    if start in done:
        return None
    path.append(start)
    stack.append(iter(edges.get(start, [])))
    while stack:
        following = next(stack[-1], None)
        if following is None:
            done.add(path.pop())
            stack.pop()
        elif following in path:
            cycle = path[path.index(following) :]
            done.update(path)
            return cycle
        elif following not in done and following in edges:
            path.append(following)
            stack.append(iter(edges[following]))
    return None


def _dotted(path: Any) -> str:
    return ".".join(str(part) for part in path) or TOP


def _message(error: ValidationError) -> str:
    """The error's message; the schema's ``x-message`` instead where it gives one (``unknown type 'money2'``)."""
    template = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    if template and error.validator == "pattern":
        return str(template).format(value=error.instance)
    return error.message


def _document_order(document: object) -> Any:
    """A sort key putting problems in the order their fields appear in *document*."""
    order: dict[str, int] = {}

    def walk(node: object, path: str) -> None:
        order.setdefault(path, len(order))
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            walk(child, f"{path}.{key}" if path != TOP else str(key))

    walk(document, TOP)
    return lambda problem: (order.get(problem[0], len(order)), problem[1])
