"""End to end, in one process: MariaDB → MySQL source → Kafka → sink runner → PostgreSQL.

A snapshot of existing rows, then live inserts, updates and deletes, must leave
the PostgreSQL target equal to the source; a restarted sink runner (a new consumer) resumes
from the offsets stored in the target and applies nothing twice.
"""

from __future__ import annotations

import time
from decimal import Decimal

from cdc.bus.consumer import KafkaSinkRunner
from cdc.bus.kafka import KafkaPublisher
from cdc.config import parse_config
from connectors.mysql.source import MySqlSource
from connectors.sql.sink import create_sink


def _config(mysql_db, pg_db, kafka_bootstrap: str, prefix: str):
    yaml = f"""
name: {prefix}
source:
  type: mysql
  url: {mysql_db.server_url}
  server_id: 75001
  tables: ["{mysql_db.name}.*"]
  snapshot_chunk_rows: 500
bus:
  type: kafka
  bootstrap_servers: {kafka_bootstrap}
  partitions: 2
sinks:
  - name: replica
    url: {pg_db.url}
"""
    return parse_config(yaml, env={})


def _source_rows(mysql_db, table: str) -> list[tuple]:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, name, amount, created FROM `{table}` ORDER BY id")
        return [tuple(r) for r in cur.fetchall()]


def _target_rows(pg_db, schema: str, table: str) -> list[tuple] | None:
    from psycopg import sql

    with pg_db.connect() as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone()[0]
        if exists is None:
            return None
        q = sql.SQL("SELECT id, name, amount, created FROM {}.{} ORDER BY id").format(
            sql.Identifier(schema), sql.Identifier(table))
        return [tuple(r) for r in conn.execute(q).fetchall()]


def _pump(src, pub, runner, until, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not until():
        assert time.monotonic() < deadline, "the pipeline did not converge in time"
        pub.publish(src.read_batch(5000, 0.1))
        pub.pump()
        runner.run_once(0.1)


def test_mariadb_to_kafka_to_postgres(mysql_db, pg_db, kafka_bootstrap: str, kafka_prefix: str) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(10,2), "
                    "created DATETIME(6))")
        cur.executemany("INSERT INTO items VALUES (%s, %s, %s, %s)",
                        [(i, f"item {i} ☕", Decimal(i) / 4, f"2024-01-01 00:00:{i % 60:02d}.{i:06d}")
                         for i in range(1, 1201)])
    cfg = _config(mysql_db, pg_db, kafka_bootstrap, kafka_prefix)
    src = MySqlSource(cfg.source, kafka_prefix)  # type: ignore[arg-type]
    pub = KafkaPublisher(cfg.bus.to_settings(), kafka_prefix)  # type: ignore[union-attr]
    start = pub.open()
    src.open(start)
    sink_cfg = cfg.sinks[0]

    def runner() -> KafkaSinkRunner:
        r = KafkaSinkRunner(cfg.bus.to_settings(), kafka_prefix, kafka_prefix, "replica",  # type: ignore[union-attr]
                            create_sink(sink_cfg, pipeline=kafka_prefix),
                            includes=lambda t: sink_cfg.includes(str(t)))
        r.open()
        return r

    run1 = runner()
    try:
        def equal(table: str) -> bool:
            return _target_rows(pg_db, mysql_db.name, table) == _source_rows(mysql_db, table)

        _pump(src, pub, run1, lambda: equal("items"))  # the snapshot arrived

        with conn.cursor() as cur:  # live changes
            cur.execute("UPDATE items SET name = 'renamed', amount = 99.99 WHERE id <= 10")
            cur.execute("DELETE FROM items WHERE id BETWEEN 11 AND 20")
            cur.execute("INSERT INTO items VALUES (5000, 'new', 1.00, '2030-06-01 12:00:00.5')")
        _pump(src, pub, run1, lambda: equal("items"))
    finally:
        run1.close()
    applied_before = run1.stats.applied

    # a second runner (a restarted sink process) resumes from the offsets stored in the target
    with conn.cursor() as cur:
        cur.execute("UPDATE items SET amount = 0 WHERE id = 5000")
    run2 = runner()
    try:
        _pump(src, pub, run2, lambda: _source_rows(mysql_db, "items") == _target_rows(pg_db, mysql_db.name, "items"))
        for _ in range(5):
            run2.run_once(0.2)
    finally:
        run2.close()
        src.close()
        pub.close()
    assert applied_before >= 1200 + 10 + 10 + 1
    assert run2.stats.applied == 1, f"the restarted runner re-applied {run2.stats.applied - 1} old events"
