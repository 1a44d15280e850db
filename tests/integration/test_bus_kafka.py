"""The Kafka bus against a real broker: scale-out in a consumer group with per-key order, and
no loss (and, with exactly-once, no duplicate) when the producing process is killed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from cdc.bus.base import TopicSpec
from cdc.bus.kafka import KafkaPublisher, KafkaSettings, client_factory
from cdc.envelope import topic_for
from cdc.events import ChangeEvent, Checkpoint, Op, SchemaChange
from cdc.positions import PgPosition, SourceOffset

SUPPORT = Path(__file__).resolve().parents[1] / "support"
sys.path.insert(0, str(SUPPORT))
from synthetic_source import table_schema  # noqa: E402

CLIENTS = ["kafka-python", "confluent-kafka"]


def _source_block(prefix: str, table: str, n: int) -> dict:
    return {"connector": "postgresql", "db": "synthetic", "schema": prefix, "table": table, "ts_ms": n,
            "snapshot": "false", "lsn": n, "txId": n, "version": "cdc", "name": prefix}


def _read_everything(bootstrap: str, client: str, topics: list[str], read_committed: bool) -> list:
    factory = client_factory(KafkaSettings(bootstrap_servers=bootstrap, client=client))
    admin = factory.admin()
    tps = [(t, p) for t in topics for p in admin.partitions_for(t)]
    admin.close()
    consumer = factory.consumer(group_id=None, read_committed=read_committed)
    consumer.assign(tps)
    consumer.seek_to_beginning(tps)
    ends = consumer.end_offsets(tps)
    out = []
    deadline = time.monotonic() + 120
    while any(consumer.position(tp) < ends[tp] for tp in tps):
        assert time.monotonic() < deadline, "reading the topics back took too long"
        out.extend(consumer.poll(10_000, 0.5))
    consumer.close()
    return out


@pytest.mark.parametrize("client", CLIENTS)
def test_group_of_two_receives_everything_in_key_order(kafka_bootstrap: str, kafka_prefix: str, client: str) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, client=client, partitions=3, linger_ms=2)
    schemas = [table_schema(kafka_prefix, k) for k in range(3)]
    topics = [topic_for(kafka_prefix, s.table) for s in schemas]
    factory = client_factory(settings)
    admin = factory.admin()
    admin.create_topics([TopicSpec(t, 3, 1) for t in topics])
    admin.close()

    received: dict[int, list] = {0: [], 1: []}
    assigned: dict[int, set] = {0: set(), 1: set()}
    stop = threading.Event()
    settled = threading.Event()
    moved: list[int] = []
    group = f"{kafka_prefix}-sink"

    def member(n: int) -> None:
        consumer = factory.consumer(group_id=group)

        def on_assign(tps: list) -> None:
            assigned[n].update(tps)

        def on_revoke(tps: list) -> None:
            assigned[n].difference_update(tps)
            if settled.is_set() and tps:
                moved.append(len(tps))  # a rebalance under load: redelivery from the last commit is allowed

        consumer.subscribe(topics, on_assign=on_assign, on_revoke=on_revoke)
        try:
            while not stop.is_set():
                batch = consumer.poll(1000, 0.2)
                if batch:
                    received[n].extend(batch)
                    ends: dict = {}
                    for m in batch:
                        ends[(m.topic, m.partition)] = m.offset + 1
                    consumer.commit(ends)
        finally:
            consumer.close()

    threads = [threading.Thread(target=member, args=(n,), daemon=True) for n in (0, 1)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while not (assigned[0] and assigned[1] and len(assigned[0] | assigned[1]) == 9):
        assert time.monotonic() < deadline, f"the group did not settle: {assigned}"
        time.sleep(0.1)
    settled.set()

    # 600 transactions updating 60 keys over and over: each key's versions must arrive in order
    pub = KafkaPublisher(settings, kafka_prefix)
    pub.open()
    pub.publish([SchemaChange("CREATE", s, None, _source_block(kafka_prefix, s.table.table, 0), 0) for s in schemas])
    expected = 0
    for n in range(1, 601):
        items: list = []
        for k in range(5):
            key_id = (n * 5 + k) % 60
            s = schemas[key_id % 3]
            row = {"id": key_id, "txn": n, "i": k, "payload": f"v{n}"}
            items.append(ChangeEvent(Op.UPDATE, s.table, {"id": key_id}, None, row,
                                     _source_block(kafka_prefix, s.table.table, n), n, n, str(n), k + 1, k + 1))
            expected += 1
        items.append(Checkpoint(SourceOffset(PgPosition(n)), n))
        pub.publish(items)
    committed = pub.flush(60)
    pub.close()
    assert committed is not None and committed.position == PgPosition(600)

    deadline = time.monotonic() + 60
    while len(received[0]) + len(received[1]) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(30)

    everything = received[0] + received[1]
    unique: dict[tuple, Any] = {}
    for m in everything:
        unique.setdefault((m.topic, m.partition, m.offset), m)
    assert len(unique) == expected  # nothing lost
    # nothing twice, unless a member lost partitions after the group settled (a rebalance on a loaded
    # machine): then the new owner re-reads from the last commit, as a consumer group does
    assert len(everything) == expected or moved, f"{len(everything) - expected} records twice without a rebalance"
    assert received[0] and received[1], "both members must share the work"
    per_key: dict[tuple, list[int]] = defaultdict(list)
    for (topic, _partition, _offset), m in sorted(unique.items()):
        value = orjson.loads(m.value)
        key = (topic, orjson.loads(m.key)["id"])
        per_key[key].append(value["after"]["txn"])
    assert len(per_key) == 60
    for key, versions in per_key.items():
        assert versions == sorted(versions), f"{key} arrived out of order"


def _run_source(bootstrap: str, pipeline: str, eos: bool, client: str, kill_after: int | None) -> tuple[int, str]:
    cmd = [sys.executable, str(SUPPORT / "synthetic_source.py"), bootstrap, pipeline, "1500", "20", "3",
           "1" if eos else "0", client]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    resume = -1
    saved = False
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("resume"):
            resume = int(line.split()[1])
        saved = saved or line.startswith("saved")  # an offset is stored and acknowledged
        if kill_after is not None and line.startswith("progress"):
            _, n, _, committed = line.split()
            if int(n) >= kill_after and int(committed) > 0 and saved:
                os.kill(proc.pid, signal.SIGKILL)
                break
    proc.wait(120)
    err = proc.stderr.read() if proc.stderr else ""
    if kill_after is None:
        assert proc.returncode == 0, err
    else:
        assert proc.returncode == -signal.SIGKILL, err
    return resume, err


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("eos", [False, True], ids=["at-least-once", "exactly-once"])
def test_kill9_producer_then_restart_loses_nothing(kafka_bootstrap: str, kafka_prefix: str, eos: bool,
                                                   client: str) -> None:
    resume1, _ = _run_source(kafka_bootstrap, kafka_prefix, eos, client, kill_after=400)
    assert resume1 == 0
    # the kill left an offset behind: the second run resumes after it instead of starting over
    resume2, _ = _run_source(kafka_bootstrap, kafka_prefix, eos, client, kill_after=None)
    assert resume2 > 0

    topics = [topic_for(kafka_prefix, table_schema(kafka_prefix, k).table) for k in range(3)]
    messages = _read_everything(kafka_bootstrap, client, topics, read_committed=eos)
    seen = [(orjson.loads(m.value)["after"]["txn"], orjson.loads(m.value)["after"]["i"]) for m in messages]
    expected = {(n, i) for n in range(1, 1501) for i in range(20)}
    assert set(seen) == expected, f"missing: {sorted(expected - set(seen))[:10]}"
    if eos:
        assert len(seen) == len(expected), f"{len(seen) - len(expected)} duplicates under exactly-once"


def test_schema_history_and_offsets_survive_a_restart(kafka_bootstrap: str, kafka_prefix: str) -> None:
    """A second publisher (a restarted process) reads back the stored offset and every table definition."""
    from dataclasses import replace

    from cdc.events import Column, Logical, Wire

    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    s1 = table_schema(kafka_prefix, 0)
    s2 = replace(s1, columns=(*s1.columns, Column("extra", "text", Logical.TEXT, Wire("string"), position=5)),
                 version=2)
    pub = KafkaPublisher(settings, kafka_prefix)
    assert pub.open() is None
    pub.publish([
        SchemaChange("CREATE", s1, "CREATE TABLE t0 (...)", _source_block(kafka_prefix, "t0", 1), 1, PgPosition(1)),
        Checkpoint(SourceOffset(PgPosition(1)), 1),
        SchemaChange("ALTER", s2, "ALTER TABLE t0 ADD extra text", _source_block(kafka_prefix, "t0", 2), 2,
                     PgPosition(2)),
        Checkpoint(SourceOffset(PgPosition(2), extra={"note": "after alter"}), 2),
    ])
    assert pub.flush(30) == SourceOffset(PgPosition(2), extra={"note": "after alter"})
    pub.close()

    again = KafkaPublisher(settings, kafka_prefix)
    assert again.open() == SourceOffset(PgPosition(2), extra={"note": "after alter"})
    history = again.history.load()
    again.close()
    assert [(c.kind, c.schema.version, c.position) for c in history] == [("CREATE", 1, PgPosition(1)),
                                                                         ("ALTER", 2, PgPosition(2))]
    assert history[0].schema == s1
    assert history[1].schema == s2


def test_heartbeat_is_published_and_advances_the_offset(kafka_bootstrap: str, kafka_prefix: str) -> None:
    """An idle source's heartbeat lands on __cdc_heartbeat.<prefix> and, carrying an offset, moves it."""
    from cdc.envelope import heartbeat_topic
    from cdc.events import Heartbeat

    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    pub = KafkaPublisher(settings, kafka_prefix)
    pub.open()
    pub.publish([Heartbeat(1234, SourceOffset(PgPosition(77)))])
    assert pub.flush(30) == SourceOffset(PgPosition(77))
    pub.close()
    records = _read_everything(kafka_bootstrap, "kafka-python", [heartbeat_topic(kafka_prefix)], False)
    assert len(records) == 1
    body = orjson.loads(records[0].value)
    assert body["ts_ms"] == 1234 and body["offset"]["position"]["lsn"] == "0/4D"
    again = KafkaPublisher(settings, kafka_prefix)
    assert again.open() == SourceOffset(PgPosition(77))
    again.close()


@pytest.mark.parametrize("client", CLIENTS)
def test_a_record_the_broker_refuses_fails_its_batch(kafka_bootstrap: str, kafka_prefix: str,
                                                                          client: str) -> None:
    """A record the broker rejects (larger than the topic allows) makes its batch raise instead of
    counting as delivered (the publisher acknowledges batches in order: no offset passes it)."""
    from cdc.errors import CdcError

    factory = client_factory(KafkaSettings(bootstrap_servers=kafka_bootstrap, client=client))
    admin = factory.admin()
    topic = f"{kafka_prefix}.small"
    admin.create_topics([TopicSpec(topic, 1, 1, {"max.message.bytes": "2000"})])
    admin.close()
    producer = factory.producer(compression=None, linger_ms=0)
    ok = producer.batch()
    producer.send(topic, b"k", b"small", ok)
    producer.flush(30)
    assert ok.complete()
    bad, after = producer.batch(), producer.batch()
    producer.send(topic, b"k", os.urandom(50_000), bad)
    producer.send(topic, b"k", b"small again", after)
    with pytest.raises(CdcError):
        producer.flush(30)
        deadline = time.monotonic() + 30
        while not bad.complete():
            assert time.monotonic() < deadline, "the refused record never failed its batch"
            producer.poll()
            time.sleep(0.05)
    assert after.size == 1
    producer.close()


@pytest.mark.parametrize("client", CLIENTS)
def test_the_position_of_an_unread_partition_is_where_it_was_sought(
    kafka_bootstrap: str, kafka_prefix: str, client: str
) -> None:
    """Before a record is read (and on an empty partition) the position is the offset sought, with both
    clients: a reader that loops "while position < end" ends at once on an empty partition (a sink's
    schema catch-up waited its full minute there with confluent-kafka)."""
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, client=client)
    factory = client_factory(settings, client_id="cdc-tests-position")
    topic = f"{kafka_prefix}.position"
    admin = factory.admin()
    try:
        admin.create_topics([TopicSpec(topic, partitions=2)])
    finally:
        admin.close()
    producer = factory.producer()
    try:
        producer.send(topic, b"k", b"v", producer.batch())
        producer.flush(30)
    finally:
        producer.close()
    reader = factory.consumer(group_id=None, read_committed=True)
    try:
        tps = [(topic, 0), (topic, 1)]
        reader.assign(tps)
        for tp in tps:
            reader.seek(tp, 0)
        ends = reader.end_offsets(tps)
        assert sorted(ends.values()) == [0, 1]  # one record, in one of the two partitions
        (empty,) = [tp for tp in tps if ends[tp] == 0]
        assert reader.position(empty) == 0  # nothing to read there, and the position says so
        deadline = time.monotonic() + 30
        while any(reader.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, [reader.position(tp) for tp in tps]
            reader.poll(100, 0.5)
        assert {tp: reader.position(tp) for tp in tps} == ends
    finally:
        reader.close()


@pytest.mark.parametrize("client", CLIENTS)
def test_a_static_member_fenced_by_a_second_one_stops_with_the_reason(
    kafka_bootstrap: str, kafka_prefix: str, client: str
) -> None:
    """Two live consumers with one group.instance.id (two ``cdc run --instance X``): the older one is
    fenced, and gets a terminal error that says why: with confluent-kafka from its next poll, with
    kafka-python (which goes on fetching) from its next offset commit, which a sink makes after its
    batches."""
    from cdc.errors import TerminalError

    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, client=client)
    factory = client_factory(settings, client_id="cdc-tests-fence")
    topic, group = f"{kafka_prefix}.fence-{client}", f"{kafka_prefix}.fence-group-{client}"
    admin = factory.admin()
    try:
        admin.create_topics([TopicSpec(topic, partitions=1)])
    finally:
        admin.close()
    first = factory.consumer(group_id=group, group_instance_id="twice.replica")
    second = factory.consumer(group_id=group, group_instance_id="twice.replica")
    try:
        for consumer in (first, second):
            consumer.subscribe(pattern=topic)
            deadline = time.monotonic() + 30
            while not consumer.assignment():
                assert time.monotonic() < deadline, "no assignment"
                consumer.poll(10, 0.5)
        with pytest.raises(TerminalError) as info:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                first.poll(10, 0.5)
                first.commit({(topic, 0): 0})
        assert "group.instance.id" in str(info.value) and "--instance" in (info.value.hint or "")
    finally:
        for consumer in (first, second):
            with contextlib.suppress(Exception):
                consumer.close()
