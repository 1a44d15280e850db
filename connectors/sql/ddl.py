"""Statements SQLAlchemy has no construct for, compiled with its own identifier quoting.

Every identifier in every statement the sink runs goes through SQLAlchemy's compilers
(``IdentifierPreparer``); none is formatted into SQL text by hand. These constructs cover what
SQLAlchemy Core lacks: ``ALTER TABLE … ADD COLUMN`` (:class:`AddColumn`), a column's new type
(:class:`AlterColumnType`), ``TRUNCATE`` (:class:`Truncate`) and PostgreSQL's ``COPY … FROM
STDIN`` (:class:`CopyFrom`), whose compiled text is handed to psycopg's ``cursor.copy``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import DDLCompiler, SQLCompiler
from sqlalchemy.sql.ddl import ExecutableDDLElement
from sqlalchemy.sql.expression import ClauseElement, Executable

__all__ = ["AddColumn", "AlterColumnType", "CopyFrom", "Truncate"]


class AddColumn(ExecutableDDLElement):
    """``ALTER TABLE <table> ADD COLUMN <column spec>`` for a column not yet bound to the table."""

    inherit_cache = False

    def __init__(self, table: sa.Table, column: sa.Column[Any]) -> None:
        self.table = table
        self.column = column


@compiles(AddColumn)
def _add_column(element: AddColumn, compiler: DDLCompiler, **kw: Any) -> str:
    spec = compiler.get_column_specification(element.column)
    return f"ALTER TABLE {compiler.preparer.format_table(element.table)} ADD COLUMN {spec}"


class AlterColumnType(ExecutableDDLElement):
    """A column's new type: PostgreSQL ``ALTER TABLE <table> ALTER COLUMN <name> TYPE <type>``; MySQL
    ``ALTER TABLE <table> MODIFY COLUMN <column spec>``, where ``column`` carries the nullability and
    default the column keeps (MySQL restates the whole definition)."""

    inherit_cache = False

    def __init__(self, table: sa.Table, column: sa.Column[Any]) -> None:
        self.table = table
        self.column = column


@compiles(AlterColumnType)
def _alter_column_type(element: AlterColumnType, compiler: DDLCompiler, **kw: Any) -> str:
    table = compiler.preparer.format_table(element.table)
    if compiler.dialect.name in ("mysql", "mariadb"):
        return f"ALTER TABLE {table} MODIFY COLUMN {compiler.get_column_specification(element.column)}"
    type_sql = compiler.dialect.type_compiler_instance.process(element.column.type)
    return f"ALTER TABLE {table} ALTER COLUMN {compiler.preparer.quote(element.column.name)} TYPE {type_sql}"


class Truncate(ExecutableDDLElement):
    """``TRUNCATE TABLE <table>`` (PostgreSQL: transactional). Use ``DELETE`` elsewhere: MySQL's
    TRUNCATE commits the transaction implicitly."""

    inherit_cache = False

    def __init__(self, table: sa.Table) -> None:
        self.table = table


@compiles(Truncate)
def _truncate(element: Truncate, compiler: DDLCompiler, **kw: Any) -> str:
    return f"TRUNCATE TABLE {compiler.preparer.format_table(element.table)}"


class CopyFrom(Executable, ClauseElement):
    """PostgreSQL ``COPY <table> (<columns>) FROM STDIN`` (text format), for psycopg's ``cursor.copy``."""

    inherit_cache = False

    def __init__(self, table: sa.Table, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)


@compiles(CopyFrom)
def _copy_from(element: CopyFrom, compiler: SQLCompiler, **kw: Any) -> str:
    preparer = compiler.preparer
    names = ", ".join(preparer.format_column(element.table.c[name]) for name in element.columns)
    return f"COPY {preparer.format_table(element.table)} ({names}) FROM STDIN"
