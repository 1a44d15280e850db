"""connectors.postgres.types: Debezium's PostgreSQL mapping and the text converters shared by snapshot and stream.

Fixed vectors pin the payload of each type against Debezium's documented representation;
hypothesis cross-checks the date and time converters against :mod:`cdc.values` (which reads
the payload back) over the whole range Python can hold, and the array parser against
PostgreSQL's quoting rules.
"""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdc.events import Logical
from cdc.values import (
    BinaryHandling,
    DecimalHandling,
    IntervalHandling,
    PgInterval,
    SemanticName,
    TimePrecision,
    from_wire,
)
from connectors.postgres.types import (
    DATE_NEGATIVE_INFINITY_DAYS,
    DATE_POSITIVE_INFINITY_DAYS,
    SESSION_SETTINGS,
    TIMESTAMP_NEGATIVE_INFINITY_US,
    TIMESTAMP_POSITIVE_INFINITY_US,
    PgType,
    PgTypeModes,
    UnrepresentableValue,
    build_types,
    civil_from_days,
    days_from_civil,
    is_unknown,
    parse_array,
    pg_column,
    session_options,
    text_converter,
)

# --------------------------------------------------------------------------- helpers


def base(name: str, oid: int = 1, schema: str = "pg_catalog", category: str = "U", delimiter: str = ",") -> PgType:
    return PgType(oid, name, schema, "b", category, delimiter)


def array_of(element: PgType) -> PgType:
    return PgType(element.oid + 10_000, "_" + element.name, element.schema, "b", "A", ",", element=element)


def enum(labels: tuple[str, ...]) -> PgType:
    return PgType(50_000, "mood", "public", "e", "E", ",", labels=labels)


def convert(pgtype: PgType, text: str, typmod: int = -1, modes: PgTypeModes | None = None) -> Any:
    column = pg_column("c", pgtype, typmod, modes=modes)
    return text_converter(column, pgtype, modes)(text)


def column(pgtype: PgType, typmod: int = -1, modes: PgTypeModes | None = None, nullable: bool = True) -> Any:
    return pg_column("c", pgtype, typmod, nullable=nullable, modes=modes)


def numeric_typmod(precision: int, scale: int) -> int:
    return ((precision << 16) | (scale & 0x7FF)) + 4


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unscaled(value: str) -> int:
    return int.from_bytes(base64.b64decode(value), "big", signed=True)


STRING = PgTypeModes(decimal=DecimalHandling.STRING)
DOUBLE = PgTypeModes(decimal=DecimalHandling.DOUBLE)


# --------------------------------------------------------------------------- session and catalog


def test_session_options_pin_every_setting_the_text_depends_on() -> None:
    opts = session_options()
    for name, value in SESSION_SETTINGS:
        assert f"-c {name}={value}" in opts
    names = {n for n, _ in SESSION_SETTINGS}
    assert {"DateStyle", "IntervalStyle", "TimeZone", "extra_float_digits", "bytea_output", "lc_monetary"} <= names
    assert " " not in "".join(v for _, v in SESSION_SETTINGS)  # libpq splits options at spaces


def test_build_types_links_arrays_domains_and_enums() -> None:
    rows = [
        (23, "int4", "pg_catalog", "b", "N", 0, 0, -1, ",", None),
        (1007, "_int4", "pg_catalog", "b", "A", 23, 0, -1, ",", None),
        (90001, "posint", "public", "d", "N", 0, 23, -1, ",", None),
        (90002, "mood", "public", "e", "E", 0, 0, -1, ",", ["sad", "happy"]),
        (90003, "_mood", "public", "b", "A", 90002, 0, -1, ",", None),
        (22, "int2vector", "pg_catalog", "b", "A", 21, 0, -1, ",", None),
        (90004, "_missing", "public", "b", "A", 12345, 0, -1, ",", None),
    ]
    types = build_types(rows)
    assert types[1007].element is types[23]
    assert types[90001].base is types[23] and types[90001].kind == "d"
    assert types[90003].element is types[90002] and types[90002].labels == ("sad", "happy")
    assert types[22].element is None  # int2vector's text is "1 2", not an array
    assert types[90004].element is None  # an unresolved element: the array maps as unknown
    assert not is_unknown(types[90003]) and is_unknown(types[22]) and is_unknown(types[90004])


# --------------------------------------------------------------------------- columns


@pytest.mark.parametrize(
    ("pgtype", "typmod", "native", "logical", "wire_type", "wire_name"),
    [
        (base("bool"), -1, "bool", Logical.BOOLEAN, "boolean", None),
        (base("int2"), -1, "int2", Logical.INT16, "int16", None),
        (base("int4"), -1, "int4", Logical.INT32, "int32", None),
        (base("int8"), -1, "int8", Logical.INT64, "int64", None),
        (base("oid"), -1, "oid", Logical.INT64, "int64", None),
        (base("float4"), -1, "float4", Logical.FLOAT32, "float32", None),
        (base("float8"), -1, "float8", Logical.FLOAT64, "float64", None),
        (base("numeric"), numeric_typmod(10, 2), "numeric(10,2)", Logical.DECIMAL, "bytes", SemanticName.DECIMAL),
        (base("numeric"), -1, "numeric", Logical.DECIMAL, "struct", SemanticName.VARIABLE_SCALE_DECIMAL),
        (base("money"), -1, "money", Logical.MONEY, "bytes", SemanticName.DECIMAL),
        (base("bpchar"), 9, "bpchar(5)", Logical.STRING, "string", None),
        (base("varchar"), 24, "varchar(20)", Logical.STRING, "string", None),
        (base("varchar"), -1, "varchar", Logical.STRING, "string", None),
        (base("text"), -1, "text", Logical.TEXT, "string", None),
        (base("citext", schema="public"), -1, "citext", Logical.TEXT, "string", None),
        (base("name"), -1, "name", Logical.STRING, "string", None),
        (base("bytea"), -1, "bytea", Logical.BYTES, "bytes", None),
        (base("date"), -1, "date", Logical.DATE, "int32", SemanticName.DATE),
        (base("time"), -1, "time", Logical.TIME, "int64", SemanticName.MICRO_TIME),
        (base("time"), 3, "time(3)", Logical.TIME, "int32", SemanticName.TIME),
        (base("time"), 0, "time(0)", Logical.TIME, "int32", SemanticName.TIME),
        (base("timetz"), -1, "timetz", Logical.TIMETZ, "string", SemanticName.ZONED_TIME),
        (base("timestamp"), -1, "timestamp", Logical.TIMESTAMP, "int64", SemanticName.MICRO_TIMESTAMP),
        (base("timestamp"), 3, "timestamp(3)", Logical.TIMESTAMP, "int64", SemanticName.TIMESTAMP),
        (base("timestamptz"), -1, "timestamptz", Logical.TIMESTAMPTZ, "string", SemanticName.ZONED_TIMESTAMP),
        (base("interval"), -1, "interval", Logical.INTERVAL, "int64", SemanticName.MICRO_DURATION),
        (base("uuid"), -1, "uuid", Logical.UUID, "string", SemanticName.UUID),
        (base("json"), -1, "json", Logical.JSON, "string", SemanticName.JSON),
        (base("jsonb"), -1, "jsonb", Logical.JSON, "string", SemanticName.JSON),
        (base("xml"), -1, "xml", Logical.XML, "string", SemanticName.XML),
        (base("inet"), -1, "inet", Logical.INET, "string", None),
        (base("cidr"), -1, "cidr", Logical.CIDR, "string", None),
        (base("macaddr"), -1, "macaddr", Logical.MACADDR, "string", None),
        (base("macaddr8"), -1, "macaddr8", Logical.MACADDR, "string", None),
        (base("bit"), 1, "bit(1)", Logical.BOOLEAN, "boolean", None),
        (base("bit"), 12, "bit(12)", Logical.BITS, "bytes", SemanticName.BITS),
        (base("varbit"), 16, "varbit(16)", Logical.BITS, "bytes", SemanticName.BITS),
        (base("varbit"), 1, "varbit(1)", Logical.BOOLEAN, "boolean", None),
        (base("varbit"), -1, "varbit", Logical.BITS, "bytes", SemanticName.BITS),
        (base("hstore", schema="public"), -1, "hstore", Logical.JSON, "string", SemanticName.JSON),
        (base("ltree", schema="public"), -1, "ltree", Logical.STRING, "string", "io.debezium.data.Ltree"),
        (PgType(3904, "int4range", "pg_catalog", "r", "R"), -1, "int4range", Logical.STRING, "string", None),
        (enum(("sad", "happy")), -1, "mood", Logical.ENUM, "string", SemanticName.ENUM),
        (array_of(base("int4")), -1, "int4[]", Logical.ARRAY, "array", None),
        (base("point"), -1, "point", Logical.UNKNOWN, "string", None),
        (base("geometry", schema="public"), -1, "geometry", Logical.UNKNOWN, "string", None),
    ],
)
def test_columns_follow_debeziums_mapping(
    pgtype: PgType, typmod: int, native: str, logical: Logical, wire_type: str, wire_name: str | None
) -> None:
    c = column(pgtype, typmod)
    assert (c.native_type, c.logical, c.wire.type, c.wire.name) == (native, logical, wire_type, wire_name)
    assert c.wire.optional is True
    assert column(pgtype, typmod, nullable=False).wire.optional is False
    assert is_unknown(pgtype) is (logical is Logical.UNKNOWN)


def test_column_details_lengths_precisions_jdbc_and_parameters() -> None:
    n = column(base("numeric"), numeric_typmod(20, 5))
    assert (n.precision, n.scale, n.jdbc_type) == (20, 5, 2)
    assert n.wire.parameters == {"scale": "5", "connect.decimal.precision": "20"}
    assert column(base("numeric"), numeric_typmod(5, -2)).scale == -2  # PostgreSQL 15's negative scale
    assert column(base("varchar"), 24).length == 20
    assert column(base("bpchar"), 9).jdbc_type == 1
    assert column(base("timestamptz"), 3).precision == 3
    assert column(base("timestamptz")).precision == 6
    money = column(base("money"))
    assert money.wire.parameters == {"scale": "2"} and money.scale == 2
    assert column(base("bit"), 12).wire.parameters == {"length": "12"}
    assert column(base("varbit")).wire.parameters == {"length": str(2**31 - 1)}
    e = column(enum(("sad", "happy")))
    assert e.enum_values == ("sad", "happy") and e.wire.parameters == {"allowed": "sad,happy"}
    arr = column(array_of(enum(("a", "b"))))
    assert arr.wire.items is not None and arr.wire.items.parameters == {"allowed": "a,b"}
    assert arr.wire.items.optional is True and arr.jdbc_type == 2003
    narr = column(array_of(base("numeric")), numeric_typmod(5, 2))
    assert narr.native_type == "numeric(5,2)[]" and narr.wire.items is not None
    assert narr.wire.items.parameters == {"scale": "2", "connect.decimal.precision": "5"}


def test_domains_map_as_their_base_with_the_domains_modifier() -> None:
    varchar = base("varchar")
    dom = PgType(70_000, "short_name", "public", "d", "S", ",", base=varchar, base_typmod=14)
    nested = PgType(70_001, "shorter", "public", "d", "S", ",", base=dom)
    for t in (dom, nested):
        c = column(t)
        assert (c.native_type, c.logical, c.length) == ("varchar(10)", Logical.STRING, 10)
        assert text_converter(c, t)("abc") == "abc"
    ts = PgType(70_002, "stamp", "public", "d", "D", ",", base=base("timestamptz"), base_typmod=0)
    assert convert(ts, "2024-01-02 03:04:05+00") == "2024-01-02T03:04:05Z"


def test_modes_change_wire_types() -> None:
    assert column(base("numeric"), numeric_typmod(10, 2), STRING).wire.type == "string"
    assert column(base("numeric"), -1, STRING).wire.type == "string"
    assert column(base("numeric"), -1, DOUBLE).wire.type == "float64"
    assert column(base("money"), -1, DOUBLE).wire.type == "float64"
    conn = PgTypeModes(time=TimePrecision.CONNECT)
    assert column(base("date"), -1, conn).wire.name == SemanticName.CONNECT_DATE
    assert column(base("time"), -1, conn).wire.name == SemanticName.CONNECT_TIME
    assert column(base("timestamp"), -1, conn).wire.name == SemanticName.CONNECT_TIMESTAMP
    micro = PgTypeModes(time=TimePrecision.ADAPTIVE_TIME_MICROSECONDS)
    assert column(base("time"), 3, micro).wire.name == SemanticName.MICRO_TIME
    assert column(base("timestamp"), 3, micro).wire.name == SemanticName.TIMESTAMP
    assert column(base("interval"), -1, PgTypeModes(interval=IntervalHandling.STRING)).wire.name == (
        SemanticName.INTERVAL
    )
    assert column(base("bytea"), -1, PgTypeModes(binary=BinaryHandling.HEX)).wire.type == "string"


def test_modes_from_config_default_to_debeziums_postgres_defaults() -> None:
    from cdc.config import parse_config

    yaml = (
        "name: t\nsource:\n  type: postgres\n  url: postgresql://u@h/db\n"
        "bus:\n  type: kafka\n  bootstrap_servers: 127.0.0.1:1\n"
    )
    modes = PgTypeModes.from_config(parse_config(yaml, env={}).source)
    assert (modes.decimal, modes.time, modes.binary, modes.interval) == (
        DecimalHandling.PRECISE,
        TimePrecision.ADAPTIVE,
        BinaryHandling.BYTES,
        IntervalHandling.NUMERIC,
    )


# --------------------------------------------------------------------------- numbers and booleans


def test_booleans_integers_and_floats() -> None:
    assert convert(base("bool"), "t") is True and convert(base("bool"), "f") is False
    with pytest.raises(ValueError):
        convert(base("bool"), "x")
    assert convert(base("int2"), "-32768") == -32768
    assert convert(base("int8"), "-9223372036854775808") == -(2**63)
    assert convert(base("oid"), "4294967295") == 4294967295
    assert convert(base("float8"), "-2.25e+100") == -2.25e100
    assert convert(base("float8"), "NaN") == "NaN"
    assert convert(base("float8"), "-Infinity") == "-Infinity"
    assert convert(base("float4"), "Infinity") == "Infinity"
    assert convert(base("float4"), "3.4028235e+38") == 3.4028235e38
    assert convert(base("float4"), "0.100000001") == 0.1  # servers before 12 write 9 digits: shortest form
    assert convert(base("float4"), "1e-45") == 1e-45


@pytest.mark.parametrize(
    ("text", "scale", "expected"),
    [
        ("1.50", 2, 150),
        ("-123456789012345.12345", 5, -12345678901234512345),
        ("0.00", 2, 0),
        ("-0.50", 2, -50),
        ("42", 0, 42),
        ("12300", -2, 123),
        ("1.5", 2, 150),  # fewer digits than the scale (a domain or a default): scaled up
    ],
)
def test_precise_decimal_is_the_unscaled_value_at_the_column_scale(text: str, scale: int, expected: int) -> None:
    typmod = numeric_typmod(20, scale)
    value = convert(base("numeric"), text, typmod)
    assert unscaled(value) == expected
    assert from_wire(value, column(base("numeric"), typmod).wire) == Decimal(text)


def test_precise_decimal_matches_debeziums_bytes() -> None:
    assert convert(base("numeric"), "1.50", numeric_typmod(8, 2)) == "AJY="  # 150: Java's toByteArray, sign byte
    assert convert(base("numeric"), "-1.28", numeric_typmod(8, 2)) == "gA=="  # -128: one byte


@pytest.mark.parametrize(
    ("text", "scale", "digits"),
    [
        ("3.14159265358979323846264338327950288", 35, 314159265358979323846264338327950288),
        ("100", 0, 100),  # trailing zeros stripped, a negative scale set back to 0 (Debezium)
        ("1.50", 1, 15),
        ("-0.000", 0, 0),
        ("0.00000000000000000001", 20, 1),
        ("-12.3400", 2, -1234),
    ],
)
def test_variable_scale_decimal(text: str, scale: int, digits: int) -> None:
    value = convert(base("numeric"), text)
    assert value["scale"] == scale and unscaled(value["value"]) == digits
    assert from_wire(value, column(base("numeric")).wire) == Decimal(text)


@pytest.mark.parametrize("special", ["NaN", "Infinity", "-Infinity"])
def test_numeric_specials_need_string_or_double_handling(special: str) -> None:
    for typmod in (-1, numeric_typmod(10, 2)):
        with pytest.raises(UnrepresentableValue, match="decimal_handling to string or double"):
            convert(base("numeric"), special, typmod)
        word = {"NaN": "NAN", "Infinity": "POSITIVE_INFINITY", "-Infinity": "NEGATIVE_INFINITY"}[special]
        assert convert(base("numeric"), special, typmod, STRING) == word
        assert convert(base("numeric"), special, typmod, DOUBLE) == special


def test_numeric_string_and_double_modes() -> None:
    assert convert(base("numeric"), "-123456789012345.12345", numeric_typmod(20, 5), STRING) == (
        "-123456789012345.12345"
    )
    assert convert(base("numeric"), "0.00000001", -1, STRING) == "0.00000001"  # plain, never 1E-8
    assert convert(base("numeric"), "-0.00", numeric_typmod(5, 2), STRING) == "0.00"
    assert convert(base("numeric"), "1.25", -1, DOUBLE) == 1.25


def test_money() -> None:
    assert unscaled(convert(base("money"), "-$1,234.56")) == -123456
    assert unscaled(convert(base("money"), "$1,234,567.50")) == 123456750
    assert unscaled(convert(base("money"), "$0.00")) == 0
    assert convert(base("money"), "-$1,234.56", -1, STRING) == "-1234.56"
    assert convert(base("money"), "($5.00)", -1, STRING) == "-5.00"
    assert convert(base("money"), "-$1,234.56", -1, DOUBLE) == -1234.56
    with pytest.raises(ValueError):
        convert(base("money"), "$")


# --------------------------------------------------------------------------- text and binary


def test_strings_keep_the_servers_text() -> None:
    assert convert(base("bpchar"), "ab   ", 9) == "ab   "  # char(n) keeps its padding, as Debezium does
    text = 'line1\nline2 "quoted" \\ back'
    assert convert(base("text"), text) == text
    assert convert(base("varchar"), "héllo 🎉", 24) == "héllo 🎉"
    for name, value in [
        ("uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        ("json", '{"a": [1, 2.5, null]}'),
        ("jsonb", '{"b": {"c": true}}'),
        ("xml", "<a>1</a>"),
        ("inet", "::1/64"),
        ("cidr", "10.0.0.0/8"),
        ("macaddr", "08:00:2b:01:02:03"),
        ("macaddr8", "08:00:2b:01:02:03:04:05"),
    ]:
        assert convert(base(name), value) == value
    assert convert(enum(("sad", "happy")), "happy") == "happy"
    assert convert(base("point"), "(1.5,2)") == "(1.5,2)"  # unknown: the text itself


def test_bytea_in_every_binary_mode() -> None:
    data = bytes([0, 255, 16, 251, 239])
    text = "\\x" + data.hex()
    assert convert(base("bytea"), text) == b64(data)
    assert from_wire(convert(base("bytea"), text), column(base("bytea")).wire) == data
    assert convert(base("bytea"), text, -1, PgTypeModes(binary=BinaryHandling.BASE64)) == b64(data)
    assert convert(base("bytea"), text, -1, PgTypeModes(binary=BinaryHandling.BASE64_URL_SAFE)) == (
        base64.urlsafe_b64encode(data).decode()
    )
    assert convert(base("bytea"), "\\x00FF", -1, PgTypeModes(binary=BinaryHandling.HEX)) == "00ff"
    assert convert(base("bytea"), "\\x") == ""
    with pytest.raises(ValueError):
        convert(base("bytea"), "abc")  # escape format: bytea_output is not hex


def test_bits() -> None:
    assert convert(base("bit"), "1", 1) is True and convert(base("bit"), "0", 1) is False
    assert convert(base("varbit"), "1", 1) is True
    assert convert(base("bit"), "10101010", 8) == b64(bytes([0b10101010]))
    assert convert(base("bit"), "100000000001", 12) == b64(bytes([0x01, 0x08]))  # little-endian
    assert convert(base("bit"), "000000000001", 12) == b64(bytes([0x01, 0x00]))  # bit(n): sized to n bits
    assert convert(base("varbit"), "101", 16) == b64(bytes([0b101]))  # varbit: sized by content
    assert convert(base("varbit"), "000", 16) == ""
    assert from_wire(convert(base("bit"), "100000000001", 12), column(base("bit"), 12).wire) == 0b100000000001
    with pytest.raises(ValueError):
        convert(base("bit"), "102", 3)


def test_hstore_as_compact_json() -> None:
    hstore = base("hstore", schema="public")
    text = '"a"=>"1", "b"=>NULL, "q\\"k"=>"v\\\\x", "empty"=>""'
    assert json.loads(convert(hstore, text)) == {"a": "1", "b": None, 'q"k': "v\\x", "empty": ""}
    assert convert(hstore, '"a"=>"1"') == '{"a":"1"}'
    assert convert(hstore, "") == "{}"
    with pytest.raises(ValueError):
        convert(hstore, '"a"=>')


# --------------------------------------------------------------------------- dates and times


def test_dates() -> None:
    d = base("date")
    assert convert(d, "1970-01-01") == 0
    assert convert(d, "2024-02-29") == 19782
    assert convert(d, "1969-12-31") == -1
    assert convert(d, "0001-01-01") == date(1, 1, 1).toordinal() - date(1970, 1, 1).toordinal()
    assert convert(d, "0001-12-31 BC") == days_from_civil(0, 12, 31) == -719162 - 1  # the day before 0001-01-01
    assert convert(d, "0044-03-15 BC") == days_from_civil(-43, 3, 15)
    assert convert(d, "4713-11-24 BC") == days_from_civil(-4712, 11, 24)
    assert convert(d, "5874897-12-31") == days_from_civil(5874897, 12, 31)
    assert convert(d, "infinity") == DATE_POSITIVE_INFINITY_DAYS == days_from_civil(-5877611, 6, 21)
    assert convert(d, "-infinity") == DATE_NEGATIVE_INFINITY_DAYS == days_from_civil(-5877611, 6, 22)
    assert convert(d, "2024-02-29", -1, PgTypeModes(time=TimePrecision.CONNECT)) == 19782
    with pytest.raises(ValueError):
        convert(d, "2024-13-01")


@given(st.integers(min_value=-3_000_000, max_value=3_000_000))
def test_civil_days_round_trip(days: int) -> None:
    assert days_from_civil(*civil_from_days(days)) == days


@given(st.dates())
def test_dates_agree_with_the_payload_reader(value: date) -> None:
    days = convert(base("date"), value.isoformat())
    assert from_wire(days, column(base("date")).wire) == value


def test_times() -> None:
    assert convert(base("time"), "23:59:59.999999") == 86_399_999_999
    assert convert(base("time"), "00:00:00") == 0
    assert convert(base("time"), "24:00:00") == 86_400_000_000  # PostgreSQL's end of day
    assert convert(base("time"), "12:00:00.123", 3) == 43_200_123  # io.debezium.time.Time: ms
    assert convert(base("time"), "12:00:00.5", 1) == 43_200_500
    assert convert(base("time"), "12:00:00.123456", -1, PgTypeModes(time=TimePrecision.CONNECT)) == 43_200_123
    with pytest.raises(ValueError):
        convert(base("time"), "25:00:00")


def test_time_with_time_zone_is_in_utc() -> None:
    t = base("timetz")
    assert convert(t, "10:11:12.5+02") == "08:11:12.5Z"
    assert convert(t, "00:30:00+01") == "23:30:00Z"  # wraps around midnight
    assert convert(t, "23:30:00-01") == "00:30:00Z"
    assert convert(t, "10:00:00+05:53:28") == "04:06:32Z"
    assert convert(t, "10:00:00.120000+00") == "10:00:00.12Z"
    assert convert(t, "24:00:00+00") == "24:00:00Z"
    with pytest.raises(ValueError):
        convert(t, "10:00:00")


def test_timestamps() -> None:
    ts = base("timestamp")
    assert convert(ts, "2024-02-29 23:59:59.123456") == 1_709_251_199_123_456
    assert convert(ts, "1970-01-01 00:00:00", 0) == 0
    assert convert(ts, "1969-12-31 23:59:59.999", 3) == -1
    assert convert(ts, "2018-06-20 15:13:16.945104") == 1_529_507_596_945_104  # Debezium's documented example
    assert convert(ts, "0044-03-15 12:00:00 BC") == days_from_civil(-43, 3, 15) * 86_400_000_000 + 43_200_000_000
    assert convert(ts, "infinity") == TIMESTAMP_POSITIVE_INFINITY_US == 9223372036825200000
    assert convert(ts, "-infinity") == TIMESTAMP_NEGATIVE_INFINITY_US == -9223372036832400000
    assert convert(ts, "infinity", 3) == 9223372036825200  # the same instant in milliseconds
    assert convert(ts, "262142-12-31 23:59:59.999999") == days_from_civil(262142, 12, 31) * 86_400_000_000 + (
        86_399_999_999
    )
    with pytest.raises(ValueError, match="out of range"):  # PostgreSQL's last timestamp passes int64 µs since 1970
        convert(ts, "294276-12-31 23:59:59.999999")


@given(st.datetimes(), st.sampled_from([-1, 0, 3, 6]))
def test_timestamps_agree_with_the_payload_reader(value: datetime, typmod: int) -> None:
    p = 6 if typmod < 0 else typmod
    value = value.replace(microsecond=value.microsecond // 10 ** (6 - p) * 10 ** (6 - p))
    text = value.isoformat(sep=" ", timespec="microseconds" if value.microsecond else "seconds")
    got = convert(base("timestamp"), text, typmod)
    back = from_wire(got, column(base("timestamp"), typmod).wire)
    assert back == value


def test_timestamptz_is_iso_in_utc_with_the_columns_fraction_digits() -> None:
    tz = base("timestamptz")
    assert convert(tz, "2024-02-29 18:29:59.5+00") == "2024-02-29T18:29:59.500000Z"
    assert convert(tz, "2024-02-29 18:29:59.5+00", 3) == "2024-02-29T18:29:59.500Z"
    assert convert(tz, "2024-02-29 18:29:59+00", 0) == "2024-02-29T18:29:59Z"
    assert convert(tz, "2024-02-29 23:59:59.5+05:30") == "2024-02-29T18:29:59.500000Z"  # any offset, to UTC
    assert convert(tz, "2024-01-01 00:10:00-03:06:28") == "2024-01-01T03:16:28.000000Z"
    assert convert(tz, "0001-01-01 00:00:00+00 BC") == "0000-01-01T00:00:00.000000Z"
    assert convert(tz, "0044-03-15 12:00:00+00 BC", 0) == "-0043-03-15T12:00:00Z"
    assert convert(tz, "12345-01-01 00:00:00+00", 0) == "+12345-01-01T00:00:00Z"
    assert convert(tz, "infinity") == "infinity"
    assert convert(tz, "-infinity") == "-infinity"
    wire = column(tz).wire
    assert from_wire(convert(tz, "2024-02-29 23:59:59.5+05:30"), wire) == datetime(
        2024, 2, 29, 18, 29, 59, 500000, tzinfo=UTC
    )


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)), st.integers(-15 * 60, 15 * 60))
def test_timestamptz_agrees_with_the_payload_reader(value: datetime, offset_minutes: int) -> None:
    sign = "-" if offset_minutes < 0 else "+"
    hh, mm = divmod(abs(offset_minutes), 60)
    text = value.isoformat(sep=" ", timespec="microseconds") + f"{sign}{hh:02d}:{mm:02d}"
    got = convert(base("timestamptz"), text)
    expected = value.replace(tzinfo=UTC) - timedelta(minutes=offset_minutes)
    assert from_wire(got, column(base("timestamptz")).wire) == expected


@pytest.mark.parametrize(
    ("text", "interval"),
    [
        ("P1Y2M3DT4H5M6.789S", PgInterval(14, 3, 14_706_789_000)),
        ("P-1MT-1S", PgInterval(-1, 0, -1_000_000)),
        ("PT0S", PgInterval()),
        ("P-10M-3DT4H5M6.5S", PgInterval(-10, -3, 14_706_500_000)),
        ("PT-0.5S", PgInterval(0, 0, -500_000)),
        ("PT1000000H", PgInterval(0, 0, 3_600_000_000_000_000)),
        ("P1W", PgInterval(0, 7, 0)),
    ],
)
def test_intervals(text: str, interval: PgInterval) -> None:
    iv = base("interval")
    assert convert(iv, text) == interval.approx_micros()
    assert convert(iv, text, -1, PgTypeModes(interval=IntervalHandling.STRING)) == interval.isoformat()


def test_interval_representations_match_debeziums() -> None:
    iv = base("interval")
    # 14 months of 30.4375 days, 3 days and 4:05:06.789, in µs (Debezium's MicroDuration)
    assert convert(iv, "P1Y2M3DT4H5M6.789S") == 37_091_106_789_000
    assert convert(iv, "P1Y2M3DT4H5M6.789S", -1, PgTypeModes(interval=IntervalHandling.STRING)) == (
        "P1Y2M3DT4H5M6.789S"
    )
    for bad in ("P", "1Y", "PT", "P1X", "PT1.1234567S", "P1YT"):
        with pytest.raises(ValueError):
            convert(iv, bad)


# --------------------------------------------------------------------------- arrays


def test_arrays_of_every_shape() -> None:
    ints = array_of(base("int4"))
    assert convert(ints, "{1,NULL,3}") == [1, None, 3]
    assert convert(ints, "{}") == []
    assert convert(ints, "{{1,2},{3,NULL}}") == [[1, 2], [3, None]]
    assert convert(ints, "[0:2]={1,2,3}") == [1, 2, 3]
    assert convert(ints, "[1:1][1:2]={{7,8}}") == [[7, 8]]
    texts = array_of(base("text"))
    assert convert(texts, r'{"a b","c,d",NULL,"q\"uote","back\\slash","","NULL",plain}') == [
        "a b",
        "c,d",
        None,
        'q"uote',
        "back\\slash",
        "",
        "NULL",
        "plain",
    ]
    numerics = array_of(base("numeric"))
    assert [unscaled(v) for v in convert(numerics, "{1.50,-2.25}", numeric_typmod(5, 2))] == [150, -225]
    dates = array_of(base("date"))
    assert convert(dates, "{2024-01-01,infinity}") == [19723, DATE_POSITIVE_INFINITY_DAYS]
    boxes = array_of(base("box", category="G", delimiter=";"))
    assert convert(boxes, "{(1,1),(0,0);(3,3),(2,2)}") == ["(1,1),(0,0)", "(3,3),(2,2)"]
    moods = array_of(enum(("sad", "happy")))
    assert convert(moods, "{sad,happy}") == ["sad", "happy"]
    stamps = array_of(base("timestamptz"))
    assert convert(stamps, '{"2024-01-01 00:00:00+00",infinity}', 0) == ["2024-01-01T00:00:00Z", "infinity"]
    for bad in ("", "1,2", "{1,2", "{1}}", '{"a}', "{1}x"):
        with pytest.raises(ValueError):
            convert(ints if bad != '{"a}' else texts, bad)


_ELEMENT = st.one_of(st.none(), st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00")))


def _pg_array_text(values: list[str | None]) -> str:
    """What PostgreSQL's array_out writes for a text[] (quoting exactly the elements that need it)."""

    def element(v: str | None) -> str:
        if v is None:
            return "NULL"
        if v == "" or v.upper() == "NULL" or any(c in v for c in '{},"\\ \t\n\r\v\f'):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return v

    return "{" + ",".join(element(v) for v in values) + "}"


@given(st.lists(_ELEMENT, max_size=12))
def test_array_parser_reads_what_postgres_writes(values: list[str | None]) -> None:
    assert parse_array(_pg_array_text(values)) == values


@given(st.text(max_size=40))
def test_array_parser_raises_only_value_errors(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_array(text)
