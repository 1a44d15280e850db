"""PostgreSQL is real and configured for logical decoding: one change streamed from a pgoutput slot
over a psycopg 3 replication connection (COPY BOTH, read with ``pgconn.get_copy_data``)."""

from __future__ import annotations

import select
import struct
import time

from conftest import unique


def test_wal_level_is_logical(pg_db) -> None:
    with pg_db.connect() as conn:
        assert conn.execute("SHOW wal_level").fetchone()[0] == "logical"
        slots = int(conn.execute("SHOW max_replication_slots").fetchone()[0])
        senders = int(conn.execute("SHOW max_wal_senders").fetchone()[0])
    assert slots >= 10 and senders >= 10


def _cstr(buf: bytes, at: int) -> tuple[str, int]:
    end = buf.index(b"\0", at)
    return buf[at:end].decode(), end + 1


def _stream_until_insert(repl, timeout_s: float = 20.0) -> tuple[dict, list[bytes | None]]:
    """Read XLogData until an Insert arrives; return the Relation it refers to and its tuple."""
    pgconn = repl.pgconn
    relations: dict[int, dict] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        n, data = pgconn.get_copy_data(1)  # async: 0 means nothing yet
        if n == 0:
            select.select([pgconn.socket], [], [], 0.5)
            pgconn.consume_input()
            continue
        assert n > 0, f"replication stream ended: {pgconn.error_message!r}"
        msg = bytes(data)
        if msg[:1] == b"k":  # primary keepalive: answer when asked, never advancing flush
            _, _, reply = struct.unpack("!QQB", msg[1:18])
            if reply:
                pgconn.put_copy_data(b"r" + struct.pack("!QQQQB", 0, 0, 0, 0, 0))
                pgconn.flush()
            continue
        assert msg[:1] == b"w", msg[:1]
        body = msg[25:]
        tag = body[:1]
        if tag == b"R":
            oid = struct.unpack("!I", body[1:5])[0]
            ns, at = _cstr(body, 5)
            name, at = _cstr(body, at)
            at += 1  # replica identity
            (ncols,) = struct.unpack("!H", body[at:at + 2])
            at += 2
            cols = []
            for _ in range(ncols):
                at += 1  # flags
                col, at = _cstr(body, at)
                at += 8  # type oid, typmod
                cols.append(col)
            relations[oid] = {"schema": ns, "table": name, "columns": cols}
        elif tag == b"I":
            oid = struct.unpack("!I", body[1:5])[0]
            assert body[5:6] == b"N"
            (ncols,) = struct.unpack("!H", body[6:8])
            at, values = 8, []
            for _ in range(ncols):
                kind = body[at:at + 1]
                at += 1
                if kind == b"t":
                    (ln,) = struct.unpack("!I", body[at:at + 4])
                    values.append(body[at + 4:at + 4 + ln])
                    at += 4 + ln
                else:
                    values.append(None)
            return relations[oid], values
    raise AssertionError("no Insert arrived from the slot in time")


def test_pgoutput_slot_streams_one_change(pg_db) -> None:
    import psycopg

    slot, pub = unique("slot"), unique("pub")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute(f"CREATE PUBLICATION {pub} FOR TABLE items")

    repl = psycopg.connect(pg_db.url, replication="database", autocommit=True)
    try:
        created = repl.execute(f"CREATE_REPLICATION_SLOT {slot} TEMPORARY LOGICAL pgoutput").fetchone()
        assert created[0] == slot
        with pg_db.connect() as conn:
            conn.execute("INSERT INTO items VALUES (42, %s)", ("héllo 🎉",))

        pgconn = repl.pgconn
        pgconn.send_query(
            f"START_REPLICATION SLOT {slot} LOGICAL 0/0 (proto_version '1', publication_names '{pub}')".encode())
        from psycopg import pq

        res = pgconn.get_result()
        assert res is not None and res.status == pq.ExecStatus.COPY_BOTH, res and res.error_message
        pgconn.nonblocking = 1
        relation, values = _stream_until_insert(repl)
    finally:
        repl.close()

    assert relation == {"schema": "public", "table": "items", "columns": ["id", "name"]}
    assert values == [b"42", "héllo 🎉".encode()]
