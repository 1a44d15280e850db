"""Kafka is real: a produce/consume round trip through kafka-python, with a consumer group and a committed offset."""

from __future__ import annotations

import time


def test_round_trip_with_committed_offset(kafka_bootstrap: str, kafka_prefix: str) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    topic = f"{kafka_prefix}.smoke"
    group = f"{kafka_prefix}-group"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    try:
        sent = [producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode()) for i in range(3)]
        producer.flush(timeout=30)
        offsets = [f.get(timeout=30).offset for f in sent]
    finally:
        producer.close()
    assert offsets == [0, 1, 2]

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=group,
                             enable_auto_commit=False, auto_offset_reset="earliest")
    got: list[tuple[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + 30
        while len(got) < 3 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend((r.key, r.value) for r in records)
        consumer.commit()
        committed = consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close()
    assert got == [(b"k0", b"v0"), (b"k1", b"v1"), (b"k2", b"v2")]
    assert committed == 3

    # the commit is stored on the broker: a separate admin client reads it back
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        stored = admin.list_group_offsets({group: None})[group]
    finally:
        admin.close()
    assert stored[TopicPartition(topic, 0)].offset == 3
