"""The SQL-text machinery the MySQL driver relies on, on tricky inputs cut at every byte."""

from __future__ import annotations

import io

import pytest

from dbkeeper.errors import DatabaseError
from dbkeeper_mysql.load import statements
from dbkeeper_mysql.sqltext import Event, RowCounter, ScriptScanner, parse_insert, quote_bytes, statement_complete
from dbkeeper_mysql.streams import PartFilter
from dbkeeper_mysql.verify import count_rows

ONE_LINE = [
    (b" (1,'a'),(2,'b');\n", 2),
    (b" (1,'),(',NULL),(2,'it\\'s'),(3,'\\\\'),(4,'\\\\\\''),(5,'x');\n", 5),
    (b" (1,'\\\\\\\\'),(2,''),(3,'(');\n", 3),
    (b" (1,0x2C29282C),(2,'\\'),(\\'');\n", 2),
]


@pytest.mark.parametrize(("values", "rows"), ONE_LINE)
def test_row_counter_is_exact_wherever_the_pieces_are_cut(values: bytes, rows: int) -> None:
    for cut in range(len(values) + 1):
        for second in range(cut, len(values) + 1):
            counter = RowCounter()
            for piece in (values[:cut], values[cut:second], values[second:]):
                counter.feed(piece)
            assert counter.rows == rows, (cut, second)


def scan(script: bytes, chunk: int) -> list[Event]:
    scanner = ScriptScanner()
    events = [event for start in range(0, len(script), chunk) for event in scanner.feed(script[start : start + chunk])]
    return events + list(scanner.end())


def test_scanner_hands_inserts_on_in_pieces_and_counts_their_rows() -> None:
    script = (
        b"CREATE TABLE `t` (\n  `a` int\n);\n"
        b"INSERT INTO `t` VALUES\n(1,'a;'),\n(2,'),(\\'x');\n"
        b"INSERT INTO `t` (`a`, `b`) VALUES (3,'c'),(4,NULL);\n"
        b"INSERT INTO `line\nbreak` VALUES\n(5);\n"
        b"UNLOCK TABLES;\n"
    )
    for chunk in range(1, len(script) + 1):
        events = scan(script, chunk)
        lines = [event.data for event in events if event.kind == "line"]
        assert lines == [b"CREATE TABLE `t` (\n", b"  `a` int\n", b");\n", b"UNLOCK TABLES;\n"], chunk
        heads = [(event.table, event.data) for event in events if event.kind == "head"]
        assert heads == [
            ("t", b"INSERT INTO `t` VALUES"),
            ("t", b"INSERT INTO `t` (`a`, `b`) VALUES"),
            ("line\nbreak", b"INSERT INTO `line\nbreak` VALUES"),
        ], chunk
        assert [event.rows for event in events if event.kind == "end"] == [2, 2, 1], chunk
        assert b"".join(event.data for event in events) == script


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


def test_count_rows_reports_what_does_not_belong() -> None:
    part = b"CREATE TABLE `t` (id INT);\nINSERT INTO `t` VALUES (1),(2);\nINSERT INTO `u` VALUES (3);\n"
    assert count_rows(io.BytesIO(part), "t") == (2, ["table `t`: its part holds rows of table `u`"])
    cut = io.BytesIO(b"INSERT INTO `t` VALUES (1),(2),\n(3")
    assert count_rows(cut, "t")[1] == ["table `t`: the part ends inside an INSERT"]


def test_part_filter_drops_the_rows_lock_and_edits_only_the_definition() -> None:
    part = (
        b"CREATE TABLE `a\nb` (\n  CONSTRAINT `fk` FOREIGN KEY (`x`) REFERENCES `p` (`id`)\n);\n"
        b"LOCK TABLES `a\nb` WRITE;\n"
        b"INSERT INTO `a\nb` VALUES\n(1,'  CONSTRAINT');\n"
        b"UNLOCK TABLES;\n"
    )
    for size in (1, 5, 1 << 20):
        source = io.BytesIO(part)
        filtered = PartFilter(source, lambda line: line.replace(b"`p`", b"`db`.`p`"))
        out = b"".join(iter(lambda: filtered.read(size), b""))  # noqa: B023
        assert out == part.replace(b"`p`", b"`db`.`p`").replace(b"LOCK TABLES `a\nb` WRITE;\n", b""), size
