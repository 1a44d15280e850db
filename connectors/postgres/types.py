"""PostgreSQL column types: Debezium's PostgreSQL mapping, and the text converters of snapshot and stream.

Both capture paths see a value as the text the type's output function writes: pgoutput sends
tuples in text format, and the snapshot reads the raw text of its result (never a driver
conversion). Both run with the session settings of :func:`session_options`, which pin every
setting that text depends on, so one converter per column (:func:`text_converter`) serves
both and a row reads the same as ``op: r`` and as ``op: c``.

**API.** The catalog (:class:`~connectors.postgres.snapshot.Catalog`) reads type definitions
with :data:`TYPE_CATALOG_SQL` (the types asked for, and every type they refer to: array
elements, domain bases) and builds :class:`PgType` objects with :func:`build_types`. For
each column, :func:`pg_column` gives the :class:`~cdc.events.Column` (native type, logical
kind, Kafka Connect schema) and :func:`text_converter` the function from the PostgreSQL text
to the value in Debezium's JSON payload representation (:mod:`cdc.values`).
:func:`is_unknown` tells types that have no mapping: they pass as their text (the catalog
logs a warning once per type).

**Mapping** (Debezium's PostgreSQL connector; default modes in brackets; ``decimal_handling``,
``time_precision``, ``binary_handling`` and ``interval_handling`` are Debezium's
``decimal.handling.mode``, ``time.precision.mode``, ``binary.handling.mode`` and
``interval.handling.mode``):

============================  ==================================================================
boolean, bit(1), varbit(1)    ``true`` / ``false``
smallint / integer            int16 / int32
bigint, oid                   int64
real / double precision       float32 / float64; ``"NaN"``, ``"Infinity"``, ``"-Infinity"``
numeric(p,s)                  [precise] Connect ``Decimal`` (base64 of the unscaled value),
                              ``string`` plain text, ``double`` float64. NaN and ±Infinity:
                              ``"NAN"``, ``"POSITIVE_INFINITY"``, ``"NEGATIVE_INFINITY"`` in
                              string mode, ``"NaN"``... in double mode; precise mode cannot
                              hold them and refuses the row (:class:`UnrepresentableValue`),
                              as Debezium does
numeric (no scale)            [precise] ``VariableScaleDecimal`` ``{"scale", "value"}``, trailing
                              zeros stripped; string / double as above
money                         as numeric with scale 2 (Debezium's ``money.fraction.digits``)
char(n), varchar(n), text,    string (``char(n)`` keeps its padding); text and citext are
name, citext                  ``Logical.TEXT``
bytea                         [bytes] base64; ``base64``, ``base64-url-safe``, ``hex`` strings
date                          ``io.debezium.time.Date`` days since 1970-01-01, proleptic
                              Gregorian (BC dates negative); ``infinity`` / ``-infinity`` as
                              Debezium: days of -5877611-06-21 / -5877611-06-22
time(p)                       [adaptive] ``Time`` ms for p ≤ 3, ``MicroTime`` µs otherwise;
                              ``adaptive_time_microseconds`` always µs; ``connect`` ms
timetz                        ``ZonedTime`` in UTC: ``"08:11:12.5Z"``
timestamp(p)                  [adaptive] ``Timestamp`` ms for p ≤ 3, ``MicroTimestamp`` µs
                              otherwise; ``infinity`` / ``-infinity`` are 9223372036825200000 /
                              -9223372036832400000 µs (pgjdbc's values, as Debezium documents)
timestamptz(p)                ``ZonedTimestamp`` in UTC with p fraction digits (6 by default):
                              ``"2024-02-29T18:29:59.500000Z"``; years outside 0..9999 as Java
                              writes them (``"-0043-03-15T…"``); ``"infinity"``, ``"-infinity"``
interval                      [numeric] ``MicroDuration`` µs with a month of 365.25/12 days;
                              ``string`` ``Interval`` ``"P1Y2M3DT4H5M6.789S"``
uuid / json, jsonb / xml      ``Uuid`` / ``Json`` / ``Xml`` strings, the server's text
inet, cidr, macaddr(8),       strings, the server's text
ranges
enum                          ``io.debezium.data.Enum`` with ``allowed`` in label order
bit(n), varbit(n)             ``io.debezium.data.Bits``: the bits little-endian, ``length`` n
                              (varbit without limit: 2^31-1); bit(n) is sized to n bits,
                              varbit by its content
hstore                        ``Json``: ``{"key":"value"}``
ltree                         ``io.debezium.data.Ltree`` string
arrays (any element above)    Connect ``array`` of the element's schema (enum labels kept); NULL
                              elements are ``null``; n-dimensional values are nested lists
domains                       as their base type, with the domain's type modifier
anything else                 the server's text as a string (``Logical.UNKNOWN``)
============================  ==================================================================

Imports no driver.
"""

from __future__ import annotations

import binascii
import json
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final, NoReturn

from cdc.events import Column, Logical, Wire
from cdc.values import (
    DATE_NEGATIVE_INFINITY_DAYS,
    DATE_POSITIVE_INFINITY_DAYS,
    TIMESTAMP_NEGATIVE_INFINITY_US,
    TIMESTAMP_POSITIVE_INFINITY_US,
    BinaryHandling,
    DecimalHandling,
    IntervalHandling,
    PgInterval,
    SemanticName,
    TimePrecision,
    array_wire,
    bool_wire,
    bytes_wire,
    civil_from_days,
    date_wire,
    days_from_civil,
    decimal_wire,
    enum_wire,
    float_wire,
    int_wire,
    interval_wire,
    json_wire,
    string_wire,
    time_wire,
    timestamp_wire,
    uuid_wire,
    variable_scale_decimal_wire,
    xml_wire,
    zoned_time_wire,
    zoned_timestamp_wire,
)

__all__ = [
    "IDENTITY",
    "TYPE_CATALOG_SQL",
    "PgType",
    "PgTypeModes",
    "TextConverter",
    "UnrepresentableValue",
    "build_types",
    "is_unknown",
    "pg_column",
    "session_options",
    "text_converter",
]

#: A function from a value's PostgreSQL text to its Debezium payload value.
TextConverter = Callable[[str], Any]

#: ``money`` values have this many fraction digits (Debezium's ``money.fraction.digits`` default).
MONEY_FRACTION_DIGITS: Final = 2
#: The Bits ``length`` of ``bit varying`` without a limit.
VARBIT_UNBOUNDED: Final = 2**31 - 1

#: The session settings every text value depends on, as ``(name, value)``.
SESSION_SETTINGS: Final[tuple[tuple[str, str], ...]] = (
    ("client_encoding", "UTF8"),
    ("DateStyle", "ISO"),
    ("IntervalStyle", "iso_8601"),
    ("TimeZone", "UTC"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
    ("lc_monetary", "C"),
)


def session_options() -> str:
    """The libpq ``options`` string (``-c name=value ...``) that pins :data:`SESSION_SETTINGS`.

    Given to both the replication connection (the walsender writes pgoutput's text values with
    its session's settings) and the catalog/snapshot connections, so that a value reads the same
    in both: dates and timestamps in ISO form, intervals in ISO-8601, timestamptz in UTC,
    floats in their shortest exact form, bytea in hex, money without locale-specific symbols,
    text in UTF-8.
    """
    return " ".join(f"-c {name}={value}" for name, value in SESSION_SETTINGS)


# ---------------------------------------------------------------------------------------------
# Type definitions from the catalog
# ---------------------------------------------------------------------------------------------

#: The types ``%(oids)s`` (a list of oids) and every type they refer to (array elements, domain
#: bases), one row each: oid, name, schema, typtype, typcategory, typelem, typbasetype,
#: typtypmod, typdelim, enum labels in sort order (NULL unless an enum).
TYPE_CATALOG_SQL: Final = """
WITH RECURSIVE wanted(oid) AS (
    SELECT t.oid FROM pg_catalog.pg_type t WHERE t.oid = ANY(%(oids)s::oid[])
  UNION
    SELECT r.ref
    FROM wanted w
    JOIN pg_catalog.pg_type t ON t.oid = w.oid
    CROSS JOIN LATERAL (VALUES (t.typelem), (t.typbasetype)) AS r(ref)
    WHERE r.ref <> 0
)
SELECT t.oid::bigint, t.typname::text, n.nspname::text, t.typtype::text, t.typcategory::text,
       t.typelem::bigint, t.typbasetype::bigint, t.typtypmod, t.typdelim::text,
       CASE WHEN t.typtype = 'e' THEN
         ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
               WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
       END
FROM wanted w
JOIN pg_catalog.pg_type t ON t.oid = w.oid
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
"""

#: Types with ``typelem`` that are not arrays in the text format (their output is not ``{...}``).
_NOT_ARRAYS: Final = frozenset({"int2vector", "oidvector"})


@dataclass(frozen=True, eq=False)
class PgType:
    """One ``pg_type`` row, with its references resolved.

    ``kind`` is ``typtype`` (``b`` base, ``d`` domain, ``e`` enum, ``r`` range, ``c``
    composite, ``m`` multirange, ``p`` pseudo). ``element`` is set for arrays, ``base`` (and
    ``base_typmod``) for domains, ``labels`` for enums.
    """

    oid: int
    name: str
    schema: str
    kind: str
    category: str
    delimiter: str = ","
    element: PgType | None = None
    base: PgType | None = None
    base_typmod: int = -1
    labels: tuple[str, ...] | None = None

    @property
    def is_array(self) -> bool:
        return self.element is not None

    def __repr__(self) -> str:
        return f"PgType({self.oid}, {self.schema}.{self.name})"


def build_types(rows: Iterable[Sequence[Any]]) -> dict[int, PgType]:
    """:class:`PgType` objects from rows of :data:`TYPE_CATALOG_SQL`, by oid.

    References to types not among ``rows`` stay unresolved (the type then maps as unknown).
    """
    raw: dict[int, Sequence[Any]] = {int(r[0]): r for r in rows}
    built: dict[int, PgType] = {}

    def build(oid: int, depth: int) -> PgType | None:
        hit = built.get(oid)
        if hit is not None:
            return hit
        row = raw.get(oid)
        if row is None or depth > 32:  # missing, or a reference cycle (cannot happen in pg_type)
            return None
        _, name, schema, kind, category, elem, base, typmod, delim, labels = row[:10]
        name, kind = str(name), str(kind)
        element = None
        if category == "A" and int(elem or 0) and name not in _NOT_ARRAYS:
            element = build(int(elem), depth + 1)
        base_type = build(int(base), depth + 1) if kind == "d" and int(base or 0) else None
        t = PgType(
            oid,
            name,
            str(schema),
            kind,
            str(category),
            str(delim or ","),
            element,
            base_type,
            int(typmod if typmod is not None else -1),
            tuple(str(v) for v in labels) if labels is not None else None,
        )
        built[oid] = t
        return t

    for oid in raw:
        build(oid, 0)
    return built


# ---------------------------------------------------------------------------------------------
# Modes
# ---------------------------------------------------------------------------------------------


class PgTypeModes:
    """The representation choices of a source config that shape wire types and values."""

    __slots__ = ("binary", "decimal", "interval", "money_digits", "time")

    def __init__(
        self,
        decimal: DecimalHandling = DecimalHandling.PRECISE,
        time: TimePrecision = TimePrecision.ADAPTIVE,
        binary: BinaryHandling = BinaryHandling.BYTES,
        interval: IntervalHandling = IntervalHandling.NUMERIC,
        money_digits: int = MONEY_FRACTION_DIGITS,
    ) -> None:
        self.decimal = DecimalHandling(decimal)
        self.time = TimePrecision(time)
        self.binary = BinaryHandling(binary)
        self.interval = IntervalHandling(interval)
        self.money_digits = money_digits

    @classmethod
    def from_config(cls, config: Any) -> PgTypeModes:
        """The modes of a :class:`~connectors.postgres.config.PostgresSourceConfig` (or anything with
        ``decimal_handling``, ``time_precision``, ``binary_handling`` and ``interval_handling``)."""
        return cls(
            DecimalHandling(config.decimal_handling),
            TimePrecision(config.time_precision),
            BinaryHandling(config.binary_handling),
            IntervalHandling(getattr(config, "interval_handling", IntervalHandling.NUMERIC)),
        )

    def __repr__(self) -> str:
        return f"PgTypeModes({self.decimal}, {self.time}, {self.binary}, {self.interval})"


class UnrepresentableValue(ValueError):
    """A value that the column's representation cannot hold (NaN in a precise decimal). Its message
    names the problem and the remedy, never the value, so it may be shown in errors."""


# ---------------------------------------------------------------------------------------------
# Columns
# ---------------------------------------------------------------------------------------------

# java.sql.Types codes as pgjdbc reports them (what Debezium's schema-change events carry)
_JDBC: Final[Mapping[str, int]] = {
    "bool": -7,
    "bit": -7,
    "varbit": 1111,
    "int2": 5,
    "int4": 4,
    "int8": -5,
    "oid": -5,
    "float4": 7,
    "float8": 8,
    "numeric": 2,
    "money": 8,
    "bpchar": 1,
    "char": 1,
    "varchar": 12,
    "text": 12,
    "name": 12,
    "bytea": -2,
    "date": 91,
    "time": 92,
    "timetz": 92,
    "timestamp": 93,
    "timestamptz": 93,
    "xml": 2009,
}


@dataclass(frozen=True)
class _Kind:
    """What a (resolved) type maps to: the column's description and how to convert its text."""

    native: str
    logical: Logical
    wire: Wire
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    enum_values: tuple[str, ...] | None = None
    jdbc: int | None = None
    unknown: bool = False


def _resolve(pgtype: PgType, typmod: int) -> tuple[PgType, int]:
    """The base type of a domain (through nested domains) and the type modifier that applies."""
    t = pgtype
    for _ in range(32):
        if t.kind != "d" or t.base is None:
            break
        if typmod < 0:
            typmod = t.base_typmod
        t = t.base
    return t, typmod


def _is_pg_catalog(t: PgType) -> bool:
    return t.schema == "pg_catalog"


def _precision(typmod: int) -> int:
    """Fractional-second digits of a time or timestamp type modifier (6 when unset)."""
    return typmod if 0 <= typmod <= 6 else 6


def _numeric_typmod(typmod: int) -> tuple[int | None, int | None]:
    """``(precision, scale)`` of a numeric type modifier; ``(None, None)`` when unconstrained."""
    if typmod < 4:
        return None, None
    t = typmod - 4
    scale = ((t & 0x7FF) ^ 1024) - 1024  # an 11-bit signed scale (negative scales since PostgreSQL 15)
    return (t >> 16) & 0xFFFF, scale


def _kind(pgtype: PgType, typmod: int, modes: PgTypeModes, optional: bool) -> _Kind:
    t, typmod = _resolve(pgtype, typmod)
    if t.element is not None:
        elem = _kind(t.element, typmod, modes, True)
        return _Kind(
            elem.native + "[]",
            Logical.ARRAY,
            array_wire(elem.wire, optional=optional),
            elem.length,
            elem.precision,
            elem.scale,
            elem.enum_values,
            2003,
            elem.unknown,
        )
    if t.kind == "e":
        labels = t.labels or ()
        return _Kind(t.name, Logical.ENUM, enum_wire(labels, optional=optional), enum_values=labels, jdbc=12)
    if t.kind == "r":
        return _Kind(t.name, Logical.STRING, string_wire(optional=optional), jdbc=1111)
    name = t.name
    if not _is_pg_catalog(t):
        if name == "citext":
            return _Kind(name, Logical.TEXT, string_wire(optional=optional), jdbc=12)
        if name == "hstore":
            return _Kind(name, Logical.JSON, json_wire(optional=optional), jdbc=1111)
        if name == "ltree":
            return _Kind(
                name, Logical.STRING, Wire("string", "io.debezium.data.Ltree", 1, optional=optional), jdbc=1111
            )
        return _Kind(name, Logical.UNKNOWN, string_wire(optional=optional), jdbc=1111, unknown=True)
    jdbc = _JDBC.get(name, 1111)

    def k(native: str, logical: Logical, wire: Wire, **kw: Any) -> _Kind:
        return _Kind(native, logical, wire, jdbc=jdbc, **kw)

    if name == "bool":
        return k("bool", Logical.BOOLEAN, bool_wire(optional=optional))
    if name == "int2":
        return k("int2", Logical.INT16, int_wire(16, optional=optional))
    if name == "int4":
        return k("int4", Logical.INT32, int_wire(32, optional=optional))
    if name in ("int8", "oid"):
        return k(name, Logical.INT64, int_wire(64, optional=optional))
    if name == "float4":
        return k("float4", Logical.FLOAT32, float_wire(32, optional=optional))
    if name == "float8":
        return k("float8", Logical.FLOAT64, float_wire(64, optional=optional))
    if name == "numeric":
        p, s = _numeric_typmod(typmod)
        if p is None or s is None:
            if modes.decimal is DecimalHandling.PRECISE:
                return k("numeric", Logical.DECIMAL, variable_scale_decimal_wire(optional=optional))
            return k("numeric", Logical.DECIMAL, decimal_wire(0, 0, modes.decimal, optional=optional))
        return k(
            f"numeric({p},{s})",
            Logical.DECIMAL,
            decimal_wire(p, s, modes.decimal, optional=optional),
            precision=p,
            scale=s,
        )
    if name == "money":
        digits = modes.money_digits
        if modes.decimal is DecimalHandling.PRECISE:
            wire = Wire("bytes", SemanticName.DECIMAL, 1, {"scale": str(digits)}, optional=optional)
        else:
            wire = decimal_wire(0, digits, modes.decimal, optional=optional)
        return k("money", Logical.MONEY, wire, scale=digits)
    if name in ("bpchar", "varchar"):
        n = typmod - 4 if typmod >= 4 else None
        return k(f"{name}({n})" if n is not None else name, Logical.STRING, string_wire(optional=optional), length=n)
    if name == "char":  # the one-byte "char"
        return k("char", Logical.STRING, string_wire(optional=optional), length=1)
    if name == "name":
        return k("name", Logical.STRING, string_wire(optional=optional), length=63)
    if name == "text":
        return k("text", Logical.TEXT, string_wire(optional=optional))
    if name == "bytea":
        return k("bytea", Logical.BYTES, bytes_wire(modes.binary, optional=optional))
    if name == "date":
        return k("date", Logical.DATE, date_wire(modes.time, optional=optional))
    if name == "time":
        p = _precision(typmod)
        return k(_sized("time", typmod), Logical.TIME, time_wire(p, modes.time, optional=optional), precision=p)
    if name == "timetz":
        p = _precision(typmod)
        return k(_sized("timetz", typmod), Logical.TIMETZ, zoned_time_wire(optional=optional), precision=p)
    if name == "timestamp":
        p = _precision(typmod)
        wire = timestamp_wire(p, modes.time, optional=optional)
        return k(_sized("timestamp", typmod), Logical.TIMESTAMP, wire, precision=p)
    if name == "timestamptz":
        p = _precision(typmod)
        return k(
            _sized("timestamptz", typmod), Logical.TIMESTAMPTZ, zoned_timestamp_wire(optional=optional), precision=p
        )
    if name == "interval":
        return k("interval", Logical.INTERVAL, interval_wire(modes.interval, optional=optional))
    if name == "uuid":
        return k("uuid", Logical.UUID, uuid_wire(optional=optional))
    if name in ("json", "jsonb"):
        return k(name, Logical.JSON, json_wire(optional=optional))
    if name == "xml":
        return k("xml", Logical.XML, xml_wire(optional=optional))
    if name == "inet":
        return k("inet", Logical.INET, string_wire(optional=optional))
    if name == "cidr":
        return k("cidr", Logical.CIDR, string_wire(optional=optional))
    if name in ("macaddr", "macaddr8"):
        return k(name, Logical.MACADDR, string_wire(optional=optional))
    if name in ("bit", "varbit"):
        varying = name == "varbit"
        n = typmod if typmod > 0 else (VARBIT_UNBOUNDED if varying else 1)
        native = f"{name}({n})" if typmod > 0 else name
        if n == 1:
            return k(native, Logical.BOOLEAN, bool_wire(optional=optional), length=1)
        wire = Wire("bytes", SemanticName.BITS, 1, {"length": str(n)}, optional=optional)
        return k(native, Logical.BITS, wire, length=n)
    return _Kind(name, Logical.UNKNOWN, string_wire(optional=optional), jdbc=1111, unknown=True)


def _sized(name: str, typmod: int) -> str:
    return f"{name}({typmod})" if typmod >= 0 else name


def is_unknown(pgtype: PgType) -> bool:
    """True when cdc has no mapping for ``pgtype`` (or its array element): its values pass as text."""
    return _kind(pgtype, -1, _DEFAULT_MODES, True).unknown


def pg_column(
    name: str,
    pgtype: PgType,
    typmod: int,
    *,
    nullable: bool = True,
    position: int = 0,
    modes: PgTypeModes | None = None,
    default: str | None = None,
) -> Column:
    """The :class:`~cdc.events.Column` of a column of type ``pgtype`` with type modifier ``typmod``
    (``atttypmod``, -1 for none). ``native_type`` is the type's name with its modifiers
    (``varchar(20)``, ``numeric(10,2)``, ``timestamptz(3)``, ``int4[]``; a domain shows its
    base type, an enum its own name)."""
    kind = _kind(pgtype, typmod, modes or _DEFAULT_MODES, nullable)
    return Column(
        name=name,
        native_type=kind.native,
        logical=kind.logical,
        wire=kind.wire,
        nullable=nullable,
        length=kind.length,
        precision=kind.precision,
        scale=kind.scale,
        position=position,
        default=default,
        enum_values=kind.enum_values,
        jdbc_type=kind.jdbc,
    )


_DEFAULT_MODES: Final = PgTypeModes()


# ---------------------------------------------------------------------------------------------
# Text converters
# ---------------------------------------------------------------------------------------------


def text_converter(column: Column, pgtype: PgType, modes: PgTypeModes | None = None) -> TextConverter:
    """The function from ``pgtype``'s text (as :func:`session_options` makes the server write it) to
    the payload value for ``column`` (made by :func:`pg_column` for the same type).

    The function never sees None (callers map NULL themselves). It raises ``ValueError`` (or
    :class:`UnrepresentableValue`) for text it cannot read.
    """
    digits = 6 if column.precision is None else column.precision
    return _converter(column.wire, pgtype, modes or _DEFAULT_MODES, digits)


def _converter(wire: Wire, pgtype: PgType, modes: PgTypeModes, digits: int) -> TextConverter:
    t, _ = _resolve(pgtype, -1)
    if t.element is not None:
        items = wire.items or Wire("string")
        element = _converter(items, t.element, modes, digits)
        delimiter = t.element.delimiter or ","
        return _array_converter(element, delimiter)
    name = wire.name
    kind = wire.type
    tname = t.name if (_is_pg_catalog(t) or t.kind != "b") else f"ext:{t.name}"
    if name is None:
        if kind == "boolean":
            return _bit_bool if tname in ("bit", "varbit") else _bool
        if kind in ("int16", "int32", "int64"):
            return int
        if kind == "float32":
            return _float32
        if kind == "float64":
            return _money_double if tname == "money" else _float64
    if tname in ("numeric", "money"):
        return _decimal_converter(wire, modes, money=tname == "money")
    if tname == "bytea":
        return _bytea_converter(modes.binary)
    if name in (SemanticName.DATE, SemanticName.CONNECT_DATE):
        return _date_days
    if name in (SemanticName.TIME, SemanticName.CONNECT_TIME):
        return _time_millis
    if name == SemanticName.MICRO_TIME:
        return _time_micros
    if name == SemanticName.ZONED_TIME:
        return _timetz_text
    if name in (SemanticName.TIMESTAMP, SemanticName.CONNECT_TIMESTAMP):
        return _timestamp_millis
    if name == SemanticName.MICRO_TIMESTAMP:
        return _timestamp_micros
    if name == SemanticName.ZONED_TIMESTAMP:
        return _timestamptz_converter(digits)
    if name == SemanticName.MICRO_DURATION:
        return _interval_micros
    if name == SemanticName.INTERVAL:
        return _interval_text
    if name == SemanticName.BITS:
        length = int((wire.parameters or {}).get("length", "0"))
        return _varbit_bytes if tname == "varbit" else _bit_converter(length)
    if tname == "ext:hstore":
        return _hstore_json
    return _identity


def _identity(text: str) -> str:
    return text


#: The converter of types whose text is their payload value (callers may skip calling it).
IDENTITY: Final[TextConverter] = _identity


def _bool(text: str) -> bool:
    if text == "t":
        return True
    if text == "f":
        return False
    raise ValueError("not a boolean")


def _bit_bool(text: str) -> bool:
    if text == "1":
        return True
    if text == "0":
        return False
    raise ValueError("not a bit")


_FLOAT_SPECIAL: Final = frozenset({"NaN", "Infinity", "-Infinity"})
_F32: Final = struct.Struct("<f")


def _float64(text: str) -> float | str:
    if text in _FLOAT_SPECIAL:
        return text
    return float(text)


def _float32(text: str) -> float | str:
    """float4 text as the shortest decimal that reads back to the same float32 (Java's ``Float.toString``)."""
    if text in _FLOAT_SPECIAL:
        return text
    value = float(text)
    if len(text) <= 9 or value == 0.0:  # the server's shortest form already (PostgreSQL ≥ 12)
        return value
    f32: float = _F32.unpack(_F32.pack(value))[0]
    for digits in range(6, 10):
        candidate = float(f"{f32:.{digits}g}")
        if _F32.unpack(_F32.pack(candidate))[0] == f32:
            return candidate
    return f32  # pragma: no cover - nine digits always round-trip a float32


# --- decimals -------------------------------------------------------------------------------

_NUMERIC_SPECIAL: Final[Mapping[str, str]] = {
    "NaN": "NAN",
    "Infinity": "POSITIVE_INFINITY",
    "-Infinity": "NEGATIVE_INFINITY",
}
_DOUBLE_SPECIAL: Final[Mapping[str, str]] = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity"}


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _unscaled_b64(unscaled: int) -> str:
    """Java's ``BigInteger.toByteArray()`` (minimal big-endian two's complement), base64."""
    length = (unscaled if unscaled >= 0 else ~unscaled).bit_length() // 8 + 1
    return _b64(unscaled.to_bytes(length, "big", signed=True))


def _money_text(text: str) -> str:
    """``-$1,234.56`` (money under ``lc_monetary=C``) as ``-1234.56``."""
    negative = text.startswith("-") or text.startswith("(")
    digits = "".join(c for c in text if c.isdigit() or c == ".")
    if not digits or not digits.strip("."):
        raise ValueError("not a money value")
    return "-" + digits if negative else digits


def _refuse_special() -> NoReturn:
    raise UnrepresentableValue(
        "NaN and Infinity have no precise decimal form (Debezium refuses them too); "
        "set source.decimal_handling to string or double to capture them"
    )


def _decimal_converter(wire: Wire, modes: PgTypeModes, *, money: bool) -> TextConverter:
    mode = modes.decimal
    prepare: Callable[[str], str] = _money_text if money else _identity
    if mode is DecimalHandling.STRING:
        if money:
            return _money_text

        def to_string(text: str) -> str:
            special = _NUMERIC_SPECIAL.get(text)
            if special is not None:
                return special
            if text.startswith("-") and not text.strip("-0."):
                return text[1:]  # a negative zero has no sign in Java's BigDecimal
            return text

        return to_string
    if mode is DecimalHandling.DOUBLE:
        if money:
            return _money_double

        def to_double(text: str) -> float | str:
            special = _DOUBLE_SPECIAL.get(text)
            if special is not None:
                return special
            return float(text)

        return to_double
    if wire.type == "struct":  # VariableScaleDecimal

        def to_variable(text: str) -> dict[str, Any]:
            if text in _NUMERIC_SPECIAL:
                _refuse_special()
            whole, _, frac = text.partition(".")
            frac = frac.rstrip("0")  # Debezium strips trailing zeros (a negative scale becomes 0)
            digits = whole + frac
            if not digits.lstrip("+-").isdigit():
                raise ValueError("not a decimal")
            return {"scale": len(frac), "value": _unscaled_b64(int(digits))}

        return to_variable
    scale = int((wire.parameters or {}).get("scale", "0"))
    from connectors.postgres.pgoutput import SPEEDUPS

    fast = SPEEDUPS.precise_b64 if SPEEDUPS is not None and not money else None

    def to_precise(text: str) -> str:
        if fast is not None:
            done: str | None = fast(text, scale)
            if done is not None:
                return done
        text = prepare(text)
        whole, dot, frac = text.partition(".")
        if dot and len(frac) == scale and whole and whole not in ("-", "+"):
            return _unscaled_b64(int(whole + frac))
        if not dot and scale == 0 and text not in _NUMERIC_SPECIAL:
            return _unscaled_b64(int(text))
        if text in _NUMERIC_SPECIAL:
            _refuse_special()
        try:
            shifted = Decimal(text).scaleb(scale)
        except InvalidOperation as exc:
            raise ValueError("not a decimal") from exc
        unscaled = int(shifted)
        if shifted != unscaled:
            raise ValueError(f"a value has more than {scale} fraction digits")
        return _unscaled_b64(unscaled)

    return to_precise


def _money_double(text: str) -> float:
    return float(_money_text(text))


# --- bytea ----------------------------------------------------------------------------------


def _bytea_bytes(text: str) -> bytes:
    if not text.startswith("\\x"):
        raise ValueError("bytea is not in hex format (bytea_output = hex)")
    return bytes.fromhex(text[2:])


def _bytea_converter(mode: BinaryHandling) -> TextConverter:
    if mode is BinaryHandling.HEX:

        def to_hex(text: str) -> str:
            if not text.startswith("\\x"):
                raise ValueError("bytea is not in hex format (bytea_output = hex)")
            return text[2:].lower()

        return to_hex
    if mode is BinaryHandling.BASE64_URL_SAFE:
        return lambda text: _b64(_bytea_bytes(text)).replace("+", "-").replace("/", "_")
    return lambda text: _b64(_bytea_bytes(text))  # bytes (base64 in JSON) and base64


# --- dates and times ------------------------------------------------------------------------

_US_PER_SECOND: Final = 1_000_000
_time_fromisoformat: Final = time.fromisoformat
_US_PER_DAY: Final = 86_400 * _US_PER_SECOND
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


def _date_part(text: str) -> int:
    """Epoch days of ``YYYY-MM-DD`` (any number of year digits) followed by nothing."""
    if len(text) == 10 and text[4] == "-":
        try:
            return date.fromisoformat(text).toordinal() - _EPOCH_ORDINAL
        except ValueError:
            pass  # year 0000 and other forms the fast path does not take
    y, m, d = text.split("-")
    if not (y.isdigit() and m.isdigit() and d.isdigit()):
        raise ValueError("not a date")
    return days_from_civil(int(y), int(m), int(d))


def _split_bc(text: str) -> tuple[str, bool]:
    if text.endswith(" BC"):
        return text[:-3], True
    return text, False


def _bc_year_days(date_text: str) -> int:
    """Epoch days of a date ``YYYY-MM-DD`` that PostgreSQL marked BC (year n BC is astronomical 1-n)."""
    y, m, d = date_text.split("-")
    if not (y.isdigit() and m.isdigit() and d.isdigit()):
        raise ValueError("not a date")
    return days_from_civil(1 - int(y), int(m), int(d))


def _date_days(text: str) -> int:
    if text == "infinity":
        return DATE_POSITIVE_INFINITY_DAYS
    if text == "-infinity":
        return DATE_NEGATIVE_INFINITY_DAYS
    body, bc = _split_bc(text)
    days = _bc_year_days(body) if bc else _date_part(body)
    if not -(2**31) <= days < 2**31:
        raise ValueError("the date is out of range for io.debezium.time.Date")
    return days


def _clock_micros(text: str) -> int:
    """``HH:MM:SS[.ffffff]`` (hour up to 24) as microseconds."""
    if (len(text) == 15 and text[8] == ".") or len(text) == 8:  # HH:MM:SS[.ffffff], the common cases
        try:
            t = _time_fromisoformat(text)
            return ((t.hour * 60 + t.minute) * 60 + t.second) * _US_PER_SECOND + t.microsecond
        except ValueError:
            pass
    head, dot, frac = text.partition(".")
    parts = head.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or (dot and not frac.isdigit()) or len(frac) > 6:
        raise ValueError("not a time")
    h, mi, s = int(parts[0]), int(parts[1]), int(parts[2])
    if h > 24 or mi > 59 or s > 60:
        raise ValueError("time of day out of range")
    return ((h * 60 + mi) * 60 + s) * _US_PER_SECOND + (int(frac.ljust(6, "0")) if frac else 0)


def _time_micros(text: str) -> int:
    return _clock_micros(text)


def _time_millis(text: str) -> int:
    return _clock_micros(text) // 1000


def _split_offset(text: str) -> tuple[str, int]:
    """``clock+HH[:MM[:SS]]`` → ``(clock, offset in seconds)``."""
    for i in range(len(text) - 1, 0, -1):
        c = text[i]
        if c in "+-":
            clock, zone = text[:i], text[i + 1 :]
            fields = zone.split(":")
            if not 1 <= len(fields) <= 3 or not all(f.isdigit() for f in fields):
                break
            seconds = int(fields[0]) * 3600 + (int(fields[1]) * 60 if len(fields) > 1 else 0)
            seconds += int(fields[2]) if len(fields) > 2 else 0
            return clock, -seconds if c == "-" else seconds
    raise ValueError("no UTC offset")


def _clock_text(micros: int) -> str:
    """Microseconds of a day as ``HH:MM:SS[.f]`` with the fraction trimmed (Java's ISO_LOCAL_TIME)."""
    seconds, frac = divmod(micros, _US_PER_SECOND)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    head = f"{hour:02d}:{minute:02d}:{second:02d}"
    if not frac:
        return head
    return f"{head}.{frac:06d}".rstrip("0")


def _timetz_text(text: str) -> str:
    clock, offset = _split_offset(text)
    micros = _clock_micros(clock)
    if micros == _US_PER_DAY and offset == 0:
        return "24:00:00Z"  # PostgreSQL's end-of-day boundary, kept as Debezium does
    micros = (micros - offset * _US_PER_SECOND) % _US_PER_DAY
    return _clock_text(micros) + "Z"


def _timestamp_parts(text: str) -> tuple[int, int]:
    """``YYYY-MM-DD HH:MM:SS[.ffffff][ BC]`` → (epoch days, microseconds of the day)."""
    body, bc = _split_bc(text)
    date_text, sep, clock = body.partition(" ")
    if not sep:
        raise ValueError("not a timestamp")
    days = _bc_year_days(date_text) if bc else _date_part(date_text)
    return days, _clock_micros(clock)


_EPOCH_DATETIME: Final = datetime(1970, 1, 1)
_ONE_US: Final = timedelta(microseconds=1)
_fromisoformat: Final = datetime.fromisoformat


def _fast_timestamp() -> Callable[[str], int | None] | None:
    from connectors.postgres.pgoutput import SPEEDUPS

    return SPEEDUPS.timestamp_micros if SPEEDUPS is not None else None


_c_timestamp: Final = _fast_timestamp()


def _timestamp_micros(text: str) -> int:
    if _c_timestamp is not None:
        fast = _c_timestamp(text)
        if fast is not None:
            return fast
    if len(text) <= 26 and text[-1] != "C" and text[10:11] == " ":
        try:  # the common case (years 1..9999) in C; BC, later years and malformed text take the long way
            return (_fromisoformat(text) - _EPOCH_DATETIME) // _ONE_US
        except ValueError:
            pass
    if text == "infinity":
        return TIMESTAMP_POSITIVE_INFINITY_US
    if text == "-infinity":
        return TIMESTAMP_NEGATIVE_INFINITY_US
    days, micros = _timestamp_parts(text)
    value = days * _US_PER_DAY + micros
    if not -(2**63) <= value < 2**63:
        raise ValueError("the timestamp is out of range")
    return value


def _timestamp_millis(text: str) -> int:
    return _timestamp_micros(text) // 1000


def _year_text(year: int) -> str:
    """A year as Java's ISO_LOCAL_DATE writes it: four digits, a sign beyond 0000..9999."""
    if 0 <= year <= 9999:
        return f"{year:04d}"
    return f"{'-' if year < 0 else '+'}{abs(year):04d}"


def _timestamptz_converter(digits: int) -> TextConverter:
    """timestamptz text as a ZonedTimestamp in UTC with ``digits`` fraction digits (trimmed when 0)."""

    def convert(text: str) -> str:
        n = len(text)
        if (
            text.endswith("+00")  # UTC, as the session pins it: only the layout changes
            and 22 <= n <= 29
            and text[4] == "-"
            and text[10] == " "
            and text[13] == ":"
            and text[16] == ":"
            and (n == 22 or text[19] == ".")
            and text[:4].isdigit()
        ):
            fraction = text[20:-3]
            if not digits or digits > 9:
                fraction = fraction.rstrip("0")
                return f"{text[:10]}T{text[11:19]}.{fraction}Z" if fraction else f"{text[:10]}T{text[11:19]}Z"
            return f"{text[:10]}T{text[11:19]}.{fraction[:digits].ljust(digits, '0')}Z"
        if text in ("infinity", "-infinity"):
            return text
        body, bc = _split_bc(text)
        date_text, sep, rest = body.partition(" ")
        if not sep:
            raise ValueError("not a timestamp with time zone")
        clock, offset = _split_offset(rest)
        days = _bc_year_days(date_text) if bc else _date_part(date_text)
        micros = days * _US_PER_DAY + _clock_micros(clock) - offset * _US_PER_SECOND
        day, in_day = divmod(micros, _US_PER_DAY)
        year, month, dom = civil_from_days(day)
        seconds, frac = divmod(in_day, _US_PER_SECOND)
        minutes, second = divmod(seconds, 60)
        hour, minute = divmod(minutes, 60)
        head = f"{_year_text(year)}-{month:02d}-{dom:02d}T{hour:02d}:{minute:02d}:{second:02d}"
        if digits <= 0 or digits > 9:
            return (f"{head}.{frac:06d}".rstrip("0") if frac else head) + "Z"
        return f"{head}.{f'{frac:06d}'[:digits].ljust(digits, '0')}Z"

    return convert


# --- intervals ------------------------------------------------------------------------------


def _parse_iso_interval(text: str) -> PgInterval:
    """PostgreSQL's ``IntervalStyle = iso_8601`` output (``P1Y2M3DT4H5M6.789S``, ``P-1MT-1S``)."""
    if not text.startswith("P") or len(text) < 3:
        raise ValueError("not an ISO-8601 interval")
    months = days = micros = 0
    in_time = False
    number = ""
    for c in text[1:]:
        if c == "T":
            if in_time or number:
                raise ValueError("not an ISO-8601 interval")
            in_time = True
        elif c.isdigit() or c in "+-.":
            number += c
        else:
            if not number or number in "+-":
                raise ValueError("not an ISO-8601 interval")
            if c == "S" and in_time:
                negative = number.startswith("-")
                whole, _, frac = number.lstrip("+-").partition(".")
                if len(frac) > 6 or not whole.isdigit() or (frac and not frac.isdigit()):
                    raise ValueError("not an ISO-8601 interval")
                us = int(whole) * _US_PER_SECOND + (int(frac.ljust(6, "0")) if frac else 0)
                micros += -us if negative else us
            else:
                value = int(number)
                if in_time:
                    if c == "H":
                        micros += value * 3600 * _US_PER_SECOND
                    elif c == "M":
                        micros += value * 60 * _US_PER_SECOND
                    else:
                        raise ValueError("not an ISO-8601 interval")
                elif c == "Y":
                    months += value * 12
                elif c == "M":
                    months += value
                elif c == "W":
                    days += value * 7
                elif c == "D":
                    days += value
                else:
                    raise ValueError("not an ISO-8601 interval")
            number = ""
    if number or text.endswith("T"):
        raise ValueError("not an ISO-8601 interval")
    return PgInterval(months, days, micros)


def _interval_micros(text: str) -> int:
    value = _parse_iso_interval(text).approx_micros()
    if not -(2**63) <= value < 2**63:
        raise ValueError("the interval is out of range for io.debezium.time.MicroDuration")
    return value


def _interval_text(text: str) -> str:
    return _parse_iso_interval(text).isoformat()


# --- bits -----------------------------------------------------------------------------------


def _bits_int(text: str) -> int:
    if text.strip("01"):
        raise ValueError("a bit string holds only 0 and 1")
    return int(text, 2) if text else 0


def _bit_converter(length: int) -> TextConverter:
    size = (length + 7) // 8

    def to_bits(text: str) -> str:
        return _b64(_bits_int(text).to_bytes(size, "little"))

    return to_bits


def _varbit_bytes(text: str) -> str:
    number = _bits_int(text)
    return _b64(number.to_bytes((number.bit_length() + 7) // 8, "little"))


# --- arrays ---------------------------------------------------------------------------------


def _array_converter(element: TextConverter, delimiter: str) -> TextConverter:
    def convert(text: str) -> list[Any]:
        return parse_array(text, element, delimiter)

    return convert


def parse_array(text: str, element: Callable[[str], Any] = _identity, delimiter: str = ",") -> list[Any]:
    """An array's text (``{1,NULL,"a b"}``, ``{{1,2},{3,4}}``, ``[0:1]={1,2}``) as nested lists,
    each element through ``element`` (NULL is None, never passed to it)."""
    n = len(text)
    i = 0
    if text.startswith("["):  # explicit bounds: [lo:hi]...=
        i = text.find("=") + 1
        if i <= 0:
            raise ValueError("not an array")
    if i >= n or text[i] != "{":
        raise ValueError("not an array")
    stack: list[list[Any]] = []
    current: list[Any] | None = None
    result: list[Any] | None = None
    while i < n:
        c = text[i]
        if c == "{":
            new: list[Any] = []
            if current is not None:
                current.append(new)
                stack.append(current)
            elif result is not None:
                raise ValueError("not an array")
            current = new
            i += 1
        elif c == "}":
            if current is None:
                raise ValueError("not an array")
            if stack:
                current = stack.pop()
            else:
                result, current = current, None
            i += 1
        elif c == delimiter or c in " \t\n\r\v\f":
            i += 1
        elif current is None:
            raise ValueError("not an array")
        elif c == '"':
            j = i + 1
            buf: list[str] = []
            while True:
                q = text.find('"', j)
                b = text.find("\\", j, q if q >= 0 else n)
                if q < 0:
                    raise ValueError("unterminated quoted array element")
                if b < 0:
                    buf.append(text[j:q])
                    j = q + 1
                    break
                buf.append(text[j:b])
                buf.append(text[b + 1 : b + 2])
                j = b + 2
            current.append(element("".join(buf)))
            i = j
        else:
            j = i
            while j < n and text[j] != delimiter and text[j] != "}":
                j += 1
            token = text[i:j]
            if "\\" in token:
                token = _unescape(token)
            current.append(None if token == "NULL" else element(token))
            i = j
    if result is None or current is not None:
        raise ValueError("not an array")
    return result


def _unescape(token: str) -> str:
    """An unquoted array element with backslash escapes resolved."""
    out: list[str] = []
    k = 0
    while k < len(token):
        if token[k] == "\\" and k + 1 < len(token):
            k += 1
        out.append(token[k])
        k += 1
    return "".join(out)


# --- hstore ---------------------------------------------------------------------------------


def _hstore_token(text: str, i: int) -> tuple[str | None, int]:
    n = len(text)
    while i < n and text[i] == " ":
        i += 1
    if text.startswith("NULL", i):
        return None, i + 4
    if i >= n or text[i] != '"':
        raise ValueError("not an hstore value")
    i += 1
    buf: list[str] = []
    while i < n and text[i] != '"':
        if text[i] == "\\":
            i += 1
        if i < n:
            buf.append(text[i])
        i += 1
    if i >= n:
        raise ValueError("not an hstore value")
    return "".join(buf), i + 1


def _hstore_json(text: str) -> str:
    """hstore text (``"a"=>"1", "b"=>NULL``) as compact JSON (Debezium's ``hstore.handling.mode=json``)."""
    out: dict[str, str | None] = {}
    i, n = 0, len(text)
    while i < n:
        key, i = _hstore_token(text, i)
        if key is None or not text.startswith("=>", i):
            raise ValueError("not an hstore value")
        value, i = _hstore_token(text, i + 2)
        out[key] = value
        while i < n and text[i] == " ":
            i += 1
        if i < n:
            if text[i] != ",":
                raise ValueError("not an hstore value")
            i += 1
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False)
