"""The cross-engine type mapping of the SQLAlchemy sink, and the value conversion that goes with it.

For every source :class:`~cdc.events.Column` (its portable ``logical`` kind, its ``native_type``,
its wire schema, length, precision, scale and enum members) :func:`plan_table` chooses a target
column type per target dialect and compiles one function per column that turns the value as
it travels (Debezium's representation, :mod:`cdc.values`) into the Python value the driver binds
(psycopg, PyMySQL, sqlite3). Plans are built once per (table schema version, target) and reused
for every row. The rule is **lossless first**: a target type that holds every value the source
type can hold, and where no such type exists, a check that refuses the value
(:class:`ValueRejected`, turned into :class:`~cdc.errors.TargetValueError` by the sink) rather
than letting the database round, truncate or pad it. Same-engine pairs (MySQL to MySQL,
PostgreSQL to PostgreSQL) keep the source type.

## Mapping

"MySQL" means MySQL 8 and MariaDB, as source or target. A type marked ᴹ is chosen when the source is
MySQL, one marked ᴾ when it is PostgreSQL; otherwise the unmarked one applies. p, s and n are the
source's precision, scale and length; "key:" is the type a primary-key column gets instead.

| logical: source types | PostgreSQL | MySQL / MariaDB | SQLite |
|---|---|---|---|
| boolean: BOOLEAN, BIT(1) | `boolean` | `BIT(1)`ᴹ, `BOOL` | `BOOLEAN` (0/1) |
| int8: TINYINT | `smallint` | `TINYINT` | `INTEGER` |
| int16: SMALLINT, TINYINT UNSIGNED | `smallint` | `TINYINT UNSIGNED`ᴹ, `SMALLINT` | `INTEGER` |
| int32: INT, MEDIUMINT, SMALLINT UNSIGNED | `integer` | the same typeᴹ, `INT` | `INTEGER` |
| int64: BIGINT, INT UNSIGNED | `bigint` | `INT UNSIGNED`ᴹ, `BIGINT` | `INTEGER` |
| uint64: BIGINT UNSIGNED | `numeric(20,0)` | `BIGINT UNSIGNED` | `TEXT` (exact digits) |
| float32: FLOAT, REAL | `real` | `FLOAT` | `REAL` |
| float64: DOUBLE | `double precision` | `DOUBLE` | `REAL` |
| decimal: DECIMAL(p,s), NUMERIC | `numeric(p,s)`; no p: `numeric` | `DECIMAL(p,s)`; see notes | `TEXT` (exact digits) |
| money: PG MONEY | `numeric(19,2)` | `DECIMAL(19,2)` | `TEXT` |
| string: CHAR(n), bpchar | `char(n)`ᴾ, `varchar(n)` | `CHAR(n)`ᴹ, `VARCHAR(n)` | `VARCHAR(n)` |
| string: VARCHAR(n) | `varchar(n)` | `VARCHAR(n)`, or a `TEXT` type (notes) | `VARCHAR(n)` |
| string: PG varchar | `varchar` | `LONGTEXT`; key: `VARCHAR(≤768)` | `TEXT` |
| text: TEXT, *TEXT, CITEXT | `text` | the same typeᴹ, `LONGTEXT`; key: `VARCHAR(≤768)` | `TEXT` |
| bytes: BINARY, VARBINARY, *BLOB, BYTEA | `bytea` | the same typeᴹ, `LONGBLOB`; key: `VARBINARY(≤3072)` | `BLOB` |
| date | `date` | `DATE` | `DATE` (ISO text) |
| time: MySQL TIME (±838 h), PG time | `interval`ᴹ, `time(p)`ᴾ | `TIME(p)` | `TIME` (text, notes) |
| timetz: PG TIMETZ | `time with time zone` | `TIME(6)` in UTC | `TIME` (text, UTC) |
| timestamp: DATETIME(p), timestamp(p) | `timestamp(p)` | `DATETIME(p)` | `DATETIME` (ISO text) |
| timestamptz: MySQL TIMESTAMP(p), timestamptz | `timestamptz(p)` | `DATETIME(p)` in UTC | `DATETIME` (UTC text) |
| interval: PG INTERVAL | `interval` | `VARCHAR(64)` ISO 8601 | `TEXT` ISO 8601 |
| year: MySQL YEAR | `smallint` | `YEAR`ᴹ, `SMALLINT` | `INTEGER` |
| uuid | `uuid` | `CHAR(36)` | `CHAR(36)` |
| json: JSON, JSONB | `json`ᴾ for json, `jsonb` | `JSON` | `TEXT` |
| xml | `xml` | `LONGTEXT` | `TEXT` |
| enum | `varchar(longest)`, `text` | `ENUM(...)`ᴹ, `VARCHAR(longest)` | `VARCHAR(longest)` |
| set: MySQL SET | `varchar(all members)` | `SET(...)`ᴹ | `VARCHAR(all members)` |
| bits: BIT(n), VARBIT | `bit(n)`, `bit varying(n)`ᴾ | `BIT(n)` to 64; beyond: `VARBINARY`, `BLOB` | `BLOB` |
| geometry | `bytea` (WKB or EWKB) | `GEOMETRY`ᴹ, `LONGBLOB` (WKB or EWKB) | `BLOB` (WKB or EWKB) |
| array: PG `type[]` | `element[]` | `JSON` (JSON text) | `TEXT` (JSON) |
| inet, cidr | `inet`, `cidr` | `VARCHAR(43)` | `VARCHAR(43)` |
| macaddr | `macaddr`, `macaddr8` | `VARCHAR(23)` | `VARCHAR(23)` |
| unknown | `text`; binary: `bytea` | `LONGTEXT`; binary: `LONGBLOB` | `TEXT`; binary: `BLOB` |

Notes on the choices:

* **MySQL TIME → PostgreSQL `interval`**: MySQL's TIME is a duration (−838:59:59 to 838:59:59),
  PostgreSQL's `time` is a time of day (00:00 to 24:00); only `interval` holds every value.
* **TIMESTAMPTZ → MySQL `DATETIME` in UTC** (MySQL's own `TIMESTAMP` included): MySQL's
  `TIMESTAMP` ends in 2038 and converts through the session time zone; the sink's sessions run
  in UTC and store the UTC wall time.
* **Decimals into MySQL**: `DECIMAL(p,s)` up to MySQL's limits (65 digits, 30 after the point);
  PostgreSQL's `numeric` without precision becomes `DECIMAL(65,30)` (MySQL has no variable-scale
  decimal) and `numeric(p,s)` with p > 65 becomes `DECIMAL(65,min(s,30))`. A value with more
  integer or fractional digits than that is refused, never rounded.
* **Time as text in SQLite**: `HH:MM:SS.ffffff` (SQLAlchemy's form), with a sign and more hour
  digits for MySQL durations that are negative or past a day.
* **Geometry**: WKB as the source sends it; with an SRID, PostGIS's EWKB (SRID flag and SRID in
  the header), so the SRID is kept. MySQL to MySQL keeps `GEOMETRY` (MySQL's SRID + WKB form).
* **SQLite decimals and BIGINT UNSIGNED as `TEXT`**: SQLite's numeric affinity keeps only 15
  significant digits of a decimal and 63 bits of an integer; text keeps the exact digits (plain
  notation, scale kept: `12.30`). SQLite compares such a column with a number as text.
* **MySQL string columns** use the binary, no-pad collation of utf8mb4 (`utf8mb4_nopad_bin`
  on MariaDB, `utf8mb4_0900_bin` on MySQL 8), so every two keys the source keeps apart
  (`'a'`/`'A'`, `'a'`/`'a '`) stay apart in the target. Key columns without a length get the
  longest `VARCHAR` the 3072-byte InnoDB key allows (shared among the key's columns), and when
  a table's `VARCHAR`s would pass MySQL's 65,535-byte row limit the longest non-key ones become
  `TEXT` types; either way, a longer value is refused.
* **Refused values** (:class:`ValueRejected`): a string or binary value longer than the target
  column; a decimal with more integer or fractional digits than the target (PostgreSQL and
  MySQL would round); NaN or infinity where the target has none (MySQL; NaN in SQLite, which
  stores it as NULL); an infinite date or timestamp, or one before year 1 or after 9999, into
  anything but PostgreSQL (which takes them as its own text: ``infinity``, ``0044-03-15 BC``);
  a date or datetime before year 1000 into MySQL from a non-MySQL source
  (MySQL's documented range); a fractional second finer than the target column's precision; a
  time outside the target's range; a NUL character in PostgreSQL text; an ENUM or SET value
  that is not a member; a bit string longer than the column.
* **Lossy by the source's choice**: `decimal_handling: double` values are rounded to the
  column's scale; `interval_handling: numeric` (Debezium's MicroDuration) has already turned
  months into 30.4375 days; Debezium's `bigint.unsigned.handling.mode=long` wraps values of
  2^63 and more to negative numbers, which the sink unwraps (a BIGINT UNSIGNED is never
  negative). Binary columns sent as text (`binary_handling: base64 | hex`) are decoded with the
  mode the sink is given (:attr:`TargetOptions.binary_handling`).
* Nullability and the primary key are kept; defaults, auto-increment, indexes other than the
  primary key, and foreign keys are not created.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_EVEN, Context, Decimal
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.dialects.mysql.base import MySQLDialect
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.types import TypeEngine, UserDefinedType

from cdc.errors import SchemaError
from cdc.events import Column, Logical, TableSchema, Wire
from cdc.values import (
    DATE_NEGATIVE_INFINITY_DAYS,
    DATE_POSITIVE_INFINITY_DAYS,
    TIMESTAMP_NEGATIVE_INFINITY_US,
    TIMESTAMP_POSITIVE_INFINITY_US,
    BinaryHandling,
    PgInterval,
    SemanticName,
    civil_from_days,
    converter_from_wire,
    decode_binary_string,
    decode_decimal_string,
)

__all__ = [
    "XML",
    "ColumnPlan",
    "Dialect",
    "SourceEngine",
    "TablePlan",
    "TargetOptions",
    "ValueRejected",
    "column_type",
    "dialect_name",
    "plan_column",
    "plan_table",
    "source_engine",
    "widens",
]

#: The target dialect families this module maps to (MariaDB is ``mysql``).
Dialect = Literal["postgresql", "mysql", "sqlite"]
#: The engine a column comes from; ``None`` when unknown (then nothing engine-specific is kept).
SourceEngine = Literal["mysql", "postgresql"]

#: A compiled conversion: payload value in, driver value out.
Convert = Callable[[Any], Any]


class ValueRejected(Exception):
    """A value the target column cannot hold. ``reason`` describes it without quoting the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def dialect_name(name: str) -> Dialect:
    """A SQLAlchemy dialect name (``postgresql``, ``mysql``, ``mariadb``, ``sqlite``) as a :data:`Dialect`."""
    lowered = name.lower()
    if lowered in ("postgresql", "postgres"):
        return "postgresql"
    if lowered in ("mysql", "mariadb"):
        return "mysql"
    if lowered == "sqlite":
        return "sqlite"
    raise SchemaError(f"the SQL sink does not know the target dialect {name!r}")


def source_engine(source: Mapping[str, Any] | None) -> SourceEngine | None:
    """The source engine named by an event's ``source`` block (``connector``: mysql, mariadb, postgresql)."""
    connector = (source or {}).get("connector")
    if connector in ("mysql", "mariadb"):
        return "mysql"
    if connector in ("postgresql", "postgres"):
        return "postgresql"
    return None


@dataclass(frozen=True)
class TargetOptions:
    """What a mapping depends on besides the column.

    ``mariadb`` and ``mysql_collation`` matter for MySQL targets only (the sink fills them in from
    the server it talks to); ``binary_handling`` decodes binary columns whose values travel as
    text (Debezium's ``binary.handling.mode`` base64 or hex, which a plain ``string`` schema does
    not tell apart).
    """

    dialect: Dialect
    source: SourceEngine | None = None
    mariadb: bool = True
    mysql_collation: str | None = "utf8mb4_nopad_bin"
    binary_handling: BinaryHandling = BinaryHandling.BASE64


@dataclass(frozen=True)
class ColumnPlan:
    """One column's target type and value conversion.

    ``convert`` takes the column's payload value (``None`` included) and returns what the
    driver binds; it raises :class:`ValueRejected` for a value the target cannot hold and
    :class:`~cdc.errors.DecodeError` for a payload value that does not match the wire schema.
    ``sql`` is the target type as DDL, for messages.
    """

    name: str
    column: Column
    type: TypeEngine[Any]
    convert: Convert
    nullable: bool
    sql: str
    max_chars: int | None = None
    adapt: Convert | None = None  # decoded (non-None) value → driver value; ``convert`` is decode, then this


@dataclass(frozen=True)
class TablePlan:
    """Every column of one table version mapped for one target."""

    schema: TableSchema
    options: TargetOptions
    columns: tuple[ColumnPlan, ...]
    key: tuple[str, ...]
    by_name: Mapping[str, ColumnPlan] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})

    def sa_columns(self) -> list[sa.Column[Any]]:
        """SQLAlchemy columns for a ``Table``: key columns NOT NULL and the primary key, others as the source."""
        out: list[sa.Column[Any]] = []
        for c in self.columns:
            is_key = c.name in self.key
            out.append(
                sa.Column(
                    c.name,
                    c.type,
                    primary_key=is_key,
                    nullable=not is_key and c.nullable,
                    autoincrement=False,
                )
            )
        return out

    def table_kwargs(self) -> dict[str, Any]:
        """Dialect options for ``Table(...)`` (MySQL: InnoDB, utf8mb4)."""
        if self.options.dialect == "mysql":
            return {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
        return {}


# ---------------------------------------------------------------------------------------------
# Widening an existing column
# ---------------------------------------------------------------------------------------------

#: Characters a MySQL text type holds (its bytes over utf8mb4's four; LONGTEXT: unbounded here).
_MYSQL_TEXT_CHARS: tuple[tuple[type[Any], float], ...] = (
    (mysql.TINYTEXT, 255 // 4),
    (mysql.MEDIUMTEXT, 16_777_215 // 4),
    (mysql.LONGTEXT, math.inf),
    (mysql.TINYBLOB, 255),
    (mysql.MEDIUMBLOB, 16_777_215),
    (mysql.LONGBLOB, math.inf),
)


def _family(t: TypeEngine[Any]) -> str | None:
    """What kind of values ``t`` holds, for :func:`widens`; None for a type it does not compare."""
    if isinstance(t, mysql.SET):
        return "set"
    if isinstance(t, sa.Enum):
        return "enum"
    if isinstance(t, sa.CHAR | sa.BINARY):
        return None  # fixed width: a longer one pads differently
    if isinstance(t, sa.String):
        return "string"
    if isinstance(t, sa.LargeBinary | sa.types._Binary):
        return "binary"
    if isinstance(t, sa.Integer):
        return "integer"
    if isinstance(t, sa.Float):
        return "float"
    if isinstance(t, sa.Numeric):
        return "numeric"
    if isinstance(t, mysql.TIMESTAMP):
        return None  # MySQL's TIMESTAMP converts to UTC and ends in 2038: not a DATETIME
    if isinstance(t, sa.DateTime):
        return "timestamptz" if getattr(t, "timezone", False) else "timestamp"
    if isinstance(t, sa.Time):
        return "timetz" if getattr(t, "timezone", False) else "time"
    return None


def _capacity(t: TypeEngine[Any]) -> float:
    """Characters (bytes for binary types) a string or binary type holds."""
    for cls, size in _MYSQL_TEXT_CHARS:
        if isinstance(t, cls):
            return size
    length = getattr(t, "length", None)
    if isinstance(t, mysql.TEXT | mysql.BLOB) and not length:
        return 65_535 // 4 if isinstance(t, mysql.TEXT) else 65_535
    return float(length) if length else math.inf


def _int_range(t: TypeEngine[Any]) -> tuple[int, int]:
    size = (
        8
        if isinstance(t, sa.BigInteger)
        else 2
        if isinstance(t, sa.SmallInteger)
        else 1
        if isinstance(t, mysql.TINYINT)
        else 3
        if isinstance(t, mysql.MEDIUMINT)
        else 4
    )
    if getattr(t, "unsigned", False):
        return 0, 2 ** (8 * size) - 1
    return -(2 ** (8 * size - 1)), 2 ** (8 * size - 1) - 1


def _digits(t: TypeEngine[Any]) -> tuple[float, float]:
    """(integer digits, fraction digits) of a numeric type; unconstrained: unbounded."""
    precision = getattr(t, "precision", None)
    if precision is None:
        return math.inf, math.inf
    scale = getattr(t, "scale", None) or 0
    return float(precision - scale), float(scale)


def _float_bytes(t: TypeEngine[Any]) -> int:
    if isinstance(t, sa.REAL) or (isinstance(t, mysql.FLOAT) and (t.precision or 0) <= 24):
        return 4
    if isinstance(t, sa.Double):
        return 8
    precision = getattr(t, "precision", None)
    return 4 if precision is not None and precision <= 24 else 8


def _fraction_digits(t: TypeEngine[Any]) -> int:
    """Fractional-second digits: MySQL's ``fsp`` (default 0), PostgreSQL's ``precision`` (default 6)."""
    if isinstance(t, mysql.DATETIME | mysql.TIME):
        return int(t.fsp or 0)
    precision = getattr(t, "precision", None)
    return int(precision) if precision is not None else 6


def widens(existing: TypeEngine[Any], planned: TypeEngine[Any]) -> bool:
    """True when a target column of type ``existing`` (as reflected) should become ``planned``: ``planned``
    holds every value ``existing`` does, and more. A longer string or binary, a larger integer (or an
    integer to a numeric with the digits), more numeric digits on either side of the point, a double
    for a real, more fractional seconds, more ENUM or SET members (the old ones kept, in order); an
    array whose elements widen so.

    Anything else is left as it is, however the source's column changed: a narrower type would lose
    data, and a value the existing column cannot hold is refused (with its table, column and key) when
    it comes."""
    if isinstance(existing, sa.ARRAY) or isinstance(planned, sa.ARRAY):
        return (
            isinstance(existing, sa.ARRAY)
            and isinstance(planned, sa.ARRAY)
            and widens(existing.item_type, planned.item_type)
        )
    old, new = _family(existing), _family(planned)
    if old is None or new is None:
        return False
    if old == "integer" and new == "numeric":
        lo, hi = _int_range(existing)
        whole, _ = _digits(planned)
        return whole >= len(str(max(abs(lo), hi)))
    if old != new:
        return False
    if old in ("string", "binary"):
        return _capacity(planned) > _capacity(existing)
    if old in ("enum", "set"):
        have = list(getattr(existing, "enums", None) or getattr(existing, "values", ()) or ())
        want = list(getattr(planned, "enums", None) or getattr(planned, "values", ()) or ())
        return len(want) > len(have) and want[: len(have)] == have
    if old == "integer":
        (lo, hi), (lo2, hi2) = _int_range(existing), _int_range(planned)
        return lo2 <= lo and hi2 >= hi and (lo2, hi2) != (lo, hi)
    if old == "numeric":
        (whole, frac), (whole2, frac2) = _digits(existing), _digits(planned)
        return whole2 >= whole and frac2 >= frac and (whole2, frac2) != (whole, frac)
    if old == "float":
        return _float_bytes(planned) > _float_bytes(existing)
    return _fraction_digits(planned) > _fraction_digits(existing)


# ---------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------

_NAME_LIMITS: Mapping[Dialect, tuple[int, str]] = {"postgresql": (63, "bytes"), "mysql": (64, "characters")}


def plan_table(schema: TableSchema, options: TargetOptions) -> TablePlan:
    """Map every column of ``schema`` for ``options.dialect``.

    For MySQL targets, key columns are sized to fit InnoDB's 3072-byte key and the longest
    ``VARCHAR`` columns become ``TEXT`` types while the row would exceed 65,535 bytes (values
    longer than the source's length are refused either way). Raises
    :class:`~cdc.errors.SchemaError` for a table without a primary key and for a column name the
    target cannot hold.
    """
    if not schema.primary_key:
        raise SchemaError(
            f"table {schema.table} has no primary key, so its rows cannot be applied idempotently",
            hint="give it one in the source, or name key columns in the source's key_columns setting",
        )
    limit = _NAME_LIMITS.get(options.dialect)
    if limit is not None:
        for c in schema.columns:
            size = len(c.name.encode()) if limit[1] == "bytes" else len(c.name)
            if size > limit[0]:
                raise SchemaError(
                    f"column {c.name!r} of {schema.table} has a name longer than {options.dialect} allows "
                    f"({limit[0]} {limit[1]})"
                )
    key = tuple(schema.primary_key)
    caps: dict[str, int] = _mysql_key_caps(schema, options) if options.dialect == "mysql" else {}
    plans = [plan_column(c, options, key=c.name in key, cap=caps.get(c.name)) for c in schema.columns]
    if options.dialect == "mysql":
        plans = _mysql_fit_row(plans, key, options)
    return TablePlan(schema, options, tuple(plans), key)


def column_type(column: Column, options: TargetOptions, *, key: bool = False) -> TypeEngine[Any]:
    """The SQLAlchemy type :func:`plan_column` chooses for ``column``."""
    return plan_column(column, options, key=key).type


def plan_column(column: Column, options: TargetOptions, *, key: bool = False, cap: int | None = None) -> ColumnPlan:
    """Map one column. ``key``: it is part of the primary key (MySQL needs a bounded type there);
    ``cap``: the most characters (bytes for binary) the target column may be declared with."""
    builder = {"postgresql": _pg, "mysql": _mysql, "sqlite": _sqlite}[options.dialect]
    spec = builder(_Col(column, options, key, cap))
    adapt = spec.adapt
    convert = _decoder(column, options, adapt)
    sql = spec.type.compile(dialect=_DIALECTS[options.dialect])
    return ColumnPlan(column.name, column, spec.type, convert, column.nullable, sql, spec.max_chars, adapt)


# ---------------------------------------------------------------------------------------------
# Internals: shared pieces
# ---------------------------------------------------------------------------------------------

_DIALECTS: Mapping[Dialect, sa.Dialect] = {
    "postgresql": PGDialect(),  # type: ignore[no-untyped-call]
    "mysql": MySQLDialect(),
    "sqlite": SQLiteDialect(),
}


@dataclass(frozen=True)
class _Spec:
    type: TypeEngine[Any]
    adapt: Convert | None = None  # applied to non-None decoded values
    max_chars: int | None = None


@dataclass(frozen=True)
class _Col:
    """A column being mapped, with what is derived from its native type."""

    c: Column
    opts: TargetOptions
    key: bool
    cap: int | None
    base: str = ""
    unsigned: bool = False

    def __post_init__(self) -> None:
        base, unsigned = _native_base(self.c.native_type)
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "unsigned", unsigned)

    @property
    def from_mysql(self) -> bool:
        return self.opts.source == "mysql"

    @property
    def from_pg(self) -> bool:
        return self.opts.source == "postgresql"


_FLAGS = frozenset({"UNSIGNED", "SIGNED", "ZEROFILL"})


def _native_base(native: str) -> tuple[str, bool]:
    """``DECIMAL(10,2) UNSIGNED`` → (``DECIMAL``, True); ``character varying(20)`` → (``CHARACTER VARYING``, False)."""
    text = re.sub(r"\([^)]*\)", " ", native)
    words = text.upper().split()
    unsigned = "UNSIGNED" in words
    return " ".join(w for w in words if w not in _FLAGS), unsigned


def _reject(reason: str) -> ValueRejected:
    return ValueRejected(reason)


def _decoder(column: Column, options: TargetOptions, adapt: Convert | None) -> Convert:
    """Payload value → driver value: decode (including the wire forms a plain schema cannot tell apart),
    then ``adapt`` a non-None result."""
    decode = _special_decoder(column, options)
    if decode is None:
        fast = _fast(column.wire, converter_from_wire(column.wire), adapt)
        return _pg_beyond_python(column.wire, fast) if options.dialect == "postgresql" else fast
    if adapt is None:
        return decode

    def convert(value: Any, _decode: Convert = decode, _adapt: Convert = adapt) -> Any:
        decoded = _decode(value)
        return None if decoded is None else _adapt(decoded)

    return convert


def _special_decoder(column: Column, options: TargetOptions) -> Convert | None:
    """Decoders for wire forms cdc.values reads differently than the column needs (None: use cdc.values)."""
    wire = column.wire
    logical = column.logical
    if logical in (Logical.DECIMAL, Logical.MONEY, Logical.UINT64) and wire.type == "string" and wire.name is None:

        def from_decimal_text(value: Any) -> Any:
            return None if value is None else decode_decimal_string(value)

        return from_decimal_text
    if logical in (Logical.DECIMAL, Logical.MONEY) and wire.type in ("float64", "float32") and wire.name is None:
        base = converter_from_wire(wire)
        scale = column.scale

        def from_double(value: Any) -> Any:
            number = base(value)
            if number is None:
                return None
            if not math.isfinite(number):
                return Decimal(str(number).replace("inf", "Infinity"))
            exact = Decimal(repr(number))
            if scale is None:
                return exact
            return exact.quantize(Decimal(1).scaleb(-scale, _WIDE), ROUND_HALF_EVEN, _WIDE)

        return from_double
    if logical is Logical.UINT64 and wire.type == "int64" and wire.name is None:
        base = converter_from_wire(wire)

        def from_long(value: Any) -> Any:
            number = base(value)
            return number + 2**64 if number is not None and number < 0 else number

        return from_long
    if logical is Logical.BYTES and wire.type == "string" and wire.name is None:
        mode = options.binary_handling

        def from_binary_text(value: Any) -> Any:
            return None if value is None else decode_binary_string(value, mode)

        return from_binary_text
    return None


_US_PER_DAY = 86_400_000_000
#: Epoch days and microseconds of the dates and times Python holds (years 1 to 9999).
_PY_DAYS = (
    date(1, 1, 1).toordinal() - date(1970, 1, 1).toordinal(),
    date(9999, 12, 31).toordinal() - date(1970, 1, 1).toordinal(),
)
_PY_MICROS = (_PY_DAYS[0] * _US_PER_DAY, (_PY_DAYS[1] + 1) * _US_PER_DAY - 1)
_ZONED_FAR = re.compile(r"([+-]?\d{4,})-(\d{2})-(\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?Z")


def _pg_ymd(days: int) -> tuple[str, bool]:
    """``YYYY-MM-DD`` of epoch days as PostgreSQL writes it, and whether it is BC (year 0 is 1 BC)."""
    year, month, day = civil_from_days(days)
    bc = year <= 0
    return f"{(1 - year) if bc else year:04d}-{month:02d}-{day:02d}", bc


def _pg_date_text(days: int) -> str:
    """PostgreSQL's text of a date outside Python's years (``0044-03-15 BC``, ``10000-01-01``)."""
    text, bc = _pg_ymd(days)
    return f"{text} BC" if bc else text


def _pg_timestamp_text(micros: int) -> str:
    """PostgreSQL's text of a timestamp outside Python's years."""
    days, us = divmod(micros, _US_PER_DAY)
    seconds, fraction = divmod(us, 1_000_000)
    day, bc = _pg_ymd(days)
    text = f"{day} {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{fraction:06d}"
    return f"{text} BC" if bc else text


def _beyond(
    bounds: tuple[int, int], infinities: tuple[int, int], text: Callable[[int], str], convert: Convert
) -> Convert:
    """``convert``, except for an integer outside ``bounds``: ``infinities`` (positive, negative) become
    ``infinity`` and ``-infinity``, any other one ``text`` of it."""
    low, high = bounds
    positive, negative = infinities

    def value(v: Any) -> Any:
        if type(v) is int and not low <= v <= high:
            if v == positive:
                return "infinity"
            if v == negative:
                return "-infinity"
            return text(v)
        return convert(v)

    return value


def _pg_beyond_python(wire: Wire, convert: Convert) -> Convert:
    """For a PostgreSQL target, ``convert`` with the dates and timestamps PostgreSQL has and Python does not:
    ``infinity`` and ``-infinity`` (Debezium's sentinel values of them) and years before 1 or after 9999
    (BC dates). They are bound as PostgreSQL's own text of them, which the server reads into the column;
    every other value goes to ``convert``. Other targets refuse them (``convert`` raises)."""
    name = wire.name
    if wire.type == "int32" and name in (SemanticName.DATE, SemanticName.CONNECT_DATE):
        infinities = (DATE_POSITIVE_INFINITY_DAYS, DATE_NEGATIVE_INFINITY_DAYS)
        return _beyond(_PY_DAYS, infinities, _pg_date_text, convert)
    if wire.type == "int64" and name in (
        SemanticName.TIMESTAMP,
        SemanticName.CONNECT_TIMESTAMP,
        SemanticName.MICRO_TIMESTAMP,
    ):
        per_us = 1 if name == SemanticName.MICRO_TIMESTAMP else 1000  # (the others count milliseconds)
        bounds = (_PY_MICROS[0] // per_us, _PY_MICROS[1] // per_us)
        infinities = (TIMESTAMP_POSITIVE_INFINITY_US // per_us, TIMESTAMP_NEGATIVE_INFINITY_US // per_us)
        return _beyond(bounds, infinities, lambda v: _pg_timestamp_text(v * per_us), convert)
    if wire.type == "string" and name == SemanticName.ZONED_TIMESTAMP:

        def zoned_value(value: Any) -> Any:
            if value in ("infinity", "-infinity"):
                return value
            if type(value) is str and (value[:1] in ("-", "+") or value.startswith("0000-")):  # years < 1, > 9999
                far = _ZONED_FAR.fullmatch(value)
                if far is not None:
                    year, month, day, clock, fraction = far.groups()
                    y = int(year)
                    zoned = f"{clock}{fraction or ''}+00"
                    if y > 0:
                        return f"{y:04d}-{month}-{day} {zoned}"
                    return f"{1 - y:04d}-{month}-{day} {zoned} BC"
            return convert(value)

        return zoned_value
    return convert


#: Decimal arithmetic without rounding limits (the default context keeps 28 digits).
_WIDE = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
_INT_BOUNDS: Mapping[str, int] = {"int8": 2**7, "int16": 2**15, "int32": 2**31, "int64": 2**63}
_PLAIN_TYPES: Mapping[str, type] = {"string": str, "boolean": bool, "float64": float}
_EPOCH = datetime(1970, 1, 1)
_EPOCH_ORDINAL = _EPOCH.toordinal()


def _fast(wire: Wire, slow: Convert, adapt: Convert | None) -> Convert:
    """``slow`` (cdc.values' guarded converter) then ``adapt``, with a fast path for common, well-formed values.

    The fast path decodes exactly as ``slow`` would; anything else (None, a wrong type, a value
    out of range) goes to ``slow``, which returns or raises as it always does.
    """
    slow_path: Convert = slow
    if adapt is not None:

        def slow_then_adapt(value: Any) -> Any:
            decoded = slow(value)
            return None if decoded is None else adapt(decoded)

        slow_path = slow_then_adapt

    then: Convert = adapt if adapt is not None else _identity
    name, kind = wire.name, wire.type
    bound = _INT_BOUNDS.get(kind)
    if name is None and bound is not None:
        low = -bound
        if adapt is None:

            def fast_int(value: Any) -> Any:
                if type(value) is int and low <= value < bound:
                    return value
                return slow(value)

            return fast_int

        def fast_int_adapt(value: Any) -> Any:
            if type(value) is int and low <= value < bound:
                return then(value)
            return slow_path(value)

        return fast_int_adapt
    plain = _PLAIN_TYPES.get(kind)
    if name is None and plain is not None:
        if adapt is None:

            def fast_plain(value: Any) -> Any:
                return value if type(value) is plain else slow(value)

            return fast_plain

        def fast_plain_adapt(value: Any) -> Any:
            return then(value) if type(value) is plain else slow_path(value)

        return fast_plain_adapt
    if kind == "int64" and name in (SemanticName.MICRO_TIMESTAMP, SemanticName.TIMESTAMP):
        unit = timedelta(microseconds=1) if name == SemanticName.MICRO_TIMESTAMP else timedelta(milliseconds=1)
        limit = 2**63

        def fast_timestamp(value: Any) -> Any:
            if type(value) is int and -limit <= value < limit:
                try:
                    decoded = _EPOCH + value * unit
                except OverflowError:
                    return slow_path(value)
                return then(decoded)
            return slow_path(value)

        return fast_timestamp
    if kind == "int32" and name in (SemanticName.DATE, SemanticName.CONNECT_DATE):

        def fast_date(value: Any) -> Any:
            if type(value) is int and -(2**31) <= value < 2**31:
                try:
                    decoded = date.fromordinal(value + _EPOCH_ORDINAL)
                except (ValueError, OverflowError):
                    return slow_path(value)
                return then(decoded)
            return slow_path(value)

        return fast_date
    return slow_path


def _identity(value: Any) -> Any:
    return value


def _check_chars(limit: int, sql: str) -> Convert:
    def check(value: Any) -> Any:
        if len(value) > limit:
            raise _reject(f"the value is {len(value)} characters long; the target column {sql} holds {limit}")
        return value

    return check


def _check_bytes(limit: int, sql: str) -> Convert:
    def check(value: Any) -> Any:
        if len(value) > limit:
            raise _reject(f"the value is {len(value)} bytes long; the target column {sql} holds {limit}")
        return value

    return check


def _chain(*steps: Convert | None) -> Convert | None:
    real = [s for s in steps if s is not None]
    if not real:
        return None
    if len(real) == 1:
        return real[0]
    if len(real) == 2:
        first, second = real

        def two(value: Any) -> Any:
            return second(first(value))

        return two

    def many(value: Any) -> Any:
        for step in real:
            value = step(value)
        return value

    return many


def _pg_text_check(limit: int | None, sql: str) -> Convert:
    """PostgreSQL text cannot hold NUL; a bounded column holds ``limit`` characters."""

    def check(value: Any) -> Any:
        if "\x00" in value:
            raise _reject(f"the value contains a NUL character, which PostgreSQL {sql} cannot hold")
        if limit is not None and len(value) > limit:
            raise _reject(f"the value is {len(value)} characters long; the target column {sql} holds {limit}")
        return value

    return check


def _decimal_digits(value: Decimal) -> tuple[int, int]:
    """(integer digits, fractional digits) of a finite decimal, trailing fractional zeros not counted."""
    if value.is_zero():
        return 0, 0
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    stripped = len(digits)
    while stripped > 1 and digits[stripped - 1] == 0 and exponent + (len(digits) - stripped) < 0:
        stripped -= 1
    exp = exponent + (len(digits) - stripped)
    fraction = max(0, -exp)
    integer = max(0, stripped + exp)
    return integer, fraction


def _wire_fits(c: Column, precision: int | None, scale: int | None) -> bool:
    """Whether every value of ``c``'s wire schema fits ``DECIMAL(precision, scale)`` (then nothing is checked)."""
    w = c.wire
    if c.logical is Logical.UINT64 and w.type == "int64" and w.name is None:
        return precision is None or precision - (scale or 0) >= 20
    if w.name != SemanticName.DECIMAL or w.type != "bytes":
        return False
    params = w.parameters or {}
    try:
        wire_scale = int(params["scale"])
        wire_precision = int(params["connect.decimal.precision"]) if "connect.decimal.precision" in params else None
    except (KeyError, ValueError):
        return False
    if precision is None:
        return True
    wire_precision = wire_precision if wire_precision is not None else c.precision
    if wire_precision is None:
        return False
    return wire_scale <= (scale or 0) and wire_precision - wire_scale <= precision - (scale or 0)


def _decimal_check(c: Column, precision: int | None, scale: int | None, sql: str, *, special: bool) -> Convert | None:
    return None if _wire_fits(c, precision, scale) else _check_decimal(precision, scale, sql, special=special)


def _check_decimal(precision: int | None, scale: int | None, sql: str, *, special: bool) -> Convert:
    """Refuse what ``DECIMAL(precision, scale)`` would round or overflow; ``special``: NaN/Infinity allowed."""

    def check(value: Any) -> Any:
        number = value if isinstance(value, Decimal) else Decimal(value)
        if not number.is_finite():
            if special and (number.is_nan() or precision is None):
                return number
            what = "NaN" if number.is_nan() else "infinity"
            raise _reject(f"{what} has no value in the target column {sql}")
        if precision is None:
            return number
        integer, fraction = _decimal_digits(number)
        s = scale or 0
        if fraction > s:
            raise _reject(f"the value has {fraction} fractional digits; the target column {sql} keeps {s}")
        if integer > precision - s:
            raise _reject(f"the value has {integer} integer digits; the target column {sql} holds {precision - s}")
        return number

    return check


def _decimal_text(scale: int | None) -> Convert:
    """Exact plain text of a decimal, with the column's scale when it has one (SQLite)."""
    quantum = Decimal(1).scaleb(-scale, _WIDE) if scale is not None and scale >= 0 else None

    def to_text(value: Any) -> Any:
        number = value if isinstance(value, Decimal) else Decimal(value)
        if not number.is_finite():
            if number.is_nan():
                return "NaN"
            return "-Infinity" if number.is_signed() else "Infinity"
        if quantum is not None and _decimal_digits(number)[1] <= (scale or 0):
            number = number.quantize(quantum, context=_WIDE)
        text = format(number, "f")
        return "0" if text in ("-0", "+0") else text

    return to_text


def _check_finite(sql: str, *, nan_only: bool = False) -> Convert:
    def check(value: Any) -> Any:
        if math.isnan(value):
            raise _reject(f"NaN has no value in the target column {sql}")
        if not nan_only and value in (math.inf, -math.inf):
            raise _reject(f"infinity has no value in the target column {sql}")
        return value

    return check


def _check_fraction(precision: int | None, sql: str) -> Convert | None:
    """Refuse fractional seconds finer than ``precision`` digits (the database would round them)."""
    if precision is None or precision >= 6:
        return None
    step = 10 ** (6 - precision)

    def check(value: Any) -> Any:
        micros = value.microseconds if isinstance(value, timedelta) else value.microsecond
        if micros % step:
            raise _reject(f"the value has fractional seconds beyond the {precision} digits of the target column {sql}")
        return value

    return check


def _check_min_year(sql: str) -> Convert:
    def check(value: Any) -> Any:
        if value.year < 1000:
            raise _reject(f"year {value.year} is before 1000, outside the range of the MySQL column {sql}")
        return value

    return check


def _naive_utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _time_utc_naive(value: Any) -> Any:
    return value.replace(tzinfo=None) if isinstance(value, time) else value


_DAY = timedelta(days=1)


def _duration_to_pg_time(sql: str) -> Convert:
    """A duration (MicroTime) as a PostgreSQL ``time``: 00:00 to 24:00 only."""

    def to_time(value: Any) -> Any:
        if isinstance(value, time):
            return value
        if value == _DAY:
            return "24:00:00"
        if value < timedelta(0) or value > _DAY:
            raise _reject(f"the duration is outside 00:00:00..24:00:00, the range of the target column {sql}")
        seconds, micros = divmod(value // timedelta(microseconds=1), 1_000_000)
        minutes, second = divmod(seconds, 60)
        hour, minute = divmod(minutes, 60)
        return time(hour, minute, second, micros)

    return to_time


def _mysql_time_range(mariadb: bool, sql: str) -> Convert:
    limit = timedelta(hours=838, minutes=59, seconds=59, microseconds=999_999 if mariadb else 0)

    def check(value: Any) -> Any:
        if isinstance(value, timedelta) and abs(value) > limit:
            raise _reject(f"the duration is outside ±838:59:59, the range of the MySQL column {sql}")
        return value

    return check


def _time_text(value: Any) -> Any:
    """A duration or time of day as text: ``HH:MM:SS.ffffff`` (SQLAlchemy's SQLite TIME form), signed and
    with more hour digits when it is negative or past a day."""
    if isinstance(value, time):
        return f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    micros = value // timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    seconds, frac = divmod(abs(micros), 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{sign}{hours:02d}:{minute:02d}:{second:02d}.{frac:06d}"


def _date_text(value: Any) -> Any:
    return value.isoformat()


def _datetime_text(value: Any) -> Any:
    """SQLAlchemy's SQLite DATETIME storage form, in UTC for aware values."""
    v = _naive_utc(value)
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"


def _interval_iso(value: Any) -> Any:
    if isinstance(value, PgInterval):
        return value.isoformat()
    return PgInterval.from_timedelta(value).isoformat()


def _interval_pg(value: Any) -> Any:
    return value.isoformat() if isinstance(value, PgInterval) else value


def _uuid_text(value: Any) -> Any:
    return str(value)


def _bool_int(value: Any) -> Any:
    return 1 if value else 0


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value) if not value.is_finite() else orjson.Fragment(format(value, "f").encode())
    if isinstance(value, bytes | bytearray | memoryview):
        import base64

        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, timedelta):
        return _time_text(value)
    if isinstance(value, PgInterval):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} has no JSON form")


def _array_json(value: Any) -> Any:
    """An array as JSON text: numbers stay numbers (decimals exactly), temporal values ISO 8601, bytes base64."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_PASSTHROUGH_SUBCLASS).decode()


def _check_members(members: Sequence[str], sql: str, *, is_set: bool) -> Convert:
    allowed = frozenset(members)

    def check(value: Any) -> Any:
        chosen = value.split(",") if is_set and value else ([value] if not is_set else [])
        for member in chosen:
            if member not in allowed:
                raise _reject(f"the value is not a member of the target column {sql}")
        return value

    return check


def _bits_length(c: Column) -> int | None:
    """BIT(n)'s n; None for an unbounded bit varying."""
    params = c.wire.parameters or {}
    text = params.get("length")
    n = int(text) if text and text.isdigit() else c.length
    if n is None or n >= 2**31 - 1:
        return None
    return n


def _check_bits(n: int | None, sql: str) -> Convert | None:
    if n is None:
        return None

    def check(value: Any) -> Any:
        if value < 0 or value.bit_length() > n:
            raise _reject(f"the bit string is longer than the {n} bits of the target column {sql}")
        return value

    return check


def _bits_text(n: int | None, fixed: bool) -> Convert:
    def to_text(value: Any) -> Any:
        if fixed and n is not None:
            return format(value, f"0{n}b")
        return format(value, "b")

    return to_text


def _bits_bytes(n: int | None) -> Convert:
    def to_bytes(value: Any) -> Any:
        size = (n + 7) // 8 if n is not None else max(1, (value.bit_length() + 7) // 8)
        return int(value).to_bytes(size, "big")

    return to_bytes


_EWKB_SRID = 0x20000000


def _wkb_with_srid(value: Any) -> Any:
    """WKB as is; with an SRID, PostGIS's EWKB (the SRID flag set in the type and the SRID after it)."""
    wkb, srid = value.wkb, value.srid
    if not srid or len(wkb) < 5:
        return wkb
    order = "<" if wkb[0] == 1 else ">"
    (kind,) = struct.unpack(order + "I", wkb[1:5])
    if kind & _EWKB_SRID:
        return wkb
    return wkb[:1] + struct.pack(order + "II", kind | _EWKB_SRID, srid) + wkb[5:]


def _mysql_geometry(value: Any) -> Any:
    """MySQL's internal geometry form: the SRID (4 bytes, little-endian), then WKB."""
    return struct.pack("<I", value.srid or 0) + value.wkb


# ---------------------------------------------------------------------------------------------
# Element types of arrays
# ---------------------------------------------------------------------------------------------

_BY_SEMANTIC: Mapping[str, Logical] = {
    SemanticName.DECIMAL: Logical.DECIMAL,
    SemanticName.VARIABLE_SCALE_DECIMAL: Logical.DECIMAL,
    SemanticName.DATE: Logical.DATE,
    SemanticName.CONNECT_DATE: Logical.DATE,
    SemanticName.TIME: Logical.TIME,
    SemanticName.MICRO_TIME: Logical.TIME,
    SemanticName.NANO_TIME: Logical.TIME,
    SemanticName.CONNECT_TIME: Logical.TIME,
    SemanticName.TIMESTAMP: Logical.TIMESTAMP,
    SemanticName.MICRO_TIMESTAMP: Logical.TIMESTAMP,
    SemanticName.NANO_TIMESTAMP: Logical.TIMESTAMP,
    SemanticName.CONNECT_TIMESTAMP: Logical.TIMESTAMP,
    SemanticName.ZONED_TIMESTAMP: Logical.TIMESTAMPTZ,
    SemanticName.ZONED_TIME: Logical.TIMETZ,
    SemanticName.YEAR: Logical.YEAR,
    SemanticName.MICRO_DURATION: Logical.INTERVAL,
    SemanticName.INTERVAL: Logical.INTERVAL,
    SemanticName.JSON: Logical.JSON,
    SemanticName.UUID: Logical.UUID,
    SemanticName.ENUM: Logical.ENUM,
    SemanticName.ENUM_SET: Logical.SET,
    SemanticName.BITS: Logical.BITS,
    SemanticName.XML: Logical.XML,
    SemanticName.GEOMETRY: Logical.GEOMETRY,
    SemanticName.GEOGRAPHY: Logical.GEOMETRY,
}
_BY_CONNECT: Mapping[str, Logical] = {
    "boolean": Logical.BOOLEAN,
    "int8": Logical.INT16,
    "int16": Logical.INT16,
    "int32": Logical.INT32,
    "int64": Logical.INT64,
    "float32": Logical.FLOAT32,
    "float64": Logical.FLOAT64,
    "bytes": Logical.BYTES,
    "string": Logical.STRING,
}
_TEXT_NAMES = frozenset({"TEXT", "CITEXT", "NAME"})
_NET_NAMES: Mapping[str, Logical] = {
    "INET": Logical.INET,
    "CIDR": Logical.CIDR,
    "MACADDR": Logical.MACADDR,
    "MACADDR8": Logical.MACADDR,
}


def _element_column(c: Column) -> Column:
    """The element of an array column as a column of its own (for its type and conversion)."""
    items = c.wire.items or Wire("string")
    native = c.native_type.strip()
    if native.endswith("[]"):
        native = native[:-2]
    elif native.startswith("_"):
        native = native[1:]
    base, _ = _native_base(native)
    logical = _BY_SEMANTIC.get(items.name or "") or _BY_CONNECT.get(items.type, Logical.UNKNOWN)
    if logical is Logical.STRING:
        logical = _NET_NAMES.get(base, Logical.TEXT if base in _TEXT_NAMES else Logical.STRING)
    params = items.parameters or {}
    precision = int(params["connect.decimal.precision"]) if "connect.decimal.precision" in params else None
    scale = int(params["scale"]) if "scale" in params else None
    length_match = re.search(r"\((\d+)\)", native)
    length = int(length_match.group(1)) if length_match and logical is Logical.STRING else None
    return replace(
        c,
        native_type=native,
        logical=logical,
        wire=items,
        length=length,
        precision=precision,
        scale=scale,
        enum_values=None,
        nullable=True,
    )


# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------


class XML(UserDefinedType[str]):
    """PostgreSQL ``xml`` (SQLAlchemy has no type for it)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "XML"


def _pg(col: _Col) -> _Spec:
    c, logical, base = col.c, col.c.logical, col.base
    if logical is Logical.BOOLEAN:
        return _Spec(postgresql.BOOLEAN())
    if logical in (Logical.INT8, Logical.INT16, Logical.YEAR):
        return _Spec(postgresql.SMALLINT())
    if logical is Logical.INT32:
        return _Spec(postgresql.INTEGER())
    if logical is Logical.INT64:
        return _Spec(postgresql.BIGINT())
    if logical is Logical.UINT64:
        return _Spec(postgresql.NUMERIC(20, 0), _decimal_check(c, 20, 0, "numeric(20,0)", special=False))
    if logical is Logical.FLOAT32:
        return _Spec(postgresql.REAL())
    if logical is Logical.FLOAT64:
        return _Spec(postgresql.DOUBLE_PRECISION())
    if logical is Logical.MONEY:
        return _Spec(postgresql.NUMERIC(19, 2), _decimal_check(c, 19, 2, "numeric(19,2)", special=False))
    if logical is Logical.DECIMAL:
        p, s = c.precision, c.scale
        if p is None or p > 1000:
            return _Spec(postgresql.NUMERIC(), _decimal_check(c, None, None, "numeric", special=True))
        sql = f"numeric({p},{s or 0})"
        return _Spec(postgresql.NUMERIC(p, s or 0), _decimal_check(c, p, s or 0, sql, special=True))
    if logical is Logical.STRING:
        n = c.length
        if n is None:
            return _Spec(postgresql.VARCHAR(), _pg_text_check(None, "varchar"))
        if col.from_pg and base in ("CHAR", "CHARACTER", "BPCHAR", "NCHAR"):
            return _Spec(postgresql.CHAR(n), _pg_text_check(n, f"char({n})"), n)
        return _Spec(postgresql.VARCHAR(n), _pg_text_check(n, f"varchar({n})"), n)
    if logical in (Logical.TEXT, Logical.XML) or (logical is Logical.UNKNOWN and c.wire.type == "string"):
        type_: TypeEngine[Any] = XML() if logical is Logical.XML else postgresql.TEXT()
        return _Spec(type_, _pg_text_check(None, "xml" if logical is Logical.XML else "text"))
    if logical is Logical.BYTES or (logical is Logical.UNKNOWN and c.wire.type == "bytes"):
        return _Spec(postgresql.BYTEA())
    if logical is Logical.DATE:
        return _Spec(postgresql.DATE())
    if logical is Logical.TIME:
        if col.from_pg:
            p = _fsp(c)
            sql = f"time({p})"
            return _Spec(postgresql.TIME(precision=p), _chain(_check_fraction(p, sql), _duration_to_pg_time(sql)))
        return _Spec(postgresql.INTERVAL())
    if logical is Logical.TIMETZ:
        p = _fsp(c)
        return _Spec(postgresql.TIME(timezone=True, precision=p), _check_fraction(p, "time with time zone"))
    if logical in (Logical.TIMESTAMP, Logical.TIMESTAMPTZ):
        p = _fsp(c)
        tz = logical is Logical.TIMESTAMPTZ
        sql = f"timestamp({p})" + (" with time zone" if tz else "")
        return _Spec(postgresql.TIMESTAMP(timezone=tz, precision=p), _check_fraction(p, sql))
    if logical is Logical.INTERVAL:
        return _Spec(postgresql.INTERVAL(), _interval_pg)
    if logical is Logical.UUID:
        return _Spec(postgresql.UUID(as_uuid=True))
    if logical is Logical.JSON:
        if col.from_pg and base == "JSON":
            return _Spec(postgresql.JSON())
        return _Spec(postgresql.JSONB())
    if logical in (Logical.ENUM, Logical.SET):
        members = c.enum_values or _allowed(c.wire)
        if not members:
            return _Spec(postgresql.TEXT(), _pg_text_check(None, "text"))
        n = _members_length(members, logical is Logical.SET)
        return _Spec(postgresql.VARCHAR(n), _pg_text_check(n, f"varchar({n})"), n)
    if logical is Logical.BITS:
        n = _bits_length(c)
        varying = col.from_pg and base in ("VARBIT", "BIT VARYING")
        if n is None:
            return _Spec(postgresql.BIT(varying=True), _bits_text(None, False))
        sql = f"bit varying({n})" if varying else f"bit({n})"
        return _Spec(postgresql.BIT(n, varying=varying), _chain(_check_bits(n, sql), _bits_text(n, not varying)))
    if logical is Logical.GEOMETRY:
        return _Spec(postgresql.BYTEA(), _wkb_with_srid)
    if logical is Logical.ARRAY:
        element = plan_column(_element_column(c), col.opts)
        if isinstance(element.type, postgresql.ARRAY):
            raise SchemaError(f"column {c.name!r}: arrays of arrays are not supported")
        return _Spec(postgresql.ARRAY(element.type), _each(element.adapt))
    if logical in (Logical.INET, Logical.CIDR):
        return _Spec(postgresql.CIDR() if logical is Logical.CIDR else postgresql.INET())
    if logical is Logical.MACADDR:
        return _Spec(postgresql.MACADDR8() if base == "MACADDR8" else postgresql.MACADDR())
    return _unknown(col, postgresql.TEXT(), postgresql.BYTEA())


def _each(adapt: Convert | None) -> Convert | None:
    """An array's elements arrive decoded (the array's wire decodes them); apply the element's adaptation."""
    if adapt is None:
        return None

    def each(values: Any) -> Any:
        return [None if v is None else adapt(v) for v in values]

    return each


def _fsp(c: Column) -> int:
    """Fractional-second digits of a temporal column (6 when unknown)."""
    if c.precision is not None and 0 <= c.precision <= 6:
        return c.precision
    name = c.wire.name
    if name in (SemanticName.TIMESTAMP, SemanticName.CONNECT_TIMESTAMP, SemanticName.TIME, SemanticName.CONNECT_TIME):
        return 3
    return 6


def _allowed(wire: Wire) -> tuple[str, ...]:
    text = (wire.parameters or {}).get("allowed")
    return tuple(text.split(",")) if text else ()


def _members_length(members: Sequence[str], is_set: bool) -> int:
    if is_set:
        return max(1, sum(len(m) for m in members) + max(0, len(members) - 1))
    return max(1, *(len(m) for m in members))


def _unknown(col: _Col, text: TypeEngine[Any], binary: TypeEngine[Any]) -> _Spec:
    kind = col.c.wire.type
    if kind == "bytes":
        return _Spec(binary)
    if kind in ("struct", "map", "array"):
        return _Spec(text, _array_json)
    if kind == "string":
        return _Spec(text)
    return _Spec(text, str)


# ---------------------------------------------------------------------------------------------
# MySQL / MariaDB
# ---------------------------------------------------------------------------------------------

_MYSQL_INTS: Mapping[str, Callable[..., TypeEngine[Any]]] = {
    "TINYINT": mysql.TINYINT,
    "SMALLINT": mysql.SMALLINT,
    "MEDIUMINT": mysql.MEDIUMINT,
    "INT": mysql.INTEGER,
    "INTEGER": mysql.INTEGER,
    "BIGINT": mysql.BIGINT,
}
_MYSQL_TEXTS: Mapping[str, tuple[Callable[..., TypeEngine[Any]], int]] = {
    "TINYTEXT": (mysql.TINYTEXT, 255),
    "TEXT": (mysql.TEXT, 65_535),
    "MEDIUMTEXT": (mysql.MEDIUMTEXT, 16_777_215),
    "LONGTEXT": (mysql.LONGTEXT, 4_294_967_295),
}
_MYSQL_BLOBS: Mapping[str, tuple[Callable[..., TypeEngine[Any]], int]] = {
    "TINYBLOB": (mysql.TINYBLOB, 255),
    "BLOB": (mysql.BLOB, 65_535),
    "MEDIUMBLOB": (mysql.MEDIUMBLOB, 16_777_215),
    "LONGBLOB": (mysql.LONGBLOB, 4_294_967_295),
}
#: InnoDB's largest index key (DYNAMIC/COMPRESSED row formats), and bytes per utf8mb4 character.
_MYSQL_KEY_BYTES = 3072
_MYSQL_ROW_BYTES = 65_535
_UTF8MB4 = 4
_MYSQL_VARCHAR_MAX = _MYSQL_ROW_BYTES // _UTF8MB4 - 1  # 16382 characters alone in a row


def _mysql(col: _Col) -> _Spec:
    c, logical, base = col.c, col.c.logical, col.base
    collation = col.opts.mysql_collation
    if logical is Logical.BOOLEAN:
        if col.from_mysql and base == "BIT":
            return _Spec(mysql.BIT(1), _bool_int)
        return _Spec(mysql.BOOLEAN(create_constraint=False), _bool_int)
    if logical in (Logical.INT8, Logical.INT16, Logical.INT32, Logical.INT64, Logical.YEAR):
        if col.from_mysql and base == "YEAR":
            return _Spec(mysql.YEAR())
        if col.from_mysql and base in _MYSQL_INTS:
            return _Spec(_MYSQL_INTS[base](unsigned=col.unsigned))
        default = {
            Logical.INT8: mysql.TINYINT,
            Logical.INT16: mysql.SMALLINT,
            Logical.YEAR: mysql.SMALLINT,
            Logical.INT32: mysql.INTEGER,
            Logical.INT64: mysql.BIGINT,
        }[logical]
        return _Spec(default())
    if logical is Logical.UINT64:
        return _Spec(mysql.BIGINT(unsigned=True), _decimal_check(c, 20, 0, "BIGINT UNSIGNED", special=False))
    if logical is Logical.FLOAT32:
        return _Spec(mysql.FLOAT(), _check_finite("FLOAT"))
    if logical is Logical.FLOAT64:
        return _Spec(mysql.DOUBLE(), _check_finite("DOUBLE"))
    if logical is Logical.MONEY:
        return _Spec(mysql.DECIMAL(19, 2), _decimal_check(c, 19, 2, "DECIMAL(19,2)", special=False))
    if logical is Logical.DECIMAL:
        p, s = c.precision, c.scale
        if p is not None and s is not None and s < 0:  # PostgreSQL numeric(p, -s): p - s integer digits
            p, s = p - s, 0
        if p is None:
            p, s = 65, 30
        elif p > 65:
            p, s = 65, min(s or 0, 30)
        s = max(0, min(s or 0, 30, p))
        unsigned = col.from_mysql and col.unsigned
        sql = f"DECIMAL({p},{s})" + (" UNSIGNED" if unsigned else "")
        return _Spec(mysql.DECIMAL(p, s, unsigned=unsigned), _decimal_check(c, p, s, sql, special=False))
    if logical in (Logical.STRING, Logical.TEXT, Logical.XML, Logical.INET, Logical.CIDR, Logical.MACADDR):
        return _mysql_string(col, collation)
    if logical is Logical.BYTES:
        return _mysql_bytes(col)
    if logical is Logical.DATE:
        return _Spec(mysql.DATE(), None if col.from_mysql else _check_min_year("DATE"))
    if logical in (Logical.TIME, Logical.TIMETZ):
        p = _fsp(c) if logical is Logical.TIME else 6
        sql = f"TIME({p})"
        return _Spec(
            mysql.TIME(fsp=p),
            _chain(
                _time_utc_naive,
                _check_fraction(p, sql) if logical is Logical.TIME else None,
                _mysql_time_range(col.opts.mariadb, sql),
            ),
        )
    if logical in (Logical.TIMESTAMP, Logical.TIMESTAMPTZ):
        p = _fsp(c) if col.from_mysql else 6 if c.precision is None else min(6, max(0, c.precision))
        sql = f"DATETIME({p})"
        return _Spec(
            mysql.DATETIME(fsp=p),
            _chain(
                _naive_utc if logical is Logical.TIMESTAMPTZ else None,
                _check_fraction(p, sql),
                None if col.from_mysql else _check_min_year(sql),
            ),
        )
    if logical is Logical.INTERVAL:
        return _Spec(mysql.VARCHAR(64, collation=collation), _interval_iso, 64)
    if logical is Logical.UUID:
        return _Spec(mysql.CHAR(36, collation=collation), _uuid_text, 36)
    if logical is Logical.JSON:
        return _Spec(mysql.JSON())
    if logical in (Logical.ENUM, Logical.SET):
        members = c.enum_values if c.enum_values is not None else _allowed(c.wire)
        is_set = logical is Logical.SET
        if col.from_mysql and members:
            type_: TypeEngine[Any] = mysql.SET(*members) if is_set else mysql.ENUM(*members)
            return _Spec(type_, _check_members(members, "SET" if is_set else "ENUM", is_set=is_set))
        if not members:
            return _Spec(mysql.LONGTEXT(collation=collation))
        width = _members_length(members, is_set)
        return _Spec(mysql.VARCHAR(width, collation=collation), _check_chars(width, f"VARCHAR({width})"), width)
    if logical is Logical.BITS:
        bits = _bits_length(c)
        if bits is not None and bits <= 64:
            return _Spec(mysql.BIT(bits), _check_bits(bits, f"BIT({bits})"))
        if bits is None:
            return _Spec(mysql.LONGBLOB(), _bits_bytes(None))
        return _Spec(mysql.VARBINARY((bits + 7) // 8), _chain(_check_bits(bits, f"BIT({bits})"), _bits_bytes(bits)))
    if logical is Logical.GEOMETRY:
        if col.from_mysql:
            return _Spec(_MySqlGeometry(), _mysql_geometry)
        return _Spec(mysql.LONGBLOB(), _wkb_with_srid)
    if logical is Logical.ARRAY:
        return _Spec(mysql.JSON(), _array_json)
    return _unknown(col, mysql.LONGTEXT(collation=collation), mysql.LONGBLOB())


class _MySqlGeometry(UserDefinedType[bytes]):
    """MySQL ``GEOMETRY``."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "GEOMETRY"


def _mysql_string(col: _Col, collation: str | None) -> _Spec:
    c, logical, base = col.c, col.c.logical, col.base
    fixed_lengths = {Logical.INET: 43, Logical.CIDR: 43, Logical.MACADDR: 23}
    n: int | None = fixed_lengths.get(logical, c.length if logical is Logical.STRING else None)
    if col.from_mysql and logical is Logical.TEXT and base in _MYSQL_TEXTS and not col.key:
        kind, limit = _MYSQL_TEXTS[base]
        sql = base
        return _Spec(kind(collation=collation), _check_utf8_bytes(limit, sql))
    cap = col.cap
    if n is None:
        if not col.key:
            return _Spec(mysql.LONGTEXT(collation=collation))
        n = cap if cap is not None else _MYSQL_KEY_BYTES // _UTF8MB4
    elif cap is not None and n > cap:
        n = cap
    if n > _MYSQL_VARCHAR_MAX:
        sql = "MEDIUMTEXT" if n * _UTF8MB4 <= 16_777_215 else "LONGTEXT"
        kind = mysql.MEDIUMTEXT if sql == "MEDIUMTEXT" else mysql.LONGTEXT
        return _Spec(kind(collation=collation), _check_chars(n, sql), n)
    if col.from_mysql and base in ("CHAR", "NCHAR", "CHARACTER", "NATIONAL CHAR") and n <= 255:
        return _Spec(mysql.CHAR(n, collation=collation), _check_chars(n, f"CHAR({n})"), n)
    return _Spec(mysql.VARCHAR(n, collation=collation), _check_chars(n, f"VARCHAR({n})"), n)


def _check_utf8_bytes(limit: int, sql: str) -> Convert | None:
    if limit >= 4_294_967_295:
        return None

    def check(value: Any) -> Any:
        if len(value) * _UTF8MB4 > limit:
            size = len(value.encode("utf-8"))
            if size > limit:
                raise _reject(f"the value is {size} bytes long in UTF-8; the target column {sql} holds {limit}")
        return value

    return check


def _mysql_bytes(col: _Col) -> _Spec:
    c, base = col.c, col.base
    if col.from_mysql and base in _MYSQL_BLOBS and not col.key:
        kind, limit = _MYSQL_BLOBS[base]
        return _Spec(kind(), _check_bytes(limit, base))
    n = c.length
    if col.from_mysql and base in ("BINARY", "VARBINARY") and n is not None and (col.cap is None or n <= col.cap):
        if base == "BINARY" and n <= 255:
            return _Spec(mysql.BINARY(n), _check_bytes(n, f"BINARY({n})"), n)
        return _Spec(mysql.VARBINARY(n), _check_bytes(n, f"VARBINARY({n})"), n)
    if not col.key and (n is None or n > _MYSQL_ROW_BYTES - 3):
        return _Spec(mysql.LONGBLOB())
    size = min(n if n is not None else _MYSQL_KEY_BYTES, col.cap if col.cap is not None else _MYSQL_KEY_BYTES)
    return _Spec(mysql.VARBINARY(size), _check_bytes(size, f"VARBINARY({size})"), size)


def _key_bytes(c: Column) -> tuple[int, bool]:
    """(bytes the key column needs in an InnoDB index, whether it is a variable string/binary that may be shortened)."""
    if c.logical in (Logical.STRING, Logical.TEXT, Logical.XML):
        return (c.length or _MYSQL_KEY_BYTES) * _UTF8MB4, True
    if c.logical is Logical.BYTES:
        return c.length or _MYSQL_KEY_BYTES, True
    if c.logical in (Logical.ENUM, Logical.SET, Logical.UUID, Logical.INTERVAL):
        members = c.enum_values or _allowed(c.wire)
        n = _members_length(members, c.logical is Logical.SET) if members else 64
        return n * _UTF8MB4, False
    if c.logical is Logical.DECIMAL:
        return 32, False
    return 8, False


def _mysql_key_caps(schema: TableSchema, options: TargetOptions) -> dict[str, int]:
    """Per variable-length key column, the most characters (bytes for binary) it may be declared with."""
    needs = {name: _key_bytes(schema.column(name)) for name in schema.primary_key}
    total = sum(size for size, _ in needs.values())
    variable = [name for name, (_, var) in needs.items() if var]
    unbounded = [
        name
        for name in variable
        if schema.column(name).length is None
        and not (options.source == "mysql" and schema.column(name).logical is Logical.BYTES)
    ]
    if total <= _MYSQL_KEY_BYTES and not unbounded:
        return {}
    fixed = sum(size for name, (size, var) in needs.items() if not var)
    budget = max(_MYSQL_KEY_BYTES - fixed, 0)
    caps: dict[str, int] = {}
    remaining = list(variable)
    # Give short columns what they need, then share the rest equally among the long ones.
    while remaining:
        share = budget // len(remaining)
        fits = [n for n in remaining if needs[n][0] <= share and n not in unbounded]
        if not fits:
            break
        for name in fits:
            budget -= needs[name][0]
            remaining.remove(name)
    if remaining:
        share = budget // len(remaining)
        for name in remaining:
            per = _UTF8MB4 if schema.column(name).logical is not Logical.BYTES else 1
            caps[name] = max(1, share // per)
    return caps


def _row_bytes(plan: ColumnPlan) -> tuple[int, bool]:
    """(bytes a column takes in MySQL's 65,535-byte row, whether it is a VARCHAR/VARBINARY that may become TEXT)."""
    t = plan.type
    if isinstance(t, mysql.VARCHAR | mysql.CHAR) and plan.max_chars is not None:
        return plan.max_chars * _UTF8MB4 + 2, isinstance(t, mysql.VARCHAR)
    if isinstance(t, mysql.VARBINARY | mysql.BINARY) and plan.max_chars is not None:
        return plan.max_chars + 2, isinstance(t, mysql.VARBINARY)
    return 12, False


def _mysql_fit_row(plans: list[ColumnPlan], key: Sequence[str], options: TargetOptions) -> list[ColumnPlan]:
    """Turn the longest non-key VARCHAR/VARBINARY columns into TEXT/BLOB while the row exceeds 65,535 bytes."""
    sizes = [_row_bytes(p) for p in plans]
    total = sum(size for size, _ in sizes)
    limit = _MYSQL_ROW_BYTES - 64
    if total <= limit:
        return plans
    order = sorted(
        (i for i, (size, movable) in enumerate(sizes) if movable and plans[i].name not in key),
        key=lambda i: -sizes[i][0],
    )
    out = list(plans)
    for i in order:
        if total <= limit:
            break
        p = out[i]
        n = p.max_chars or 0
        if isinstance(p.type, mysql.VARBINARY):
            sql = "BLOB" if n <= 65_535 else "MEDIUMBLOB"
            new_type: TypeEngine[Any] = mysql.BLOB() if n <= 65_535 else mysql.MEDIUMBLOB()
        else:
            sql = "TEXT" if n * _UTF8MB4 <= 65_535 else "MEDIUMTEXT"
            collation = options.mysql_collation
            new_type = mysql.TEXT(collation=collation) if sql == "TEXT" else mysql.MEDIUMTEXT(collation=collation)
        total -= sizes[i][0] - 12
        out[i] = replace(p, type=new_type, sql=new_type.compile(dialect=_DIALECTS["mysql"]))
    return out


# ---------------------------------------------------------------------------------------------
# SQLite
# ---------------------------------------------------------------------------------------------


def _sqlite(col: _Col) -> _Spec:
    c, logical = col.c, col.c.logical
    if logical is Logical.BOOLEAN:
        return _Spec(sa.Boolean(create_constraint=False), _bool_int)
    if logical in (Logical.INT8, Logical.INT16, Logical.INT32, Logical.INT64, Logical.YEAR):
        return _Spec(sa.Integer())
    if logical in (Logical.FLOAT32, Logical.FLOAT64):
        return _Spec(sa.REAL(), _check_finite("REAL", nan_only=True))
    if logical in (Logical.UINT64, Logical.DECIMAL, Logical.MONEY):
        scale = 2 if logical is Logical.MONEY else 0 if logical is Logical.UINT64 else c.scale
        return _Spec(sa.Text(), _decimal_text(scale))
    if logical in (Logical.STRING, Logical.ENUM, Logical.SET, Logical.INET, Logical.CIDR, Logical.MACADDR):
        fixed = {Logical.INET: 43, Logical.CIDR: 43, Logical.MACADDR: 23}
        n = fixed.get(logical, c.length)
        if logical in (Logical.ENUM, Logical.SET):
            members = c.enum_values or _allowed(c.wire)
            n = _members_length(members, logical is Logical.SET) if members else None
        return _Spec(sa.VARCHAR(n) if n is not None else sa.Text())
    if logical in (Logical.TEXT, Logical.XML, Logical.JSON):
        return _Spec(sa.Text())
    if logical is Logical.BYTES:
        return _Spec(sa.LargeBinary())
    if logical is Logical.DATE:
        return _Spec(sa.Date(), _date_text)
    if logical in (Logical.TIME, Logical.TIMETZ):
        return _Spec(sa.Time(), _time_text)
    if logical in (Logical.TIMESTAMP, Logical.TIMESTAMPTZ):
        return _Spec(sa.DateTime(), _datetime_text)
    if logical is Logical.INTERVAL:
        return _Spec(sa.Text(), _interval_iso)
    if logical is Logical.UUID:
        return _Spec(sa.CHAR(36), _uuid_text)
    if logical is Logical.BITS:
        return _Spec(sa.LargeBinary(), _bits_bytes(_bits_length(c)))
    if logical is Logical.GEOMETRY:
        return _Spec(sa.LargeBinary(), _wkb_with_srid)
    if logical is Logical.ARRAY:
        return _Spec(sa.Text(), _array_json)
    return _unknown(col, sa.Text(), sa.LargeBinary())
