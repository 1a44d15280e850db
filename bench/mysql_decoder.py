"""Benchmark: binlog row decoding, python-mysql-replication vs cdc's compiled decoder, same events.

N rows of an 8-column table (BIGINT, INT, VARCHAR(16), DECIMAL(12,2), DATETIME(6),
VARCHAR(255), INT, VARCHAR(120), as in bench/bus.py) are inserted into a scratch database of
the local stack's MariaDB in multi-row statements; the binlog is read back once with
BinLogStreamReader and its rows events kept undecoded. Then, on those same events, in one
process:

* ``library``: the library's own decoding (``RowsEvent.rows``): Python values, not yet
  Debezium's representation (what issue #4 measured at ~16k rows/s);
* ``library + to_wire``: the same plus ``cdc.values`` converters to Debezium's representation,
  the reference path that the source would otherwise run;
* ``cdc decoder``: :func:`connectors.mysql.decoder.raw_rows` plus the compiled decoder, straight
  to Debezium's representation (best of 3 passes; every pass decodes every event and keeps no
  row, as the source hands each batch on).

The two Debezium-representation outputs are compared row by row. Reported: rows/s of wall
time, rows per CPU-second (steadier on a shared machine), CPU seconds, and the speed-up in CPU
time over the library. The collector runs before each measurement. Target (issue #4): at least
4x the library.

Usage: python bench/mysql_decoder.py [N]     (N defaults to 100000; BENCH_MYSQL_DECODER_ROWS also works)
"""

from __future__ import annotations

import gc
import os
import sys
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

from _common import Meter, env, print_table, stack_env, write_results

TABLE = """CREATE TABLE orders (
  id BIGINT PRIMARY KEY, customer_id INT, status VARCHAR(16), amount DECIMAL(12,2), created_at DATETIME(6),
  note VARCHAR(255), flags INT, email VARCHAR(120)) CHARACTER SET utf8mb4"""


def _params(url: str) -> dict[str, Any]:
    p = urlsplit(url)
    return {"host": p.hostname or "127.0.0.1", "port": p.port or 3306, "user": unquote(p.username or "root"),
            "password": unquote(p.password or ""), "charset": "utf8mb4", "autocommit": True}


def _row(i: int) -> list[Any]:
    return [i, i % 9973, "shipped", f"{i % 100000}.{i % 100:02d}", f"2024-05-{1 + i % 28:02d} 12:34:56.{i:06d}"[:26],
            f"order note {i} " + "lorem ipsum dolor sit amet " * 3, i & 7, f"customer{i % 9973}@example.com"]


def _write(cur: Any, n: int) -> None:
    """N rows in multi-row INSERTs of 1000 (one transaction each: autocommit)."""
    batch = 1000
    placeholders = "(%s,%s,%s,%s,%s,%s,%s,%s)"
    for start in range(0, n, batch):
        rows = range(start, min(n, start + batch))
        cur.execute("INSERT INTO orders VALUES " + ",".join([placeholders] * len(rows)),  # noqa: S608 - placeholders only
                    [v for i in rows for v in _row(i)])


def _capture(params: dict[str, Any], db: str, log_file: str, log_pos: int) -> list[Any]:
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.row_event import TableMapEvent, WriteRowsEvent

    reader = BinLogStreamReader(
        connection_settings={k: params[k] for k in ("host", "port", "user", "password")},
        server_id=60_000 + os.getpid() % 10_000, only_events=[TableMapEvent, WriteRowsEvent], only_schemas=[db],
        log_file=log_file, log_pos=log_pos, resume_stream=True, blocking=False, enable_logging=False)
    try:
        return list(reader)
    finally:
        reader.close()


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else int(env("BENCH_MYSQL_DECODER_ROWS", "100000"))
    import pymysql
    from pymysqlreplication.row_event import TableMapEvent

    from cdc.values import converter_to_wire
    from connectors.mysql.decoder import compile_decoder, raw_rows

    params = _params(stack_env()["CDC_MYSQL_URL"])
    db = f"cdc_bench_{uuid.uuid4().hex[:10]}"
    conn = pymysql.connect(**params)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
            cur.execute(f"USE `{db}`")
            cur.execute(TABLE)
            cur.execute("SHOW MASTER STATUS")
            log_file, log_pos = cur.fetchone()[:2]
            _write(cur, n)
        events = _capture(params, db, log_file, log_pos)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        conn.close()
    rows_events = [e for e in events if not isinstance(e, TableMapEvent)]
    print(f"captured {len(rows_events)} rows events ({n} rows, {n / max(1, len(rows_events)):.0f} rows/event)")

    def ours(keep: list[Any] | None) -> int:
        count = 0
        decoder = None
        for event in events:
            if isinstance(event, TableMapEvent):
                decoder = compile_decoder(event)
            else:
                assert decoder is not None
                rows = decoder.decode(raw_rows(event))
                count += len(rows)
                if keep is not None:
                    keep.extend(rows)
        return count

    runs = []
    for _ in range(3):
        gc.collect()
        with Meter() as m:
            count = ours(None)
        assert count == n, (count, n)
        runs.append(m)
    best = min(runs, key=lambda m: m.cpu_s)

    gc.collect()
    with Meter() as lib:
        library = [row for e in rows_events for row in e.rows]  # the library's lazy decoding, once per event
    decoder = compile_decoder(next(e for e in events if isinstance(e, TableMapEvent)))
    convs = [(c.name, converter_to_wire(c.wire)) for c in decoder.columns]
    gc.collect()
    with Meter() as conv:
        converted = [{k: None if r["values"][k] is None else f(r["values"][k]) for k, f in convs} for r in library]
    decoded: list[Any] = []
    ours(decoded)

    assert len(decoded) == len(converted) == n, (len(decoded), len(converted), n)
    mismatches = sum(1 for (_before, after), ref in zip(decoded, converted, strict=True) if after != ref)
    if mismatches:
        print(f"bench: {mismatches} rows differ between the decoders", file=sys.stderr)
        return 1

    def result(case: str, wall_s: float, cpu_s: float) -> dict[str, Any]:
        return {"case": case, "rows": n, "rows_per_s": n / wall_s, "rows_per_cpu_s": n / cpu_s, "cpu_s": cpu_s,
                "speedup": lib.cpu_s / cpu_s}

    results = [
        result("library", lib.wall_s, lib.cpu_s),
        result("library + to_wire", lib.wall_s + conv.wall_s, lib.cpu_s + conv.cpu_s),
        result("cdc decoder", best.wall_s, best.cpu_s),
    ]
    print_table(results, ["case", "rows", "rows_per_s", "rows_per_cpu_s", "cpu_s", "speedup"])
    path = write_results("mysql_decoder", results)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
