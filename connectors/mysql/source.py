"""The MySQL/MariaDB binlog source (streaming).

python-mysql-replication speaks the replication protocol; :mod:`connectors.mysql.reader` wraps
its reader so that the events of every row change (a table map already seen, the rows event,
XID, MariaDB GTID) skip the library's parsing, and :mod:`connectors.mysql.decoder` decodes the
rows. What a table map's bytes mean (table, captured or not, decoder, definition) is worked out
once per distinct table map. This module turns the events into cdc items:

* a :class:`~cdc.events.SchemaChange` whenever a captured table's definition (from its
  FULL-metadata table map) is new or differs from the last one seen;
* a :class:`~cdc.events.ChangeEvent` per row image;
* a :class:`~cdc.events.Checkpoint` at every transaction end (XID, ``COMMIT``, or a DDL
  statement), carrying the binlog file and position **after** it and the GTID set executed
  up to it: the only resume points;
* a :class:`~cdc.events.Heartbeat` while the server is idle.

Reconnects never replay or skip: the library's own reconnect (which re-sends the original
start position, its issue #367) is disabled. A lost connection recreates the reader at the
last checkpoint and skips exactly the row changes of the open transaction already emitted
(they keep their places in the transaction's order).

**XA transactions** take effect at ``XA COMMIT``, not where their rows are in the binlog (the
``XA PREPARE`` group, ended by an XA_PREPARE event): the rows of a prepared transaction are
held in memory until its ``XA COMMIT`` (then emitted, before that commit's checkpoint) or
``XA ROLLBACK`` (then dropped). MariaDB marks the prepare group in its GTID event, MySQL starts
it with ``XA START``; ``XA COMMIT … ONE PHASE`` is an ordinary transaction on MariaDB and a
one-phase XA_PREPARE event on MySQL. While a prepared transaction is pending, every checkpoint
also carries ``xa_resume``: the checkpoint before the oldest pending prepare group. A restart
reads the binlog again from there without emitting anything up to the stored position (the
pending rows are collected again, and commits and rollbacks already passed are applied to them
only), so a crash between ``XA PREPARE`` and ``XA COMMIT`` loses nothing and repeats nothing.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from cdc import __version__
from cdc.connector import Problem, Source
from cdc.errors import (
    ConnectError,
    ConnectionLostError,
    PositionLostError,
    ServerSettingError,
    TerminalError,
)
from cdc.events import ChangeEvent, Checkpoint, Heartbeat, Item, Op, SchemaChange, TableId, TableSchema
from cdc.positions import MySqlPosition, SourceOffset, position_from_dict
from connectors.mysql.config import MySqlSourceConfig
from connectors.mysql.decoder import (
    DecoderOptions,
    RowDecoder,
    RowsKind,
    compile_decoder,
    event_body,
    raw_rows,
    rows_from_body,
)
from connectors.mysql.gtid import GtidSet
from connectors.mysql.reader import KnownTableMap, MariadbGtid, RowsData, TableMapSeen, Xid, open_reader
from connectors.mysql.schema import (
    TypeModes,
    ddl_column_defaults,
    same_definition,
    schema_from_table_map,
    with_defaults,
    without_columns,
)

__all__ = ["MySqlSource", "create_source"]

log = logging.getLogger("cdc.mysql")

REQUIRED_SETTINGS = {
    "log_bin": ("1", "ON"),
    "binlog_format": ("ROW",),
    "binlog_row_image": ("FULL",),
    "binlog_row_metadata": ("FULL",),
}
_DDL = re.compile(r"^\s*(CREATE|ALTER|DROP|RENAME|TRUNCATE)\b", re.IGNORECASE)


_OPS = {RowsKind.WRITE: Op.CREATE, RowsKind.UPDATE: Op.UPDATE, RowsKind.DELETE: Op.DELETE}
_MAX_KNOWN_MAPS = 4096


class _TableMap(TableMapSeen):
    """What one TABLE_MAP's bytes mean to the source, worked out once (see :mod:`connectors.mysql.reader`):
    the table, whether it is captured and, if so, its decoder and definition (``exclude_columns``
    applied; ``kept`` names the columns left when some were excluded)."""

    __slots__ = ("decoder", "kept", "key", "schema", "table")

    def __init__(
        self,
        library_table: Any,
        table: TableId,
        decoder: RowDecoder | None = None,
        schema: TableSchema | None = None,
        kept: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(library_table)
        self.table = table
        self.decoder = decoder
        self.schema = schema
        self.kept = kept
        self.key: tuple[str, ...] = schema.primary_key if schema is not None else ()


def _connection_settings(url: str) -> dict[str, Any]:
    from urllib.parse import unquote, urlsplit

    p = urlsplit(url)
    return {
        "host": p.hostname or "127.0.0.1",
        "port": p.port or 3306,
        "user": unquote(p.username or ""),
        "password": unquote(p.password or ""),
    }


class MySqlSource(Source):
    """Streams a MySQL/MariaDB binlog. See the module docstring for what it emits."""

    def __init__(
        self,
        config: MySqlSourceConfig,
        prefix: str,
        history: Sequence[SchemaChange] = (),
    ) -> None:
        self.cfg = config
        self.prefix = prefix
        self.modes = TypeModes.from_config(config)
        self._history = list(history)
        self._decoder_options = DecoderOptions.from_config(config)
        self._maps: dict[bytes, TableMapSeen] = {}  # TABLE_MAP bytes -> what they mean (reader.py)
        self._by_id: dict[int, _TableMap] = {}  # table id -> its latest table map
        self._active: dict[TableId, tuple[_TableMap, TableSchema]] = {}  # table map and definition in force
        self._settings = _connection_settings(config.url.get_secret_value())
        self._reader: Any = None
        self._schemas: dict[TableId, TableSchema] = {}
        self._committed: MySqlPosition | None = None  # last checkpoint emitted
        self._file = ""
        self._pos = 0
        self._gtids = GtidSet()  # executed up to the last checkpoint (connectors/mysql/gtid.py)
        self._auto_position: str | None = None  # resuming by GTID set (another server): until a checkpoint
        self._gtid: str | None = None
        self._in_txn = False
        self._emitted_in_txn = 0
        self._skip = 0
        self._pending_ddl: list[tuple[str, str]] = []  # recent (database, statement), newest last
        self._xa_group = False  # the current group is an XA PREPARE group: its rows wait for XA COMMIT
        self._xa_xid = ""  # its XID, as XA END names it
        self._xa_rows: list[Item] = []
        self._xa_start: MySqlPosition | None = None  # the checkpoint before it
        self._prepared: dict[str, tuple[MySqlPosition, list[Item]]] = {}  # XID -> (resume point, rows)
        self._replay_until: MySqlPosition | None = None  # re-reading up to the stored position (XA resume)
        self._txn_order = 0
        self._last_beat = 0.0
        self._server_id: int | None = None
        self._snapshot: Any = None
        self._snapshot_iter: Any = None
        self._snapshot_done = False
        self._engine: Any = None

    # ------------------------------------------------------------------ checks and start

    def _connect(self) -> Any:
        import pymysql

        try:
            return pymysql.connect(
                host=self._settings["host"],
                port=self._settings["port"],
                user=self._settings["user"],
                password=self._settings["password"],
                autocommit=True,
                connect_timeout=10,
            )
        except pymysql.err.OperationalError as exc:
            code = exc.args[0] if exc.args else 0
            if code == 1045:
                raise ConnectError(
                    f"MySQL refused the login of user {self._settings['user']!r} "
                    f"at {self._settings['host']}:{self._settings['port']} (wrong password?)"
                ) from exc
            raise ConnectError(
                f"cannot connect to MySQL at {self._settings['host']}:{self._settings['port']}: "
                f"{exc.args[-1] if exc.args else exc}"
            ) from exc

    def check(self) -> list[Problem]:
        problems: list[Problem] = []
        try:
            conn = self._connect()
        except ConnectError as exc:
            return [Problem("source", str(exc))]
        with conn, conn.cursor() as cur:
            for name, allowed in REQUIRED_SETTINGS.items():
                cur.execute("SELECT @@" + name)  # names come from the constant above, never from input
                value = str(cur.fetchone()[0]).upper()
                if value not in allowed:
                    problems.append(
                        Problem(
                            "source",
                            f"server setting {name} is {value}; cdc needs {allowed[0]}",
                            f"set {name}={allowed[0]} in the server's config and restart it",
                        )
                    )
            cur.execute("SELECT @@server_id")
            if int(cur.fetchone()[0]) == self.cfg.server_id:
                problems.append(
                    Problem(
                        "source",
                        f"source.server_id {self.cfg.server_id} equals the server's own server_id",
                        "choose another number",
                    )
                )
            cur.execute("SHOW GRANTS")
            grants = " ".join(str(r[0]).upper() for r in cur.fetchall())
            if "ALL PRIVILEGES ON *.*" not in grants:
                if "REPLICATION SLAVE" not in grants and "REPLICATION REPLICA" not in grants:
                    problems.append(
                        Problem(
                            "source",
                            "the user lacks the REPLICATION SLAVE grant",
                            "GRANT REPLICATION SLAVE ON *.* TO the cdc user",
                        )
                    )
                if not any(g in grants for g in ("REPLICATION CLIENT", "BINLOG MONITOR", "SLAVE MONITOR")):
                    problems.append(
                        Problem(
                            "source",
                            "the user lacks REPLICATION CLIENT (or BINLOG MONITOR)",
                            "GRANT REPLICATION CLIENT ON *.* TO the cdc user",
                        )
                    )
                if "SELECT" not in grants:
                    problems.append(Problem("source", "the user lacks the SELECT grant on the captured tables"))
        return problems

    def open(self, start: SourceOffset | None) -> None:
        conn = self._connect()
        with conn, conn.cursor() as cur:
            for name, allowed in REQUIRED_SETTINGS.items():
                cur.execute("SELECT @@" + name)
                value = str(cur.fetchone()[0]).upper()
                if value not in allowed:
                    raise ServerSettingError(f"server setting {name} is {value}; cdc needs {allowed[0]}")
            cur.execute("SELECT @@server_id")
            self._server_id = int(cur.fetchone()[0])
            cur.execute("SHOW BINARY LOGS")
            files = [str(r[0]) for r in cur.fetchall()]
            snapshot_needed = (
                (start is None and self.cfg.snapshot != "never")
                or (start is not None and start.phase == "snapshot")
                or (self.cfg.snapshot == "always" and not self._snapshot_done)
            )
            if snapshot_needed:
                self._start_snapshot(start)
                return
            if start is None or start.position is None:
                cur.execute("SHOW MASTER STATUS")
                row = cur.fetchone()
                if row is None:
                    raise ServerSettingError("SHOW MASTER STATUS returned nothing: is log_bin on?")
                self._file, self._pos = str(row[0]), int(row[1])
                self._gtids = self._read_gtids(cur, self._file, self._pos, row)
            else:
                pos = start.position
                if not isinstance(pos, MySqlPosition):
                    raise PositionLostError(f"the stored position is not a MySQL binlog position: {pos}")
                other_server = pos.server_id is not None and pos.server_id != self._server_id
                if (other_server or pos.file not in files) and self.cfg.gtid and pos.gtid_set:
                    # a failover (or renamed binlogs): the GTID set says where to go on this server
                    if start.extra.get("xa_resume"):
                        raise PositionLostError(
                            "the stored position has a prepared XA transaction pending, and it was taken on "
                            f"another server (server_id {pos.server_id}): its rows cannot be read again here",
                            hint="re-snapshot the pipeline",
                        )
                    self._auto_position = pos.gtid_set
                    self._gtids = GtidSet(pos.gtid_set)
                    self._file, self._pos = "", 4  # known from the server's first rotate event
                    log.info("resuming by GTID set %s (stored position %s)", pos.gtid_set, pos)
                elif other_server:
                    raise PositionLostError(
                        f"the stored position was taken on server_id {pos.server_id}, but this server is "
                        f"server_id {self._server_id}; binlog positions do not carry over between servers"
                        + ("" if self.cfg.gtid else " (and gtid: false)"),
                        hint="re-snapshot the pipeline" + ("" if pos.gtid_set else ", or turn GTIDs on"),
                    )
                elif pos.file not in files:
                    raise PositionLostError(
                        f"binlog file {pos.file} of the stored position is no longer on the server (purged?); "
                        "resuming would silently skip changes",
                        hint="re-snapshot the pipeline",
                    )
                else:
                    self._file, self._pos = pos.file, pos.pos
                    self._gtids = GtidSet(pos.gtid_set)
                resume = None if self._auto_position else start.extra.get("xa_resume")
                if resume:  # prepared XA transactions were pending: collect their rows again
                    back = position_from_dict(resume)
                    if not isinstance(back, MySqlPosition) or back.file not in files:
                        raise PositionLostError(
                            f"the binlog of a prepared XA transaction pending at the stored position ({resume}) "
                            "is no longer on the server (purged?); its rows cannot be read again",
                            hint="re-snapshot the pipeline",
                        )
                    self._replay_until = pos
                    self._file, self._pos = back.file, back.pos
                    self._gtids = GtidSet(back.gtid_set)
        self._committed = None if self._auto_position else self._position()
        for change in self._history:  # definitions in force at the start position
            self._schemas[change.schema.table] = change.schema
        self._open_reader()

    def _start_snapshot(self, start: SourceOffset | None) -> None:
        from sqlalchemy import create_engine

        from connectors.mysql.snapshot import Snapshot
        from connectors.sql.config import sqlalchemy_url

        if self._engine is None:
            self._engine = create_engine(sqlalchemy_url(self.cfg.url.get_secret_value()), pool_pre_ping=True)
        resume = start if start is not None and start.phase == "snapshot" else None
        self._snapshot = Snapshot(self.cfg, self.prefix, self._engine, self.modes, resume)
        self._snapshot_iter = self._snapshot.items(self._server_id, self.cfg.max_batch_events)

    def start_offset(self) -> SourceOffset | None:
        """Where a fresh streaming start begins: store it before anything else, so that a crash
        before the first checkpoint resumes here instead of at the server's position by then.
        None while a snapshot runs (its chunk checkpoints are the resume points)."""
        if self._committed is None or self._snapshot_iter is not None:
            return None
        return SourceOffset(self._committed, "streaming", extra={"server_id": self._server_id})

    def snapshot_progress(self) -> dict[str, Any] | None:
        if self._snapshot_iter is None or self._snapshot is None:
            return None
        view: dict[str, Any] = self._snapshot.progress.view()
        return view

    def check_position(self, offset: SourceOffset) -> list[Problem]:
        pos = offset.position
        if offset.phase == "snapshot" or pos is None:
            return []
        if not isinstance(pos, MySqlPosition):
            return [Problem("source", f"the stored position is not a MySQL binlog position: {pos}")]
        try:
            conn = self._connect()
        except ConnectError as exc:
            return [Problem("source", str(exc))]
        problems: list[Problem] = []
        with conn, conn.cursor() as cur:
            cur.execute("SELECT @@server_id")
            server_id = int(cur.fetchone()[0])
            cur.execute("SHOW BINARY LOGS")
            files = {str(r[0]) for r in cur.fetchall()}
            other_server = pos.server_id is not None and pos.server_id != server_id
            if (other_server or pos.file not in files) and self.cfg.gtid and pos.gtid_set:
                return []  # resumes by GTID set; the server says at start whether it still has them
            if other_server:
                problems.append(
                    Problem(
                        "source",
                        f"the stored position was taken on server_id {pos.server_id}, but this server is "
                        f"server_id {server_id}",
                        "binlog positions do not carry over between servers: re-snapshot the pipeline",
                    )
                )
            if pos.file not in files:
                problems.append(
                    Problem(
                        "source",
                        f"binlog file {pos.file} of the stored position is no longer on the server (purged?)",
                        "re-snapshot the pipeline; resuming would skip changes",
                    )
                )
        return problems

    def _finish_snapshot(self) -> None:
        snap = self._snapshot
        assert snap is not None and snap.start_position is not None
        self._snapshot_iter = None
        self._snapshot_done = True
        self._schemas.update(snap.schemas)
        self._file, self._pos = snap.start_position.file, snap.start_position.pos
        self._gtids = GtidSet(snap.start_position.gtid_set)
        self._committed = self._position()
        self._open_reader()

    @staticmethod
    def _read_gtids(cur: Any, file: str, pos: int, status: Any) -> GtidSet:
        """The executed GTID set at ``file:pos``: MariaDB computes it for any position
        (``BINLOG_GTID_POS``); MySQL's ``SHOW MASTER STATUS`` row carries it as Executed_Gtid_Set."""
        if len(status) > 4 and status[4]:
            return GtidSet(str(status[4]))
        try:
            cur.execute("SELECT BINLOG_GTID_POS(%s, %s)", (file, pos))
            return GtidSet(str(cur.fetchone()[0] or ""))
        except Exception:  # noqa: BLE001 - not MariaDB, or GTIDs off: positions are file:pos only
            return GtidSet()

    def _position(self) -> MySqlPosition:
        return MySqlPosition(self._file, self._pos, str(self._gtids) or None, self._server_id)

    def _open_reader(self) -> None:
        from pymysqlreplication.event import (
            GtidEvent,
            HeartbeatLogEvent,
            MariadbGtidEvent,
            QueryEvent,
            RotateEvent,
            XAPrepareEvent,
            XidEvent,
        )
        from pymysqlreplication.row_event import DeleteRowsEvent, TableMapEvent, UpdateRowsEvent, WriteRowsEvent

        where: dict[str, Any] = {"resume_stream": True, "log_file": self._file, "log_pos": self._pos}
        if self._auto_position:  # by GTID set: COM_BINLOG_DUMP_GTID (MySQL) or slave_connect_state (MariaDB)
            where = {"auto_position": str(self._gtids), "is_mariadb": "-" in str(self._gtids).split(",")[0]}
        self._reader = open_reader(
            self._maps,
            connection_settings=self._settings,
            server_id=self.cfg.server_id,
            blocking=True,
            **where,
            slave_heartbeat=0.25,
            only_events=[
                RotateEvent,
                MariadbGtidEvent,
                GtidEvent,
                QueryEvent,
                XidEvent,
                XAPrepareEvent,
                TableMapEvent,
                WriteRowsEvent,
                UpdateRowsEvent,
                DeleteRowsEvent,
                HeartbeatLogEvent,
            ],
            enable_logging=False,  # file/pos resume (COM_BINLOG_DUMP) works on MariaDB and MySQL alike
        )

    # ------------------------------------------------------------------ reading

    def read_batch(self, max_items: int, timeout_s: float) -> Sequence[Item]:
        if self._snapshot_iter is not None:
            batch: list[Item] | None = next(self._snapshot_iter, None)
            if batch is not None:
                return batch
            self._finish_snapshot()
        items: list[Item] = []
        deadline = time.monotonic() + timeout_s
        # Decoding allocates a few objects per row, none of them cyclic, that live until the batch is
        # published: pausing the cyclic garbage collector meanwhile spares it scanning every live
        # object again and again (as the SQL sink does while converting a batch).
        paused = gc.isenabled()
        gc.disable()
        try:
            while len(items) < max_items:
                try:
                    event = self._reader.fetchone()
                except ConnectionLostError:
                    self._reconnect()
                    event = False
                except Exception as exc:
                    import pymysql

                    if not isinstance(exc, pymysql.err.OperationalError):
                        raise
                    code = exc.args[0] if exc.args else 0
                    if code == 1236:  # ER_MASTER_FATAL_ERROR_READING_BINLOG: purged or unknown position
                        raise PositionLostError(
                            f"the server cannot send the binlog from {self._file}:{self._pos}: {exc.args[-1]}"
                        ) from exc
                    self._reconnect()
                    event = False
                if event is None:
                    break
                if event is not False:
                    self._handle(event, items)
                if time.monotonic() >= deadline:  # also while reconnecting: the caller gets control back
                    break
        finally:
            if paused:
                gc.enable()
        return items

    def _reconnect(self) -> None:
        """Reopen at the last checkpoint and skip the open transaction's row images already emitted."""
        if self._reader is not None:
            with contextlib.suppress(Exception):  # the connection is gone anyway
                self._reader.close()
        committed = self._committed
        if committed is not None:
            self._file, self._pos = committed.file, committed.pos
            self._gtids = GtidSet(committed.gtid_set)
        elif self._auto_position:  # resumed by GTID set, no checkpoint on this server yet
            self._gtids = GtidSet(self._auto_position)
        self._skip = self._emitted_in_txn if self._in_txn and not self._xa_group else 0
        self._in_txn = False
        self._emitted_in_txn = 0
        self._xa_group, self._xa_rows = False, []  # an XA group's rows were held: read them again
        if self._replay_until is not None:  # re-reading from the XA resume point: start it over
            self._prepared.clear()
        time.sleep(0.5)
        self._open_reader()

    def _handle(self, event: Any, items: list[Item]) -> None:
        cls = event.__class__
        if cls is RowsData:
            self._rows(event, items)
            return
        if cls is KnownTableMap:
            self._table_map(event, items)
            return
        reader = self._reader
        if cls is Xid:
            self._commit(event, reader, items)
            return
        if cls is MariadbGtid:
            self._begin(str(event.gtid), event.flags)
            return
        name = cls.__name__
        if name == "RotateEvent":
            self._file, self._pos = str(event.next_binlog), int(event.position)
            return
        if name == "HeartbeatLogEvent":
            self._maybe_heartbeat(items)
            return
        if name == "MariadbGtidEvent":
            self._begin(str(event.gtid), int(event.flags))
            return
        if name == "GtidEvent":
            self._begin(str(event.gtid))
            return
        if name == "XAPrepareEvent":
            self._xa_prepared(event, reader, items, bool(event.one_phase))
            return
        if name == "TableMapEvent":
            self._table_map(event, items)
            return
        if name in ("WriteRowsEvent", "UpdateRowsEvent", "DeleteRowsEvent"):
            self._rows(event, items)
            return
        if name == "QueryEvent":
            query = event.query if isinstance(event.query, str) else bytes(event.query).decode(errors="replace")
            if query.strip().upper() == "BEGIN":
                self._in_txn = True
                return
            if query[:3].upper() == "XA ":
                self._xa_statement(query, event, reader, items)
                return
            if _DDL.match(query):
                self._pending_ddl = [*self._pending_ddl[-15:], (_text(event.schema), query)]
            self._commit(event, reader, items)  # COMMIT, or a DDL statement (its own transaction)
            return
        if name == "XidEvent":
            self._commit(event, reader, items)

    def _begin(self, gtid: str, flags: int = 0) -> None:
        self._gtid = gtid
        self._in_txn = True
        self._emitted_in_txn = 0
        self._txn_order = 0
        if flags & _FL_PREPARED_XA:  # MariaDB: this group is an XA PREPARE
            self._start_xa_group()

    def _start_xa_group(self) -> None:
        self._xa_group, self._xa_xid, self._xa_rows = True, "", []
        self._xa_start = self._committed

    def _xa_statement(self, query: str, event: Any, reader: Any, items: list[Item]) -> None:
        """``XA START|BEGIN|END|COMMIT|ROLLBACK <xid>`` as the binlog has them (module docstring)."""
        words = query.split(None, 2)
        verb = words[1].upper() if len(words) > 1 else ""
        xid = _xid(words[2] if len(words) > 2 else "")
        if verb in ("START", "BEGIN"):  # MySQL: the prepare group starts
            self._in_txn = True
            self._start_xa_group()
        elif verb == "END":
            self._xa_xid = xid
        elif verb in ("COMMIT", "ROLLBACK"):
            one_phase = xid.upper().endswith(" ONE PHASE")
            if one_phase:  # not seen in binlogs (MariaDB logs a plain transaction), kept for safety
                xid = _xid(xid[: -len(" ONE PHASE")])
            pending = self._prepared.pop(xid, None)
            if verb == "COMMIT" and self._replay_until is None:
                if pending is not None:
                    self._emit_prepared(pending[1], items)
                elif not one_phase:
                    log.warning(
                        "XA COMMIT %s at %s:%s: its XA PREPARE is before the position cdc started from, so its "
                        "rows were not captured (re-snapshot the tables it changed)",
                        xid,
                        self._file,
                        self._pos,
                    )
            self._commit(event, reader, items)
        # XA PREPARE / XA RECOVER are not in the binlog as statements

    def _xa_prepared(self, event: Any, reader: Any, items: list[Item], one_phase: bool) -> None:
        """The XA_PREPARE event ending a prepare group (or, on MySQL, a one-phase XA COMMIT)."""
        rows, start = self._xa_rows, self._xa_start
        self._xa_group, self._xa_rows = False, []
        if one_phase:
            if self._replay_until is None:
                self._emit_prepared(rows, items)
        elif start is not None:
            self._prepared[self._xa_xid or f"#{len(self._prepared)}"] = (start, rows)
        self._commit(event, reader, items)

    def _emit_prepared(self, rows: list[Item], items: list[Item]) -> None:
        items.extend(rows)

    def _commit(self, event: Any, reader: Any, items: list[Item]) -> None:
        self._file, self._pos = str(reader.log_file), int(reader.log_pos)
        self._in_txn = False
        self._emitted_in_txn = 0
        self._skip = 0
        if self._xa_group:  # a prepare group ended without its XA_PREPARE event: keep nothing back
            self._xa_group = False
            items.extend(self._xa_rows)
            self._xa_rows = []
        target = self._replay_until
        if target is not None:  # re-reading for pending XA transactions: already emitted up to target
            self._gtid = None
            here = MySqlPosition(self._file, self._pos)
            if here.sort_key() < target.sort_key():
                self._committed = self._position()
                return
            self._replay_until = None  # caught up: carry on from the stored position
            self._gtids = GtidSet(target.gtid_set)
            self._committed = self._position()
            self._last_beat = time.monotonic()
            return
        if self._gtid is not None:
            self._gtids.add(self._gtid)
        self._gtid = None
        self._auto_position = None  # file:pos on this server are known from here on
        pos = self._position()
        self._committed = pos
        items.append(Checkpoint(self._offset(pos), int(event.timestamp) * 1000))
        self._last_beat = time.monotonic()

    def _offset(self, pos: MySqlPosition) -> SourceOffset:
        """The stored offset at ``pos``: with ``xa_resume`` while prepared XA transactions are pending."""
        extra: dict[str, Any] = {"server_id": self._server_id}
        if self._prepared:
            oldest = min((start for start, _ in self._prepared.values()), key=MySqlPosition.sort_key)
            extra["xa_resume"] = oldest.to_dict()
        return SourceOffset(pos, "streaming", extra=extra)

    def _maybe_heartbeat(self, items: list[Item]) -> None:
        interval = self.cfg.heartbeat_interval_ms / 1000
        now = time.monotonic()
        if interval <= 0 or now - self._last_beat < interval or self._in_txn or self._replay_until is not None:
            return
        self._last_beat = now
        offset = self._offset(self._committed) if self._committed is not None else None
        items.append(Heartbeat(int(time.time() * 1000), offset))

    def _captured(self, table: TableId) -> bool:
        return bool(self.cfg.includes(table.schema, table.table))

    def _table_map(self, event: Any, items: list[Item]) -> None:
        if event.__class__ is KnownTableMap:
            seen = event.seen
        else:  # the library parsed these bytes: work out once what they mean
            seen = self._learn_table_map(event)
            if seen.library_table is None:  # not captured: the reader drops this table's rows events
                self._reader.table_map.pop(event.table_id, None)
                self._by_id.pop(event.table_id, None)
                return
        assert isinstance(seen, _TableMap) and seen.schema is not None
        self._by_id[event.table_id] = seen
        if self._replay_until is not None:  # re-reading old events: the definitions in force are newer
            return
        table = seen.table
        known = self._schemas.get(table)
        active = self._active.get(table)
        if active is not None and active[0] is seen and active[1] is known:
            return  # the same bytes as the table map before: nothing changed
        if known is not None and same_definition(known, with_defaults(seen.schema, {}, known)):
            self._active[table] = (seen, known)
            return
        ddl = self._ddl_for(table)
        fresh = with_defaults(seen.schema, ddl_column_defaults(ddl), known)
        fresh = replace(fresh, version=(known.version + 1) if known else 1)
        self._schemas[table] = fresh
        self._active[table] = (seen, fresh)
        items.append(
            SchemaChange(
                "CREATE" if known is None else "ALTER",
                fresh,
                ddl,
                self._source_block(table, event, 0),
                int(event.timestamp) * 1000,
                self._position(),
            )
        )

    def _learn_table_map(self, event: Any) -> _TableMap:
        """What a TABLE_MAP the library parsed means (registered under its bytes for the reader)."""
        table = TableId(str(event.schema), str(event.table))
        if not self._captured(table):
            seen = _TableMap(None, table)
        else:
            fresh = schema_from_table_map(
                event, self.modes, version=1, key_columns=self.cfg.key_columns.get(str(table))
            )
            decoder = compile_decoder(event, options=self._decoder_options)
            fresh = _with_decoder_wires(fresh, decoder)
            full = len(fresh.columns)
            fresh = without_columns(fresh, self.cfg.excludes_column)
            kept = fresh.column_names if len(fresh.columns) < full else None
            seen = _TableMap(event.get_table(), table, decoder, fresh, kept)
        if len(self._maps) >= _MAX_KNOWN_MAPS:
            self._maps.clear()
        self._maps[event_body(event)] = seen
        return seen

    def _ddl_for(self, table: TableId) -> str | None:
        """The latest DDL statement seen that names ``table`` (and is not yet attached), if any."""
        word = re.compile(rf"(?<![\w$]){re.escape(table.table)}(?![\w$])", re.IGNORECASE)
        for i in range(len(self._pending_ddl) - 1, -1, -1):
            database, statement = self._pending_ddl[i]
            if word.search(statement) and (database == table.schema or table.schema in statement):
                del self._pending_ddl[i]
                return statement
        return None

    def _source_block(self, table: TableId, event: Any, row: int) -> dict[str, Any]:
        return {
            "version": __version__,
            "connector": "mysql",
            "name": self.prefix,
            "ts_ms": int(event.timestamp) * 1000,
            "snapshot": "false",
            "db": table.schema,
            "sequence": None,
            "table": table.table,
            "server_id": int(event.packet.server_id),
            "gtid": self._gtid,
            "file": self._file,
            "pos": int(event.packet.log_pos) - int(event.event_size),
            "row": row,
            "thread": None,
            "query": None,
        }

    def _rows(self, event: Any, items: list[Item]) -> None:
        seen = self._by_id.get(event.table_id)
        if seen is None:
            table = TableId(str(event.schema), str(event.table))
            if not self._captured(table):
                return
            raise TerminalError(f"a row of {table} arrived before its table definition; refusing to guess it")
        assert seen.decoder is not None
        table = seen.table
        if self._xa_group:
            items = self._xa_rows  # held until XA COMMIT
        elif self._replay_until is not None:
            return  # emitted before the restart
        if event.__class__ is RowsData:
            raw = rows_from_body(event.event_type, event.body, event.post_header_len)
        else:
            raw = raw_rows(event)
        images = seen.decoder.decode_images(raw)  # an update's before and after images alternate
        kept = seen.kept
        if kept is not None:  # exclude_columns removed some
            images = [{n: image[n] for n in kept if n in image} for image in images]
        kind = raw.kind
        update = kind is RowsKind.UPDATE
        count = len(images) >> 1 if update else len(images)
        first = 0
        if self._skip:  # after a reconnect: row changes of the open transaction already emitted
            first = min(self._skip, count)
            self._skip -= first
        self._emitted_in_txn += count
        order = self._txn_order + first  # the skipped changes keep their places in the transaction
        if first == count:
            self._txn_order = order
            return
        op = _OPS[kind]
        ts = int(event.timestamp) * 1000
        now = int(time.time() * 1000)
        gtid = self._gtid
        source = self._source_block(table, event, 0)
        position = MySqlPosition(self._file, int(event.packet.log_pos), None, self._server_id)
        key_columns = seen.key
        single_key = key_columns[0] if len(key_columns) == 1 else None
        append = items.append
        copy = source.copy
        change = ChangeEvent
        before: dict[str, Any] | None = None
        after: dict[str, Any] | None = None
        for i in range(first, count):
            if update:
                before = images[2 * i]
                image = after = images[2 * i + 1]
            elif kind is RowsKind.WRITE:
                image = after = images[i]
            else:
                image = before = images[i]
            if single_key is not None:
                key: dict[str, Any] | None = {single_key: image[single_key]}
            elif key_columns:
                key = {k: image[k] for k in key_columns}
            else:
                key = None
            block = copy()
            block["row"] = i
            order += 1
            append(change(op, table, key, before, after, block, ts, now, gtid, order, order, position))
        self._txn_order = order

    def acknowledge(self, offset: SourceOffset) -> None:
        """MySQL keeps no replica state for us: the stored offset is all there is."""

    def close(self) -> None:
        if self._snapshot_iter is not None:
            self._snapshot_iter.close()
            self._snapshot_iter = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self._reader is not None:
            try:
                self._reader.close()
            finally:
                self._reader = None


_FL_PREPARED_XA = 64  # MariaDB GTID event flags2: the group is an XA PREPARE


def _xid(text: str) -> str:
    """An XID as the binlog writes it (``X'..',X'..',n``), with spacing normalised."""
    return " ".join(text.replace(" ,", ",").replace(", ", ",").split())


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, (bytes, bytearray)) else str(value or "")


def _with_decoder_wires(schema: TableSchema, decoder: RowDecoder) -> TableSchema:
    """The decoder's wire schema for every column: the definition then describes exactly the values
    it produces (ENUM/SET labels in their own charset included)."""
    cols = []
    for col, dec in zip(schema.columns, decoder.columns, strict=True):
        labels = tuple(dec.info.labels) if dec.info.labels is not None else col.enum_values
        cols.append(replace(col, wire=dec.wire, enum_values=labels))
    return replace(schema, columns=tuple(cols))


def create_source(config: MySqlSourceConfig, prefix: str, history: Sequence[SchemaChange] = ()) -> MySqlSource:
    """The source for ``source: {type: mysql}`` (registered in :mod:`cdc.registry`)."""
    return MySqlSource(config, prefix, history)
