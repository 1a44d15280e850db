"""The PostgreSQL source streaming from a real PostgreSQL 15 slot: envelopes of every operation,
replica identity DEFAULT vs FULL, unchanged TOAST values, large streamed transactions, heartbeats
that advance the slot, a flush position that never passes what was acknowledged, reconnects and
a dropped slot failing closed, ``check`` and ``status``."""

from __future__ import annotations

import contextlib
import itertools
import random
import string
import time
from collections.abc import Iterator

import orjson
import pytest
from conftest import unique

from cdc.config import parse_config
from cdc.errors import PositionLostError
from cdc.events import ChangeEvent, Checkpoint, Heartbeat, Op, SchemaChange
from cdc.positions import PgPosition, SourceOffset, parse_lsn
from connectors.postgres.source import PostgresSource


def _source(
    pg_db,
    slot: str,
    *,
    snapshot: str = "never",
    tables: str = "['public.*']",
    url: str | None = None,
    extra: str = "",
    history=(),
) -> PostgresSource:
    yaml = (
        f"name: t\nsource:\n  type: postgres\n  url: {url or pg_db.url}\n  slot: {slot}\n  publication: {slot}\n"
        f"  snapshot: {snapshot}\n  tables: {tables}\n  heartbeat_interval_ms: 200\n{extra}"
        "bus:\n  type: kafka\n  bootstrap_servers: 127.0.0.1:1\n"
    )
    cfg = parse_config(yaml, env={})
    return PostgresSource(cfg.source, "t", history)  # type: ignore[arg-type]


def _drain(src: PostgresSource, until, timeout_s: float = 30.0, ack: bool = False) -> list:
    items: list = []
    deadline = time.monotonic() + timeout_s
    while not until(items):
        assert time.monotonic() < deadline, f"gave up waiting; got {items[-5:]}"
        batch = src.read_batch(5000, 0.3)
        items.extend(batch)
        if ack:
            for i in batch:
                if isinstance(i, (Checkpoint, Heartbeat)) and i.offset is not None:
                    src.acknowledge(i.offset)
    return items


def _done(n_changes: int):
    """Until ``n_changes`` row changes arrived and a checkpoint followed the last one."""

    def check(items: list) -> bool:
        idx = [k for k, x in enumerate(items) if isinstance(x, ChangeEvent)]
        return len(idx) >= n_changes and any(isinstance(x, Checkpoint) for x in items[idx[-1] :])

    return check


def _shape(items: list) -> list[str]:
    out: list[str] = []
    for x in items:
        kind = type(x).__name__
        if kind == "Heartbeat" or (kind == "Checkpoint" and (not out or out[-1] == "Checkpoint")):
            continue
        out.append(kind if kind != "ChangeEvent" else x.op.value)
    return out


def _events(items: list) -> list[ChangeEvent]:
    return [i for i in items if isinstance(i, ChangeEvent)]


def _slot_row(pg_db, slot: str) -> tuple[int | None, bool] | None:
    with pg_db.connect() as conn:
        row = conn.execute(
            "SELECT confirmed_flush_lsn::text, active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
    if row is None:
        return None
    return (parse_lsn(row[0]) if row[0] else None), bool(row[1])


@contextlib.contextmanager
def _target_database(pg_db, pg_url: str) -> Iterator[str]:
    """The URL of a new, empty database beside the test's, for the SQL sink to write to; dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = unique()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield pg_db.url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _apply_through_the_wire(
    target_url: str, items: list, *, one_batch: bool = False, copy_threshold: int | None = None
) -> list[tuple[ChangeEvent, ChangeEvent | None]]:
    """Apply the source's items with the SQL sink in their wire form, as a Kafka consumer gets them:
    schema changes as they come, each row change in its own batch (or all of them in one). Returns each
    change with what the envelope made of it."""
    from cdc.config import SinkConfig
    from cdc.envelope import EnvelopeCodec
    from connectors.sql.sink import SqlSink

    codec = EnvelopeCodec("t")
    config = SinkConfig(name="replica", url=target_url, dead_letter_topic="dlq")
    sink = SqlSink(config) if copy_threshold is None else SqlSink(config, copy_threshold=copy_threshold)
    sink.open()
    pairs: list[tuple[ChangeEvent, ChangeEvent | None]] = []
    try:
        for item in items:
            if isinstance(item, SchemaChange):
                sink.apply_schema(codec.decode_schema_change(codec.encode_schema_change(item)[1]))
                schema = item.schema
            elif isinstance(item, ChangeEvent):
                wire = codec.decode(codec.encode_key(item, schema), codec.encode_value(item, schema))
                pairs.append((item, wire))
                if not one_batch:
                    sink.write_batch("t", [wire], offset=SourceOffset(PgPosition(item.position.lsn), "streaming"))
        if one_batch:
            offset = SourceOffset(PgPosition(items[-1].offset.position.lsn), "streaming")
            sink.write_batch("t", [wire for _, wire in pairs], offset=offset)
    finally:
        sink.close()
    return pairs


def test_insert_update_delete_truncate_envelopes(pg_db) -> None:
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text, amount numeric(8,2))")
    src = _source(pg_db, slot)
    src.open(None)
    try:
        with pg_db.connect() as conn:
            conn.execute("INSERT INTO t VALUES (1, 'a', 1.50), (2, 'b', 2.00)")
            with conn.transaction():
                conn.execute("UPDATE t SET name = 'bb' WHERE id = 2")
                conn.execute("DELETE FROM t WHERE id = 1")
            conn.execute("TRUNCATE t")
        items = _drain(src, _done(5))
    finally:
        src.close()
    assert _shape(items) == ["SchemaChange", "c", "c", "Checkpoint", "u", "d", "Checkpoint", "t", "Checkpoint"]
    schema = next(i for i in items if isinstance(i, SchemaChange)).schema
    assert schema.column_names == ("id", "name", "amount") and schema.primary_key == ("id",)
    assert [c.nullable for c in schema.columns] == [False, True, True]
    ev = _events(items)
    assert ev[0].after == {"id": 1, "name": "a", "amount": "AJY="}  # 1.50 at scale 2 is 150 -> 0x0096
    assert ev[0].key == {"id": 1} and ev[0].before is None
    assert ev[2].op is Op.UPDATE and ev[2].before is None  # DEFAULT identity, key unchanged: no old tuple
    assert ev[2].after == {"id": 2, "name": "bb", "amount": "AMg="}
    assert ev[3].op is Op.DELETE and ev[3].before == {"id": 1, "name": None, "amount": None}
    assert ev[3].after is None and ev[3].key == {"id": 1}
    assert ev[4].op is Op.TRUNCATE and ev[4].key is None and ev[4].before is None and ev[4].after is None
    assert ev[2].txn_id == ev[3].txn_id and ev[2].txn_id != ev[0].txn_id
    assert (ev[2].txn_order, ev[3].txn_order) == (1, 2)
    src_block = ev[2].source
    assert src_block["connector"] == "postgresql" and src_block["name"] == "t"
    assert src_block["db"] == pg_db.name and src_block["schema"] == "public" and src_block["table"] == "t"
    assert src_block["snapshot"] == "false" and src_block["xmin"] is None
    assert src_block["ts_ms"] == ev[2].ts_ms and abs(ev[2].ts_ms - time.time() * 1000) < 600_000  # UNIX epoch
    assert isinstance(src_block["txId"], int) and isinstance(src_block["lsn"], int)
    last_commit, lsn = orjson.loads(src_block["sequence"])
    assert lsn == str(src_block["lsn"]) and int(last_commit) <= int(lsn)
    cps = [i for i in items if isinstance(i, Checkpoint)]
    assert all(a.offset.position < b.offset.position for a, b in itertools.pairwise(cps))
    assert all(c.offset.phase == "streaming" and c.offset.extra["slot"] == slot for c in cps)
    # the previous transaction's end is the next one's sequence head
    assert int(last_commit) == cps[0].offset.position.lsn


def test_replica_identity_default_and_full_before_images(pg_db) -> None:
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE d (id int PRIMARY KEY, v text)")
        conn.execute("CREATE TABLE f (id int PRIMARY KEY, v text)")
        conn.execute("ALTER TABLE f REPLICA IDENTITY FULL")
        conn.execute("CREATE TABLE nokey (a int, b text)")
        conn.execute("ALTER TABLE nokey REPLICA IDENTITY FULL")
        conn.execute("INSERT INTO d VALUES (1, 'x'), (2, 'y')")
        conn.execute("INSERT INTO f VALUES (1, 'x'), (2, 'y')")
        conn.execute("INSERT INTO nokey VALUES (1, 'x')")
    src = _source(pg_db, slot)
    src.open(None)
    try:
        with pg_db.connect() as conn:
            conn.execute("UPDATE d SET v = 'x2' WHERE id = 1")
            conn.execute("UPDATE d SET id = 20 WHERE id = 2")  # the key changed: the old key is sent
            conn.execute("DELETE FROM d WHERE id = 1")
            conn.execute("UPDATE f SET v = 'x2' WHERE id = 1")
            conn.execute("DELETE FROM f WHERE id = 2")
            conn.execute("UPDATE nokey SET b = 'z'")
        items = _drain(src, _done(6))
    finally:
        src.close()
    got = [(e.table.table, e.op.value, e.key, e.before, e.after) for e in _events(items)]
    assert got == [
        ("d", "u", {"id": 1}, None, {"id": 1, "v": "x2"}),
        ("d", "u", {"id": 20}, {"id": 2, "v": None}, {"id": 20, "v": "y"}),
        ("d", "d", {"id": 1}, {"id": 1, "v": None}, None),
        ("f", "u", {"id": 1}, {"id": 1, "v": "x"}, {"id": 1, "v": "x2"}),
        ("f", "d", {"id": 2}, {"id": 2, "v": "y"}, None),
        ("nokey", "u", None, {"a": 1, "b": "x"}, {"a": 1, "b": "z"}),
    ]


def _incompressible(n: int, seed: int) -> str:
    rnd = random.Random(seed)
    return "".join(rnd.choices(string.ascii_letters + string.digits + string.punctuation, k=n))


@pytest.mark.parametrize("identity", ["DEFAULT", "FULL"])
def test_unchanged_toast_value(pg_db, identity: str) -> None:
    slot = unique("slot")
    big = _incompressible(12 * 1024, 7)
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE doc (id int PRIMARY KEY, title text, body text)")
        conn.execute(f"ALTER TABLE doc REPLICA IDENTITY {identity}")
        conn.execute("INSERT INTO doc VALUES (1, 'first', %s)", (big,))
        stored = conn.execute("SELECT pg_column_size(body) FROM doc").fetchone()[0]
        assert stored > 10_000  # kept out of line and not compressed: a real TOAST value
    src = _source(pg_db, slot)
    src.open(None)
    try:
        with pg_db.connect() as conn:
            conn.execute("UPDATE doc SET title = 'second' WHERE id = 1")
        items = _drain(src, _done(1))
    finally:
        src.close()
    (ev,) = _events(items)
    if identity == "FULL":
        assert ev.unchanged == frozenset()
        assert ev.after == {"id": 1, "title": "second", "body": big}
        assert ev.before == {"id": 1, "title": "first", "body": big}
    else:
        assert ev.unchanged == frozenset({"body"})
        assert ev.after == {"id": 1, "title": "second"}  # canonical form: absent here, the placeholder on the wire
        from cdc.envelope import EnvelopeCodec

        schema = next(i for i in items if isinstance(i, SchemaChange)).schema
        wire = orjson.loads(EnvelopeCodec("t").encode_value(ev, schema))
        assert wire["after"]["body"] == "__debezium_unavailable_value"


def test_large_streamed_transaction_arrives_complete_once_and_aborted_ones_never(pg_db) -> None:
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE big (id int PRIMARY KEY, pad text)")
        # applies to the walsender too: transactions above 64 kB are streamed before they commit
        conn.execute(f"ALTER DATABASE \"{pg_db.name}\" SET logical_decoding_work_mem = '64kB'")
    src = _source(pg_db, slot)
    src.open(None)
    n = 20_000
    try:
        with pg_db.connect() as conn:
            with conn.transaction():  # aborted: never emitted
                conn.execute("INSERT INTO big SELECT g, repeat('a', 50) FROM generate_series(100001, 105000) g")
                raise_rollback(conn)
            with conn.transaction():  # committed, with an aborted subtransaction inside
                conn.execute("INSERT INTO big SELECT g, repeat('x', 50) FROM generate_series(1, %s::int) g", (n // 2,))
                conn.execute("SAVEPOINT s1")
                conn.execute("INSERT INTO big SELECT g, repeat('y', 50) FROM generate_series(200001, 203000) g")
                conn.execute("ROLLBACK TO SAVEPOINT s1")
                conn.execute(
                    "INSERT INTO big SELECT g, repeat('z', 50) FROM generate_series(%s::int, %s::int) g",
                    (n // 2 + 1, n),
                )
        items = _drain(src, _done(n), timeout_s=120)
        items += src.read_batch(5000, 1.0)
        with pg_db.connect() as conn:
            streamed = conn.execute(
                "SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
    finally:
        src.close()
    ids = [e.after["id"] for e in _events(items)]
    assert ids == list(range(1, n + 1))  # complete, once, in order, without the aborted rows
    assert len({e.txn_id for e in _events(items)}) == 1
    assert streamed is not None and streamed[0] >= 1, "the transaction was not streamed; the test proves nothing"
    last = max(k for k, x in enumerate(items) if isinstance(x, ChangeEvent))
    assert any(isinstance(x, Checkpoint) for x in items[last:])


def raise_rollback(conn) -> None:
    import psycopg

    raise psycopg.Rollback()


def test_heartbeats_advance_the_slot_of_a_filtered_database(pg_db) -> None:
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE captured (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE other (id int PRIMARY KEY)")
    src = _source(pg_db, slot, tables="['public.captured']")
    src.open(None)
    try:
        start, _ = _slot_row(pg_db, slot)
        with pg_db.connect() as conn:  # traffic the publication does not carry: pgoutput sends nothing
            for i in range(50):
                conn.execute("INSERT INTO other VALUES (%s)", (i,))
            after_writes = parse_lsn(conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])
        beats = _drain(
            src, lambda xs: sum(isinstance(x, Heartbeat) and x.offset is not None for x in xs) >= 2, ack=True
        )
        assert not _events(beats)
        deadline = time.monotonic() + 20
        while True:
            confirmed, _ = _slot_row(pg_db, slot)
            if confirmed is not None and confirmed > after_writes:
                break
            assert time.monotonic() < deadline, f"slot stuck at {confirmed} (start {start}, writes end {after_writes})"
            _drain(src, lambda xs: any(isinstance(x, Heartbeat) for x in xs), ack=True)
    finally:
        src.close()
    hb = [x for x in beats if isinstance(x, Heartbeat) and x.offset is not None]
    assert all(isinstance(h.offset.position, PgPosition) and h.offset.position.lsn > start for h in hb)


def test_flush_position_never_passes_what_was_acknowledged(pg_db) -> None:
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    src = _source(pg_db, slot)
    src.open(None)
    try:
        initial, _ = _slot_row(pg_db, slot)
        with pg_db.connect() as conn:
            for i in range(5):
                conn.execute("INSERT INTO t VALUES (%s)", (i,))
        items = _drain(src, _done(5))
        # read on for a while (keepalives, heartbeats) without acknowledging anything
        until = time.monotonic() + 3
        while time.monotonic() < until:
            items += src.read_batch(1000, 0.3)
            assert _slot_row(pg_db, slot)[0] == initial
        cps = [i for i in items if isinstance(i, Checkpoint)]
        second = cps[1].offset
        src.acknowledge(second)
        deadline = time.monotonic() + 10
        while _slot_row(pg_db, slot)[0] != second.position.lsn:
            assert time.monotonic() < deadline, "the acknowledged position was not confirmed"
            src.read_batch(1000, 0.3)
        until = time.monotonic() + 2
        while time.monotonic() < until:  # and stays there
            src.read_batch(1000, 0.3)
            assert _slot_row(pg_db, slot)[0] == second.position.lsn
    finally:
        src.close()


def test_resume_after_a_checkpoint_replays_nothing(pg_db) -> None:
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    src = _source(pg_db, slot)
    src.open(None)
    with pg_db.connect() as conn:
        for i in range(1, 4):
            conn.execute("INSERT INTO t VALUES (%s)", (i,))
    items = _drain(src, _done(3))
    first_change = next(k for k, x in enumerate(items) if isinstance(x, ChangeEvent))
    first_cp = next(x for x in items[first_change:] if isinstance(x, Checkpoint))
    src.acknowledge(first_cp.offset)
    src.close()
    history = [i for i in items if isinstance(i, SchemaChange)]

    again = _source(pg_db, slot, history=history)
    again.open(first_cp.offset)
    try:
        items2 = _drain(again, _done(2))
    finally:
        again.close()
    assert [e.after["id"] for e in _events(items2)] == [2, 3]
    changes = [i for i in items2 if isinstance(i, SchemaChange)]
    assert [(c.kind, c.schema.version) for c in changes] == [("CREATE", history[0].schema.version)]


def test_reconnect_mid_transaction_neither_replays_nor_skips(pg_db) -> None:
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    src = _source(pg_db, slot)
    src.open(None)
    try:
        with pg_db.connect() as conn:
            conn.execute("INSERT INTO t VALUES (0)")
            conn.execute("INSERT INTO t SELECT generate_series(1, 30000)")  # one large transaction
            conn.execute("INSERT INTO t VALUES (30001)")
        got = src.read_batch(5000, 2.0)
        while sum(isinstance(x, ChangeEvent) for x in got) < 3000:
            got += src.read_batch(5000, 2.0)
        assert sum(isinstance(x, ChangeEvent) for x in got) < 30000  # cut inside the large transaction
        with pg_db.connect() as conn:  # kill this source's walsender
            killed = conn.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()[0]
            assert killed
        got += _drain(src, _done(30002 - sum(isinstance(x, ChangeEvent) for x in got)), timeout_s=60)
    finally:
        src.close()
    assert [e.after["id"] for e in _events(got)] == list(range(0, 30002))


def test_dropped_slot_fails_closed(pg_db) -> None:
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    src = _source(pg_db, slot)
    src.open(None)
    with pg_db.connect() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
    items = _drain(src, _done(1))
    cp = next(x for x in items if isinstance(x, Checkpoint))
    src.close()
    with pg_db.connect() as conn:  # dropped while cdc was stopped
        deadline = time.monotonic() + 10
        while _slot_row(pg_db, slot)[1]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    again = _source(pg_db, slot)
    with pytest.raises(PositionLostError, match="no longer exists"):
        again.open(cp.offset)
    problems = again.check_position(cp.offset)
    assert len(problems) == 1 and "no longer exists" in problems[0].message
    again.close()


def test_slot_dropped_while_streaming_fails_closed(pg_db) -> None:
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    src = _source(pg_db, slot)
    src.open(None)
    try:
        with pg_db.connect() as conn:
            conn.execute("INSERT INTO t VALUES (1)")
            _drain(src, _done(1))
            # what an operator has to do to drop an active slot: end its walsender, then drop it
            conn.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            )
            deadline = time.monotonic() + 10
            while True:
                try:
                    conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                    break
                except Exception:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            conn.execute("INSERT INTO t VALUES (2)")
        with pytest.raises(PositionLostError, match="dropped"):
            _drain(src, _done(1), timeout_s=20)
    finally:
        src.close()


def test_check_lists_problems_without_the_password(pg_db) -> None:
    role = unique("cdc_role")
    password = "s3cret-" + unique("pw")
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE keyed (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE loose (a int)")
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    try:
        host = pg_db.server_url.split("@", 1)[1].split("/", 1)[0]
        wrong = f"postgresql://{role}:wrong-{password}@{host}/{pg_db.name}"
        problems = _source(pg_db, slot, url=wrong).check()
        assert len(problems) == 1, problems
        assert "password authentication failed" in problems[0].message and password not in str(problems[0])

        right = f"postgresql://{role}:{password}@{host}/{pg_db.name}"
        problems = _source(pg_db, slot, url=right, extra="  create_publication: false\n").check()
        text = "\n".join(str(p) for p in problems)
        assert password not in text
        assert "neither the REPLICATION attribute nor superuser" in text
        assert "may not SELECT from public.keyed" in text
        assert 'ALTER TABLE "public"."loose" REPLICA IDENTITY FULL' in text
        assert "keyed has no primary key" not in text
        assert f"publication {slot!r} does not exist" in text

        problems = _source(pg_db, slot).check()  # the admin: only the keyless table remains
        assert [p.hint for p in problems] == ['ALTER TABLE "public"."loose" REPLICA IDENTITY FULL'], problems
    finally:
        with pg_db.connect() as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_status_reports_slot_positions_and_retained_wal(pg_db) -> None:
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    assert _source(pg_db, slot).status()["slot_exists"] is False
    src = _source(pg_db, slot)
    src.open(None)
    try:
        with pg_db.connect() as conn:
            conn.execute("INSERT INTO t SELECT generate_series(1, 1000)")
        _drain(src, _done(1000))
        info = _source(pg_db, slot).status()
    finally:
        src.close()
    assert info["slot"] == slot and info["slot_exists"] is True
    assert parse_lsn(info["confirmed_flush_lsn"]) >= parse_lsn(info["restart_lsn"])
    assert info["wal_retained_bytes"] > 0  # nothing acknowledged: the slot holds the inserts' WAL
    assert src.status()["phase"] == "streaming"


def test_stored_offset_of_another_slot_is_refused(pg_db) -> None:
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    src = _source(pg_db, slot)
    src.open(None)
    src.close()
    offset = SourceOffset(PgPosition(1), "streaming", extra={"slot": "some_other_slot"})
    with pytest.raises(PositionLostError, match="belongs to replication slot 'some_other_slot'"):
        _source(pg_db, slot).open(offset)


def test_a_changed_definition_is_announced_before_its_first_row(pg_db) -> None:
    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, a text)")
    src = _source(pg_db, slot)
    src.open(None)
    try:
        with pg_db.connect() as conn:
            conn.execute("INSERT INTO t VALUES (1, 'one')")
            conn.execute("ALTER TABLE t ADD COLUMN b int NOT NULL DEFAULT 7")
            conn.execute("INSERT INTO t VALUES (2, 'two', 2)")
            conn.execute("ALTER TABLE t DROP COLUMN a")
            conn.execute("UPDATE t SET b = 3 WHERE id = 1")
        items = _drain(src, _done(3))
    finally:
        src.close()
    assert _shape(items) == [
        "SchemaChange",
        "c",
        "Checkpoint",
        "SchemaChange",
        "c",
        "Checkpoint",
        "SchemaChange",
        "u",
        "Checkpoint",
    ]
    changes = [i for i in items if isinstance(i, SchemaChange)]
    assert [(c.kind, c.schema.column_names, c.schema.version) for c in changes] == [
        ("CREATE", ("id", "a"), 1),
        ("ALTER", ("id", "a", "b"), 2),
        ("ALTER", ("id", "b"), 3),
    ]
    assert changes[1].schema.column("b").nullable is False and changes[1].schema.column("b").default == "7"
    assert [e.after for e in _events(items)] == [
        {"id": 1, "a": "one"},
        {"id": 2, "a": "two", "b": 2},
        {"id": 1, "b": 3},
    ]


def test_a_new_enum_label_is_announced_before_its_first_row(pg_db, pg_url: str) -> None:
    """``ALTER TYPE … ADD VALUE`` sends no Relation message: the first row with the new label (in a plain
    enum column or inside an enum array) makes the source read the type again and announce the table's
    new definition before that row. Through the envelope into a PostgreSQL target, whose column is
    ``varchar(longest label)``, the longer label widens the column and the row is applied."""
    import psycopg

    slot = unique("slot")
    with pg_db.connect() as conn:
        conn.execute("CREATE TYPE mood AS ENUM ('sad', 'ok')")
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, m mood, ms mood[])")
    src = _source(pg_db, slot)
    src.open(None)
    try:
        with pg_db.connect() as conn:
            conn.execute("INSERT INTO t VALUES (1, 'ok', '{sad}')")
        items = _drain(src, _done(1))  # the labels are read now, before the new one exists
        with pg_db.connect() as conn:
            conn.execute("ALTER TYPE mood ADD VALUE 'exuberant'")
            conn.execute("INSERT INTO t VALUES (2, 'sad', '{exuberant,ok}')")
            conn.execute("INSERT INTO t VALUES (3, 'exuberant', NULL)")
            conn.execute("UPDATE t SET m = 'ok' WHERE id = 3")
        items += _drain(src, _done(3))
    finally:
        src.close()
    first, later = ["SchemaChange", "c", "Checkpoint"], ["SchemaChange", "c", "Checkpoint", "c", "Checkpoint"]
    assert _shape(items) == [*first, *later, "u", "Checkpoint"]
    changes = [i for i in items if isinstance(i, SchemaChange)]
    assert [(c.kind, c.schema.version, c.schema.column("m").enum_values) for c in changes] == [
        ("CREATE", 1, ("sad", "ok")),
        ("ALTER", 2, ("sad", "ok", "exuberant")),
    ]
    assert changes[1].schema.column("ms").enum_values == ("sad", "ok", "exuberant")
    assert [e.after for e in _events(items)] == [
        {"id": 1, "m": "ok", "ms": ["sad"]},
        {"id": 2, "m": "sad", "ms": ["exuberant", "ok"]},
        {"id": 3, "m": "exuberant", "ms": None},
        {"id": 3, "m": "ok", "ms": None},
    ]

    with _target_database(pg_db, pg_url) as target_url:
        _apply_through_the_wire(target_url, items)
        with psycopg.connect(target_url) as conn:
            assert conn.execute("SELECT id, m, ms FROM public.t ORDER BY id").fetchall() == [
                (1, "ok", ["sad"]),
                (2, "sad", ["exuberant", "ok"]),
                (3, "ok", None),
            ]
            kinds = conn.execute(
                "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'public.t'::regclass AND attname IN ('m', 'ms') ORDER BY attname"
            ).fetchall()
            assert kinds == [("m", "character varying(9)"), ("ms", "character varying(9)[]")]


@pytest.mark.parametrize("copy_threshold", [1, 10_000], ids=["copy", "insert"])
def test_infinite_and_bc_dates_reach_a_postgresql_target_unchanged(pg_db, pg_url: str, copy_threshold: int) -> None:
    """``infinity``, ``-infinity``, BC and five-digit years in date, timestamp(3), timestamp(6) and timestamptz
    columns: captured (Debezium's sentinels and representations), through the envelope and the SQL sink
    (COPY batches and row statements) into a PostgreSQL target, they read back as the source has them."""
    import psycopg

    slot = unique("slot")
    values = [
        ("'infinity'", "'infinity'", "'infinity'", "'infinity'"),
        ("'-infinity'", "'-infinity'", "'-infinity'", "'-infinity'"),
        ("'0044-03-15 BC'", "'0044-03-15 10:11:12.5 BC'", "'0044-03-15 10:11:12.123456 BC'", "'0001-01-01 BC+00'"),
        ("'10000-01-01'", "'10000-01-01 00:00:00'", "'10000-01-01 00:00:00.000001'", "'10000-01-01 12:00+00'"),
        ("'2024-02-29'", "'2024-02-29 12:00:00.5'", "'2024-02-29 12:00:00.000007'", "'2024-02-29 12:00:00+00'"),
        ("NULL", "NULL", "NULL", "NULL"),
    ]
    columns = "d date, t3 timestamp(3), t6 timestamp(6), tz timestamptz"
    select = "SELECT id, d::text, t3::text, t6::text, tz::text FROM {} ORDER BY id"
    with pg_db.connect() as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(f"CREATE TABLE t (id int PRIMARY KEY, {columns})")
    src = _source(pg_db, slot)
    src.open(None)
    try:
        with pg_db.connect() as conn:
            rows = ", ".join(f"({i}, {', '.join(v)})" for i, v in enumerate(values, 1))
            conn.execute(f"INSERT INTO t VALUES {rows}")
        items = _drain(src, _done(len(values)))
        with pg_db.connect() as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            want = conn.execute(select.format("t")).fetchall()
    finally:
        src.close()

    with _target_database(pg_db, pg_url) as target_url:
        _apply_through_the_wire(target_url, items, one_batch=True, copy_threshold=copy_threshold)
        with psycopg.connect(target_url) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            got = conn.execute(select.format("public.t")).fetchall()
        assert got == want
        assert want[0][1:] == ("infinity",) * 4 and want[2][1] == "0044-03-15 BC"


@pytest.mark.parametrize("identity", ["DEFAULT", "FULL"])
def test_target_keeps_an_unchanged_toast_value(pg_db, pg_url: str, identity: str) -> None:
    """12 KB incompressible, then an update of another column: through the envelope (as on Kafka) into
    the SQL sink's PostgreSQL target, the large value is kept under both replica identities."""
    import psycopg

    slot = unique("slot")
    big = _incompressible(12 * 1024, 11)
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE doc (id int PRIMARY KEY, title text, body text)")
        conn.execute(f"ALTER TABLE doc REPLICA IDENTITY {identity}")
    src = _source(pg_db, slot)
    src.open(None)
    try:
        with pg_db.connect() as conn:
            conn.execute("INSERT INTO doc VALUES (1, 'first', %s)", (big,))
            assert conn.execute("SELECT pg_column_size(body) FROM doc").fetchone()[0] > 10_000
            conn.execute("UPDATE doc SET title = 'second' WHERE id = 1")
        items = _drain(src, _done(2))
    finally:
        src.close()
    update = _events(items)[1]
    assert update.op is Op.UPDATE and (update.unchanged == frozenset({"body"})) is (identity == "DEFAULT")

    with _target_database(pg_db, pg_url) as target_url:
        for item, wire in _apply_through_the_wire(target_url, items):
            assert wire is not None and wire.unchanged == item.unchanged
        with psycopg.connect(target_url) as conn:
            assert conn.execute("SELECT id, title, body FROM public.doc").fetchall() == [(1, "second", big)]
