"""Feeding a sink from Kafka: the consume → apply → commit loop of ``cdc run --only sink:NAME``.

Exactly-once in effect rests on the target, not on Kafka: every batch is applied by
:meth:`~cdc.connector.Sink.write_batch` in one target transaction **together with** the next
offset of every partition it came from. When partitions are assigned (at start and after
every rebalance) the runner seeks each one to the offset stored in the target; the consumer
group's committed offsets are only a hint for partitions the target has never seen. A
crash between the target commit and the Kafka commit, or the other way round, therefore
neither loses nor repeats an effect.

Schema changes arrive on their own topic (``<prefix>``), so a row can overtake its table's
definition. The runner reads the schema topic to its end before the first batch and again
whenever an event names a table the sink has no definition for.

Poison messages (an envelope that cannot be decoded, or an event the target rejects with
a :class:`~cdc.errors.DecodeError` or :class:`~cdc.errors.TargetValueError`) go to the
dead-letter topic with the reason in headers, and the runner goes on; with
``on_error: fail`` they stop it instead.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cdc import failpoints
from cdc.bus.base import Consumer, Message, Producer, TopicPartition
from cdc.bus.kafka import KafkaSettings, client_factory
from cdc.connector import Sink
from cdc.envelope import EnvelopeCodec, heartbeat_topic, schema_change_topic, table_schema_from_connect
from cdc.errors import CdcError, DecodeError, SchemaError, TargetValueError
from cdc.events import ChangeEvent, SchemaChange, TableId

__all__ = ["KafkaSinkRunner", "RunnerStats"]

#: Where a JsonConverter-wrapped record's schema ends and its payload begins.
_PAYLOAD = b',"payload":'

#: Group offsets (a hint; the target holds the applied positions) are committed this often.
COMMIT_INTERVAL_S = 1.0


@dataclass
class RunnerStats:
    """Counters the metrics layer reads."""

    applied: int = 0
    dead_lettered: int = 0
    batches: int = 0
    last_commit_ts_ms: int = 0  # source commit time of the newest applied event
    last_apply_wall_ms: int = 0
    by_table_op: dict[tuple[str, str], int] = field(default_factory=dict)


class KafkaSinkRunner:
    """Consumes a pipeline's change topics into one sink.

    Contract: :meth:`open` subscribes; every :meth:`run_once` applies at most one batch and
    returns how many events it applied; :meth:`close` commits and leaves the group.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        pipeline: str,
        prefix: str,
        sink_name: str,
        sink: Sink,
        *,
        includes: Callable[[TableId], bool] = lambda _t: True,
        on_error: str = "dead_letter",
        dead_letter_topic: str | None = None,
        batch_size: int = 5000,
        instance: str | None = None,
    ) -> None:
        self.settings = settings
        self.instance = instance  # ``cdc run --instance``: this process's static group membership
        self.pipeline = pipeline
        self.prefix = prefix
        self.sink_name = sink_name
        self.sink = sink
        self.includes = includes
        self.on_error = on_error
        self.dlq_topic = dead_letter_topic or f"__cdc_dlq.{prefix}.{sink_name}"
        self.batch_size = batch_size
        self.codec = EnvelopeCodec(prefix, schemas=settings.schemas)
        self.group = f"cdc.{pipeline}.{sink_name}"
        self._factory = client_factory(settings, client_id=f"cdc-{pipeline}-{sink_name}")
        self._consumer: Consumer | None = None
        self._dlq: Producer | None = None
        self._schema_topic = schema_change_topic(prefix)
        self._schema_offset = 0
        self._known_tables: set[TableId] = set()
        self._connect_schemas: dict[TableId, bytes] = {}  # tables defined by their records' schemas
        self._uncommitted: dict[TopicPartition, int] = {}
        self._committed_at = 0.0
        self.stats = RunnerStats()

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> None:
        self.sink.open()
        self._catch_up_schemas()
        consumer = self._factory.consumer(
            group_id=self.group,
            read_committed=self.settings.exactly_once,
            max_poll_records=self.batch_size,
            group_instance_id=f"{self.instance}.{self.sink_name}" if self.instance else None,
        )
        pattern = rf"{re.escape(self.prefix)}\..+"
        consumer.subscribe(pattern=pattern, on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._consumer = consumer

    def _commit_hint(self) -> None:
        if self._uncommitted and self._consumer is not None:
            self._consumer.commit(dict(self._uncommitted))
            self._uncommitted.clear()

    def close(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(CdcError):  # a hint only; the target holds the positions
                self._commit_hint()
            self._consumer.close()
            self._consumer = None
        if self._dlq is not None:
            self._dlq.close()
            self._dlq = None
        self.sink.close()

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        stored = self.sink.applied_partitions(self.pipeline)
        assert self._consumer is not None
        for tp in partitions:
            if tp in stored:
                self._consumer.seek(tp, stored[tp])  # the target is the source of truth

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        """Batches are applied synchronously inside run_once, so nothing is pending here."""

    # ------------------------------------------------------------------ schemas

    def _catch_up_schemas(self) -> None:
        """Apply every schema change recorded after the last one read."""
        admin = self._factory.admin()
        try:
            parts = admin.partitions_for(self._schema_topic)
        finally:
            admin.close()
        if not parts:
            return
        reader = self._factory.consumer(group_id=None, read_committed=self.settings.exactly_once)
        try:
            tps = [(self._schema_topic, p) for p in parts]
            reader.assign(tps)
            for tp in tps:
                reader.seek(tp, self._schema_offset if len(tps) == 1 else 0)
            ends = reader.end_offsets(tps)
            deadline = time.monotonic() + 60
            while any(reader.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
                for msg in reader.poll(5000, 0.5):
                    if msg.value is None:
                        continue
                    for change in self.codec.decode_schema_changes(msg.value):
                        if self.includes(change.schema.table):
                            self.sink.apply_schema(change)
                            self._known_tables.add(change.schema.table)
                    self._schema_offset = msg.offset + 1
        finally:
            reader.close()

    def _follow_connect_schema(self, event: ChangeEvent, msg: Message) -> None:
        """For a table with no schema-change events (Debezium's PostgreSQL connector publishes
        none), take its definition from the Connect schema its records carry
        (``schemas.enable=true``), and again whenever that schema changes (a column added)."""
        value = msg.value
        assert value is not None
        known = self._connect_schemas.get(event.table)
        if known and value.startswith(known):
            return  # the schema this table was defined by: compared in place, nothing copied per record
        cut = value.find(_PAYLOAD)
        head = value[: cut + len(_PAYLOAD)] if cut > 0 else None
        schema = table_schema_from_connect(event.table, msg.key, value)
        if schema is None:
            if event.table in self._connect_schemas:
                return  # a record without a schema between ones with: keep the definition
            raise SchemaError(
                f"no definition of {event.table}: its topic has no schema-change events and its records carry "
                "no schema; write them with JsonConverter schemas.enable=true (Debezium's PostgreSQL "
                "connector publishes no schema changes)"
            )
        kind = "ALTER" if event.table in self._connect_schemas else "CREATE"
        self.sink.apply_schema(SchemaChange(kind, schema, None, dict(event.source), event.ts_ms))
        self._connect_schemas[event.table] = head if head is not None else b""
        self._known_tables.add(event.table)

    # ------------------------------------------------------------------ the loop

    def run_once(self, timeout_s: float = 0.5) -> int:
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("the runner is not open")
        messages = consumer.poll(self.batch_size, timeout_s)
        if not messages:
            return 0
        events: list[ChangeEvent] = []
        sources: list[Message] = []  # the message each event came from, for dead letters
        offsets: dict[TopicPartition, int] = {}
        heartbeat = heartbeat_topic(self.prefix)
        for msg in messages:
            offsets[(msg.topic, msg.partition)] = msg.offset + 1
            if msg.topic in (self._schema_topic, heartbeat) or msg.value is None:
                continue  # schema changes are read separately; tombstones carry nothing to apply
            try:
                event = self.codec.decode(msg.key, msg.value)
            except DecodeError as exc:
                self._dead_letter(msg, exc)
                continue
            if event is None or not self.includes(event.table):
                continue
            if event.table not in self._known_tables:
                self._catch_up_schemas()
            if event.table not in self._known_tables or event.table in self._connect_schemas:
                try:
                    self._follow_connect_schema(event, msg)
                except (DecodeError, SchemaError) as exc:
                    self._dead_letter(msg, exc)
                    continue
            events.append(event)
            sources.append(msg)
        try:
            try:
                self.sink.write_batch(self.pipeline, events, partitions=offsets)
            except SchemaError:
                # Rows of a definition the sink has not seen yet (a column added): the change is
                # on the schema topic, which the publisher flushed before sending those rows.
                self._catch_up_schemas()
                self.sink.write_batch(self.pipeline, events, partitions=offsets)
        except (DecodeError, TargetValueError):
            if self.on_error == "fail":
                raise
            events = self._apply_one_by_one(events, sources, offsets)
        failpoints.hit("sink.after_apply")
        # Group offsets are a hint (the target holds the truth, read on assignment): committed at
        # most once a second and on close, not in every batch's path.
        self._uncommitted.update(offsets)
        now = time.monotonic()
        if now - self._committed_at >= COMMIT_INTERVAL_S:
            self._commit_hint()
            self._committed_at = now
            failpoints.hit("sink.after_offsets")
        self._count(events)
        return len(events)

    def lag_events(self) -> int | None:
        """Change-topic records not yet applied, over this runner's assigned partitions (None when
        nothing is assigned yet). Heartbeat and schema records count too; they are few."""
        consumer = self._consumer
        if consumer is None:
            return None
        assigned = sorted(consumer.assignment())
        if not assigned:
            return None
        ends = consumer.end_offsets(assigned)
        return sum(max(0, ends.get(tp, 0) - consumer.position(tp)) for tp in assigned)

    def _apply_one_by_one(
        self, events: list[ChangeEvent], sources: list[Message], offsets: dict[TopicPartition, int]
    ) -> list[ChangeEvent]:
        """Apply a rejected batch event by event in order, dead-lettering what the target refuses;
        then store the offsets. A crash in between replays the batch, which ends in the same state."""
        applied: list[ChangeEvent] = []
        for event, msg in zip(events, sources, strict=True):
            try:
                self.sink.write_batch(self.pipeline, [event], partitions={})
            except (DecodeError, TargetValueError) as exc:
                self._dead_letter(msg, exc)
                continue
            applied.append(event)
        self.sink.write_batch(self.pipeline, [], partitions=offsets)
        return applied

    def _dlq_producer(self) -> Producer:
        if self._dlq is None:
            self._dlq = self._factory.producer(compression=None, linger_ms=0)
        return self._dlq

    def _dead_letter(self, msg: Message, exc: Exception) -> None:
        if self.on_error == "fail":
            raise exc
        headers = [
            ("cdc.error", str(exc).encode()[:4000]),
            ("cdc.topic", msg.topic.encode()),
            ("cdc.partition", str(msg.partition).encode()),
            ("cdc.offset", str(msg.offset).encode()),
            ("cdc.sink", self.sink_name.encode()),
        ]
        producer = self._dlq_producer()
        batch = producer.batch()
        producer.send(self.dlq_topic, msg.key, msg.value, batch, headers=headers)
        producer.flush(30)
        self.stats.dead_lettered += 1

    def _count(self, events: list[ChangeEvent]) -> None:
        st = self.stats
        st.applied += len(events)
        st.batches += 1
        st.last_apply_wall_ms = int(time.time() * 1000)
        for e in events:
            k = (str(e.table), e.op.value)
            st.by_table_op[k] = st.by_table_op.get(k, 0) + 1
            st.last_commit_ts_ms = max(st.last_commit_ts_ms, e.ts_ms)
