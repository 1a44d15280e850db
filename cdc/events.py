"""The event model every source produces and every sink consumes.

Values travel in **Debezium's representation**: a row image (``before``, ``after``) maps
column names to the exact values Debezium's JsonConverter writes into the payload for that
column's Kafka Connect schema (:class:`Wire`). Dates are days since the epoch, precise
decimals are base64 of the unscaled two's-complement bytes, bytes are base64 strings, and so
on (see :mod:`cdc.values`). This makes the envelope codec a plain JSON encode on the hot
path, makes events from cdc's sources and from Debezium itself interchangeable, and leaves
the conversion to native values to the one place that needs it: the sink, which knows each
column's :class:`Wire` type from the schema-change events.

A row image therefore holds only JSON-native values: ``None``, ``bool``, ``int``, finite
``float``, ``str``, ``list`` and ``dict``. Non-finite floats are the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``, as Debezium's JSON writer emits them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from cdc.positions import Position, SourceOffset

__all__ = [
    "UNAVAILABLE",
    "ChangeEvent",
    "Checkpoint",
    "Column",
    "Heartbeat",
    "Item",
    "Logical",
    "Op",
    "Operation",
    "Row",
    "SchemaChange",
    "TableId",
    "TableSchema",
    "Wire",
    "connect_type",
]

Row = dict[str, Any]

#: Debezium's placeholder for a value the source did not send (PostgreSQL's unchanged TOAST).
UNAVAILABLE = "__debezium_unavailable_value"


class Op(StrEnum):
    """The ``op`` field of Debezium's envelope."""

    CREATE = "c"
    UPDATE = "u"
    DELETE = "d"
    READ = "r"  # a row read by a snapshot
    TRUNCATE = "t"


Operation = Op


@dataclass(frozen=True, slots=True, order=True)
class TableId:
    """A source table: ``schema`` is the MySQL database or the PostgreSQL schema."""

    schema: str
    table: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}"

    @classmethod
    def parse(cls, text: str) -> TableId:
        """``"db.table"`` to a TableId; the first dot separates (table names may contain dots)."""
        schema, dot, table = text.partition(".")
        if not dot or not schema or not table:
            raise ValueError(f"not a table id (expected schema.table): {text!r}")
        return cls(schema, table)


class Logical(StrEnum):
    """The portable kind of a column, from which sinks choose a target type."""

    BOOLEAN = "boolean"
    INT8 = "int8"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    DECIMAL = "decimal"
    STRING = "string"
    TEXT = "text"
    BYTES = "bytes"
    DATE = "date"
    TIME = "time"
    TIMETZ = "timetz"
    TIMESTAMP = "timestamp"
    TIMESTAMPTZ = "timestamptz"
    INTERVAL = "interval"
    YEAR = "year"
    UUID = "uuid"
    JSON = "json"
    XML = "xml"
    ENUM = "enum"
    SET = "set"
    BITS = "bits"
    GEOMETRY = "geometry"
    ARRAY = "array"
    INET = "inet"
    CIDR = "cidr"
    MACADDR = "macaddr"
    MONEY = "money"
    UNKNOWN = "unknown"


#: JsonConverter's names of Connect's FLOAT32 and FLOAT64 schema types; :class:`Wire` says
#: ``float32`` and ``float64`` and translates at the JSON boundary.
_CONNECT_TYPE_NAMES: Final[Mapping[str, str]] = {"float32": "float", "float64": "double"}
_WIRE_TYPE_NAMES: Final[Mapping[str, str]] = {v: k for k, v in _CONNECT_TYPE_NAMES.items()}


def connect_type(name: str) -> str:
    """A schema ``type`` as JsonConverter writes it (``float``, ``double``) → :attr:`Wire.type`
    (``float32``, ``float64``); every other name is the same on both sides."""
    return _WIRE_TYPE_NAMES.get(name, name)


@dataclass(frozen=True, slots=True)
class Wire:
    """The Kafka Connect schema of one field: how its values travel.

    ``type`` is a Connect type (``int8`` ... ``int64``, ``float32``, ``float64``, ``boolean``,
    ``string``, ``bytes``, ``array``, ``map``, ``struct``); ``name`` is the semantic type, e.g.
    ``io.debezium.time.MicroTimestamp`` or ``org.apache.kafka.connect.data.Decimal``.
    """

    type: str
    name: str | None = None
    version: int | None = None
    parameters: Mapping[str, str] | None = None
    items: Wire | None = None  # array element schema
    fields: tuple[tuple[str, Wire], ...] | None = None  # struct fields, in order
    optional: bool = True

    def to_connect(self, field_name: str | None = None) -> dict[str, Any]:
        """This schema as Kafka Connect JsonConverter writes it."""
        out: dict[str, Any] = {"type": _CONNECT_TYPE_NAMES.get(self.type, self.type)}
        if self.fields is not None:
            out["fields"] = [w.to_connect(n) for n, w in self.fields]
        if self.items is not None:
            out["items"] = self.items.to_connect()
        out["optional"] = self.optional
        if self.name is not None:
            out["name"] = self.name
        if self.version is not None:
            out["version"] = self.version
        if self.parameters:
            out["parameters"] = dict(self.parameters)
        if field_name is not None:
            out["field"] = field_name
        return out

    @classmethod
    def from_connect(cls, data: Mapping[str, Any]) -> Wire:
        """The inverse of :meth:`to_connect` (the ``field`` key, if any, is ignored)."""
        fields = data.get("fields")
        items = data.get("items")
        params = data.get("parameters")
        return cls(
            type=connect_type(str(data["type"])),
            name=data.get("name"),
            version=data.get("version"),
            parameters={str(k): str(v) for k, v in params.items()} if params else None,
            items=cls.from_connect(items) if items else None,
            fields=tuple((str(f["field"]), cls.from_connect(f)) for f in fields) if fields is not None else None,
            optional=bool(data.get("optional", True)),
        )


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a source table.

    ``native_type`` is the source's own type expression (``DECIMAL(10,2) UNSIGNED``,
    ``timestamptz``); ``logical`` is the portable kind; ``wire`` says how values travel.
    ``jdbc_type`` is the ``java.sql.Types`` code Debezium's schema-change events carry.
    """

    name: str
    native_type: str
    logical: Logical
    wire: Wire
    nullable: bool = True
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    position: int = 0
    default: str | None = None
    enum_values: tuple[str, ...] | None = None
    charset: str | None = None
    auto_increment: bool = False
    jdbc_type: int | None = None


@dataclass(frozen=True, slots=True)
class TableSchema:
    """A table's columns in order, its key columns and a version that grows with every change."""

    table: TableId
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    version: int = 1
    charset: str | None = None
    _by_name: Mapping[str, Column] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.table}: duplicate column names")
        missing = [k for k in self.primary_key if k not in names]
        if missing:
            raise ValueError(f"{self.table}: key columns not in the table: {missing}")
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})

    def column(self, name: str) -> Column:
        return self._by_name[name]

    def has_column(self, name: str) -> bool:
        return name in self._by_name

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclass(slots=True)
class ChangeEvent:
    """One row change (or a truncate) in a source transaction.

    ``ts_ms`` is the source commit time, the basis of every lag figure; ``emitted_ms`` is
    when cdc produced the event (the envelope's top-level ``ts_ms``). ``position`` says where
    in the log the change is (it fills Debezium's ``source`` block); it is not a resume point:
    only a :class:`Checkpoint` is. ``unchanged`` names columns whose values the source did not send
    (PostgreSQL's unchanged TOAST): a sink leaves them untouched. ``source`` is Debezium's
    connector-specific ``source`` block.
    """

    op: Op
    table: TableId
    key: Row | None
    before: Row | None
    after: Row | None
    source: dict[str, Any]
    ts_ms: int
    emitted_ms: int = 0
    txn_id: str | None = None
    txn_order: int = 0
    txn_table_order: int = 0
    position: Position | None = None
    unchanged: frozenset[str] = frozenset()
    seq: int = field(default=-1, compare=False)  # process-local sequence used for acknowledgements

    @property
    def row(self) -> Row | None:
        """The image that identifies the row after this change: ``after``, or ``before`` for a delete."""
        return self.before if self.op is Op.DELETE else self.after


@dataclass(slots=True)
class SchemaChange:
    """A change to one table's definition, as on Debezium's schema-change topic.

    ``kind`` is ``CREATE``, ``ALTER`` or ``DROP``; ``schema`` is the full definition after
    the change (for ``DROP``, the last definition). ``ddl`` is the statement, when known.
    """

    kind: str
    schema: TableSchema
    ddl: str | None
    source: dict[str, Any]
    ts_ms: int
    position: Position | None = None
    seq: int = field(default=-1, compare=False)


@dataclass(slots=True)
class Checkpoint:
    """A transaction boundary (or a completed snapshot chunk) in a source's output.

    Sources emit one after the last event of every transaction, including transactions
    whose events were all filtered out. Once every item before it is acknowledged by the
    next stage, ``offset`` may be stored and the source acknowledged up to it.
    """

    offset: SourceOffset
    ts_ms: int
    txn_id: str | None = None
    seq: int = field(default=-1, compare=False)


@dataclass(slots=True)
class Heartbeat:
    """A sign of life from an idle source: published to the heartbeat topic, and, when it carries
    an ``offset``, a boundary like :class:`Checkpoint` (so an idle PostgreSQL slot advances)."""

    ts_ms: int
    offset: SourceOffset | None = None
    seq: int = field(default=-1, compare=False)


#: What a source's ``read_batch`` returns, in log order.
Item = ChangeEvent | SchemaChange | Checkpoint | Heartbeat
