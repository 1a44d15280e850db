"""Native chunk encodings against real servers (PostgreSQL and MariaDB sources and targets, no Kafka).

Every test takes the same source twice: once in the source's native encoding (``pg-copy``,
``mysql-tsv``) and once as JSON lines (``native=False``, the initial snapshot's own row images,
the format-1 path). The native backup must read back to exactly the JSON-lines rows, and restore to
exactly the same target tables: loaded as stored into the same engine, converted into the other.
Values are chosen to break a careless encoder: tabs, line feeds, backslashes, ``\\N`` as text,
every byte in binary columns, NULL in every column, extreme numbers and times.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import services

from cdc.backup.catalog import Catalog
from cdc.backup.create import create_backup
from cdc.backup.format import ChunkCodec, Manifest, iter_rows, read_chunk
from cdc.backup.restore import Until, restore
from cdc.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]
NASTY = ["tab\there", "line\nfeed", "back\\slash", "\\N", "NULL", "", "ends with \\", "cr\r", "ünï ☕ 𝄞", "'\"`"]

PG_KINDS = """CREATE TABLE kinds (
  id integer PRIMARY KEY, b boolean, i2 smallint, i8 bigint, r real, d double precision, n numeric(30,8),
  nn numeric, t text, v varchar(40), c char(6), by bytea, dt date, ts timestamp(6), tz timestamptz,
  tm time(6), iv interval, u uuid, j json, jb jsonb, a integer[], ta text[], ip inet, m money,
  bits bit(4), vb varbit(12), e mood, x xml, pt point)"""
PG_PLAIN = """CREATE TABLE plain (
  id bigint PRIMARY KEY, n integer, amount numeric(12,2), at timestamp(6), at_tz timestamptz, note varchar(200),
  flag boolean, raw bytea, doc jsonb, day date, f double precision, tags text[])"""
PG_FILL_PLAIN = """INSERT INTO plain
SELECT g, g %% 97, (g %% 100000) / 100.0, timestamp '2023-11-14' + g * interval '1.000001 s',
       timestamptz '2001-02-03 04:05:06.789+02' + g * interval '1 min', 'note ' || g, g %% 3 = 0,
       decode(md5(g::text), 'hex'), jsonb_build_object('g', g, 's', 'x' || g), date '2020-01-01' + g,
       g / 7.0, ARRAY['a' || g, 'b']
FROM generate_series(1, %s) g"""

#: Every type a pg-binary chunk holds, with the values that break a careless binary reader (BC and
#: infinite times, far-off years, extreme numbers, fractions with trailing zeros, padded chars).
PG_SIMPLE = """CREATE TABLE simple (
  id integer PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint, d double precision, n numeric(30,8),
  nn numeric, t text, v varchar(40), c char(6), by bytea, dt date, ts timestamp(6), ts0 timestamp(0),
  tz timestamptz, u uuid, j json, jb jsonb)"""
PG_SIMPLE_ROW = (
    "INSERT INTO simple VALUES (%s, %s::boolean, %s::smallint, %s::integer, %s::bigint, %s::float8, %s::numeric, "
    "%s::numeric, %s, %s, %s, %s, %s::date, %s::timestamp, %s::timestamp, %s::timestamptz, %s::uuid, %s::json, "
    "%s::jsonb)"
)
#: One row a line, in two halves: b | i2 | i4 | i8 | d | n | nn, and dt | ts | ts0 | tz (the text columns get
#: NASTY's values).
_SIMPLE_NUMBERS = """
t|-32768|-2147483648|-9223372036854775808|5e-324|-99999999999999999999.99999999|0
f|32767|2147483647|9223372036854775807|-0|99999999999999999999.99999999|-0.000
t|0|0|0|Infinity|0.00000001|1e-20
f|-1|-1|-1|-Infinity|-0.5|-123456789012345678901234567890.5
t|1|1|1|NaN|12345678.9|1e100
f|7|70000|7000000000|1e308|100000000|123.4500
t|-7|-70000|-7000000000|0.1|-1|-0.0001
f|9999|99999999|99999999999|0.3333333333333333|1|10000
t|12|12|12|9007199254740992|0|0.000000000000000000000000000001
f|-12|-12|-12|123.456|-0.00000001|99999999999999999999999999999999
"""
_SIMPLE_TIMES = """
4713-01-01 BC|4713-01-01 00:00:00 BC|4713-01-01 00:00:00 BC|4713-01-01 00:00:00+00 BC
0001-12-31 BC|0044-03-15 12:00:00.5 BC|0001-12-31 23:59:59 BC|0044-03-15 12:00:00.000001+05:30 BC
0001-01-01|0001-01-01 00:00:00|0001-01-01 00:00:00|0001-01-01 00:00:00+00
1999-12-31|1999-12-31 23:59:59.999999|1999-12-31 23:59:59|1999-12-31 23:59:59.999999+00
2000-01-01|2000-01-01 00:00:00|2000-01-01 00:00:00|2000-01-01 00:00:00-01
2000-02-29|1970-01-01 00:00:00.000001|1970-01-01 00:00:01|1969-12-31 23:59:59.999999+00
1900-03-01|1899-12-31 23:59:59.00001|1899-12-31 23:59:59|1899-12-31 23:59:59.00001+00
5874897-12-31|200000-06-30 12:00:00.5|200000-06-30 12:00:01|200000-06-30 12:00:00.000001+00
infinity|infinity|infinity|infinity
-infinity|-infinity|-infinity|-infinity
"""
PG_SIMPLE_VALUES = [
    a.split("|") + b.split("|")
    for a, b in zip(_SIMPLE_NUMBERS.strip().splitlines(), _SIMPLE_TIMES.strip().splitlines(), strict=True)
]

#: A table of binary-format types with everyday values (restorable into MariaDB), more than one chunk.
PG_ORDERS = """CREATE TABLE orders (
  id bigint PRIMARY KEY, customer integer, status varchar(16), amount numeric(12,2), at timestamp(6),
  at_tz timestamptz, note text, paid boolean, day date, ratio double precision, ref uuid, doc jsonb, raw bytea)"""
PG_FILL_ORDERS = """INSERT INTO orders
SELECT g, g %% 9973, (ARRAY['new', 'paid', 'shipped'])[g %% 3 + 1], (g %% 100000) / 100.0,
       timestamp '2023-11-14' + g * interval '1.000001 s',
       timestamptz '2001-02-03 04:05:06.789+02' + g * interval '1 h',
       'order ' || g || ' ' || md5(g::text), g %% 2 = 0, date '1999-12-25' + g, g / 7.0, md5(g::text)::uuid,
       jsonb_build_object('g', g), decode(md5(g::text), 'hex')
FROM generate_series(1, %s) g"""

MY_KINDS = """CREATE TABLE kinds (
  id INT PRIMARY KEY, ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, i INT, ub BIGINT UNSIGNED, b BIGINT,
  d DECIMAL(30,10), f FLOAT, db DOUBLE, c CHAR(6), v VARCHAR(60), t TEXT, mt MEDIUMTEXT,
  l1 VARCHAR(40) CHARACTER SET latin1, bi BINARY(4), vb VARBINARY(300), bl BLOB, dt DATE, dtm DATETIME(6),
  ts TIMESTAMP(3) NULL, tm TIME(6), y YEAR, e ENUM('small', 'médium', 'large'), s SET('a', 'b', 'ç'), j JSON)
  CHARACTER SET utf8mb4"""
MY_PLAIN = """CREATE TABLE plain (
  id BIGINT PRIMARY KEY, n INT, amount DECIMAL(12,2), at DATETIME(6), note VARCHAR(200), flag TINYINT,
  raw VARBINARY(32), day DATE, f DOUBLE) CHARACTER SET utf8mb4"""
MY_FILL_PLAIN = """INSERT INTO plain
SELECT seq, seq % 97, (seq % 100000) / 100, TIMESTAMP('2023-11-14') + INTERVAL seq SECOND, CONCAT('note ', seq),
       seq % 2, UNHEX(MD5(seq)), DATE('2020-01-01') + INTERVAL seq DAY, seq / 7
FROM seq_1_to_{n}"""


# ---------------------------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------------------------


@contextmanager
def _fresh_pg(server_url: str) -> Iterator[str]:
    import psycopg
    from psycopg import sql

    name = f"cdc_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield services.with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def _fresh_mysql(server_url: str) -> Iterator[str]:
    import pymysql

    name = f"cdc_t_{uuid.uuid4().hex[:10]}"
    conn = pymysql.connect(**services.mysql_params(server_url, ""))
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield services.with_database(server_url, name)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def _pg_rows(url: str, schema: str, table: str) -> list[tuple[Any, ...]]:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        q = sql.SQL("SELECT * FROM {}.{} ORDER BY id").format(sql.Identifier(schema), sql.Identifier(table))
        return [_comparable(r) for r in conn.execute(q).fetchall()]


def _pg_text_rows(url: str, schema: str, table: str) -> list[str]:
    """Every row as PostgreSQL writes it as text (BC and infinite dates have no Python value)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        q = sql.SQL("SELECT r::text FROM {}.{} r ORDER BY id").format(sql.Identifier(schema), sql.Identifier(table))
        return [str(r[0]) for r in conn.execute(q).fetchall()]


def _comparable(row: Any) -> tuple[Any, ...]:
    """A row with NaN as text (NaN equals nothing, not even itself)."""
    return tuple("NaN" if isinstance(v, float) and v != v else v for v in row)


def _pg_key(url: str, schema: str, table: str) -> list[str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT a.attname::text FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid "
            "AND a.attnum = ANY(c.conkey) WHERE c.contype = 'p' AND c.conrelid = to_regclass(format('%%I.%%I', "
            "%s::text, %s::text))",
            (schema, table),
        ).fetchall()
    return [r[0] for r in rows]


def _my_rows(url: str, table: str) -> list[tuple[Any, ...]]:
    import pymysql

    p = services.mysql_params(url)
    conn = pymysql.connect(**p)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM `{table}` ORDER BY id")
            return [_comparable(r) for r in cur.fetchall()]
    finally:
        conn.close()


def _config(path: Path, name: str, source: str, chunk_rows: int) -> Config:
    path.write_text(
        f"name: {name}\nsource:\n{source}"
        f"bus:\n  type: direct\nsinks:\n  - name: unused\n    url: sqlite:///{path.parent / 'unused.db'}\n"
        f"backups:\n  destination: backups\n  chunk_rows: {chunk_rows}\n"
    )
    return load_config(path)


def _rows(config: Config, manifest: Manifest, table: str) -> list[dict[str, Any]]:
    assert config.backups is not None
    entry = next(t for t in manifest.tables if t.table.table == table)
    rows = [r for _, chunk in iter_rows(config.backups.destination / manifest.id, manifest, entry, None) for r in chunk]
    return sorted(rows, key=lambda r: int(r["id"]))


def _both(config: Config) -> tuple[Manifest, Manifest]:
    native = create_backup(config, backup_id="native")
    converted = create_backup(config, backup_id="jsonl", native=False)
    assert config.backups is not None
    catalog = Catalog(config.backups.destination, None)
    for m in (native, converted):
        assert catalog.verify(m.id).rows == m.rows
    return native, converted


# ---------------------------------------------------------------------------------------------
# PostgreSQL source
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def pg_source(pg_db: Any) -> Any:
    with pg_db.connect() as conn:
        conn.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
        conn.execute(PG_KINDS)
        conn.execute(PG_PLAIN)
        conn.execute(PG_FILL_PLAIN, (3000,))
        conn.execute(PG_SIMPLE)
        conn.execute(PG_ORDERS)
        conn.execute(PG_FILL_ORDERS, (2000,))
        conn.execute("INSERT INTO simple (id) VALUES (0)")  # NULL everywhere
        for i, (b, i2, i4, i8, d, n, nn, dt, ts, ts0, tz) in enumerate(PG_SIMPLE_VALUES, start=1):
            text = NASTY[i - 1]
            conn.execute(
                PG_SIMPLE_ROW,
                (
                    i,
                    b,
                    i2,
                    i4,
                    i8,
                    d,
                    n,
                    nn,
                    text,
                    text[:40],
                    text[:2],
                    bytes(range(256)) if i == 1 else text.encode(),
                    dt,
                    ts,
                    ts0,
                    tz,
                    f"{i:08x}-0000-4000-8000-{i:012x}" if i > 1 else "ffffffff-ffff-ffff-ffff-ffffffffffff",
                    '{"t": ' + __import__("json").dumps(text) + "}",
                    '{"t": ' + __import__("json").dumps(text) + ', "n": [1, 2.5]}',
                ),
            )
        conn.execute("INSERT INTO kinds (id) VALUES (0)")  # NULL everywhere
        for i, text in enumerate(NASTY, start=1):
            conn.execute(
                "INSERT INTO kinds VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "%s::uuid, %s::json, %s::jsonb, %s, %s, %s::inet, %s::money, %s::bit(4), %s::varbit, %s::mood, "
                "%s::xml, %s::point)",
                (
                    i,
                    i % 2 == 0,
                    -(2**15) + i,
                    2**63 - i,
                    [1.5, float("nan"), float("inf"), -0.0, 3.4e38, 1e-45, 0.1, 7, 8, 9][i - 1],
                    [0.1, float("-inf"), 1e308, 5e-324, -2.5, 1 / 3, 2**53, 0.0, 1e16, 123.456][i - 1],
                    f"{(-1) ** i * i}1234567890123456789.12345678",
                    ["0", "-0.000", "1e-20", "-123456789012345678901234567890.5", "7", "8", "9", "10", "11", "12"][
                        i - 1
                    ],
                    text,
                    text[:40],
                    text[:6],
                    bytes(range(256)) if i == 1 else text.encode() + b"\x00\\\t\n",
                    f"{1900 + 10 * i}-0{i % 9 + 1}-1{i % 9}",
                    f"{1970 + i}-12-31 23:59:59.{i:06d}",
                    f"{2000 + i}-06-15 12:30:45.{i:06d}+0{i % 9}:30",
                    f"{i:02d}:0{i % 9}:59.{i:06d}",
                    f"{i} years {i} mons {i} days 0{i % 9}:00:00.{i:06d}",
                    f"0000000{i % 9}-0000-0000-0000-000000000000",
                    '{"t": ' + __import__("json").dumps(text) + "}",
                    '{"t": ' + __import__("json").dumps(text) + ', "n": [1, 2.5]}',
                    [i, None, -i],
                    [text, None, "q\"u'o,te{}"],
                    f"10.0.{i}.1/24",
                    f"{i * 1000}.{i:02d}",
                    f"{i % 16:04b}",
                    f"{i:b}",
                    ["sad", "ok", "happy"][i % 3],
                    f"<t a='{i}'>x &amp; y</t>",
                    f"({i}.5,-{i})",
                ),
            )
    return pg_db


def _pg_source_config(tmp_path: Path, url: str, chunk_rows: int = 1000) -> Config:
    return _config(
        tmp_path / "cdc.yaml", "native_pg", f"  type: postgres\n  url: {url}\n  tables: ['public.*']\n", chunk_rows
    )


PG_TABLES = ("kinds", "orders", "plain", "simple")


def test_a_pg_native_backup_reads_back_as_the_initial_snapshot_s_rows(pg_source: Any, tmp_path: Path) -> None:
    """Text COPY for tables with a type the binary format does not take, binary COPY for the others: both
    read back, value for value, as the initial snapshot's row images (the JSON-lines backup)."""
    config = _pg_source_config(tmp_path, pg_source.url)
    native, converted = _both(config)
    encodings = {t.table.table: t.encoding for t in native.tables}
    assert encodings == {"kinds": "pg-copy", "orders": "pg-binary", "plain": "pg-copy", "simple": "pg-binary"}
    assert {t.encoding for t in converted.tables} == {"jsonl"}
    plain = next(t for t in native.tables if t.table.table == "plain")
    assert plain.rows == 3000 and len(plain.chunks) == 3
    for table in PG_TABLES:
        assert _rows(config, native, table) == _rows(config, converted, table), table


def test_the_compiled_binary_copy_reader_reads_chunks_as_the_python_one(pg_source: Any, tmp_path: Path) -> None:
    from connectors.postgres import copybin

    config = _pg_source_config(tmp_path, pg_source.url)
    manifest = create_backup(config, backup_id="b")
    assert config.backups is not None
    codec = ChunkCodec(manifest.id, None)
    for entry in manifest.tables:
        if entry.encoding != "pg-binary":
            continue
        width = len(entry.native["columns"]) if entry.native else 0
        for chunk in entry.chunks:
            text = codec.open(read_chunk(config.backups.destination / manifest.id, chunk, "b"), chunk, "b")
            rows = copybin._split_python(text, width)
            assert len(rows) == chunk.rows
            assert copybin.split(text, width) == rows


def test_a_pg_copy_backup_restores_as_the_json_lines_one_into_postgres_and_mariadb(
    pg_source: Any, pg_url: str, mysql_url: str, tmp_path: Path
) -> None:
    config = _pg_source_config(tmp_path, pg_source.url)
    native, converted = _both(config)
    with _fresh_pg(pg_url) as a, _fresh_pg(pg_url) as b:
        loaded = restore(config, native.id, a, until=Until.parse("backup"))
        # (simple's BC dates have no Python value: the sink cannot write them; they go in as stored above)
        restore(
            config,
            converted.id,
            b,
            until=Until.parse("backup"),
            tables=["public.kinds", "public.orders", "public.plain"],
        )
        # these tables' columns all keep their type and lose nothing: their chunks went in as stored
        assert sorted(loaded.native) == ["public.orders", "public.plain", "public.simple"]
        assert loaded.loaded_rows == native.rows
        for table in PG_TABLES:
            if table != "simple":
                assert _pg_text_rows(a, "public", table) == _pg_text_rows(b, "public", table), table
            assert _pg_key(a, "public", table) == ["id"], table  # the key dropped for the load is back
        for table in ("orders", "plain", "simple"):
            assert _pg_text_rows(a, "public", table) == _pg_text_rows(pg_source.url, "public", table), table
    with _fresh_mysql(mysql_url) as a, _fresh_mysql(mysql_url) as b:
        tables = ["public.plain", "public.orders"]
        loaded = restore(config, native.id, a, until=Until.parse("backup"), tables=tables)
        restore(config, converted.id, b, until=Until.parse("backup"), tables=tables)
        assert loaded.native == []  # another engine: converted by the connector's decoder
        assert _my_rows(a, "plain") == _my_rows(b, "plain") and len(_my_rows(a, "plain")) == 3000
        assert _my_rows(a, "orders") == _my_rows(b, "orders") and len(_my_rows(a, "orders")) == 2000


def test_a_primary_key_that_other_tables_refer_to_stays_during_the_load(
    pg_source: Any, pg_url: str, tmp_path: Path
) -> None:
    import psycopg

    config = _pg_source_config(tmp_path, pg_source.url)
    manifest = create_backup(config, backup_id="b")
    with _fresh_pg(pg_url) as target:
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(PG_PLAIN)  # the table the sink would create, made beforehand ...
            conn.execute("CREATE TABLE ref (id integer PRIMARY KEY, plain_id bigint REFERENCES plain (id))")
        result = restore(config, manifest.id, target, until=Until.parse("backup"), tables=["public.plain"])
        assert result.native == ["public.plain"]  # ... loaded as stored, with its key in place
        assert _pg_key(target, "public", "plain") == ["id"]
        assert _pg_rows(target, "public", "plain") == _pg_rows(pg_source.url, "public", "plain")


@pytest.mark.parametrize(("table", "total"), [("plain", 3000), ("orders", 2000)])  # text, binary COPY
def test_a_killed_native_pg_restore_finishes_on_rerun(
    pg_source: Any, pg_url: str, tmp_path: Path, table: str, total: int
) -> None:
    config = _pg_source_config(tmp_path, pg_source.url, chunk_rows=250)
    manifest = create_backup(config, backup_id="b")
    with _fresh_pg(pg_url) as target:
        args = ["restore", "-c", str(tmp_path / "cdc.yaml"), "--backup", "b", "--target", target]
        env = {**os.environ, "CDC_FAILPOINTS": "restore.after_chunk:3"}
        proc = subprocess.run(
            [sys.executable, "-m", "cdc", *args, "--tables", f"public.{table}", "--until", "backup", "--parallel", "1"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert len(_pg_rows(target, "public", table)) == 750  # three chunks committed
        assert _pg_key(target, "public", table) == []  # loaded without its key, killed before it was added
        result = restore(config, manifest.id, target, until=Until.parse("backup"), tables=[f"public.{table}"])
        assert result.skipped_chunks == 3 and result.loaded_rows == total - 750
        assert result.native == [f"public.{table}"]
        assert _pg_key(target, "public", table) == ["id"]
        assert _pg_text_rows(target, "public", table) == _pg_text_rows(pg_source.url, "public", table)


# ---------------------------------------------------------------------------------------------
# MariaDB source
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def my_source(mysql_db: Any) -> Any:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute(MY_KINDS)
        cur.execute(MY_PLAIN)
        cur.execute(MY_FILL_PLAIN.format(n=3000))
        cur.execute("INSERT INTO kinds (id) VALUES (0)")  # NULL everywhere
        for i, text in enumerate(NASTY, start=1):
            cur.execute(
                "INSERT INTO kinds VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    i,
                    -128 + i,
                    65535 - i,
                    -8388608 + i,
                    2**31 - i,
                    2**64 - i,
                    -(2**63) + i,
                    f"{'-' if i % 2 else ''}{i % 10}1234567890123456789.0123456789",
                    [1.5, -0.0, 3.4e38, 1e-37, 0.1, 7, 8, 9, 1e10, -2.5][i - 1],
                    [0.1, 1e308, 5e-324, -2.5, 1 / 3, 2**53, 0.0, 1e16, 123.456, -1e-300][i - 1],
                    text[:6],
                    text,
                    text * 3,
                    text + "\x7f",
                    "latin ü é ß"[: i + 2] + text.encode("latin1", "replace").decode("latin1")[:20],
                    bytes([i, 0, 9, 10]),
                    bytes(range(256)) if i == 1 else text.encode() + b"\x00\\\t\n",
                    b"\\N" if i == 2 else text.encode() * 2,
                    f"{1000 + 100 * i}-0{i % 9 + 1}-1{i % 9}",
                    f"{1970 + i}-12-31 23:59:59.{i:06d}",
                    f"{2000 + i}-06-15 12:30:45.{i:03d}",
                    f"{'-' if i % 2 else ''}{80 * i}:0{i % 9}:59.{i:06d}",
                    1901 + 10 * i,
                    ["small", "médium", "large"][i % 3],
                    ["a", "a,b", "ç,b", ""][i % 4],
                    '{"t": ' + __import__("json").dumps(text) + "}",
                ),
            )
    conn.close()
    return mysql_db


def _my_source_config(tmp_path: Path, db: Any, chunk_rows: int = 1000) -> Config:
    source = f"  type: mysql\n  url: {db.server_url}\n  server_id: 88123\n  tables: ['{db.name}.*']\n"
    return _config(tmp_path / "cdc.yaml", "native_my", source, chunk_rows)


def test_a_mysql_tsv_backup_reads_back_as_the_initial_snapshot_s_rows(my_source: Any, tmp_path: Path) -> None:
    config = _my_source_config(tmp_path, my_source)
    native, converted = _both(config)
    assert [t.encoding for t in native.tables] == ["mysql-tsv", "mysql-tsv"]
    assert [t.encoding for t in converted.tables] == ["jsonl", "jsonl"]
    assert [c.rows for c in native.tables[1].chunks] == [1000, 1000, 1000]
    for table in ("kinds", "plain"):
        assert _rows(config, native, table) == _rows(config, converted, table), table


def test_the_compiled_reader_and_the_server_built_lines_give_the_same_chunks(
    my_source: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cdc.backup.format import ChunkCodec, read_chunk
    from connectors.mysql import backup as mysql_backup

    if mysql_backup._SPEEDUPS is None:
        if services.in_ci():  # `make install` builds it: under CI its absence is a failed build, not a choice
            pytest.fail("CI=true and the compiled reader is not built (or CDC_MYSQL_SPEEDUPS=0)")
        pytest.skip("the compiled reader is not built (or CDC_MYSQL_SPEEDUPS=0)")
    config = _my_source_config(tmp_path, my_source, chunk_rows=700)
    compiled = create_backup(config, backup_id="compiled")
    monkeypatch.setattr(mysql_backup, "_SPEEDUPS", None)
    server = create_backup(config, backup_id="server")
    assert config.backups is not None
    codec = ChunkCodec("x", None)

    def texts(m: Manifest) -> list[list[bytes]]:
        path = config.backups.destination / m.id  # type: ignore[union-attr]
        return [[codec.open(read_chunk(path, c, "b"), c, "b") for c in t.chunks] for t in m.tables]

    assert [[c.rows for c in t.chunks] for t in compiled.tables] == [[11], [700, 700, 700, 700, 200]]
    assert texts(compiled) == texts(server)


def test_a_mysql_tsv_backup_restores_as_the_json_lines_one_into_mariadb_and_postgres(
    my_source: Any, pg_url: str, mysql_url: str, tmp_path: Path
) -> None:
    config = _my_source_config(tmp_path, my_source)
    native, converted = _both(config)
    with _fresh_mysql(mysql_url) as a, _fresh_mysql(mysql_url) as b:
        loaded = restore(config, native.id, a, until=Until.parse("backup"))
        restore(config, converted.id, b, until=Until.parse("backup"))
        assert f"{my_source.name}.plain" in loaded.native
        for table in ("kinds", "plain"):
            assert _my_rows(a, table) == _my_rows(b, table), table
        assert _my_rows(a, "plain") == _my_rows(my_source.url, "plain")
    with _fresh_pg(pg_url) as a, _fresh_pg(pg_url) as b:
        loaded = restore(config, native.id, a, until=Until.parse("backup"))
        restore(config, converted.id, b, until=Until.parse("backup"))
        assert loaded.native == []
        for table in ("kinds", "plain"):
            assert _pg_rows(a, my_source.name, table) == _pg_rows(b, my_source.name, table), table


def test_a_killed_load_data_restore_finishes_on_rerun(my_source: Any, mysql_url: str, tmp_path: Path) -> None:
    config = _my_source_config(tmp_path, my_source, chunk_rows=250)
    manifest = create_backup(config, backup_id="b")
    table = f"{my_source.name}.plain"
    with _fresh_mysql(mysql_url) as target:
        args = ["restore", "-c", str(tmp_path / "cdc.yaml"), "--backup", "b", "--target", target, "--tables", table]
        env = {**os.environ, "CDC_FAILPOINTS": "restore.after_chunk:3"}
        proc = subprocess.run(
            [sys.executable, "-m", "cdc", *args, "--until", "backup", "--parallel", "1"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert len(_my_rows(target, "plain")) == 750
        result = restore(config, manifest.id, target, until=Until.parse("backup"), tables=[table])
        assert result.skipped_chunks == 3 and result.loaded_rows == 3000 - 750 and result.native == [table]
        assert _my_rows(target, "plain") == _my_rows(my_source.url, "plain")


def test_a_table_the_tsv_encoding_does_not_cover_keeps_the_whole_backup_in_json_lines(
    my_source: Any, tmp_path: Path
) -> None:
    conn = my_source.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE flags (id INT PRIMARY KEY, f BIT(3))")
        cur.execute("INSERT INTO flags VALUES (1, b'101'), (2, NULL)")
    conn.close()
    config = _my_source_config(tmp_path, my_source)
    manifest = create_backup(config, backup_id="b")
    assert {t.encoding for t in manifest.tables} == {"jsonl"}
    assert _rows(config, manifest, "plain")[0]["id"] == 1


def test_a_mariadb_backup_s_position_carries_the_snapshot_s_gtid_set(my_source: Any, tmp_path: Path) -> None:
    """The GTID set is looked up on a connection of its own while rows stream; the manifest still
    names the set at the snapshot's binlog position, as BINLOG_GTID_POS gives it."""
    from cdc.positions import MySqlPosition

    conn = my_source.connect()
    with conn.cursor() as cur:  # a transaction after the backup's snapshot must not count
        config = _my_source_config(tmp_path, my_source)
        manifest = create_backup(config, backup_id="g")
        cur.execute("INSERT INTO plain (id) VALUES (999999)")
        position = manifest.position
        assert isinstance(position, MySqlPosition)
        cur.execute("SELECT BINLOG_GTID_POS(%s, %s), @@gtid_binlog_pos", (position.file, position.pos))
        expected, now = cur.fetchone()
    conn.close()
    assert position.gtid_set and position.gtid_set == expected
    assert position.gtid_set != now  # the insert above moved the server on; the backup's set did not
    assert position.server_id is not None


def test_the_current_gtid_set_stands_for_a_position_only_while_the_binlog_ends_there(my_source: Any) -> None:
    """A snapshot at the binlog's end takes ``@@gtid_binlog_pos`` (no scan of the binlog file); at any other
    position the answer is None and the caller scans with BINLOG_GTID_POS."""
    from sqlalchemy import create_engine, text

    from connectors.mysql.snapshot import gtids_if_at
    from connectors.sql.config import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(my_source.server_url))
    try:
        with engine.connect() as conn:
            file, pos = conn.execute(text("SHOW MASTER STATUS")).first()[:2]
            scanned = conn.execute(text("SELECT BINLOG_GTID_POS(:f, :p)"), {"f": file, "p": pos}).scalar()
            assert gtids_if_at(conn, str(file), int(pos)) == scanned
            assert gtids_if_at(conn, str(file), int(pos) - 1) is None
            assert gtids_if_at(conn, "mariadb-bin.999999", int(pos)) is None
    finally:
        engine.dispose()


@pytest.mark.parametrize("mode", ["debezium", "error"])
def test_zero_dates_restore_into_mariadb_as_zero_date_handling_says(
    mysql_db: Any, mysql_url: str, tmp_path: Path, mode: str
) -> None:
    """A strict target refuses a LOAD DATA chunk holding zero dates; that chunk then goes through the
    source's converters, so zero_date_handling decides: NULL or the epoch. Under ``error`` the backup
    itself stops, naming the column (as the snapshot and the binlog would), and leaves no backup."""
    from cdc.errors import DecodeError

    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute("CREATE TABLE z (id INT PRIMARY KEY, d DATE, dt DATETIME NOT NULL)")
        cur.execute("INSERT INTO z VALUES (1, '2020-01-01', '2020-01-01 10:00:00'), (2, '0000-00-00', '0000-00-00')")
    conn.close()
    source = (
        f"  type: mysql\n  url: {mysql_db.server_url}\n  server_id: 88124\n  tables: ['{mysql_db.name}.*']\n"
        f"  zero_date_handling: {mode}\n"
    )
    config = _config(tmp_path / "cdc.yaml", "zero_my", source, 1000)
    if mode == "error":
        with pytest.raises(DecodeError, match=r"\.z\.d holds the zero or invalid date '0000-00-00'"):
            create_backup(config, backup_id="z")
        assert config.backups is not None
        assert Catalog(config.backups.destination, None).entries() == []
        return
    manifest = create_backup(config, backup_id="z")
    assert [t.encoding for t in manifest.tables] == ["mysql-tsv"]
    table = f"{mysql_db.name}.z"
    with _fresh_mysql(mysql_url) as target:
        result = restore(config, manifest.id, target, until=Until.parse("backup"), tables=[table])
        assert result.loaded_rows == 2 and result.native == []  # loaded, but not as stored
        rows = _my_rows(target, "z")
    assert [r[0] for r in rows] == [1, 2]
    assert rows[1][1] is None and str(rows[1][2]) == "1970-01-01 00:00:00"  # nullable: NULL; NOT NULL: epoch
    assert str(rows[0][1]) == "2020-01-01" and str(rows[0][2]) == "2020-01-01 10:00:00"
