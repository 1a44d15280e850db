"""``cdc verify`` against real servers: MariaDB and PostgreSQL sources; PostgreSQL, MariaDB and SQLite targets.

Each test builds a source table with many types, copies it into a fresh target with the real SQL
sink (MariaDB: the MySQL connector's own snapshot; PostgreSQL: the rows as the PostgreSQL
connector encodes them), checks that verify finds source and target equal, then changes the
target behind the pipeline's back and checks that exactly the changed keys are reported. The
command line is run for real for its exit codes and JSON.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cdc.config import Config
from cdc.events import ChangeEvent, Column, Logical, Op, SchemaChange, TableId, TableSchema, Wire
from cdc.values import (
    DecimalHandling,
    IntervalHandling,
    PgInterval,
    TimePrecision,
    array_wire,
    bool_wire,
    bytes_wire,
    date_wire,
    decimal_wire,
    float_wire,
    int_wire,
    interval_wire,
    json_wire,
    string_wire,
    time_wire,
    timestamp_wire,
    to_wire,
    uuid_wire,
    zoned_timestamp_wire,
)
from connectors.sql.config import sqlalchemy_url
from tests.support.cdc_process import cdc

TARGETS = ["postgresql", "mariadb", "sqlite"]


def _unique() -> str:
    return f"cdc_t_{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Target:
    kind: str
    url: str


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A fresh, empty target database of each kind (never the source's own database)."""
    kind = request.param
    if kind == "sqlite":
        yield Target(kind, f"sqlite:///{tmp_path / 'target.db'}")
        return
    import services

    name = _unique()
    if kind == "postgresql":
        import psycopg
        from psycopg import sql

        server = request.getfixturevalue("pg_url")
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield Target(kind, services.with_database(server, name))
        finally:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        return
    import pymysql

    server = request.getfixturevalue("mysql_url")
    conn = pymysql.connect(**services.mysql_params(server, database=""))
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield Target(kind, services.with_database(server, name))
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def make_config(source: dict[str, Any], sinks: dict[str, str]) -> Config:
    return Config.model_validate(
        {
            "name": "verify_test",
            "source": source,
            "bus": {"type": "direct"},
            "sinks": [{"name": name, "url": url} for name, url in sinks.items()],
        }
    )


def verify(config: Config, sink: str = "replica", chunk_rows: int = 250) -> dict[str, dict[str, Any]]:
    """verify_sink's report as JSON (what ``cdc verify --json`` prints per sink), by source table name."""
    from connectors.sql.verify import verify_sink

    report = verify_sink(config, config.sink(sink), chunk_rows=chunk_rows)
    data = json.loads(json.dumps(report.to_json()))
    assert data["equal"] == report.equal
    return {t["source"].split(".", 1)[1]: t for t in data["tables"]}


def keys(table: dict[str, Any], kind: str) -> list[Any]:
    entries = table["differences"][kind]["keys"]
    return sorted(e["key"]["id"] if kind == "different" else e["id"] for e in entries)


def changed_columns(table: dict[str, Any]) -> dict[Any, set[str]]:
    return {e["key"]["id"]: set(e["columns"]) for e in table["differences"]["different"]["keys"]}


def writer(config: Config, sink: str = "replica") -> Any:
    from connectors.sql.sink import SqlSink

    return SqlSink(config.sink(sink), pipeline=config.name)


def execute(url: str, *statements: Any) -> None:
    engine = sa.create_engine(sqlalchemy_url(url))
    try:
        with engine.begin() as conn:
            for stmt in statements:
                conn.execute(stmt)
    finally:
        engine.dispose()


def target_table(config: Config, source: TableId, *columns: str, sink: str = "replica") -> Any:
    schema, name = writer(config, sink).target_name(source)
    return sa.table(name, *[sa.column(c) for c in columns], schema=schema)


# --------------------------------------------------------------------------- MariaDB source

MYSQL_ORDERS = """
CREATE TABLE orders (
  id BIGINT PRIMARY KEY,
  customer VARCHAR(60),
  note TEXT,
  amount DECIMAL(12,2),
  ratio DOUBLE,
  score FLOAT,
  qty SMALLINT UNSIGNED,
  big BIGINT UNSIGNED,
  flag TINYINT(1),
  b1 BIT(1),
  bits BIT(8),
  placed DATETIME(6),
  touched TIMESTAMP(3) NULL,
  day DATE,
  at TIME(6),
  yr YEAR,
  status ENUM('new','paid','shipped'),
  tags SET('a','b','c'),
  code CHAR(5),
  fixed BINARY(4),
  payload BLOB,
  doc JSON,
  spot POINT NULL
) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci
"""
MYSQL_CUSTOMERS = (
    "CREATE TABLE customers (code VARCHAR(20) PRIMARY KEY, name VARCHAR(100)) "
    "CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
)
CUSTOMERS = [("abc", "lower"), ("ABD", "upper"), ("Ab", "mixed"), ("b", "x"), ("Z", "z"), ("é", "e"), ("Éa", "E")]


def mysql_rows(n: int, seed: int = 7) -> list[tuple[Any, ...]]:
    rnd = random.Random(seed)
    rows = []
    for i in range(1, n + 1):
        rows.append(
            (
                i,
                rnd.choice(["Ann", "Bob ☕", "Zoë 🚀", "李"]) + f" {i}",
                None if i == 7 else "" if i == 8 else "x" * rnd.randint(1, 50),
                f"{rnd.randint(-(10**9), 10**9) / 100:.2f}",
                rnd.random() * 1e6,
                rnd.randint(0, 10**6) / 64,
                rnd.randint(0, 65535),
                rnd.choice([0, 1, 2**64 - 1, rnd.randint(0, 2**63)]),
                rnd.randint(0, 1),
                rnd.randint(0, 1),
                rnd.randint(0, 255),
                f"20{rnd.randint(10, 30)}-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)} "
                f"12:34:56.{rnd.randint(0, 10**6 - 1):06d}",
                None if i % 9 == 0 else f"2024-03-0{rnd.randint(1, 9)} 01:02:03.{rnd.randint(0, 999):03d}",
                f"19{rnd.randint(70, 99)}-12-31",
                rnd.choice(["-00:00:00.250000", "838:59:59.000000", "12:00:01.5", "-100:00:00"]),
                rnd.randint(1901, 2155),
                rnd.choice(["new", "paid", "shipped"]),
                rnd.choice(["", "a", "a,c", "a,b,c"]),
                rnd.choice(["ab", "x", "", "abcde"]),
                bytes([rnd.randint(0, 255), 0]),
                bytes(rnd.randint(0, 255) for _ in range(rnd.randint(0, 40))),
                json.dumps({"k": i, "nested": {"v": [1, 2.50, rnd.randint(0, 9)]}, "s": "é"}),
                None if i % 4 else f"POINT({rnd.randint(-90, 90)} {rnd.randint(-90, 90)})",
            )
        )
    return rows


def build_mysql_source(db: Any, n: int = 1200) -> None:
    conn = db.connect()
    with conn.cursor() as cur:
        cur.execute(MYSQL_ORDERS)
        cur.execute(MYSQL_CUSTOMERS)
        marks = ", ".join(["%s"] * 22) + ", ST_GeomFromText(%s, 4326)"
        cur.executemany(f"INSERT INTO orders VALUES ({marks})", mysql_rows(n))
        cur.executemany("INSERT INTO customers VALUES (%s, %s)", CUSTOMERS)
    conn.close()


def copy_mysql(config: Config, sink: str = "replica", skip: tuple[str, ...] = ()) -> None:
    """Copy the captured tables into the sink's target through the MySQL snapshot and the real sink."""
    from connectors.mysql.schema import TypeModes
    from connectors.mysql.snapshot import Snapshot

    engine = sa.create_engine(sqlalchemy_url(config.source.url.get_secret_value()))
    out = writer(config, sink)
    try:
        source: Any = config.source
        snapshot = Snapshot(source, config.name, engine, TypeModes.from_config(source), None)
        for batch in snapshot.items(4242, 500):
            for item in batch:
                if isinstance(item, SchemaChange) and item.schema.table.table not in skip:
                    out.apply_schema(item)
            events = [e for e in batch if isinstance(e, ChangeEvent) and e.table.table not in skip]
            if events:
                out.write_batch(config.name, events)
    finally:
        out.close()
        engine.dispose()


def mysql_config(db: Any, target: Target, **source: Any) -> Config:
    return make_config(
        {"type": "mysql", "url": db.server_url, "server_id": 4242, "tables": [f"{db.name}.*"], **source},
        {"replica": target.url},
    )


def test_mariadb_source_equal_then_every_tampering_is_found(target: Target, mysql_db: Any) -> None:
    build_mysql_source(mysql_db)
    config = mysql_config(mysql_db, target)
    copy_mysql(config)

    tables = verify(config)
    assert set(tables) == {"orders", "customers"}
    for name, table in tables.items():
        assert table["equal"], (name, json.dumps(table["differences"])[:2000])
        assert table["method"] == "ordered"  # string keys sorted by code point on both sides
    assert tables["orders"]["source_rows"] == tables["orders"]["target_rows"] == 1200
    assert tables["orders"]["chunks"] >= 1200 // 250
    assert tables["customers"]["target_rows"] == len(CUSTOMERS)

    orders = TableId(mysql_db.name, "orders")
    t = target_table(config, orders, "id", "amount", "note", "customer")
    customers = target_table(config, TableId(mysql_db.name, "customers"), "code", "name")
    execute(
        target.url,
        sa.delete(t).where(t.c.id == 3),
        sa.update(t).where(t.c.id == 5).values(amount="0.01"),
        sa.update(t).where(t.c.id == 7).values(note=""),  # NULL in the source
        sa.update(t).where(t.c.id == 8).values(note=None),  # '' in the source
        sa.update(t).where(t.c.id == 1100).values(customer="Bob ☕ 1100 "),  # a trailing space
        sa.insert(t).values(id=99_999),
        sa.update(customers).where(customers.c.code == "Ab").values(name="MIXED"),
    )
    tables = verify(config)
    table = tables["orders"]
    assert not table["equal"]
    assert keys(table, "missing_in_target") == [3]
    assert keys(table, "extra_in_target") == [99_999]
    assert keys(table, "different") == [5, 7, 8, 1100]
    assert changed_columns(table) == {5: {"amount"}, 7: {"note"}, 8: {"note"}, 1100: {"customer"}}
    counts = {k: table["differences"][k]["count"] for k in ("missing_in_target", "extra_in_target", "different")}
    assert counts == {"missing_in_target": 1, "extra_in_target": 1, "different": 4}
    assert (table["source_rows"], table["target_rows"]) == (1200, 1200)
    note = next(e for e in table["differences"]["different"]["keys"] if e["key"]["id"] == 7)
    assert note["columns"]["note"] == {"source": None, "target": ""}
    assert tables["customers"]["differences"]["different"]["keys"] == [
        {"key": {"code": "Ab"}, "columns": {"name": {"source": "mixed", "target": "MIXED"}}}
    ]


def test_keys_the_engines_sort_differently_fall_back_to_partitions(
    target: Target, mysql_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import connectors.sql.verify as sql_verify

    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE prices (sku DECIMAL(20,2) PRIMARY KEY, big BIGINT UNSIGNED, label VARCHAR(10))")
        cur.executemany(
            "INSERT INTO prices VALUES (%s, %s, %s)",
            [(f"{i * 7.25 - 900:.2f}", (2**64 - 1) - i * 10**15, f"p{i}") for i in range(400)],
        )
        cur.execute("CREATE TABLE big_keys (k BIGINT UNSIGNED PRIMARY KEY, v INT)")
        cur.executemany("INSERT INTO big_keys VALUES (%s, %s)", [(2**64 - 1 - i * 37, i) for i in range(300)])
    conn.close()
    config = mysql_config(mysql_db, target)
    copy_mysql(config)
    monkeypatch.setattr(sql_verify, "PARTITION_ROWS", 90)  # several passes
    tables = verify(config, chunk_rows=50)
    for table in tables.values():
        assert table["equal"], json.dumps(table)[:2000]
    # SQLite keeps decimals and BIGINT UNSIGNED as exact text, which does not sort like the numbers
    expected = "partitioned" if target.kind == "sqlite" else "ordered"
    assert {t["method"] for t in tables.values()} == {expected}

    # Were the order trusted, SQLite's text order would break it mid-stream: that is noticed, and the
    # table is compared partitioned all the same.
    monkeypatch.setattr(sql_verify, "ordered_comparable", lambda *_: True)
    tables = verify(config, chunk_rows=50)
    assert all(t["equal"] for t in tables.values())
    assert tables["prices"]["method"] == expected  # (big_keys' 20-digit texts happen to sort like numbers)

    prices = target_table(config, TableId(mysql_db.name, "prices"), "sku", "label")
    execute(target.url, sa.update(prices).where(prices.c.label == "p17").values(label="changed"))
    execute(target.url, sa.delete(prices).where(prices.c.label == "p300"))
    table = verify(config, chunk_rows=50)["prices"]
    different = [Decimal(e["key"]["sku"]) for e in table["differences"]["different"]["keys"]]
    assert different == [Decimal(17 * 725 - 90000) / 100]
    missing = [Decimal(e["sku"]) for e in table["differences"]["missing_in_target"]["keys"]]
    assert missing == [Decimal(300 * 725 - 90000) / 100]
    assert table["differences"]["extra_in_target"]["count"] == 0


def test_string_keys_in_code_point_order_whatever_the_collations(target: Target, mysql_db: Any) -> None:
    conn = mysql_db.connect()
    words = ["a", "a\t", "a b", "A", "b", "B", "é", "e", "ß", "ss", "😀", "z", "Z"]
    with conn.cursor() as cur:
        # a binary but space-padding collation sorts 'a\t' before 'a': the server's own order is not code point order
        cur.execute("CREATE TABLE words (w VARCHAR(10) COLLATE utf8mb4_bin PRIMARY KEY, n INT)")
        cur.executemany("INSERT INTO words VALUES (%s, %s)", [(w, i) for i, w in enumerate(words)])
    conn.close()
    config = mysql_config(mysql_db, target)
    copy_mysql(config)
    table = verify(config, chunk_rows=3)["words"]
    assert table["equal"] and table["method"] == "ordered", table
    words_t = target_table(config, TableId(mysql_db.name, "words"), "w", "n")
    execute(target.url, sa.update(words_t).where(words_t.c.w == "a\t").values(n=99))
    table = verify(config, chunk_rows=3)["words"]
    changed = {"key": {"w": "a\t"}, "columns": {"n": {"source": 1, "target": 99}}}
    assert table["differences"]["different"]["keys"] == [changed]


def test_tables_without_key_compare_as_multisets(target: Target, mysql_db: Any) -> None:
    conn = mysql_db.connect()
    rows = [("a", 1), ("a", 1), ("b", None), ("c", 3), ("a", 1)]
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE events (kind VARCHAR(10), n INT)")
        cur.executemany("INSERT INTO events VALUES (%s, %s)", rows)
    conn.close()
    config = mysql_config(mysql_db, target)
    # The sink refuses a table without key; a copy made another way is still compared row for row.
    schema, name = writer(config).target_name(TableId(mysql_db.name, "events"))
    copy = sa.Table(name, sa.MetaData(), sa.Column("kind", sa.String(10)), sa.Column("n", sa.Integer), schema=schema)
    engine = sa.create_engine(sqlalchemy_url(target.url))
    try:
        with engine.begin() as c:
            if schema is not None:
                c.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
            copy.create(c)
            c.execute(sa.insert(copy), [{"kind": k, "n": n} for k, n in rows])
    finally:
        engine.dispose()
    table = verify(config)["events"]
    assert table["equal"] and table["method"] == "multiset" and table["key"] == []

    execute(
        target.url,
        sa.delete(copy).where(copy.c.kind == "c"),
        sa.insert(copy).values(kind="a", n=1),
        sa.insert(copy).values(kind="d", n=4),
    )
    table = verify(config)["events"]
    assert not table["equal"]
    assert table["differences"]["missing_in_target"] == {"count": 1, "rows": [{"kind": "c", "n": 3}]}
    extra = table["differences"]["extra_in_target"]
    assert extra["count"] == 2
    assert sorted(extra["rows"], key=lambda r: str(r["kind"])) == [{"kind": "a", "n": 1}, {"kind": "d", "n": 4}]


def test_excluded_columns_missing_tables_and_missing_columns(tmp_path: Path, mysql_db: Any) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE a (id INT PRIMARY KEY, secret VARCHAR(10), v INT)")
        cur.execute("CREATE TABLE b (id INT PRIMARY KEY, v INT)")
        cur.executemany("INSERT INTO a VALUES (%s, %s, %s)", [(i, f"s{i}", i) for i in range(1, 21)])
        cur.executemany("INSERT INTO b VALUES (%s, %s)", [(i, i) for i in range(1, 6)])
    conn.close()
    target = Target("sqlite", f"sqlite:///{tmp_path / 'replica.db'}")
    config = mysql_config(mysql_db, target, exclude_columns=[f"{mysql_db.name}.a.secret"])
    copy_mysql(config, skip=("b",))
    tables = verify(config)
    assert tables["a"]["equal"], tables["a"]
    assert "secret" not in json.dumps(tables["a"])
    b = tables["b"]
    assert not b["equal"] and b["differences"]["target_table_missing"] is True
    assert keys(b, "missing_in_target") == [1, 2, 3, 4, 5] and b["target_rows"] == 0

    # without the exclusion, the target lacks a captured column
    config = mysql_config(mysql_db, target, exclude_tables=[f"{mysql_db.name}.b"])
    tables = verify(config)
    assert set(tables) == {"a"}
    assert tables["a"]["differences"]["missing_columns"] == ["secret"] and not tables["a"]["equal"]


# --------------------------------------------------------------------------- PostgreSQL source

PG_DDL = """
CREATE SCHEMA shop;
CREATE TABLE shop.items (
  id bigint PRIMARY KEY,
  name varchar(40),
  code char(5),
  note text,
  amount numeric(12,2),
  ratio double precision,
  score real,
  flag boolean,
  placed timestamp(6),
  touched timestamptz,
  day date,
  at time(6),
  span interval,
  uid uuid,
  doc jsonb,
  payload bytea,
  tags text[],
  ip inet
)
"""
_M = TimePrecision.ADAPTIVE_TIME_MICROSECONDS


def _col(name: str, native: str, logical: Logical, wire: Wire, **kw: Any) -> Column:
    return Column(name, native, logical, wire, nullable=wire.optional, **kw)


PG_COLUMNS = (
    _col("id", "int8", Logical.INT64, int_wire(64, optional=False)),
    _col("name", "varchar(40)", Logical.STRING, string_wire(), length=40),
    _col("code", "character(5)", Logical.STRING, string_wire(), length=5),
    _col("note", "text", Logical.TEXT, string_wire()),
    _col(
        "amount", "numeric(12,2)", Logical.DECIMAL, decimal_wire(12, 2, DecimalHandling.PRECISE), precision=12, scale=2
    ),
    _col("ratio", "float8", Logical.FLOAT64, float_wire(64)),
    _col("score", "float4", Logical.FLOAT32, float_wire(32)),
    _col("flag", "bool", Logical.BOOLEAN, bool_wire()),
    _col("placed", "timestamp(6)", Logical.TIMESTAMP, timestamp_wire(6, _M), precision=6),
    _col("touched", "timestamptz", Logical.TIMESTAMPTZ, zoned_timestamp_wire(), precision=6),
    _col("day", "date", Logical.DATE, date_wire(_M)),
    _col("at", "time(6)", Logical.TIME, time_wire(6, _M), precision=6),
    _col("span", "interval", Logical.INTERVAL, interval_wire(IntervalHandling.NUMERIC)),
    _col("uid", "uuid", Logical.UUID, uuid_wire()),
    _col("doc", "jsonb", Logical.JSON, json_wire()),
    _col("payload", "bytea", Logical.BYTES, bytes_wire()),
    _col("tags", "text[]", Logical.ARRAY, array_wire(string_wire())),
    _col("ip", "inet", Logical.INET, string_wire()),
)
PG_SOURCE = {"connector": "postgresql", "db": "src", "schema": "shop", "table": "items"}


def pg_rows(n: int) -> list[dict[str, Any]]:
    rnd = random.Random(11)
    spans = [PgInterval(1, 2, 3_600_000_000), PgInterval(0, 0, -5_000_000), PgInterval(14, -3, 0), None]
    out = []
    for i in range(1, n + 1):
        out.append(
            {
                "id": i,
                "name": rnd.choice(["Ann", "Zoë 🚀", "it's"]) + f" {i}",
                "code": rnd.choice(["ab", "abcde", "", "x y"]),
                "note": None if i == 7 else "" if i == 8 else "y" * rnd.randint(1, 80),
                "amount": Decimal(rnd.randint(-(10**9), 10**9)) / 100,
                "ratio": rnd.random() * 10 ** rnd.randint(-5, 12),
                "score": rnd.randint(0, 4000) / 16,
                "flag": rnd.random() < 0.5,
                "placed": datetime(2021, rnd.randint(1, 12), 15, 10, 11, 12, rnd.randint(0, 10**6 - 1)),
                "touched": datetime(2022, 1, rnd.randint(1, 9), 1, 2, 3, rnd.randint(0, 10**6 - 1)).replace(
                    tzinfo=timezone(timedelta(hours=rnd.choice([-5, 0, 2])))
                ),
                "day": date(1970 + rnd.randint(0, 60), 1, 1),
                "at": time(rnd.randint(0, 23), 30, 0, rnd.randint(0, 10**6 - 1)),
                "span": rnd.choice(spans),
                "uid": uuid.UUID(int=rnd.getrandbits(128)),
                "doc": {"i": i, "a": [1, "two", 3.5], "z": None, "nested": {"b": True, "a": 1.10}},
                "payload": bytes(rnd.randint(0, 255) for _ in range(rnd.randint(0, 30))),
                "tags": ["a", "b c", None, "d,e"] if i % 2 else [],
                "ip": rnd.choice(["10.0.0.1", "192.168.1.0/24", "::1", "2001:db8::/32"]),
            }
        )
    return out


def _pg_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "span":
        return timedelta(days=value.days, microseconds=value.microseconds) if not value.months else value.isoformat()
    if name == "doc":
        return json.dumps(value)
    return value


def copy_pg(config: Config, rows: list[dict[str, Any]]) -> None:
    """The rows as the PostgreSQL connector encodes them, applied by the real sink."""
    schema = TableSchema(TableId("shop", "items"), PG_COLUMNS, ("id",))
    out = writer(config)
    try:
        out.apply_schema(SchemaChange("CREATE", schema, None, PG_SOURCE, 0))
        events = []
        for r in rows:
            after = {
                c.name: None
                if r[c.name] is None
                else to_wire(
                    str(r[c.name]) if c.name in ("uid",) else json.dumps(r[c.name]) if c.name == "doc" else r[c.name],
                    c.wire,
                    fraction_digits=6,
                )
                for c in PG_COLUMNS
            }
            events.append(ChangeEvent(Op.READ, schema.table, {"id": r["id"]}, None, after, PG_SOURCE, 0))
        out.write_batch(config.name, events)
    finally:
        out.close()


def test_postgresql_source_equal_then_every_tampering_is_found(target: Target, pg_db: Any) -> None:
    rows = pg_rows(600)
    names = [c.name for c in PG_COLUMNS]
    with pg_db.connect() as conn:
        conn.execute(PG_DDL)
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO shop.items ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})",
                [tuple(_pg_value(n, r[n]) for n in names) for r in rows],
            )
    config = make_config({"type": "postgres", "url": pg_db.url, "tables": ["shop.*"]}, {"replica": target.url})
    copy_pg(config, rows)

    table = verify(config)["items"]
    assert table["equal"], json.dumps(table["differences"])[:3000]
    assert (table["source_rows"], table["target_rows"], table["method"]) == (600, 600, "ordered")

    t = target_table(config, TableId("shop", "items"), "id", "note", "touched", "code")
    moved: Any = datetime(2000, 1, 1, tzinfo=UTC) if target.kind == "postgresql" else datetime(2000, 1, 1)
    if target.kind == "sqlite":
        moved = "2000-01-01 00:00:00.000000"
    execute(
        target.url,
        sa.delete(t).where(t.c.id.in_([10, 11])),
        sa.update(t).where(t.c.id == 7).values(note=""),
        sa.update(t).where(t.c.id == 8).values(note=None),
        sa.update(t)
        .where(t.c.id == 20)
        .values(touched=moved if target.kind != "sqlite" else "2000-01-01 00:00:00.000000"),
        sa.update(t).where(t.c.id == 21).values(code="zz"),
        sa.insert(t).values(id=0),
    )
    table = verify(config)["items"]
    assert keys(table, "missing_in_target") == [10, 11]
    assert keys(table, "extra_in_target") == [0]
    assert changed_columns(table) == {7: {"note"}, 8: {"note"}, 20: {"touched"}, 21: {"code"}}
    assert table["differences"]["different"]["count"] == 4


# --------------------------------------------------------------------------- the command line


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_cli_exit_codes_and_json(tmp_path: Path, mysql_db: Any, pg_url: str) -> None:
    build_mysql_source(mysql_db, n=300)
    lite = f"sqlite:///{tmp_path / 'replica.db'}"
    other = f"sqlite:///{tmp_path / 'other.db'}"
    config = make_config(
        {"type": "mysql", "url": mysql_db.server_url, "server_id": 4242, "tables": [f"{mysql_db.name}.*"]},
        {"lite": lite, "other": other},
    )
    copy_mysql(config, "lite")
    copy_mysql(config, "other")
    head = f"""
name: verify_cli
source:
  type: mysql
  url: {mysql_db.server_url}
  server_id: 4242
  tables: ["{mysql_db.name}.*"]
bus:
  type: direct
"""
    cfg = _write(
        tmp_path / "cdc.yaml",
        head
        + f"sinks:\n  - name: lite\n    url: {lite}\n  - name: other\n    url: sqlite:///{tmp_path / 'other.db'}\n",
    )
    ok = cdc("verify", "-c", str(cfg), "--json")
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["equal"] is True and set(data["sinks"]) == {"lite", "other"}
    tables = {t["source"]: t for t in data["sinks"]["lite"]["tables"]}
    assert tables[f"{mysql_db.name}.orders"]["source_rows"] == 300

    t = target_table(config, TableId(mysql_db.name, "orders"), "id", "amount", sink="lite")
    execute(lite, sa.delete(t).where(t.c.id == 42), sa.update(t).where(t.c.id == 43).values(amount="1.00"))
    bad = cdc("verify", "-c", str(cfg), "--json")
    assert bad.returncode == 1, bad.stderr
    data = json.loads(bad.stdout)
    assert data["equal"] is False and data["sinks"]["other"]["equal"] is True
    orders = next(t for t in data["sinks"]["lite"]["tables"] if t["source"].endswith(".orders"))
    assert keys(orders, "missing_in_target") == [42] and keys(orders, "different") == [43]
    text = cdc("verify", "-c", str(cfg))
    assert text.returncode == 1 and "DIFFERENT" in text.stdout and '{"id": 42}' in text.stdout
    only = cdc("verify", "-c", str(cfg), "--sink", "other", "--json")
    assert only.returncode == 0 and set(json.loads(only.stdout)["sinks"]) == {"other"}

    unknown = cdc("verify", "-c", str(cfg), "--sink", "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr

    # unreachable target, refused credentials: exit 2, one paragraph, no password
    host = pg_url.split("@", 1)[1].split("/", 1)[0]
    for url in (
        "postgresql://cdc:hunter2secret@127.0.0.1:1/postgres",
        f"postgresql://cdc_nobody:hunter2secret@{host}/postgres",
    ):
        cfg2 = _write(tmp_path / "down.yaml", head + f"sinks:\n  - name: down\n    url: {url}\n")
        down = cdc("verify", "-c", str(cfg2), "--json")
        assert down.returncode == 2, (down.stdout, down.stderr)
        assert down.stderr.startswith("error: ") and "sink 'down'" in down.stderr
        assert "hunter2secret" not in down.stderr + down.stdout
        assert "Traceback" not in down.stderr
    missing = _write(
        tmp_path / "gone.yaml", head + f"sinks:\n  - name: gone\n    url: sqlite:///{tmp_path / 'nope.db'}\n"
    )
    gone = cdc("verify", "-c", str(missing))
    assert gone.returncode == 2 and not (tmp_path / "nope.db").exists()
