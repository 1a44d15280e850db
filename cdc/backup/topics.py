"""The change topics seen from a backup: which of them still reach back to it, and where to start reading.

A backup restores to any later point only while the change topics still hold every change made
after its position. Kafka deletes old records by retention (``retention.ms``, ``retention.bytes``),
so that holds for a partition when

* nothing was ever deleted (its beginning offset is 0), or
* the first record still held is older than the backup's lookup time (records are deleted
  oldest first, so every deleted one is older too), or
* retention is by time only and ``now - retention.ms`` is not after the lookup time (what a
  time-based retention deleted was older than that).

The lookup time is the backup's start minus :data:`CLOCK_MARGIN_MS`: Kafka record timestamps are
the publishing process's clock, the backup's times the backup process's, and a change committed
after the backup's position was published after the backup started. Replays start at the first
record at or after the lookup time and skip, by source position, what the backup already holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cdc.bus.base import ClientFactory, TopicPartition
from cdc.bus.kafka import KafkaSettings, client_factory
from cdc.envelope import heartbeat_topic, schema_change_topic
from cdc.errors import ConnectionLostError
from cdc.events import TableId

__all__ = ["CLOCK_MARGIN_MS", "ChangeTopics", "Coverage"]

#: How much earlier than a backup's start the change topics are read, for clock differences.
CLOCK_MARGIN_MS = 5 * 60 * 1000


@dataclass(frozen=True)
class Coverage:
    """Whether the change topics reach back to a point in time, and until when they will."""

    reaches_back: bool
    expires_ms: int | None  # when retention may start deleting changes made after that point (None: never)
    problem: str | None = None  # why not, naming a partition


class ChangeTopics:
    """The change topics of one pipeline (``<prefix>.<schema>.<table>``), as Kafka holds them now."""

    def __init__(self, settings: KafkaSettings, prefix: str, client_id: str = "cdc-backup") -> None:
        self.settings = settings
        self.prefix = prefix
        self.factory: ClientFactory = client_factory(settings, client_id=client_id)
        self._partitions: list[TopicPartition] | None = None

    def table_of(self, topic: str) -> TableId | None:
        """The table a change topic carries (None for any other topic)."""
        if not topic.startswith(self.prefix + ".") or topic in (
            schema_change_topic(self.prefix),
            heartbeat_topic(self.prefix),
        ):
            return None
        try:
            return TableId.parse(topic[len(self.prefix) + 1 :])
        except ValueError:
            return None

    def partitions(self, includes: Callable[[TableId], bool] = lambda _t: True) -> list[TopicPartition]:
        """Every partition of the change topics of the tables ``includes`` accepts."""
        admin = self.factory.admin()
        try:
            out: list[TopicPartition] = []
            for topic in sorted(admin.list_topics()):
                table = self.table_of(topic)
                if table is not None and includes(table):
                    out.extend((topic, p) for p in admin.partitions_for(topic))
            return out
        finally:
            admin.close()

    def retention(self, topics: Sequence[str]) -> dict[str, tuple[int, int]]:
        """``{topic: (retention.ms, retention.bytes)}``, -1 meaning unlimited."""
        if not topics:
            return {}
        admin = self.factory.admin()
        try:
            configs = admin.topic_configs(sorted(set(topics)))
        finally:
            admin.close()
        out = {}
        for topic in topics:
            c = configs.get(topic, {})
            out[topic] = (int(c.get("retention.ms", "-1")), int(c.get("retention.bytes", "-1")))
        return out

    def first_timestamps(
        self, tps: Sequence[TopicPartition], begins: dict[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        """The timestamp of the first record still held, for each non-empty partition of ``tps``."""
        if not tps:
            return {}
        consumer = self.factory.consumer(group_id=None, read_committed=self.settings.exactly_once, max_poll_records=500)
        try:
            ends = consumer.end_offsets(list(tps))
            wanted = [tp for tp in tps if ends.get(tp, 0) > begins.get(tp, 0)]
            if not wanted:
                return {}
            consumer.assign(wanted)
            for tp in wanted:
                consumer.seek(tp, begins.get(tp, 0))
            out: dict[TopicPartition, int] = {}
            deadline = time.monotonic() + 60
            while len(out) < len(wanted):
                if time.monotonic() > deadline:
                    missing = [tp for tp in wanted if tp not in out]
                    raise ConnectionLostError(f"reading the first records of {missing[:3]} took longer than 60 s")
                for msg in consumer.poll(500, 0.5):
                    out.setdefault((msg.topic, msg.partition), msg.timestamp_ms)
                for tp in wanted:  # only transaction markers left: nothing to date
                    if tp not in out and consumer.position(tp) >= ends[tp]:
                        out[tp] = 2**62
            return out
        finally:
            consumer.close()

    def coverage(self, since_ms: Sequence[int], now_ms: int | None = None) -> list[Coverage]:
        """For each lookup time in ``since_ms``: do the change topics still hold every change after it?"""
        tps = self.partitions()
        if not tps:
            return [Coverage(True, None) for _ in since_ms]
        consumer = self.factory.consumer(group_id=None, read_committed=self.settings.exactly_once)
        try:
            begins = consumer.beginning_offsets(tps)
        finally:
            consumer.close()
        trimmed = [tp for tp in tps if begins.get(tp, 0) > 0]
        firsts = self.first_timestamps(trimmed, begins)
        retention = self.retention(sorted({t for t, _ in tps}))
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        finite = [ms for ms, _ in retention.values() if ms >= 0]
        out: list[Coverage] = []
        for since in since_ms:
            expires = since + min(finite) if finite else None
            problem = None
            for tp in trimmed:
                problem = partition_gap(
                    tp, begins[tp], firsts.get(tp), retention=retention[tp[0]], since_ms=since, now_ms=now
                )
                if problem is not None:
                    break
            out.append(Coverage(problem is None, expires, problem))
        return out


def partition_gap(
    tp: TopicPartition, begin: int, first_ts: int | None, *, retention: tuple[int, int], since_ms: int, now_ms: int
) -> str | None:
    """Why partition ``tp`` may have lost changes made at or after ``since_ms`` (None: it has not).

    ``begin`` is its beginning offset, ``first_ts`` the timestamp of its first held record (None when
    it holds none), ``retention`` its ``(retention.ms, retention.bytes)``.
    """
    if begin == 0:
        return None
    if first_ts is not None and first_ts < since_ms:
        return None
    ms, size = retention
    if size < 0 and ms >= 0 and now_ms - ms <= since_ms:
        return None
    return (
        f"{tp[0]}[{tp[1]}] no longer holds its records before offset {begin}, and they may include changes made "
        "after the backup (retention deleted them)"
    )
