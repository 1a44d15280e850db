"""End-to-end lag and throughput of ``cdc run``: MariaDB → Kafka → PostgreSQL and PostgreSQL → Kafka → MariaDB.

What is measured, per direction, against the real local stack (``make stack-up``):

* **Steady lag.** A writer commits transactions of ``RATE/100`` rows every 10 ms (a steady
  ``RATE`` rows/s, 5,000 by default) for ``SECONDS`` (30). A sampler polls the target's
  ``max(id)`` every few milliseconds. A transaction's lag is the time from its commit on the
  source to the first sample that shows its last row on the target: source commit to target
  apply, through the binlog or the slot, Kafka and the sink. The topic has one partition, so
  the target applies in commit order and ``max(id)`` is exact. Reported: p50, p99 and max.
  Target: p99 ≤ 250 ms at 5,000 rows/s.
* **Highest sustained rate.** The writer then steps through rising rates (``RAMP``, rows/s),
  10 s each. A step is sustained when the writer reached its rate and the pipeline kept up:
  p99 lag within the step under 2 s and the target caught up within 2 s of the step's end.
  Reported next to the **source's own write rate** measured in the same run: the same writer
  with no pacing and no pause, into a table cdc does not capture.
* **Cost.** CPU seconds and peak RSS of the ``cdc run`` process (one process: source,
  Kafka publisher and sink), over the whole case; with ``E2E_SPLIT=1`` the source and the
  sink run as two processes (``--only source``, ``--only sink:replica``) and the figures are
  their sums.

Every case runs once per Kafka client (``bus.client``): confluent-kafka (librdkafka) and
kafka-python. The exit code is 0 when, for each direction, some client met the p99 target.

Usage: python bench/e2e.py [mysql-pg|pg-mysql ...]
Environment: E2E_RATE (5000), E2E_SECONDS (30), E2E_RAMP ("7500,10000,15000,20000"), E2E_STEP_S (10),
E2E_CLIENT ("confluent-kafka,kafka-python"), E2E_SPLIT (0).
Results: bench/results/e2e.json.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import ROOT, percentile, print_table, stack_env, write_results

RATE = int(os.environ.get("E2E_RATE", "5000"))
SECONDS = float(os.environ.get("E2E_SECONDS", "30"))
RAMP = [int(r) for r in os.environ.get("E2E_RAMP", "7500,10000,15000,20000").split(",") if r]
STEP_S = float(os.environ.get("E2E_STEP_S", "10"))
CLIENTS = os.environ.get("E2E_CLIENT", "confluent-kafka,kafka-python").split(",")  # bus.client, one case each
SPLIT = os.environ.get("E2E_SPLIT", "0") == "1"  # source and sink in two processes (--only)
TICK_S = 0.01
SUSTAINED_P99_S = 2.0
CATCH_UP_S = 2.0


# ------------------------------------------------------------------------------------- the two engines


class Engine:
    """One database on one side of the pipeline, through its DB-API driver."""

    table = "items"

    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name

    def connect(self) -> Any:
        raise NotImplementedError

    def create_source(self) -> None:
        raise NotImplementedError

    def insert(self, cur: Any, table: str, first: int, last: int) -> None:
        raise NotImplementedError

    def max_id_sql(self) -> str:
        raise NotImplementedError

    def drop(self) -> None:
        raise NotImplementedError


class MariaDb(Engine):
    """The database ``name`` on the MariaDB server; rows come from the sequence engine, server-side."""

    def _params(self, database: str | None) -> dict[str, Any]:
        sys.path.insert(0, str(ROOT / "tests"))
        import services

        return dict(services.mysql_params(self.url, database or ""))

    def connect(self, database: str | None = None) -> Any:
        import pymysql

        return pymysql.connect(**{**self._params(self.name if database is None else database), "autocommit": False})

    def create_source(self) -> None:
        conn = self.connect("")
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4")
            for t in ("items", "uncaptured"):
                cur.execute(
                    f"CREATE TABLE `{self.name}`.`{t}` (id BIGINT PRIMARY KEY, grp INT NOT NULL, "
                    "amount DECIMAL(12,2) NOT NULL, note VARCHAR(64) NOT NULL, created DATETIME(6) NOT NULL)"
                )
        conn.commit()
        conn.close()

    def create_database(self) -> None:
        conn = self.connect("")
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{self.name}` CHARACTER SET utf8mb4")
        conn.commit()
        conn.close()

    def insert(self, cur: Any, table: str, first: int, last: int) -> None:
        cur.execute(
            f"INSERT INTO `{table}` (id, grp, amount, note, created) "  # noqa: S608 - generated names
            f"SELECT seq, seq % 100, seq / 100, CONCAT('note-', seq), NOW(6) FROM seq_{first}_to_{last}"
        )

    def max_id_sql(self) -> str:
        return f"SELECT max(id) FROM `{self.name}`.`items`"  # noqa: S608 - a generated name

    def drop(self) -> None:
        conn = self.connect("")
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
        conn.commit()
        conn.close()


class Postgres(Engine):
    """A database of its own on the PostgreSQL server; the captured tables live in schema ``name``."""

    def __init__(self, url: str, name: str, *, own_database: bool) -> None:
        super().__init__(url, name)
        self.own_database = own_database
        base = url.rsplit("/", 1)[0]
        self.db_url = f"{base}/{name}" if own_database else url

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.db_url, autocommit=False)

    def create_source(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')
            for t in ("items", "uncaptured"):
                conn.execute(
                    f'CREATE TABLE "{self.name}"."{t}" (id bigint PRIMARY KEY, grp int NOT NULL, '
                    "amount numeric(12,2) NOT NULL, note varchar(64) NOT NULL, created timestamp(6) NOT NULL)"
                )

    def insert(self, cur: Any, table: str, first: int, last: int) -> None:
        cur.execute(
            f'INSERT INTO "{self.name}"."{table}" (id, grp, amount, note, created) '  # noqa: S608
            "SELECT g, g %% 100, g / 100.0, 'note-' || g, clock_timestamp()::timestamp "
            "FROM generate_series(%s::bigint, %s::bigint) g",
            (first, last),
        )

    def max_id_sql(self) -> str:
        return f'SELECT max(id) FROM "{self.name}"."items"'  # noqa: S608 - a generated name

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as admin:
            if self.own_database:
                admin.execute(
                    "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                    "WHERE database = %s AND active_pid IS NOT NULL",
                    (self.name,),
                )
                time.sleep(0.5)
                for (slot,) in admin.execute(
                    "SELECT slot_name FROM pg_replication_slots WHERE database = %s", (self.name,)
                ).fetchall():
                    admin.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            else:
                admin.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


# ------------------------------------------------------------------------------------- the measurement


@dataclass
class Sampler:
    """Polls the target's ``max(id)`` and records when each new value was first seen."""

    query: str
    connect: Callable[[], Any]
    seen: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = None
        last = -1
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = self.connect()
                cur = conn.cursor()
                cur.execute(self.query)
                row = cur.fetchone()
                conn.commit()  # a fresh snapshot for the next read
                value = int(row[0]) if row and row[0] is not None else 0
                if value > last:
                    last = value
                    self.seen.append((time.time(), value))
            except Exception:  # noqa: BLE001 - the target table does not exist yet
                if conn is not None:
                    try:
                        conn.rollback()
                    except Exception:  # noqa: BLE001
                        conn = None
            time.sleep(0.003)
        if conn is not None:
            conn.close()

    def latest(self) -> int:
        return self.seen[-1][1] if self.seen else 0

    def wait_for(self, value: int, timeout: float) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.latest() >= value:
                return True
            time.sleep(0.01)
        return False

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def lags(self, commits: list[tuple[float, int]]) -> list[float]:
        """Seconds from each commit to the first sample showing its last row (commits still unseen are left out)."""
        out, j = [], 0
        seen = self.seen
        for t_commit, last_id in commits:
            while j < len(seen) and seen[j][1] < last_id:
                j += 1
            if j == len(seen):
                break
            out.append(max(0.0, seen[j][0] - t_commit))
        return out


class TopicSampler(Sampler):
    """Records, per change message of the captured table, when the publisher sent it (the
    record's CreateTime) and its row id: splits the lag into capture+publish and Kafka+apply."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__("", lambda: None)
        self.bootstrap, self.topic = bootstrap, topic

    def _run(self) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer(
            {"bootstrap.servers": self.bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
             "auto.offset.reset": "earliest", "enable.auto.commit": False, "fetch.wait.max.ms": 10}
        )
        consumer.subscribe([self.topic])
        last = -1
        while not self._stop.is_set():
            for msg in consumer.consume(1000, 0.05):
                if msg.error() or msg.value() is None:
                    continue
                after = json.loads(msg.value()).get("after") or {}
                value = after.get("id")
                if isinstance(value, int) and value > last:
                    last = value
                    self.seen.append((msg.timestamp()[1] / 1000, value))
        consumer.close()


def write(source: Engine, table: str, start_id: int, rate: int, seconds: float) -> tuple[list[tuple[float, int]], int]:
    """Commit ``rate × TICK_S`` rows every tick for ``seconds`` (no pacing when ``rate`` is 0: batches
    of 50 as fast as the source takes them). Returns (commit time, last id) per transaction and the next id."""
    conn = source.connect()
    cur = conn.cursor()
    per_txn = max(1, round(rate * TICK_S)) if rate else 50
    commits: list[tuple[float, int]] = []
    next_id = start_id
    t0 = time.time()
    tick = 0
    while True:
        now = time.time()
        if now - t0 >= seconds:
            break
        if rate:
            due = t0 + tick * TICK_S
            if due > now:
                time.sleep(due - now)
            tick += 1
        last = next_id + per_txn - 1
        source.insert(cur, table, next_id, last)
        conn.commit()
        commits.append((time.time(), last))
        next_id = last + 1
    conn.close()
    return commits, next_id


def _proc_figures(pid: int) -> tuple[float, float]:
    """CPU seconds and peak RSS (MB) of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(parts[11]) + int(parts[12])) / ticks
    peak = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cpu, peak


def _figures(procs: list[subprocess.Popen[bytes]]) -> tuple[float, float]:
    """CPU seconds (summed) and peak RSS (summed, MB) of the cdc processes."""
    figures = [_proc_figures(p.pid) for p in procs]
    return sum(f[0] for f in figures), sum(f[1] for f in figures)


def run_case(direction: str, env: dict[str, str], client: str) -> dict[str, Any]:
    tag = f"e2e_{uuid.uuid4().hex[:8]}"
    mysql_url, pg_url, bootstrap = env["CDC_MYSQL_URL"], env["CDC_PG_URL"], env["CDC_KAFKA_BOOTSTRAP"]
    if direction == "mysql-pg":
        source: Engine = MariaDb(mysql_url, tag)
        target: Engine = Postgres(pg_url, tag, own_database=False)
        source_yaml = f"  type: mysql\n  url: {mysql_url}\n  server_id: {5000 + os.getpid() % 1000}\n"
        target_url = pg_url
        captured = f"{tag}.items"
    else:
        source = Postgres(pg_url, tag, own_database=True)
        target = MariaDb(mysql_url, tag)
        source_yaml = f"  type: postgres\n  url: {source.db_url}\n"  # type: ignore[attr-defined]
        target_url = mysql_url.rstrip("/") + f"/{tag}"  # the sink keeps its positions in this database
        target.create_database()
        captured = f"{tag}.items"
    work = Path(tempfile.mkdtemp(prefix="cdc-bench-e2e-"))
    config = work / "cdc.yaml"
    config.write_text(
        f"name: {tag}\n"
        f"source:\n{source_yaml}  tables: ['{captured}']\n  heartbeat_interval_ms: 1000\n"
        f"bus:\n  type: kafka\n  bootstrap_servers: {bootstrap}\n  topic_prefix: {tag}\n  client: {client}\n"
        f"sinks:\n  - name: replica\n    url: {target_url}\n"
        f"metrics:\n  listen: 127.0.0.1:0\n"
    )
    source.create_source()
    log = (work / "cdc.log").open("wb")
    parts = [["--only", "source"], ["--only", "sink:replica"]] if SPLIT else [[]]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cdc", "run", "-c", str(config), *part], cwd=ROOT, stdout=log, stderr=log, env=env
        )
        for part in parts
    ]
    sampler = Sampler(target.max_id_sql(), target.connect)
    sampler.start()
    published = TopicSampler(bootstrap, f"{tag}.{captured}")
    published.start()
    result: dict[str, Any] = {
        "case": f"{direction} {client}{' split' if SPLIT else ''}",
        "rate_rows_s": RATE,
    }
    try:
        # warm-up: the first row reaches the target (snapshot done, tables created, consumer assigned)
        _, next_id = write(source, "items", 1, 100, 0.05)
        if not sampler.wait_for(next_id - 1, 120):
            raise RuntimeError(f"the pipeline did not deliver its first row within 120 s; log: {work / 'cdc.log'}")
        cpu0, _ = _figures(procs)
        commits, next_id = write(source, "items", next_id, RATE, SECONDS)
        caught_up = sampler.wait_for(next_id - 1, 120)
        lags = sampler.lags(commits)
        sent = published.lags(commits)
        if os.environ.get("E2E_DUMP"):  # per-transaction figures, to see when lag spikes
            Path(os.environ["E2E_DUMP"]).write_text(
                json.dumps({"commits": commits, "applied": lags, "published": sent, "seen": sampler.seen})
            )
        result.update(
            publish_lag_p50_ms=round(percentile(sent, 50) * 1000, 1),
            publish_lag_p99_ms=round(percentile(sent, 99) * 1000, 1),
        )
        achieved = (commits[-1][1] - commits[0][1]) / (commits[-1][0] - commits[0][0]) if len(commits) > 1 else 0
        result.update(
            rows=commits[-1][1] - commits[0][1] + 1,
            achieved_rows_s=round(achieved),
            lag_p50_ms=round(percentile(lags, 50) * 1000, 1),
            lag_p99_ms=round(percentile(lags, 99) * 1000, 1),
            lag_max_ms=round(max(lags) * 1000, 1) if lags else None,
            caught_up=caught_up,
        )
        result["p99_target_met"] = bool(caught_up and result["lag_p99_ms"] <= 250)
        cpu1, _ = _figures(procs)
        result["cdc_cpu_s_per_1k_rows"] = round((cpu1 - cpu0) / max(1, result["rows"]) * 1000, 3)
        # the ramp
        sustained = 0
        for rate in RAMP:
            commits, next_id = write(source, "items", next_id, rate, STEP_S)
            reached = (commits[-1][1] - commits[0][1]) / (commits[-1][0] - commits[0][0])
            ok = sampler.wait_for(next_id - 1, CATCH_UP_S)
            lags = sampler.lags(commits)
            p99 = percentile(lags, 99) if lags else float("inf")
            print(
                f"  {direction} step {rate:,} rows/s: writer reached {reached:,.0f}, p99 lag {p99 * 1000:,.0f} ms, "
                f"caught up within {CATCH_UP_S:.0f} s: {ok}",
                file=sys.stderr,
                flush=True,
            )
            if reached >= rate * 0.95 and ok and p99 <= SUSTAINED_P99_S:
                sustained = rate
            if not sampler.wait_for(next_id - 1, 120):
                raise RuntimeError(f"the pipeline did not catch up after the {rate} rows/s step")
            if not ok:
                break
        result["max_sustained_rows_s"] = sustained
        # the source's own write rate, same writer, no pacing, a table cdc does not capture
        t0 = time.time()
        commits, _ = write(source, "uncaptured", 1, 0, 5)
        result["source_write_rows_s"] = round(commits[-1][1] / (commits[-1][0] - t0))
        cpu, peak = _figures(procs)
        result.update(cdc_cpu_s=round(cpu, 1), cdc_peak_rss_mb=round(peak, 1))
    finally:
        sampler.stop()
        published.stop()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        result["cdc_exit"] = max(proc.returncode or 0 for proc in procs)
        for engine in (target, source):
            try:
                engine.drop()
            except Exception as exc:  # noqa: BLE001 - cleanup goes on
                print(f"cleanup of {engine.name}: {exc}", file=sys.stderr)
        _delete_topics(bootstrap, tag)
    return result


def _delete_topics(bootstrap: str, prefix: str) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="cdc-bench-cleanup")
    try:
        topics = [t for t in admin.list_topics() if t.startswith(prefix)]
        if topics:
            admin.delete_topics(topics)
    finally:
        admin.close()


def main() -> int:
    env = stack_env()
    directions = sys.argv[1:] or ["mysql-pg", "pg-mysql"]
    rows = []
    for direction in directions:
        for client in CLIENTS:
            print(
                f"e2e {direction} ({client}): {RATE:,} rows/s for {SECONDS:.0f} s, then ramp {RAMP}",
                file=sys.stderr,
                flush=True,
            )
            rows.append(run_case(direction, env, client))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    write_results("e2e", rows)
    print_table(
        rows,
        [
            "case",
            "rate_rows_s",
            "achieved_rows_s",
            "lag_p50_ms",
            "lag_p99_ms",
            "lag_max_ms",
            "publish_lag_p50_ms",
            "publish_lag_p99_ms",
            "p99_target_met",
            "max_sustained_rows_s",
            "source_write_rows_s",
            "cdc_cpu_s",
            "cdc_cpu_s_per_1k_rows",
            "cdc_peak_rss_mb",
        ],
    )
    met = {d: any(r.get("p99_target_met") for r in rows if r["case"].startswith(d)) for d in directions}
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
