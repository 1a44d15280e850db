"""The SQLAlchemy sink's apply engine against real PostgreSQL 15, MariaDB 10.11 and SQLite.

Every test runs on each target (``target`` fixture): tables are created from schema changes,
batches are applied, and the final table contents are read back with an untyped select (the
driver's own values) and compared exactly.
"""

from __future__ import annotations

import json
import struct
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cdc.errors import ConnectError, SchemaError, TargetValueError
from cdc.events import ChangeEvent, Column, Logical, Op, SchemaChange, TableId, TableSchema, Wire
from cdc.positions import MySqlPosition, PgPosition, SourceOffset
from cdc.values import (
    BigintUnsignedHandling,
    DecimalHandling,
    Geometry,
    IntervalHandling,
    PgInterval,
    TimePrecision,
    array_wire,
    bigint_unsigned_wire,
    bits_wire,
    bool_wire,
    bytes_wire,
    date_wire,
    decimal_wire,
    enum_wire,
    float_wire,
    geometry_wire,
    int_wire,
    interval_wire,
    json_wire,
    set_wire,
    string_wire,
    time_wire,
    timestamp_wire,
    to_wire,
    uuid_wire,
    variable_scale_decimal_wire,
    xml_wire,
    year_wire,
    zoned_time_wire,
    zoned_timestamp_wire,
)

TARGETS = ["postgresql", "mariadb", "sqlite"]
MYSQL_SRC = {"connector": "mysql", "db": "shop", "table": "t"}
PG_SRC = {"connector": "postgresql", "schema": "shop", "table": "t"}


@dataclass
class Target:
    kind: str  # postgresql | mariadb | sqlite
    url: str


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, tmp_path: Any) -> Target:
    kind = request.param
    if kind == "postgresql":
        return Target(kind, request.getfixturevalue("pg_db").url)
    if kind == "mariadb":
        return Target(kind, request.getfixturevalue("mysql_db").url)
    return Target(kind, f"sqlite:///{tmp_path}/target.db")


def make_sink(url: str, **overrides: Any) -> Any:
    from cdc.config import SinkConfig
    from connectors.sql.sink import SqlSink

    binary = overrides.pop("binary_handling", "base64")
    threshold = overrides.pop("copy_threshold", None)
    config = SinkConfig(**{"name": "replica", "url": url, "dead_letter_topic": "dlq", **overrides})
    sink = SqlSink(config, binary_handling=binary) if threshold is None else SqlSink(
        config, binary_handling=binary, copy_threshold=threshold
    )
    sink.open()
    return sink


@pytest.fixture
def sink(target: Target) -> Iterator[Any]:
    s = make_sink(target.url)
    yield s
    s.close()


def col(name: str, native: str, logical: Logical, wire: Wire, **kw: Any) -> Column:
    return Column(name, native, logical, wire, nullable=wire.optional, **kw)


SHOP_T = TableId("shop", "t")


def schema_of(*columns: Column, table: TableId = SHOP_T, key: tuple[str, ...] = ("id",),
              version: int = 1) -> TableSchema:
    return TableSchema(table, tuple(columns), key, version=version)


def create(sink: Any, schema: TableSchema, source: dict[str, Any] = MYSQL_SRC, kind: str = "CREATE") -> None:
    sink.apply_schema(SchemaChange(kind, schema, None, source, 0))


def ev(op: str, schema: TableSchema, before: dict[str, Any] | None, after: dict[str, Any] | None,
       unchanged: frozenset[str] = frozenset(), source: dict[str, Any] = MYSQL_SRC) -> ChangeEvent:
    key_of = after if after is not None else before
    key = {k: key_of[k] for k in schema.primary_key} if key_of is not None else None
    return ChangeEvent(Op(op), schema.table, key, before, after, source, 0, unchanged=unchanged)


def read(sink: Any, table: TableId, order: str = "id") -> list[tuple[Any, ...]]:
    """The target table's rows as the driver returns them (no SQLAlchemy type processing)."""
    import sqlalchemy as sa

    typed = sink.target_table(table)
    with sink.engine.connect() as conn, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reflection does not know xml and geometry; names are enough
        names = [c["name"] for c in sa.inspect(conn).get_columns(typed.name, schema=typed.schema)]
        raw = sa.Table(typed.name, sa.MetaData(), *[sa.Column(n) for n in names], schema=typed.schema)
        return [tuple(r) for r in conn.execute(sa.select(raw).order_by(raw.c[order])).all()]


def column_info(sink: Any, table: TableId) -> dict[str, dict[str, Any]]:
    import sqlalchemy as sa

    t = sink.target_table(table)
    with sink.engine.connect() as conn:
        insp = sa.inspect(conn)
        cols = {c["name"]: c for c in insp.get_columns(t.name, schema=t.schema)}
        cols["__pk__"] = {"columns": insp.get_pk_constraint(t.name, schema=t.schema)["constrained_columns"]}
    return cols


# ---------------------------------------------------------------------------------------------
# A small table used by most tests
# ---------------------------------------------------------------------------------------------

ID = col("id", "INT", Logical.INT32, int_wire(32, optional=False))
NAME = col("name", "VARCHAR(20)", Logical.STRING, string_wire(), length=20)
QTY = col("qty", "INT", Logical.INT32, int_wire(32))
SIMPLE = schema_of(ID, NAME, QTY)


def row(i: int, name: str | None = None, qty: int | None = None) -> dict[str, Any]:
    return {"id": i, "name": name if name is not None else f"n{i}", "qty": qty if qty is not None else i * 10}


# ---------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------


def test_create_from_schema_change(target: Target, sink: Any) -> None:
    create(sink, SIMPLE)
    t = sink.target_table(SIMPLE.table)
    assert (t.schema, t.name) == (("shop", "t") if target.kind == "postgresql" else (None, "t"))
    info = column_info(sink, SIMPLE.table)
    assert info["__pk__"]["columns"] == ["id"]
    assert set(info) - {"__pk__"} == {"id", "name", "qty"}
    assert info["id"]["nullable"] is False
    # Applying the same definition again is harmless.
    create(sink, SIMPLE)
    sink.write_batch("p", [ev("c", SIMPLE, None, row(1))])
    assert read(sink, SIMPLE.table) == [(1, "n1", 10)]


def test_add_column_evolution_never_drops(target: Target, sink: Any) -> None:
    create(sink, SIMPLE)
    sink.write_batch("p", [ev("c", SIMPLE, None, row(1))])
    note = col("note", "TEXT", Logical.TEXT, string_wire())
    v2 = schema_of(ID, NAME, QTY, note, version=2)
    create(sink, v2, kind="ALTER")
    info = column_info(sink, SIMPLE.table)
    assert info["note"]["nullable"] is True
    sink.write_batch("p", [ev("c", v2, None, {**row(2), "note": "hello"})])
    assert read(sink, SIMPLE.table) == [(1, "n1", 10, None), (2, "n2", 20, "hello")]
    # A later definition without a column drops nothing, and rows without it leave it alone.
    v3 = schema_of(ID, NAME, note, version=3)
    create(sink, v3, kind="ALTER")
    assert "qty" in column_info(sink, SIMPLE.table)
    sink.write_batch("p", [ev("u", v3, None, {"id": 2, "name": "m2", "note": "x"})])
    assert read(sink, SIMPLE.table) == [(1, "n1", 10, None), (2, "m2", 20, "x")]
    # DROP changes are ignored.
    create(sink, v3, kind="DROP")
    assert read(sink, SIMPLE.table)


@pytest.mark.parametrize("source", [MYSQL_SRC, PG_SRC], ids=["from-mysql", "from-postgresql"])
def test_a_wider_source_column_widens_the_target_column(target: Target, sink: Any, source: dict[str, Any]) -> None:
    """A longer VARCHAR, a larger integer and an enum with a new (longer) label: the target column takes
    the new type (ALTER … TYPE / MODIFY), so the values that need it are applied, not refused."""

    def mood(*labels: str) -> Column:
        return col("mood", "ENUM", Logical.ENUM, enum_wire(labels), enum_values=labels)

    v1 = schema_of(ID, NAME, QTY, mood("sad", "ok"))
    create(sink, v1, source)
    sink.write_batch("p", [ev("c", v1, None, {**row(1), "mood": "ok"}, source=source)])
    wide_name = col("name", "VARCHAR(60)", Logical.STRING, string_wire(), length=60)
    big_qty = col("qty", "BIGINT", Logical.INT64, int_wire(64))
    v2 = schema_of(ID, wide_name, big_qty, mood("sad", "ok", "exuberant"), version=2)
    create(sink, v2, source, kind="ALTER")
    long_row = {"id": 2, "name": "n" * 60, "qty": 2**40, "mood": "exuberant"}
    sink.write_batch("p", [ev("c", v2, None, long_row, source=source)])
    assert read(sink, SIMPLE.table) == [(1, "n1", 10, "ok"), (2, "n" * 60, 2**40, "exuberant")]
    if target.kind != "sqlite":  # SQLite holds any length in any column; nothing is altered there
        info = column_info(sink, SIMPLE.table)
        assert info["name"]["type"].length == 60
        assert "BIGINT" in str(info["qty"]["type"]).upper()
        assert info["id"]["nullable"] is False and info["name"]["nullable"] is True
    # A narrower definition later (a replayed old version) narrows nothing.
    create(sink, schema_of(ID, NAME, QTY, mood("sad", "ok"), version=3), source, kind="ALTER")
    assert read(sink, SIMPLE.table)[1] == (2, "n" * 60, 2**40, "exuberant")


def test_schema_evolution_none_creates_nothing(target: Target) -> None:
    sink = make_sink(target.url, schema_evolution="none")
    try:
        create(sink, SIMPLE)
        with pytest.raises(SchemaError, match="does not exist"):
            sink.write_batch("p", [ev("c", SIMPLE, None, row(1))], offset=SourceOffset(MySqlPosition("b.000001", 4)))
        assert sink.applied("p") is None
    finally:
        sink.close()


def test_rows_before_their_schema_are_an_error(sink: Any) -> None:
    with pytest.raises(SchemaError, match="before its schema"):
        sink.write_batch("p", [ev("c", SIMPLE, None, row(1))])


def test_two_sources_on_one_target_table_are_refused(target: Target, sink: Any) -> None:
    create(sink, SIMPLE)
    other = schema_of(ID, NAME, table=TableId("shop2", "t"))
    if target.kind == "postgresql":
        create(sink, other)  # the source schema is the target schema: "shop2"."t"
        assert sink.target_table(other.table).schema == "shop2"
        return
    with pytest.raises(SchemaError, match="table_map"):
        create(sink, other)


def test_table_map_overrides_the_target_name(target: Target) -> None:
    sink = make_sink(target.url, table_map={"shop.t": "renamed_{table}"})
    try:
        create(sink, SIMPLE)
        t = sink.target_table(SIMPLE.table)
        assert t.name == "renamed_t"
        sink.write_batch("p", [ev("c", SIMPLE, None, row(1))])
        assert read(sink, SIMPLE.table) == [(1, "n1", 10)]
    finally:
        sink.close()


def test_tables_outside_the_sink_are_ignored(target: Target) -> None:
    sink = make_sink(target.url, tables=["other.*"])
    try:
        create(sink, SIMPLE)
        assert sink.target_table(SIMPLE.table) is None
        sink.write_batch("p", [ev("c", SIMPLE, None, row(1))], offset=SourceOffset(MySqlPosition("b.000001", 9)))
        assert sink.applied("p") == SourceOffset(MySqlPosition("b.000001", 9))
    finally:
        sink.close()


# ---------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------


def batch_a() -> list[ChangeEvent]:
    s = SIMPLE
    return [
        *[ev("r", s, None, row(i)) for i in range(1, 6)],  # snapshot rows 1..5
        ev("c", s, None, row(6)),
        ev("u", s, row(2), row(2, "two")),
        ev("u", s, row(2, "two"), row(2, "TWO", 22)),  # several updates: the last wins
        ev("d", s, row(3), None),
        ev("u", s, row(4), row(40, "forty", 400)),  # primary-key change: 4 goes, 40 comes
        ev("c", s, None, row(7)),
        ev("d", s, row(7), None),  # insert then delete in one batch: absent
        ev("d", s, row(5), None),
        ev("c", s, None, row(5, "again", 55)),  # delete then insert: present
        ev("c", s, None, row(3, "three")),
        ev("d", s, row(3, "three"), None),
    ]


EXPECTED_A = [(1, "n1", 10), (2, "TWO", 22), (5, "again", 55), (6, "n6", 60), (40, "forty", 400)]


def test_batch_inserts_updates_deletes_key_change(sink: Any) -> None:
    create(sink, SIMPLE)
    sink.write_batch("p", batch_a(), offset=SourceOffset(MySqlPosition("b.000001", 100)))
    assert read(sink, SIMPLE.table) == EXPECTED_A
    assert sink.applied("p") == SourceOffset(MySqlPosition("b.000001", 100))


def test_replaying_a_batch_gives_the_same_table(sink: Any) -> None:
    create(sink, SIMPLE)
    sink.write_batch("p", batch_a())
    first = read(sink, SIMPLE.table)
    sink.write_batch("p", batch_a())
    assert read(sink, SIMPLE.table) == first == EXPECTED_A
    # Re-applying single events (a crash between apply and commit of the caller) changes nothing either.
    for e in batch_a():
        sink.write_batch("p", [e])
    assert read(sink, SIMPLE.table) == EXPECTED_A


def test_truncate_orders_within_the_batch(sink: Any) -> None:
    create(sink, SIMPLE)
    sink.write_batch("p", [ev("c", SIMPLE, None, row(i)) for i in range(1, 4)])
    truncate = ChangeEvent(Op.TRUNCATE, SIMPLE.table, None, None, None, MYSQL_SRC, 0)
    sink.write_batch("p", [
        ev("c", SIMPLE, None, row(10)),  # before the truncate: discarded
        ev("u", SIMPLE, row(1), row(1, "x")),
        truncate,
        ev("c", SIMPLE, None, row(8)),  # after: applied
        ev("u", SIMPLE, row(8), row(8, "eight")),
        ev("c", SIMPLE, None, row(9)),
        ev("d", SIMPLE, row(9), None),
    ])
    assert read(sink, SIMPLE.table) == [(8, "eight", 80)]
    sink.write_batch("p", [truncate])
    assert read(sink, SIMPLE.table) == []


def test_tombstones_are_skipped(sink: Any) -> None:
    create(sink, SIMPLE)
    sink.write_batch("p", [ev("c", SIMPLE, None, row(1)), None, ev("c", SIMPLE, None, row(2))])
    assert [r[0] for r in read(sink, SIMPLE.table)] == [1, 2]


def test_composite_key_and_many_deletes(target: Target, sink: Any) -> None:
    k2 = col("k2", "VARCHAR(10)", Logical.STRING, string_wire(optional=False), length=10)
    s = schema_of(ID, k2, QTY, key=("id", "k2"), table=TableId("shop", "ck"))
    create(sink, s)
    rows = [{"id": i % 50, "k2": f"k{i}", "qty": i} for i in range(3000)]
    sink.write_batch("p", [ev("c", s, None, r) for r in rows])
    sink.write_batch("p", [ev("d", s, r, None) for r in rows if r["qty"] % 3])
    assert read(sink, s.table, order="qty") == [(r["id"], r["k2"], r["qty"]) for r in rows if r["qty"] % 3 == 0]
    # A key change in a composite key.
    sink.write_batch("p", [ev("u", s, {"id": 0, "k2": "k0", "qty": 0}, {"id": 0, "k2": "zz", "qty": -1})])
    got = read(sink, s.table, order="qty")
    assert got[0] == (0, "zz", -1) and (0, "k0", 0) not in got


def test_case_and_trailing_spaces_keep_keys_apart(target: Target, sink: Any) -> None:
    key = col("id", "varchar(10)", Logical.STRING, string_wire(optional=False), length=10)
    s = schema_of(key, QTY, table=TableId("shop", "ci"))
    create(sink, s, source=PG_SRC)
    keys = ["a", "A", "a ", "ä"]
    sink.write_batch("p", [ev("c", s, None, {"id": k, "qty": i}, source=PG_SRC) for i, k in enumerate(keys)])
    assert sorted(read(sink, s.table), key=lambda r: r[1]) == [(k, i) for i, k in enumerate(keys)]


# ---------------------------------------------------------------------------------------------
# Unchanged (TOAST) columns
# ---------------------------------------------------------------------------------------------

BIG = col("big", "text", Logical.TEXT, string_wire())
TOASTY = schema_of(ID, NAME, BIG, table=TableId("shop", "toast"))


def test_unchanged_toast_columns_are_left_untouched(sink: Any) -> None:
    create(sink, TOASTY, source=PG_SRC)
    big = "x" * 20_000
    sink.write_batch("p", [ev("c", TOASTY, None, {"id": 1, "name": "a", "big": big}, source=PG_SRC),
                           ev("c", TOASTY, None, {"id": 2, "name": "b", "big": "small"}, source=PG_SRC)])
    partial = frozenset({"big"})
    sink.write_batch("p", [ev("u", TOASTY, None, {"id": 1, "name": "a2"}, partial, source=PG_SRC),
                           ev("u", TOASTY, None, {"id": 2, "name": "b2", "big": "changed"}, source=PG_SRC)])
    assert read(sink, TOASTY.table) == [(1, "a2", big), (2, "b2", "changed")]
    # Replayed: the row exists and nothing changes (MySQL counts matched rows, not changed ones).
    sink.write_batch("p", [ev("u", TOASTY, None, {"id": 1, "name": "a2"}, partial, source=PG_SRC)])
    assert read(sink, TOASTY.table) == [(1, "a2", big), (2, "b2", "changed")]
    # Within one batch: a full image then a partial one merge into a full row.
    sink.write_batch("p", [ev("c", TOASTY, None, {"id": 3, "name": "c", "big": "full"}, source=PG_SRC),
                           ev("u", TOASTY, None, {"id": 3, "name": "c2"}, partial, source=PG_SRC)])
    assert read(sink, TOASTY.table)[2] == (3, "c2", "full")


def test_unchanged_columns_of_a_missing_row_are_an_error(sink: Any) -> None:
    from connectors.sql.sink import RejectedValue

    create(sink, TOASTY, source=PG_SRC)
    start = SourceOffset(PgPosition(100))
    sink.write_batch("p", [ev("c", TOASTY, None, {"id": i, "name": "a", "big": "b"}, source=PG_SRC)
                           for i in (1, 2)], offset=start)
    partial = frozenset({"big"})
    batch = [
        ev("c", TOASTY, None, {"id": 5, "name": "e", "big": "b"}, source=PG_SRC),
        ev("u", TOASTY, None, {"id": 1, "name": "x"}, partial, source=PG_SRC),
        ev("u", TOASTY, None, {"id": 9, "name": "zz"}, partial, source=PG_SRC),
        ev("u", TOASTY, None, {"id": 2, "name": "y"}, partial, source=PG_SRC),
    ]
    with pytest.raises(RejectedValue, match=r"key \{\"id\":9\}.*big unchanged") as info:
        sink.write_batch("p", batch, offset=SourceOffset(PgPosition(200)))
    assert info.value.event_index == 2 and info.value.key == {"id": 9}
    assert read(sink, TOASTY.table) == [(1, "a", "b"), (2, "a", "b")]
    assert sink.applied("p") == start
    # Deleted earlier in the same batch: refused before touching the target.
    with pytest.raises(TargetValueError, match="deleted earlier in the same batch"):
        sink.write_batch("p", [ev("d", TOASTY, {"id": 1}, None, source=PG_SRC),
                               ev("u", TOASTY, None, {"id": 1, "name": "q"}, frozenset({"big"}), source=PG_SRC)])


# ---------------------------------------------------------------------------------------------
# Positions
# ---------------------------------------------------------------------------------------------


def test_positions_are_stored_with_the_rows(target: Target, sink: Any) -> None:
    create(sink, SIMPLE)
    assert sink.applied("p") is None and sink.applied_partitions("p") == {}
    offset = SourceOffset(MySqlPosition("mariadb-bin.000003", 1234, "0-1-77", 1))
    sink.write_batch("p", [ev("c", SIMPLE, None, row(1))], offset=offset,
                     partitions={("pfx.shop.t", 0): 11, ("pfx.shop.t", 1): 7})
    assert sink.applied("p") == offset
    assert sink.applied_partitions("p") == {("pfx.shop.t", 0): 11, ("pfx.shop.t", 1): 7}
    # Positions advance; a batch without events stores its position too.
    sink.write_batch("p", [], partitions={("pfx.shop.t", 1): 9})
    assert sink.applied_partitions("p") == {("pfx.shop.t", 0): 11, ("pfx.shop.t", 1): 9}
    # Other pipelines and other sinks have their own positions.
    assert sink.applied("other") is None
    other = make_sink(target.url, name="replica2")
    try:
        assert other.applied("p") is None and other.applied_partitions("p") == {}
    finally:
        other.close()


def test_a_batch_behind_the_stored_offsets_is_refused(sink: Any) -> None:
    """After a rebalance, a process that lost a partition cannot write older images over newer ones."""
    from connectors.sql.sink import StaleBatchError

    create(sink, SIMPLE)
    sink.write_batch("p", [ev("c", SIMPLE, None, row(1, "newer"))], partitions={("t", 0): 200})
    with pytest.raises(StaleBatchError, match="later offset for t/0"):
        sink.write_batch("p", [ev("c", SIMPLE, None, row(1, "older")), ev("c", SIMPLE, None, row(2))],
                         partitions={("t", 0): 150, ("t", 1): 5})
    assert read(sink, SIMPLE.table) == [(1, "newer", 10)]
    assert sink.applied_partitions("p") == {("t", 0): 200}
    # The same offset again (a replay of the last batch) and later ones are applied.
    sink.write_batch("p", [ev("c", SIMPLE, None, row(1, "newer"))], partitions={("t", 0): 200})
    sink.write_batch("p", [ev("c", SIMPLE, None, row(2))], partitions={("t", 0): 201, ("t", 1): 5})
    assert [r[0] for r in read(sink, SIMPLE.table)] == [1, 2]


def test_a_failing_batch_leaves_neither_rows_nor_position(target: Target, sink: Any) -> None:
    create(sink, SIMPLE)
    strict = schema_of(ID, col("must", "INT", Logical.INT32, int_wire(32)), table=TableId("shop", "strict"))
    strict = TableSchema(strict.table, (ID, Column("must", "INT", Logical.INT32, int_wire(32), nullable=False)),
                         ("id",))
    create(sink, strict)
    first = SourceOffset(MySqlPosition("b.000001", 10))
    sink.write_batch("p", [ev("c", SIMPLE, None, row(1))], offset=first, partitions={("t", 0): 1})
    batch = [
        *[ev("c", SIMPLE, None, row(i)) for i in range(2, 3000)],  # applied first (PostgreSQL: through COPY)
        ev("d", SIMPLE, row(1), None),
        ev("c", strict, None, {"id": 1, "must": 5}),
        ev("c", strict, None, {"id": 2, "must": None}),  # the target refuses NULL: the last statement fails
    ]
    with pytest.raises(TargetValueError):
        sink.write_batch("p", batch, offset=SourceOffset(MySqlPosition("b.000001", 99)), partitions={("t", 0): 50})
    assert read(sink, SIMPLE.table) == [(1, "n1", 10)]
    assert read(sink, strict.table) == []
    assert sink.applied("p") == first and sink.applied_partitions("p") == {("t", 0): 1}
    # The sink is still usable afterwards.
    sink.write_batch("p", batch[:-1], offset=SourceOffset(MySqlPosition("b.000001", 99)))
    assert len(read(sink, SIMPLE.table)) == 2998


def test_rejected_value_fails_before_the_transaction(target: Target, sink: Any) -> None:
    from connectors.sql.sink import RejectedValue

    create(sink, SIMPLE)
    if target.kind == "sqlite":  # SQLite holds strings of any length: the whole value lands, untruncated
        sink.write_batch("p", [ev("c", SIMPLE, None, row(2, "x" * 21))],
                         offset=SourceOffset(MySqlPosition("b.000001", 5)))
        assert [r[1] for r in read(sink, SIMPLE.table)] == ["x" * 21]
        return
    with pytest.raises(RejectedValue) as info:
        sink.write_batch("p", [ev("c", SIMPLE, None, row(1)), ev("c", SIMPLE, None, row(2, "x" * 21))],
                         offset=SourceOffset(MySqlPosition("b.000001", 5)))
    err = info.value
    assert err.column == "name" and err.key == {"id": 2} and err.event_index == 1 and err.table == SIMPLE.table
    assert "21 characters" in str(err) and "holds 20" in str(err) and "x" * 21 not in str(err)
    assert read(sink, SIMPLE.table) == [] and sink.applied("p") is None


def test_rejected_values_on_mariadb(mysql_db: Any) -> None:
    """A PostgreSQL date before year 1000, NaN, and an over-long value are refused by name, never stored."""
    from connectors.sql.sink import RejectedValue

    sink = make_sink(mysql_db.url)
    try:
        d = col("d", "date", Logical.DATE, date_wire(TimePrecision.ADAPTIVE))
        f = col("f", "float8", Logical.FLOAT64, float_wire(64))
        v = col("v", "varchar(5)", Logical.STRING, string_wire(), length=5)
        s = schema_of(ID, d, f, v, table=TableId("public", "r"))
        create(sink, s, source=PG_SRC)
        ok = {"id": 1, "d": to_wire(date(1000, 1, 1), d.wire), "f": 1.5, "v": "abcde"}
        sink.write_batch("p", [ev("c", s, None, ok, source=PG_SRC)])
        cases = [
            ({**ok, "id": 2, "d": to_wire(date(999, 12, 31), d.wire)}, "d", "before 1000"),
            ({**ok, "id": 3, "f": "NaN"}, "f", "NaN"),
            ({**ok, "id": 4, "v": "abcdef"}, "v", "6 characters"),
        ]
        for image, column, words in cases:
            with pytest.raises(RejectedValue, match=words) as info:
                sink.write_batch("p", [ev("c", s, None, image, source=PG_SRC)])
            assert info.value.column == column and info.value.key == {"id": image["id"]}
            assert "public.r" in str(info.value)
        assert [r[0] for r in read(sink, s.table)] == [1]
    finally:
        sink.close()


def test_mariadb_key_and_row_size_limits(mysql_db: Any) -> None:
    """PostgreSQL text keys and wide varchar rows fit InnoDB's key and row limits, and still hold full values."""
    sink = make_sink(mysql_db.url)
    try:
        key = col("k", "text", Logical.TEXT, string_wire(optional=False))
        wide = [col(f"c{i}", "varchar(5000)", Logical.STRING, string_wire(), length=5000) for i in range(4)]
        s = schema_of(key, *wide, key=("k",), table=TableId("public", "wide"))
        create(sink, s, source=PG_SRC)
        image = {"k": "κ" * 768, **{f"c{i}": "€" * 5000 for i in range(4)}}
        sink.write_batch("p", [ev("c", s, None, image, source=PG_SRC)], offset=SourceOffset(PgPosition(1)))
        assert read(sink, s.table, order="k") == [tuple(image.values())]
    finally:
        sink.close()


# ---------------------------------------------------------------------------------------------
# PostgreSQL: COPY
# ---------------------------------------------------------------------------------------------


def test_copy_path_on_postgresql(pg_db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.sql import sink as sink_module

    calls: list[int] = []
    original = sink_module.SqlSink._copy_merge

    def spy(self: Any, conn: Any, cursor: Any, target: Any, group: Any) -> None:
        calls.append(len(group.rows))
        original(self, conn, cursor, target, group)

    monkeypatch.setattr(sink_module.SqlSink, "_copy_merge", spy)
    sink = make_sink(pg_db.url)
    try:
        amount = col("amount", "DECIMAL(12,2)", Logical.DECIMAL, decimal_wire(12, 2, DecimalHandling.PRECISE),
                     precision=12, scale=2)
        when = col("at", "DATETIME(6)", Logical.TIMESTAMP, timestamp_wire(6, TimePrecision.ADAPTIVE_TIME_MICROSECONDS),
                   precision=6)
        tags = col("tags", "_text", Logical.ARRAY, array_wire(string_wire()))
        doc = col("doc", "jsonb", Logical.JSON, json_wire())
        s = schema_of(ID, NAME, amount, when, tags, doc, table=TableId("shop", "big"))
        create(sink, s, source=PG_SRC)
        base = datetime(2024, 1, 1, 12, 0, 0, 123456)

        def image(i: int, tag: str) -> dict[str, Any]:
            return {"id": i, "name": f"{tag}{i}", "amount": to_wire(Decimal(i) / 100, amount.wire),
                    "at": to_wire(base + timedelta(seconds=i), when.wire), "tags": [tag, "q\"u,o{te}"],
                    "doc": json.dumps({"i": i, "t": tag})}

        n = 5000
        sink.write_batch("p", [ev("c", s, None, image(i, "a"), source=PG_SRC) for i in range(n)])
        # Updates of every row plus new rows, with deletes in the same batch.
        batch = [ev("u", s, None, image(i, "b"), source=PG_SRC) for i in range(0, n + 500)]
        batch += [ev("d", s, {"id": i}, None, source=PG_SRC) for i in range(0, 100)]
        sink.write_batch("p", batch, offset=SourceOffset(PgPosition(0x16B3748)))
        assert calls == [n, n + 400]
        rows = read(sink, s.table)
        assert len(rows) == n + 400
        assert rows[0] == (100, "b100", Decimal("1.00"), base + timedelta(seconds=100), ["b", "q\"u,o{te}"],
                           {"i": 100, "t": "b"})
        assert rows[-1][0] == n + 499 and rows[-1][1] == f"b{n + 499}"
        assert sink.applied("p") == SourceOffset(PgPosition(0x16B3748))
    finally:
        sink.close()


# ---------------------------------------------------------------------------------------------
# Type matrix: Python values → Debezium representation → sink → target → read back
# ---------------------------------------------------------------------------------------------

POINT = struct.pack("<BIdd", 1, 1, 1.5, -2.25)


@dataclass
class Case:
    column: Column
    values: list[Any]  # Python values, one per row (row ids 1..n)
    norm: Callable[[str, Any], Any] | None = None  # (target kind, read-back value) → comparable value
    want: Callable[[str, Any], Any] | None = None  # (target kind, Python value) → expected comparable value


def _same(_kind: str, value: Any) -> Any:
    return value


def _dec(_kind: str, value: Any) -> Any:
    return None if value is None else Decimal(value)


def _int(_kind: str, value: Any) -> Any:
    if value is None:
        return None
    return int.from_bytes(value, "big") if isinstance(value, bytes) else int(value)


def _boolish(_kind: str, value: Any) -> Any:
    if value is None:
        return None
    return bool(int.from_bytes(value, "big")) if isinstance(value, bytes) else bool(value)


def _text_dt(kind: str, value: Any) -> Any:
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def _utc(kind: str, value: Any) -> Any:
    value = _text_dt(kind, value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _day(kind: str, value: Any) -> Any:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _duration(kind: str, value: Any) -> Any:
    if isinstance(value, str):
        sign = -1 if value.startswith("-") else 1
        h, m, s = value.lstrip("-").split(":")
        return sign * timedelta(hours=int(h), minutes=int(m), seconds=float(s))
    if isinstance(value, time):
        return timedelta(hours=value.hour, minutes=value.minute, seconds=value.second,
                         microseconds=value.microsecond)
    return value


def _clock(kind: str, value: Any) -> Any:
    """Time of day (PG time): every target's value as a timedelta since midnight."""
    return _duration(kind, value)


def _json(kind: str, value: Any) -> Any:
    """psycopg parses json, jsonb and arrays itself; elsewhere they are JSON text."""
    return value if kind == "postgresql" else json.loads(value)


def _uuid(kind: str, value: Any) -> Any:
    return uuid.UUID(str(value)) if value is not None else None


def _str(kind: str, value: Any) -> Any:
    return None if value is None else str(value)


def _bits(kind: str, value: Any) -> Any:
    if isinstance(value, str):
        return int(value, 2)
    return _int(kind, value)


def _iso_interval(kind: str, value: Any) -> Any:
    if isinstance(value, timedelta):
        return PgInterval.from_timedelta(value).isoformat()
    return value


def _want_interval(kind: str, value: Any) -> Any:
    return PgInterval.from_timedelta(value).isoformat()


def _want_utc(kind: str, value: Any) -> Any:
    return value.astimezone(UTC)


def _want_time_of_day(kind: str, value: Any) -> Any:
    return timedelta(hours=value.hour, minutes=value.minute, seconds=value.second, microseconds=value.microsecond)


def _want_timetz(kind: str, value: Any) -> Any:
    """PostgreSQL keeps time with time zone (in UTC); elsewhere the UTC time of day."""
    utc = datetime.combine(date(2000, 1, 1), value).astimezone(UTC).time()
    return utc.replace(tzinfo=UTC) if kind == "postgresql" else _want_time_of_day(kind, utc)


def _norm_timetz(kind: str, value: Any) -> Any:
    if kind == "postgresql":
        return value
    return _duration(kind, value)


def _want_geometry_mysql_source(kind: str, value: Geometry) -> Any:
    if kind == "mariadb":
        return struct.pack("<I", value.srid or 0) + value.wkb
    # EWKB: SRID flag and SRID after the type
    return value.wkb[:1] + struct.pack("<II", 1 | 0x20000000, value.srid) + value.wkb[5:]


MYSQL_MATRIX = [
    Case(col("u64", "BIGINT UNSIGNED", Logical.UINT64, bigint_unsigned_wire(BigintUnsignedHandling.PRECISE),
             precision=20, scale=0), [Decimal(2**64 - 1), Decimal(0), None], _dec),
    Case(col("u64l", "BIGINT UNSIGNED", Logical.UINT64, bigint_unsigned_wire(BigintUnsignedHandling.LONG)),
         [2**63 - 1, 0, None], _dec, lambda kind, v: Decimal(v)),
    Case(col("ti", "TINYINT", Logical.INT8, int_wire(16)), [-128, 127, None], _same),
    Case(col("tu", "TINYINT UNSIGNED", Logical.INT16, int_wire(16)), [255, 0, None], _same),
    Case(col("mi", "MEDIUMINT", Logical.INT32, int_wire(32)), [-8388608, 8388607, None], _same),
    Case(col("iu", "INT UNSIGNED", Logical.INT64, int_wire(64)), [4294967295, 1, None], _same),
    Case(col("bi", "BIGINT", Logical.INT64, int_wire(64)), [-(2**63), 2**63 - 1, None], _same),
    Case(col("f", "FLOAT", Logical.FLOAT32, float_wire(32)), [1.5, -0.25, None], _same),
    Case(col("d", "DOUBLE", Logical.FLOAT64, float_wire(64)), [1.0000000000000002, -1e300, None], _same),
    Case(col("dec", "DECIMAL(10,2)", Logical.DECIMAL, decimal_wire(10, 2, DecimalHandling.PRECISE), precision=10,
             scale=2), [Decimal("12345678.90"), Decimal("-0.01"), None], _dec),
    Case(col("dbig", "DECIMAL(65,30)", Logical.DECIMAL, decimal_wire(65, 30, DecimalHandling.PRECISE), precision=65,
             scale=30), [Decimal("12345678901234567890123456789012345.123456789012345678901234567890"),
                         Decimal("-1E-30"), None], _dec),
    Case(col("dstr", "DECIMAL(8,3)", Logical.DECIMAL, decimal_wire(8, 3, DecimalHandling.STRING), precision=8,
             scale=3), [Decimal("-12345.678"), Decimal("0.001"), None], _dec),
    Case(col("dt", "DATE", Logical.DATE, date_wire(TimePrecision.ADAPTIVE_TIME_MICROSECONDS)),
         [date(1000, 1, 1), date(9999, 12, 31), None], _day),
    Case(col("dt3", "DATETIME(3)", Logical.TIMESTAMP, timestamp_wire(3, TimePrecision.ADAPTIVE_TIME_MICROSECONDS),
             precision=3), [datetime(2024, 2, 29, 23, 59, 59, 999000), datetime(1000, 1, 1), None], _text_dt),
    Case(col("dt6", "DATETIME(6)", Logical.TIMESTAMP, timestamp_wire(6, TimePrecision.ADAPTIVE_TIME_MICROSECONDS),
             precision=6), [datetime(2024, 1, 2, 3, 4, 5, 678901), datetime(9999, 12, 31, 23, 59, 59, 999999), None],
         _text_dt),
    Case(col("ts", "TIMESTAMP(6)", Logical.TIMESTAMPTZ, zoned_timestamp_wire(), precision=6),
         [datetime(2038, 1, 19, 3, 14, 7, 1, tzinfo=UTC), datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), None], _utc),
    Case(col("tm", "TIME(6)", Logical.TIME, time_wire(6, TimePrecision.ADAPTIVE_TIME_MICROSECONDS), precision=6),
         [timedelta(hours=-838, minutes=-59, seconds=-59), timedelta(hours=100, microseconds=1), None], _duration),
    Case(col("y", "YEAR", Logical.YEAR, year_wire()), [1901, 2155, None], _same),
    Case(col("ch", "CHAR(5)", Logical.STRING, string_wire(), length=5), ["ab", "äöü€😀", None], _same),
    Case(col("vc", "VARCHAR(20)", Logical.STRING, string_wire(), length=20), ["x" * 20, "", None], _same),
    Case(col("tx", "TEXT", Logical.TEXT, string_wire()), ["long " * 1000, "\n\t'\"\\", None], _same),
    Case(col("mt", "MEDIUMTEXT", Logical.TEXT, string_wire()), ["m" * 70_000, "😀", None], _same),
    Case(col("bn", "BINARY(4)", Logical.BYTES, bytes_wire(), length=4), [b"\x00\x01\x02\x03", b"ab\x00\x00", None],
         _same),
    Case(col("vb", "VARBINARY(16)", Logical.BYTES, bytes_wire(), length=16), [b"\xff" * 16, b"", None], _same),
    Case(col("bl", "BLOB", Logical.BYTES, bytes_wire()), [bytes(range(256)) * 10, b"\x00", None], _same),
    Case(col("en", "ENUM", Logical.ENUM, enum_wire(["small", "medium", "x-large"]),
             enum_values=("small", "medium", "x-large")), ["x-large", "small", None], _same),
    Case(col("st", "SET", Logical.SET, set_wire(["a", "b", "c"]), enum_values=("a", "b", "c")), ["a,c", "", None],
         _same),
    Case(col("b1", "BIT(1)", Logical.BOOLEAN, bool_wire(), length=1), [True, False, None], _boolish),
    Case(col("b12", "BIT(12)", Logical.BITS, bits_wire(12), length=12), [0b101000000001, 0, None], _bits),
    Case(col("js", "JSON", Logical.JSON, json_wire()), ['{"a": [1, 2.5, "x"], "b": null}', "[]", None], _json,
         lambda kind, v: json.loads(v)),
    Case(col("g", "GEOMETRY", Logical.GEOMETRY, geometry_wire()), [Geometry(POINT, 4326), Geometry(POINT, 0), None],
         _same, lambda kind, v: _want_geometry_mysql_source(kind, v) if v.srid else (
             struct.pack("<I", 0) + v.wkb if kind == "mariadb" else v.wkb)),
]

PG_MATRIX = [
    Case(col("i2", "int2", Logical.INT16, int_wire(16)), [-32768, 32767, None], _same),
    Case(col("i8", "int8", Logical.INT64, int_wire(64)), [-(2**63), 2**63 - 1, None], _same),
    Case(col("n", "numeric(12,4)", Logical.DECIMAL, decimal_wire(12, 4, DecimalHandling.PRECISE), precision=12,
             scale=4), [Decimal("12345678.1234"), Decimal("-0.0001"), None], _dec),
    Case(col("nv", "numeric", Logical.DECIMAL, variable_scale_decimal_wire()),
         [Decimal("123456789012345678901234567890.123456789012345678901234567891"), Decimal("-1E+5"), None], _dec),
    Case(col("f4", "float4", Logical.FLOAT32, float_wire(32)), [0.5, -1024.0, None], _same),
    Case(col("f8", "float8", Logical.FLOAT64, float_wire(64)), [2.2250738585072014e-308, -0.0, None], _same),
    Case(col("bo", "bool", Logical.BOOLEAN, bool_wire()), [True, False, None], _boolish),
    Case(col("vc", "varchar(30)", Logical.STRING, string_wire(), length=30), ["ünïcödé 😀", "A", None], _same),
    Case(col("bp", "bpchar(5)", Logical.STRING, string_wire(), length=5), ["ab   ", "abcde", None], _same,
         lambda kind, v: v),
    Case(col("tx", "text", Logical.TEXT, string_wire()), ["t" * 100_000, "", None], _same),
    Case(col("by", "bytea", Logical.BYTES, bytes_wire()), [bytes(range(256)), b"", None], _same),
    Case(col("d", "date", Logical.DATE, date_wire(TimePrecision.ADAPTIVE)), [date(1000, 1, 1), date(2024, 2, 29), None],
         _day, lambda kind, v: v),
    Case(col("t", "time(6)", Logical.TIME, time_wire(6, TimePrecision.ADAPTIVE), precision=6),
         [time(0, 0), time(23, 59, 59, 999999), None], _clock, _want_time_of_day),
    Case(col("tz", "timetz", Logical.TIMETZ, zoned_time_wire()),
         [time(12, 30, tzinfo=UTC), time(23, 0, 0, 5, tzinfo=UTC), None], _norm_timetz, _want_timetz),
    Case(col("ts", "timestamp(6)", Logical.TIMESTAMP, timestamp_wire(6, TimePrecision.ADAPTIVE), precision=6),
         [datetime(2000, 1, 1, 0, 0, 0, 1), datetime(1999, 12, 31, 23, 59, 59), None], _text_dt),
    Case(col("tstz", "timestamptz", Logical.TIMESTAMPTZ, zoned_timestamp_wire(), precision=6),
         [datetime(2024, 6, 1, 12, 0, 0, 500000, tzinfo=UTC), datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC), None],
         _utc, _want_utc),
    Case(col("iv", "interval", Logical.INTERVAL, interval_wire(IntervalHandling.NUMERIC)),
         [timedelta(days=3, hours=4, microseconds=5), timedelta(seconds=-1), None], _iso_interval, _want_interval),
    Case(col("ivs", "interval", Logical.INTERVAL, interval_wire(IntervalHandling.STRING)),
         [PgInterval(0, 2, 3_000_000), PgInterval(0, -1, 0), None], _iso_interval,
         lambda kind, v: v.isoformat()),
    Case(col("u", "uuid", Logical.UUID, uuid_wire()), [uuid.UUID(int=2**128 - 1), uuid.UUID(int=0), None], _uuid),
    Case(col("j", "json", Logical.JSON, json_wire()), ['{"k": [1, {"n": null}]}', '"s"', None], _json,
         lambda kind, v: json.loads(v)),
    Case(col("jb", "jsonb", Logical.JSON, json_wire()), ['{"b": 1, "a": 2}', "3.5", None], _json,
         lambda kind, v: json.loads(v)),
    Case(col("x", "xml", Logical.XML, xml_wire()), ["<a b='1'>t</a>", "<r/>", None], _same),
    Case(col("ip", "inet", Logical.INET, string_wire()), ["192.168.0.1", "2001:db8::1", None], _str),
    Case(col("cd", "cidr", Logical.CIDR, string_wire()), ["10.0.0.0/8", "2001:db8::/32", None], _str),
    Case(col("mac", "macaddr", Logical.MACADDR, string_wire()), ["08:00:2b:01:02:03", "ff:ff:ff:ff:ff:ff", None],
         _str),
    Case(col("bt", "bit(8)", Logical.BITS, bits_wire(8), length=8), ["10100001", "00000000", None], _bits,
         lambda kind, v: int(v, 2)),
    Case(col("ai", "_int4", Logical.ARRAY, array_wire(int_wire(32))), [[1, None, -3], [], None], _json),
    Case(col("at", "_text", Logical.ARRAY, array_wire(string_wire())), [["a", "b,c", "{}"], ["NULL"], None], _json),
    Case(col("mo", "money", Logical.MONEY, decimal_wire(19, 2, DecimalHandling.PRECISE)),
         [Decimal("-92233720368547758.08"), Decimal("0.01"), None], _dec),
]


def _matrix(cases: list[Case], source: dict[str, Any], table: str) -> tuple[TableSchema, list[ChangeEvent]]:
    schema = schema_of(ID, *[c.column for c in cases], table=TableId("shop", table))
    events = []
    for i in range(len(cases[0].values)):
        image: dict[str, Any] = {"id": i + 1}
        for c in cases:
            digits = c.column.precision if c.column.logical is Logical.TIMESTAMPTZ else None
            image[c.column.name] = to_wire(c.values[i], c.column.wire, fraction_digits=digits)
        events.append(ev("r", schema, None, image, source=source))
    return schema, events


def _check_matrix(sink: Any, kind: str, flavor: str) -> None:
    cases = MYSQL_MATRIX if flavor == "mysql" else PG_MATRIX
    source = MYSQL_SRC if flavor == "mysql" else PG_SRC
    schema, events = _matrix(cases, source, f"matrix_{flavor[:2]}")
    create(sink, schema, source=source)
    sink.write_batch("p", events)
    got = read(sink, schema.table)
    assert len(got) == len(events)
    problems = []
    for r, values in enumerate(got):
        assert values[0] == r + 1
        for c, value in zip(cases, values[1:], strict=True):
            python = c.values[r]
            norm = c.norm or _same
            actual = None if value is None else norm(kind, value)
            want = None if python is None else (c.want(kind, python) if c.want else python)
            if actual != want or (type(actual) is not type(want) and not isinstance(want, float | Decimal)):
                problems.append(f"{c.column.name}[{r}] {kind}: got {actual!r} ({value!r}), want {want!r}")
    assert not problems, "\n".join(problems)
    # Applying the same snapshot again (a replay) leaves the same rows.
    sink.write_batch("p", events)
    assert read(sink, schema.table) == got


@pytest.mark.parametrize("flavor", ["mysql", "postgresql"])
def test_type_matrix_round_trip(target: Target, sink: Any, flavor: str) -> None:
    _check_matrix(sink, target.kind, flavor)


@pytest.mark.parametrize("flavor", ["mysql", "postgresql"])
def test_type_matrix_through_copy_on_postgresql(pg_db: Any, flavor: str) -> None:
    """The same matrix through COPY and the merge (every batch takes that path here)."""
    sink = make_sink(pg_db.url, copy_threshold=1)
    try:
        _check_matrix(sink, "postgresql", flavor)
    finally:
        sink.close()


# ---------------------------------------------------------------------------------------------
# Connecting and checking
# ---------------------------------------------------------------------------------------------


def test_check_passes_on_a_ready_target(target: Target) -> None:
    from cdc.config import SinkConfig
    from connectors.sql.sink import SqlSink

    sink = SqlSink(SinkConfig(name="replica", url=target.url, dead_letter_topic="dlq", tables=["shop.*"]))
    assert sink.check() == []


@pytest.mark.parametrize("url", ["postgresql://postgres@127.0.0.1:1/x", "mysql://root@127.0.0.1:1/x"])
def test_unreachable_target(url: str) -> None:
    from cdc.config import SinkConfig
    from connectors.sql.sink import SqlSink

    sink = SqlSink(SinkConfig(name="replica", url=url, dead_letter_topic="dlq"))
    problems = sink.check()
    assert len(problems) == 1 and problems[0].component == "sink:replica"
    assert "cannot connect" in problems[0].message
    with pytest.raises(ConnectError, match="sink 'replica'"):
        sink.open()


def test_wrong_password_is_a_connect_error_without_the_password(pg_db: Any) -> None:
    from urllib.parse import urlsplit

    from cdc.config import SinkConfig
    from connectors.sql.sink import SqlSink

    parts = urlsplit(pg_db.url)
    url = parts._replace(netloc=f"cdc_nobody:s3cretpw@{parts.hostname}:{parts.port}").geturl()
    sink = SqlSink(SinkConfig(name="replica", url=url, dead_letter_topic="dlq"))
    with pytest.raises(ConnectError) as info:
        sink.open()
    assert "s3cretpw" not in str(info.value)
    assert "s3cretpw" not in " ".join(str(p) for p in sink.check())
