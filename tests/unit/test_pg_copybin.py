"""connectors/postgres/copybin.py: the binary COPY reader (compiled and Python) and the binary values' text.

The integration tests (test_backup_native.py) compare whole pg-binary backups with the initial
snapshot's rows on a real server; these check the pieces against independent references: Python's own
calendar, known numeric encodings, and the Python splitter for the compiled one.
"""

from __future__ import annotations

import os
import struct
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.postgres import copybin

EPOCH = date(2000, 1, 1)


def _stream(rows: list[tuple[bytes | None, ...]]) -> bytes:
    out = bytearray(copybin.HEADER)
    for row in rows:
        out += struct.pack(">h", len(row))
        for value in row:
            out += struct.pack(">i", -1) if value is None else struct.pack(">i", len(value)) + value
    return bytes(out + copybin.TRAILER)


@given(
    st.integers(0, 6).flatmap(
        lambda w: st.lists(st.tuples(*[st.none() | st.binary(max_size=40)] * w), max_size=30).map(
            lambda rows: (w, rows)
        )
    )
)
@settings(max_examples=300)
def test_both_splitters_read_a_stream_back_into_its_rows(case: tuple[int, list[tuple[bytes | None, ...]]]) -> None:
    width, rows = case
    data = _stream(rows)
    assert copybin._split_python(data, width) == rows
    assert copybin.split(data, width) == rows


@given(
    st.lists(st.tuples(st.none() | st.binary(max_size=20), st.binary(max_size=20)), min_size=1, max_size=10), st.data()
)
@settings(max_examples=300)
def test_both_splitters_refuse_a_damaged_stream_alike(
    rows: list[tuple[bytes | None, ...]], data: st.DataObject
) -> None:
    stream = bytearray(_stream(rows))
    how = data.draw(st.sampled_from(["cut", "flip", "extra", "width"]))
    width = 2
    if how == "cut":
        stream = stream[: data.draw(st.integers(0, len(stream) - 1))]
    elif how == "flip":
        i = data.draw(st.integers(0, len(stream) - 1))
        stream[i] ^= data.draw(st.integers(1, 255))
    elif how == "extra":
        stream += b"\x00"
    else:
        width = 3
    outcomes = []
    for split in (copybin._split_python, copybin.split):
        try:
            outcomes.append(("rows", split(bytes(stream), width)))
        except ValueError:
            outcomes.append(("error", None))
    assert outcomes[0] == outcomes[1]
    if how in ("cut", "extra", "width"):
        assert outcomes[0][0] == "error"


def test_the_compiled_splitter_is_in_use_when_built() -> None:
    """`make install` builds it; without a compiler the Python splitter serves (and CI must have one)."""
    if os.environ.get("CDC_PG_SPEEDUPS") == "0":
        pytest.skip("CDC_PG_SPEEDUPS=0 turns the compiled helpers off")
    try:
        import connectors.postgres._speedups  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("CI=true and connectors/postgres/_speedups is not built")
        pytest.skip("connectors/postgres/_speedups is not built")
    assert copybin.split is not copybin._split_python


@pytest.mark.parametrize(
    "day",
    [
        date(1, 1, 1),
        date(1582, 10, 15),
        date(1900, 2, 28),
        date(1999, 12, 31),
        EPOCH,
        date(2000, 2, 29),
        date(2024, 3, 1),
        date(9999, 12, 31),
    ],
)
def test_dates_read_as_the_calendar_says(day: date) -> None:
    days = (day - EPOCH).days
    assert copybin.text_of("date")(struct.pack(">i", days)) == day.isoformat()


def test_every_day_of_four_centuries_reads_as_the_calendar_says() -> None:
    text = copybin.text_of("date")
    day = date(1800, 1, 1)
    while day < date(2200, 1, 1):
        assert text(struct.pack(">i", (day - EPOCH).days)) == day.isoformat()
        day += timedelta(days=1)


def test_bc_and_infinite_dates_read_as_postgresql_writes_them() -> None:
    text = copybin.text_of("date")
    # PostgreSQL: date '0001-12-31 BC' is the day before 0001-01-01; its first date, Julian day 0, is 4714-11-24 BC
    assert text(struct.pack(">i", (date(1, 1, 1) - EPOCH).days - 1)) == "0001-12-31 BC"
    assert text(struct.pack(">i", -2451545)) == "4714-11-24 BC"
    assert text(struct.pack(">i", 2**31 - 1)) == "infinity"
    assert text(struct.pack(">i", -(2**31))) == "-infinity"


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2000, 1, 1), "2000-01-01 00:00:00"),
        (datetime(1999, 12, 31, 23, 59, 59, 999999), "1999-12-31 23:59:59.999999"),
        (datetime(1970, 1, 1, 0, 0, 0, 100000), "1970-01-01 00:00:00.1"),
        (datetime(2023, 11, 14, 10, 20, 30, 120), "2023-11-14 10:20:30.00012"),
    ],
)
def test_timestamps_read_as_postgresql_writes_them(moment: datetime, expected: str) -> None:
    micros = (moment - datetime(2000, 1, 1)) // timedelta(microseconds=1)
    assert copybin.text_of("timestamp")(struct.pack(">q", micros)) == expected
    assert copybin.text_of("timestamptz")(struct.pack(">q", micros)) == expected + "+00"


def test_infinite_timestamps_read_as_postgresql_writes_them() -> None:
    assert copybin.text_of("timestamp")(struct.pack(">q", 2**63 - 1)) == "infinity"
    assert copybin.text_of("timestamptz")(struct.pack(">q", -(2**63))) == "-infinity"


def _numeric(digits: list[int], weight: int, sign: int, dscale: int) -> bytes:
    return struct.pack(f">hhHh{len(digits)}h", len(digits), weight, sign, dscale, *digits)


@pytest.mark.parametrize(
    ("encoded", "text"),
    [
        (_numeric([], 0, 0, 0), "0"),
        (_numeric([], 0, 0, 3), "0.000"),
        (_numeric([1], 0, 0, 0), "1"),
        (_numeric([12, 3456, 7800], 1, 0x4000, 2), "-123456.78"),
        (_numeric([1], -5, 0, 20), "0.00000000000000000001"),
        (_numeric([1], 25, 0, 0), "1" + "0" * 100),
        (_numeric([5000], -1, 0x4000, 1), "-0.5"),
        (_numeric([123, 4500], 0, 0, 4), "123.4500"),
        (_numeric([], 0, 0xC000, 0), "NaN"),
        (_numeric([], 0, 0xD000, 0), "Infinity"),
        (_numeric([], 0, 0xF000, 0), "-Infinity"),
    ],
)
def test_numerics_read_as_postgresql_writes_them(encoded: bytes, text: str) -> None:
    assert copybin.text_of("numeric")(encoded) == text


def test_the_other_types_read_as_postgresql_writes_them() -> None:
    assert copybin.text_of("bool")(b"\x01") == "t" and copybin.text_of("bool")(b"\x00") == "f"
    assert copybin.text_of("int8")(struct.pack(">q", -(2**63))) == -(2**63)
    assert copybin.text_of("int2")(struct.pack(">h", -2)) == -2
    assert copybin.text_of("float8")(struct.pack(">d", float("nan"))) == "NaN"
    assert copybin.text_of("float8")(struct.pack(">d", float("-inf"))) == "-Infinity"
    assert float(copybin.text_of("float8")(struct.pack(">d", 0.1))) == 0.1
    assert copybin.text_of("uuid")(bytes(range(16))) == "00010203-0405-0607-0809-0a0b0c0d0e0f"
    assert copybin.text_of("bytea")(b"\x00\xff") == "\\x00ff"
    assert copybin.text_of("jsonb")(b'\x01{"a": 1}') == '{"a": 1}'
    assert copybin.text_of("text")("ünï".encode()) == "ünï"
    with pytest.raises(ValueError):
        copybin.text_of("jsonb")(b'\x02{"a": 1}')
