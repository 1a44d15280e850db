"""The smoke demo `make demo` runs until the full pipeline lands: one change captured and shown.

It inserts a row into MariaDB, reads it back from the binlog with python-mysql-replication,
publishes it to Kafka, consumes it from there and prints each step. Everything it creates
(a database and a topic) is removed at the end.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from urllib.parse import unquote, urlsplit

import pymysql
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import WriteRowsEvent


def step(n: int, text: str) -> None:
    print(f"[{n}/4] {text}", flush=True)


def main() -> int:
    url = urlsplit(os.environ["CDC_MYSQL_URL"])
    bootstrap = os.environ["CDC_KAFKA_BOOTSTRAP"]
    settings = {"host": url.hostname or "127.0.0.1", "port": url.port or 3306,
                "user": unquote(url.username or "root"), "password": unquote(url.password or "")}
    db = f"cdc_demo_{uuid.uuid4().hex[:8]}"
    topic = f"demo.{db}.orders"
    conn = pymysql.connect(**settings, autocommit=True, charset="utf8mb4")
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{db}`")
        with pymysql.connect(**settings, database=db, autocommit=True, charset="utf8mb4") as dbconn,\
                dbconn.cursor() as cur:
            cur.execute("CREATE TABLE orders (id INT PRIMARY KEY, item VARCHAR(40), qty INT)")
            cur.execute("SHOW MASTER STATUS")
            log_file, log_pos = cur.fetchone()[:2]
            cur.execute("INSERT INTO orders VALUES (1, 'coffee ☕', 3)")
        step(1, f"MariaDB: inserted into {db}.orders at binlog {log_file}:{log_pos}")

        reader = BinLogStreamReader(connection_settings=settings, server_id=4242, only_events=[WriteRowsEvent],
                                    only_schemas=[db], log_file=log_file, log_pos=log_pos, resume_stream=True,
                                    blocking=False)
        rows = [(ev.table, r["values"]) for ev in reader for r in ev.rows]
        reader.close()
        table, after = rows[0]
        step(2, f"binlog: captured a write on {table}: {after}")

        event = {"before": None, "after": after, "op": "c", "ts_ms": int(time.time() * 1000),
                 "source": {"connector": "mysql", "db": db, "table": table, "file": log_file}}
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        meta = producer.send(topic, key=json.dumps({"id": after["id"]}).encode(),
                             value=json.dumps(event, ensure_ascii=False).encode()).get(timeout=30)
        producer.close()
        step(3, f"Kafka: published to {topic} partition {meta.partition} offset {meta.offset}")

        consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                 consumer_timeout_ms=20_000)
        message = next(iter(consumer))
        consumer.close()
        step(4, f"Kafka: consumed key={message.key.decode()} value={message.value.decode()}")
        ok = json.loads(message.value)["after"] == after
        print("smoke demo: OK" if ok else "smoke demo: MISMATCH", flush=True)
        return 0 if ok else 1
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        conn.close()
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        if topic in admin.list_topics():
            admin.delete_topics([topic])
        admin.close()


if __name__ == "__main__":
    sys.exit(main())
