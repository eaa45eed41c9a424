"""The PostgreSQL schema dialect: what ``dbkeeper schema`` needs to know about PostgreSQL.

PostgreSQL has a type for every portable type (``jsonb`` for JSON), identity columns,
expression and partial indexes. Enums are named types (``CREATE TYPE … AS ENUM``), and
comments are set with ``COMMENT ON``, enum types and views included; ``inspect`` reads
the enum types' comments, which SQLAlchemy's ``Inspector`` leaves out, and writes the
checks, ``where`` clauses, index expressions and defaults PostgreSQL gives back without
the casts it added (:mod:`dbkeeper_postgresql.portable_sql` states the rules). ``inspect``
reads the schema with one catalog query of its own, without SQLAlchemy
(:mod:`dbkeeper_postgresql.catalog_schema`); SQLAlchemy is imported inside the methods
that generate and diff.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from dbkeeper.plugin import Column, DatabaseURL, Enum, LiveSchema, SchemaDialect, TypeFactory
from dbkeeper_postgresql.portable_sql import portable_sql

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.engine.reflection import Inspector


#: What SQLAlchemy compiles :meth:`PostgresqlSchema.column_type` of each simple portable type to, upper case.
TYPE_TEXTS = {
    "bool": "BOOLEAN",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "bigint": "BIGINT",
    "float": "REAL",
    "double": "DOUBLE PRECISION",
    "text": "TEXT",
    "bytes": "BYTEA",
    "date": "DATE",
    "time": "TIME WITHOUT TIME ZONE",
    "timestamp": "TIMESTAMP WITHOUT TIME ZONE",
    "timestamptz": "TIMESTAMP WITH TIME ZONE",
    "json": "JSONB",
    "uuid": "UUID",
}


class PostgresqlSchema(SchemaDialect):
    """PostgreSQL: SQL's standard types, ``jsonb``, named enum types, ``COMMENT ON``."""

    name = "postgresql"
    title = "PostgreSQL"
    enum_storage = "named"

    def engine_types(self) -> Mapping[str, TypeFactory]:
        """JSON as ``jsonb``."""
        from sqlalchemy.dialects import postgresql

        return {"json": lambda _t: postgresql.JSONB()}

    def enum_type(self, enum: Enum) -> Any:
        """The named type, created by :meth:`create_enum` (not by SQLAlchemy)."""
        from sqlalchemy.dialects import postgresql

        return postgresql.ENUM(*enum.values, name=enum.name, create_type=False)

    def create_enum(self, enum: Enum) -> list[Any]:
        """``CREATE TYPE … AS ENUM``."""
        from sqlalchemy.dialects.postgresql import ENUM, CreateEnumType

        return [CreateEnumType(ENUM(*enum.values, name=enum.name))]

    def comment_on(self, kind: Literal["TYPE", "VIEW"], name: str, comment: str) -> str:
        """``COMMENT ON TYPE|VIEW name IS '…'``."""
        quoted = self.sqlalchemy_dialect.identifier_preparer.quote(name)
        return f"COMMENT ON {kind} {quoted} IS {_literal(comment)}"

    def rename_constraint(self, kind: str, table: str, old: str, new: str) -> str:
        """``ALTER INDEX … RENAME TO`` for an index, ``ALTER TABLE … RENAME CONSTRAINT`` for the rest."""
        quote = self.sqlalchemy_dialect.identifier_preparer.quote
        if kind == "add_index":
            return f"ALTER INDEX {quote(old)} RENAME TO {quote(new)}"
        return f"ALTER TABLE {quote(table)} RENAME CONSTRAINT {quote(old)} TO {quote(new)}"

    def type_change(self, column: Column, sql_type: str) -> dict[str, Any]:
        """``USING column::type`` (through ``text`` to an enum): PostgreSQL casts only what it must."""
        quoted = self.sqlalchemy_dialect.identifier_preparer.quote(column.name)
        through = "::text" if column.type.name == "enum" else ""
        return {"postgresql_using": f"{quoted}{through}::{sql_type}"}

    def portable_sql(self, sql: str, columns: Mapping[str, Column]) -> str:
        """*sql* without the casts PostgreSQL added (``total >= 0::numeric`` → ``total >= 0``), ``~~`` as ``LIKE``."""
        return portable_sql(sql, columns)

    def type_texts(self) -> Mapping[str, str]:
        """:data:`TYPE_TEXTS`: ``inspect`` maps types back without importing SQLAlchemy."""
        return TYPE_TEXTS

    def read_schema(self, url: DatabaseURL) -> LiveSchema:
        """The schema read with one catalog query (:mod:`dbkeeper_postgresql.catalog_schema`), not the ``Inspector``."""
        from dbkeeper_postgresql.catalog_schema import read_schema

        return read_schema(url)

    def prepare_inspection(self, conn: Connection) -> None:
        """JIT off for the inspection (``SET LOCAL``).

        PostgreSQL overestimates SQLAlchemy's index query (``unnest`` of every index's
        columns) and compiles it: 0.4 s for a query of 20 ms on 1,000 tables.
        """
        conn.exec_driver_sql("SET LOCAL jit = off")

    def read_enums(self, conn: Connection, inspector: Inspector) -> list[Enum]:
        """The enum types of the current schema, with their comments."""
        import sqlalchemy as sa

        rows = conn.execute(
            sa.text(
                "SELECT typname, obj_description(oid, 'pg_type') FROM pg_type "
                "WHERE typtype = 'e' AND typnamespace = current_schema()::regnamespace"
            )
        )
        comments: dict[str, str | None] = {name: comment for name, comment in rows}
        enums = inspector.get_enums()  # type: ignore[attr-defined]  # PostgreSQL's inspector has it
        return [
            Enum(item["name"], tuple(item["labels"]), comments.get(item["name"]))
            for item in enums
            if item.get("visible", True)
        ]


def _literal(text: str) -> str:
    """*text* as a PostgreSQL string literal (standard conforming: only ``'`` is doubled)."""
    return "'" + text.replace("'", "''") + "'"
