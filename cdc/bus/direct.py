"""The direct bus: source and sinks in one process, without Kafka.

Each sink stores the source offset in its target in the same transaction as the rows, so
a crash loses nothing and applies nothing twice: on start the source resumes from the
**lowest** offset any sink stored, and a sink drops every transaction whose commit offset
is at or below its own. A source transaction is applied to a target in one target
transaction, so its events are held in memory until its :class:`~cdc.events.Checkpoint`;
consecutive small transactions are grouped into one target transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cdc.connector import Sink
from cdc.events import ChangeEvent, Checkpoint, Heartbeat, Item, SchemaChange
from cdc.positions import SourceOffset

__all__ = ["DirectBus"]


@dataclass
class _SinkState:
    sink: Sink
    applied: SourceOffset | None
    batch: list[ChangeEvent] = field(default_factory=list)


class DirectBus:
    """Feeds a source's items straight into sinks.

    Contract: :meth:`open` returns the offset the source must resume strictly after.
    :meth:`publish` takes items in source order; whenever it returns, every transaction
    that ended in them and was flushed is durable in every target, and :attr:`committed`
    is the offset of the latest such transaction.
    """

    def __init__(self, pipeline: str, sinks: Sequence[Sink], max_batch_events: int = 5000) -> None:
        self.pipeline = pipeline
        self._states = [_SinkState(s, None) for s in sinks]
        self._txn: list[ChangeEvent] = []
        self._group_offset: SourceOffset | None = None
        self._max = max_batch_events
        self.committed: SourceOffset | None = None

    def open(self) -> SourceOffset | None:
        for st in self._states:
            st.applied = st.sink.applied(self.pipeline)
        offsets = [st.applied for st in self._states]
        if not offsets or any(o is None for o in offsets):
            start = None
        else:
            start = min((o for o in offsets if o is not None), key=SourceOffset.order_key)
        self.committed = start
        return start

    def publish(self, items: Sequence[Item]) -> None:
        for item in items:
            if isinstance(item, ChangeEvent):
                self._txn.append(item)
            elif isinstance(item, SchemaChange):
                for st in self._states:
                    st.sink.apply_schema(item)
            elif isinstance(item, (Checkpoint, Heartbeat)):
                offset = item.offset
                if offset is not None:
                    self._end_transaction(offset)
        if self._group_offset is not None and not self._txn:
            self.flush()

    def _end_transaction(self, offset: SourceOffset) -> None:
        txn, self._txn = self._txn, []
        for st in self._states:
            if st.applied is not None and offset.order_key() <= st.applied.order_key():
                continue  # this target already has the transaction
            st.batch.extend(txn)
        self._group_offset = offset
        if any(len(st.batch) >= self._max for st in self._states):
            self.flush()

    def flush(self) -> None:
        """Write every completed transaction not yet written; events of an open transaction stay."""
        offset = self._group_offset
        if offset is None:
            return
        for st in self._states:
            if st.applied is not None and offset.order_key() <= st.applied.order_key():
                continue
            st.sink.write_batch(self.pipeline, st.batch, offset=offset)
            st.batch = []
            st.applied = offset
        self._group_offset = None
        self.committed = offset
