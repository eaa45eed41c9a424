"""Reading and writing definitions as YAML or JSON files.

YAML goes through PyYAML's safe loader and dumper only (no Python objects, no tags), on
libyaml (``CSafeLoader``/``CSafeDumper``: five times faster on a 1,000-table definition)
where PyYAML was built with it, and is imported on first use, like jsonschema, so that
``dbkeeper --help`` loads neither. Between libyaml and the document, the plain nodes a
definition is made of are turned into dicts and lists (:class:`_Builder`) and back
(:func:`_node_builder`) here, not by PyYAML's generic constructor and representer: the
same documents and text, in half the time.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast

from dbkeeper.errors import SchemaError
from dbkeeper.schema.definition import SchemaDefinition
from dbkeeper.schema.document import to_document
from dbkeeper.schema.validation import validate_definition
from dbkeeper.system.collector import collector_paused

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
    with collector_paused():
        return validate_definition(_parse(text, format, source))


def dump_definition(definition: SchemaDefinition, format: Format = "yaml") -> str:
    """*definition* as YAML or JSON text, fields in a fixed order: ``parse_definition(dump_definition(d)) == d``."""
    document = to_document(definition)
    if format == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    import yaml

    stream = io.StringIO()
    with collector_paused():
        yaml.serialize(_node_builder()(document), stream, Dumper=_dumper(), allow_unicode=True, width=100)
    return stream.getvalue()


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
    except ValueError as exc:  # a timestamp that is no date (2020-13-45): PyYAML's constructor lets it through
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

        def construct_document(self, node: yaml.Node) -> Any:
            try:
                return _Builder(self).build(node)
            except _NotPlain:
                return super().construct_document(node)

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, str) and key in seen:
                    raise _duplicate(key, key_node)
                seen.add(key if isinstance(key, str) else id(key_node))
            mapping: dict[Any, Any] = super().construct_mapping(node, deep)
            return mapping

    return Loader


class _NotPlain(Exception):
    """A merge key (``<<``) or a node used twice (an alias): the document is left to PyYAML's constructor."""


class _Builder:
    """A composed YAML document as dicts, lists and scalars, as PyYAML's safe constructor gives it, faster.

    PyYAML's constructor is generic (deferred construction through generators, a cache of
    every node for aliases): most of a 1,000-table file's load. Plain mappings, sequences
    and strings (all of a definition, in practice) are built here directly; other scalars
    (numbers, booleans, null, dates) and other tags through the loader's own constructor,
    and a document with a merge key or an alias wholly by it.
    """

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.seen: set[int] = set()

    def build(self, node: Any) -> Any:
        """The value of *node*."""
        if node.tag == _STR and node.id == "scalar":
            return node.value
        if node.tag == _MAP and node.id == "mapping":
            return self.mapping(node)
        if node.tag == _SEQ and node.id == "sequence":
            self.once(node)
            return [self.build(item) for item in node.value]
        return self.loader.construct_object(node, deep=True)

    def mapping(self, node: Any) -> dict[Any, Any]:
        """The dict of a mapping node; a string key given twice is an error at its line and column."""
        self.once(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                raise _NotPlain
            key = self.build(key_node)
            if isinstance(key, str) and key in mapping:
                raise _duplicate(key, key_node)
            try:
                hash(key)
            except TypeError:
                from yaml.constructor import ConstructorError

                context = "while constructing a mapping"
                raise ConstructorError(context, node.start_mark, "found unhashable key", key_node.start_mark) from None
            mapping[key] = self.build(value_node)
        return mapping

    def once(self, node: Any) -> None:
        """Note *node* built; a second time means an alias, which PyYAML's constructor resolves."""
        if id(node) in self.seen:
            raise _NotPlain
        self.seen.add(id(node))


def _duplicate(key: str, node: Any) -> Exception:
    """The error of a key given twice in a mapping, at the second one."""
    import yaml

    return yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", node.start_mark)


@cache
def _dumper() -> Any:
    """PyYAML's safe dumper (libyaml's emitter, if built), for the nodes :func:`_node_builder` builds."""
    import yaml

    return getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@cache
def _node_builder() -> Callable[[object], Any]:
    """A function turning a document into YAML nodes: short lists and mappings of scalars on one line.

    ``primary_key: [id]``, ``id: {type: bigint, nullable: false}``: a definition reads as
    one line per column. It builds what PyYAML's safe representer would for the same
    document (the same text), without the representer's per-node dispatch and alias
    bookkeeping (a third of the time of a 1,000-table dump); what is neither a plain dict,
    list, str, bool nor int (a float, None …) still goes through the representer.
    """
    from yaml import MappingNode, ScalarNode, SequenceNode
    from yaml.representer import SafeRepresenter

    def node(value: object) -> Any:
        kind = type(value)
        if kind is str:
            return ScalarNode(_STR, value)
        if kind is dict:
            items = cast(dict[Any, Any], value)
            leaf = all(_is_scalar(item) or _is_leaf(item) for item in items.values())
            short = leaf and sum(len(str(key)) + len(str(item)) + 4 for key, item in items.items()) <= FLOW_WIDTH
            return MappingNode(_MAP, [(node(key), node(item)) for key, item in items.items()], flow_style=short)
        if kind is list:
            listed = cast(list[Any], value)
            return SequenceNode(_SEQ, [node(item) for item in listed], flow_style=_is_leaf(listed))
        if kind is bool:
            return ScalarNode(_BOOL, "true" if value else "false")
        if kind is int:
            return ScalarNode(_INT, str(value))
        return SafeRepresenter().represent_data(value)

    return node


_MAP, _SEQ, _STR, _BOOL, _INT, _MERGE = (
    f"tag:yaml.org,2002:{name}" for name in ("map", "seq", "str", "bool", "int", "merge")
)

#: A mapping of scalars up to about this many characters is written on one line.
FLOW_WIDTH = 72


_SCALARS = (str, int, float, bool)  # a tuple: isinstance with it is three times faster than with str | int | …


def _is_scalar(value: object) -> bool:
    return isinstance(value, _SCALARS)


def _is_leaf(value: object) -> bool:
    """A list of scalars only."""
    return isinstance(value, list) and all(_is_scalar(item) for item in value)
