"""`make demo`: a live MariaDB → Kafka → PostgreSQL pipeline on a generated workload.

Steps (each printed as it happens):

1. create the shop database on the local MariaDB with 20,000 orders, and an empty
   PostgreSQL database for the replica;
2. write `.demo/cdc.yaml` and start `cdc run` in the background (log: `.demo/cdc.log`);
3. show the snapshot arriving, then run a workload of inserts, updates and deletes for
   DEMO_SECONDS (default 30) while printing rows/s and the lag that cdc's metrics report;
4. wait for the replica to catch up, then run `cdc verify`; the demo's exit code is verify's.

The pipeline keeps running afterwards so its metrics can be looked at; `make demo-stop`
stops it (SIGTERM: it records its position and exits).

Environment: CDC_MYSQL_URL, CDC_PG_URL, CDC_KAFKA_BOOTSTRAP (from `make stack-env`).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import urlopen

import psycopg
import pymysql
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".demo"
SECONDS = float(os.environ.get("DEMO_SECONDS", "30"))
RATE = int(os.environ.get("DEMO_ROWS_PER_S", "1000"))
SEED_ROWS = 20_000
PRODUCTS = ["coffee ☕", "tea 🍵", "cake 🍰", "bagel 🥯", "juice 🧃", "soup 🍲"]


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


def mysql_connect(url: str, database: str | None = None) -> pymysql.connections.Connection:  # type: ignore[name-defined]
    u = urlsplit(url)
    return pymysql.connect(
        host=u.hostname or "127.0.0.1",
        port=u.port or 3306,
        user=unquote(u.username or "root"),
        password=unquote(u.password or ""),
        database=database,
        autocommit=True,
        charset="utf8mb4",
    )


def with_database(url: str, database: str) -> str:
    u = urlsplit(url)
    return u._replace(path="/" + database).geturl()


def free_port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])


def seed(mysql_url: str) -> None:
    conn = mysql_connect(mysql_url)
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS shop")
        cur.execute("CREATE DATABASE shop CHARACTER SET utf8mb4")
        cur.execute("USE shop")
        cur.execute(
            "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(80) NOT NULL, email VARCHAR(120), "
            "created TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))"
        )
        cur.execute(
            "CREATE TABLE orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, customer_id INT NOT NULL, "
            "product VARCHAR(40) NOT NULL, qty SMALLINT UNSIGNED NOT NULL, price DECIMAL(10,2) NOT NULL, "
            "status ENUM('new','paid','shipped','cancelled') NOT NULL DEFAULT 'new', "
            "placed DATETIME(6) NOT NULL, note JSON NULL)"
        )
        rnd = random.Random(1)
        cur.executemany(
            "INSERT INTO customers (id, name, email) VALUES (%s, %s, %s)",
            [(i, f"customer {i}", f"c{i}@example.com") for i in range(1, 1001)],
        )
        for start in range(0, SEED_ROWS, 5000):
            cur.executemany(
                "INSERT INTO orders (customer_id, product, qty, price, placed, note) VALUES (%s,%s,%s,%s,NOW(6),%s)",
                [
                    (rnd.randint(1, 1000), rnd.choice(PRODUCTS), rnd.randint(1, 9), rnd.randint(100, 9999) / 100, None)
                    for _ in range(start, min(start + 5000, SEED_ROWS))
                ],
            )
    conn.close()


def fresh_pg_database(pg_url: str, name: str) -> str:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(pg_url, name)


def metrics(port: int) -> dict[str, float]:
    """Sum of each metric family over its labels (enough for a progress line)."""
    out: dict[str, float] = {}
    try:
        with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return out


def status_line(port: int, written: int, started: float) -> str:
    m = metrics(port)
    elapsed = max(time.monotonic() - started, 1e-6)
    return (
        f"written {written:>7,} ({written / elapsed:,.0f}/s) | captured {int(m.get('cdc_source_events_total', 0)):>7,}"
        f" | applied {int(m.get('cdc_sink_applied_total', 0)):>7,} | lag {m.get('cdc_sink_lag_seconds', 0.0):.2f} s"
        f" / {int(m.get('cdc_sink_lag_events', 0))} events"
    )


def workload(mysql_url: str, port: int, seconds: float) -> int:
    conn = mysql_connect(mysql_url, "shop")
    rnd = random.Random(2)
    written = 0
    started = time.monotonic()
    next_print = started
    with conn.cursor() as cur:
        while time.monotonic() - started < seconds:
            tick = time.monotonic()
            n = max(1, RATE // 10)
            cur.execute("BEGIN")
            cur.executemany(
                "INSERT INTO orders (customer_id, product, qty, price, placed) VALUES (%s,%s,%s,%s,NOW(6))",
                [(rnd.randint(1, 1000), rnd.choice(PRODUCTS), rnd.randint(1, 9), rnd.randint(100, 9999) / 100)
                 for _ in range(n // 2)],
            )
            cur.execute(
                "UPDATE orders SET status = 'paid', note = JSON_OBJECT('paid_at', NOW(6)) "
                "WHERE id IN (SELECT id FROM (SELECT id FROM orders ORDER BY RAND() LIMIT %s) AS t)",
                (n // 3,),
            )
            cur.execute("DELETE FROM orders WHERE status = 'paid' ORDER BY RAND() LIMIT %s", (n // 10,))
            cur.execute("COMMIT")
            written += n // 2 + n // 3 + n // 10
            if time.monotonic() >= next_print:
                print("  " + status_line(port, written, started), flush=True)
                next_print += 2
            time.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
    conn.close()
    return written


def main() -> int:
    mysql_url = os.environ["CDC_MYSQL_URL"]
    pg_url = os.environ["CDC_PG_URL"]
    bootstrap = os.environ["CDC_KAFKA_BOOTSTRAP"]
    WORK.mkdir(exist_ok=True)
    stop_previous()
    say(f"1/4 seeding MariaDB database shop with {SEED_ROWS:,} orders and 1,000 customers")
    seed(mysql_url)
    replica = fresh_pg_database(pg_url, "shop_replica")
    port = free_port(9108)
    name = f"demo_{int(time.time())}"  # a fresh pipeline each run: no positions from an earlier demo
    config = WORK / "cdc.yaml"
    config.write_text(
        f"""# written by `make demo`
name: {name}
source:
  type: mysql
  url: {mysql_url}
  server_id: {random.randint(10_000, 4_000_000)}
  tables: ["shop.*"]
bus:
  type: kafka
  bootstrap_servers: {bootstrap}
sinks:
  - name: replica
    url: {replica}
metrics:
  listen: 127.0.0.1:{port}
"""
    )
    cdc = [str(ROOT / ".venv" / "bin" / "cdc")]
    say(f"2/4 checking and starting the pipeline: cdc run -c {config.relative_to(ROOT)} (log: .demo/cdc.log)")
    check = subprocess.run([*cdc, "check", "-c", str(config)], check=False)
    if check.returncode != 0:
        return check.returncode
    log = (WORK / "cdc.log").open("ab")
    proc = subprocess.Popen([*cdc, "run", "-c", str(config)], stdout=log, stderr=log, start_new_session=True)
    (WORK / "cdc.pid").write_text(str(proc.pid))
    say("3/4 initial snapshot, then a live workload "
        f"({RATE:,} row changes/s for {SECONDS:.0f} s) while cdc replicates")
    started = time.monotonic()
    deadline = started + 300
    while True:
        m = metrics(port)
        if proc.poll() is not None:
            say(f"cdc run exited with {proc.returncode}; see .demo/cdc.log")
            return 2
        applied = m.get("cdc_sink_applied_total", 0)
        print(f"  snapshot: captured {int(m.get('cdc_snapshot_rows_total', 0)):>6,} rows, applied {int(applied):>6,}",
              flush=True)
        if applied >= SEED_ROWS + 1000 or time.monotonic() > deadline:
            break
        time.sleep(1)
    written = workload(mysql_url, port, SECONDS)
    say(f"workload done: {written:,} row changes; waiting for the replica to catch up")
    catch_up = time.monotonic() + 120
    while time.monotonic() < catch_up:
        m = metrics(port)
        if m.get("cdc_sink_lag_events", 1) == 0 and m.get("cdc_source_lag_seconds", 0) < 5:
            break
        time.sleep(0.5)
    print("  " + status_line(port, written, started), flush=True)
    say("4/4 cdc verify: comparing source and replica table by table")
    verify = subprocess.run([*cdc, "verify", "-c", str(config)], check=False)
    say(f"metrics: http://127.0.0.1:{port}/metrics (the pipeline keeps running; `make demo-stop` stops it)")
    say(f"status:  .venv/bin/cdc status -c {config.relative_to(ROOT)}")
    return verify.returncode


def stop_previous() -> None:
    pid_file = WORK / "cdc.pid"
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return
    if b"cdc" in cmdline and b"run" in cmdline:
        os.kill(pid, signal.SIGTERM)
        for _ in range(150):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
    pid_file.unlink(missing_ok=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "stop":
        stop_previous()
        sys.exit(0)
    sys.exit(main())
