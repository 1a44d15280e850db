"""The direct bus's resume rule, with an in-memory sink double (pure logic; the real sinks
are tested against real databases)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

from cdc.bus.direct import DirectBus
from cdc.connector import Problem, Sink
from cdc.events import ChangeEvent, Checkpoint, Op, SchemaChange, TableId
from cdc.positions import PgPosition, SourceOffset

T = TableId("s", "t")


class MemorySink(Sink):
    def __init__(self) -> None:
        self.rows: list[int] = []
        self.offset: SourceOffset | None = None
        self.writes = 0
        self.fail_on_write: int | None = None

    def check(self) -> list[Problem]:
        return []

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def applied(self, pipeline: str) -> SourceOffset | None:
        return self.offset

    def apply_schema(self, change: SchemaChange) -> None:
        pass

    def write_batch(self, pipeline: str, events: Sequence[ChangeEvent], *, offset: SourceOffset | None = None,
                    partitions: Mapping[tuple[str, int], int] | None = None) -> None:
        self.writes += 1
        if self.fail_on_write == self.writes:
            raise RuntimeError("crash")
        self.rows.extend(e.after["id"] for e in events if e.after)  # all-or-nothing: only after the check
        self.offset = offset


def txn(n: int, size: int = 3) -> list:
    events = [ChangeEvent(Op.CREATE, T, {"id": n * 10 + i}, None, {"id": n * 10 + i}, {}, n) for i in range(size)]
    return [*events, Checkpoint(SourceOffset(PgPosition(n)), n)]


def test_resume_from_lowest_sink_and_skip_what_each_has() -> None:
    a, b = MemorySink(), MemorySink()
    bus = DirectBus("p", [a, b])
    assert bus.open() is None
    for n in range(1, 6):
        bus.publish(txn(n))
    # b "crashes" after txn 3: its target lost nothing committed but has only txns 1..3
    b.rows = [r for r in b.rows if r < 40]
    b.offset = SourceOffset(PgPosition(3))

    bus2 = DirectBus("p", [a, b])
    start = bus2.open()
    assert start == SourceOffset(PgPosition(3))
    for n in range(4, 9):  # the source replays after the lowest offset
        bus2.publish(txn(n))
    expected = [n * 10 + i for n in range(1, 9) for i in range(3)]
    assert a.rows == expected  # no transaction applied twice
    assert b.rows == expected
    assert bus2.committed == SourceOffset(PgPosition(8))


def test_open_transaction_is_not_written() -> None:
    a = MemorySink()
    bus = DirectBus("p", [a])
    bus.open()
    items = txn(1)
    bus.publish(items[:2])  # two events of txn 1, no checkpoint yet
    assert a.rows == [] and a.offset is None
    bus.publish(items[2:])
    assert a.rows == [10, 11, 12] and a.offset == SourceOffset(PgPosition(1))


def test_failed_write_keeps_offset_behind() -> None:
    a = MemorySink()
    a.fail_on_write = 2
    bus = DirectBus("p", [a])
    bus.open()
    bus.publish(txn(1))
    with contextlib.suppress(RuntimeError):
        bus.publish(txn(2))
    assert a.offset == SourceOffset(PgPosition(1)) and a.rows == [10, 11, 12]


def test_snapshot_chunks_order_before_streaming() -> None:
    pos = PgPosition(100)
    chunk1 = SourceOffset(pos, "snapshot", {"chunk": 1})
    chunk2 = SourceOffset(pos, "snapshot", {"chunk": 2})
    streaming = SourceOffset(PgPosition(50))
    assert chunk1.order_key() < chunk2.order_key() < streaming.order_key()
