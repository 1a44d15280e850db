"""Debezium's change-event envelope, keys, tombstones, Connect schemas and schema-change events, both ways.

Topics (see the contract): one per table, :func:`topic_for`; schema changes on
:func:`schema_change_topic`; heartbeats on :func:`heartbeat_topic`.

**Change events.** :meth:`EnvelopeCodec.encode_value` writes Debezium's envelope::

    {"before": {...} | null, "after": {...} | null, "source": {...}, "op": "c|u|d|r|t",
     "ts_ms": <emitted_ms>, "transaction": {"id", "total_order", "data_collection_order"} | null}

Row images already hold Debezium's JSON representation (see :mod:`cdc.events`), so encoding
is one ``orjson.dumps`` of that dict. With ``schemas=True`` the payload is wrapped the way
Kafka Connect's JsonConverter does with ``schemas.enable=true``: ``{"schema": ..., "payload": ...}``.
The schema part is serialized once per (table, schema version, connector) and the bytes are
spliced around the payload, so the hot path stays one ``dumps``.

The message key is ``event.key`` as a JSON object (``{"id": 1}``), or no key (``None``) when
the event has none (keyless tables, truncates). A delete is followed by a tombstone: the same
key with a null value (:meth:`EnvelopeCodec.messages_for`); keyless deletes get no tombstone,
since a null key with a null value tells a compacted topic nothing.

**Unchanged values** (PostgreSQL's unchanged TOAST). The canonical in-memory form is: a column
named in ``event.unchanged`` is *absent* from the event's row image (``after``; ``before`` for
a delete). On the wire that column carries Debezium's placeholder in the row image, in the form
Debezium uses for the column's Connect type:

==========================  ==============================================================
column wire type            placeholder written
==========================  ==============================================================
``bytes`` (incl. Decimal)   base64 of the placeholder's UTF-8 bytes
array of ``bytes``          ``[<that base64>]``
array of integers           the placeholder's bytes as a list of integers
array of ``Uuid``           ``[<UUID.nameUUIDFromBytes(placeholder)>]`` (a version-3 UUID)
other arrays                ``["__debezium_unavailable_value"]``
``map`` (hstore as map)     ``{"__debezium_unavailable_value": "__debezium_unavailable_value"}``
anything else               ``"__debezium_unavailable_value"``
==========================  ==============================================================

Decoding recognizes every one of these forms, with or without an embedded schema, removes the
column from the row image and adds it to ``unchanged``. A genuine value equal to one of these
forms is indistinguishable from the placeholder; that ambiguity is Debezium's own.

**Decoding** accepts plain payloads and ``{"schema", "payload"}`` wrapped ones (told apart by
shape), including envelopes written by Debezium itself: extra ``source`` fields, a missing
``transaction`` block, ``ts_us``/``ts_ns`` fields. The table comes from the caller or from the
source block (``db`` + ``table`` for MySQL and MariaDB, ``schema`` + ``table`` for
PostgreSQL); ``ts_ms`` (commit time) is ``source.ts_ms``; ``position`` is rebuilt from the
source block (MySQL: ``MySqlPosition(file, pos, gtid, server_id)``; PostgreSQL:
``PgPosition(lsn, txId)``; ``None`` when those fields are absent). Anything malformed raises
:class:`~cdc.errors.DecodeError` naming the problem, never another exception type. Messages
name fields and types, never row values.

Round trip: for an event whose ``source`` block holds ``ts_ms == event.ts_ms`` and the position
fields of ``event.position``, whose row images hold only JSON-native values with no placeholder
forms and no key for an unchanged column, whose transaction orders are 0 when ``txn_id`` is None,
and whose images match its op (``after`` for c/u/r, ``before`` for d),
``decode(encode_key(e), encode_value(e)) == e``.

**Schema changes** (:meth:`EnvelopeCodec.encode_schema_change`) use the layout of Debezium's
schema-change topic (key ``{"databaseName"}``, value ``{"source", "ts_ms", "databaseName",
"schemaName", "ddl", "tableChanges": [...]}``) plus a ``"cdc"`` object per column and per table
that carries what Debezium's fields cannot say exactly, so :meth:`EnvelopeCodec.decode_schema_change`
rebuilds the very same :class:`~cdc.events.TableSchema`. Schema-change events written by
Debezium (no ``"cdc"`` objects) are read too; see :func:`column_from_debezium` for how their
columns are derived.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from cdc.errors import DecodeError, SchemaError, TargetValueError
from cdc.events import (
    UNAVAILABLE,
    ChangeEvent,
    Column,
    Logical,
    Op,
    SchemaChange,
    TableId,
    TableSchema,
    Wire,
    connect_type,
)
from cdc.positions import MySqlPosition, PgPosition, Position

__all__ = [
    "EnvelopeCodec",
    "Message",
    "column_from_debezium",
    "heartbeat_topic",
    "placeholder_for",
    "schema_change_topic",
    "table_schema_from_connect",
    "topic_for",
]

#: A Kafka record as (key, value); ``None`` is a null key or value.
Message = tuple[bytes | None, bytes | None]

_dumps: Final = orjson.dumps

# ---------------------------------------------------------------------------------------------- topics


def topic_for(prefix: str, table: TableId) -> str:
    """The change-event topic of ``table``: ``<prefix>.<schema>.<table>``."""
    return f"{prefix}.{table.schema}.{table.table}"


def schema_change_topic(prefix: str) -> str:
    """The schema-change topic: ``<prefix>`` itself, as Debezium names it."""
    return prefix


def heartbeat_topic(prefix: str) -> str:
    """The heartbeat topic: ``__cdc_heartbeat.<prefix>``."""
    return f"__cdc_heartbeat.{prefix}"


# ---------------------------------------------------------------------------------------------- placeholders

_PH_BYTES: Final = UNAVAILABLE.encode()
_PH_B64: Final = base64.b64encode(_PH_BYTES).decode("ascii")
_PH_INTS: Final = list(_PH_BYTES)  # ASCII, so Java's signed bytes are the same numbers
_PH_UUID: Final = str(uuid.UUID(bytes=hashlib.md5(_PH_BYTES, usedforsecurity=False).digest(), version=3))
_PH_LIST_STR: Final = [UNAVAILABLE]
_PH_LIST_B64: Final = [_PH_B64]
_PH_LIST_UUID: Final = [_PH_UUID]
_PH_MAP: Final = {UNAVAILABLE: UNAVAILABLE}
_PH_STRS: Final = frozenset({UNAVAILABLE, _PH_B64})
_PH_LISTS: Final = (_PH_LIST_STR, _PH_LIST_B64, _PH_INTS, _PH_LIST_UUID)
_INT_TYPES: Final = frozenset({"int8", "int16", "int32", "int64"})
_UUID_NAME: Final = "io.debezium.data.Uuid"


def placeholder_for(wire: Wire | None) -> Any:
    """Debezium's placeholder for an unchanged (unavailable) value of a column with this wire type."""
    if wire is None:
        return UNAVAILABLE
    kind = wire.type
    if kind == "bytes":
        return _PH_B64
    if kind == "array":
        items = wire.items
        if items is None:
            return list(_PH_LIST_STR)
        if items.type == "bytes":
            return list(_PH_LIST_B64)
        if items.type in _INT_TYPES:
            return list(_PH_INTS)
        if items.name == _UUID_NAME:
            return list(_PH_LIST_UUID)
        return list(_PH_LIST_STR)
    if kind == "map":
        return dict(_PH_MAP)
    return UNAVAILABLE


def _placeholder_columns(image: Mapping[str, Any]) -> list[str]:
    """The columns of a row image that hold one of Debezium's placeholder forms (the decode hot path)."""
    strs, lists, ph_map = _PH_STRS, _PH_LISTS, _PH_MAP
    return [
        name
        for name, v in image.items()
        if (v.__class__ is str and v in strs)
        or (v.__class__ is list and v in lists)
        or (v.__class__ is dict and v == ph_map)
    ]


# ---------------------------------------------------------------------------------------------- Connect schemas

_SNAPSHOT_FIELD: Final[dict[str, Any]] = {
    "type": "string",
    "optional": True,
    "name": "io.debezium.data.Enum",
    "version": 1,
    "parameters": {"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},
    "default": "false",
    "field": "snapshot",
}


def _f(kind: str, name: str, optional: bool = False) -> dict[str, Any]:
    return {"type": kind, "optional": optional, "field": name}


_COMMON_SOURCE_FIELDS: Final = (
    _f("string", "version"),
    _f("string", "connector"),
    _f("string", "name"),
    _f("int64", "ts_ms"),
    _SNAPSHOT_FIELD,
    _f("string", "db"),
    _f("string", "sequence", True),
    _f("int64", "ts_us", True),
    _f("int64", "ts_ns", True),
)
_BINLOG_SOURCE_FIELDS: Final = (
    _f("string", "table", True),
    _f("int64", "server_id"),
    _f("string", "gtid", True),
    _f("string", "file"),
    _f("int64", "pos"),
    _f("int32", "row"),
    _f("int64", "thread", True),
    _f("string", "query", True),
)
_PG_SOURCE_FIELDS: Final = (
    _f("string", "schema"),
    _f("string", "table"),
    _f("int64", "txId", True),
    _f("int64", "lsn", True),
    _f("int64", "xmin", True),
    _f("string", "origin", True),
    _f("int64", "origin_lsn", True),
)
#: Connector name (``source.connector``) → the fields of its ``source`` struct after the common ones.
_SOURCE_FIELDS: Final[Mapping[str, tuple[dict[str, Any], ...]]] = {
    "mysql": _BINLOG_SOURCE_FIELDS,
    "mariadb": _BINLOG_SOURCE_FIELDS,
    "postgresql": _PG_SOURCE_FIELDS,
}
_BINLOG_KINDS: Final = frozenset({"mysql", "mariadb"})


def _source_schema(connector: str) -> dict[str, Any]:
    """Debezium's ``source`` struct for a connector (Debezium 3.x field list)."""
    return {
        "type": "struct",
        "fields": [*_COMMON_SOURCE_FIELDS, *_SOURCE_FIELDS[connector]],
        "optional": False,
        "name": f"io.debezium.connector.{connector}.Source",
        "version": 1,
        "field": "source",
    }


_TRANSACTION_SCHEMA: Final[dict[str, Any]] = {
    "type": "struct",
    "fields": [_f("string", "id"), _f("int64", "total_order"), _f("int64", "data_collection_order")],
    "optional": True,
    "name": "event.block",
    "version": 1,
    "field": "transaction",
}


def _schema_change_column_schema() -> dict[str, Any]:
    return {
        "type": "struct",
        "fields": [
            _f("string", "name"),
            _f("int32", "jdbcType"),
            _f("int32", "nativeType", True),
            _f("string", "typeName"),
            _f("string", "typeExpression", True),
            _f("string", "charsetName", True),
            _f("int32", "length", True),
            _f("int32", "scale", True),
            _f("int32", "position"),
            _f("boolean", "optional", True),
            _f("boolean", "autoIncremented", True),
            _f("boolean", "generated", True),
            _f("string", "comment", True),
            _f("string", "defaultValueExpression", True),
            {"type": "array", "items": {"type": "string", "optional": False}, "optional": True, "field": "enumValues"},
        ],
        "optional": False,
        "name": "io.debezium.connector.schema.Column",
        "version": 1,
    }


def _schema_change_value_schema(connector: str) -> dict[str, Any]:
    table = {
        "type": "struct",
        "fields": [
            _f("string", "defaultCharsetName", True),
            {
                "type": "array",
                "items": {"type": "string", "optional": False},
                "optional": True,
                "field": "primaryKeyColumnNames",
            },
            {"type": "array", "items": _schema_change_column_schema(), "optional": False, "field": "columns"},
            _f("string", "comment", True),
        ],
        "optional": True,
        "name": "io.debezium.connector.schema.Table",
        "version": 1,
        "field": "table",
    }
    change = {
        "type": "struct",
        "fields": [_f("string", "type"), _f("string", "id"), table],
        "optional": False,
        "name": "io.debezium.connector.schema.Change",
        "version": 1,
    }
    return {
        "type": "struct",
        "fields": [
            _source_schema(connector),
            _f("int64", "ts_ms"),
            _f("string", "databaseName", True),
            _f("string", "schemaName", True),
            _f("string", "ddl", True),
            {"type": "array", "items": change, "optional": False, "field": "tableChanges"},
        ],
        "optional": False,
        "name": f"io.debezium.connector.{connector}.SchemaChangeValue",
        "version": 1,
    }


def _schema_change_key_schema(connector: str) -> dict[str, Any]:
    return {
        "type": "struct",
        "fields": [_f("string", "databaseName")],
        "optional": False,
        "name": f"io.debezium.connector.{connector}.SchemaChangeKey",
        "version": 1,
    }


def _wrap_prefix(schema: Mapping[str, Any]) -> bytes:
    """``{"schema":<schema>,"payload":`` — the payload bytes and ``}`` follow."""
    return b'{"schema":' + orjson.dumps(schema) + b',"payload":'


def _source_kind(source: Mapping[str, Any]) -> str | None:
    """``mysql``, ``mariadb`` or ``postgresql`` from ``source.connector`` (or, without it, from its fields)."""
    connector = source.get("connector")
    if isinstance(connector, str):
        if connector in _SOURCE_FIELDS:
            return connector
        return "postgresql" if connector == "postgres" else None
    if connector is None:
        if "file" in source or "server_id" in source:
            return "mysql"
        if "lsn" in source or "txId" in source:
            return "postgresql"
    return None


# ---------------------------------------------------------------------------------------------- codec


class EnvelopeCodec:
    """Encodes and decodes one pipeline's Kafka records.

    ``prefix`` is the topic prefix (also the first part of Connect schema names, as Debezium's
    ``topic.prefix``); ``schemas`` embeds Kafka Connect schemas like JsonConverter with
    ``schemas.enable=true``. Decoding accepts both forms whatever ``schemas`` is.

    Encoding methods take events as sources produce them and raise
    :class:`~cdc.errors.TargetValueError` when a value cannot be written as JSON (an integer
    beyond 64 bits, a non-JSON type) and :class:`~cdc.errors.SchemaError` when the table schema
    does not cover the event (a key column it does not have; with ``schemas``, a source block
    whose connector is unknown).

    The codec keeps three small caches: serialized Connect schemas per (table, schema version,
    connector) and per key-column list, validated against the :class:`~cdc.events.TableSchema`
    on every hit (identity first, then equality, so a redefined table under a reused version is
    never served a stale schema); and, for decoding, the exact byte prefixes of wrapped values
    already seen, so an embedded schema is parsed once rather than per record. Sharing an instance
    between threads is safe under the GIL: a race only fills an entry twice with equal bytes.
    """

    def __init__(self, prefix: str, schemas: bool = False) -> None:
        self.prefix = prefix
        self.schemas = schemas
        self._value_prefixes: dict[tuple[TableId, int, str], tuple[TableSchema, bytes]] = {}
        self._key_prefixes: dict[tuple[TableId, int, tuple[str, ...]], tuple[TableSchema, bytes]] = {}
        self._change_prefixes: dict[str, tuple[bytes, bytes]] = {}
        self._known_wrappers: set[bytes] = set()

    # ------------------------------------------------------------------ change events: encode

    def encode_key(self, event: ChangeEvent, table_schema: TableSchema) -> bytes | None:
        """The record key: ``event.key`` as a JSON object, or ``None`` when the event has no key.

        With ``schemas`` it is wrapped with a struct schema named ``<prefix>.<schema>.<table>.Key``
        whose fields are the key columns' :class:`~cdc.events.Wire` schemas.
        """
        key = event.key
        if key is None:
            return None
        body = self._dumps(key, event.table, "key")
        if not self.schemas:
            return body
        return self._key_prefix(table_schema, tuple(key)) + body + b"}"

    def encode_value(self, event: ChangeEvent, table_schema: TableSchema) -> bytes:
        """The record value: Debezium's envelope for ``event``.

        ``ts_ms`` is ``event.emitted_ms``; ``source`` is ``event.source`` as given (it holds the
        commit time as ``ts_ms``); ``transaction`` is null when ``event.txn_id`` is None. Columns
        in ``event.unchanged`` are written with the placeholder for their wire type (see the
        module docstring) into the row image (``after``, or ``before`` for a delete).
        """
        before = event.before
        after = event.after
        if event.unchanged:
            before, after = self._with_placeholders(event, table_schema)
        txn_id = event.txn_id
        payload = {
            "before": before,
            "after": after,
            "source": event.source,
            "op": event.op.value,
            "ts_ms": event.emitted_ms,
            "transaction": None
            if txn_id is None
            else {"id": txn_id, "total_order": event.txn_order, "data_collection_order": event.txn_table_order},
        }
        body = self._dumps(payload, event.table, "value")
        if not self.schemas:
            return body
        return self._value_prefix(table_schema, event.source) + body + b"}"

    def tombstone(self, event: ChangeEvent, table_schema: TableSchema) -> tuple[bytes | None, None]:
        """The tombstone that follows a delete: the event's key with a null value."""
        return self.encode_key(event, table_schema), None

    def messages_for(self, event: ChangeEvent, table_schema: TableSchema) -> list[Message]:
        """The records for one event, in order: the event, then, after a delete with a key, its tombstone.

        The same bytes as :meth:`encode_key` and :meth:`encode_value` (the publishing hot path:
        without embedded schemas and placeholders, one ``dumps`` per record part, inline).
        """
        if self.schemas or event.unchanged:
            key = self.encode_key(event, table_schema)
            value = self.encode_value(event, table_schema)
        else:
            txn_id = event.txn_id
            try:
                value = _dumps(
                    {
                        "before": event.before,
                        "after": event.after,
                        "source": event.source,
                        "op": event.op,  # a str enum: orjson writes its value
                        "ts_ms": event.emitted_ms,
                        "transaction": None
                        if txn_id is None
                        else {
                            "id": txn_id,
                            "total_order": event.txn_order,
                            "data_collection_order": event.txn_table_order,
                        },
                    }
                )
                key = None if event.key is None else _dumps(event.key)
            except TypeError:  # orjson.JSONEncodeError: the slow path names the part
                key = self.encode_key(event, table_schema)
                value = self.encode_value(event, table_schema)
        if event.op is Op.DELETE and key is not None:
            return [(key, value), (key, None)]
        return [(key, value)]

    def _with_placeholders(self, event: ChangeEvent, table_schema: TableSchema) -> tuple[Any, Any]:
        image = event.before if event.op is Op.DELETE else event.after
        if image is None:
            raise SchemaError(
                f"{event.table}: a {event.op.name.lower()} event names unchanged columns but has no row image"
            )
        filled = dict(image)
        for name in sorted(event.unchanged):
            wire = table_schema.column(name).wire if table_schema.has_column(name) else None
            filled[name] = placeholder_for(wire)
        if event.op is Op.DELETE:
            return filled, event.after
        return event.before, filled

    def _dumps(self, obj: Any, table: TableId, what: str) -> bytes:
        try:
            return orjson.dumps(obj)
        except TypeError as exc:  # orjson.JSONEncodeError
            raise TargetValueError(f"{table}: the change event's {what} cannot be written as JSON: {exc}") from exc

    def _value_prefix(self, table_schema: TableSchema, source: Mapping[str, Any]) -> bytes:
        connector = _source_kind(source)
        if connector is None:
            raise SchemaError(
                f"{table_schema.table}: cannot embed a Connect schema for a source block whose connector is "
                f"{source.get('connector')!r} (expected mysql, mariadb or postgresql)"
            )
        cache_key = (table_schema.table, table_schema.version, connector)
        hit = self._value_prefixes.get(cache_key)
        if hit is not None and (hit[0] is table_schema or hit[0] == table_schema):
            return hit[1]
        base = f"{self.prefix}.{table_schema.table.schema}.{table_schema.table.table}"
        fields = [c.wire.to_connect(c.name) for c in table_schema.columns]
        value_struct = {"type": "struct", "fields": fields, "optional": True, "name": f"{base}.Value"}
        schema = {
            "type": "struct",
            "fields": [
                {**value_struct, "field": "before"},
                {**value_struct, "field": "after"},
                _source_schema(connector),
                _TRANSACTION_SCHEMA,
                _f("string", "op"),
                _f("int64", "ts_ms", True),
            ],
            "optional": False,
            "name": f"{base}.Envelope",
            "version": 2,
        }
        prefix = _wrap_prefix(schema)
        self._value_prefixes[cache_key] = (table_schema, prefix)
        self._remember_wrapper(prefix)
        return prefix

    def _key_prefix(self, table_schema: TableSchema, names: tuple[str, ...]) -> bytes:
        cache_key = (table_schema.table, table_schema.version, names)
        hit = self._key_prefixes.get(cache_key)
        if hit is not None and (hit[0] is table_schema or hit[0] == table_schema):
            return hit[1]
        fields = []
        for name in names:
            if not table_schema.has_column(name):
                raise SchemaError(f"{table_schema.table}: the event key names column {name!r}, which the table lacks")
            fields.append(table_schema.column(name).wire.to_connect(name))
        base = f"{self.prefix}.{table_schema.table.schema}.{table_schema.table.table}"
        prefix = _wrap_prefix({"type": "struct", "fields": fields, "optional": False, "name": f"{base}.Key"})
        self._key_prefixes[cache_key] = (table_schema, prefix)
        return prefix

    # ------------------------------------------------------------------ change events: decode

    def decode(self, key: bytes | None, value: bytes | None, table: TableId | None = None) -> ChangeEvent | None:
        """One record back into a :class:`~cdc.events.ChangeEvent`; ``None`` for a tombstone.

        ``key`` and ``value`` may each be plain JSON or JsonConverter-wrapped; a null ``value`` (or
        a JSON ``null`` payload) is a tombstone. ``table`` overrides the table named by the source
        block. Top-level ``ts_ms`` becomes ``emitted_ms`` (from ``ts_us``/``ts_ns`` when only those
        are present, else the commit time). Placeholders in the row image (``after``; ``before``
        for a delete) move to ``unchanged`` and leave the image; placeholders in the other image
        stay as they are. The op must match the images: ``after`` for c/u/r, ``before`` for d.
        Raises :class:`~cdc.errors.DecodeError` for anything malformed, and nothing else.
        """
        if value is None:
            return None
        data = self._load_value(value)
        if data is None:
            return None
        if not isinstance(data, dict):
            raise DecodeError(f"a change event value must be a JSON object, not {_kind(data)}")
        return self._event(data, key, table)

    def _load_value(self, value: bytes) -> Any:
        """The payload of a change-event value, parsing an embedded schema only the first time it is seen.

        A wrapped value is ``P + payload + b"}"`` where ``P`` is ``{"schema":<schema>,"payload":``.
        When ``P`` is a prefix already known to be exactly that (one this codec wrote, or one whose
        boundary was verified after a full parse), only the payload is parsed; if that fails, the
        whole value is parsed, so the result (or the DecodeError) is always that of :func:`_unwrap`
        on the whole value. The verification matters: a shorter prefix ending inside the schema
        would let invalid JSON through, since ``P' + value + "}"`` parses as a payload while the
        whole is unbalanced.
        """
        if value.__class__ is bytes and value.startswith(_WRAPPER_HEAD) and value.endswith(b"}"):
            cut = value.find(_PAYLOAD_MARK)
            if cut > 0:
                end = cut + len(_PAYLOAD_MARK)
                if value[:end] in self._known_wrappers:
                    try:
                        return orjson.loads(memoryview(value)[end:-1])
                    except orjson.JSONDecodeError:
                        pass  # not a well-formed wrapper after all: the full parse below says why
                else:
                    data = _loads(value, "change event value")
                    if _unwrap(data) is not data and _is_wrapper_head(value[:cut], data["schema"]):
                        self._remember_wrapper(value[:end])
                    return _unwrap(data)
        return _unwrap(_loads(value, "change event value"))

    def _remember_wrapper(self, prefix: bytes) -> None:
        if len(self._known_wrappers) >= _MAX_KNOWN_WRAPPERS:
            self._known_wrappers.clear()
        self._known_wrappers.add(prefix)

    def _event(self, data: dict[str, Any], key: bytes | None, table: TableId | None) -> ChangeEvent:
        op_text = data.get("op")
        if op_text is None:
            what = "a schema-change event" if "tableChanges" in data else "not a change event"
            raise DecodeError(f"change event value has no 'op' field ({what})")
        if op_text.__class__ is not str or op_text not in _OPS:
            raise DecodeError(f"change event 'op' must be one of c, u, d, r, t; got {_short(op_text)}")
        op = _OPS[op_text]
        source = data.get("source")
        if not isinstance(source, dict):
            raise DecodeError(f"change event 'source' must be a JSON object, not {_kind(source)}")
        commit_ms = _req_int(source, "ts_ms", "change event source")
        emitted = _emitted_ms(data, commit_ms)
        before = _image(data, "before")
        after = _image(data, "after")
        if op is Op.DELETE:
            image = before
            if image is None:
                raise DecodeError("a delete event ('op': 'd') must have a 'before' image")
        elif op is Op.TRUNCATE:
            image = None
        else:
            image = after
            if image is None:
                raise DecodeError(f"a change event with 'op': '{op_text}' must have an 'after' image")
        txn_id, txn_order, txn_table_order = _transaction(data.get("transaction"))
        kind = _source_kind(source)
        unchanged: frozenset[str] = frozenset()
        if image is not None:
            names = _placeholder_columns(image)
            if names:
                for name in names:
                    del image[name]
                unchanged = frozenset(names)
        return ChangeEvent(
            op=op,
            table=table if table is not None else _table_from_source(source, kind),
            key=self._decode_key(key),
            before=before,
            after=after,
            source=source,
            ts_ms=commit_ms,
            emitted_ms=emitted,
            txn_id=txn_id,
            txn_order=txn_order,
            txn_table_order=txn_table_order,
            position=_position_from_source(source, kind),
            unchanged=unchanged,
        )

    def _decode_key(self, key: bytes | None) -> dict[str, Any] | None:
        if key is None:
            return None
        data = _unwrap(_loads(key, "change event key"), null_schema=False)
        if data is None:
            return None
        if not isinstance(data, dict):
            raise DecodeError(f"a change event key must be a JSON object, not {_kind(data)}")
        return data

    # ------------------------------------------------------------------ schema changes

    def encode_schema_change(self, change: SchemaChange) -> tuple[bytes, bytes]:
        """(key, value) for the schema-change topic, in Debezium's layout plus cdc's ``"cdc"`` objects.

        MySQL and MariaDB: ``databaseName`` is the database, ``schemaName`` null, ``id`` is
        ``"db"."table"``. PostgreSQL: ``databaseName`` is ``source.db`` (the schema if absent),
        ``schemaName`` the schema, ``id`` is ``"schema"."table"``. Each column carries
        ``"cdc": {"logical", "wire", "precision", "nativeType", "length", "jdbcType"}`` (the exact
        Column fields), and the table ``"cdc": {"version"}``. Debezium's own fields follow its
        conventions: ``length`` falls back to the precision, ``jdbcType`` to one derived from the
        logical type when the column has none, ``typeName``/``typeExpression`` are the native type
        without its parenthesized modifiers, and ``generated`` mirrors ``autoIncremented``.
        """
        ts = change.schema
        tid = ts.table
        connector = _source_kind(change.source)
        if connector == "postgresql":
            db = change.source.get("db")
            database_name = db if isinstance(db, str) else tid.schema
            schema_name: str | None = tid.schema
        else:
            database_name = tid.schema
            schema_name = None
        payload = {
            "source": change.source,
            "ts_ms": change.ts_ms,
            "databaseName": database_name,
            "schemaName": schema_name,
            "ddl": change.ddl,
            "tableChanges": [
                {
                    "type": change.kind,
                    "id": _quote_id(tid),
                    "table": {
                        "defaultCharsetName": ts.charset,
                        "primaryKeyColumnNames": list(ts.primary_key),
                        "columns": [_column_doc(c) for c in ts.columns],
                        "attributes": [],
                        "comment": None,
                        "cdc": {"version": ts.version},
                    },
                    "comment": None,
                }
            ],
        }
        key_body = self._dumps({"databaseName": database_name}, tid, "schema-change key")
        value_body = self._dumps(payload, tid, "schema-change value")
        if not self.schemas:
            return key_body, value_body
        if connector is None:
            raise SchemaError(
                f"{tid}: cannot embed a Connect schema for a schema change whose source connector is "
                f"{change.source.get('connector')!r} (expected mysql, mariadb or postgresql)"
            )
        prefixes = self._change_prefixes.get(connector)
        if prefixes is None:
            prefixes = (
                _wrap_prefix(_schema_change_key_schema(connector)),
                _wrap_prefix(_schema_change_value_schema(connector)),
            )
            self._change_prefixes[connector] = prefixes
        return prefixes[0] + key_body + b"}", prefixes[1] + value_body + b"}"

    def decode_schema_change(self, value: bytes) -> SchemaChange:
        """The one table change in a schema-change value (DecodeError unless there is exactly one)."""
        changes = self.decode_schema_changes(value)
        if len(changes) != 1:
            raise DecodeError(f"a schema-change event holds {len(changes)} table changes; expected exactly one")
        return changes[0]

    def decode_schema_changes(self, value: bytes) -> list[SchemaChange]:
        """Every table change in a schema-change value, in order (Debezium may list several, or none).

        From cdc-written events the :class:`~cdc.events.TableSchema` is rebuilt exactly; from
        Debezium-written ones it is derived (see :func:`column_from_debezium`), with version 1.
        A ``DROP`` without a table definition yields a schema with no columns. ``ts_ms`` is
        ``source.ts_ms`` when present, else the top-level ``ts_ms``; ``position`` comes from the
        source block as for change events.
        """
        data = _unwrap(_loads(value, "schema-change value"))
        if not isinstance(data, dict):
            raise DecodeError(f"a schema-change value must be a JSON object, not {_kind(data)}")
        source = data.get("source")
        if not isinstance(source, dict):
            raise DecodeError(f"schema-change 'source' must be a JSON object, not {_kind(source)}")
        ts_ms = source.get("ts_ms")
        if ts_ms.__class__ is not int:
            ts_ms = _req_int(data, "ts_ms", "schema-change event")
        ddl = _opt_str(data, "ddl", "schema-change event")
        changes = data.get("tableChanges")
        if not isinstance(changes, list):
            raise DecodeError(f"schema-change 'tableChanges' must be a JSON array, not {_kind(changes)}")
        kind = _source_kind(source)
        position = _position_from_source(source, kind)
        out: list[SchemaChange] = []
        for i, item in enumerate(changes):
            where = f"tableChanges[{i}]"
            if not isinstance(item, dict):
                raise DecodeError(f"schema-change {where} must be a JSON object, not {_kind(item)}")
            change_type = item.get("type")
            if change_type not in ("CREATE", "ALTER", "DROP"):
                raise DecodeError(
                    f"schema-change {where}.type must be CREATE, ALTER or DROP; got {_short(change_type)}"
                )
            table_id = _table_from_change(item, data, where)
            schema = _table_schema(table_id, item.get("table"), change_type, where)
            out.append(
                SchemaChange(
                    kind=change_type, schema=schema, ddl=ddl, source=dict(source), ts_ms=ts_ms, position=position
                )
            )
        return out


_OPS: Final[Mapping[str, Op]] = {op.value: op for op in Op}

# ---------------------------------------------------------------------------------------------- decode helpers


def _loads(raw: Any, what: str) -> Any:
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise DecodeError(f"a {what} must be bytes, not {type(raw).__name__}")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"a {what} is not valid JSON: {exc}") from exc


_WRAPPER_HEAD: Final = b'{"schema":'
_PAYLOAD_MARK: Final = b',"payload":'
_MAX_KNOWN_WRAPPERS: Final = 1024


def _is_wrapper_head(head: bytes, schema: Any) -> bool:
    """Whether ``head`` (the bytes before the first ``,"payload":``) is exactly ``{"schema":<schema>``.

    The marker's unescaped quotes cannot occur inside a JSON string, so its first occurrence is
    either the wrapper's boundary or a ``payload`` key inside the schema (a Connect parameter may
    be named so); in the latter case ``head + "}"`` is not valid JSON, or not the whole schema.
    """
    try:
        return bool(orjson.loads(head + b"}") == {"schema": schema})
    except orjson.JSONDecodeError:
        return False


def _unwrap(data: Any, null_schema: bool = True) -> Any:
    """The payload of a JsonConverter ``{"schema", "payload"}`` wrapper; anything else unchanged.

    A wrapper has exactly those two keys and a Connect schema (an object with ``type``), or, when
    ``null_schema``, a null schema. Keys pass ``null_schema=False``: a plain key of a table whose
    key columns are named ``schema`` and ``payload`` may hold a null, never a Connect schema object.
    """
    if isinstance(data, dict) and len(data) == 2 and "schema" in data and "payload" in data:
        schema = data["schema"]
        if (schema is None and null_schema) or (isinstance(schema, dict) and "type" in schema):
            return data["payload"]
    return data


def _kind(value: Any) -> str:
    """A JSON type name for messages (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _req_int(obj: Mapping[str, Any], name: str, where: str) -> int:
    value = obj.get(name)
    if value.__class__ is not int:
        what = "missing" if name not in obj else f"{_kind(value)}"
        raise DecodeError(f"{where} field '{name}' must be an integer, got {what}")
    return int(value)


def _opt_int(obj: Mapping[str, Any], name: str, where: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if value.__class__ is not int:
        raise DecodeError(f"{where} field '{name}' must be an integer or null, got {_kind(value)}")
    return int(value)


def _opt_str(obj: Mapping[str, Any], name: str, where: str) -> str | None:
    value = obj.get(name)
    if value is None or isinstance(value, str):
        return value
    raise DecodeError(f"{where} field '{name}' must be a string or null, got {_kind(value)}")


def _req_str(obj: Mapping[str, Any], name: str, where: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        what = "missing" if name not in obj else _kind(value)
        raise DecodeError(f"{where} field '{name}' must be a string, got {what}")
    return value


def _opt_bool(obj: Mapping[str, Any], name: str, where: str, default: bool) -> bool:
    value = obj.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise DecodeError(f"{where} field '{name}' must be a boolean or null, got {_kind(value)}")
    return value


def _emitted_ms(data: Mapping[str, Any], commit_ms: int) -> int:
    for name, scale in (("ts_ms", 1), ("ts_us", 1_000), ("ts_ns", 1_000_000)):
        value = data.get(name)
        if value is None:
            continue
        if value.__class__ is not int:
            raise DecodeError(f"change event field '{name}' must be an integer, got {_kind(value)}")
        return int(value) // scale
    return commit_ms


def _image(data: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = data.get(name)
    if value is None or isinstance(value, dict):
        return value
    raise DecodeError(f"change event '{name}' must be a JSON object or null, not {_kind(value)}")


def _transaction(block: Any) -> tuple[str | None, int, int]:
    if block is None:
        return None, 0, 0
    if not isinstance(block, dict):
        raise DecodeError(f"change event 'transaction' must be a JSON object or null, not {_kind(block)}")
    where = "change event transaction"
    return (
        _req_str(block, "id", where),
        _req_int(block, "total_order", where),
        _req_int(block, "data_collection_order", where),
    )


def _table_from_source(source: Mapping[str, Any], kind: str | None) -> TableId:
    if kind in _BINLOG_KINDS:
        container = "db"
    elif kind == "postgresql":
        container = "schema"
    else:
        container = "schema" if isinstance(source.get("schema"), str) else "db"
    schema = source.get(container)
    name = source.get("table")
    if not isinstance(schema, str) or not isinstance(name, str):
        raise DecodeError(
            f"cannot tell the table: the source block needs string fields '{container}' and 'table' "
            f"(or the caller must name the table)"
        )
    return TableId(schema, name)


def _position_from_source(source: Mapping[str, Any], kind: str | None) -> Position | None:
    where = "source block"
    if kind in _BINLOG_KINDS:
        file = source.get("file")
        if file is None:
            return None
        if not isinstance(file, str):
            raise DecodeError(f"{where} field 'file' must be a string, got {_kind(file)}")
        return MySqlPosition(
            file,
            _req_int(source, "pos", where),
            _opt_str(source, "gtid", where),
            _opt_int(source, "server_id", where),
        )
    if kind == "postgresql":
        lsn = _opt_int(source, "lsn", where)
        if lsn is None:
            return None
        if lsn < 0:
            raise DecodeError(f"{where} field 'lsn' must not be negative")
        return PgPosition(lsn, _opt_int(source, "txId", where))
    return None


# ---------------------------------------------------------------------------------------------- schema-change helpers


def _quote_id(table: TableId) -> str:
    """Debezium's double-quoted table id, ``"schema"."table"`` (embedded quotes doubled)."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in (table.schema, table.table))


def _split_id(text: str) -> list[str]:
    """The parts of a Debezium table id; for a rename (``old,new``), the parts of the new name."""
    groups: list[list[str]] = []
    parts: list[str] = []
    cur: list[str] = []
    quoted = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quoted:
            if ch == '"':
                if i + 1 < n and text[i + 1] == '"':
                    cur.append('"')
                    i += 2
                    continue
                quoted = False
            else:
                cur.append(ch)
        elif ch == '"':
            quoted = True
        elif ch == ".":
            parts.append("".join(cur))
            cur = []
        elif ch == ",":
            parts.append("".join(cur))
            groups.append(parts)
            parts, cur = [], []
        else:
            cur.append(ch)
        i += 1
    if quoted:
        raise DecodeError("schema-change table id has an unterminated quote")
    parts.append("".join(cur))
    groups.append(parts)
    return groups[-1]


def _table_from_change(item: Mapping[str, Any], data: Mapping[str, Any], where: str) -> TableId:
    raw_id = _req_str(item, "id", f"schema-change {where}")
    parts = _split_id(raw_id)
    if len(parts) >= 2:
        return TableId(parts[-2], parts[-1])
    container = data.get("schemaName") or data.get("databaseName")
    if not isinstance(container, str):
        raise DecodeError(f"schema-change {where}.id names no schema or database, and the event none either")
    return TableId(container, parts[0])


def _table_schema(table_id: TableId, doc: Any, change_type: str, where: str) -> TableSchema:
    if doc is None:
        if change_type == "DROP":
            return TableSchema(table_id, (), ())
        raise DecodeError(f"schema-change {where} ({change_type}) has no table definition")
    if not isinstance(doc, dict):
        raise DecodeError(f"schema-change {where}.table must be a JSON object, not {_kind(doc)}")
    w = f"schema-change {where}.table"
    columns_doc = doc.get("columns")
    if not isinstance(columns_doc, list):
        raise DecodeError(f"{w}.columns must be a JSON array, not {_kind(columns_doc)}")
    pk = doc.get("primaryKeyColumnNames")
    if pk is None:
        pk = []
    if not isinstance(pk, list) or not all(isinstance(k, str) for k in pk):
        raise DecodeError(f"{w}.primaryKeyColumnNames must be an array of strings")
    ext = doc.get("cdc")
    version = 1
    if ext is not None:
        if not isinstance(ext, dict):
            raise DecodeError(f"{w}.cdc must be a JSON object, not {_kind(ext)}")
        version = _req_int(ext, "version", f"{w}.cdc")
    columns = tuple(_column(c, f"{w}.columns[{i}]") for i, c in enumerate(columns_doc))
    try:
        return TableSchema(
            table=table_id,
            columns=columns,
            primary_key=tuple(pk),
            version=version,
            charset=_opt_str(doc, "defaultCharsetName", w),
        )
    except ValueError as exc:
        raise DecodeError(f"{w} is inconsistent: {exc}") from exc


def _column(doc: Any, where: str) -> Column:
    if not isinstance(doc, dict):
        raise DecodeError(f"{where} must be a JSON object, not {_kind(doc)}")
    ext = doc.get("cdc")
    if ext is None:
        return column_from_debezium(doc, where)
    if not isinstance(ext, dict):
        raise DecodeError(f"{where}.cdc must be a JSON object, not {_kind(ext)}")
    logical_text = _req_str(ext, "logical", f"{where}.cdc")
    try:
        logical = Logical(logical_text)
    except ValueError as exc:
        raise DecodeError(f"{where}.cdc.logical is not a known logical type: {_short(logical_text)}") from exc
    enum_values = doc.get("enumValues")
    if enum_values is not None and (
        not isinstance(enum_values, list) or not all(isinstance(v, str) for v in enum_values)
    ):
        raise DecodeError(f"{where}.enumValues must be an array of strings or null")
    return Column(
        name=_req_str(doc, "name", where),
        native_type=_req_str(ext, "nativeType", f"{where}.cdc"),
        logical=logical,
        wire=_wire(ext.get("wire"), f"{where}.cdc.wire", 0),
        nullable=_opt_bool(doc, "optional", where, True),
        length=_opt_int(ext, "length", f"{where}.cdc") if "length" in ext else _opt_int(doc, "length", where),
        precision=_opt_int(ext, "precision", f"{where}.cdc"),
        scale=_opt_int(doc, "scale", where),
        position=_req_int(doc, "position", where),
        # cdc's own SQL text; events written before it was kept there carry it in defaultValueExpression
        default=_opt_str(ext, "default", f"{where}.cdc")
        if "default" in ext
        else _opt_str(doc, "defaultValueExpression", where),
        enum_values=tuple(enum_values) if enum_values is not None else None,
        charset=_opt_str(doc, "charsetName", where),
        auto_increment=_opt_bool(doc, "autoIncremented", where, False),
        jdbc_type=_opt_int(ext, "jdbcType", f"{where}.cdc") if "jdbcType" in ext else _opt_int(doc, "jdbcType", where),
    )


_MAX_WIRE_DEPTH: Final = 32


def _wire(doc: Any, where: str, depth: int) -> Wire:
    """:meth:`Wire.from_connect`, validating every field (DecodeError instead of KeyError/TypeError)."""
    if depth > _MAX_WIRE_DEPTH:
        raise DecodeError(f"{where} nests deeper than {_MAX_WIRE_DEPTH} levels")
    if not isinstance(doc, dict):
        raise DecodeError(f"{where} must be a JSON object, not {_kind(doc)}")
    params = doc.get("parameters")
    if params is not None and (not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values())):
        raise DecodeError(f"{where}.parameters must be an object of strings")
    items = doc.get("items")
    fields_doc = doc.get("fields")
    fields: tuple[tuple[str, Wire], ...] | None = None
    if fields_doc is not None:
        if not isinstance(fields_doc, list):
            raise DecodeError(f"{where}.fields must be a JSON array, not {_kind(fields_doc)}")
        parsed: list[tuple[str, Wire]] = []
        for i, field_doc in enumerate(fields_doc):
            field_where = f"{where}.fields[{i}]"
            child = _wire(field_doc, field_where, depth + 1)
            parsed.append((_req_str(field_doc, "field", field_where), child))
        fields = tuple(parsed)
    return Wire(
        type=connect_type(_req_str(doc, "type", where)),
        name=_opt_str(doc, "name", where),
        version=_opt_int(doc, "version", where),
        parameters=dict(params) if params else None,
        items=_wire(items, f"{where}.items", depth + 1) if items else None,
        fields=fields,
        optional=_opt_bool(doc, "optional", where, True),
    )


# ---------------------------------------------------------------------------------------------- column documents

#: ``java.sql.Types`` code written as ``jdbcType`` for a column that has none, by logical type.
_JDBC_BY_LOGICAL: Final[Mapping[Logical, int]] = {
    Logical.BOOLEAN: 16,
    Logical.INT8: -6,
    Logical.INT16: 5,
    Logical.INT32: 4,
    Logical.INT64: -5,
    Logical.UINT64: -5,
    Logical.FLOAT32: 7,
    Logical.FLOAT64: 8,
    Logical.DECIMAL: 3,
    Logical.STRING: 12,
    Logical.TEXT: -1,
    Logical.BYTES: -3,
    Logical.DATE: 91,
    Logical.TIME: 92,
    Logical.TIMETZ: 2013,
    Logical.TIMESTAMP: 93,
    Logical.TIMESTAMPTZ: 2014,
    Logical.INTERVAL: 1111,
    Logical.YEAR: 4,
    Logical.UUID: 1111,
    Logical.JSON: 1111,
    Logical.XML: 2009,
    Logical.ENUM: 1,
    Logical.SET: 1,
    Logical.BITS: -7,
    Logical.GEOMETRY: 1111,
    Logical.ARRAY: 2003,
    Logical.INET: 1111,
    Logical.CIDR: 1111,
    Logical.MACADDR: 1111,
    Logical.MONEY: 8,
    Logical.UNKNOWN: 1111,
}


def _strip_modifiers(native: str) -> str:
    """``DECIMAL(10,2) UNSIGNED`` → ``DECIMAL UNSIGNED``: parenthesized parts removed, quotes respected."""
    out: list[str] = []
    depth = 0
    quote: str | None = None
    for ch in native:
        if quote is not None:
            if ch == quote:
                quote = None
            continue
        if depth and ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    return " ".join("".join(out).split())


def _column_doc(c: Column) -> dict[str, Any]:
    type_name = _strip_modifiers(c.native_type) or c.native_type
    return {
        "name": c.name,
        "jdbcType": c.jdbc_type if c.jdbc_type is not None else _JDBC_BY_LOGICAL.get(c.logical, 1111),
        "nativeType": None,
        "typeName": type_name,
        "typeExpression": type_name,
        "charsetName": c.charset,
        "length": c.length if c.length is not None else c.precision,
        "scale": c.scale,
        "position": c.position,
        "optional": c.nullable,
        "autoIncremented": c.auto_increment,
        "generated": c.auto_increment,
        "enumValues": list(c.enum_values) if c.enum_values is not None else None,
        "hasDefaultValue": c.default is not None,
        "defaultValueExpression": _bare_default(c.default),
        "comment": None,
        "cdc": {
            "default": c.default,
            "logical": c.logical.value,
            "wire": c.wire.to_connect(),
            "precision": c.precision,
            "nativeType": c.native_type,
            "length": c.length,
            "jdbcType": c.jdbc_type,
        },
    }


_L = Logical
#: Upper-cased type name (modifiers and UNSIGNED/ZEROFILL removed) → logical type.
_LOGICAL_BY_TYPE_NAME: Final[Mapping[str, Logical]] = {
    **dict.fromkeys(("BOOL", "BOOLEAN"), _L.BOOLEAN),
    "TINYINT": _L.INT8,
    **dict.fromkeys(("SMALLINT", "INT2", "SMALLSERIAL", "SERIAL2"), _L.INT16),
    **dict.fromkeys(("MEDIUMINT", "INT", "INTEGER", "INT4", "SERIAL", "SERIAL4"), _L.INT32),
    **dict.fromkeys(("BIGINT", "INT8", "BIGSERIAL", "SERIAL8"), _L.INT64),
    **dict.fromkeys(("FLOAT", "FLOAT4", "REAL"), _L.FLOAT32),
    **dict.fromkeys(("DOUBLE", "DOUBLE PRECISION", "FLOAT8"), _L.FLOAT64),
    **dict.fromkeys(("DECIMAL", "DEC", "NUMERIC", "FIXED"), _L.DECIMAL),
    "MONEY": _L.MONEY,
    **dict.fromkeys(
        (
            "CHAR",
            "CHARACTER",
            "VARCHAR",
            "CHARACTER VARYING",
            "BPCHAR",
            "NCHAR",
            "NVARCHAR",
            "NATIONAL CHAR",
            "NATIONAL VARCHAR",
            "NATIONAL CHARACTER",
            "NATIONAL CHARACTER VARYING",
            "NAME",
        ),
        _L.STRING,
    ),
    **dict.fromkeys(("TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT", "CITEXT"), _L.TEXT),
    **dict.fromkeys(("BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB", "BYTEA"), _L.BYTES),
    "DATE": _L.DATE,
    **dict.fromkeys(("TIME", "TIME WITHOUT TIME ZONE"), _L.TIME),
    **dict.fromkeys(("TIMETZ", "TIME WITH TIME ZONE"), _L.TIMETZ),
    **dict.fromkeys(("DATETIME", "TIMESTAMP WITHOUT TIME ZONE"), _L.TIMESTAMP),
    **dict.fromkeys(("TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"), _L.TIMESTAMPTZ),
    "INTERVAL": _L.INTERVAL,
    "YEAR": _L.YEAR,
    "UUID": _L.UUID,
    **dict.fromkeys(("JSON", "JSONB"), _L.JSON),
    "XML": _L.XML,
    "ENUM": _L.ENUM,
    "SET": _L.SET,
    **dict.fromkeys(("BIT", "VARBIT", "BIT VARYING"), _L.BITS),
    **dict.fromkeys(
        (
            "GEOMETRY",
            "POINT",
            "LINESTRING",
            "POLYGON",
            "MULTIPOINT",
            "MULTILINESTRING",
            "MULTIPOLYGON",
            "GEOMETRYCOLLECTION",
            "GEOMCOLLECTION",
            "GEOGRAPHY",
        ),
        _L.GEOMETRY,
    ),
    **dict.fromkeys(("INET", "INET4", "INET6"), _L.INET),
    "CIDR": _L.CIDR,
    **dict.fromkeys(("MACADDR", "MACADDR8"), _L.MACADDR),
}
#: MySQL ``UNSIGNED`` integer types widen (Debezium's default ``bigint.unsigned.handling.mode=long``).
_UNSIGNED: Final[Mapping[str, Logical]] = {
    "TINYINT": _L.INT16,
    "SMALLINT": _L.INT32,
    "MEDIUMINT": _L.INT32,
    "INT": _L.INT64,
    "INTEGER": _L.INT64,
    "BIGINT": _L.UINT64,
}
#: ``java.sql.Types`` code → logical type, when the type name is not known.
_LOGICAL_BY_JDBC: Final[Mapping[int, Logical]] = {
    -7: _L.BOOLEAN,
    16: _L.BOOLEAN,
    -6: _L.INT8,
    5: _L.INT16,
    4: _L.INT32,
    -5: _L.INT64,
    7: _L.FLOAT32,
    6: _L.FLOAT64,
    8: _L.FLOAT64,
    2: _L.DECIMAL,
    3: _L.DECIMAL,
    **dict.fromkeys((1, 12, -15, -9), _L.STRING),
    **dict.fromkeys((-1, -16, 2005, 2011), _L.TEXT),
    **dict.fromkeys((-2, -3, -4, 2004), _L.BYTES),
    91: _L.DATE,
    92: _L.TIME,
    2013: _L.TIMETZ,
    93: _L.TIMESTAMP,
    2014: _L.TIMESTAMPTZ,
    2003: _L.ARRAY,
    2009: _L.XML,
}
_SIZED: Final = frozenset(
    {
        "CHAR",
        "VARCHAR",
        "BINARY",
        "VARBINARY",
        "BIT",
        "DECIMAL",
        "DEC",
        "NUMERIC",
        "FIXED",
        "DATETIME",
        "TIMESTAMP",
        "TIME",
        "CHARACTER",
        "NCHAR",
        "NVARCHAR",
        "VARBIT",
    }
)
_PRECISION_LOGICALS: Final = frozenset({_L.DECIMAL, _L.TIME, _L.TIMETZ, _L.TIMESTAMP, _L.TIMESTAMPTZ})
_TIME: Final = "io.debezium.time."


def _derive_logical(type_name: str, jdbc_type: int, length: int | None) -> Logical:
    upper = " ".join(type_name.upper().split())
    words = upper.split(" ")
    flags = {w for w in words if w in ("UNSIGNED", "ZEROFILL", "SIGNED")}
    base = " ".join(w for w in words if w not in flags)
    if base.endswith("[]") or base.startswith("_"):
        return _L.ARRAY
    if "UNSIGNED" in flags and base in _UNSIGNED:
        return _UNSIGNED[base]
    if base == "BIT" and (length is None or length <= 1):
        return _L.BOOLEAN
    if base == "FLOAT" and length is not None and length >= 24:
        return _L.FLOAT64
    logical = _LOGICAL_BY_TYPE_NAME.get(base)
    if logical is not None:
        return logical
    return _LOGICAL_BY_JDBC.get(jdbc_type, _L.UNKNOWN)


def _derive_wire(
    logical: Logical, c_length: int | None, scale: int | None, enum_values: Sequence[str] | None, nullable: bool
) -> Wire:
    def w(kind: str, name: str | None = None, params: dict[str, str] | None = None) -> Wire:
        return Wire(kind, name, 1 if name else None, params, optional=nullable)

    if logical is _L.BOOLEAN:
        return w("boolean")
    if logical in (_L.INT8, _L.INT16):
        return w("int16")
    if logical is _L.INT32:
        return w("int32")
    if logical in (_L.INT64, _L.UINT64):
        return w("int64")
    if logical is _L.FLOAT32:
        return w("float32")
    if logical is _L.FLOAT64:
        return w("float64")
    if logical in (_L.DECIMAL, _L.MONEY):
        dscale = 2 if logical is _L.MONEY else (scale or 0)
        params = {"scale": str(dscale)}
        if c_length is not None and logical is _L.DECIMAL:
            params["connect.decimal.precision"] = str(c_length)
        return w("bytes", "org.apache.kafka.connect.data.Decimal", params)
    if logical is _L.BYTES:
        return w("bytes")
    if logical is _L.DATE:
        return w("int32", _TIME + "Date")
    if logical is _L.TIME:
        return w("int64", _TIME + "MicroTime")
    if logical is _L.TIMETZ:
        return w("string", _TIME + "ZonedTime")
    if logical is _L.TIMESTAMP:
        return w("int64", _TIME + ("Timestamp" if c_length is None or c_length <= 3 else "MicroTimestamp"))
    if logical is _L.TIMESTAMPTZ:
        return w("string", _TIME + "ZonedTimestamp")
    if logical is _L.INTERVAL:
        return w("int64", _TIME + "MicroDuration")
    if logical is _L.YEAR:
        return w("int32", _TIME + "Year")
    if logical is _L.UUID:
        return w("string", _UUID_NAME)
    if logical is _L.JSON:
        return w("string", "io.debezium.data.Json")
    if logical is _L.XML:
        return w("string", "io.debezium.data.Xml")
    if logical in (_L.ENUM, _L.SET):
        name = "io.debezium.data.Enum" if logical is _L.ENUM else "io.debezium.data.EnumSet"
        return w("string", name, {"allowed": ",".join(enum_values or ())})
    if logical is _L.BITS:
        return w("bytes", "io.debezium.data.Bits", {"length": str(c_length if c_length is not None else 1)})
    if logical is _L.GEOMETRY:
        return Wire(
            "struct",
            "io.debezium.data.geometry.Geometry",
            1,
            fields=(("wkb", Wire("bytes", optional=False)), ("srid", Wire("int32"))),
            optional=nullable,
        )
    if logical is _L.ARRAY:
        return Wire("array", items=Wire("string"), optional=nullable)
    return w("string")


def _native_type(type_name: str, length: int | None, scale: int | None, enum_values: Sequence[str] | None) -> str:
    words = type_name.split()
    if not words:
        return type_name
    base = words[0].upper()
    if enum_values is not None and base in ("ENUM", "SET"):
        quoted = ",".join("'" + v.replace("'", "''") + "'" for v in enum_values)
        return f"{words[0]}({quoted})" + "".join(" " + x for x in words[1:])
    if length is None or base not in _SIZED or (len(words) > 1 and words[1].upper() in ("VARYING", "PRECISION")):
        return type_name
    mods = (
        f"({length},{scale})" if scale is not None and base in ("DECIMAL", "DEC", "NUMERIC", "FIXED") else f"({length})"
    )
    return words[0] + mods + "".join(" " + x for x in words[1:])


_NUMERIC_LOGICALS: Final = frozenset({
    _L.BOOLEAN, _L.INT8, _L.INT16, _L.INT32, _L.INT64, _L.UINT64, _L.FLOAT32, _L.FLOAT64, _L.DECIMAL, _L.YEAR,
    _L.MONEY,
})  # fmt: skip
_NUMBER_LITERAL: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SQL_FUNCTION: Final = re.compile(r"[A-Za-z_][A-Za-z_0-9]*(?:\(.*\))?")


_QUOTED_SQL: Final = re.compile(r"'((?:[^']|'')*)'(?:::[\w .\"\[\]()]+)?")


def _sql_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _bare_default(sql: str | None) -> str | None:
    """A column default (SQL text) as Debezium writes ``defaultValueExpression``: a quoted literal
    (with or without a PostgreSQL cast) as its bare value, anything else (numbers, functions) as it is."""
    if sql is None:
        return None
    m = _QUOTED_SQL.fullmatch(sql.strip())
    return m.group(1).replace("''", "'") if m is not None else sql


def _sql_default(value: str | None, logical: Logical) -> str | None:
    """Debezium's ``defaultValueExpression`` (the bare value: ``open``, ``0.00``, ``CURRENT_TIMESTAMP``)
    as SQL text, the form :attr:`Column.default` holds: numbers and booleans as they are, a
    function or keyword (``CURRENT_TIMESTAMP``, ``NULL``) as it is, and every other value quoted."""
    if value is None:
        return None
    if logical in _NUMERIC_LOGICALS:
        return value if _NUMBER_LITERAL.fullmatch(value) or value.upper() in ("TRUE", "FALSE", "NULL") else None
    if logical not in (_L.STRING, _L.TEXT, _L.ENUM, _L.SET) and _SQL_FUNCTION.fullmatch(value):
        return value  # CURRENT_TIMESTAMP, now(), NULL: an expression, not a literal
    return _sql_quote(value)


def column_from_debezium(doc: Mapping[str, Any], where: str = "column") -> Column:
    """A :class:`~cdc.events.Column` from a column of a Debezium-written schema-change event.

    Fields copied: ``name``, ``jdbcType``, ``length``, ``scale``, ``position``, ``optional``
    (→ ``nullable``), ``autoIncremented``, ``charsetName``, ``defaultValueExpression``,
    ``enumValues``. ``precision`` is ``length`` for decimal and temporal types (Debezium keeps
    the precision or fractional-second digits there), else None. ``native_type`` is
    ``typeExpression`` (or ``typeName``) with ``(length[,scale])`` put back for sized types
    (``VARCHAR(255)``, ``DECIMAL(10,2) UNSIGNED``, ``DATETIME(6)``) and the values for
    ``ENUM``/``SET``.

    ``logical`` comes from the type name (upper-cased, ``UNSIGNED``/``ZEROFILL`` noted), then
    from ``jdbcType``; ``wire`` is what Debezium's default modes produce for that logical type
    (``decimal.handling.mode=precise``, ``time.precision.mode=adaptive_time_microseconds``,
    ``bigint.unsigned.handling.mode=long``, ``binary.handling.mode=bytes``):

    =====================================================  ===============  ==========================================
    type name                                              logical          wire
    =====================================================  ===============  ==========================================
    BOOL, BOOLEAN, BIT / BIT(1)                            boolean          boolean
    TINYINT                                                int8             int16
    SMALLINT, INT2; TINYINT UNSIGNED                       int16            int16
    INT, INTEGER, INT4, MEDIUMINT [UNSIGNED];              int32            int32
    SMALLINT UNSIGNED
    BIGINT, INT8; INT UNSIGNED                             int64            int64
    BIGINT UNSIGNED                                        uint64           int64
    FLOAT, FLOAT(p<24), REAL, FLOAT4                       float32          float32
    DOUBLE, DOUBLE PRECISION, FLOAT8, FLOAT(p>=24)         float64          float64
    DECIMAL, NUMERIC, DEC, FIXED                           decimal          bytes ``Decimal`` (scale, precision)
    MONEY                                                  money            bytes ``Decimal`` (scale 2)
    CHAR, VARCHAR, NCHAR, NVARCHAR, BPCHAR, ...            string           string
    TEXT, TINYTEXT, MEDIUMTEXT, LONGTEXT, CITEXT           text             string
    BINARY, VARBINARY, *BLOB, BYTEA                        bytes            bytes
    DATE                                                   date             int32 ``io.debezium.time.Date``
    TIME                                                   time             int64 ``MicroTime``
    TIMETZ, TIME WITH TIME ZONE                            timetz           string ``ZonedTime``
    DATETIME                                               timestamp        int64 ``Timestamp`` (length <= 3 or
                                                                            none), else ``MicroTimestamp``
    TIMESTAMP (MySQL: UTC-based), TIMESTAMPTZ              timestamptz      string ``ZonedTimestamp``
    INTERVAL                                               interval         int64 ``MicroDuration``
    YEAR                                                   year             int32 ``io.debezium.time.Year``
    UUID                                                   uuid             string ``io.debezium.data.Uuid``
    JSON, JSONB                                            json             string ``io.debezium.data.Json``
    XML                                                    xml              string ``io.debezium.data.Xml``
    ENUM / SET                                             enum / set       string ``Enum`` / ``EnumSet`` (allowed)
    BIT(n>1), VARBIT                                       bits             bytes ``io.debezium.data.Bits`` (length)
    GEOMETRY, POINT, LINESTRING, POLYGON, MULTI*, ...      geometry         struct ``Geometry`` (wkb, srid)
    INET, INET4, INET6 / CIDR / MACADDR                    inet/cidr/mac..  string
    ``_name`` or ``name[]``                                array            array of string
    anything else: by ``jdbcType`` (BIT/BOOLEAN →          (as listed)      as for that logical type;
    boolean, TINYINT → int8, ..., ARRAY → array), else                      unknown → string
    unknown
    =====================================================  ===============  ==========================================

    ``TIMESTAMP`` follows MySQL, whose schema-change topic this reads (Debezium's PostgreSQL
    connector has none). The wire's ``optional`` is the column's nullability.
    """
    name = _req_str(doc, "name", where)
    jdbc_type = _req_int(doc, "jdbcType", where)
    type_name = _req_str(doc, "typeName", where)
    expression = _opt_str(doc, "typeExpression", where) or type_name
    length = _opt_int(doc, "length", where)
    scale = _opt_int(doc, "scale", where)
    nullable = _opt_bool(doc, "optional", where, True)
    enum_values = doc.get("enumValues")
    if enum_values is not None and (
        not isinstance(enum_values, list) or not all(isinstance(v, str) for v in enum_values)
    ):
        raise DecodeError(f"{where}.enumValues must be an array of strings or null")
    if enum_values and all(len(v) >= 2 and v[0] == v[-1] == "'" for v in enum_values):
        enum_values = [v[1:-1].replace("''", "'") for v in enum_values]  # as MariaDB's connector writes them
    logical = _derive_logical(type_name, jdbc_type, length)
    return Column(
        name=name,
        native_type=_native_type(expression, length, scale, enum_values),
        logical=logical,
        wire=_derive_wire(logical, length, scale, enum_values, nullable),
        nullable=nullable,
        length=length,
        precision=length if logical in _PRECISION_LOGICALS else None,
        scale=scale,
        position=_req_int(doc, "position", where),
        default=_sql_default(_opt_str(doc, "defaultValueExpression", where), logical),
        enum_values=tuple(enum_values) if enum_values is not None else None,
        charset=_opt_str(doc, "charsetName", where),
        auto_increment=_opt_bool(doc, "autoIncremented", where, False),
        jdbc_type=jdbc_type,
    )


# ---------------------------------------------------------------------------------------------- Connect schemas

#: Semantic schema name → (logical type, native type, fractional-second digits).
_CONNECT_NAMED: Final[Mapping[str, tuple[Logical, str, int | None]]] = {
    "io.debezium.time.Date": (_L.DATE, "date", None),
    "org.apache.kafka.connect.data.Date": (_L.DATE, "date", None),
    "io.debezium.time.Time": (_L.TIME, "time(3)", 3),
    "org.apache.kafka.connect.data.Time": (_L.TIME, "time(3)", 3),
    "io.debezium.time.MicroTime": (_L.TIME, "time(6)", 6),
    "io.debezium.time.NanoTime": (_L.TIME, "time(6)", 6),
    "io.debezium.time.ZonedTime": (_L.TIMETZ, "time(6) with time zone", 6),
    "io.debezium.time.Timestamp": (_L.TIMESTAMP, "timestamp(3)", 3),
    "org.apache.kafka.connect.data.Timestamp": (_L.TIMESTAMP, "timestamp(3)", 3),
    "io.debezium.time.MicroTimestamp": (_L.TIMESTAMP, "timestamp(6)", 6),
    "io.debezium.time.NanoTimestamp": (_L.TIMESTAMP, "timestamp(6)", 6),
    "io.debezium.time.ZonedTimestamp": (_L.TIMESTAMPTZ, "timestamp(6) with time zone", 6),
    "io.debezium.time.MicroDuration": (_L.INTERVAL, "interval", None),
    "io.debezium.time.Interval": (_L.INTERVAL, "interval", None),
    "io.debezium.time.Year": (_L.YEAR, "year", None),
    "io.debezium.data.Uuid": (_L.UUID, "uuid", None),
    "io.debezium.data.Json": (_L.JSON, "json", None),
    "io.debezium.data.Xml": (_L.XML, "xml", None),
    "io.debezium.data.Enum": (_L.ENUM, "enum", None),
    "io.debezium.data.EnumSet": (_L.SET, "set", None),
    "io.debezium.data.Bits": (_L.BITS, "bit varying", None),
    "io.debezium.data.VariableScaleDecimal": (_L.DECIMAL, "numeric", None),
    "io.debezium.data.geometry.Geometry": (_L.GEOMETRY, "geometry", None),
    "io.debezium.data.geometry.Point": (_L.GEOMETRY, "point", None),
    "io.debezium.data.geometry.Geography": (_L.GEOMETRY, "geography", None),
}

#: Plain Connect type → (logical type, native type).
_CONNECT_PLAIN: Final[Mapping[str, tuple[Logical, str]]] = {
    "boolean": (_L.BOOLEAN, "boolean"),
    "int8": (_L.INT8, "smallint"),
    "int16": (_L.INT16, "smallint"),
    "int32": (_L.INT32, "integer"),
    "int64": (_L.INT64, "bigint"),
    "float32": (_L.FLOAT32, "real"),
    "float64": (_L.FLOAT64, "double precision"),
    "string": (_L.TEXT, "text"),
    "bytes": (_L.BYTES, "bytea"),
}


def _column_from_connect(name: str, wire: Wire, position: int, default: Any, where: str) -> Column:
    """One column of a table whose only description is the Connect schema of its change events."""
    precision: int | None = None
    scale: int | None = None
    length: int | None = None
    enum_values: tuple[str, ...] | None = None
    params = wire.parameters or {}
    if wire.name == "org.apache.kafka.connect.data.Decimal":
        logical = _L.DECIMAL
        scale = _int_param(params, "scale", where)
        precision = _int_param(params, "connect.decimal.precision", where)
        native = f"numeric({precision},{scale or 0})" if precision is not None else "numeric"
    elif wire.name is not None and wire.name in _CONNECT_NAMED:
        logical, native, precision = _CONNECT_NAMED[wire.name]
        if logical in (_L.ENUM, _L.SET):
            allowed = params.get("allowed")
            enum_values = tuple(allowed.split(",")) if allowed else ()
            native = f"{native}({','.join(_sql_quote(v) for v in enum_values)})"
        elif logical is _L.BITS:
            length = _int_param(params, "length", where)
            native = f"bit varying({length})" if length is not None else native
    elif wire.type == "array":
        items = wire.items
        if items is None:
            raise DecodeError(f"{where}: an array schema needs 'items'")
        element = _column_from_connect(name, items, position, None, f"{where}.items")
        logical, native = _L.ARRAY, element.native_type + "[]"
    elif wire.type in _CONNECT_PLAIN:
        logical, native = _CONNECT_PLAIN[wire.type]
    elif wire.type in ("map", "struct"):
        logical, native = _L.JSON, "json"
    else:
        raise DecodeError(f"{where}: unknown Connect schema type {_short(wire.type)}")
    if logical in _PRECISION_LOGICALS and logical is not _L.DECIMAL and precision is not None:
        length = precision
    default_sql: str | None = None
    if default is not None and not isinstance(default, dict | list):
        text = ("true" if default else "false") if isinstance(default, bool) else str(default)
        default_sql = _sql_default(text, logical) if logical in (_L.STRING, _L.TEXT) or wire.name is None else None
    return Column(
        name=name,
        native_type=native,
        logical=logical,
        wire=wire,
        nullable=wire.optional,
        length=length,
        precision=precision,
        scale=scale,
        position=position,
        default=default_sql,
        enum_values=enum_values,
        jdbc_type=_JDBC_BY_LOGICAL[logical],
    )


def _int_param(params: Mapping[str, str], name: str, where: str) -> int | None:
    text = params.get(name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise DecodeError(f"{where}: parameter {name} must be an integer, not {_short(text)}") from None


def table_schema_from_connect(table: TableId, key: bytes | None, value: bytes) -> TableSchema | None:
    """A table's definition read off one change event written with JsonConverter's schemas
    (``schemas.enable=true``), for topics that have no schema-change events: Debezium's
    PostgreSQL connector publishes none. ``None`` when the value carries no schema.

    The columns are the fields of the ``after`` (else ``before``) struct, in order; the key
    columns are the fields of the key's schema (or, for a key without one, of its payload).
    Each column's ``wire`` is its field schema as written; ``logical`` and ``native_type`` follow
    from the semantic name (``io.debezium.time.MicroTimestamp`` → timestamp(6), Connect
    ``Decimal`` with ``scale`` and ``connect.decimal.precision`` → numeric(p,s), ...), else from
    the plain type (``int32`` → integer, ``string`` → text, ``bytes`` → bytea). What the schema
    cannot say is lost: a ``string`` is text whatever its length was, and a field's ``default``
    becomes the column's default only for plain and text types. Raises
    :class:`~cdc.errors.DecodeError` for a malformed schema.
    """
    doc = _loads(value, "change event value")
    if not (isinstance(doc, dict) and set(doc) == {"schema", "payload"} and isinstance(doc["schema"], dict)):
        return None
    where = "change event value schema"
    fields = _row_schema_fields(doc["schema"])
    if fields is None:
        raise DecodeError(f"{where} has no 'after' or 'before' struct")
    columns = []
    for i, field_doc in enumerate(fields):
        field_where = f"{where}.fields[{i}]"
        name = _req_str(field_doc, "field", field_where)
        wire = _wire(field_doc, f"{where}.{name}", 1)
        columns.append(_column_from_connect(name, wire, i + 1, field_doc.get("default"), f"{where}.{name}"))
    names = [c.name for c in columns]
    key_names: list[str] = []
    if key is not None:
        key_doc = _loads(key, "change event key")
        if isinstance(key_doc, dict) and set(key_doc) == {"schema", "payload"} and isinstance(key_doc["schema"], dict):
            key_wire = _wire(key_doc["schema"], "change event key schema", 0)
            key_names = [n for n, _ in key_wire.fields or ()]
        elif isinstance(key_doc, dict):
            key_names = list(key_doc)
    missing = [k for k in key_names if k not in names]
    if missing:
        raise DecodeError(f"{table}: key fields {missing} are not columns of the row schema")
    return TableSchema(table=table, columns=tuple(columns), primary_key=tuple(key_names))


def _row_schema_fields(schema: Mapping[str, Any]) -> list[Any] | None:
    """The field documents of the ``after`` (else ``before``) struct of an envelope schema; None without one."""
    found: list[Any] | None = None
    for f in schema.get("fields") or ():
        row = isinstance(f, dict) and f.get("field") in ("after", "before") and isinstance(f.get("fields"), list)
        if row and (f.get("field") == "after" or found is None):
            found = f["fields"]
    return found
