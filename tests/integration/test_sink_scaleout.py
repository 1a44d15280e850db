"""Three sink processes share one consumer group; members are killed (SIGKILL), stopped (SIGTERM)
and replaced under load, so partitions move between them again and again. Per-key order must
hold across every rebalance: a trigger on the target records any update that would put an older
version of a row over a newer one, and there must be none. Afterwards the target equals the
source (``cdc verify``).

MariaDB → Kafka (6 partitions per table) → PostgreSQL; the source in one ``cdc run --only source``
process, each sink a ``cdc run --only sink:replica`` process of the same config (one group).

A sink run with ``--instance`` is a static group member: killed and started again under the same
name, it takes its partitions back without a rebalance, long before the killed process's session
would have expired.
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

PARTITIONS = 6


class Writer(threading.Thread):
    """Inserts rows and bumps the versions of random ranges, deleting now and then, until stopped."""

    def __init__(self, mysql_db: Any) -> None:
        super().__init__(daemon=True)
        self.conn = mysql_db.connect(autocommit=False)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.next_id = 2001
        self.transactions = 0

    def run(self) -> None:
        rnd = random.Random(23)
        try:
            while not self.stop.is_set():
                with self.conn.cursor() as cur:
                    rows = [(i, f"r{i}", 0) for i in range(self.next_id, self.next_id + 4)]
                    cur.executemany("INSERT INTO items (id, name, version) VALUES (%s, %s, %s)", rows)
                    self.next_id += 4
                    low = rnd.randint(1, self.next_id - 50)
                    cur.execute("UPDATE items SET version = version + 1 WHERE id BETWEEN %s AND %s", (low, low + 30))
                    cur.execute("UPDATE items SET version = version + 1 WHERE id <= 20")  # hot keys, every txn
                    if rnd.random() < 0.3:
                        cur.execute("DELETE FROM items WHERE id = %s", (rnd.randint(21, self.next_id - 1),))
                self.conn.commit()
                self.transactions += 1
                time.sleep(0.01)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.conn.close()


def _count_partitions(assignment: Any) -> int:
    if not assignment:
        return 0
    if isinstance(assignment, bytes | bytearray):
        from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment

        assignment = ConsumerProtocolAssignment.decode(assignment)
    if hasattr(assignment, "partitions"):
        return len(assignment.partitions())
    if isinstance(assignment, dict):
        parts = assignment.get("assigned_partitions") or assignment.get("assignment") or []
        return sum(len(p["partitions"] if isinstance(p, dict) else p[1]) for p in parts)
    raise AssertionError(f"cannot read a member assignment of type {type(assignment).__name__}")


def _describe(bootstrap: str, group: str) -> dict[str, Any]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="cdc-tests-scaleout")
    try:
        return dict(admin.describe_groups([group])[group])
    finally:
        admin.close()


def _members(bootstrap: str, group: str) -> dict[str, int] | None:
    """Member id → number of partitions assigned, as the group coordinator describes a stable group
    (None while it rebalances)."""
    desc = _describe(bootstrap, group)
    if desc.get("group_state") != "Stable":
        return None
    return {m["member_id"]: _count_partitions(m["member_assignment"]) for m in desc["members"]}


def _stop_all(sinks: list[subprocess.Popen[bytes]], source: CdcRun) -> None:
    """SIGTERM every sink process still running (SIGKILL after 20 s), then the source."""
    for p in sinks:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in sinks:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
    if source.alive():
        source.stop(signal.SIGTERM)


TRIGGER = """
CREATE TABLE {schema}.regressions (id bigint, old_version int, new_version int, at timestamptz DEFAULT now());
CREATE FUNCTION {schema}.no_going_back() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.version < OLD.version THEN
    INSERT INTO {schema}.regressions (id, old_version, new_version) VALUES (OLD.id, OLD.version, NEW.version);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER no_going_back BEFORE UPDATE ON {schema}.items FOR EACH ROW EXECUTE FUNCTION {schema}.no_going_back();
"""


def test_three_sinks_in_one_group_keep_per_key_order_across_rebalances(
    mysql_db: Any, pg_db: Any, kafka_bootstrap: str, kafka_prefix: str, tmp_path: Path
) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(40), version INT NOT NULL)")
        cur.executemany("INSERT INTO items VALUES (%s, %s, 0)", [(i, f"s{i}") for i in range(1, 2001)])
    conn.close()
    name = f"scale_{mysql_db.name}"
    config = tmp_path / "cdc.yaml"
    config.write_text(
        f"name: {name}\n"
        f"source:\n  type: mysql\n  url: {mysql_db.server_url}\n  server_id: {random.randint(10_000, 4_000_000)}\n"
        f"  tables: ['{mysql_db.name}.*']\n"
        f"bus:\n  type: kafka\n  bootstrap_servers: {kafka_bootstrap}\n  topic_prefix: {kafka_prefix}\n"
        f"  partitions: {PARTITIONS}\n"
        # a killed member leaves the group when its session expires: keep that short here
        f"  properties: {{session_timeout_ms: 6000, heartbeat_interval_ms: 1000}}\n"
        f"sinks:\n  - name: replica\n    url: {pg_db.url}\n    batch_size: 200\n"
        f"metrics:\n  enabled: false\n"
    )
    schema = mysql_db.name
    group = f"cdc.{name}.replica"
    source = CdcRun(config, "--only", "source", name="source")
    writer = Writer(mysql_db)
    log = tmp_path / "sinks.log"
    sinks: list[subprocess.Popen[bytes]] = []
    rnd = random.Random(7)
    changes = 0
    try:
        sinks.append(sink_process(config, log))

        def target_ready() -> bool:  # the snapshot arrived: install the trigger before any update
            with pg_db.connect() as pg:
                row = pg.execute("SELECT to_regclass(%s)", (f'"{schema}".items',)).fetchone()
                if row[0] is None:
                    return False
                return int(pg.execute(f'SELECT count(*) FROM "{schema}".items').fetchone()[0]) >= 2000

        wait_for(target_ready, 120, "the snapshot in the target", source)
        with pg_db.connect() as pg:
            pg.execute(TRIGGER.format(schema=f'"{schema}"'))
        sinks += [sink_process(config, log), sink_process(config, log)]
        writer.start()

        def three_share() -> bool:
            members = _members(kafka_bootstrap, group)
            return members is not None and len(members) == 3 and all(n >= 1 for n in members.values())

        wait_for(three_share, 90, "three group members with partitions each", source, every=1.0)
        for i in range(6):  # membership changes under load: kill -9 or SIGTERM one member, start another
            time.sleep(rnd.uniform(2.0, 4.0))
            victim = sinks.pop(rnd.randrange(len(sinks)))
            if i % 2 == 0:
                victim.kill()
            else:
                victim.send_signal(signal.SIGTERM)
            victim.wait(30)
            if i % 2 == 1:
                assert victim.returncode == 0, f"a sink stopped by SIGTERM exited {victim.returncode}"
            sinks.append(sink_process(config, log))
            changes += 1
            assert source.alive(), source.stderr()
            assert all(p.poll() is None for p in sinks), log.read_text()[-3000:]
        wait_for(three_share, 90, "three members with partitions after the changes", source, every=1.0)
        writer.stop.set()
        writer.join(30)
        assert writer.error is None, writer.error
        assert writer.transactions > 100, "the writer kept the pipeline under load"

        last: dict[str, Any] = {}

        def equal() -> bool:
            nonlocal last
            res = cdc("verify", "-c", str(config), "--json", "--reads", "1", timeout=120)
            assert res.returncode in (0, 1), res.stderr
            last = json.loads(res.stdout)
            return res.returncode == 0

        try:
            wait_for(equal, 180, "the target to equal the source", source, every=2.0)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{json.dumps(last)[:3000]}") from None
    finally:
        writer.stop.set()
        _stop_all(sinks, source)
    assert changes == 6
    with pg_db.connect() as pg:
        regressions = pg.execute(f'SELECT id, old_version, new_version FROM "{schema}".regressions').fetchall()
        count, total = pg.execute(f'SELECT count(*), sum(version) FROM "{schema}".items').fetchone()
        hot = pg.execute(f'SELECT min(version) FROM "{schema}".items WHERE id <= 20').fetchone()[0]
    assert regressions == [], f"an older version was applied over a newer one: {regressions[:10]}"
    src = mysql_db.connect()
    with src.cursor() as cur:
        cur.execute("SELECT count(*), sum(version) FROM items")
        expected = cur.fetchone()
    src.close()
    assert (int(count), int(total)) == (int(expected[0]), int(expected[1]))
    assert int(hot) > 100, "the hot keys were updated through every rebalance"


@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_a_static_member_killed_and_restarted_takes_its_partitions_back_without_a_rebalance(
    mysql_db: Any, pg_db: Any, kafka_bootstrap: str, kafka_prefix: str, tmp_path: Path, client: str
) -> None:
    """``cdc run --only sink:replica --instance a``, killed with SIGKILL and started again with the same
    instance: the group stays stable with one member, ``a.replica``, now the new process, which applies
    new rows. The session timeout is 45 s; without ``--instance`` the new process's join would wait that
    long for the killed member to expire."""
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(40), version INT NOT NULL)")
        cur.execute("INSERT INTO items VALUES (1, 'first', 0)")
    name = f"static_{mysql_db.name}"
    config = tmp_path / "cdc.yaml"
    config.write_text(
        f"name: {name}\n"
        f"source:\n  type: mysql\n  url: {mysql_db.server_url}\n  server_id: {random.randint(10_000, 4_000_000)}\n"
        f"  tables: ['{mysql_db.name}.*']\n"
        f"bus:\n  type: kafka\n  bootstrap_servers: {kafka_bootstrap}\n  topic_prefix: {kafka_prefix}\n"
        f"  partitions: 2\n  client: {client}\n"
        + (
            "  properties: {session_timeout_ms: 45000, heartbeat_interval_ms: 3000}\n"
            if client == "kafka-python"
            else "  properties: {session.timeout.ms: 45000, heartbeat.interval.ms: 3000}\n"
        )
        + f"sinks:\n  - name: replica\n    url: {pg_db.url}\n    batch_size: 200\n"
        "metrics:\n  enabled: false\n"
    )
    schema = mysql_db.name
    group = f"cdc.{name}.replica"
    source = CdcRun(config, "--only", "source", name="source")
    log = tmp_path / "sinks.log"
    sinks: list[subprocess.Popen[bytes]] = []

    def applied(row_id: int) -> bool:
        with pg_db.connect() as pg:
            if pg.execute("SELECT to_regclass(%s)", (f'"{schema}".items',)).fetchone()[0] is None:
                return False
            return pg.execute(f'SELECT 1 FROM "{schema}".items WHERE id = %s', (row_id,)).fetchone() is not None

    def static_members() -> list[tuple[str, str | None]]:
        desc = _describe(kafka_bootstrap, group)
        if desc.get("group_state") != "Stable":
            return []
        return [(str(m["member_id"]), m.get("group_instance_id")) for m in desc["members"]]

    try:
        sinks.append(sink_process(config, log, instance="a"))
        wait_for(lambda: applied(1), 120, "the first row in the target", source)
        wait_for(lambda: len(static_members()) == 1, 60, "one stable member", source)
        ((before, instance),) = static_members()
        assert instance == "a.replica"
        sinks[0].kill()
        sinks[0].wait(30)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO items VALUES (2, 'second', 0)")
        sinks.append(sink_process(config, log, instance="a"))
        # well within the 45 s session: the new process holds the partitions and applies the new row
        try:
            wait_for(lambda: applied(2), 20, "the row written after the kill, applied by the restarted member", source)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- sinks ---\n{log.read_text()[-4000:]}\n{static_members()}") from None
        ((after, instance),) = static_members()
        assert instance == "a.replica" and after != before
        assert sinks[1].poll() is None, log.read_text()[-3000:]
    finally:
        conn.close()
        _stop_all(sinks, source)
