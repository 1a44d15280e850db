"""The kafka-python client behind :mod:`cdc.bus.base` (the default client)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition
from kafka import errors as kerrors
from kafka.admin import NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.structs import OffsetAndMetadata

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
from cdc.errors import CdcError, ConfigError, ConnectError, ConnectionLostError, PermissionDeniedError, TerminalError

__all__ = ["KafkaPythonFactory", "translate"]


#: kafka-python 2.x raised NoBrokersAvailable when no bootstrap server answered; 3.x does not have it.
_NO_BROKERS: tuple[type[BaseException], ...] = tuple(
    c for c in (getattr(kerrors, "NoBrokersAvailable", None),) if isinstance(c, type)
)


def translate(exc: BaseException, what: str) -> CdcError:
    """A kafka-python error as a cdc error: retriable ones are transient, the rest terminal."""
    if isinstance(exc, CdcError):
        return exc
    text = f"{what}: {type(exc).__name__}: {exc}"
    if isinstance(exc, kerrors.KafkaConfigurationError):
        return TerminalError(f"{what}: the Kafka client refused its settings: {exc}", hint="check bus.properties")
    if _NO_BROKERS and isinstance(exc, _NO_BROKERS):
        return ConnectError(
            f"{what}: no Kafka broker answers at the configured bootstrap servers",
            hint="check bus.bootstrap_servers and that the broker runs",
        )
    if isinstance(
        exc,
        (
            kerrors.AuthorizationError,
            kerrors.SaslAuthenticationFailedError,
            kerrors.ClusterAuthorizationFailedError,
            kerrors.TopicAuthorizationFailedError,
            kerrors.GroupAuthorizationFailedError,
            kerrors.TransactionalIdAuthorizationFailedError,
        ),
    ):
        return PermissionDeniedError(text)
    if isinstance(exc, (kerrors.KafkaTimeoutError, kerrors.KafkaConnectionError)) or getattr(exc, "retriable", False):
        return ConnectionLostError(text)
    if isinstance(exc, kerrors.FencedInstanceIdError):  # (kafka-python reports it at the next commit, not in poll)
        return fenced_member(what)
    return TerminalError(text)


class _Batch(Batch):
    """kafka-python returns a future per record; checking them in order is cheaper than callbacks."""

    __slots__ = ("_futures", "_next")

    def __init__(self) -> None:
        self._futures: list[Any] = []
        self._next = 0

    @property
    def size(self) -> int:
        return len(self._futures)

    def complete(self) -> bool:
        futures, i, n = self._futures, self._next, len(self._futures)
        while i < n:
            fut = futures[i]
            if not fut.is_done:
                self._next = i
                return False
            if fut.exception is not None:
                raise translate(fut.exception, "delivering a record to Kafka") from fut.exception
            i += 1
        self._next = i
        return True


def _call(fn: Callable[..., Any], what: str, *args: Any, **kwargs: Any) -> Any:
    """Call the client, translating its errors into cdc errors."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        raise translate(exc, what) from exc


class _Producer(Producer):
    def __init__(self, config: dict[str, Any]) -> None:
        try:
            self._p = KafkaProducer(**config)
        except Exception as exc:
            raise translate(exc, "creating a Kafka producer") from exc

    def batch(self) -> Batch:
        return _Batch()

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        batch: Batch,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None:
        try:
            fut = self._p.send(topic, value=value, key=key, headers=list(headers) if headers else None)
        except Exception as exc:
            raise translate(exc, f"sending to {topic}") from exc
        batch._futures.append(fut)  # type: ignore[attr-defined]

    def poll(self) -> None:
        return None

    def flush(self, timeout_s: float) -> None:
        _call(self._p.flush, "flushing the Kafka producer", timeout=timeout_s)

    def init_transactions(self) -> None:
        _call(self._p.init_transactions, "initialising Kafka transactions")

    def begin_transaction(self) -> None:
        _call(self._p.begin_transaction, "beginning a Kafka transaction")

    def commit_transaction(self) -> None:
        _call(self._p.commit_transaction, "committing a Kafka transaction")

    def abort_transaction(self) -> None:
        _call(self._p.abort_transaction, "aborting a Kafka transaction")

    def close(self, timeout_s: float = 10.0) -> None:
        _call(self._p.close, "closing the Kafka producer", timeout=timeout_s)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        on_assign: Callable[[list[TopicPartition]], None] | None,
        on_revoke: Callable[[list[TopicPartition]], None] | None,
    ) -> None:
        self._on_assign = on_assign
        self._on_revoke = on_revoke

    def on_partitions_revoked(self, revoked: Iterable[KTopicPartition]) -> None:
        if self._on_revoke is not None:
            self._on_revoke([(tp.topic, tp.partition) for tp in revoked])

    def on_partitions_assigned(self, assigned: Iterable[KTopicPartition]) -> None:
        if self._on_assign is not None:
            self._on_assign([(tp.topic, tp.partition) for tp in assigned])


class _Consumer(Consumer):
    def __init__(self, config: dict[str, Any]) -> None:
        try:
            self._c = KafkaConsumer(**config)
        except Exception as exc:
            raise translate(exc, "creating a Kafka consumer") from exc

    def subscribe(
        self,
        topics: Sequence[str] | None = None,
        pattern: str | None = None,
        on_assign: Callable[[list[TopicPartition]], None] | None = None,
        on_revoke: Callable[[list[TopicPartition]], None] | None = None,
    ) -> None:
        listener = _Listener(on_assign, on_revoke)
        if pattern is not None:
            self._c.subscribe(pattern=pattern, listener=listener)
        else:
            self._c.subscribe(topics=list(topics or ()), listener=listener)

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        self._c.assign([KTopicPartition(t, p) for t, p in partitions])

    def poll(self, max_records: int, timeout_s: float) -> list[Message]:
        try:
            batches = self._c.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        except Exception as exc:
            raise translate(exc, "polling Kafka") from exc
        out: list[Message] = []
        for records in batches.values():
            out.extend(
                Message(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp, r.headers or ()) for r in records
            )
        return out

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._c.seek(KTopicPartition(*partition), offset)

    def seek_to_beginning(self, partitions: Sequence[TopicPartition]) -> None:
        self._c.seek_to_beginning(*[KTopicPartition(t, p) for t, p in partitions])

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        try:
            self._c.commit({KTopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()})
        except Exception as exc:
            raise translate(exc, "committing Kafka offsets") from exc

    def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        try:
            return {tp: self._c.committed(KTopicPartition(*tp)) for tp in partitions}
        except Exception as exc:
            raise translate(exc, "reading committed Kafka offsets") from exc

    def assignment(self) -> set[TopicPartition]:
        return {(tp.topic, tp.partition) for tp in self._c.assignment()}

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        try:
            ends = self._c.end_offsets([KTopicPartition(t, p) for t, p in partitions])
        except Exception as exc:
            raise translate(exc, "reading Kafka end offsets") from exc
        return {(tp.topic, tp.partition): int(o) for tp, o in ends.items()}

    def position(self, partition: TopicPartition) -> int:
        return int(self._c.position(KTopicPartition(*partition)))

    def beginning_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        try:
            got = self._c.beginning_offsets([KTopicPartition(t, p) for t, p in partitions])
        except Exception as exc:
            raise translate(exc, "reading Kafka beginning offsets") from exc
        return {(tp.topic, tp.partition): int(o) for tp, o in got.items()}

    def offsets_for_times(self, times: Mapping[TopicPartition, int]) -> dict[TopicPartition, int | None]:
        try:
            got = self._c.offsets_for_times({KTopicPartition(t, p): int(ms) for (t, p), ms in times.items()})
        except Exception as exc:
            raise translate(exc, "looking up Kafka offsets by time") from exc
        return {(tp.topic, tp.partition): (int(o.offset) if o is not None else None) for tp, o in got.items()}

    def close(self) -> None:
        self._c.close(autocommit=False)


class _Admin(Admin):
    def __init__(self, config: dict[str, Any]) -> None:
        try:
            self._a = KafkaAdminClient(**config)
        except Exception as exc:
            raise translate(exc, "connecting to Kafka") from exc

    def create_topics(self, specs: Iterable[TopicSpec]) -> None:
        wanted = [s for s in specs]
        existing = self.list_topics()
        new = [
            NewTopic(
                s.name, num_partitions=s.partitions, replication_factor=s.replication, topic_configs=dict(s.config)
            )
            for s in wanted
            if s.name not in existing
        ]
        if not new:
            return
        try:
            self._a.create_topics(new, timeout_ms=30_000)
        except kerrors.TopicAlreadyExistsError:
            pass
        except Exception as exc:
            raise translate(exc, f"creating topics {[t.name for t in new]}") from exc
        self._wait_for([t.name for t in new])

    def _wait_for(self, names: list[str]) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(self.partitions_for(n) for n in names):
                return
            time.sleep(0.05)
        raise ConnectionLostError(f"topics {names} were created but did not become available within 30s")

    def list_topics(self) -> set[str]:
        try:
            return set(self._a.list_topics())
        except Exception as exc:
            raise translate(exc, "listing Kafka topics") from exc

    def partitions_for(self, topic: str) -> list[int]:
        try:
            described = self._a.describe_topics([topic])
        except kerrors.UnknownTopicOrPartitionError:
            return []
        except Exception as exc:
            raise translate(exc, f"describing topic {topic}") from exc
        for t in described:
            if t.get("error_code", 0) == 0 and t.get("topic", t.get("name")) == topic:
                return sorted(
                    int(p["partition_index"] if "partition_index" in p else p["partition"])
                    for p in t.get("partitions", [])
                )
        return []

    def delete_topics(self, topics: Sequence[str]) -> None:
        if not topics:
            return
        try:
            self._a.delete_topics(list(topics), timeout_ms=30_000)
        except Exception as exc:
            raise translate(exc, f"deleting topics {list(topics)}") from exc

    def topic_configs(self, topics: Sequence[str]) -> dict[str, dict[str, str]]:
        from kafka.admin import ConfigResource, ConfigResourceType

        if not topics:
            return {}
        try:
            got = self._a.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics], config_filter="all"
            )
        except Exception as exc:
            raise translate(exc, f"describing the configs of topics {list(topics)[:5]}") from exc
        # {"topic": {name: {key: {"value": ..., ...}}}}
        by_topic = got.get("topic", {}) if isinstance(got, dict) else {}
        return {
            str(name): {str(k): str(v["value"]) for k, v in entries.items() if v.get("value") is not None}
            for name, entries in by_topic.items()
        }

    def close(self) -> None:
        self._a.close()


class KafkaPythonFactory(ClientFactory):
    name = "kafka-python"

    def __init__(self, bootstrap_servers: str, client_id: str = "cdc", extra: Mapping[str, Any] | None = None) -> None:
        # the client's own metrics cost about a third of its send path and nothing reads them
        self._common: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers.split(","),
            "client_id": client_id,
            "metrics_enabled": False,
        }
        # bus.properties: each client takes the settings it knows; a setting none knows is an error
        props = dict(extra or {})
        known = (
            set(KafkaProducer.DEFAULT_CONFIG) | set(KafkaConsumer.DEFAULT_CONFIG) | set(KafkaAdminClient.DEFAULT_CONFIG)
        )
        unknown = sorted(k for k in props if k not in known)
        if unknown:
            raise ConfigError([f"bus.properties: {k}: not a kafka-python setting" for k in unknown])
        self._properties = props

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
            **self._for(KafkaProducer),
            "acks": "all",
            "enable_idempotence": True,
            "compression_type": compression,
            "linger_ms": linger_ms,
            "batch_size": batch_bytes,
            "max_request_size": 16 * 1024 * 1024,
            "max_in_flight_requests_per_connection": 5,
            **(extra or {}),
        }
        if transactional_id is not None:
            config["transactional_id"] = transactional_id
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
            "group_id": group_id,
            "group_instance_id": group_instance_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "isolation_level": "read_committed" if read_committed else "read_uncommitted",
            "partition_assignment_strategy": (CooperativeStickyAssignor,),
            "max_poll_records": max_poll_records,
            "fetch_max_wait_ms": 100,
            "max_partition_fetch_bytes": 8 * 1024 * 1024,
            # pattern subscriptions see a new table's topic within seconds, not the default 5 minutes
            "metadata_max_age_ms": 5000,
            # the heartbeat thread shares the GIL with batch decoding and applying: on a loaded
            # two-core machine 10 s (the default) expired the session mid-batch, forcing a rejoin
            "session_timeout_ms": 30_000,
            "heartbeat_interval_ms": 3_000,
            **self._for(KafkaConsumer),  # after cdc's defaults: tuning is the user's call
            **(extra or {}),
        }
        return _Consumer(config)

    def admin(self) -> Admin:
        common = {k: v for k, v in self._common.items() if k in KafkaAdminClient.DEFAULT_CONFIG}
        return _Admin({**common, **self._for(KafkaAdminClient)})

    def _for(self, client: Any) -> dict[str, Any]:
        return {k: v for k, v in self._properties.items() if k in client.DEFAULT_CONFIG}
