"""DDL from a definition: the statements that create its schema on one engine.

:func:`generate_schema` maps the definition to SQLAlchemy ``MetaData``
(:mod:`dbkeeper.schema.metadata`) and compiles it with the dialect's DDL compiler, in this
order: the enum types of a dialect that names them (PostgreSQL's ``CREATE TYPE … AS
ENUM``), the tables in dependency order (a table after those its foreign keys reference;
validation refuses cycles), each table's indexes, the ``COMMENT ON`` statements of a
dialect that sets comments apart from ``CREATE TABLE``, then the views, each after the views
it reads (:mod:`dbkeeper.schema.ordering`), else in the order the definition gives. Every
statement ends with ``;``. The same definition always gives the same text. What depends on
the engine is asked of the driver's :class:`~dbkeeper.plugin.SchemaDialect`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dbkeeper.schema.definition import SchemaDefinition
from dbkeeper.schema.metadata import Dialect, Note, SchemaMetaData, build_metadata, schema_dialect
from dbkeeper.schema.naming import constraint_name
from dbkeeper.schema.ordering import views_in_order

if TYPE_CHECKING:
    from dbkeeper.plugin.schema import SchemaDialect


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


def generate_schema(definition: SchemaDefinition, dialect: str | SchemaDialect) -> GeneratedDDL:
    """The DDL that creates *definition* (validated) on *dialect*: a driver's name (``sqlite``) or its dialect.

    Raises :class:`~dbkeeper.errors.SchemaError` for what the dialect cannot express at
    all, :class:`~dbkeeper.errors.DriverNotFoundError` for a dialect whose driver is not
    installed.
    """
    return SchemaGenerator(dialect).generate(definition)


class SchemaGenerator:
    """Generates DDL for one dialect: ``SchemaGenerator("postgresql").generate(definition)``."""

    def __init__(self, dialect: str | SchemaDialect) -> None:
        self.schema_dialect = schema_dialect(dialect)
        self.dialect: Dialect = self.schema_dialect.name

    def generate(self, definition: SchemaDefinition) -> GeneratedDDL:
        """The DDL of *definition* (see :func:`generate_schema`)."""
        built = build_metadata(definition, self.schema_dialect)
        statements = [
            *self._enum_types(built),
            *self._tables(built),
            *self._comments(built),
            *self._views(built),
        ]
        return GeneratedDDL(self.dialect, tuple(statements), tuple(built.notes))

    def compile(self, element: Any) -> str:
        """*element*, a DDL element or SQL text, compiled for the dialect: trimmed, ending with ``;``."""
        if isinstance(element, str):
            return element.strip().rstrip(";") + ";"
        text = str(element.compile(dialect=self.schema_dialect.sqlalchemy_dialect)).strip()
        lines = (("    " + line[1:] if line.startswith("\t") else line).rstrip() for line in text.splitlines())
        return "\n".join(lines) + ";"  # SQLAlchemy indents a table's columns with a tab

    def quote(self, name: str) -> str:
        """*name* quoted for the dialect where it needs quotes."""
        quoted: str = self.schema_dialect.sqlalchemy_dialect.identifier_preparer.quote(name)
        return quoted

    def _enum_types(self, built: SchemaMetaData) -> list[str]:
        """The enum types the dialect creates before the tables, each with its comment."""
        statements = []
        for enum in built.definition.enums.values():
            statements += [self.compile(element) for element in self.schema_dialect.create_enum(enum)]
            if enum.comment is not None:
                comment = None
                if self.schema_dialect.enum_storage == "named":
                    comment = self.schema_dialect.comment_on("TYPE", enum.name, enum.comment)
                statements += self._comment(built, comment, f"enums.{enum.name}.comment", "enum")
        return statements

    def _comment(self, built: SchemaMetaData, statement: str | None, path: str, kind: str) -> list[str]:
        """*statement*, a ``COMMENT ON``, as a list; a note at *path* when the dialect keeps no *kind* comments."""
        if statement is None:
            built.notes.append((path, f"{self._title} keeps no {kind} comments; left out"))
            return []
        return [self.compile(statement)]

    def _tables(self, built: SchemaMetaData) -> list[str]:
        """``CREATE TABLE`` in dependency order, each followed by its indexes in the definition's order."""
        from sqlalchemy.schema import CreateIndex, CreateTable

        statements = []
        for sa_table in built.metadata.sorted_tables:
            statements.append(self.compile(CreateTable(sa_table)))
            table = built.definition.tables[sa_table.name]
            by_name = {str(index.name): index for index in sa_table.indexes}
            for index in table.indexes:
                name = constraint_name(table, index)
                if name in by_name:
                    statements.append(self.compile(CreateIndex(by_name[name])))
        return statements

    def _comments(self, built: SchemaMetaData) -> list[str]:
        """``COMMENT ON TABLE`` and ``COMMENT ON COLUMN`` where comments are not part of ``CREATE TABLE``."""
        return [statement for sa_table in built.metadata.tables.values() for statement in self.comments(sa_table)]

    def comments(self, sa_table: Any) -> list[str]:
        """The ``COMMENT ON`` statements of *sa_table*, a table of built metadata.

        None where comments are part of ``CREATE TABLE``, or where the dialect keeps none.
        """
        from sqlalchemy.schema import SetColumnComment, SetTableComment

        sa_dialect = self.schema_dialect.sqlalchemy_dialect
        if not sa_dialect.supports_comments or sa_dialect.inline_comments:
            return []
        statements = [self.compile(SetTableComment(sa_table))] if sa_table.comment is not None else []
        return statements + [self.compile(SetColumnComment(c)) for c in sa_table.columns if c.comment is not None]

    def _views(self, built: SchemaMetaData) -> list[str]:
        """``CREATE VIEW`` with the dialect's SQL (else the portable SQL), and the views' comments."""
        statements = []
        views = built.definition.views
        for name in views_in_order(views, lambda view: filter(None, [view.sql_for(self.dialect)])):
            view = views[name]
            sql = view.sql_for(self.dialect)
            if sql is None:
                built.notes.append(
                    (f"views.{view.name}", f"no SQL for {self._title} (sql or dialects.{self.dialect}); left out")
                )
                continue
            statements.append(f"CREATE VIEW {self.quote(view.name)} AS {sql.strip().rstrip(';').rstrip()};")
            if view.comment is not None:
                comment = self.schema_dialect.comment_on("VIEW", view.name, view.comment)
                statements += self._comment(built, comment, f"views.{view.name}.comment", "view")
        return statements

    @property
    def _title(self) -> str:
        return self.schema_dialect.title
