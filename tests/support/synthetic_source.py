"""A deterministic synthetic source publishing through the real KafkaPublisher.

Transaction ``n`` (1-based) holds ``per_txn`` inserts into one of ``tables`` tables; its
resume position is ``PgPosition(lsn=n)``. On start the process resumes after the stored
offset, so killing it (``kill -9``) and starting it again must leave every event in Kafka.

Usage: python synthetic_source.py BOOTSTRAP PIPELINE TXNS PER_TXN TABLES EXACTLY_ONCE [CLIENT] [PARTITIONS]
Prints ``progress N`` lines (N = transactions published) and ``done`` at the end.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cdc.bus.kafka import KafkaPublisher, KafkaSettings
from cdc.events import ChangeEvent, Checkpoint, Column, Logical, Op, SchemaChange, TableId, TableSchema, Wire
from cdc.positions import PgPosition, SourceOffset

INT64 = Wire("int64", optional=False)


def table_schema(schema: str, n: int) -> TableSchema:
    return TableSchema(
        TableId(schema, f"t{n}"),
        (
            Column("id", "bigint", Logical.INT64, INT64, nullable=False, position=1),
            Column("txn", "bigint", Logical.INT64, INT64, nullable=False, position=2),
            Column("i", "bigint", Logical.INT64, INT64, nullable=False, position=3),
            Column("payload", "text", Logical.TEXT, Wire("string"), position=4),
        ),
        ("id",),
    )


def main() -> None:
    bootstrap, pipeline, txns, per_txn, tables, eos = sys.argv[1:7]
    client = sys.argv[7] if len(sys.argv) > 7 else "kafka-python"
    partitions = int(sys.argv[8]) if len(sys.argv) > 8 else 3
    n_txns, n_per, n_tables = int(txns), int(per_txn), int(tables)
    settings = KafkaSettings(bootstrap_servers=bootstrap, client=client, partitions=partitions,
                             exactly_once=eos == "1", linger_ms=2)
    pub = KafkaPublisher(settings, pipeline)
    stored = pub.open()
    start = stored.position.lsn if stored and isinstance(stored.position, PgPosition) else 0
    schemas = [table_schema(pipeline, k) for k in range(n_tables)]
    pub.publish([SchemaChange("CREATE", s, None, {"connector": "postgresql", "db": "synthetic", "schema": pipeline,
                                                  "table": s.table.table, "ts_ms": 0, "snapshot": "false",
                                                  "lsn": start, "txId": 0, "version": "cdc", "name": pipeline},
                              0) for s in schemas])
    print(f"resume {start}", flush=True)
    saved = False
    for n in range(start + 1, n_txns + 1):
        table = schemas[n % n_tables]
        now = int(time.time() * 1000)
        items: list = []
        for i in range(n_per):
            row = {"id": n * 1000 + i, "txn": n, "i": i, "payload": "x" * 40}
            items.append(ChangeEvent(Op.CREATE, table.table, {"id": row["id"]}, None, row,
                                     {"connector": "postgresql", "db": "synthetic", "schema": pipeline,
                                      "table": table.table.table, "ts_ms": now, "snapshot": "false",
                                      "lsn": n, "txId": n, "version": "cdc", "name": pipeline},
                                     now, now, str(n), i + 1, i + 1, PgPosition(n, n)))
        items.append(Checkpoint(SourceOffset(PgPosition(n, n)), now, str(n)))
        pub.publish(items)
        if not saved and pub.committed is not None:
            # the first stored offset, acknowledged: a kill from now on must resume after it
            pub.pump()
            pub.producer.flush(30)
            saved = True
            print("saved", flush=True)
        if n % 20 == 0:
            print(f"progress {n} committed {pub.committed.position.lsn if pub.committed else 0}", flush=True)
    pub.flush(60)
    pub.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
