"""A pure decoder of PostgreSQL's logical replication stream as the ``pgoutput`` plugin writes it.

No I/O: every function takes bytes (or a memoryview) and returns immutable values. Formats follow
the PostgreSQL documentation, chapter "Frontend/Backend Protocol":

* "Streaming Replication Protocol" (the messages inside ``START_REPLICATION``'s COPY BOTH
  stream): :func:`decode_copy_data` reads the two messages the server sends, **XLogData**
  (``'w'``: start LSN, end LSN, send time, payload) as :class:`XLogData` and **Primary
  keepalive** (``'k'``: end LSN, send time, reply requested) as :class:`Keepalive`;
  :func:`encode_standby_status` writes the client's **Standby status update** (``'r'``: write,
  flush and apply LSN, client time, reply requested) and :func:`decode_standby_status` reads it
  back.
* "Logical Streaming Replication Protocol" and "Logical Replication Message Formats" (the
  payload of an XLogData message, or a row of ``pg_logical_slot_{get,peek}_binary_changes``):
  :func:`decode_message` reads one pgoutput message, protocol versions 1 (Begin, Commit,
  Origin, Relation, Type, Insert, Update, Delete, Truncate, Message), 2 (Stream Start, Stream
  Stop, Stream Commit, Stream Abort, and the leading transaction id of the messages inside a
  stream segment), 3 (two-phase commit: Begin Prepare, Prepare, Commit Prepared, Rollback
  Prepared, Stream Prepare) and 4 (the abort LSN and time of Stream Abort under
  ``streaming = parallel``).

**Values.** Integers are Python ints: LSNs and transaction ids unsigned, type modifiers signed.
Every ``*_time_us`` field is in **microseconds since the Unix epoch** (the wire counts from
2000-01-01; the difference, :data:`PG_EPOCH_OFFSET_US`, is applied both ways). Names (schema,
relation, column, type, origin, message prefix, two-phase gid) are ``str``. Tuple data
(:data:`Row`) is a tuple with one entry per column the server sent: ``None`` for ``'n'`` (null),
:data:`UNCHANGED` for ``'u'`` (an unchanged TOASTed value the server did not send), ``str`` for
``'t'`` (text format), ``bytes`` for ``'b'`` (binary format, only with the ``binary`` option).
Text is decoded as UTF-8: the server converts text values and names to the client encoding, so
the replication connection must use ``client_encoding=UTF8`` (cdc's session options do).

**Streams.** Inside a stream segment (between Stream Start and Stream Stop, protocol ≥ 2),
Relation, Type, Insert, Update, Delete, Truncate and Message carry the (sub)transaction id
after their tag: decode them with ``in_stream=True`` and it is in their ``xid`` field
(``None`` otherwise). Begin, Commit, Origin and the Stream messages are the same in both cases.

**Errors.** Truncated, over-long or otherwise malformed input, an unknown message type, a tuple
value kind other than ``n``/``u``/``t``/``b``, text that is not UTF-8: all raise
:class:`~cdc.errors.DecodeError` naming the message type and the byte offset within the message
(never a value, which could be a secret). The protocol documents no message type a client may
skip, so none is ignored.

**Speed.** This is the capture hot path. Messages are NamedTuples (immutable, fast to build);
fixed fields are read with precompiled :class:`struct.Struct` formats; a tuple is decoded in
one loop with no per-value dispatch beyond its kind byte; bounds are checked once per message
(Python's slicing never reads past the end, and the decoder checks that it consumed exactly
the message), not once per value.
"""

from __future__ import annotations

import enum
import struct
import time
from collections.abc import Callable
from typing import Any, Final, NamedTuple, TypeAlias

from cdc.errors import DecodeError

__all__ = [
    "PG_EPOCH_OFFSET_US",
    "UNCHANGED",
    "Begin",
    "BeginPrepare",
    "Buffer",
    "Commit",
    "CommitPrepared",
    "Delete",
    "Insert",
    "Keepalive",
    "LogicalMessage",
    "Message",
    "Origin",
    "PgOutputMessage",
    "Prepare",
    "Relation",
    "RelationColumn",
    "RollbackPrepared",
    "Row",
    "StandbyStatus",
    "StreamAbort",
    "StreamCommit",
    "StreamPrepare",
    "StreamStart",
    "StreamStop",
    "Truncate",
    "Type",
    "Unchanged",
    "Update",
    "Value",
    "XLogData",
    "decode_copy_data",
    "decode_message",
    "decode_standby_status",
    "encode_standby_status",
]

#: Microseconds from the Unix epoch (1970-01-01) to PostgreSQL's (2000-01-01).
PG_EPOCH_OFFSET_US: Final = 946_684_800_000_000


class Unchanged(enum.Enum):
    """The type of :data:`UNCHANGED`."""

    UNCHANGED = "u"

    def __repr__(self) -> str:
        return "UNCHANGED"


#: Tuple value of a column whose (TOASTed) value did not change and was not sent (kind ``'u'``).
UNCHANGED: Final = Unchanged.UNCHANGED

#: One column value of tuple data.
Value: TypeAlias = str | bytes | Unchanged | None
#: Tuple data: one value per column the server sent, in the relation's column order.
Row: TypeAlias = tuple[Value, ...]
#: What the decoders accept.
Buffer: TypeAlias = bytes | bytearray | memoryview

# --------------------------------------------------------------------------- copy-data messages


class XLogData(NamedTuple):
    """``'w'``: WAL data; for logical replication ``payload`` is one pgoutput message."""

    start_lsn: int
    end_lsn: int  #: the current end of WAL on the server
    send_time_us: int
    payload: bytes

    @property
    def reply_requested(self) -> bool:
        """Always False: only a :class:`Keepalive` asks for a reply (so either result can be asked)."""
        return False


class Keepalive(NamedTuple):
    """``'k'``: primary keepalive. When ``reply_requested``, answer with a standby status update soon."""

    end_lsn: int
    send_time_us: int
    reply_requested: bool


class StandbyStatus(NamedTuple):
    """``'r'``: the client's standby status update (see :func:`encode_standby_status`)."""

    write_lsn: int
    flush_lsn: int
    apply_lsn: int
    client_time_us: int
    reply_requested: bool


# --------------------------------------------------------------------------- pgoutput messages


class Begin(NamedTuple):
    """``'B'``: a transaction starts; ``final_lsn`` is the LSN of its commit record."""

    final_lsn: int
    commit_time_us: int
    xid: int


class Commit(NamedTuple):
    """``'C'``: the transaction ends; ``end_lsn`` is where the next one may start (the resume point)."""

    flags: int
    commit_lsn: int
    end_lsn: int
    commit_time_us: int


class Origin(NamedTuple):
    """``'O'``: the transaction came from replication origin ``name``."""

    commit_lsn: int  #: the commit LSN on the origin server
    name: str


class RelationColumn(NamedTuple):
    """One column of a :class:`Relation`."""

    flags: int  #: 1 when the column is part of the replica identity (key)
    name: str
    type_oid: int
    type_modifier: int  #: ``atttypmod``, -1 when none

    @property
    def key(self) -> bool:
        """True when the column is part of the replica identity."""
        return bool(self.flags & 1)


class Relation(NamedTuple):
    """``'R'``: a relation's definition, sent before its first change and after it changed."""

    oid: int
    namespace: str  #: ``""`` for ``pg_catalog``
    name: str
    replica_identity: str  #: ``relreplident``: ``d`` default, ``n`` nothing, ``f`` full, ``i`` index
    columns: tuple[RelationColumn, ...]
    xid: int | None = None


class Type(NamedTuple):
    """``'Y'``: a data type's name, sent before a relation that uses a non-built-in type."""

    oid: int
    namespace: str  #: ``""`` for ``pg_catalog``
    name: str
    xid: int | None = None


class Insert(NamedTuple):
    """``'I'``: a row was inserted into relation ``relation_oid``."""

    relation_oid: int
    new: Row
    xid: int | None = None


class Update(NamedTuple):
    """``'U'``: a row was updated. ``key`` (``'K'``: the old key, when it changed) or ``old``
    (``'O'``: the whole old row, under ``REPLICA IDENTITY FULL``) or neither is set."""

    relation_oid: int
    key: Row | None
    old: Row | None
    new: Row
    xid: int | None = None


class Delete(NamedTuple):
    """``'D'``: a row was deleted; exactly one of ``key`` (``'K'``) and ``old`` (``'O'``) is set."""

    relation_oid: int
    key: Row | None
    old: Row | None
    xid: int | None = None


class Truncate(NamedTuple):
    """``'T'``: relations were truncated together."""

    options: int  #: bit 1: CASCADE, bit 2: RESTART IDENTITY
    relation_oids: tuple[int, ...]
    xid: int | None = None

    @property
    def cascade(self) -> bool:
        return bool(self.options & 1)

    @property
    def restart_identity(self) -> bool:
        return bool(self.options & 2)


class LogicalMessage(NamedTuple):
    """``'M'``: a ``pg_logical_emit_message`` (only with the ``messages`` option)."""

    transactional: bool
    lsn: int
    prefix: str
    content: bytes
    xid: int | None = None


#: Alias of :class:`LogicalMessage` under the protocol's own name.
Message = LogicalMessage


class StreamStart(NamedTuple):
    """``'S'``: a segment of the (not yet committed) transaction ``xid`` follows (protocol ≥ 2)."""

    xid: int
    first_segment: bool


class StreamStop(NamedTuple):
    """``'E'``: the current stream segment ends."""


class StreamCommit(NamedTuple):
    """``'c'``: the streamed transaction ``xid`` committed."""

    xid: int
    flags: int
    commit_lsn: int
    end_lsn: int
    commit_time_us: int


class StreamAbort(NamedTuple):
    """``'A'``: the streamed (sub)transaction ``subxid`` of ``xid`` aborted (the whole one when
    ``subxid == xid``). ``abort_lsn``/``abort_time_us`` only with ``streaming = parallel`` (protocol 4)."""

    xid: int
    subxid: int
    abort_lsn: int | None = None
    abort_time_us: int | None = None


class BeginPrepare(NamedTuple):
    """``'b'``: a transaction prepared for two-phase commit starts (protocol ≥ 3, ``two_phase``)."""

    prepare_lsn: int
    end_lsn: int
    prepare_time_us: int
    xid: int
    gid: str


class Prepare(NamedTuple):
    """``'P'``: the transaction ``gid`` was prepared."""

    flags: int
    prepare_lsn: int
    end_lsn: int
    prepare_time_us: int
    xid: int
    gid: str


class CommitPrepared(NamedTuple):
    """``'K'``: the prepared transaction ``gid`` committed."""

    flags: int
    commit_lsn: int
    end_lsn: int
    commit_time_us: int
    xid: int
    gid: str


class RollbackPrepared(NamedTuple):
    """``'r'``: the prepared transaction ``gid`` was rolled back."""

    flags: int
    prepare_end_lsn: int
    rollback_end_lsn: int
    prepare_time_us: int
    rollback_time_us: int
    xid: int
    gid: str


class StreamPrepare(NamedTuple):
    """``'p'``: the streamed transaction ``gid`` was prepared."""

    flags: int
    prepare_lsn: int
    end_lsn: int
    prepare_time_us: int
    xid: int
    gid: str


PgOutputMessage: TypeAlias = (
    Begin
    | Commit
    | Origin
    | Relation
    | Type
    | Insert
    | Update
    | Delete
    | Truncate
    | LogicalMessage
    | StreamStart
    | StreamStop
    | StreamCommit
    | StreamAbort
    | BeginPrepare
    | Prepare
    | CommitPrepared
    | RollbackPrepared
    | StreamPrepare
)

# --------------------------------------------------------------------------- formats

_U32 = struct.Struct(">I")
_U32_U32 = struct.Struct(">II")
_XLOG = struct.Struct(">QQq")  # after 'w': start, end, send time
_KEEPALIVE = struct.Struct(">QqB")  # after 'k'
_STATUS = struct.Struct(">cQQQqB")  # 'r', write, flush, apply, client time, reply
_BEGIN = struct.Struct(">QqI")
_COMMIT = struct.Struct(">BQQq")
_LSN = struct.Struct(">Q")
_COLUMN = struct.Struct(">Ii")  # type oid, type modifier
_TRUNCATE = struct.Struct(">IB")  # relation count, options
_MESSAGE = struct.Struct(">BQ")  # flags, lsn
_STREAM_START = struct.Struct(">IB")
_STREAM_COMMIT = struct.Struct(">IBQQq")
_STREAM_ABORT_PARALLEL = struct.Struct(">IIQq")
_BEGIN_PREPARE = struct.Struct(">QQqI")
_PREPARE = struct.Struct(">BQQqI")  # also Commit Prepared and Stream Prepare
_ROLLBACK_PREPARED = struct.Struct(">BQQqqI")

_unpack_u32 = _U32.unpack_from
_unpack_u32_u32 = _U32_U32.unpack_from
_EPOCH = PG_EPOCH_OFFSET_US


class _Malformed(Exception):
    """Internal: what is wrong and where; turned into a DecodeError naming the message type."""

    def __init__(self, what: str, offset: int) -> None:
        super().__init__(what)
        self.what = what
        self.offset = offset


_NAMES: Final = {
    ord("B"): "Begin",
    ord("C"): "Commit",
    ord("O"): "Origin",
    ord("R"): "Relation",
    ord("Y"): "Type",
    ord("I"): "Insert",
    ord("U"): "Update",
    ord("D"): "Delete",
    ord("T"): "Truncate",
    ord("M"): "Message",
    ord("S"): "Stream Start",
    ord("E"): "Stream Stop",
    ord("c"): "Stream Commit",
    ord("A"): "Stream Abort",
    ord("b"): "Begin Prepare",
    ord("P"): "Prepare",
    ord("K"): "Commit Prepared",
    ord("r"): "Rollback Prepared",
    ord("p"): "Stream Prepare",
}


def _tag_text(tag: int) -> str:
    return repr(chr(tag)) if 0x20 <= tag < 0x7F else f"0x{tag:02x}"


# --------------------------------------------------------------------------- copy data


def decode_copy_data(data: Buffer) -> XLogData | Keepalive:
    """Decode one CopyData message the server sends during ``START_REPLICATION``.

    Returns :class:`XLogData` (``'w'``; its payload copied out as ``bytes``) or
    :class:`Keepalive` (``'k'``). Raises :class:`~cdc.errors.DecodeError` for anything else
    or a wrong length.
    """
    n = len(data)
    if n == 0:
        raise DecodeError("empty replication CopyData message")
    tag = data[0]
    if tag == 0x77:  # 'w'
        if n < 25:
            raise DecodeError(
                f"replication XLogData message truncated at offset 1: 24 header bytes needed, {n - 1} left"
            )
        start, end, sent = _XLOG.unpack_from(data, 1)
        return XLogData(start, end, sent + _EPOCH, bytes(data[25:]))
    if tag == 0x6B:  # 'k'
        if n != 18:
            raise DecodeError(f"replication keepalive message has {n} bytes, not 18 (offset 0)")
        end, sent, reply = _KEEPALIVE.unpack_from(data, 1)
        return Keepalive(end, sent + _EPOCH, bool(reply))
    raise DecodeError(f"unknown replication CopyData message type {_tag_text(tag)} at offset 0")


def encode_standby_status(
    write: int, flush: int, apply: int, *, reply: bool = False, time_us: int | None = None
) -> bytes:
    """The standby status update (``'r'``) for ``write``/``flush``/``apply`` LSNs.

    ``time_us`` is the client's clock in µs since the Unix epoch (now when omitted); ``reply``
    asks the server to answer with a keepalive at once. Raises :class:`~cdc.errors.DecodeError`
    if an LSN is outside ``0 .. 2**64-1``.
    """
    now = time.time_ns() // 1000 if time_us is None else time_us
    try:
        return _STATUS.pack(b"r", write, flush, apply, now - _EPOCH, 1 if reply else 0)
    except struct.error as exc:
        raise DecodeError(f"standby status update cannot be encoded: {exc}") from None


def decode_standby_status(data: Buffer) -> StandbyStatus:
    """Read a standby status update (``'r'``), as :func:`encode_standby_status` writes it."""
    if len(data) != _STATUS.size or data[0] != 0x72:
        raise DecodeError(f"not a standby status update: {len(data)} bytes, {_STATUS.size} expected, type 'r'")
    _, write, flush, apply, sent, reply = _STATUS.unpack_from(data, 0)
    return StandbyStatus(write, flush, apply, sent + _EPOCH, reply == 1)


# --------------------------------------------------------------------------- pgoutput


def decode_message(payload: Buffer, in_stream: bool = False) -> Any:
    """Decode one pgoutput message (the payload of an :class:`XLogData`): one of the types of
    :data:`PgOutputMessage`. Typed ``Any`` because callers dispatch on ``type(msg)`` held in a
    variable, which type checkers cannot narrow; annotate with :data:`PgOutputMessage` to check.

    ``in_stream``: the message came inside a stream segment (between Stream Start and Stream
    Stop), so a Relation, Type, Insert, Update, Delete, Truncate or Message starts with the
    (sub)transaction id (protocol ≥ 2). Raises :class:`~cdc.errors.DecodeError` for an unknown
    type or malformed bytes.
    """
    data = payload if type(payload) is bytes else bytes(payload)
    if not data:
        raise DecodeError("empty pgoutput message")
    tag = data[0]
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise DecodeError(f"unknown pgoutput message type {_tag_text(tag)} at offset 0")
    try:
        return decoder(data, in_stream)
    except _Malformed as exc:
        raise DecodeError(f"malformed pgoutput {_NAMES[tag]} message: {exc.what} at offset {exc.offset}") from None
    except (struct.error, IndexError):  # a fixed field ran past the end
        raise DecodeError(f"malformed pgoutput {_NAMES[tag]} message: truncated at offset {len(data)}") from None


def _load_speedups() -> Any:
    """connectors/postgres/_speedups.c when it is built, unless ``CDC_PG_SPEEDUPS=0``."""
    import os

    if os.environ.get("CDC_PG_SPEEDUPS", "1") == "0":
        return None
    try:
        from connectors.postgres import _speedups  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _speedups


SPEEDUPS: Final = _load_speedups()
_fast_tuple: Final = SPEEDUPS.tuple_values if SPEEDUPS is not None else None


def _tuple(data: bytes, pos: int) -> tuple[Row, int]:
    """TupleData at ``pos``: ``(values, offset after it)``. The compiled reader takes it when it
    is built; whatever it does not read exactly comes here. Bounds are not checked per value
    (slices stop at the end, lengths are read unsigned so the offset only grows): any overrun or
    bad byte is found at the end or by an exception, and :func:`_tuple_error` then locates it."""
    if _fast_tuple is not None:
        try:
            return _fast_tuple(data, pos, UNCHANGED)  # type: ignore[no-any-return]
        except ValueError:
            pass
    return _tuple_python(data, pos)


def _tuple_python(data: bytes, pos: int) -> tuple[Row, int]:
    """:func:`_tuple` in Python: the reference."""
    values: list[Value] = []
    append = values.append
    unpack = _unpack_u32
    try:
        count = (data[pos] << 8) | data[pos + 1]
        i = pos + 2
        for _ in range(count):
            kind = data[i]
            if kind == 0x74:  # 't'
                start = i + 5
                i = start + unpack(data, i + 1)[0]
                append(data[start:i].decode())
            elif kind == 0x6E:  # 'n'
                append(None)
                i += 1
            elif kind == 0x75:  # 'u'
                append(UNCHANGED)
                i += 1
            elif kind == 0x62:  # 'b'
                start = i + 5
                i = start + unpack(data, i + 1)[0]
                append(data[start:i])
            else:
                raise _tuple_error(data, pos)
    except (IndexError, struct.error, UnicodeDecodeError):
        raise _tuple_error(data, pos) from None
    if i > len(data):
        raise _tuple_error(data, pos)
    return tuple(values), i


def _tuple_error(data: bytes, pos: int) -> _Malformed:
    """Walk the TupleData at ``pos`` checking every step: what is wrong with it, and where."""
    size = len(data)
    if pos + 2 > size:
        return _Malformed("tuple column count truncated", pos)
    count = (data[pos] << 8) | data[pos + 1]
    i = pos + 2
    for column in range(count):
        if i >= size:
            return _Malformed(f"tuple data truncated before column {column} of {count}", i)
        kind = data[i]
        if kind in (0x6E, 0x75):
            i += 1
            continue
        if kind not in (0x74, 0x62):
            return _Malformed(f"unknown tuple value kind {_tag_text(kind)} in column {column}", i)
        if i + 5 > size:
            return _Malformed(f"value length of column {column} truncated", i)
        end = i + 5 + _unpack_u32(data, i + 1)[0]
        if end > size:
            return _Malformed(f"value of column {column} runs past the end ({size} bytes)", i)
        if kind == 0x74:
            try:
                data[i + 5 : end].decode()
            except UnicodeDecodeError:
                return _Malformed(f"text value of column {column} is not valid UTF-8", i)
        i = end
    return _Malformed("tuple data malformed", pos)  # not reached: the fast path found a fault


def _string(data: bytes, pos: int) -> tuple[str, int]:
    """A NUL-terminated string at ``pos``: ``(text, offset after the NUL)``."""
    end = data.find(0, pos)
    if end < 0:
        raise _Malformed("unterminated string", pos)
    try:
        return data[pos:end].decode(), end + 1
    except UnicodeDecodeError:
        raise _Malformed("string is not valid UTF-8", pos) from None


def _done(data: bytes, pos: int) -> None:
    if pos != len(data):
        if pos > len(data):
            raise _Malformed(f"truncated ({len(data)} bytes)", len(data))
        raise _Malformed(f"{len(data) - pos} unexpected trailing bytes", pos)


def _fixed(data: bytes, size: int) -> None:
    if len(data) != size:
        if len(data) > size:
            raise _Malformed(f"{len(data) - size} unexpected trailing bytes", size)
        raise _Malformed(f"truncated: {len(data)} bytes, {size} expected", len(data))


def _begin(data: bytes, in_stream: bool) -> Begin:
    _fixed(data, 21)
    lsn, ts, xid = _BEGIN.unpack_from(data, 1)
    return Begin(lsn, ts + _EPOCH, xid)


def _commit(data: bytes, in_stream: bool) -> Commit:
    _fixed(data, 26)
    flags, lsn, end, ts = _COMMIT.unpack_from(data, 1)
    return Commit(flags, lsn, end, ts + _EPOCH)


def _origin(data: bytes, in_stream: bool) -> Origin:
    if len(data) < 9:
        raise _Malformed("truncated", len(data))
    (lsn,) = _LSN.unpack_from(data, 1)
    name, pos = _string(data, 9)
    _done(data, pos)
    return Origin(lsn, name)


def _head(data: bytes, in_stream: bool) -> tuple[int | None, int]:
    """The optional stream xid: ``(xid or None, offset after it)``."""
    if in_stream:
        if len(data) < 5:
            raise _Malformed("transaction id truncated", 1)
        return _unpack_u32(data, 1)[0], 5
    return None, 1


def _relation(data: bytes, in_stream: bool) -> Relation:
    xid, pos = _head(data, in_stream)
    if len(data) < pos + 4:
        raise _Malformed("relation id truncated", pos)
    (oid,) = _unpack_u32(data, pos)
    namespace, pos = _string(data, pos + 4)
    name, pos = _string(data, pos)
    if len(data) < pos + 3:
        raise _Malformed("replica identity and column count truncated", pos)
    identity = chr(data[pos])
    count = (data[pos + 1] << 8) | data[pos + 2]
    pos += 3
    columns: list[RelationColumn] = []
    unpack = _COLUMN.unpack_from
    for i in range(count):
        if pos >= len(data):
            raise _Malformed(f"column {i} truncated", pos)
        flags = data[pos]
        column, after = _string(data, pos + 1)
        if len(data) < after + 8:
            raise _Malformed(f"column {i} ({column!r}) truncated", after)
        type_oid, typmod = unpack(data, after)
        columns.append(RelationColumn(flags, column, type_oid, typmod))
        pos = after + 8
    _done(data, pos)
    return Relation(oid, namespace, name, identity, tuple(columns), xid)


def _type(data: bytes, in_stream: bool) -> Type:
    xid, pos = _head(data, in_stream)
    if len(data) < pos + 4:
        raise _Malformed("type id truncated", pos)
    (oid,) = _unpack_u32(data, pos)
    namespace, pos = _string(data, pos + 4)
    name, pos = _string(data, pos)
    _done(data, pos)
    return Type(oid, namespace, name, xid)


def _insert(data: bytes, in_stream: bool) -> Insert:
    if in_stream:
        xid, oid = _unpack_u32_u32(data, 1)
        pos = 9
    else:
        xid = None
        (oid,) = _unpack_u32(data, 1)
        pos = 5
    if data[pos] != 0x4E:  # 'N'
        raise _Malformed(f"expected 'N' (new tuple), found {_tag_text(data[pos])}", pos)
    new, pos = _tuple(data, pos + 1)
    if pos != len(data):
        _done(data, pos)
    return Insert(oid, new, xid)


def _update(data: bytes, in_stream: bool) -> Update:
    if in_stream:
        xid, oid = _unpack_u32_u32(data, 1)
        pos = 9
    else:
        xid = None
        (oid,) = _unpack_u32(data, 1)
        pos = 5
    key = old = None
    kind = data[pos]
    if kind == 0x4B:  # 'K'
        key, pos = _tuple(data, pos + 1)
        kind = data[pos]
    elif kind == 0x4F:  # 'O'
        old, pos = _tuple(data, pos + 1)
        kind = data[pos]
    if kind != 0x4E:  # 'N'
        raise _Malformed(f"expected 'K', 'O' or 'N', found {_tag_text(kind)}", pos)
    new, pos = _tuple(data, pos + 1)
    if pos != len(data):
        _done(data, pos)
    return Update(oid, key, old, new, xid)


def _delete(data: bytes, in_stream: bool) -> Delete:
    if in_stream:
        xid, oid = _unpack_u32_u32(data, 1)
        pos = 9
    else:
        xid = None
        (oid,) = _unpack_u32(data, 1)
        pos = 5
    kind = data[pos]
    key = old = None
    if kind == 0x4B:  # 'K'
        key, pos = _tuple(data, pos + 1)
    elif kind == 0x4F:  # 'O'
        old, pos = _tuple(data, pos + 1)
    else:
        raise _Malformed(f"expected 'K' or 'O', found {_tag_text(kind)}", pos)
    if pos != len(data):
        _done(data, pos)
    return Delete(oid, key, old, xid)


def _truncate(data: bytes, in_stream: bool) -> Truncate:
    xid, pos = _head(data, in_stream)
    if len(data) < pos + 5:
        raise _Malformed("relation count and options truncated", pos)
    count, options = _TRUNCATE.unpack_from(data, pos)
    pos += 5
    _fixed(data, pos + 4 * count)
    oids = struct.unpack_from(f">{count}I", data, pos)
    return Truncate(options, oids, xid)


def _message(data: bytes, in_stream: bool) -> LogicalMessage:
    xid, pos = _head(data, in_stream)
    if len(data) < pos + 9:
        raise _Malformed("flags and LSN truncated", pos)
    flags, lsn = _MESSAGE.unpack_from(data, pos)
    prefix, pos = _string(data, pos + 9)
    if len(data) < pos + 4:
        raise _Malformed("content length truncated", pos)
    (size,) = _unpack_u32(data, pos)
    pos += 4
    _fixed(data, pos + size)
    return LogicalMessage(bool(flags & 1), lsn, prefix, data[pos:], xid)


def _stream_start(data: bytes, in_stream: bool) -> StreamStart:
    _fixed(data, 6)
    xid, first = _STREAM_START.unpack_from(data, 1)
    return StreamStart(xid, bool(first))


def _stream_stop(data: bytes, in_stream: bool) -> StreamStop:
    _fixed(data, 1)
    return StreamStop()


def _stream_commit(data: bytes, in_stream: bool) -> StreamCommit:
    _fixed(data, 30)
    xid, flags, lsn, end, ts = _STREAM_COMMIT.unpack_from(data, 1)
    return StreamCommit(xid, flags, lsn, end, ts + _EPOCH)


def _stream_abort(data: bytes, in_stream: bool) -> StreamAbort:
    if len(data) == 9:
        xid, subxid = _unpack_u32_u32(data, 1)
        return StreamAbort(xid, subxid)
    if len(data) == 25:  # protocol 4, streaming = parallel
        xid, subxid, lsn, ts = _STREAM_ABORT_PARALLEL.unpack_from(data, 1)
        return StreamAbort(xid, subxid, lsn, ts + _EPOCH)
    raise _Malformed(f"{len(data)} bytes, 9 or 25 expected", min(len(data), 9))


def _begin_prepare(data: bytes, in_stream: bool) -> BeginPrepare:
    lsn, end, ts, xid = _BEGIN_PREPARE.unpack_from(data, 1)
    gid, pos = _string(data, 1 + _BEGIN_PREPARE.size)
    _done(data, pos)
    return BeginPrepare(lsn, end, ts + _EPOCH, xid, gid)


def _prepare_like(data: bytes) -> tuple[int, int, int, int, int, str]:
    flags, lsn, end, ts, xid = _PREPARE.unpack_from(data, 1)
    gid, pos = _string(data, 1 + _PREPARE.size)
    _done(data, pos)
    return flags, lsn, end, ts + _EPOCH, xid, gid


def _prepare(data: bytes, in_stream: bool) -> Prepare:
    return Prepare(*_prepare_like(data))


def _commit_prepared(data: bytes, in_stream: bool) -> CommitPrepared:
    return CommitPrepared(*_prepare_like(data))


def _stream_prepare(data: bytes, in_stream: bool) -> StreamPrepare:
    return StreamPrepare(*_prepare_like(data))


def _rollback_prepared(data: bytes, in_stream: bool) -> RollbackPrepared:
    flags, prepare_end, rollback_end, prepare_ts, rollback_ts, xid = _ROLLBACK_PREPARED.unpack_from(data, 1)
    gid, pos = _string(data, 1 + _ROLLBACK_PREPARED.size)
    _done(data, pos)
    return RollbackPrepared(flags, prepare_end, rollback_end, prepare_ts + _EPOCH, rollback_ts + _EPOCH, xid, gid)


_DECODERS: Final[dict[int, Callable[[bytes, bool], PgOutputMessage]]] = {
    ord("B"): _begin,
    ord("C"): _commit,
    ord("O"): _origin,
    ord("R"): _relation,
    ord("Y"): _type,
    ord("I"): _insert,
    ord("U"): _update,
    ord("D"): _delete,
    ord("T"): _truncate,
    ord("M"): _message,
    ord("S"): _stream_start,
    ord("E"): _stream_stop,
    ord("c"): _stream_commit,
    ord("A"): _stream_abort,
    ord("b"): _begin_prepare,
    ord("P"): _prepare,
    ord("K"): _commit_prepared,
    ord("r"): _rollback_prepared,
    ord("p"): _stream_prepare,
}
