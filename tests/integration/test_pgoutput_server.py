"""The pgoutput decoder against what a real PostgreSQL writes.

A publication and a logical slot are read with ``pg_logical_slot_peek_binary_changes`` (peeking
does not consume, so one slot is read with several option sets): protocol 1 in text and binary
format, and protocol 2 with ``streaming`` on and ``logical_decoding_work_mem`` at its 64 kB
minimum so that big transactions arrive in stream segments (with a subtransaction rolled back
inside one and a whole streamed transaction rolled back). Every message is decoded, and the
decoded Relation/Type/Origin/Insert/Update/Delete/Truncate/Message contents are compared with
what was executed. A second test reads the walsender's own COPY BOTH stream to check the
XLogData/keepalive framing and the standby status update.
"""

from __future__ import annotations

import select
import time
from collections import defaultdict
from typing import Any

from conftest import unique
from psycopg import sql

from cdc.positions import parse_lsn
from connectors.postgres import pgoutput as po

BIG = 2000  # rows of the streamed transactions (each ~200 bytes: far above 64 kB)


def _peek(conn: Any, slot: str, pub: str, proto: int, *options: str) -> list[tuple[int, int, Any, bytes]]:
    """Every message in the slot as ``(lsn, xid, decoded, raw)``; stream messages decoded with in_stream."""
    opts = ["proto_version", str(proto), "publication_names", pub, "messages", "true", *options]
    rows = conn.execute(
        "SELECT lsn::text, xid::text::bigint, data FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, "
        + ", ".join(["%s"] * len(opts)) + ")",
        (slot, *opts),
    ).fetchall()
    out = []
    in_stream = False
    for lsn, xid, data in rows:
        raw = bytes(data)
        msg = po.decode_message(raw, in_stream=in_stream and raw[:1] not in (b"S", b"E", b"c", b"A", b"O"))
        if type(msg) is po.StreamStart:
            in_stream = True
        elif type(msg) is po.StreamStop:
            in_stream = False
        out.append((parse_lsn(lsn), int(xid), msg, raw))
    return out


def _transactions(msgs: list[tuple[int, int, Any, bytes]]) -> list[tuple[Any, list[Any], Any]]:
    """Non-streamed transactions: ``(begin, messages between, commit)``, checking their framing."""
    txns = []
    current: list[Any] | None = None
    begin = None
    for lsn, xid, msg, _ in msgs:
        if type(msg) is po.Begin:
            assert current is None
            assert msg.xid == xid
            begin, current = msg, []
        elif type(msg) is po.Commit:
            assert current is not None and begin is not None
            assert msg.commit_lsn == begin.final_lsn and msg.end_lsn == lsn > msg.commit_lsn
            assert msg.commit_time_us == begin.commit_time_us
            txns.append((begin, current, msg))
            current = None
        elif current is not None:
            current.append(msg)
    assert current is None
    return txns


def _workload(conn: Any, origin: str) -> dict[str, Any]:
    """Run the workload; returns what the checks need to know (oids, values)."""
    big = "".join(f"{i:04d}" for i in range(2000))  # 8000 bytes, stored out of line (EXTERNAL: not compressed)
    with conn.transaction():
        conn.execute("INSERT INTO t1 (id, name, data, amount, mood, big) VALUES "
                     "(1, 'ann', '\\x00ff'::bytea, 12.5, 'happy', 'small'), "
                     "(2, 'zoë 🎉', NULL, NULL, NULL, NULL), (3, '', '\\x'::bytea, -0.01, 'sad', %s)", (big,))
    conn.execute("UPDATE t1 SET name = 'bob' WHERE id = 1")
    conn.execute("UPDATE t1 SET id = 20 WHERE id = 2")
    conn.execute("UPDATE t1 SET name = 'still big' WHERE id = 3")  # big is not sent: unchanged TOAST
    conn.execute("DELETE FROM t1 WHERE id = 1")
    conn.execute("INSERT INTO t2 (v) VALUES ('x'), ('y')")
    conn.execute("UPDATE t2 SET v = 'x2' WHERE v = 'x'")
    conn.execute("DELETE FROM t2 WHERE v = 'y'")
    conn.execute("TRUNCATE t2 RESTART IDENTITY")
    with conn.transaction():
        conn.execute("SELECT pg_logical_emit_message(true, 'cdc_test', 'in a transaction')")
        conn.execute("INSERT INTO t2 (v) VALUES ('with message')")
    conn.execute("SELECT pg_logical_emit_message(false, 'cdc_test', '\\x00010203'::bytea)")
    # a transaction replicated from elsewhere: it carries an origin
    conn.execute("SELECT pg_replication_origin_session_setup(%s)", (origin,))
    try:
        with conn.transaction():
            conn.execute("SELECT pg_replication_origin_xact_setup('0/ABCDEF', now())")
            conn.execute("INSERT INTO t2 (v) VALUES ('from origin')")
    finally:
        conn.execute("SELECT pg_replication_origin_session_reset()")
    # a big transaction (streamed under protocol 2) with a subtransaction rolled back in the middle
    with conn.transaction():
        conn.execute("INSERT INTO t3 SELECT g, repeat('p', 200) FROM generate_series(1, %s::int) g", (BIG,))
        conn.execute("SAVEPOINT s1")
        conn.execute("INSERT INTO t3 SELECT g, repeat('q', 200) FROM generate_series(%s::int, %s::int) g",
                     (BIG + 1, 2 * BIG))
        conn.execute("ROLLBACK TO SAVEPOINT s1")
        conn.execute("INSERT INTO t3 VALUES (%s::int, 'last')", (3 * BIG,))
    # a big transaction rolled back whole
    conn.execute("BEGIN")
    conn.execute("INSERT INTO t3 SELECT g, repeat('r', 200) FROM generate_series(%s::int, %s::int) g",
                 (4 * BIG, 5 * BIG))
    conn.execute("ROLLBACK")
    # an abort does not flush WAL, and the slot functions read only flushed WAL: commit something
    conn.execute("CREATE TABLE flushed (id int)")  # (DDL: pgoutput sends nothing for it)
    oids = {name: conn.execute("SELECT %s::regclass::oid", (name,)).fetchone()[0] for name in ("t1", "t2", "t3")}
    mood = conn.execute("SELECT 'mood'::regtype::oid").fetchone()[0]
    return {"oids": oids, "mood": mood, "big": big, "origin": origin}


def test_decoder_reads_everything_a_real_server_writes(pg_db) -> None:
    slot, pub, origin = unique("slot"), unique("pub"), unique("origin")
    conn = pg_db.connect()
    started = time.time()
    try:
        conn.execute("CREATE TYPE mood AS ENUM ('happy', 'sad')")
        conn.execute("CREATE TABLE t1 (id int PRIMARY KEY, name varchar(64) NOT NULL, data bytea, "
                     "amount numeric(10,2), mood mood, big text)")
        conn.execute("ALTER TABLE t1 ALTER COLUMN big SET STORAGE EXTERNAL")
        conn.execute("CREATE TABLE t2 (id serial PRIMARY KEY, v text)")
        conn.execute("ALTER TABLE t2 REPLICA IDENTITY FULL")
        conn.execute("CREATE TABLE t3 (id int PRIMARY KEY, pad text)")
        conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE t1, t2, t3").format(sql.Identifier(pub)))
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        conn.execute("SELECT pg_replication_origin_create(%s)", (origin,))
        info = _workload(conn, origin)
        conn.execute("SET logical_decoding_work_mem = '64kB'")
        v1 = _peek(conn, slot, pub, 1)
        v1_binary = _peek(conn, slot, pub, 1, "binary", "true")
        v2 = _peek(conn, slot, pub, 2, "streaming", "on")
        _check_protocol_1(v1, info, started)
        _check_binary(v1_binary)
        _check_streaming(v2, v1, info)
    finally:
        conn.execute("SELECT pg_replication_origin_session_reset() WHERE pg_replication_origin_session_is_setup()")
        conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                     (slot,))
        conn.execute("SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = %s",
                     (origin,))
        conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(pub)))
        conn.close()


def _check_protocol_1(msgs: list[tuple[int, int, Any, bytes]], info: dict[str, Any], started: float) -> None:
    oids, big = info["oids"], info["big"]
    kinds = {type(m) for _, _, m, _ in msgs}
    assert not kinds & {po.StreamStart, po.StreamStop, po.StreamCommit, po.StreamAbort}
    # the non-transactional message comes alone, outside any transaction
    loose = [m for _, _, m, _ in msgs if type(m) is po.LogicalMessage and not m.transactional]
    assert [(m.prefix, m.content, m.xid) for m in loose] == [("cdc_test", b"\x00\x01\x02\x03", None)]

    txns = _transactions(msgs)
    for begin, _, _ in txns:
        assert started - 60 < begin.commit_time_us / 1e6 < time.time() + 60  # Unix epoch µs
    bodies = [body for _, body, _ in txns]
    # 12 transactions: the rolled-back one and those touching no published table send nothing
    assert len(bodies) == 12, [[type(m).__name__ for m in b] for b in bodies]

    # 1: the Type of the enum column, the Relation, three inserts
    typ, rel, *inserts = bodies[0]
    assert type(typ) is po.Type and (typ.oid, typ.namespace, typ.name) == (info["mood"], "public", "mood")
    assert type(rel) is po.Relation
    assert (rel.oid, rel.namespace, rel.name, rel.replica_identity) == (oids["t1"], "public", "t1", "d")
    assert [(c.name, c.key, c.type_oid, c.type_modifier) for c in rel.columns] == [
        ("id", True, 23, -1), ("name", False, 1043, 68), ("data", False, 17, -1),
        ("amount", False, 1700, (10 << 16 | 2) + 4), ("mood", False, info["mood"], -1), ("big", False, 25, -1)]
    assert all(type(m) is po.Insert and m.relation_oid == oids["t1"] for m in inserts)
    assert [m.new for m in inserts] == [
        ("1", "ann", "\\x00ff", "12.50", "happy", "small"),
        ("2", "zoë 🎉", None, None, None, None),
        ("3", "", "\\x", "-0.01", "sad", big),
    ]
    # 2-5: updates (plain, key changed, unchanged TOAST) and a delete by key
    (u1,), (u2,), (u3,), (d1,) = bodies[1:5]
    assert type(u1) is po.Update and (u1.key, u1.old) == (None, None)
    assert u1.new == ("1", "bob", "\\x00ff", "12.50", "happy", "small")
    assert u2.key == ("2", None, None, None, None, None) and u2.old is None
    assert u2.new == ("20", "zoë 🎉", None, None, None, None)
    assert u3.new == ("3", "still big", "\\x", "-0.01", "sad", po.UNCHANGED) and u3.key is None
    assert type(d1) is po.Delete and d1.key == ("1", None, None, None, None, None) and d1.old is None
    # 6-9: REPLICA IDENTITY FULL: old tuples whole; truncate with RESTART IDENTITY
    rel2, i1, i2 = bodies[5]
    assert type(rel2) is po.Relation and rel2.replica_identity == "f" and rel2.oid == oids["t2"]
    assert [c.key for c in rel2.columns] == [True, True]  # under FULL every column identifies the row
    assert (i1.new, i2.new) == (("1", "x"), ("2", "y"))
    (u4,), (d2,), (rel2_again, tr) = bodies[6:9]
    assert _same(rel2_again, rel2)  # TRUNCATE invalidated the relation: the server sends it again
    assert (u4.key, u4.old, u4.new) == (None, ("1", "x"), ("1", "x2"))
    assert (d2.key, d2.old) == (None, ("2", "y"))
    assert type(tr) is po.Truncate and tr.relation_oids == (oids["t2"],)
    assert tr.restart_identity and not tr.cascade
    # 10: a transactional message inside the transaction
    msg, ins = _without(bodies[9], rel2)
    assert type(msg) is po.LogicalMessage and msg.transactional
    assert (msg.prefix, msg.content) == ("cdc_test", b"in a transaction") and msg.lsn < txns[9][0].final_lsn
    assert ins.new == ("1", "with message")
    # 11: the transaction from a replication origin
    org, ins = _without(bodies[10], rel2)
    assert type(org) is po.Origin and (org.commit_lsn, org.name) == (0xABCDEF, info["origin"])
    assert ins.new == ("2", "from origin")
    # 12: the big transaction, without its rolled-back subtransaction
    rel3, *rows = bodies[11]
    assert type(rel3) is po.Relation and rel3.name == "t3"
    assert [int(m.new[0]) for m in rows] == [*range(1, BIG + 1), 3 * BIG]
    assert all(m.new[1] == "p" * 200 for m in rows[:-1]) and rows[-1].new[1] == "last"


def _without(body: list[Any], relation: Any) -> list[Any]:
    """``body`` without resent copies of ``relation`` (the server may resend it after an invalidation)."""
    assert all(_same(m, relation) for m in body if type(m) is po.Relation)
    return [m for m in body if type(m) is not po.Relation]


def _check_binary(msgs: list[tuple[int, int, Any, bytes]]) -> None:
    bodies = [body for _, body, _ in _transactions(msgs)]
    inserts = [m for m in bodies[0] if type(m) is po.Insert]
    first = inserts[0].new
    assert first[0] == (1).to_bytes(4, "big")  # int4 in its binary send format
    assert first[1] == b"ann" and first[2] == b"\x00\xff"  # varchar and bytea send their bytes
    assert all(type(v) is bytes for v in first)
    assert inserts[1].new[2:] == (None, None, None, None)
    (u3,) = bodies[3]
    assert u3.new[5] is po.UNCHANGED


def _check_streaming(msgs: list[tuple[int, int, Any, bytes]], v1: list[tuple[int, int, Any, bytes]],
                     info: dict[str, Any]) -> None:
    kinds = [type(m) for _, _, m, _ in msgs]
    starts = [m for _, _, m, _ in msgs if type(m) is po.StreamStart]
    assert len(starts) >= 4, "the big transactions were not streamed"
    assert kinds.count(po.StreamStart) == kinds.count(po.StreamStop)
    # per streamed transaction: segments, changes by subtransaction, aborts, commit
    changes: dict[int, list[Any]] = defaultdict(list)
    aborted: dict[int, set[int]] = defaultdict(set)
    commits: dict[int, Any] = {}
    firsts: dict[int, int] = defaultdict(int)
    started: set[int] = set()
    current = None
    for _, _, m, raw in msgs:
        k = type(m)
        if k is po.StreamStart:
            assert current is None
            current = m.xid
            firsts[m.xid] += m.first_segment
            assert m.first_segment == (m.xid not in started)
            started.add(m.xid)
        elif k is po.StreamStop:
            current = None
        elif current is not None:
            assert m.xid is not None, "a message inside a stream segment carries its transaction id"
            assert int.from_bytes(raw[1:5], "big") == m.xid
            changes[current].append(m)
        elif k is po.StreamAbort:
            aborted[m.xid].add(m.subxid)
        elif k is po.StreamCommit:
            commits[m.xid] = m
    assert all(n == 1 for n in firsts.values())
    assert len(changes) == 2
    committed = [x for x in changes if x in commits]
    rolled_back = [x for x in changes if x not in commits]
    assert len(committed) == 1 and len(rolled_back) == 1
    # the whole-transaction abort names the transaction itself
    assert rolled_back[0] in aborted[rolled_back[0]]
    # the committed one: its subtransaction was aborted; what survives equals protocol 1's content
    xid = committed[0]
    subs = aborted[xid] - {xid}
    assert len(subs) == 1
    kept = [m for m in changes[xid] if type(m) is po.Insert and m.xid not in subs]
    dropped = [m for m in changes[xid] if type(m) is po.Insert and m.xid in subs]
    assert [int(m.new[0]) for m in kept] == [*range(1, BIG + 1), 3 * BIG]
    assert {m.new[1] for m in dropped} == {"q" * 200} and len(dropped) <= BIG
    assert any(type(m) is po.Relation and m.oid == info["oids"]["t3"] for m in changes[xid])
    commit = commits[xid]
    v1_commit = next(body for body in _transactions(v1) if body[1] and getattr(body[1][0], "name", "") == "t3")[2]
    assert (commit.commit_lsn, commit.end_lsn, commit.commit_time_us) == (
        v1_commit.commit_lsn, v1_commit.end_lsn, v1_commit.commit_time_us)
    # the transactions that were not streamed read the same under both protocols, types included
    small_v2 = _transactions(msgs)
    small_v1 = [t for t in _transactions(v1) if not (t[1] and getattr(t[1][0], "name", "") == "t3")]
    assert len(small_v2) == len(small_v1) == 11
    assert all(_same(a, b) for a, b in zip(small_v2, small_v1, strict=True))


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (NamedTuples compare equal to plain tuples)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def test_walsender_framing_keepalive_and_standby_status(pg_db) -> None:
    """XLogData and keepalives straight from START_REPLICATION, and a status update asking for a reply."""
    import psycopg
    from psycopg import pq

    slot, pub = unique("slot"), unique("pub")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
        conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE items").format(sql.Identifier(pub)))
    repl = psycopg.connect(pg_db.url, replication="database", autocommit=True)
    try:
        repl.execute(sql.SQL("CREATE_REPLICATION_SLOT {} TEMPORARY LOGICAL pgoutput").format(sql.Identifier(slot)))
        with pg_db.connect() as conn:
            conn.execute("INSERT INTO items VALUES (1, 'a'), (2, NULL)")
        pgconn = repl.pgconn
        query = sql.SQL("START_REPLICATION SLOT {} LOGICAL 0/0 (proto_version '1', publication_names {})").format(
            sql.Identifier(slot), sql.Literal(pub))
        pgconn.send_query(query.as_bytes(repl))
        res = pgconn.get_result()
        assert res is not None and res.status == pq.ExecStatus.COPY_BOTH
        pgconn.nonblocking = 1

        def read(timeout_s: float = 20.0) -> Any:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                n, data = pgconn.get_copy_data(1)
                if n > 0:
                    return po.decode_copy_data(data)
                assert n == 0, pgconn.error_message
                select.select([pgconn.socket], [], [], 0.2)
                pgconn.consume_input()
            raise AssertionError("nothing arrived in time")

        decoded: list[Any] = []
        last_w = None
        while not decoded or type(decoded[-1]) is not po.Commit:
            msg = read()
            if type(msg) is po.XLogData:
                assert msg.end_lsn >= msg.start_lsn
                assert abs(msg.send_time_us / 1e6 - time.time()) < 600
                decoded.append(po.decode_message(msg.payload))
                last_w = msg
            else:
                assert type(msg) is po.Keepalive
        assert [type(m) for m in decoded] == [po.Begin, po.Relation, po.Insert, po.Insert, po.Commit]
        assert [m.new for m in decoded[2:4]] == [("1", "a"), ("2", None)]
        assert last_w is not None and last_w.start_lsn == decoded[-1].end_lsn
        # confirm the commit and ask for an immediate reply: the server answers with a keepalive
        end = decoded[-1].end_lsn
        pgconn.put_copy_data(po.encode_standby_status(end, end, end, reply=True))
        pgconn.flush()
        deadline = time.monotonic() + 20
        while True:
            msg = read()
            if type(msg) is po.Keepalive:
                assert msg.end_lsn >= end and abs(msg.send_time_us / 1e6 - time.time()) < 600
                break
            assert time.monotonic() < deadline
        # the server took the flush position
        with pg_db.connect() as conn:
            for _ in range(100):
                confirmed = conn.execute("SELECT confirmed_flush_lsn::text FROM pg_replication_slots "
                                         "WHERE slot_name = %s", (slot,)).fetchone()[0]
                if parse_lsn(confirmed) == end:
                    break
                time.sleep(0.1)
            assert parse_lsn(confirmed) == end
    finally:
        repl.close()
