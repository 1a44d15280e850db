"""Executed GTID sets (connectors/mysql/gtid.py): MariaDB domains and MySQL intervals."""

from __future__ import annotations

import pytest

from cdc.errors import DecodeError
from connectors.mysql.gtid import GtidSet

pytestmark = pytest.mark.unit

U1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
U2 = "0b8a8c1e-0000-11e1-9e33-c80aa9429562"


def test_mariadb_keeps_the_last_gtid_of_each_domain() -> None:
    s = GtidSet("0-1-100,2-5-7")
    s.add("0-1-101")
    s.add("1-3-9")
    s.add("2-6-8")  # another server in domain 2 (after a failover)
    assert str(s) == "0-1-101,1-3-9,2-6-8"
    assert GtidSet(str(s)) == s


def test_mysql_intervals_merge_and_stay_sorted() -> None:
    s = GtidSet(f"{U1}:1-5:7,{U2}:1-3")
    s.add(f"{U1}:6")  # closes the gap
    s.add(f"{U1}:8")
    s.add(f"{U1}:10")
    s.add(f"{U2.upper()}:4")  # server UUIDs compare without case
    assert str(s) == f"{U2}:1-4,{U1}:1-8:10"


def test_mysql_tags_have_their_own_intervals() -> None:
    s = GtidSet(f"{U1}:1-3:Tag_a:1-2")
    s.add(f"{U1}:tag_a:3")
    s.add(f"{U1}:4")
    assert str(s) == f"{U1}:1-4,{U1}:tag_a:1-3"


def test_server_text_with_newlines_and_empty_sets() -> None:
    assert str(GtidSet(f"{U1}:1-3,\n{U2}:5")) == f"{U2}:5,{U1}:1-3"
    assert not GtidSet("")
    assert not GtidSet(None)
    assert str(GtidSet(None)) == ""


@pytest.mark.parametrize("bad", ["nonsense", f"{U1}:5-3", "0-1"])
def test_malformed_sets_are_decode_errors(bad: str) -> None:
    with pytest.raises(DecodeError):
        GtidSet(bad)


def test_malformed_gtids_are_decode_errors() -> None:
    with pytest.raises(DecodeError):
        GtidSet().add(f"{U1}:x")
