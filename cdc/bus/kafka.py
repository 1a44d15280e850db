"""The Kafka bus: publishing a source's items, and the internal topics that keep its state.

Topics (see the contract):

* ``<prefix>.<schema>.<table>``: change events, keyed by primary key; a delete is followed
  by a tombstone.
* ``<prefix>``: schema-change events with full table definitions.
* ``__cdc_heartbeat.<prefix>``: heartbeats.
* ``__cdc_offsets``: stored source offsets, compacted, keyed by pipeline name.
* ``__cdc_schema_history.<prefix>``: every table definition by position, compacted with a
  unique key per record so nothing is ever compacted away.

Delivery: the producer is idempotent with ``acks=all``. Records are grouped into segments
that end at source transaction boundaries (or at the end of a publish call); each segment's
deliveries are counted by one :class:`~cdc.bus.base.Batch`, and each segment is one entry
in a :class:`~cdc.offsets.Checkpointer`. The stored offset only advances to a source
transaction boundary below which every record is acknowledged. With ``exactly_once`` the
records and the offset record are written in one Kafka transaction that only ever ends at a
source transaction boundary, so a ``read_committed`` consumer never sees a duplicate.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from cdc import failpoints
from cdc.bus.base import Batch, ClientFactory, Producer, TopicSpec
from cdc.envelope import EnvelopeCodec, heartbeat_topic, schema_change_topic, topic_for
from cdc.errors import ConfigError, ConnectionLostError, DecodeError, SchemaError, TerminalError
from cdc.events import ChangeEvent, Checkpoint, Heartbeat, Item, SchemaChange, TableId, TableSchema
from cdc.offsets import Checkpointer, OffsetStore
from cdc.positions import SourceOffset, position_from_dict

__all__ = [
    "OFFSETS_TOPIC",
    "KafkaOffsetStore",
    "KafkaPublisher",
    "KafkaSchemaHistory",
    "KafkaSettings",
    "client_factory",
    "schema_history_topic",
]

OFFSETS_TOPIC = "__cdc_offsets"
CLIENTS = ("kafka-python", "confluent-kafka")


def schema_history_topic(prefix: str) -> str:
    return f"__cdc_schema_history.{prefix}"


@dataclass
class KafkaSettings:
    """The ``bus:`` section for ``type: kafka``."""

    bootstrap_servers: str
    client: str = "kafka-python"
    partitions: int = 1
    replication: int = 1
    compression: str | None = "lz4"
    linger_ms: int = 5
    batch_bytes: int = 512 * 1024
    exactly_once: bool = False
    schemas: bool = False
    offset_flush_ms: int = 1000
    transaction_ms: int = 100
    topic_config: dict[str, str] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)


def client_factory(settings: KafkaSettings, client_id: str = "cdc") -> ClientFactory:
    """The client library the settings select, imported only now."""
    if settings.client == "kafka-python":
        from cdc.bus.kafka_python import KafkaPythonFactory

        return KafkaPythonFactory(settings.bootstrap_servers, client_id, settings.properties)
    if settings.client == "confluent-kafka":
        try:
            from cdc.bus.confluent import ConfluentFactory
        except ImportError as exc:
            raise ConfigError(["bus.client: confluent-kafka is not installed (pip install 'cdc[confluent]')"]) from exc
        return ConfluentFactory(settings.bootstrap_servers, client_id, settings.properties)
    raise ConfigError([f"bus.client: unknown client {settings.client!r}; choose one of {', '.join(CLIENTS)}"])


_COMPACTED = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}


def _read_all(factory: ClientFactory, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of ``topic`` from the beginning to its current end, in order per partition."""
    admin = factory.admin()
    try:
        partitions = admin.partitions_for(topic)
    finally:
        admin.close()
    if not partitions:
        return []
    consumer = factory.consumer(group_id=None, read_committed=True)
    try:
        tps = [(topic, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(tps)
        ends = consumer.end_offsets(tps)
        out: list[tuple[bytes | None, bytes | None]] = []
        done = {tp for tp, end in ends.items() if end == 0}
        deadline = time.monotonic() + 60
        while len(done) < len(tps):
            if time.monotonic() > deadline:
                raise ConnectionLostError(f"reading {topic} to its end took longer than 60s")
            for m in consumer.poll(10_000, 0.5):
                out.append((m.key, m.value))
                if m.offset + 1 >= ends[(m.topic, m.partition)]:
                    done.add((m.topic, m.partition))
            # transaction markers take offsets too: the position may pass the end without a record
            for tp in tps:
                if tp not in done and consumer.position(tp) >= ends[tp]:
                    done.add(tp)
        return out
    finally:
        consumer.close()


class KafkaOffsetStore(OffsetStore):
    """Source offsets in the compacted ``__cdc_offsets`` topic, keyed by pipeline name."""

    def __init__(self, factory: ClientFactory, producer: Producer | None = None, replication: int = 1) -> None:
        self._factory = factory
        self._producer = producer
        self._own_producer = producer is None
        self._replication = replication

    def ensure_topic(self) -> None:
        admin = self._factory.admin()
        try:
            admin.create_topics([TopicSpec(OFFSETS_TOPIC, 1, self._replication, _COMPACTED)])
        finally:
            admin.close()

    @staticmethod
    def record(key: str, offset: SourceOffset) -> tuple[bytes, bytes]:
        return key.encode(), orjson.dumps(offset.to_dict())

    def load(self, key: str) -> SourceOffset | None:
        wanted = key.encode()
        last: bytes | None = None
        found = False
        for k, v in _read_all(self._factory, OFFSETS_TOPIC):
            if k == wanted:
                last, found = v, True
        if not found or last is None:
            return None
        try:
            return SourceOffset.from_dict(orjson.loads(last))
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"the stored offset of pipeline {key!r} is not JSON: {exc}") from exc

    def save(self, key: str, offset: SourceOffset) -> None:
        if self._producer is None:
            self._producer = self._factory.producer(compression=None, linger_ms=0)
        k, v = self.record(key, offset)
        batch = self._producer.batch()
        self._producer.send(OFFSETS_TOPIC, k, v, batch)
        self._producer.flush(30)
        if not batch.complete():
            raise ConnectionLostError(f"storing the offset of pipeline {key!r} was not acknowledged in 30s")

    def close(self) -> None:
        if self._own_producer and self._producer is not None:
            self._producer.close()
            self._producer = None


class KafkaSchemaHistory:
    """Every table definition a source has seen, by position, in ``__cdc_schema_history.<prefix>``.

    The MySQL source reads it on start to know each table's columns as of its resume
    position (rows written before a DDL are decoded with the definition before the DDL).
    """

    def __init__(self, factory: ClientFactory, prefix: str, codec: EnvelopeCodec, replication: int = 1) -> None:
        self._factory = factory
        self.topic = schema_history_topic(prefix)
        self._codec = codec
        self._replication = replication

    def ensure_topic(self) -> None:
        admin = self._factory.admin()
        try:
            admin.create_topics([TopicSpec(self.topic, 1, self._replication, {**_COMPACTED, "retention.ms": "-1"})])
        finally:
            admin.close()

    def record(self, change: SchemaChange) -> tuple[bytes, bytes]:
        pos = change.position.sort_key() if change.position is not None else "-"
        key = f"{change.schema.table}@{pos}#{change.schema.version}".encode()
        _, value = self._codec.encode_schema_change(change)
        body = orjson.loads(value)
        body = body.get("payload", body)
        return key, orjson.dumps(
            {"v": 1, "position": change.position.to_dict() if change.position else None, "change": body}
        )

    def load(self) -> list[SchemaChange]:
        """Every recorded change in the order written."""
        out: list[SchemaChange] = []
        for _key, value in _read_all(self._factory, self.topic):
            if value is None:
                continue
            try:
                data = orjson.loads(value)
                change = self._codec.decode_schema_change(orjson.dumps(data["change"]))
                pos = data.get("position")
                change.position = position_from_dict(pos) if pos else None
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise DecodeError(f"a record in {self.topic} is malformed: {exc}") from exc
            out.append(change)
        return out


class KafkaPublisher:
    """Publishes a source's items to Kafka and stores the source offset once they are acknowledged.

    Contract:

    * :meth:`open` creates the internal topics and returns the stored offset (None on a
      first start). The source must resume strictly after it.
    * :meth:`publish` takes items in source order. Every :class:`ChangeEvent` must be preceded
      (in this or an earlier call) by a :class:`SchemaChange` for its table. It does not wait
      for the broker.
    * :meth:`pump` collects delivery reports, advances :attr:`committed` and stores it
      every ``offset_flush_ms``. A record that could not be delivered raises a transient error:
      the caller restarts from the stored offset and nothing is lost.
    * :meth:`flush` waits for every record and stores the committed offset synchronously.
    """

    def __init__(
        self, settings: KafkaSettings, pipeline: str, prefix: str | None = None, factory: ClientFactory | None = None
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.prefix = prefix or pipeline
        self.codec = EnvelopeCodec(self.prefix, schemas=settings.schemas)
        self._factory = factory or client_factory(settings, client_id=f"cdc-{pipeline}")
        self._producer: Producer | None = None
        self._store: KafkaOffsetStore | None = None
        self.history = KafkaSchemaHistory(self._factory, self.prefix, self.codec, settings.replication)
        self.checkpointer: Checkpointer[SourceOffset] = Checkpointer()
        self._pending: deque[tuple[Batch, int]] = deque()  # closed segments, in order
        self._batch: Batch | None = None  # the open segment
        self._schemas: dict[TableId, TableSchema] = {}
        self._topics: set[str] = set()
        self._table_topics: dict[TableId, str] = {}
        self._saved: SourceOffset | None = None
        self._last_save = 0.0
        self._txn_open = False
        self._txn_started = 0.0
        self._txn_seqs: list[tuple[Batch, int]] = []
        self._txn_offset: SourceOffset | None = None
        self._heartbeat_key = orjson.dumps({"serverName": self.prefix})

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> SourceOffset | None:
        s = self.settings
        transactional_id = f"cdc-{self.pipeline}" if s.exactly_once else None
        self._producer = self._factory.producer(
            transactional_id=transactional_id,
            compression=s.compression,
            linger_ms=s.linger_ms,
            batch_bytes=s.batch_bytes,
        )
        self._store = KafkaOffsetStore(self._factory, self._producer, s.replication)
        self._store.ensure_topic()
        self.history.ensure_topic()
        self._ensure_topics([schema_change_topic(self.prefix), heartbeat_topic(self.prefix)])
        if s.exactly_once:
            # fences any older producer with the same id and aborts its open transaction
            self._producer.init_transactions()
        stored = self._store.load(self.pipeline)
        self.checkpointer = Checkpointer(stored)
        self._saved = stored
        return stored

    def close(self) -> None:
        if self._producer is not None:
            if self._txn_open:
                self._producer.abort_transaction()
                self._txn_open = False
            self._producer.close()
            self._producer = None

    # ------------------------------------------------------------------ publishing

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            raise TerminalError("the Kafka publisher is not open")
        return self._producer

    @property
    def committed(self) -> SourceOffset | None:
        """The latest offset whose every preceding record Kafka acknowledged."""
        return self.checkpointer.committed

    def _ensure_topics(self, names: Sequence[str]) -> None:
        missing = [n for n in names if n not in self._topics]
        if not missing:
            return
        admin = self._factory.admin()
        try:
            admin.create_topics(
                [
                    TopicSpec(n, self.settings.partitions, self.settings.replication, self.settings.topic_config)
                    for n in missing
                ]
            )
        finally:
            admin.close()
        self._topics.update(missing)

    def _send(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        batch = self._batch
        if batch is None:
            batch = self._batch = self.producer.batch()
        self.producer.send(topic, key, value, batch)

    def _close_segment(self, boundary: SourceOffset | None) -> None:
        """End the open segment; ``boundary`` is the offset that becomes safe once it is delivered."""
        batch = self._batch
        if batch is None:
            if boundary is None:
                return
            batch = self.producer.batch()
        self._batch = None
        seq = self.checkpointer.track(boundary)
        if self._txn_open:
            self._txn_seqs.append((batch, seq))
        else:
            self._pending.append((batch, seq))

    def _begin(self) -> None:
        if self.settings.exactly_once and not self._txn_open:
            self.producer.begin_transaction()
            self._txn_open = True
            self._txn_started = time.monotonic()

    def _commit_txn(self) -> None:
        """Commit the open Kafka transaction together with the offset record of its last boundary."""
        if not self._txn_open:
            return
        self._close_segment(None)
        if self._txn_offset is not None and self._store is not None:
            k, v = self._store.record(self.pipeline, self._txn_offset)
            self.producer.send(OFFSETS_TOPIC, k, v, self.producer.batch())
        self.producer.commit_transaction()  # returns once every record of the transaction is acknowledged
        self._txn_open = False
        segments, self._txn_seqs = self._txn_seqs, []
        for batch, seq in segments:
            if not batch.complete():
                raise ConnectionLostError("Kafka committed a transaction whose records are not all acknowledged")
            self.checkpointer.ack(seq)
        if self._txn_offset is not None:
            self._saved = self._txn_offset
        self._txn_offset = None

    def learn_schemas(self, changes: Sequence[SchemaChange]) -> None:
        """Know the definitions in ``changes`` (the schema history a source resumes with, oldest
        first): a source that resumes knowing a table's definition announces it again only when
        it changes, yet its rows must be encoded from the first one."""
        for change in changes:
            self._schemas[change.schema.table] = change.schema

    def publish(self, items: Sequence[Item]) -> None:
        exactly_once = self.settings.exactly_once
        codec = self.codec
        producer = self.producer
        send = producer.send
        messages_for = codec.messages_for
        schemas = self._schemas
        topics = self._table_topics
        last = len(items) - 1
        table: TableId | None = None  # the table of the previous change event, with its schema and topic
        schema: TableSchema | None = None
        topic = ""
        for i, item in enumerate(items):
            if isinstance(item, ChangeEvent):
                if exactly_once and not self._txn_open:
                    self._begin()
                if item.table is not table or schema is None:
                    table = item.table
                    schema = schemas.get(table)
                    if schema is None:
                        raise SchemaError(f"no table definition was published for {table} before its first change")
                    topic = topics.get(table) or self._table_topic(table)
                batch = self._batch
                if batch is None:
                    batch = self._batch = producer.batch()
                for key, value in messages_for(item, schema):
                    send(topic, key, value, batch)
            elif isinstance(item, SchemaChange):
                self._begin()
                schemas[item.schema.table] = item.schema
                table = None  # the definition in force may have changed
                key, value = codec.encode_schema_change(item)
                self._send(schema_change_topic(self.prefix), key, value)
                hkey, hvalue = self.history.record(item)
                self._send(self.history.topic, hkey, hvalue)
                # A sink that meets a row of the new definition reads the schema topic up to its
                # end: the change must be there before any later row is sent (DDL is rare).
                self.producer.flush(30.0)
            elif isinstance(item, Checkpoint):
                self._begin()
                self._close_segment(item.offset)
                if exactly_once:
                    self._txn_offset = item.offset
                    if i == last or time.monotonic() - self._txn_started >= self.settings.transaction_ms / 1000:
                        self._commit_txn()
            elif isinstance(item, Heartbeat):
                self._begin()
                # Debezium's heartbeat shape ({"serverName"} -> {"ts_ms"}), plus the offset it confirms
                value = orjson.dumps({"ts_ms": item.ts_ms, "offset": item.offset.to_dict() if item.offset else None})
                self._send(heartbeat_topic(self.prefix), self._heartbeat_key, value)
                if item.offset is not None:
                    self._close_segment(item.offset)
                    if exactly_once:
                        self._txn_offset = item.offset
                        self._commit_txn()
            else:  # pragma: no cover - typing makes this unreachable
                raise TerminalError(f"cannot publish {type(item).__name__}")
        failpoints.hit("publisher.after_send")
        if not self._txn_open:
            self._close_segment(None)  # the part of a transaction sent so far: tracked, not a boundary
        self.pump()

    def _table_topic(self, table: TableId) -> str:
        """The topic of ``table``'s change events, created on first use."""
        topic = topic_for(self.prefix, table)
        if topic not in self._topics:
            self._ensure_topics([topic])
        self._table_topics[table] = topic
        return topic

    def pump(self) -> None:
        self.producer.poll()
        pending = self._pending
        ack = self.checkpointer.ack
        while pending and pending[0][0].complete():
            _, seq = pending.popleft()
            ack(seq)
        if not self.settings.exactly_once:
            now = time.monotonic()
            committed = self.checkpointer.committed
            if (
                committed is not None
                and committed is not self._saved
                and now - self._last_save >= self.settings.offset_flush_ms / 1000
            ):
                self._save_async(committed)
                self._last_save = now

    def _save_async(self, offset: SourceOffset) -> None:
        if self._store is None:
            return
        k, v = self._store.record(self.pipeline, offset)
        self.producer.send(OFFSETS_TOPIC, k, v, self.producer.batch())
        self._saved = offset

    def flush(self, timeout_s: float = 30.0) -> SourceOffset | None:
        """Wait for every record; store and return the committed offset."""
        if self._txn_open:
            self._commit_txn()
        self._close_segment(None)
        self.producer.flush(timeout_s)
        self.pump()
        if self._pending:
            raise ConnectionLostError(f"{len(self._pending)} Kafka records were not acknowledged in {timeout_s:.0f}s")
        committed = self.checkpointer.committed
        if committed is not None and not self.settings.exactly_once:
            self._save_async(committed)
            self.producer.flush(timeout_s)
        return committed

    def save_offset(self, offset: SourceOffset) -> None:
        """Store an offset outside the event flow (for example a snapshot's starting point), synchronously."""
        if self._store is None:
            raise TerminalError("the Kafka publisher is not open")
        if self.settings.exactly_once:
            self.producer.begin_transaction()
            k, v = self._store.record(self.pipeline, offset)
            self.producer.send(OFFSETS_TOPIC, k, v, self.producer.batch())
            self.producer.commit_transaction()
        else:
            self._store.save(self.pipeline, offset)
        self._saved = offset
