"""``cdc verify``'s engine without servers: chunk planning, value normalisation and narrowing down.

The comparison functions are checked against a plain model (sets and dicts of the same rows)
over generated tables, so that every way rows can differ, at every chunk size, is exercised.
"""

from __future__ import annotations

import json
import struct
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdc.events import Logical
from cdc.values import DecimalHandling, IntervalHandling, TimePrecision
from cdc.verify import (
    ALL,
    ColumnSpec,
    NormaliseOptions,
    OutOfOrder,
    Row,
    TableDiff,
    VerifyReport,
    canonical_decimal,
    chunk_boundary,
    compare_ordered,
    compare_partitioned,
    make_row,
    normaliser,
    parse_duration,
)

# --------------------------------------------------------------------------- helpers


def norm(logical: Logical, native: str = "", **options: Any) -> Any:
    nullable = options.pop("nullable", True)
    element = options.pop("element", None)
    mysql_geometry = options.pop("geometry_mysql", False)
    spec = ColumnSpec("c", logical, native, nullable, element)
    return normaliser(spec, NormaliseOptions(**options), geometry_mysql=mysql_geometry)


def same(logical: Logical, *values: Any, native: str = "", **options: Any) -> None:
    """Every value normalises to the same canonical value (and that value is readable)."""
    n = norm(logical, native, **options)
    canon = [n(v) for v in values]
    assert all(c == canon[0] for c in canon), canon
    assert not (isinstance(canon[0], tuple) and canon[0][:1] == ("unreadable",)), canon


def differ(logical: Logical, a: Any, b: Any, native: str = "", **options: Any) -> None:
    n = norm(logical, native, **options)
    assert n(a) != n(b), (n(a), n(b))


def row(key: int, value: Any = "v") -> Row:
    values = (key, value)
    return make_row(values, [lambda v: v, lambda v: v], [0])


def diff_of(keys: tuple[str, ...] = ("id",), limit: int = 100) -> TableDiff:
    return TableDiff("db.t", "t", ("id", "v"), keys, limit)


def outcome(d: TableDiff) -> tuple[list[Any], list[Any], list[Any]]:
    return (
        sorted(r.key for r in d.missing),
        sorted(r.key for r in d.extra),
        sorted(s.key for s, _ in d.different),
    )


# --------------------------------------------------------------------------- chunk planning


def test_chunk_boundary_is_the_smallest_last_key_of_the_sides_still_reading() -> None:
    assert chunk_boundary((5,), False, (9,), False) == (5,)
    assert chunk_boundary((12,), False, (9,), False) == (9,)
    # a side that is done holds everything it has left: only the other side limits the chunk
    assert chunk_boundary((5,), True, (9,), False) == (9,)
    assert chunk_boundary(None, True, (9,), False) == (9,)
    assert chunk_boundary((5,), False, None, True) == (5,)
    assert chunk_boundary((5,), True, (9,), True) is ALL
    assert chunk_boundary(None, True, None, True) is ALL
    with pytest.raises(ValueError):
        chunk_boundary(None, False, (1,), False)


def test_chunks_hold_at_most_chunk_rows_per_side_and_narrow_only_differing_ones() -> None:
    source = [row(i) for i in range(0, 100)]
    target = [row(i) for i in range(0, 100) if i != 57]
    seen: list[int] = []
    d = diff_of()
    compare_ordered(iter(source), iter(target), d, chunk_rows=10, on_rows=seen.append)
    assert max(seen) <= 10 and sum(seen) == 100
    assert d.chunks == len(seen)
    assert d.chunks_differing == 1
    assert outcome(d) == ([(57,)], [], [])
    assert (d.source_rows, d.target_rows) == (100, 99)


def test_a_target_full_of_extra_rows_is_read_in_bounded_chunks() -> None:
    chunks: list[int] = []
    d = diff_of()
    target = [row(i) for i in range(1000)]
    compare_ordered(iter([row(500)]), iter(target), d, chunk_rows=50, on_rows=chunks.append)
    assert d.extra_count == 999 and d.missing_count == 0 and d.different_count == 0
    assert len(d.extra) == 100  # the listing is capped, the count is not
    assert d.chunks >= 1000 // 50


def test_empty_tables_are_equal() -> None:
    d = diff_of()
    compare_ordered(iter([]), iter([]), d, chunk_rows=10)
    assert d.equal and d.chunks == 0


@pytest.mark.parametrize("compare", ["ordered", "partitioned"])
def test_out_of_order_or_repeated_keys(compare: str) -> None:
    rows = [row(1), row(3), row(2)]
    d = diff_of()
    if compare == "ordered":
        with pytest.raises(OutOfOrder) as info:
            compare_ordered(iter(rows), iter(sorted(rows, key=lambda r: r.key)), d, chunk_rows=2)
        assert info.value.side == "source"
        with pytest.raises(OutOfOrder):
            compare_ordered(iter([row(1)]), iter([row(1), row(1)]), diff_of(), chunk_rows=5)
    else:
        # in any order, the partitioned comparison still matches rows by key; a repeated source key
        # is one row the target (with its unique key) cannot hold
        compare_partitioned(lambda: [*rows, row(3)], lambda: list(reversed(rows)), d, keyed=True, partitions=2)
        assert (d.missing_count, d.extra_count, d.different_count) == (1, 0, 0)


tables = st.dictionaries(st.integers(0, 60), st.sampled_from(["a", "b", None, ""]), max_size=40)


@given(source=tables, target=tables, chunk_rows=st.integers(1, 12), partitions=st.integers(1, 4))
def test_ordered_and_partitioned_find_exactly_what_a_model_finds(
    source: dict[int, Any], target: dict[int, Any], chunk_rows: int, partitions: int
) -> None:
    missing = sorted((k,) for k in source.keys() - target.keys())
    extra = sorted((k,) for k in target.keys() - source.keys())
    changed = sorted((k,) for k in source.keys() & target.keys() if source[k] != target[k])
    src_rows = [row(k, v) for k, v in sorted(source.items())]
    tgt_rows = [row(k, v) for k, v in sorted(target.items())]

    ordered = diff_of()
    compare_ordered(iter(src_rows), iter(tgt_rows), ordered, chunk_rows=chunk_rows)
    assert outcome(ordered) == (missing, extra, changed)
    assert (ordered.source_rows, ordered.target_rows) == (len(source), len(target))
    assert ordered.equal == (source == target)

    parted = diff_of()
    compare_partitioned(lambda: list(reversed(src_rows)), lambda: tgt_rows, parted, keyed=True, partitions=partitions)
    assert outcome(parted) == (missing, extra, changed)
    assert parted.equal == (source == target)


@given(
    source=st.lists(st.sampled_from(["x", "y", "z", None]), max_size=12),
    target=st.lists(st.sampled_from(["x", "y", "z", None]), max_size=12),
    partitions=st.integers(1, 3),
)
def test_keyless_tables_compare_as_multisets(source: list[Any], target: list[Any], partitions: int) -> None:
    def rows(values: list[Any]) -> list[Row]:
        return [make_row((v,), [lambda x: x], []) for v in values]

    d = TableDiff("db.t", "t", ("v",), (), 100)
    compare_partitioned(lambda: rows(source), lambda: rows(target), d, keyed=False, partitions=partitions)
    surplus = {v: source.count(v) - target.count(v) for v in set(source) | set(target)}
    assert d.missing_count == sum(n for n in surplus.values() if n > 0)
    assert d.extra_count == sum(-n for n in surplus.values() if n < 0)
    assert sorted(r.values[0] or "" for r in d.missing) == sorted(
        (v or "") for v, n in surplus.items() if n > 0 for _ in range(n)
    )
    assert d.equal == (sorted(source, key=str) == sorted(target, key=str))


def test_listing_is_capped_and_counts_stay_exact() -> None:
    d = diff_of(limit=5)
    compare_ordered(iter([row(i, "s") for i in range(50)]), iter([row(i, "t") for i in range(50)]), d, chunk_rows=7)
    assert d.different_count == 50 and len(d.different) == 5
    view = d.to_json()
    assert view["differences"]["different"]["count"] == 50
    assert [k["key"] for k in view["differences"]["different"]["keys"]] == [{"id": i} for i in range(5)]
    assert view["differences"]["different"]["keys"][0]["columns"] == {"v": {"source": "s", "target": "t"}}
    assert "first 5 listed" in d.render_text()


def test_report_json_has_the_contract_fields() -> None:
    equal, unequal = diff_of(), diff_of()
    compare_ordered(iter([row(1)]), iter([row(1)]), equal, chunk_rows=10)
    compare_ordered(iter([row(1)]), iter([row(1), row(2, b"\x00\xff")]), unequal, chunk_rows=10)
    report = VerifyReport("replica", "postgresql://u:***@h/db", [equal, unequal])
    data = json.loads(json.dumps(report.to_json()))
    assert data["equal"] is False and report.equal is False
    first, second = data["tables"]
    for table in data["tables"]:
        assert {"source", "target", "source_rows", "target_rows", "equal", "differences"} <= table.keys()
    assert first["equal"] is True and second["equal"] is False
    assert second["differences"]["extra_in_target"] == {"count": 1, "keys": [{"id": 2}]}
    assert (second["source_rows"], second["target_rows"]) == (1, 2)
    text = report.render_text()
    assert "db.t -> t: 1 rows, equal" in text and "extra in target: 1" in text and '{"id": 2}' in text


def test_a_missing_target_table_or_column_is_never_equal() -> None:
    d = diff_of()
    d.target_missing = True
    assert not d.equal and d.to_json()["differences"]["target_table_missing"] is True
    d = diff_of()
    d.missing_columns = ("note",)
    assert not d.equal and "note" in d.render_text()


# --------------------------------------------------------------------------- normalisation


def test_decimals_compare_by_value_across_representations() -> None:
    same(Logical.DECIMAL, Decimal("12.30"), "12.3", Decimal("1.23E+1"), 12.3, "12.300")
    same(Logical.DECIMAL, Decimal("100"), Decimal("1E+2"), "100.00", 100)
    same(Logical.DECIMAL, Decimal("-0.00"), "0", 0)
    same(Logical.DECIMAL, Decimal("NaN"), "NaN")
    differ(Logical.DECIMAL, Decimal("12.30"), Decimal("12.31"))
    big = "123456789012345678901234567890.123456789012345678901234567890"
    same(Logical.DECIMAL, Decimal(big), big + "000")  # beyond the default context's 28 digits
    differ(Logical.DECIMAL, Decimal(big), big[:-1] + "1")
    assert canonical_decimal(Decimal("5E+3")) == Decimal("5000")
    same(Logical.MONEY, Decimal("1234.50"), "$1,234.50")
    same(Logical.MONEY, Decimal("-5.00"), "-$5.00")
    # decimal_handling: double: the target holds the nearest double, rounded to the column's scale
    same(
        Logical.DECIMAL,
        Decimal("12.345678901234567890"),
        Decimal("12.345678901234567"),
        decimal_handling=DecimalHandling.DOUBLE,
    )


def test_integers_booleans_and_bits() -> None:
    same(Logical.UINT64, 2**64 - 1, Decimal(2**64 - 1), str(2**64 - 1))
    same(Logical.INT32, 7, 7.0, Decimal("7.0"))
    differ(Logical.INT32, 7, 8)
    same(Logical.BOOLEAN, True, 1, b"\x01", "t", "true")
    same(Logical.BOOLEAN, False, 0, b"\x00", "f")
    differ(Logical.BOOLEAN, True, False)
    same(Logical.BITS, b"\x05", "0101", "00000101", 5)
    differ(Logical.BITS, b"\x05", "0100")


def test_floats() -> None:
    exact32 = struct.unpack("<f", struct.pack("<f", 3.1415927))[0]
    same(Logical.FLOAT32, 3.14159, exact32, "3.1415927", 3.1415927)  # MariaDB prints 6 digits
    differ(Logical.FLOAT32, 3.14159, 3.14169)
    same(Logical.FLOAT64, 0.30000000000000004, "0.30000000000000004")
    differ(Logical.FLOAT64, 0.30000000000000004, 0.3)
    same(Logical.FLOAT64, -0.0, 0.0)
    same(Logical.FLOAT64, float("nan"), "NaN")
    same(Logical.FLOAT64, float("inf"), "Infinity")


def test_strings_char_padding_binary_padding_sets_and_null_versus_empty() -> None:
    same(Logical.STRING, "ab   ", "ab", native="CHAR")
    same(Logical.STRING, "ab   ", "ab", native="BPCHAR")
    differ(Logical.STRING, "ab ", "ab")  # VARCHAR keeps trailing spaces
    same(Logical.TEXT, "Zoë 🚀", "Zoë 🚀".encode())
    differ(Logical.TEXT, "a", "A")
    n = norm(Logical.TEXT)
    assert n(None) is None and n("") == "" and n(None) != n("")
    same(Logical.BYTES, b"ab\x00\x00", b"ab", memoryview(b"ab"), native="BINARY")
    differ(Logical.BYTES, b"ab\x00", b"ab")  # VARBINARY keeps them
    same(Logical.BYTES, bytearray(b"\x00\xff"), b"\x00\xff", "\\x00ff")
    same(Logical.SET, "a,c", "c,a")
    differ(Logical.SET, "a", "a,c")
    same(Logical.UUID, UUID(int=1), str(UUID(int=1)).upper(), UUID(int=1).bytes)
    same(Logical.MACADDR, "08:00:2B:01:02:03", "08:00:2b:01:02:03")


def test_dates_and_timestamps() -> None:
    same(Logical.DATE, date(1999, 12, 31), "1999-12-31", datetime(1999, 12, 31))
    differ(Logical.DATE, date(1999, 12, 31), "1999-12-30")
    ts = datetime(2024, 3, 1, 1, 2, 3, 456000)
    same(Logical.TIMESTAMP, ts, "2024-03-01 01:02:03.456000", "2024-03-01T01:02:03.456", "2024-03-01 01:02:03.456")
    differ(Logical.TIMESTAMP, ts, ts + timedelta(microseconds=1))
    aware = datetime(2022, 1, 5, 1, 2, 3, 123456, tzinfo=timezone(timedelta(hours=2)))
    same(
        Logical.TIMESTAMPTZ,
        aware,
        aware.astimezone(UTC),
        datetime(2022, 1, 4, 23, 2, 3, 123456),  # MySQL DATETIME / SQLite: UTC wall time
        "2022-01-04 23:02:03.123456+00",  # PostgreSQL text
        "2022-01-05 01:02:03.123456+02:00",
        "2022-01-04T23:02:03.123456Z",
    )
    differ(Logical.TIMESTAMPTZ, aware, datetime(2022, 1, 5, 1, 2, 3, 123456))
    same(Logical.TIMESTAMP, "infinity", "Infinity")
    # time_precision: connect carries milliseconds only
    same(Logical.TIMESTAMP, ts + timedelta(microseconds=789), ts, time_precision=TimePrecision.CONNECT)
    differ(Logical.TIMESTAMP, ts + timedelta(microseconds=789), ts)


def test_zero_dates_follow_zero_date_handling() -> None:
    assert norm(Logical.DATE, zero_date_handling="null")("0000-00-00") is None
    assert norm(Logical.DATE, zero_date_handling="debezium", nullable=True)("0000-00-00") is None
    assert norm(Logical.DATE, zero_date_handling="debezium", nullable=False)("0000-00-00") == "1970-01-01"
    assert norm(Logical.TIMESTAMP, zero_date_handling="debezium", nullable=False)("0000-00-00 00:00:00") == norm(
        Logical.TIMESTAMP
    )(datetime(1970, 1, 1))
    assert norm(Logical.DATE, zero_date_handling="null")("2024-00-10") is None
    # under "error" a zero date never reached the target: it must not equal anything readable
    assert norm(Logical.DATE)("0000-00-00") not in (None, "1970-01-01")


def test_times_durations_and_intervals() -> None:
    quarter = timedelta(microseconds=-250_000)
    same(Logical.TIME, quarter, "-00:00:00.250000", "PT-0.25S", "-00:00:00.25")  # MySQL, SQLite, PG interval
    same(Logical.TIME, timedelta(hours=838, minutes=59, seconds=59), "838:59:59", "PT838H59M59S")
    same(Logical.TIME, time(12, 0, 1, 500000), "12:00:01.5", timedelta(hours=12, seconds=1.5))
    differ(Logical.TIME, time(12, 0, 1), time(12, 0, 2))
    same(Logical.TIME, "24:00:00", timedelta(days=1))
    same(
        Logical.TIME,
        timedelta(seconds=1, microseconds=999),
        timedelta(seconds=1),
        time_precision=TimePrecision.CONNECT,
    )
    plus2 = timezone(timedelta(hours=2))
    same(Logical.TIMETZ, time(10, 0, tzinfo=plus2), "10:00:00+02", "08:00:00", timedelta(hours=8), "08:00:00Z")
    differ(Logical.TIMETZ, time(10, 0, tzinfo=plus2), "10:00:00")
    # interval_handling numeric: months are 30.4375 days (Debezium's MicroDuration)
    same(Logical.INTERVAL, "P1M", "P30DT10H30M", timedelta(days=30, hours=10, minutes=30), "P0Y1M0DT0H0M0S")
    same(Logical.INTERVAL, "P1Y2M3DT4H5M6.5S", "P1Y2M3DT4H5M6.500000S")
    # interval_handling string keeps months, days and time apart
    string = {"interval_handling": IntervalHandling.STRING}
    same(Logical.INTERVAL, "P1M", "P0Y1M0DT0H0M0S", **string)
    differ(Logical.INTERVAL, "P1M", "P30DT10H30M", **string)
    same(Logical.INTERVAL, "P-1Y-2M3DT-4H-5M-6S", "P-1Y-2M3DT-4H-5M-6S", **string)
    assert parse_duration("P-1Y-2M3DT-4H-5M-6.5S") == (-14, 3, -(4 * 3600 + 5 * 60 + 6.5) * 1_000_000)
    assert parse_duration("-P1D") == (0, -1, 0)
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_json_ignores_formatting_and_key_order_but_not_values() -> None:
    same(
        Logical.JSON,
        '{"b": 1, "a": [1.10, "é"]}',
        '{"a":[1.1,"\\u00e9"],"b":1}',
        {"a": [Decimal("1.1"), "é"], "b": 1},
        b'{"a": [1.1, "\\u00e9"], "b": 1.0}',
    )
    differ(Logical.JSON, '{"a": 1}', '{"a": 2}')
    differ(Logical.JSON, '{"a": 1}', '{"a": "1"}')
    differ(Logical.JSON, '{"a": null}', "{}")
    big = '{"n": 123456789012345678901234567890.5}'
    same(Logical.JSON, big, big.replace(" ", ""))


def test_arrays_from_postgresql_lists_and_from_json_text() -> None:
    same(Logical.ARRAY, ["a", "b c", None], '["a", "b c", null]', element=Logical.TEXT)
    differ(Logical.ARRAY, ["a"], '["a", null]', element=Logical.TEXT)
    same(Logical.ARRAY, [Decimal("1.50"), Decimal("2")], "[1.5, 2]", element=Logical.DECIMAL)
    same(Logical.ARRAY, [b"\x00\xff"], '["AP8="]', element=Logical.BYTES)  # bytes travel as base64 in JSON
    same(Logical.ARRAY, [["2024-01-01"]], '[["2024-01-01"]]', element=Logical.DATE)
    same(Logical.ARRAY, ["P1D"], '["P0Y0M1DT0H0M0S"]', element=Logical.INTERVAL)


def test_geometry_from_mysql_form_and_from_ewkb() -> None:
    wkb = bytes.fromhex("0101000000000000000000f03f0000000000000040")  # POINT(1 2), little-endian
    mysql_form = struct.pack("<I", 4326) + wkb
    ewkb = wkb[:1] + struct.pack("<II", 1 | 0x20000000, 4326) + wkb[5:]
    mysql_norm = norm(Logical.GEOMETRY, geometry_mysql=True)
    wkb_norm = norm(Logical.GEOMETRY)
    assert mysql_norm(mysql_form) == wkb_norm(ewkb) == wkb_norm(ewkb.hex()) == (4326, wkb.hex())
    assert wkb_norm(wkb) == (0, wkb.hex()) != wkb_norm(ewkb)


def test_unreadable_values_become_differences_not_errors() -> None:
    n = norm(Logical.DATE)
    odd = n("not a date")
    assert odd != n("2024-01-01") and odd == n("not a date")
    assert norm(Logical.INT64)("12x") != norm(Logical.INT64)(12)
    d = diff_of()
    src = make_row((1, "2024-01-01"), [lambda v: v, n], [0])
    tgt = make_row((1, "garbage"), [lambda v: v, n], [0])
    compare_ordered(iter([src]), iter([tgt]), d, chunk_rows=5)
    assert d.different_count == 1
    assert "unreadable" in json.dumps(d.to_json())


def test_row_digests_depend_on_every_normalised_value() -> None:
    n = [norm(Logical.INT64), norm(Logical.DECIMAL), norm(Logical.TEXT)]
    a = make_row((1, Decimal("1.50"), "x"), n, [0])
    b = make_row((1, "1.5", "x"), n, [0])
    c = make_row((1, "1.5", None), n, [0])
    assert a.key == (1,) and a.digest == b.digest != c.digest


# --------------------------------------------------------------------------- the SQL reader's pure parts


def test_catalog_types_map_to_the_kinds_the_sources_use() -> None:
    from connectors.sql.verify import mysql_logical, pg_logical

    assert mysql_logical("bit", "bit(1)") is Logical.BOOLEAN
    assert mysql_logical("bit", "bit(8)") is Logical.BITS
    assert mysql_logical("bigint", "bigint(20) unsigned") is Logical.UINT64
    assert mysql_logical("bigint", "bigint(20)") is Logical.INT64
    assert mysql_logical("tinyint", "tinyint(1)") is Logical.INT8  # not a boolean, as in the MySQL source
    assert mysql_logical("timestamp", "timestamp(3)") is Logical.TIMESTAMPTZ
    assert mysql_logical("datetime", "datetime(6)") is Logical.TIMESTAMP
    assert mysql_logical("longtext", "longtext") is Logical.TEXT  # MariaDB's JSON
    assert mysql_logical("point", "point") is Logical.GEOMETRY
    assert mysql_logical("vector", "vector(3)") is Logical.UNKNOWN
    assert pg_logical("bpchar", "b") is Logical.STRING
    assert pg_logical("mood", "e") is Logical.ENUM
    assert pg_logical("jsonb", "b") is Logical.JSON
    assert pg_logical("tsvector", "b") is Logical.UNKNOWN


def test_keys_are_streamed_in_order_only_where_both_engines_sort_like_the_canonical_values() -> None:
    from connectors.sql.verify import ordered_comparable

    numeric = NormaliseOptions()
    assert ordered_comparable([Logical.INT64], ("mysql", "postgresql"), numeric)
    assert ordered_comparable([Logical.STRING, Logical.DATE], ("mysql", "sqlite"), numeric)
    assert ordered_comparable([Logical.DECIMAL], ("mysql", "postgresql"), numeric)
    assert not ordered_comparable([Logical.DECIMAL], ("mysql", "sqlite"), numeric)  # exact text in SQLite
    assert not ordered_comparable([Logical.UINT64], ("mysql", "sqlite"), numeric)
    assert not ordered_comparable([Logical.ENUM], ("mysql", "mysql"), numeric)  # sorts by member index
    assert not ordered_comparable([Logical.INET], ("postgresql", "mysql"), numeric)
    assert ordered_comparable([Logical.INTERVAL], ("postgresql", "mysql"), numeric) is False
    assert ordered_comparable([Logical.INTERVAL], ("postgresql", "postgresql"), numeric)
    string = NormaliseOptions(interval_handling=IntervalHandling.STRING)
    assert not ordered_comparable([Logical.INTERVAL], ("postgresql", "postgresql"), string)


def test_keys_of_different_types_on_the_two_sides_fall_back_instead_of_failing() -> None:
    n = norm(Logical.DATE)
    source = [make_row((v,), [n], [0]) for v in ("2024-01-01", "2024-01-02")]
    target = [make_row((v,), [n], [0]) for v in ("2024-01-01", "garbage")]
    with pytest.raises(OutOfOrder):
        compare_ordered(iter(source), iter(target), TableDiff("db.t", "t", ("d",), ("d",)), chunk_rows=1)
    with pytest.raises(OutOfOrder):  # one row per side: no side is out of order, the sides do not compare
        compare_ordered(iter(source[:1]), iter(target[1:]), TableDiff("db.t", "t", ("d",), ("d",)), chunk_rows=1)
    d = TableDiff("db.t", "t", ("d",), ("d",))
    compare_partitioned(lambda: source, lambda: target, d, keyed=True)
    assert (d.missing_count, d.extra_count, d.different_count) == (1, 1, 0)
    assert d.to_json()["differences"]["extra_in_target"]["keys"][0]["d"].startswith("<unreadable")
