"""The SQL-text machinery the MySQL driver relies on, on tricky inputs cut at every byte."""

from __future__ import annotations

import io

import pytest

from dbkeeper.errors import DatabaseError
from dbkeeper_mysql.load import statements
from dbkeeper_mysql.sqltext import RowCounter, line_pieces, parse_insert, quote_bytes, statement_complete
from dbkeeper_mysql.verify import count_rows

VALUES = [
    (b" (1,'a'),(2,'b');\n", 2),
    (b" (1,'),(',NULL),(2,'it\\'s'),(3,'\\\\'),(4,'\\\\\\''),(5,'x');\n", 5),
    (b"\n(1,'a\\nb'),\n(2,0x2C29282C),\n(3,'));'),\n(4,'\\'),(\\'');\n", 4),
    (b" (1,'\\\\\\\\'),(2,''),(3,'(');\n", 3),
]


@pytest.mark.parametrize(("values", "rows"), VALUES)
def test_row_counter_is_exact_wherever_the_pieces_are_cut(values: bytes, rows: int) -> None:
    for cut in range(len(values) + 1):
        for second in range(cut, len(values) + 1):
            counter = RowCounter()
            for piece in (values[:cut], values[cut:second], values[second:]):
                counter.feed(piece)
            assert counter.rows == rows, (cut, second)
            assert counter.ended()


def test_row_counter_knows_when_the_statement_goes_on() -> None:
    counter = RowCounter()
    counter.feed(b"\n(1,'a;\\n'),\n")
    assert not counter.ended()
    counter.feed(b"(2,'b;')")
    assert not counter.ended()
    counter.feed(b";\n")
    assert counter.ended()
    assert counter.rows == 2


def test_parse_insert() -> None:
    assert parse_insert(b"INSERT INTO `t` VALUES (1)") == ("t", 22)
    assert parse_insert(b"INSERT INTO `a``b` (`x`, `y``z`) VALUES\n(") == ("a`b", 39)
    assert parse_insert(b"INSERT INTO `t` SELECT 1") is None
    assert parse_insert(b"INSERTED") is None


def test_quote_bytes_escapes_what_breaks_a_line_or_a_string() -> None:
    assert quote_bytes(b"plain") == b"'plain'"
    assert quote_bytes(b"a'b\\c\nd\re\x00f\x1ag\"h") == b"'a\\'b\\\\c\\nd\\re\\0f\\Zg\\\"h'"


def test_statement_complete_skips_strings_and_comments() -> None:
    assert statement_complete(b"SELECT 'a;' ;", b";")
    assert not statement_complete(b"SELECT 'a;\n", b";")
    assert not statement_complete(b"SELECT `x;", b";")
    assert statement_complete(b"/*!40101 SET NAMES utf8mb4 */;", b";")
    assert not statement_complete(b"BEGIN -- ;", b";")
    assert statement_complete(b"CREATE PROCEDURE p() BEGIN SELECT 1; END\n;;", b";;")


def test_statements_follow_the_client() -> None:
    script = (
        b"/*M!999999\\- enable the sandbox mode */ \n"
        b"-- a comment\n"
        b"\n"
        b"/*!40101 SET NAMES utf8mb4 */;\n"
        b"INSERT INTO `t` VALUES\n(1,'a;'),\n(2,'b');\n"
        b"INSERT INTO `t` VALUES (3,'c');\n"
        b"DELIMITER ;;\n"
        b"CREATE PROCEDURE p()\nBEGIN\n  SELECT ';;';\nEND\n;;\n"
        b"DELIMITER ;\n"
        b"CREATE VIEW v AS SELECT 'x\n;' AS y;\n"
    )
    for size in (1, 7, 1 << 20):
        stream = io.BytesIO(script)
        found = list(statements(lambda _: stream.read(size)))  # noqa: B023
        assert found == [
            b"/*!40101 SET NAMES utf8mb4 */",
            b"INSERT INTO `t` VALUES\n(1,'a;'),\n(2,'b')",
            b"INSERT INTO `t` VALUES (3,'c')",
            b"CREATE PROCEDURE p()\nBEGIN\n  SELECT ';;';\nEND",
            b"CREATE VIEW v AS SELECT 'x\n;' AS y",
        ]
    with pytest.raises(DatabaseError, match="ends inside a statement"):
        list(statements(io.BytesIO(b"SELECT 'unfinished;\n").read))


def test_line_pieces_keep_long_lines_in_pieces() -> None:
    text = b"short\n" + b"x" * 300_000 + b"\nend"
    stream = io.BytesIO(text)
    pieces = list(line_pieces(lambda _: stream.read(100_000)))
    assert b"".join(piece for piece, _ in pieces) == text
    assert pieces[0] == (b"short\n", True)
    assert [ends for _, ends in pieces].count(True) == 3
    assert all(len(piece) >= 64 << 10 for piece, ends in pieces[1:-1] if not ends)


def test_count_rows_reports_what_does_not_belong() -> None:
    part = b"CREATE TABLE `t` (id INT);\nINSERT INTO `t` VALUES (1),(2);\nINSERT INTO `u` VALUES (3);\n"
    assert count_rows(io.BytesIO(part), "t") == (2, ["table `t`: its part holds rows of table `u`"])
    cut = io.BytesIO(b"INSERT INTO `t` VALUES (1),(2),\n(3")
    assert count_rows(cut, "t")[1] == ["table `t`: the part ends inside an INSERT"]
