"""The small client interface cdc uses to talk to Kafka.

Two implementations exist: :mod:`cdc.bus.kafka_python` (the default, pure Python) and
:mod:`cdc.bus.confluent` (librdkafka, the ``confluent`` extra). Everything above this
interface (publisher, subscriber, offset store, schema history) is client-agnostic, and the
same integration tests run against both.

Client errors are translated here into :mod:`cdc.errors`: a broker that cannot be reached
is a :class:`~cdc.errors.ConnectionLostError` (transient); authorisation and configuration
failures are terminal.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdc.errors import TerminalError

__all__ = [
    "Admin",
    "Batch",
    "ClientFactory",
    "Consumer",
    "Message",
    "Producer",
    "TopicPartition",
    "TopicSpec",
    "fenced_member",
]

TopicPartition = tuple[str, int]


def fenced_member(what: str) -> TerminalError:
    """The error of a static group member fenced by another consumer with its ``group.instance.id``
    (two ``cdc run`` processes of one config with the same ``--instance``), for either client."""
    return TerminalError(
        f"{what}: another consumer joined the group with this process's group.instance.id",
        hint="give every `cdc run` process of this config its own --instance (CDC_INSTANCE_ID)",
    )


@dataclass(slots=True)
class Message:
    """A record read from Kafka. ``timestamp_ms`` is the record's timestamp."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int = 0
    headers: Sequence[tuple[str, bytes]] = ()


class Batch(ABC):
    """Tracks the delivery of every record sent with it (:meth:`Producer.send`'s ``batch``).

    One object per group of records instead of one handle per record keeps the hot path
    free of allocations and callbacks.
    """

    @abstractmethod
    def complete(self) -> bool:
        """True once every record sent with this batch is acknowledged by the broker.

        Raises the first delivery failure as a cdc error (transient when retriable).
        """

    @property
    @abstractmethod
    def size(self) -> int:
        """How many records were sent with this batch."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 1
    replication: int = 1
    config: Mapping[str, str] = field(default_factory=dict)


class Producer(ABC):
    """Sends records; idempotent with ``acks=all``. Transactions when built with a transactional id.

    Contract: records sent to one partition are written in send order (idempotence keeps
    that true across retries). :meth:`flush` blocks until every record sent so far is done.
    """

    @abstractmethod
    def batch(self) -> Batch:
        """A new, empty delivery tracker."""

    @abstractmethod
    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        batch: Batch,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None:
        """Queue one record; ``batch`` learns of its delivery. Does not wait for the broker."""

    @abstractmethod
    def poll(self) -> None:
        """Serve delivery reports without blocking (a no-op for clients with a background thread)."""

    @abstractmethod
    def flush(self, timeout_s: float) -> None:
        """Block until all sent records are done; raises ConnectionLostError when ``timeout_s`` passes."""

    def init_transactions(self) -> None:
        raise NotImplementedError

    def begin_transaction(self) -> None:
        raise NotImplementedError

    def commit_transaction(self) -> None:
        raise NotImplementedError

    def abort_transaction(self) -> None:
        raise NotImplementedError

    @abstractmethod
    def close(self, timeout_s: float = 10.0) -> None: ...


class Consumer(ABC):
    """Reads records for a consumer group with manual commits.

    ``on_assign`` and ``on_revoke`` are called from inside :meth:`poll` with the partitions
    gained or about to be lost (cooperative rebalancing: only the partitions that move).
    Committed offsets are the *next* offset to read.
    """

    @abstractmethod
    def subscribe(
        self,
        topics: Sequence[str] | None = None,
        pattern: str | None = None,
        on_assign: Callable[[list[TopicPartition]], None] | None = None,
        on_revoke: Callable[[list[TopicPartition]], None] | None = None,
    ) -> None: ...

    @abstractmethod
    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        """Read these partitions without group management."""

    @abstractmethod
    def poll(self, max_records: int, timeout_s: float) -> list[Message]: ...

    @abstractmethod
    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    @abstractmethod
    def seek_to_beginning(self, partitions: Sequence[TopicPartition]) -> None: ...

    @abstractmethod
    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit synchronously; ``offsets`` maps partitions to the next offset to read."""

    @abstractmethod
    def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]: ...

    @abstractmethod
    def assignment(self) -> set[TopicPartition]: ...

    @abstractmethod
    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]: ...

    @abstractmethod
    def position(self, partition: TopicPartition) -> int: ...

    def beginning_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The earliest offset still held of each partition (above 0 once retention deleted records)."""
        raise NotImplementedError

    def offsets_for_times(self, times: Mapping[TopicPartition, int]) -> dict[TopicPartition, int | None]:
        """Per partition, the earliest offset whose record timestamp is at or after the given epoch
        milliseconds; None when no such record is held."""
        raise NotImplementedError

    @abstractmethod
    def close(self) -> None: ...


class Admin(ABC):
    @abstractmethod
    def create_topics(self, specs: Iterable[TopicSpec]) -> None:
        """Create the topics that do not exist yet; existing ones are left as they are."""

    @abstractmethod
    def list_topics(self) -> set[str]: ...

    @abstractmethod
    def partitions_for(self, topic: str) -> list[int]: ...

    @abstractmethod
    def delete_topics(self, topics: Sequence[str]) -> None: ...

    def topic_configs(self, topics: Sequence[str]) -> dict[str, dict[str, str]]:
        """Each topic's effective configuration (``retention.ms``, ``retention.bytes``, ...) as text."""
        raise NotImplementedError

    @abstractmethod
    def close(self) -> None: ...


class ClientFactory(ABC):
    """Builds producers, consumers and admin clients of one Kafka client library."""

    name: str

    @abstractmethod
    def producer(
        self,
        *,
        transactional_id: str | None = None,
        compression: str | None = "lz4",
        linger_ms: int = 5,
        batch_bytes: int = 512 * 1024,
        extra: Mapping[str, Any] | None = None,
    ) -> Producer: ...

    @abstractmethod
    def consumer(
        self,
        *,
        group_id: str | None,
        read_committed: bool = False,
        max_poll_records: int = 5000,
        group_instance_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Consumer:
        """A consumer, in group ``group_id`` (None: no group, partitions are assigned by hand). With
        ``group_instance_id`` it is a static member (KIP-345): a process that restarts with the same id
        takes its partitions back at once, without a rebalance and without waiting for the session of
        its killed predecessor to expire; a member that stops does not leave the group (its partitions
        move after the session timeout). Two live consumers with one id fence each other."""

    @abstractmethod
    def admin(self) -> Admin: ...
