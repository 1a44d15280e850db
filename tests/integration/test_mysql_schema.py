"""Table definitions built from real MariaDB TABLE_MAP events (binlog_row_metadata=FULL)."""

from __future__ import annotations

import os

import pytest
import services

from cdc.errors import SchemaError
from cdc.events import Logical
from connectors.mysql.schema import TypeModes, schema_from_table_map


def _table_maps(mysql_db, statements: list[str]) -> list:
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.row_event import TableMapEvent

    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        log_file, log_pos = cur.fetchone()[:2]
        for sql in statements:
            cur.execute(sql)
    params = services.mysql_params(mysql_db.server_url, database="")
    reader = BinLogStreamReader(
        connection_settings={k: params[k] for k in ("host", "port", "user", "password")},
        server_id=60_000 + os.getpid() % 10_000, only_events=[TableMapEvent], only_schemas=[mysql_db.name],
        log_file=log_file, log_pos=log_pos, resume_stream=True, blocking=False)
    try:
        return list(reader)
    finally:
        reader.close()


def test_type_matrix_definition(mysql_db) -> None:
    maps = _table_maps(mysql_db, [
        "CREATE TABLE m (id BIGINT UNSIGNED NOT NULL, k2 SMALLINT NOT NULL, ti TINYINT, tu TINYINT UNSIGNED, "
        "mi MEDIUMINT, i INT UNSIGNED, f FLOAT, d DOUBLE, dec1 DECIMAL(65,30), dt DATETIME(3), dt6 DATETIME(6), "
        "ts TIMESTAMP(6) NULL, tm TIME(2), dd DATE, y YEAR, v VARCHAR(20) CHARACTER SET utf8mb4, "
        "l1 VARCHAR(10) CHARACTER SET latin1, c CHAR(3), vb VARBINARY(16), b BLOB, tx TEXT, "
        "e ENUM('a','b c'), s SET('x','y'), b1 BIT(1), b9 BIT(9), j JSON, g GEOMETRY, PRIMARY KEY (id, k2))",
        "INSERT INTO m (id, k2) VALUES (1, 2)",
    ])
    schema = schema_from_table_map(maps[0], TypeModes())
    assert str(schema.table) == f"{mysql_db.name}.m"
    assert schema.primary_key == ("id", "k2")
    natives = {c.name: c.native_type for c in schema.columns}
    assert natives == {
        "id": "BIGINT UNSIGNED", "k2": "SMALLINT", "ti": "TINYINT", "tu": "TINYINT UNSIGNED", "mi": "MEDIUMINT",
        "i": "INT UNSIGNED", "f": "FLOAT", "d": "DOUBLE", "dec1": "DECIMAL(65,30)", "dt": "DATETIME(3)",
        "dt6": "DATETIME(6)", "ts": "TIMESTAMP(6)", "tm": "TIME(2)", "dd": "DATE", "y": "YEAR",
        "v": "VARCHAR(20)", "l1": "VARCHAR(10)", "c": "CHAR(3)", "vb": "VARBINARY(16)", "b": "BLOB",
        "tx": "TEXT", "e": "ENUM", "s": "SET", "b1": "BIT(1)", "b9": "BIT(9)", "g": "GEOMETRY",
        # MariaDB's JSON is LONGTEXT with a json_valid check; MySQL 8 has a binary JSON type
        "j": "JSON" if natives["j"] == "JSON" else "LONGTEXT",
    }
    col = schema.column
    assert not col("id").nullable and col("ti").nullable
    assert col("id").logical is Logical.UINT64
    assert col("dec1").wire.name == "org.apache.kafka.connect.data.Decimal" and col("dec1").scale == 30
    assert col("dt").wire.name == "io.debezium.time.Timestamp"
    assert col("dt6").wire.name == "io.debezium.time.MicroTimestamp"
    assert col("ts").wire.name == "io.debezium.time.ZonedTimestamp"
    assert col("tm").wire.name == "io.debezium.time.MicroTime"
    assert col("e").enum_values == ("a", "b c") and col("e").wire.name == "io.debezium.data.Enum"
    assert col("s").enum_values == ("x", "y")
    assert col("b1").logical is Logical.BOOLEAN and col("b9").wire.name == "io.debezium.data.Bits"
    assert col("vb").logical is Logical.BYTES and col("v").logical is Logical.STRING
    assert col("v").charset == "utf8mb4" and col("l1").charset == "latin1"
    assert col("g").wire.name == "io.debezium.data.geometry.Geometry"


def test_ddl_changes_show_in_later_table_maps(mysql_db) -> None:
    maps = _table_maps(mysql_db, [
        "CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(5))",
        "INSERT INTO t VALUES (1, 2, 'x')",
        "ALTER TABLE t ADD COLUMN z INT FIRST",
        "ALTER TABLE t DROP COLUMN a",
        "ALTER TABLE t RENAME COLUMN b TO bee",
        "INSERT INTO t (id, z, bee) VALUES (2, 9, 'y')",
    ])
    before = schema_from_table_map(maps[0], TypeModes())
    after = schema_from_table_map(maps[-1], TypeModes(), version=2)
    assert before.column_names == ("id", "a", "b")
    assert after.column_names == ("z", "id", "bee")
    assert after.primary_key == ("id",)


def test_keyless_table_takes_configured_key_or_none(mysql_db) -> None:
    maps = _table_maps(mysql_db, ["CREATE TABLE n (a INT, b INT)", "INSERT INTO n VALUES (1, 2)"])
    assert schema_from_table_map(maps[0], TypeModes()).primary_key == ()
    assert schema_from_table_map(maps[0], TypeModes(), key_columns=["b"]).primary_key == ("b",)
    with pytest.raises(SchemaError, match="nope"):
        schema_from_table_map(maps[0], TypeModes(), key_columns=["nope"])
