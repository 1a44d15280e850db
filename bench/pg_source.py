"""Benchmark: rows/s from PostgreSQL into Kafka through the PostgreSQL source, acknowledged.

On the local stack, for multi-row transactions (1,000 rows each) and single-row transactions:

* ``write``: PostgreSQL's own write rate for the workload (the source side of the comparison);
* ``pg_recvlogical``: PostgreSQL's own client streaming the same WAL range from a pgoutput
  slot (protocol 1) into ``/dev/null`` until the end position: the native reference (it
  decodes nothing; the server-side decoding it waits for is the floor of any client);
* ``cdc → Kafka (client)``: the PostgreSQL source (pgoutput decoding, type conversion, events)
  feeding the KafkaPublisher, timed until the last transaction's checkpoint is acknowledged by
  Kafka, with kafka-python and with confluent-kafka.

Every case runs in its own process (CPU seconds and peak RSS are its own; for pg_recvlogical,
those of the child process). Each case reads from its own slot created before the workload, so
all read the same WAL. Target (issue #5): at least 60k rows/s into Kafka with confluent-kafka on
multi-row transactions.

Rows: 300,000 by default. Every case pays some fixed costs once (the topic's creation on the first
batch, the walsender starting to decode, the last acknowledgement): about 0.3 s here, a fifth of a
100,000-row run; 300,000 rows measure the steady rate a running source sees. Smaller runs remain
a command-line argument away.

Usage: python bench/pg_source.py [ROWS]   (default 300000 multi-row; single-row uses ROWS/5)
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from _common import RESULTS, Meter, env, print_table, run_case, stack_env, write_results

HERE = Path(__file__).resolve()
RECVLOGICAL = Path("/usr/lib/postgresql/15/bin/pg_recvlogical")
TABLE = """CREATE TABLE orders (
  id bigint PRIMARY KEY, customer_id int, status varchar(16), amount numeric(12,2), created_at timestamp(6),
  note varchar(255), flags int, email varchar(120))"""
WORKLOAD = """INSERT INTO orders
SELECT g, g %% 9973, 'shipped', 12.34, timestamp '2024-05-01 10:00:00.123456',
       'order note ' || g || ' ' || repeat('lorem ipsum ', 5), g & 7, 'c' || (g %% 9973) || '@example.com'
FROM generate_series(%s::bigint, %s::bigint) g"""
CASES = ("pg_recvlogical", "kafka-python", "confluent-kafka")


def _db_url(db: str | None = None) -> str:
    url = stack_env()["CDC_PG_URL"]
    return url if db is None else url.rsplit("/", 1)[0] + "/" + db


def _conn(db: str | None = None) -> Any:
    import psycopg

    return psycopg.connect(_db_url(db), autocommit=True)


def prepare(db: str, rows: int, per_txn: int) -> dict[str, Any]:
    """Create the database, the publication and one slot per case, write the workload; return the
    WAL end and PostgreSQL's write rate."""
    from psycopg import sql

    with _conn() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    with _conn(db) as conn:
        conn.execute(TABLE)
        conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE orders").format(sql.Identifier(db)))
        for case in CASES:
            conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (_slot(db, case),))
        with Meter() as m:
            for first in range(0, rows, per_txn):
                last = min(rows, first + per_txn) - 1
                if per_txn == 1:
                    conn.execute(WORKLOAD, (first, last))
                else:
                    with conn.transaction():
                        conn.execute(WORKLOAD, (first, last))
        end = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
    return {"end": end, "write_rows_per_s": rows / m.wall_s}


def _slot(db: str, case: str) -> str:
    return f"{db}_{case.replace('-', '_')}"


def case_recvlogical(db: str, rows: int, end: str) -> dict[str, Any]:
    cmd = [str(RECVLOGICAL), "-d", _db_url(db), "--slot", _slot(db, "pg_recvlogical"), "--start", "--no-loop",
           "-o", "proto_version=1", "-o", f"publication_names={db}", "--endpos", end, "-f", "/dev/null"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"rows_per_s": rows / wall, "cpu_s": r.ru_utime + r.ru_stime, "peak_rss_mb": r.ru_maxrss / 1024}


def case_source(db: str, rows: int, client: str) -> dict[str, Any]:
    from cdc.bus.kafka import KafkaPublisher, KafkaSettings
    from cdc.config import parse_config
    from cdc.events import ChangeEvent
    from connectors.postgres.source import PostgresSource

    env_ = stack_env()
    slot = _slot(db, client)
    cfg = parse_config(
        f"name: {db}\nsource:\n  type: postgres\n  url: {_db_url(db)}\n  slot: {slot}\n  publication: {db}\n"
        f"  snapshot: never\n  tables: ['public.*']\n  create_slot: false\n  create_publication: false\n"
        f"bus:\n  type: kafka\n  bootstrap_servers: {env_['CDC_KAFKA_BOOTSTRAP']}\n  client: {client}\n", env={})
    pub = KafkaPublisher(KafkaSettings(bootstrap_servers=env_["CDC_KAFKA_BOOTSTRAP"], client=client), f"{db}_{client}")
    pub.open()
    src = PostgresSource(cfg.source, f"{db}_{client}")  # type: ignore[arg-type]
    src.open(None)
    seen = 0
    profile = os.environ.get("BENCH_PROFILE") == client
    profiler: Any = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    with Meter() as m:
        while True:
            items = src.read_batch(5000, 0.2)
            seen += sum(1 for i in items if isinstance(i, ChangeEvent))
            pub.publish(items)
            committed = pub.committed
            if committed is not None:
                src.acknowledge(committed)
            if seen >= rows:
                break
        committed = pub.flush(120)
    if profiler is not None:
        profiler.stop()
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"pg_source_profile_{rows}.txt").write_text(profiler.output_text(unicode=False, color=False))
        sys.stderr.write(f"profile: {RESULTS}/pg_source_profile_{rows}.txt\n")
    src.close()
    pub.close()
    assert committed is not None
    return {"rows_per_s": rows / m.wall_s, "cpu_s": m.cpu_s, "peak_rss_mb": m.peak_rss_mb}


def cleanup(dbs: list[str]) -> None:
    from psycopg import sql

    from cdc.bus.kafka import KafkaSettings, client_factory

    with _conn() as admin:
        for db in dbs:
            admin.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s",
                          (db,))
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
    admin_k = client_factory(KafkaSettings(bootstrap_servers=stack_env()["CDC_KAFKA_BOOTSTRAP"])).admin()
    admin_k.delete_topics([t for t in admin_k.list_topics() if any(d in t for d in dbs)])
    admin_k.close()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--case":
        kind, db, rows, end = sys.argv[2:6]
        out = case_recvlogical(db, int(rows), end) if kind == "pg_recvlogical" else case_source(db, int(rows), kind)
        print(json.dumps(out))
        return 0
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else int(env("BENCH_PG_SOURCE_ROWS", "300000"))
    results: list[dict[str, Any]] = []
    dbs: list[str] = []
    try:
        for label, n, per_txn in (("multi-row txns", rows, 1000), ("single-row txns", rows // 5, 1)):
            db = f"bench_{uuid.uuid4().hex[:8]}"
            dbs.append(db)
            info = prepare(db, n, per_txn)
            results.append({"workload": label, "case": "PostgreSQL write", "rows": n,
                            "rows_per_s": info["write_rows_per_s"]})
            ref = run_case(HERE, "--case", "pg_recvlogical", db, str(n), info["end"])
            results.append({"workload": label, "case": "pg_recvlogical (native)", "rows": n, **ref})
            for client in ("kafka-python", "confluent-kafka"):
                out = run_case(HERE, "--case", client, db, str(n), info["end"])
                results.append({"workload": label, "case": f"cdc -> Kafka ({client})", "rows": n, **out,
                                "x_native": out["rows_per_s"] / ref["rows_per_s"]})
                time.sleep(0.5)
    finally:
        cleanup(dbs)
    print_table(results, ["workload", "case", "rows", "rows_per_s", "x_native", "cpu_s", "peak_rss_mb"])
    for r in results:
        if r["workload"] == "multi-row txns" and r["case"] == "cdc -> Kafka (confluent-kafka)":
            ok = r["rows_per_s"] >= 60_000
            print(f"target (>= 60k rows/s into Kafka, multi-row, confluent-kafka): {r['rows_per_s']:,.0f} rows/s "
                  f"{'MET' if ok else 'NOT MET'}")
    print(f"results: {write_results('pg_source', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
