"""The replay order of PostgreSQL change events (cdc.backup.restore.PgCommitPosition): pure logic."""

from __future__ import annotations

import json

import pytest

from cdc.backup.restore import REPLAY_POSITION, PgCommitPosition, Until, pg_commit_position
from cdc.envelope import EnvelopeCodec
from cdc.events import ChangeEvent, Op, TableId
from cdc.positions import PgPosition, parse_lsn

pytestmark = pytest.mark.unit

T = TableId("public", "t")


def _event(op: Op, lsn: int, txid: int | None, txn_id: str | None) -> ChangeEvent:
    after = {"id": 1}
    return ChangeEvent(op, T, {"id": 1}, None, after, {}, 0, txn_id=txn_id, position=PgPosition(lsn, txid))


def test_a_commit_position_sorts_after_its_own_lsn_and_before_the_next() -> None:
    commit = PgCommitPosition(1000, 7)
    assert commit > PgPosition(1000)  # a commit record starting at a backup's consistent point is after it
    assert commit >= PgPosition(1000)
    assert not commit <= PgPosition(1000)
    assert commit < PgPosition(1001)
    assert commit > PgPosition(999)
    assert PgCommitPosition(0xFF, 1) < PgCommitPosition(0x100, 2) < PgCommitPosition(0x1_0000_0000, 3)
    assert PgCommitPosition(5, 1) >= PgCommitPosition(5, 1)
    assert not PgCommitPosition(5, 1) > PgCommitPosition(5, 1)


@pytest.mark.parametrize(
    ("commit_lsn", "backup_lsn", "after_backup"),
    [(99, 100, False), (100, 100, True), (101, 100, True), (0x1_0000_0000, 0xFFFF_FFFF, True)],
)
def test_a_transaction_is_in_the_backup_exactly_when_it_committed_before_the_consistent_point(
    commit_lsn: int, backup_lsn: int, after_backup: bool
) -> None:
    event = _event(Op.UPDATE, commit_lsn - 50, 9, f"9:{commit_lsn}")
    position = REPLAY_POSITION["postgres"](event)
    assert position == PgCommitPosition(commit_lsn, 9)
    assert (position > PgPosition(backup_lsn)) is after_backup


def test_until_an_lsn_keeps_the_transactions_that_committed_before_it() -> None:
    until = Until.parse("0/3E8")  # 1000
    assert until.position == PgPosition(1000)
    kept = [lsn for lsn in (900, 999, 1000, 1001) if not PgCommitPosition(lsn, 1) >= until.position]
    assert kept == [900, 999]


def test_every_change_of_a_transaction_gets_its_commit_position() -> None:
    first = pg_commit_position(_event(Op.CREATE, 500, 42, "42:900"))
    last = pg_commit_position(_event(Op.DELETE, 880, 42, "42:900"))
    assert first == last == PgCommitPosition(900, 42)


@pytest.mark.parametrize("txn_id", [None, "", "42", "42:0/384", "x:900", "43:900"])
def test_no_commit_position_without_a_transaction_id_of_cdc_s_form(txn_id: str | None) -> None:
    assert pg_commit_position(_event(Op.UPDATE, 500, 42, txn_id)) is None


def test_snapshot_rows_keep_their_own_position() -> None:
    event = _event(Op.READ, 700, None, None)
    assert pg_commit_position(event) == PgPosition(700)


def test_the_commit_position_of_an_event_read_back_from_its_envelope() -> None:
    source = {
        "version": "0",
        "connector": "postgresql",
        "name": "p",
        "ts_ms": 1,
        "snapshot": "false",
        "db": "d",
        "sequence": '["100","150"]',
        "schema": "public",
        "table": "t",
        "txId": 42,
        "lsn": 150,
        "xmin": None,
    }
    value = {
        "before": None,
        "after": {"id": 1},
        "source": source,
        "op": "u",
        "ts_ms": 2,
        "transaction": {"id": "42:170", "total_order": 1, "data_collection_order": 1},
    }
    decoded = EnvelopeCodec("p").decode(json.dumps({"id": 1}).encode(), json.dumps(value).encode())
    assert decoded is not None and decoded.position == PgPosition(150, 42)
    assert pg_commit_position(decoded) == PgCommitPosition(170, 42)
    assert parse_lsn("0/AA") == 170
