"""A poison message on a change topic: the sink sets it aside on the dead-letter topic, with the
reason in its headers, counts it in metrics, and goes on applying the rows after it. With
``on_error: fail`` the sink stops instead, with a clear error and exit code 2.

MariaDB → Kafka → PostgreSQL through the real ``cdc run``; the poison is produced straight onto
the table's topic with a plain Kafka producer, as a broken upstream would.
"""

from __future__ import annotations

import random
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from services import free_port
from support.cdc_process import CdcRun, cdc, wait_for

pytestmark = pytest.mark.integration

POISON = b'{"before": null, "after": {"id": 5, "name": "broken'  # truncated JSON


def _config(path: Path, mysql_db: Any, pg_db: Any, bootstrap: str, prefix: str, on_error: str, port: int) -> Path:
    path.write_text(
        f"name: poison_{mysql_db.name}\n"
        f"source:\n  type: mysql\n  url: {mysql_db.server_url}\n  server_id: {random.randint(10_000, 4_000_000)}\n"
        f"  tables: ['{mysql_db.name}.*']\n"
        f"bus:\n  type: kafka\n  bootstrap_servers: {bootstrap}\n  topic_prefix: {prefix}\n"
        f"sinks:\n  - name: replica\n    url: {pg_db.url}\n    on_error: {on_error}\n"
        f"metrics:\n  listen: 127.0.0.1:{port}\n"
    )
    return path


def _equal(config: Path) -> bool:
    res = cdc("verify", "-c", str(config), "--reads", "1", timeout=120)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode == 0


def _produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(topic, key=key, value=value).get(30)
    producer.close()


def _dead_letters(bootstrap: str, topic: str) -> list[Any]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000)
    try:
        return list(consumer)
    finally:
        consumer.close()


def test_poison_goes_to_the_dead_letter_topic_and_the_rest_is_applied(
    mysql_db: Any, pg_db: Any, kafka_bootstrap: str, kafka_prefix: str, tmp_path: Path
) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40))")
        cur.executemany("INSERT INTO items VALUES (%s, %s)", [(i, f"n{i}") for i in range(1, 101)])
    port = free_port()
    config = _config(tmp_path / "cdc.yaml", mysql_db, pg_db, kafka_bootstrap, kafka_prefix, "dead_letter", port)
    run = CdcRun(config)
    try:
        wait_for(lambda: _equal(config), 120, "the snapshot to be applied", run, every=1.0)
        topic = f"{kafka_prefix}.{mysql_db.name}.items"
        _produce(kafka_bootstrap, topic, b'{"id": 5}', POISON)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO items VALUES (%s, %s)", [(i, f"after{i}") for i in range(200, 220)])
            cur.execute("UPDATE items SET name = 'changed' WHERE id = 5")
        wait_for(lambda: _equal(config), 120, "the rows after the poison to be applied", run, every=1.0)
        assert run.alive(), run.stderr()

        letters = _dead_letters(kafka_bootstrap, f"__cdc_dlq.{kafka_prefix}.replica")
        assert [m.value for m in letters] == [POISON]
        headers = dict(letters[0].headers)
        assert headers["cdc.topic"].decode() == topic
        assert headers["cdc.sink"].decode() == "replica"
        assert b"JSON" in headers["cdc.error"] or b"json" in headers["cdc.error"], headers["cdc.error"]
        assert letters[0].key == b'{"id": 5}'

        def counted() -> bool:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            lines = [x for x in text.splitlines() if x.startswith("cdc_dead_letters_total{")]
            return any(float(x.rsplit(" ", 1)[1]) == 1.0 for x in lines)

        wait_for(counted, 30, "cdc_dead_letters_total to count the poison", run)
        assert run.stop(signal.SIGTERM) == 0, run.stderr()
    finally:
        if run.alive():
            run.kill9()
        conn.close()
    assert "Traceback" not in run.stderr()


def test_on_error_fail_stops_with_a_clear_error(
    mysql_db: Any, pg_db: Any, kafka_bootstrap: str, kafka_prefix: str, tmp_path: Path
) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40))")
        cur.execute("INSERT INTO items VALUES (1, 'one')")
    conn.close()
    config = _config(tmp_path / "cdc.yaml", mysql_db, pg_db, kafka_bootstrap, kafka_prefix, "fail", free_port())
    run = CdcRun(config)
    try:
        wait_for(lambda: _equal(config), 120, "the snapshot to be applied", run, every=1.0)
        _produce(kafka_bootstrap, f"{kafka_prefix}.{mysql_db.name}.items", b'{"id": 1}', POISON)
        deadline = time.monotonic() + 60
        while run.alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not run.alive(), "on_error: fail must stop the pipeline"
        assert run.proc.returncode == 2
        err = run.stderr()
        assert "error:" in err and "Traceback" not in err, err
    finally:
        if run.alive():
            run.kill9()
    assert not _dead_letters(kafka_bootstrap, f"__cdc_dlq.{kafka_prefix}.replica")
