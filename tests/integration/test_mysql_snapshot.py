"""The MySQL initial snapshot against real MariaDB: exact handoff to streaming, resume from the
last chunk, and the same values from snapshot and from streaming, type by type."""

from __future__ import annotations

import time

import pytest

from cdc.config import parse_config
from cdc.errors import DecodeError
from cdc.events import ChangeEvent, Checkpoint, Op, SchemaChange
from connectors.mysql.source import MySqlSource

SERVER_IDS = iter(range(73_000, 74_000))


def _source(mysql_db, chunk: int = 1000, extra: str = "") -> MySqlSource:
    """``extra``: more ``source`` keys, as YAML lines."""
    yaml = (f"name: t\nsource:\n  type: mysql\n  url: {mysql_db.server_url}\n  server_id: {next(SERVER_IDS)}\n"
            f"  tables: ['{mysql_db.name}.*']\n  snapshot_chunk_rows: {chunk}\n{extra}"
            "bus:\n  type: kafka\n  bootstrap_servers: 127.0.0.1:1\n")
    return MySqlSource(parse_config(yaml, env={}).source, "t")  # type: ignore[arg-type]


def _read(src: MySqlSource, until, timeout_s: float = 30.0) -> list:
    items: list = []
    deadline = time.monotonic() + timeout_s
    while not until(items):
        assert time.monotonic() < deadline, f"gave up; last items {items[-3:]}"
        items.extend(src.read_batch(5000, 0.3))
    return items


def _streaming_started(items: list) -> bool:
    return any(isinstance(i, Checkpoint) and i.offset.phase == "streaming" for i in items)


def test_snapshot_hands_off_to_streaming_exactly(mysql_db) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
        cur.executemany("INSERT INTO t VALUES (%s, %s)", [(i, i) for i in range(1, 2501)])
    src = _source(mysql_db)
    src.open(None)
    try:
        first = src.read_batch(5000, 1)  # the definitions; the snapshot transaction has begun
        assert [type(i).__name__ for i in first] == ["SchemaChange"]
        with conn.cursor() as cur:  # written after the snapshot's view was fixed
            cur.execute("INSERT INTO t VALUES (10000, 0)")
            cur.execute("UPDATE t SET v = -1 WHERE id = 1")
        items = _read(src, _streaming_started)
        reads = [i for i in items if isinstance(i, ChangeEvent) and i.op is Op.READ]
        assert sorted(e.after["id"] for e in reads) == list(range(1, 2501))
        assert next(e for e in reads if e.after["id"] == 1).after["v"] == 1  # the snapshot's view
        snapshot_cps = [i for i in items if isinstance(i, Checkpoint) and i.offset.phase == "snapshot"]
        assert len(snapshot_cps) >= 3  # one per chunk of 1000
        streamed = _read(src, lambda xs: len([x for x in xs if isinstance(x, ChangeEvent)]) >= 2)
    finally:
        src.close()
    changes = [(e.op, e.after) for e in streamed if isinstance(e, ChangeEvent)]
    assert changes == [(Op.CREATE, {"id": 10000, "v": 0}), (Op.UPDATE, {"id": 1, "v": -1})]


def test_snapshot_resumes_after_the_last_chunk(mysql_db) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE a (id INT PRIMARY KEY)")
        cur.execute("CREATE TABLE b (k VARCHAR(10) PRIMARY KEY)")
        cur.executemany("INSERT INTO a VALUES (%s)", [(i,) for i in range(1, 1201)])
        cur.executemany("INSERT INTO b VALUES (%s)", [(f"k{i:04d}",) for i in range(1, 801)])
    src = _source(mysql_db, chunk=500)
    src.open(None)
    items = src.read_batch(5000, 1) + src.read_batch(5000, 1) + src.read_batch(5000, 1)  # defs + 2 chunks of a
    src.close()  # a crash after two chunks
    cp = [i for i in items if isinstance(i, Checkpoint)][-1]
    assert cp.offset.phase == "snapshot" and cp.offset.snapshot["last_key"] == [1000]
    first_ids = [i.after["id"] for i in items if isinstance(i, ChangeEvent)]
    assert first_ids == list(range(1, 1001))

    again = _source(mysql_db, chunk=500)
    again.open(cp.offset)
    rest = _read(again, _streaming_started)
    again.close()
    a_ids = [i.after["id"] for i in rest if isinstance(i, ChangeEvent) and i.table.table == "a"]
    b_keys = [i.after["k"] for i in rest if isinstance(i, ChangeEvent) and i.table.table == "b"]
    assert a_ids == list(range(1001, 1201))  # neither repeated nor skipped
    assert b_keys == [f"k{i:04d}" for i in range(1, 801)]
    final = [i for i in rest if isinstance(i, Checkpoint)][-1]
    assert final.offset.phase == "streaming" and final.offset.position == cp.offset.position
TYPE_MATRIX = [
    ("ti", "TINYINT", "-128"), ("tu", "TINYINT UNSIGNED", "255"), ("si", "SMALLINT", "-32768"),
    ("su", "SMALLINT UNSIGNED", "65535"), ("mi", "MEDIUMINT", "-8388608"), ("i", "INT", "-2147483648"),
    ("iu", "INT UNSIGNED", "4294967295"), ("bi", "BIGINT", "-9223372036854775808"),
    ("bu", "BIGINT UNSIGNED", "18446744073709551615"), ("de", "DECIMAL(65,30)", "-12345678901234567890.123456789"),
    ("d2", "DECIMAL(10,2)", "0.10"), ("fl", "FLOAT", "1.5"), ("db", "DOUBLE", "-2.25e100"),
    ("da", "DATE", "'1000-01-01'"), ("dt0", "DATETIME", "'2024-02-29 23:59:59'"),
    ("dt3", "DATETIME(3)", "'1970-01-01 00:00:00.123'"), ("dt6", "DATETIME(6)", "'9999-12-31 23:59:59.999999'"),
    ("ts", "TIMESTAMP(6) NULL", "'2038-01-19 03:14:07.499999'"), ("tm", "TIME(6)", "'-838:59:59.000000'"),
    ("tmf", "TIME(2)", "'-00:00:00.25'"), ("y", "YEAR", "2155"), ("ch", "CHAR(5)", "'ab'"),
    ("vc", "VARCHAR(20)", "'héllo 🎉'"), ("tx", "TEXT", "'long text'"), ("bn", "BINARY(4)", "X'00FF'"),
    ("vb", "VARBINARY(8)", "X'DEADBEEF'"), ("bl", "BLOB", "X'00010203'"), ("en", "ENUM('a','b c')", "'b c'"),
    ("st", "SET('x','y','z')", "'x,z'"), ("se", "SET('x','y')", "''"), ("b1", "BIT(1)", "b'1'"),
    ("b9", "BIT(9)", "b'100000001'"), ("js", "JSON", "'{\"a\": [1, 2.5, null]}'"),
    ("ge", "GEOMETRY", "ST_GeomFromText('POINT(1 2)')"), ("nul", "INT NULL", "NULL"),
]


def test_snapshot_and_streaming_give_identical_values(mysql_db) -> None:
    cols = ", ".join(f"{n} {t}" for n, t, _ in TYPE_MATRIX)
    values = ", ".join(v for _, _, v in TYPE_MATRIX)
    names = ", ".join(n for n, _, _ in TYPE_MATRIX)
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        cur.execute(f"CREATE TABLE m (id INT PRIMARY KEY, {cols})")
        cur.execute(f"INSERT INTO m (id, {names}) VALUES (1, {values})")
    src = _source(mysql_db)
    src.open(None)
    try:
        items = _read(src, _streaming_started)
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            cur.execute(f"INSERT INTO m (id, {names}) VALUES (2, {values})")
        items += _read(src, lambda xs: any(isinstance(x, ChangeEvent) and x.op is Op.CREATE for x in xs))
    finally:
        src.close()
    snap = next(i for i in items if isinstance(i, ChangeEvent) and i.op is Op.READ).after
    stream = next(i for i in items if isinstance(i, ChangeEvent) and i.op is Op.CREATE).after
    assert not [i for i in items if isinstance(i, SchemaChange) and i.kind == "ALTER"], "definitions differ"
    diffs = {n: (snap[n], stream[n]) for n, _, _ in TYPE_MATRIX if snap[n] != stream[n]}
    assert diffs == {}, f"snapshot and streaming disagree: {diffs}"


ZERO_COLUMNS = "d DATE, dn DATE NOT NULL, dt DATETIME(3), dtn DATETIME NOT NULL, ts TIMESTAMP(6) NULL, bad DATE"
ZERO_VALUES = "'0000-00-00', '0000-00-00', '0000-00-00 00:00:00', '2021-02-00 12:00:00', 0, '2021-00-05'"


@pytest.mark.parametrize("mode", ["null", "debezium", "error"])
def test_zero_dates_read_the_same_in_snapshot_and_stream(mysql_db, mode: str) -> None:
    """PyMySQL hands the snapshot a zero date as its text; the binlog decoder sees the packed value.
    Both follow zero_date_handling the same way (issue #4: a zero date never turns silently into NULL)."""
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")  # lets the zero dates in
        cur.execute(f"CREATE TABLE z (id INT PRIMARY KEY, {ZERO_COLUMNS})")
        cur.execute(f"INSERT INTO z VALUES (1, {ZERO_VALUES})")
    src = _source(mysql_db, extra=f"  zero_date_handling: {mode}\n")
    src.open(None)
    try:
        if mode == "error":
            # the NOT NULL zero date refuses under "null" too; "error" refuses every one
            with pytest.raises(DecodeError, match=r"\.z\.(d|dn|dt|dtn|ts|bad) holds the zero or invalid date"):
                _read(src, _streaming_started)
            return
        if mode == "null":
            with pytest.raises(DecodeError, match=r"\.z\.(dn|dtn) holds the zero or invalid date .* is NOT NULL"):
                _read(src, _streaming_started)
            return
        items = _read(src, _streaming_started)
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = ''")
            cur.execute(f"INSERT INTO z VALUES (2, {ZERO_VALUES})")
        items += _read(src, lambda xs: any(isinstance(x, ChangeEvent) and x.op is Op.CREATE for x in xs))
    finally:
        src.close()
    snap = next(i for i in items if isinstance(i, ChangeEvent) and i.op is Op.READ).after
    stream = next(i for i in items if isinstance(i, ChangeEvent) and i.op is Op.CREATE).after
    assert snap == {**stream, "id": 1}
    assert snap["d"] is None and snap["ts"] is None and snap["bad"] is None and snap["dt"] is None  # nullable
    assert snap["dn"] == 0 and snap["dtn"] == 0  # NOT NULL: the epoch, as Debezium does
