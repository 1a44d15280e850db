"""Benchmark: events/s through real Kafka with realistic envelopes, both clients, in one run.

Each case runs in its own process against the local stack's broker:

* ``publish``: cdc's KafkaPublisher (envelope encoding, per-record delivery tracking,
  checkpointing) producing N change events of an 8-column table (~500-byte envelopes),
  counted once every record is acknowledged (acks=all, idempotent).
* ``raw produce``: the client library alone sending the same pre-encoded bytes: the
  reference for what the publisher costs on top.
* ``consume``: a consumer-group member reading the topic back and decoding every envelope.

Reported: events/s, bytes per event (encoded, and on the broker's disk after compression),
CPU seconds and peak RSS. The target of issue #3 is >= 50k events/s published.

Usage: python bench/bus.py [N]     (N defaults to 200000; BENCH_BUS_EVENTS also works)
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from _common import ROOT, Meter, env, print_table, run_case, stack_env, write_results

HERE = Path(__file__).resolve()
CLIENTS = ["kafka-python", "confluent-kafka"]
COMPRESSIONS = ["none", "lz4"]


def _schema(prefix: str) -> Any:
    from cdc.events import Column, Logical, TableId, TableSchema, Wire

    return TableSchema(TableId(prefix, "orders"), (
        Column("id", "bigint", Logical.INT64, Wire("int64", optional=False), nullable=False, position=1),
        Column("customer_id", "int", Logical.INT32, Wire("int32"), position=2),
        Column("status", "varchar(16)", Logical.STRING, Wire("string"), position=3),
        Column("amount", "decimal(12,2)", Logical.DECIMAL,
               Wire("bytes", "org.apache.kafka.connect.data.Decimal", 1, {"scale": "2"}), position=4),
        Column("created_at", "datetime(6)", Logical.TIMESTAMP, Wire("int64", "io.debezium.time.MicroTimestamp", 1),
               position=5),
        Column("note", "varchar(255)", Logical.STRING, Wire("string"), position=6),
        Column("flags", "int", Logical.INT32, Wire("int32"), position=7),
        Column("email", "varchar(120)", Logical.STRING, Wire("string"), position=8),
    ), ("id",))


def _events(prefix: str, n: int, first_id: int = 0) -> list[Any]:
    from cdc.events import ChangeEvent, Checkpoint, Op, SchemaChange
    from cdc.positions import MySqlPosition, SourceOffset

    schema = _schema(prefix)
    now = int(time.time() * 1000)
    src = {"version": "cdc", "connector": "mysql", "name": prefix, "ts_ms": now, "snapshot": "false", "db": prefix,
           "sequence": None, "table": "orders", "server_id": 1, "gtid": None, "file": "mariadb-bin.000001",
           "pos": 0, "row": 0, "thread": 7, "query": None}
    items: list[Any] = [SchemaChange("CREATE", schema, None, src, now)]
    for i in range(first_id, first_id + n):
        row = {"id": i, "customer_id": i % 9973, "status": "shipped", "amount": "AJY=", "created_at": now * 1000 + i,
               "note": f"order note {i} " + "lorem ipsum dolor sit amet " * 3, "flags": i & 7,
               "email": f"customer{i % 9973}@example.com"}
        items.append(ChangeEvent(Op.CREATE, schema.table, {"id": i}, None, row, {**src, "pos": 1000 + i}, now, now,
                                 f"0-1-{i // 100}", i % 100 + 1, i % 100 + 1))
        if i % 100 == 99:
            items.append(Checkpoint(SourceOffset(MySqlPosition("mariadb-bin.000001", 1000 + i)), now))
    return items


def case_publish(client: str, compression: str, n: int, prefix: str) -> dict[str, Any]:
    from cdc.bus.kafka import KafkaPublisher, KafkaSettings

    settings = KafkaSettings(bootstrap_servers=stack_env()["CDC_KAFKA_BOOTSTRAP"], client=client,
                             compression=None if compression == "none" else compression, linger_ms=5)
    items = _events(prefix, n)
    pub = KafkaPublisher(settings, prefix)
    pub.open()
    pub.publish(items[:1])
    pub.flush()
    encoded = sum(len(v or b"") + len(k or b"") for e in items[1:2] for k, v in
                  pub.codec.messages_for(e, _schema(prefix)))
    with Meter() as m:
        for start in range(1, len(items), 1000):
            pub.publish(items[start:start + 1000])
        committed = pub.flush(120)
    pub.close()
    assert committed is not None
    return {"events_per_s": n / m.wall_s, "cpu_s": m.cpu_s, "peak_rss_mb": m.peak_rss_mb,
            "bytes_per_event": encoded, "wall_s": m.wall_s}


def case_raw(client: str, compression: str, n: int, prefix: str) -> dict[str, Any]:
    """The client library alone (no cdc code in the loop), same records and producer settings."""
    from cdc.bus.kafka import KafkaPublisher, KafkaSettings

    bootstrap = stack_env()["CDC_KAFKA_BOOTSTRAP"]
    codec = KafkaPublisher(KafkaSettings(bootstrap_servers=bootstrap), prefix).codec
    schema = _schema(prefix)
    records = []
    for start in range(0, n, 10_000):  # chunked, so the input's own size does not dominate peak RSS
        chunk = _events(prefix, min(10_000, n - start), first_id=start)
        records.extend(kv for e in chunk[1:] if hasattr(e, "op") for kv in codec.messages_for(e, schema))
        del chunk
    topic = f"{prefix}.{prefix}.orders.raw"
    comp = None if compression == "none" else compression
    if client == "kafka-python":
        from kafka import KafkaProducer

        kp = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, compression_type=comp,
                           linger_ms=5, batch_size=512 * 1024, metrics_enabled=False)
        with Meter() as m:
            for k, v in records:
                kp.send(topic, value=v, key=k)
            kp.flush(120)
        kp.close()
    else:
        from confluent_kafka import Producer

        cp = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                       "compression.type": comp or "none", "linger.ms": 5, "batch.size": 512 * 1024,
                       "queue.buffering.max.messages": 1_000_000, "partitioner": "murmur2_random"})
        with Meter() as m:
            for k, v in records:
                while True:
                    try:
                        cp.produce(topic, v, k)
                        break
                    except BufferError:
                        cp.poll(0.05)
            cp.flush(120)
    return {"events_per_s": n / m.wall_s, "cpu_s": m.cpu_s, "peak_rss_mb": m.peak_rss_mb, "wall_s": m.wall_s}


def case_consume(client: str, n: int, prefix: str) -> dict[str, Any]:
    from cdc.bus.kafka import KafkaSettings, client_factory
    from cdc.envelope import EnvelopeCodec

    settings = KafkaSettings(bootstrap_servers=stack_env()["CDC_KAFKA_BOOTSTRAP"], client=client)
    codec = EnvelopeCodec(prefix)
    consumer = client_factory(settings).consumer(group_id=f"{prefix}-bench")
    consumer.subscribe([f"{prefix}.{prefix}.orders"])
    got = 0
    with Meter() as m:
        deadline = time.monotonic() + 300
        while got < n and time.monotonic() < deadline:
            batch = consumer.poll(5000, 0.5)
            for msg in batch:
                codec.decode(msg.key, msg.value)
            got += len(batch)
            if batch:
                last: dict[tuple[str, int], int] = {}
                for msg in batch:
                    last[(msg.topic, msg.partition)] = msg.offset + 1
                consumer.commit(last)
    consumer.close()
    return {"events_per_s": got / m.wall_s, "cpu_s": m.cpu_s, "peak_rss_mb": m.peak_rss_mb, "wall_s": m.wall_s,
            "events": got}


def disk_bytes(topic: str) -> int:
    data = ROOT / ".stack" / "kafka" / "data"
    return sum(f.stat().st_size for d in data.glob(f"{topic}-*") for f in d.glob("*.log"))


def cleanup(prefixes: list[str]) -> None:
    from cdc.bus.kafka import KafkaSettings, client_factory

    admin = client_factory(KafkaSettings(bootstrap_servers=stack_env()["CDC_KAFKA_BOOTSTRAP"])).admin()
    admin.delete_topics([t for t in admin.list_topics() if any(p in t for p in prefixes)])
    admin.close()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--case":
        kind, client, compression, n, prefix = sys.argv[2:7]
        if kind == "publish":
            out = case_publish(client, compression, int(n), prefix)
        elif kind == "raw":
            out = case_raw(client, compression, int(n), prefix)
        else:
            out = case_consume(client, int(n), prefix)
        print(json.dumps(out))
        return 0

    n = int(sys.argv[1]) if len(sys.argv) > 1 else int(env("BENCH_BUS_EVENTS", "200000"))
    rows: list[dict[str, Any]] = []
    prefixes: list[str] = []
    try:
        for client in CLIENTS:
            for compression in COMPRESSIONS:
                prefix = f"bench_{uuid.uuid4().hex[:8]}"
                prefixes.append(prefix)
                pub = run_case(HERE, "--case", "publish", client, compression, str(n), prefix)
                time.sleep(1)
                on_disk = disk_bytes(f"{prefix}.{prefix}.orders")
                rows.append({"case": "publish", "client": client, "compression": compression, **pub,
                             "disk_bytes_per_event": on_disk / n if on_disk else None})
                raw = run_case(HERE, "--case", "raw", client, compression, str(n), prefix)
                rows.append({"case": "raw produce", "client": client, "compression": compression, **raw})
                if compression == "lz4":
                    con = run_case(HERE, "--case", "consume", client, compression, str(n), prefix)
                    rows.append({"case": "consume+decode", "client": client, "compression": compression, **con})
    finally:
        cleanup(prefixes)
    for r in rows:
        r["events"] = r.get("events", n)
    ratio = {}
    for client in CLIENTS:
        p = next(r for r in rows if r["case"] == "publish" and r["client"] == client and r["compression"] == "lz4")
        c = next(r for r in rows if r["case"] == "consume+decode" and r["client"] == client)
        ratio[client] = 1 / (1 / p["events_per_s"] + 1 / c["events_per_s"])
    summary = {"case": "end-to-end (publish then consume, lz4)", "client": "confluent-kafka / kafka-python",
               "speedup": ratio["confluent-kafka"] / ratio["kafka-python"]}
    rows.append(summary)
    print_table(rows, ["case", "client", "compression", "events_per_s", "bytes_per_event", "disk_bytes_per_event",
                       "cpu_s", "peak_rss_mb", "speedup"])
    for client in CLIENTS:
        got = next(r for r in rows if r["case"] == "publish" and r["client"] == client
                   and r["compression"] == "lz4")["events_per_s"]
        raw = next(r for r in rows if r["case"] == "raw produce" and r["client"] == client
                   and r["compression"] == "lz4")["events_per_s"]
        print(f"target >= 50,000 events/s published, {client} (lz4): {got:,.0f} "
              f"{'MET' if got >= 50_000 else 'NOT MET'} (the library alone: {raw:,.0f})")
    print(f"results: {write_results('bus', rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
