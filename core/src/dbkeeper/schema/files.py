"""Reading and writing definitions as YAML or JSON files.

YAML goes through PyYAML's safe loader and dumper only (no Python objects, no tags), on
libyaml (``CSafeLoader``/``CSafeDumper``: five times faster on a 1,000-table definition)
where PyYAML was built with it, and is imported on first use, like jsonschema, so that
``dbkeeper --help`` loads neither. Between libyaml and the document, the plain nodes a
definition is made of are turned into dicts and lists (:class:`_Builder`) and back
(:func:`_node_builder`) here, not by PyYAML's generic constructor and representer: the
same documents and text, in half the time. Most definitions are written by
:class:`_Writer` instead, without PyYAML: libyaml's own choices for the few shapes and
scalars a definition has (see there), and libyaml itself for anything else.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast

from dbkeeper.errors import SchemaError
from dbkeeper.schema.definition import SchemaDefinition
from dbkeeper.schema.document import to_document
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
    from dbkeeper.schema.validation import validate_definition  # not needed to write one (schema inspect)

    with collector_paused():
        return validate_definition(_parse(text, format, source))


def dump_definition(definition: SchemaDefinition, format: Format = "yaml") -> str:
    """*definition* as YAML or JSON text, fields in a fixed order: ``parse_definition(dump_definition(d)) == d``."""
    document = to_document(definition)
    if format == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    written = _Writer().document(document)
    if written is not None:
        return written
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
            return MappingNode(_MAP, [(node(key), node(item)) for key, item in items.items()], flow_style=_flow(items))
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


def _flow(items: dict[Any, Any]) -> bool:
    """Whether the mapping *items* is written on one line: scalars and leaf lists only, short."""
    leaf = all(_is_scalar(item) or _is_leaf(item) for item in items.values())
    return leaf and sum(len(str(key)) + len(str(item)) + 4 for key, item in items.items()) <= FLOW_WIDTH


#: The longest line libyaml writes as it is (``width=100``): past it, it breaks flow collections and scalars.
_WIDTH = 100
_PRINTABLE = re.compile(r"[ -~]*")  # printable ASCII: what needs no escape and no thought about Unicode
#: Characters that keep a scalar from being plain when first (libyaml's ``yaml_emitter_analyze_scalar``).
_FIRST_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")
_FLOW_INDICATORS = frozenset(",?[]{}")


class _Unwritten(Exception):
    """Something :class:`_Writer` leaves to libyaml."""


class _Writer:
    """A definition's document as the YAML text libyaml writes for :func:`_node_builder`'s nodes, without them.

    A definition is block mappings and sequences (2 spaces, a sequence in a mapping not
    indented), flow mappings and lists of scalars (:func:`_flow`, :func:`_is_leaf`), and
    strings, booleans and integers. Each string is written plain where libyaml would
    (no indicator that forbids it in its context, read back as a string by PyYAML's
    resolver), else single-quoted. Anything else — another type, a string that is not
    printable ASCII or starts or ends with a space, a list in a list, a line longer than
    libyaml's width (where it would break lines) — is left to libyaml (None).
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.scalars: dict[tuple[str, bool], str] = {}  # (text, in flow) → as written: a few for many

    def document(self, document: dict[str, Any]) -> str | None:
        """The text of *document*, or None to leave it to libyaml."""
        if _flow(document):
            return None
        try:
            self.mapping(document, "", "")
        except _Unwritten:
            return None
        text = "".join(self.parts)
        return text if max(map(len, text.split("\n"))) <= _WIDTH else None

    def mapping(self, items: dict[Any, Any], first: str, indent: str) -> None:
        """A block mapping, its first key after *first* (``- `` in a sequence), the others after *indent*."""
        prefix = first
        for key, value in items.items():
            self.parts.append(f"{prefix}{self.scalar(key, flow=False)}:")
            self.value(value, indent)
            prefix = indent

    def value(self, value: Any, indent: str) -> None:
        """A mapping's *value*, after its key."""
        kind = type(value)
        if kind is dict and not _flow(value):
            self.parts.append("\n")
            self.mapping(value, indent + "  ", indent + "  ")
        elif kind is list and not _is_leaf(value):
            self.parts.append("\n")
            self.sequence(value, indent)
        else:
            self.parts.append(f" {self.inline(value)}\n")

    def sequence(self, items: list[Any], indent: str) -> None:
        """A block sequence."""
        for item in items:
            if type(item) is dict and not _flow(item):
                self.mapping(item, f"{indent}- ", indent + "  ")
            elif type(item) is list:
                raise _Unwritten
            else:
                self.parts.append(f"{indent}- {self.inline(item)}\n")

    def inline(self, value: Any) -> str:
        """A scalar in block context, or a flow mapping or list."""
        kind = type(value)
        if kind is dict:
            pairs = (f"{self.scalar(key, flow=True)}: {self.inline_flow(item)}" for key, item in value.items())
            return "{" + ", ".join(pairs) + "}"
        if kind is list:
            return self.inline_flow(value)
        return self.scalar(value, flow=False)

    def inline_flow(self, value: Any) -> str:
        """A scalar or a list of scalars inside a flow mapping or list."""
        if type(value) is list:
            return "[" + ", ".join(self.scalar(item, flow=True) for item in value) + "]"
        return self.scalar(value, flow=True)

    def scalar(self, value: Any, *, flow: bool) -> str:
        """A string, boolean or integer as libyaml writes it in block or flow context."""
        kind = type(value)
        if kind is bool:
            return "true" if value else "false"
        if kind is int:
            return str(value)
        if kind is not str:
            raise _Unwritten
        key = (value, flow)
        written = self.scalars.get(key)
        if written is None:
            written = self.scalars[key] = _string(value, flow)
        return written


def _string(text: str, flow: bool) -> str:
    """*text* plain where libyaml writes it so in a flow (*flow*) or block context, else single-quoted."""
    if not _PRINTABLE.fullmatch(text) or text[:1] == " " or text[-1:] == " ":
        raise _Unwritten
    if text and _plain(text, flow) and _resolves_to_text(text):
        return text
    return "'" + text.replace("'", "''") + "'"


def _plain(text: str, flow: bool) -> bool:
    """Whether no indicator keeps *text* (printable ASCII, not empty) from being plain (``analyze_scalar``)."""
    flow_bad = block_bad = text.startswith(("---", "..."))
    first, last = text[0], len(text) - 1
    spaced = last == 0 or text[1] == " "
    if first in _FIRST_INDICATORS or (first == "-" and spaced):
        return False
    if first in "?:":
        flow_bad = True
        block_bad = block_bad or spaced
    for index in range(1, last + 1):
        char = text[index]
        if char in _FLOW_INDICATORS:
            flow_bad = True
        elif char == ":":
            flow_bad = True
            block_bad = block_bad or index == last or text[index + 1] == " "
        elif char == "#" and text[index - 1] == " ":
            return False
    return not (flow_bad if flow else block_bad)


@cache
def _resolver() -> Any:
    """PyYAML's resolver of implicit tags, as the dumper uses it."""
    import yaml

    return yaml.resolver.Resolver()


def _resolves_to_text(text: str) -> bool:
    """Whether PyYAML reads the plain scalar *text* as a string (not ``yes``, ``1.5``, ``null``, a date …)."""
    import yaml

    return bool(_resolver().resolve(yaml.ScalarNode, text, (True, False)) == _STR)
