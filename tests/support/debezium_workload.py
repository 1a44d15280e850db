"""The fixture workload that real Debezium recorded (tests/fixtures/debezium/) and that the
interoperability test replays through cdc's own sources.

Both sides run exactly these statements: :data:`*_SETUP` before capture starts (the snapshot,
``op: r``), then :data:`*_CHANGES` one transaction per item while capture streams. Every value
is a literal, so two runs produce the same rows. ``DATABASE`` names the MariaDB database and
the PostgreSQL schema (in the PostgreSQL database ``PG_DATABASE``); the recorded topics and
source blocks carry these names.
"""

from __future__ import annotations

from typing import Any

DATABASE = "dbzfx"
PG_DATABASE = "cdc_dbzfx"

#: Debezium's topic prefixes in the recording: <engine>_<converter mode>.
PREFIXES = {
    ("mariadb", True): "dbz_my_s",
    ("mariadb", False): "dbz_my_p",
    ("postgresql", True): "dbz_pg_s",
    ("postgresql", False): "dbz_pg_p",
}

BIG = "".join(chr(0x41 + (i * 7919) % 26) for i in range(12_000))  # 12 KB, TOASTed in PostgreSQL

MARIADB_SETUP: list[str] = [
    f"DROP DATABASE IF EXISTS {DATABASE}",
    f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4",
    f"USE {DATABASE}",
    """CREATE TABLE types (
        id INT PRIMARY KEY,
        ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT, i INT UNSIGNED,
        bi BIGINT, bu BIGINT UNSIGNED, flag TINYINT(1),
        dec1 DECIMAL(12,4), dec2 DECIMAL(30,10), fl FLOAT, db DOUBLE,
        d DATE, dt0 DATETIME, dt3 DATETIME(3), dt6 DATETIME(6), ts TIMESTAMP(6) NULL,
        tm TIME(2), y YEAR,
        c CHAR(4), vc VARCHAR(50), tx TEXT,
        bin BINARY(4), vb VARBINARY(16), bl BLOB,
        e ENUM('small','medium','large'), st SET('x','y','z'), bt BIT(10)
    )""",
    """CREATE TABLE orders (
        region CHAR(2) NOT NULL, order_no INT NOT NULL, customer VARCHAR(40) NOT NULL,
        amount DECIMAL(10,2), note TEXT,
        PRIMARY KEY (region, order_no)
    )""",
    """INSERT INTO types VALUES
        (1, -128, 255, -32768, 8388607, 4294967295, -9223372036854775808, 18446744073709551615, 1,
         12345678.1234, 12345678901234567890.0123456789, 1.5, 2.25,
         '2024-02-29', '2024-02-29 12:34:56', '2024-02-29 12:34:56.123', '2024-02-29 12:34:56.123456',
         '2024-02-29 12:34:56.654321', '-12:34:56.25', 2024,
         'ab', 'héllo 😀', 'text ☕', x'00010203', x'cafebabe', x'00ff00ff',
         'medium', 'x,z', b'1010101010'),
        (2, 127, 0, 32767, -8388608, 0, 9223372036854775807, 0, 0,
         -0.0001, -99999999999999999999.9999999999, -3.5, -1e300,
         '1970-01-01', '1970-01-01 00:00:00', '1999-12-31 23:59:59.999', '1999-12-31 23:59:59.999999',
         '1970-01-02 00:00:00', '838:59:59', 1901,
         '', '', '', x'00000000', x'', x'',
         'small', '', b'0'),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""",
    """INSERT INTO orders VALUES
        ('eu', 1, 'alice', 10.50, 'first'), ('eu', 2, 'bob', 20.00, NULL),
        ('us', 1, 'carol', 30.25, 'third'), ('us', 2, 'dave', 0.01, 'fourth')""",
]

MARIADB_CHANGES: list[list[str]] = [
    [
        """INSERT INTO types (id, ti, bi, dec1, d, dt6, ts, tm, vc, vb, e, st, bt) VALUES
           (4, 5, 42, 1.5, '2000-01-01', '2000-01-01 00:00:00.000001', '2000-01-01 00:00:00.5',
            '00:00:00.01', 'stream 🚀', x'01', 'large', 'y', b'1')""",
        "INSERT INTO orders VALUES ('ap', 7, 'erin', 99.99, 'new')",
    ],
    ["UPDATE types SET vc = 'changed', dec2 = 0.5, tm = '-00:00:00.25', st = 'x,y,z' WHERE id = 1"],
    ["UPDATE types SET ti = NULL, tx = 'now text' WHERE id = 2", "DELETE FROM types WHERE id = 3"],
    ["UPDATE orders SET amount = amount + 1 WHERE region = 'eu'"],
    ["UPDATE orders SET order_no = 3 WHERE region = 'us' AND order_no = 1"],  # a primary-key change
    ["DELETE FROM orders WHERE region = 'us' AND order_no = 2"],
    ["ALTER TABLE orders ADD COLUMN status VARCHAR(12) NOT NULL DEFAULT 'open'"],
    [
        "INSERT INTO orders (region, order_no, customer, amount, status) VALUES ('eu', 3, 'frank', 5, 'paid')",
        "UPDATE orders SET status = 'shipped' WHERE region = 'eu' AND order_no = 1",
    ],
]

PG_SETUP: list[str] = [
    f"DROP SCHEMA IF EXISTS {DATABASE} CASCADE",
    f"CREATE SCHEMA {DATABASE}",
    f"""CREATE TABLE {DATABASE}.types (
        id INT PRIMARY KEY,
        si SMALLINT, i INT, bi BIGINT, flag BOOLEAN,
        num NUMERIC(12,4), num2 NUMERIC(30,10), r REAL, dp DOUBLE PRECISION,
        d DATE, ts3 TIMESTAMP(3), ts6 TIMESTAMP, tstz TIMESTAMPTZ, t TIME, tz TIMETZ,
        c CHAR(4), vc VARCHAR(50), tx TEXT, ba BYTEA, u UUID, j JSON, jb JSONB,
        iv INTERVAL, ia INT[], ta TEXT[]
    )""",
    f"""CREATE TABLE {DATABASE}.orders (
        region CHAR(2) NOT NULL, order_no INT NOT NULL, customer VARCHAR(40) NOT NULL,
        amount NUMERIC(10,2), note TEXT,
        PRIMARY KEY (region, order_no)
    )""",
    f"CREATE TABLE {DATABASE}.docs (id INT PRIMARY KEY, title TEXT, body TEXT)",
    f"ALTER TABLE {DATABASE}.docs ALTER COLUMN body SET STORAGE EXTERNAL",
    f"""INSERT INTO {DATABASE}.types VALUES
        (1, -32768, -2147483648, -9223372036854775808, true,
         12345678.1234, 12345678901234567890.0123456789, 1.5, 2.25,
         '2024-02-29', '2024-02-29 12:34:56.123', '2024-02-29 12:34:56.123456',
         '2024-02-29 12:34:56.654321+02', '12:34:56.25', '12:34:56+05:30',
         'ab', 'héllo 😀', 'text ☕', '\\x00ff00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
         '{{"a": [1, 2]}}', '{{"b": {{"c": null}}}}',
         '1 year 2 months 3 days 04:05:06.5', '{{1,2,3}}', '{{"x","y z"}}'),
        (2, 32767, 2147483647, 9223372036854775807, false,
         -0.0001, -99999999999999999999.9999999999, -3.5, -1e300,
         '1970-01-01', '1999-12-31 23:59:59.999', '1999-12-31 23:59:59.999999',
         '1970-01-01 00:00:00+00', '00:00:00', '23:59:59-08',
         '', '', '', '\\x', '00000000-0000-0000-0000-000000000000', '[]', '{{}}',
         '-1 days', '{{}}', '{{}}'),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""",
    f"""INSERT INTO {DATABASE}.orders VALUES
        ('eu', 1, 'alice', 10.50, 'first'), ('eu', 2, 'bob', 20.00, NULL),
        ('us', 1, 'carol', 30.25, 'third'), ('us', 2, 'dave', 0.01, 'fourth')""",
    f"INSERT INTO {DATABASE}.docs VALUES (1, 'big', '{BIG}'), (2, 'small', 'tiny')",
]

PG_CHANGES: list[list[str]] = [
    [
        f"""INSERT INTO {DATABASE}.types (id, i, num, d, ts6, tstz, vc, ba, jb, iv, ia) VALUES
           (4, 42, 1.5, '2000-01-01', '2000-01-01 00:00:00.000001', '2000-01-01 00:00:00.5+00',
            'stream 🚀', '\\x01', '[1, "two"]', '00:00:00.000001', '{{7}}')""",
        f"INSERT INTO {DATABASE}.orders VALUES ('ap', 7, 'erin', 99.99, 'new')",
    ],
    [f"UPDATE {DATABASE}.types SET vc = 'changed', num2 = 0.5, t = '23:59:59.999999' WHERE id = 1"],
    [
        f"UPDATE {DATABASE}.types SET si = NULL, tx = 'now text' WHERE id = 2",
        f"DELETE FROM {DATABASE}.types WHERE id = 3",
    ],
    [f"UPDATE {DATABASE}.orders SET amount = amount + 1 WHERE region = 'eu'"],
    [f"UPDATE {DATABASE}.orders SET order_no = 3 WHERE region = 'us' AND order_no = 1"],  # a primary-key change
    [f"DELETE FROM {DATABASE}.orders WHERE region = 'us' AND order_no = 2"],
    [f"UPDATE {DATABASE}.docs SET title = 'big, renamed' WHERE id = 1"],  # body is unchanged TOAST
    [f"ALTER TABLE {DATABASE}.orders ADD COLUMN status VARCHAR(12) NOT NULL DEFAULT 'open'"],
    [
        f"INSERT INTO {DATABASE}.orders (region, order_no, customer, amount, status) "
        "VALUES ('eu', 3, 'frank', 5, 'paid')",
        f"UPDATE {DATABASE}.orders SET status = 'shipped' WHERE region = 'eu' AND order_no = 1",
    ],
]

#: Row events the changes produce per engine (a primary-key change is a delete and a create for
#: Debezium; the ALTER produces none): the recorder waits for them.
STREAM_EVENTS = {"mariadb": 12, "postgresql": 13}
SNAPSHOT_ROWS = {"mariadb": 7, "postgresql": 9}


def run_mariadb(conn: Any, statements: list[str] | list[list[str]]) -> None:
    """``statements`` on a PyMySQL connection, in UTC, each item (a statement or a list) one transaction;
    closes the connection."""
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            for item in statements:
                cur.execute("BEGIN")
                for stmt in item if isinstance(item, list) else [item]:
                    cur.execute(stmt)
                cur.execute("COMMIT")
    finally:
        conn.close()


def run_pg(conn: Any, statements: list[str] | list[list[str]]) -> None:
    """``statements`` on a psycopg connection, each item (a statement or a list) one transaction; closes it."""
    with conn:
        for item in statements:
            for stmt in item if isinstance(item, list) else [item]:
                conn.execute(stmt)
            conn.commit()
