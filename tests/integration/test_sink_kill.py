"""The sink killed with SIGKILL 20 times under load, at random moments and at the two windows
that matter: after the target committed a batch but before the Kafka group offsets were
committed, and right after the offsets were committed. Afterwards the target equals the
source (``cdc verify``), with no lost row and no older version of a row over a newer one.

MariaDB → Kafka → PostgreSQL, the source in one ``cdc run --only source`` process for the
whole test, the sink in a fresh ``cdc run --only sink:replica`` process for each round.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support.cdc_process import CdcRun, cdc, sink_process, wait_for

pytestmark = pytest.mark.integration

ROUNDS = 20


class Writer(threading.Thread):
    """Inserts, updates (a version counter) and deletes rows until stopped."""

    def __init__(self, mysql_db: Any) -> None:
        super().__init__(daemon=True)
        self.conn = mysql_db.connect(autocommit=False)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.next_id = 1001
        self.transactions = 0

    def run(self) -> None:
        rnd = random.Random(11)
        try:
            while not self.stop.is_set():
                with self.conn.cursor() as cur:
                    rows = [(i, f"r{i}", 0) for i in range(self.next_id, self.next_id + 5)]
                    cur.executemany("INSERT INTO items (id, name, version) VALUES (%s, %s, %s)", rows)
                    self.next_id += 5
                    low = rnd.randint(1, self.next_id - 200)
                    cur.execute("UPDATE items SET version = version + 1 WHERE id BETWEEN %s AND %s", (low, low + 10))
                    cur.execute("DELETE FROM items WHERE id = %s", (rnd.randint(1, self.next_id - 1),))
                self.conn.commit()
                self.transactions += 1
                time.sleep(0.02)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.conn.close()


def test_sink_killed_20_times_under_load_ends_equal(
    mysql_db: Any, pg_db: Any, kafka_bootstrap: str, kafka_prefix: str, tmp_path: Path
) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(40), version INT NOT NULL)")
        cur.executemany("INSERT INTO items VALUES (%s, %s, 0)", [(i, f"s{i}") for i in range(1, 1001)])
    conn.close()
    config = tmp_path / "cdc.yaml"
    config.write_text(
        f"name: kill_{mysql_db.name}\n"
        f"source:\n  type: mysql\n  url: {mysql_db.server_url}\n  server_id: {random.randint(10_000, 4_000_000)}\n"
        f"  tables: ['{mysql_db.name}.*']\n"
        f"bus:\n  type: kafka\n  bootstrap_servers: {kafka_bootstrap}\n  topic_prefix: {kafka_prefix}\n"
        # a killed member leaves the group when its session expires: keep that short here
        f"  properties: {{session_timeout_ms: 6000, heartbeat_interval_ms: 1000}}\n"
        f"sinks:\n  - name: replica\n    url: {pg_db.url}\n    batch_size: 200\n"
        f"metrics:\n  enabled: false\n"
    )
    source = CdcRun(config, "--only", "source", name="source")
    writer = Writer(mysql_db)
    rnd = random.Random(5)
    log = tmp_path / "sink.log"
    kinds: list[str] = []
    try:
        writer.start()
        for i in range(ROUNDS):
            choice = i % 3
            failpoint = (
                f"sink.after_apply:{rnd.randint(1, 6)}"
                if choice == 0
                else f"sink.after_offsets:{rnd.randint(1, 3)}"
                if choice == 1
                else None
            )
            proc = sink_process(config, log, failpoint)
            if failpoint is None:  # a random moment
                time.sleep(rnd.uniform(1.0, 4.0))
                proc.kill()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            assert proc.returncode == -signal.SIGKILL, (
                f"round {i}: the sink exited {proc.returncode} instead of dying by SIGKILL\n{log.read_text()[-3000:]}"
            )
            kinds.append(failpoint.split(":")[0] if failpoint else "random")
            assert source.alive(), source.stderr()
        writer.stop.set()
        writer.join(30)
        assert writer.error is None, writer.error
        assert writer.transactions > 50, "the writer kept the pipeline under load"

        sink = CdcRun(config, "--only", "sink:replica", name="sink_final")
        try:
            last: dict[str, Any] = {}

            def equal() -> bool:
                nonlocal last
                res = cdc("verify", "-c", str(config), "--json", "--reads", "1", timeout=120)
                assert res.returncode in (0, 1), res.stderr
                last = json.loads(res.stdout)
                return res.returncode == 0

            try:
                wait_for(equal, 180, "the target to equal the source", sink, every=2.0)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{json.dumps(last)[:3000]}") from None
            assert sink.stop(signal.SIGTERM) == 0, sink.stderr()
        finally:
            if sink.alive():
                sink.kill9()
    finally:
        writer.stop.set()
        if source.alive():
            source.stop(signal.SIGTERM)
    assert set(kinds) == {"sink.after_apply", "sink.after_offsets", "random"}
    # the newest version of every row, nothing older: verify compared every column, version included
    with pg_db.connect() as pg:
        rows = pg.execute(f'SELECT count(*), sum(version) FROM "{mysql_db.name}".items').fetchone()
    src = mysql_db.connect()
    with src.cursor() as cur:
        cur.execute("SELECT count(*), sum(version) FROM items")
        expected = cur.fetchone()
    src.close()
    assert (int(rows[0]), int(rows[1])) == (int(expected[0]), int(expected[1]))
