"""kill -9 of the MySQL source process inside a 50,000-row transaction, then a restart: every row
reaches Kafka; with exactly-once, a read_committed consumer sees each row exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from cdc.bus.kafka import KafkaSettings, client_factory
from cdc.envelope import topic_for
from cdc.events import TableId

SUPPORT = Path(__file__).resolve().parents[1] / "support"
ROWS = 50_000


def _start(mysql_db, kafka_bootstrap: str, prefix: str, eos: bool, snapshot: str = "never") -> subprocess.Popen[str]:
    cmd = [sys.executable, str(SUPPORT / "mysql_to_kafka.py"), mysql_db.server_url, kafka_bootstrap, prefix,
           mysql_db.name, "76001", "1" if eos else "0", str(ROWS), snapshot]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(proc: subprocess.Popen[str], predicate) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if predicate(line):
            return line
    raise AssertionError(f"the process ended early: {proc.stderr.read() if proc.stderr else ''}")


def _read_all(bootstrap: str, topic: str, read_committed: bool) -> list[int]:
    factory = client_factory(KafkaSettings(bootstrap_servers=bootstrap))
    admin = factory.admin()
    tps = [(topic, p) for p in admin.partitions_for(topic)]
    admin.close()
    consumer = factory.consumer(group_id=None, read_committed=read_committed)
    consumer.assign(tps)
    consumer.seek_to_beginning(tps)
    ends = consumer.end_offsets(tps)
    ids: list[int] = []
    deadline = time.monotonic() + 120
    while any(consumer.position(tp) < ends[tp] for tp in tps):
        assert time.monotonic() < deadline
        ids.extend(orjson.loads(m.value)["after"]["id"] for m in consumer.poll(10_000, 0.5) if m.value)
    consumer.close()
    return ids


@pytest.mark.parametrize("eos", [False, True], ids=["at-least-once", "exactly-once"])
def test_kill9_inside_a_large_transaction(mysql_db, kafka_bootstrap: str, kafka_prefix: str, eos: bool) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(64))")
    first = _start(mysql_db, kafka_bootstrap, kafka_prefix, eos)
    _wait_for(first, lambda line: line.startswith("ready"))
    with conn.cursor() as cur:  # one transaction of 50,000 rows
        cur.execute("BEGIN")
        for start in range(0, ROWS, 1000):
            cur.execute("INSERT INTO big VALUES " + ", ".join(["(%s, %s)"] * 1000),
                        [v for i in range(start, start + 1000) for v in (i, "x" * 40)])
        cur.execute("COMMIT")
    # kill once part of the transaction, and only part, went out
    _wait_for(first, lambda line: line.startswith("progress") and 5_000 <= int(line.split()[1]) < ROWS)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(30)

    second = _start(mysql_db, kafka_bootstrap, kafka_prefix, eos)
    _wait_for(second, lambda line: line.startswith("done"))
    second.wait(60)
    assert second.returncode == 0

    ids = _read_all(kafka_bootstrap, topic_for(kafka_prefix, TableId(mysql_db.name, "big")), read_committed=eos)
    assert set(ids) == set(range(ROWS)), f"{len(set(range(ROWS)) - set(ids))} rows missing"
    if eos:
        assert len(ids) == ROWS, f"{len(ids) - ROWS} duplicates under exactly-once"


@pytest.mark.parametrize("eos", [False, True], ids=["at-least-once", "exactly-once"])
def test_kill9_during_the_snapshot(mysql_db, kafka_bootstrap: str, kafka_prefix: str, eos: bool) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(64))")
        for start in range(0, ROWS, 1000):
            cur.execute("INSERT INTO big VALUES " + ", ".join(["(%s, %s)"] * 1000),
                        [v for i in range(start, start + 1000) for v in (i, "x" * 40)])
    first = _start(mysql_db, kafka_bootstrap, kafka_prefix, eos, snapshot="initial")
    _wait_for(first, lambda line: line.startswith("progress") and 6_000 <= int(line.split()[1]) < ROWS)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(30)

    second = _start(mysql_db, kafka_bootstrap, kafka_prefix, eos, snapshot="initial")
    done = _wait_for(second, lambda line: line.startswith("done"))
    second.wait(60)
    assert second.returncode == 0
    # the restart resumed after the last stored chunk instead of starting over
    assert 0 < int(done.split()[1]) < ROWS

    ids = _read_all(kafka_bootstrap, topic_for(kafka_prefix, TableId(mysql_db.name, "big")), read_committed=eos)
    assert set(ids) == set(range(ROWS)), f"{len(set(range(ROWS)) - set(ids))} rows missing"
    if eos:
        assert len(ids) == ROWS, f"{len(ids) - ROWS} duplicates under exactly-once"
