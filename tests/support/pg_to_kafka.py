"""A PostgreSQL source feeding the real KafkaPublisher, as one process that tests can kill -9.

Usage: python pg_to_kafka.py PG_URL BOOTSTRAP PIPELINE SLOT EXACTLY_ONCE EXPECT_ROWS [SNAPSHOT] [CLIENT]

Like the service's source worker, it acknowledges the source (the slot's flush position) with
the offset Kafka has acknowledged (:attr:`KafkaPublisher.committed`), never with what was read.
Prints ``ready`` once the source is open, ``progress N`` after every published batch (N = row
events seen in this process), ``acked LSN`` (decimal) just before acknowledging the source up
to LSN, and ``done N`` once EXPECT_ROWS row events were seen (or, with a snapshot, once it
ended) and everything is acknowledged.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cdc.bus.kafka import KafkaPublisher, KafkaSettings
from cdc.config import parse_config
from cdc.events import ChangeEvent, Checkpoint
from cdc.positions import PgPosition, SourceOffset
from connectors.postgres.source import PostgresSource


def main() -> None:
    url, bootstrap, pipeline, slot, eos, expect = sys.argv[1:7]
    snapshot = sys.argv[7] if len(sys.argv) > 7 else "never"
    client = sys.argv[8] if len(sys.argv) > 8 else "kafka-python"
    cfg = parse_config(
        f"name: {pipeline}\nsource:\n  type: postgres\n  url: {url}\n  slot: {slot}\n  publication: {slot}\n"
        f"  snapshot: {snapshot}\n  snapshot_chunk_rows: 2000\n  tables: ['public.*']\n  heartbeat_interval_ms: 500\n"
        f"bus:\n  type: kafka\n  bootstrap_servers: {bootstrap}\n",
        env={},
    )
    pub = KafkaPublisher(KafkaSettings(bootstrap_servers=bootstrap, exactly_once=eos == "1", client=client), pipeline)
    stored = pub.open()
    src = PostgresSource(cfg.source, pipeline)  # type: ignore[arg-type]
    src.open(stored)
    first = src.start_offset()
    if stored is None and first is not None:
        pub.save_offset(first)
    print("ready", flush=True)
    acknowledged: SourceOffset | None = stored
    seen = 0

    def ack(committed: SourceOffset | None) -> None:
        nonlocal acknowledged
        if committed is None or committed is acknowledged:
            return
        if isinstance(committed.position, PgPosition):
            print(f"acked {committed.position.lsn}", flush=True)
        src.acknowledge(committed)
        acknowledged = committed

    while True:
        items = src.read_batch(5000, 0.2)
        seen += sum(1 for i in items if isinstance(i, ChangeEvent) and i.table.table != "marker")
        pub.publish(items) if items else pub.pump()
        ack(pub.committed)
        print(f"progress {seen}", flush=True)
        snapshot_over = any(isinstance(i, Checkpoint) and i.offset.phase == "streaming" for i in items)
        if seen >= int(expect) or (snapshot != "never" and snapshot_over):
            ack(pub.flush(60))
            src.read_batch(1, 0.5)  # lets the source report the flush position
            print(f"done {seen}", flush=True)
            break
    src.close()
    pub.close()


if __name__ == "__main__":
    main()
