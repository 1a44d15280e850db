"""Backups of a MySQL/MariaDB source: the initial snapshot's machinery, read once for ``cdc backup create``.

:func:`open_snapshot` is what :mod:`cdc.backup.create` loads for ``source.type: mysql``. The rows
come from :class:`connectors.mysql.snapshot.Snapshot` (one consistent-snapshot transaction,
primary-key chunks, the same value converters as streaming), so a backup holds exactly what an
initial snapshot would publish. Writes go on meanwhile: MariaDB's ``binlog_snapshot_file`` /
``binlog_snapshot_position`` name the binlog position that matches the transaction's view without
any lock (MySQL 8: a brief ``FLUSH TABLES WITH READ LOCK`` while it starts).
No binlog connection is opened and no offset is stored: a backup leaves the pipeline untouched.

**Native chunks** (:meth:`MySqlBackupSnapshot.native_batches`, encoding ``mysql-tsv``). The
definitions come from the snapshot reader, in its transaction; the rows of every table are then
read in that same transaction with one ``SELECT`` per table in which the server writes each row
as one line of ``LOAD DATA`` text: values separated by tabs, ``\\N`` for NULL, a backslash before
every backslash and tab inside a string, ``\\n`` for a line feed (so a line feed ends a row and
nothing else), binary strings in hex. Each value is the text
the server's text protocol sends for it (``IFNULL(col, '\\N')`` and ``REGEXP_REPLACE`` keep the
column's own text; strings in their own character set converted to utf8mb4). The result rows are
read straight off the connection, one protocol packet per row, and stored as they come,
``chunk_rows`` lines to a chunk: no value is converted in Python. The manifest keeps, per column,
the protocol type and character set the server reports for it, so :func:`row_decoder` turns a line
back into the very values PyMySQL would have returned and the snapshot's converters then make of
them. A table with a column type this does not cover (``BIT``, spatial types) makes the whole
backup fall back to JSON lines.

**Restoring into MySQL/MariaDB** (:func:`native_loader`): when the target allows ``LOAD DATA
LOCAL`` and every column of the target table has the source column's type (``COLUMN_TYPE``;
strings in utf8mb4) and a Debezium representation that loses nothing under the source's modes,
each chunk is sent with ``LOAD DATA LOCAL INFILE`` in one transaction with its done-marker. The
data is sent from memory over cdc's own exchange: the server's file request is answered with the
chunk, whatever file name it asks for, and the driver's own handler (which would read a local
file the server names) stays disabled. ``LOCAL`` turns errors about values into warnings, so a
chunk that loads with any warning, or with fewer rows than it holds, is rolled back and refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from cdc.errors import BackupCorruptError, ConnectError, ConnectionLostError, DecodeError, TargetValueError
from cdc.events import Item, SchemaChange
from cdc.positions import Position
from connectors.mysql.config import MySqlSourceConfig

if TYPE_CHECKING:
    from cdc.backup.create import NativeChunk, NativeTable
    from cdc.backup.format import TableEntry

__all__ = ["ENCODING", "LoadDataLoader", "MySqlBackupSnapshot", "native_loader", "open_snapshot", "row_decoder"]

#: The chunk encoding of this connector's native chunks (see :mod:`cdc.backup.format`).
ENCODING = "mysql-tsv"

#: ``DATA_TYPE`` s read as text (escaped), as hex (binary strings), or as they are (numbers, times).
_TEXT = frozenset(
    {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json", "uuid", "inet4", "inet6"}
)
_BINARY = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
_PLAIN = frozenset(
    {
        "tinyint",
        "smallint",
        "mediumint",
        "int",
        "bigint",
        "decimal",
        "float",
        "double",
        "date",
        "datetime",
        "timestamp",
        "time",
        "year",
    }
)
_TIME_TYPES = frozenset({"datetime", "timestamp", "time"})
#: Column types a zero or impossible date can be stored in (``zero_date_handling``).
_DATE_TYPES = frozenset({"date", "datetime", "timestamp"})


def _load_speedups() -> Any:
    """The compiled line builder (``_backup_speedups.c``), or None when it is not built or
    ``CDC_MYSQL_SPEEDUPS=0`` (then the server builds the lines, which is slower)."""
    if os.environ.get("CDC_MYSQL_SPEEDUPS", "1") == "0":
        return None
    try:
        from connectors.mysql import _backup_speedups  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _backup_speedups


_SPEEDUPS = _load_speedups()
# what the compiled reader's rows() stopped at (kept in step with _backup_speedups.c)
_NEED_MORE, _END_OF_ROWS, _ERROR_PACKET, _LONG_PACKET, _MAX_ROWS = range(5)

_COLUMNS_SQL = (
    "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION"
)


class _RecordingEngine:
    """The snapshot's engine, remembering the connection the snapshot transaction runs on."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.connection: Any = None

    def connect(self) -> Any:
        self.connection = self.engine.connect()
        return self.connection


class MySqlBackupSnapshot:
    """One consistent snapshot of the captured tables (see :class:`cdc.backup.create.BackupSnapshot`)."""

    def __init__(self, config: MySqlSourceConfig, prefix: str) -> None:
        from sqlalchemy import create_engine

        from connectors.mysql.schema import TypeModes
        from connectors.mysql.snapshot import Snapshot
        from connectors.sql.config import sqlalchemy_url

        self._engine: Any = create_engine(sqlalchemy_url(config.url.get_secret_value()), pool_pre_ping=True)
        self._recording = _RecordingEngine(self._engine)
        self._modes = TypeModes.from_config(config)
        self._zero_dates = config.zero_date_handling
        self._snapshot = Snapshot(config, prefix, self._recording, self._modes, None)
        self._snapshot.gtid_later = self._look_up_gtids
        self._gtids: Future[str | None] | None = None
        self._batch_rows = config.max_batch_events
        self._iter: Iterator[list[Item]] | None = None

    def _look_up_gtids(self, file: str, pos: int) -> None:
        """MariaDB's GTID set at the snapshot's binlog position, read on a connection of its own while
        the rows stream (BINLOG_GTID_POS scans the binlog file up to ``pos``)."""
        from sqlalchemy import text

        def look_up() -> str | None:
            with self._engine.connect() as conn:
                value = conn.execute(text("SELECT BINLOG_GTID_POS(:f, :p)"), {"f": file, "p": pos}).scalar()
            return str(value) if value else None

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cdc-backup-gtid")
        self._gtids = pool.submit(look_up)
        pool.shutdown(wait=False)

    @property
    def position(self) -> Position | None:
        """The binlog position of the snapshot's view (with its GTID set); known once the first batch
        was yielded."""
        from sqlalchemy import exc as sa_exc

        start = self._snapshot.start_position
        if start is None or self._gtids is None or start.gtid_set is not None:
            return start
        try:
            gtids = self._gtids.result(timeout=600)
        except sa_exc.DBAPIError as exc:
            raise ConnectionLostError(f"cannot read the snapshot's GTID set from the MySQL source: {exc.orig}") from exc
        self._snapshot.start_position = start = replace(start, gtid_set=gtids)
        return start

    def _server_id(self) -> int:
        from sqlalchemy import exc as sa_exc
        from sqlalchemy import text

        try:
            with self._engine.connect() as conn:
                return int(conn.execute(text("SELECT @@server_id")).scalar_one())
        except sa_exc.DBAPIError as exc:
            raise ConnectError(f"cannot connect to the MySQL source: {exc.orig}") from exc

    def batches(self) -> Iterator[Sequence[Item]]:
        """The snapshot's items: the definitions first, then ``op: r`` rows (and chunk checkpoints)."""
        from sqlalchemy import exc as sa_exc

        self._iter = self._snapshot.items(self._server_id(), self._batch_rows)
        try:
            yield from self._iter
        except sa_exc.OperationalError as exc:
            raise ConnectionLostError(f"the MySQL source went away during the backup: {exc.orig}") from exc

    def native_batches(self, chunk_rows: int) -> Iterator[Sequence[Item | NativeTable | NativeChunk]]:
        """The snapshot with every table's rows as ``mysql-tsv`` chunks (see the module docstring); when a
        table has a column type the encoding does not cover, the whole snapshot as :meth:`batches` gives it."""
        import pymysql
        from sqlalchemy import exc as sa_exc

        from cdc.backup.create import NativeTable

        self._iter = self._snapshot.items(self._server_id(), self._batch_rows)
        try:
            definitions = next(self._iter)
            changes = [d for d in definitions if isinstance(d, SchemaChange)]
            raw = self._recording.connection.connection.dbapi_connection
            modes = {
                "decimal": str(self._modes.decimal),
                "time": str(self._modes.time),
                "binary": str(self._modes.binary),
                "bigint_unsigned": str(self._modes.bigint_unsigned),
                "zero_dates": str(self._zero_dates),
            }
            plans = [_TablePlan.make(raw, change, modes) for change in changes] if _can_stream(raw) else []
            if len(plans) != len(changes) or any(p is None for p in plans):
                yield definitions  # as the snapshot reads it: JSON lines
                yield from self._iter
                return
            ready = [p for p in plans if p is not None]
            yield [NativeTable(p.change, ENCODING, p.native) for p in ready]
            progress = self._snapshot.progress
            for plan in ready:
                progress.table = str(plan.table)
                check = _zero_date_check(plan) if modes["zero_dates"] == "error" else None
                for chunk, suspect in _stream_lines(raw, plan, chunk_rows):
                    if check is not None and suspect != 0:
                        check(chunk.text, suspect is None)
                    progress.rows += chunk.rows
                    yield [chunk]
                progress.done.append(str(plan.table))
        except (sa_exc.OperationalError, pymysql.err.OperationalError) as exc:
            raise ConnectionLostError(f"the MySQL source went away during the backup: {exc}") from exc

    def progress(self) -> dict[str, Any] | None:
        return self._snapshot.progress.view()

    def close(self) -> None:
        if self._iter is not None:
            self._iter.close()  # type: ignore[attr-defined]
            self._iter = None
        self._engine.dispose()


def open_snapshot(config: MySqlSourceConfig, prefix: str) -> MySqlBackupSnapshot:
    """The snapshot a backup of this source reads (called by :func:`cdc.backup.create.create_backup`)."""
    return MySqlBackupSnapshot(config, prefix)


# ---------------------------------------------------------------------------------------------
# Reading rows as LOAD DATA lines
# ---------------------------------------------------------------------------------------------


def _can_stream(raw: Any) -> bool:
    """Whether the driver connection has the parts :func:`_stream_lines` reads packets through."""
    return all(hasattr(raw, a) for a in ("_rfile", "_next_seq_id", "_result", "query", "encoding"))


class _TablePlan:
    """One table's select list of line-building expressions, and its manifest description."""

    def __init__(self, change: SchemaChange, select: str, native: dict[str, Any]) -> None:
        self.change = change
        self.table = change.schema.table
        self.select = select  # the server builds each line
        self.native = native
        self.raw_select = ""  # the plain columns, for the compiled reader
        self.hexmask = b""  # per column: bit 1 when it is read as hex, bit 2 for a date (checked for zero dates)

    @classmethod
    def make(cls, raw: Any, change: SchemaChange, modes: dict[str, str]) -> _TablePlan | None:
        """The plan of ``change``'s table, or None when a column's type is not covered."""
        table = change.schema.table
        names = [c.name for c in change.schema.columns]
        with raw.cursor() as cur:
            cur.execute(_COLUMNS_SQL, (table.schema, table.table))
            catalog = {str(r[0]): r for r in cur.fetchall()}
        exprs: list[str] = []
        columns: list[dict[str, Any]] = []
        for name in names:
            row = catalog.get(name)
            if row is None:
                return None
            data_type, column_type, charset = str(row[1]).lower(), str(row[2]).lower(), row[3]
            ident = _quote(name)
            if data_type in _BINARY or (data_type in _TEXT and charset in (None, "binary")):
                expr, kind = f"HEX({ident})", "hex"
            elif data_type in _TEXT:
                value = ident if charset == "utf8mb4" else f"CONVERT({ident} USING utf8mb4)"
                escaped = f"REGEXP_REPLACE({value}, '[\\\\\\\\\\t]', '\\\\\\\\\\\\0')"  # \\ and tab: a backslash before
                expr, kind = f"REPLACE({escaped}, '\\n', '\\\\n')", "text"  # a line feed: backslash n
            elif data_type in _PLAIN:
                expr, kind = ident, "plain"
            else:
                return None
            exprs.append(f"IFNULL({expr}, '\\\\N')")
            columns.append({"name": name, "data_type": data_type, "column_type": column_type, "kind": kind})
        source = f"{_quote(table.schema)}.{_quote(table.table)}"
        # the protocol type and character set the server reports for each column, as PyMySQL decodes by them
        with raw.cursor() as cur:
            cur.execute(f"SELECT {', '.join(_quote(n) for n in names)} FROM {source} LIMIT 0")  # noqa: S608
            fields = raw._result.fields if raw._result is not None else []
        if len(fields) != len(columns):
            return None
        for col, field in zip(columns, fields, strict=True):
            col["field_type"] = int(field.type_code)
            col["charsetnr"] = int(field.charsetnr)
        select = f"SELECT CONCAT_WS('\\t', {', '.join(exprs)}) FROM {source}"  # noqa: S608
        native = {"columns": names, "types": columns, "encoding": str(raw.encoding), "modes": modes}
        plan = cls(change, select, native)
        plan.raw_select = f"SELECT {', '.join(_quote(n) for n in names)} FROM {source}"  # noqa: S608
        plan.hexmask = bytes(
            (1 if c["kind"] == "hex" else 0) | (2 if c["data_type"] in _DATE_TYPES else 0) for c in columns
        )
        return plan


def _quote(name: str) -> str:
    """A MySQL identifier, backquoted (``` doubled): catalog names only, never values."""
    return "`" + name.replace("`", "``") + "`"


def _stream_lines(raw: Any, plan: _TablePlan, chunk_rows: int) -> Iterator[tuple[NativeChunk, int | None]]:
    """The rows of ``plan``'s table as mysql-tsv lines, ``chunk_rows`` to a chunk, read straight off the
    connection: with the compiled reader from a plain SELECT of the columns (the lines are built from
    the text-protocol values, see ``_backup_speedups.c``), else from a SELECT in which the server builds
    each line (one length-prefixed string per row packet). Both give the same bytes.

    With each chunk: how many of its rows may hold a zero or impossible date (the compiled reader
    looks at the date columns), or None when the reader did not look."""
    from cdc.backup.create import NativeChunk

    compiled = _SPEEDUPS is not None
    raw.query(plan.raw_select if compiled else plan.select, unbuffered=True)  # sends it, reads the columns
    out = bytearray()
    rows = 0
    suspect: int | None = 0
    reader = _compiled_rows if compiled else _server_lines
    for lines, n, bad in reader(raw, plan, chunk_rows):  # (a reader never yields past the end of a chunk)
        out += lines
        rows += n
        suspect = None if suspect is None or bad is None else suspect + bad
        if rows == chunk_rows:
            yield NativeChunk(plan.table, out, rows), suspect
            out = bytearray()
            rows = 0
            suspect = 0
    if rows:
        yield NativeChunk(plan.table, out, rows), suspect


class _Packets:
    """The unread part of a result on a PyMySQL connection (whose column definitions it has read)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.rfile = raw._rfile
        self.buf = b""
        self.pos = 0
        self.seq = raw._next_seq_id

    def more(self, at_least: int = 1) -> None:
        """Read more bytes (keeping the unread ones)."""
        data: bytes = self.rfile.read1(max(1 << 20, at_least))
        if not data:
            self.raw._force_close()
            raise ConnectionLostError("the MySQL source closed the connection during the backup")
        self.buf = self.buf[self.pos :] + data
        self.pos = 0

    def packet(self) -> bytes:
        """The next payload (packets of 16 MiB - 1 joined with their continuations)."""
        parts: list[bytes] = []
        while True:
            while len(self.buf) - self.pos < 4:
                self.more()
            b, i = self.buf, self.pos
            size = b[i] | (b[i + 1] << 8) | (b[i + 2] << 16)
            while len(self.buf) - self.pos < 4 + size:
                self.more(4 + size - (len(self.buf) - self.pos))
            b, i = self.buf, self.pos
            self.seq = b[i + 3]
            parts.append(b[i + 4 : i + 4 + size])
            self.pos = i + 4 + size
            if size < 0xFFFFFF:
                return parts[0] if len(parts) == 1 else b"".join(parts)

    def end(self) -> None:
        """The rows are read: give the connection back to PyMySQL."""
        if self.pos != len(self.buf):
            raise ConnectionLostError("the MySQL source sent more than the result of a backup's SELECT")
        self.raw._result.unbuffered_active = False
        self.raw._next_seq_id = (self.seq + 1) % 256

    def fail(self, payload: bytes) -> None:
        """An error packet instead of the next row: raise it."""
        import pymysql

        self.raw._result.unbuffered_active = False
        self.raw._next_seq_id = (self.seq + 1) % 256
        pymysql.err.raise_mysql_exception(payload)


def _is_end(payload: bytes) -> bool:
    return bool(payload) and payload[0] == 0xFE and len(payload) < 9


def _compiled_rows(raw: Any, plan: _TablePlan, chunk_rows: int) -> Iterator[tuple[bytes | bytearray, int, int]]:
    """(lines, count, rows that may hold a zero date) of a plain SELECT's rows, converted by the compiled
    reader a buffer at a time."""
    assert _SPEEDUPS is not None
    convert = _SPEEDUPS.rows
    packets = _Packets(raw)
    columns = len(plan.hexmask)
    taken = 0
    while True:
        end, lines, n, status, seq, bad = convert(packets.buf, packets.pos, columns, plan.hexmask, chunk_rows - taken)
        packets.pos = end
        if seq >= 0:
            packets.seq = seq
        if n:
            taken = (taken + n) % chunk_rows
            yield lines, n, bad
        if status == _END_OF_ROWS:
            packets.end()
            return
        if status in (_ERROR_PACKET, _LONG_PACKET):
            payload = packets.packet()
            if status == _ERROR_PACKET:
                packets.fail(payload)
            taken = (taken + 1) % chunk_rows
            yield _row_line(payload, plan.hexmask), 1, 1  # (a row of 16 MiB or more: not looked at)
        elif status == _NEED_MORE:
            packets.more()


def _server_lines(raw: Any, plan: _TablePlan, chunk_rows: int) -> Iterator[tuple[bytes | bytearray, int, None]]:
    """(lines, count, None: dates not looked at) of a SELECT whose rows are one string each, the line the
    server built."""
    packets = _Packets(raw)
    taken = 0  # lines of the current chunk: no yield goes past its end
    while True:
        out = bytearray()
        n = 0
        room = chunk_rows - taken
        b, i, have = packets.buf, packets.pos, len(packets.buf)
        while n < room and have - i >= 5:  # whole packets holding a line shorter than 251 bytes
            size = b[i] | (b[i + 1] << 8) | (b[i + 2] << 16)
            end = i + 4 + size
            if end > have or b[i + 4] >= 0xFB or size == 0xFFFFFF:
                break
            out += b[i + 5 : end]
            out += b"\n"
            packets.seq = b[i + 3]
            i = end
            n += 1
        packets.pos = i
        if n:
            taken = (taken + n) % chunk_rows
            yield out, n, None
            continue
        if have - i < 4:
            packets.more()
            continue
        size = b[i] | (b[i + 1] << 8) | (b[i + 2] << 16)
        if size != 0xFFFFFF and have - i < 4 + size:
            packets.more()
            continue
        payload = packets.packet()  # a longer line, a long packet, the end, or an error
        if _is_end(payload):
            packets.end()
            return
        if payload and payload[0] == 0xFF:
            packets.fail(payload)
        taken = (taken + 1) % chunk_rows
        yield _line(payload) + b"\n", 1, None


def _row_line(payload: bytes, hexmask: bytes) -> bytes:
    """One text-protocol row as a mysql-tsv line: the Python reference of the compiled reader."""
    out: list[bytes] = []
    i = 0
    for bits in hexmask:
        f = payload[i]
        i += 1
        if f == 0xFB:
            out.append(b"\\N")
            continue
        if f < 0xFB:
            n = f
        elif f in (0xFC, 0xFD, 0xFE):
            width = {0xFC: 2, 0xFD: 3, 0xFE: 8}[f]
            n = int.from_bytes(payload[i : i + width], "little")
            i += width
        else:
            raise ValueError("a result row does not have the expected shape")
        value = payload[i : i + n]
        if len(value) != n:
            raise ValueError("a result row does not have the expected shape")
        i += n
        if bits & 1:
            out.append(value.hex().upper().encode())
        else:
            out.append(value.replace(b"\\", b"\\\\").replace(b"\t", b"\\\t").replace(b"\n", b"\\n"))
    if i != len(payload):
        raise ValueError("a result row does not have the expected shape")
    return b"\t".join(out) + b"\n"


def _line(payload: bytes) -> bytes:
    """The string of a one-column row packet's payload (a length-encoded string)."""
    first = payload[0]
    if first < 0xFB:
        return payload[1:]
    width = {0xFC: 2, 0xFD: 3, 0xFE: 8}.get(first)
    if width is None:
        raise ConnectionLostError("the MySQL source sent a NULL line (an expression cannot be NULL)")
    return payload[1 + width :]


# ---------------------------------------------------------------------------------------------
# Reading mysql-tsv chunks
# ---------------------------------------------------------------------------------------------

_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)


def _unescape(m: re.Match[bytes]) -> bytes:
    """``\\n`` is a line feed; a backslash before any other byte (backslash, tab) stands for that byte."""
    c = m.group(1)
    return b"\n" if c == b"n" else c


def _decoders(native: dict[str, Any]) -> list[tuple[bool, str | None, Callable[[Any], Any] | None]]:
    """Per column: (hex, text encoding, converter) as PyMySQL's result reading picks them for the field."""
    from pymysql import converters
    from pymysql.connections import TEXT_TYPES
    from pymysql.constants import FIELD_TYPE

    encoding = str(native.get("encoding") or "utf8")
    out: list[tuple[bool, str | None, Callable[[Any], Any] | None]] = []
    for col in native["types"]:
        field_type = int(col["field_type"])
        if field_type == FIELD_TYPE.JSON:
            codec: str | None = encoding
        elif field_type in TEXT_TYPES:
            codec = None if int(col["charsetnr"]) == 63 else encoding
        else:
            codec = "ascii"
        converter = converters.decoders.get(field_type)
        if converter is converters.through:
            converter = None
        out.append((col["kind"] == "hex", codec, converter))
    return out


def row_decoder(entry: TableEntry) -> Callable[[bytes], list[dict[str, Any]]]:
    """The row images of a ``mysql-tsv`` chunk's lines: each value read as PyMySQL reads the text protocol
    (by the field type and character set in the manifest), then through the snapshot's converter for its
    column, so a row reads exactly as the initial snapshot would have published it."""
    from connectors.mysql.snapshot import _snapshot_converter

    native = entry.native or {}
    try:
        schema = entry.schema().schema
        names = [str(n) for n in native["columns"]]
        readers = _decoders(native)
        zero = str((native.get("modes") or {}).get("zero_dates", "error"))
        converters = [_snapshot_converter(schema.column(n), zero, str(entry.table)) for n in names]
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupCorruptError(
            f"the mysql-tsv description of {entry.table} in the manifest is malformed: {exc}"
        ) from exc
    width = len(names)
    columns = list(zip(names, readers, converters, strict=True))

    def value(field: bytes, hexed: bool, codec: str | None, read: Any, conv: Any) -> Any:
        if field == b"\\N":
            return None
        data: Any = _ESCAPE.sub(_unescape, field) if b"\\" in field else field
        if hexed:
            data = bytes.fromhex(data.decode("ascii"))
        if codec is not None:
            data = data.decode(codec)
        if read is not None:
            data = read(data)
        return conv(data)

    def decode(text: bytes) -> list[dict[str, Any]]:
        lines = _split_lines(text)
        out = []
        for line in lines:
            fields = _split_fields(line)
            if len(fields) != width:
                raise BackupCorruptError(f"a chunk of {entry.table} holds a line of {len(fields)} values, not {width}")
            try:
                out.append(
                    {
                        name: value(f, hexed, codec, read, conv)
                        for f, (name, (hexed, codec, read), conv) in zip(fields, columns, strict=True)
                    }
                )
            except DecodeError:
                raise  # a value the source's modes refuse (a zero date under zero_date_handling: error): says which
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise BackupCorruptError(
                    f"a chunk of {entry.table} holds a value that does not read ({type(exc).__name__})"
                ) from exc
        return out

    return decode


def _zero_date_check(plan: _TablePlan) -> Callable[[bytes | bytearray, bool], None] | None:
    """Under ``zero_date_handling: error``: a check that a chunk of ``plan``'s table holds no zero or invalid
    date (``0000-00-00``, ``2021-02-00``), which the initial snapshot and the binlog refuse; None for a table
    without a date column. The lines are stored as the server gives them, so without it such a backup
    would be taken and only its restore would stop.

    The check reads the chunk as a restore would, which raises the snapshot's
    :class:`~cdc.errors.DecodeError`, naming the column. It is called only for a chunk that may hold such
    a date: the compiled reader looks at every date value as it builds the lines; without it (``scan``),
    a chunk without ``0000-`` or ``-00`` in its bytes holds none."""
    import orjson

    from cdc.backup.format import TableEntry
    from cdc.envelope import EnvelopeCodec
    from connectors.mysql.snapshot import _ZERO_DATE_LOGICALS

    if not any(c.logical in _ZERO_DATE_LOGICALS for c in plan.change.schema.columns):
        return None
    _, value = EnvelopeCodec("backup").encode_schema_change(plan.change)
    decode = row_decoder(TableEntry(plan.table, orjson.loads(value), encoding=ENCODING, native=plan.native))

    def check(text: bytes | bytearray, scan: bool) -> None:
        if not scan or b"0000-" in text or b"-00" in text:
            decode(bytes(text))

    return check


def _split_lines(text: bytes) -> list[bytes]:
    """The lines of a chunk (a line feed inside a value is written as ``\\n``)."""
    lines = text.split(b"\n")
    lines.pop()  # the text ends with a line feed
    return lines


def _split_fields(line: bytes) -> list[bytes]:
    """The fields of a line: split at tabs not escaped by a backslash."""
    return _split_unescaped(line, b"\t") if b"\\" in line else line.split(b"\t")


def _split_unescaped(data: bytes, sep: bytes) -> list[bytes]:
    """``data`` split at ``sep`` where it is not escaped: a separator preceded by an odd number of
    backslashes is data (every backslash escapes the byte after it)."""
    out: list[bytes] = []
    pending: bytes | None = None
    for part in data.split(sep):
        piece = part if pending is None else pending + sep + part
        if (len(piece) - len(piece.rstrip(b"\\"))) % 2:
            pending = piece
        else:
            out.append(piece)
            pending = None
    if pending is not None:
        out.append(pending)
    return out


# ---------------------------------------------------------------------------------------------
# Loading mysql-tsv chunks into a MySQL/MariaDB target
# ---------------------------------------------------------------------------------------------


def _lossless(data_type: str, column_type: str, modes: dict[str, Any]) -> bool:
    """Whether a value of this type reaches the sink unchanged through its Debezium representation."""
    if data_type == "decimal" and modes.get("decimal") == "double":
        return False
    if data_type in _TIME_TYPES and modes.get("time") == "connect":
        return False
    return not (data_type == "bigint" and "unsigned" in column_type and modes.get("bigint_unsigned") == "long")


class LoadDataLoader:
    """Loads ``mysql-tsv`` chunks of one table into a MySQL/MariaDB target with ``LOAD DATA LOCAL INFILE``
    (see the module docstring); made by :func:`native_loader` once the sink has created the table."""

    def __init__(self, sink: Any, entry: TableEntry, native: dict[str, Any]) -> None:
        import threading

        table = sink.target_table(entry.table)
        self.label = table.name
        # one chunk of a table at a time: two LOAD DATA into one InnoDB table slow each other down more
        # than they gain (other tables' chunks still load side by side, and the next chunk is read meanwhile)
        self._one_at_a_time = threading.Lock()
        targets: list[str] = []
        sets: list[str] = []
        for n, col in enumerate(native["types"]):
            if col["kind"] == "hex":
                targets.append(f"@h{n}")
                sets.append(f"{_quote(col['name'])} = UNHEX(@h{n})")
            else:
                targets.append(_quote(col["name"]))
        self.statement = (
            f"LOAD DATA LOCAL INFILE 'cdc-backup-chunk' INTO TABLE {_quote(table.name)} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
            f"({', '.join(targets)})" + (f" SET {', '.join(sets)}" if sets else "")
        ).encode()

    #: A chunk the target refuses as it is (``TargetValueError``) may be loaded through the sink's
    #: conversion instead: the table keeps its primary key, so the sink's upserts work on it.
    refusals_convert = True

    def prepare(self, sink: Any) -> None:
        """Nothing: InnoDB tables are clustered by their primary key, which the rows arrive in the order of."""

    def finish(self, sink: Any) -> None:
        """Nothing (see :meth:`prepare`)."""

    def load(self, sink: Any, key: str, offset: Any, text: bytes, rows: int) -> None:
        """One chunk's lines and its done-marker, in one target transaction."""
        from connectors.sql.errors import translate

        doing = f"loading a chunk into {self.label}"
        try:
            with self._one_at_a_time, sink.engine.connect() as conn:
                raw = conn.connection.dbapi_connection
                _allow_local(raw)
                with conn.begin():
                    loaded, warnings = _load_data(raw, self.statement, text)
                    if warnings or loaded != rows:
                        raise TargetValueError(
                            f"sink {sink.name!r}: {doing}: the target took {loaded} of {rows} rows with {warnings} "
                            f"warnings{_first_warning(raw)}; the chunk is rolled back",
                            hint="restore with the target's own column types, or into an empty table",
                        )
                    sink.store_position(conn, key, offset)
        except TargetValueError:
            raise
        except Exception as exc:
            raise translate(exc, sink=sink.name, doing=doing) from exc


def _allow_local(raw: Any) -> None:
    """Reconnect a driver connection with the ``LOCAL INFILE`` capability (once per connection), keeping the
    driver's own file handler off: only :func:`_load_data` answers the server's request, with the chunk."""
    from pymysql.constants import CLIENT

    if raw.client_flag & CLIENT.LOCAL_FILES:
        return
    raw.close()
    raw.client_flag |= CLIENT.LOCAL_FILES
    raw._local_infile = False
    raw.connect()


def _load_data(raw: Any, statement: bytes, text: bytes) -> tuple[int, int]:
    """Send ``LOAD DATA LOCAL`` and answer the server's file request with ``text``; (rows, warnings)."""
    from pymysql.connections import OKPacketWrapper
    from pymysql.constants import COMMAND

    raw._execute_command(COMMAND.COM_QUERY, statement)
    request = raw._read_packet()  # an error packet raises here
    if request.get_all_data()[:1] != b"\xfb":
        raise ConnectionLostError("the target did not ask for the data of LOAD DATA LOCAL")
    view = memoryview(text)
    step = 1 << 22
    for start in range(0, len(view), step):
        raw.write_packet(view[start : start + step])
    raw.write_packet(b"")
    ok = OKPacketWrapper(raw._read_packet())
    return int(ok.affected_rows), int(ok.warning_count)


def _first_warning(raw: Any) -> str:
    """`` (first: <level> <code>)`` from SHOW WARNINGS, without the message (it may quote a value)."""
    try:
        with raw.cursor() as cur:
            cur.execute("SHOW WARNINGS LIMIT 1")
            row = cur.fetchone()
    except Exception:  # noqa: BLE001 - only for the message
        return ""
    return f" (first: {row[0]} {row[1]})" if row else ""


def native_loader(sink: Any, entry: TableEntry) -> LoadDataLoader | None:
    """A loader for ``entry``'s ``mysql-tsv`` chunks into ``sink``'s target when it is a MySQL/MariaDB database
    that allows ``LOAD DATA LOCAL`` and whose table (created by the sink already) takes the lines unchanged;
    None when the rows must go through the sink's conversion instead."""
    from sqlalchemy import text as sa_text

    if entry.encoding != ENCODING or getattr(sink, "dialect", None) != "mysql" or entry.native is None:
        return None
    table = sink.target_table(entry.table)
    if table is None:
        return None
    native = entry.native
    modes = native.get("modes") or {}
    with sink.engine.connect() as conn:
        if not int(conn.execute(sa_text("SELECT @@local_infile")).scalar_one() or 0):
            return None
        rows = conn.execute(
            sa_text(
                "SELECT COLUMN_NAME, LOWER(COLUMN_TYPE), CHARACTER_SET_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
            ),
            {"t": table.name},
        ).all()
    target = {str(name): (str(kind), charset) for name, kind, charset in rows}
    for col in native.get("types") or []:
        have = target.get(str(col["name"]))
        if have is None or have[0] != str(col["column_type"]):
            return None
        if col["kind"] == "text" and have[1] != "utf8mb4":
            return None
        if not _lossless(str(col["data_type"]), str(col["column_type"]), modes):
            return None
    return LoadDataLoader(sink, entry, native)
