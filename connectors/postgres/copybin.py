"""PostgreSQL's binary COPY format, for the ``pg-binary`` backup chunks of :mod:`connectors.postgres.backup`.

A binary COPY stream is a 19-byte header (signature, flags, an empty extension), then one tuple
per row (a 16-bit field count, then per field a 32-bit length, -1 for NULL, and the value's
``typsend`` bytes), then a 16-bit -1. The server parses it without running a type's input
function, which is what makes a restore into PostgreSQL faster than with the text format.

Only the built-in types of :data:`BINARY_TYPES` are stored this way: types whose binary form has not
changed across PostgreSQL versions and which :func:`text_of` turns back, in Python, into exactly the
text the server's output function writes under :func:`~connectors.postgres.types.session_options`
(UTF-8, ``DateStyle ISO``, ``TimeZone UTC``, shortest exact floats, hex bytea). A cross-engine restore
therefore reads a value through the very converter the initial snapshot uses for its text: the two
encodings give the same row images (``tests/integration/test_backup_native.py`` compares them value by
value on a real server). Text values are the server encoding's bytes, so the format is only used on a
UTF-8 server.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Callable
from typing import Any, Final

__all__ = ["BINARY_TYPES", "HEADER", "TRAILER", "header_end", "split", "text_of"]

#: The header of a binary COPY stream without header extension.
HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
#: The end of a binary COPY stream.
TRAILER: Final = b"\xff\xff"

#: ``pg_catalog`` type names whose values a ``pg-binary`` chunk may hold (no arrays, domains, enums).
BINARY_TYPES: Final = frozenset(
    {
        "bool",
        "int2",
        "int4",
        "int8",
        "float8",
        "numeric",
        "text",
        "varchar",
        "bpchar",
        "json",
        "jsonb",
        "bytea",
        "uuid",
        "date",
        "timestamp",
        "timestamptz",
    }
)

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_F64 = struct.Struct(">d")


# ---------------------------------------------------------------------------------------------
# Splitting a stream into rows
# ---------------------------------------------------------------------------------------------


def header_end(data: bytes | memoryview) -> int:
    """Where the header of a binary COPY stream (signature, flags, extension) ends in ``data``; ValueError
    when ``data`` does not start with one."""
    if len(data) < 19 or data[:11] != HEADER[:11]:
        raise ValueError("not a binary COPY stream (no signature)")
    end: int = 19 + _I32.unpack_from(data, 15)[0]
    if not 19 <= end <= len(data):
        raise ValueError("a binary COPY header past the end of the stream")
    return end


def _split_python(data: bytes, width: int) -> list[tuple[bytes | None, ...]]:
    """Every row of the binary COPY stream ``data`` as its fields (bytes, None for NULL). ValueError for
    anything but a whole stream of ``width``-field tuples."""
    n = len(data)
    pos = header_end(data)
    rows: list[tuple[bytes | None, ...]] = []
    i16, i32 = _I16.unpack_from, _I32.unpack_from
    while True:
        if pos + 2 > n:
            raise ValueError("a binary COPY stream without its end marker")
        count = i16(data, pos)[0]
        pos += 2
        if count == -1:
            break
        if count != width:
            raise ValueError(f"a row of {count} fields, not {width}")
        fields: list[bytes | None] = []
        for _ in range(count):
            if pos + 4 > n:
                raise ValueError("a field past the end of the stream")
            size = i32(data, pos)[0]
            pos += 4
            if size == -1:
                fields.append(None)
                continue
            if size < 0 or pos + size > n:
                raise ValueError("a field past the end of the stream")
            fields.append(data[pos : pos + size])
            pos += size
        rows.append(tuple(fields))
    if pos != n:
        raise ValueError("bytes after the end marker of a binary COPY stream")
    return rows


def _load_split() -> Callable[[bytes, int], list[tuple[bytes | None, ...]]]:
    if os.environ.get("CDC_PG_SPEEDUPS", "1") != "0":
        try:
            from connectors.postgres import _speedups  # type: ignore[attr-defined]

            fast: Callable[[bytes, int], list[tuple[bytes | None, ...]]] = _speedups.copy_binary_rows
            return fast
        except (ImportError, AttributeError):
            pass
    return _split_python


#: ``split(data, width)``: the rows of a whole binary COPY stream, compiled when built (same results and
#: ValueErrors as the Python reference, which tests/unit/test_pg_copybin.py compares it with).
split: Final = _load_split()


# ---------------------------------------------------------------------------------------------
# A value's binary form as its output-function text
# ---------------------------------------------------------------------------------------------

_POSTGRES_EPOCH_JDATE: Final = 2451545  # 2000-01-01
_USECS_PER_DAY: Final = 86_400_000_000
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _j2date(jd: int) -> tuple[int, int, int]:
    """PostgreSQL's ``j2date``: a Julian day number as (year, month, day); year 0 is 1 BC."""
    julian = jd + 32044
    quad = julian // 146097
    extra = (julian - quad * 146097) * 4 + 3
    julian += 60 + quad * 3 + extra // 146097
    quad = julian // 1461
    julian -= quad * 1461
    y = julian * 4 // 1461
    julian = ((julian + 305) % 365 if y != 0 else (julian + 306) % 366) + 123
    y += quad * 4
    quad = julian * 2141 // 65536
    day = julian - 7834 * quad // 256
    month = (quad + 10) % 12 + 1
    return y - 4800, month, day


def _ymd(jd: int) -> tuple[str, bool]:
    """``YYYY-MM-DD`` of a Julian day (ISO DateStyle), and whether it is BC."""
    year, month, day = _j2date(jd)
    bc = year <= 0
    return f"{(1 - year) if bc else year:04d}-{month:02d}-{day:02d}", bc


def _date(b: bytes) -> str:
    days = _I32.unpack(b)[0]
    if days == _INT32_MAX:
        return "infinity"
    if days == _INT32_MIN:
        return "-infinity"
    text, bc = _ymd(days + _POSTGRES_EPOCH_JDATE)
    return text + " BC" if bc else text


def _timestamp_text(b: bytes, zone: str) -> str:
    us = _I64.unpack(b)[0]
    if us == _INT64_MAX:
        return "infinity"
    if us == _INT64_MIN:
        return "-infinity"
    days, clock = divmod(us, _USECS_PER_DAY)
    day, bc = _ymd(days + _POSTGRES_EPOCH_JDATE)
    seconds, fraction = divmod(clock, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    text = f"{day} {hour:02d}:{minute:02d}:{second:02d}"
    if fraction:
        text += f".{fraction:06d}".rstrip("0")
    text += zone
    return text + " BC" if bc else text


def _timestamp(b: bytes) -> str:
    return _timestamp_text(b, "")


def _timestamptz(b: bytes) -> str:
    return _timestamp_text(b, "+00")  # the session's TimeZone is UTC


_NUMERIC_NEG, _NUMERIC_NAN, _NUMERIC_PINF, _NUMERIC_NINF = 0x4000, 0xC000, 0xD000, 0xF000


def _numeric(b: bytes) -> str:
    ndigits, weight, sign, dscale = struct.unpack_from(">hhHh", b)
    if sign == _NUMERIC_NAN:
        return "NaN"
    if sign == _NUMERIC_PINF:
        return "Infinity"
    if sign == _NUMERIC_NINF:
        return "-Infinity"
    digits = struct.unpack_from(f">{ndigits}h", b, 8)
    whole = 0
    for i in range(weight + 1):
        whole = whole * 10000 + (digits[i] if i < ndigits else 0)
    text = str(whole)
    if dscale > 0:
        groups = (dscale + 3) // 4
        fraction = "".join(
            f"{digits[i] if 0 <= i < ndigits else 0:04d}" for i in range(weight + 1, weight + 1 + groups)
        )
        text += "." + fraction[:dscale]
    return "-" + text if sign == _NUMERIC_NEG else text


def _float8(b: bytes) -> str:
    value = _F64.unpack(b)[0]
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)  # reads back to the same float as the server's shortest exact text


def _int(b: bytes) -> int:
    return int.from_bytes(b, "big", signed=True)  # the converter of integer columns is int()


def _bool(b: bytes) -> str:
    return "t" if b != b"\x00" else "f"


def _utf8(b: bytes) -> str:
    return b.decode()


def _jsonb(b: bytes) -> str:
    if b[:1] != b"\x01":
        raise ValueError(f"jsonb in binary format version {b[:1]!r}")
    return b[1:].decode()


def _bytea(b: bytes) -> str:
    return "\\x" + b.hex()


def _uuid(b: bytes) -> str:
    h = b.hex()
    if len(h) != 32:
        raise ValueError("a uuid of other than 16 bytes")
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_TEXT_OF: Final[dict[str, Callable[[bytes], Any]]] = {
    "bool": _bool,
    "int2": _int,
    "int4": _int,
    "int8": _int,
    "float8": _float8,
    "numeric": _numeric,
    "text": _utf8,
    "varchar": _utf8,
    "bpchar": _utf8,
    "json": _utf8,
    "jsonb": _jsonb,
    "bytea": _bytea,
    "uuid": _uuid,
    "date": _date,
    "timestamp": _timestamp,
    "timestamptz": _timestamptz,
}


def text_of(type_name: str) -> Callable[[bytes], Any]:
    """For a type of :data:`BINARY_TYPES`: its binary value as the output function's text (integers as
    ints, which the integer converter takes as they are). ValueError (or struct.error) for bytes that
    are not such a value."""
    return _TEXT_OF[type_name]
