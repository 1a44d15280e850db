"""The binlog reader: python-mysql-replication's ``BinLogStreamReader`` with cdc's reconnect
policy and a fast path for the two events that come with every row change.

The library speaks the protocol (dump request, packets, checksums, rotation, GTID and query
events) and parses a TABLE_MAP the first time its bytes are seen. Two things change:

* **No reconnect of its own.** The library reconnects with its original start position (its
  issue #367); here a dropped connection raises :class:`~cdc.errors.ConnectionLostError` and
  the source reopens at its last checkpoint.
* **Known table maps and rows events skip the library's parsing.** A TABLE_MAP whose bytes
  (table id, names, types, metadata, nullability, character sets, labels) equal those of one
  the owner has registered in ``known_maps`` is not parsed again: the same bytes describe the
  same table. The reader registers the table in the library's table map as the library would
  and returns a :class:`KnownTableMap`. A WRITE/UPDATE/DELETE rows event of a table in the
  library's table map is returned as a :class:`RowsData` (its own bytes and header) instead of
  a library ``RowsEvent``: cdc decodes the rows itself (:mod:`connectors.mysql.decoder`).
  Rows events of a table the library's table map does not hold are dropped, as the library
  drops them.

Every other event goes through the library exactly as its own ``fetchone`` would handle it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from cdc.errors import ConnectionLostError, ServerSettingError, TerminalError

__all__ = ["KnownTableMap", "MariadbGtid", "RowsData", "TableMapSeen", "Xid", "open_reader"]

TABLE_MAP_EVENT = 19
ROTATE_EVENT = 4
FORMAT_DESCRIPTION_EVENT = 15
XID_EVENT = 16
MARIADB_GTID_EVENT = 162
_ROWS_EVENTS = frozenset({23, 24, 25, 30, 31, 32})
PARTIAL_UPDATE_ROWS_EVENT = 39  # MySQL 8, binlog_row_value_options=PARTIAL_JSON
QUERY_COMPRESSED_EVENT = 165  # MariaDB, log_bin_compress=ON
_COMPRESSED_ROWS_EVENTS = frozenset(range(166, 172))  # MariaDB, log_bin_compress=ON (v1 and v2)
_UNREADABLE = frozenset({PARTIAL_UPDATE_ROWS_EVENT, QUERY_COMPRESSED_EVENT, *_COMPRESSED_ROWS_EVENTS})
_HEADER = 20  # the OK byte and the 19-byte event header in front of every event's body
_LOST_CONNECTION_CODES = (2013, 2006)  # CR_SERVER_LOST, CR_SERVER_GONE_ERROR


class TableMapSeen:
    """What the owner registers in ``known_maps`` for a TABLE_MAP's bytes.

    ``library_table`` is the library's ``Table`` for it (what the library needs to hand out
    that table's rows events), or None to drop the table map and the table's rows events (a
    table not captured).
    Subclasses add what the owner wants back with every :class:`KnownTableMap`.
    """

    __slots__ = ("library_table",)

    def __init__(self, library_table: Any) -> None:
        self.library_table = library_table


class _Header:
    """The common header fields of an event read on the fast path (as the library's ``packet``)."""

    __slots__ = ("log_pos", "server_id")

    def __init__(self, server_id: int, log_pos: int) -> None:
        self.server_id = server_id
        self.log_pos = log_pos


class KnownTableMap:
    """A TABLE_MAP event whose bytes the owner registered: ``seen`` is what it registered."""

    __slots__ = ("body", "event_size", "event_type", "packet", "seen", "table_id", "timestamp")

    def __init__(self, seen: TableMapSeen, body: bytes, header: _Header, timestamp: int, table_id: int) -> None:
        self.seen = seen
        self.body = body
        self.packet = header
        self.timestamp = timestamp
        self.table_id = table_id
        self.event_type = TABLE_MAP_EVENT
        self.event_size = len(body)


class RowsData:
    """A WRITE/UPDATE/DELETE rows event, undecoded: ``body`` is the event after its header, without
    checksum; ``schema`` and ``table`` name the table of ``table_id`` per the preceding table map."""

    __slots__ = (
        "body",
        "event_size",
        "event_type",
        "packet",
        "post_header_len",
        "schema",
        "table",
        "table_id",
        "timestamp",
    )

    def __init__(
        self,
        *,
        event_type: int,
        body: bytes,
        post_header_len: int,
        header: _Header,
        timestamp: int,
        table_id: int,
        schema: str,
        table: str,
    ) -> None:
        self.event_type = event_type
        self.body = body
        self.post_header_len = post_header_len
        self.packet = header
        self.timestamp = timestamp
        self.table_id = table_id
        self.schema = schema
        self.table = table
        self.event_size = len(body)


class Xid:
    """An XID event (the commit of a transaction on a transactional engine)."""

    __slots__ = ("packet", "timestamp", "xid")

    def __init__(self, xid: int, header: _Header, timestamp: int) -> None:
        self.xid = xid
        self.packet = header
        self.timestamp = timestamp


class MariadbGtid:
    """A MariaDB GTID event (the start of a transaction): ``gtid`` is ``domain-server-sequence``."""

    __slots__ = ("flags", "gtid", "packet", "timestamp")

    def __init__(self, gtid: str, flags: int, header: _Header, timestamp: int) -> None:
        self.gtid = gtid
        self.flags = flags
        self.packet = header
        self.timestamp = timestamp


def open_reader(known_maps: MutableMapping[bytes, TableMapSeen], **kwargs: Any) -> Any:
    """A binlog reader (the library's ``BinLogStreamReader`` arguments) with the behaviour of the
    module docstring; ``known_maps`` is the owner's registry of table-map bytes, read on every
    TABLE_MAP. Raises :class:`~cdc.errors.TerminalError` for a library version whose reader
    internals differ from those this module was written for."""
    import pymysql
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.packet import BinLogPacketWrapper

    if kwargs.get("end_log_pos") or kwargs.get("skip_to_timestamp"):
        raise TerminalError("the cdc binlog reader does not support end_log_pos or skip_to_timestamp")

    class _Reader(BinLogStreamReader):  # type: ignore[misc]
        _connected_once = False
        _ignored_types: frozenset[int] = frozenset()
        _fast_types: frozenset[int] = frozenset()
        # the library's attributes this class reads and writes (its fetchone's)
        table_map: dict[int, Any]
        log_pos: int
        log_file: str
        mysql_version: Any
        _BinLogStreamReader__connected_stream: bool
        _BinLogStreamReader__post_header_lengths: Any

        def _BinLogStreamReader__connect_to_stream(self) -> None:
            if self._connected_once:
                raise ConnectionLostError("the binlog connection dropped")
            self._connected_once = True
            BinLogStreamReader._BinLogStreamReader__connect_to_stream(self)

        def fetchone(self) -> Any:
            while True:
                if not self._BinLogStreamReader__connected_stream:
                    self._BinLogStreamReader__connect_to_stream()
                if not self._BinLogStreamReader__connected_ctl:
                    self._BinLogStreamReader__connect_to_ctl()
                try:
                    pkt = self._stream_connection._read_packet()
                except pymysql.OperationalError as exc:
                    if exc.args and exc.args[0] in _LOST_CONNECTION_CODES:
                        self._stream_connection.close()
                        self._BinLogStreamReader__connected_stream = False
                        raise ConnectionLostError("the binlog connection dropped") from exc
                    raise
                if pkt.is_eof_packet():
                    self.close()
                    return None
                if not pkt.is_ok_packet():
                    continue
                data = pkt._data
                event_type = data[5]
                if event_type in self._fast_types:
                    fast = self._fast(data, event_type)
                    if fast is not None:
                        if fast is False:
                            continue
                        return fast
                elif event_type in _UNREADABLE and len(data) >= _HEADER:
                    self._refuse(data, event_type)
                    continue
                elif event_type in self._ignored_types and len(data) >= _HEADER:
                    # an event the library would parse the header of only, then drop
                    log_pos = int.from_bytes(data[14:18], "little")
                    if log_pos:
                        self.log_pos = log_pos
                    continue
                event = self._library_event(pkt)
                if event is not None:
                    return event

        def _refuse(self, data: bytes, event_type: int) -> None:
            """Stop at an event the library cannot read and cdc cannot decode, unless it is a rows event of
            a table not captured (no table map registered for it): skipping it would lose changes."""
            if event_type == QUERY_COMPRESSED_EVENT:
                raise ServerSettingError(
                    "the binlog holds a compressed statement event, which cdc cannot read",
                    hint="SET GLOBAL log_bin_compress=OFF (MariaDB) and re-snapshot from a position after it",
                )
            if int.from_bytes(data[_HEADER : _HEADER + 6], "little") not in self.table_map:
                log_pos = int.from_bytes(data[14:18], "little")
                if log_pos:
                    self.log_pos = log_pos
                return
            if event_type == PARTIAL_UPDATE_ROWS_EVENT:
                raise ServerSettingError(
                    "the binlog holds a partial JSON update (binlog_row_value_options=PARTIAL_JSON), "
                    "which carries no full after image",
                    hint="SET GLOBAL binlog_row_value_options='' and re-snapshot from a position after it",
                )
            raise ServerSettingError(
                "the binlog holds a compressed rows event (log_bin_compress=ON), which cdc cannot read",
                hint="SET GLOBAL log_bin_compress=OFF and re-snapshot from a position after it",
            )

        def _fast(self, data: bytes, event_type: int) -> Any:
            """The fast-path event for ``data``; False to drop it; None to leave it to the library."""
            if len(data) < _HEADER:
                return None
            event_size = int.from_bytes(data[10:14], "little")
            end = 1 + event_size - (4 if self._BinLogStreamReader__use_checksum else 0)
            if len(data) < 1 + event_size or end < _HEADER:
                return None
            log_pos = int.from_bytes(data[14:18], "little")
            if event_type in (XID_EVENT, MARIADB_GTID_EVENT):
                return self._transaction_event(data, event_type, end, log_pos)
            body = bytes(data[_HEADER:end])
            table_id = int.from_bytes(body[0:6], "little")
            if event_type == TABLE_MAP_EVENT:
                seen = known_maps.get(body)
                if seen is None:
                    return None
                if log_pos:
                    self.log_pos = log_pos
                if seen.library_table is None:  # not captured: drop its rows events too
                    self.table_map.pop(table_id, None)
                    return False
                self.table_map[table_id] = seen.library_table
                header = _Header(int.from_bytes(data[6:10], "little"), log_pos)
                return KnownTableMap(seen, body, header, int.from_bytes(data[1:5], "little"), table_id)
            lengths = self._BinLogStreamReader__post_header_lengths
            post_header_len = lengths[event_type - 1] if lengths and event_type <= len(lengths) else 0
            if post_header_len == 6:  # table ids of 4 bytes (servers before 5.1.4): the library's way
                return None
            if log_pos:
                self.log_pos = log_pos
            table = self.table_map.get(table_id)
            if table is None:
                return False  # no table map for it (a table not captured): the library drops it too
            header = _Header(int.from_bytes(data[6:10], "little"), log_pos)
            return RowsData(
                event_type=event_type,
                body=body,
                post_header_len=post_header_len,
                header=header,
                timestamp=int.from_bytes(data[1:5], "little"),
                table_id=table_id,
                schema=table.schema,
                table=table.table,
            )

        def _transaction_event(self, data: bytes, event_type: int, end: int, log_pos: int) -> Any:
            """An XID or MariaDB GTID event, read as the library reads it; None to leave it to the library."""
            if end < _HEADER + (8 if event_type == XID_EVENT else 13):
                return None
            if log_pos:
                self.log_pos = log_pos
            server_id = int.from_bytes(data[6:10], "little")
            header = _Header(server_id, log_pos)
            timestamp = int.from_bytes(data[1:5], "little")
            if event_type == XID_EVENT:
                return Xid(int.from_bytes(data[20:28], "little"), header, timestamp)
            sequence = int.from_bytes(data[20:28], "little")
            domain = int.from_bytes(data[28:32], "little")
            return MariadbGtid(f"{domain}-{server_id}-{sequence}", data[32], header, timestamp)

        def _library_event(self, pkt: Any) -> Any:
            """The library's handling of one packet (its ``fetchone`` loop body): the event, or None."""
            event = BinLogPacketWrapper(
                pkt,
                self.table_map,
                self._ctl_connection,
                self.mysql_version,
                self._BinLogStreamReader__use_checksum,
                self._BinLogStreamReader__allowed_events_in_packet,
                self._BinLogStreamReader__only_tables,
                self._BinLogStreamReader__ignored_tables,
                self._BinLogStreamReader__only_schemas,
                self._BinLogStreamReader__ignored_schemas,
                self._BinLogStreamReader__freeze_schema,
                self._BinLogStreamReader__ignore_decode_errors,
                self._BinLogStreamReader__verify_checksum,
                self._BinLogStreamReader__optional_meta_data,
                self._BinLogStreamReader__enable_logging,
                self._BinLogStreamReader__use_column_name_cache,
                self._BinLogStreamReader__post_header_lengths,
            )
            if event.event_type == ROTATE_EVENT:
                self.log_pos = event.event.position
                self.log_file = event.event.next_binlog
                if event.timestamp != 0:  # a server restart reuses table ids: forget them all
                    self.table_map = {}
            elif event.log_pos:
                self.log_pos = event.log_pos
            if event.event_type == FORMAT_DESCRIPTION_EVENT and event.event is not None:
                self.mysql_version = event.event.mysql_version
                self._BinLogStreamReader__post_header_lengths = event.event.post_header_len
            if event.event_type == TABLE_MAP_EVENT and event.event is not None:
                self.table_map[event.event.table_id] = event.event.get_table()
            if event.event is None or event.event.__class__ not in self._BinLogStreamReader__allowed_events:
                return None
            return event.event

    reader = _Reader(**kwargs)
    allowed = reader._BinLogStreamReader__allowed_events_in_packet
    event_map = getattr(BinLogPacketWrapper, "_BinLogPacketWrapper__event_map", None)
    if not isinstance(event_map, dict):
        raise TerminalError("python-mysql-replication's packet wrapper has no event map: unsupported library version")
    # types whose events the library would drop after reading their header (rotation and the
    # format description excepted: the library acts on those whatever the filter)
    fast = {TABLE_MAP_EVENT, *_ROWS_EVENTS}
    if event_map.get(XID_EVENT) in allowed:
        fast.add(XID_EVENT)
    if event_map.get(MARIADB_GTID_EVENT) in allowed:
        fast.add(MARIADB_GTID_EVENT)
    reader._fast_types = frozenset(fast)
    reader._ignored_types = frozenset(
        t
        for t, cls in event_map.items()
        if cls not in allowed
        and t not in (ROTATE_EVENT, FORMAT_DESCRIPTION_EVENT, TABLE_MAP_EVENT)
        and t not in _UNREADABLE
        and t not in _ROWS_EVENTS
    )
    for name in (
        "_BinLogStreamReader__connected_stream",
        "_BinLogStreamReader__connected_ctl",
        "_BinLogStreamReader__use_checksum",
        "_BinLogStreamReader__allowed_events_in_packet",
        "_BinLogStreamReader__allowed_events",
        "_BinLogStreamReader__post_header_lengths",
        "_BinLogStreamReader__optional_meta_data",
        "table_map",
    ):
        if not hasattr(reader, name):
            raise TerminalError(f"python-mysql-replication's reader has no {name}: an unsupported library version")
    return reader
