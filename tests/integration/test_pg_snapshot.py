"""The PostgreSQL initial snapshot against a real server: the exported snapshot meets the stream
exactly (no gap, no double insert) under concurrent writes, a resumed snapshot converges, a keyless
table is read whole, and snapshot and streaming give the same value for every supported type."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

import orjson
import pytest
from conftest import unique

from cdc.config import parse_config
from cdc.errors import DecodeError
from cdc.events import ChangeEvent, Checkpoint, Op, SchemaChange
from connectors.postgres.source import PostgresSource


def _source(pg_db, slot: str, chunk: int = 1000, snapshot: str = "initial", extra: str = "") -> PostgresSource:
    yaml = (
        f"name: t\nsource:\n  type: postgres\n  url: {pg_db.url}\n  slot: {slot}\n  publication: {slot}\n"
        f"  snapshot: {snapshot}\n  tables: ['public.*']\n  snapshot_chunk_rows: {chunk}\n"
        f"  heartbeat_interval_ms: 0\n{extra}"
        "bus:\n  type: kafka\n  bootstrap_servers: 127.0.0.1:1\n"
    )
    return PostgresSource(parse_config(yaml, env={}).source, "t")  # type: ignore[arg-type]


def _read(src: PostgresSource, until, timeout_s: float = 60.0) -> list:
    items: list = []
    deadline = time.monotonic() + timeout_s
    while not until(items):
        assert time.monotonic() < deadline, f"gave up; last items {items[-3:]}"
        items.extend(src.read_batch(5000, 0.3))
    return items


def _streaming_started(items: list) -> bool:
    return any(isinstance(i, Checkpoint) and i.offset.phase == "streaming" for i in items)


def _apply(state: dict, items: list) -> None:
    """What an in-order, upserting sink does with the events."""
    for e in items:
        if not isinstance(e, ChangeEvent):
            continue
        if e.op is Op.TRUNCATE:
            state.clear()
        elif e.op is Op.DELETE:
            state.pop(e.key["id"], None)
        else:
            state[e.after["id"]] = e.after


def _table(pg_db, table: str = "t") -> dict:
    with pg_db.connect() as conn:
        return {r[0]: {"id": r[0], "v": r[1]} for r in conn.execute(f"SELECT id, v FROM {table}").fetchall()}


def _wal(pg_db) -> str:
    with pg_db.connect() as conn:
        return conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]


def _caught_up(src: PostgresSource, pg_db, items: list) -> None:
    """Read until a transaction committed now has come back (the stream has passed the writes).
    The table ``marker`` must exist before the source opens (so that its publication has it)."""
    with pg_db.connect() as conn:
        conn.execute("INSERT INTO marker VALUES (1) ON CONFLICT (id) DO UPDATE SET id = 1")
    items.extend(_read(src, lambda xs: any(isinstance(x, ChangeEvent) and x.table.table == "marker" for x in xs)))


def test_exported_snapshot_meets_the_stream_exactly_under_concurrent_writes(pg_db) -> None:
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
        conn.execute("CREATE TABLE marker (id int PRIMARY KEY)")
        conn.execute("INSERT INTO t SELECT g, g FROM generate_series(1, 5000) g")
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:  # inserts, updates and deletes while the snapshot runs
        with pg_db.connect() as conn:
            i = 10_000
            while not stop.is_set():
                i += 1
                with conn.transaction():
                    conn.execute("INSERT INTO t VALUES (%s, 0)", (i,))
                    conn.execute("UPDATE t SET v = v + 1 WHERE id = %s", (i % 5000 + 1,))
                    conn.execute("DELETE FROM t WHERE id = %s", (i - 7,))
                written.append(i)
                time.sleep(0.002)

    src = _source(pg_db, slot, chunk=500)
    src.open(None)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        items = _read(src, _streaming_started)
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join()
    try:
        _caught_up(src, pg_db, items)
    finally:
        src.close()
    assert len(written) > 20, "the writer did not overlap the snapshot"
    reads = [e for e in items if isinstance(e, ChangeEvent) and e.op is Op.READ]
    creates = [
        e.after["id"] for e in items if isinstance(e, ChangeEvent) and e.op is Op.CREATE and e.table.table == "t"
    ]
    read_ids = [e.after["id"] for e in reads]
    assert len(read_ids) == len(set(read_ids))
    assert not set(read_ids) & set(creates), "a row came from the snapshot and was inserted again by the stream"
    assert len(creates) == len(set(creates))
    state: dict = {}
    _apply(state, [e for e in items if not (isinstance(e, ChangeEvent) and e.table.table == "marker")])
    assert state == _table(pg_db)
    assert [e for e in reads if e.source["snapshot"] == "last"] == [reads[-1]]
    snap_cps = [i for i in items if isinstance(i, Checkpoint) and i.offset.phase == "snapshot"]
    assert len(snap_cps) >= 10 and all(c.offset.position == snap_cps[0].offset.position for c in snap_cps)


def test_snapshot_resumed_after_a_crash_converges(pg_db) -> None:
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE a (id int PRIMARY KEY, v int)")
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
        conn.execute("CREATE TABLE marker (id int PRIMARY KEY)")
        conn.execute("INSERT INTO a SELECT g, g FROM generate_series(1, 1200) g")
        conn.execute("INSERT INTO t SELECT g, g FROM generate_series(1, 800) g")
    src = _source(pg_db, slot, chunk=500)
    src.open(None)
    assert src.snapshot_progress()["tables_total"] == 3  # a, marker, t
    items = src.read_batch(5000, 1) + src.read_batch(5000, 1) + src.read_batch(5000, 1)  # defs + 2 chunks of a
    progress = src.snapshot_progress()
    assert progress["rows"] == 1000 and progress["rows_total_estimate"] >= 1000
    src.close()  # a crash after two chunks
    cp = [i for i in items if isinstance(i, Checkpoint)][-1]
    assert cp.offset.phase == "snapshot" and cp.offset.snapshot["last_key"] == ["1000"]
    with pg_db.connect() as conn:  # changes between the crash and the resumed snapshot
        conn.execute("UPDATE a SET v = -v WHERE id IN (5, 1100)")
        conn.execute("DELETE FROM a WHERE id = 1150")
        conn.execute("INSERT INTO a VALUES (5000, 5000)")
        conn.execute("UPDATE t SET v = 0 WHERE id <= 10")

    again = _source(pg_db, slot, chunk=500)
    again.open(cp.offset)
    try:
        rest = _read(again, _streaming_started)
        final = [i for i in rest if isinstance(i, Checkpoint)][-1]
        assert final.offset.phase == "streaming" and final.offset.position == cp.offset.position
        a_ids = [i.after["id"] for i in rest if isinstance(i, ChangeEvent) and i.table.table == "a"]
        assert a_ids == [*range(1001, 1150), *range(1151, 1201), 5000]  # the remaining chunk, in the new view
        _caught_up(again, pg_db, rest)
    finally:
        again.close()
    state_a: dict = {}
    state_t: dict = {}
    for batch in (items, rest):
        _apply(state_a, [e for e in batch if isinstance(e, ChangeEvent) and e.table.table == "a"])
        _apply(state_t, [e for e in batch if isinstance(e, ChangeEvent) and e.table.table == "t"])
    assert state_a == _table(pg_db, "a")
    assert state_t == _table(pg_db, "t")


def test_keyless_table_is_read_whole_through_a_cursor(pg_db) -> None:
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE loose (id int, v int)")
        conn.execute("ALTER TABLE loose REPLICA IDENTITY FULL")
        conn.execute("INSERT INTO loose SELECT g, g FROM generate_series(1, 2345) g")
    src = _source(pg_db, slot, chunk=1000)
    src.open(None)
    try:
        items = _read(src, _streaming_started)
    finally:
        src.close()
    reads = [e for e in items if isinstance(e, ChangeEvent)]
    assert sorted(e.after["id"] for e in reads) == list(range(1, 2346))
    assert all(e.key is None for e in reads)
    assert max(len([x for x in b if isinstance(x, ChangeEvent)]) for b in [items]) == 2345


def test_snapshot_never_streams_from_the_new_slot(pg_db) -> None:
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
        conn.execute("INSERT INTO t VALUES (1, 1)")
    src = _source(pg_db, slot, snapshot="never")
    src.open(None)
    try:
        with pg_db.connect() as conn:
            conn.execute("INSERT INTO t VALUES (2, 2)")
        items = _read(src, lambda xs: any(isinstance(x, ChangeEvent) for x in xs))
    finally:
        src.close()
    assert [(e.op, e.after["id"]) for e in items if isinstance(e, ChangeEvent)] == [(Op.CREATE, 2)]


# --------------------------------------------------------------------------- the type matrix


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _dec(unscaled: int) -> str:
    """A Connect Decimal's payload: base64 of the unscaled value's minimal two's-complement bytes."""
    return _b64(unscaled.to_bytes((unscaled if unscaled >= 0 else ~unscaled).bit_length() // 8 + 1, "big", signed=True))


_US_PER_DAY = 86_400_000_000

#: (column, type, literal, Debezium's payload value, the field's Connect schema name or type):
#: one column per type the types module maps, under the default modes (decimal_handling precise,
#: time_precision adaptive, binary_handling bytes, interval_handling numeric). The expected values
#: follow Debezium's PostgreSQL connector documentation ("Data type mappings"); epoch values of BC
#: dates were computed by PostgreSQL itself (``date '0044-03-15 BC' - date '1970-01-01'``).
TYPE_MATRIX: list[tuple[str, str, str, Any, str]] = [
    ("b", "boolean", "true", True, "boolean"),
    ("i2", "smallint", "-32768", -32768, "int16"),
    ("i4", "integer", "2147483647", 2147483647, "int32"),
    ("i8", "bigint", "-9223372036854775808", -9223372036854775808, "int64"),
    ("o", "oid", "4294967295", 4294967295, "int64"),
    ("f4", "real", "1.5", 1.5, "float32"),
    ("f4x", "real", "3.4028235e38", 3.4028235e38, "float32"),
    ("f8", "double precision", "-2.25e100", -2.25e100, "float64"),
    ("f8nan", "double precision", "'NaN'", "NaN", "float64"),
    ("f8inf", "double precision", "'-Infinity'", "-Infinity", "float64"),
    (
        "n",
        "numeric(20,5)",
        "-123456789012345.12345",
        _dec(-12345678901234512345),
        "org.apache.kafka.connect.data.Decimal",
    ),
    (
        "nfree",
        "numeric",
        "3.14159265358979323846264338327950288",
        {"scale": 35, "value": _dec(314159265358979323846264338327950288)},
        "io.debezium.data.VariableScaleDecimal",
    ),
    ("nround", "numeric", "100.500", {"scale": 1, "value": _dec(1005)}, "io.debezium.data.VariableScaleDecimal"),
    ("money_", "money", "-1234.56", _dec(-123456), "org.apache.kafka.connect.data.Decimal"),
    ("c", "char(5)", "'ab'", "ab   ", "string"),
    ("bpc", "bpchar", "'x '", "x ", "string"),
    ("vc", "varchar(20)", "'héllo 🎉'", "héllo 🎉", "string"),
    ("tx", "text", "'line1' || chr(10) || 'line2 \"quoted\" \\ back'", 'line1\nline2 "quoted" \\ back', "string"),
    ("nm", "name", "'a_name'", "a_name", "string"),
    ("ci", "citext", "'MiXeD'", "MiXeD", "string"),
    ("by", "bytea", "'\\x00ff10'::bytea", _b64(b"\x00\xff\x10"), "bytes"),
    ("d", "date", "'2024-02-29'", 19782, "io.debezium.time.Date"),
    ("dinf", "date", "'infinity'", -2147472692, "io.debezium.time.Date"),
    ("dninf", "date", "'-infinity'", -2147472691, "io.debezium.time.Date"),
    ("dbc", "date", "'0044-03-15 BC'", -735160, "io.debezium.time.Date"),
    ("t0", "time", "'23:59:59.999999'", 86399999999, "io.debezium.time.MicroTime"),
    ("t3", "time(3)", "'12:00:00.123'", 43200123, "io.debezium.time.Time"),
    ("ttz", "timetz", "'10:11:12.5+02'", "08:11:12.5Z", "io.debezium.time.ZonedTime"),
    ("ts", "timestamp", "'2024-02-29 23:59:59.123456'", 1709251199123456, "io.debezium.time.MicroTimestamp"),
    ("ts0", "timestamp(0)", "'1970-01-01 00:00:00'", 0, "io.debezium.time.Timestamp"),
    ("ts3", "timestamp(3)", "'1969-12-31 23:59:59.999'", -1, "io.debezium.time.Timestamp"),
    ("tsbc", "timestamp", "'0044-03-15 12:00:00 BC'", -63517780800000000, "io.debezium.time.MicroTimestamp"),
    ("tsinf", "timestamp", "'infinity'", 9223372036825200000, "io.debezium.time.MicroTimestamp"),
    (
        "tstz",
        "timestamptz",
        "'2024-02-29 23:59:59.5+05:30'",
        "2024-02-29T18:29:59.500000Z",
        "io.debezium.time.ZonedTimestamp",
    ),
    (
        "tstz0",
        "timestamptz(0)",
        "'2024-02-29 23:59:59+05:30'",
        "2024-02-29T18:29:59Z",
        "io.debezium.time.ZonedTimestamp",
    ),
    (
        "tstzbc",
        "timestamptz",
        "'0001-01-01 00:00:00+00 BC'",
        "0000-01-01T00:00:00.000000Z",
        "io.debezium.time.ZonedTimestamp",
    ),
    ("tstzinf", "timestamptz", "'-infinity'", "-infinity", "io.debezium.time.ZonedTimestamp"),
    # 14 months of 365.25/12 days, 3 days and 4:05:06.789 in µs
    ("iv", "interval", "'1 year 2 mons 3 days 04:05:06.789'", 37091106789000, "io.debezium.time.MicroDuration"),
    ("ivneg", "interval", "'-1 mons -00:00:01'", -2629801000000, "io.debezium.time.MicroDuration"),
    (
        "u",
        "uuid",
        "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "io.debezium.data.Uuid",
    ),
    ("js", "json", "'{\"a\": [1, 2.5, null]}'", '{"a": [1, 2.5, null]}', "io.debezium.data.Json"),
    ("jb", "jsonb", '\'{"b": {"c": true}}\'', '{"b": {"c": true}}', "io.debezium.data.Json"),
    ("hs", "hstore", "'b=>NULL, a=>1'", '{"a":"1","b":null}', "io.debezium.data.Json"),
    ("x", "xml", "'<a>1</a>'", "<a>1</a>", "io.debezium.data.Xml"),
    ("ip", "inet", "'10.0.0.1'", "10.0.0.1", "string"),
    ("ip6", "inet", "'::1/64'", "::1/64", "string"),
    ("cid", "cidr", "'10.0.0.0/8'", "10.0.0.0/8", "string"),
    ("mac", "macaddr", "'08:00:2b:01:02:03'", "08:00:2b:01:02:03", "string"),
    ("mac8", "macaddr8", "'08:00:2b:01:02:03:04:05'", "08:00:2b:01:02:03:04:05", "string"),
    ("bit1", "bit(1)", "B'1'", True, "boolean"),
    ("bit8", "bit(8)", "B'10101010'", _b64(bytes([0b10101010])), "io.debezium.data.Bits"),
    ("bit12", "bit(12)", "B'000000000001'", _b64(bytes([0x01, 0x00])), "io.debezium.data.Bits"),  # sized to 12 bits
    ("vbit", "varbit(16)", "B'101'", _b64(bytes([0b101])), "io.debezium.data.Bits"),  # sized by content
    ("ia", "integer[]", "'{1,NULL,3}'", [1, None, 3], "array"),
    ("ia2", "integer[][]", "'{{1,2},{3,NULL}}'", [[1, 2], [3, None]], "array"),
    (
        "ta",
        "text[]",
        "ARRAY['a b', 'c,d', NULL, 'q\"uote', 'back\\slash', '', 'NULL']",
        ["a b", "c,d", None, 'q"uote', "back\\slash", "", "NULL"],
        "array",
    ),
    ("na", "numeric(5,2)[]", "'{1.50,-2.25}'", [_dec(150), _dec(-225)], "array"),
    ("da", "date[]", "'{2024-01-01,infinity}'", [19723, -2147472692], "array"),
    ("tza", "timestamptz(3)[]", "'{\"2024-01-01 01:00:00+01\"}'", ["2024-01-01T00:00:00.000Z"], "array"),
    ("en", "mood", "'happy'", "happy", "io.debezium.data.Enum"),
    ("ena", "mood[]", "'{sad,happy}'", ["sad", "happy"], "array"),
    ("dom", "posint", "42", 42, "int32"),
    ("lt", "ltree", "'a.b.c'", "a.b.c", "io.debezium.data.Ltree"),
    ("rng", "int4range", "'[1,10)'", "[1,10)", "string"),
    ("pt", "point", "'(1.5,2)'", "(1.5,2)", "string"),  # unknown to cdc: the server's text
    ("bx", "box", "'((0,0),(1,1))'", "(1,1),(0,0)", "string"),
    ("nul", "integer", "NULL", None, "int32"),
]

#: Values only ``decimal_handling: string`` can carry (and the others in that mode).
STRING_MATRIX: list[tuple[str, str, str, Any, str]] = [
    ("nnan", "numeric(10,2)", "'NaN'", "NAN", "string"),
    ("ninf", "numeric", "'Infinity'", "POSITIVE_INFINITY", "string"),
    ("nninf", "numeric", "'-Infinity'", "NEGATIVE_INFINITY", "string"),
    ("n", "numeric(20,5)", "-123456789012345.12345", "-123456789012345.12345", "string"),
    ("nfree", "numeric", "0.000000012300", "0.000000012300", "string"),
    ("money_", "money", "-1234.56", "-1234.56", "string"),
]

#: ... and ``decimal_handling: double``.
DOUBLE_MATRIX: list[tuple[str, str, str, Any, str]] = [
    ("nnan", "numeric(10,2)", "'NaN'", "NaN", "float64"),
    ("ninf", "numeric", "'Infinity'", "Infinity", "float64"),
    ("n", "numeric(20,5)", "-12345.125", -12345.125, "float64"),
    ("money_", "money", "-1234.56", -1234.56, "float64"),
]


def _create_matrix(conn, matrix) -> None:
    conn.execute("CREATE EXTENSION IF NOT EXISTS hstore")
    conn.execute("CREATE EXTENSION IF NOT EXISTS citext")
    conn.execute("CREATE EXTENSION IF NOT EXISTS ltree")
    conn.execute("CREATE TYPE mood AS ENUM ('sad', 'happy')")
    conn.execute("CREATE DOMAIN posint AS integer CHECK (VALUE > 0)")
    cols = ", ".join(f"{n} {t}" for n, t, *_ in matrix)
    conn.execute(f"CREATE TABLE m (id int PRIMARY KEY, {cols})")


def _insert_matrix(conn, matrix, key: int) -> None:
    names = ", ".join(n for n, *_ in matrix)
    values = ", ".join(v for _, _, v, *_ in matrix)
    conn.execute(f"INSERT INTO m (id, {names}) VALUES ({key}, {values})")


def _read_matrix(pg_url: str, matrix, extra: str = "") -> dict:
    """One snapshot row and one streamed row of ``matrix``, their definitions and the streamed envelope."""
    import psycopg
    import services
    from conftest import PgDb
    from psycopg import sql

    from cdc.envelope import EnvelopeCodec

    name = unique()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db = PgDb(pg_url, name, services.with_database(pg_url, name))
    slot = unique("slot")
    try:
        with db.connect() as conn:
            conn.execute("SET TimeZone = 'America/New_York'")  # the session's settings must not matter
            conn.execute("SET DateStyle = 'SQL, DMY'")
            conn.execute("SET IntervalStyle = 'sql_standard'")
            _create_matrix(conn, matrix)
            _insert_matrix(conn, matrix, 1)
        src = _source(db, slot, extra=extra)
        src.open(None)
        try:
            items = _read(src, _streaming_started)
            with db.connect() as conn:
                conn.execute("SET TimeZone = 'Asia/Kolkata'")
                conn.execute("SET lc_monetary = 'C.UTF-8'")
                _insert_matrix(conn, matrix, 2)
            items += _read(src, lambda xs: any(isinstance(x, ChangeEvent) and x.op is Op.CREATE for x in xs))
        finally:
            src.close()
        schemas = [i for i in items if isinstance(i, SchemaChange)]
        snap = next(i for i in items if isinstance(i, ChangeEvent) and i.op is Op.READ)
        stream = next(i for i in items if isinstance(i, ChangeEvent) and i.op is Op.CREATE)
        envelope = orjson.loads(EnvelopeCodec("t").encode_value(stream, schemas[-1].schema))
        return {"snapshot": snap.after, "stream": stream.after, "schemas": schemas, "envelope": envelope}
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                "WHERE slot_name = %s AND active_pid IS NOT NULL",
                (slot,),
            )
            for _ in range(50):
                if not admin.execute(
                    "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s AND active", (slot,)
                ).fetchone():
                    break
                time.sleep(0.1)
            admin.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            )
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def matrix_rows(pg_url: str) -> dict:
    """The type matrix under the default modes, read once for the module."""
    return _read_matrix(pg_url, TYPE_MATRIX)


@pytest.fixture(scope="module")
def string_rows(pg_url: str) -> dict:
    return _read_matrix(pg_url, STRING_MATRIX, "  decimal_handling: string\n")


@pytest.fixture(scope="module")
def double_rows(pg_url: str) -> dict:
    return _read_matrix(pg_url, DOUBLE_MATRIX, "  decimal_handling: double\n")


def _check(rows: dict, matrix, column: str) -> None:
    _, _, _, expected, schema_name = next(entry for entry in matrix if entry[0] == column)
    snap, stream = rows["snapshot"], rows["stream"]
    assert column in snap and column in stream
    assert snap[column] == stream[column], "snapshot and stream disagree"
    assert stream[column] == expected
    assert rows["envelope"]["after"][column] == expected  # and so does the JSON on the topic
    definition = rows["schemas"][-1].schema.column(column)
    assert (definition.wire.name or definition.wire.type) == schema_name
    assert definition.logical.value != "unknown" or column in ("pt", "bx")


def test_matrix_definitions_agree(matrix_rows: dict) -> None:
    """The stream announced the definition the snapshot did: no ALTER for the same table."""
    kinds = [(c.kind, c.schema.table.table) for c in matrix_rows["schemas"]]
    assert kinds == [("CREATE", "m")]


@pytest.mark.parametrize("column", [n for n, *_ in TYPE_MATRIX])
def test_snapshot_value_equals_stream_value_and_debeziums(matrix_rows: dict, column: str) -> None:
    _check(matrix_rows, TYPE_MATRIX, column)


@pytest.mark.parametrize("column", [n for n, *_ in STRING_MATRIX])
def test_decimal_handling_string(string_rows: dict, column: str) -> None:
    _check(string_rows, STRING_MATRIX, column)


@pytest.mark.parametrize("column", [n for n, *_ in DOUBLE_MATRIX])
def test_decimal_handling_double(double_rows: dict, column: str) -> None:
    _check(double_rows, DOUBLE_MATRIX, column)


def test_nan_in_precise_mode_stops_with_a_clear_error(pg_db) -> None:
    """Debezium cannot carry NaN in a precise decimal either: the source refuses, naming the remedy."""
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v numeric(10,2))")
        conn.execute("INSERT INTO t VALUES (1, 'NaN')")
    src = _source(pg_db, slot)
    src.open(None)
    try:
        with pytest.raises(DecodeError, match=r"column 'v'.*decimal_handling to string or double"):
            _read(src, _streaming_started)
    finally:
        src.close()
