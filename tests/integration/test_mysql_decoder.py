"""The compiled row decoder (connectors/mysql/decoder.py) against real MariaDB binlogs.

* A hypothesis-driven **differential** test: random tables from the type matrix, random rows
  (insert, update, delete), read back with BinLogStreamReader. Every value our decoder gives
  equals the library's decoded value converted by ``cdc.values.to_wire`` (after the
  representation ``ADAPTATIONS``), except where the library is known to be wrong
  (``LIBRARY_BUGS``); and every value also equals the written value converted by ``to_wire``.
* Fixed cases for every type, its extremes and its wire schema; the handling modes; zero dates;
  MINIMAL row images; v2 (MySQL 8) framing; MySQL binary JSON; malformed input.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import services
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdc.errors import DecodeError, SchemaError, TargetValueError
from cdc.values import (
    BigintUnsignedHandling,
    BinaryHandling,
    DecimalHandling,
    TimePrecision,
    converter_to_wire,
)
from connectors.mysql.config import ZeroDateHandling
from connectors.mysql.decoder import (
    DecoderOptions,
    RawRows,
    RowDecoder,
    RowsKind,
    compile_decoder,
    event_body,
    json_binary_to_text,
    parse_table_map,
    raw_rows,
)

#: Where python-mysql-replication 1.0.x decodes a value wrongly; the tests assert the correct value instead.
LIBRARY_BUGS = {
    "negative fractional TIME": "reads the fraction apart from the sign: '-00:00:00.25' becomes -0.75 s",
    "YEAR 0000": "becomes 1900",
    "empty SET": "becomes NULL",
    "non-UTF-8 ENUM/SET labels": "labels are decoded as UTF-8 and dropped to '' when that fails (latin1 'é')",
    "utf16/utf32/ucs2 text": "read with Python's little-endian utf16/utf32 codecs (wrong text or UnicodeDecodeError); "
    "ucs2 left as bytes",
    "MariaDB UCA 14.0 collations": "ids 2048+ are unknown to its table: any such column is read as UTF-8",
    "latin1 0x81 0x8D 0x8F 0x90 0x9D": "decoded as strict cp1252: the whole event raises UnicodeDecodeError",
    "zero dates": "silently NULL (and a zero TIMESTAMP silently 1970-01-01T00:00:00Z)",
    "column names of 128+ bytes": "read as 7-bit varints instead of length-encoded: the table map raises",
}
#: Not bugs, but representation differences from Debezium that the reference conversion adapts.
ADAPTATIONS = {
    "BINARY(n)": "the binlog drops trailing 0x00; Debezium pads them back (DBZ-254)",
    "BIT(n)": "the library gives a '0101' string",
    "GEOMETRY": "the library gives SRID + WKB bytes",
    "empty binary": "the library gives '' (str) for an empty BINARY/VARBINARY/BLOB value",
}

EPOCH = datetime(1970, 1, 1)


# --------------------------------------------------------------------------- binlog plumbing


def _connect(mysql_db: Any, **session: str) -> Any:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        for name, value in session.items():
            cur.execute(f"SET SESSION {name} = %s", (value,))
    return conn


def _position(cur: Any) -> tuple[str, int]:
    cur.execute("SHOW MASTER STATUS")
    log_file, log_pos = cur.fetchone()[:2]
    return str(log_file), int(log_pos)


def _events(mysql_db: Any, start: tuple[str, int]) -> list[Any]:
    """Table maps and rows events of the test's database from ``start`` to the end of the binlog as
    it is now. Read in blocking mode up to that end: a non-blocking dump may stop short of a commit
    that has just returned to the client."""
    import pymysql
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.event import HeartbeatLogEvent, XidEvent
    from pymysqlreplication.row_event import DeleteRowsEvent, TableMapEvent, UpdateRowsEvent, WriteRowsEvent

    params = services.mysql_params(mysql_db.server_url, database="")
    admin = pymysql.connect(**params)
    try:
        with admin.cursor() as cur:
            end = _position(cur)
    finally:
        admin.close()
    wanted = (TableMapEvent, WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent)
    reader = BinLogStreamReader(
        connection_settings={k: params[k] for k in ("host", "port", "user", "password")},
        server_id=random.randint(1_000_000, 2**31),
        only_events=[*wanted, XidEvent, HeartbeatLogEvent],  # these two move the position when nothing else does
        only_schemas=[mysql_db.name],
        log_file=start[0],
        log_pos=start[1],
        resume_stream=True,
        blocking=True,
        slave_heartbeat=0.2,
        enable_logging=False,
    )
    out = []
    try:
        for event in reader:
            if isinstance(event, wanted):
                out.append(event)
            if (str(reader.log_file), int(reader.log_pos)) >= end:
                break
    finally:
        reader.close()
    return out


@dataclass
class Decoded:
    event: Any
    decoder: RowDecoder
    raw: RawRows
    pairs: list[tuple[dict[str, Any] | None, dict[str, Any] | None]]


def _decode(events: list[Any], options: DecoderOptions | None = None) -> list[Decoded]:
    """Our decoding of every rows event, checking that the library decoded nothing meanwhile."""
    from pymysqlreplication.row_event import TableMapEvent

    decoders: dict[int, RowDecoder] = {}
    out = []
    for event in events:
        if isinstance(event, TableMapEvent):
            decoders[event.table_id] = compile_decoder(event, options=options)
            continue
        raw = raw_rows(event)
        pairs = decoders[event.table_id].decode(raw)
        # the flat form the source uses: the same images, an update's before and after alternating
        images = [image for pair in pairs for image in pair if image is not None or raw.kind is RowsKind.UPDATE]
        assert decoders[event.table_id].decode_images(raw) == images
        assert event._RowsEvent__rows is None, "the library's lazy rows were evaluated"
        out.append(Decoded(event, decoders[event.table_id], raw, pairs))
    return out


def _after_images(decoded: list[Decoded]) -> list[dict[str, Any]]:
    return [after for d in decoded if d.raw.kind is RowsKind.WRITE for _, after in d.pairs if after is not None]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _precise(unscaled: int) -> str:
    """Debezium's precise decimal: base64 of the minimal big-endian two's complement."""
    length = (unscaled if unscaled >= 0 else ~unscaled).bit_length() // 8 + 1
    return _b64(unscaled.to_bytes(length, "big", signed=True))


def _micros(value: timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds


def _time_text(value: timedelta) -> str:
    """A TIME literal, ``[-]hhh:mm:ss.ffffff``."""
    micros = _micros(value)
    seconds, frac = divmod(abs(micros), 1_000_000)
    return f"{'-' if micros < 0 else ''}{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{frac:06d}"


# --------------------------------------------------------------------------- the type matrix


@dataclass(frozen=True)
class Spec:
    """A column type of the matrix: its DDL, values to write, and two oracles for them.

    ``written`` turns a written value into what ``to_wire`` takes (the server keeps every
    generated value exactly); ``adapt`` does the same for the library's decoded value
    (ADAPTATIONS). ``bug`` says when the library's value is known wrong (LIBRARY_BUGS); then
    only the written value is the reference. ``library_may_raise``: the library's decoding of
    such a column can raise (wide character sets read with the wrong codec).
    """

    ddl: str
    values: st.SearchStrategy[Any]
    sql: Callable[[Any], tuple[str, list[Any]]] = lambda v: ("%s", [v])
    adapt: Callable[[Any], Any] = lambda v: v
    bug: Callable[[Any], bool] = lambda v: False
    written: Callable[[Any], Any] = lambda v: v
    library_may_raise: bool = False
    nullable: bool = True

    def placeholder(self, value: Any) -> tuple[str, list[Any]]:
        return ("%s", [None]) if value is None else self.sql(value)


INT_RANGES = {"TINYINT": 8, "SMALLINT": 16, "MEDIUMINT": 24, "INT": 32, "BIGINT": 64}
EMOJI = ["😀", "🎉", "👍", "🦄", "𝄞"]  # one code point each (alphabet members)
CP1252 = st.characters(codec="cp1252")
UTF8 = st.one_of(st.characters(exclude_categories=("Cs",)), st.sampled_from(EMOJI))


@st.composite
def int_specs(draw: st.DrawFn) -> Spec:
    name, bits = draw(st.sampled_from(sorted(INT_RANGES.items())))
    unsigned = draw(st.booleans())
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    values = st.one_of(st.sampled_from([low, high, 0]), st.integers(low, high))
    return Spec(f"{name}{' UNSIGNED' if unsigned else ''}", values)


@st.composite
def decimal_specs(draw: st.DrawFn) -> Spec:
    precision = draw(st.sampled_from([1, 5, 9, 10, 12, 18, 19, 27, 38, 65]) | st.integers(1, 65))
    scale = draw(st.integers(0, min(precision, 30)))
    limit = 10**precision - 1
    unscaled = st.one_of(st.sampled_from([limit, -limit, 0, 1, -1]), st.integers(-limit, limit))
    values = unscaled.map(lambda u: Decimal(f"{u}E-{scale}"))
    return Spec(f"DECIMAL({precision},{scale})", values, sql=lambda v: ("%s", [format(v, "f")]))


@st.composite
def temporal_specs(draw: st.DrawFn) -> Spec:
    kind = draw(st.sampled_from(["DATE", "DATETIME", "TIMESTAMP", "TIME", "YEAR"]))
    fsp = draw(st.integers(0, 6))
    step = 10 ** (6 - fsp)
    if kind == "DATE":
        values = st.one_of(st.sampled_from([date(1000, 1, 1), date(9999, 12, 31)]), st.dates(date(1000, 1, 1)))
        return Spec("DATE", values)
    if kind == "YEAR":
        return Spec(
            "YEAR",
            st.one_of(st.just(0), st.integers(1901, 2155)),
            bug=lambda v: v == 0,
        )
    if kind == "TIME":
        limit = (838 * 3600 + 59 * 60 + 59) * 1_000_000 + 1_000_000 - step
        edges = [limit, -limit, -step]  # -step: the smallest negative fraction, the library's worst case
        micros = st.one_of(st.sampled_from(edges), st.integers(-limit, limit))
        values = micros.map(lambda us: timedelta(microseconds=us // step * step))
        return Spec(
            f"TIME({fsp})",
            values,
            sql=lambda v: ("%s", [_time_text(v)]),
            bug=lambda v: _micros(v) < 0 and _micros(v) % 1_000_000 != 0,
        )
    if kind == "DATETIME":
        low, high = datetime(1000, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 1_000_000 - step)
    else:
        low, high = datetime(1970, 1, 1, 0, 0, 1), datetime(2038, 1, 19, 3, 14, 7, 1_000_000 - step)
    values = st.one_of(st.sampled_from([low, high]), st.datetimes(low, high)).map(
        lambda v: v.replace(microsecond=v.microsecond // step * step)
    )
    return Spec(f"{kind}({fsp})", values, sql=lambda v: ("%s", [v.isoformat(" ")]))


TEXT_CHARSETS = {
    "utf8mb4": UTF8,
    "utf8mb4 COLLATE utf8mb4_uca1400_ai_ci": UTF8,
    "latin1": CP1252,
    "utf16": UTF8,
    "utf32": UTF8,
    "ucs2": st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)),
}


@st.composite
def text_specs(draw: st.DrawFn) -> Spec:
    charset = draw(st.sampled_from(sorted(TEXT_CHARSETS)))
    kind, length = draw(
        st.sampled_from([("CHAR", 1), ("CHAR", 64), ("VARCHAR", 20), ("VARCHAR", 100), ("TINYTEXT", 60)])
        | st.sampled_from([("TEXT", 80), ("MEDIUMTEXT", 80), ("LONGTEXT", 80)])
    )
    ddl = f"{kind}({length})" if kind in ("CHAR", "VARCHAR") else kind
    values = st.text(TEXT_CHARSETS[charset], max_size=min(length, 40))
    if kind == "CHAR":  # MariaDB keeps no trailing spaces of CHAR
        values = values.map(lambda s: s.rstrip(" "))
    wide = charset.split()[0] in ("utf16", "utf32", "ucs2")
    return Spec(f"{ddl} CHARACTER SET {charset}", values, bug=lambda v: wide, library_may_raise=wide)


@st.composite
def binary_specs(draw: st.DrawFn) -> Spec:
    kind, length = draw(
        st.sampled_from([("BINARY", 1), ("BINARY", 16), ("VARBINARY", 30), ("VARBINARY", 300), ("TINYBLOB", 50)])
        | st.sampled_from([("BLOB", 50), ("MEDIUMBLOB", 50), ("LONGBLOB", 50)])
    )
    ddl = f"{kind}({length})" if kind in ("BINARY", "VARBINARY") else kind
    values = st.binary(max_size=min(length, 40))
    if kind == "BINARY":
        trailing = st.integers(0, length)
        values = st.tuples(st.binary(max_size=length), trailing).map(lambda t: (t[0] + b"\0" * t[1])[:length])
        pad = lambda raw, n=length: raw.ljust(n, b"\0")  # noqa: E731
        return Spec(ddl, values, adapt=lambda raw: pad(_library_bytes(raw)), written=pad)
    return Spec(ddl, values, adapt=_library_bytes)


def _library_bytes(value: bytes | str) -> bytes:
    """The library's binary value: an empty one arrives as '' (``b"".decode("binary")`` looks no codec up)."""
    return value.encode() if isinstance(value, str) else value


LABELS = ["a", "b", "c d", "é", "ü-x", "😀", "z" * 10]


@st.composite
def enum_set_specs(draw: st.DrawFn) -> Spec:
    charset = draw(st.sampled_from(["utf8mb4", "latin1"]))
    pool = [label for label in LABELS if charset == "utf8mb4" or label != "😀"]
    labels = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=len(pool), unique=True))
    quoted = ",".join("'" + label + "'" for label in labels)
    latin1 = charset == "latin1"
    if draw(st.booleans()):
        return Spec(
            f"ENUM({quoted}) CHARACTER SET {charset}",
            st.sampled_from(labels),
            bug=lambda v: latin1 and not v.isascii(),
        )
    ordered = {label: i for i, label in enumerate(labels)}
    members = st.lists(st.sampled_from(labels), unique=True).map(lambda ms: sorted(ms, key=ordered.__getitem__))
    return Spec(
        f"SET({quoted}) CHARACTER SET {charset}",
        members,
        sql=lambda ms: ("%s", [",".join(ms)]),
        bug=lambda ms: not ms or (latin1 and not all(m.isascii() for m in ms)),
    )


@st.composite
def other_specs(draw: st.DrawFn) -> Spec:
    kind = draw(st.sampled_from(["FLOAT", "DOUBLE", "BIT", "JSON", "GEOMETRY"]))
    if kind == "FLOAT":
        return Spec("FLOAT", st.floats(width=32, allow_nan=False, allow_infinity=False))
    if kind == "DOUBLE":
        return Spec("DOUBLE", st.floats(allow_nan=False, allow_infinity=False))
    if kind == "BIT":
        bits = draw(st.sampled_from([1, 2, 8, 9, 17, 63, 64]))
        values = st.one_of(st.sampled_from([0, 2**bits - 1]), st.integers(0, 2**bits - 1))
        if bits == 1:
            return Spec("BIT(1)", values, adapt=lambda s: s == "1", written=bool)
        return Spec(f"BIT({bits})", values, adapt=lambda s: int(s, 2))
    if kind == "JSON":
        scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(UTF8, max_size=8)
        documents = st.recursive(
            scalars,
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
            max_leaves=8,
        )
        return Spec("JSON", documents.map(lambda d: json.dumps(d, ensure_ascii=False)))
    point = st.tuples(st.integers(-4000, 4000), st.integers(-4000, 4000), st.sampled_from([0, 4326, 3857]))
    return Spec(
        "GEOMETRY",
        point,
        sql=lambda p: ("ST_GeomFromText(%s, %s)", [f"POINT({p[0] / 4} {p[1] / 4})", p[2]]),
        adapt=lambda raw: {"wkb": raw[4:], "srid": int.from_bytes(raw[:4], "little") or None},
        written=lambda p: {"wkb": struct.pack("<BIdd", 1, 1, p[0] / 4, p[1] / 4), "srid": p[2] or None},
    )


column_specs = st.one_of(
    int_specs(), decimal_specs(), temporal_specs(), text_specs(), binary_specs(), enum_set_specs(), other_specs()
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[Spec], list[list[Any]], list[list[Any]]]:
    specs = [replace(s, nullable=draw(st.booleans())) for s in draw(st.lists(column_specs, min_size=1, max_size=8))]

    def row() -> list[Any]:
        return [draw(st.none() | s.values if s.nullable else s.values) for s in specs]

    count = draw(st.integers(1, 4))
    inserted = [row() for _ in range(count)]
    updated = [row() for _ in range(count)]
    return specs, inserted, updated


# --------------------------------------------------------------------------- the differential test


_table_no = itertools.count()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(table=tables())
def test_decoder_matches_library_on_random_tables(mysql_db: Any, table: Any) -> None:
    specs, inserted, updated = table
    name = f"t{next(_table_no)}"
    columns = [f"c{i}" for i in range(len(specs))]
    ddl = ", ".join(f"{c} {s.ddl} {'NULL' if s.nullable else 'NOT NULL'}" for c, s in zip(columns, specs, strict=True))
    conn = _connect(mysql_db)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY, {ddl}) CHARACTER SET utf8mb4")
            start = _position(cur)
            rows_sql, args = [], []
            for i, values in enumerate(inserted):
                parts = [spec.placeholder(v) for spec, v in zip(specs, values, strict=True)]
                rows_sql.append("(%s, " + ", ".join(p for p, _ in parts) + ")")
                args += [i, *(a for _, ps in parts for a in ps)]
            cur.execute(f"INSERT INTO {name} VALUES " + ", ".join(rows_sql), args)
            for i, values in enumerate(updated):
                parts = [spec.placeholder(v) for spec, v in zip(specs, values, strict=True)]
                sets = ", ".join(f"{c} = {p}" for c, (p, _) in zip(columns, parts, strict=True))
                cur.execute(f"UPDATE {name} SET {sets} WHERE id = %s", [*(a for _, ps in parts for a in ps), i])
            cur.execute(f"DELETE FROM {name}")
            cur.execute(f"DROP TABLE {name}")
    finally:
        conn.close()

    decoded = _decode(_events(mysql_db, start))
    counts = {RowsKind.WRITE: 0, RowsKind.DELETE: 0}
    for d in decoded:
        assert [c.name for c in d.decoder.columns] == ["id", *columns]
        try:
            library = d.event.rows  # evaluated only now, after our decoding
        except UnicodeDecodeError:
            assert any(s.library_may_raise for s in specs)
            library = [None] * len(d.pairs)  # then only the written values are the reference
        assert len(library) == len(d.pairs)
        for (before, after), lib in zip(d.pairs, library, strict=True):
            if d.raw.kind is RowsKind.UPDATE:
                images = [
                    (before, lib and lib["before_values"], inserted),
                    (after, lib and lib["after_values"], updated),
                ]
            elif d.raw.kind is RowsKind.WRITE:
                images = [(after, lib and lib["values"], inserted)]
            else:
                images = [(before, lib and lib["values"], updated)]
            if d.raw.kind in counts:
                counts[d.raw.kind] += 1
            for ours, theirs, source in images:
                assert ours is not None
                _check_image(d.decoder, ours, theirs, specs, source[ours["id"]])
    assert counts == {RowsKind.WRITE: len(inserted), RowsKind.DELETE: len(inserted)}


def _check_image(
    decoder: RowDecoder, ours: dict[str, Any], theirs: dict[str, Any] | None, specs: list[Spec], values: list[Any]
) -> None:
    """Every value equals the written value through to_wire, and (bugs aside) the library's through to_wire."""
    assert theirs is None or list(ours) == list(theirs)
    for col, spec, value in zip(decoder.columns[1:], specs, values, strict=True):
        got = ours[col.name]
        where = f"{col.name} {spec.ddl} written {value!r}"
        if value is None:
            assert got is None and (theirs is None or theirs[col.name] is None), where
            continue
        fraction = col.info.scale if col.wire.name == "io.debezium.time.ZonedTimestamp" else None
        to_wire = converter_to_wire(col.wire, fraction_digits=fraction)
        assert got == to_wire(spec.written(value)), f"{where}: ours {got!r}"
        if theirs is not None and not spec.bug(value):
            reference = to_wire(spec.adapt(theirs[col.name]))
            assert got == reference, f"{where}: ours {got!r}, library + to_wire {reference!r}"


# --------------------------------------------------------------------------- fixed cases per type


@dataclass
class Case:
    """One column type, values written, the payload values expected, and the expected wire schema."""

    ddl: str
    written: list[Any]
    expected: list[Any]
    wire: tuple[str, str | None] | None = None  # (Connect type, semantic name)
    placeholder: str = "%s"
    options: DecoderOptions = field(default_factory=DecoderOptions)
    sql_mode: str | None = None
    params: dict[str, str] | None = None

    def __str__(self) -> str:
        return self.ddl


def _days(text: str) -> int:
    return (date.fromisoformat(text) - date(1970, 1, 1)).days


def _epoch_us(text: str) -> int:
    delta = datetime.fromisoformat(text) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _point(x: float, y: float) -> str:
    return _b64(struct.pack("<BIdd", 1, 1, x, y))


DEC65 = "9" * 35 + "." + "9" * 30
SET64 = "SET(" + ",".join(f"'m{i}'" for i in range(64)) + ")"
ALL64 = ",".join(f"m{i}" for i in range(64))
CASES = [
    Case("TINYINT", [-128, 127, 0], [-128, 127, 0], ("int16", None)),
    Case("TINYINT UNSIGNED", [0, 255], [0, 255], ("int16", None)),
    Case("SMALLINT", [-32768, 32767], [-32768, 32767], ("int16", None)),
    Case("SMALLINT UNSIGNED", [65535], [65535], ("int32", None)),
    Case("MEDIUMINT", [-8388608, 8388607, -1], [-8388608, 8388607, -1], ("int32", None)),
    Case("MEDIUMINT UNSIGNED", [16777215], [16777215], ("int32", None)),
    Case("INT", [-(2**31), 2**31 - 1], [-(2**31), 2**31 - 1], ("int32", None)),
    Case("INT UNSIGNED", [2**32 - 1], [2**32 - 1], ("int64", None)),
    Case("BIGINT", [-(2**63), 2**63 - 1], [-(2**63), 2**63 - 1], ("int64", None)),
    Case(
        "BIGINT UNSIGNED",
        [0, 2**64 - 1, 2**63],
        ["AA==", "AP//////////", _precise(2**63)],
        ("bytes", "org.apache.kafka.connect.data.Decimal"),
    ),
    Case(
        "BIGINT UNSIGNED",
        [2**63 - 1],
        [2**63 - 1],
        ("int64", None),
        options=DecoderOptions(bigint_unsigned_handling=BigintUnsignedHandling.LONG),
    ),
    Case("FLOAT", [1.1, -2.5, 3.4028234663852886e38, 0.0], [1.1, -2.5, 3.4028235e38, 0.0], ("float32", None)),
    Case("DOUBLE", [1e300, -2.2250738585072014e-308, 0.1], [1e300, -2.2250738585072014e-308, 0.1], ("float64", None)),
    Case(
        "DECIMAL(65,30)",
        [DEC65, "-" + DEC65, "0", "-0.000000000000000000000000000001"],
        [_precise(10**65 - 1), _precise(-(10**65) + 1), _precise(0), _precise(-1)],
        ("bytes", "org.apache.kafka.connect.data.Decimal"),
    ),
    Case("DECIMAL(10,2)", ["-12.34", "99999999.99", "0.5"], [_precise(-1234), _precise(9999999999), _precise(50)]),
    Case("DECIMAL(3,3)", ["0.001", "-0.999"], [_precise(1), _precise(-999)]),
    Case("DECIMAL(18,0)", ["-999999999999999999"], [_precise(-999999999999999999)]),
    Case(
        "DECIMAL(10,2)",
        ["12.3", "-0.01"],
        ["12.30", "-0.01"],
        ("string", None),
        options=DecoderOptions(decimal_handling=DecimalHandling.STRING),
    ),
    Case(
        "DECIMAL(10,2)",
        ["12.3"],
        [12.3],
        ("float64", None),
        options=DecoderOptions(decimal_handling=DecimalHandling.DOUBLE),
    ),
    Case(
        "DATE",
        ["1000-01-01", "9999-12-31", "1970-01-01", "1969-12-31", "2024-02-29"],
        [_days("1000-01-01"), _days("9999-12-31"), 0, -1, _days("2024-02-29")],
        ("int32", "io.debezium.time.Date"),
    ),
    Case(
        "DATETIME",
        ["1000-01-01 00:00:00", "9999-12-31 23:59:59", "1969-12-31 23:59:59"],
        [_epoch_us("1000-01-01 00:00:00") // 1000, _epoch_us("9999-12-31 23:59:59") // 1000, -1000],
        ("int64", "io.debezium.time.Timestamp"),
    ),
    Case(
        "DATETIME(3)",
        ["2024-05-06 07:08:09.123", "1969-12-31 23:59:59.999"],
        [_epoch_us("2024-05-06 07:08:09.123") // 1000, -1],
        ("int64", "io.debezium.time.Timestamp"),
    ),
    Case(
        "DATETIME(1)",
        ["2024-05-06 07:08:09.5"],
        [_epoch_us("2024-05-06 07:08:09.5") // 1000],
        ("int64", "io.debezium.time.Timestamp"),
    ),
    Case(
        "DATETIME(6)",
        ["1000-01-01 00:00:00.000001", "9999-12-31 23:59:59.999999", "1969-12-31 23:59:59.999999"],
        [_epoch_us("1000-01-01 00:00:00.000001"), _epoch_us("9999-12-31 23:59:59.999999"), -1],
        ("int64", "io.debezium.time.MicroTimestamp"),
    ),
    Case("DATETIME(5)", ["2001-02-03 04:05:06.12345"], [_epoch_us("2001-02-03 04:05:06.12345")]),
    Case(
        "DATETIME(6)",
        ["2001-02-03 04:05:06.123456"],
        [_epoch_us("2001-02-03 04:05:06.123456") // 1000],
        ("int64", "org.apache.kafka.connect.data.Timestamp"),
        options=DecoderOptions(time_precision=TimePrecision.CONNECT),
    ),
    Case(
        "TIMESTAMP NULL",
        ["1970-01-01 00:00:01", "2038-01-19 03:14:07"],
        ["1970-01-01T00:00:01Z", "2038-01-19T03:14:07Z"],
        ("string", "io.debezium.time.ZonedTimestamp"),
    ),
    Case(
        "TIMESTAMP(3) NULL",
        ["2000-01-01 00:00:00.5", "2000-01-01 00:00:00"],
        ["2000-01-01T00:00:00.500Z", "2000-01-01T00:00:00.000Z"],
    ),
    Case("TIMESTAMP(6) NULL", ["2038-01-19 03:14:07.999999"], ["2038-01-19T03:14:07.999999Z"]),
    Case(
        "TIMESTAMP NULL",  # written in +02:00, stored and sent in UTC
        ["2020-01-01 02:00:00"],
        ["2020-01-01T00:00:00Z"],
        params={"time_zone": "+02:00"},
    ),
    Case(
        "TIME",
        ["-838:59:59", "838:59:59", "00:00:00", "-00:00:01"],
        [-3020399000000, 3020399000000, 0, -1000000],
        ("int64", "io.debezium.time.MicroTime"),
    ),
    Case("TIME(2)", ["-00:00:00.25", "-01:00:00.5", "00:00:00.03"], [-250000, -3600500000, 30000]),
    Case("TIME(1)", ["-00:00:00.1", "-838:59:59.9"], [-100000, -3020399900000]),
    Case("TIME(3)", ["12:34:56.789", "-12:34:56.789"], [45296789000, -45296789000]),
    Case("TIME(4)", ["-00:00:00.0001"], [-100]),
    Case("TIME(6)", ["-00:00:01.000001", "-838:59:59.999999"], [-1000001, -3020399999999]),
    Case(
        "TIME(6)",
        ["-00:00:01.000001"],
        [-1000],
        ("int32", "org.apache.kafka.connect.data.Time"),
        options=DecoderOptions(time_precision=TimePrecision.CONNECT),
    ),
    Case("YEAR", [0, 1901, 2155], [0, 1901, 2155], ("int32", "io.debezium.time.Year")),
    Case(
        "CHAR(10) CHARACTER SET utf8mb4",
        ["😀 emoji", "trail  ", ""],
        ["😀 emoji", "trail", ""],
        ("string", None),
    ),
    Case("CHAR(100) CHARACTER SET utf8mb4", ["é" * 100], ["é" * 100]),  # 400 bytes: 2-byte length
    Case("VARCHAR(300) CHARACTER SET utf8mb4", ["😀" * 300, " x "], ["😀" * 300, " x "]),
    Case("VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_uca1400_ai_ci", ["é😀"], ["é😀"]),
    Case("VARCHAR(10) CHARACTER SET utf8mb3", ["héllo"], ["héllo"]),
    Case("VARCHAR(10) CHARACTER SET latin1", ["é€\x81\x8d\x8f\x90\x9d", "ÿ"], ["é€\x81\x8d\x8f\x90\x9d", "ÿ"]),
    Case("VARCHAR(10) CHARACTER SET ascii", ["plain"], ["plain"]),
    Case("VARCHAR(10) CHARACTER SET utf16", ["a😀é"], ["a😀é"]),
    Case("VARCHAR(10) CHARACTER SET utf16le", ["a😀é"], ["a😀é"]),
    Case("VARCHAR(10) CHARACTER SET utf32", ["a😀é"], ["a😀é"]),
    Case("VARCHAR(10) CHARACTER SET ucs2 COLLATE ucs2_uca1400_ai_ci", ["aé"], ["aé"]),
    Case("VARCHAR(10) CHARACTER SET cp1251", ["Жук"], ["Жук"]),
    Case("VARCHAR(10) CHARACTER SET sjis", ["日本"], ["日本"]),
    Case("TINYTEXT", ["t😀"], ["t😀"]),
    Case("TEXT", ["x" * 1000], ["x" * 1000]),
    Case("MEDIUMTEXT", ["é" * 70000], ["é" * 70000]),
    Case("LONGTEXT", ["😀"], ["😀"]),
    Case(
        "BINARY(4)",
        [b"ab", b"\0\0\0\0", b"abcd", b"a\0b"],
        [_b64(b"ab\0\0"), _b64(b"\0\0\0\0"), _b64(b"abcd"), _b64(b"a\0b\0")],
        ("bytes", None),
    ),
    Case("VARBINARY(300)", [b"a\0", b"\xff" * 300], [_b64(b"a\0"), _b64(b"\xff" * 300)]),
    Case("VARCHAR(10) CHARACTER SET binary", [b"\x00\x01"], [_b64(b"\x00\x01")]),
    Case("TINYBLOB", [b"\x00"], [_b64(b"\x00")]),
    Case("BLOB", [b"\x01" * 1000], [_b64(b"\x01" * 1000)]),
    Case("MEDIUMBLOB", [b"\x02" * 70000], [_b64(b"\x02" * 70000)]),
    Case("LONGBLOB", [b""], [""]),
    Case(
        "VARBINARY(10)",
        [b"\xfb\xff"],
        ["fbff"],
        ("string", None),
        options=DecoderOptions(binary_handling=BinaryHandling.HEX),
    ),
    Case(
        "VARBINARY(10)",
        [b"\xfb\xff"],
        ["-_8="],
        options=DecoderOptions(binary_handling=BinaryHandling.BASE64_URL_SAFE),
    ),
    Case(
        "ENUM('a','é','😀') CHARACTER SET utf8mb4",
        ["a", "é", "😀"],
        ["a", "é", "😀"],
        ("string", "io.debezium.data.Enum"),
    ),
    Case("ENUM('x','é') CHARACTER SET latin1", ["é", "x"], ["é", "x"]),
    Case("ENUM('x','y')", ["nope"], [""], sql_mode=""),  # MySQL's '' (index 0) for an invalid value
    Case(
        "SET('a','b','c')",
        ["", "a,c", "c,a,b"],
        ["", "a,c", "a,b,c"],
        ("string", "io.debezium.data.EnumSet"),
    ),
    Case("SET('é','x') CHARACTER SET latin1", ["x,é"], ["é,x"]),
    Case(SET64, [ALL64], [ALL64]),  # an 8-byte mask
    Case("SET(" + ",".join(f"'m{i}'" for i in range(20)) + ")", ["m19,m0"], ["m0,m19"]),  # 3-byte mask
    Case("BIT(1)", [0, 1], [False, True], ("boolean", None)),
    Case("BIT(10)", [0b1010000001, 0], [_b64(b"\x81\x02"), _b64(b"\0\0")], ("bytes", "io.debezium.data.Bits")),
    Case("BIT(64)", [2**64 - 1, 1], [_b64(b"\xff" * 8), _b64(b"\x01" + b"\0" * 7)]),
    Case("JSON", ['{"a": [1, 2.5, "x"], "b": null}'], ['{"a": [1, 2.5, "x"], "b": null}'], ("string", None)),
    Case(
        "GEOMETRY",
        ["POINT(1 2)"],
        [{"wkb": _point(1, 2), "srid": 4326}],
        ("struct", "io.debezium.data.geometry.Geometry"),
        placeholder="ST_GeomFromText(%s, 4326)",
    ),
    Case("POINT", ["POINT(-1.5 0)"], [{"wkb": _point(-1.5, 0), "srid": None}], placeholder="ST_GeomFromText(%s)"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.ddl[:40]}" for i, c in enumerate(CASES)])
def test_each_type(mysql_db: Any, case: Case) -> None:
    conn = _connect(mysql_db, **(case.params or {}))
    try:
        with conn.cursor() as cur:
            if case.sql_mode is not None:
                cur.execute("SET SESSION sql_mode = %s", (case.sql_mode,))
            cur.execute(f"CREATE TABLE t (id INT PRIMARY KEY, v {case.ddl})")
            start = _position(cur)
            for i, value in enumerate(case.written):
                cur.execute(f"INSERT INTO t VALUES (%s, {case.placeholder})", (i, value))
    finally:
        conn.close()
    decoded = _decode(_events(mysql_db, start), case.options)
    assert [image["v"] for image in _after_images(decoded)] == case.expected
    column = decoded[0].decoder.columns[1]
    if case.wire is not None:
        assert (column.wire.type, column.wire.name) == case.wire
    assert column.wire.optional


# --------------------------------------------------------------------------- zero dates


ZERO_DDL = (
    "d DATE NULL, dn DATE NOT NULL, t DATETIME(3) NULL, tn DATETIME(3) NOT NULL, "
    "s TIMESTAMP(2) NULL, sn TIMESTAMP(2) NOT NULL DEFAULT '2000-01-01'"
)


def _zero_rows(mysql_db: Any, sql_mode: str, values: str) -> list[Any]:
    conn = _connect(mysql_db, sql_mode=sql_mode)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE z (id INT PRIMARY KEY, {ZERO_DDL})")
            start = _position(cur)
            cur.execute(f"INSERT INTO z VALUES {values}")
    finally:
        conn.close()
    return _events(mysql_db, start)


def test_zero_dates_follow_zero_date_handling(mysql_db: Any) -> None:
    zero = "'0000-00-00'"
    ts0 = "'0000-00-00 00:00:00'"
    events = _zero_rows(mysql_db, "", f"(1, {zero}, {zero}, {ts0}, {ts0}, {ts0}, {ts0})")

    with pytest.raises(DecodeError, match=r"z\.d holds the zero or invalid date '0000-00-00'"):
        _decode(events)  # error is the default
    with pytest.raises(DecodeError, match=r"z\.dn .* is NOT NULL"):
        _decode(events, DecoderOptions(zero_date_handling=ZeroDateHandling.NULL))
    (image,) = _after_images(_decode(events, DecoderOptions(zero_date_handling=ZeroDateHandling.DEBEZIUM)))
    assert image == {"id": 1, "d": None, "dn": 0, "t": None, "tn": 0, "s": None, "sn": "1970-01-01T00:00:00.00Z"}

    # the library turns them into NULL without a word, and a zero TIMESTAMP into the epoch
    values = events[-1].rows[0]["values"]
    assert values["d"] is None and values["dn"] is None and values["tn"] is None
    assert values["sn"] == datetime(1970, 1, 1)


def test_partial_zero_and_invalid_dates(mysql_db: Any) -> None:
    events = _zero_rows(
        mysql_db,
        "ALLOW_INVALID_DATES",
        "(1, '2020-00-15', '2023-02-30', '2020-05-00 01:02:03', '2023-02-30 01:02:03.5', NULL, '2000-01-01')",
    )
    with pytest.raises(DecodeError, match="'2020-00-15'"):
        _decode(events)
    (image,) = _after_images(_decode(events, DecoderOptions(zero_date_handling=ZeroDateHandling.DEBEZIUM)))
    assert image == {"id": 1, "d": None, "dn": 0, "t": None, "tn": 0, "s": None, "sn": "2000-01-01T00:00:00.00Z"}


# --------------------------------------------------------------------------- options, images, framing


def test_bigint_unsigned_long_refuses_values_beyond_int64(mysql_db: Any) -> None:
    conn = _connect(mysql_db)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE u (id INT PRIMARY KEY, v BIGINT UNSIGNED)")
        start = _position(cur)
        cur.execute("INSERT INTO u VALUES (1, %s)", (2**63,))
    conn.close()
    options = DecoderOptions(bigint_unsigned_handling=BigintUnsignedHandling.LONG)
    with pytest.raises(TargetValueError, match="9223372036854775808 does not fit int64"):
        _decode(_events(mysql_db, start), options)


def test_nulls_everywhere_and_many_columns(mysql_db: Any) -> None:
    types = ["INT", "BIGINT UNSIGNED", "DECIMAL(30,10)", "DATETIME(6)", "TIME(3)", "VARCHAR(5)", "BLOB", "BIT(3)"]
    cols = [f"c{i} {types[i % len(types)]}" for i in range(40)]
    conn = _connect(mysql_db)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE n (id INT PRIMARY KEY, {', '.join(cols)})")
        start = _position(cur)
        cur.execute("INSERT INTO n (id) VALUES (1), (2)")
        cur.execute("UPDATE n SET c7 = b'101', c39 = 0 WHERE id = 2")
    conn.close()
    decoded = _decode(_events(mysql_db, start))
    first, second = _after_images(decoded)
    assert first == {"id": 1, **{f"c{i}": None for i in range(40)}}
    (before, after) = decoded[-1].pairs[0]
    assert before == second
    assert after == {**second, "c7": _b64(b"\x05"), "c39": _b64(b"\x00")}


def test_minimal_row_image_leaves_absent_columns_out(mysql_db: Any) -> None:
    conn = _connect(mysql_db, binlog_row_image="MINIMAL")
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE m (id INT PRIMARY KEY, a VARCHAR(10), b DECIMAL(5,2), c DATE)")
        start = _position(cur)
        cur.execute("INSERT INTO m VALUES (1, 'x', 1.5, '2024-01-01')")
        cur.execute("UPDATE m SET b = 2.5 WHERE id = 1")
        cur.execute("DELETE FROM m")
    conn.close()
    write, update, delete = _decode(_events(mysql_db, start))
    assert update.pairs == [({"id": 1}, {"b": _precise(250)})]
    assert delete.pairs == [({"id": 1}, None)]
    assert update.raw.present != update.raw.present_after
    # the library agrees where it has a value (it fills absent columns with None)
    assert update.event.rows[0]["after_values"]["b"] == Decimal("2.50")
    assert write.pairs[0][1] == {"id": 1, "a": "x", "b": _precise(150), "c": _days("2024-01-01")}


def test_decoders_are_cached_per_table_map(mysql_db: Any) -> None:
    from pymysqlreplication.row_event import TableMapEvent

    conn = _connect(mysql_db)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE c (id INT PRIMARY KEY, a INT)")
        start = _position(cur)
        cur.execute("INSERT INTO c VALUES (1, 1)")
        cur.execute("INSERT INTO c VALUES (2, 2)")
        cur.execute("ALTER TABLE c ADD COLUMN b VARCHAR(5) FIRST")
        cur.execute("INSERT INTO c VALUES ('x', 3, 3)")
    conn.close()
    events = _events(mysql_db, start)
    maps = [e for e in events if isinstance(e, TableMapEvent)]
    first, second, third = (compile_decoder(m) for m in maps)
    assert first is second
    assert third is not first
    assert [c.name for c in third.columns] == ["b", "id", "a"]
    assert _after_images(_decode(events))[-1] == {"b": "x", "id": 3, "a": 3}
    assert "S0" in first.source()  # the generated reader can be inspected


class _FakePacket:
    def __init__(self, data: bytes) -> None:
        self._data = data


class _FakeEvent:
    """A rows event with the attributes raw_rows reads, over hand-made bytes."""

    def __init__(self, event_type: int, body: bytes, table_id: int) -> None:
        header = b"\0" + struct.pack("<IBIII", 0, event_type, 1, 19 + len(body) + 4, 0) + b"\0\0"
        self.packet = type("Wrapper", (), {"packet": _FakePacket(header + body + b"\0" * 4)})()
        self.event_type = event_type
        self.event_size = len(body)
        self.table_id = table_id


def test_v2_rows_events_of_mysql_8_frame_like_v1(mysql_db: Any) -> None:
    conn = _connect(mysql_db)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE v (id INT PRIMARY KEY, a VARCHAR(10))")
        start = _position(cur)
        cur.execute("INSERT INTO v VALUES (1, 'é'), (2, NULL)")
        cur.execute("UPDATE v SET a = 'z'")
    conn.close()
    decoded = _decode(_events(mysql_db, start))
    for d in decoded:
        v1 = d.raw
        body = event_body(d.event)
        head, rest = body[:8], body[8:]
        for extra in (b"", b"\x01\x02\x00\x07"):  # none, and a partition-info field MySQL 8 may add
            v2_type = {23: 30, 24: 31, 25: 32}[d.event.event_type]
            v2_body = head + struct.pack("<H", 2 + len(extra)) + extra + rest
            v2 = raw_rows(_FakeEvent(v2_type, v2_body, v1.table_id))
            assert (v2.kind, v2.present, v2.present_after, v2.data) == (v1.kind, v1.present, v1.present_after, v1.data)
            assert d.decoder.decode(v2) == d.pairs


def test_unsupported_and_malformed_input_fails_closed(mysql_db: Any) -> None:
    conn = _connect(mysql_db)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE bad (id INT PRIMARY KEY, a VARCHAR(10), g VARCHAR(5) CHARACTER SET dec8)")
        cur.execute("CREATE TABLE ok (id INT PRIMARY KEY, a VARCHAR(10))")
        start = _position(cur)
        cur.execute("INSERT INTO bad VALUES (1, 'abc', 'x')")
        cur.execute("INSERT INTO ok VALUES (1, 'abc')")
    conn.close()
    bad_map, _bad_rows, ok_map, ok_rows = _events(mysql_db, start)
    with pytest.raises(SchemaError, match="cannot decode character set 'dec8'"):
        compile_decoder(bad_map)
    table = parse_table_map(event_body(bad_map), dbms="mariadb")
    assert [(c.name, c.charset) for c in table.columns] == [("id", None), ("a", "utf8mb4"), ("g", "dec8")]

    decoder = compile_decoder(ok_map)
    raw = raw_rows(ok_rows)
    assert decoder.decode(raw) == [(None, {"id": 1, "a": "abc"})]
    with pytest.raises(DecodeError, match="overrun"):
        decoder.decode_rows(raw.data[:-1], raw.kind)  # a truncated string
    with pytest.raises(DecodeError, match="column 'a'"):
        decoder.decode_rows(raw.data[:5], raw.kind)  # cut before the length prefix
    with pytest.raises(DecodeError, match="after image is missing"):
        decoder.decode_rows(raw.data, RowsKind.UPDATE)  # one image where an update has two
    with pytest.raises(DecodeError, match="not a rows event"):
        raw_rows(_FakeEvent(39, b"\0" * 12, 1))  # MySQL's PARTIAL_UPDATE_ROWS_EVENT
    with pytest.raises(DecodeError, match="malformed TABLE_MAP"):
        parse_table_map(event_body(ok_map)[:20])


# --------------------------------------------------------------------------- MySQL binary JSON


def _varlen(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _jsonb_value(value: Any, large: bool) -> tuple[int, bytes]:
    """MySQL's binary JSON encoding of a value (the test's own encoder, after the format spec)."""
    if value is None or isinstance(value, bool):
        return 4, bytes([{None: 0, True: 1, False: 2}[value]])
    if isinstance(value, int):
        if -(2**15) <= value < 2**15:
            return 5, struct.pack("<h", value)
        if -(2**31) <= value < 2**31:
            return 7, struct.pack("<i", value)
        return (9, struct.pack("<q", value)) if value < 2**63 else (10, struct.pack("<Q", value))
    if isinstance(value, float):
        return 11, struct.pack("<d", value)
    if isinstance(value, str):
        data = value.encode()
        return 12, _varlen(len(data)) + data
    is_object = isinstance(value, dict)
    keys = sorted((k.encode() for k in value), key=lambda k: (len(k), k)) if is_object else []
    items = [value[k.decode()] for k in keys] if is_object else list(value)
    width = 4 if large else 2
    pack = struct.Struct("<I" if large else "<H").pack
    offset = 2 * width + len(items) * (1 + width) + (len(keys) * (width + 2))
    key_entries = b""
    for key in keys:
        key_entries += pack(offset) + struct.pack("<H", len(key))
        offset += len(key)
    value_entries, tail = b"", b""
    for item in items:
        kind, payload = _jsonb_value(item, large)
        if kind in (4, 5, 6) or (large and kind in (7, 8)):
            value_entries += bytes([kind]) + payload.ljust(width, b"\0")
        else:
            value_entries += bytes([kind]) + pack(offset)
            tail += payload
            offset += len(payload)
    body = pack(len(items)) + pack(offset) + key_entries + value_entries + b"".join(keys) + tail
    return (0 if is_object else 2) + (1 if large else 0), body


def _jsonb(value: Any, large: bool = False) -> bytes:
    kind, payload = _jsonb_value(value, large)
    return bytes([kind]) + payload


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
JSON_DOCS = st.recursive(
    JSON_SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4), max_leaves=12
)


@settings(max_examples=200, deadline=None)
@given(document=JSON_DOCS, large=st.booleans())
def test_binary_json_round_trips_and_matches_the_library(document: Any, large: bool) -> None:
    from pymysqlreplication.json_binary import parse_json

    data = _jsonb(document, large)
    text = json_binary_to_text(data)
    assert json.loads(text) == document
    assert json.loads(text) == _plain(parse_json(data[0], data[1:]))


def test_binary_json_text_is_debeziums() -> None:
    document = {"b": [1, -2.5, 1e20, 1e-5, 0.001, 12345678.0, True, None], "a\n\x01": 'q"\\\t', "é": {}}
    tiny = format(Decimal(document["b"][3]), "f")  # Java's new BigDecimal(1e-5).toPlainString(): the exact double
    # MySQL stores keys by length, then bytes: "b", "é" (2 bytes), "a\n\x01" (3 bytes)
    assert json_binary_to_text(_jsonb(document)) == (
        f'{{"b":[1,-2.5,100000000000000000000,{tiny},0.001,12345678,true,null],"é":{{}},"a\\n\\u0001":"q\\"\\\\\\t"}}'
    )
    assert json_binary_to_text(b"") == "null"  # MySQL reads an empty document as the null literal
    # opaque values: DECIMAL(5,2) 123.45, DATETIME 2024-01-02 03:04:05.5, TIME -01:02:03, a VARCHAR's bytes
    decimal = bytes([246]) + _varlen(5) + bytes([5, 2, 0x80, 123, 45])
    packed_dt = ((((2024 * 13 + 1) << 5 | 2) << 17 | (3 << 12 | 4 << 6 | 5)) << 24) | 500000
    datetime_ = bytes([12]) + _varlen(8) + struct.pack("<q", packed_dt)
    time_ = bytes([11]) + _varlen(8) + struct.pack("<q", -((1 << 12 | 2 << 6 | 3) << 24))
    blob = bytes([15]) + _varlen(2) + b"\x00\xff"
    expected = [(decimal, "123.45"), (datetime_, '"2024-01-02 03:04:05.5"'), (time_, '"-01:02:03"'), (blob, '"AP8="')]
    for opaque, text in expected:
        assert json_binary_to_text(b"\x0f" + opaque) == text
    with pytest.raises(ValueError):
        json_binary_to_text(b"\x0c\x05ab")


def test_library_bugs_are_real(mysql_db: Any) -> None:
    """The library bugs the differential test works around, shown on the library itself."""
    conn = _connect(mysql_db)
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE lb (id INT PRIMARY KEY, t TIME(2), y YEAR, s SET('a'), e ENUM('é') CHARACTER SET latin1, "
            "u VARCHAR(5) CHARACTER SET utf16)"
        )
        start = _position(cur)
        cur.execute("INSERT INTO lb VALUES (1, '-00:00:00.25', 0, '', 'é', 'a')")
    conn.close()
    events = _events(mysql_db, start)
    (decoded,) = _decode(events)
    ours = decoded.pairs[0][1]
    library = decoded.event.rows[0]["values"]
    assert ours == {"id": 1, "t": -250000, "y": 0, "s": "", "e": "é", "u": "a"}
    assert library["t"] == timedelta(seconds=-0.75)
    assert library["y"] == 1900
    assert library["s"] is None
    assert library["e"] == ""
    assert library["u"] == "\u6100"  # b"\x00a" read as little-endian UTF-16


def test_generated_code_never_contains_server_text(mysql_db: Any) -> None:
    name = "x'); import os; ('"
    conn = _connect(mysql_db)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `q` (id INT PRIMARY KEY, `{name}` VARCHAR(5))")
        start = _position(cur)
        cur.execute("INSERT INTO q VALUES (1, 'ok')")
    conn.close()
    decoded = _decode(_events(mysql_db, start))
    assert _after_images(decoded) == [{"id": 1, name: "ok"}]
    assert name not in decoded[0].decoder.source()
