"""connectors/postgres/_speedups.c against the Python reference: TupleData and precise decimals.

Both must agree exactly wherever the compiled code answers; where it does not (ValueError from
``tuple_values``, None from ``precise_b64``) the Python code decides, so those cases are checked
to be only the unusual ones.
"""

from __future__ import annotations

import struct
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdc.events import Wire
from connectors.postgres import pgoutput as p
from connectors.postgres import types as t

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(p.SPEEDUPS is None, reason="the compiled helpers are not built"),
]


@st.composite
def tuple_data(draw: st.DrawFn) -> bytes:
    cols = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from("tnub"))
        if kind in "tb":
            body = draw(st.one_of(st.text(max_size=30).map(str.encode), st.binary(max_size=30)))
            cols.append(kind.encode() + struct.pack(">I", len(body)) + body)
        else:
            cols.append(kind.encode())
    data = struct.pack(">H", len(cols)) + b"".join(cols)
    if draw(st.integers(0, 5)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.integers(0, 5)) == 0 and data:
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1 :]
    prefix = draw(st.binary(max_size=3))
    return prefix + data + draw(st.binary(max_size=3))


def _python(data: bytes, pos: int) -> Any:
    try:
        return p._tuple_python(data, pos)
    except p._Malformed:
        return "error"


@settings(max_examples=2000, deadline=None)
@given(data=tuple_data(), pos=st.integers(0, 3))
def test_tuple_values_match_the_python_reader(data: bytes, pos: int) -> None:
    expected = _python(data, pos)
    try:
        got = p.SPEEDUPS.tuple_values(data, pos, p.UNCHANGED)
    except ValueError:  # left to the Python reader
        return
    assert expected != "error", "the compiled reader accepted what the Python reader refuses"
    assert got == expected
    assert [type(v) for v in got[0]] == [type(v) for v in expected[0]]


def test_tuple_values_takes_the_common_messages() -> None:
    data = b"\x00\x04" + b"t\x00\x00\x00\x0212" + b"n" + b"u" + b"b\x00\x00\x00\x01\xff"
    assert p.SPEEDUPS.tuple_values(data, 0, p.UNCHANGED) == (("12", None, p.UNCHANGED, b"\xff"), len(data))


@st.composite
def numerics(draw: st.DrawFn) -> tuple[str, int]:
    scale = draw(st.integers(-2, 12))
    if draw(st.integers(0, 6)) == 0:  # anything at all
        return draw(st.text(alphabet="0123456789.-+eE NaInfty_", max_size=20)), scale
    digits = draw(st.integers(0, 10 ** draw(st.integers(1, 45))))
    value = Decimal(digits).scaleb(-max(scale, 0)) * draw(st.sampled_from([1, -1]))
    text = f"{value:.{max(scale, 0)}f}" if draw(st.booleans()) else str(value)
    return text, scale


def _reference(scale: int) -> Any:
    """The Python converter, built while the compiled helpers are hidden from it."""
    wire = Wire("bytes", "org.apache.kafka.connect.data.Decimal", parameters={"scale": str(scale)})
    saved = p.SPEEDUPS
    p.SPEEDUPS = None  # type: ignore[misc]
    try:
        return t._decimal_converter(wire, t.PgTypeModes(), money=False)
    finally:
        p.SPEEDUPS = saved  # type: ignore[misc]


@settings(max_examples=3000, deadline=None)
@given(case=numerics())
def test_precise_b64_matches_the_python_converter(case: tuple[str, int]) -> None:
    text, scale = case
    fast = p.SPEEDUPS.precise_b64(text, scale)
    if fast is None:  # left to the Python converter
        return
    assert fast == _reference(scale)(text)


def test_precise_b64_takes_plain_values() -> None:
    assert p.SPEEDUPS.precise_b64("12.34", 2) == _reference(2)("12.34") == "BNI="
    assert p.SPEEDUPS.precise_b64("-0.00", 2) == "AA=="
    assert p.SPEEDUPS.precise_b64("NaN", 2) is None
    assert p.SPEEDUPS.precise_b64("1.5", 2) is None  # not the column's scale: Python rescales


def _pg_timestamp_text(value: Any) -> str:
    """A timestamp as PostgreSQL's ISO output writes it: the fraction without trailing zeros."""
    text = value.strftime("%Y-%m-%d %H:%M:%S").rjust(19, "0")
    if value.year < 1000:
        text = f"{value.year:04d}" + text[text.index("-") :]
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text


def _python_micros(text: str) -> int:
    """The Python converter alone (the compiled helper switched off)."""
    saved = t._c_timestamp
    try:
        t._c_timestamp = None  # type: ignore[misc]
        return t._timestamp_micros(text)
    finally:
        t._c_timestamp = saved  # type: ignore[misc]


@given(st.datetimes())
@settings(max_examples=500)
def test_timestamp_micros_agrees_with_python(value: Any) -> None:
    text = _pg_timestamp_text(value)
    assert p.SPEEDUPS.timestamp_micros(text) == _python_micros(text)


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-30 00:00:00", "2023-02-29 00:00:00", "2024-13-01 00:00:00", "2024-01-01 24:00:00",
        "2024-01-01 00:60:00", "2024-01-01 00:00:60", "0000-01-01 00:00:00", "2024-01-01 00:00:00.",
        "2024-01-01 00:00:00.1234567", "2024-01-01T00:00:00", "2024-01-01 00:00:00 BC", "infinity",
        "-infinity", "12024-01-01 00:00:00", "2024-1-01 00:00:00", "2024-01-01 00:00:0x", "", "２０２４-01-01 00:00:00",
    ],
)  # fmt: skip
def test_timestamp_micros_leaves_the_rest_to_python(text: str) -> None:
    assert p.SPEEDUPS.timestamp_micros(text) is None
    assert p.SPEEDUPS.timestamp_micros(b"2024-01-01 00:00:00") is None  # not text


def test_timestamp_micros_reads_fractions_of_any_length() -> None:
    for frac, micros in (("1", 100000), ("12", 120000), ("123456", 123456), ("000001", 1)):
        assert p.SPEEDUPS.timestamp_micros(f"1970-01-01 00:00:00.{frac}") == micros
    assert p.SPEEDUPS.timestamp_micros("1969-12-31 23:59:59.999999") == -1
