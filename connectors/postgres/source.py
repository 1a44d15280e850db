"""The PostgreSQL source: logical replication with pgoutput over psycopg 3 (COPY BOTH).

**What it emits** (see :class:`cdc.connector.Source`), per transaction, in commit order:

* a :class:`~cdc.events.SchemaChange` before a captured table's first change in this process
  and whenever its Relation message describes a different definition. The Relation message is
  authoritative for column names, order, type oids and type modifiers; the catalog adds
  nullability, defaults, the key and enum labels (read once per Relation message through a
  normal connection, see :class:`~connectors.postgres.snapshot.Catalog`). A label added to an
  enum type sends no Relation message: the first row that carries a label not known yet makes
  the source read the types again and announce the new definition before that row;
* a :class:`~cdc.events.ChangeEvent` per row change: ``c`` (insert), ``u`` (update: ``before``
  from the old tuple when PostgreSQL sends one: every column under ``REPLICA IDENTITY FULL``,
  the key alone under ``DEFAULT`` when the key changed), ``d`` (delete: ``before`` is the old
  or key image, other columns null) and ``t`` (truncate: one event per captured table, no key,
  no images). The ``source`` block has Debezium's PostgreSQL fields (``sequence`` is
  ``["<end LSN of the previous transaction>","<LSN of the change>"]`` as decimal strings);
* a :class:`~cdc.events.Checkpoint` with ``SourceOffset(PgPosition(commit end LSN, xid),
  "streaming")`` after every transaction, also one whose changes were all filtered out;
* a :class:`~cdc.events.Heartbeat` carrying an offset when cdc's own heartbeat message comes
  back through the slot.

**Unchanged TOAST values.** An update that leaves a large (TOASTed) value untouched does not
carry it. Under ``REPLICA IDENTITY FULL`` it is taken from the old tuple. Otherwise the column
is left out of ``after`` and named in :attr:`~cdc.events.ChangeEvent.unchanged`: that is the
event model's canonical form, which the envelope writes as Debezium's placeholder
(``__debezium_unavailable_value``, in the column's wire form) and which the SQL sink applies
by leaving the column untouched.

**Large transactions** (protocol 2, PostgreSQL ≥ 14): PostgreSQL streams a transaction that
outgrows ``logical_decoding_work_mem`` in segments before it commits. The segments' raw
messages are buffered per transaction, in memory up to :data:`STREAM_MEMORY_BYTES` in all,
then in a temporary file per transaction, so memory stays bounded whatever the size. On
``Stream Commit`` the transaction is decoded and emitted like any other (its changes, then
its checkpoint); ``Stream Abort`` drops it, or only the aborted subtransaction's changes.

**Acknowledgement.** The flush LSN reported to the server is only ever the last offset given
to :meth:`PostgresSource.acknowledge` (never what was merely read, never a keepalive's
position), so the slot retains everything not yet durable downstream. Status goes out when
that position advanced (at most once a second), when the server asks, and every 10 s.

**Heartbeats.** While no transaction arrives for ``heartbeat_interval_ms``, the source writes
``pg_logical_emit_message(true, 'cdc_heartbeat', <slot>)`` through its normal connection: a
tiny transaction of its own, so it comes back through the slot as a complete transaction at a
clean boundary. It yields a Heartbeat whose offset is that transaction's end, so the pipeline
acknowledges it and the slot's ``confirmed_flush_lsn`` advances even when every other change
in the database is filtered out (pgoutput sends nothing at all for transactions that touch no
published table). Without the right to call the function, heartbeats carry the last offset.

**Reconnects.** A lost replication connection is reopened at the last acknowledged LSN. The
server resends every transaction that ends after its confirmed position; those that end at or
before the last emitted checkpoint are skipped, and of the transaction that was open when the
connection dropped, exactly the changes already emitted are skipped.

**Failing closed.** A missing slot (dropped while stopped or running), an invalidated slot
(``wal_status = 'lost'``), a slot of another database or plugin, and a stored offset taken on
another cluster (``IDENTIFY_SYSTEM``) or for another slot raise
:class:`~cdc.errors.PositionLostError`. PostgreSQL keeps no identity for a slot, so a slot
recreated under the same name while cdc was stopped cannot be told apart with certainty from
cdc's own slot whose confirmed position is ahead of the stored offset (which is normal: the
slot is confirmed as soon as Kafka acknowledged, the offset record is stored up to
``offset_flush_ms`` later, and the server then resends from its confirmed position). Within
a running process the source knows every position it confirmed, so a slot found ahead of
them on a reconnect was advanced or recreated by someone else, and that is refused.

**Publication.** When missing and ``create_publication`` is true, the source creates it: ``FOR
ALL TABLES`` when a pattern in ``tables`` is ``*.*`` and the user is a superuser (new tables
are then captured as they appear), otherwise ``FOR TABLE`` with every existing table that
``tables``/``exclude_tables`` select (tables created later must be added with ``ALTER
PUBLICATION … ADD TABLE``). The source filters by ``tables``/``exclude_tables`` on top of the
publication in either case. The snapshot reads the selected tables that the publication
covers, and only the columns it publishes.

SQL identifiers in replication commands pass through :mod:`psycopg.sql`, never f-strings.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import select
import struct
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cdc import __version__
from cdc.connector import Problem, Source
from cdc.errors import (
    CdcError,
    ConnectionLostError,
    DecodeError,
    PermissionDeniedError,
    PositionLostError,
    ServerSettingError,
    TerminalError,
)
from cdc.events import ChangeEvent, Checkpoint, Heartbeat, Item, Op, SchemaChange, TableId, TableSchema
from cdc.positions import PgPosition, SourceOffset, format_lsn, parse_lsn, pg_position
from connectors.postgres import pgoutput as po
from connectors.postgres.config import PostgresSourceConfig
from connectors.postgres.config import libpq_url as _libpq_url
from connectors.postgres.errors import connect_error, query_error
from connectors.postgres.snapshot import (
    IDENTITY_NAMES,
    TABLES_SQL,
    Catalog,
    Snapshot,
    SnapshotTable,
    TablePlan,
    same_definition,
)
from connectors.postgres.types import session_options

__all__ = ["HEARTBEAT_PREFIX", "STREAM_MEMORY_BYTES", "PostgresSource", "create_source"]

log = logging.getLogger("cdc.postgres")

#: Prefix of cdc's heartbeat messages (``pg_logical_emit_message``); the content is the slot name.
HEARTBEAT_PREFIX = "cdc_heartbeat"
#: Raw bytes of streamed (not yet committed) transactions kept in memory before spilling to files.
STREAM_MEMORY_BYTES = 64 * 1024 * 1024
#: Status is sent at least this often, keeping the walsender's ``wal_sender_timeout`` at bay.
STATUS_INTERVAL_S = 10.0
#: An acknowledged position is reported within this time.
ACK_INTERVAL_S = 1.0
#: How long open() waits for a slot that is still active (a previous process's walsender).
SLOT_BUSY_WAIT_S = 30.0

_SLOT_SQL = """
SELECT slot_name, plugin, slot_type, database, active, active_pid,
       restart_lsn::text, confirmed_flush_lsn::text, wal_status,
       CASE WHEN restart_lsn IS NULL THEN NULL
            ELSE pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn)::bigint END
FROM pg_catalog.pg_replication_slots WHERE slot_name = %(slot)s
"""
_PUBLISHED_SQL = "SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = %s"
_PUBLISHED_WITH_COLUMNS_SQL = (
    "SELECT schemaname, tablename, attnames::text[] FROM pg_catalog.pg_publication_tables WHERE pubname = %s"
)
_STATE_UNDEFINED_OBJECT = "42704"
_STATE_OBJECT_IN_USE = "55006"
_STATE_NOT_IN_PREREQUISITE = "55000"
_STREAM_RECORD = struct.Struct("!IQI")  # subxid, lsn, payload length


@dataclass(frozen=True)
class SlotState:
    """One row of ``pg_replication_slots``."""

    name: str
    plugin: str | None
    slot_type: str
    database: str | None
    active: bool
    active_pid: int | None
    restart_lsn: int | None
    confirmed_flush_lsn: int | None
    wal_status: str | None
    retained_bytes: int | None


def _lsn(text: Any) -> int | None:
    return None if text is None else parse_lsn(str(text))


# ---------------------------------------------------------------------------------------------
# The replication connection
# ---------------------------------------------------------------------------------------------


class _Replication:
    """A walsender connection: replication commands, then the COPY BOTH stream.

    :meth:`read` returns the next CopyData message or None once ``timeout_s`` passed without
    one; it raises :class:`~cdc.errors.ConnectionLostError` when the connection is gone and the
    translated server error when the server ended the stream with one.
    """

    def __init__(self, url: str, *, reconnect: bool = False) -> None:
        import psycopg

        self.url = url
        try:
            self.conn = psycopg.connect(
                url, replication="database", autocommit=True, options=session_options(), connect_timeout=10
            )
        except psycopg.Error as exc:
            raise connect_error(exc, url, reconnect=reconnect) from exc
        self.pgconn = self.conn.pgconn
        self.server_version = int(self.conn.info.server_version)
        self.streaming = False

    def command(self, query: Any, doing: str) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            cur = self.conn.execute(query)
            return list(cur.fetchall()) if cur.description else []
        except psycopg.Error as exc:
            raise query_error(exc, doing) from exc

    def identify(self) -> tuple[str, int, int, str]:
        """``(system identifier, timeline, current WAL position, database)``."""
        row = self.command("IDENTIFY_SYSTEM", "identifying the server")[0]
        return str(row[0]), int(row[1]), parse_lsn(str(row[2])), str(row[3] or "")

    def create_slot(self, slot: str, *, export: bool) -> tuple[int, str | None]:
        """Create logical slot ``slot`` with pgoutput; ``(consistent point, exported snapshot name)``."""
        from psycopg import sql

        head = sql.SQL("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput ").format(sql.Identifier(slot))
        tail: sql.Composable
        if self.server_version >= 150000:
            tail = sql.SQL("(SNAPSHOT {})").format(sql.Literal("export" if export else "nothing"))
        else:
            tail = sql.SQL("EXPORT_SNAPSHOT" if export else "NOEXPORT_SNAPSHOT")
        row = self.command(head + tail, f"creating replication slot {slot!r}")[0]
        return parse_lsn(str(row[1])), (str(row[2]) if row[2] is not None else None)

    def start(self, slot: str, lsn: int, options: Sequence[tuple[str, str]]) -> None:
        """``START_REPLICATION SLOT slot LOGICAL lsn (options)``; the connection is then in COPY BOTH."""
        from psycopg import pq, sql

        opts = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in options)
        query = sql.SQL("START_REPLICATION SLOT {} LOGICAL {} ({})").format(
            sql.Identifier(slot), sql.SQL(format_lsn(lsn)), opts
        )
        pgconn = self.pgconn
        try:
            pgconn.send_query(query.as_bytes(self.conn))
            res = pgconn.get_result()
        except Exception as exc:
            raise ConnectionLostError(f"starting replication from slot {slot!r} failed: {exc}") from exc
        if res is None or res.status != pq.ExecStatus.COPY_BOTH:
            raise self._result_error(res, f"starting replication from slot {slot!r}")
        self.streaming = True

    def _result_error(self, res: Any, doing: str) -> CdcError:
        from psycopg import pq

        if res is None:
            return ConnectionLostError(f"{doing}: the server sent no result")
        state_b = res.error_field(pq.DiagnosticField.SQLSTATE)
        state = state_b.decode() if state_b else None
        message_b = res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or res.error_message or b""
        message = message_b.decode(errors="replace").strip()
        return _ServerError(f"{doing}: {message}", state)

    def read(self, timeout_s: float) -> memoryview | None:
        import psycopg

        pgconn = self.pgconn
        try:
            n, data = pgconn.get_copy_data(1)
            if n > 0:
                return data
            if n == 0:
                if timeout_s <= 0:
                    return None
                select.select([pgconn.socket], [], [], timeout_s)
                pgconn.consume_input()
                n, data = pgconn.get_copy_data(1)
                if n > 0:
                    return data
                if n == 0:
                    return None
            # n == -1: the server ended the COPY; its result says why
            res = pgconn.get_result()
        except psycopg.Error as exc:
            raise ConnectionLostError(f"the replication connection was lost: {exc}") from exc
        self.streaming = False
        raise self._result_error(res, "streaming")

    def send_status(self, write: int, flush: int, apply: int, *, reply: bool = False) -> None:
        import psycopg

        try:
            self.pgconn.put_copy_data(po.encode_standby_status(write, flush, apply, reply=reply))
            self.pgconn.flush()
        except psycopg.Error as exc:
            raise ConnectionLostError(f"sending replication status failed: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a broken connection
            self.conn.close()


class _ServerError(ConnectionLostError):
    """An error the server ended the replication stream with; ``sqlstate`` picks the cdc error."""

    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


# ---------------------------------------------------------------------------------------------
# Transactions
# ---------------------------------------------------------------------------------------------


@dataclass
class _Txn:
    """The transaction being emitted."""

    xid: int
    commit_lsn: int
    commit_ms: int
    skip_all: bool = False  # already emitted before a reconnect
    skip: int = 0  # changes already emitted before a reconnect
    seen: int = 0  # changes processed (emitted or skipped)
    order: int = 0
    table_order: dict[str, int] = field(default_factory=dict)
    heartbeat: bool = False
    txn_id: str = ""
    sequence_head: str = ""
    sources: dict[TableId, dict[str, Any]] = field(default_factory=dict)  # source block per table, less lsn


@dataclass
class _RelState:
    """What one Relation message means for this source: the table and, if captured, its plan."""

    table: TableId
    signature: tuple[Any, ...]
    plan: TablePlan | None  # None: not captured
    key: tuple[str, ...] = ()
    key_at: tuple[int, ...] = ()
    names: dict[int, str] = field(default_factory=dict)  # tuple index -> kept column name
    name: str = ""  # str(table), hashed once
    single_key: str | None = None  # the key column when the key has exactly one
    announced: bool = False  # its definition was emitted (cleared when another one replaces it)
    oid: int = 0
    enums: tuple[tuple[str, frozenset[str]], ...] = ()  # enum (or enum array) columns and their known labels
    tried: frozenset[str] = frozenset()  # labels already looked up in the catalog, in vain


class _StreamBuffer:
    """The raw messages of one streamed, not yet committed transaction, in order.

    Kept in memory until the source's budget is used up, then in an unnamed temporary file.
    ``aborted`` holds subtransactions whose changes are to be dropped.
    """

    def __init__(self, complete: bool = True) -> None:
        self.complete = complete  # False: its first segment was not seen
        self.records: list[tuple[int, int, bytes]] = []
        self.size = 0
        self.file: Any = None
        self.aborted: set[int] = set()

    def add(self, subxid: int, lsn: int, payload: bytes) -> int:
        """Append a record; the bytes it added to memory."""
        if self.file is not None:
            self.file.write(_STREAM_RECORD.pack(subxid, lsn, len(payload)))
            self.file.write(payload)
            return 0
        self.records.append((subxid, lsn, payload))
        self.size += len(payload)
        return len(payload)

    def spill(self) -> int:
        """Move the records to a temporary file; the bytes freed."""
        if self.file is None:
            self.file = tempfile.TemporaryFile(prefix="cdc-pg-stream-")  # noqa: SIM115 - lives as long as the buffer
        for subxid, lsn, payload in self.records:
            self.file.write(_STREAM_RECORD.pack(subxid, lsn, len(payload)))
            self.file.write(payload)
        freed, self.size, self.records = self.size, 0, []
        return freed

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        if self.file is None:
            yield from self.records
            return
        f = self.file
        f.flush()
        f.seek(0)
        head = _STREAM_RECORD.size
        while True:
            header = f.read(head)
            if not header:
                return
            subxid, lsn, length = _STREAM_RECORD.unpack(header)
            yield subxid, lsn, f.read(length)

    def close(self) -> None:
        self.records = []
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
            self.file = None


# ---------------------------------------------------------------------------------------------
# The source
# ---------------------------------------------------------------------------------------------


class PostgresSource(Source):
    """Streams a PostgreSQL database through a pgoutput slot. See the module docstring."""

    def __init__(self, config: PostgresSourceConfig, prefix: str, history: Sequence[SchemaChange] = ()) -> None:
        self.cfg = config
        self.prefix = prefix
        self._url = _libpq_url(config.url.get_secret_value())
        self._history: dict[TableId, TableSchema] = {c.schema.table: c.schema for c in history}
        self.catalog = Catalog(config, self._connect)
        self._repl: _Replication | None = None
        self._phase: str | None = None
        self._snapshot: Snapshot | None = None
        self._snapshot_iter: Iterator[list[Item]] | None = None
        self._system_id: str | None = None
        self._database = ""
        self._proto = 1
        self._messages = False
        # positions
        self._stream_start = 0  # where START_REPLICATION begins (last acknowledged)
        self._emitted_end = 0  # end LSN of the last transaction emitted
        self._acked = 0  # the flush LSN to confirm
        self._confirmed_max = 0  # highest flush LSN sent to (or found on) the slot
        self._received = 0
        self._last_status = 0.0
        self._last_commit = 0  # for Debezium's sequence
        self._now_ms = 0  # when the current batch was read (events' emitted_ms)
        # decoding state
        self._relations: dict[int, _RelState] = {}
        self._announced: dict[TableId, _RelState] = {}
        self._emitted: dict[TableId, TableSchema] = {}
        self._txn: _Txn | None = None
        self._partial: tuple[int, int] | None = None  # (commit LSN, changes emitted) of a txn cut by a reconnect
        self._in_stream: int | None = None
        self._streams: dict[int, _StreamBuffer] = {}
        self._stream_bytes = 0
        self._replay: Iterator[Item] | None = None
        self._extra: dict[str, Any] = {}
        # heartbeats
        self._last_activity = time.monotonic()
        self._heartbeat_messages = True
        self._slot_bytes = config.slot.encode()

    # ------------------------------------------------------------------ connections

    def _connect(self) -> Any:
        """A normal connection (autocommit) with the replication connection's session settings."""
        import psycopg

        try:
            return psycopg.connect(self._url, autocommit=True, options=session_options(), connect_timeout=10)
        except psycopg.Error as exc:
            raise connect_error(exc, self._url) from exc

    def _slot(self) -> SlotState | None:
        rows = self.catalog.execute(_SLOT_SQL, {"slot": self.cfg.slot}, doing="reading pg_replication_slots")
        if not rows:
            return None
        r = rows[0]
        return SlotState(
            str(r[0]),
            r[1],
            str(r[2]),
            r[3],
            bool(r[4]),
            r[5],
            _lsn(r[6]),
            _lsn(r[7]),
            r[8],
            int(r[9]) if r[9] is not None else None,
        )

    # ------------------------------------------------------------------ check

    def check(self) -> list[Problem]:
        problems: list[Problem] = []
        try:
            conn = self._connect()
        except CdcError as exc:
            return [Problem("source", str(exc))]
        try:
            self._check_server(conn, problems)
        except Exception as exc:  # noqa: BLE001 - check never raises for what it finds
            problems.append(Problem("source", f"checking the server failed: {query_error(exc, 'check')}"))
        finally:
            with contextlib.suppress(Exception):
                conn.close()
        return problems

    def _check_server(self, conn: Any, problems: list[Problem]) -> None:
        from psycopg import sql

        def one(query: str, params: Any = None) -> Any:
            row = conn.execute(query, params).fetchone()
            return row[0] if row else None

        add = problems.append
        slot = self.cfg.slot
        pub = self.cfg.publication
        wal_level = one("SHOW wal_level")
        if wal_level != "logical":
            add(
                Problem(
                    "source",
                    f"server setting wal_level is {wal_level}; cdc needs logical",
                    "set wal_level = logical in postgresql.conf and restart the server",
                )
            )
        super_, replication, user = conn.execute(
            "SELECT rolsuper, rolreplication, rolname FROM pg_catalog.pg_roles WHERE rolname = current_user"
        ).fetchone()
        if not (super_ or replication):
            add(
                Problem(
                    "source",
                    f"user {user!r} has neither the REPLICATION attribute nor superuser",
                    sql.SQL("ALTER ROLE {} REPLICATION").format(sql.Identifier(user)).as_string(conn),
                )
            )
        slot_row = conn.execute(
            "SELECT wal_status, plugin, database FROM pg_catalog.pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
        max_slots = int(one("SHOW max_replication_slots"))
        used = int(one("SELECT count(*) FROM pg_catalog.pg_replication_slots"))
        if slot_row is None:
            if not self.cfg.create_slot:
                add(
                    Problem(
                        "source",
                        f"replication slot {slot!r} does not exist and source.create_slot is false",
                        f"create it: SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')",
                    )
                )
            elif used >= max_slots:
                add(
                    Problem(
                        "source",
                        f"all {max_slots} replication slots are in use; cdc needs one for {slot!r}",
                        "raise max_replication_slots (restart needed) or drop an unused slot",
                    )
                )
        else:
            if slot_row[0] == "lost":
                add(
                    Problem(
                        "source",
                        f"replication slot {slot!r} is invalidated (wal_status lost)",
                        "drop the slot and re-snapshot the pipeline",
                    )
                )
            if slot_row[1] != "pgoutput":
                add(Problem("source", f"replication slot {slot!r} uses plugin {slot_row[1]!r}, not pgoutput"))
            if slot_row[2] != one("SELECT current_database()"):
                add(
                    Problem(
                        "source",
                        f"replication slot {slot!r} belongs to database {slot_row[2]!r}",
                        "point source.url at that database or choose another slot name",
                    )
                )
        max_senders = int(one("SHOW max_wal_senders"))
        senders = int(one("SELECT count(*) FROM pg_catalog.pg_stat_replication"))
        if senders >= max_senders:
            add(
                Problem("source", f"all {max_senders} WAL senders are in use", "raise max_wal_senders (restart needed)")
            )
        # tables
        tables = [
            (int(o), TableId(str(s), str(t)))
            for o, s, t in conn.execute(TABLES_SQL).fetchall()
            if self.cfg.includes(str(s), str(t))
        ]
        if not tables:
            add(
                Problem(
                    "source",
                    "no table matches source.tables / exclude_tables",
                    "check the patterns: they match schema.table, case-sensitively",
                )
            )
        for oid, table in tables:
            ident = sql.Identifier(table.schema, table.table).as_string(conn)
            if not one("SELECT has_table_privilege(%s, 'SELECT')", (oid,)):
                add(
                    Problem(
                        "source",
                        f"user {user!r} may not SELECT from {table}",
                        f"GRANT SELECT ON {ident} TO {sql.Identifier(user).as_string(conn)}",
                    )
                )
            info = self.catalog_for(conn).relation(oid)
            if info is None:
                continue
            if info.identity == "n" or (info.identity == "d" and not info.primary_key):
                why = "has no primary key" if info.identity == "d" else "has REPLICA IDENTITY NOTHING"
                add(
                    Problem(
                        "source",
                        f"table {table} {why}: PostgreSQL cannot log which row an UPDATE or DELETE changed "
                        f"(replica identity {IDENTITY_NAMES[info.identity]})",
                        f"ALTER TABLE {ident} REPLICA IDENTITY FULL",
                    )
                )
        # publication
        pub_row = conn.execute(
            "SELECT puballtables FROM pg_catalog.pg_publication WHERE pubname = %s", (pub,)
        ).fetchone()
        if pub_row is None:
            if not self.cfg.create_publication:
                names = ", ".join(sql.Identifier(t.schema, t.table).as_string(conn) for _, t in tables) or "…"
                add(
                    Problem(
                        "source",
                        f"publication {pub!r} does not exist and source.create_publication is false",
                        f"CREATE PUBLICATION {sql.Identifier(pub).as_string(conn)} FOR TABLE {names}",
                    )
                )
            elif not (super_ or one("SELECT has_database_privilege(current_database(), 'CREATE')")):
                add(
                    Problem(
                        "source",
                        f"user {user!r} may not create publication {pub!r} (needs CREATE on the "
                        "database and ownership of the tables)",
                        "create the publication as the tables' owner",
                    )
                )
        elif not pub_row[0]:
            published = {
                (str(s), str(t))
                for s, t in conn.execute(
                    "SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = %s", (pub,)
                ).fetchall()
            }
            missing = [t for _, t in tables if (t.schema, t.table) not in published]
            if missing:
                shown = ", ".join(sql.Identifier(t.schema, t.table).as_string(conn) for t in missing[:20])
                more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
                add(
                    Problem(
                        "source",
                        f"publication {pub!r} does not cover {len(missing)} configured table(s): "
                        f"{', '.join(str(t) for t in missing[:20])}{more}",
                        f"ALTER PUBLICATION {sql.Identifier(pub).as_string(conn)} ADD TABLE {shown}",
                    )
                )
        if self.cfg.heartbeat_interval_ms > 0 and not one(
            "SELECT has_function_privilege('pg_catalog.pg_logical_emit_message(boolean, text, text)', 'EXECUTE')"
        ):
            add(
                Problem(
                    "source",
                    f"user {user!r} may not call pg_logical_emit_message, so heartbeats cannot "
                    "advance the slot on a quiet database",
                    "GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) TO the cdc user",
                )
            )

    def catalog_for(self, conn: Any) -> Catalog:
        """A catalog reading through ``conn`` (for :meth:`check`)."""
        cat = Catalog(self.cfg, lambda: conn)
        return cat

    def check_position(self, offset: SourceOffset) -> list[Problem]:
        try:
            if self._system_id is None:
                repl = _Replication(self._url)
                try:
                    self._system_id = repl.identify()[0]
                finally:
                    repl.close()
            self._verify_stored(offset, self._slot())
        except PositionLostError as exc:
            return [Problem("source", str(exc).removesuffix(f" {exc.hint}") if exc.hint else str(exc), exc.hint)]
        except CdcError as exc:
            return [Problem("source", str(exc))]
        finally:
            self.catalog.close()
        return []

    def _verify_stored(self, offset: SourceOffset, slot: SlotState | None) -> None:
        """Raise PositionLostError when the stored ``offset`` can no longer be resumed from."""
        pos = offset.position
        if pos is None:
            return
        if not isinstance(pos, PgPosition):
            raise PositionLostError(f"the stored position is not a PostgreSQL position: {pos}")
        stored_slot = offset.extra.get("slot")
        if stored_slot is not None and stored_slot != self.cfg.slot:
            raise PositionLostError(
                f"the stored position belongs to replication slot {stored_slot!r}, but source.slot is "
                f"{self.cfg.slot!r}; a position does not carry over to another slot",
                hint="restore source.slot, or re-snapshot the pipeline",
            )
        if slot is None:
            raise PositionLostError(
                f"replication slot {self.cfg.slot!r} no longer exists (dropped?), so the changes since "
                f"{format_lsn(pos.lsn)} are gone",
                hint="re-snapshot the pipeline (reset its stored offset); cdc creates a new slot",
            )
        self._verify_slot(slot)
        stored_system = offset.extra.get("system_id")
        if stored_system is not None and self._system_id is not None and stored_system != self._system_id:
            raise PositionLostError(
                f"the stored position was taken on PostgreSQL system {stored_system}, but this server is "
                f"system {self._system_id}; WAL positions do not carry over between clusters",
                hint="re-snapshot the pipeline",
            )

    def _verify_slot(self, slot: SlotState) -> None:
        if slot.wal_status == "lost":
            raise PositionLostError(
                f"replication slot {slot.name!r} was invalidated (wal_status lost): the server removed WAL "
                "it still needed (max_slot_wal_keep_size?)",
                hint="drop the slot and re-snapshot the pipeline",
            )
        if slot.slot_type != "logical" or slot.plugin != "pgoutput":
            raise PositionLostError(f"replication slot {slot.name!r} is not a logical pgoutput slot ({slot.plugin})")
        database = self.catalog.database
        if slot.database != database:
            raise PositionLostError(
                f"replication slot {slot.name!r} belongs to database {slot.database!r}, not {database!r}"
            )

    # ------------------------------------------------------------------ open

    def open(self, start: SourceOffset | None) -> None:
        cat = self.catalog
        cat.conn()
        wal_level = cat.execute("SHOW wal_level")[0][0]
        if wal_level != "logical":
            raise ServerSettingError(
                f"server setting wal_level is {wal_level}; cdc needs logical",
                hint="set wal_level = logical in postgresql.conf and restart the server",
            )
        self._database = cat.database
        repl = _Replication(self._url)
        try:
            self._system_id, _timeline, _pos, _db = repl.identify()
            self._extra = {"slot": self.cfg.slot, "system_id": self._system_id}
            version = repl.server_version
            self._proto = 2 if self.cfg.proto_version == 2 and version >= 140000 else 1
            self._messages = version >= 140000
            published = self._ensure_publication()
            slot = self._slot()
            if start is not None:
                self._verify_stored(start, slot)
            elif slot is not None:
                self._verify_slot(slot)
            snapshot_needed = (
                (start is None and self.cfg.snapshot != "never")
                or (start is not None and start.phase == "snapshot")
                or self.cfg.snapshot == "always"
            )
            if start is not None and start.position is not None:
                assert isinstance(start.position, PgPosition)
                lsn = start.position.lsn
            elif slot is not None:
                lsn = slot.confirmed_flush_lsn or slot.restart_lsn or 0
            else:
                if not self.cfg.create_slot:
                    raise ServerSettingError(
                        f"replication slot {self.cfg.slot!r} does not exist and source.create_slot is false",
                        hint=f"create it: SELECT pg_create_logical_replication_slot('{self.cfg.slot}', 'pgoutput')",
                    )
                lsn, exported = repl.create_slot(self.cfg.slot, export=snapshot_needed)
                if snapshot_needed:
                    # the exported snapshot lives while `repl` stays open and idle: import it now
                    self._begin_snapshot(lsn, exported, None, published)
                    return
            if slot is not None:
                self._confirmed_max = max(self._confirmed_max, slot.confirmed_flush_lsn or 0)
            if snapshot_needed:
                resume = start if start is not None and start.phase == "snapshot" else None
                self._begin_snapshot(lsn, None, resume, published)
                return
        finally:
            repl.close()
        self._start_streaming(lsn)

    def _ensure_publication(self) -> dict[str, tuple[str, ...] | None] | None:
        """Create the publication if missing and allowed. Returns the tables it publishes with their
        published columns (``schema.table`` → names), or None when it publishes all tables."""
        from psycopg import sql

        cat = self.catalog
        pub = self.cfg.publication
        rows = cat.execute("SELECT puballtables FROM pg_catalog.pg_publication WHERE pubname = %s", (pub,))
        if not rows:
            if not self.cfg.create_publication:
                raise ServerSettingError(
                    f"publication {pub!r} does not exist and source.create_publication is false",
                    hint=f"create it, e.g. CREATE PUBLICATION {pub} FOR TABLE <the captured tables>",
                )
            superuser = bool(cat.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user")[0][0])
            everything = any(p in ("*.*", "*") for p in self.cfg.tables)
            name = sql.Identifier(pub)
            if everything and superuser:
                query = sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(name)
            else:
                tables = [
                    sql.Identifier(str(s), str(t))
                    for _, s, t in cat.execute(TABLES_SQL)
                    if self.cfg.includes(str(s), str(t))
                ]
                if tables:
                    query = sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(name, sql.SQL(", ").join(tables))
                else:
                    log.warning("publication %s is created without tables: none matches source.tables yet", pub)
                    query = sql.SQL("CREATE PUBLICATION {}").format(name)
            cat.execute(query, doing=f"creating publication {pub!r}")
            rows = cat.execute("SELECT puballtables FROM pg_catalog.pg_publication WHERE pubname = %s", (pub,))
        if rows[0][0]:
            return None
        with_columns = cat.server_version >= 150000
        published: dict[str, tuple[str, ...] | None] = {}
        for row in cat.execute(_PUBLISHED_WITH_COLUMNS_SQL if with_columns else _PUBLISHED_SQL, (pub,)):
            published[f"{row[0]}.{row[1]}"] = tuple(row[2]) if with_columns and row[2] is not None else None
        return published

    def _snapshot_tables(self, published: dict[str, tuple[str, ...] | None] | None) -> list[SnapshotTable]:
        out: list[SnapshotTable] = []
        unpublished: list[str] = []
        for oid, s, t in self.catalog.execute(TABLES_SQL):
            table = TableId(str(s), str(t))
            if not self.cfg.includes(table.schema, table.table):
                continue
            if published is not None and str(table) not in published:
                unpublished.append(str(table))
                continue
            out.append(SnapshotTable(int(oid), table, published.get(str(table)) if published is not None else None))
        if unpublished:
            log.warning(
                "%d table(s) match source.tables but are not in publication %s, so cdc does not capture them: %s",
                len(unpublished),
                self.cfg.publication,
                ", ".join(unpublished[:20]),
            )
        return out

    def _begin_snapshot(
        self,
        lsn: int,
        exported: str | None,
        resume: SourceOffset | None,
        published: dict[str, tuple[str, ...] | None] | None,
    ) -> None:
        start = PgPosition(lsn)
        self._snapshot = Snapshot(
            self.cfg,
            self.prefix,
            self.catalog,
            connect=self._connect,
            start=start,
            tables=self._snapshot_tables(published),
            resume=resume,
            extra=self._extra,
        )
        self._snapshot.begin(exported)
        self._snapshot_iter = self._snapshot.items()
        self._phase = "snapshot"
        self._emitted_end = lsn
        self._acked = max(self._acked, lsn)

    def _finish_snapshot(self) -> None:
        snap = self._snapshot
        assert snap is not None
        self._snapshot_iter = None
        self._emitted.update(snap.schemas)
        self._start_streaming(snap.start.lsn)

    def _start_streaming(self, lsn: int) -> None:
        self._phase = "streaming"
        self._emitted_end = max(self._emitted_end, lsn)
        self._last_commit = max(self._last_commit, lsn)
        self._acked = max(self._acked, lsn)
        self._confirmed_max = max(self._confirmed_max, lsn)
        self._open_stream(reconnect=False)

    def _options(self) -> list[tuple[str, str]]:
        pub = '"' + self.cfg.publication.replace('"', '""') + '"'
        opts = [("proto_version", str(self._proto)), ("publication_names", pub)]
        if self._messages:
            opts.append(("messages", "true"))
        if self._proto >= 2:
            opts.append(("streaming", "true"))
        return opts

    def _open_stream(self, *, reconnect: bool) -> None:
        """Connect and START_REPLICATION at the acknowledged position, waiting for a slot still held
        by a previous walsender."""
        deadline = time.monotonic() + SLOT_BUSY_WAIT_S
        while True:
            repl = _Replication(self._url, reconnect=reconnect)
            try:
                repl.start(self.cfg.slot, self._acked, self._options())
            except _ServerError as exc:
                repl.close()
                if exc.sqlstate == _STATE_OBJECT_IN_USE and time.monotonic() < deadline:
                    time.sleep(0.5)
                    continue
                raise self._stream_error(exc) from exc
            except BaseException:
                repl.close()
                raise
            break
        self._repl = repl
        self._last_status = 0.0
        self._received = max(self._received, self._acked)
        self._send_status()

    def _stream_error(self, exc: _ServerError) -> CdcError:
        """The cdc error for an error the server raised on the replication stream."""
        if exc.sqlstate == _STATE_OBJECT_IN_USE:
            return ConnectionLostError(f"replication slot {self.cfg.slot!r} is in use by another process: {exc}")
        if exc.sqlstate in (_STATE_UNDEFINED_OBJECT, _STATE_NOT_IN_PREREQUISITE):
            try:
                slot = self._slot()
                pubs = self.catalog.execute(
                    "SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = %s", (self.cfg.publication,)
                )
            except CdcError:
                return TerminalError(str(exc))
            if slot is None:
                return PositionLostError(
                    f"replication slot {self.cfg.slot!r} no longer exists (dropped?): {exc}",
                    hint="re-snapshot the pipeline (reset its stored offset); cdc creates a new slot",
                )
            try:
                self._verify_slot(slot)
            except PositionLostError as lost:
                return lost
            if not pubs:
                return ServerSettingError(f"publication {self.cfg.publication!r} no longer exists: {exc}")
            return TerminalError(str(exc))
        if exc.sqlstate is not None and exc.sqlstate.startswith(("08", "57P")):
            return ConnectionLostError(str(exc))
        if exc.sqlstate == "42501":
            return PermissionDeniedError(str(exc))
        return TerminalError(str(exc))

    # ------------------------------------------------------------------ Source API

    def start_offset(self) -> SourceOffset | None:
        """None: the slot keeps the start position durable on the server."""
        return None

    def snapshot_progress(self) -> dict[str, Any] | None:
        if self._snapshot_iter is None or self._snapshot is None:
            return None
        view: dict[str, Any] = self._snapshot.progress.view()
        return view

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"slot": self.cfg.slot, "publication": self.cfg.publication}
        if self._phase is not None:
            out["phase"] = self._phase
        try:
            slot = self._slot()
        finally:
            if self._repl is None and self._snapshot_iter is None:
                self.catalog.close()
        if slot is None:
            out["slot_exists"] = False
            return out
        out.update(
            {
                "slot_exists": True,
                "slot_active": slot.active,
                "confirmed_flush_lsn": format_lsn(slot.confirmed_flush_lsn) if slot.confirmed_flush_lsn else None,
                "restart_lsn": format_lsn(slot.restart_lsn) if slot.restart_lsn else None,
                "wal_status": slot.wal_status,
                "wal_retained_bytes": slot.retained_bytes,
            }
        )
        return out

    def acknowledge(self, offset: SourceOffset) -> None:
        """Confirm ``offset`` as the slot's flush position (sent within :data:`ACK_INTERVAL_S`)."""
        pos = offset.position
        if not isinstance(pos, PgPosition):
            return
        lsn = min(pos.lsn, self._emitted_end)  # never beyond what this source emitted
        if lsn > self._acked:
            self._acked = lsn
            if self._repl is not None and time.monotonic() - self._last_status >= ACK_INTERVAL_S:
                self._send_status()

    def close(self) -> None:
        if self._snapshot_iter is not None:
            with contextlib.suppress(Exception):
                self._snapshot_iter.close()  # type: ignore[attr-defined]
            self._snapshot_iter = None
        if self._snapshot is not None:
            self._snapshot.close()
        if self._repl is not None:
            with contextlib.suppress(CdcError):
                if self._repl.streaming:
                    self._send_status()
            self._repl.close()
            self._repl = None
        for buf in self._streams.values():
            buf.close()
        self._streams.clear()
        self._stream_bytes = 0
        self.catalog.close()

    # ------------------------------------------------------------------ reading

    def read_batch(self, max_items: int, timeout_s: float) -> Sequence[Item]:
        deadline = time.monotonic() + timeout_s
        self._now_ms = int(time.time() * 1000)
        if self._snapshot_iter is not None:
            batch = next(self._snapshot_iter, None)
            if batch is not None:
                return batch
            self._finish_snapshot()
        items: list[Item] = []
        if self._replay is not None:
            self._drain_replay(items, max_items)
        # Decoding allocates a few objects per row, none of them cyclic, that live until the batch is
        # published: pausing the cyclic garbage collector meanwhile spares it scanning every live
        # object again and again (as the MySQL source and the SQL sink do).
        paused = gc.isenabled()
        gc.disable()
        try:
            self._stream_into(items, max_items, deadline)
        finally:
            if paused:
                gc.enable()
        self._housekeeping(items)
        return items

    def _stream_into(self, items: list[Item], max_items: int, deadline: float) -> None:
        decode_copy_data = po.decode_copy_data
        xlogdata = po.XLogData
        on_message = self._on_message
        monotonic = time.monotonic
        while len(items) < max_items and self._replay is None:
            repl = self._repl
            if repl is None:
                raise ConnectionLostError("the replication stream is not open")
            try:
                data = repl.read(deadline - monotonic())
            except ConnectionLostError as exc:
                if isinstance(exc, _ServerError) and not _is_disconnect(exc.sqlstate):
                    raise self._stream_error(exc) from exc
                self._reconnect(exc)
                continue
            if data is None:
                break
            msg: Any = decode_copy_data(data)
            if type(msg) is xlogdata:
                lsn = msg.start_lsn
                self._received = max(self._received, lsn)
                on_message(lsn, msg.payload, items)
            elif msg.reply_requested:
                self._send_status()
            if monotonic() >= deadline:
                break

    def _drain_replay(self, items: list[Item], max_items: int) -> None:
        replay = self._replay
        assert replay is not None
        for item in replay:
            items.append(item)
            if len(items) >= max_items:
                return
        self._replay = None

    def _housekeeping(self, items: list[Item]) -> None:
        now = time.monotonic()
        if self._repl is not None and (
            now - self._last_status >= STATUS_INTERVAL_S
            or (self._acked > self._sent_flush and now - self._last_status >= ACK_INTERVAL_S)
        ):
            self._send_status()
        self._maybe_heartbeat(items, now)

    @property
    def _sent_flush(self) -> int:
        return self._confirmed_max

    def _send_status(self, *, reply: bool = False) -> None:
        repl = self._repl
        if repl is None or not repl.streaming:
            return
        flush = self._acked
        repl.send_status(max(self._received, flush), flush, flush, reply=reply)
        self._confirmed_max = max(self._confirmed_max, flush)
        self._last_status = time.monotonic()

    def _reconnect(self, cause: Exception) -> None:
        """Reopen the stream at the acknowledged position after a lost connection (see the module
        docstring for what is skipped then). Raises ConnectionLostError after three failed attempts,
        PositionLostError when the slot is gone or moved without cdc."""
        log.info("the replication connection was lost (%s); reconnecting", cause)
        if self._repl is not None:
            self._repl.close()
            self._repl = None
        txn = self._txn
        if txn is not None and not txn.skip_all:
            self._partial = (txn.commit_lsn, txn.seen)
        self._txn = None
        self._in_stream = None
        for buf in self._streams.values():  # the server streams open transactions again from the start
            buf.close()
        self._streams.clear()
        self._stream_bytes = 0
        for attempt in range(1, 4):
            time.sleep(0.2 * attempt)
            try:
                slot = self._slot()
                if slot is None:
                    raise PositionLostError(
                        f"replication slot {self.cfg.slot!r} was dropped while cdc was streaming from it",
                        hint="re-snapshot the pipeline (reset its stored offset); cdc creates a new slot",
                    )
                self._verify_slot(slot)
                confirmed = slot.confirmed_flush_lsn or 0
                if confirmed > self._confirmed_max:
                    raise PositionLostError(
                        f"replication slot {self.cfg.slot!r} is confirmed up to {format_lsn(confirmed)}, beyond "
                        f"anything cdc confirmed ({format_lsn(self._confirmed_max)}): it was recreated or advanced "
                        "by someone else, and the changes in between would be skipped",
                        hint="re-snapshot the pipeline",
                    )
                self._open_stream(reconnect=True)
                return
            except ConnectionLostError as exc:
                if attempt == 3:
                    raise ConnectionLostError(f"reconnecting the replication stream failed: {exc}") from exc
                log.debug("reconnect attempt %d failed: %s", attempt, exc)

    def _on_message(self, lsn: int, payload: Any, items: list[Item]) -> None:
        if self._in_stream is not None:
            tag = payload[0]
            if tag == 0x45:  # 'E' Stream Stop
                self._in_stream = None
                return
            if tag == 0x4F:  # 'O' Origin (no xid field): cdc does not use origins
                return
            # every other message inside a stream segment carries its (sub)transaction id after the tag
            subxid = int.from_bytes(payload[1:5], "big")
            self._buffer(self._in_stream, subxid, lsn, bytes(payload))
            return
        msg: Any = po.decode_message(payload)
        kind = type(msg)
        if kind is po.Insert or kind is po.Update or kind is po.Delete:
            txn = self._txn
            if txn is None:
                raise DecodeError("pgoutput sent a row change outside a transaction")
            if not txn.skip_all:
                self._change(msg, lsn, txn, self._relations, items)
        elif kind is po.Begin:
            self._begin(msg.xid, msg.final_lsn, msg.commit_time_us)
        elif kind is po.Commit:
            txn = self._txn
            self._txn = None
            if txn is not None and not txn.skip_all:
                self._end(txn, msg.end_lsn, items)
        elif kind is po.Relation:
            self._relations[msg.oid] = self._rel_state(msg, self._relations.get(msg.oid))
        elif kind is po.Truncate:
            txn = self._txn
            if txn is not None and not txn.skip_all:
                self._truncate(msg, lsn, txn, self._relations, items)
        elif kind is po.LogicalMessage:
            if msg.transactional and self._txn is not None and self._is_heartbeat(msg):
                self._txn.heartbeat = True
        elif kind is po.StreamStart:
            self._in_stream = msg.xid
            buf = self._streams.get(msg.xid)
            if msg.first_segment and buf is not None:
                self._drop_stream(msg.xid)
                buf = None
            if buf is None:
                self._streams[msg.xid] = _StreamBuffer(complete=bool(msg.first_segment))
        elif kind is po.StreamCommit:
            self._stream_commit(msg)
        elif kind is po.StreamAbort:
            buf = self._streams.get(msg.xid)
            if buf is not None:
                if msg.subxid in (msg.xid, 0):
                    self._drop_stream(msg.xid)
                else:
                    buf.aborted.add(msg.subxid)
        elif kind is po.StreamStop:
            self._in_stream = None
        # Type and Origin messages: cdc reads types from the catalog and does not use origins

    def _is_heartbeat(self, msg: Any) -> bool:
        content = msg.content
        return bool(msg.prefix == HEARTBEAT_PREFIX and bytes(content) == self._slot_bytes)

    # ------------------------------------------------------------------ transactions

    def _begin(self, xid: int, commit_lsn: int, commit_time_us: int) -> _Txn:
        txn = _Txn(xid, commit_lsn, commit_time_us // 1000)
        if commit_lsn < self._emitted_end:  # emitted before a reconnect: the server resent it
            txn.skip_all = True
        elif self._partial is not None and self._partial[0] == commit_lsn:
            txn.skip = self._partial[1]
            self._partial = None
        txn.txn_id = f"{xid}:{commit_lsn}"
        txn.sequence_head = f'["{self._last_commit}","'
        self._txn = txn
        return txn

    def _end(self, txn: _Txn, end_lsn: int, items: list[Item]) -> None:
        self._emitted_end = max(self._emitted_end, end_lsn)
        self._last_commit = end_lsn
        self._partial = None
        offset = SourceOffset(PgPosition(end_lsn, txn.xid), "streaming", extra=self._extra)
        if txn.heartbeat and txn.order == 0:
            items.append(Heartbeat(txn.commit_ms, offset))
        else:
            items.append(Checkpoint(offset, txn.commit_ms, txn.txn_id))
        self._last_activity = time.monotonic()

    def _rel_state(self, rel: Any, previous: _RelState | None) -> _RelState:
        table = TableId(str(rel.namespace), str(rel.name))
        signature = (rel.namespace, rel.name, tuple((c.name, c.type_oid, c.type_modifier) for c in rel.columns))
        if previous is not None and previous.signature == signature:
            return previous
        if not self.cfg.includes(table.schema, table.table):
            return _RelState(table, signature, None, name=str(table), oid=int(rel.oid))
        self.catalog.forget(rel.oid)
        return self._planned(int(rel.oid), table, signature)

    def _planned(self, oid: int, table: TableId, signature: tuple[Any, ...]) -> _RelState:
        info = self.catalog.relation(oid)
        plan = self.catalog.plan(table, signature[2], info)
        key = plan.schema.primary_key
        index = {name: i for i, name, _ in plan.fields}
        return _RelState(
            table,
            signature,
            plan,
            key,
            tuple(index[k] for k in key),
            {i: name for i, name, _ in plan.fields},
            str(table),
            key[0] if len(key) == 1 else None,
            oid=oid,
            enums=tuple((c.name, frozenset(c.enum_values)) for c in plan.schema.columns if c.enum_values is not None),
        )

    def _relabelled(self, st: _RelState, images: Sequence[dict[str, Any] | None]) -> _RelState | None:
        """A new state for ``st``'s table when ``images`` hold an enum label it does not know.

        PostgreSQL sends no new Relation message when a label is added to an enum type
        (``ALTER TYPE … ADD VALUE``), so the labels read with the last one go stale. A row with an
        unknown label makes the source read the types again; the table's definition then changes
        (the new label in ``allowed``) and is announced before that row. A label the catalog does not
        have either (renamed since) is looked up once, then passed as it is."""
        unknown: set[str] = set()
        for image in images:
            if image is None:
                continue
            for name, labels in st.enums:
                _collect_unknown(image.get(name), labels, unknown)
        unknown -= st.tried
        if not unknown:
            return None
        self.catalog.forget_types()
        fresh = self._planned(st.oid, st.table, st.signature)
        known = set().union(*(labels for _, labels in fresh.enums)) if fresh.enums else set()
        missing = unknown - known
        if missing:
            log.warning(
                "%s: enum label(s) %s are not in the catalog (renamed since?); they pass as they are",
                st.table,
                ", ".join(sorted(missing)),
            )
        fresh.tried = st.tried | missing
        return fresh

    def _announce(self, st: _RelState, lsn: int, txn: _Txn, items: list[Item]) -> None:
        """Emit the table's definition before its first change here, or when it changed."""
        table = st.table
        plan = st.plan
        assert plan is not None
        previous = self._announced.get(table)
        if previous is not None:
            previous.announced = False
        self._announced[table] = st
        st.announced = True
        fresh = plan.schema
        prev = self._emitted.get(table)
        if prev is not None and same_definition(prev, fresh):
            return
        hist = self._history.get(table) if prev is None else None
        if prev is None and hist is not None and same_definition(hist, fresh):
            schema, kind = replace(fresh, version=hist.version), "CREATE"
        elif prev is None and hist is None:
            schema, kind = fresh, "CREATE"
        else:
            base = prev or hist
            assert base is not None
            schema, kind = replace(fresh, version=base.version + 1), "ALTER"
        self._emitted[table] = schema
        items.append(
            SchemaChange(kind, schema, None, self._source(table, txn, lsn), txn.commit_ms, PgPosition(lsn, txn.xid))
        )

    def _source(self, table: TableId, txn: _Txn, lsn: int) -> dict[str, Any]:
        """The ``source`` block of a change at ``lsn`` (a copy of the transaction's block for its table)."""
        base = txn.sources.get(table)
        if base is None:
            base = txn.sources[table] = self._source_block(table, txn, 0)
        block = base.copy()
        block["sequence"] = f'{txn.sequence_head}{lsn}"]'
        block["lsn"] = lsn
        return block

    def _source_block(self, table: TableId, txn: _Txn, lsn: int) -> dict[str, Any]:
        return {
            "version": __version__,
            "connector": "postgresql",
            "name": self.prefix,
            "ts_ms": txn.commit_ms,
            "snapshot": "false",
            "db": self._database,
            "sequence": f'{txn.sequence_head}{lsn}"]',
            "schema": table.schema,
            "table": table.table,
            "txId": txn.xid,
            "lsn": lsn,
            "xmin": None,
        }

    def _change(self, msg: Any, lsn: int, txn: _Txn, relations: dict[int, _RelState], items: list[Item]) -> None:
        st = relations.get(msg.relation_oid) or self._relations.get(msg.relation_oid)
        if st is None:
            raise DecodeError(f"pgoutput sent a change of relation {msg.relation_oid} before its Relation message")
        plan = st.plan
        if plan is None:
            return
        if txn.skip:
            txn.skip -= 1
            txn.seen += 1
            return
        txn.seen += 1
        kind = type(msg)
        unchanged: frozenset[str] = frozenset()
        before = None
        if kind is po.Insert:
            op = Op.CREATE
            after = plan.image(msg.new)
        elif kind is po.Update:
            op = Op.UPDATE
            old = msg.old if msg.old is not None else msg.key
            new = msg.new
            if po.UNCHANGED in new:
                new, unchanged = self._fill_unchanged(st, new, msg.old)
            after = plan.image(new)
            if unchanged:
                for name in unchanged:
                    del after[name]
            if old is not None:
                before = plan.image(_no_unchanged(old))
        else:
            op = Op.DELETE
            old = msg.old if msg.old is not None else msg.key
            after = None
            before = plan.image(_no_unchanged(old)) if old is not None else None
        if st.enums:
            fresh = self._relabelled(st, (after, before))
            if fresh is not None:
                (relations if msg.relation_oid in relations else self._relations)[msg.relation_oid] = fresh
                st = fresh
        if not st.announced:
            self._announce(st, lsn, txn, items)
        image = after if after is not None else before
        if image is None or not st.key:
            key = None
        elif st.single_key is not None:
            key = {st.single_key: image[st.single_key]}
        else:
            key = {k: image[k] for k in st.key}
        table = st.table
        txn.order += 1
        name = st.name
        n = txn.table_order.get(name, 0) + 1
        txn.table_order[name] = n
        items.append(
            ChangeEvent(
                op,
                table,
                key,
                before,
                after,
                self._source(table, txn, lsn),
                txn.commit_ms,
                self._now_ms,
                txn.txn_id,
                txn.order,
                n,
                pg_position(lsn, txn.xid),
                unchanged,
            )
        )

    @staticmethod
    def _fill_unchanged(
        st: _RelState, new: Sequence[Any], old: Sequence[Any] | None
    ) -> tuple[list[Any], frozenset[str]]:
        """Unchanged TOAST values of ``new`` from the full old tuple when there is one; the names of
        the kept columns whose values stay unknown (their slots in the list become None)."""
        values = list(new)
        missing: list[str] = []
        for i, v in enumerate(values):
            if v is not po.UNCHANGED:
                continue
            if old is not None and i < len(old) and old[i] is not po.UNCHANGED:
                values[i] = old[i]
            else:
                values[i] = None
                name = st.names.get(i)
                if name is not None:
                    missing.append(name)
        return values, frozenset(missing)

    def _truncate(self, msg: Any, lsn: int, txn: _Txn, relations: dict[int, _RelState], items: list[Item]) -> None:
        for oid in msg.relation_oids:
            st = relations.get(oid) or self._relations.get(oid)
            if st is None or st.plan is None:
                continue
            if txn.skip:
                txn.skip -= 1
                txn.seen += 1
                continue
            txn.seen += 1
            if not st.announced:
                self._announce(st, lsn, txn, items)
            txn.order += 1
            n = txn.table_order.get(st.name, 0) + 1
            txn.table_order[st.name] = n
            items.append(
                ChangeEvent(
                    Op.TRUNCATE,
                    st.table,
                    None,
                    None,
                    None,
                    self._source(st.table, txn, lsn),
                    txn.commit_ms,
                    self._now_ms,
                    txn.txn_id,
                    txn.order,
                    n,
                    PgPosition(lsn, txn.xid),
                )
            )

    # ------------------------------------------------------------------ streamed transactions

    def _buffer(self, xid: int, subxid: int, lsn: int, payload: bytes) -> None:
        buf = self._streams.get(xid)
        if buf is None:  # cannot happen after a Stream Start; kept incomplete so that a commit refuses it
            buf = self._streams[xid] = _StreamBuffer(complete=False)
        self._stream_bytes += buf.add(subxid, lsn, payload)
        if self._stream_bytes > STREAM_MEMORY_BYTES:
            largest = max(self._streams.values(), key=lambda b: b.size)
            self._stream_bytes -= largest.spill()

    def _drop_stream(self, xid: int) -> None:
        buf = self._streams.pop(xid, None)
        if buf is not None:
            self._stream_bytes -= buf.size
            buf.close()

    def _stream_commit(self, msg: Any) -> None:
        buf = self._streams.pop(msg.xid, None)
        if buf is None:
            buf = _StreamBuffer()
        self._stream_bytes -= buf.size
        if msg.commit_lsn < self._emitted_end:  # emitted before a reconnect
            buf.close()
            return
        if not buf.complete:
            buf.close()
            raise DecodeError(
                f"streamed transaction {msg.xid} committed, but cdc did not receive its first segment; "
                "refusing to emit it incomplete"
            )
        self._replay = self._replay_stream(buf, msg)

    def _replay_stream(self, buf: _StreamBuffer, commit: Any) -> Iterator[Item]:
        """The items of a committed streamed transaction, decoded from its buffer."""
        saved = self._txn
        txn = self._begin(commit.xid, commit.commit_lsn, commit.commit_time_us)
        self._txn = saved
        relations: dict[int, _RelState] = {}
        out: list[Item] = []
        try:
            for subxid, lsn, payload in buf:
                if subxid in buf.aborted:
                    continue
                msg: Any = po.decode_message(payload, in_stream=True)
                kind = type(msg)
                if kind is po.Insert or kind is po.Update or kind is po.Delete:
                    self._change(msg, lsn, txn, relations, out)
                elif kind is po.Relation:
                    relations[msg.oid] = self._rel_state(msg, relations.get(msg.oid) or self._relations.get(msg.oid))
                elif kind is po.Truncate:
                    self._truncate(msg, lsn, txn, relations, out)
                elif kind is po.LogicalMessage and msg.transactional and self._is_heartbeat(msg):
                    txn.heartbeat = True
                if out:
                    yield from out
                    out.clear()
            # the server now takes the relations sent in this stream as known
            self._relations.update(relations)
            self._end(txn, commit.end_lsn, out)
            yield from out
        finally:
            buf.close()

    # ------------------------------------------------------------------ heartbeats

    def _maybe_heartbeat(self, items: list[Item], now: float) -> None:
        interval = self.cfg.heartbeat_interval_ms / 1000
        if (
            interval <= 0
            or now - self._last_activity < interval
            or self._txn is not None
            or self._in_stream is not None
            or self._replay is not None
            or self._phase != "streaming"
        ):
            return
        self._last_activity = now
        if self._heartbeat_messages:
            try:
                self.catalog.execute(
                    "SELECT pg_catalog.pg_logical_emit_message(true, %s, %s)",
                    (HEARTBEAT_PREFIX, self.cfg.slot),
                    doing="writing a heartbeat message",
                )
                return
            except PermissionDeniedError as exc:
                self._heartbeat_messages = False
                log.warning("heartbeats cannot advance the slot on a quiet database: %s", exc)
            except ConnectionLostError:
                return  # the next interval tries again
        offset = SourceOffset(PgPosition(self._emitted_end), "streaming", extra=self._extra)
        items.append(Heartbeat(int(time.time() * 1000), offset))


def _collect_unknown(value: Any, labels: frozenset[str], into: set[str]) -> None:
    """Add to ``into`` the labels in ``value`` (an enum's, or an enum array's nested lists) not in ``labels``."""
    if value is None:
        return
    if isinstance(value, str):
        if value not in labels:
            into.add(value)
        return
    if isinstance(value, list):
        for item in value:
            _collect_unknown(item, labels, into)


def _is_disconnect(sqlstate: str | None) -> bool:
    """True for SQLSTATEs (or none) that mean the connection ended, not that the request failed."""
    return sqlstate is None or sqlstate.startswith(("08", "57P"))


def _no_unchanged(values: Sequence[Any]) -> Sequence[Any]:
    unchanged = po.UNCHANGED
    if unchanged in values:
        return [None if v is unchanged else v for v in values]
    return values


def create_source(config: PostgresSourceConfig, prefix: str, history: Sequence[SchemaChange] = ()) -> PostgresSource:
    """The source for ``source: {type: postgres}`` (registered in :mod:`cdc.registry`)."""
    return PostgresSource(config, prefix, history)
