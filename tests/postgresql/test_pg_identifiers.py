"""Table keys and COPY statements read by the one identifier scanner (no server needed)."""

import pytest

from dbkeeper.errors import DatabaseError
from dbkeeper_postgresql.catalog import qualified, read_name, split_key
from dbkeeper_postgresql.contents import copy_target


@pytest.mark.parametrize(
    ("text", "start", "expected"),
    [
        ("album rest", 0, ("album", 5)),
        ('"Order""Items".x', 0, ('Order"Items', 14)),
        ('x."a.b"', 2, ("a.b", 7)),
        ("", 0, ("", 0)),
    ],
)
def test_read_name(text, start, expected):
    assert read_name(text, start, ends=". ") == expected


def test_read_name_refuses_an_open_quote():
    with pytest.raises(ValueError, match="unterminated quote"):
        read_name('"abc', 0)


@pytest.mark.parametrize(
    ("key", "parts"),
    [
        ("public.album", ("public", "album")),
        ('"Sales Dept"."Order""Items"', ("Sales Dept", 'Order"Items')),
        ('"a.b".c', ("a.b", "c")),
    ],
)
def test_split_key_undoes_qualified(key, parts):
    assert split_key(key) == parts
    assert qualified(*parts) == key


@pytest.mark.parametrize(
    ("key", "problem"),
    [("album", "not schema-qualified"), ("a.b.c", "too many dots"), ('"a"x.b', "unexpected 'x'")],
)
def test_split_key_refuses(key, problem):
    with pytest.raises(ValueError, match=problem):
        split_key(key)


@pytest.mark.parametrize(
    ("statement", "key"),
    [
        ("COPY public.album (id, title) FROM stdin;", "public.album"),
        ('COPY "Sales Dept"."Order""Items" (id) FROM stdin;', '"Sales Dept"."Order""Items"'),
        ("COPY public.empty FROM stdin;", "public.empty"),
    ],
)
def test_copy_target(statement, key):
    assert copy_target(statement) == key


def test_copy_target_needs_a_schema():
    with pytest.raises(DatabaseError, match="no schema"):
        copy_target("COPY album (id) FROM stdin;")
