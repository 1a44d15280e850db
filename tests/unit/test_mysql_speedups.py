"""The compiled row-image reader (connectors/mysql/_speedups.c) against the Python reference.

Random table maps (every column type the decoder reads, every option) and random row bytes —
mostly well-formed values, also impossible dates, zero dates, out-of-range DECIMAL digit groups,
NULLs in NOT NULL columns, invalid text and truncated events. Both readers must agree exactly:
the same rows (values and their types), or both fail. The Python reader stays the reference;
decoder.py falls back to it whenever the compiled one fails.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.mysql import decoder as d
from connectors.mysql.decoder import ColumnInfo, DecoderOptions, RowDecoder, TableMap

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(not d.speedups_enabled(), reason="the compiled reader is not built"),
]


@st.composite
def columns(draw: st.DrawFn, index: int) -> tuple[ColumnInfo, Any]:
    """A column and a strategy for its raw binlog bytes."""
    name = f"c{index}"
    nullable = draw(st.booleans())
    kind = draw(
        st.sampled_from(
            ["int", "int24", "float", "double", "decimal", "year", "date", "datetime2", "timestamp2", "time2",
             "varchar", "blob", "binary", "enum", "set", "bit1", "bitn"]
        )
    )
    anybytes = lambda n: st.binary(min_size=n, max_size=n)  # noqa: E731
    if kind == "int":
        t, width = draw(st.sampled_from([(d.T_TINY, 1), (d.T_SHORT, 2), (d.T_LONG, 4), (d.T_LONGLONG, 8)]))
        return ColumnInfo(index, name, t, nullable, unsigned=draw(st.booleans())), anybytes(width)
    if kind == "int24":
        return ColumnInfo(index, name, d.T_INT24, nullable, unsigned=draw(st.booleans())), anybytes(3)
    if kind == "float":
        return ColumnInfo(index, name, d.T_FLOAT, nullable, length=4), st.floats(width=32).map(
            lambda f: struct.pack("<f", f)
        )
    if kind == "double":
        return ColumnInfo(index, name, d.T_DOUBLE, nullable, length=8), st.floats().map(lambda f: struct.pack("<d", f))
    if kind == "decimal":
        precision = draw(st.integers(1, 65))
        scale = draw(st.integers(0, min(30, precision)))
        size = d.decimal_layout(precision, scale)[0]
        digits = st.integers(0, 10**precision - 1)
        good = st.tuples(digits, st.booleans()).map(lambda v: _mysql_decimal(v[0], v[1], precision, scale))
        return ColumnInfo(index, name, d.T_NEWDECIMAL, nullable, precision=precision, scale=scale), st.one_of(
            good, good, good, anybytes(size)
        )
    if kind == "year":
        return ColumnInfo(index, name, d.T_YEAR, nullable), anybytes(1)
    if kind == "date":
        good = st.dates().map(lambda v: (v.year << 9 | v.month << 5 | v.day).to_bytes(3, "little"))
        return ColumnInfo(index, name, d.T_DATE, nullable), st.one_of(good, good, anybytes(3))
    if kind in ("datetime2", "timestamp2", "time2"):
        fsp = draw(st.integers(0, 6))
        frac = (fsp + 1) // 2
        if kind == "datetime2":
            good = st.datetimes().map(lambda v: _datetime2(v, fsp))
            info = ColumnInfo(index, name, d.T_DATETIME2, nullable, scale=fsp)
            return info, st.one_of(good, good, anybytes(5 + frac))
        if kind == "timestamp2":
            good = st.integers(0, 2**32 - 1).map(lambda s: s.to_bytes(4, "big") + bytes(frac))
            return ColumnInfo(index, name, d.T_TIMESTAMP2, nullable, scale=fsp), st.one_of(good, anybytes(4 + frac))
        return ColumnInfo(index, name, d.T_TIME2, nullable, scale=fsp), anybytes(3 + frac)
    if kind in ("varchar", "blob"):
        charset = draw(st.sampled_from(["utf8mb4", "latin1", "binary", "utf16", "ascii"]))
        if kind == "varchar":
            length = draw(st.sampled_from([10, 255, 300, 1000]))
            prefix = 1 if length < 256 else 2
            info = ColumnInfo(index, name, d.T_VARCHAR, nullable, length=length, charset=charset)
        else:
            prefix = draw(st.integers(1, 4))
            info = ColumnInfo(index, name, d.T_BLOB, nullable, length=prefix, charset=charset)
        text = st.text(max_size=40).map(lambda s: s.encode("utf-8"))
        payload = st.one_of(text, st.binary(max_size=40))
        return info, payload.map(lambda b: len(b).to_bytes(prefix, "little") + b)
    if kind == "binary":
        width = draw(st.integers(1, 20))
        info = ColumnInfo(index, name, d.T_STRING, nullable, length=width, charset="binary")
        return info, st.binary(max_size=width).map(lambda b: len(b).to_bytes(1, "little") + b)
    if kind in ("enum", "set"):
        labels = tuple(draw(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=10, unique=True)))
        width = 1 if kind == "enum" else draw(st.sampled_from([1, 2]))
        t = d.T_ENUM if kind == "enum" else d.T_SET
        return ColumnInfo(index, name, t, nullable, length=width, labels=labels), anybytes(width)
    if kind == "bit1":
        return ColumnInfo(index, name, d.T_BIT, nullable, length=1), anybytes(1)
    bits = draw(st.integers(2, 64))
    return ColumnInfo(index, name, d.T_BIT, nullable, length=bits), anybytes((bits + 7) // 8)


def _mysql_decimal(unscaled: int, negative: bool, precision: int, scale: int) -> bytes:
    """MySQL's binary DECIMAL of ``±unscaled / 10**scale``."""
    size, groups = d.decimal_layout(precision, scale)
    value = 0
    rest = unscaled
    parts = []
    for _shift, _mask, base in reversed(groups):
        parts.append(rest % base)
        rest //= base
    for (shift, _mask, _base), part in zip(groups, reversed(parts), strict=True):
        value |= part << shift
    value |= 1 << (size * 8 - 1)
    if negative:
        value ^= (1 << (size * 8)) - 1
    return value.to_bytes(size, "big")


def _datetime2(v: Any, fsp: int) -> bytes:
    frac = (fsp + 1) // 2
    ym = v.year * 13 + v.month
    packed = ((ym << 5 | v.day) << 17 | v.hour << 12 | v.minute << 6 | v.second) + 0x8000000000
    unit = (1, 10_000, 100, 1)[frac]
    return packed.to_bytes(5, "big") + ((v.microsecond // unit).to_bytes(frac, "big") if frac else b"")


options = st.builds(
    DecoderOptions,
    decimal_handling=st.sampled_from(list(d.DecimalHandling)),
    time_precision=st.sampled_from(list(d.TimePrecision)),
    binary_handling=st.sampled_from(list(d.BinaryHandling)),
    bigint_unsigned_handling=st.sampled_from(list(d.BigintUnsignedHandling)),
    zero_date_handling=st.sampled_from(list(d.ZeroDateHandling)),
)


@st.composite
def events(draw: st.DrawFn) -> tuple[RowDecoder, bytes]:
    count = draw(st.integers(1, 12))
    cols = [draw(columns(i)) for i in range(count)]
    table_map = TableMap(7, "db", "t", tuple(c for c, _ in cols), (), "mariadb", b"")
    decoder = RowDecoder(table_map, draw(options))
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        nulls = 0
        parts = []
        for i, (info, values) in enumerate(cols):
            if (info.nullable or draw(st.integers(0, 30)) == 0) and draw(st.integers(0, 3)) == 0:
                nulls |= 1 << i
            else:
                parts.append(draw(values))
        rows.append(nulls.to_bytes((count + 7) // 8, "little") + b"".join(parts))
    data = b"".join(rows)
    if draw(st.integers(0, 10)) == 0:  # a truncated event
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    return decoder, data


def _exact(value: Any) -> Any:
    """Floats by their repr: NaN equals NaN, and -0.0 differs from 0.0."""
    return repr(value) if isinstance(value, float) else value


def _both(decoder: RowDecoder, data: bytes) -> tuple[Any, Any]:
    layout = decoder._layout(None)
    assert layout.fast is not None
    results = []
    for read in (layout.images, lambda *a: d._SPEEDUPS.images(layout.fast, *a)):
        out: list[Any] = []
        try:
            pos = read(data, 0, len(data), out)
            if pos != len(data):  # the Python reader slices leniently; decoder._flat refuses the overrun
                raise d.DecodeError("overrun")
            results.append(("ok", pos, [[(k, type(v), _exact(v)) for k, v in row.items()] for row in out]))
        except Exception as exc:  # both must fail, whatever the reason
            results.append(("error", type(exc).__name__))
    return results[0], results[1]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(event=events())
def test_compiled_reader_matches_the_python_reader(event: tuple[RowDecoder, bytes]) -> None:
    decoder, data = event
    python, compiled = _both(decoder, data)
    if python[0] == "ok":
        assert compiled == python
    else:  # the compiled reader fails too; decoder.py then lets the Python reader name the error
        assert compiled[0] == "error", (python, compiled)


def test_fallback_gives_the_python_error() -> None:
    """A value the compiled reader hands back (a zero date) reaches the Python converter, whose
    error is the one the caller sees."""
    info = ColumnInfo(0, "day", d.T_DATE, False)
    decoder = RowDecoder(TableMap(7, "db", "t", (info,), (), "mariadb", b""), DecoderOptions())
    with pytest.raises(d.DecodeError, match="zero or invalid date"):
        decoder.decode_rows(b"\x00" + bytes(3), d.RowsKind.WRITE)
    assert decoder.decode_rows(b"\x00" + (2024 << 9 | 2 << 5 | 29).to_bytes(3, "little"), d.RowsKind.WRITE) == [
        (None, {"day": 19782})
    ]


def test_hot_types_are_converted_without_python() -> None:
    """DATE, DATETIME(6), TIMESTAMP(3), DECIMAL(12,2) and VARBINARY are done in C: the Python
    converters are not called for well-formed values."""
    from datetime import datetime

    cols = (
        ColumnInfo(0, "day", d.T_DATE, False),
        ColumnInfo(1, "at", d.T_DATETIME2, False, scale=6),
        ColumnInfo(2, "ts", d.T_TIMESTAMP2, False, scale=3),
        ColumnInfo(3, "amount", d.T_NEWDECIMAL, False, precision=12, scale=2),
        ColumnInfo(4, "raw", d.T_BLOB, False, length=2, charset="binary"),
    )
    decoder = RowDecoder(TableMap(7, "db", "t", cols, (), "mariadb", b""), DecoderOptions())
    calls = []
    spec = list(d._fast_spec(decoder._plans))
    def counting(conv: Any) -> Any:
        return lambda v: calls.append(v) or conv(v)

    for i, col in enumerate(spec):
        spec[i] = (*col[:4], counting(col[4]), *col[5:])
    fast = d._SPEEDUPS.make_layout(tuple(spec))
    image = (
        b"\x00"
        + (2024 << 9 | 2 << 5 | 29).to_bytes(3, "little")
        + _datetime2(datetime(2024, 5, 1, 10, 0, 0, 123456), 6)
        + (1714557600).to_bytes(4, "big")
        + (7890).to_bytes(2, "big")  # .789 at precision 3 is stored as 7890 hundreds of µs
        + _mysql_decimal(1234, True, 12, 2)
        + b"\x03\x00abc"
    )
    out: list[Any] = []
    assert d._SPEEDUPS.images(fast, image, 0, len(image), out) == len(image)
    assert calls == []
    assert out == [
        {
            "day": 19782,
            "at": 1714557600123456,
            "ts": "2024-05-01T10:00:00.789Z",
            "amount": "+y4=",
            "raw": "YWJj",
        }
    ]
