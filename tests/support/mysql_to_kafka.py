"""A MySQL source feeding the real KafkaPublisher, as one process that tests can kill -9.

Usage: python mysql_to_kafka.py MYSQL_URL BOOTSTRAP PIPELINE DATABASE SERVER_ID EXACTLY_ONCE EXPECT_ROWS [SNAPSHOT]
Prints ``ready`` once the start offset is stored, ``progress N`` after every published batch
(N = row events seen for DATABASE in this process), and ``done N`` once EXPECT_ROWS row events
were seen (or, with a snapshot, once it ended) and everything is acknowledged.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cdc.bus.kafka import KafkaPublisher, KafkaSettings
from cdc.config import parse_config
from cdc.events import ChangeEvent, Checkpoint
from connectors.mysql.source import MySqlSource


def main() -> None:
    url, bootstrap, pipeline, database, server_id, eos, expect = sys.argv[1:8]
    snapshot = sys.argv[8] if len(sys.argv) > 8 else "never"
    cfg = parse_config(
        f"name: {pipeline}\nsource:\n  type: mysql\n  url: {url}\n  server_id: {server_id}\n  snapshot: {snapshot}\n"
        f"  snapshot_chunk_rows: 2000\n  tables: ['{database}.*']\n"
        f"bus:\n  type: kafka\n  bootstrap_servers: {bootstrap}\n",
        env={},
    )
    pub = KafkaPublisher(KafkaSettings(bootstrap_servers=bootstrap, exactly_once=eos == "1"), pipeline)
    stored = pub.open()
    src = MySqlSource(cfg.source, pipeline)  # type: ignore[arg-type]
    src.open(stored)
    if stored is None and snapshot == "never":
        pub.save_offset(src.start_offset())  # a crash from here on resumes here, never later
    print("ready", flush=True)
    seen = 0
    while True:
        items = src.read_batch(5000, 0.2)
        seen += sum(1 for i in items if isinstance(i, ChangeEvent) and i.table.schema == database)
        pub.publish(items)
        print(f"progress {seen}", flush=True)
        snapshot_over = any(isinstance(i, Checkpoint) and i.offset.phase == "streaming" for i in items)
        if seen >= int(expect) or (snapshot != "never" and snapshot_over):
            pub.flush(60)
            print(f"done {seen}", flush=True)
            break
    src.close()
    pub.close()


if __name__ == "__main__":
    main()
