"""The Checkpointer never passes an unacknowledged event and only stops at transaction boundaries."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdc.offsets import Checkpointer, MemoryOffsetStore, SourceOffset
from cdc.positions import MySqlPosition, PgPosition


@st.composite
def stream_and_ack_order(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    """Transactions of 0..5 events each; returns the size list and a permutation of all item indices."""
    sizes = draw(st.lists(st.integers(0, 5), min_size=1, max_size=25))
    n_items = sum(sizes) + len(sizes)  # events + one boundary per transaction
    order = draw(st.permutations(list(range(n_items))))
    return sizes, order


@settings(max_examples=300, deadline=None)
@given(stream_and_ack_order())
def test_committed_never_passes_an_unacknowledged_event(case: tuple[list[int], list[int]]) -> None:
    sizes, order = case
    cp = Checkpointer()
    items: list[tuple[int, PgPosition | None]] = []  # (seq, boundary)
    lsn = 0
    for size in sizes:
        items.extend((cp.track(), None) for _ in range(size))
        lsn += 100
        boundary = PgPosition(lsn)
        items.append((cp.track(boundary), boundary))

    acked: set[int] = set()
    previous = None
    for index in order:
        cp.ack(items[index][0])
        acked.add(index)
        # the reference: the last boundary whose whole prefix is acknowledged
        expected = None
        for i, (_, boundary) in enumerate(items):
            if i not in acked:
                break
            if boundary is not None:
                expected = boundary
        got = cp.committed
        assert got == expected
        if got is not None:
            boundary_index = next(i for i, (_, b) in enumerate(items) if b == got)
            assert all(i in acked for i in range(boundary_index + 1))
        if previous is not None and got is not None:
            assert got >= previous
        previous = got
    assert cp.committed == items[-1][1]
    assert cp.in_flight == 0


def test_ack_errors() -> None:
    cp = Checkpointer()
    seq = cp.track()
    cp.ack(seq)
    with pytest.raises(ValueError, match="unknown"):
        cp.ack(seq)
    with pytest.raises(ValueError, match="unknown"):
        cp.ack(99)
    a, b = cp.track(), cp.track(PgPosition(5))
    cp.ack(b)
    with pytest.raises(ValueError, match="twice"):
        cp.ack(b)
    assert cp.committed is None
    cp.ack(a)
    assert cp.committed == PgPosition(5)


def test_mark_and_start() -> None:
    start = MySqlPosition("bin.000001", 4)
    cp = Checkpointer(start)
    assert cp.committed == start
    pending = cp.track()
    cp.mark(MySqlPosition("bin.000001", 100))
    assert cp.committed == start  # the event before the empty transaction is not acknowledged
    cp.ack(pending)
    assert cp.committed == MySqlPosition("bin.000001", 100)


def test_acks_from_threads_and_wait_idle() -> None:
    cp = Checkpointer()
    seqs = [cp.track(PgPosition(i + 1) if i % 10 == 9 else None) for i in range(1000)]
    threads = [threading.Thread(target=cp.ack_many, args=(seqs[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    assert cp.wait_idle(10)
    for t in threads:
        t.join()
    assert cp.committed == PgPosition(1000)


def test_memory_offset_store_round_trip() -> None:
    store = MemoryOffsetStore()
    assert store.load("p") is None
    off = SourceOffset(MySqlPosition("b.000002", 77, "0-1-5", 1), "snapshot", {"done": ["a.b"]})
    store.save("p", off)
    assert store.load("p") == off
