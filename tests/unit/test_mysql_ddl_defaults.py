"""Literal defaults of columns added by ALTER TABLE, read from the DDL statement (the binlog's
TABLE_MAP carries none, yet existing rows take the default without any row event)."""

from __future__ import annotations

import pytest

from cdc.events import Column, Logical, TableId, TableSchema, Wire
from connectors.mysql.schema import ddl_column_defaults, with_defaults

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("ALTER TABLE orders ADD COLUMN extra VARCHAR(20) DEFAULT 'dflt'", {"extra": "'dflt'"}),
        ("alter table t add column if not exists n int not null default 7 after id", {"n": "7"}),
        ("ALTER TABLE t ADD `odd name` INT DEFAULT -5", {"odd name": "-5"}),
        ("ALTER TABLE t ADD a DECIMAL(5,2) DEFAULT '1.50' COMMENT 'x, y', ADD b INT", {"a": "'1.50'"}),
        (
            "ALTER TABLE t ADD e TEXT DEFAULT 'it''s', ADD f TEXT DEFAULT 'back\\'slash'",
            {"e": "'it''s'", "f": "'back''slash'"},
        ),
        ("ALTER TABLE t ADD f INT DEFAULT NULL, ADD g BOOL DEFAULT TRUE", {"f": "NULL", "g": "TRUE"}),
        ("ALTER TABLE t ADD (x INT DEFAULT 1)", {}),  # the parenthesised form is not followed: nothing guessed
        ("ALTER TABLE t ADD d DATETIME DEFAULT CURRENT_TIMESTAMP", {}),
        ("ALTER TABLE t ADD d DATETIME(6) DEFAULT current_timestamp(6)", {}),
        ("ALTER TABLE t ADD h VARCHAR(36) DEFAULT (uuid())", {}),
        ("ALTER TABLE t ADD INDEX ix (a), ADD UNIQUE KEY (b), ADD CONSTRAINT c CHECK (a > 0)", {}),
        ("ALTER TABLE t MODIFY a INT DEFAULT 3", {}),
        ("CREATE TABLE t (a INT DEFAULT 1)", {}),
        ("", {}),
        (None, {}),
    ],
)
def test_literal_defaults_of_added_columns(statement: str | None, expected: dict[str, str]) -> None:
    assert ddl_column_defaults(statement) == expected


def _col(name: str, native: str = "VARCHAR", default: str | None = None) -> Column:
    return Column(name, native, Logical.STRING, Wire("string"), default=default)


def test_defaults_carry_over_to_later_definitions_of_the_same_column() -> None:
    t = TableId("db", "t")
    v1 = with_defaults(TableSchema(t, (_col("id", "INT"), _col("extra")), ("id",), 1), {"extra": "'x'"}, None)
    assert v1.column("extra").default == "'x'"
    # the next TABLE_MAP (no defaults in it) keeps the known default; a changed type drops it
    v2 = with_defaults(TableSchema(t, (_col("id", "INT"), _col("extra"), _col("more")), ("id",), 2), {}, v1)
    assert [c.default for c in v2.columns] == [None, "'x'", None]
    v3 = with_defaults(TableSchema(t, (_col("id", "INT"), _col("extra", "TEXT")), ("id",), 3), {}, v2)
    assert v3.column("extra").default is None
