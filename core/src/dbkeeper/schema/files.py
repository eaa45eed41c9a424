"""Reading and writing definitions as YAML or JSON files.

YAML goes through PyYAML's safe loader and dumper only (no Python objects, no tags), on
libyaml (``CSafeLoader``/``CSafeDumper``: five times faster on a 1,000-table definition)
where PyYAML was built with it, and is imported on first use, like jsonschema, so that
``dbkeeper --help`` loads neither.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Literal

from dbkeeper.errors import SchemaError
from dbkeeper.schema.definition import SchemaDefinition
from dbkeeper.schema.document import to_document
from dbkeeper.schema.validation import validate_definition

Format = Literal["yaml", "json"]


def load_definition(path: str | Path) -> SchemaDefinition:
    """The definition in the YAML or JSON file *path* (JSON when it ends in ``.json``), validated.

    Raises :class:`~dbkeeper.errors.SchemaError`: one problem naming the file when it cannot
    be read or parsed (with the line and column), else one per bad field.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaError([(str(path), "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError([(str(path), f"cannot read it: {getattr(exc, 'strerror', None) or exc}")]) from None
    return parse_definition(text, "json" if path.suffix.lower() == ".json" else "yaml", source=str(path))


def parse_definition(text: str, format: Format = "yaml", *, source: str = "<text>") -> SchemaDefinition:
    """The definition in *text* (YAML or JSON), validated; *source* names it in a parse error."""
    return validate_definition(_parse(text, format, source))


def dump_definition(definition: SchemaDefinition, format: Format = "yaml") -> str:
    """*definition* as YAML or JSON text, fields in a fixed order: ``parse_definition(dump_definition(d)) == d``."""
    document = to_document(definition)
    if format == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    import yaml

    dumped: str = yaml.dump(document, Dumper=_dumper(), sort_keys=False, allow_unicode=True, width=100)
    return dumped


def _parse(text: str, format: Format, source: str) -> Any:
    """The document in *text*; a syntax error is a SchemaError at ``source:line:column``."""
    if format == "json":
        try:
            return json.loads(text, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            raise SchemaError([(f"{source}:{exc.lineno}:{exc.colno}", f"invalid JSON: {exc.msg}")]) from None
        except ValueError as exc:
            raise SchemaError([(source, f"invalid JSON: {exc}")]) from None
    import yaml

    try:
        return yaml.load(text, Loader=_loader())  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise SchemaError([(where, f"invalid YAML: {exc.problem or exc.context}")]) from None
    except yaml.YAMLError as exc:
        raise SchemaError([(source, f"invalid YAML: {exc}")]) from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict; a key given twice is an error (json.loads would keep the last silently)."""
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"duplicate key {key!r}")
        document[key] = value
    return document


@cache
def _loader() -> Any:
    """PyYAML's safe loader, refusing a key given twice in a mapping (it would keep the last silently)."""
    import yaml

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]  # libyaml's, if built
        """The safe loader with duplicate keys refused, at their line and column."""

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, str) and key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key if isinstance(key, str) else id(key_node))
            mapping: dict[Any, Any] = super().construct_mapping(node, deep)
            return mapping

    return Loader


@cache
def _dumper() -> Any:
    """PyYAML's safe dumper, writing short lists and mappings of scalars on one line.

    ``primary_key: [id]``, ``id: {type: bigint, nullable: false}``: a definition reads as
    one line per column.
    """
    import yaml

    class Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]  # libyaml's, if built
        """The safe dumper with short leaf lists and mappings in flow style."""

    def represent_list(dumper: yaml.SafeDumper, items: list[Any]) -> yaml.Node:
        return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=_is_leaf(items))

    def represent_dict(dumper: yaml.SafeDumper, items: dict[str, Any]) -> yaml.Node:
        leaf = all(_is_scalar(value) or _is_leaf(value) for value in items.values())
        short = sum(len(str(key)) + len(str(value)) + 4 for key, value in items.items()) <= FLOW_WIDTH
        return dumper.represent_mapping("tag:yaml.org,2002:map", items, flow_style=leaf and short)

    Dumper.add_representer(list, represent_list)
    Dumper.add_representer(dict, represent_dict)
    return Dumper


#: A mapping of scalars up to about this many characters is written on one line.
FLOW_WIDTH = 72


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool)


def _is_leaf(value: object) -> bool:
    """A list of scalars only."""
    return isinstance(value, list) and all(_is_scalar(item) for item in value)
