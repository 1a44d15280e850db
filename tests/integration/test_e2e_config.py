"""End to end from config files, through the real command line (issue #7, point 8).

Each test writes a YAML config, starts ``cdc run -c FILE`` as a separate process, runs a
workload on the source (rows that exist before the start, so they arrive through the initial
snapshot; live inserts, updates and deletes; an added column; a table created while streaming),
waits until ``cdc verify`` reports the target equal to the source, stops the process with
SIGTERM (it must exit 0 within 10 s), changes more rows while it is down, starts it again and
verifies again: resuming neither loses nor repeats anything.
"""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path
from typing import Any

from tests.support.cdc_process import CdcRun, cdc, wait_for

MYSQL_TABLE = """
CREATE TABLE orders (
  id BIGINT PRIMARY KEY,
  customer VARCHAR(60) CHARACTER SET utf8mb4,
  note TEXT,
  amount DECIMAL(12,2),
  ratio DOUBLE,
  score FLOAT,
  qty SMALLINT UNSIGNED,
  big BIGINT UNSIGNED,
  flag TINYINT(1),
  placed DATETIME(6),
  touched TIMESTAMP(3) NULL,
  day DATE,
  at TIME(6),
  yr YEAR,
  status ENUM('new','paid','shipped'),
  tags SET('a','b','c'),
  bits BIT(8),
  payload BLOB,
  doc JSON
) CHARACTER SET utf8mb4
"""
MYSQL_COLUMNS = (
    "id, customer, note, amount, ratio, score, qty, big, flag, placed, touched, day, at, yr, status, tags, bits, "
    "payload, doc"
)


def _mysql_row(i: int, rnd: random.Random) -> tuple[Any, ...]:
    return (
        i,
        rnd.choice(["Ann", "Bob ☕", "Zoë 🚀", "李"]) + f" {i}",
        "x" * rnd.randint(0, 300),
        f"{rnd.randint(-10**9, 10**9) / 100:.2f}",
        rnd.random() * 1e6,
        float(rnd.randint(0, 1000)) / 8,
        rnd.randint(0, 65535),
        rnd.choice([0, 1, 2**64 - 1, rnd.randint(0, 2**63)]),
        rnd.randint(0, 1),
        f"20{rnd.randint(10, 30)}-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)} 12:34:56.{rnd.randint(0, 999999):06d}",
        None if i % 7 == 0 else f"2024-03-0{rnd.randint(1, 9)} 01:02:03.{rnd.randint(0, 999):03d}",
        f"19{rnd.randint(70, 99)}-12-31",
        rnd.choice(["-00:00:00.250000", "838:59:59.000000", "12:00:01.5"]),
        rnd.randint(1901, 2155),
        rnd.choice(["new", "paid", "shipped"]),
        rnd.choice(["", "a", "a,c", "a,b,c"]),
        bytes([rnd.randint(0, 255)]),
        bytes(rnd.randint(0, 255) for _ in range(rnd.randint(0, 40))),
        json.dumps({"k": i, "nested": {"v": [1, 2, rnd.randint(0, 9)]}, "s": "é"}),
    )


def _mysql_insert(cur: Any, rows: list[tuple[Any, ...]], extra: str = "") -> None:
    marks = ", ".join(["%s"] * len(rows[0]))
    cur.executemany(f"INSERT INTO orders ({MYSQL_COLUMNS}{extra}) VALUES ({marks})", rows)


def _write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _verify_equal(config: Path, run: CdcRun | None, timeout: float = 120) -> dict[str, Any]:
    """Poll ``cdc verify --json`` until it exits 0; return its report."""
    last: dict[str, Any] = {}

    def equal() -> bool:
        nonlocal last
        res = cdc("verify", "-c", str(config), "--json", timeout=120)
        assert res.returncode in (0, 1), f"cdc verify failed ({res.returncode}):\n{res.stderr}"
        last = json.loads(res.stdout)
        return res.returncode == 0

    try:
        wait_for(equal, timeout, "cdc verify to report the target equal to the source", run, every=1.0)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nlast verify report: {json.dumps(last, indent=1)[:4000]}") from None
    return last


def _mysql_workload_live(conn: Any, rnd: random.Random, start_id: int) -> None:
    with conn.cursor() as cur:
        _mysql_insert(cur, [_mysql_row(i, rnd) for i in range(start_id, start_id + 300)])
        cur.execute("UPDATE orders SET amount = amount + 1, status = 'paid', tags = '' WHERE id % 5 = 0")
        cur.execute("UPDATE orders SET id = id + 100000 WHERE id IN (3, 4)")  # primary-key change
        cur.execute("DELETE FROM orders WHERE id % 11 = 0")
        cur.execute("ALTER TABLE orders ADD COLUMN extra VARCHAR(20) DEFAULT 'dflt'")
        cur.execute("UPDATE orders SET extra = CONCAT('e', id) WHERE id % 3 = 0")
        cur.execute("CREATE TABLE customers (code VARCHAR(20) PRIMARY KEY, name VARCHAR(100)) CHARACTER SET utf8mb4")
        cur.executemany("INSERT INTO customers VALUES (%s, %s)", [("abc", "lower"), ("ABD", "upper"), ("Ab", "mixed")])


def _run_mysql_pipeline(tmp_path: Path, config_text: str, mysql_db: Any) -> None:
    rnd = random.Random(7)
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute(MYSQL_TABLE)
        _mysql_insert(cur, [_mysql_row(i, rnd) for i in range(1, 2001)])  # arrives through the snapshot
    config = _write_config(tmp_path / "cdc.yaml", config_text)
    check = cdc("check", "-c", str(config))
    assert check.returncode == 0, f"cdc check found problems:\n{check.stdout}{check.stderr}"

    run = CdcRun(config)
    try:
        _verify_equal(config, run)
        _mysql_workload_live(conn, rnd, 5000)
        report = _verify_equal(config, run)
        tables = {t["source"].split(".")[-1] for r in report["sinks"].values() for t in r["tables"]}
        assert tables >= {"orders", "customers"}
        started = time.monotonic()
        assert run.stop(signal.SIGTERM) == 0, run.stderr()
        assert time.monotonic() - started < 10.5, "SIGTERM took longer than 10 s"
    finally:
        if run.alive():
            run.kill9()
    with conn.cursor() as cur:  # while it is down
        cur.execute("UPDATE orders SET note = 'while down' WHERE id % 4 = 1")
        cur.execute("DELETE FROM orders WHERE id BETWEEN 100 AND 150")
        _mysql_insert(cur, [(*_mysql_row(i, rnd), "late") for i in range(9000, 9050)], ", extra")
    run = CdcRun(config, name="run2")
    try:
        _verify_equal(config, run)
        # one verify (not polled) right after a burst of writes: rows still in flight on the
        # first read are read again once the sink caught up, and are not differences
        with conn.cursor() as cur:
            _mysql_insert(cur, [(*_mysql_row(i, rnd), "burst") for i in range(20_000, 20_500)], ", extra")
            cur.execute("UPDATE orders SET note = 'burst' WHERE id < 1000")
        once = cdc("verify", "-c", str(config), timeout=300)
        assert once.returncode == 0, f"verify during a burst:\n{once.stdout}{once.stderr}"
        assert run.stop(signal.SIGTERM) == 0, run.stderr()
    finally:
        if run.alive():
            run.kill9()
    for out in (tmp_path / "run.err", tmp_path / "run2.err"):
        assert "Traceback" not in out.read_text(), out.read_text()


def test_mariadb_kafka_postgres(
    tmp_path: Path, mysql_db: Any, pg_db: Any, kafka_bootstrap: str, kafka_prefix: str
) -> None:
    _run_mysql_pipeline(
        tmp_path,
        f"""
name: {kafka_prefix}
source:
  type: mysql
  url: {mysql_db.server_url}
  server_id: {random.randint(10_000, 4_000_000)}
  tables: ["{mysql_db.name}.*"]
  snapshot_chunk_rows: 700
bus:
  type: kafka
  bootstrap_servers: {kafka_bootstrap}
  partitions: 2
sinks:
  - name: replica
    url: {pg_db.url}
metrics:
  listen: 127.0.0.1:0
""",
        mysql_db,
    )


def test_mariadb_direct_sqlite(tmp_path: Path, mysql_db: Any) -> None:
    _run_mysql_pipeline(
        tmp_path,
        f"""
name: direct_{mysql_db.name}
source:
  type: mysql
  url: {mysql_db.server_url}
  server_id: {random.randint(10_000, 4_000_000)}
  tables: ["{mysql_db.name}.*"]
  snapshot_chunk_rows: 700
bus:
  type: direct
sinks:
  - name: local
    url: sqlite:///{tmp_path / "replica.db"}
metrics:
  listen: 127.0.0.1:0
""",
        mysql_db,
    )


PG_TABLE = """
CREATE TABLE orders (
  id bigint PRIMARY KEY,
  customer varchar(60),
  note text,
  amount numeric(12,2),
  ratio double precision,
  score real,
  qty smallint,
  flag boolean,
  placed timestamp(6),
  touched timestamptz,
  day date,
  at time,
  uid uuid,
  doc jsonb,
  payload bytea,
  tags text[]
)
"""


def test_postgres_kafka_mariadb(
    tmp_path: Path, pg_db: Any, mysql_db: Any, kafka_bootstrap: str, kafka_prefix: str
) -> None:
    import uuid

    rnd = random.Random(11)

    def row(i: int) -> tuple[Any, ...]:
        return (
            i,
            rnd.choice(["Ann", "Zoë 🚀"]) + f" {i}",
            "y" * rnd.randint(0, 200),
            f"{rnd.randint(-10**9, 10**9) / 100:.2f}",
            rnd.random(),
            float(rnd.randint(0, 100)) / 4,
            rnd.randint(-32768, 32767),
            rnd.random() < 0.5,
            f"2021-0{rnd.randint(1, 9)}-15 10:11:12.{rnd.randint(0, 999999):06d}",
            f"2022-01-0{rnd.randint(1, 9)} 01:02:03.{rnd.randint(0, 999999):06d}+02",
            f"19{rnd.randint(70, 99)}-01-01",
            f"0{rnd.randint(0, 9)}:30:00.{rnd.randint(0, 999999):06d}",
            str(uuid.UUID(int=rnd.getrandbits(128))),
            json.dumps({"i": i, "a": [1, "two"]}),
            bytes(rnd.randint(0, 255) for _ in range(rnd.randint(0, 30))),
            ["a", "b c", None] if i % 2 else [],
        )

    cols = "id, customer, note, amount, ratio, score, qty, flag, placed, touched, day, at, uid, doc, payload, tags"
    marks = ", ".join(["%s"] * 16)
    with pg_db.connect() as conn:
        conn.execute(PG_TABLE)
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO orders ({cols}) VALUES ({marks})", [row(i) for i in range(1, 1501)])
        conn.commit()
    config = _write_config(
        tmp_path / "cdc.yaml",
        f"""
name: {kafka_prefix}
source:
  type: postgres
  url: {pg_db.url}
  tables: ["public.*"]
  slot: {kafka_prefix.lower().replace("-", "_").replace(".", "_")[:60]}
  snapshot_chunk_rows: 500
bus:
  type: kafka
  bootstrap_servers: {kafka_bootstrap}
sinks:
  - name: replica
    url: {mysql_db.url}
metrics:
  listen: 127.0.0.1:0
""",
    )
    check = cdc("check", "-c", str(config))
    assert check.returncode == 0, f"cdc check found problems:\n{check.stdout}{check.stderr}"
    run = CdcRun(config)
    try:
        _verify_equal(config, run)
        with pg_db.connect() as conn:
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO orders ({cols}) VALUES ({marks})", [row(i) for i in range(5000, 5300)])
                cur.execute("UPDATE orders SET amount = amount + 1, doc = '{\"u\": true}' WHERE id % 5 = 0")
                cur.execute("DELETE FROM orders WHERE id % 11 = 0")
                cur.execute("ALTER TABLE orders ADD COLUMN extra varchar(20) DEFAULT 'dflt'")
                cur.execute("UPDATE orders SET extra = 'e' || id WHERE id % 3 = 0")
            conn.commit()
        _verify_equal(config, run)
        assert run.stop(signal.SIGTERM) == 0, run.stderr()
    finally:
        if run.alive():
            run.kill9()
