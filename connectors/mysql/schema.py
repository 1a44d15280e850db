"""Table definitions from the binlog itself.

With ``binlog_row_metadata=FULL`` every TABLE_MAP event carries what decoding a row needs:
column names, types with their metadata (precision, scale, fractional seconds, lengths),
signedness, character sets, ENUM and SET members, nullability and the primary key. The
source builds a :class:`~cdc.events.TableSchema` from it, so rows are always decoded with
the definition that was in force **when they were written**, also while the source lags
behind a DDL statement, and no SQL parser is needed. A table map without column names
(``binlog_row_metadata`` not FULL) is refused: guessing names from the live catalog could
put a value in the wrong field after a DDL.

Types follow Debezium's MySQL mapping (``cdc.values`` builds the wire schemas):

| MySQL | logical | wire |
|---|---|---|
| TINYINT, SMALLINT | int8/int16 (int16/int32 unsigned) | int16 (int32 for SMALLINT UNSIGNED) |
| MEDIUMINT, INT | int32 (int64 for INT UNSIGNED) | int32 (int64 unsigned) |
| BIGINT | int64 | int64 |
| BIGINT UNSIGNED | uint64 | Decimal(20,0) (``precise``) or int64 (``long``) |
| FLOAT / DOUBLE | float32 / float64 | float32 / float64 |
| DECIMAL(p,s) | decimal | per ``decimal_handling`` |
| DATE | date | io.debezium.time.Date |
| DATETIME(p) | timestamp | Timestamp (p ≤ 3) / MicroTimestamp |
| TIMESTAMP(p) | timestamptz | ZonedTimestamp |
| TIME(p) | time | MicroTime |
| YEAR | year | io.debezium.time.Year |
| CHAR, VARCHAR / TEXT | string / text | string |
| BINARY, VARBINARY, BLOB | bytes | bytes (per ``binary_handling``) |
| ENUM / SET | enum / set | io.debezium.data.Enum / EnumSet |
| BIT(1) / BIT(n) | boolean / bits | boolean / io.debezium.data.Bits |
| JSON | json | io.debezium.data.Json |
| GEOMETRY | geometry | io.debezium.data.geometry.Geometry |
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from cdc.errors import SchemaError
from cdc.events import Column, Logical, TableId, TableSchema, Wire
from cdc.values import (
    BigintUnsignedHandling,
    BinaryHandling,
    DecimalHandling,
    TimePrecision,
    bigint_unsigned_wire,
    bits_wire,
    bool_wire,
    bytes_wire,
    date_wire,
    decimal_wire,
    enum_wire,
    float_wire,
    geometry_wire,
    int_wire,
    json_wire,
    set_wire,
    string_wire,
    time_wire,
    timestamp_wire,
    year_wire,
    zoned_timestamp_wire,
)

__all__ = ["TypeModes", "column_from_binlog", "same_definition", "schema_from_table_map", "without_columns"]

# MySQL column type codes (the binlog's, as in pymysqlreplication.constants.FIELD_TYPE)
DECIMAL, TINY, SHORT, LONG, FLOAT, DOUBLE, NULL, TIMESTAMP, LONGLONG, INT24 = range(10)
DATE, TIME, DATETIME, YEAR, NEWDATE, VARCHAR, BIT, TIMESTAMP2, DATETIME2, TIME2 = range(10, 20)
JSON, NEWDECIMAL, ENUM, SET, TINY_BLOB, MEDIUM_BLOB, LONG_BLOB, BLOB, VAR_STRING, STRING, GEOMETRY = range(245, 256)

_BLOBS = {TINY_BLOB, MEDIUM_BLOB, LONG_BLOB, BLOB}
_BLOB_SIZES = {1: "TINY", 2: "", 3: "MEDIUM", 4: "LONG"}  # by the length prefix's byte count
_BYTES_PER_CHAR = {"utf8mb4": 4, "utf8": 3, "utf8mb3": 3, "ucs2": 2, "utf16": 4, "utf32": 4}


class TypeModes:
    """The representation choices of a source config that shape wire types."""

    __slots__ = ("bigint_unsigned", "binary", "decimal", "time")

    def __init__(
        self,
        decimal: DecimalHandling = DecimalHandling.PRECISE,
        time: TimePrecision = TimePrecision.ADAPTIVE_TIME_MICROSECONDS,
        binary: BinaryHandling = BinaryHandling.BYTES,
        bigint_unsigned: BigintUnsignedHandling = BigintUnsignedHandling.PRECISE,
    ) -> None:
        self.decimal = decimal
        self.time = time
        self.binary = binary
        self.bigint_unsigned = bigint_unsigned

    @classmethod
    def from_config(cls, config: Any) -> TypeModes:
        return cls(
            DecimalHandling(config.decimal_handling),
            TimePrecision(config.time_precision),
            BinaryHandling(config.binary_handling),
            BigintUnsignedHandling(config.bigint_unsigned_handling),
        )


def _is_binary_charset(charset: str | None) -> bool:
    return charset in (None, "binary")


def column_from_binlog(col: Any, position: int, nullable: bool, modes: TypeModes) -> Column:
    """One library ``Column`` of a table map as a cdc :class:`Column`."""
    t = int(col.type)
    unsigned = bool(getattr(col, "unsigned", False))
    # MySQL's own charset name (utf8mb4, latin1, binary), from the collation the table map carries
    collation = getattr(col, "collation_name", None)
    charset = str(collation).split("_", 1)[0] if collation else None
    opt = nullable
    u = " UNSIGNED" if unsigned else ""

    def make(native: str, logical: Logical, wire: Wire, **kw: Any) -> Column:
        return Column(
            name=str(col.name),
            native_type=native,
            logical=logical,
            wire=wire,
            nullable=nullable,
            position=position,
            **kw,
        )

    if t == TINY:
        return make("TINYINT" + u, Logical.INT16 if unsigned else Logical.INT8, int_wire(16, optional=opt))
    if t == SHORT:
        return make(
            "SMALLINT" + u, Logical.INT32 if unsigned else Logical.INT16, int_wire(32 if unsigned else 16, optional=opt)
        )
    if t == INT24:
        return make("MEDIUMINT" + u, Logical.INT32, int_wire(32, optional=opt))
    if t == LONG:
        return make(
            "INT" + u, Logical.INT64 if unsigned else Logical.INT32, int_wire(64 if unsigned else 32, optional=opt)
        )
    if t == LONGLONG:
        if unsigned:
            return make(
                "BIGINT UNSIGNED",
                Logical.UINT64,
                bigint_unsigned_wire(modes.bigint_unsigned, optional=opt),
                precision=20,
                scale=0,
            )
        return make("BIGINT", Logical.INT64, int_wire(64, optional=opt))
    if t == FLOAT:
        return make("FLOAT" + u, Logical.FLOAT32, float_wire(32, optional=opt))
    if t == DOUBLE:
        return make("DOUBLE" + u, Logical.FLOAT64, float_wire(64, optional=opt))
    if t in (NEWDECIMAL, DECIMAL):
        p, s = int(col.precision), int(col.decimals)
        return make(
            f"DECIMAL({p},{s}){u}",
            Logical.DECIMAL,
            decimal_wire(p, s, modes.decimal, optional=opt),
            precision=p,
            scale=s,
        )
    if t in (DATE, NEWDATE):
        return make("DATE", Logical.DATE, date_wire(modes.time, optional=opt))
    if t in (DATETIME2, DATETIME):
        fsp = int(getattr(col, "fsp", 0) or 0)
        return make(
            f"DATETIME({fsp})" if fsp else "DATETIME",
            Logical.TIMESTAMP,
            timestamp_wire(fsp, modes.time, optional=opt),
            precision=fsp,
        )
    if t in (TIMESTAMP2, TIMESTAMP):
        fsp = int(getattr(col, "fsp", 0) or 0)
        return make(
            f"TIMESTAMP({fsp})" if fsp else "TIMESTAMP",
            Logical.TIMESTAMPTZ,
            zoned_timestamp_wire(optional=opt),
            precision=fsp,
        )
    if t in (TIME2, TIME):
        fsp = int(getattr(col, "fsp", 0) or 0)
        # MySQL TIME spans ±838:59:59: always microseconds, like Debezium's MySQL connector
        return make(
            f"TIME({fsp})" if fsp else "TIME", Logical.TIME, time_wire(6, modes.time, optional=opt), precision=fsp
        )
    if t == YEAR:
        return make("YEAR", Logical.YEAR, year_wire(optional=opt))
    if t == ENUM:
        values = tuple(str(v) for v in (col.enum_values or ())[1:] if v is not None) if col.enum_values else ()
        return make("ENUM", Logical.ENUM, enum_wire(values, optional=opt), enum_values=values, charset=charset)
    if t == SET:
        values = tuple(str(v) for v in (col.set_values or ()))
        return make("SET", Logical.SET, set_wire(values, optional=opt), enum_values=values, charset=charset)
    if t == BIT:
        bits = int(getattr(col, "bits", 1))
        if bits == 1:
            return make("BIT(1)", Logical.BOOLEAN, bool_wire(optional=opt), length=1)
        return make(f"BIT({bits})", Logical.BITS, bits_wire(bits, optional=opt), length=bits)
    if t == JSON:
        return make("JSON", Logical.JSON, json_wire(optional=opt))
    if t == GEOMETRY:
        return make("GEOMETRY", Logical.GEOMETRY, geometry_wire(optional=opt))
    if t in _BLOBS:
        size = _BLOB_SIZES.get(int(getattr(col, "length_size", 2) or 2), "")
        if _is_binary_charset(charset):
            return make(f"{size}BLOB", Logical.BYTES, bytes_wire(modes.binary, optional=opt))
        return make(f"{size}TEXT", Logical.TEXT, string_wire(optional=opt), charset=charset)
    if t in (VARCHAR, VAR_STRING, STRING):
        max_bytes = int(getattr(col, "max_length", 0) or 0)
        fixed = t == STRING
        if _is_binary_charset(charset):
            name = "BINARY" if fixed else "VARBINARY"
            return make(f"{name}({max_bytes})", Logical.BYTES, bytes_wire(modes.binary, optional=opt), length=max_bytes)
        chars = max_bytes // _BYTES_PER_CHAR.get(str(charset), 1) if max_bytes else None
        name = "CHAR" if fixed else "VARCHAR"
        return make(
            f"{name}({chars})" if chars else name,
            Logical.STRING,
            string_wire(optional=opt),
            length=chars,
            charset=charset,
        )
    raise SchemaError(f"column {col.name!r} has MySQL type code {t}, which cdc cannot capture")


def _primary_key(event: Any) -> tuple[int, ...]:
    meta = event.optional_metadata
    simple = list(getattr(meta, "simple_primary_key_list", []) or [])
    if simple:
        return tuple(int(i) for i in simple)
    prefixed = getattr(meta, "primary_keys_with_prefix", {}) or {}
    return tuple(int(i) for i in prefixed)


def _nullable(event: Any, index: int) -> bool:
    mask = event.null_bitmask
    return bool(mask[index // 8] & (1 << (index % 8)))


def schema_from_table_map(
    event: Any, modes: TypeModes, version: int = 1, key_columns: Sequence[str] | None = None
) -> TableSchema:
    """The definition a TABLE_MAP event describes.

    ``key_columns`` gives the key of a table without a primary key (the ``key_columns``
    config); without either, the table is keyless (events have a null key, as in Debezium).
    Raises :class:`SchemaError` when the event lacks column names (``binlog_row_metadata``
    is not FULL) or a key column does not exist.
    """
    table = TableId(str(event.schema), str(event.table))
    if not event.optional_metadata.column_name_list:
        raise SchemaError(
            f"the binlog's table map of {table} carries no column names",
            hint="set binlog_row_metadata=FULL on the server (cdc check tells); rows written without it "
            "cannot be decoded safely",
        )
    columns = tuple(column_from_binlog(col, i + 1, _nullable(event, i), modes) for i, col in enumerate(event.columns))
    pk = tuple(columns[i].name for i in _primary_key(event))
    if not pk and key_columns:
        names = {c.name for c in columns}
        missing = [k for k in key_columns if k not in names]
        if missing:
            raise SchemaError(f"key_columns for {table} name columns it does not have: {', '.join(missing)}")
        pk = tuple(key_columns)
    return TableSchema(table, columns, pk, version)


def without_columns(schema: TableSchema, excluded: Any) -> TableSchema:
    """``schema`` without the columns for which ``excluded(schema, table, column)`` is true
    (``exclude_columns``); key columns are never left out."""
    t = schema.table
    keep = tuple(c for c in schema.columns if c.name in schema.primary_key or not excluded(t.schema, t.table, c.name))
    if len(keep) == len(schema.columns):
        return schema
    return TableSchema(t, keep, schema.primary_key, schema.version, schema.charset)


def same_definition(a: TableSchema, b: TableSchema) -> bool:
    """True when two definitions describe the same columns and key (versions aside)."""
    return a.columns == b.columns and a.primary_key == b.primary_key and a.table == b.table


# ----------------------------------------------------------------------------------- column defaults

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<q>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")      # a quoted string
    | (?P<b>`(?:[^`]|``)*`)                               # a quoted identifier
    | (?P<n>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)     # a number
    | (?P<w>[A-Za-z_$][\w$]*)                             # a word
    | (?P<p>.)                                            # punctuation
    )""",
    re.VERBOSE | re.DOTALL,
)


def _tokens(statement: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos, end = 0, len(statement)
    while pos < end:
        m = _TOKEN.match(statement, pos)
        if m is None or m.end() == pos:
            break
        pos = m.end()
        kind = m.lastgroup
        if kind is not None:
            out.append((kind, m.group(kind)))
    return out


def _name(kind: str, text: str) -> str:
    return text[1:-1].replace("``", "`") if kind == "b" else text


def ddl_column_defaults(statement: str | None) -> dict[str, str]:
    """Literal defaults of the columns an ``ALTER TABLE … ADD [COLUMN]`` statement adds, by column name.

    A value is SQL literal text as PostgreSQL's catalog would show it: a quoted string
    (``'dflt'``), a number, ``NULL``, ``TRUE`` or ``FALSE``. Expressions (``CURRENT_TIMESTAMP``,
    ``(uuid())``) are left out: their value for existing rows is not knowable from the statement.
    Only what is certain is returned; anything the tokenizer does not follow yields nothing.

    The binlog's TABLE_MAP carries no defaults, yet a column added with one has that value in
    every existing row without any row event (an instant ADD COLUMN): the sink must add the
    column with the same default, or the target's existing rows would read NULL.
    """
    if not statement:
        return {}
    toks = _tokens(statement)
    words = [t.upper() if k == "w" else None for k, t in toks]
    if len(toks) < 3 or words[0] != "ALTER":
        return {}
    out: dict[str, str] = {}
    depth = 0
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        if kind == "p" and text == "(":
            depth += 1
        elif kind == "p" and text == ")":
            depth -= 1
        elif depth == 0 and words[i] == "ADD":
            j = i + 1
            if j < len(toks) and words[j] == "COLUMN":
                j += 1
            if j + 2 < len(toks) and words[j] == "IF" and words[j + 1] == "NOT" and words[j + 2] == "EXISTS":
                j += 3
            if j < len(toks) and toks[j][0] in ("w", "b") and words[j] not in _NOT_COLUMNS:
                column = _name(*toks[j])
                k, d = j + 1, 0
                while k < len(toks) and not (d == 0 and toks[k] == ("p", ",")):
                    tk, tt = toks[k]
                    if tk == "p" and tt == "(":
                        d += 1
                    elif tk == "p" and tt == ")":
                        if d == 0:
                            break
                        d -= 1
                    elif d == 0 and words[k] == "DEFAULT" and k + 1 < len(toks):
                        literal = _literal(toks, words, k + 1)
                        if literal is not None:
                            out[column] = literal
                    k += 1
                i = k
                continue
        i += 1
    return out


_NOT_COLUMNS = frozenset(
    {
        "INDEX",
        "KEY",
        "UNIQUE",
        "PRIMARY",
        "CONSTRAINT",
        "FOREIGN",
        "FULLTEXT",
        "SPATIAL",
        "PARTITION",
        "CHECK",
        "PERIOD",
        "SYSTEM",
    }
)


def _literal(toks: list[tuple[str, str]], words: list[str | None], at: int) -> str | None:
    kind, text = toks[at]
    follows = toks[at + 1] if at + 1 < len(toks) else ("p", ",")
    if follows[0] == "p" and follows[1] == "(":
        return None  # a function call
    if kind == "q" and text[0] == "'":
        body = text[1:-1]
        value = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body.replace("''", "'"))
        return "'" + value.replace("'", "''") + "'"
    if kind == "n":
        return text
    if kind == "p" and text in "+-" and at + 1 < len(toks) and toks[at + 1][0] == "n":
        return text + toks[at + 1][1]
    if words[at] in ("NULL", "TRUE", "FALSE"):
        return words[at]
    return None


_ESCAPES = {"0": "\0", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a", "b": "\b"}


def with_defaults(schema: TableSchema, defaults: dict[str, str], previous: TableSchema | None) -> TableSchema:
    """``schema`` with column defaults: those ``defaults`` gives (a DDL statement's), else the
    previous definition's for a column of the same name and type (a TABLE_MAP never carries any)."""
    from dataclasses import replace

    before = {c.name: c for c in previous.columns} if previous is not None else {}
    changed = False
    columns = []
    for c in schema.columns:
        default = defaults.get(c.name)
        if default is None:
            old = before.get(c.name)
            if old is not None and old.native_type == c.native_type:
                default = old.default
        if default != c.default:
            columns.append(replace(c, default=default))
            changed = True
        else:
            columns.append(c)
    return replace(schema, columns=tuple(columns)) if changed else schema
