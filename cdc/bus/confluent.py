"""The confluent-kafka (librdkafka) client behind :mod:`cdc.bus.base`: the optional ``confluent`` extra,
selected with ``bus.client: confluent-kafka``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer as CKConsumer
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import Producer as CKProducer
from confluent_kafka import TopicPartition as CKTopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from cdc.bus.base import (
    Admin,
    Batch,
    ClientFactory,
    Consumer,
    Message,
    Producer,
    TopicPartition,
    TopicSpec,
    fenced_member,
)
from cdc.errors import CdcError, ConnectError, ConnectionLostError, PermissionDeniedError, TerminalError

__all__ = ["ConfluentFactory", "translate"]

_AUTH_CODES = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError._AUTHENTICATION,
}


def translate(exc: BaseException, what: str) -> CdcError:
    if isinstance(exc, CdcError):
        return exc
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    if isinstance(err, KafkaError):
        text = f"{what}: {err.str()}"
        if err.code() in _AUTH_CODES:
            return PermissionDeniedError(text)
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            return ConnectError(f"{what}: no Kafka broker answers at the configured bootstrap servers")
        if err.retriable() or err.code() in (KafkaError._TIMED_OUT, KafkaError._TRANSPORT):
            return ConnectionLostError(text)
        if err.code() == KafkaError.FENCED_INSTANCE_ID or "same group.instance.id" in err.str():
            return fenced_member(what)
        return TerminalError(text)
    return TerminalError(f"{what}: {type(exc).__name__}: {exc}")


def _as_bytes(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


class _Batch(Batch):
    """A group of records: complete once the producer knows every record up to its last one delivered."""

    __slots__ = ("mark", "producer", "sent")

    def __init__(self, producer: _Producer) -> None:
        self.producer = producer
        self.sent = 0
        self.mark = 0  # the producer's record count after this batch's last record

    @property
    def size(self) -> int:
        return self.sent

    def complete(self) -> bool:
        return self.producer.delivered(self.mark)


def _call(fn: Callable[..., Any], what: str, *args: Any, **kwargs: Any) -> Any:
    """Call the client, translating its errors into cdc errors."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        raise translate(exc, what) from exc


# Under a steady stream librdkafka's queue is never empty, so the publisher waits for it (a
# flush) at most this long after it first asked about an undelivered batch.
_SETTLE_S = 0.25
_SETTLE_FLUSH_S = 5.0  # how long one such wait may block (the broker may be away; the next one retries)


class _Producer(Producer):
    """librdkafka producer without a Python callback per record.

    A delivery report per record costs about as much CPU as producing the record. Instead the
    producer reports errors only (``delivery.report.only.error``), and counts: every record up to
    the count of records produced so far is delivered once librdkafka holds nothing (no record in
    flight and no report pending, ``len(producer) == 0``), after a ``flush``, and after a
    transaction commits. A record that failed has its report served by ``poll``/``flush`` and
    makes every later :meth:`_Batch.complete` raise, so no batch after it ever counts as
    delivered. Under a stream that never lets the queue drain, :meth:`delivered` flushes (for at
    most ``_SETTLE_FLUSH_S``) once an undelivered batch has been waited for ``_SETTLE_S``: offsets
    then trail the stream by a quarter of a second or so (bench/pg_source.py: 14% more rows/s than
    with a report per record).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        try:
            self._p = CKProducer({**config, "delivery.report.only.error": True, "on_delivery": self._on_error})
        except Exception as exc:
            raise translate(exc, "creating a Kafka producer") from exc
        self._sent = 0
        self._delivered = 0  # every record up to this count is acknowledged
        self._error: KafkaError | None = None
        self._waiting_since: float | None = None

    def _on_error(self, err: KafkaError | None, _msg: object) -> None:
        if err is not None and self._error is None:
            self._error = err

    def _check(self) -> None:
        if self._error is not None:
            raise translate(KafkaException(self._error), "delivering a record to Kafka")

    def delivered(self, mark: int) -> bool:
        """Whether every record up to the ``mark``-th is acknowledged (raises a delivery failure)."""
        self._check()
        if self._delivered >= mark:
            return True
        produced = self._sent
        if len(self._p) == 0:  # nothing in flight, no report pending: all of it is delivered
            self._delivered = produced
            self._waiting_since = None
            return True
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
            return False
        if now - self._waiting_since < _SETTLE_S:
            return False
        left = self._p.flush(_SETTLE_FLUSH_S)  # serves failure reports too
        self._waiting_since = None
        self._check()
        if left == 0:
            self._delivered = max(self._delivered, produced)
        return self._delivered >= mark

    def batch(self) -> Batch:
        return _Batch(self)

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        batch: Batch,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None:
        while True:
            try:
                if headers:
                    self._p.produce(topic, value, key, headers=list(headers))
                else:
                    self._p.produce(topic, value, key)
                break
            except BufferError:  # the local queue is full: serve reports, then retry
                self._p.poll(0.05)
            except Exception as exc:
                raise translate(exc, f"sending to {topic}") from exc
        self._sent += 1
        batch.sent += 1  # type: ignore[attr-defined]
        batch.mark = self._sent  # type: ignore[attr-defined]
        if self._sent % 1000 == 0:
            self._p.poll(0)

    def poll(self) -> None:
        self._p.poll(0)

    def flush(self, timeout_s: float) -> None:
        produced = self._sent
        left = self._p.flush(timeout_s)
        if left:
            raise ConnectionLostError(f"{left} Kafka records were not acknowledged within {timeout_s:.0f}s")
        if self._error is None:
            self._delivered = max(self._delivered, produced)
        self._waiting_since = None

    def init_transactions(self) -> None:
        _call(self._p.init_transactions, "initialising Kafka transactions", 30)

    def begin_transaction(self) -> None:
        _call(self._p.begin_transaction, "beginning a Kafka transaction")

    def commit_transaction(self) -> None:
        produced = self._sent
        _call(self._p.commit_transaction, "committing a Kafka transaction", 60)
        self._p.poll(0)  # serve any failure report
        if self._error is None:  # a committed transaction's records are all acknowledged
            self._delivered = max(self._delivered, produced)

    def abort_transaction(self) -> None:
        _call(self._p.abort_transaction, "aborting a Kafka transaction", 60)

    def close(self, timeout_s: float = 10.0) -> None:
        self._p.flush(timeout_s)


class _Consumer(Consumer):
    def __init__(self, config: dict[str, Any]) -> None:
        try:
            self._c = CKConsumer(config)
        except Exception as exc:
            raise translate(exc, "creating a Kafka consumer") from exc
        self._assigning = False
        self._pending_seeks: dict[TopicPartition, int] = {}
        self._sought: dict[TopicPartition, int] = {}  # the last seek per partition (see position)

    def subscribe(
        self,
        topics: Sequence[str] | None = None,
        pattern: str | None = None,
        on_assign: Callable[[list[TopicPartition]], None] | None = None,
        on_revoke: Callable[[list[TopicPartition]], None] | None = None,
    ) -> None:
        def assigned(consumer: CKConsumer, parts: list[CKTopicPartition]) -> None:
            tps = [(p.topic, p.partition) for p in parts]
            self._assigning, self._pending_seeks = True, {}
            try:
                if on_assign is not None:
                    on_assign(tps)
            finally:
                self._assigning = False
            consumer.incremental_assign(
                [CKTopicPartition(t, p, self._pending_seeks.get((t, p), -1001)) for t, p in tps]
            )

        def revoked(consumer: CKConsumer, parts: list[CKTopicPartition]) -> None:
            if on_revoke is not None:
                on_revoke([(p.topic, p.partition) for p in parts])
            consumer.incremental_unassign(parts)

        subs = [f"^{pattern}"] if pattern is not None else list(topics or ())
        self._c.subscribe(subs, on_assign=assigned, on_revoke=revoked, on_lost=revoked)

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        self._c.assign([CKTopicPartition(t, p) for t, p in partitions])

    def poll(self, max_records: int, timeout_s: float) -> list[Message]:
        try:
            # consume() waits until it has max_records or the timeout passed, which at a steady
            # trickle adds up to timeout_s of latency: wait for the first record only, then take
            # what else is already fetched without waiting.
            first = self._c.poll(timeout_s)
            records = [] if first is None else [first]
            if first is not None and max_records > 1:
                records.extend(self._c.consume(num_messages=max_records - 1, timeout=0))
        except Exception as exc:
            raise translate(exc, "polling Kafka") from exc
        out: list[Message] = []
        for r in records:
            err = r.error()
            if err is not None:
                if err.code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    continue  # the end of a partition; a subscribed pattern no topic matches yet
                raise translate(KafkaException(err), "polling Kafka")
            headers = r.headers()
            out.append(
                Message(
                    str(r.topic()),
                    int(r.partition() or 0),
                    int(r.offset() or 0),
                    _as_bytes(r.key()),
                    _as_bytes(r.value()),
                    r.timestamp()[1],
                    [(k, _as_bytes(v) or b"") for k, v in headers] if isinstance(headers, list) else (),
                )
            )
        return out

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._sought[partition] = offset
        if self._assigning:
            self._pending_seeks[partition] = offset
            return
        tp = CKTopicPartition(partition[0], partition[1], offset)
        try:
            self._c.seek(tp)
        except KafkaException:
            # a partition whose fetcher has not started yet cannot seek: assign it again at the offset
            self._c.incremental_unassign([CKTopicPartition(partition[0], partition[1])])
            self._c.incremental_assign([tp])

    def seek_to_beginning(self, partitions: Sequence[TopicPartition]) -> None:
        for t, p in partitions:
            self.seek((t, p), -2)  # OFFSET_BEGINNING

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        try:
            self._c.commit(offsets=[CKTopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
        except Exception as exc:
            raise translate(exc, "committing Kafka offsets") from exc

    def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        try:
            got = self._c.committed([CKTopicPartition(t, p) for t, p in partitions], timeout=30)
        except Exception as exc:
            raise translate(exc, "reading committed Kafka offsets") from exc
        return {(g.topic, g.partition): (g.offset if g.offset >= 0 else None) for g in got}

    def assignment(self) -> set[TopicPartition]:
        return {(p.topic, p.partition) for p in self._c.assignment()}

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        out = {}
        for t, p in partitions:
            try:
                _low, high = self._c.get_watermark_offsets(CKTopicPartition(t, p), timeout=30)
            except Exception as exc:
                raise translate(exc, "reading Kafka end offsets") from exc
            out[(t, p)] = int(high)
        return out

    def position(self, partition: TopicPartition) -> int:
        """The offset of the next record to read, as kafka-python gives it. librdkafka knows it only once a
        record was read (before that, and on an empty partition, it says OFFSET_INVALID): then it is
        the offset last sought, or the beginning for a seek to it or none."""
        got = int(self._c.position([CKTopicPartition(*partition)])[0].offset)
        if got >= 0:
            return got
        sought = self._sought.get(partition)
        if sought is not None and sought >= 0:
            return sought
        return self.beginning_offsets([partition])[partition]

    def beginning_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        out = {}
        for t, p in partitions:
            try:
                low, _high = self._c.get_watermark_offsets(CKTopicPartition(t, p), timeout=30)
            except Exception as exc:
                raise translate(exc, "reading Kafka beginning offsets") from exc
            out[(t, p)] = int(low)
        return out

    def offsets_for_times(self, times: Mapping[TopicPartition, int]) -> dict[TopicPartition, int | None]:
        try:
            got = self._c.offsets_for_times(
                [CKTopicPartition(t, p, int(ms)) for (t, p), ms in times.items()], timeout=30
            )
        except Exception as exc:
            raise translate(exc, "looking up Kafka offsets by time") from exc
        return {(g.topic, g.partition): (int(g.offset) if g.offset >= 0 else None) for g in got}

    def close(self) -> None:
        self._c.close()


class _Admin(Admin):
    def __init__(self, config: dict[str, Any]) -> None:
        self._a = AdminClient(config)

    def create_topics(self, specs: Iterable[TopicSpec]) -> None:
        existing = self.list_topics()
        new = [
            NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication, config=dict(s.config))
            for s in specs
            if s.name not in existing
        ]
        if not new:
            return
        for name, fut in self._a.create_topics(new, operation_timeout=30).items():
            try:
                fut.result(timeout=30)
            except KafkaException as exc:
                if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                raise translate(exc, f"creating topic {name}") from exc

    def list_topics(self) -> set[str]:
        try:
            return set(self._a.list_topics(timeout=30).topics)
        except Exception as exc:
            raise translate(exc, "listing Kafka topics") from exc

    def partitions_for(self, topic: str) -> list[int]:
        try:
            meta = self._a.list_topics(topic=topic, timeout=30).topics.get(topic)
        except Exception as exc:
            raise translate(exc, f"describing topic {topic}") from exc
        if meta is None or meta.error is not None:
            return []
        return sorted(meta.partitions)

    def delete_topics(self, topics: Sequence[str]) -> None:
        if not topics:
            return
        for name, fut in self._a.delete_topics(list(topics), operation_timeout=30).items():
            try:
                fut.result(timeout=30)
            except KafkaException as exc:
                raise translate(exc, f"deleting topic {name}") from exc

    def topic_configs(self, topics: Sequence[str]) -> dict[str, dict[str, str]]:
        from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

        out: dict[str, dict[str, str]] = {}
        if not topics:
            return out
        futures = self._a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, t) for t in topics])
        for resource, fut in futures.items():
            try:
                entries = fut.result(timeout=30)
            except KafkaException as exc:
                raise translate(exc, f"describing the config of topic {resource.name}") from exc
            out[str(resource.name)] = {str(k): str(v.value) for k, v in entries.items() if v.value is not None}
        return out

    def close(self) -> None:
        return None


_COMPRESSION = {None: "none", "none": "none", "lz4": "lz4", "zstd": "zstd", "gzip": "gzip", "snappy": "snappy"}


class ConfluentFactory(ClientFactory):
    name = "confluent-kafka"

    def __init__(self, bootstrap_servers: str, client_id: str = "cdc", extra: Mapping[str, Any] | None = None) -> None:
        self._common: dict[str, Any] = {"bootstrap.servers": bootstrap_servers, "client.id": client_id, **(extra or {})}

    def producer(
        self,
        *,
        transactional_id: str | None = None,
        compression: str | None = "lz4",
        linger_ms: int = 5,
        batch_bytes: int = 512 * 1024,
        extra: Mapping[str, Any] | None = None,
    ) -> Producer:
        config: dict[str, Any] = {
            **self._common,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": _COMPRESSION.get(compression, compression),
            "linger.ms": linger_ms,
            "batch.size": batch_bytes,
            "message.max.bytes": 16 * 1024 * 1024,
            "queue.buffering.max.messages": 1_000_000,
            # Java's partitioner: the same key lands on the same partition whichever client wrote it
            "partitioner": "murmur2_random",
            **(extra or {}),
        }
        if transactional_id is not None:
            config["transactional.id"] = transactional_id
        return _Producer(config)

    def consumer(
        self,
        *,
        group_id: str | None,
        read_committed: bool = False,
        max_poll_records: int = 5000,
        group_instance_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Consumer:
        config: dict[str, Any] = {
            **self._common,
            "group.id": group_id or "cdc-unassigned",
            **({"group.instance.id": group_instance_id} if group_instance_id else {}),
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
            "partition.assignment.strategy": "cooperative-sticky",
            "fetch.wait.max.ms": 100,
            # pattern subscriptions see a new table's topic within seconds, not the default 5 minutes
            "topic.metadata.refresh.interval.ms": 5000,
            **(extra or {}),
        }
        return _Consumer(config)

    def admin(self) -> Admin:
        return _Admin({k: v for k, v in self._common.items() if k in ("bootstrap.servers", "client.id")})
