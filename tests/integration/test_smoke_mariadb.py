"""MariaDB is real and configured for capture: a row change read through python-mysql-replication."""

from __future__ import annotations

import os

import services


def test_server_settings_allow_row_capture(mysql_db) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_row_metadata, "
                    "@@server_id, @@gtid_strict_mode, @@sync_binlog")
        log_bin, fmt, image, metadata, server_id, strict, sync = cur.fetchone()
    assert (log_bin, fmt, image, metadata) == (1, "ROW", "FULL", "FULL")
    assert server_id > 0
    assert strict == 1
    assert sync == 1


def test_row_change_read_from_binlog_with_column_names(mysql_db) -> None:
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.row_event import UpdateRowsEvent, WriteRowsEvent

    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL, price DECIMAL(10,2))")
        cur.execute("SHOW MASTER STATUS")
        log_file, log_pos = cur.fetchone()[:2]
        cur.execute("INSERT INTO items VALUES (1, %s, 9.99)", ("héllo 🎉",))
        cur.execute("UPDATE items SET price = 10.50 WHERE id = 1")

    params = services.mysql_params(mysql_db.server_url, database="")
    settings = {k: params[k] for k in ("host", "port", "user", "password")}
    reader = BinLogStreamReader(
        connection_settings=settings,
        server_id=50_000 + os.getpid() % 10_000,
        only_events=[WriteRowsEvent, UpdateRowsEvent],
        only_schemas=[mysql_db.name],
        log_file=log_file,
        log_pos=log_pos,
        resume_stream=True,
        blocking=False,
    )
    try:
        events = list(reader)
    finally:
        reader.close()

    assert [type(e) for e in events] == [WriteRowsEvent, UpdateRowsEvent]
    insert, update = events
    assert (insert.schema, insert.table) == (mysql_db.name, "items")
    # binlog_row_metadata=FULL puts column names in the binlog itself
    assert insert.columns and [c.name for c in insert.columns] == ["id", "name", "price"]
    row = insert.rows[0]["values"]
    assert row["id"] == 1 and row["name"] == "héllo 🎉"
    assert str(row["price"]) == "9.99"
    assert str(update.rows[0]["before_values"]["price"]) == "9.99"
    assert str(update.rows[0]["after_values"]["price"]) == "10.50"
