"""Benchmark: rows/s the SQL sink applies into PostgreSQL and MariaDB, next to each driver on its own.

Each case runs in its own process (so its CPU seconds and peak RSS are its own) against the local
stack, in a database of its own that is dropped afterwards. The table has 8 columns (bigint key,
int, varchar(16), decimal(12,2), datetime(6), varchar(255), int, varchar(120)), as in
``bench/bus.py``; events carry Debezium's representation, as the sink receives them from the bus.

* ``upsert-heavy``: N change events in batches of B: each batch inserts B/2 new rows and updates
  the B/2 rows the previous batch inserted (the first batch only inserts).
* ``delete-heavy``: the table is first filled with N rows (not timed); then N events in batches
  of B, each with 4/5 deletes of existing rows and 1/5 inserts of new ones.
* ``native``: the driver alone writing the same N rows into an empty table in batches of B, one
  transaction per batch: psycopg ``COPY`` (PostgreSQL), PyMySQL ``executemany`` multi-row INSERT
  (MariaDB). The same rows as Python values, no cdc code in the loop.

Reported per case: rows/s (events applied per second of wall time, one target transaction per
batch including its position), CPU seconds of this process (the database server's are not
included) and peak RSS (which includes the pre-built events). The target of issue #6 is at least
40,000 rows/s into PostgreSQL.

Usage: python bench/sink.py [N [B]]     (defaults 200000 and 5000; BENCH_SINK_ROWS / BENCH_SINK_BATCH)
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import Meter, env, print_table, run_case, stack_env, write_results

HERE = Path(__file__).resolve()
TARGETS = ["postgresql", "mariadb"]
EPOCH = datetime(1970, 1, 1)
BASE_US = 1_700_000_000_000_000


def _schema() -> Any:
    from cdc.events import Column, Logical, TableId, TableSchema, Wire
    from cdc.values import DecimalHandling, decimal_wire

    return TableSchema(TableId("bench", "orders"), (
        Column("id", "BIGINT", Logical.INT64, Wire("int64", optional=False), nullable=False, position=1),
        Column("customer_id", "INT", Logical.INT32, Wire("int32"), position=2),
        Column("status", "VARCHAR(16)", Logical.STRING, Wire("string"), length=16, position=3),
        Column("amount", "DECIMAL(12,2)", Logical.DECIMAL, decimal_wire(12, 2, DecimalHandling.PRECISE),
               precision=12, scale=2, position=4),
        Column("created_at", "DATETIME(6)", Logical.TIMESTAMP, Wire("int64", "io.debezium.time.MicroTimestamp", 1),
               precision=6, position=5),
        Column("note", "VARCHAR(255)", Logical.STRING, Wire("string"), length=255, position=6),
        Column("flags", "INT", Logical.INT32, Wire("int32"), position=7),
        Column("email", "VARCHAR(120)", Logical.STRING, Wire("string"), length=120, position=8),
    ), ("id",))


SOURCE = {"version": "cdc", "connector": "mysql", "name": "bench", "db": "bench", "table": "orders"}


def _python_row(i: int, version: int = 0) -> tuple[Any, ...]:
    """Row ``i`` as Python values (the native cases write these)."""
    return (i, i % 9973, "shipped" if version else "new", Decimal(i % 100_000) / 100 + version,
            EPOCH + timedelta(microseconds=BASE_US + i), f"order note {i} v{version} " + "lorem ipsum dolor sit " * 3,
            (i + version) & 7, f"customer{i % 9973}@example.com")


def _images(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows in Debezium's representation (what the sink receives), built with cdc.values."""
    from cdc.values import converter_to_wire

    schema = _schema()
    names = schema.column_names
    convs = [converter_to_wire(c.wire) for c in schema.columns]
    return [{n: conv(v) for n, conv, v in zip(names, convs, r, strict=True)} for r in rows]


def _events(workload: str, n: int, batch: int) -> list[list[Any]]:
    from cdc.events import ChangeEvent, Op

    table = _schema().table

    def change(op: Op, image: dict[str, Any], before: dict[str, Any] | None = None) -> ChangeEvent:
        return ChangeEvent(op, table, {"id": image["id"]}, before, image if op is not Op.DELETE else None, SOURCE, 0)

    batches: list[list[Any]] = []
    if workload == "upsert-heavy":
        half = batch // 2
        next_id = 0
        produced = 0
        previous: list[int] = []
        while produced < n:
            size = min(batch, n - produced)
            if not previous:
                ids = list(range(next_id, next_id + size))
                items = [change(Op.CREATE, img) for img in _images([_python_row(i) for i in ids])]
                next_id += size
                previous = ids[-half:]
            else:
                new = list(range(next_id, next_id + min(half, size)))
                upd = previous[: size - len(new)]
                inserts = [change(Op.CREATE, img) for img in _images([_python_row(i) for i in new])]
                updates = [change(Op.UPDATE, img) for img in _images([_python_row(i, 1) for i in upd])]
                items = [e for pair in zip(inserts, updates, strict=False) for e in pair]
                items += inserts[len(updates):] + updates[len(inserts):]
                next_id += len(new)
                previous = new
            batches.append(items)
            produced += len(items)
        return batches
    deletes_per_batch = batch * 4 // 5
    next_delete, next_insert, produced = 0, n, 0
    while produced < n:
        size = min(batch, n - produced)
        dels = min(deletes_per_batch, size)
        items = [change(Op.DELETE, {"id": i}, {"id": i}) for i in range(next_delete, next_delete + dels)]
        ins = size - dels
        items += [change(Op.CREATE, img) for img in _images([_python_row(i) for i in range(next_insert,
                                                                                              next_insert + ins)])]
        next_delete += dels
        next_insert += ins
        batches.append(items)
        produced += size
    return batches


# ---------------------------------------------------------------------------------------------
# Databases of their own
# ---------------------------------------------------------------------------------------------


def _admin_url(target: str) -> str:
    return stack_env()["CDC_PG_URL" if target == "postgresql" else "CDC_MYSQL_URL"]


def _with_db(url: str, name: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url)._replace(path="/" + name).geturl()


def _create_db(target: str, name: str) -> str:
    url = _admin_url(target)
    if target == "postgresql":
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    else:
        conn = _mysql_connect(url, "")
        conn.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        conn.close()
    return _with_db(url, name)


def _drop_db(target: str, name: str) -> None:
    url = _admin_url(target)
    if target == "postgresql":
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        conn = _mysql_connect(url, "")
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def _mysql_connect(url: str, database: str | None = None) -> Any:
    from urllib.parse import unquote, urlsplit

    import pymysql

    p = urlsplit(url)
    db = database if database is not None else p.path.lstrip("/")
    return pymysql.connect(host=p.hostname or "127.0.0.1", port=p.port or 3306, user=unquote(p.username or "root"),
                           password=unquote(p.password or ""), database=db or None, charset="utf8mb4",
                           autocommit=False)


def _sink(url: str) -> Any:
    from cdc.config import SinkConfig
    from cdc.events import SchemaChange
    from connectors.sql.sink import SqlSink

    sink = SqlSink(SinkConfig(name="bench", url=url, dead_letter_topic="dlq"), pipeline="bench")
    sink.open()
    sink.apply_schema(SchemaChange("CREATE", _schema(), None, SOURCE, 0))
    return sink


def _count(sink: Any) -> int:
    import sqlalchemy as sa

    t = sink.target_table(_schema().table)
    with sink.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() or 0)


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------


def case_sink(target: str, workload: str, n: int, batch: int) -> dict[str, Any]:
    from cdc.positions import MySqlPosition, SourceOffset

    name = f"cdc_bench_{uuid.uuid4().hex[:10]}"
    url = _create_db(target, name)
    try:
        sink = _sink(url)
        from cdc.events import ChangeEvent, Op

        prefilled = 0
        if workload == "delete-heavy":  # fill the table first (not timed)
            table = _schema().table
            for start in range(0, n, batch):
                images = _images([_python_row(i) for i in range(start, min(n, start + batch))])
                sink.write_batch("bench", [ChangeEvent(Op.READ, table, {"id": im["id"]}, None, im, SOURCE, 0)
                                           for im in images])
            prefilled = n
        batches = _events(workload, n, batch)
        events = sum(len(b) for b in batches)
        ops = [e.op for b in batches for e in b]
        expected = prefilled + ops.count(Op.CREATE) - ops.count(Op.DELETE)
        with Meter() as m:
            for i, items in enumerate(batches):
                sink.write_batch("bench", items, offset=SourceOffset(MySqlPosition("bench-bin.000001", 4 + i)))
        rows_left = _count(sink)
        sink.close()
    finally:
        _drop_db(target, name)
    if rows_left != expected:
        raise AssertionError(f"{target} {workload}: {rows_left} rows in the table, expected {expected}")
    return {"rows_per_s": events / m.wall_s, "cpu_s": m.cpu_s, "peak_rss_mb": m.peak_rss_mb, "wall_s": m.wall_s,
            "rows": events, "rows_in_table": rows_left, "batches": len(batches)}


def case_native(target: str, n: int, batch: int) -> dict[str, Any]:
    name = f"cdc_bench_{uuid.uuid4().hex[:10]}"
    url = _create_db(target, name)
    try:
        sink = _sink(url)  # the same table definition as the sink's
        table = sink.target_table(_schema().table)
        sink.close()
        rows = [_python_row(i) for i in range(n)]
        columns = ", ".join(_schema().column_names)
        if target == "postgresql":
            import psycopg

            with psycopg.connect(url) as conn, Meter() as m:
                cur = conn.cursor()
                for start in range(0, n, batch):
                    with cur.copy(f'COPY "{table.schema}"."{table.name}" ({columns}) FROM STDIN') as copy:
                        for r in rows[start:start + batch]:
                            copy.write_row(r)
                    conn.commit()
        else:
            conn = _mysql_connect(url)
            marks = ", ".join(["%s"] * 8)
            insert = f"INSERT INTO `{table.name}` ({columns}) VALUES ({marks})"  # noqa: S608 - our own table
            with Meter() as m:
                cur = conn.cursor()
                for start in range(0, n, batch):
                    cur.executemany(insert, rows[start:start + batch])
                    conn.commit()
            conn.close()
    finally:
        _drop_db(target, name)
    return {"rows_per_s": n / m.wall_s, "cpu_s": m.cpu_s, "peak_rss_mb": m.peak_rss_mb, "wall_s": m.wall_s,
            "rows": n, "batches": (n + batch - 1) // batch}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--case":
        kind, target, workload, n, batch = sys.argv[2:7]
        if kind == "sink":
            out = case_sink(target, workload, int(n), int(batch))
        else:
            out = case_native(target, int(n), int(batch))
        print(json.dumps(out))
        return 0
    n = int(sys.argv[1]) if len(sys.argv) > 1 else int(env("BENCH_SINK_ROWS", "200000"))
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else int(env("BENCH_SINK_BATCH", "5000"))
    rows: list[dict[str, Any]] = []
    for target in TARGETS:
        for workload in ("upsert-heavy", "delete-heavy"):
            out = run_case(HERE, "--case", "sink", target, workload, str(n), str(batch))
            rows.append({"case": f"sink {workload}", "target": target, "batch": batch, **out})
        out = run_case(HERE, "--case", "native", target, "insert", str(n), str(batch))
        reference = "psycopg COPY" if target == "postgresql" else "PyMySQL executemany"
        rows.append({"case": f"native insert ({reference})", "target": target, "batch": batch, **out})
        time.sleep(1)
    print_table(rows, ["case", "target", "rows", "batch", "rows_per_s", "cpu_s", "peak_rss_mb", "wall_s"])
    pg = [r["rows_per_s"] for r in rows if r["target"] == "postgresql" and r["case"].startswith("sink")]
    worst = min(pg)
    print(f"target >= 40,000 rows/s into PostgreSQL: slowest sink case {worst:,.0f} "
          f"{'MET' if worst >= 40_000 else 'NOT MET'}")
    print(f"results: {write_results('sink', rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
