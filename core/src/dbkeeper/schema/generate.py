"""DDL from a definition: the statements that create its schema on SQLite, PostgreSQL or MySQL/MariaDB.

:func:`generate_schema` maps the definition to SQLAlchemy ``MetaData``
(:mod:`dbkeeper.schema.metadata`) and compiles it with the dialect's DDL compiler, in this
order: PostgreSQL's enum types (``CREATE TYPE … AS ENUM``), the tables in dependency order
(a table after those its foreign keys reference; validation refuses cycles), each
table's indexes, PostgreSQL's ``COMMENT ON`` statements, then the views in the order the
definition gives. Every statement ends with ``;``. The same definition always gives the
same text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dbkeeper.schema.definition import SchemaDefinition, View
from dbkeeper.schema.metadata import DIALECT_TITLES, Dialect, Note, SchemaMetaData, build_metadata, sqlalchemy_dialect
from dbkeeper.schema.naming import constraint_name


@dataclass(frozen=True)
class GeneratedDDL:
    """The DDL of a definition for one dialect, and the notes on what that dialect cannot keep."""

    dialect: Dialect
    statements: tuple[str, ...]
    notes: tuple[Note, ...]  # (path of the field, message): lossy types, comments left out …

    @property
    def sql(self) -> str:
        """The statements as one script, a blank line between them."""
        return "".join(f"{statement}\n\n" for statement in self.statements).rstrip("\n") + "\n"

    @property
    def warnings(self) -> list[str]:
        """The notes as lines: ``tables.orders.columns.id.type: uuid has no SQLite type; stored as TEXT …``."""
        return [f"{path}: {message}" for path, message in self.notes]


def generate_schema(definition: SchemaDefinition, dialect: Dialect) -> GeneratedDDL:
    """The DDL that creates *definition* (validated) on *dialect*: ``sqlite``, ``postgresql`` or ``mysql``.

    Raises :class:`~dbkeeper.errors.SchemaError` for an unknown dialect or what the
    dialect cannot express at all.
    """
    return SchemaGenerator(dialect).generate(definition)


class SchemaGenerator:
    """Generates DDL for one dialect: ``SchemaGenerator("postgresql").generate(definition)``."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def generate(self, definition: SchemaDefinition) -> GeneratedDDL:
        """The DDL of *definition* (see :func:`generate_schema`)."""
        built = build_metadata(definition, self.dialect)
        statements = [
            *self._enum_types(built),
            *self._tables(built),
            *self._comments(built),
            *self._views(built),
        ]
        return GeneratedDDL(self.dialect, tuple(statements), tuple(built.notes))

    def _compile(self, element: Any) -> str:
        """*element*, a DDL element, compiled for the dialect: trimmed, ending with ``;``."""
        text = str(element.compile(dialect=sqlalchemy_dialect(self.dialect))).strip()
        lines = (("    " + line[1:] if line.startswith("\t") else line).rstrip() for line in text.splitlines())
        return "\n".join(lines) + ";"  # SQLAlchemy indents a table's columns with a tab

    def _quote(self, name: str) -> str:
        quoted: str = sqlalchemy_dialect(self.dialect).identifier_preparer.quote(name)
        return quoted

    def _enum_types(self, built: SchemaMetaData) -> list[str]:
        """PostgreSQL: ``CREATE TYPE … AS ENUM`` and its comment for each enum; elsewhere nothing."""
        from sqlalchemy.dialects.postgresql import ENUM, CreateEnumType

        statements = []
        for enum in built.definition.enums.values():
            if self.dialect != "postgresql":
                if enum.comment is not None:
                    built.notes.append(
                        (f"enums.{enum.name}.comment", f"{self._title} keeps no enum comments; left out")
                    )
                continue
            statements.append(self._compile(CreateEnumType(ENUM(*enum.values, name=enum.name))))
            if enum.comment is not None:
                statements.append(f"COMMENT ON TYPE {self._quote(enum.name)} IS {_literal(enum.comment)};")
        return statements

    def _tables(self, built: SchemaMetaData) -> list[str]:
        """``CREATE TABLE`` in dependency order, each followed by its indexes in the definition's order."""
        from sqlalchemy.schema import CreateIndex, CreateTable

        statements = []
        for sa_table in built.metadata.sorted_tables:
            statements.append(self._compile(CreateTable(sa_table)))
            table = built.definition.tables[sa_table.name]
            by_name = {str(index.name): index for index in sa_table.indexes}
            for index in table.indexes:
                name = constraint_name(table, index)
                if name in by_name:
                    statements.append(self._compile(CreateIndex(by_name[name])))
        return statements

    def _comments(self, built: SchemaMetaData) -> list[str]:
        """PostgreSQL's ``COMMENT ON TABLE`` and ``COMMENT ON COLUMN`` (MySQL has them inline, SQLite none)."""
        from sqlalchemy.schema import SetColumnComment, SetTableComment

        if self.dialect != "postgresql":
            return []
        statements = []
        for sa_table in built.metadata.tables.values():
            if sa_table.comment is not None:
                statements.append(self._compile(SetTableComment(sa_table)))
            statements += [self._compile(SetColumnComment(c)) for c in sa_table.columns if c.comment is not None]
        return statements

    def _views(self, built: SchemaMetaData) -> list[str]:
        """``CREATE VIEW`` with the dialect's SQL (else the portable SQL), and PostgreSQL's view comments."""
        statements = []
        for view in built.definition.views.values():
            sql = view.sql_for(self.dialect)
            if sql is None:
                built.notes.append(
                    (f"views.{view.name}", f"no SQL for {self._title} (sql or dialects.{self.dialect}); left out")
                )
                continue
            statements.append(f"CREATE VIEW {self._quote(view.name)} AS {sql.strip().rstrip(';').rstrip()};")
            statements += self._view_comment(built, view)
        return statements

    def _view_comment(self, built: SchemaMetaData, view: View) -> list[str]:
        if view.comment is None:
            return []
        if self.dialect == "postgresql":
            return [f"COMMENT ON VIEW {self._quote(view.name)} IS {_literal(view.comment)};"]
        built.notes.append((f"views.{view.name}.comment", f"{self._title} keeps no view comments; left out"))
        return []

    @property
    def _title(self) -> str:
        return DIALECT_TITLES[self.dialect]


def _literal(text: str) -> str:
    """*text* as a PostgreSQL string literal (standard conforming: only ``'`` is doubled)."""
    return "'" + text.replace("'", "''") + "'"
