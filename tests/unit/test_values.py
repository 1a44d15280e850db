"""cdc.values: Python values ⇄ Debezium JSON payload values.

Round trips run under hypothesis for every semantic type; fixed vectors pin the exact payload
against the representations Debezium documents (connector docs and its own test expectations).
"""

from __future__ import annotations

import json
import math
import struct
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdc.errors import DecodeError
from cdc.events import Wire
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
    converter_from_wire,
    converter_to_wire,
    date_wire,
    decimal_wire,
    decode_binary_string,
    decode_decimal_string,
    enum_wire,
    float_wire,
    from_wire,
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

ADAPTIVE = TimePrecision.ADAPTIVE
MICROS = TimePrecision.ADAPTIVE_TIME_MICROSECONDS
CONNECT = TimePrecision.CONNECT
MYSQL_TIME_MAX = timedelta(hours=838, minutes=59, seconds=59, microseconds=999_999)


def round_trip(value: Any, wire: Wire, **options: Any) -> Any:
    payload = to_wire(value, wire, **options)
    json.dumps(payload, allow_nan=False)  # the payload is plain JSON, with no float NaN/inf in it
    return from_wire(payload, wire)


def same_float(a: float, b: float) -> bool:
    return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))


# ---------------------------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------------------------


def test_precise_decimal_schema_is_connect_decimal_with_debezium_precision() -> None:
    assert decimal_wire(10, 2, DecimalHandling.PRECISE).to_connect("price") == {
        "type": "bytes",
        "optional": True,
        "name": "org.apache.kafka.connect.data.Decimal",
        "version": 1,
        "parameters": {"scale": "2", "connect.decimal.precision": "10"},
        "field": "price",
    }
    assert decimal_wire(10, 2, DecimalHandling.STRING) == Wire("string")
    assert decimal_wire(10, 2, DecimalHandling.DOUBLE, optional=False) == Wire("float64", optional=False)


def test_variable_scale_decimal_and_geometry_are_structs() -> None:
    assert variable_scale_decimal_wire().to_connect() == {
        "type": "struct",
        "fields": [
            {"type": "int32", "optional": False, "field": "scale"},
            {"type": "bytes", "optional": False, "field": "value"},
        ],
        "optional": True,
        "name": "io.debezium.data.VariableScaleDecimal",
        "version": 1,
    }
    geometry = geometry_wire().to_connect()
    assert geometry["name"] == "io.debezium.data.geometry.Geometry"
    assert geometry["fields"] == [
        {"type": "bytes", "optional": False, "field": "wkb"},
        {"type": "int32", "optional": True, "field": "srid"},
    ]


@pytest.mark.parametrize(
    ("precision", "mode", "type_", "name"),
    [
        (0, ADAPTIVE, "int32", "io.debezium.time.Time"),
        (3, ADAPTIVE, "int32", "io.debezium.time.Time"),
        (4, ADAPTIVE, "int64", "io.debezium.time.MicroTime"),
        (6, ADAPTIVE, "int64", "io.debezium.time.MicroTime"),
        (9, ADAPTIVE, "int64", "io.debezium.time.NanoTime"),
        (0, MICROS, "int64", "io.debezium.time.MicroTime"),
        (6, MICROS, "int64", "io.debezium.time.MicroTime"),
        (6, CONNECT, "int32", "org.apache.kafka.connect.data.Time"),
    ],
)
def test_time_schema_by_precision_mode(precision: int, mode: TimePrecision, type_: str, name: str) -> None:
    wire = time_wire(precision, mode)
    assert (wire.type, wire.name, wire.version) == (type_, name, 1)


@pytest.mark.parametrize(
    ("precision", "mode", "name"),
    [
        (0, ADAPTIVE, "io.debezium.time.Timestamp"),
        (3, MICROS, "io.debezium.time.Timestamp"),
        (4, ADAPTIVE, "io.debezium.time.MicroTimestamp"),
        (6, MICROS, "io.debezium.time.MicroTimestamp"),
        (9, ADAPTIVE, "io.debezium.time.NanoTimestamp"),
        (6, CONNECT, "org.apache.kafka.connect.data.Timestamp"),
    ],
)
def test_timestamp_schema_by_precision_mode(precision: int, mode: TimePrecision, name: str) -> None:
    wire = timestamp_wire(precision, mode)
    assert (wire.type, wire.name) == ("int64", name)


def test_other_schemas() -> None:
    assert (date_wire(ADAPTIVE).type, date_wire(ADAPTIVE).name) == ("int32", "io.debezium.time.Date")
    assert date_wire(CONNECT).name == "org.apache.kafka.connect.data.Date"
    assert zoned_timestamp_wire() == Wire("string", name="io.debezium.time.ZonedTimestamp", version=1)
    assert zoned_time_wire().name == "io.debezium.time.ZonedTime"
    assert (year_wire().type, year_wire().name) == ("int32", "io.debezium.time.Year")
    assert interval_wire(IntervalHandling.NUMERIC) == Wire("int64", name="io.debezium.time.MicroDuration", version=1)
    assert interval_wire(IntervalHandling.STRING) == Wire("string", name="io.debezium.time.Interval", version=1)
    assert enum_wire(["a", "b"]).parameters == {"allowed": "a,b"}
    assert set_wire(["x", "y"]).name == "io.debezium.data.EnumSet"
    assert bits_wire(12).to_connect()["parameters"] == {"length": "12"}
    assert bytes_wire().type == "bytes"
    assert bytes_wire(BinaryHandling.HEX).type == "string"
    assert bigint_unsigned_wire(BigintUnsignedHandling.LONG) == Wire("int64")
    assert bigint_unsigned_wire(BigintUnsignedHandling.PRECISE).parameters == {
        "scale": "0",
        "connect.decimal.precision": "20",
    }
    assert array_wire(int_wire(32)).to_connect()["items"] == {"type": "int32", "optional": True}
    assert not json_wire(optional=False).optional


# ---------------------------------------------------------------------------------------------
# Fixed vectors (Debezium's documented representations)
# ---------------------------------------------------------------------------------------------

DEC_10_2 = decimal_wire(10, 2, DecimalHandling.PRECISE)


@pytest.mark.parametrize(
    ("value", "wire", "payload"),
    [
        (Decimal("12.34"), DEC_10_2, "BNI="),  # unscaled 1234 = 0x04D2
        (Decimal("-12.34"), DEC_10_2, "+y4="),  # -1234 = 0xFB2E
        (Decimal("0.00"), DEC_10_2, "AA=="),
        (Decimal("1.28"), DEC_10_2, "AIA="),  # 128 needs a sign byte
        (Decimal("-1.28"), DEC_10_2, "gA=="),  # -128 fits one byte
        (Decimal("1.5"), DEC_10_2, "AJY="),  # scaled up to 1.50 (150 = 0x0096)
        (7, decimal_wire(5, 0, DecimalHandling.PRECISE), "Bw=="),
        (2**64 - 1, bigint_unsigned_wire(BigintUnsignedHandling.PRECISE), "AP//////////"),
        (date(2018, 1, 1), date_wire(ADAPTIVE), 17532),
        (date(1970, 1, 1), date_wire(CONNECT), 0),
        (date(1969, 12, 31), date_wire(ADAPTIVE), -1),
        (date(1, 1, 1), date_wire(ADAPTIVE), -719162),
        (date(9999, 12, 31), date_wire(ADAPTIVE), 2932896),
        # MySQL docs: DATETIME 2018-06-20 06:37:03 becomes 1529476623000
        (datetime(2018, 6, 20, 6, 37, 3), timestamp_wire(0, MICROS), 1529476623000),
        # PostgreSQL docs: TIMESTAMP 2018-06-20 15:13:16.945104 becomes 1529507596945104
        (datetime(2018, 6, 20, 15, 13, 16, 945104), timestamp_wire(6, ADAPTIVE), 1529507596945104),
        (datetime(2018, 6, 20, 15, 13, 16, 945104), timestamp_wire(9, ADAPTIVE), 1529507596945104000),
        (datetime(1969, 12, 31, 23, 59, 59, 999000), timestamp_wire(3, ADAPTIVE), -1),
        # Millisecond schemas truncate like Java's Instant.toEpochMilli (toward the past), never round
        (datetime(1969, 12, 31, 23, 59, 59, 999999), timestamp_wire(3, ADAPTIVE), -1),
        (datetime(2018, 1, 1, 0, 0, 0, 999999), timestamp_wire(6, CONNECT), 1514764800999),
        (datetime(2018, 6, 20, 15, 13, 16, 945104), timestamp_wire(6, CONNECT), 1529507596945),
        # MySQL docs: TIMESTAMP 2018-06-20 06:37:03 in America/Los_Angeles becomes "2018-06-20T13:37:03Z"
        (
            datetime(2018, 6, 20, 6, 37, 3, tzinfo=timezone(timedelta(hours=-7))),
            zoned_timestamp_wire(),
            "2018-06-20T13:37:03Z",
        ),
        (datetime(2018, 6, 20, 13, 37, 3, 500000, tzinfo=UTC), zoned_timestamp_wire(), "2018-06-20T13:37:03.5Z"),
        (datetime(1, 1, 1, tzinfo=UTC), zoned_timestamp_wire(), "0001-01-01T00:00:00Z"),
        (time(13, 37, 3, tzinfo=UTC), zoned_time_wire(), "13:37:03Z"),
        (time(1, 0, 0, 250000, tzinfo=timezone(timedelta(hours=2))), zoned_time_wire(), "23:00:00.25Z"),
        (time(12, 34, 56, 789000), time_wire(3, ADAPTIVE), 45296789),
        (time(12, 34, 56, 789123), time_wire(6, ADAPTIVE), 45296789123),
        (time(12, 34, 56, 789123), time_wire(6, CONNECT), 45296789),
        (time(0, 0, 0, 1), time_wire(9, ADAPTIVE), 1000),
        (timedelta(seconds=-0.25), time_wire(6, MICROS), -250000),  # MySQL TIME '-00:00:00.25'
        (MYSQL_TIME_MAX, time_wire(6, MICROS), 3020399999999),  # MySQL TIME '838:59:59.999999'
        (-MYSQL_TIME_MAX, time_wire(6, MICROS), -3020399999999),
        (2018, year_wire(), 2018),
        (timedelta(hours=1), interval_wire(IntervalHandling.NUMERIC), 3_600_000_000),
        (PgInterval(months=1), interval_wire(IntervalHandling.NUMERIC), 2_629_800_000_000),  # 365.25/12 days
        # PostgreSQL docs: interval.handling.mode=string gives "P1Y2M3DT4H5M6.78S"
        (PgInterval(14, 3, 14_706_780_000), interval_wire(IntervalHandling.STRING), "P1Y2M3DT4H5M6.78S"),
        (PgInterval(), interval_wire(IntervalHandling.STRING), "P0Y0M0DT0H0M0S"),
        (PgInterval(-14, -1, -250_000), interval_wire(IntervalHandling.STRING), "P-1Y-2M-1DT0H0M-0.25S"),
        (timedelta(days=1, hours=2), interval_wire(IntervalHandling.STRING), "P0Y0M1DT2H0M0S"),
        (float("nan"), float_wire(64), "NaN"),
        (float("inf"), float_wire(64), "Infinity"),
        (float("-inf"), float_wire(32), "-Infinity"),
        (struct.unpack("<f", struct.pack("<f", 1.1))[0], float_wire(32), 1.1),  # Java's Float.toString
        (Decimal("12.34"), decimal_wire(10, 2, DecimalHandling.DOUBLE), 12.34),
        (Decimal("12.30"), decimal_wire(10, 2, DecimalHandling.STRING), "12.30"),
        (Decimal("1E+2"), decimal_wire(10, 0, DecimalHandling.STRING), "100"),
        (Decimal("NaN"), decimal_wire(10, 2, DecimalHandling.STRING), "NAN"),
        (Decimal("-Infinity"), decimal_wire(10, 2, DecimalHandling.STRING), "NEGATIVE_INFINITY"),
        (Decimal("12.34"), variable_scale_decimal_wire(), {"scale": 2, "value": "BNI="}),
        (Decimal("-5"), variable_scale_decimal_wire(), {"scale": 0, "value": "+w=="}),
        (b"\x01\x02\xff", bytes_wire(), "AQL/"),
        (0b101, bits_wire(16), "BQA="),  # little-endian, padded to 2 bytes
        (0b10_0000_0001, bits_wire(10), "AQI="),
        (b"\x02\x01", bits_wire(10), "AQI="),  # big-endian bytes as MySQL drivers give them
        ("0000000101", bits_wire(10), "BQ=="),  # PostgreSQL text: sized by content
        (True, bool_wire(), True),
        ("héllo", string_wire(), "héllo"),
        ({"b": [1, 2], "a": "x"}, json_wire(), '{"b":[1,2],"a":"x"}'),
        ('{"a": 1}', json_wire(), '{"a": 1}'),  # JSON text is kept as it is
        (uuid.UUID("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"), uuid_wire(), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        ("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", uuid_wire(), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        ("green", enum_wire(["red", "green"]), "green"),
        (2, enum_wire(["red", "green"]), "green"),  # the MySQL binlog's 1-based index
        (0b101, set_wire(["a", "b", "c"]), "a,c"),  # the MySQL binlog's bit mask
        ({"c", "a"}, set_wire(["a", "b", "c"]), "a,c"),  # members in definition order
        ("<a/>", xml_wire(), "<a/>"),
        (Geometry(b"\x01\x01", 4326), geometry_wire(), {"wkb": "AQE=", "srid": 4326}),
        (b"\x01\x01", geometry_wire(), {"wkb": "AQE=", "srid": None}),
        ([Decimal("1.00"), None], array_wire(DEC_10_2), ["ZA==", None]),
        (None, DEC_10_2, None),
    ],
)
def test_documented_payloads(value: Any, wire: Wire, payload: Any) -> None:
    assert to_wire(value, wire) == payload


@pytest.mark.parametrize(
    ("mode", "payload"),
    [
        (BinaryHandling.BYTES, "+/8="),  # a bytes schema: JsonConverter writes base64
        (BinaryHandling.BASE64, "+/8="),
        (BinaryHandling.BASE64_URL_SAFE, "-_8="),
        (BinaryHandling.HEX, "fbff"),
    ],
)
def test_binary_handling_modes(mode: BinaryHandling, payload: str) -> None:
    wire = bytes_wire(mode)
    assert to_wire(b"\xfb\xff", wire, binary=mode) == payload
    if mode is BinaryHandling.BYTES:
        assert from_wire(payload, wire) == b"\xfb\xff"
    else:
        assert from_wire(payload, wire) == payload  # a plain string schema reads back as text
        assert decode_binary_string(payload, mode) == b"\xfb\xff"


@pytest.mark.parametrize(
    ("payload", "wire", "value"),
    [
        ("BNI=", DEC_10_2, Decimal("12.34")),
        ("+y4=", DEC_10_2, Decimal("-12.34")),
        ("AA==", DEC_10_2, Decimal("0.00")),
        ({"scale": 3, "value": "BNI="}, variable_scale_decimal_wire(), Decimal("1.234")),
        (17532, date_wire(ADAPTIVE), date(2018, 1, 1)),
        (-719162, date_wire(CONNECT), date(1, 1, 1)),
        ("2016-11-04T11:51:30.123456Z", zoned_timestamp_wire(), datetime(2016, 11, 4, 11, 51, 30, 123456, tzinfo=UTC)),
        ("2020-04-01T11:51:02.000000Z", zoned_timestamp_wire(), datetime(2020, 4, 1, 11, 51, 2, tzinfo=UTC)),
        ("2011-12-03T10:15:30+01:00", zoned_timestamp_wire(), datetime(2011, 12, 3, 9, 15, 30, tzinfo=UTC)),
        (
            "2011-12-03T10:15:30.123456000Z",
            zoned_timestamp_wire(),
            datetime(2011, 12, 3, 10, 15, 30, 123456, tzinfo=UTC),
        ),
        ("13:37:03.5Z", zoned_time_wire(), time(13, 37, 3, 500000, tzinfo=UTC)),
        ("01:00:00-02:00", zoned_time_wire(), time(3, 0, tzinfo=UTC)),
        (1529476623000, timestamp_wire(0, MICROS), datetime(2018, 6, 20, 6, 37, 3)),
        (1529507596945104, timestamp_wire(6, ADAPTIVE), datetime(2018, 6, 20, 15, 13, 16, 945104)),
        (-250000, time_wire(6, MICROS), timedelta(seconds=-0.25)),
        (45296789, time_wire(3, ADAPTIVE), timedelta(hours=12, minutes=34, seconds=56, milliseconds=789)),
        ("P1Y2M3DT4H5M6.78S", interval_wire(IntervalHandling.STRING), PgInterval(14, 3, 14_706_780_000)),
        ("PT0S", interval_wire(IntervalHandling.STRING), PgInterval()),
        ("P2W", interval_wire(IntervalHandling.STRING), PgInterval(days=14)),
        ("NaN", float_wire(64), math.nan),
        ("-Infinity", float_wire(32), -math.inf),
        (3, float_wire(64), 3.0),
        ("BQA=", bits_wire(16), 5),
        ("AQI=", bytes_wire(), b"\x01\x02"),
        ({"wkb": "AQE=", "srid": None, "extensions": None}, geometry_wire(), Geometry(b"\x01\x01", None)),
        ("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", uuid_wire(), uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
        (None, zoned_timestamp_wire(), None),
    ],
)
def test_documented_payloads_read_back(payload: Any, wire: Wire, value: Any) -> None:
    result = from_wire(payload, wire)
    if isinstance(value, float):
        assert same_float(result, value)
    else:
        assert result == value
        assert type(result) is type(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        assert result.tzinfo is UTC
    if isinstance(value, Decimal):
        assert result.as_tuple() == value.as_tuple()  # the scale survives, not just the number


def test_zoned_timestamp_pads_to_the_column_precision() -> None:
    # Debezium pads to the column's fractional-second precision (PostgreSQL timestamptz: 6 digits).
    value = datetime(2020, 4, 1, 11, 51, 2, tzinfo=UTC)
    assert to_wire(value, zoned_timestamp_wire(), fraction_digits=6) == "2020-04-01T11:51:02.000000Z"
    assert to_wire(value, zoned_timestamp_wire(), fraction_digits=2) == "2020-04-01T11:51:02.00Z"
    assert to_wire(value, zoned_timestamp_wire(), fraction_digits=9) == "2020-04-01T11:51:02.000000000Z"
    assert to_wire(value, zoned_timestamp_wire(), fraction_digits=0) == "2020-04-01T11:51:02Z"
    assert (
        to_wire(value.replace(microsecond=123400), zoned_timestamp_wire(), fraction_digits=6)
        == "2020-04-01T11:51:02.123400Z"
    )


def test_naive_datetime_is_utc_for_zoned_timestamp_and_aware_is_converted_for_timestamp() -> None:
    assert to_wire(datetime(2018, 1, 1, 12), zoned_timestamp_wire()) == "2018-01-01T12:00:00Z"
    aware = datetime(2018, 1, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    assert to_wire(aware, timestamp_wire(6, ADAPTIVE)) == to_wire(datetime(2018, 1, 1, 12), timestamp_wire(6, ADAPTIVE))


def test_string_encoded_decimals_and_binaries_decode_with_helpers() -> None:
    assert decode_decimal_string("12.30").as_tuple() == Decimal("12.30").as_tuple()
    assert decode_decimal_string("NAN").is_nan()
    assert decode_decimal_string("POSITIVE_INFINITY") == Decimal("Infinity")
    assert decode_binary_string("+/8=", BinaryHandling.BASE64) == b"\xfb\xff"
    assert decode_binary_string("-_8=", BinaryHandling.BASE64_URL_SAFE) == b"\xfb\xff"
    assert decode_binary_string("FBFF", BinaryHandling.HEX) == b"\xfb\xff"
    # A string-mode decimal's schema is a plain string: from_wire cannot know, and gives the text.
    assert from_wire("12.30", decimal_wire(10, 2, DecimalHandling.STRING)) == "12.30"
    assert isinstance(from_wire(12.34, decimal_wire(10, 2, DecimalHandling.DOUBLE)), float)


def test_unknown_semantic_name_falls_back_to_the_connect_type() -> None:
    wire = Wire("int64", name="com.example.Money", version=3)
    assert to_wire(42, wire) == 42
    assert from_wire(42, wire) == 42
    struct_wire = Wire(
        "struct", name="io.debezium.data.geometry.Point", fields=(("x", float_wire()), ("y", float_wire()))
    )
    assert from_wire({"x": 1.5, "y": "NaN"}, struct_wire)["x"] == 1.5
    assert to_wire({"x": 1.5, "y": math.inf}, struct_wire) == {"x": 1.5, "y": "Infinity"}


def test_converters_are_cached_by_identity_and_by_structure() -> None:
    first = decimal_wire(12, 4, DecimalHandling.PRECISE)
    again = decimal_wire(12, 4, DecimalHandling.PRECISE)  # equal but not the same object; unhashable parameters
    assert converter_to_wire(first) is converter_to_wire(first)
    assert converter_to_wire(first) is converter_to_wire(again)
    assert converter_from_wire(first) is converter_from_wire(again)
    assert converter_to_wire(first) is not converter_to_wire(decimal_wire(12, 3, DecimalHandling.PRECISE))
    assert converter_to_wire(zoned_timestamp_wire(), fraction_digits=6) is not converter_to_wire(zoned_timestamp_wire())


# ---------------------------------------------------------------------------------------------
# Malformed input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "wire"),
    [
        ("BNI", DEC_10_2),  # bad padding
        ("B*I=", DEC_10_2),
        ("", DEC_10_2),  # no bytes at all
        (1234, DEC_10_2),
        ({"scale": 2}, variable_scale_decimal_wire()),
        ({"scale": "2", "value": "BNI="}, variable_scale_decimal_wire()),
        ("x", variable_scale_decimal_wire()),
        (1.5, date_wire(ADAPTIVE)),
        (True, date_wire(ADAPTIVE)),
        (3_000_000, date_wire(ADAPTIVE)),  # beyond year 9999
        (2**31, date_wire(ADAPTIVE)),
        ("2018-01-01", date_wire(ADAPTIVE)),
        ("2018-13-01T00:00:00Z", zoned_timestamp_wire()),
        ("2018-01-01 00:00:00Z", zoned_timestamp_wire()),
        ("2018-01-01T00:00:00", zoned_timestamp_wire()),  # no offset
        ("infinity", zoned_timestamp_wire()),
        ("+21016-11-04T06:51:30.123456Z", zoned_timestamp_wire()),
        ("2018-01-01T00:00:00.1234567Z", zoned_timestamp_wire()),  # a nanosecond part would be lost
        (17, zoned_timestamp_wire()),
        ("25:00:00Z", zoned_time_wire()),
        ("12:00:00", zoned_time_wire()),
        (9223372036825200000, timestamp_wire(6, ADAPTIVE)),  # PostgreSQL's +infinity sentinel
        (1.0, timestamp_wire(6, ADAPTIVE)),
        (1001, time_wire(9, ADAPTIVE)),
        (2**63, time_wire(6, MICROS)),
        ("1Y", interval_wire(IntervalHandling.STRING)),
        ("P", interval_wire(IntervalHandling.STRING)),
        ("PT1.0000001S", interval_wire(IntervalHandling.STRING)),
        ("nope", uuid_wire()),
        ("not base64!", bits_wire(16)),
        ("AQ", bytes_wire()),
        (b"\x01", bytes_wire()),
        (128, int_wire(8)),
        (True, int_wire(32)),
        ("1", int_wire(64)),
        ("nan", float_wire(64)),
        (1, bool_wire()),
        (1, string_wire()),
        ({"a": 1}, array_wire(int_wire(32))),
        (["x"], array_wire(int_wire(32))),
        ([1], Wire("struct", fields=(("a", int_wire(32)),))),
        ({"wkb": "AQE=", "srid": "4326"}, geometry_wire()),
        (None, int_wire(32, optional=False)),
        ({"a": None}, Wire("struct", fields=(("a", int_wire(32, optional=False)),))),
    ],
)
def test_malformed_payload_is_a_decode_error(payload: Any, wire: Wire) -> None:
    with pytest.raises(DecodeError, match=r"^cannot decode"):
        from_wire(payload, wire)


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (12.34, DEC_10_2),  # a decimal is never a float
        (Decimal("1.234"), DEC_10_2),  # would need rounding
        (Decimal("NaN"), DEC_10_2),
        (Decimal("Infinity"), variable_scale_decimal_wire()),
        ("abc", DEC_10_2),
        (2**63, int_wire(64)),
        (2**63, bigint_unsigned_wire(BigintUnsignedHandling.LONG)),
        (-129, int_wire(8)),
        (1.5, int_wire(32)),
        ("2018-01-01", date_wire(ADAPTIVE)),
        (timedelta(days=30), time_wire(3, ADAPTIVE)),  # past int32 milliseconds
        (time(12), timestamp_wire(6, ADAPTIVE)),
        (datetime(2018, 1, 1), zoned_time_wire()),
        (b"\x01", string_wire()),  # bytes in a string field need a binary mode
        ("abc", bytes_wire()),
        (2, bool_wire()),
        (1e300, float_wire(32)),
        (3, enum_wire(["a", "b"])),
        (0b1000, set_wire(["a", "b", "c"])),
        ({"d"}, set_wire(["a", "b", "c"])),
        (2**16, bits_wire(16)),
        ("012", bits_wire(16)),
        ({"n": Decimal(1)}, json_wire()),
        ("nope", uuid_wire()),
        (None, Wire("int32", optional=False)),
        ({"a": 1, "b": 2}, Wire("struct", fields=(("a", int_wire(32)),))),
        ("abc", array_wire(int_wire(32))),
        (Geometry(b"\x01", 2**40), geometry_wire()),
    ],
)
def test_unconvertible_value_is_a_decode_error(value: Any, wire: Wire) -> None:
    with pytest.raises(DecodeError):
        to_wire(value, wire)


def test_unknown_connect_type_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="unknown Connect type"):
        converter_from_wire(Wire("int128"))
    with pytest.raises(DecodeError, match="scale"):
        converter_from_wire(Wire("bytes", name="org.apache.kafka.connect.data.Decimal", parameters={}))


def test_malformed_helper_input_is_a_decode_error() -> None:
    for bad in ("1.2.3", "", "1e", "NAN!"):
        with pytest.raises(DecodeError):
            decode_decimal_string(bad)
    with pytest.raises(DecodeError):
        decode_binary_string("zz", BinaryHandling.HEX)
    with pytest.raises(DecodeError):
        decode_binary_string("A", BinaryHandling.BASE64)


# ---------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------


@st.composite
def scaled_decimals(draw: st.DrawFn, precision: int, scale: int) -> Decimal:
    unscaled = draw(st.integers(-(10**precision) + 1, 10**precision - 1))
    return Decimal(f"{unscaled}E-{scale}")


@given(st.data(), st.integers(1, 65))
def test_precise_decimal_round_trip(data: st.DataObject, precision: int) -> None:
    scale = data.draw(st.integers(0, min(precision, 30)))
    value = data.draw(scaled_decimals(precision, scale))
    result = round_trip(value, decimal_wire(precision, scale, DecimalHandling.PRECISE))
    assert result == value
    assert result.as_tuple() == value.as_tuple()


@given(scaled_decimals(65, 30))
def test_decimal_65_30_round_trip(value: Decimal) -> None:
    result = round_trip(value, decimal_wire(65, 30, DecimalHandling.PRECISE))
    assert result.as_tuple() == value.as_tuple()


@given(scaled_decimals(65, 30))
def test_string_decimal_round_trip(value: Decimal) -> None:
    text = to_wire(value, decimal_wire(65, 30, DecimalHandling.STRING))
    assert decode_decimal_string(from_wire(text, string_wire())).as_tuple() == value.as_tuple()


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_variable_scale_decimal_round_trip(value: Decimal) -> None:
    result = round_trip(value, variable_scale_decimal_wire())
    assert result == value
    assert result.as_tuple().exponent == value.as_tuple().exponent


@given(st.integers(0, 2**64 - 1))
def test_bigint_unsigned_precise_round_trip(value: int) -> None:
    assert round_trip(value, bigint_unsigned_wire(BigintUnsignedHandling.PRECISE)) == Decimal(value)


@given(st.dates(), st.sampled_from([ADAPTIVE, MICROS, CONNECT]))
def test_date_round_trip(value: date, mode: TimePrecision) -> None:
    assert round_trip(value, date_wire(mode)) == value


@given(st.datetimes())
def test_micro_timestamp_round_trip(value: datetime) -> None:
    result = round_trip(value, timestamp_wire(6, ADAPTIVE))
    assert result == value
    assert result.tzinfo is None


@given(st.datetimes().map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)), st.sampled_from([3, 0]))
def test_milli_timestamp_round_trip(value: datetime, precision: int) -> None:
    assert round_trip(value, timestamp_wire(precision, MICROS)) == value
    assert round_trip(value, timestamp_wire(6, CONNECT)) == value


@given(st.datetimes(min_value=datetime(1677, 9, 22), max_value=datetime(2262, 4, 10)))
def test_nano_timestamp_round_trip(value: datetime) -> None:
    assert round_trip(value, timestamp_wire(9, ADAPTIVE)) == value


offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(st.datetimes(timezones=st.just(UTC)), st.sampled_from([None, 6, 9]))
def test_zoned_timestamp_round_trip(value: datetime, fraction_digits: int | None) -> None:
    result = round_trip(value, zoned_timestamp_wire(), fraction_digits=fraction_digits)
    assert result == value
    assert result.tzinfo is UTC


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets))
def test_zoned_timestamp_round_trip_from_any_offset(value: datetime) -> None:
    payload = to_wire(value, zoned_timestamp_wire())
    assert payload.endswith("Z")
    result = from_wire(payload, zoned_timestamp_wire())
    assert result == value  # the same instant
    assert result.tzinfo is UTC


@given(st.times(timezones=st.just(UTC) | offsets))
def test_zoned_time_round_trip(value: time) -> None:
    result = round_trip(value, zoned_time_wire())
    offset = value.utcoffset() or timedelta(0)
    expected = (datetime.combine(date(2000, 1, 2), value.replace(tzinfo=None)) - offset).time()
    assert result == expected.replace(tzinfo=UTC)


@given(st.timedeltas(min_value=-MYSQL_TIME_MAX, max_value=MYSQL_TIME_MAX))
def test_micro_time_round_trip_mysql_range(value: timedelta) -> None:
    assert round_trip(value, time_wire(6, MICROS)) == value
    assert round_trip(value, time_wire(9, ADAPTIVE)) == value


@given(st.integers(-(10**6), 10**6).map(lambda n: timedelta(microseconds=n)))
def test_micro_time_round_trip_fractions_around_zero(value: timedelta) -> None:
    assert round_trip(value, time_wire(6, MICROS)) == value


@given(st.integers(0, 86_400_000 - 1).map(lambda ms: timedelta(milliseconds=ms)), st.sampled_from([0, 3]))
def test_milli_time_round_trip(value: timedelta, precision: int) -> None:
    assert round_trip(value, time_wire(precision, ADAPTIVE)) == value
    assert round_trip(value, time_wire(6, CONNECT)) == value


@given(st.times())
def test_time_of_day_reads_back_as_timedelta(value: time) -> None:
    result = round_trip(value, time_wire(6, ADAPTIVE))
    assert result == datetime.combine(date.min, value) - datetime.combine(date.min, time())


@given(st.timedeltas(min_value=timedelta(days=-(10**8)), max_value=timedelta(days=10**8)))
def test_micro_duration_round_trip(value: timedelta) -> None:
    assert round_trip(value, interval_wire(IntervalHandling.NUMERIC)) == value


@given(
    st.builds(
        PgInterval, st.integers(-(2**31), 2**31 - 1), st.integers(-(2**31), 2**31 - 1), st.integers(-(2**63), 2**63 - 1)
    )
)
def test_interval_string_round_trip(value: PgInterval) -> None:
    assert round_trip(value, interval_wire(IntervalHandling.STRING)) == value


@given(st.timedeltas())
def test_interval_string_from_timedelta(value: timedelta) -> None:
    result = round_trip(value, interval_wire(IntervalHandling.STRING))
    assert result == PgInterval.from_timedelta(value)
    assert result.days * 86_400_000_000 + result.microseconds == value // timedelta(microseconds=1)


@given(st.integers(1, 9999))
def test_year_round_trip(value: int) -> None:
    assert round_trip(value, year_wire()) == value


@given(
    st.sampled_from([8, 16, 32, 64]).flatmap(
        lambda b: st.tuples(st.just(b), st.integers(-(2 ** (b - 1)), 2 ** (b - 1) - 1))
    )
)
def test_int_round_trip(bits_and_value: tuple[int, int]) -> None:
    bits, value = bits_and_value
    assert round_trip(value, int_wire(bits)) == value


@given(st.floats())
def test_float64_round_trip(value: float) -> None:
    assert same_float(round_trip(value, float_wire(64)), value)


@given(st.floats(width=32))
def test_float32_round_trip(value: float) -> None:
    assert same_float(round_trip(value, float_wire(32)), value)


@given(st.booleans())
def test_bool_round_trip(value: bool) -> None:
    assert round_trip(value, bool_wire()) is value


@given(st.text())
def test_string_xml_json_text_round_trip(value: str) -> None:
    for wire in (string_wire(), xml_wire(), json_wire()):
        assert round_trip(value, wire) == value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values) | st.lists(json_values))
def test_json_document_round_trip(value: Any) -> None:
    assert json.loads(round_trip(value, json_wire())) == value


@given(st.binary())
def test_bytes_round_trip(value: bytes) -> None:
    assert round_trip(value, bytes_wire()) == value
    for mode in (BinaryHandling.BASE64, BinaryHandling.BASE64_URL_SAFE, BinaryHandling.HEX):
        text = round_trip(value, bytes_wire(mode), binary=mode)
        assert decode_binary_string(text, mode) == value


@given(st.uuids())
def test_uuid_round_trip(value: uuid.UUID) -> None:
    assert round_trip(value, uuid_wire()) == value


ENUM_VALUES = ["small", "medium", "large", "x-large"]


@given(st.sampled_from(ENUM_VALUES))
def test_enum_round_trip(value: str) -> None:
    assert round_trip(value, enum_wire(ENUM_VALUES)) == value


@given(st.frozensets(st.sampled_from(ENUM_VALUES)))
def test_set_round_trip(members: frozenset[str]) -> None:
    text = round_trip(members, set_wire(ENUM_VALUES))
    assert set(filter(None, text.split(","))) == members
    assert text == ",".join(v for v in ENUM_VALUES if v in members)
    mask = sum(1 << i for i, v in enumerate(ENUM_VALUES) if v in members)
    assert to_wire(mask, set_wire(ENUM_VALUES)) == text


@given(st.integers(2, 200).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, 2**n - 1))))
def test_bits_round_trip(length_and_value: tuple[int, int]) -> None:
    length, value = length_and_value
    payload = to_wire(value, bits_wire(length))
    assert len(decode_binary_string(payload, BinaryHandling.BASE64)) == (length + 7) // 8
    assert from_wire(payload, bits_wire(length)) == value


@given(st.builds(Geometry, st.binary(min_size=1), st.none() | st.integers(-(2**31), 2**31 - 1)))
def test_geometry_round_trip(value: Geometry) -> None:
    assert round_trip(value, geometry_wire()) == value


@given(st.lists(st.none() | scaled_decimals(10, 2)))
def test_array_of_decimals_round_trip(value: list[Decimal | None]) -> None:
    assert round_trip(value, array_wire(DEC_10_2)) == value


def test_none_stays_none() -> None:
    for wire in (DEC_10_2, zoned_timestamp_wire(), geometry_wire(), array_wire(int_wire()), bits_wire(8)):
        assert to_wire(None, wire) is None
        assert from_wire(None, wire) is None
