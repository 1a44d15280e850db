"""The pgoutput decoder against the documented byte formats.

Vectors are built by hand from PostgreSQL's "Streaming Replication Protocol" and "Logical
Replication Message Formats" pages (tag, then big-endian fields; timestamps in µs since
2000-01-01, which the decoder reports since 1970-01-01). A tiny independent encoder below
drives a hypothesis round trip over every message type, and every valid vector is cut at
every length to check that truncation is always a DecodeError naming the message type.
"""

from __future__ import annotations

import struct
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdc.errors import DecodeError
from connectors.postgres import pgoutput as po

EPOCH = 946_684_800_000_000  # µs from 1970-01-01 to 2000-01-01, written out here on purpose


def cstr(s: str) -> bytes:
    return s.encode() + b"\x00"


def i16(n: int) -> bytes:
    return struct.pack(">H", n)


def i32(n: int) -> bytes:
    return struct.pack(">I", n)


def s32(n: int) -> bytes:
    return struct.pack(">i", n)


def i64(n: int) -> bytes:
    return struct.pack(">Q", n)


def ts(unix_us: int) -> bytes:
    return struct.pack(">q", unix_us - EPOCH)


# --------------------------------------------------------------------------- a test-side encoder


def enc_tuple(values: tuple[Any, ...]) -> bytes:
    out = [i16(len(values))]
    for v in values:
        if v is None:
            out.append(b"n")
        elif v is po.UNCHANGED:
            out.append(b"u")
        elif isinstance(v, str):
            b = v.encode()
            out.append(b"t" + i32(len(b)) + b)
        else:
            out.append(b"b" + i32(len(v)) + bytes(v))
    return b"".join(out)


def xid_of(m: Any) -> bytes:
    return b"" if m.xid is None else i32(m.xid)


def encode(m: Any) -> bytes:
    """Encode a decoded message back into pgoutput's wire format (independently of the decoder)."""
    k = type(m)
    if k is po.Begin:
        return b"B" + i64(m.final_lsn) + ts(m.commit_time_us) + i32(m.xid)
    if k is po.Commit:
        return b"C" + bytes([m.flags]) + i64(m.commit_lsn) + i64(m.end_lsn) + ts(m.commit_time_us)
    if k is po.Origin:
        return b"O" + i64(m.commit_lsn) + cstr(m.name)
    if k is po.Relation:
        cols = b"".join(bytes([c.flags]) + cstr(c.name) + i32(c.type_oid) + s32(c.type_modifier) for c in m.columns)
        return (b"R" + xid_of(m) + i32(m.oid) + cstr(m.namespace) + cstr(m.name) + m.replica_identity.encode()
                + i16(len(m.columns)) + cols)
    if k is po.Type:
        return b"Y" + xid_of(m) + i32(m.oid) + cstr(m.namespace) + cstr(m.name)
    if k is po.Insert:
        return b"I" + xid_of(m) + i32(m.relation_oid) + b"N" + enc_tuple(m.new)
    if k is po.Update:
        old = b"K" + enc_tuple(m.key) if m.key is not None else b"O" + enc_tuple(m.old) if m.old is not None else b""
        return b"U" + xid_of(m) + i32(m.relation_oid) + old + b"N" + enc_tuple(m.new)
    if k is po.Delete:
        old = b"K" + enc_tuple(m.key) if m.key is not None else b"O" + enc_tuple(m.old)
        return b"D" + xid_of(m) + i32(m.relation_oid) + old
    if k is po.Truncate:
        return (b"T" + xid_of(m) + i32(len(m.relation_oids)) + bytes([m.options])
                + b"".join(i32(o) for o in m.relation_oids))
    if k is po.LogicalMessage:
        return (b"M" + xid_of(m) + bytes([1 if m.transactional else 0]) + i64(m.lsn) + cstr(m.prefix)
                + i32(len(m.content)) + m.content)
    if k is po.StreamStart:
        return b"S" + i32(m.xid) + bytes([1 if m.first_segment else 0])
    if k is po.StreamStop:
        return b"E"
    if k is po.StreamCommit:
        return b"c" + i32(m.xid) + bytes([m.flags]) + i64(m.commit_lsn) + i64(m.end_lsn) + ts(m.commit_time_us)
    if k is po.StreamAbort:
        tail = b"" if m.abort_lsn is None else i64(m.abort_lsn) + ts(m.abort_time_us)
        return b"A" + i32(m.xid) + i32(m.subxid) + tail
    if k is po.BeginPrepare:
        return b"b" + i64(m.prepare_lsn) + i64(m.end_lsn) + ts(m.prepare_time_us) + i32(m.xid) + cstr(m.gid)
    if k in (po.Prepare, po.StreamPrepare):
        tag = b"P" if k is po.Prepare else b"p"
        return (tag + bytes([m.flags]) + i64(m.prepare_lsn) + i64(m.end_lsn) + ts(m.prepare_time_us) + i32(m.xid)
                + cstr(m.gid))
    if k is po.CommitPrepared:
        return (b"K" + bytes([m.flags]) + i64(m.commit_lsn) + i64(m.end_lsn) + ts(m.commit_time_us) + i32(m.xid)
                + cstr(m.gid))
    if k is po.RollbackPrepared:
        return (b"r" + bytes([m.flags]) + i64(m.prepare_end_lsn) + i64(m.rollback_end_lsn) + ts(m.prepare_time_us)
                + ts(m.rollback_time_us) + i32(m.xid) + cstr(m.gid))
    raise AssertionError(k)


def in_stream(m: Any) -> bool:
    return getattr(m, "xid", None) is not None and type(m) in STREAMABLE


STREAMABLE = (po.Relation, po.Type, po.Insert, po.Update, po.Delete, po.Truncate, po.LogicalMessage)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (NamedTuples compare equal to plain tuples)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# --------------------------------------------------------------------------- copy data framing


def test_xlogdata_framing_from_literal_bytes() -> None:
    raw = (b"w" + bytes.fromhex("000000010000AB00") + bytes.fromhex("000000010000FF00")
           + bytes.fromhex("0000000000000001") + b"Bpayload")
    for data in (raw, memoryview(raw), bytearray(raw)):
        msg = po.decode_copy_data(data)
        assert type(msg) is po.XLogData
        assert msg.start_lsn == 0x1_0000_AB00 and msg.end_lsn == 0x1_0000_FF00
        assert msg.send_time_us == EPOCH + 1
        assert msg.payload == b"Bpayload" and type(msg.payload) is bytes


def test_xlogdata_with_an_empty_payload_and_a_truncated_header() -> None:
    assert po.decode_copy_data(b"w" + bytes(24)).payload == b""
    with pytest.raises(DecodeError, match=r"XLogData.*offset 1"):
        po.decode_copy_data(b"w" + bytes(23))


@pytest.mark.parametrize("flag", [0, 1])
def test_keepalive(flag: int) -> None:
    msg = po.decode_copy_data(b"k" + i64(0x16_B374_D848) + ts(1_700_000_000_000_000) + bytes([flag]))
    assert type(msg) is po.Keepalive
    assert msg == (0x16_B374_D848, 1_700_000_000_000_000, bool(flag))
    assert msg.reply_requested is bool(flag)


@pytest.mark.parametrize("data", [b"", b"k" + bytes(16), b"k" + bytes(18), b"h" + bytes(30), b"r" + bytes(33)])
def test_bad_copy_data_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError, match=r"offset 0|empty"):
        po.decode_copy_data(data)


def test_standby_status_bytes_follow_the_documented_layout() -> None:
    got = po.encode_standby_status(0x10, 0x20, 0x30, reply=True, time_us=EPOCH + 5)
    assert got == b"r" + i64(0x10) + i64(0x20) + i64(0x30) + i64(5) + b"\x01"
    assert len(got) == 34
    assert po.encode_standby_status(1, 2, 3, time_us=EPOCH)[-1] == 0


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1),
       st.integers(-(2**62), 2**62), st.booleans())
def test_standby_status_round_trip(write: int, flush: int, apply: int, now: int, reply: bool) -> None:
    data = po.encode_standby_status(write, flush, apply, reply=reply, time_us=now)
    assert po.decode_standby_status(data) == (write, flush, apply, now, reply)


def test_standby_status_defaults_to_now_and_refuses_bad_lsns() -> None:
    before = time.time_ns() // 1000
    status = po.decode_standby_status(po.encode_standby_status(1, 1, 1))
    after = time.time_ns() // 1000
    assert before <= status.client_time_us <= after and status.reply_requested is False
    with pytest.raises(DecodeError):
        po.encode_standby_status(-1, 0, 0)
    with pytest.raises(DecodeError):
        po.encode_standby_status(2**64, 0, 0)
    with pytest.raises(DecodeError):
        po.decode_standby_status(b"r" + bytes(32))


# --------------------------------------------------------------------------- every message, protocol 1


def test_begin_commit_origin() -> None:
    begin = po.decode_message(b"B" + bytes.fromhex("00000000 0300 0028".replace(" ", ""))
                              + ts(1_700_000_000_123_456) + i32(4_000_000_000))
    assert type(begin) is po.Begin
    assert begin == (0x3000028, 1_700_000_000_123_456, 4_000_000_000)
    assert begin.final_lsn == 0x3000028 and begin.xid == 4_000_000_000

    commit = po.decode_message(b"C\x00" + i64(0x3000028) + i64(0x3000058) + ts(1_700_000_000_123_456))
    assert type(commit) is po.Commit
    assert (commit.flags, commit.commit_lsn, commit.end_lsn, commit.commit_time_us) == (
        0, 0x3000028, 0x3000058, 1_700_000_000_123_456)

    origin = po.decode_message(b"O" + i64(77) + cstr("node_α"))
    assert type(origin) is po.Origin and origin == (77, "node_α")


def test_a_timestamp_before_2000_is_negative_on_the_wire() -> None:
    begin = po.decode_message(b"B" + i64(1) + struct.pack(">q", -1) + i32(1))
    assert begin.commit_time_us == EPOCH - 1


REL_COLS = [
    (1, "id", 23, -1),
    (0, "name", 1043, 68),  # varchar(64): typmod is 64 + 4
    (0, "naïve", 16_384, -1),
]


def relation_bytes(xid: bytes = b"") -> bytes:
    cols = b"".join(bytes([f]) + cstr(n) + i32(t) + s32(m) for f, n, t, m in REL_COLS)
    return b"R" + xid + i32(16_390) + cstr("public") + cstr("orders") + b"f" + i16(3) + cols


def test_relation() -> None:
    rel = po.decode_message(relation_bytes())
    assert type(rel) is po.Relation
    assert (rel.oid, rel.namespace, rel.name, rel.replica_identity, rel.xid) == (16_390, "public", "orders", "f", None)
    assert [tuple(c) for c in rel.columns] == REL_COLS
    assert all(type(c) is po.RelationColumn for c in rel.columns)
    assert [c.key for c in rel.columns] == [True, False, False]
    assert rel.columns[1].type_modifier == 68 and rel.columns[0].type_modifier == -1


def test_relation_in_pg_catalog_has_an_empty_namespace_and_may_have_no_columns() -> None:
    rel = po.decode_message(b"R" + i32(5) + cstr("") + cstr("t") + b"d" + i16(0))
    assert rel == (5, "", "t", "d", (), None)


def test_type() -> None:
    typ = po.decode_message(b"Y" + i32(16_400) + cstr("public") + cstr("mood"))
    assert type(typ) is po.Type and typ == (16_400, "public", "mood", None)


TUPLE = b"".join([
    i16(6),
    b"t" + i32(2) + b"42",
    b"n",
    b"u",
    b"t" + i32(0),
    b"t" + i32(6) + "héé".encode()[:6].ljust(6, b"!"),
    b"b" + i32(3) + b"\x00\xff\x10",
])
TUPLE_VALUES = ("42", None, po.UNCHANGED, "", "héé!", b"\x00\xff\x10")


def test_insert_with_every_tuple_kind() -> None:
    msg = po.decode_message(b"I" + i32(16_390) + b"N" + TUPLE)
    assert type(msg) is po.Insert
    assert msg.relation_oid == 16_390 and msg.xid is None
    assert msg.new == TUPLE_VALUES
    assert type(msg.new) is tuple and msg.new[2] is po.UNCHANGED and type(msg.new[5]) is bytes
    assert po.UNCHANGED in msg.new and repr(po.UNCHANGED) == "UNCHANGED"


def test_update_variants() -> None:
    new = enc_tuple(("1", "b"))
    plain = po.decode_message(b"U" + i32(7) + b"N" + new)
    assert type(plain) is po.Update and plain == (7, None, None, ("1", "b"), None)
    keyed = po.decode_message(b"U" + i32(7) + b"K" + enc_tuple(("0", None)) + b"N" + new)
    assert (keyed.key, keyed.old, keyed.new) == (("0", None), None, ("1", "b"))
    full = po.decode_message(b"U" + i32(7) + b"O" + enc_tuple(("1", "a")) + b"N" + enc_tuple(("1", po.UNCHANGED)))
    assert (full.key, full.old, full.new) == (None, ("1", "a"), ("1", po.UNCHANGED))


def test_delete_variants() -> None:
    keyed = po.decode_message(b"D" + i32(9) + b"K" + enc_tuple(("5", None)))
    assert type(keyed) is po.Delete and keyed == (9, ("5", None), None, None)
    full = po.decode_message(b"D" + i32(9) + b"O" + enc_tuple(("5", "x")))
    assert (full.key, full.old) == (None, ("5", "x"))


@pytest.mark.parametrize(("options", "cascade", "restart"), [(0, False, False), (1, True, False), (2, False, True),
                                                              (3, True, True)])
def test_truncate(options: int, cascade: bool, restart: bool) -> None:
    msg = po.decode_message(b"T" + i32(2) + bytes([options]) + i32(16_390) + i32(4_294_967_295))
    assert type(msg) is po.Truncate
    assert msg.relation_oids == (16_390, 4_294_967_295) and msg.options == options
    assert (msg.cascade, msg.restart_identity) == (cascade, restart)


@pytest.mark.parametrize("flags", [0, 1])
def test_logical_message(flags: int) -> None:
    content = b"cdc\x00slot\xff"
    msg = po.decode_message(b"M" + bytes([flags]) + i64(0x99) + cstr("cdc_heartbeat") + i32(len(content)) + content)
    assert type(msg) is po.LogicalMessage and po.Message is po.LogicalMessage
    assert msg == (bool(flags), 0x99, "cdc_heartbeat", content, None)
    assert msg.transactional is bool(flags) and type(msg.content) is bytes


# --------------------------------------------------------------------------- protocol 2: streaming


def test_stream_control_messages() -> None:
    start = po.decode_message(b"S" + i32(900) + b"\x01")
    assert type(start) is po.StreamStart and start == (900, True) and start.first_segment is True
    assert po.decode_message(b"S" + i32(900) + b"\x00").first_segment is False
    stop = po.decode_message(b"E")
    assert type(stop) is po.StreamStop
    commit = po.decode_message(b"c" + i32(900) + b"\x00" + i64(0x500) + i64(0x530) + ts(EPOCH + 10))
    assert type(commit) is po.StreamCommit and commit == (900, 0, 0x500, 0x530, EPOCH + 10)
    abort = po.decode_message(b"A" + i32(900) + i32(901))
    assert type(abort) is po.StreamAbort and abort == (900, 901, None, None)
    parallel = po.decode_message(b"A" + i32(900) + i32(900) + i64(0x600) + ts(EPOCH + 20))
    assert parallel == (900, 900, 0x600, EPOCH + 20)
    # Stream messages read the same with in_stream (they always carry their xid)
    assert po.decode_message(b"S" + i32(900) + b"\x01", in_stream=True) == start
    assert type(po.decode_message(b"E", in_stream=True)) is po.StreamStop


def test_messages_inside_a_stream_carry_the_subtransaction_id() -> None:
    xid = i32(901)
    rel = po.decode_message(relation_bytes(xid), in_stream=True)
    assert rel.xid == 901 and rel.oid == 16_390 and len(rel.columns) == 3
    assert po.decode_message(b"Y" + xid + i32(1) + cstr("s") + cstr("t"), in_stream=True) == (1, "s", "t", 901)
    ins = po.decode_message(b"I" + xid + i32(16_390) + b"N" + TUPLE, in_stream=True)
    assert type(ins) is po.Insert and ins == (16_390, TUPLE_VALUES, 901)
    upd = po.decode_message(b"U" + xid + i32(3) + b"O" + enc_tuple(("a",)) + b"N" + enc_tuple(("b",)),
                            in_stream=True)
    assert upd == (3, None, ("a",), ("b",), 901)
    dele = po.decode_message(b"D" + xid + i32(3) + b"K" + enc_tuple(("a",)), in_stream=True)
    assert dele == (3, ("a",), None, 901)
    trunc = po.decode_message(b"T" + xid + i32(1) + b"\x01" + i32(3), in_stream=True)
    assert trunc == (1, (3,), 901)
    msg = po.decode_message(b"M" + xid + b"\x01" + i64(5) + cstr("p") + i32(1) + b"x", in_stream=True)
    assert msg == (True, 5, "p", b"x", 901)
    # Begin/Commit/Origin have no xid prefix inside or outside a stream
    assert po.decode_message(b"O" + i64(77) + cstr("n"), in_stream=True) == (77, "n")


def test_a_stream_message_read_without_in_stream_is_refused() -> None:
    # xid 901 read as the relation id leaves the oid's bytes where 'N' should be
    with pytest.raises(DecodeError, match="Insert"):
        po.decode_message(b"I" + i32(901) + i32(16_390) + b"N" + TUPLE)


# --------------------------------------------------------------------------- protocol 3: two-phase


def test_two_phase_messages() -> None:
    t = EPOCH + 1_000
    bp = po.decode_message(b"b" + i64(1) + i64(2) + ts(t) + i32(3) + cstr("gid-1"))
    assert type(bp) is po.BeginPrepare and bp == (1, 2, t, 3, "gid-1")
    p = po.decode_message(b"P\x00" + i64(1) + i64(2) + ts(t) + i32(3) + cstr("gid-1"))
    assert type(p) is po.Prepare and p == (0, 1, 2, t, 3, "gid-1")
    k = po.decode_message(b"K\x00" + i64(4) + i64(5) + ts(t) + i32(3) + cstr("gid-1"))
    assert type(k) is po.CommitPrepared and k == (0, 4, 5, t, 3, "gid-1")
    r = po.decode_message(b"r\x00" + i64(2) + i64(6) + ts(t) + ts(t + 1) + i32(3) + cstr("gid-1"))
    assert type(r) is po.RollbackPrepared and r == (0, 2, 6, t, t + 1, 3, "gid-1")
    sp = po.decode_message(b"p\x00" + i64(1) + i64(2) + ts(t) + i32(3) + cstr(""))
    assert type(sp) is po.StreamPrepare and sp == (0, 1, 2, t, 3, "")


# --------------------------------------------------------------------------- malformed input

VALID: list[tuple[bytes, bool]] = [
    (b"B" + i64(1) + ts(EPOCH) + i32(2), False),
    (b"C\x00" + i64(1) + i64(2) + ts(EPOCH), False),
    (b"O" + i64(1) + cstr("origin"), False),
    (relation_bytes(), False),
    (relation_bytes(i32(7)), True),
    (b"Y" + i32(1) + cstr("public") + cstr("mood"), False),
    (b"I" + i32(1) + b"N" + TUPLE, False),
    (b"I" + i32(7) + i32(1) + b"N" + TUPLE, True),
    (b"U" + i32(1) + b"K" + enc_tuple(("1",)) + b"N" + TUPLE, False),
    (b"U" + i32(1) + b"O" + TUPLE + b"N" + TUPLE, False),
    (b"U" + i32(7) + i32(1) + b"N" + TUPLE, True),
    (b"D" + i32(1) + b"O" + TUPLE, False),
    (b"D" + i32(7) + i32(1) + b"K" + TUPLE, True),
    (b"T" + i32(2) + b"\x00" + i32(1) + i32(2), False),
    (b"M\x01" + i64(1) + cstr("p") + i32(3) + b"abc", False),
    (b"M" + i32(7) + b"\x01" + i64(1) + cstr("p") + i32(3) + b"abc", True),
    (b"S" + i32(1) + b"\x01", False),
    (b"c" + i32(1) + b"\x00" + i64(1) + i64(2) + ts(EPOCH), False),
    (b"A" + i32(1) + i32(2), False),
    (b"b" + i64(1) + i64(2) + ts(EPOCH) + i32(3) + cstr("g"), False),
    (b"P\x00" + i64(1) + i64(2) + ts(EPOCH) + i32(3) + cstr("g"), False),
    (b"K\x00" + i64(1) + i64(2) + ts(EPOCH) + i32(3) + cstr("g"), False),
    (b"r\x00" + i64(1) + i64(2) + ts(EPOCH) + ts(EPOCH) + i32(3) + cstr("g"), False),
    (b"p\x00" + i64(1) + i64(2) + ts(EPOCH) + i32(3) + cstr("g"), False),
]
NAMES = {"B": "Begin", "C": "Commit", "O": "Origin", "R": "Relation", "Y": "Type", "I": "Insert", "U": "Update",
         "D": "Delete", "T": "Truncate", "M": "Message", "S": "Stream Start", "c": "Stream Commit",
         "A": "Stream Abort", "b": "Begin Prepare", "P": "Prepare", "K": "Commit Prepared",
         "r": "Rollback Prepared", "p": "Stream Prepare"}


@pytest.mark.parametrize(("data", "stream"), VALID, ids=[f"{d[:1].decode()}-{s}" for d, s in VALID])
def test_every_truncation_and_any_trailing_byte_is_a_decode_error(data: bytes, stream: bool) -> None:
    po.decode_message(data, in_stream=stream)  # the whole message is valid
    name = NAMES[data[:1].decode()]
    for cut in range(1, len(data)):
        with pytest.raises(DecodeError, match=f"malformed pgoutput {name} message.*offset \\d+"):
            po.decode_message(data[:cut], in_stream=stream)
    with pytest.raises(DecodeError, match=f"{name} message: .*(trailing|expected)"):
        po.decode_message(data + b"\x00", in_stream=stream)


@pytest.mark.parametrize("data", [b"", b"Z", b"\x00", b"w" + bytes(8)])
def test_unknown_or_empty_messages_are_decode_errors(data: bytes) -> None:
    with pytest.raises(DecodeError, match=r"unknown pgoutput message type|empty"):
        po.decode_message(data)


def test_tuple_faults_name_the_column_and_offset_but_never_the_value() -> None:
    secret = b"hunter2"
    bad_kind = b"I" + i32(1) + b"N" + i16(2) + b"t" + i32(7) + secret + b"x"
    with pytest.raises(DecodeError, match=r"Insert message: unknown tuple value kind 'x' in column 1 at offset 20"):
        po.decode_message(bad_kind)
    bad_utf8 = b"I" + i32(1) + b"N" + i16(1) + b"t" + i32(8) + secret + b"\xff"
    with pytest.raises(DecodeError, match="column 0 is not valid UTF-8 at offset 8") as info:
        po.decode_message(bad_utf8)
    assert "hunter2" not in str(info.value)
    overrun = b"I" + i32(1) + b"N" + i16(2) + b"t" + i32(70) + secret + b"n"
    with pytest.raises(DecodeError, match="value of column 0 runs past the end") as info:
        po.decode_message(overrun)
    assert "hunter2" not in str(info.value)
    missing = b"I" + i32(1) + b"N" + i16(3) + b"n" + b"n"
    with pytest.raises(DecodeError, match="truncated before column 2 of 3 at offset 10"):
        po.decode_message(missing)
    huge = b"I" + i32(1) + b"N" + i16(1) + b"b" + i32(0xFFFFFFFF) + secret
    with pytest.raises(DecodeError, match="runs past the end"):
        po.decode_message(huge)


def test_structural_faults() -> None:
    with pytest.raises(DecodeError, match="Insert message: expected 'N'"):
        po.decode_message(b"I" + i32(1) + b"X" + enc_tuple(()))
    with pytest.raises(DecodeError, match="Update message: expected 'K', 'O' or 'N'"):
        po.decode_message(b"U" + i32(1) + b"Q" + enc_tuple(()))
    with pytest.raises(DecodeError, match="Update message: expected 'K', 'O' or 'N'"):
        po.decode_message(b"U" + i32(1) + b"K" + enc_tuple(()) + b"K" + enc_tuple(()))
    with pytest.raises(DecodeError, match="Delete message: expected 'K' or 'O'"):
        po.decode_message(b"D" + i32(1) + b"N" + enc_tuple(()))
    with pytest.raises(DecodeError, match="Relation message: string is not valid UTF-8"):
        po.decode_message(b"R" + i32(1) + b"\xff\x00" + cstr("t") + b"d" + i16(0))
    with pytest.raises(DecodeError, match="Stream Abort message: 13 bytes, 9 or 25 expected"):
        po.decode_message(b"A" + i32(1) + i32(2) + i32(3))
    with pytest.raises(DecodeError, match="Stream Stop"):
        po.decode_message(b"E\x00")


# --------------------------------------------------------------------------- hypothesis round trip

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
times = st.integers(-(2**62), 2**62)
names = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20)
value = st.one_of(st.none(), st.just(po.UNCHANGED), st.text(max_size=30), st.binary(max_size=30))
rows = st.lists(value, max_size=12).map(tuple)
xids = st.one_of(st.none(), u32)
flags8 = st.integers(0, 255)

messages = st.one_of(
    st.builds(po.Begin, u64, times, u32),
    st.builds(po.Commit, flags8, u64, u64, times),
    st.builds(po.Origin, u64, names),
    st.builds(po.Relation, u32, names, names, st.sampled_from("dnfi"),
              st.lists(st.builds(po.RelationColumn, flags8, names, u32, st.integers(-(2**31), 2**31 - 1)),
                       max_size=8).map(tuple), xids),
    st.builds(po.Type, u32, names, names, xids),
    st.builds(po.Insert, u32, rows, xids),
    st.one_of(
        st.builds(po.Update, u32, st.none(), st.none(), rows, xids),
        st.builds(po.Update, u32, rows, st.none(), rows, xids),
        st.builds(po.Update, u32, st.none(), rows, rows, xids),
    ),
    st.one_of(st.builds(po.Delete, u32, rows, st.none(), xids), st.builds(po.Delete, u32, st.none(), rows, xids)),
    st.builds(po.Truncate, st.integers(0, 3), st.lists(u32, max_size=6).map(tuple), xids),
    st.builds(po.LogicalMessage, st.booleans(), u64, names, st.binary(max_size=40), xids),
    st.builds(po.StreamStart, u32, st.booleans()),
    st.just(po.StreamStop()),
    st.builds(po.StreamCommit, u32, flags8, u64, u64, times),
    # (st.builds would fill the optional fields from their annotations: build explicitly)
    st.tuples(u32, u32).map(lambda t: po.StreamAbort(*t)),
    st.tuples(u32, u32, u64, times).map(lambda t: po.StreamAbort(*t)),
    st.builds(po.BeginPrepare, u64, u64, times, u32, names),
    st.builds(po.Prepare, flags8, u64, u64, times, u32, names),
    st.builds(po.CommitPrepared, flags8, u64, u64, times, u32, names),
    st.builds(po.RollbackPrepared, flags8, u64, u64, times, times, u32, names),
    st.builds(po.StreamPrepare, flags8, u64, u64, times, u32, names),
)


@given(messages)
def test_round_trip(msg: Any) -> None:
    data = encode(msg)
    got = po.decode_message(data, in_stream=in_stream(msg))
    assert same(got, msg), (got, msg)
    assert same(po.decode_message(memoryview(data), in_stream=in_stream(msg)), msg)


@given(u64, u64, times, st.binary(max_size=200))
def test_xlogdata_round_trip(start: int, end: int, sent: int, payload: bytes) -> None:
    msg = po.decode_copy_data(b"w" + i64(start) + i64(end) + ts(sent) + payload)
    assert same(msg, po.XLogData(start, end, sent, payload))


@given(messages, st.integers(0, 400))
def test_truncated_messages_never_decode_to_something_else(msg: Any, cut: int) -> None:
    data = encode(msg)
    if cut >= len(data) or cut == 0:
        return
    if type(msg) is po.StreamAbort and cut == 9:
        return  # protocol 4's Stream Abort cut after the xids is a valid protocol 2 Stream Abort
    with pytest.raises(DecodeError):
        po.decode_message(data[:cut], in_stream=in_stream(msg))
