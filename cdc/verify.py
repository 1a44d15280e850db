"""``cdc verify``: the comparison engine, independent of any database.

A reader (for SQL targets, :mod:`connectors.sql.verify`) turns every row of a source table and
of its target table into a :class:`Row`: the row's values **normalised** (:func:`normaliser`),
its key, and a digest of the normalised values. This module compares two such streams and
produces a :class:`TableDiff` per table and a :class:`VerifyReport` per sink.

**Normalising.** A value the sink stored faithfully must compare equal to its source value
although the two engines return it differently (a PostgreSQL ``numeric`` against SQLite's exact
text, ``timestamptz`` against MySQL's UTC ``DATETIME``, a MySQL ``TIME`` against a PostgreSQL
``interval``, JSON text against ``jsonb``...). :func:`normaliser` builds, from the **source**
column's portable kind (:class:`~cdc.events.Logical`, :class:`ColumnSpec`) and the source's
representation settings (:class:`NormaliseOptions`), one function that accepts every form either
side's driver may return for that column and gives one canonical value. The same function is
applied to both sides. The canonical forms, and where they are deliberately lenient, are:

=====================  ===================================================================
kind                   canonical value
=====================  ===================================================================
boolean                ``bool`` (from bool, 0/1, ``b'\\x01'``, ``'t'``)
integers, year         ``int`` (from int, Decimal, digit text)
float32                ``float`` rounded to 6 significant digits, as MySQL prints a FLOAT
float64                ``float`` (``-0.0`` is ``0.0``; NaN and infinities as text)
decimal, money         ``Decimal`` without trailing fractional zeros or exponent
                       (``decimal_handling: double``: the nearest ``float``)
string, text, enum     ``str``; ``CHAR(n)`` without trailing spaces (MySQL strips them,
                       PostgreSQL pads them); SET members sorted
bytes                  ``bytes``; ``BINARY(n)`` without trailing zero bytes
date                   ISO text ``YYYY-MM-DD``; MySQL zero dates as ``zero_date_handling`` says
time                   microseconds (a MySQL TIME is a duration; PostgreSQL ``time``: since midnight)
timetz                 microseconds since midnight, UTC
timestamp              ISO text with microseconds
timestamptz            ISO text with microseconds, in UTC
interval               ``interval_handling: numeric``: microseconds with Debezium's month of
                       30.4375 days; ``string``: (months, days, microseconds)
uuid                   lower-case text
json                   canonical JSON text: keys sorted, numbers as exact decimals (``1.0`` = ``1``)
array                  tuple of the element kind's canonical values
bits                   ``int``
geometry               (SRID, WKB as hex) from MySQL's form or (E)WKB
other                  ``str`` (bytes stay bytes)
=====================  ===================================================================

``time_precision: connect`` (millisecond precision) truncates source times and timestamps to
milliseconds before comparing. A value a normaliser cannot read becomes a tagged tuple that
never equals a readable value, so it shows as a difference instead of failing the run.

**Comparing.** Keyed tables are compared by :func:`compare_ordered`: both sides are streamed in
ascending key order and cut into key-range chunks of at most ``chunk_rows`` rows per side
(:func:`chunk_boundary`); each chunk's rows are hashed on both sides, and only a chunk whose
count or hash differs is narrowed down, row by row, to the keys that are missing in the target,
extra in the target, or whose values differ. Memory holds at most two chunks. The engines'
own orders must agree with the canonical key order for this; a reader sorts string keys by
code point, but where an order still disagrees (a key stored as text on one side and as a
number on the other), :func:`compare_ordered` notices (:class:`OutOfOrder`) and the caller falls
back to :func:`compare_partitioned`: the rows are split into partitions by a hash of the key, and
each partition is compared in memory, one partition per pass over both tables. Tables without
a key are compared as multisets of row digests the same way (``keyed=False``).

At most ``max_listed`` differences of each kind are listed per table; the counts are always exact.

**Consistency.** A comparison reads each table once (per pass) in one statement on each side,
without locks: a moment of the source against a moment of the target. While the pipeline is
running, a difference may be a change that has not arrived yet; callers poll until equal.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from hashlib import blake2b
from typing import Any, Final, NamedTuple
from uuid import UUID

from cdc.events import Logical
from cdc.values import BinaryHandling, DecimalHandling, IntervalHandling, TimePrecision

__all__ = [
    "ALL",
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_MAX_LISTED",
    "ColumnSpec",
    "NormaliseOptions",
    "OutOfOrder",
    "Row",
    "TableDiff",
    "VerifyReport",
    "chunk_boundary",
    "compare_ordered",
    "compare_partitioned",
    "make_row",
    "normaliser",
]

#: Rows per side in one key-range chunk.
DEFAULT_CHUNK_ROWS: Final = 10_000
#: Differences of each kind listed per table (the counts are exact).
DEFAULT_MAX_LISTED: Final = 100

Canon = Any
Normalise = Callable[[Any], Canon]

_US_PER_SECOND: Final = 1_000_000
_US_PER_DAY: Final = 86_400 * _US_PER_SECOND
_US_PER_AVG_MONTH: Final = 2_629_800 * _US_PER_SECOND  # Debezium's MicroDuration month: 365.25 / 12 days
_EPOCH_DATE: Final = "1970-01-01"
_EPOCH_TIMESTAMP: Final = "1970-01-01 00:00:00.000000"


# ---------------------------------------------------------------------------------------------
# Normalising values
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnSpec:
    """A source column as the comparison needs it.

    ``native`` is the source type's name in upper case without arguments (``CHAR``, ``BINARY``,
    ``TIMESTAMP``); ``element`` is the element kind of an array; ``geometry_mysql`` says that
    geometry values on *this side* are in MySQL's internal form (SRID, then WKB).
    """

    name: str
    logical: Logical
    native: str = ""
    nullable: bool = True
    element: Logical | None = None
    element_native: str = ""


@dataclass(frozen=True)
class NormaliseOptions:
    """The source's representation settings that change what the target holds."""

    decimal_handling: DecimalHandling = DecimalHandling.PRECISE
    time_precision: TimePrecision = TimePrecision.ADAPTIVE_TIME_MICROSECONDS
    interval_handling: IntervalHandling = IntervalHandling.NUMERIC
    binary_handling: BinaryHandling = BinaryHandling.BYTES
    zero_date_handling: str = "error"


class _Unreadable(tuple[str, str, str]):
    """A value a normaliser could not read: (marker, type name, repr). Equal only to the same raw value."""

    __slots__ = ()


def normaliser(spec: ColumnSpec, options: NormaliseOptions, *, geometry_mysql: bool = False) -> Normalise:
    """The function that turns any driver value of ``spec``'s column into its canonical value.

    ``None`` stays ``None``. Never raises for a value it cannot read: that value becomes a
    tagged tuple (type name and ``repr``) which compares unequal to every readable value.
    """
    inner = _inner(spec, options, geometry_mysql=geometry_mysql)

    def normalise(value: Any) -> Canon:
        if value is None:
            return None
        try:
            return inner(value)
        except (ValueError, TypeError, ArithmeticError, OverflowError, struct.error, binascii.Error, IndexError):
            return _Unreadable(("unreadable", type(value).__name__, repr(value)[:200]))

    return normalise


def _inner(spec: ColumnSpec, options: NormaliseOptions, *, geometry_mysql: bool) -> Normalise:
    logical = spec.logical
    native = spec.native.upper()
    connect = options.time_precision is TimePrecision.CONNECT
    if logical is Logical.BOOLEAN:
        return _canon_bool
    if logical in (Logical.INT8, Logical.INT16, Logical.INT32, Logical.INT64, Logical.UINT64, Logical.YEAR):
        return _canon_int
    if logical is Logical.FLOAT32:
        return _canon_float32
    if logical is Logical.FLOAT64:
        return _canon_float64
    if logical in (Logical.DECIMAL, Logical.MONEY):
        return _canon_double if options.decimal_handling is DecimalHandling.DOUBLE else _canon_decimal
    if logical in (Logical.STRING, Logical.TEXT):
        return _canon_char if native in ("CHAR", "CHARACTER", "BPCHAR", "NCHAR") else _canon_str
    if logical is Logical.SET:
        return _canon_set
    if logical in (Logical.ENUM, Logical.XML, Logical.INET, Logical.CIDR):
        return _canon_str
    if logical is Logical.MACADDR:
        return _canon_lower
    if logical is Logical.BYTES:
        return _canon_binary_padded if native == "BINARY" else _canon_bytes
    if logical is Logical.DATE:
        return _date_normaliser(spec, options)
    if logical is Logical.TIME:
        return _canon_time_millis if connect else _canon_time
    if logical is Logical.TIMETZ:
        return _canon_timetz
    if logical is Logical.TIMESTAMP:
        return _timestamp_normaliser(spec, options, zoned=False, millis=connect)
    if logical is Logical.TIMESTAMPTZ:
        # Zoned timestamps travel as text with full precision in every time_precision mode.
        return _timestamp_normaliser(spec, options, zoned=True, millis=False)
    if logical is Logical.INTERVAL:
        return _canon_interval_tuple if options.interval_handling is IntervalHandling.STRING else _canon_interval_micros
    if logical is Logical.UUID:
        return _canon_uuid
    if logical is Logical.JSON:
        return _canon_json
    if logical is Logical.BITS:
        return _canon_bits
    if logical is Logical.GEOMETRY:
        return _canon_geometry_mysql if geometry_mysql else _canon_geometry_wkb
    if logical is Logical.ARRAY:
        element = ColumnSpec(spec.name, spec.element or Logical.UNKNOWN, spec.element_native)
        return _array_normaliser(_inner(element, options, geometry_mysql=False), spec.element or Logical.UNKNOWN)
    return _canon_other


def _canon_bool(value: Any) -> Canon:
    if isinstance(value, bytes | bytearray | memoryview):
        return any(bytes(value))
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("t", "true", "1", "y", "yes", "on"):
            return True
        if text in ("f", "false", "0", "n", "no", "off", ""):
            return False
        raise ValueError("not a boolean")
    return bool(value)


def _canon_int(value: Any) -> Canon:
    if type(value) is int:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return int.from_bytes(bytes(value), "big")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not an integer")
        return int(value)
    number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    if number != number.to_integral_value():
        raise ValueError("not an integer")
    return int(number)


def _special_float(value: float) -> Canon:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _as_float(value: Any) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        text = value.strip()
        return float({"infinity": "inf", "-infinity": "-inf"}.get(text.lower(), text))
    return float(value)


def _canon_float64(value: Any) -> Canon:
    number = _as_float(value)
    if not math.isfinite(number):
        return _special_float(number)
    return number + 0.0  # -0.0 + 0.0 is 0.0


def _canon_float32(value: Any) -> Canon:
    number = _as_float(value)
    if not math.isfinite(number):
        return _special_float(number)
    with contextlib.suppress(OverflowError):  # beyond float32: keep the double
        (number,) = struct.unpack("<f", struct.pack("<f", number))
    return float(f"{number:.6g}") + 0.0


_MONEY_JUNK = re.compile(r"[^0-9.eE+\-]")


def _as_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else Decimal(str(value))
    text = value.decode() if isinstance(value, bytes | bytearray) else str(value)
    text = text.strip()
    negative = text.startswith("(") and text.endswith(")")  # accounting-style negative money
    lowered = text.lower()
    if lowered in ("nan", "infinity", "-infinity", "inf", "-inf", "+infinity"):
        return Decimal(lowered.replace("infinity", "inf"))
    cleaned = _MONEY_JUNK.sub("", text)
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError("not a number") from None
    return -number if negative else number


def canonical_decimal(number: Decimal) -> Canon:
    """``number`` without trailing fractional zeros or exponent (``12.30`` → ``12.3``, ``1E+2`` → ``100``);
    NaN and infinities as text."""
    if not number.is_finite():
        if number.is_nan():
            return "NaN"
        return "-Infinity" if number.is_signed() else "Infinity"
    text = str(number)
    if "E" not in text and not ("." in text and text.endswith("0")) and text != "-0":
        return number  # already plain, without trailing fractional zeros
    if number.is_zero():
        return Decimal(0)
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    if exponent > 0:
        return Decimal((sign, digits + (0,) * exponent, 0))
    cut = len(digits)
    while exponent < 0 and cut > 1 and digits[cut - 1] == 0:
        cut -= 1
        exponent += 1
    return Decimal((sign, digits[:cut], exponent))


def _canon_decimal(value: Any) -> Canon:
    return canonical_decimal(_as_decimal(value))


def _canon_double(value: Any) -> Canon:
    number = _as_decimal(value)
    if not number.is_finite():
        return canonical_decimal(number)
    return float(number) + 0.0


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)


def _canon_str(value: Any) -> Canon:
    return value if type(value) is str else _as_text(value)


def _canon_lower(value: Any) -> Canon:
    return _as_text(value).lower()


def _canon_char(value: Any) -> Canon:
    return _as_text(value).rstrip(" ")


def _canon_set(value: Any) -> Canon:
    if isinstance(value, set | frozenset | list | tuple):
        members = [str(m) for m in value]
    else:
        text = _as_text(value)
        members = text.split(",") if text else []
    return ",".join(sorted(members))


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        if value.startswith("\\x"):  # PostgreSQL's hex bytea text
            return bytes.fromhex(value[2:])
        return value.encode("utf-8", "surrogateescape")
    raise TypeError("not binary")


def _canon_bytes(value: Any) -> Canon:
    return _as_bytes(value)


def _canon_binary_padded(value: Any) -> Canon:
    # MySQL pads BINARY(n) with zero bytes; the binlog may carry the value without them.
    return _as_bytes(value).rstrip(b"\x00")


_ZERO_DATE = re.compile(r"^\d{4}-(?:00-\d\d|\d\d-00)")


def _zero_date(spec: ColumnSpec, options: NormaliseOptions, epoch: str) -> Canon | _Unreadable:
    mode = options.zero_date_handling
    if mode == "null" or (mode == "debezium" and spec.nullable):
        return None
    if mode == "debezium":
        return epoch
    return _Unreadable(("zero date", "str", ""))


def _date_normaliser(spec: ColumnSpec, options: NormaliseOptions) -> Normalise:
    def canon(value: Any) -> Canon:
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        text = _as_text(value).strip()
        if _ZERO_DATE.match(text):
            return _zero_date(spec, options, _EPOCH_DATE)
        if text.lower() in ("infinity", "-infinity") or text.upper().endswith(" BC"):
            return text.lower()
        return date.fromisoformat(text[:10]).isoformat()

    return canon


_ISO_DURATION = re.compile(
    r"^(?P<neg>-)?P(?:(?P<y>[-+]?\d+)Y)?(?:(?P<mo>[-+]?\d+)M)?(?:(?P<w>[-+]?\d+)W)?(?:(?P<d>[-+]?\d+)D)?"
    r"(?:T(?:(?P<h>[-+]?\d+)H)?(?:(?P<mi>[-+]?\d+)M)?(?:(?P<s>[-+]?\d+(?:[.,]\d*)?)S)?)?$"
)
_CLOCK = re.compile(r"^(?P<neg>-)?(?P<h>\d+):(?P<m>\d\d)(?::(?P<s>\d\d(?:\.\d*)?))?$")


def _seconds_micros(text: str) -> int:
    return int((Decimal(text.replace(",", ".")) * _US_PER_SECOND).to_integral_value())


def parse_duration(text: str) -> tuple[int, int, int]:
    """(months, days, microseconds) of an ISO 8601 duration (``P1Y2M3DT4H5M6.5S``, every part
    optionally signed, as PostgreSQL's ``iso_8601`` style and Debezium write it) or of a clock
    duration ``[-]H:MM[:SS[.f]]`` (MySQL TIME, SQLite text)."""
    text = text.strip()
    m = _ISO_DURATION.match(text)
    if m is not None and text not in ("P", "-P"):
        sign = -1 if m["neg"] else 1

        def part(name: str) -> int:
            return int(m[name]) if m[name] else 0

        months = part("y") * 12 + part("mo")
        days = part("w") * 7 + part("d")
        micros = part("h") * 3600 * _US_PER_SECOND + part("mi") * 60 * _US_PER_SECOND
        if m["s"]:
            micros += _seconds_micros(m["s"])
        return sign * months, sign * days, sign * micros
    c = _CLOCK.match(text)
    if c is None:
        raise ValueError("not a duration")
    micros = (int(c["h"]) * 3600 + int(c["m"]) * 60) * _US_PER_SECOND
    if c["s"]:
        micros += _seconds_micros(c["s"])
    return 0, 0, -micros if c["neg"] else micros


def _duration_micros(value: Any) -> int:
    if isinstance(value, timedelta):
        return value // timedelta(microseconds=1)
    if isinstance(value, time):
        return ((value.hour * 60 + value.minute) * 60 + value.second) * _US_PER_SECOND + value.microsecond
    if isinstance(value, int):
        return value
    months, days, micros = parse_duration(_as_text(value))
    return months * _US_PER_AVG_MONTH + days * _US_PER_DAY + micros


def _canon_time(value: Any) -> Canon:
    return _duration_micros(value)


def _canon_time_millis(value: Any) -> Canon:
    micros = _duration_micros(value)
    return micros - micros % 1000


_OFFSET = re.compile(r"(?P<sign>[+-])(?P<h>\d\d)(?::?(?P<m>\d\d))?(?::?(?P<s>\d\d))?$")


def _canon_timetz(value: Any) -> Canon:
    if isinstance(value, time):
        micros = _duration_micros(value)
        zone = value.utcoffset()
        if zone is not None:
            micros -= zone // timedelta(microseconds=1)
        return micros % _US_PER_DAY
    if isinstance(value, timedelta):
        return _duration_micros(value) % _US_PER_DAY
    text = _as_text(value).strip()
    if text.endswith("Z"):
        text = text[:-1]
    offset = 0
    m = _OFFSET.search(text)
    if m is not None and ":" in text[: m.start()]:
        offset = (int(m["h"]) * 3600 + int(m["m"] or 0) * 60 + int(m["s"] or 0)) * _US_PER_SECOND
        offset = -offset if m["sign"] == "-" else offset
        text = text[: m.start()]
    return (_duration_micros(text) - offset) % _US_PER_DAY


def _format_timestamp(value: datetime, millis: bool) -> str:
    if millis:
        value = value.replace(microsecond=value.microsecond - value.microsecond % 1000)
    return value.isoformat(" ", "microseconds")


def _timestamp_normaliser(spec: ColumnSpec, options: NormaliseOptions, *, zoned: bool, millis: bool) -> Normalise:
    def canon(value: Any) -> Canon:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime(value.year, value.month, value.day)
        else:
            text = _as_text(value).strip()
            if _ZERO_DATE.match(text):
                return _zero_date(spec, options, _EPOCH_TIMESTAMP)
            if text.lower() in ("infinity", "-infinity") or text.upper().endswith(" BC"):
                return text.lower()
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return _format_timestamp(moment, millis)

    return canon


def _canon_interval_micros(value: Any) -> Canon:
    return _duration_micros(value)


def _canon_interval_tuple(value: Any) -> Canon:
    if isinstance(value, timedelta | time | int):
        micros = _duration_micros(value)
        days = int(micros / _US_PER_DAY)  # truncated toward zero, as PgInterval.from_timedelta
        return (0, days, micros - days * _US_PER_DAY)
    return parse_duration(_as_text(value))


def _canon_uuid(value: Any) -> Canon:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview) and len(value) == 16:
        return str(UUID(bytes=bytes(value)))
    return str(UUID(_as_text(value).strip()))


def _json_text(value: Any) -> str:
    """Canonical JSON text: keys sorted, no spaces, numbers as exact decimals."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float | Decimal):
        number = canonical_decimal(_as_decimal(value))
        return json.dumps(number) if isinstance(number, str) else format(number, "f")
    if isinstance(value, Mapping):
        items = sorted((str(k), v) for k, v in value.items())
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_json_text(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _parse_json(text: str) -> Any:
    return json.loads(text, parse_float=Decimal, parse_constant=Decimal)


def _canon_json(value: Any) -> Canon:
    if isinstance(value, bytes | bytearray | memoryview | str):
        value = _parse_json(_as_text(value))
    return _json_text(value)


def _array_normaliser(element: Normalise, kind: Logical) -> Normalise:
    def each(values: Any, from_json: bool) -> Canon:
        out: list[Canon] = []
        for v in values:
            if v is None:
                out.append(None)
            elif isinstance(v, list):
                out.append(each(v, from_json))
            elif from_json and kind is Logical.BYTES and isinstance(v, str):
                out.append(element(base64.b64decode(v)))
            elif from_json and kind in (Logical.JSON,) and not isinstance(v, str):
                out.append(element(_json_text(v)))
            else:
                out.append(element(v))
        return tuple(out)

    def canon(value: Any) -> Canon:
        if isinstance(value, list | tuple):
            return each(value, False)
        text = _as_text(value).strip()
        if text.startswith("["):
            parsed = _parse_json(text)
            if isinstance(parsed, list):
                return each(parsed, True)
        raise ValueError("not an array")

    return canon


def _canon_bits(value: Any) -> Canon:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return int.from_bytes(bytes(value), "big")
    text = _as_text(value).strip()
    if text and set(text) <= {"0", "1"}:
        return int(text, 2)
    if not text:
        return 0
    raise ValueError("not a bit string")


_EWKB_SRID = 0x20000000


def _canon_geometry_wkb(value: Any) -> Canon:
    data = bytes.fromhex(value) if isinstance(value, str) else _as_bytes(value)
    if len(data) < 5:
        return (0, data.hex())
    order = "<" if data[0] == 1 else ">"
    (kind,) = struct.unpack(order + "I", data[1:5])
    if kind & _EWKB_SRID:
        (srid,) = struct.unpack(order + "I", data[5:9])
        return (srid, (data[:1] + struct.pack(order + "I", kind & ~_EWKB_SRID) + data[9:]).hex())
    return (0, data.hex())


def _canon_geometry_mysql(value: Any) -> Canon:
    data = _as_bytes(value)
    (srid,) = struct.unpack("<I", data[:4])
    return (srid, data[4:].hex())


def _canon_other(value: Any) -> Canon:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return _as_text(value)


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------


class Row(NamedTuple):
    """One normalised row: its key (normalised key values, ``()`` without a key), the digest of all
    its normalised values, and the values themselves (for listing differences)."""

    key: tuple[Canon, ...]
    digest: bytes
    values: tuple[Canon, ...]


def row_digest(values: tuple[Canon, ...]) -> bytes:
    """A 16-byte digest of normalised values (their ``repr``, which is exact for the canonical types)."""
    return blake2b(repr(values).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def make_row(raw: Sequence[Any], normalisers: Sequence[Normalise], key_positions: Sequence[int]) -> Row:
    """Normalise one row of driver values (in column order) into a :class:`Row`."""
    values = tuple([n(v) for n, v in zip(normalisers, raw, strict=True)])
    return Row(tuple([values[i] for i in key_positions]), row_digest(values), values)


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


def jsonable(value: Any, limit: int = 200) -> Any:
    """A normalised value as JSON: decimals as text, bytes as ``0x`` hex, long text shortened."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        text = "0x" + value.hex()
        return text if len(text) <= limit else text[:limit] + "..."
    if isinstance(value, _Unreadable):
        return f"<unreadable {value[1]}: {value[2]}>"
    if isinstance(value, tuple):
        return [jsonable(v, limit) for v in value]
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass
class TableDiff:
    """The comparison of one source table with its target table.

    ``keys`` names the key columns (empty: compared as a multiset of rows); ``columns`` the
    compared columns in the order of :attr:`Row.values`. The ``*_count`` fields are exact; the
    lists hold at most ``max_listed`` entries each.
    """

    source: str
    target: str
    columns: tuple[str, ...]
    keys: tuple[str, ...]
    max_listed: int = DEFAULT_MAX_LISTED
    source_rows: int = 0
    target_rows: int = 0
    method: str = "ordered"
    chunks: int = 0
    chunks_differing: int = 0
    missing_count: int = 0
    extra_count: int = 0
    different_count: int = 0
    missing: list[Row] = field(default_factory=list)
    extra: list[Row] = field(default_factory=list)
    different: list[tuple[Row, Row]] = field(default_factory=list)
    target_missing: bool = False
    missing_columns: tuple[str, ...] = ()
    error: str | None = None

    @property
    def equal(self) -> bool:
        return (
            self.error is None
            and not self.target_missing
            and not self.missing_columns
            and self.missing_count == 0
            and self.extra_count == 0
            and self.different_count == 0
            and self.source_rows == self.target_rows
        )

    def reset(self, method: str) -> None:
        """Forget what was compared so far (before comparing again another way)."""
        self.method = method
        self.source_rows = self.target_rows = self.chunks = self.chunks_differing = 0
        self.missing_count = self.extra_count = self.different_count = 0
        self.missing, self.extra, self.different = [], [], []

    def add_missing(self, row: Row) -> None:
        self.missing_count += 1
        if len(self.missing) < self.max_listed:
            self.missing.append(row)

    def add_extra(self, row: Row) -> None:
        self.extra_count += 1
        if len(self.extra) < self.max_listed:
            self.extra.append(row)

    def add_different(self, source: Row, target: Row) -> None:
        self.different_count += 1
        if len(self.different) < self.max_listed:
            self.different.append((source, target))

    # presentation ------------------------------------------------------------------------------

    def _key_view(self, row: Row) -> dict[str, Any]:
        return {name: jsonable(v) for name, v in zip(self.keys, row.key, strict=True)}

    def _row_view(self, row: Row) -> dict[str, Any]:
        return {name: jsonable(v) for name, v in zip(self.columns, row.values, strict=True)}

    def _changed(self, source: Row, target: Row) -> dict[str, dict[str, Any]]:
        return {
            name: {"source": jsonable(s), "target": jsonable(t)}
            for name, s, t in zip(self.columns, source.values, target.values, strict=True)
            if s != t
        }

    def to_json(self) -> dict[str, Any]:
        """The table's result as JSON-able data (see :meth:`VerifyReport.to_json`)."""
        listed = "keys" if self.keys else "rows"
        view = self._key_view if self.keys else self._row_view
        differences: dict[str, Any] = {
            "missing_in_target": {"count": self.missing_count, listed: [view(r) for r in self.missing]},
            "extra_in_target": {"count": self.extra_count, listed: [view(r) for r in self.extra]},
            "different": {
                "count": self.different_count,
                "keys": [{"key": self._key_view(s), "columns": self._changed(s, t)} for s, t in self.different],
            },
        }
        if self.target_missing:
            differences["target_table_missing"] = True
        if self.missing_columns:
            differences["missing_columns"] = list(self.missing_columns)
        out: dict[str, Any] = {
            "source": self.source,
            "target": self.target,
            "source_rows": self.source_rows,
            "target_rows": self.target_rows,
            "equal": self.equal,
            "key": list(self.keys),
            "method": self.method,
            "chunks": self.chunks,
            "chunks_differing": self.chunks_differing,
            "differences": differences,
        }
        if self.error is not None:
            out["error"] = self.error
        return out

    def render_text(self) -> str:
        """A few lines for people: the counts, then the listed differences."""
        head = f"  {self.source} -> {self.target}: "
        if self.equal:
            return head + f"{self.source_rows:,} rows, equal"
        lines = [head + f"source {self.source_rows:,} rows, target {self.target_rows:,} rows, DIFFERENT"]
        if self.error is not None:
            lines.append(f"    error: {self.error}")
        if self.target_missing:
            lines.append("    the target table does not exist")
        if self.missing_columns:
            lines.append(f"    columns missing in the target: {', '.join(self.missing_columns)}")
        show = self._key_view if self.keys else self._row_view
        for title, count, rows in (
            ("missing in target", self.missing_count, self.missing),
            ("extra in target", self.extra_count, self.extra),
        ):
            if count:
                lines.append(f"    {title}: {count:,}" + (f" (first {len(rows)} listed)" if len(rows) < count else ""))
                lines.extend(f"      {json.dumps(show(r), ensure_ascii=False)}" for r in rows)
        if self.different_count:
            n = len(self.different)
            more = f" (first {n} listed)" if n < self.different_count else ""
            lines.append(f"    different values: {self.different_count:,}{more}")
            for s, t in self.different:
                changed = self._changed(s, t)
                detail = "; ".join(f"{c}: {_show(v['source'])} != {_show(v['target'])}" for c, v in changed.items())
                lines.append(f"      {json.dumps(self._key_view(s), ensure_ascii=False)} {detail}")
        return "\n".join(lines)


@dataclass
class VerifyReport:
    """The comparison of every captured table of one sink: what ``cdc verify`` prints."""

    sink: str
    target: str  # the target URL, password redacted
    tables: list[TableDiff] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return all(t.equal for t in self.tables)

    def to_json(self) -> dict[str, Any]:
        """``{"sink", "target", "equal", "tables": [...]}``; each table has ``source``, ``target``,
        ``source_rows``, ``target_rows``, ``equal``, ``key``, ``method``, ``chunks``,
        ``chunks_differing`` and ``differences`` (``missing_in_target`` and ``extra_in_target``: count
        and ``keys`` (``rows`` for a table without key); ``different``: count and ``keys`` with the
        changed columns' source and target values; ``target_table_missing``, ``missing_columns``
        when so)."""
        return {
            "sink": self.sink,
            "target": self.target,
            "equal": self.equal,
            "tables": [t.to_json() for t in self.tables],
        }

    def render_text(self) -> str:
        if not self.tables:
            return "  no captured table is applied by this sink"
        return "\n".join(t.render_text() for t in self.tables)


# ---------------------------------------------------------------------------------------------
# Comparing
# ---------------------------------------------------------------------------------------------


class OutOfOrder(Exception):
    """A stream's keys did not ascend strictly (the engine's order differs from the canonical one,
    or keys repeat): the ordered comparison cannot be trusted for this table."""

    def __init__(self, side: str) -> None:
        super().__init__(f"the {side} rows are not in ascending key order")
        self.side = side


#: :func:`chunk_boundary`'s answer when everything left belongs to the last chunk.
ALL: Final = object()


def chunk_boundary(
    source_last: tuple[Canon, ...] | None, source_done: bool, target_last: tuple[Canon, ...] | None, target_done: bool
) -> Any:
    """The last key of the next chunk, given each side's buffered rows.

    A side's buffer holds every remaining row up to its last key (``*_last``, None when empty);
    a side that is ``done`` has nothing beyond its buffer. The chunk may only reach as far as
    every side not done has read, so the boundary is the smallest last key among those sides;
    when both are done, everything left is the last chunk (the sentinel :data:`ALL`).
    """
    bounds = [last for last, done in ((source_last, source_done), (target_last, target_done)) if not done]
    if not bounds:
        return ALL
    if any(b is None for b in bounds):
        raise ValueError("a side that is not done must have buffered rows")
    return min(b for b in bounds if b is not None)


def _ascending(rows: Iterable[Row], side: str) -> Iterator[Row]:
    previous: tuple[Canon, ...] | None = None
    for row in rows:
        if previous is not None:
            try:
                ok = row.key > previous
            except TypeError:
                ok = False
            if not ok:
                raise OutOfOrder(side)
        previous = row.key
        yield row


def _fill(buffer: list[Row], source: Iterator[Row], size: int) -> bool:
    """Top ``buffer`` up to ``size`` rows; True when ``source`` is exhausted."""
    while len(buffer) < size:
        row = next(source, None)
        if row is None:
            return True
        buffer.append(row)
    return False


def _take(buffer: list[Row], boundary: Any) -> list[Row]:
    if boundary is ALL:
        taken = buffer[:]
        buffer.clear()
        return taken
    n = 0
    for row in buffer:
        if row.key > boundary:
            break
        n += 1
    taken = buffer[:n]
    del buffer[:n]
    return taken


def _chunk_hash(rows: Sequence[Row]) -> bytes:
    h = blake2b(digest_size=16)
    for row in rows:
        h.update(repr(row.key).encode("utf-8", "surrogatepass"))
        h.update(row.digest)
    return h.digest()


def compare_chunk(source: Sequence[Row], target: Sequence[Row], diff: TableDiff) -> bool:
    """Compare one key range: by count and hash first, and only when they differ row by row
    (both lists ascend by key). Records the differences in ``diff``; True when equal."""
    diff.chunks += 1
    if len(source) == len(target) and _chunk_hash(source) == _chunk_hash(target):
        return True
    diff.chunks_differing += 1
    i = j = 0
    while i < len(source) or j < len(target):
        if j >= len(target) or (i < len(source) and source[i].key < target[j].key):
            diff.add_missing(source[i])
            i += 1
        elif i >= len(source) or target[j].key < source[i].key:
            diff.add_extra(target[j])
            j += 1
        else:
            if source[i].digest != target[j].digest:
                diff.add_different(source[i], target[j])
            i += 1
            j += 1
    return False


def compare_ordered(
    source: Iterable[Row],
    target: Iterable[Row],
    diff: TableDiff,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_rows: Callable[[int], None] | None = None,
) -> None:
    """Compare two streams that ascend by key, chunk by chunk (see the module docstring).

    Raises :class:`OutOfOrder` as soon as either stream's keys fail to ascend strictly; ``diff``
    is then incomplete. ``on_rows(n)`` is told how many source rows each chunk held (progress).
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    s_iter = _ascending(source, "source")
    t_iter = _ascending(target, "target")
    s_buf: list[Row] = []
    t_buf: list[Row] = []
    s_done = t_done = False
    while True:
        if not s_done:
            s_done = _fill(s_buf, s_iter, chunk_rows)
        if not t_done:
            t_done = _fill(t_buf, t_iter, chunk_rows)
        if not s_buf and not t_buf and s_done and t_done:
            return
        try:
            boundary = chunk_boundary(
                s_buf[-1].key if s_buf else None, s_done, t_buf[-1].key if t_buf else None, t_done
            )
            s_chunk = _take(s_buf, boundary)
            t_chunk = _take(t_buf, boundary)
            diff.source_rows += len(s_chunk)
            diff.target_rows += len(t_chunk)
            compare_chunk(s_chunk, t_chunk, diff)
        except TypeError:  # the two sides' keys are not comparable with each other (an unreadable value)
            raise OutOfOrder("target") from None
        if on_rows is not None:
            on_rows(len(s_chunk))


def _sort_rows(rows: list[Row], by_key: bool) -> list[Row]:
    try:
        return sorted(rows, key=(lambda r: r.key) if by_key else (lambda r: r.values))
    except TypeError:
        return sorted(rows, key=lambda r: repr(r.key if by_key else r.values))


def compare_partitioned(
    read_source: Callable[[], Iterable[Row]],
    read_target: Callable[[], Iterable[Row]],
    diff: TableDiff,
    *,
    keyed: bool,
    partitions: int = 1,
    on_rows: Callable[[int], None] | None = None,
) -> None:
    """Compare two streams in any order, in ``partitions`` passes over both.

    Each pass keeps one partition of the source rows in memory (rows whose key, or for
    ``keyed=False`` whose digest, hashes to it) and matches the target's rows of that partition
    against them. Keyed: a key on one side only is missing or extra, a key on both with other
    values is different; a key repeated on one side counts as one row too many on that side.
    Keyless: rows are matched by digest as a multiset. The listed rows are sorted.
    """
    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    missing: list[Row] = []
    extra: list[Row] = []
    different: list[tuple[Row, Row]] = []
    for part in range(partitions):

        def mine(row: Row, part: int = part) -> bool:
            if partitions == 1:
                return True
            token = hash(row.key) if keyed else int.from_bytes(row.digest[:8], "big")
            return token % partitions == part

        held: dict[Any, list[Row]] = {}
        for row in read_source():
            if part == 0:
                diff.source_rows += 1
            if not mine(row):
                continue
            if on_rows is not None:
                on_rows(1)
            held.setdefault(row.key if keyed else row.digest, []).append(row)
        if keyed:
            for rows in held.values():
                for dup in rows[1:]:
                    diff.missing_count += 1
                    missing.append(dup)
        for row in read_target():
            if part == 0:
                diff.target_rows += 1
            if not mine(row):
                continue
            mates = held.get(row.key if keyed else row.digest)
            if not mates:
                diff.extra_count += 1
                extra.append(row)
                continue
            if keyed:
                mate = mates[0]
                del held[row.key]
                if mate.digest != row.digest:
                    diff.different_count += 1
                    different.append((mate, row))
            else:
                mates.pop()
        for rows in held.values():
            for row in rows[:1] if keyed else rows:
                diff.missing_count += 1
                missing.append(row)
        # keep memory bounded by the listing cap between passes
        missing = _sort_rows(missing, keyed)[: diff.max_listed]
        extra = _sort_rows(extra, keyed)[: diff.max_listed]
        different = sorted(different, key=lambda p: repr(p[0].key))[: diff.max_listed]
    diff.chunks += partitions
    if diff.missing_count or diff.extra_count or diff.different_count:
        diff.chunks_differing += 1
    diff.missing, diff.extra = missing, extra
    try:
        diff.different = sorted(different, key=lambda p: p[0].key)
    except TypeError:
        diff.different = different
