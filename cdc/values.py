"""Python values ⇄ Debezium's JSON payload values: the one place where they convert.

A row image (see :mod:`cdc.events`) holds each column's value exactly as Debezium's
JsonConverter writes it into the payload for the column's Kafka Connect schema
(:class:`~cdc.events.Wire`). Sources call :func:`to_wire` (or, on the hot path, a converter
from :func:`converter_to_wire`, built once per column); sinks call :func:`from_wire` /
:func:`converter_from_wire`. The builders (``decimal_wire`` ... ``interval_wire``) give the
Connect schema Debezium's MySQL and PostgreSQL connectors use for each column type under each
handling mode.

==================================================  ===========  ==================  =================================
semantic type (schema name)                         Connect      Python              payload example
==================================================  ===========  ==================  =================================
(none)                                              int8..int64  ``int``             ``42``
(none)                                              float32/64   ``float``           ``1.5``, ``"NaN"``, ``"-Infinity"``
(none)                                              boolean      ``bool``            ``true``
(none)                                              string       ``str``             ``"abc"``
(none)                                              bytes        ``bytes``           ``"AQI="`` (base64)
(none)                                              array        ``list``            ``[1, 2]``
org.apache.kafka.connect.data.Decimal               bytes        ``Decimal``         ``"BNI="`` (12.34, scale 2)
io.debezium.data.VariableScaleDecimal               struct       ``Decimal``         ``{"scale": 2, "value": "BNI="}``
io.debezium.time.Date                               int32        ``date``            ``17532`` (2018-01-01)
org.apache.kafka.connect.data.Date                  int32        ``date``            ``17532``
io.debezium.time.Time                               int32        ``timedelta``       ``45296789`` (12:34:56.789)
io.debezium.time.MicroTime                          int64        ``timedelta``       ``-250000`` (TIME -00:00:00.25)
io.debezium.time.NanoTime                           int64        ``timedelta``       ``45296789000000``
org.apache.kafka.connect.data.Time                  int32        ``timedelta``       ``45296789``
io.debezium.time.Timestamp                          int64        naive ``datetime``  ``1514764800000``
io.debezium.time.MicroTimestamp                     int64        naive ``datetime``  ``1514764800000000``
io.debezium.time.NanoTimestamp                      int64        naive ``datetime``  ``1514764800000000000``
org.apache.kafka.connect.data.Timestamp             int64        naive ``datetime``  ``1514764800000``
io.debezium.time.ZonedTimestamp                     string       ``datetime`` (UTC)  ``"2018-06-20T13:37:03.5Z"``
io.debezium.time.ZonedTime                          string       ``time`` (UTC)      ``"13:37:03Z"``
io.debezium.time.Year                               int32        ``int``             ``2018``
io.debezium.time.MicroDuration                      int64        ``timedelta``       ``3600000000``
io.debezium.time.Interval                           string       ``PgInterval``      ``"P1Y2M3DT4H5M6.78S"``
io.debezium.data.Json                               string       ``str`` (JSON)      ``"{\\"a\\":1}"``
io.debezium.data.Uuid                               string       ``uuid.UUID``       ``"a0eebc99-9c0b-4ef8-bb6d-…"``
io.debezium.data.Enum                               string       ``str``             ``"red"``
io.debezium.data.EnumSet                            string       ``str``             ``"a,c"``
io.debezium.data.Bits                               bytes        ``int``             ``"BQA="`` (BIT(16) 0b101)
io.debezium.data.Xml                                string       ``str``             ``"<a/>"``
io.debezium.data.geometry.Geometry (or Geography)   struct       ``Geometry``        ``{"wkb": "AQE…", "srid": 4326}``
==================================================  ===========  ==================  =================================

Rules worth knowing:

* A precise decimal is the base64 of the unscaled value's minimal big-endian two's-complement
  bytes (Java's ``BigInteger.toByteArray``); a value with fewer fractional digits than the
  schema's ``scale`` is scaled up, one with more is an error (never rounded).
* ``DecimalHandling.STRING`` and ``BinaryHandling.BASE64``/``HEX`` use a plain ``string`` schema
  that a reader cannot tell from a text column: :func:`from_wire` returns the ``str``;
  :func:`decode_decimal_string` and :func:`decode_binary_string` finish the job for a sink that
  knows the column's kind. ``DecimalHandling.DOUBLE`` is lossy by design and reads back as ``float``.
* A ZonedTimestamp is in UTC with ``Z``; its fraction is trimmed of trailing zeros (Java's
  ``ISO_OFFSET_DATE_TIME``) unless ``fraction_digits`` gives the column's precision, which
  Debezium pads to (PostgreSQL ``timestamptz`` → 6, MySQL ``TIMESTAMP(n)`` → n).
* Naive datetimes given for a ZonedTimestamp are taken as UTC; aware datetimes given for a
  zone-less Timestamp are converted to UTC first. Millisecond schemas truncate finer digits as
  Debezium does; nothing here rounds, and a value this module cannot hold exactly (a
  nanosecond fraction, a year beyond 9999, ``infinity``) is a :class:`~cdc.errors.DecodeError`.
* ``None`` stays ``None`` for an optional schema; for a required one it is an error.

Every failure, in either direction, is a :class:`~cdc.errors.DecodeError`.
"""

from __future__ import annotations

import binascii
import json
import math
import re
import struct
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final, NamedTuple

from cdc.errors import DecodeError
from cdc.events import Wire

__all__ = [
    "DATE_NEGATIVE_INFINITY_DAYS",
    "DATE_POSITIVE_INFINITY_DAYS",
    "TIMESTAMP_NEGATIVE_INFINITY_US",
    "TIMESTAMP_POSITIVE_INFINITY_US",
    "BigintUnsignedHandling",
    "BinaryHandling",
    "Converter",
    "DecimalHandling",
    "Geometry",
    "IntervalHandling",
    "PgInterval",
    "SemanticName",
    "TimePrecision",
    "array_wire",
    "bigint_unsigned_wire",
    "bits_wire",
    "bool_wire",
    "bytes_wire",
    "civil_from_days",
    "converter_from_wire",
    "converter_to_wire",
    "date_wire",
    "days_from_civil",
    "decimal_wire",
    "decode_binary_string",
    "decode_decimal_string",
    "enum_wire",
    "float_wire",
    "from_wire",
    "geometry_wire",
    "int_wire",
    "interval_wire",
    "json_wire",
    "set_wire",
    "string_wire",
    "time_wire",
    "timestamp_wire",
    "to_wire",
    "uuid_wire",
    "variable_scale_decimal_wire",
    "wire_key",
    "xml_wire",
    "year_wire",
    "zoned_time_wire",
    "zoned_timestamp_wire",
]

#: A precomputed conversion for one schema: a Python value to its payload value, or back.
Converter = Callable[[Any], Any]


# ---------------------------------------------------------------------------------------------
# Handling modes (Debezium's connector options of the same names and values)
# ---------------------------------------------------------------------------------------------


class DecimalHandling(StrEnum):
    """``decimal.handling.mode``."""

    PRECISE = "precise"
    STRING = "string"
    DOUBLE = "double"


class TimePrecision(StrEnum):
    """``time.precision.mode``: MySQL's default is ``adaptive_time_microseconds``, PostgreSQL's ``adaptive``."""

    ADAPTIVE_TIME_MICROSECONDS = "adaptive_time_microseconds"
    ADAPTIVE = "adaptive"
    CONNECT = "connect"


class BinaryHandling(StrEnum):
    """``binary.handling.mode``."""

    BYTES = "bytes"
    BASE64 = "base64"
    BASE64_URL_SAFE = "base64-url-safe"
    HEX = "hex"


class IntervalHandling(StrEnum):
    """``interval.handling.mode`` (PostgreSQL)."""

    NUMERIC = "numeric"
    STRING = "string"


class BigintUnsignedHandling(StrEnum):
    """``bigint.unsigned.handling.mode`` (MySQL)."""

    LONG = "long"
    PRECISE = "precise"


class SemanticName(StrEnum):
    """The Connect schema names this module knows."""

    DECIMAL = "org.apache.kafka.connect.data.Decimal"
    CONNECT_DATE = "org.apache.kafka.connect.data.Date"
    CONNECT_TIME = "org.apache.kafka.connect.data.Time"
    CONNECT_TIMESTAMP = "org.apache.kafka.connect.data.Timestamp"
    VARIABLE_SCALE_DECIMAL = "io.debezium.data.VariableScaleDecimal"
    DATE = "io.debezium.time.Date"
    TIME = "io.debezium.time.Time"
    MICRO_TIME = "io.debezium.time.MicroTime"
    NANO_TIME = "io.debezium.time.NanoTime"
    TIMESTAMP = "io.debezium.time.Timestamp"
    MICRO_TIMESTAMP = "io.debezium.time.MicroTimestamp"
    NANO_TIMESTAMP = "io.debezium.time.NanoTimestamp"
    ZONED_TIMESTAMP = "io.debezium.time.ZonedTimestamp"
    ZONED_TIME = "io.debezium.time.ZonedTime"
    YEAR = "io.debezium.time.Year"
    MICRO_DURATION = "io.debezium.time.MicroDuration"
    INTERVAL = "io.debezium.time.Interval"
    JSON = "io.debezium.data.Json"
    UUID = "io.debezium.data.Uuid"
    ENUM = "io.debezium.data.Enum"
    ENUM_SET = "io.debezium.data.EnumSet"
    BITS = "io.debezium.data.Bits"
    XML = "io.debezium.data.Xml"
    GEOMETRY = "io.debezium.data.geometry.Geometry"
    GEOGRAPHY = "io.debezium.data.geometry.Geography"


# ---------------------------------------------------------------------------------------------
# Python types for values that have no exact standard-library type
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PgInterval:
    """A PostgreSQL ``interval`` exactly as the server keeps it: months, days and microseconds.

    ``timedelta`` cannot hold months (their length varies), so ``io.debezium.time.Interval``
    values read back as this. :meth:`isoformat` is Debezium's string, which PostgreSQL also
    accepts as input.
    """

    months: int = 0
    days: int = 0
    microseconds: int = 0

    @classmethod
    def from_timedelta(cls, value: timedelta) -> PgInterval:
        """Whole days to ``days`` and the rest, with the same sign, to ``microseconds``."""
        total = _timedelta_micros(value)
        days = _trunc_div(total, _US_PER_DAY)
        return cls(0, days, total - days * _US_PER_DAY)

    def isoformat(self) -> str:
        """``P<y>Y<m>M<d>DT<h>H<m>M<s>S`` with every part present and signed separately, as Debezium writes it."""
        years = _trunc_div(self.months, 12)
        months = self.months - years * 12
        hours = _trunc_div(self.microseconds, _US_PER_HOUR)
        rest = self.microseconds - hours * _US_PER_HOUR
        minutes = _trunc_div(rest, _US_PER_MINUTE)
        seconds = _seconds_text(rest - minutes * _US_PER_MINUTE)
        return f"P{years}Y{months}M{self.days}DT{hours}H{minutes}M{seconds}S"

    def approx_micros(self) -> int:
        """Microseconds with Debezium's MicroDuration month of 365.25 / 12 days (computed exactly)."""
        return self.months * _US_PER_AVG_MONTH + self.days * _US_PER_DAY + self.microseconds


class Geometry(NamedTuple):
    """A spatial value: OGC well-known binary and the optional spatial reference id."""

    wkb: bytes
    srid: int | None = None


# ---------------------------------------------------------------------------------------------
# Schema builders
# ---------------------------------------------------------------------------------------------

#: Debezium's MicroTimestamp for ``timestamp 'infinity'`` / ``'-infinity'`` (pgjdbc's PGStatement values).
TIMESTAMP_POSITIVE_INFINITY_US: Final = 9_223_372_036_825_200_000
TIMESTAMP_NEGATIVE_INFINITY_US: Final = -9_223_372_036_832_400_000
#: Debezium's io.debezium.time.Date for ``date 'infinity'`` / ``'-infinity'``: the epoch days of its
#: ``POSITIVE_INFINITY_LOCAL_DATE`` -5877611-06-21 and ``NEGATIVE_INFINITY_LOCAL_DATE`` -5877611-06-22
#: (PostgreSQL's INT32_MAX / INT32_MIN days since 2000-01-01, moved to 1970 in 32-bit arithmetic).
DATE_POSITIVE_INFINITY_DAYS: Final = -2_147_472_692
DATE_NEGATIVE_INFINITY_DAYS: Final = -2_147_472_691


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date; ``year`` is astronomical (1 BC is 0)."""
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise ValueError("not a date")
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """The inverse of :func:`days_from_civil`: ``(astronomical year, month, day)``."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


_INT_TYPES = {8: "int8", 16: "int16", 32: "int32", 64: "int64"}


def int_wire(bits: int = 64, *, optional: bool = True) -> Wire:
    """``int8`` / ``int16`` / ``int32`` / ``int64``."""
    if bits not in _INT_TYPES:
        raise ValueError(f"int_wire: bits must be 8, 16, 32 or 64, not {bits!r}")
    return Wire(_INT_TYPES[bits], optional=optional)


def float_wire(bits: int = 64, *, optional: bool = True) -> Wire:
    """``float32`` or ``float64``."""
    if bits not in (32, 64):
        raise ValueError(f"float_wire: bits must be 32 or 64, not {bits!r}")
    return Wire(f"float{bits}", optional=optional)


def bool_wire(*, optional: bool = True) -> Wire:
    return Wire("boolean", optional=optional)


def string_wire(*, optional: bool = True) -> Wire:
    return Wire("string", optional=optional)


def bytes_wire(mode: BinaryHandling = BinaryHandling.BYTES, *, optional: bool = True) -> Wire:
    """Binary columns: ``bytes``, or a plain ``string`` for the base64 and hex modes."""
    return Wire("bytes" if BinaryHandling(mode) is BinaryHandling.BYTES else "string", optional=optional)


def array_wire(items: Wire, *, optional: bool = True) -> Wire:
    return Wire("array", items=items, optional=optional)


def decimal_wire(precision: int, scale: int, mode: DecimalHandling, *, optional: bool = True) -> Wire:
    """``DECIMAL(precision, scale)``: Connect ``Decimal`` (precise), ``string`` or ``float64``."""
    mode = DecimalHandling(mode)
    if mode is DecimalHandling.STRING:
        return Wire("string", optional=optional)
    if mode is DecimalHandling.DOUBLE:
        return Wire("float64", optional=optional)
    return Wire(
        "bytes",
        name=SemanticName.DECIMAL,
        version=1,
        parameters={"scale": str(scale), "connect.decimal.precision": str(precision)},
        optional=optional,
    )


def variable_scale_decimal_wire(*, optional: bool = True) -> Wire:
    """PostgreSQL ``NUMERIC`` without a scale, in precise mode."""
    return Wire(
        "struct",
        name=SemanticName.VARIABLE_SCALE_DECIMAL,
        version=1,
        fields=(("scale", Wire("int32", optional=False)), ("value", Wire("bytes", optional=False))),
        optional=optional,
    )


def bigint_unsigned_wire(mode: BigintUnsignedHandling, *, optional: bool = True) -> Wire:
    """MySQL ``BIGINT UNSIGNED``: ``int64`` (long) or ``Decimal(20, 0)`` (precise)."""
    if BigintUnsignedHandling(mode) is BigintUnsignedHandling.LONG:
        return int_wire(64, optional=optional)
    return decimal_wire(20, 0, DecimalHandling.PRECISE, optional=optional)


def date_wire(mode: TimePrecision, *, optional: bool = True) -> Wire:
    """``DATE``: days since 1970-01-01."""
    name = SemanticName.CONNECT_DATE if TimePrecision(mode) is TimePrecision.CONNECT else SemanticName.DATE
    return Wire("int32", name=name, version=1, optional=optional)


def time_wire(precision: int, mode: TimePrecision, *, optional: bool = True) -> Wire:
    """``TIME(precision)``: ms (``Time``, precision ≤ 3 in adaptive mode), µs (``MicroTime``) or ns (``NanoTime``)."""
    mode = TimePrecision(mode)
    if mode is TimePrecision.CONNECT:
        return Wire("int32", name=SemanticName.CONNECT_TIME, version=1, optional=optional)
    if mode is TimePrecision.ADAPTIVE and precision <= 3:
        return Wire("int32", name=SemanticName.TIME, version=1, optional=optional)
    if mode is TimePrecision.ADAPTIVE and precision > 6:
        return Wire("int64", name=SemanticName.NANO_TIME, version=1, optional=optional)
    return Wire("int64", name=SemanticName.MICRO_TIME, version=1, optional=optional)


def timestamp_wire(precision: int, mode: TimePrecision, *, optional: bool = True) -> Wire:
    """A timestamp without zone (MySQL ``DATETIME``, PostgreSQL ``timestamp``): ms, µs or ns since the epoch."""
    mode = TimePrecision(mode)
    if mode is TimePrecision.CONNECT:
        return Wire("int64", name=SemanticName.CONNECT_TIMESTAMP, version=1, optional=optional)
    if precision <= 3:
        name = SemanticName.TIMESTAMP
    elif precision <= 6:
        name = SemanticName.MICRO_TIMESTAMP
    else:
        name = SemanticName.NANO_TIMESTAMP
    return Wire("int64", name=name, version=1, optional=optional)


def zoned_timestamp_wire(*, optional: bool = True) -> Wire:
    """MySQL ``TIMESTAMP``, PostgreSQL ``timestamptz``: ISO-8601 text in UTC."""
    return Wire("string", name=SemanticName.ZONED_TIMESTAMP, version=1, optional=optional)


def zoned_time_wire(*, optional: bool = True) -> Wire:
    """PostgreSQL ``timetz``: ISO-8601 time in UTC."""
    return Wire("string", name=SemanticName.ZONED_TIME, version=1, optional=optional)


def year_wire(*, optional: bool = True) -> Wire:
    return Wire("int32", name=SemanticName.YEAR, version=1, optional=optional)


def json_wire(*, optional: bool = True) -> Wire:
    return Wire("string", name=SemanticName.JSON, version=1, optional=optional)


def uuid_wire(*, optional: bool = True) -> Wire:
    return Wire("string", name=SemanticName.UUID, version=1, optional=optional)


def xml_wire(*, optional: bool = True) -> Wire:
    return Wire("string", name=SemanticName.XML, version=1, optional=optional)


def enum_wire(values: Iterable[str], *, optional: bool = True) -> Wire:
    """``ENUM(...)``: the ``allowed`` parameter lists the values, comma-separated, in definition order."""
    return Wire(
        "string", name=SemanticName.ENUM, version=1, parameters={"allowed": ",".join(values)}, optional=optional
    )


def set_wire(values: Iterable[str], *, optional: bool = True) -> Wire:
    """MySQL ``SET(...)``: the value is the chosen members, comma-separated, in definition order."""
    return Wire(
        "string", name=SemanticName.ENUM_SET, version=1, parameters={"allowed": ",".join(values)}, optional=optional
    )


def bits_wire(length: int, *, optional: bool = True) -> Wire:
    """``BIT(length)`` for length > 1 (``BIT(1)`` is a ``boolean``): little-endian bytes."""
    return Wire("bytes", name=SemanticName.BITS, version=1, parameters={"length": str(length)}, optional=optional)


def geometry_wire(*, optional: bool = True) -> Wire:
    """Spatial columns: ``wkb`` (bytes) and ``srid`` (optional int32)."""
    return Wire(
        "struct",
        name=SemanticName.GEOMETRY,
        version=1,
        fields=(("wkb", Wire("bytes", optional=False)), ("srid", Wire("int32", optional=True))),
        optional=optional,
    )


def interval_wire(mode: IntervalHandling, *, optional: bool = True) -> Wire:
    """PostgreSQL ``interval``: approximate microseconds (``MicroDuration``) or ISO-8601 text (``Interval``)."""
    if IntervalHandling(mode) is IntervalHandling.STRING:
        return Wire("string", name=SemanticName.INTERVAL, version=1, optional=optional)
    return Wire("int64", name=SemanticName.MICRO_DURATION, version=1, optional=optional)


# ---------------------------------------------------------------------------------------------
# Public conversion API
# ---------------------------------------------------------------------------------------------


def to_wire(
    value: Any,
    wire: Wire,
    *,
    binary: BinaryHandling = BinaryHandling.BYTES,
    fraction_digits: int | None = None,
) -> Any:
    """``value`` as Debezium's JsonConverter writes it for ``wire``.

    ``binary`` says how ``bytes`` travel in a plain ``string`` schema (Debezium's base64 and hex
    modes); ``fraction_digits`` is the column's fractional-second precision, to which a
    ZonedTimestamp is padded (``None``: trimmed). Raises :class:`DecodeError`.
    """
    return converter_to_wire(wire, binary=binary, fraction_digits=fraction_digits)(value)


def from_wire(value: Any, wire: Wire) -> Any:
    """The Python value of a payload value written for ``wire``: the inverse of :func:`to_wire`.

    Unknown schema names read as their plain Connect type. Raises :class:`DecodeError`.
    """
    return converter_from_wire(wire)(value)


_MAX_CACHE = 4096
_TO_BY_KEY: dict[tuple[Any, ...], Converter] = {}
_FROM_BY_KEY: dict[tuple[Any, ...], Converter] = {}
_TO_BY_ID: dict[int, tuple[Wire, BinaryHandling, int | None, Converter]] = {}
_FROM_BY_ID: dict[int, tuple[Wire, Converter]] = {}


def converter_to_wire(
    wire: Wire,
    *,
    binary: BinaryHandling = BinaryHandling.BYTES,
    fraction_digits: int | None = None,
) -> Converter:
    """A function converting Python values for ``wire`` (see :func:`to_wire`); cached."""
    hit = _TO_BY_ID.get(id(wire))
    if hit is not None and hit[0] is wire and hit[1] is binary and hit[2] == fraction_digits:
        return hit[3]
    binary = BinaryHandling(binary)
    key = (wire_key(wire), binary, fraction_digits)
    conv = _TO_BY_KEY.get(key)
    if conv is None:
        conv = _guard(_build_to(wire, binary, fraction_digits), wire, "encode")
        if len(_TO_BY_KEY) >= _MAX_CACHE:
            _TO_BY_KEY.clear()
        _TO_BY_KEY[key] = conv
    if len(_TO_BY_ID) >= _MAX_CACHE:
        _TO_BY_ID.clear()
    _TO_BY_ID[id(wire)] = (wire, binary, fraction_digits, conv)
    return conv


def converter_from_wire(wire: Wire) -> Converter:
    """A function converting payload values of ``wire`` to Python (see :func:`from_wire`); cached."""
    hit = _FROM_BY_ID.get(id(wire))
    if hit is not None and hit[0] is wire:
        return hit[1]
    key = wire_key(wire)
    conv = _FROM_BY_KEY.get(key)
    if conv is None:
        conv = _guard(_build_from(wire), wire, "decode")
        if len(_FROM_BY_KEY) >= _MAX_CACHE:
            _FROM_BY_KEY.clear()
        _FROM_BY_KEY[key] = conv
    if len(_FROM_BY_ID) >= _MAX_CACHE:
        _FROM_BY_ID.clear()
    _FROM_BY_ID[id(wire)] = (wire, conv)
    return conv


def wire_key(wire: Wire) -> tuple[Any, ...]:
    """A hashable tuple equal for equal schemas (``Wire`` itself is unhashable when it has parameters)."""
    return (
        wire.type,
        wire.name,
        wire.version,
        tuple(sorted(wire.parameters.items())) if wire.parameters else None,
        wire_key(wire.items) if wire.items is not None else None,
        tuple((n, wire_key(f)) for n, f in wire.fields) if wire.fields is not None else None,
        wire.optional,
    )


def decode_decimal_string(text: str) -> Decimal:
    """A ``DecimalHandling.STRING`` payload value as a ``Decimal`` (``NAN``, ``POSITIVE_INFINITY`` ... included)."""
    special = _DECIMAL_SPECIAL_IN.get(text) if isinstance(text, str) else None
    if special is not None:
        return special
    if not isinstance(text, str) or not _DECIMAL_TEXT.fullmatch(text):
        raise DecodeError(f"not a decimal string: {_short(text)}")
    return Decimal(text)


def decode_binary_string(text: str, mode: BinaryHandling) -> bytes:
    """A binary column's payload value written in ``mode`` (base64, base64-url-safe or hex) as bytes."""
    mode = BinaryHandling(mode)
    if not isinstance(text, str):
        raise DecodeError(f"binary value ({mode}) must be a string, not {type(text).__name__}")
    try:
        if mode is BinaryHandling.HEX:
            return bytes.fromhex(text)
        if mode is BinaryHandling.BASE64_URL_SAFE:
            return _b64decode(text.replace("-", "+").replace("_", "/"))
        return _b64decode(text)
    except (ValueError, binascii.Error) as exc:
        raise DecodeError(f"not a {mode} binary value: {_short(text)}") from exc


# ---------------------------------------------------------------------------------------------
# Internals: constants and small helpers
# ---------------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_US_PER_MS = 1_000
_US_PER_SECOND = 1_000_000
_US_PER_MINUTE = 60 * _US_PER_SECOND
_US_PER_HOUR = 60 * _US_PER_MINUTE
_US_PER_DAY = 24 * _US_PER_HOUR
_US_PER_AVG_MONTH = 2_629_800 * _US_PER_SECOND  # 365.25 / 12 days, Debezium's MicroDuration month
_VARBIT_UNBOUNDED = 2**31 - 1  # Debezium's length for PostgreSQL BIT VARYING without a limit: size by content
_INT_RANGE = {"int8": 2**7, "int16": 2**15, "int32": 2**31, "int64": 2**63}
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[InvalidOperation])
_F32 = struct.Struct("<f")
_NONFINITE_OUT = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_DECIMAL_SPECIAL_IN = {
    "NAN": Decimal("NaN"),
    "POSITIVE_INFINITY": Decimal("Infinity"),
    "NEGATIVE_INFINITY": Decimal("-Infinity"),
}
_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|(?i:[+-]?(?:nan|inf|infinity))")
_ZTS = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d\d):(\d\d)(?::(\d\d))?)",
    re.IGNORECASE,
)
_ZT = re.compile(r"(\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d\d):(\d\d)(?::(\d\d))?)", re.IGNORECASE)
_ISO_DURATION = re.compile(
    r"P(?:([+-]?\d+)Y)?(?:([+-]?\d+)M)?(?:([+-]?\d+)W)?(?:([+-]?\d+)D)?"
    r"(?:T(?:([+-]?\d+)H)?(?:([+-]?\d+)M)?(?:([+-]?\d+(?:\.\d{1,9})?)S)?)?"
)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(wire: Wire) -> str:
    return f"{wire.name} ({wire.type})" if wire.name else wire.type


def _trunc_div(a: int, b: int) -> int:
    """Integer division rounding toward zero (Java's ``/``)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _timedelta_micros(value: timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * _US_PER_SECOND + value.microseconds


def _seconds_text(micros: int) -> str:
    """Microseconds as seconds, plain, trailing zeros stripped (``BigDecimal.stripTrailingZeros().toPlainString()``)."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), _US_PER_SECOND)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:06d}".rstrip("0")


def _fraction_micros(digits: str | None) -> int:
    """Up to nine fractional digits as microseconds; digits beyond the sixth must be zero."""
    if not digits:
        return 0
    if len(digits) > 6:
        if digits[6:].strip("0"):
            raise ValueError(f"sub-microsecond fraction .{digits} cannot be held exactly")
        digits = digits[:6]
    return int(digits.ljust(6, "0"))


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64 text ({exc})") from None


def _unscaled_bytes(unscaled: int) -> bytes:
    """Java's ``BigInteger.toByteArray()``: minimal big-endian two's complement, at least one byte."""
    length = (unscaled if unscaled >= 0 else ~unscaled).bit_length() // 8 + 1
    return unscaled.to_bytes(length, "big", signed=True)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"expected bytes, got {type(value).__name__}")


def _as_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        return decode_decimal_string(value)
    raise TypeError(f"expected Decimal, int or str, got {type(value).__name__} (a decimal is never a float)")


def _check_int(value: int, wire_type: str) -> int:
    bound = _INT_RANGE[wire_type]
    if not -bound <= value < bound:
        raise ValueError(f"{value} is out of range for {wire_type}")
    return value


def _to_float32(value: float) -> float:
    """The float32 nearest ``value``, as the shortest decimal that reads back to it (Java's ``Float.toString``)."""
    f32: float = _F32.unpack(_F32.pack(value))[0]
    if not math.isfinite(f32) or f32 == 0.0:
        return f32
    for digits in range(6, 10):
        candidate = float(f"{f32:.{digits}g}")
        if _F32.unpack(_F32.pack(candidate))[0] == f32:
            return candidate
    return f32  # pragma: no cover - nine digits always round-trip a float32


def _float_out(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _float_in(value: Any) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        special = _NONFINITE_OUT.get(value)
        if special is not None:
            return special
    raise TypeError(f"expected a JSON number or NaN/Infinity/-Infinity, got {_short(value)}")


def _int_in(value: Any, wire_type: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return _check_int(value, wire_type)
    raise TypeError(f"expected a JSON integer, got {_short(value)}")


def _str_in(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a JSON string, got {_short(value)}")


def _allowed(wire: Wire) -> list[str]:
    text = (wire.parameters or {}).get("allowed")
    if text is None:
        raise DecodeError(f"{_describe(wire)} schema has no 'allowed' parameter")
    return text.split(",") if text else []


def _int_parameter(wire: Wire, name: str) -> int:
    text = (wire.parameters or {}).get(name)
    try:
        return int(str(text))
    except ValueError:
        raise DecodeError(f"{_describe(wire)} schema needs an integer '{name}' parameter, got {text!r}") from None


def _guard(conv: Converter, wire: Wire, verb: str) -> Converter:
    """Wrap ``conv``: ``None`` handling by optionality, and every failure as a DecodeError."""
    what = _describe(wire)
    optional = wire.optional

    def guarded(value: Any) -> Any:
        if value is None:
            if optional:
                return None
            raise DecodeError(f"cannot {verb} null as {what}: the field is required")
        try:
            return conv(value)
        except DecodeError:
            raise
        except (ValueError, TypeError, OverflowError, ArithmeticError, KeyError, IndexError, AttributeError) as exc:
            raise DecodeError(f"cannot {verb} {_short(value)} as {what}: {exc}") from exc

    return guarded


# ---------------------------------------------------------------------------------------------
# Internals: Python → payload
# ---------------------------------------------------------------------------------------------


def _naive_utc(value: datetime) -> datetime:
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def _datetime_of(value: Any) -> datetime:
    if isinstance(value, datetime):
        return _naive_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise TypeError(f"expected datetime, got {type(value).__name__}")


def _epoch_micros(value: Any) -> int:
    delta = _datetime_of(value) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _US_PER_SECOND + delta.microseconds


def _duration_micros(value: Any) -> int:
    """A ``timedelta`` (MySQL TIME: may be negative or past 24 h) or a ``time`` of day, in microseconds."""
    if isinstance(value, timedelta):
        return _timedelta_micros(value)
    if isinstance(value, time):
        return ((value.hour * 60 + value.minute) * 60 + value.second) * _US_PER_SECOND + value.microsecond
    raise TypeError(f"expected timedelta or time, got {type(value).__name__}")


def _epoch_days(value: Any) -> int:
    if isinstance(value, datetime):
        return value.date().toordinal() - _EPOCH_ORDINAL
    if isinstance(value, date):
        return value.toordinal() - _EPOCH_ORDINAL
    raise TypeError(f"expected date, got {type(value).__name__}")


def _zoned_timestamp_text(value: Any, fraction_digits: int | None) -> str:
    if isinstance(value, str):
        return _zoned_timestamp_text(_parse_zoned_timestamp(value), fraction_digits)
    if not isinstance(value, datetime):
        raise TypeError(f"expected datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        text = value.isoformat(timespec="microseconds")
    else:
        text = value.astimezone(UTC).isoformat(timespec="microseconds")[:-6]  # drop "+00:00"
    head, frac = text[:-7], text[-6:]
    if fraction_digits is None or fraction_digits <= 0 or fraction_digits > 9:
        frac = frac.rstrip("0")
        return f"{head}.{frac}Z" if frac else f"{head}Z"
    return f"{head}.{(frac + '000')[:fraction_digits]}Z"


def _zoned_time_text(value: Any) -> str:
    if isinstance(value, str):
        return _zoned_time_text(_parse_zoned_time(value))
    if not isinstance(value, time):
        raise TypeError(f"expected time, got {type(value).__name__}")
    offset = value.utcoffset()
    if offset is None and value.tzinfo is not None:
        raise ValueError(f"time zone {value.tzinfo} has no fixed offset without a date")
    micros = _duration_micros(value) - (_timedelta_micros(offset) if offset else 0)
    micros %= _US_PER_DAY
    seconds, frac_us = divmod(micros, _US_PER_SECOND)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    head = f"{hour:02d}:{minute:02d}:{second:02d}"
    if not frac_us:
        return f"{head}Z"
    return f"{head}.{frac_us:06d}".rstrip("0") + "Z"


def _bits_bytes(value: Any, length: int) -> bytes:
    if isinstance(value, str):
        # PostgreSQL's text form ('0101'): Debezium's PostgreSQL connector sizes the bytes by content.
        if value.strip("01"):
            raise ValueError("a bit string holds only '0' and '1'")
        number = int(value, 2) if value else 0
        return number.to_bytes((number.bit_length() + 7) // 8, "little")
    if isinstance(value, bytes | bytearray):
        number = int.from_bytes(value, "big")  # the order MySQL drivers hand BIT values over in
    elif isinstance(value, int):
        number = int(value)
    else:
        raise TypeError(f"expected int, bit string or bytes, got {type(value).__name__}")
    if number < 0 or number.bit_length() > max(length, 1):
        raise ValueError(f"{number} does not fit BIT({length})")
    content = (number.bit_length() + 7) // 8
    if length >= _VARBIT_UNBOUNDED:
        return number.to_bytes(content, "little")
    return number.to_bytes(max((length + 7) // 8, content), "little")


def _build_to(wire: Wire, binary: BinaryHandling, fraction_digits: int | None) -> Converter:
    name = wire.name
    kind = wire.type
    if name == SemanticName.DECIMAL and kind == "bytes":
        return _to_precise_decimal(_int_parameter(wire, "scale"))
    if name == SemanticName.VARIABLE_SCALE_DECIMAL and kind == "struct":
        return _to_variable_scale_decimal
    if name in (SemanticName.DATE, SemanticName.CONNECT_DATE) and kind == "int32":
        return _epoch_days
    if name in (SemanticName.TIME, SemanticName.CONNECT_TIME) and kind == "int32":
        return lambda v: _check_int(_trunc_div(_duration_micros(v), _US_PER_MS), "int32")
    if name == SemanticName.MICRO_TIME and kind == "int64":
        return lambda v: _check_int(_duration_micros(v), "int64")
    if name == SemanticName.NANO_TIME and kind == "int64":
        return lambda v: _check_int(_duration_micros(v) * 1000, "int64")
    if name in (SemanticName.TIMESTAMP, SemanticName.CONNECT_TIMESTAMP) and kind == "int64":
        return lambda v: _epoch_micros(v) // _US_PER_MS
    if name == SemanticName.MICRO_TIMESTAMP and kind == "int64":
        return _epoch_micros
    if name == SemanticName.NANO_TIMESTAMP and kind == "int64":
        return lambda v: _check_int(_epoch_micros(v) * 1000, "int64")
    if name == SemanticName.ZONED_TIMESTAMP and kind == "string":
        return lambda v: _zoned_timestamp_text(v, fraction_digits)
    if name == SemanticName.ZONED_TIME and kind == "string":
        return _zoned_time_text
    if name == SemanticName.MICRO_DURATION and kind == "int64":
        return _to_micro_duration
    if name == SemanticName.INTERVAL and kind == "string":
        return _to_interval_text
    if name == SemanticName.JSON and kind == "string":
        return _to_json_text
    if name == SemanticName.UUID and kind == "string":
        return lambda v: str(v if isinstance(v, uuid.UUID) else uuid.UUID(_str_in(v)))
    if name == SemanticName.ENUM and kind == "string":
        return _to_enum(wire)
    if name == SemanticName.ENUM_SET and kind == "string":
        return _to_enum_set(wire)
    if name == SemanticName.BITS and kind == "bytes":
        length = _int_parameter(wire, "length")
        return lambda v: _b64encode(_bits_bytes(v, length))
    if name in (SemanticName.GEOMETRY, SemanticName.GEOGRAPHY) and kind == "struct":
        return _to_geometry
    return _build_to_plain(wire, binary, fraction_digits)


def _build_to_plain(wire: Wire, binary: BinaryHandling, fraction_digits: int | None) -> Converter:
    kind = wire.type
    if kind in _INT_RANGE:
        low, high = -_INT_RANGE[kind], _INT_RANGE[kind]

        def to_int(value: Any) -> int:
            if type(value) is int and low <= value < high:
                return value
            if isinstance(value, int):
                return _check_int(int(value), kind)
            raise TypeError(f"expected int, got {type(value).__name__}")

        return to_int
    if kind == "float64":
        return _to_float64
    if kind == "float32":
        return lambda v: _float_out(_to_float32(_to_float64_number(v)))
    if kind == "boolean":
        return _to_bool
    if kind == "string":
        return _to_string(binary)
    if kind == "bytes":
        return lambda v: _b64encode(_as_bytes(v))
    if kind == "array":
        return _to_array(wire, binary, fraction_digits)
    if kind == "struct":
        return _to_struct(wire, binary, fraction_digits)
    if kind == "map":
        return _to_map
    raise DecodeError(f"unknown Connect type {kind!r} in schema {wire.name or ''}".rstrip())


def _to_float64_number(value: Any) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected float, int or Decimal, got {type(value).__name__}")


def _to_float64(value: Any) -> float | str:
    if type(value) is float and math.isfinite(value):
        return value
    return _float_out(_to_float64_number(value))


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise TypeError(f"expected bool, got {_short(value)}")


def _plain_decimal_text(value: Decimal) -> str:
    """Debezium's string mode: ``BigDecimal.toPlainString()``, or NAN, POSITIVE_INFINITY, NEGATIVE_INFINITY."""
    if value.is_nan():
        return "NAN"
    if value.is_infinite():
        return "NEGATIVE_INFINITY" if value.is_signed() else "POSITIVE_INFINITY"
    if value.is_zero() and value.is_signed():
        value = value.copy_abs()
    return format(value, "f")


def _to_string(binary: BinaryHandling) -> Converter:
    def to_string(value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, Decimal):
            return _plain_decimal_text(value)
        if isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
            if binary is BinaryHandling.BASE64:
                return _b64encode(data)
            if binary is BinaryHandling.BASE64_URL_SAFE:
                return _b64encode(data).replace("+", "-").replace("/", "_")
            if binary is BinaryHandling.HEX:
                return data.hex()
            raise TypeError("bytes for a string field need binary handling base64, base64-url-safe or hex")
        raise TypeError(f"expected str, got {type(value).__name__}")

    return to_string


def _to_precise_decimal(scale: int) -> Converter:
    def to_precise(value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            unscaled = value * 10**scale if scale >= 0 else _unscale(Decimal(value), scale)
        else:
            unscaled = _unscale(_as_decimal(value), scale)
        return _b64encode(_unscaled_bytes(unscaled))

    return to_precise


def _unscale(value: Decimal, scale: int) -> int:
    if not value.is_finite():
        raise ValueError("NaN and Infinity have no precise form (use decimal handling string or double)")
    shifted = value.scaleb(scale, _EXACT)
    unscaled = int(shifted)
    if shifted != unscaled:
        raise ValueError(f"{value} has more than {scale} fractional digits (it would be rounded)")
    return unscaled


def _to_variable_scale_decimal(value: Any) -> dict[str, Any]:
    number = _as_decimal(value)
    if not number.is_finite():
        raise ValueError("NaN and Infinity have no precise form (use decimal handling string or double)")
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int):  # pragma: no cover - finite decimals have an int exponent
        raise ValueError("not a finite decimal")
    scale = _check_int(-exponent, "int32")
    return {"scale": scale, "value": _b64encode(_unscaled_bytes(_unscale(number, scale)))}


def _to_micro_duration(value: Any) -> int:
    if isinstance(value, PgInterval):
        return _check_int(value.approx_micros(), "int64")
    if isinstance(value, timedelta):
        return _check_int(_timedelta_micros(value), "int64")
    raise TypeError(f"expected timedelta or PgInterval, got {type(value).__name__}")


def _to_interval_text(value: Any) -> str:
    if isinstance(value, PgInterval):
        return value.isoformat()
    if isinstance(value, timedelta):
        return PgInterval.from_timedelta(value).isoformat()
    if isinstance(value, str):
        return _parse_interval(value).isoformat()
    raise TypeError(f"expected PgInterval or timedelta, got {type(value).__name__}")


def _to_json_text(value: Any) -> str:
    if isinstance(value, str):
        return value  # already JSON text, kept byte for byte
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _to_enum(wire: Wire) -> Converter:
    params = wire.parameters or {}
    allowed = _allowed(wire) if "allowed" in params else None

    def to_enum(value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and allowed is not None:
            # MySQL's binlog sends the 1-based index; 0 is the empty error value.
            if value == 0:
                return ""
            if 1 <= value <= len(allowed):
                return allowed[value - 1]
            raise ValueError(f"enum index {value} is outside 1..{len(allowed)}")
        raise TypeError(f"expected str (or the MySQL enum index), got {type(value).__name__}")

    return to_enum


def _to_enum_set(wire: Wire) -> Converter:
    params = wire.parameters or {}
    allowed = _allowed(wire) if "allowed" in params else None
    order = {v: i for i, v in enumerate(allowed or ())}

    def to_set(value: Any) -> str:
        if isinstance(value, str):
            return value
        if allowed is None:
            raise TypeError(f"expected str, got {type(value).__name__}")
        if isinstance(value, int) and not isinstance(value, bool):
            # MySQL's binlog sends a bit mask: bit i chooses the i-th member.
            if value < 0 or value >> len(allowed):
                raise ValueError(f"set bit mask {value} has bits beyond its {len(allowed)} members")
            return ",".join(m for i, m in enumerate(allowed) if value >> i & 1)
        if isinstance(value, Iterable):
            members = set(value)
            unknown = members - order.keys()
            if unknown:
                raise ValueError(f"not members of the set: {sorted(map(str, unknown))}")
            return ",".join(sorted(members, key=order.__getitem__))
        raise TypeError(f"expected str, a bit mask or a collection of members, got {type(value).__name__}")

    return to_set


def _to_geometry(value: Any) -> dict[str, Any]:
    if isinstance(value, bytes | bytearray | memoryview):
        wkb, srid = bytes(value), None
    elif isinstance(value, Geometry):
        wkb, srid = value.wkb, value.srid
    elif isinstance(value, Mapping):
        wkb, srid = value["wkb"], value.get("srid")
    else:
        raise TypeError(f"expected Geometry, a mapping with 'wkb' and 'srid', or WKB bytes, got {type(value).__name__}")
    if srid is not None:
        if not isinstance(srid, int) or isinstance(srid, bool):
            raise TypeError(f"srid must be an int, got {type(srid).__name__}")
        _check_int(srid, "int32")
    return {"wkb": _b64encode(_as_bytes(wkb)), "srid": srid}


def _to_array(wire: Wire, binary: BinaryHandling, fraction_digits: int | None) -> Converter:
    items = wire.items
    item = converter_to_wire(items, binary=binary, fraction_digits=fraction_digits) if items is not None else None

    def to_array(value: Any) -> list[Any]:
        if isinstance(value, str | bytes | bytearray | Mapping) or not isinstance(value, Iterable):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        if item is None:
            return list(value)
        return [item(v) for v in value]

    return to_array


def _to_struct(wire: Wire, binary: BinaryHandling, fraction_digits: int | None) -> Converter:
    fields = tuple(
        (name, converter_to_wire(f, binary=binary, fraction_digits=fraction_digits)) for name, f in wire.fields or ()
    )
    names = {name for name, _ in fields}

    def to_struct(value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected a mapping, got {type(value).__name__}")
        extra = value.keys() - names
        if extra:
            raise ValueError(f"fields not in the schema: {sorted(map(str, extra))}")
        return {name: conv(value.get(name)) for name, conv in fields}

    return to_struct


def _to_map(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    return dict(value)


# ---------------------------------------------------------------------------------------------
# Internals: payload → Python
# ---------------------------------------------------------------------------------------------


def _offset(sign: str | None, hh: str | None, mm: str | None, ss: str | None) -> timedelta:
    if sign is None:
        return timedelta(0)
    delta = timedelta(hours=int(hh or 0), minutes=int(mm or 0), seconds=int(ss or 0))
    return -delta if sign == "-" else delta


def _parse_zoned_timestamp(text: Any) -> datetime:
    match = _ZTS.fullmatch(_str_in(text))
    if match is None:
        raise ValueError("not an ISO-8601 timestamp with offset (yyyy-mm-ddThh:mm:ss[.f]Z)")
    y, mo, d, h, mi, s, frac, z, sign, oh, om, os_ = match.groups()
    value = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), _fraction_micros(frac), tzinfo=UTC)
    if z is None:
        value -= _offset(sign, oh, om, os_)
    return value


def _parse_zoned_time(text: Any) -> time:
    match = _ZT.fullmatch(_str_in(text))
    if match is None:
        raise ValueError("not an ISO-8601 time with offset (hh:mm:ss[.f]Z)")
    h, mi, s, frac, z, sign, oh, om, os_ = match.groups()
    hour, minute, second = int(h), int(mi), int(s or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError("time of day out of range")
    micros = ((hour * 60 + minute) * 60 + second) * _US_PER_SECOND + _fraction_micros(frac)
    if z is None:
        micros = (micros - _timedelta_micros(_offset(sign, oh, om, os_))) % _US_PER_DAY
    seconds, us = divmod(micros, _US_PER_SECOND)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return time(hour, minute, second, us, tzinfo=UTC)


def _parse_interval(text: Any) -> PgInterval:
    match = _ISO_DURATION.fullmatch(_str_in(text))
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise ValueError("not an ISO-8601 duration (PnYnMnDTnHnMnS)")
    y, mo, w, d, h, mi, s = match.groups()
    seconds = s or "0"
    negative = seconds.startswith("-")
    whole, _, frac = seconds.lstrip("+-").partition(".")
    sec_us = int(whole) * _US_PER_SECOND + _fraction_micros(frac)
    return PgInterval(
        months=int(y or 0) * 12 + int(mo or 0),
        days=int(w or 0) * 7 + int(d or 0),
        microseconds=int(h or 0) * _US_PER_HOUR + int(mi or 0) * _US_PER_MINUTE + (-sec_us if negative else sec_us),
    )


def _from_base64(value: Any) -> bytes:
    return _b64decode(_str_in(value))


def _from_precise_decimal(scale: int) -> Converter:
    def from_precise(value: Any) -> Decimal:
        data = _from_base64(value)
        if not data:
            raise ValueError("an unscaled decimal needs at least one byte")
        return Decimal(int.from_bytes(data, "big", signed=True)).scaleb(-scale, _EXACT)

    return from_precise


def _from_variable_scale_decimal(value: Any) -> Decimal:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object with 'scale' and 'value', got {_short(value)}")
    scale = _int_in(value["scale"], "int32")
    result: Decimal = _from_precise_decimal(scale)(value["value"])
    return result


def _from_epoch_days(value: Any) -> date:
    return date.fromordinal(_int_in(value, "int32") + _EPOCH_ORDINAL)


def _from_epoch_micros(value: Any) -> datetime:
    seconds, micros = divmod(_int_in(value, "int64"), _US_PER_SECOND)
    return _EPOCH + timedelta(0, seconds, micros)


def _exact_micros_of_nanos(nanos: int) -> int:
    micros, rest = divmod(nanos, 1000)
    if rest:
        raise ValueError(f"{nanos} ns has a sub-microsecond part that cannot be held exactly")
    return micros


def _from_geometry(value: Any) -> Geometry:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object with 'wkb' and 'srid', got {_short(value)}")
    srid = value.get("srid")
    return Geometry(_from_base64(value["wkb"]), None if srid is None else _int_in(srid, "int32"))


def _build_from(wire: Wire) -> Converter:
    name = wire.name
    kind = wire.type
    if name == SemanticName.DECIMAL and kind == "bytes":
        return _from_precise_decimal(_int_parameter(wire, "scale"))
    if name == SemanticName.VARIABLE_SCALE_DECIMAL and kind == "struct":
        return _from_variable_scale_decimal
    if name in (SemanticName.DATE, SemanticName.CONNECT_DATE) and kind == "int32":
        return _from_epoch_days
    if name in (SemanticName.TIME, SemanticName.CONNECT_TIME) and kind == "int32":
        return lambda v: timedelta(milliseconds=_int_in(v, "int32"))
    if name == SemanticName.MICRO_TIME and kind == "int64":
        return lambda v: timedelta(microseconds=_int_in(v, "int64"))
    if name == SemanticName.NANO_TIME and kind == "int64":
        return lambda v: timedelta(microseconds=_exact_micros_of_nanos(_int_in(v, "int64")))
    if name in (SemanticName.TIMESTAMP, SemanticName.CONNECT_TIMESTAMP) and kind == "int64":
        return lambda v: _EPOCH + timedelta(milliseconds=_int_in(v, "int64"))
    if name == SemanticName.MICRO_TIMESTAMP and kind == "int64":
        return _from_epoch_micros
    if name == SemanticName.NANO_TIMESTAMP and kind == "int64":
        return lambda v: _EPOCH + timedelta(microseconds=_exact_micros_of_nanos(_int_in(v, "int64")))
    if name == SemanticName.ZONED_TIMESTAMP and kind == "string":
        return _parse_zoned_timestamp
    if name == SemanticName.ZONED_TIME and kind == "string":
        return _parse_zoned_time
    if name == SemanticName.YEAR and kind == "int32":
        return lambda v: _int_in(v, "int32")
    if name == SemanticName.MICRO_DURATION and kind == "int64":
        return lambda v: timedelta(microseconds=_int_in(v, "int64"))
    if name == SemanticName.INTERVAL and kind == "string":
        return _parse_interval
    if name == SemanticName.UUID and kind == "string":
        return lambda v: uuid.UUID(_str_in(v))
    if name == SemanticName.BITS and kind == "bytes":
        return lambda v: int.from_bytes(_from_base64(v), "little")
    if name in (SemanticName.GEOMETRY, SemanticName.GEOGRAPHY) and kind == "struct":
        return _from_geometry
    return _build_from_plain(wire)


def _build_from_plain(wire: Wire) -> Converter:
    kind = wire.type
    if kind in _INT_RANGE:
        return lambda v: _int_in(v, kind)
    if kind == "float64":
        return _float_in
    if kind == "float32":
        return lambda v: _F32.unpack(_F32.pack(_float_in(v)))[0]
    if kind == "boolean":

        def from_bool(value: Any) -> bool:
            if isinstance(value, bool):
                return value
            raise TypeError(f"expected true or false, got {_short(value)}")

        return from_bool
    if kind == "string":
        return _str_in
    if kind == "bytes":
        return _from_base64
    if kind == "array":
        items = wire.items
        item = converter_from_wire(items) if items is not None else None

        def from_array(value: Any) -> list[Any]:
            if not isinstance(value, list):
                raise TypeError(f"expected a JSON array, got {_short(value)}")
            return list(value) if item is None else [item(v) for v in value]

        return from_array
    if kind == "struct":
        fields = tuple((name, converter_from_wire(f)) for name, f in wire.fields or ())

        def from_struct(value: Any) -> dict[str, Any]:
            if not isinstance(value, Mapping):
                raise TypeError(f"expected a JSON object, got {_short(value)}")
            return {name: conv(value.get(name)) for name, conv in fields}

        return from_struct
    if kind == "map":

        def from_map(value: Any) -> dict[str, Any]:
            if not isinstance(value, Mapping):
                raise TypeError(f"expected a JSON object, got {_short(value)}")
            return dict(value)

        return from_map
    raise DecodeError(f"unknown Connect type {kind!r} in schema {wire.name or ''}".rstrip())
