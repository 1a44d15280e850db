"""A fast row decoder for MySQL/MariaDB binlog row events, straight to Debezium's representation.

python-mysql-replication stays in charge of the protocol, the event framing and the table
maps; this module replaces only its row decoding (``RowsEvent.rows``), which is pure Python
with a type dispatch per value and costs ~98% of the capture CPU. Here, one decoder is
compiled per table map and reused for every row of that table:

* :func:`raw_rows` takes the row-image bytes and the column-present bitmaps of a
  WRITE/UPDATE/DELETE rows event (v1 as MariaDB writes them, v2 as MySQL 8 writes them)
  straight from the event's packet. The library's lazy ``rows`` property is never touched,
  so the library never decodes a value.
* :func:`compile_decoder` reads the table map's own bytes (:func:`parse_table_map`), picks one
  converter per column up front (type, signedness, fractional precision, character set,
  ENUM/SET labels, handling modes) and generates one straight-line Python function per row
  image layout: runs of NOT NULL fixed-width columns are read by one precompiled
  ``struct.Struct``, nullable columns are guarded by one bit test, strings are decoded with
  their column's codec. There is no type dispatch and no charset lookup per value
  (:meth:`RowDecoder.source` shows the generated code). Compiled decoders are cached by the
  table map's bytes (table id, columns, types, metadata) and the options.
* :meth:`RowDecoder.decode_rows` turns the bytes into ``(before, after)`` row images: dicts
  ``column name -> value`` in Debezium's JSON payload representation (see :mod:`cdc.values`).
  :meth:`RowDecoder.decode_images` gives the same images as one flat list, read by one
  generated loop per event (what the source uses). :func:`rows_from_body` frames a rows event
  from its own bytes (the source's binlog reader hands those over without a library event).

Pure Python, ~12x the library's rows/s on an 8-column table (``bench/mysql_decoder.py``); the
library is also wrong on several values this module gets right (negative fractional TIME,
YEAR 0000, empty SET, non-UTF-8 ENUM/SET labels, UTF-16/32 text, MySQL's latin1, zero dates).

Value mapping (Debezium's MySQL connector, default modes in brackets):

=======================  =================================================================
TINYINT..BIGINT          ``int``, signed or UNSIGNED; BIGINT UNSIGNED per
                         ``bigint_unsigned_handling``: [precise] base64 Decimal(20,0)
                         bytes, ``long`` an int (above 2**63-1: TargetValueError)
FLOAT / DOUBLE           float32 as the shortest decimal that reads back to the same float32
                         (Java's ``Float.toString``) / float64
DECIMAL(p,s)             per ``decimal_handling``: [precise] base64 of the unscaled
                         two's-complement bytes, ``string`` plain text, ``double``
DATE                     days since 1970-01-01
DATETIME(p)              [adaptive_time_microseconds] ms (p <= 3) or µs (p > 3) since the
                         epoch; ``connect``: ms
TIMESTAMP(p)             ZonedTimestamp: ``"2024-01-02T03:04:05.120Z"``, UTC, p fraction digits
TIME(p)                  µs whatever p (as connectors/mysql/schema.py maps it), negative and
                         fractional exact (``-00:00:00.25`` is ``-250000``); ``connect``: ms
YEAR                     ``int`` (``0000`` is ``0``)
CHAR/VARCHAR/TEXT        ``str`` decoded with the column's character set
BINARY/VARBINARY/BLOB    per ``binary_handling``: [bytes] base64; BINARY(n) right-padded with
                         0x00 to n bytes as Debezium does (the binlog drops trailing zeros)
ENUM / SET               the label / the labels comma-separated in definition order
                         (an empty SET is ``""``, never NULL)
BIT(1) / BIT(n)          ``bool`` / base64 of the value's little-endian bytes
JSON                     JSON text; MySQL's binary JSON is decoded (MariaDB stores JSON as
                         LONGTEXT, which arrives as text)
GEOMETRY                 ``{"wkb": base64, "srid": int | None}`` (SRID 0 is None)
=======================  =================================================================

Zero dates (``0000-00-00``, a zero month or day, and under ``ALLOW_INVALID_DATES`` a day the
month does not have, such as ``2023-02-30``; a TIMESTAMP of 0) follow ``zero_date_handling``
(:class:`~connectors.mysql.config.ZeroDateHandling`): ``error`` (the default) stops with a
:class:`~cdc.errors.DecodeError` naming the table, column and value; ``null`` gives NULL for
a nullable column and is an error for a NOT NULL one; ``debezium`` gives NULL for a nullable
column and the epoch (day 0, ``"1970-01-01T00:00:00Z"``) for a NOT NULL one. No mode turns
a zero date into NULL silently.

Requirements and limits, each refused with a :class:`~cdc.errors.SchemaError` when the table
map is compiled (never by guessing): ``binlog_row_metadata=FULL`` (column names, character
sets and ENUM/SET labels come from the table map); a character set Python can decode
(``dec8``, ``hp8``, ``swe7``, ``keybcs2``, ``armscii8``, ``geostd8`` and ``eucjpms`` cannot);
a known type (not VECTOR, the pre-5.0 DECIMAL or VAR_STRING). The pre-5.6 temporal formats
carry no fractional seconds. :func:`raw_rows` refuses other events with a DecodeError, MySQL's
PARTIAL_UPDATE_ROWS_EVENT (``binlog_row_value_options=PARTIAL_JSON``) and MariaDB's
compressed rows events (``log_bin_compress=ON``) included: the source's check should refuse
those settings.

Malformed bytes raise :class:`~cdc.errors.DecodeError` naming the table and column; nothing is
skipped. The module imports no driver: it reads the library's event objects by attribute, and
loads the library's collation table (a data module) when a table map is first compiled.
"""

from __future__ import annotations

import binascii
import codecs
import os
import struct
from calendar import monthrange
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Context, Decimal
from enum import Enum
from typing import Any, Final, NamedTuple, Protocol

from cdc.errors import DecodeError, SchemaError, TargetValueError
from cdc.events import Wire
from cdc.values import (
    BigintUnsignedHandling,
    BinaryHandling,
    DecimalHandling,
    TimePrecision,
    bigint_unsigned_wire,
    bits_wire,
    bool_wire,
    bytes_wire,
    converter_to_wire,
    date_wire,
    decimal_wire,
    enum_wire,
    float_wire,
    geometry_wire,
    int_wire,
    json_wire,
    set_wire,
    string_wire,
    time_wire,
    timestamp_wire,
    year_wire,
    zoned_timestamp_wire,
)
from connectors.mysql.config import ZeroDateHandling

__all__ = [
    "ColumnInfo",
    "DecodedColumn",
    "DecoderOptions",
    "RawRows",
    "RowDecoder",
    "RowsKind",
    "TableMap",
    "compile_decoder",
    "event_body",
    "json_binary_to_text",
    "parse_table_map",
    "raw_rows",
    "rows_from_body",
]

Row = dict[str, Any]
RowPair = tuple[Row | None, Row | None]
#: A generated image reader: ``(buffer, offset) -> (row image, offset after it)``.
ImageReader = Callable[[bytes, int], tuple[Row, int]]
ImagesReader = Callable[[bytes, int, int, list[Row]], int]

# ---------------------------------------------------------------------------------------------
# Binlog constants
# ---------------------------------------------------------------------------------------------

# Column type codes, as in MySQL's enum_field_types (and pymysqlreplication.constants.FIELD_TYPE).
T_DECIMAL, T_TINY, T_SHORT, T_LONG, T_FLOAT, T_DOUBLE, T_NULL, T_TIMESTAMP, T_LONGLONG, T_INT24 = range(10)
T_DATE, T_TIME, T_DATETIME, T_YEAR, T_NEWDATE, T_VARCHAR, T_BIT, T_TIMESTAMP2, T_DATETIME2, T_TIME2 = range(10, 20)
T_VECTOR = 242
T_JSON, T_NEWDECIMAL, T_ENUM, T_SET, T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB, T_BLOB = range(245, 253)
T_VAR_STRING, T_STRING, T_GEOMETRY = 253, 254, 255

_TYPE_NAMES: Final = {
    T_DECIMAL: "DECIMAL (pre-5.0)",
    T_TINY: "TINYINT",
    T_SHORT: "SMALLINT",
    T_LONG: "INT",
    T_FLOAT: "FLOAT",
    T_DOUBLE: "DOUBLE",
    T_NULL: "NULL",
    T_TIMESTAMP: "TIMESTAMP (pre-5.6)",
    T_LONGLONG: "BIGINT",
    T_INT24: "MEDIUMINT",
    T_DATE: "DATE",
    T_TIME: "TIME (pre-5.6)",
    T_DATETIME: "DATETIME (pre-5.6)",
    T_YEAR: "YEAR",
    T_NEWDATE: "NEWDATE",
    T_VARCHAR: "VARCHAR",
    T_BIT: "BIT",
    T_TIMESTAMP2: "TIMESTAMP",
    T_DATETIME2: "DATETIME",
    T_TIME2: "TIME",
    T_VECTOR: "VECTOR",
    T_JSON: "JSON",
    T_NEWDECIMAL: "DECIMAL",
    T_ENUM: "ENUM",
    T_SET: "SET",
    T_BLOB: "BLOB",
    T_VAR_STRING: "VAR_STRING",
    T_STRING: "CHAR",
    T_GEOMETRY: "GEOMETRY",
}

# Rows event type codes.
WRITE_ROWS_V1, UPDATE_ROWS_V1, DELETE_ROWS_V1 = 23, 24, 25
WRITE_ROWS_V2, UPDATE_ROWS_V2, DELETE_ROWS_V2 = 30, 31, 32
PARTIAL_UPDATE_ROWS = 39
TABLE_MAP = 19


class RowsKind(Enum):
    """What a rows event does: its images are ``after`` (write), ``before`` (delete) or both (update)."""

    WRITE = "write"
    UPDATE = "update"
    DELETE = "delete"


_KIND_BY_TYPE: Final = {
    WRITE_ROWS_V1: RowsKind.WRITE,
    WRITE_ROWS_V2: RowsKind.WRITE,
    UPDATE_ROWS_V1: RowsKind.UPDATE,
    UPDATE_ROWS_V2: RowsKind.UPDATE,
    DELETE_ROWS_V1: RowsKind.DELETE,
    DELETE_ROWS_V2: RowsKind.DELETE,
}
_V2_TYPES: Final = frozenset({WRITE_ROWS_V2, UPDATE_ROWS_V2, DELETE_ROWS_V2})
_HEADER_LEN: Final = 19  # common binlog event header
_PACKET_PREFIX: Final = 1  # the OK byte in front of every event in the replication stream

# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecoderOptions:
    """The representation choices that shape decoded values (Debezium's option names).

    ``collations`` adds collation ids the built-in table does not know (id -> MySQL character
    set name, e.g. ``((2304, "utf8mb4"),)``); a source may load them once from
    ``information_schema.COLLATIONS``. MariaDB's UCA 14.0 collations (ids 2048-4095) are
    known without it.
    """

    decimal_handling: DecimalHandling = DecimalHandling.PRECISE
    time_precision: TimePrecision = TimePrecision.ADAPTIVE_TIME_MICROSECONDS
    binary_handling: BinaryHandling = BinaryHandling.BYTES
    bigint_unsigned_handling: BigintUnsignedHandling = BigintUnsignedHandling.PRECISE
    zero_date_handling: ZeroDateHandling = ZeroDateHandling.ERROR
    collations: tuple[tuple[int, str], ...] = ()

    @classmethod
    def from_config(cls, config: Any, collations: Iterable[tuple[int, str]] = ()) -> DecoderOptions:
        """The options of a ``type: mysql`` source config (:class:`~connectors.mysql.config.MySqlSourceConfig`)."""
        return cls(
            decimal_handling=DecimalHandling(config.decimal_handling),
            time_precision=TimePrecision(config.time_precision),
            binary_handling=BinaryHandling(config.binary_handling),
            bigint_unsigned_handling=BigintUnsignedHandling(config.bigint_unsigned_handling),
            zero_date_handling=ZeroDateHandling(config.zero_date_handling),
            collations=tuple(sorted((int(i), str(n)) for i, n in collations)),
        )


# ---------------------------------------------------------------------------------------------
# Character sets
# ---------------------------------------------------------------------------------------------

#: MySQL character set -> Python codec. ``None``: bytes (binary). Missing: cannot be decoded.
_CODECS: Final[dict[str, str | None]] = {
    "binary": None,
    "utf8mb4": "utf-8",
    "utf8mb3": "utf-8",
    "utf8": "utf-8",
    "latin1": "mysql-latin1",  # cp1252 with MySQL's mapping of its five undefined bytes (below)
    "ascii": "ascii",
    "ucs2": "utf-16-be",
    "utf16": "utf-16-be",
    "utf16le": "utf-16-le",
    "utf32": "utf-32-be",
    "latin2": "iso8859_2",
    "latin5": "iso8859_9",
    "latin7": "iso8859_13",
    "greek": "iso8859_7",
    "hebrew": "iso8859_8",
    "cp1250": "cp1250",
    "cp1251": "cp1251",
    "cp1256": "cp1256",
    "cp1257": "cp1257",
    "cp850": "cp850",
    "cp852": "cp852",
    "cp866": "cp866",
    "cp932": "cp932",
    "koi8r": "koi8_r",
    "koi8u": "koi8_u",
    "macce": "mac_latin2",
    "macroman": "mac_roman",
    "tis620": "tis_620",
    "big5": "big5",
    "gbk": "gbk",
    "gb2312": "gb2312",
    "gb18030": "gb18030",
    "sjis": "shift_jis",
    "ujis": "euc_jp",
    "euckr": "euc_kr",
}
#: MySQL's latin1 is cp1252, except that 0x81, 0x8D, 0x8F, 0x90 and 0x9D (undefined in
#: cp1252) map to the C1 controls of the same number, as the server converts them.
_MYSQL_LATIN1: Final = "".join(
    bytes([b]).decode("cp1252") if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else chr(b) for b in range(256)
)
#: MariaDB's UCA 14.0.0 collations: id = 2048 + (encoding << 8) + (tailoring << 3) + flags.
_MARIADB_UCA1400_CHARSETS: Final = ("utf8mb3", "utf8mb4", "ucs2", "utf16", "utf32")


def _charset_of(collation: int, dbms: str, extra: Mapping[int, str]) -> str | None:
    """The MySQL character set name of a collation id, or None when unknown."""
    if collation in extra:
        return extra[collation]
    if dbms == "mariadb" and 2048 <= collation < 4096:
        encoding = (collation - 2048) >> 8
        return _MARIADB_UCA1400_CHARSETS[encoding] if encoding < len(_MARIADB_UCA1400_CHARSETS) else None
    from pymysqlreplication.constants import CHARSET  # the library's collation table (a pure-data module)

    found = CHARSET.charset_by_id(collation, dbms)
    return str(found.name) if found is not None else None


def _mysql_latin1(raw: bytes) -> str:
    """Bytes in MySQL's latin1 as text (no Python codec has its mapping)."""
    return codecs.charmap_decode(raw, "strict", _MYSQL_LATIN1)[0]


# ---------------------------------------------------------------------------------------------
# Table maps
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    """One column as a TABLE_MAP event describes it.

    ``type`` is the binlog type code, with CHAR's real type resolved (ENUM and SET get their own
    codes). ``length`` depends on the type: the maximum byte length (VARCHAR, CHAR, BINARY),
    the byte count of the length prefix (BLOB, TEXT, JSON, GEOMETRY), the pack length (ENUM,
    SET, FLOAT, DOUBLE) or the bit count (BIT). ``precision``/``scale`` are DECIMAL's; ``scale``
    is also the fractional-seconds precision of TIME, DATETIME and TIMESTAMP.
    """

    index: int
    name: str
    type: int
    nullable: bool
    unsigned: bool = False
    length: int = 0
    precision: int = 0
    scale: int = 0
    collation: int | None = None
    charset: str | None = None
    labels: tuple[str, ...] | None = None
    geometry_type: int | None = None
    visible: bool = True

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES.get(self.type, f"type {self.type}")


@dataclass(frozen=True, slots=True)
class TableMap:
    """A parsed TABLE_MAP event. ``primary_key`` holds column indexes."""

    table_id: int
    schema: str
    table: str
    columns: tuple[ColumnInfo, ...]
    primary_key: tuple[int, ...]
    dbms: str
    body: bytes = field(repr=False)

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.table}"


class _Reader:
    """A cursor over a byte string with MySQL's integer encodings."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise DecodeError(f"truncated event: {n} bytes wanted at offset {self.pos} of {len(self.data)}")
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "little")

    def lenenc(self) -> int:
        first = self.uint(1)
        if first < 251:
            return first
        if first == 252:
            return self.uint(2)
        if first == 253:
            return self.uint(3)
        if first == 254:
            return self.uint(8)
        raise DecodeError(f"invalid length-encoded integer (first byte {first}) at offset {self.pos - 1}")

    def lenenc_bytes(self) -> bytes:
        return self.take(self.lenenc())

    def at_end(self) -> bool:
        return self.pos >= len(self.data)


def _bits_msb_first(data: bytes, count: int) -> list[bool]:
    return [bool(data[i >> 3] & (0x80 >> (i & 7))) for i in range(count)]


_NUMERIC_TYPES: Final = frozenset(
    {T_TINY, T_SHORT, T_INT24, T_LONG, T_LONGLONG, T_NEWDECIMAL, T_FLOAT, T_DOUBLE, T_YEAR}
)


def _is_character(col_type: int, dbms: str) -> bool:
    """Whether the column has an entry in the table map's character-set lists."""
    if col_type in (T_STRING, T_VAR_STRING, T_VARCHAR, T_BLOB, T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB):
        return True
    return col_type == T_GEOMETRY and dbms == "mariadb"


def _read_type_metadata(r: _Reader, t: int) -> tuple[int, int, int, int]:
    """(type with CHAR's real type resolved, length, precision, scale) from a column's metadata."""
    if t in (T_FLOAT, T_DOUBLE, T_BLOB, T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB, T_GEOMETRY, T_JSON, T_VECTOR):
        return t, r.uint(1), 0, 0
    if t in (T_TIMESTAMP2, T_DATETIME2, T_TIME2):
        return t, 0, 0, r.uint(1)
    if t == T_VARCHAR:
        return t, r.uint(2), 0, 0
    if t == T_NEWDECIMAL:
        precision, scale = r.take(2)
        return t, 0, precision, scale
    if t == T_BIT:
        bits, whole_bytes = r.take(2)
        return t, whole_bytes * 8 + bits, 0, 0
    if t in (T_STRING, T_VAR_STRING, T_ENUM, T_SET):
        first, second = r.take(2)
        real = first | 0x30
        if real in (T_ENUM, T_SET):
            return real, second, 0, 0
        return t, (((first & 0x30) ^ 0x30) << 4) | second, 0, 0
    if t in (T_TINY, T_SHORT, T_INT24, T_LONG, T_LONGLONG, T_YEAR, T_DATE, T_NEWDATE, T_TIME, T_DATETIME):
        return t, 0, 0, 0
    if t in (T_TIMESTAMP, T_NULL, T_DECIMAL):
        return t, 0, 0, 0
    raise SchemaError(f"the table map has MySQL column type code {t}, which cdc does not know")


def _collations_by_default(r: _Reader, end: int) -> tuple[int, dict[int, int]]:
    default = r.lenenc()
    overrides: dict[int, int] = {}
    while r.pos < end:
        index = r.lenenc()
        overrides[index] = r.lenenc()
    return default, overrides


def _lenenc_list(r: _Reader, end: int) -> list[int]:
    out: list[int] = []
    while r.pos < end:
        out.append(r.lenenc())
    return out


def parse_table_map(
    body: bytes,
    *,
    dbms: str = "mysql",
    post_header_len: int = 8,
    extra_collations: Mapping[int, str] | None = None,
) -> TableMap:
    """Parse the body of a TABLE_MAP event (the bytes after the 19-byte header, without checksum).

    ``dbms`` is ``"mysql"`` or ``"mariadb"`` (they differ in which columns the character-set
    lists cover and in collation ids). Raises :class:`SchemaError` when the table map lacks
    what decoding needs (``binlog_row_metadata`` is not FULL) or names an unknown type, and
    :class:`DecodeError` when the bytes are malformed.
    """
    try:
        return _parse_table_map(body, dbms, post_header_len, extra_collations or {})
    except (DecodeError, IndexError, ValueError, struct.error) as exc:  # UnicodeDecodeError included
        raise DecodeError(f"malformed TABLE_MAP event: {exc}") from exc


def _parse_table_map(body: bytes, dbms: str, post_header_len: int, extra: Mapping[int, str]) -> TableMap:
    r = _Reader(body)
    table_id = r.uint(4 if post_header_len == 6 else 6)
    r.pos = post_header_len  # flags (2 bytes) and any post-header bytes a newer server adds
    schema = r.take(r.uint(1)).decode("utf-8")
    r.take(1)
    table = r.take(r.uint(1)).decode("utf-8")
    r.take(1)
    count = r.lenenc()
    types = r.take(count)
    meta = _Reader(r.lenenc_bytes())
    resolved = [_read_type_metadata(meta, t) for t in types]
    nullable = r.take((count + 7) // 8)
    qualified = f"{schema}.{table}"

    names: list[str] = []
    unsigned = [False] * count
    charset_default: tuple[int, dict[int, int]] | None = None
    charset_list: list[int] | None = None
    es_default: tuple[int, dict[int, int]] | None = None
    es_list: list[int] | None = None
    enum_labels: list[list[bytes]] = []
    set_labels: list[list[bytes]] = []
    geometry_types: list[int] = []
    primary_key: list[int] = []
    visible = [True] * count
    while not r.at_end():
        kind = r.uint(1)
        length = r.lenenc()
        end = r.pos + length
        if end > len(body):
            raise DecodeError(f"table map of {qualified}: optional metadata field {kind} overruns the event")
        if kind == 1:  # SIGNEDNESS: one bit per numeric column, most significant first
            numeric = [i for i, (t, *_rest) in enumerate(resolved) if t in _NUMERIC_TYPES]
            for i, flag in zip(numeric, _bits_msb_first(r.take(length), len(numeric)), strict=True):
                unsigned[i] = flag
        elif kind == 2:
            charset_default = _collations_by_default(r, end)
        elif kind == 3:
            charset_list = _lenenc_list(r, end)
        elif kind == 4:
            while r.pos < end:
                names.append(r.lenenc_bytes().decode("utf-8"))
        elif kind in (5, 6):  # SET_STR_VALUE, ENUM_STR_VALUE
            target = set_labels if kind == 5 else enum_labels
            while r.pos < end:
                target.append([r.lenenc_bytes() for _ in range(r.lenenc())])
        elif kind == 7:
            geometry_types = _lenenc_list(r, end)
        elif kind == 8:
            primary_key = _lenenc_list(r, end)
        elif kind == 9:
            pairs = _lenenc_list(r, end)
            primary_key = pairs[0::2]
        elif kind == 10:
            es_default = _collations_by_default(r, end)
        elif kind == 11:
            es_list = _lenenc_list(r, end)
        elif kind == 12:
            visible = _bits_msb_first(r.take(length), count)
        r.pos = end  # also skips fields this version does not know

    if len(names) != count:
        raise SchemaError(
            f"the binlog's table map of {qualified} carries no column names",
            hint="set binlog_row_metadata=FULL on the server; rows written without it cannot be decoded safely",
        )

    def collation_list(
        default: tuple[int, dict[int, int]] | None, listed: list[int] | None, indexes: list[int]
    ) -> dict[int, int]:
        if listed is not None:
            if len(listed) != len(indexes):  # e.g. a server that is not the dbms it was taken for
                raise DecodeError(
                    f"table map of {qualified}: {len(listed)} character sets for {len(indexes)} columns ({dbms})"
                )
            return dict(zip(indexes, listed, strict=True))
        if default is not None:
            base, overrides = default
            return {col: overrides.get(pos, base) for pos, col in enumerate(indexes)}
        return {}

    char_cols = [i for i, (t, *_rest) in enumerate(resolved) if _is_character(t, dbms)]
    es_cols = [i for i, (t, *_rest) in enumerate(resolved) if t in (T_ENUM, T_SET)]
    char_collations = collation_list(charset_default, charset_list, char_cols)
    es_collations = collation_list(es_default, es_list, es_cols)
    if len(enum_labels) > sum(t == T_ENUM for t, *_rest in resolved) or len(set_labels) > len(es_cols):
        raise DecodeError(f"table map of {qualified}: more ENUM/SET label lists than ENUM/SET columns")
    enum_iter, set_iter = iter(enum_labels), iter(set_labels)
    geometry_iter = iter(geometry_types)

    columns: list[ColumnInfo] = []
    for i, (t, length, precision, scale) in enumerate(resolved):
        collation = char_collations.get(i, es_collations.get(i))
        charset = _charset_of(collation, dbms, extra) if collation is not None else None
        labels: tuple[str, ...] | None = None
        if t in (T_ENUM, T_SET):
            raw_labels = next(enum_iter if t == T_ENUM else set_iter, None)
            if raw_labels is None:
                what = "ENUM" if t == T_ENUM else "SET"
                raise SchemaError(
                    f"the table map of {qualified} lacks the labels of {what} column {names[i]!r}",
                    hint="set binlog_row_metadata=FULL",
                )
            labels = tuple(_decode_label(raw, charset, qualified, names[i]) for raw in raw_labels)
        columns.append(
            ColumnInfo(
                index=i,
                name=names[i],
                type=t,
                nullable=bool(nullable[i >> 3] & (1 << (i & 7))),
                unsigned=unsigned[i],
                length=length,
                precision=precision,
                scale=scale,
                collation=collation,
                charset=charset,
                labels=labels,
                geometry_type=next(geometry_iter, None) if t == T_GEOMETRY else None,
                visible=visible[i],
            )
        )
    return TableMap(table_id, schema, table, tuple(columns), tuple(primary_key), dbms, body)


def _decode_label(raw: bytes, charset: str | None, table: str, column: str) -> str:
    codec = _CODECS.get(charset or "utf8mb4", "utf-8")
    try:
        if codec == "mysql-latin1":
            return _mysql_latin1(raw)
        return raw.decode(codec or "utf-8")
    except (LookupError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{table}.{column}: cannot decode an ENUM/SET label in character set {charset}") from exc


# ---------------------------------------------------------------------------------------------
# Raw row images of a rows event
# ---------------------------------------------------------------------------------------------


class RawRows(NamedTuple):
    """The undecoded rows of one rows event (a named tuple: one is made per rows event).

    ``data`` holds the row images back to back (for an update: before, after, before, ...);
    ``present`` is the columns-present bitmap of the (first) images, ``present_after`` that of
    an update's after images. ``event_type`` is the binlog type code.
    """

    table_id: int
    event_type: int
    kind: RowsKind
    column_count: int
    present: bytes
    present_after: bytes | None
    data: bytes


def event_body(event: Any) -> bytes:
    """The bytes of a library event after its header, without checksum, from its packet."""
    packet = getattr(getattr(event, "packet", None), "packet", None)
    data = getattr(packet, "_data", None)
    size = int(event.event_size)
    start = _PACKET_PREFIX + _HEADER_LEN
    type_at = _PACKET_PREFIX + 4  # after the 4-byte timestamp
    if not isinstance(data, bytes | bytearray) or len(data) < start + size or data[type_at] != event.event_type:
        raise DecodeError(f"cannot read the raw bytes of a {type(event).__name__} (unexpected library packet)")
    return bytes(data[start : start + size])


def _declared_post_header_len(event: Any, default: int) -> int:
    lengths = getattr(event, "_post_header_lengths", None)
    index = int(event.event_type) - 1
    if lengths and 0 <= index < len(lengths) and lengths[index] >= default:
        return int(lengths[index])
    return default


def raw_rows(event: Any) -> RawRows:
    """The undecoded row images and column-present bitmaps of a WRITE/UPDATE/DELETE rows event.

    Reads the event's own bytes (its packet), so the library's lazy ``rows`` property is never
    evaluated and the library decodes no value. Works for v1 (MariaDB) and v2 (MySQL 8) events.
    Raises :class:`DecodeError` for other events (including MySQL's PARTIAL_UPDATE_ROWS_EVENT).
    """
    event_type = int(event.event_type)
    if event_type not in _KIND_BY_TYPE:
        return rows_from_body(event_type, b"", 0)  # raises the DecodeError that names the type
    v2 = event_type in _V2_TYPES
    rows = rows_from_body(event_type, event_body(event), _declared_post_header_len(event, 10 if v2 else 8))
    if int(getattr(event, "table_id", rows.table_id)) != rows.table_id:
        raise DecodeError(f"rows event: table id {rows.table_id} differs from the library's {event.table_id}")
    return rows


def rows_from_body(event_type: int, body: bytes, post_header_len: int) -> RawRows:
    """:func:`raw_rows` for an event's own bytes: ``body`` is the event after its 19-byte header,
    without checksum; ``post_header_len`` the length the server's FORMAT_DESCRIPTION declares for
    the type (8 for v1, 10 for v2 when it declares none). Raises :class:`DecodeError` for events
    that are not WRITE/UPDATE/DELETE rows events and for malformed bytes."""
    kind = _KIND_BY_TYPE.get(event_type)
    if kind is None:
        hint = " (set binlog_row_value_options='' on the server)" if event_type == PARTIAL_UPDATE_ROWS else ""
        raise DecodeError(f"binlog event type {event_type} is not a rows event cdc decodes{hint}")
    try:
        return _rows_from_body(event_type, kind, body, post_header_len)
    except (IndexError, ValueError, struct.error) as exc:
        raise DecodeError(f"malformed rows event: {exc}") from exc


def _rows_from_body(event_type: int, kind: RowsKind, body: bytes, post_header_len: int) -> RawRows:
    v2 = event_type in _V2_TYPES
    if post_header_len < 8 or (v2 and post_header_len < 10):
        post_header_len = 10 if v2 else 8
    size = len(body)
    if size < post_header_len:
        raise DecodeError(f"truncated rows event: {size} bytes, the post-header alone is {post_header_len}")
    table_id = _from_bytes(body[0:6], "little")
    pos = post_header_len  # v1: flags, and any post-header bytes a newer server adds
    if v2:  # table id, flags, then the length of the extra data (counting its own 2 bytes)
        extra_len = body[8] | body[9] << 8
        if extra_len < 2:
            raise DecodeError(f"rows event: extra data length {extra_len} is invalid")
        pos += extra_len - 2
    if pos >= size:
        raise DecodeError(f"truncated rows event: no column count at offset {pos} of {size}")
    count = body[pos]
    if count < 251:
        pos += 1
    else:
        r = _Reader(body, pos)
        count = r.lenenc()
        pos = r.pos
    width = (count + 7) // 8
    end = pos + (2 * width if kind is RowsKind.UPDATE else width)
    if end > size:
        raise DecodeError(f"truncated rows event: column bitmaps end at {end}, the event at {size}")
    present = body[pos : pos + width]
    present_after = body[pos + width : end] if kind is RowsKind.UPDATE else None
    return RawRows(table_id, event_type, kind, count, present, present_after, body[end:])


# ---------------------------------------------------------------------------------------------
# Value converters (one per column, chosen when a table map is compiled)
# ---------------------------------------------------------------------------------------------

_b2a_base64 = binascii.b2a_base64
_from_bytes = int.from_bytes
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_EPOCH: Final = datetime(1970, 1, 1)
_US: Final = 1_000_000
_DAY_S: Final = 86_400
_INT64_MAX: Final = 2**63 - 1


def _b64(data: bytes) -> str:
    return _b2a_base64(data, newline=False).decode("ascii")


def _binary_converter(mode: BinaryHandling) -> Callable[[bytes], str]:
    if mode is BinaryHandling.HEX:
        return bytes.hex
    if mode is BinaryHandling.BASE64_URL_SAFE:
        return lambda raw: _b64(raw).replace("+", "-").replace("/", "_")
    return _b64  # bytes (JSON base64) and base64 read the same


def _unscaled_bytes(unscaled: int) -> bytes:
    """Java's ``BigInteger.toByteArray()``: minimal big-endian two's complement."""
    return unscaled.to_bytes(((unscaled if unscaled >= 0 else ~unscaled).bit_length() >> 3) + 1, "big", signed=True)


class _MonthStarts(dict[int, tuple[int, int] | None]):
    """``year * 13 + month`` -> (days from 1970-01-01 to the month's first day, days in the month).

    None for month 0 or > 12 or year 0. Filled on demand: a table sees few distinct months.
    """

    def __missing__(self, key: int) -> tuple[int, int] | None:
        year, month = divmod(key, 13)
        value: tuple[int, int] | None = None
        if 1 <= year <= 9999 and 1 <= month <= 12:
            value = (date(year, month, 1).toordinal() - _EPOCH_ORDINAL, monthrange(year, month)[1])
        if len(self) < 200_000:
            self[key] = value
        return value


_MONTH_STARTS: Final = _MonthStarts()


class _NamedColumn(Protocol):
    """What :class:`_Zero` reads of a column: a table map's :class:`ColumnInfo` or a snapshot's ``Column``."""

    @property
    def name(self) -> str: ...

    @property
    def nullable(self) -> bool: ...


class _Zero:
    """What a column's zero (or impossible) date becomes, per ``zero_date_handling``; shared by the
    binlog decoder and the snapshot reader (:mod:`connectors.mysql.snapshot`)."""

    def __init__(self, mode: ZeroDateHandling, col: _NamedColumn, table: str, epoch_value: Any) -> None:
        self.where = f"{table}.{col.name}"
        self.mode = mode
        self.nullable = col.nullable
        self.epoch_value = epoch_value

    def __call__(self, shown: str) -> Any:
        if self.mode is not ZeroDateHandling.ERROR and self.nullable:
            return None
        if self.mode is ZeroDateHandling.DEBEZIUM:
            return self.epoch_value
        why = "is NOT NULL" if self.mode is ZeroDateHandling.NULL else "zero_date_handling is error"
        raise DecodeError(
            f"{self.where} holds the zero or invalid date {shown!r}, which has no value in Debezium's "
            f"representation, and {why}",
            hint="choose zero_date_handling null or debezium in the source config, or fix the row",
        )


def _fsp_layout(fsp: int) -> tuple[int, int]:
    """(bytes of the fraction, µs per unit of it) for fractional-seconds precision ``fsp``."""
    frac_bytes = (fsp + 1) // 2
    return frac_bytes, (1, 10_000, 100, 1)[frac_bytes]


def _date_converter(zero: _Zero) -> Callable[[int], Any]:
    starts = _MONTH_STARTS

    def convert(packed: int) -> Any:
        day = packed & 31
        ym = (packed >> 5 & 15) + (packed >> 9) * 13
        month = starts[ym]
        if month is None or day == 0 or day > month[1]:
            return zero(f"{packed >> 9:04d}-{packed >> 5 & 15:02d}-{day:02d}")
        return month[0] + day - 1

    return convert


class _DaySeconds(dict[int, int | None]):
    """``(year * 13 + month) << 5 | day`` -> seconds from the epoch to that day's midnight; None for a zero
    or impossible date. Filled on demand (a table sees few distinct days), bounded."""

    def __missing__(self, key: int) -> int | None:
        month = _MONTH_STARTS[key >> 5]
        day = key & 31
        value = None if month is None or day == 0 or day > month[1] else (month[0] + day - 1) * _DAY_S
        if len(self) < 200_000:
            self[key] = value
        return value


_DAY_SECONDS: Final = _DaySeconds()


def _datetime2_converter(fsp: int, millis: bool, zero: _Zero) -> Callable[[bytes], Any]:
    frac_bytes, unit = _fsp_layout(fsp)
    frac_bits = frac_bytes * 8
    frac_mask = (1 << frac_bits) - 1
    offset = 0x8000000000
    starts = _MONTH_STARTS
    midnights = _DAY_SECONDS
    from_bytes = _from_bytes
    us = _US

    def exceptional(raw: bytes) -> Any:
        value = from_bytes(raw, "big")
        packed = (value >> frac_bits) - offset
        hms = packed & 0x1FFFF
        ymd = packed >> 17
        day = ymd & 31
        month = starts[ymd >> 5]
        hour, minute, second = hms >> 12, hms >> 6 & 63, hms & 63
        if month is None or day == 0 or day > month[1]:
            ym = ymd >> 5
            return zero(f"{ym // 13:04d}-{ym % 13:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}")
        raise ValueError(f"DATETIME value {raw.hex()} is out of range")

    def convert(raw: bytes) -> Any:
        value = from_bytes(raw, "big")
        packed = (value >> frac_bits) - offset
        midnight = midnights[packed >> 17]
        hour = packed >> 12 & 31
        minute = packed >> 6 & 63
        second = packed & 63
        if midnight is None or hour > 23 or minute > 59 or second > 59 or packed < 0:
            return exceptional(raw)
        micros = (midnight + hour * 3600 + minute * 60 + second) * us + (value & frac_mask) * unit
        return micros // 1000 if millis else micros

    return convert


def _datetime_legacy_converter(millis: bool, zero: _Zero) -> Callable[[int], Any]:
    starts = _MONTH_STARTS

    def convert(value: int) -> Any:
        ymd, hms = divmod(value, 1_000_000)
        year, md = divmod(ymd, 10_000)
        month_no, day = divmod(md, 100)
        hour, ms = divmod(hms, 10_000)
        minute, second = divmod(ms, 100)
        month = starts[year * 13 + month_no] if month_no <= 12 else None
        if month is None or day == 0 or day > month[1]:
            return zero(f"{year:04d}-{month_no:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}")
        micros = ((month[0] + day - 1) * _DAY_S + hour * 3600 + minute * 60 + second) * _US
        return micros // 1000 if millis else micros

    return convert


def _zoned_text(seconds: int, micros: int, fsp: int) -> str:
    head = (_EPOCH + timedelta(seconds=seconds)).isoformat()
    if fsp <= 0:
        return head + "Z"
    return f"{head}.{micros:06d}"[: len(head) + 1 + fsp] + "Z"


def _timestamp2_converter(fsp: int, zero: _Zero) -> Callable[[bytes], Any]:
    frac_bytes, unit = _fsp_layout(fsp)
    frac_bits = frac_bytes * 8
    frac_mask = (1 << frac_bits) - 1

    def convert(raw: bytes) -> Any:
        value = _from_bytes(raw, "big")
        if value == 0:
            return zero("0000-00-00 00:00:00")
        return _zoned_text(value >> frac_bits, (value & frac_mask) * unit, fsp)

    return convert


def _timestamp_legacy_converter(zero: _Zero) -> Callable[[int], Any]:
    def convert(seconds: int) -> Any:
        return zero("0000-00-00 00:00:00") if seconds == 0 else _zoned_text(seconds, 0, 0)

    return convert


def _time2_converter(fsp: int, out: Callable[[int], Any] | None) -> Callable[[bytes], Any]:
    frac_bytes, unit = _fsp_layout(fsp)
    frac_bits = 8 * frac_bytes
    frac_mask = (1 << frac_bits) - 1
    offset = 1 << (8 * (3 + frac_bytes) - 1)

    def convert(raw: bytes) -> Any:
        value = _from_bytes(raw, "big") - offset
        negative = value < 0
        if negative:
            value = -value
        packed = value >> frac_bits
        micros = ((packed >> 12 & 0x3FF) * 3600 + (packed >> 6 & 63) * 60 + (packed & 63)) * _US + (
            value & frac_mask
        ) * unit
        if negative:
            micros = -micros
        return micros if out is None else out(micros)

    return convert


def _time_legacy_converter(out: Callable[[int], Any] | None) -> Callable[[int], Any]:
    def convert(value: int) -> Any:
        negative = value < 0
        hours, rest = divmod(-value if negative else value, 10_000)
        minutes, seconds = divmod(rest, 100)
        micros = (hours * 3600 + minutes * 60 + seconds) * _US
        micros = -micros if negative else micros
        return micros if out is None else out(micros)

    return convert


_DIG2BYTES: Final = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)
_EXACT: Final = Context(prec=100)  # DECIMAL has at most 65 digits: scaling never rounds


def decimal_layout(precision: int, scale: int) -> tuple[int, tuple[tuple[int, int, int], ...]]:
    """MySQL's binary DECIMAL(precision, scale): (byte size, groups as (shift, mask, 10**digits))."""
    integral, fractional = precision - scale, scale
    sizes: list[tuple[int, int]] = []  # (bytes, digits), most significant first
    if integral % 9:
        sizes.append((_DIG2BYTES[integral % 9], integral % 9))
    sizes += [(4, 9)] * (integral // 9) + [(4, 9)] * (fractional // 9)
    if fractional % 9:
        sizes.append((_DIG2BYTES[fractional % 9], fractional % 9))
    size = sum(n for n, _ in sizes)
    groups: list[tuple[int, int, int]] = []
    shift = size * 8
    for n, digits in sizes:
        shift -= n * 8
        groups.append((shift, (1 << (n * 8)) - 1, 10**digits))
    return size, tuple(groups)


def _decimal_unscaled(precision: int, scale: int) -> tuple[int, Callable[[bytes], int]]:
    size, groups = decimal_layout(precision, scale)
    top = 1 << (size * 8 - 1)
    flip_negative = ((1 << (size * 8)) - 1) ^ top

    def unscaled(raw: bytes) -> int:
        value = _from_bytes(raw, "big")
        negative = not value & top
        value ^= flip_negative if negative else top
        number = 0
        for shift, mask, base in groups:
            number = number * base + (value >> shift & mask)
        return -number if negative else number

    return size, unscaled


def _precise_decimal_converter(precision: int, scale: int) -> Callable[[bytes], str]:
    """Binary DECIMAL to Debezium's precise form in one call (the hot path of :func:`_decimal_unscaled` + base64):
    generated per (precision, scale) with the digit groups unrolled."""
    size, groups = decimal_layout(precision, scale)
    top = 1 << (size * 8 - 1)
    flip_negative = ((1 << (size * 8)) - 1) ^ top
    number = "0"
    for shift, mask, base in groups:  # integers made here only
        group = f"(value >> {shift} & {mask})"
        number = group if number == "0" else f"({number}) * {base} + {group}"
    source = f"""def convert(raw):
    value = from_bytes(raw, "big")
    if value & {top}:
        value ^= {top}
        number = {number}
        return b2a(number.to_bytes((number.bit_length() >> 3) + 1, "big"), newline=False).decode("ascii")
    value ^= {flip_negative}
    number = -({number})
    return b2a(number.to_bytes(((~number).bit_length() >> 3) + 1, "big", signed=True), newline=False).decode("ascii")
"""
    ns: dict[str, Any] = {"from_bytes": _from_bytes, "b2a": _b2a_base64}
    exec(compile(source, f"<cdc DECIMAL({precision},{scale}) converter>", "exec"), ns)  # integers only
    convert: Callable[[bytes], str] = ns["convert"]
    return convert


def _set_converter(labels: tuple[str, ...]) -> Callable[[int], str]:
    cache: dict[int, str] = {}
    limit = 1 << len(labels)

    def convert(mask: int) -> str:
        text = cache.get(mask)
        if text is None:
            if mask >= limit:
                raise ValueError(f"SET bit mask {mask:#x} has bits beyond its {len(labels)} members")
            text = ",".join(label for i, label in enumerate(labels) if mask >> i & 1)
            if len(cache) < 4096:
                cache[mask] = text
        return text

    return convert


def _geometry(raw: bytes) -> dict[str, Any]:
    if len(raw) < 4:
        raise ValueError(f"a GEOMETRY value needs at least 4 bytes (SRID), got {len(raw)}")
    srid = _from_bytes(raw[:4], "little")
    return {"wkb": _b64(raw[4:]), "srid": srid or None}


# ---------------------------------------------------------------------------------------------
# MySQL binary JSON -> JSON text
# ---------------------------------------------------------------------------------------------

_JSON_ESCAPES: Final = {i: f"\\u{i:04X}" for i in range(32)} | {
    0x08: "\\b",
    0x09: "\\t",
    0x0A: "\\n",
    0x0C: "\\f",
    0x0D: "\\r",
    0x22: '\\"',
    0x5C: "\\\\",
}
_I16, _U16, _I32, _U32 = struct.Struct("<h"), struct.Struct("<H"), struct.Struct("<i"), struct.Struct("<I")
_I64, _U64, _F64 = struct.Struct("<q"), struct.Struct("<Q"), struct.Struct("<d")


def _java_double_text(value: float) -> str:
    """A double as Debezium's JSON formatter writes it.

    That is Java's ``Double.toString`` (shortest digits, like ``repr``) between 1e-3 and 1e7,
    and the exact value in plain digits (``BigDecimal.toPlainString``) elsewhere.
    """
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(value)
    return format(Decimal(value), "f")


def _json_varlen(data: bytes, pos: int) -> tuple[int, int]:
    length = shift = 0
    for _ in range(5):
        byte = data[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length, pos
        shift += 7
    raise ValueError("JSON string length uses more than 5 bytes")


def _json_packed_temporal(field_type: int, packed: int) -> str:
    negative = packed < 0
    if negative:
        packed = -packed
    micros = packed & 0xFFFFFF
    whole = packed >> 24
    fraction = f".{micros:06d}".rstrip("0") if micros else ""
    if field_type == T_TIME:
        hms = whole
        text = f"{hms >> 12 & 0x3FF:02d}:{hms >> 6 & 63:02d}:{hms & 63:02d}{fraction}"
        return ("-" if negative else "") + text
    ymd = whole >> 17
    hms = whole & 0x1FFFF
    ym = ymd >> 5
    day_text = f"{ym // 13:04d}-{ym % 13:02d}-{ymd & 31:02d}"
    if field_type in (T_DATE, T_NEWDATE):
        return day_text
    return f"{day_text} {hms >> 12:02d}:{hms >> 6 & 63:02d}:{hms & 63:02d}{fraction}"


def _json_opaque(data: bytes, pos: int, out: list[str]) -> None:
    field_type = data[pos]
    length, pos = _json_varlen(data, pos + 1)
    raw = data[pos : pos + length]
    if len(raw) != length:
        raise ValueError("JSON opaque value overruns its document")
    if field_type in (T_NEWDECIMAL, T_DECIMAL):
        precision, scale = raw[0], raw[1]
        _size, unscaled = _decimal_unscaled(precision, scale)
        out.append(format(Decimal(unscaled(raw[2:])).scaleb(-scale, _EXACT), "f"))
    elif field_type in (T_DATE, T_NEWDATE, T_DATETIME, T_TIMESTAMP, T_TIME, T_DATETIME2, T_TIMESTAMP2, T_TIME2):
        kind = {T_DATETIME2: T_DATETIME, T_TIMESTAMP2: T_TIMESTAMP, T_TIME2: T_TIME}.get(field_type, field_type)
        out.append('"' + _json_packed_temporal(kind, _I64.unpack_from(raw)[0]) + '"')
    else:
        out.append('"' + _b64(raw) + '"')


def _json_value(value_type: int, data: bytes, pos: int, out: list[str]) -> None:
    if value_type <= 3:
        _json_container(data, pos, value_type, out)
    elif value_type == 4:
        out.append(("null", "true", "false")[data[pos]])
    elif value_type == 5:
        out.append(str(_I16.unpack_from(data, pos)[0]))
    elif value_type == 6:
        out.append(str(_U16.unpack_from(data, pos)[0]))
    elif value_type == 7:
        out.append(str(_I32.unpack_from(data, pos)[0]))
    elif value_type == 8:
        out.append(str(_U32.unpack_from(data, pos)[0]))
    elif value_type == 9:
        out.append(str(_I64.unpack_from(data, pos)[0]))
    elif value_type == 10:
        out.append(str(_U64.unpack_from(data, pos)[0]))
    elif value_type == 11:
        out.append(_java_double_text(_F64.unpack_from(data, pos)[0]))
    elif value_type == 12:
        length, pos = _json_varlen(data, pos)
        text = data[pos : pos + length]
        if len(text) != length:
            raise ValueError("JSON string overruns its document")
        out.append('"' + text.decode("utf-8").translate(_JSON_ESCAPES) + '"')
    elif value_type == 15:
        _json_opaque(data, pos, out)
    else:
        raise ValueError(f"unknown JSON value type {value_type}")


def _json_container(data: bytes, start: int, container_type: int, out: list[str]) -> None:
    large = container_type & 1
    is_object = container_type < 2
    offset = _U32 if large else _U16
    width = 4 if large else 2
    count = offset.unpack_from(data, start)[0]
    size = offset.unpack_from(data, start + width)[0]
    if start + size > len(data):
        raise ValueError("JSON container overruns its document")
    key_entries = start + 2 * width
    value_entries = key_entries + (count * (width + 2) if is_object else 0)
    entry_size = 1 + width
    out.append("{" if is_object else "[")
    for i in range(count):
        if i:
            out.append(",")
        if is_object:
            entry = key_entries + i * (width + 2)
            key_at = start + offset.unpack_from(data, entry)[0]
            key_len = _U16.unpack_from(data, entry + width)[0]
            out.append('"' + data[key_at : key_at + key_len].decode("utf-8").translate(_JSON_ESCAPES) + '":')
        entry = value_entries + i * entry_size
        value_type = data[entry]
        inlined = value_type in (4, 5, 6) or (large and value_type in (7, 8))
        if inlined:
            _json_value(value_type, data, entry + 1, out)
        else:
            _json_value(value_type, data, start + offset.unpack_from(data, entry + 1)[0], out)
    out.append("}" if is_object else "]")


def json_binary_to_text(data: bytes) -> str:
    """MySQL's binary JSON as compact JSON text, as Debezium writes it.

    Objects keep the stored key order; strings escape ``"``, ``\\`` and control characters;
    doubles are Java's ``Double.toString`` (plain digits where that would use an exponent);
    DECIMAL is plain digits; DATE/DATETIME/TIME are strings with the fraction's trailing zeros
    trimmed; other opaque values are base64 strings. An empty value is MySQL's JSON ``null``
    (the server reads it so). Raises ``ValueError`` for malformed input.
    """
    if not data:
        return "null"
    out: list[str] = []
    _json_value(data[0], data, 1, out)
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Per-column plans
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecodedColumn:
    """A column of a compiled decoder: its table-map facts and the Connect schema of its values.

    ``wire`` follows Debezium's MySQL mapping under the decoder's options. (MariaDB's JSON is a
    LONGTEXT in the binlog, so its ``wire`` here is a plain string; its values are the same.)
    """

    info: ColumnInfo
    wire: Wire

    @property
    def name(self) -> str:
        return self.info.name


@dataclass(frozen=True, slots=True)
class _Plan:
    """How generated code reads one column.

    Fixed width: ``fmt`` is its struct format (``width`` bytes); ``int24`` columns use two
    fields ("Hb"/"HB") joined as ``lo | hi << 16``. Variable width: ``prefix`` is the byte count
    of its length prefix; ``codec`` (a Python codec name) or ``conv`` finishes the value.
    """

    info: ColumnInfo
    wire: Wire
    width: int = 0
    fmt: str = ""
    int24: bool = False
    prefix: int = 0
    codec: str | None = None
    conv: Callable[[Any], Any] | None = None
    fast: tuple[int, int, bool, tuple[tuple[int, int], ...]] = (0, 0, False, ())  # see _fast_spec

    @property
    def fixed(self) -> bool:
        return self.prefix == 0


_INT_FORMATS: Final = {T_TINY: ("b", "B", 1), T_SHORT: ("h", "H", 2), T_LONG: ("i", "I", 4), T_LONGLONG: ("q", "Q", 8)}
_UINT_FORMATS: Final = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _plan(col: ColumnInfo, options: DecoderOptions, table: str) -> _Plan:
    t = col.type
    opt = col.nullable
    mode = options.time_precision
    if t in _INT_FORMATS:
        signed_fmt, unsigned_fmt, width = _INT_FORMATS[t]
        if t == T_LONGLONG and col.unsigned:
            wire = bigint_unsigned_wire(options.bigint_unsigned_handling, optional=opt)
            if options.bigint_unsigned_handling is BigintUnsignedHandling.LONG:
                where = f"{table}.{col.name}"

                def as_long(value: int) -> int:
                    if value > _INT64_MAX:
                        raise TargetValueError(
                            f"{where}: BIGINT UNSIGNED value {value} does not fit int64",
                            hint="use bigint_unsigned_handling precise",
                        )
                    return value

                return _Plan(col, wire, 8, "Q", conv=as_long)
            return _Plan(col, wire, 8, "Q", conv=lambda v: _b64(_unscaled_bytes(v)))
        bits = {T_TINY: 16, T_SHORT: 32 if col.unsigned else 16, T_LONG: 64 if col.unsigned else 32}.get(t, 64)
        return _Plan(col, int_wire(bits, optional=opt), width, unsigned_fmt if col.unsigned else signed_fmt)
    if t == T_INT24:
        return _Plan(col, int_wire(32, optional=opt), 3, "HB" if col.unsigned else "Hb", int24=True)
    if t == T_FLOAT:
        f32 = converter_to_wire(float_wire(32, optional=False))
        return _Plan(col, float_wire(32, optional=opt), 4, "f", conv=f32)
    if t == T_DOUBLE:
        # MySQL and MariaDB refuse NaN and infinities in DOUBLE columns: the value passes as it is
        return _Plan(col, float_wire(64, optional=opt), 8, "d")
    if t == T_NEWDECIMAL:
        return _decimal_plan(col, options)
    if t == T_YEAR:
        return _Plan(col, year_wire(optional=opt), 1, "B", conv=lambda v: v + 1900 if v else 0)
    if t in (T_DATE, T_NEWDATE):
        zero = _Zero(options.zero_date_handling, col, table, 0)
        to_days = _date_converter(zero)
        fast = (_F_DATE, 0, False, ())
        return _Plan(col, date_wire(mode, optional=opt), 3, "HB", int24=True, conv=to_days, fast=fast)
    if t in (T_DATETIME2, T_DATETIME):
        wire = timestamp_wire(col.scale, mode, optional=opt)
        millis = wire.name != "io.debezium.time.MicroTimestamp"
        zero = _Zero(options.zero_date_handling, col, table, 0)
        if t == T_DATETIME:
            return _Plan(col, wire, 8, "Q", conv=_datetime_legacy_converter(millis, zero))
        width = 5 + _fsp_layout(col.scale)[0]
        to_micros = _datetime2_converter(col.scale, millis, zero)
        return _Plan(col, wire, width, f"{width}s", conv=to_micros, fast=(_F_DATETIME2, col.scale, millis, ()))
    if t in (T_TIMESTAMP2, T_TIMESTAMP):
        zero = _Zero(options.zero_date_handling, col, table, _zoned_text(0, 0, col.scale))
        if t == T_TIMESTAMP:
            return _Plan(col, zoned_timestamp_wire(optional=opt), 4, "I", conv=_timestamp_legacy_converter(zero))
        width = 4 + _fsp_layout(col.scale)[0]
        to_text = _timestamp2_converter(col.scale, zero)
        fast = (_F_TIMESTAMP2, col.scale, False, ())
        return _Plan(col, zoned_timestamp_wire(optional=opt), width, f"{width}s", conv=to_text, fast=fast)
    if t in (T_TIME2, T_TIME):
        # MySQL TIME spans ±838:59:59 whatever its precision: microseconds, as connectors/mysql/schema.py maps it
        wire = time_wire(6, mode, optional=opt)
        out: Callable[[int], Any] | None = None
        if wire.name != "io.debezium.time.MicroTime":
            to_wire = converter_to_wire(time_wire(6, mode, optional=False))
            out = lambda us: to_wire(timedelta(microseconds=us))  # noqa: E731
        if t == T_TIME:
            return _Plan(col, wire, 3, "Hb", int24=True, conv=_time_legacy_converter(out))
        width = 3 + _fsp_layout(col.scale)[0]
        return _Plan(col, wire, width, f"{width}s", conv=_time2_converter(col.scale, out))
    if t in (T_ENUM, T_SET):
        labels = col.labels or ()
        if col.length not in _UINT_FORMATS and not 1 <= col.length <= 8:
            raise SchemaError(f"{table}.{col.name}: {col.type_name} with pack length {col.length}")
        fmt = _UINT_FORMATS.get(col.length, f"{col.length}s")
        if t == T_ENUM:
            choices = ("", *labels)  # index 0 is MySQL's '' for an invalid value
            return _Plan(col, enum_wire(labels, optional=opt), col.length, fmt, conv=choices.__getitem__)
        members = _set_converter(labels)
        set_conv: Callable[[Any], str] = members
        if fmt.endswith("s"):  # 3, 5, 6 or 7 bytes: no struct code
            set_conv = lambda raw: members(_from_bytes(raw, "little"))  # noqa: E731
        return _Plan(col, set_wire(labels, optional=opt), col.length, fmt, conv=set_conv)
    if t == T_BIT:
        width = (col.length + 7) // 8
        if col.length == 1:
            return _Plan(col, bool_wire(optional=opt), 1, "B", conv=bool)
        return _Plan(col, bits_wire(col.length, optional=opt), width, f"{width}s", conv=lambda raw: _b64(raw[::-1]))
    if t in (T_VARCHAR, T_STRING, T_BLOB, T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB):
        return _string_plan(col, options, table)
    if t in (T_JSON, T_GEOMETRY) and not 1 <= col.length <= 4:
        raise SchemaError(f"{table}.{col.name}: {col.type_name} with a {col.length}-byte length prefix")
    if t == T_JSON:
        return _Plan(col, json_wire(optional=opt), prefix=col.length, conv=json_binary_to_text)
    if t == T_GEOMETRY:
        return _Plan(col, geometry_wire(optional=opt), prefix=col.length, conv=_geometry)
    raise SchemaError(f"{table}.{col.name}: cdc cannot decode MySQL type {col.type_name} from the binlog")


def _decimal_plan(col: ColumnInfo, options: DecoderOptions) -> _Plan:
    precision, scale = col.precision, col.scale
    size, unscaled = _decimal_unscaled(precision, scale)
    wire = decimal_wire(precision, scale, options.decimal_handling, optional=col.nullable)
    if options.decimal_handling is DecimalHandling.PRECISE:
        groups = tuple((mask.bit_length() // 8, base) for _, mask, base in decimal_layout(precision, scale)[1])
        fast = (_F_DECIMAL, 0, False, groups) if len(groups) <= 16 else (0, 0, False, ())
        return _Plan(col, wire, size, f"{size}s", conv=_precise_decimal_converter(precision, scale), fast=fast)
    to_wire = converter_to_wire(decimal_wire(precision, scale, options.decimal_handling, optional=False))
    return _Plan(col, wire, size, f"{size}s", conv=lambda raw: to_wire(Decimal(unscaled(raw)).scaleb(-scale, _EXACT)))


def _string_plan(col: ColumnInfo, options: DecoderOptions, table: str) -> _Plan:
    t = col.type
    if t in (T_VARCHAR, T_STRING):
        prefix = 1 if col.length < 256 else 2
    else:
        prefix = col.length
        if not 1 <= prefix <= 4:
            raise SchemaError(f"{table}.{col.name}: BLOB/TEXT with a {prefix}-byte length prefix")
    charset = col.charset
    if charset is None:
        raise SchemaError(
            f"{table}.{col.name}: the table map names no known character set for this column "
            f"(collation id {col.collation})",
            hint="set binlog_row_metadata=FULL, or pass the server's collations in DecoderOptions.collations",
        )
    if charset not in _CODECS:
        raise SchemaError(f"{table}.{col.name}: cdc cannot decode character set {charset!r} (no Python codec)")
    if _CODECS[charset] is None:  # binary: BINARY, VARBINARY, BLOB
        binary = _binary_converter(options.binary_handling)
        wire = bytes_wire(options.binary_handling, optional=col.nullable)
        if t == T_STRING:  # BINARY(n): the binlog drops trailing 0x00; Debezium pads them back (DBZ-254)
            width = col.length
            return _Plan(col, wire, prefix=prefix, conv=lambda raw: binary(raw.ljust(width, b"\0")))
        fast = (_F_BASE64, 0, False, ()) if binary is _b64 else (0, 0, False, ())
        return _Plan(col, wire, prefix=prefix, conv=binary, fast=fast)
    codec = _CODECS[charset]
    if codec == "mysql-latin1":
        return _Plan(col, string_wire(optional=col.nullable), prefix=prefix, conv=_mysql_latin1)
    return _Plan(col, string_wire(optional=col.nullable), prefix=prefix, codec=codec)


# ---------------------------------------------------------------------------------------------
# Code generation: one straight-line function per row-image layout
# ---------------------------------------------------------------------------------------------

_ERRORS: Final = (struct.error, IndexError, ValueError, KeyError, TypeError, OverflowError, ArithmeticError)


class _Layout(NamedTuple):
    """The generated readers of one row-image layout (one set of present columns)."""

    source: str
    image: ImageReader  # one image at ``pos``: (row, position after it)
    images: ImagesReader  # every image from ``pos`` to ``end`` appended to ``out``: the position reached
    fast: Any = None  # the compiled reader's layout (connectors/mysql/_speedups.c), when it is built


# Conversions the compiled reader does itself (the Python converter stays the reference: it gets
# every value the compiled code does not handle exactly). Kept in step with _speedups.c.
_F_DATE, _F_DATETIME2, _F_TIMESTAMP2, _F_DECIMAL, _F_BASE64 = 1, 2, 3, 4, 5
_M_SINT, _M_UINT, _M_F32, _M_F64, _M_FIXED, _M_VARBYTES, _M_VARSTR = range(7)
_STRUCT_MODES: Final = {"b": _M_SINT, "h": _M_SINT, "i": _M_SINT, "q": _M_SINT}
_STRUCT_MODES.update({"B": _M_UINT, "H": _M_UINT, "I": _M_UINT, "Q": _M_UINT})


def _load_speedups() -> Any:
    """The compiled reader, or None when it is not built or ``CDC_MYSQL_SPEEDUPS=0``."""
    if os.environ.get("CDC_MYSQL_SPEEDUPS", "1") == "0":
        return None
    try:
        from connectors.mysql import _speedups  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _speedups


_SPEEDUPS: Final = _load_speedups()


def speedups_enabled() -> bool:
    """Whether row images are read by the compiled reader (with the Python reader as fallback)."""
    return _SPEEDUPS is not None


def _fast_spec(plans: Sequence[_Plan]) -> tuple[tuple[Any, ...], ...]:
    """The column spec the compiled reader takes (see make_layout in _speedups.c)."""
    spec = []
    for p in plans:
        if p.fixed:
            if p.int24:
                mode, width = (_M_UINT if p.fmt == "HB" else _M_SINT), 3
            elif p.fmt in _STRUCT_MODES:
                mode, width = _STRUCT_MODES[p.fmt], p.width
            elif p.fmt == "f":
                mode, width = _M_F32, 4
            elif p.fmt == "d":
                mode, width = _M_F64, 8
            else:  # "<n>s"
                mode, width = _M_FIXED, p.width
        else:
            mode, width = (_M_VARSTR if p.codec is not None else _M_VARBYTES), p.prefix
        kind, fsp, millis, groups = p.fast
        spec.append((p.info.name, mode, width, p.info.nullable, p.conv, p.codec, kind, fsp, millis, groups))
    return tuple(spec)


def _generate(plans: Sequence[_Plan], table: str) -> _Layout:
    """Source and functions reading row images whose present columns are ``plans``, in order.

    The generated code only contains identifiers and integers made here; every value from the
    server (names, labels, codecs, converters) is bound in the functions' namespace.
    """
    ns: dict[str, Any] = {"ERRORS": _ERRORS}
    lines: list[str] = []
    emit = lines.append
    count = len(plans)
    null_bytes = (count + 7) // 8
    not_null_mask = sum(1 << k for k, p in enumerate(plans) if not p.info.nullable)
    names = [p.info.name for p in plans]

    def fail(c: int, pos: int, exc: BaseException) -> DecodeError:
        column = f"column {names[c]!r} ({plans[c].info.type_name})" if c >= 0 else "the NULL bitmap"
        return DecodeError(f"{table}: cannot decode {column} at byte {pos} of the row images: {exc}")

    def not_null_violation(nulls: int) -> DecodeError:
        bad = [names[k] for k in range(count) if nulls >> k & 1 and not plans[k].info.nullable]
        return DecodeError(f"{table}: the binlog has NULL for NOT NULL column(s) {bad}: table map and rows disagree")

    ns["FAIL"], ns["NN_FAIL"] = fail, not_null_violation
    for k, name in enumerate(names):
        ns[f"N{k}"] = name
    emit("def image(buf, pos):")
    emit("    c = -1")
    emit("    try:")
    if null_bytes == 1:
        emit("        nulls = buf[pos]")
    elif null_bytes:
        emit(f"        nulls = int.from_bytes(buf[pos:pos + {null_bytes}], 'little')")
    else:
        emit("        nulls = 0")
    if null_bytes:
        emit(f"        pos += {null_bytes}")
    if not_null_mask:
        emit(f"        if nulls & {not_null_mask}:")
        emit("            raise NN_FAIL(nulls)")

    def finish(k: int, plan: _Plan, indent: str, mark: bool) -> None:
        if plan.conv is not None:
            ns[f"C{k}"] = plan.conv
            if mark:  # in a struct run, ``c`` names the run's first column until here
                emit(f"{indent}c = {k}")
            emit(f"{indent}v{k} = C{k}(v{k})")

    k = 0
    while k < count:
        plan = plans[k]
        if plan.fixed and not plan.info.nullable:
            run = [k]
            while run[-1] + 1 < count and plans[run[-1] + 1].fixed and not plans[run[-1] + 1].info.nullable:
                run.append(run[-1] + 1)
            fmt = "<" + "".join(plans[j].fmt for j in run)
            ns[f"S{k}"] = struct.Struct(fmt).unpack_from
            targets = [f"v{j}" if not plans[j].int24 else f"lo{j}, hi{j}" for j in run]
            emit(f"        c = {k}")
            emit(f"        {', '.join(targets)}, = S{k}(buf, pos)")
            emit(f"        pos += {sum(plans[j].width for j in run)}")
            for j in run:
                if plans[j].int24:
                    emit(f"        v{j} = lo{j} | hi{j} << 16")
                finish(j, plans[j], "        ", j != k)
            k = run[-1] + 1
            continue
        indent = "        "
        emit(f"        c = {k}")
        if plan.info.nullable:
            emit(f"        if nulls & {1 << k}:")
            emit(f"            v{k} = None")
            emit("        else:")
            indent = "            "
        if plan.fixed:
            ns[f"S{k}"] = struct.Struct("<" + plan.fmt).unpack_from
            if plan.int24:
                emit(f"{indent}lo{k}, hi{k} = S{k}(buf, pos)")
                emit(f"{indent}v{k} = lo{k} | hi{k} << 16")
            else:
                emit(f"{indent}v{k} = S{k}(buf, pos)[0]")
            emit(f"{indent}pos += {plan.width}")
        else:
            if plan.prefix == 1:
                emit(f"{indent}n = buf[pos]")
            elif plan.prefix == 2:
                emit(f"{indent}n = buf[pos] | buf[pos + 1] << 8")
            elif plan.prefix == 3:
                emit(f"{indent}n = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16")
            else:
                ns["U32"] = _U32.unpack_from
                emit(f"{indent}n = U32(buf, pos)[0]")
            emit(f"{indent}pos += {plan.prefix}")
            if plan.codec is not None:
                ns[f"E{k}"] = plan.codec
                emit(f"{indent}v{k} = buf[pos:pos + n].decode(E{k})")
            else:
                emit(f"{indent}v{k} = buf[pos:pos + n]")
            emit(f"{indent}pos += n")
        finish(k, plan, indent, False)
        k += 1
    row = "{" + ", ".join(f"N{j}: v{j}" for j in range(count)) + "}"
    body = lines[3:]  # what reads one image, inside ``try`` (after the header lines above)
    emit("    except ERRORS as exc:")
    emit("        raise FAIL(c, pos, exc) from exc")
    emit(f"    return {row}, pos")
    emit("")
    # the same body in a loop: every image of an event in one call, without a tuple per image
    emit("def images(buf, pos, end, out):")
    emit("    append = out.append")
    emit("    c = -1")
    emit("    try:")
    emit("        while pos < end:")
    emit("            c = -1")
    lines.extend("    " + line for line in body)
    emit(f"            append({row})")
    emit("    except ERRORS as exc:")
    emit("        raise FAIL(c, pos, exc) from exc")
    emit("    return pos")
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<cdc row decoder for {table}>", "exec"), ns)  # generated from the templates above only
    fast = _SPEEDUPS.make_layout(_fast_spec(plans)) if _SPEEDUPS is not None else None
    return _Layout(source, ns["image"], ns["images"], fast)


# ---------------------------------------------------------------------------------------------
# Compiled decoders
# ---------------------------------------------------------------------------------------------


class RowDecoder:
    """Decodes the rows events of one table map into Debezium row images.

    Built by :func:`compile_decoder`; safe to share between threads (its per-layout cache only
    ever grows by whole entries).
    """

    def __init__(self, table_map: TableMap, options: DecoderOptions) -> None:
        self.table_map = table_map
        self.options = options
        self.table = table_map.qualified_name
        plans = [_plan(col, options, self.table) for col in table_map.columns]
        self._plans = plans
        self.columns: tuple[DecodedColumn, ...] = tuple(DecodedColumn(p.info, p.wire) for p in plans)
        full = bytes([0xFF] * ((len(plans) + 7) // 8))
        self._full = full
        self._images: dict[bytes, _Layout] = {}
        self._layouts: dict[bytes | None, _Layout] = {}  # by present bitmap as events carry it
        self._image(full)  # compile the common layout now, so that errors surface at compile time

    def _present_key(self, present: bytes | None) -> bytes:
        if present is None:
            return self._full
        count = len(self._plans)
        if len(present) != (count + 7) // 8:
            raise DecodeError(f"{self.table}: a rows event has {len(present) * 8} column bits, the table map {count}")
        tail = count & 7
        if tail:  # bits beyond the last column are don't-care
            present = present[:-1] + bytes([present[-1] | (0xFF << tail) & 0xFF])
        return present

    def _image(self, key: bytes) -> _Layout:
        found = self._images.get(key)
        if found is None:
            plans = [p for i, p in enumerate(self._plans) if key[i >> 3] >> (i & 7) & 1]
            found = _generate(plans, self.table)
            if len(self._images) < 64:
                self._images[key] = found
        return found

    def _layout(self, present: bytes | None) -> _Layout:
        """The layout of images whose present bitmap is ``present`` (None: every column)."""
        found = self._layouts.get(present)
        if found is None:
            found = self._image(self._present_key(present))
            if len(self._layouts) < 64:
                self._layouts[present] = found
        return found

    def source(self, present: bytes | None = None) -> str:
        """The generated Python source that reads row images (for the given present bitmap)."""
        return self._image(self._present_key(present)).source

    def decode_rows(
        self,
        raw: bytes | bytearray | memoryview,
        event_type: int | RowsKind,
        *,
        present: bytes | None = None,
        present_after: bytes | None = None,
    ) -> list[RowPair]:
        """The ``(before, after)`` row images in ``raw`` (the rows of one event, back to back).

        ``event_type`` is the binlog type code or a :class:`RowsKind`: writes give
        ``(None, after)``, deletes ``(before, None)``, updates ``(before, after)``. ``present``
        (and for updates ``present_after``) are the event's column-present bitmaps; None means
        every column (``binlog_row_image=FULL``). A column absent from an image is absent from
        its dict. Raises :class:`DecodeError` for malformed bytes or a zero date that
        ``zero_date_handling`` refuses, :class:`TargetValueError` for a BIGINT UNSIGNED beyond
        int64 under ``bigint_unsigned_handling=long``.
        """
        kind = event_type if isinstance(event_type, RowsKind) else _KIND_BY_TYPE.get(event_type)
        if kind is None:
            raise DecodeError(f"binlog event type {event_type} is not a rows event cdc decodes")
        flat = self._flat(raw, kind, present, present_after)
        if kind is RowsKind.WRITE:
            return [(None, after) for after in flat]
        if kind is RowsKind.DELETE:
            return [(before, None) for before in flat]
        return list(zip(flat[0::2], flat[1::2], strict=True))

    def _flat(
        self,
        raw: bytes | bytearray | memoryview,
        kind: RowsKind,
        present: bytes | None,
        present_after: bytes | None,
    ) -> list[Row]:
        """Every row image in ``raw``, in order (an update's before and after images alternate)."""
        buf = raw if type(raw) is bytes else bytes(raw)
        end = len(buf)
        layout = self._layout(present)
        out: list[Row] = []
        second = layout if present_after is None or kind is not RowsKind.UPDATE else self._layout(present_after)
        if second is layout:  # one layout for every image: one generated loop
            fast = layout.fast
            if fast is not None:
                try:
                    pos = _SPEEDUPS.images(fast, buf, 0, end, out)
                except Exception:  # noqa: BLE001 - the Python reader is the reference: it decides, and names the error
                    out.clear()
                    pos = layout.images(buf, 0, end, out)
            else:
                pos = layout.images(buf, 0, end, out)
        else:  # an update whose after images have other columns present than its before images
            image, image_after = layout.image, second.image
            append = out.append
            pos = 0
            while pos < end:
                before, pos = image(buf, pos)
                after, pos = image_after(buf, pos)
                append(before)
                append(after)
        if pos != end:
            raise DecodeError(f"{self.table}: the row images overrun the event by {pos - end} bytes (truncated event?)")
        if kind is RowsKind.UPDATE and len(out) & 1:
            raise DecodeError(f"{self.table}: an update's after image is missing (truncated event?)")
        return out

    def decode_images(self, rows: RawRows) -> list[Row]:
        """The row images of :func:`raw_rows`'s output as one flat list, as :meth:`decode` gives
        them without the pairs: a write's after images, a delete's before images, an update's
        before and after images alternating (``before, after, before, after, ...``)."""
        self._check(rows)
        return self._flat(rows.data, rows.kind, rows.present, rows.present_after)

    def decode(self, rows: RawRows) -> list[RowPair]:
        """:meth:`decode_rows` for the output of :func:`raw_rows`."""
        self._check(rows)
        return self.decode_rows(rows.data, rows.kind, present=rows.present, present_after=rows.present_after)

    def _check(self, rows: RawRows) -> None:
        """Raises :class:`DecodeError` unless ``rows`` belong to this decoder's table map."""
        if rows.table_id != self.table_map.table_id:
            raise DecodeError(
                f"{self.table}: rows of table id {rows.table_id} given to the decoder of {self.table_map.table_id}"
            )
        if rows.column_count != len(self._plans):
            raise DecodeError(
                f"{self.table}: rows event has {rows.column_count} columns, the table map {len(self._plans)}"
            )


_CACHE: dict[tuple[bytes, str, DecoderOptions], RowDecoder] = {}
_CACHE_LIMIT: Final = 1024


def compile_decoder(table_map_event: Any, *, options: DecoderOptions | None = None) -> RowDecoder:
    """The decoder for the rows that follow a TABLE_MAP event, compiled once and cached.

    ``table_map_event`` is the library's ``TableMapEvent`` (its own bytes are parsed, see
    :func:`parse_table_map`; ``options.collations`` applies there) or an already parsed
    :class:`TableMap` (not cached). The cache key is the table map's bytes (table id, names,
    types, metadata, nullability, character sets, labels), the server kind and the options, so
    a changed definition under the same table id gets a new decoder. Raises
    :class:`SchemaError` for a table cdc cannot decode (see the module docstring) and
    :class:`DecodeError` for a malformed table map.
    """
    options = options or DecoderOptions()
    if isinstance(table_map_event, TableMap):
        return RowDecoder(table_map_event, options)
    if int(table_map_event.event_type) != TABLE_MAP:
        raise DecodeError(f"expected a TABLE_MAP event, got event type {table_map_event.event_type}")
    body = event_body(table_map_event)
    dbms = str(getattr(table_map_event, "dbms", None) or "mysql")
    key = (body, dbms, options)
    found = _CACHE.get(key)
    if found is not None:
        return found
    table_map = parse_table_map(
        body,
        dbms=dbms,
        post_header_len=_declared_post_header_len(table_map_event, 8),
        extra_collations=dict(options.collations),
    )
    decoder = RowDecoder(table_map, options)
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[key] = decoder
    return decoder
