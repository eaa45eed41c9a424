"""``files._Writer``, the YAML writer of most definitions, writes exactly what PyYAML writes for the same document.

Its shortcut is libyaml's choice of plain or quoted scalars and of line breaks, written by
hand; every document here is compared with PyYAML's own dumper (``reference_dump``), on
scalars chosen to meet each of its rules (indicators first, inside, before a space; words
YAML 1.1 reads as booleans, numbers, dates or null) and on random ones, in flow and block
contexts, as keys and values, on short and long lines.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from test_schema_files_fast import reference_dump

from dbkeeper.schema import files
from dbkeeper.schema.definition import Column, ColumnType, SchemaDefinition, Table
from dbkeeper.schema.files import dump_definition

RULES = [
    *("yes", "No", "on", "OFF", "y", "null", "~", "true", "1.5", "-1", "+1", "0x10", "0o7", "1_000", "1e3", ".inf"),
    *("2020-01-02", "12:30", "<<", "=", "-", "---x", "...", "a: b", "a:b", "key:", ":a", "?a", "? a", "- a", "-a"),
    *("a #b", "a#b", "#a", "a,b", "[x]", "x]", "{x", "&a", "*a", "!a", "|a", ">a", "'a", "a'b", '"a', "%a", "@a"),
    *("`a", "a?", "decimal(12, 2)", "varchar(100)", "lower(email)", "a  b", "", "it's"),
]
_ALPHABET = "ab:#-?,[]{}&*!|>'\"%@` .01eE+_yYnNtTo~=<(/)\\"


def documents(word: str) -> list[dict[str, Any]]:
    """Documents with *word* in every place a definition has a scalar."""
    return [
        {"k": {"a": word}},
        {"k": {word or "x": {"type": "t", "c": word, "l": [word, "x"]}}},
        {"t": {"x": {"long": ("long " * 15).strip(), "w": word}}},
        {"s": [{"name": word, "more": {"a": ("b " * 40).strip()}}, word, {"w": word}]},
        {word or "z": [1, True, False, -3, word], "z2": {"columns": ["abc"] * 15}},
    ]


def words() -> list[str]:
    """The rules' words and random ones over the characters that matter."""
    rng = random.Random(12)
    return RULES + ["".join(rng.choice(_ALPHABET) for _ in range(rng.randint(1, 5))) for _ in range(1500)]


def test_every_document_written_is_pyyamls_text() -> None:
    written = 0
    for word in words():
        for document in documents(word):
            text = files._Writer().document(document)
            if text is not None:
                written += 1
                assert text == reference_dump(document), (word, document)
    assert written > 7000  # most are written here, not left to libyaml


@pytest.mark.parametrize(
    "document",
    [
        {"a": {"b": "é"}},  # not ASCII
        {"a": {"b": " x"}},  # a leading space
        {"a": {"b": 1.5}},  # a float
        {"a": {"b": None}},
        {"a": [[1]]},  # a list in a list
        {"a": {"long": ["column_name"] * 12}},  # past libyaml's width: it breaks the line
        {"version": 1},  # the whole document on one line
    ],
)
def test_what_it_leaves_to_libyaml(document: dict[str, Any]) -> None:
    assert files._Writer().document(document) is None  # then libyaml writes it: test_schema_files_fast


def test_a_definition_is_written_as_before() -> None:
    columns = {
        "id": Column("id", ColumnType.parse("bigint"), nullable=False, identity=True),
        "amount": Column("amount", ColumnType.parse("decimal(12, 2)"), default=0),
        "flag": Column("flag", ColumnType.parse("text"), default="yes", comment="it's #1: a [flag]"),
    }
    tables = {f"t{n}": Table(f"t{n}", columns) for n in range(3)}
    definition = SchemaDefinition(tables=tables)
    document = files.to_document(definition)
    assert files._Writer().document(document) is not None
    assert dump_definition(definition) == reference_dump(document)
