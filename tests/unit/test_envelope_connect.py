"""Tables defined by the Connect schemas their records carry, Debezium's column defaults and
enum values, and JsonConverter's names of the float types — checked on records real Debezium
wrote (tests/fixtures/debezium/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cdc.envelope import EnvelopeCodec, column_from_debezium, table_schema_from_connect
from cdc.errors import DecodeError
from cdc.events import Column, Logical, TableId, TableSchema, Wire

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "debezium"


def _records(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def _last(name: str, topic_suffix: str) -> dict[str, Any]:
    return [r for r in _records(name) if r["topic"].endswith(topic_suffix) and r["value"] is not None][-1]


def test_a_postgresql_table_is_read_off_its_records_schema() -> None:
    r = _last("postgresql_schemas.jsonl", ".dbzfx.types")
    schema = table_schema_from_connect(TableId("dbzfx", "types"), r["key"].encode(), r["value"].encode())
    assert schema is not None
    assert schema.primary_key == ("id",)
    cols = {c.name: c for c in schema.columns}
    assert [c.name for c in schema.columns][:3] == ["id", "si", "i"]
    assert not cols["id"].nullable and cols["si"].nullable
    expect = {
        "si": (Logical.INT16, "smallint"),
        "bi": (Logical.INT64, "bigint"),
        "flag": (Logical.BOOLEAN, "boolean"),
        "num": (Logical.DECIMAL, "numeric(12,4)"),
        "r": (Logical.FLOAT32, "real"),
        "dp": (Logical.FLOAT64, "double precision"),
        "d": (Logical.DATE, "date"),
        "ts3": (Logical.TIMESTAMP, "timestamp(3)"),
        "ts6": (Logical.TIMESTAMP, "timestamp(6)"),
        "tstz": (Logical.TIMESTAMPTZ, "timestamp(6) with time zone"),
        "t": (Logical.TIME, "time(6)"),
        "tz": (Logical.TIMETZ, "time(6) with time zone"),
        "ba": (Logical.BYTES, "bytea"),
        "u": (Logical.UUID, "uuid"),
        "jb": (Logical.JSON, "json"),
        "iv": (Logical.INTERVAL, "interval"),
        "ia": (Logical.ARRAY, "integer[]"),
        "ta": (Logical.ARRAY, "text[]"),
    }
    assert {n: (cols[n].logical, cols[n].native_type) for n in expect} == expect
    assert (cols["num"].precision, cols["num"].scale) == (12, 4)
    assert cols["ts3"].precision == 3
    assert cols["dp"].wire == Wire("float64")  # JsonConverter's "double"
    assert cols["tstz"].wire.name == "io.debezium.time.ZonedTimestamp"


def test_a_column_added_with_a_default_keeps_it() -> None:
    r = _last("postgresql_schemas.jsonl", ".dbzfx.orders")
    schema = table_schema_from_connect(TableId("dbzfx", "orders"), r["key"].encode(), r["value"].encode())
    assert schema is not None
    assert schema.primary_key == ("region", "order_no")
    status = schema.column("status")
    assert (status.default, status.nullable, status.logical) == ("'open'", False, Logical.TEXT)


def test_records_without_a_schema_define_nothing() -> None:
    r = _last("postgresql_plain.jsonl", ".dbzfx.types")
    assert table_schema_from_connect(TableId("dbzfx", "types"), r["key"].encode(), r["value"].encode()) is None


def test_a_plain_key_names_the_key_columns() -> None:
    r = _last("postgresql_schemas.jsonl", ".dbzfx.orders")
    key = json.dumps(json.loads(r["key"])["payload"]).encode()
    schema = table_schema_from_connect(TableId("dbzfx", "orders"), key, r["value"].encode())
    assert schema is not None and schema.primary_key == ("region", "order_no")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"schema": {"type": "struct", "fields": []}, "payload": {}}, "no 'after' or 'before' struct"),
        (
            {
                "schema": {"type": "struct", "fields": [{"type": "struct", "field": "after", "fields": [
                    {"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "parameters": {"scale": "x"},
                     "field": "n"}]}]},
                "payload": {},
            },
            "parameter scale must be an integer",
        ),
        (
            {
                "schema": {"type": "struct", "fields": [{"type": "struct", "field": "after", "fields": [
                    {"type": "float128", "field": "n"}]}]},
                "payload": {},
            },
            "unknown Connect schema type",
        ),
    ],
)  # fmt: skip
def test_a_malformed_schema_is_a_decode_error(value: dict[str, Any], message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        table_schema_from_connect(TableId("s", "t"), None, json.dumps(value).encode())


def test_key_fields_must_be_columns() -> None:
    r = _last("postgresql_schemas.jsonl", ".dbzfx.orders")
    with pytest.raises(DecodeError, match=r"key fields \['nope'\]"):
        table_schema_from_connect(TableId("dbzfx", "orders"), b'{"nope": 1}', r["value"].encode())


def test_float_types_use_jsonconverter_names_on_the_wire() -> None:
    assert Wire("float64").to_connect()["type"] == "double"
    assert Wire("float32").to_connect()["type"] == "float"
    assert Wire.from_connect({"type": "double"}) == Wire("float64")
    assert Wire.from_connect(Wire("float32", optional=False).to_connect()) == Wire("float32", optional=False)
    schema = TableSchema(
        TableId("s", "t"),
        (
            Column("id", "int", Logical.INT32, Wire("int32", optional=False), nullable=False),
            Column("x", "double", Logical.FLOAT64, Wire("float64")),
        ),
        ("id",),
    )
    from cdc.events import ChangeEvent, Op

    event = ChangeEvent(op=Op.CREATE, table=schema.table, key={"id": 1}, before=None, after={"id": 1, "x": 1.5},
                        source={"connector": "postgresql", "ts_ms": 1, "lsn": 1}, ts_ms=1, emitted_ms=1)  # fmt: skip
    value = EnvelopeCodec("p", schemas=True).encode_value(event, schema)
    fields = json.loads(value)["schema"]["fields"]
    after = next(f for f in fields if f["field"] == "after")
    assert [f["type"] for f in after["fields"]] == ["int32", "double"]
    assert "float64" not in value.decode()


def _doc(type_name: str, jdbc: int, default: str | None, **extra: Any) -> dict[str, Any]:
    return {"name": "c", "jdbcType": jdbc, "typeName": type_name, "position": 1, "optional": True,
            "defaultValueExpression": default, **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("type_name", "jdbc", "default", "sql"),
    [
        ("VARCHAR", 12, "open", "'open'"),
        ("VARCHAR", 12, "it's", "'it''s'"),
        ("VARCHAR", 12, "CURRENT_TIMESTAMP", "'CURRENT_TIMESTAMP'"),  # a string column's text, not a function
        ("DECIMAL", 3, "0.00", "0.00"),
        ("INT", 4, "-7", "-7"),
        ("INT", 4, "nextval('x')", None),  # not a literal: no default rather than a wrong one
        ("DATETIME", 93, "CURRENT_TIMESTAMP", "CURRENT_TIMESTAMP"),
        ("DATE", 91, "2020-01-01", "'2020-01-01'"),
        ("VARCHAR", 12, None, None),
    ],
)
def test_debezium_defaults_become_sql(type_name: str, jdbc: int, default: str | None, sql: str | None) -> None:
    assert column_from_debezium(_doc(type_name, jdbc, default)).default == sql


def test_quoted_enum_values_from_mariadbs_connector_are_unquoted() -> None:
    col = column_from_debezium(_doc("ENUM", 1, None, enumValues=["'small'", "'it''s'"]))
    assert col.enum_values == ("small", "it's")
    col = column_from_debezium(_doc("ENUM", 1, None, enumValues=["sad", "it's ok"]))
    assert col.enum_values == ("sad", "it's ok")


def test_cdc_schema_changes_write_defaults_as_debezium_does_and_read_back_their_sql() -> None:
    from cdc.events import SchemaChange

    cols = (
        Column("id", "int", Logical.INT32, Wire("int32", optional=False), nullable=False, position=1),
        Column("s", "varchar(9)", Logical.STRING, Wire("string", optional=False), nullable=False, position=2,
               default="'it''s'::character varying"),
        Column("n", "numeric(4,2)", Logical.DECIMAL, Wire("string"), position=3, default="0.50"),
        Column("t", "timestamp", Logical.TIMESTAMP, Wire("int64"), position=4, default="CURRENT_TIMESTAMP"),
    )  # fmt: skip
    change = SchemaChange("CREATE", TableSchema(TableId("s", "t"), cols, ("id",)), None,
                          {"connector": "postgresql", "ts_ms": 1, "lsn": 1}, 1)  # fmt: skip
    codec = EnvelopeCodec("p")
    _key, value = codec.encode_schema_change(change)
    docs = json.loads(value)["tableChanges"][0]["table"]["columns"]
    assert [d["defaultValueExpression"] for d in docs] == [None, "it's", "0.50", "CURRENT_TIMESTAMP"]
    assert codec.decode_schema_change(value).schema == change.schema
    # written before cdc kept its SQL apart: defaultValueExpression is the SQL itself
    old = json.loads(value)
    for d in old["tableChanges"][0]["table"]["columns"]:
        d["defaultValueExpression"] = d["cdc"].pop("default")
    assert codec.decode_schema_change(json.dumps(old).encode()).schema == change.schema
