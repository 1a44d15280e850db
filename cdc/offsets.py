"""Checkpointing and offset stores.

The :class:`Checkpointer` decides which source position may be recorded: the position of
the latest transaction boundary below which **every** event has been acknowledged by the
next stage. An :class:`OffsetStore` keeps that position (with the source's phase and
snapshot progress) durably: in a compacted Kafka topic (:mod:`cdc.bus.kafka`), or, for the
direct bus, in the target together with the rows.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import deque
from typing import Any, Generic, TypeVar

from cdc.positions import SourceOffset

__all__ = ["Checkpointer", "MemoryOffsetStore", "OffsetStore", "SourceOffset"]

T = TypeVar("T")


class Checkpointer(Generic[T]):
    """Tracks in-flight events in source order and yields the highest safe position.

    Contract:

    * :meth:`track` is called in source order, once per event handed to the next stage,
      and once with ``boundary`` for every transaction boundary (the commit). It returns a
      sequence number that :meth:`ack` takes.
    * :meth:`ack` may be called in any order, from any thread, at most once per sequence.
    * :attr:`committed` is the ``boundary`` of the latest tracked boundary such that it and
      every sequence tracked before it are acknowledged; it never moves backwards, never
      passes an unacknowledged event and is only ever a boundary position.

    Every operation is O(1) amortized.
    """

    def __init__(self, start: T | None = None) -> None:
        self._lock = threading.Lock()
        self._base = 0  # sequence number of _pending[0]
        self._next = 0
        self._pending: deque[list[Any]] = deque()  # [acked: bool, boundary: T | None]
        self._committed = start
        self._changed = threading.Condition(self._lock)

    def track(self, boundary: T | None = None) -> int:
        """Register the next item; ``boundary`` marks it as the end of a transaction at that position."""
        with self._lock:
            seq = self._next
            self._next += 1
            self._pending.append([False, boundary])
            return seq

    def mark(self, boundary: T) -> None:
        """A boundary with no event of its own (an empty or filtered transaction, a heartbeat)."""
        self.ack(self.track(boundary))

    def ack(self, seq: int) -> None:
        with self._lock:
            index = seq - self._base
            if index < 0 or index >= len(self._pending):
                raise ValueError(f"acknowledgement for unknown sequence {seq}")
            entry = self._pending[index]
            if entry[0]:
                raise ValueError(f"sequence {seq} acknowledged twice")
            entry[0] = True
            advanced = False
            while self._pending and self._pending[0][0]:
                _, boundary = self._pending.popleft()
                self._base += 1
                if boundary is not None:
                    self._committed = boundary
                    advanced = True
            if advanced:
                self._changed.notify_all()

    def ack_many(self, seqs: list[int]) -> None:
        for seq in seqs:
            self.ack(seq)

    @property
    def committed(self) -> T | None:
        with self._lock:
            return self._committed

    @property
    def in_flight(self) -> int:
        """How many tracked items are not yet released (acknowledged and below every gap)."""
        with self._lock:
            return len(self._pending)

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until everything tracked is acknowledged, or ``timeout_s`` passes; True when idle."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending, timeout=timeout_s)


class OffsetStore(ABC):
    """Durable storage of :class:`SourceOffset` by key (the pipeline name).

    Contract: after :meth:`save` returns, :meth:`load` in any later process returns that
    offset (or a later one). :meth:`load` returns None when nothing was stored.
    """

    @abstractmethod
    def load(self, key: str) -> SourceOffset | None: ...

    @abstractmethod
    def save(self, key: str, offset: SourceOffset) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


class MemoryOffsetStore(OffsetStore):
    """An in-process store for unit tests of pure logic."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, Any]] = {}

    def load(self, key: str) -> SourceOffset | None:
        data = self._data.get(key)
        return SourceOffset.from_dict(data) if data is not None else None

    def save(self, key: str, offset: SourceOffset) -> None:
        self._data[key] = offset.to_dict()
