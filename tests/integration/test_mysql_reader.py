"""The cdc binlog reader (connectors/mysql/reader.py) against real MariaDB: its fast path gives
the events, positions and bytes that python-mysql-replication gives for the same binlog range."""

from __future__ import annotations

import random
from typing import Any

import services

from connectors.mysql.decoder import event_body, raw_rows, rows_from_body
from connectors.mysql.reader import KnownTableMap, MariadbGtid, RowsData, TableMapSeen, Xid, open_reader


def _only_events() -> list[Any]:
    from pymysqlreplication.event import GtidEvent, MariadbGtidEvent, QueryEvent, RotateEvent, XidEvent
    from pymysqlreplication.row_event import DeleteRowsEvent, TableMapEvent, UpdateRowsEvent, WriteRowsEvent

    return [
        RotateEvent,
        MariadbGtidEvent,
        GtidEvent,
        QueryEvent,
        XidEvent,
        TableMapEvent,
        WriteRowsEvent,
        UpdateRowsEvent,
        DeleteRowsEvent,
    ]


def _reader_args(mysql_db: Any, start: tuple[str, int]) -> dict[str, Any]:
    params = services.mysql_params(mysql_db.server_url, database="")
    return {
        "connection_settings": {k: params[k] for k in ("host", "port", "user", "password")},
        "server_id": random.randint(1_000_000, 2**31),
        "only_events": _only_events(),
        "log_file": start[0],
        "log_pos": start[1],
        "resume_stream": True,
        "blocking": False,
        "enable_logging": False,
    }


def _read(reader: Any, end: tuple[str, int]) -> list[tuple[Any, int]]:
    """Every event up to ``end`` (other tests may write meanwhile), with the reader's position after it."""
    out = []
    try:
        while (event := reader.fetchone()) is not None:
            out.append((event, int(reader.log_pos)))
            if (str(reader.log_file), int(reader.log_pos)) >= end:
                break
    finally:
        reader.close()
    return out


def _library_reader(mysql_db: Any, start: tuple[str, int]) -> Any:
    from pymysqlreplication import BinLogStreamReader

    return BinLogStreamReader(**_reader_args(mysql_db, start))


def _position(cur: Any) -> tuple[str, int]:
    cur.execute("SHOW MASTER STATUS")
    log_file, log_pos = cur.fetchone()[:2]
    return str(log_file), int(log_pos)


def _write(mysql_db: Any) -> tuple[tuple[str, int], tuple[str, int]]:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40), n BIGINT)")
        cur.execute("CREATE TABLE skip (id INT PRIMARY KEY, v VARCHAR(40))")
        start = _position(cur)
        for txn in range(5):  # the same table maps again and again: the reader's fast path
            cur.execute("BEGIN")
            base = txn * 100
            cur.executemany("INSERT INTO t VALUES (%s, %s, %s)", [(base + i, f"row {i}", i * 7) for i in range(20)])
            cur.execute("INSERT INTO skip VALUES (%s, 'not captured')", (txn,))
            cur.execute("UPDATE t SET v = CONCAT(v, '!'), n = n + 1 WHERE id < %s", (base + 5,))
            cur.execute("DELETE FROM t WHERE id = %s", (base + 19,))
            cur.execute("COMMIT")
        cur.execute("ALTER TABLE t ADD COLUMN z INT FIRST")  # a new definition: new table map bytes
        cur.execute("INSERT INTO t VALUES (-1, 1000, 'after the ALTER', 0)")
        cur.execute("INSERT INTO t VALUES (-2, 1001, 'and again', 0)")
        end = _position(cur)
    conn.close()
    return start, end


def _skipped(mysql_db: Any, event: Any) -> bool:
    """A table map or rows event of the table the test does not capture."""
    return getattr(event, "schema", None) == mysql_db.name and getattr(event, "table", None) == "skip"


def test_fast_path_gives_what_the_library_gives(mysql_db: Any) -> None:
    start, end = _write(mysql_db)
    library = _read(_library_reader(mysql_db, start), end)

    # what the source registers: each table map's bytes, captured (its library table) or not (None)
    known: dict[bytes, TableMapSeen] = {}
    for event, _ in library:
        if type(event).__name__ == "TableMapEvent":
            known[event_body(event)] = TableMapSeen(None if _skipped(mysql_db, event) else event.get_table())
    ours = _read(open_reader(known, **_reader_args(mysql_db, start)), end)

    # the library hands out the rows events of "skip" too: the fast path drops them with their table maps
    expected = [(e, p) for e, p in library if not _skipped(mysql_db, e)]
    assert len(ours) == len(expected)
    fast = {KnownTableMap: 0, RowsData: 0, Xid: 0, MariadbGtid: 0}
    for (mine, my_pos), (theirs, their_pos) in zip(ours, expected, strict=True):
        name = type(theirs).__name__
        assert my_pos == their_pos, name
        if type(mine) in fast:
            fast[type(mine)] += 1
            assert mine.timestamp == theirs.timestamp
            assert mine.packet.log_pos == theirs.packet.log_pos and mine.packet.server_id == theirs.packet.server_id
        if name == "TableMapEvent":
            assert type(mine) is KnownTableMap
            assert mine.table_id == theirs.table_id and mine.body == event_body(theirs)
            assert mine.event_size == theirs.event_size
        elif name in ("WriteRowsEvent", "UpdateRowsEvent", "DeleteRowsEvent"):
            assert type(mine) is RowsData
            assert (mine.schema, mine.table, mine.table_id) == (theirs.schema, theirs.table, theirs.table_id)
            assert mine.event_type == theirs.event_type and mine.body == event_body(theirs)
            assert mine.event_size == theirs.event_size
            assert rows_from_body(mine.event_type, mine.body, mine.post_header_len) == raw_rows(theirs)
        elif name == "XidEvent":
            assert type(mine) is Xid and mine.xid == theirs.xid
        elif name == "MariadbGtidEvent":
            assert type(mine) is MariadbGtid and (mine.gtid, mine.flags) == (theirs.gtid, theirs.flags)
        else:  # everything else is the library's own event
            assert type(mine) is type(theirs)
            assert mine.packet.log_pos == theirs.packet.log_pos
    # 5 transactions + 2 autocommit inserts; 3 table maps of t per transaction before the ALTER
    assert fast[KnownTableMap] >= 15 and fast[RowsData] >= 17 and fast[Xid] >= 7 and fast[MariadbGtid] >= 7


def test_unknown_table_maps_go_through_the_library(mysql_db: Any) -> None:
    """With nothing registered, table maps are the library's and rows events still take the fast path."""
    start, end = _write(mysql_db)
    events = [e for e, _ in _read(open_reader({}, **_reader_args(mysql_db, start)), end)]
    names = {type(e).__name__ for e in events}
    assert "TableMapEvent" in names and "KnownTableMap" not in names
    rows = [e for e in events if type(e) is RowsData]
    assert {(e.schema, e.table) for e in rows if e.schema == mysql_db.name} == {
        (mysql_db.name, "t"),
        (mysql_db.name, "skip"),
    }
