from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdc.errors import DecodeError
from cdc.positions import MySqlPosition, PgPosition, format_lsn, parse_lsn, position_from_dict

mysql_positions = st.builds(
    MySqlPosition,
    file=st.integers(1, 999_999).map(lambda n: f"mariadb-bin.{n:06d}"),
    pos=st.integers(4, 2**40),
    gtid_set=st.none() | st.just("0-1-42"),
    server_id=st.none() | st.integers(1, 2**32 - 1),
)
pg_positions = st.builds(PgPosition, lsn=st.integers(0, 2**64 - 1), txid=st.none() | st.integers(0, 2**32))


@given(mysql_positions | pg_positions)
def test_serialization_round_trip(pos: MySqlPosition | PgPosition) -> None:
    data = pos.to_dict()
    assert data["v"] == 1
    assert position_from_dict(data) == pos


@given(st.lists(mysql_positions, min_size=2, max_size=10))
def test_mysql_order_matches_sort_key_and_log_order(positions: list[MySqlPosition]) -> None:
    by_log = sorted(positions, key=lambda p: (int(p.file.rsplit(".", 1)[1]), p.pos))
    assert [p.sort_key() for p in sorted(positions)] == [p.sort_key() for p in by_log]
    assert sorted(p.sort_key() for p in positions) == [p.sort_key() for p in by_log]


def test_file_number_beats_offset_even_past_six_digits() -> None:
    assert MySqlPosition("bin.999999", 10**12) < MySqlPosition("bin.1000000", 4)


@given(st.lists(pg_positions, min_size=2, max_size=10))
def test_pg_order(positions: list[PgPosition]) -> None:
    assert [p.lsn for p in sorted(positions)] == sorted(p.lsn for p in positions)
    assert sorted(p.sort_key() for p in positions) == [p.sort_key() for p in sorted(positions, key=lambda p: p.lsn)]


@given(st.integers(0, 2**64 - 1))
def test_lsn_text(lsn: int) -> None:
    assert parse_lsn(format_lsn(lsn)) == lsn


def test_known_lsn() -> None:
    assert format_lsn(0x16B3748) == "0/16B3748"
    assert parse_lsn("1/0") == 2**32


@pytest.mark.parametrize(
    "data",
    [{}, {"v": 2, "kind": "mysql", "file": "a.1", "pos": 4}, {"v": 1, "kind": "oracle"},
     {"v": 1, "kind": "mysql", "file": "a.1", "pos": "x"}, {"v": 1, "kind": "postgres", "lsn": "zz"}],
)
def test_bad_stored_positions(data: dict) -> None:
    with pytest.raises(DecodeError):
        position_from_dict(data)


def test_kinds_do_not_compare() -> None:
    with pytest.raises(TypeError):
        _ = MySqlPosition("a.1", 4) < PgPosition(1)  # type: ignore[operator]


def test_pg_position_is_the_same_value_as_the_constructor() -> None:
    from cdc.positions import pg_position

    for lsn, txid in ((0, None), (5, 7), (2**63, 2**32 - 1)):
        fast, slow = pg_position(lsn, txid), PgPosition(lsn, txid)
        assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
        assert fast.to_dict() == slow.to_dict() and fast.sort_key() == slow.sort_key()
        assert position_from_dict(fast.to_dict()) == slow
