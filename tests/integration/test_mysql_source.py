"""The MySQL source streaming from real MariaDB: items in order, checkpoints at commits,
resume without replay, reconnect without replay or skip, and a purged binlog failing closed."""

from __future__ import annotations

import itertools
import socket
import time

import pytest

from cdc.config import parse_config
from cdc.errors import PositionLostError
from cdc.events import ChangeEvent, Checkpoint, Op, SchemaChange
from cdc.positions import MySqlPosition, SourceOffset
from connectors.mysql.source import MySqlSource

SERVER_IDS = iter(range(71_000, 72_000))


def _source(mysql_db, snapshot: str = "never", exclude: str = "[]", tables: str = "*", **extra) -> MySqlSource:
    yaml = (f"name: t\nsource:\n  type: mysql\n  url: {mysql_db.server_url}\n  server_id: {next(SERVER_IDS)}\n"
            f"  snapshot: {snapshot}\n  tables: ['{mysql_db.name}.{tables}']\n  heartbeat_interval_ms: 200\n"
            f"  exclude_columns: {exclude}\n"
            "bus:\n  type: kafka\n  bootstrap_servers: 127.0.0.1:1\n")
    cfg = parse_config(yaml, env={})
    return MySqlSource(cfg.source, "t", **extra)  # type: ignore[arg-type]


def _drain(src: MySqlSource, until, timeout_s: float = 20.0) -> list:
    items: list = []
    deadline = time.monotonic() + timeout_s
    while not until(items):
        assert time.monotonic() < deadline, f"gave up waiting; got {items[-5:]}"
        items.extend(src.read_batch(1000, 0.3))
    return items


def _done(n_changes: int):
    """Until ``n_changes`` row changes arrived and a checkpoint followed the last one."""

    def check(items: list) -> bool:
        idx = [k for k, x in enumerate(items) if isinstance(x, ChangeEvent)]
        return len(idx) >= n_changes and any(isinstance(x, Checkpoint) for x in items[idx[-1]:])

    return check


def _shape(items: list) -> list[str]:
    """Item kinds with heartbeats dropped and runs of checkpoints (other databases' transactions,
    which still end in a checkpoint) collapsed into one."""
    out: list[str] = []
    for x in items:
        kind = type(x).__name__
        if kind == "Heartbeat" or (kind == "Checkpoint" and (not out or out[-1] == "Checkpoint")):
            continue
        out.append(kind)
    return out


def _changes(items: list) -> list[tuple[str, dict | None]]:
    return [(i.op.value, i.after if i.after is not None else i.before) for i in items if isinstance(i, ChangeEvent)]


def test_stream_rows_schema_and_checkpoints(mysql_db) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20), amount DECIMAL(8,2))")
    src = _source(mysql_db)
    src.open(None)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (1, 'a', 1.50), (2, 'b', 2.00)")
            cur.execute("BEGIN")
            cur.execute("UPDATE t SET name = 'bb' WHERE id = 2")
            cur.execute("DELETE FROM t WHERE id = 1")
            cur.execute("COMMIT")
        items = _drain(src, _done(4))
    finally:
        src.close()
    assert _shape(items) == ["SchemaChange", "ChangeEvent", "ChangeEvent", "Checkpoint", "ChangeEvent", "ChangeEvent",
                     "Checkpoint"]
    schema = next(i for i in items if isinstance(i, SchemaChange)).schema
    assert schema.column_names == ("id", "name", "amount") and schema.primary_key == ("id",)
    events = [i for i in items if isinstance(i, ChangeEvent)]
    assert [e.op for e in events] == [Op.CREATE, Op.CREATE, Op.UPDATE, Op.DELETE]
    assert events[0].after == {"id": 1, "name": "a", "amount": "AJY="}  # 1.50 at scale 2 is 150 -> 0x0096
    assert events[2].before["name"] == "b" and events[2].after["name"] == "bb"
    assert events[3].key == {"id": 1} and events[3].after is None
    assert events[2].txn_id == events[3].txn_id and events[2].txn_id is not None
    cps = [i for i in items if isinstance(i, Checkpoint)]
    assert all(a.offset.position < b.offset.position for a, b in itertools.pairwise(cps))
    assert cps[-1].offset.position.gtid_set


def test_resume_after_checkpoint_replays_nothing(mysql_db) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    src = _source(mysql_db)
    src.open(None)
    with conn.cursor() as cur:
        for i in range(1, 4):
            cur.execute("INSERT INTO t VALUES (%s)", (i,))
    items = _drain(src, _done(3))
    src.close()
    first_change = next(k for k, x in enumerate(items) if isinstance(x, ChangeEvent))
    first_cp = next(x for x in items[first_change:] if isinstance(x, Checkpoint))
    history = [i for i in items if isinstance(i, SchemaChange)]

    again = _source(mysql_db, history=history)
    again.open(first_cp.offset)
    items2 = _drain(again, _done(2))
    again.close()
    assert [a["id"] for _, a in _changes(items2)] == [2, 3]
    assert not any(isinstance(i, SchemaChange) for i in items2)  # the definition came from history


def test_reconnect_mid_stream_neither_replays_nor_skips(mysql_db) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    src = _source(mysql_db)
    src.open(None)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (1)")
        got = _drain(src, _done(1))
        # kill the binlog dump thread of this source on the server
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%%'")
            for (thread,) in cur.fetchall():
                cur.execute(f"KILL {int(thread)}")
            cur.executemany("INSERT INTO t VALUES (%s)", [(i,) for i in range(2, 6)])
        got += _drain(src, _done(4))
    finally:
        src.close()
    assert [a["id"] for _, a in _changes(got)] == [1, 2, 3, 4, 5]


def test_reconnect_inside_a_transaction_neither_replays_nor_skips(mysql_db) -> None:
    """The connection drops while a transaction of many rows events is half read: the source reopens
    at the last checkpoint and skips exactly the changes it already emitted, keeping their order."""
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, v INT, pad VARCHAR(200))")
    src = _source(mysql_db)
    src.open(None)
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            for i in range(1, 401):  # one rows event each: far more than the socket buffer holds
                cur.execute("INSERT INTO t VALUES (%s, 0, REPEAT('x', 200))", (i,))
            cur.execute("UPDATE t SET v = 1 WHERE id <= 30")  # one event, several rows
            cur.execute("DELETE FROM t WHERE id > 390")
            cur.execute("COMMIT")
        got: list = []
        while sum(isinstance(x, ChangeEvent) for x in got) < 25:
            got.extend(src.read_batch(5, 5.0))
        assert not any(isinstance(x, Checkpoint) for x in got[next(k for k, x in enumerate(got)
                                                                     if isinstance(x, ChangeEvent)):])
        before = src._reader
        before._stream_connection._sock.shutdown(socket.SHUT_RDWR)  # the connection drops
        got += _drain(src, _done(400 + 30 + 10 - sum(isinstance(x, ChangeEvent) for x in got)))
        assert src._reader is not before, "the source did not reconnect"
    finally:
        src.close()
    events = [x for x in got if isinstance(x, ChangeEvent)]
    expected = ([("c", i) for i in range(1, 401)] + [("u", i) for i in range(1, 31)]
                + [("d", i) for i in range(391, 401)])
    assert [(e.op.value, e.key["id"]) for e in events] == expected
    assert [e.txn_order for e in events] == list(range(1, len(expected) + 1))
    assert len({e.txn_id for e in events}) == 1
    assert sum(isinstance(x, Checkpoint) and x.offset.position >= events[-1].position for x in got) >= 1


def test_tables_not_captured_are_left_out_in_every_transaction(mysql_db) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))")
        cur.execute("CREATE TABLE other (id INT PRIMARY KEY, v VARCHAR(10))")
    src = _source(mysql_db, tables="t")
    src.open(None)
    try:
        with conn.cursor() as cur:
            for i in range(1, 6):  # the same table maps each time: after the first, by their bytes
                cur.execute("BEGIN")
                cur.execute("INSERT INTO other VALUES (%s, 'no')", (i,))
                cur.execute("INSERT INTO t VALUES (%s, 'yes')", (i,))
                cur.execute("UPDATE other SET v = 'still no' WHERE id = %s", (i,))
                cur.execute("COMMIT")
            cur.execute("INSERT INTO other VALUES (100, 'alone')")  # a transaction with nothing captured
            cur.execute("INSERT INTO t VALUES (6, 'last')")
        items = _drain(src, _done(6))
    finally:
        src.close()
    assert _changes(items) == [("c", {"id": i, "v": "yes"}) for i in range(1, 6)] + [("c", {"id": 6, "v": "last"})]
    assert {i.schema.table.table for i in items if isinstance(i, SchemaChange)} == {"t"}
    assert [e.txn_order for e in items if isinstance(e, ChangeEvent)] == [1] * 6
    # every transaction ends in a checkpoint, the one with nothing captured too
    cps = [i for i in items if isinstance(i, Checkpoint)]
    assert len({c.offset.position for c in cps}) >= 7


def test_purged_binlog_fails_closed(mysql_db) -> None:
    src = _source(mysql_db)
    with pytest.raises(PositionLostError, match="no longer on the server"):
        src.open(SourceOffset(MySqlPosition("mariadb-bin.000000", 4, None, None)))


def test_ddl_while_the_source_lags_puts_every_value_in_its_own_field(mysql_db) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(10))")
    src = _source(mysql_db)
    src.open(None)
    try:
        with conn.cursor() as cur:  # everything is written before the source reads anything: it lags
            cur.execute("INSERT INTO t VALUES (1, 10, 'one')")
            cur.execute("ALTER TABLE t ADD COLUMN z INT FIRST")
            cur.execute("INSERT INTO t (z, id, a, b) VALUES (-2, 2, 20, 'two')")
            cur.execute("ALTER TABLE t DROP COLUMN a")
            cur.execute("INSERT INTO t (z, id, b) VALUES (-3, 3, 'three')")
            cur.execute("ALTER TABLE t RENAME COLUMN b TO bee")
            cur.execute("INSERT INTO t (z, id, bee) VALUES (-4, 4, 'four')")
            cur.execute("UPDATE t SET bee = 'uno' WHERE id = 1")
        items = _drain(src, _done(5))
    finally:
        src.close()
    assert [(op, row) for op, row in _changes(items)] == [
        ("c", {"id": 1, "a": 10, "b": "one"}),
        ("c", {"z": -2, "id": 2, "a": 20, "b": "two"}),
        ("c", {"z": -3, "id": 3, "b": "three"}),
        ("c", {"z": -4, "id": 4, "bee": "four"}),
        ("u", {"z": None, "id": 1, "bee": "uno"}),
    ]
    changes = [i for i in items if isinstance(i, SchemaChange)]
    assert [(c.kind, c.schema.column_names, c.schema.version) for c in changes] == [
        ("CREATE", ("id", "a", "b"), 1),
        ("ALTER", ("z", "id", "a", "b"), 2),
        ("ALTER", ("z", "id", "b"), 3),
        ("ALTER", ("z", "id", "bee"), 4),
    ]
    assert changes[1].ddl is not None and "ADD COLUMN z" in changes[1].ddl


def test_excluded_columns_are_left_out_of_snapshot_and_stream(mysql_db) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE u (id INT PRIMARY KEY, email VARCHAR(40), secret VARCHAR(40), n INT)")
        cur.execute("INSERT INTO u VALUES (1, 'a@x', 'hunter2', 1)")
    src = _source(mysql_db, snapshot="initial", exclude=f"['{mysql_db.name}.u.secret', '*.*.nothing']")
    src.open(None)
    try:
        items = _drain(src, lambda xs: any(isinstance(x, Checkpoint) and x.offset.phase == "streaming" for x in xs))
        with conn.cursor() as cur:
            cur.execute("INSERT INTO u VALUES (2, 'b@x', 'letmein', 2)")
            cur.execute("UPDATE u SET secret = 'changed', n = 3 WHERE id = 1")
        items += _drain(src, _done(2))
    finally:
        src.close()
    images = [(e.op.value, e.before, e.after) for e in items if isinstance(e, ChangeEvent)]
    assert images == [
        ("r", None, {"id": 1, "email": "a@x", "n": 1}),
        ("c", None, {"id": 2, "email": "b@x", "n": 2}),
        ("u", {"id": 1, "email": "a@x", "n": 1}, {"id": 1, "email": "a@x", "n": 3}),
    ]
    schemas = [i.schema for i in items if isinstance(i, SchemaChange)]
    assert [s.column_names for s in schemas] == [("id", "email", "n")]  # streaming saw the same definition


def test_schema_change_carries_the_ddl_of_its_own_table(mysql_db) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE a (id INT PRIMARY KEY)")
        cur.execute("CREATE TABLE b (id INT PRIMARY KEY)")
    src = _source(mysql_db)
    src.open(None)
    try:
        with conn.cursor() as cur:
            cur.execute("ALTER TABLE a ADD COLUMN x INT")
            cur.execute("ALTER TABLE b ADD COLUMN y INT")  # the newest DDL names b, not a
            cur.execute("INSERT INTO a VALUES (1, 1)")
            cur.execute("INSERT INTO b VALUES (1, 1)")
        items = _drain(src, _done(2))
    finally:
        src.close()
    ddl = {c.schema.table.table: c.ddl for c in items if isinstance(c, SchemaChange)}
    assert ddl == {"a": "ALTER TABLE a ADD COLUMN x INT", "b": "ALTER TABLE b ADD COLUMN y INT"}


def _xa(cur, xid: str, sql: str, *, prepare: bool = True) -> None:
    cur.execute(f"XA START '{xid}'")
    cur.execute(sql)
    cur.execute(f"XA END '{xid}'")
    if prepare:
        cur.execute(f"XA PREPARE '{xid}'")


def test_xa_transactions_take_effect_at_commit_and_rollbacks_are_dropped(mysql_db) -> None:
    """An XA transaction's rows are emitted at its XA COMMIT (after what committed meanwhile),
    a rolled-back prepared transaction emits nothing, ONE PHASE commits are ordinary: the events
    replay to exactly the table's contents."""
    xid = mysql_db.name  # XIDs are server-wide: unique per test database
    conn, other = mysql_db.connect(autocommit=True), mysql_db.connect(autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
    src = _source(mysql_db)
    src.open(None)
    try:
        with conn.cursor() as cur, other.cursor() as cur2:
            _xa(cur, f"{xid}a", "INSERT INTO t VALUES (1, 1)")
            cur2.execute("INSERT INTO t VALUES (2, 2)")  # commits while a is prepared
            cur.execute(f"XA COMMIT '{xid}a'")
            _xa(cur, f"{xid}b", "INSERT INTO t VALUES (3, 3)")
            cur.execute(f"XA ROLLBACK '{xid}b'")
            _xa(cur, f"{xid}c", "INSERT INTO t VALUES (4, 4)", prepare=False)
            cur.execute(f"XA COMMIT '{xid}c' ONE PHASE")
            cur.execute("INSERT INTO t VALUES (5, 5)")
            cur.execute("SELECT id FROM t ORDER BY id")
            assert [r[0] for r in cur.fetchall()] == [1, 2, 4, 5]
        items = _drain(src, _done(4))
    finally:
        src.close()
    assert [a["id"] for _, a in _changes(items)] == [2, 1, 4, 5]
    # no checkpoint between a prepared transaction's rows and the commit that makes them real
    idx = next(k for k, x in enumerate(items) if isinstance(x, ChangeEvent) and x.after["id"] == 1)
    assert isinstance(items[idx + 1], Checkpoint)
    cps = [x for x in items if isinstance(x, Checkpoint)]
    assert any("xa_resume" in x.offset.extra for x in cps)  # while a and b were prepared
    assert "xa_resume" not in cps[-1].offset.extra  # none pending at the end


def test_restart_while_an_xa_transaction_is_prepared_loses_and_repeats_nothing(mysql_db) -> None:
    """The process dies (its memory with it) after XA PREPARE and later commits were checkpointed,
    before XA COMMIT: the stored offset carries the resume point of the pending transaction; the
    restarted source collects its rows again and emits them at XA COMMIT, and emits nothing that
    was emitted before the restart. A rolled-back one pending at the same time stays unemitted."""
    xid = mysql_db.name
    conn, other = mysql_db.connect(autocommit=True), mysql_db.connect(autocommit=True)
    xa_conn = mysql_db.connect(autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
    src = _source(mysql_db)
    src.open(None)
    with conn.cursor() as cur, other.cursor() as cur2, xa_conn.cursor() as cur3:
        _xa(cur, f"{xid}p", "INSERT INTO t VALUES (10, 1)")
        _xa(cur3, f"{xid}r", "INSERT INTO t VALUES (30, 1)")
        cur2.execute("INSERT INTO t VALUES (11, 1)")
        cur2.execute("INSERT INTO t VALUES (12, 1)")
    items = _drain(src, _done(2))
    src.close()  # "killed": only the stored offset survives
    history = [i for i in items if isinstance(i, SchemaChange)]
    assert [a["id"] for _, a in _changes(items)] == [11, 12]
    last = [x for x in items if isinstance(x, Checkpoint)][-1].offset
    assert "xa_resume" in last.extra
    stored = SourceOffset.from_dict(last.to_dict())  # as the offset store keeps it
    with conn.cursor() as cur, other.cursor() as cur2, xa_conn.cursor() as cur3:
        cur2.execute("INSERT INTO t VALUES (13, 1)")
        cur.execute(f"XA COMMIT '{xid}p'")
        cur3.execute(f"XA ROLLBACK '{xid}r'")
        cur2.execute("INSERT INTO t VALUES (14, 1)")
    again = _source(mysql_db, history=history)
    again.open(stored)
    try:
        got = _drain(again, _done(3))
    finally:
        again.close()
    assert [a["id"] for _, a in _changes(got)] == [13, 10, 14]
    assert not any(isinstance(i, SchemaChange) for i in got)  # old table maps re-read: no definition goes back
    cps = [x for x in got if isinstance(x, Checkpoint)]
    assert cps and all(x.offset.position.sort_key() > stored.position.sort_key() for x in cps)
    assert "xa_resume" not in cps[-1].offset.extra


def test_resume_by_gtid_set_after_a_failover(mysql_db) -> None:
    """A stored position from another server (a failover: other server_id, binlog names that do
    not exist here) resumes by its GTID set, exactly after the last transaction it holds; the
    checkpoints after it are this server's file:pos again. Without the GTID set it fails closed."""
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    src = _source(mysql_db)
    src.open(None)
    with conn.cursor() as cur:
        for i in range(1, 4):
            cur.execute("INSERT INTO t VALUES (%s)", (i,))
    items = _drain(src, _done(3))
    src.close()
    history = [i for i in items if isinstance(i, SchemaChange)]
    first_change = next(k for k, x in enumerate(items) if isinstance(x, ChangeEvent))
    real = next(x for x in items[first_change:] if isinstance(x, Checkpoint)).offset.position
    assert real.gtid_set and "-" in real.gtid_set
    moved = SourceOffset(MySqlPosition("old-primary-bin.000042", 98765, real.gtid_set, 999_999))
    with conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (4)")

    again = _source(mysql_db, history=history)
    assert again.check_position(moved) == []  # `cdc check`: resumable by GTID set
    again.open(moved)
    try:
        got = _drain(again, _done(3))
    finally:
        again.close()
    assert [a["id"] for _, a in _changes(got)] == [2, 3, 4]
    cps = [x.offset.position for x in got if isinstance(x, Checkpoint)]
    assert cps[-1].file == real.file and cps[-1].server_id == real.server_id
    assert cps[-1].sort_key() > real.sort_key()

    blind = _source(mysql_db, history=history)
    with pytest.raises(PositionLostError, match="server_id 999999"):
        blind.open(SourceOffset(MySqlPosition("old-primary-bin.000042", 98765, None, 999_999)))
    blind.close()


def test_snapshot_start_position_carries_the_gtid_set(mysql_db) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY)")
        cur.execute("INSERT INTO t VALUES (1)")
    src = _source(mysql_db, snapshot="initial")
    src.open(None)
    try:
        items = _drain(src, lambda xs: any(isinstance(x, ChangeEvent) for x in xs)
                       and isinstance(xs[-1], Checkpoint) and xs[-1].offset.phase == "streaming", 30)
    finally:
        src.close()
    position = items[-1].offset.position
    with conn.cursor() as cur:  # the server's own answer for that binlog position
        cur.execute("SELECT BINLOG_GTID_POS(%s, %s)", (position.file, position.pos))
        assert position.gtid_set == cur.fetchone()[0] != ""
