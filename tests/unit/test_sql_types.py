"""connectors.sql.types: the cross-engine type mapping (as DDL per dialect), value conversion, refusals;
and connectors.sql.errors: driver errors to cdc errors.

SQLAlchemy is imported inside the tests (never at collection): collecting the unit tests loads no driver.
"""

from __future__ import annotations

import re
import struct
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest

from cdc.errors import (
    ConnectError,
    ConnectionLostError,
    DecodeError,
    PermissionDeniedError,
    SchemaError,
    TargetValueError,
    TerminalError,
    TransientError,
)
from cdc.events import Column, Logical, TableId, TableSchema, Wire
from cdc.values import (
    BigintUnsignedHandling,
    BinaryHandling,
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

ADAPTIVE_US = TimePrecision.ADAPTIVE_TIME_MICROSECONDS


def types() -> ModuleType:
    import connectors.sql.types as module

    return module


def options(dialect: str, source: str | None = None, **kw: Any) -> Any:
    return types().TargetOptions(dialect=dialect, source=source, **kw)


def ddl(column: Column, dialect: str, source: str | None, *, key: bool = False) -> str:
    """The column's target type compiled with the real SQLAlchemy dialect."""
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    compiler = {"postgresql": postgresql, "mysql": mysql, "sqlite": sqlite}[dialect].dialect()
    return str(types().column_type(column, options(dialect, source), key=key).compile(dialect=compiler))


def col(name: str, native: str, logical: Logical, wire: Wire, **kw: Any) -> Column:
    return Column(name, native, logical, wire, **kw)


def convert(column: Column, dialect: str, source: str | None, payload: Any, **kw: Any) -> Any:
    return types().plan_column(column, options(dialect, source, **kw)).convert(payload)


# ---------------------------------------------------------------------------------------------
# The mapping table, as DDL per target dialect: (column, source engine, PostgreSQL, MySQL, SQLite)
# ---------------------------------------------------------------------------------------------

NOPAD = " COLLATE utf8mb4_nopad_bin"
M, P = "mysql", "postgresql"

MAPPING: list[tuple[Column, str | None, str, str, str]] = [
    (col("b", "BIT(1)", Logical.BOOLEAN, bool_wire(), length=1), M, "BOOLEAN", "BIT(1)", "BOOLEAN"),
    (col("b", "bool", Logical.BOOLEAN, bool_wire()), P, "BOOLEAN", "BOOL", "BOOLEAN"),
    (col("i", "TINYINT", Logical.INT8, int_wire(16)), M, "SMALLINT", "TINYINT", "INTEGER"),
    (col("i", "TINYINT UNSIGNED", Logical.INT16, int_wire(16)), M, "SMALLINT", "TINYINT UNSIGNED", "INTEGER"),
    (col("i", "int2", Logical.INT16, int_wire(16)), P, "SMALLINT", "SMALLINT", "INTEGER"),
    (col("i", "MEDIUMINT UNSIGNED", Logical.INT32, int_wire(32)), M, "INTEGER", "MEDIUMINT UNSIGNED", "INTEGER"),
    (col("i", "SMALLINT UNSIGNED", Logical.INT32, int_wire(32)), M, "INTEGER", "SMALLINT UNSIGNED", "INTEGER"),
    (col("i", "int4", Logical.INT32, int_wire(32)), P, "INTEGER", "INTEGER", "INTEGER"),
    (col("i", "INT UNSIGNED", Logical.INT64, int_wire(64)), M, "BIGINT", "INTEGER UNSIGNED", "INTEGER"),
    (col("i", "int8", Logical.INT64, int_wire(64)), P, "BIGINT", "BIGINT", "INTEGER"),
    (col("u", "BIGINT UNSIGNED", Logical.UINT64, bigint_unsigned_wire(BigintUnsignedHandling.PRECISE), precision=20,
         scale=0), M, "NUMERIC(20, 0)", "BIGINT UNSIGNED", "TEXT"),
    (col("f", "FLOAT", Logical.FLOAT32, float_wire(32)), M, "REAL", "FLOAT", "REAL"),
    (col("f", "float8", Logical.FLOAT64, float_wire(64)), P, "DOUBLE PRECISION", "DOUBLE", "REAL"),
    (col("d", "DECIMAL(10,2) UNSIGNED", Logical.DECIMAL, decimal_wire(10, 2, DecimalHandling.PRECISE), precision=10,
         scale=2), M, "NUMERIC(10, 2)", "DECIMAL(10, 2) UNSIGNED", "TEXT"),
    (col("d", "numeric(12,4)", Logical.DECIMAL, decimal_wire(12, 4, DecimalHandling.PRECISE), precision=12,
         scale=4), P, "NUMERIC(12, 4)", "DECIMAL(12, 4)", "TEXT"),
    (col("d", "numeric", Logical.DECIMAL, variable_scale_decimal_wire()), P, "NUMERIC", "DECIMAL(65, 30)", "TEXT"),
    (col("d", "numeric(100,40)", Logical.DECIMAL, decimal_wire(100, 40, DecimalHandling.PRECISE), precision=100,
         scale=40), P, "NUMERIC(100, 40)", "DECIMAL(65, 30)", "TEXT"),
    (col("m", "money", Logical.MONEY, decimal_wire(19, 2, DecimalHandling.PRECISE)), P, "NUMERIC(19, 2)",
     "DECIMAL(19, 2)", "TEXT"),
    (col("s", "CHAR(5)", Logical.STRING, string_wire(), length=5), M, "VARCHAR(5)", "CHAR(5)" + NOPAD, "VARCHAR(5)"),
    (col("s", "bpchar(5)", Logical.STRING, string_wire(), length=5), P, "CHAR(5)", "VARCHAR(5)" + NOPAD,
     "VARCHAR(5)"),
    (col("s", "VARCHAR(20)", Logical.STRING, string_wire(), length=20), M, "VARCHAR(20)", "VARCHAR(20)" + NOPAD,
     "VARCHAR(20)"),
    (col("s", "varchar", Logical.STRING, string_wire()), P, "VARCHAR", "LONGTEXT" + NOPAD, "TEXT"),
    (col("s", "varchar(20000)", Logical.STRING, string_wire(), length=20000), P, "VARCHAR(20000)",
     "MEDIUMTEXT" + NOPAD, "VARCHAR(20000)"),
    (col("t", "MEDIUMTEXT", Logical.TEXT, string_wire()), M, "TEXT", "MEDIUMTEXT" + NOPAD, "TEXT"),
    (col("t", "text", Logical.TEXT, string_wire()), P, "TEXT", "LONGTEXT" + NOPAD, "TEXT"),
    (col("x", "BINARY(16)", Logical.BYTES, bytes_wire(), length=16), M, "BYTEA", "BINARY(16)", "BLOB"),
    (col("x", "TINYBLOB", Logical.BYTES, bytes_wire()), M, "BYTEA", "TINYBLOB", "BLOB"),
    (col("x", "bytea", Logical.BYTES, bytes_wire()), P, "BYTEA", "LONGBLOB", "BLOB"),
    (col("d", "DATE", Logical.DATE, date_wire(ADAPTIVE_US)), M, "DATE", "DATE", "DATE"),
    (col("t", "TIME(3)", Logical.TIME, time_wire(6, ADAPTIVE_US), precision=3), M, "INTERVAL", "TIME(3)", "TIME"),
    (col("t", "time(6)", Logical.TIME, time_wire(6, TimePrecision.ADAPTIVE), precision=6), P,
     "TIME(6) WITHOUT TIME ZONE", "TIME(6)", "TIME"),
    (col("t", "timetz", Logical.TIMETZ, zoned_time_wire()), P, "TIME(6) WITH TIME ZONE", "TIME(6)", "TIME"),
    (col("t", "DATETIME(3)", Logical.TIMESTAMP, timestamp_wire(3, ADAPTIVE_US), precision=3), M,
     "TIMESTAMP(3) WITHOUT TIME ZONE", "DATETIME(3)", "DATETIME"),
    (col("t", "timestamp", Logical.TIMESTAMP, timestamp_wire(6, TimePrecision.ADAPTIVE)), P,
     "TIMESTAMP(6) WITHOUT TIME ZONE", "DATETIME(6)", "DATETIME"),
    (col("t", "TIMESTAMP(2)", Logical.TIMESTAMPTZ, zoned_timestamp_wire(), precision=2), M,
     "TIMESTAMP(2) WITH TIME ZONE", "DATETIME(2)", "DATETIME"),
    (col("t", "timestamptz", Logical.TIMESTAMPTZ, zoned_timestamp_wire()), P, "TIMESTAMP(6) WITH TIME ZONE",
     "DATETIME(6)", "DATETIME"),
    (col("i", "interval", Logical.INTERVAL, interval_wire(IntervalHandling.NUMERIC)), P, "INTERVAL",
     "VARCHAR(64)" + NOPAD, "TEXT"),
    (col("y", "YEAR", Logical.YEAR, year_wire()), M, "SMALLINT", "YEAR", "INTEGER"),
    (col("u", "uuid", Logical.UUID, uuid_wire()), P, "UUID", "CHAR(36)" + NOPAD, "CHAR(36)"),
    (col("j", "JSON", Logical.JSON, json_wire()), M, "JSONB", "JSON", "TEXT"),
    (col("j", "json", Logical.JSON, json_wire()), P, "JSON", "JSON", "TEXT"),
    (col("j", "jsonb", Logical.JSON, json_wire()), P, "JSONB", "JSON", "TEXT"),
    (col("x", "xml", Logical.XML, xml_wire()), P, "XML", "LONGTEXT" + NOPAD, "TEXT"),
    (col("e", "ENUM", Logical.ENUM, enum_wire(["s", "medium"]), enum_values=("s", "medium")), M, "VARCHAR(6)",
     "ENUM('s','medium')", "VARCHAR(6)"),
    (col("e", "mood", Logical.ENUM, enum_wire(["sad", "ok"])), P, "VARCHAR(3)", "VARCHAR(3)" + NOPAD, "VARCHAR(3)"),
    (col("e", "SET", Logical.SET, set_wire(["a", "bb"]), enum_values=("a", "bb")), M, "VARCHAR(4)",
     "SET('a','bb')", "VARCHAR(4)"),
    (col("b", "BIT(12)", Logical.BITS, bits_wire(12), length=12), M, "BIT(12)", "BIT(12)", "BLOB"),
    (col("b", "varbit(100)", Logical.BITS, bits_wire(100), length=100), P, "BIT VARYING(100)", "VARBINARY(13)",
     "BLOB"),
    (col("g", "GEOMETRY", Logical.GEOMETRY, geometry_wire()), M, "BYTEA", "GEOMETRY", "BLOB"),
    (col("g", "geometry", Logical.GEOMETRY, geometry_wire()), P, "BYTEA", "LONGBLOB", "BLOB"),
    (col("a", "_int4", Logical.ARRAY, array_wire(int_wire(32))), P, "INTEGER[]", "JSON", "TEXT"),
    (col("a", "_numeric", Logical.ARRAY, array_wire(decimal_wire(8, 2, DecimalHandling.PRECISE))), P,
     "NUMERIC(8, 2)[]", "JSON", "TEXT"),
    (col("a", "text[]", Logical.ARRAY, array_wire(string_wire())), P, "TEXT[]", "JSON", "TEXT"),
    (col("n", "inet", Logical.INET, string_wire()), P, "INET", "VARCHAR(43)" + NOPAD, "VARCHAR(43)"),
    (col("n", "cidr", Logical.CIDR, string_wire()), P, "CIDR", "VARCHAR(43)" + NOPAD, "VARCHAR(43)"),
    (col("n", "macaddr8", Logical.MACADDR, string_wire()), P, "MACADDR8", "VARCHAR(23)" + NOPAD, "VARCHAR(23)"),
    (col("n", "tsvector", Logical.UNKNOWN, string_wire()), P, "TEXT", "LONGTEXT" + NOPAD, "TEXT"),
]


@pytest.mark.parametrize(("column", "source", "pg", "my", "lite"), MAPPING,
                         ids=[f"{c.native_type}:{s}" for c, s, *_ in MAPPING])
def test_mapping_table(column: Column, source: str | None, pg: str, my: str, lite: str) -> None:
    got = {d: ddl(column, d, source) for d in ("postgresql", "mysql", "sqlite")}
    assert got == {"postgresql": pg, "mysql": my, "sqlite": lite}


def test_mysql_keys_get_bounded_types() -> None:
    t = types()
    text_key = col("k", "text", Logical.TEXT, string_wire(optional=False), nullable=False)
    bytes_key = col("b", "bytea", Logical.BYTES, bytes_wire(optional=False), nullable=False)
    assert ddl(text_key, "mysql", P, key=True) == "VARCHAR(768)" + NOPAD
    assert ddl(bytes_key, "mysql", P, key=True) == "VARBINARY(3072)"
    # Two unbounded key columns and an int share InnoDB's 3072-byte key.
    schema = TableSchema(TableId("s", "t"), (text_key, bytes_key, col("i", "int8", Logical.INT64, int_wire(64))),
                         ("k", "b", "i"))
    plan = t.plan_table(schema, options("mysql", P))
    assert [c.sql for c in plan.columns] == ["VARCHAR(383)" + NOPAD, "VARBINARY(1532)", "BIGINT"]
    with pytest.raises(t.ValueRejected, match="384 characters"):
        plan.by_name["k"].convert("x" * 384)
    # A key column that fits keeps its length.
    schema = TableSchema(TableId("s", "t"), (col("k", "varchar(100)", Logical.STRING, string_wire(), length=100),),
                         ("k",))
    assert t.plan_table(schema, options("mysql", P)).columns[0].sql == "VARCHAR(100)" + NOPAD


def test_mysql_row_size_turns_long_varchars_into_text() -> None:
    t = types()
    columns = [col("id", "int4", Logical.INT32, int_wire(32, optional=False))]
    columns += [col(f"c{i}", "varchar(5000)", Logical.STRING, string_wire(), length=5000) for i in range(4)]
    plan = t.plan_table(TableSchema(TableId("s", "t"), tuple(columns), ("id",)), options("mysql", P))
    sqls = [c.sql for c in plan.columns[1:]]  # 4 x 20,002 bytes: one must go
    assert sqls.count("VARCHAR(5000)" + NOPAD) == 3 and sqls.count("TEXT" + NOPAD) == 1
    demoted = sqls.index("TEXT" + NOPAD)
    # The length is still enforced on the TEXT columns.
    with pytest.raises(t.ValueRejected, match="5001 characters"):
        plan.columns[1 + demoted].convert("x" * 5001)


def test_tables_the_sink_cannot_map() -> None:
    t = types()
    keyless = TableSchema(TableId("s", "t"), (col("a", "int", Logical.INT32, int_wire(32)),), ())
    with pytest.raises(SchemaError, match="no primary key"):
        t.plan_table(keyless, options("postgresql"))
    long_name = "c" * 64
    schema = TableSchema(TableId("s", "t"), (col(long_name, "int", Logical.INT32, int_wire(32)),), (long_name,))
    with pytest.raises(SchemaError, match="63 bytes"):
        t.plan_table(schema, options("postgresql"))
    assert t.plan_table(schema, options("mysql")).columns[0].name == long_name
    assert t.dialect_name("mariadb") == "mysql" and t.source_engine({"connector": "mariadb"}) == "mysql"
    assert t.source_engine({"connector": "postgresql"}) == "postgresql" and t.source_engine({}) is None


# ---------------------------------------------------------------------------------------------
# Value conversion: payload value → what the driver binds
# ---------------------------------------------------------------------------------------------


def test_decimals() -> None:
    dec = col("d", "DECIMAL(10,2)", Logical.DECIMAL, decimal_wire(10, 2, DecimalHandling.PRECISE), precision=10,
              scale=2)
    payload = to_wire(Decimal("12.30"), dec.wire)
    assert convert(dec, "postgresql", M, payload) == Decimal("12.30")
    assert convert(dec, "mysql", M, payload) == Decimal("12.30")
    assert convert(dec, "sqlite", M, payload) == "12.30"
    assert convert(dec, "sqlite", M, to_wire(Decimal(-5), dec.wire)) == "-5.00"
    # decimal_handling: string
    text = col("d", "DECIMAL(10,2)", Logical.DECIMAL, decimal_wire(10, 2, DecimalHandling.STRING), precision=10,
               scale=2)
    assert convert(text, "postgresql", M, "-0.50") == Decimal("-0.50")
    # decimal_handling: double is lossy by the source's choice: rounded to the scale
    double = col("d", "DECIMAL(10,2)", Logical.DECIMAL, decimal_wire(10, 2, DecimalHandling.DOUBLE), precision=10,
                 scale=2)
    assert convert(double, "postgresql", M, 0.125) == Decimal("0.12")
    # Variable scale (PostgreSQL numeric) into MySQL DECIMAL(65,30) and SQLite text.
    var = col("n", "numeric", Logical.DECIMAL, variable_scale_decimal_wire())
    big = Decimal("12345678901234567890123456789012345.123456789012345678901234567890")
    assert convert(var, "mysql", P, to_wire(big, var.wire)) == big
    assert convert(var, "sqlite", P, to_wire(Decimal("1E+3"), var.wire)) == "1000"


def test_unsigned_bigint() -> None:
    precise = col("u", "BIGINT UNSIGNED", Logical.UINT64, bigint_unsigned_wire(BigintUnsignedHandling.PRECISE))
    top = to_wire(Decimal(2**64 - 1), precise.wire)
    assert convert(precise, "postgresql", M, top) == 2**64 - 1
    assert convert(precise, "sqlite", M, top) == "18446744073709551615"
    # Debezium's long mode wraps values of 2^63 and more to negative numbers: unwrapped.
    long = col("u", "BIGINT UNSIGNED", Logical.UINT64, bigint_unsigned_wire(BigintUnsignedHandling.LONG))
    assert convert(long, "mysql", M, -1) == 2**64 - 1
    assert convert(long, "postgresql", M, 5) == 5


def test_temporal_values() -> None:
    mysql_time = col("t", "TIME(6)", Logical.TIME, time_wire(6, ADAPTIVE_US), precision=6)
    negative = to_wire(timedelta(hours=-838, minutes=-59, seconds=-59), mysql_time.wire)
    assert convert(mysql_time, "postgresql", M, negative) == timedelta(hours=-838, minutes=-59, seconds=-59)
    assert convert(mysql_time, "mysql", M, negative) == timedelta(hours=-838, minutes=-59, seconds=-59)
    assert convert(mysql_time, "sqlite", M, negative) == "-838:59:59.000000"
    assert convert(mysql_time, "sqlite", M, to_wire(timedelta(hours=1, microseconds=5), mysql_time.wire)) == (
        "01:00:00.000005"
    )
    pg_time = col("t", "time", Logical.TIME, time_wire(6, TimePrecision.ADAPTIVE), precision=6)
    assert convert(pg_time, "postgresql", P, to_wire(time(13, 14, 15, 16), pg_time.wire)) == time(13, 14, 15, 16)
    assert convert(pg_time, "postgresql", P, 86_400_000_000) == "24:00:00"
    tz = col("t", "timestamptz", Logical.TIMESTAMPTZ, zoned_timestamp_wire())
    aware = datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=UTC)
    assert convert(tz, "postgresql", P, "2024-05-06T09:08:09.00001+02:00") == aware
    assert convert(tz, "mysql", P, to_wire(aware, tz.wire)) == aware.replace(tzinfo=None)
    assert convert(tz, "sqlite", P, to_wire(aware, tz.wire)) == "2024-05-06 07:08:09.000010"
    naive = col("t", "DATETIME(6)", Logical.TIMESTAMP, timestamp_wire(6, ADAPTIVE_US), precision=6)
    assert convert(naive, "mysql", M, to_wire(datetime(1, 1, 1), naive.wire)) == datetime(1, 1, 1)
    day = col("d", "DATE", Logical.DATE, date_wire(ADAPTIVE_US))
    assert convert(day, "sqlite", M, to_wire(date(2024, 2, 29), day.wire)) == "2024-02-29"
    timetz = col("t", "timetz", Logical.TIMETZ, zoned_time_wire())
    assert convert(timetz, "mysql", P, "10:00:00+02:00") == time(8, 0)
    iv = col("i", "interval", Logical.INTERVAL, interval_wire(IntervalHandling.STRING))
    assert convert(iv, "postgresql", P, "P1Y2M3DT4H5M6.78S") == "P1Y2M3DT4H5M6.78S"
    assert convert(iv, "mysql", P, "P1Y2M3DT4H5M6.78S") == "P1Y2M3DT4H5M6.78S"
    micro = col("i", "interval", Logical.INTERVAL, interval_wire(IntervalHandling.NUMERIC))
    assert convert(micro, "sqlite", P, 90_000_000_000) == PgInterval(0, 1, 3_600_000_000).isoformat()


def test_other_values() -> None:
    u = col("u", "uuid", Logical.UUID, uuid_wire())
    value = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    assert convert(u, "postgresql", P, str(value)) == value
    assert convert(u, "mysql", P, str(value)) == str(value)
    flag = col("b", "BIT(1)", Logical.BOOLEAN, bool_wire())
    assert convert(flag, "sqlite", M, True) == 1 and convert(flag, "mysql", M, False) == 0
    bits = col("b", "BIT(12)", Logical.BITS, bits_wire(12), length=12)
    payload = to_wire(0b101, bits.wire)
    assert convert(bits, "postgresql", M, payload) == "000000000101"
    assert convert(bits, "mysql", M, payload) == 5
    assert convert(bits, "sqlite", M, payload) == b"\x00\x05"
    point = struct.pack("<BIdd", 1, 1, 1.0, 2.0)
    geo = col("g", "GEOMETRY", Logical.GEOMETRY, geometry_wire())
    with_srid = to_wire(Geometry(point, 4326), geo.wire)
    assert convert(geo, "mysql", M, with_srid) == struct.pack("<I", 4326) + point
    assert convert(geo, "postgresql", M, with_srid) == b"\x01" + struct.pack("<II", 0x20000001, 4326) + point[5:]
    assert convert(geo, "sqlite", M, to_wire(Geometry(point, None), geo.wire)) == point
    arr = col("a", "_numeric", Logical.ARRAY, array_wire(decimal_wire(8, 2, DecimalHandling.PRECISE)))
    payload = to_wire([Decimal("1.50"), None], arr.wire)
    assert convert(arr, "postgresql", P, payload) == [Decimal("1.50"), None]
    assert convert(arr, "mysql", P, payload) == "[1.50,null]"
    dates = col("a", "_date", Logical.ARRAY, array_wire(date_wire(TimePrecision.ADAPTIVE)))
    assert convert(dates, "sqlite", P, to_wire([date(2024, 1, 2)], dates.wire)) == '["2024-01-02"]'
    raw = col("x", "bytea", Logical.BYTES, bytes_wire(BinaryHandling.HEX))
    assert convert(raw, "postgresql", P, "00ff", binary_handling=BinaryHandling.HEX) == b"\x00\xff"
    assert convert(raw, "postgresql", P, "AP8=") == b"\x00\xff"  # base64, the sink's default


def test_fast_paths_decode_like_cdc_values() -> None:
    from cdc.values import from_wire

    cases = [
        (Logical.INT32, int_wire(32), [0, -(2**31), 2**31 - 1, None]),
        (Logical.STRING, string_wire(), ["", "x", None]),
        (Logical.BOOLEAN, bool_wire(), [True, False, None]),
        (Logical.FLOAT64, float_wire(64), [1.5, "NaN", "-Infinity", 3, None]),
        (Logical.TIMESTAMP, timestamp_wire(6, ADAPTIVE_US), [0, -1, 253402300799999999, None]),
        (Logical.TIMESTAMP, timestamp_wire(3, ADAPTIVE_US), [1514764800000, -62135596800000, None]),
        (Logical.DATE, date_wire(ADAPTIVE_US), [0, -719162, 2932896, None]),
    ]
    for logical, wire, payloads in cases:
        column = col("c", "x", logical, wire)
        plan = types().plan_column(column, options("postgresql"))
        for payload in payloads:
            expected = from_wire(payload, wire)
            got = plan.convert(payload)
            assert got == expected or (got != got and expected != expected), (wire, payload)
    for logical, wire, bad in [
        (Logical.INT32, int_wire(32), 2**31),
        (Logical.INT16, int_wire(16), "1"),
        (Logical.STRING, string_wire(), 5),
        (Logical.BOOLEAN, bool_wire(), 1),
        (Logical.TIMESTAMP, timestamp_wire(6, ADAPTIVE_US), 2**63),
        (Logical.DATE, date_wire(ADAPTIVE_US), 10**9),
        (Logical.INT64, int_wire(64, optional=False), None),
    ]:
        plan = types().plan_column(col("c", "x", logical, wire), options("mysql"))
        with pytest.raises(DecodeError):
            plan.convert(bad)


# ---------------------------------------------------------------------------------------------
# Values a target cannot hold are refused, never truncated or rounded
# ---------------------------------------------------------------------------------------------

REFUSED: list[tuple[str, Column, str, str | None, Any, str]] = [
    ("too long", col("s", "VARCHAR(5)", Logical.STRING, string_wire(), length=5), "mysql", M, "abcdef",
     "6 characters long; the target column VARCHAR(5) holds 5"),
    ("too long pg", col("s", "varchar(5)", Logical.STRING, string_wire(), length=5), "postgresql", P, "abcdef",
     "holds 5"),
    ("nul", col("s", "TEXT", Logical.TEXT, string_wire()), "postgresql", M, "a\x00b", "NUL"),
    ("tinytext bytes", col("s", "TINYTEXT", Logical.TEXT, string_wire()), "mysql", M, "€" * 100, "300 bytes"),
    ("binary", col("b", "VARBINARY(2)", Logical.BYTES, bytes_wire(), length=2), "mysql", M, "AAEC", "3 bytes"),
    ("fraction", col("d", "numeric(6,2)", Logical.DECIMAL, decimal_wire(6, 2, DecimalHandling.STRING), precision=6,
                     scale=2), "postgresql", P, "1.005", "3 fractional digits"),
    ("integer digits", col("d", "numeric", Logical.DECIMAL, variable_scale_decimal_wire()), "mysql", P,
     {"scale": 0, "value": to_wire(Decimal(10**36), decimal_wire(40, 0, DecimalHandling.PRECISE))}, "37 integer"),
    ("fraction digits", col("d", "numeric", Logical.DECIMAL, variable_scale_decimal_wire()), "mysql", P,
     {"scale": 31, "value": "AQ=="}, "31 fractional digits"),
    ("nan decimal", col("d", "numeric", Logical.DECIMAL, decimal_wire(10, 0, DecimalHandling.STRING)), "mysql", P,
     "NAN", "NaN"),
    ("nan float", col("f", "float8", Logical.FLOAT64, float_wire(64)), "mysql", P, "NaN", "NaN"),
    ("inf float", col("f", "float8", Logical.FLOAT64, float_wire(64)), "mysql", P, "Infinity", "infinity"),
    ("nan sqlite", col("f", "float8", Logical.FLOAT64, float_wire(64)), "sqlite", P, "NaN", "NaN"),
    ("old date", col("d", "date", Logical.DATE, date_wire(TimePrecision.ADAPTIVE)), "mysql", P,
     to_wire(date(999, 12, 31), date_wire(TimePrecision.ADAPTIVE)), "before 1000"),
    ("old datetime", col("t", "timestamp", Logical.TIMESTAMP, timestamp_wire(6, TimePrecision.ADAPTIVE)), "mysql", P,
     to_wire(datetime(999, 1, 1), timestamp_wire(6, TimePrecision.ADAPTIVE)), "before 1000"),
    ("precision", col("t", "DATETIME(3)", Logical.TIMESTAMP, timestamp_wire(6, ADAPTIVE_US), precision=3),
     "postgresql", M, to_wire(datetime(2024, 1, 1, 0, 0, 0, 1234), timestamp_wire(6, ADAPTIVE_US)), "3 digits"),
    ("time of day", col("t", "time", Logical.TIME, time_wire(6, TimePrecision.ADAPTIVE), precision=6), "postgresql",
     P, -1, "outside 00:00:00..24:00:00"),
    ("mysql time", col("t", "interval", Logical.TIME, time_wire(6, ADAPTIVE_US)), "mysql", P,
     to_wire(timedelta(hours=900), time_wire(6, ADAPTIVE_US)), "838:59:59"),
    ("enum", col("e", "ENUM", Logical.ENUM, enum_wire(["a"]), enum_values=("a",)), "mysql", M, "b", "not a member"),
    ("set", col("e", "SET", Logical.SET, set_wire(["a", "b"]), enum_values=("a", "b")), "mysql", M, "a,c",
     "not a member"),
    ("bits", col("b", "bit(3)", Logical.BITS, bits_wire(3), length=3), "postgresql", P, "Dw==", "3 bits"),
]


@pytest.mark.parametrize(("what", "column", "dialect", "source", "payload", "words"), REFUSED,
                         ids=[r[0] for r in REFUSED])
def test_refused_values(what: str, column: Column, dialect: str, source: str | None, payload: Any, words: str) -> None:
    with pytest.raises(types().ValueRejected, match=re.escape(words)) as info:
        convert(column, dialect, source, payload)
    assert not isinstance(payload, str) or len(payload) <= 3 or payload not in info.value.reason


def test_values_that_fit_are_not_refused() -> None:
    mysql_src = col("d", "DATE", Logical.DATE, date_wire(ADAPTIVE_US))
    # MySQL itself holds dates before 1000, so MySQL → MySQL keeps them.
    assert convert(mysql_src, "mysql", M, to_wire(date(500, 1, 1), mysql_src.wire)) == date(500, 1, 1)
    d = col("d", "numeric(6,2)", Logical.DECIMAL, decimal_wire(6, 2, DecimalHandling.STRING), precision=6, scale=2)
    assert convert(d, "postgresql", P, "1.500") == Decimal("1.500")  # trailing zeros are not digits lost
    assert convert(d, "postgresql", P, "NAN").is_nan()  # PostgreSQL numeric holds NaN
    assert convert(d, "sqlite", P, "1234.5") == "1234.50"


def test_infinite_and_bc_dates_go_to_postgresql_as_its_own_text() -> None:
    """PostgreSQL holds what Python's date and datetime do not: Debezium's infinity sentinels and years
    before 1 (BC) or after 9999 bind as PostgreSQL's text of them; other targets refuse them."""
    from cdc.values import (
        DATE_NEGATIVE_INFINITY_DAYS,
        DATE_POSITIVE_INFINITY_DAYS,
        TIMESTAMP_NEGATIVE_INFINITY_US,
        TIMESTAMP_POSITIVE_INFINITY_US,
        days_from_civil,
    )

    day = col("d", "date", Logical.DATE, date_wire(ADAPTIVE_US))
    micro = col("t", "timestamp(6)", Logical.TIMESTAMP, timestamp_wire(6, ADAPTIVE_US), precision=6)
    milli = col("t", "timestamp(3)", Logical.TIMESTAMP, timestamp_wire(3, TimePrecision.ADAPTIVE), precision=3)
    zoned = col("z", "timestamptz", Logical.TIMESTAMPTZ, zoned_timestamp_wire())
    bc = days_from_civil(-43, 3, 15)  # 44 BC
    cases = [
        (day, DATE_POSITIVE_INFINITY_DAYS, "infinity"),
        (day, DATE_NEGATIVE_INFINITY_DAYS, "-infinity"),
        (day, bc, "0044-03-15 BC"),
        (day, days_from_civil(0, 12, 31), "0001-12-31 BC"),
        (day, days_from_civil(10000, 1, 1), "10000-01-01"),
        (micro, TIMESTAMP_POSITIVE_INFINITY_US, "infinity"),
        (micro, TIMESTAMP_NEGATIVE_INFINITY_US, "-infinity"),
        (micro, bc * 86_400_000_000 + 3_723_000_001, "0044-03-15 01:02:03.000001 BC"),
        (milli, TIMESTAMP_POSITIVE_INFINITY_US // 1000, "infinity"),
        (milli, TIMESTAMP_NEGATIVE_INFINITY_US // 1000, "-infinity"),
        (milli, bc * 86_400_000 + 500, "0044-03-15 00:00:00.500000 BC"),
        (zoned, "infinity", "infinity"),
        (zoned, "-infinity", "-infinity"),
        (zoned, "-0043-03-15T10:00:00.25Z", "0044-03-15 10:00:00.25+00 BC"),
        (zoned, "0000-01-01T00:00:00Z", "0001-01-01 00:00:00+00 BC"),
        (zoned, "+10000-01-01T00:00:00Z", "10000-01-01 00:00:00+00"),
    ]
    assert [convert(c, "postgresql", P, v) for c, v, _ in cases] == [want for _, _, want in cases]
    # the values Python holds still bind as Python values
    assert convert(day, "postgresql", P, 0) == date(1970, 1, 1)
    assert convert(micro, "postgresql", P, 1) == datetime(1970, 1, 1, 0, 0, 0, 1)
    assert convert(zoned, "postgresql", P, "2024-02-29T18:29:59.5Z") == datetime(2024, 2, 29, 18, 29, 59, 500000, UTC)
    for c, v, _ in cases:  # MySQL has no such values
        with pytest.raises((DecodeError, types().ValueRejected)):
            convert(c, "mysql", P, v)


# ---------------------------------------------------------------------------------------------
# connectors.sql.errors: driver errors by code, never by message
# ---------------------------------------------------------------------------------------------


def test_translate_postgresql_errors() -> None:
    import psycopg
    from psycopg import errors

    from connectors.sql.errors import translate

    def pg(state: str) -> Any:
        return translate(errors.lookup(state)("primary message"), sink="s", doing="applying x")

    assert type(pg("40P01")) is TransientError
    assert type(pg("57P01")) is ConnectionLostError
    assert type(pg("28P01")) is ConnectError
    assert type(pg("42501")) is PermissionDeniedError
    assert type(pg("42P01")) is SchemaError
    assert type(pg("22001")) is TargetValueError and "sink 's': applying x" in str(pg("22001"))
    assert type(pg("23502")) is TargetValueError
    assert type(pg("XX000")) is TerminalError
    lost = psycopg.OperationalError("server closed the connection unexpectedly")
    assert type(translate(lost, sink="s", doing="d")) is ConnectionLostError
    assert type(translate(lost, sink="s", doing="d", connecting=True)) is ConnectError


def test_translate_mysql_and_sqlite_errors() -> None:
    import sqlite3

    import pymysql
    import sqlalchemy.exc as sa_exc

    from connectors.sql.errors import translate

    def my(code: int, cls: type = pymysql.err.OperationalError) -> Any:
        return translate(cls(code, "message"), sink="s", doing="d")

    assert type(my(2013)) is ConnectionLostError
    assert type(my(1213)) is TransientError
    assert type(my(1045)) is ConnectError
    assert type(my(1142, pymysql.err.ProgrammingError)) is PermissionDeniedError
    assert type(my(1146, pymysql.err.ProgrammingError)) is SchemaError
    assert type(my(1406, pymysql.err.DataError)) is TargetValueError
    assert type(my(1062, pymysql.err.IntegrityError)) is TargetValueError
    wrapped = sa_exc.OperationalError("INSERT ...", {}, pymysql.err.OperationalError(2006, "gone away"))
    assert type(translate(wrapped, sink="s", doing="d")) is ConnectionLostError
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b NOT NULL)")
    with pytest.raises(sqlite3.Error) as info:
        conn.execute("INSERT INTO t VALUES (1, NULL)")
    assert type(translate(info.value, sink="s", doing="d")) is TargetValueError
    with pytest.raises(sqlite3.Error) as info:
        conn.execute("SELECT * FROM missing")
    assert type(translate(info.value, sink="s", doing="d")) is SchemaError
    assert "password=***" in str(translate(RuntimeError("password=hunter2"), sink="s", doing="d"))


def _widening_cases() -> list[tuple[Any, Any, bool]]:
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql, postgresql

    return [
        # strings and binaries: longer, never shorter, never a fixed-width CHAR
        (postgresql.VARCHAR(16), sa.VARCHAR(20), True),
        (postgresql.VARCHAR(16), sa.VARCHAR(16), False),
        (postgresql.VARCHAR(16), sa.VARCHAR(10), False),
        (postgresql.VARCHAR(16), sa.Text(), True),
        (postgresql.TEXT(), sa.VARCHAR(100), False),
        (mysql.VARCHAR(10), mysql.VARCHAR(20), True),
        (mysql.VARCHAR(20000), mysql.TEXT(), False),
        (mysql.TEXT(), mysql.VARCHAR(20), False),
        (mysql.TEXT(), mysql.MEDIUMTEXT(), True),
        (mysql.LONGTEXT(), mysql.MEDIUMTEXT(), False),
        (mysql.CHAR(10), mysql.CHAR(20), False),
        (mysql.VARBINARY(10), mysql.VARBINARY(20), True),
        (mysql.VARBINARY(10), mysql.BLOB(), True),
        (mysql.VARBINARY(10), mysql.VARCHAR(20), False),
        # integers: a range that contains the old one
        (postgresql.INTEGER(), sa.BigInteger(), True),
        (postgresql.BIGINT(), sa.Integer(), False),
        (mysql.TINYINT(), mysql.SMALLINT(), True),
        (mysql.INTEGER(unsigned=True), mysql.BIGINT(), True),
        (mysql.INTEGER(unsigned=True), mysql.INTEGER(), False),
        (mysql.INTEGER(), mysql.INTEGER(unsigned=True), False),
        (postgresql.BIGINT(), sa.Numeric(20, 0), True),
        (postgresql.BIGINT(), sa.Numeric(18, 0), False),
        # numerics: no fewer digits on either side of the point
        (postgresql.NUMERIC(12, 2), sa.Numeric(14, 2), True),
        (postgresql.NUMERIC(12, 2), sa.Numeric(14, 4), True),
        (postgresql.NUMERIC(12, 2), sa.Numeric(12, 4), False),
        (postgresql.NUMERIC(12, 2), sa.Numeric(12, 2), False),
        (postgresql.NUMERIC(12, 2), sa.Numeric(), True),
        (postgresql.NUMERIC(), sa.Numeric(30, 2), False),
        (mysql.DECIMAL(10, 2), mysql.DECIMAL(12, 2), True),
        (postgresql.NUMERIC(12, 2), sa.BigInteger(), False),
        # floats, fractional seconds, enum and set members (old ones first, in order)
        (postgresql.REAL(), postgresql.DOUBLE_PRECISION(), True),
        (mysql.DOUBLE(), mysql.FLOAT(), False),
        (mysql.FLOAT(), mysql.DOUBLE(), True),
        (postgresql.TIMESTAMP(precision=3), postgresql.TIMESTAMP(precision=6), True),
        (postgresql.TIMESTAMP(precision=6), postgresql.TIMESTAMP(precision=3), False),
        (postgresql.TIMESTAMP(precision=3), postgresql.TIMESTAMP(timezone=True, precision=6), False),
        (mysql.DATETIME(fsp=0), mysql.DATETIME(fsp=6), True),
        (mysql.TIMESTAMP(fsp=0), mysql.DATETIME(fsp=6), False),
        (mysql.TIME(fsp=0), mysql.TIME(fsp=3), True),
        (mysql.ENUM("a", "b"), mysql.ENUM("a", "b", "c"), True),
        (mysql.ENUM("a", "b"), mysql.ENUM("b", "a", "c"), False),
        (mysql.ENUM("a", "b"), mysql.ENUM("a"), False),
        (mysql.SET("a", "b"), mysql.SET("a", "b", "c"), True),
        (mysql.ENUM("a", "b"), mysql.VARCHAR(40), False),
        (postgresql.ARRAY(postgresql.VARCHAR(3)), postgresql.ARRAY(sa.VARCHAR(9)), True),
        (postgresql.ARRAY(postgresql.VARCHAR(9)), postgresql.ARRAY(sa.VARCHAR(3)), False),
        (postgresql.ARRAY(postgresql.VARCHAR(3)), sa.VARCHAR(9), False),
        # other kinds are never changed
        (postgresql.INTEGER(), sa.VARCHAR(40), False),
        (postgresql.JSONB(), sa.Text(), False),
    ]


def test_which_type_changes_widen_a_target_column() -> None:
    from connectors.sql.types import widens

    wrong = [(str(a), str(b), want) for a, b, want in _widening_cases() if widens(a, b) is not want]
    assert wrong == []


def test_alter_column_type_ddl_per_dialect() -> None:
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql, postgresql

    from connectors.sql.ddl import AlterColumnType

    table = sa.Table("t x", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), schema="shop")
    column = sa.Column("na me", sa.VARCHAR(40), nullable=False, server_default=sa.text("'x'"))
    assert str(AlterColumnType(table, column).compile(dialect=postgresql.dialect())) == (
        'ALTER TABLE shop."t x" ALTER COLUMN "na me" TYPE VARCHAR(40)'
    )
    mysql_table = sa.Table("t x", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    assert str(AlterColumnType(mysql_table, column).compile(dialect=mysql.dialect())) == (
        "ALTER TABLE `t x` MODIFY COLUMN `na me` VARCHAR(40) NOT NULL DEFAULT 'x'"
    )
