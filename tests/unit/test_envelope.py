"""The Debezium envelope codec: round trips, Debezium-written input, tombstones and poison input."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdc.envelope import (
    EnvelopeCodec,
    column_from_debezium,
    heartbeat_topic,
    placeholder_for,
    schema_change_topic,
    topic_for,
)
from cdc.errors import DecodeError, SchemaError, TargetValueError
from cdc.events import UNAVAILABLE, ChangeEvent, Column, Logical, Op, SchemaChange, TableId, TableSchema, Wire
from cdc.positions import MySqlPosition, PgPosition, Position

PREFIX = "shop"
PH_B64 = "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="  # base64("__debezium_unavailable_value")
PH_UUID = "b68a35a7-17ad-35b3-af2a-ae46edb4545a"  # Java UUID.nameUUIDFromBytes of the placeholder (Debezium's tests)
PLACEHOLDER_FORMS: list[Any] = [
    UNAVAILABLE,
    PH_B64,
    [UNAVAILABLE],
    [PH_B64],
    [PH_UUID],
    list(UNAVAILABLE.encode()),
    {UNAVAILABLE: UNAVAILABLE},
]

# ---------------------------------------------------------------------------------------------- strategies

names = st.text(min_size=1, max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
).filter(lambda v: v not in PLACEHOLDER_FORMS)
opt_ints = st.none() | st.integers(-(2**31), 2**31 - 1)

primitive_wires = st.builds(
    Wire,
    type=st.sampled_from(["int8", "int16", "int32", "int64", "float32", "float64", "boolean", "string", "bytes"]),
    name=st.none() | st.sampled_from(["io.debezium.time.Date", "io.debezium.data.Json", "io.debezium.data.Uuid"]),
    version=st.none() | st.integers(1, 3),
    parameters=st.none() | st.dictionaries(st.text(max_size=5), st.text(max_size=5), min_size=1, max_size=2),
    optional=st.booleans(),
)
wires = st.recursive(
    primitive_wires,
    lambda inner: (
        st.builds(lambda items, opt: Wire("array", items=items, optional=opt), inner, st.booleans())
        | st.builds(
            lambda fields, opt, name: Wire("struct", name, fields=tuple(fields), optional=opt),
            st.lists(st.tuples(names, inner), max_size=3, unique_by=lambda f: f[0]),
            st.booleans(),
            st.none() | st.text(max_size=8),
        )
        | st.builds(lambda opt: Wire("map", optional=opt), st.booleans())
    ),
    max_leaves=5,
)
columns = st.builds(
    Column,
    name=names,
    native_type=st.text(max_size=20),
    logical=st.sampled_from(list(Logical)),
    wire=wires,
    nullable=st.booleans(),
    length=opt_ints,
    precision=opt_ints,
    scale=opt_ints,
    position=st.integers(0, 10_000),
    default=st.none() | st.text(max_size=10),
    enum_values=st.none() | st.lists(st.text(max_size=5), max_size=3).map(tuple),
    charset=st.none() | st.text(max_size=8),
    auto_increment=st.booleans(),
    jdbc_type=st.none() | st.integers(-20, 3000),
)
table_ids = st.builds(TableId, names, names)  # dots, quotes and commas included on purpose


@st.composite
def table_schemas(draw: st.DrawFn, min_columns: int = 0) -> TableSchema:
    cols = draw(st.lists(columns, min_size=min_columns, max_size=6, unique_by=lambda c: c.name))
    col_names = [c.name for c in cols]
    pk = draw(st.permutations(col_names))[: draw(st.integers(0, len(col_names)))]
    return TableSchema(
        table=draw(table_ids),
        columns=tuple(cols),
        primary_key=tuple(pk),
        version=draw(st.integers(1, 10**6)),
        charset=draw(st.none() | st.text(max_size=8)),
    )


extra_source_fields = st.dictionaries(st.sampled_from(["thread", "query", "sequence", "x_custom"]), scalars, max_size=2)


@st.composite
def sources(draw: st.DrawFn, table: TableId, ts_ms: int) -> tuple[dict[str, Any], Position | None]:
    """A Debezium source block for one connector, and the position it implies."""
    connector = draw(st.sampled_from(["mysql", "mariadb", "postgresql"]))
    common = {
        "version": "3.1.0.Final",
        "connector": connector,
        "name": PREFIX,
        "ts_ms": ts_ms,
        "snapshot": draw(st.sampled_from(["false", "true", "last"])),
        "db": table.schema if connector != "postgresql" else "appdb",
    }
    position: Position | None
    if connector == "postgresql":
        lsn = draw(st.none() | st.integers(0, 2**63 - 1))
        txid = draw(st.none() | st.integers(0, 2**40))
        src = {**common, "schema": table.schema, "table": table.table, "txId": txid, "lsn": lsn, "xmin": None}
        position = PgPosition(lsn, txid) if lsn is not None else None
    else:
        src = {**common, "table": table.table, "row": 0}
        if draw(st.booleans()):
            file = f"mysql-bin.{draw(st.integers(1, 999_999)):06d}"
            pos = draw(st.integers(4, 2**40))
            gtid = draw(st.none() | st.just("0-1-42") | st.just("3E11FA47-71CA-11E1-9E33-C80AA9429562:23"))
            server_id = draw(st.none() | st.integers(1, 2**32 - 1))
            src.update(file=file, pos=pos, gtid=gtid, server_id=server_id)
            position = MySqlPosition(file, pos, gtid, server_id)
        else:
            position = None
    return {**draw(extra_source_fields), **src}, position


@st.composite
def change_events(draw: st.DrawFn) -> tuple[ChangeEvent, TableSchema]:
    ts = draw(table_schemas())
    op = draw(st.sampled_from(list(Op)))
    commit_ms = draw(st.integers(0, 2**53))
    source, position = draw(sources(ts.table, commit_ms))
    col_names = list(ts.column_names)

    def row() -> dict[str, Any]:
        chosen = draw(st.lists(st.sampled_from(col_names), unique=True)) if col_names else []
        return {name: draw(json_values) for name in chosen}

    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    if op in (Op.CREATE, Op.READ):
        after = row()
    elif op is Op.UPDATE:
        before = row() if draw(st.booleans()) else None
        after = row()
    elif op is Op.DELETE:
        before = row()
    unchanged: frozenset[str] = frozenset()
    image = before if op is Op.DELETE else after
    if image is not None and col_names:
        unchanged = frozenset(draw(st.lists(st.sampled_from(col_names), unique=True, max_size=3)))
        for name in unchanged:
            image.pop(name, None)  # canonical form: an unchanged column is absent from the image
    key = None
    if ts.primary_key and op is not Op.TRUNCATE:
        key = {name: draw(scalars) for name in ts.primary_key}
    txn_id = draw(st.none() | st.text(max_size=20))
    event = ChangeEvent(
        op=op,
        table=ts.table,
        key=key,
        before=before,
        after=after,
        source=source,
        ts_ms=commit_ms,
        emitted_ms=draw(st.integers(0, 2**53)),
        txn_id=txn_id,
        txn_order=draw(st.integers(1, 2**40)) if txn_id is not None else 0,
        txn_table_order=draw(st.integers(1, 2**40)) if txn_id is not None else 0,
        position=position,
        unchanged=unchanged,
    )
    return event, ts


@st.composite
def schema_changes(draw: st.DrawFn, with_source: bool = True) -> SchemaChange:
    ts = draw(table_schemas())
    ts_ms = draw(st.integers(0, 2**53))
    if with_source:
        source, position = draw(sources(ts.table, ts_ms))
    else:
        source, position = {}, None
    return SchemaChange(
        kind=draw(st.sampled_from(["CREATE", "ALTER", "DROP"])),
        schema=ts,
        ddl=draw(st.none() | st.text(max_size=30)),
        source=source,
        ts_ms=ts_ms,
        position=position,
    )


# ---------------------------------------------------------------------------------------------- topics


def test_topic_names() -> None:
    assert topic_for("shop", TableId("inventory", "customers")) == "shop.inventory.customers"
    assert schema_change_topic("shop") == "shop"
    assert heartbeat_topic("shop") == "__cdc_heartbeat.shop"


# ---------------------------------------------------------------------------------------------- round trips


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(change_events(), st.booleans(), st.booleans())
def test_change_event_round_trip(case: tuple[ChangeEvent, TableSchema], schemas: bool, give_table: bool) -> None:
    event, ts = case
    codec = EnvelopeCodec(PREFIX, schemas=schemas)
    key = codec.encode_key(event, ts)
    value = codec.encode_value(event, ts)
    decoded = codec.decode(key, value, event.table if give_table else None)
    assert decoded == event
    # any codec reads any form: plain and wrapped are told apart by shape; the second decode of a
    # wrapped value takes the path that skips the schema it has seen before
    other = EnvelopeCodec("other", schemas=not schemas)
    for _ in range(2):
        assert other.decode(key, value, event.table if give_table else None) == event


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(change_events(), st.booleans())
def test_messages_for_writes_the_bytes_of_encode_key_and_value(
    case: tuple[ChangeEvent, TableSchema], schemas: bool
) -> None:
    """The publishing hot path (messages_for) and the reference encoders give the same records."""
    event, ts = case
    codec = EnvelopeCodec(PREFIX, schemas=schemas)
    key = codec.encode_key(event, ts)
    expected = [(key, codec.encode_value(event, ts))]
    if event.op is Op.DELETE and key is not None:
        expected.append((key, None))
    assert codec.messages_for(event, ts) == expected


@pytest.mark.parametrize("part", ["key", "value"])
def test_messages_for_names_the_part_that_is_not_json(part: str) -> None:
    if part == "key":
        event = _event(Op.CREATE, key={"id": 2**70})  # beyond 64 bits
    else:
        event = _event(Op.CREATE, after={"id": 42, "bio": object()})
    with pytest.raises(TargetValueError, match=f"change event's {part} cannot be written as JSON"):
        EnvelopeCodec(PREFIX).messages_for(event, _table())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(change_events())
def test_plain_envelope_shape(case: tuple[ChangeEvent, TableSchema]) -> None:
    event, ts = case
    codec = EnvelopeCodec(PREFIX)
    doc = orjson.loads(codec.encode_value(event, ts))
    assert list(doc) == ["before", "after", "source", "op", "ts_ms", "transaction"]
    assert doc["op"] == event.op.value
    assert doc["ts_ms"] == event.emitted_ms
    assert doc["source"] == event.source
    if event.txn_id is None:
        assert doc["transaction"] is None
    else:
        assert doc["transaction"] == {
            "id": event.txn_id,
            "total_order": event.txn_order,
            "data_collection_order": event.txn_table_order,
        }
    image = doc["before"] if event.op is Op.DELETE else doc["after"]
    for name in event.unchanged:
        wire = ts.column(name).wire if ts.has_column(name) else None
        assert image[name] == placeholder_for(wire)
    key = codec.encode_key(event, ts)
    assert (orjson.loads(key) if key is not None else None) == event.key


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(change_events())
def test_connect_schema_shape(case: tuple[ChangeEvent, TableSchema]) -> None:
    event, ts = case
    codec = EnvelopeCodec(PREFIX, schemas=True)
    doc = orjson.loads(codec.encode_value(event, ts))
    assert set(doc) == {"schema", "payload"}
    schema = doc["schema"]
    base = f"{PREFIX}.{ts.table.schema}.{ts.table.table}"
    assert schema["name"] == f"{base}.Envelope"
    assert schema["type"] == "struct" and schema["optional"] is False
    fields = {f["field"]: f for f in schema["fields"]}
    assert [f["field"] for f in schema["fields"]] == ["before", "after", "source", "transaction", "op", "ts_ms"]
    for side in ("before", "after"):
        assert fields[side]["name"] == f"{base}.Value"
        assert fields[side]["optional"] is True
        assert [Wire.from_connect(f) for f in fields[side]["fields"]] == [c.wire for c in ts.columns]
        assert [f["field"] for f in fields[side]["fields"]] == list(ts.column_names)
    connector = event.source["connector"]
    assert fields["source"]["name"] == f"io.debezium.connector.{connector}.Source"
    source_fields = [f["field"] for f in fields["source"]["fields"]]
    assert source_fields[:9] == [
        "version",
        "connector",
        "name",
        "ts_ms",
        "snapshot",
        "db",
        "sequence",
        "ts_us",
        "ts_ns",
    ]
    if connector == "postgresql":
        assert source_fields[9:14] == ["schema", "table", "txId", "lsn", "xmin"]
    else:
        assert source_fields[9:] == ["table", "server_id", "gtid", "file", "pos", "row", "thread", "query"]
    assert fields["transaction"]["name"] == "event.block"
    assert [f["field"] for f in fields["transaction"]["fields"]] == ["id", "total_order", "data_collection_order"]
    assert doc["payload"] == orjson.loads(EnvelopeCodec(PREFIX).encode_value(event, ts))
    key = codec.encode_key(event, ts)
    if key is not None:
        kdoc = orjson.loads(key)
        assert kdoc["schema"]["name"] == f"{base}.Key"
        assert [f["field"] for f in kdoc["schema"]["fields"]] == list(ts.primary_key)
        assert kdoc["payload"] == event.key


def _table(version: int = 1, extra: bool = False) -> TableSchema:
    cols = [
        Column("id", "INT", Logical.INT32, Wire("int32", optional=False), nullable=False, position=1),
        Column("bio", "TEXT", Logical.TEXT, Wire("string"), position=2),
    ]
    if extra:
        cols.append(Column("nick", "VARCHAR(20)", Logical.STRING, Wire("string"), position=3))
    return TableSchema(TableId("inventory", "customers"), tuple(cols), ("id",), version=version)


def _mysql_source(ts_ms: int = 1_700_000_000_000, pos: int = 154) -> dict[str, Any]:
    return {
        "version": "3.1.0.Final",
        "connector": "mysql",
        "name": PREFIX,
        "ts_ms": ts_ms,
        "snapshot": "false",
        "db": "inventory",
        "table": "customers",
        "server_id": 223344,
        "gtid": None,
        "file": "mysql-bin.000003",
        "pos": pos,
        "row": 0,
    }


def _event(op: Op = Op.CREATE, **kw: Any) -> ChangeEvent:
    row = {"id": 1004, "bio": "hi"}
    fields: dict[str, Any] = {
        "op": op,
        "table": TableId("inventory", "customers"),
        "key": {"id": 1004},
        "before": row if op in (Op.UPDATE, Op.DELETE) else None,
        "after": None if op is Op.DELETE else dict(row),
        "source": _mysql_source(),
        "ts_ms": 1_700_000_000_000,
        "emitted_ms": 1_700_000_000_123,
        "position": MySqlPosition("mysql-bin.000003", 154, None, 223344),
    }
    fields.update(kw)
    return ChangeEvent(**fields)


def test_schema_cache_follows_the_table_version() -> None:
    codec = EnvelopeCodec(PREFIX, schemas=True)
    v1, v2 = _table(1), _table(2, extra=True)
    first = orjson.loads(codec.encode_value(_event(), v1))["schema"]
    assert orjson.loads(codec.encode_value(_event(), v1))["schema"] == first
    second = orjson.loads(codec.encode_value(_event(), v2))["schema"]
    assert [f["field"] for f in second["fields"][1]["fields"]] == ["id", "bio", "nick"]
    assert [f["field"] for f in first["fields"][1]["fields"]] == ["id", "bio"]
    # a different definition under the same version number is not served from the cache
    same_version = TableSchema(v2.table, v2.columns, v2.primary_key, version=1)
    third = orjson.loads(codec.encode_value(_event(), same_version))["schema"]
    assert [f["field"] for f in third["fields"][1]["fields"]] == ["id", "bio", "nick"]


def test_known_schema_prefix_is_only_trusted_when_exact() -> None:
    # a "payload" key inside the schema puts the marker ',"payload":' before the real boundary
    cols = (
        Column("id", "INT", Logical.INT32, Wire("int32", optional=False), nullable=False),
        Column("p", "X", Logical.UNKNOWN, Wire("string", "x.Y", 1, {"a": "b", "payload": "c"})),
    )
    ts = TableSchema(TableId("inventory", "customers"), cols, ("id",))
    event = _event(after={"id": 1, "p": "v"}, before=None)
    value = EnvelopeCodec(PREFIX, schemas=True).encode_value(event, ts)
    assert b'"a":"b","payload":"c"' in value
    reader = EnvelopeCodec(PREFIX)
    for _ in range(3):
        assert reader.decode(None, value) == _event(after={"id": 1, "p": "v"}, before=None, key=None)
    # the bytes up to that inner marker are not a wrapper head: trusting them would accept invalid JSON
    inner_head = value[: value.index(b',"payload":') + len(b',"payload":')]
    forged = inner_head + EnvelopeCodec(PREFIX).encode_value(_event(), _table()) + b"}"
    with pytest.raises(DecodeError, match="not valid JSON"):
        reader.decode(None, forged)
    # a known prefix followed by more than one value is still rejected like any malformed JSON
    writer = EnvelopeCodec(PREFIX, schemas=True)
    good = writer.encode_value(_event(), _table())
    head = good[: good.index(b',"payload":') + len(b',"payload":')]
    for bad in (head + b'{"op": "c"}, "extra": 1}', head + b"}", head + b"null}"):
        try:
            result = writer.decode(None, bad)
        except DecodeError:
            continue
        assert result is None and bad.endswith(b"null}")  # a null payload is a tombstone


# ---------------------------------------------------------------------------------------------- tombstones


@pytest.mark.parametrize("schemas", [False, True])
def test_delete_is_followed_by_a_tombstone(schemas: bool) -> None:
    codec = EnvelopeCodec(PREFIX, schemas=schemas)
    ts = _table()
    event = _event(Op.DELETE)
    messages = codec.messages_for(event, ts)
    assert len(messages) == 2
    (key, value), (tkey, tvalue) = messages
    assert tkey == key and key is not None
    assert tvalue is None
    assert codec.tombstone(event, ts) == (key, None)
    assert codec.decode(key, value) == event
    assert codec.decode(tkey, tvalue) is None


@pytest.mark.parametrize("op", [Op.CREATE, Op.UPDATE, Op.READ])
def test_no_tombstone_after_other_ops(op: Op) -> None:
    messages = EnvelopeCodec(PREFIX).messages_for(_event(op), _table())
    assert len(messages) == 1 and messages[0][1] is not None


def test_keyless_delete_gets_no_tombstone() -> None:
    ts = TableSchema(TableId("inventory", "log"), _table().columns, ())
    event = _event(Op.DELETE, key=None, table=ts.table)
    messages = EnvelopeCodec(PREFIX).messages_for(event, ts)
    assert len(messages) == 1 and messages[0][0] is None


def test_truncate_has_no_key_and_no_images() -> None:
    codec = EnvelopeCodec(PREFIX)
    event = _event(Op.TRUNCATE, key=None, before=None, after=None)
    [(key, value)] = codec.messages_for(event, _table())
    assert key is None
    assert value is not None
    doc = orjson.loads(value)
    assert doc["op"] == "t" and doc["before"] is None and doc["after"] is None
    assert codec.decode(key, value) == event


# ---------------------------------------------------------------------------------------------- placeholders


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (Wire("string"), UNAVAILABLE),
        (Wire("string", "io.debezium.data.Json", 1), UNAVAILABLE),
        (Wire("bytes"), PH_B64),
        (Wire("bytes", "org.apache.kafka.connect.data.Decimal", 1, {"scale": "2"}), PH_B64),
        (Wire("array", items=Wire("string")), [UNAVAILABLE]),
        (Wire("array", items=Wire("bytes")), [PH_B64]),
        (Wire("array", items=Wire("int32")), list(b"__debezium_unavailable_value")),
        (Wire("array", items=Wire("int64")), list(b"__debezium_unavailable_value")),
        (Wire("array", items=Wire("string", "io.debezium.data.Uuid", 1)), [PH_UUID]),
        (Wire("map"), {UNAVAILABLE: UNAVAILABLE}),
        (None, UNAVAILABLE),
    ],
)
def test_placeholder_forms_round_trip(wire: Wire | None, expected: Any) -> None:
    assert placeholder_for(wire) == expected
    cols = [Column("id", "int4", Logical.INT32, Wire("int32", optional=False), nullable=False)]
    if wire is not None:
        cols.append(Column("big", "x", Logical.UNKNOWN, wire))
    ts = TableSchema(TableId("public", "docs"), tuple(cols), ("id",))
    event = _event(Op.UPDATE, table=ts.table, before=None, after={"id": 1}, unchanged=frozenset({"big"}))
    codec = EnvelopeCodec(PREFIX)
    value = codec.encode_value(event, ts)
    assert orjson.loads(value)["after"] == {"id": 1, "big": expected}
    decoded = codec.decode(None, value, ts.table)
    assert decoded is not None
    assert decoded.after == {"id": 1}
    assert decoded.unchanged == frozenset({"big"})


def test_placeholder_for_a_delete_goes_into_before() -> None:
    event = _event(Op.DELETE, before={"id": 1004}, unchanged=frozenset({"bio"}))
    codec = EnvelopeCodec(PREFIX)
    value = codec.encode_value(event, _table())
    assert orjson.loads(value)["before"] == {"id": 1004, "bio": UNAVAILABLE}
    assert codec.decode(codec.encode_key(event, _table()), value) == event


def test_unchanged_without_an_image_is_refused() -> None:
    event = _event(Op.TRUNCATE, key=None, before=None, after=None, unchanged=frozenset({"bio"}))
    with pytest.raises(SchemaError):
        EnvelopeCodec(PREFIX).encode_value(event, _table())


# ---------------------------------------------------------------------------------------------- Debezium-written input

DEBEZIUM_MYSQL_CREATE = b"""
{
  "schema": {
    "type": "struct",
    "fields": [
      {"type": "struct", "fields": [
          {"type": "int32", "optional": false, "field": "id"},
          {"type": "string", "optional": false, "field": "first_name"},
          {"type": "string", "optional": false, "field": "last_name"},
          {"type": "string", "optional": false, "field": "email"}],
        "optional": true, "name": "mysql-server-1.inventory.customers.Value", "field": "before"},
      {"type": "struct", "fields": [
          {"type": "int32", "optional": false, "field": "id"},
          {"type": "string", "optional": false, "field": "first_name"},
          {"type": "string", "optional": false, "field": "last_name"},
          {"type": "string", "optional": false, "field": "email"}],
        "optional": true, "name": "mysql-server-1.inventory.customers.Value", "field": "after"},
      {"type": "struct", "fields": [
          {"type": "string", "optional": false, "field": "version"},
          {"type": "string", "optional": false, "field": "connector"},
          {"type": "string", "optional": false, "field": "name"},
          {"type": "int64", "optional": false, "field": "ts_ms"},
          {"type": "int64", "optional": false, "field": "ts_us"},
          {"type": "int64", "optional": false, "field": "ts_ns"},
          {"type": "boolean", "optional": true, "default": false, "field": "snapshot"},
          {"type": "string", "optional": false, "field": "db"},
          {"type": "string", "optional": true, "field": "table"},
          {"type": "int64", "optional": false, "field": "server_id"},
          {"type": "string", "optional": true, "field": "gtid"},
          {"type": "string", "optional": false, "field": "file"},
          {"type": "int64", "optional": false, "field": "pos"},
          {"type": "int32", "optional": false, "field": "row"},
          {"type": "int64", "optional": true, "field": "thread"},
          {"type": "string", "optional": true, "field": "query"}],
        "optional": false, "name": "io.debezium.connector.mysql.Source", "field": "source"},
      {"type": "string", "optional": false, "field": "op"},
      {"type": "int64", "optional": true, "field": "ts_ms"},
      {"type": "int64", "optional": true, "field": "ts_us"},
      {"type": "int64", "optional": true, "field": "ts_ns"}
    ],
    "optional": false,
    "name": "mysql-server-1.inventory.customers.Envelope"
  },
  "payload": {
    "op": "c",
    "ts_ms": 1465491411815,
    "ts_us": 1465491411815437,
    "ts_ns": 1465491411815437158,
    "before": null,
    "after": {"id": 1004, "first_name": "Anne", "last_name": "Kretchmar", "email": "annek@noanswer.org"},
    "source": {
      "version": "2.7.0.Final",
      "connector": "mysql",
      "name": "mysql-server-1",
      "ts_ms": 1465491410000,
      "ts_us": 1465491410000000,
      "ts_ns": 1465491410000000000,
      "snapshot": false,
      "db": "inventory",
      "table": "customers",
      "server_id": 223344,
      "gtid": null,
      "file": "mysql-bin.000003",
      "pos": 154,
      "row": 0,
      "thread": 7,
      "query": "INSERT INTO customers (first_name, last_name, email) VALUES ('Anne', 'Kretchmar', 'annek@noanswer.org')"
    }
  }
}
"""
DEBEZIUM_MYSQL_KEY = b"""{"schema": {"type": "struct", "name": "mysql-server-1.inventory.customers.Key",
  "optional": false, "fields": [{"field": "id", "type": "int32", "optional": false}]}, "payload": {"id": 1004}}"""


@pytest.mark.parametrize("schemas", [False, True])
def test_debezium_mysql_create_envelope(schemas: bool) -> None:
    event = EnvelopeCodec(PREFIX, schemas=schemas).decode(DEBEZIUM_MYSQL_KEY, DEBEZIUM_MYSQL_CREATE)
    assert event is not None
    assert event.op is Op.CREATE
    assert event.table == TableId("inventory", "customers")
    assert event.key == {"id": 1004}
    assert event.before is None
    assert event.after == {"id": 1004, "first_name": "Anne", "last_name": "Kretchmar", "email": "annek@noanswer.org"}
    assert event.ts_ms == 1465491410000
    assert event.emitted_ms == 1465491411815
    assert event.txn_id is None and event.txn_order == 0 and event.txn_table_order == 0
    assert event.position == MySqlPosition("mysql-bin.000003", 154, None, 223344)
    assert event.unchanged == frozenset()
    assert event.source["thread"] == 7 and event.source["snapshot"] is False  # extra fields kept verbatim


def test_debezium_mysql_delete_plain_then_tombstone() -> None:
    value = b"""{"before": {"id": 1004, "first_name": "Anne Marie", "last_name": "Kretchmar",
      "email": "annek@noanswer.org"}, "after": null,
      "source": {"version": "2.7.0.Final", "connector": "mysql", "name": "mysql-server-1", "ts_ms": 1465581902300,
        "ts_us": 1465581902300000, "ts_ns": 1465581902300000000, "snapshot": "false", "db": "inventory",
        "table": "customers", "server_id": 223344, "gtid": "0-223344-17", "file": "mysql-bin.000003", "pos": 805,
        "row": 0, "thread": 7, "query": "DELETE FROM customers WHERE id=1004"},
      "op": "d", "ts_ms": 1465581902461, "ts_us": 1465581902461842, "ts_ns": 1465581902461842579}"""
    codec = EnvelopeCodec(PREFIX)
    event = codec.decode(b'{"id": 1004}', value)
    assert event is not None
    assert event.op is Op.DELETE and event.row == event.before and event.after is None
    assert event.position == MySqlPosition("mysql-bin.000003", 805, "0-223344-17", 223344)
    assert event.emitted_ms == 1465581902461
    assert codec.decode(b'{"id": 1004}', None) is None


def test_debezium_postgres_update_with_toast_and_transaction() -> None:
    value = orjson.dumps(
        {
            "before": None,
            "after": {"id": 1, "name": "x", "bio": UNAVAILABLE, "photo": PH_B64, "tags": [UNAVAILABLE]},
            "source": {
                "version": "3.0.0.Final",
                "connector": "postgresql",
                "name": "pg",
                "ts_ms": 1700000000000,
                "snapshot": "false",
                "db": "appdb",
                "sequence": '["24023119","24023128"]',
                "schema": "public",
                "table": "authors",
                "txId": 555,
                "lsn": 24023128,
                "xmin": None,
            },
            "transaction": {"id": "555:24023128", "total_order": 3, "data_collection_order": 2},
            "op": "u",
            "ts_us": 1700000000123456,
        }
    )
    event = EnvelopeCodec(PREFIX).decode(b'{"id": 1}', value)
    assert event is not None
    assert event.table == TableId("public", "authors")
    assert event.after == {"id": 1, "name": "x"}
    assert event.unchanged == frozenset({"bio", "photo", "tags"})
    assert event.position == PgPosition(24023128, 555)
    assert (event.txn_id, event.txn_order, event.txn_table_order) == ("555:24023128", 3, 2)
    assert event.emitted_ms == 1700000000123  # from ts_us when ts_ms is absent
    assert event.ts_ms == 1700000000000


def test_caller_table_overrides_source() -> None:
    event = EnvelopeCodec(PREFIX).decode(DEBEZIUM_MYSQL_KEY, DEBEZIUM_MYSQL_CREATE, TableId("other", "t"))
    assert event is not None and event.table == TableId("other", "t")


# ---------------------------------------------------------------------------------------------- schema changes


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema_changes(), st.booleans())
def test_schema_change_round_trip(change: SchemaChange, schemas: bool) -> None:
    codec = EnvelopeCodec(PREFIX, schemas=schemas)
    key, value = codec.encode_schema_change(change)
    decoded = codec.decode_schema_change(value)
    assert decoded == change
    assert decoded.schema.version == change.schema.version
    kdoc = orjson.loads(key)
    kpayload = kdoc["payload"] if schemas else kdoc
    assert set(kpayload) == {"databaseName"}
    doc = orjson.loads(value)
    payload = doc["payload"] if schemas else doc
    assert list(payload) == ["source", "ts_ms", "databaseName", "schemaName", "ddl", "tableChanges"]
    [item] = payload["tableChanges"]
    assert list(item) == ["type", "id", "table", "comment"]
    assert list(item["table"]) == [
        "defaultCharsetName",
        "primaryKeyColumnNames",
        "columns",
        "attributes",
        "comment",
        "cdc",
    ]
    for col in item["table"]["columns"]:
        assert {
            "name", "jdbcType", "nativeType", "typeName", "typeExpression", "charsetName", "length", "scale",
            "position", "optional", "autoIncremented", "generated", "enumValues", "hasDefaultValue",
            "defaultValueExpression", "comment", "cdc",
        } == set(col)  # fmt: skip
        assert isinstance(col["jdbcType"], int)
    if schemas:
        connector = change.source["connector"]
        assert doc["schema"]["name"] == f"io.debezium.connector.{connector}.SchemaChangeValue"
        assert kdoc["schema"]["name"] == f"io.debezium.connector.{connector}.SchemaChangeKey"


@settings(max_examples=50, deadline=None)
@given(schema_changes(with_source=False))
def test_schema_change_without_source_fields(change: SchemaChange) -> None:
    codec = EnvelopeCodec(PREFIX)
    _, value = codec.encode_schema_change(change)
    assert codec.decode_schema_change(value) == change
    with pytest.raises(SchemaError):
        EnvelopeCodec(PREFIX, schemas=True).encode_schema_change(change)


DEBEZIUM_SCHEMA_CHANGE = {
    "source": {
        "version": "2.7.0.Final",
        "connector": "mysql",
        "name": "mysql",
        "ts_ms": 1651535750218,
        "ts_us": 1651535750218000,
        "ts_ns": 1651535750218000000,
        "snapshot": "false",
        "db": "inventory",
        "sequence": None,
        "table": "customers",
        "server_id": 223344,
        "gtid": None,
        "file": "mysql-bin.000003",
        "pos": 570,
        "row": 0,
        "thread": None,
        "query": None,
    },
    "ts_ms": 1651535750300,
    "databaseName": "inventory",
    "schemaName": None,
    "ddl": "ALTER TABLE customers ADD middle_name varchar(255) AFTER first_name",
    "tableChanges": [
        {
            "type": "ALTER",
            "id": '"inventory"."customers"',
            "table": {
                "defaultCharsetName": "utf8mb4",
                "primaryKeyColumnNames": ["id"],
                "columns": [
                    {"name": "id", "jdbcType": 4, "nativeType": None, "typeName": "INT", "typeExpression": "INT",
                     "charsetName": None, "length": None, "scale": None, "position": 1, "optional": False,
                     "autoIncremented": True, "generated": True},
                    {"name": "first_name", "jdbcType": 12, "nativeType": None, "typeName": "VARCHAR",
                     "typeExpression": "VARCHAR", "charsetName": "utf8mb4", "length": 255, "scale": None,
                     "position": 2, "optional": False, "autoIncremented": False, "generated": False},
                    {"name": "middle_name", "jdbcType": 12, "nativeType": None, "typeName": "VARCHAR",
                     "typeExpression": "VARCHAR", "charsetName": "utf8mb4", "length": 255, "scale": None,
                     "position": 3, "optional": True, "autoIncremented": False, "generated": False},
                    {"name": "price", "jdbcType": 3, "nativeType": None, "typeName": "DECIMAL UNSIGNED",
                     "typeExpression": "DECIMAL UNSIGNED", "charsetName": None, "length": 10, "scale": 2,
                     "position": 4, "optional": True, "autoIncremented": False, "generated": False,
                     "defaultValueExpression": "0.00", "hasDefaultValue": True},
                    {"name": "seen", "jdbcType": 93, "nativeType": None, "typeName": "DATETIME",
                     "typeExpression": "DATETIME", "charsetName": None, "length": 6, "scale": None,
                     "position": 5, "optional": True, "autoIncremented": False, "generated": False},
                    {"name": "mood", "jdbcType": 1, "nativeType": None, "typeName": "ENUM", "typeExpression": "ENUM",
                     "charsetName": "utf8mb4", "length": 1, "scale": None, "position": 6, "optional": True,
                     "autoIncremented": False, "generated": False, "enumValues": ["sad", "it's ok"]},
                    {"name": "views", "jdbcType": -5, "nativeType": None, "typeName": "BIGINT UNSIGNED",
                     "typeExpression": "BIGINT UNSIGNED", "charsetName": None, "length": None, "scale": None,
                     "position": 7, "optional": False, "autoIncremented": False, "generated": False},
                    {"name": "changed", "jdbcType": 93, "nativeType": None, "typeName": "TIMESTAMP",
                     "typeExpression": "TIMESTAMP", "charsetName": None, "length": None, "scale": None,
                     "position": 8, "optional": True, "autoIncremented": False, "generated": False},
                    {"name": "weird", "jdbcType": 2004, "nativeType": None, "typeName": "SOMETHING_NEW",
                     "typeExpression": "SOMETHING_NEW", "charsetName": None, "length": None, "scale": None,
                     "position": 9, "optional": True, "autoIncremented": False, "generated": False},
                ],
                "attributes": [{"customAttribute": "attributeValue"}],
            },
        }
    ],
}  # fmt: skip


@pytest.mark.parametrize("wrapped", [False, True])
def test_debezium_schema_change(wrapped: bool) -> None:
    doc: dict[str, Any] = DEBEZIUM_SCHEMA_CHANGE
    if wrapped:
        doc = {"schema": {"type": "struct", "fields": [], "name": "io.debezium.connector.mysql.SchemaChangeValue"},
               "payload": doc}  # fmt: skip
    change = EnvelopeCodec(PREFIX).decode_schema_change(orjson.dumps(doc))
    assert change.kind == "ALTER"
    assert change.ddl == DEBEZIUM_SCHEMA_CHANGE["ddl"]
    assert change.ts_ms == 1651535750218  # the source's time, not the processing time
    assert change.position == MySqlPosition("mysql-bin.000003", 570, None, 223344)
    ts = change.schema
    assert ts.table == TableId("inventory", "customers")
    assert ts.primary_key == ("id",)
    assert ts.charset == "utf8mb4"
    assert ts.version == 1
    by = {c.name: c for c in ts.columns}
    assert list(by) == ["id", "first_name", "middle_name", "price", "seen", "mood", "views", "changed", "weird"]
    assert (by["id"].logical, by["id"].wire, by["id"].nullable, by["id"].auto_increment) == (
        Logical.INT32,
        Wire("int32", optional=False),
        False,
        True,
    )
    assert (by["first_name"].native_type, by["first_name"].logical, by["first_name"].charset) == (
        "VARCHAR(255)",
        Logical.STRING,
        "utf8mb4",
    )
    assert by["middle_name"].wire == Wire("string", optional=True)
    price = by["price"]
    assert (price.native_type, price.logical, price.precision, price.scale, price.default) == (
        "DECIMAL(10,2) UNSIGNED",
        Logical.DECIMAL,
        10,
        2,
        "0.00",
    )
    assert price.wire == Wire(
        "bytes", "org.apache.kafka.connect.data.Decimal", 1, {"scale": "2", "connect.decimal.precision": "10"}
    )
    assert (by["seen"].native_type, by["seen"].logical, by["seen"].precision) == ("DATETIME(6)", Logical.TIMESTAMP, 6)
    assert by["seen"].wire == Wire("int64", "io.debezium.time.MicroTimestamp", 1)
    assert by["mood"].native_type == "ENUM('sad','it''s ok')"
    assert by["mood"].enum_values == ("sad", "it's ok")
    assert by["mood"].wire == Wire("string", "io.debezium.data.Enum", 1, {"allowed": "sad,it's ok"})
    assert (by["views"].logical, by["views"].wire) == (Logical.UINT64, Wire("int64", optional=False))
    assert (by["changed"].logical, by["changed"].wire) == (
        Logical.TIMESTAMPTZ,
        Wire("string", "io.debezium.time.ZonedTimestamp", 1),
    )
    assert (by["weird"].logical, by["weird"].wire) == (Logical.BYTES, Wire("bytes"))  # from jdbcType BLOB


@pytest.mark.parametrize(
    ("type_name", "jdbc", "length", "logical", "wire"),
    [
        ("BIT", -7, 1, Logical.BOOLEAN, Wire("boolean")),
        ("BIT", -7, 12, Logical.BITS, Wire("bytes", "io.debezium.data.Bits", 1, {"length": "12"})),
        ("TINYINT", -6, None, Logical.INT8, Wire("int16")),
        ("TINYINT UNSIGNED", -6, None, Logical.INT16, Wire("int16")),
        ("INT UNSIGNED", 4, None, Logical.INT64, Wire("int64")),
        ("FLOAT", 7, None, Logical.FLOAT32, Wire("float32")),
        ("FLOAT", 7, 30, Logical.FLOAT64, Wire("float64")),
        ("DOUBLE", 8, None, Logical.FLOAT64, Wire("float64")),
        ("LONGBLOB", -4, None, Logical.BYTES, Wire("bytes")),
        ("JSON", 1111, None, Logical.JSON, Wire("string", "io.debezium.data.Json", 1)),
        ("DATE", 91, None, Logical.DATE, Wire("int32", "io.debezium.time.Date", 1)),
        ("TIME", 92, 3, Logical.TIME, Wire("int64", "io.debezium.time.MicroTime", 1)),
        ("DATETIME", 93, None, Logical.TIMESTAMP, Wire("int64", "io.debezium.time.Timestamp", 1)),
        ("YEAR", 4, None, Logical.YEAR, Wire("int32", "io.debezium.time.Year", 1)),
        ("POINT", 1111, None, Logical.GEOMETRY, Wire("struct", "io.debezium.data.geometry.Geometry", 1,
                                                     fields=(("wkb", Wire("bytes", optional=False)),
                                                             ("srid", Wire("int32"))))),
        ("_int4", 2003, None, Logical.ARRAY, Wire("array", items=Wire("string"))),
        ("NOPE", 9999, None, Logical.UNKNOWN, Wire("string")),
    ],
)  # fmt: skip
def test_debezium_type_derivation(type_name: str, jdbc: int, length: int | None, logical: Logical, wire: Wire) -> None:
    col = column_from_debezium(
        {"name": "c", "jdbcType": jdbc, "typeName": type_name, "length": length, "position": 1, "optional": True}
    )
    assert (col.logical, col.wire) == (logical, wire)


def test_several_and_no_table_changes() -> None:
    codec = EnvelopeCodec(PREFIX)
    empty = {**DEBEZIUM_SCHEMA_CHANGE, "ddl": "CREATE DATABASE x", "tableChanges": []}
    assert codec.decode_schema_changes(orjson.dumps(empty)) == []
    with pytest.raises(DecodeError, match="0 table changes"):
        codec.decode_schema_change(orjson.dumps(empty))
    item = DEBEZIUM_SCHEMA_CHANGE["tableChanges"][0]  # type: ignore[index]
    dropped = {"type": "DROP", "id": '"inventory"."old"', "table": None}
    two = {**DEBEZIUM_SCHEMA_CHANGE, "tableChanges": [item, dropped]}
    changes = codec.decode_schema_changes(orjson.dumps(two))
    assert [c.kind for c in changes] == ["ALTER", "DROP"]
    assert changes[1].schema == TableSchema(TableId("inventory", "old"), (), ())
    with pytest.raises(DecodeError, match="2 table changes"):
        codec.decode_schema_change(orjson.dumps(two))


def test_renamed_table_id_uses_the_new_name() -> None:
    item = {**DEBEZIUM_SCHEMA_CHANGE["tableChanges"][0], "id": '"inventory"."old","inventory"."new ""x"""'}  # type: ignore[index]
    doc = {**DEBEZIUM_SCHEMA_CHANGE, "tableChanges": [item]}
    change = EnvelopeCodec(PREFIX).decode_schema_change(orjson.dumps(doc))
    assert change.schema.table == TableId("inventory", 'new "x"')


# ---------------------------------------------------------------------------------------------- encode errors


def test_unencodable_values_raise_target_value_error() -> None:
    with pytest.raises(TargetValueError):
        EnvelopeCodec(PREFIX).encode_value(_event(after={"id": 2**70, "bio": None}), _table())
    with pytest.raises(TargetValueError):
        EnvelopeCodec(PREFIX).encode_value(_event(after={"id": object()}), _table())


def test_key_column_missing_from_schema_raises_schema_error() -> None:
    with pytest.raises(SchemaError, match="nope"):
        EnvelopeCodec(PREFIX, schemas=True).encode_key(_event(key={"nope": 1}), _table())


def test_unknown_connector_cannot_embed_a_schema() -> None:
    event = _event(source={"ts_ms": 1, "connector": "oracle"})
    EnvelopeCodec(PREFIX).encode_value(event, _table())  # fine without schemas
    with pytest.raises(SchemaError, match="oracle"):
        EnvelopeCodec(PREFIX, schemas=True).encode_value(event, _table())


# ---------------------------------------------------------------------------------------------- poison input


def _good_value() -> dict[str, Any]:
    return orjson.loads(EnvelopeCodec(PREFIX).encode_value(_event(Op.UPDATE, txn_id="t1", txn_order=1), _table()))  # type: ignore[no-any-return]


def _with(path: tuple[str, ...], value: Any) -> bytes:
    doc = _good_value()
    target = doc
    for part in path[:-1]:
        target = target[part]
    if value is _DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return orjson.dumps(doc)


_DROP = object()


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        (b'{"schema": {"type": "struct"}, "payload": 5}', "JSON object"),
        (_with(("op",), "x"), "'op'"),
        (_with(("op",), ["c"]), "'op'"),
        (_with(("op",), _DROP), "no 'op'"),
        (_with(("source",), _DROP), "'source'"),
        (_with(("source",), [1]), "'source'"),
        (_with(("source", "ts_ms"), "soon"), "ts_ms"),
        (_with(("source", "ts_ms"), _DROP), "ts_ms"),
        (_with(("source", "ts_ms"), True), "ts_ms"),
        (_with(("source", "pos"), "4"), "'pos'"),
        (_with(("source", "file"), 3), "'file'"),
        (_with(("source", "server_id"), "x"), "server_id"),
        (_with(("ts_ms",), 1.5), "ts_ms"),
        (_with(("before",), [1]), "'before'"),
        (_with(("after",), None), "'after' image"),
        (_with(("after",), "row"), "'after'"),
        (_with(("transaction",), "t1"), "'transaction'"),
        (_with(("transaction", "id"), _DROP), "'id'"),
        (_with(("transaction", "total_order"), "1"), "total_order"),
        (_with(("source", "db"), _DROP), "cannot tell the table"),
        (orjson.dumps(DEBEZIUM_SCHEMA_CHANGE), "schema-change event"),
    ],
)
def test_malformed_values_raise_decode_error(value: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        EnvelopeCodec(PREFIX).decode(b'{"id": 1}', value)


def test_delete_without_before_and_pg_negative_lsn() -> None:
    codec = EnvelopeCodec(PREFIX)
    with pytest.raises(DecodeError, match="'before' image"):
        codec.decode(None, _with(("op",), "d").replace(b'"before":{', b'"x":{'))
    doc = _good_value()
    doc["source"] = {"connector": "postgresql", "ts_ms": 1, "schema": "s", "table": "t", "lsn": -5}
    with pytest.raises(DecodeError, match="lsn"):
        codec.decode(None, orjson.dumps(doc))


@pytest.mark.parametrize("key", [b"[1]", b"7", b"{", b'{"schema": {"type": "struct"}, "payload": [1]}', b"\x00"])
def test_malformed_keys_raise_decode_error(key: bytes) -> None:
    with pytest.raises(DecodeError, match="key"):
        EnvelopeCodec(PREFIX).decode(key, orjson.dumps(_good_value()))


def test_key_with_columns_named_schema_and_payload_is_plain() -> None:
    event = EnvelopeCodec(PREFIX).decode(b'{"schema": null, "payload": 5}', orjson.dumps(_good_value()))
    assert event is not None and event.key == {"schema": None, "payload": 5}


def _decode_or_decode_error(fn: Any, *args: Any) -> None:
    """Call ``fn``: returning is fine, DecodeError is fine, any other exception fails the test."""
    with contextlib.suppress(DecodeError):
        fn(*args)


@settings(max_examples=500, deadline=None)
@given(st.none() | st.binary(max_size=64), st.binary(max_size=256))
def test_random_bytes_raise_only_decode_error(key: bytes | None, value: bytes) -> None:
    codec = EnvelopeCodec(PREFIX)
    _decode_or_decode_error(codec.decode, key, value)
    _decode_or_decode_error(codec.decode_schema_changes, value)


any_json = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
)


@settings(max_examples=300, deadline=None)
@given(any_json, any_json)
def test_random_json_raises_only_decode_error(key: Any, value: Any) -> None:
    codec = EnvelopeCodec(PREFIX)
    _decode_or_decode_error(codec.decode, orjson.dumps(key), orjson.dumps(value))
    _decode_or_decode_error(codec.decode_schema_changes, orjson.dumps(value))


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    for k, v in items:
        out.append((*prefix, k))
        out.extend(_paths(v, (*prefix, k)))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], replacement: Any) -> Any:
    doc = copy.deepcopy(doc)
    target = doc
    for part in path[:-1]:
        target = target[part]
    if replacement is _DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = replacement
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(change_events(), st.booleans(), st.data())
def test_mutated_envelopes_raise_only_decode_error(
    case: tuple[ChangeEvent, TableSchema], schemas: bool, data: st.DataObject
) -> None:
    event, ts = case
    codec = EnvelopeCodec(PREFIX, schemas=schemas)
    key = codec.encode_key(event, ts)
    doc = orjson.loads(codec.encode_value(event, ts))
    paths = _paths(doc)
    path = data.draw(st.sampled_from(paths))
    mutated = _mutate(doc, path, data.draw(st.just(_DROP) | any_json))
    _decode_or_decode_error(codec.decode, key, orjson.dumps(mutated))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema_changes(), st.booleans(), st.data())
def test_mutated_schema_changes_raise_only_decode_error(
    change: SchemaChange, schemas: bool, data: st.DataObject
) -> None:
    codec = EnvelopeCodec(PREFIX, schemas=schemas)
    _, value = codec.encode_schema_change(change)
    doc = orjson.loads(value)
    # aim at the table definition most of the time: that is where the structure is deepest
    payload_paths = [p for p in _paths(doc) if "tableChanges" in p] or _paths(doc)
    path = data.draw(st.sampled_from(payload_paths))
    mutated = _mutate(doc, path, data.draw(st.just(_DROP) | any_json))
    _decode_or_decode_error(codec.decode_schema_changes, orjson.dumps(mutated))


def test_deeply_nested_wire_is_refused() -> None:
    codec = EnvelopeCodec(PREFIX)
    _, value = codec.encode_schema_change(SchemaChange("CREATE", _table(), None, _mysql_source(), 1))
    doc = orjson.loads(value)
    wire: dict[str, Any] = {"type": "string"}
    for _ in range(200):
        wire = {"type": "array", "items": wire}
    doc["tableChanges"][0]["table"]["columns"][0]["cdc"]["wire"] = wire
    with pytest.raises(DecodeError, match="deeper"):
        codec.decode_schema_change(orjson.dumps(doc))


def _good_schema_change() -> dict[str, Any]:
    enum_col = Column("mood", "ENUM('a','b')", Logical.ENUM, Wire("string"), enum_values=("a", "b"), position=3)
    ts = TableSchema(_table().table, (*_table().columns, enum_col), ("id",), version=7)
    _, value = EnvelopeCodec(PREFIX).encode_schema_change(SchemaChange("ALTER", ts, "ddl", _mysql_source(), 1))
    return orjson.loads(value)  # type: ignore[no-any-return]


def _change_with(path: tuple[Any, ...], value: Any) -> bytes:
    return orjson.dumps(_mutate(_good_schema_change(), path, value))


_COL = ("tableChanges", 0, "table", "columns")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (b"nope", "not valid JSON"),
        (b"[]", "JSON object"),
        (_change_with(("source",), _DROP), "'source'"),
        (_change_with(("ddl",), 5), "'ddl'"),
        (_change_with(("tableChanges",), {}), "tableChanges"),
        (_change_with(("tableChanges", 0), "x"), r"tableChanges\[0\]"),
        (_change_with(("tableChanges", 0, "type"), "RENAME"), "CREATE, ALTER or DROP"),
        (_change_with(("tableChanges", 0, "id"), '"inventory"."cust'), "unterminated"),
        (_change_with(("tableChanges", 0, "id"), 3), "'id'"),
        (_change_with(("tableChanges", 0, "table"), None), "no table definition"),
        (_change_with(("tableChanges", 0, "table", "columns"), None), "columns"),
        (_change_with(("tableChanges", 0, "table", "primaryKeyColumnNames"), ["nope"]), "inconsistent"),
        (_change_with(("tableChanges", 0, "table", "primaryKeyColumnNames"), "id"), "primaryKeyColumnNames"),
        (_change_with(("tableChanges", 0, "table", "cdc", "version"), "7"), "version"),
        (_change_with((*_COL, 1, "name"), "id"), "inconsistent"),  # duplicate column names
        (_change_with((*_COL, 0, "position"), _DROP), "position"),
        (_change_with((*_COL, 0, "optional"), "no"), "optional"),
        (_change_with((*_COL, 2, "enumValues"), 5), "enumValues"),
        (_change_with((*_COL, 2, "enumValues"), [1, 2]), "enumValues"),
        (_change_with((*_COL, 0, "cdc"), []), r"\.cdc"),
        (_change_with((*_COL, 0, "cdc", "logical"), "int128"), "logical"),
        (_change_with((*_COL, 0, "cdc", "nativeType"), None), "nativeType"),
        (_change_with((*_COL, 0, "cdc", "precision"), "10"), "precision"),
        (_change_with((*_COL, 0, "cdc", "wire"), "int32"), "wire"),
        (_change_with((*_COL, 0, "cdc", "wire", "type"), None), "type"),
        (_change_with((*_COL, 0, "cdc", "wire", "parameters"), {"scale": 2}), "parameters"),
        (_change_with((*_COL, 0, "cdc", "wire", "fields"), [{"type": "int32"}]), "field"),
        (_change_with((*_COL, 0, "cdc", "wire", "items"), [1]), "items"),
        (_change_with((*_COL, 1, "cdc"), _DROP), None),  # Debezium-style column: derived, not an error
    ],
)
def test_malformed_schema_changes_raise_decode_error(value: bytes, match: str | None) -> None:
    codec = EnvelopeCodec(PREFIX)
    if match is None:
        assert codec.decode_schema_change(value).schema.table == TableId("inventory", "customers")
    else:
        with pytest.raises(DecodeError, match=match):
            codec.decode_schema_change(value)


def test_schema_change_time_falls_back_to_top_level_ts_ms() -> None:
    codec = EnvelopeCodec(PREFIX)
    doc = _mutate(_good_schema_change(), ("source", "ts_ms"), _DROP)
    doc["ts_ms"] = 42
    assert codec.decode_schema_change(orjson.dumps(doc)).ts_ms == 42
    del doc["ts_ms"]
    with pytest.raises(DecodeError, match="ts_ms"):
        codec.decode_schema_change(orjson.dumps(doc))
