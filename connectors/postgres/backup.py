"""Backups of a PostgreSQL source: the initial snapshot's machinery, read once for ``cdc backup create``.

:func:`open_snapshot` is what :mod:`cdc.backup.create` loads for ``source.type: postgres``.

**Consistency without a lasting slot.** The backup opens a replication connection of its own
and creates a *temporary* logical slot on it (``CREATE_REPLICATION_SLOT cdc_backup_<random>
TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export')``; ``EXPORT_SNAPSHOT`` before PostgreSQL 15).
PostgreSQL answers with the slot's *consistent point* and an exported snapshot that sees
exactly the transactions whose commit record lies before that point, and no other: the
transactions the pipeline's slot streams with an LSN at or after it are precisely the ones the
snapshot does not show. The rows are then read by :class:`connectors.postgres.snapshot.Snapshot`
(the initial snapshot's reader: ``REPEATABLE READ, READ ONLY``, primary-key chunks, the same
text converters as streaming) in a transaction that imports that snapshot
(``SET TRANSACTION SNAPSHOT``). Once imported, the view belongs to the reading transaction, so
the temporary slot is dropped at once (``DROP_REPLICATION_SLOT``) and the replication
connection closed: the slot lives for the few milliseconds between its creation and the
import, and a killed process takes it along (a temporary slot ends with its session). The
pipeline's own slot and publication are neither read from nor changed, and nothing is stored.

The backup's position is ``PgPosition(consistent point)``: a change event belongs to the backup
exactly when its transaction's commit LSN is below it (see
:data:`cdc.backup.restore.REPLAY_POSITION`).

**Tables.** Those ``tables``/``exclude_tables`` select, restricted, when the pipeline's
publication exists and does not publish all tables, to the tables it publishes (and, on
PostgreSQL 15+, to the columns it publishes): what the pipeline's initial snapshot would read.
Without the publication (the pipeline never ran), every selected table.

Creating the temporary slot needs the ``REPLICATION`` attribute (as the pipeline does), a free
replication slot and WAL sender, and waits, like any logical slot, until the transactions
running at that moment have ended.

**Native chunks** (:meth:`PgBackupSnapshot.native_batches`, encodings ``pg-binary`` and ``pg-copy``).
The definitions come from the same snapshot reader (so they equal the initial snapshot's); the rows
of every table are then read in the same transaction with ``COPY (SELECT <columns> FROM <table>) TO
STDOUT``, in the binary format when every column has a type of
:data:`~connectors.postgres.copybin.BINARY_TYPES` and the server encoding is UTF-8 (each chunk then a
whole binary stream: header, ``chunk_rows`` tuples, end marker), else in the text format (``chunk_rows``
lines to a chunk). The rows are stored as they come: no value is converted in Python. A binary value
reads back as its output-function text (:func:`~connectors.postgres.copybin.text_of`), so both
encodings go through the same converters below. Each value is its type's output-function text under
:func:`~connectors.postgres.types.session_options`, the same text the snapshot reader converts, so
:func:`row_decoder` turns a chunk back into exactly the row images the initial snapshot would
publish (the manifest keeps, per column, its type oid and modifier, the ``pg_type`` rows the
converters are built from, and the representation modes).

**Restoring into PostgreSQL** (:func:`native_loader`): when every column of the target table has
exactly the source column's type (``format_type``, built-in types only) and the column's Debezium
representation loses nothing under the source's modes (no ``decimal_handling: double``, no
``time_precision: connect`` for time types, intervals only with ``interval_handling: string``),
the lines go to the target unchanged with ``COPY … FROM STDIN``: the same values the sink would
have written, without converting them twice. An empty table is loaded without its primary key,
which is added back once all chunks are in (as ``pg_restore`` does); a rerun after a kill finds
the key missing and adds it at the end. Every chunk is still one target transaction with its
done-marker.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from cdc.errors import BackupCorruptError, ConnectionLostError, TargetValueError
from cdc.events import Item, SchemaChange, TableId
from cdc.positions import PgPosition, Position, parse_lsn
from connectors.postgres.config import PostgresSourceConfig, libpq_url
from connectors.postgres.errors import connect_error, is_connection_loss, query_error

if TYPE_CHECKING:
    from cdc.backup.create import NativeChunk, NativeTable
    from cdc.backup.format import TableEntry

__all__ = [
    "BINARY_ENCODING",
    "ENCODING",
    "PgBackupSnapshot",
    "PgCopyLoader",
    "count_rows",
    "native_loader",
    "open_snapshot",
    "row_decoder",
]

#: The chunk encodings of this connector's native chunks (see :mod:`cdc.backup.format`): COPY's text
#: format, and its binary format for tables whose every column type allows it (:mod:`.copybin`).
ENCODING = "pg-copy"
BINARY_ENCODING = "pg-binary"

log = logging.getLogger("cdc.postgres")

_PUBLICATION_SQL = "SELECT puballtables FROM pg_catalog.pg_publication WHERE pubname = %s"
_PUBLISHED_SQL = "SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = %s"
_PUBLISHED_WITH_COLUMNS_SQL = (
    "SELECT schemaname, tablename, attnames::text[] FROM pg_catalog.pg_publication_tables WHERE pubname = %s"
)
#: A table's live columns: name, type oid, type modifier, ``format_type`` (the type as DDL spells it).
_ATTRIBUTES_SQL = """
SELECT a.attname::text, a.atttypid::bigint, a.atttypmod, pg_catalog.format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


class PgBackupSnapshot:
    """One consistent snapshot of the captured tables (see :class:`cdc.backup.create.BackupSnapshot`)."""

    def __init__(self, config: PostgresSourceConfig, prefix: str) -> None:
        from connectors.postgres.snapshot import Catalog

        self.cfg = config
        self.prefix = prefix
        self._url = libpq_url(config.url.get_secret_value())
        self._catalog = Catalog(config, self._connect)
        self._snapshot: Any = None
        self._iter: Iterator[list[Item]] | None = None
        self._position: PgPosition | None = None
        self._reader: Any = None  # the snapshot transaction's connection (native reads)
        self.slot_name = f"cdc_backup_{secrets.token_hex(8)}"

    # ------------------------------------------------------------------ connections

    def _connect(self) -> Any:
        """A normal autocommit connection with the replication connection's session settings."""
        import psycopg

        from connectors.postgres.types import session_options

        try:
            return psycopg.connect(self._url, autocommit=True, options=session_options(), connect_timeout=10)
        except psycopg.Error as exc:
            raise connect_error(exc, self._url) from exc

    def _connect_reader(self) -> Any:
        """The snapshot transaction's connection (:meth:`_connect`), kept for the native reads."""
        self._reader = self._connect()
        return self._reader

    def _replication(self) -> Any:
        import psycopg

        from connectors.postgres.types import session_options

        try:
            return psycopg.connect(
                self._url, replication="database", autocommit=True, options=session_options(), connect_timeout=10
            )
        except psycopg.Error as exc:
            raise connect_error(exc, self._url) from exc

    # ------------------------------------------------------------------ the snapshot

    @property
    def position(self) -> Position | None:
        """The temporary slot's consistent point; known once the first batch was yielded."""
        return self._position

    def tables(self) -> list[Any]:
        """The tables to back up (:class:`~connectors.postgres.snapshot.SnapshotTable`), in catalog order."""
        from connectors.postgres.snapshot import TABLES_SQL, SnapshotTable

        cat = self._catalog
        published: dict[str, tuple[str, ...] | None] | None = None
        rows = cat.execute(_PUBLICATION_SQL, (self.cfg.publication,), doing="reading the publication")
        if rows and not rows[0][0]:
            with_columns = cat.server_version >= 150000
            published = {}
            for row in cat.execute(
                _PUBLISHED_WITH_COLUMNS_SQL if with_columns else _PUBLISHED_SQL,
                (self.cfg.publication,),
                doing="reading the publication",
            ):
                published[f"{row[0]}.{row[1]}"] = tuple(row[2]) if with_columns and row[2] is not None else None
        out = []
        for oid, schema, name in cat.execute(TABLES_SQL, doing="listing tables"):
            table = TableId(str(schema), str(name))
            if not self.cfg.includes(table.schema, table.table):
                continue
            if published is not None:
                if str(table) not in published:
                    continue
                out.append(SnapshotTable(int(oid), table, published[str(table)]))
            else:
                out.append(SnapshotTable(int(oid), table, None))
        return out

    def _begin(self) -> Any:
        """Create the temporary slot, import its snapshot into the reading transaction, drop the slot."""
        from psycopg import sql

        from connectors.postgres.snapshot import Snapshot

        self._catalog.conn()
        repl = self._replication()
        try:
            version = int(repl.info.server_version)
            head = sql.SQL("CREATE_REPLICATION_SLOT {} TEMPORARY LOGICAL pgoutput ").format(
                sql.Identifier(self.slot_name)
            )
            tail = sql.SQL("(SNAPSHOT 'export')" if version >= 150000 else "EXPORT_SNAPSHOT")
            try:
                row = repl.execute(head + tail).fetchone()
            except Exception as exc:
                raise query_error(exc, "creating the backup's temporary replication slot") from exc
            assert row is not None
            start = PgPosition(parse_lsn(str(row[1])))
            exported = str(row[2])
            snapshot = Snapshot(
                self.cfg,
                self.prefix,
                self._catalog,
                connect=self._connect_reader,
                start=start,
                tables=self.tables(),
                resume=None,
            )
            snapshot.begin(exported)  # from here on the view is the snapshot transaction's own
            try:
                repl.execute(sql.SQL("DROP_REPLICATION_SLOT {}").format(sql.Identifier(self.slot_name)))
            except Exception as exc:
                snapshot.close()
                raise query_error(exc, "dropping the backup's temporary replication slot") from exc
        finally:
            with contextlib.suppress(Exception):  # closing ends the session, and with it a temporary slot
                repl.close()
        self._position = start
        return snapshot

    def batches(self) -> Iterator[Sequence[Item]]:
        """The snapshot's items: the definitions first, then ``op: r`` rows (and chunk checkpoints)."""
        import psycopg

        self._snapshot = self._begin()
        self._iter = self._snapshot.items()
        try:
            yield from self._iter
        except psycopg.Error as exc:  # the reader translates its own statements' errors; this is a safety net
            if is_connection_loss(exc):
                raise ConnectionLostError(f"the PostgreSQL source went away during the backup: {exc}") from exc
            raise query_error(exc, "reading the backup's snapshot") from exc

    def native_batches(self, chunk_rows: int) -> Iterator[Sequence[Item | NativeTable | NativeChunk]]:
        """The snapshot with every table's rows as ``pg-copy`` chunks (see the module docstring):
        first a :class:`~cdc.backup.create.NativeTable` per table, then its chunks, table by table."""
        import psycopg

        from cdc.backup.create import NativeTable

        self._snapshot = self._begin()
        self._iter = self._snapshot.items()
        try:
            definitions = [d for d in next(self._iter) if isinstance(d, SchemaChange)]
            utf8 = str(self._reader.execute("SHOW server_encoding").fetchone()[0]).upper() in ("UTF8", "UTF-8")
            tables = [(d, self._native_meta(d)) for d in definitions]
            encodings = [BINARY_ENCODING if utf8 and _binary_ok(meta) else ENCODING for _, meta in tables]
            yield [NativeTable(d, enc, meta) for (d, meta), enc in zip(tables, encodings, strict=True)]
            for (change, meta), enc in zip(tables, encodings, strict=True):
                yield from self._copy_out(change.schema.table, meta["columns"], chunk_rows, enc == BINARY_ENCODING)
            self._reader.execute("COMMIT")
        except psycopg.Error as exc:
            if is_connection_loss(exc):
                raise ConnectionLostError(f"the PostgreSQL source went away during the backup: {exc}") from exc
            raise query_error(exc, "reading the backup's snapshot") from exc

    def _native_meta(self, change: SchemaChange) -> dict[str, Any]:
        """What reading ``change``'s table's chunks takes: its columns (those of the definition, in order)
        with type oid, modifier and ``format_type``, the ``pg_type`` rows of those types, and the modes."""
        from connectors.postgres.types import TYPE_CATALOG_SQL

        table = change.schema.table
        conn = self._reader
        oid = conn.execute(
            "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))::oid::bigint", (table.schema, table.table)
        ).fetchone()[0]
        attributes = {str(r[0]): r for r in conn.execute(_ATTRIBUTES_SQL, (oid,)).fetchall()}
        names = [c.name for c in change.schema.columns]
        columns = [
            {"name": n, "oid": int(attributes[n][1]), "typmod": int(attributes[n][2]), "type": str(attributes[n][3])}
            for n in names
        ]
        oids = sorted({int(attributes[n][1]) for n in names})
        catalog = [
            [int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5] or 0), int(r[6] or 0), r[7], r[8], r[9]]
            for r in conn.execute(TYPE_CATALOG_SQL, {"oids": oids}).fetchall()
        ]
        modes = self._catalog.modes
        return {
            "columns": names,
            "types": columns,
            "pg_type": catalog,
            "modes": {
                "decimal": str(modes.decimal),
                "time": str(modes.time),
                "binary": str(modes.binary),
                "interval": str(modes.interval),
                "money_digits": int(modes.money_digits),
            },
            "server_version": int(self._catalog.server_version),
        }

    def _copy_out(
        self, table: TableId, columns: Sequence[str], chunk_rows: int, binary: bool
    ) -> Iterator[list[NativeChunk]]:
        """The rows of ``table`` as COPY text lines, or with ``binary`` as binary COPY tuples (each chunk
        then a whole stream: header, tuples, end marker), ``chunk_rows`` to a chunk. Reads libpq's COPY
        data directly: the server sends one message per row (the first one after the binary header, the
        end marker in a message of its own), and no per-row Python object is made beyond its buffer."""
        import select

        from psycopg import pq, sql
        from psycopg.errors import error_from_result

        from cdc.backup.create import NativeChunk
        from connectors.postgres.copybin import HEADER, TRAILER

        conn = self._reader
        query = sql.SQL("COPY (SELECT {} FROM {}.{}) TO STDOUT{}").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in columns),
            sql.Identifier(table.schema),
            sql.Identifier(table.table),
            sql.SQL(" (FORMAT binary)" if binary else ""),
        )
        head, tail = (HEADER, TRAILER) if binary else (b"", b"")
        first = binary  # the first message starts with the stream's header
        pgconn = conn.pgconn
        result = pgconn.exec_(query.as_bytes(conn))
        if result.status != pq.ExecStatus.COPY_OUT:
            raise error_from_result(result, encoding=conn.info.encoding)
        get, consume, fd = pgconn.get_copy_data, pgconn.consume_input, pgconn.socket
        wait = select.select
        buf = bytearray(head)  # one growing buffer: each row's libpq buffer is copied and freed at once
        rows = 0
        progress = self._snapshot.progress
        progress.table = str(table)
        while True:
            n, data = get(1)  # non-blocking: the wait below releases the GIL (the chunk writer compresses meanwhile)
            if n > 0:
                if first:
                    first = False
                    data = _strip_header(data, table)
                    if data is None:
                        continue  # (a header in a message of its own)
                if binary and data == TRAILER:
                    continue  # the end marker: every chunk gets its own
                buf += data
                rows += 1
                if rows == chunk_rows:
                    progress.rows += rows
                    buf += tail
                    yield [NativeChunk(table, buf, rows)]
                    buf = bytearray(head)
                    rows = 0
            elif n == 0:
                wait([fd], [], [])
                consume()
            else:
                break
        end = pgconn.get_result()
        while pgconn.get_result() is not None:
            pass
        if end is None or end.status != pq.ExecStatus.COMMAND_OK:
            if end is None:
                raise ConnectionLostError(f"the PostgreSQL source ended the COPY of {table} without a result")
            raise error_from_result(end, encoding=conn.info.encoding)
        progress.rows += rows
        progress.done.append(str(table))
        if rows:
            buf += tail
            yield [NativeChunk(table, buf, rows)]

    def progress(self) -> dict[str, Any] | None:
        return self._snapshot.progress.view() if self._snapshot is not None else None

    def close(self) -> None:
        if self._iter is not None:
            self._iter.close()  # type: ignore[attr-defined]
            self._iter = None
        if self._snapshot is not None:
            self._snapshot.close()
        self._catalog.close()


def _binary_ok(native: dict[str, Any]) -> bool:
    """Whether every column of a table (its ``native`` description) has a type of
    :data:`~connectors.postgres.copybin.BINARY_TYPES` (a built-in base type, not an array or a domain)."""
    from connectors.postgres.copybin import BINARY_TYPES

    rows = {int(r[0]): r for r in native.get("pg_type") or []}
    for col in native.get("types") or []:
        row = rows.get(int(col["oid"]))
        if (
            row is None
            or row[2] != "pg_catalog"
            or row[3] != "b"
            or int(row[5] or 0) != 0
            or row[1] not in BINARY_TYPES
        ):
            return False
    return bool(native.get("types"))


def _strip_header(data: bytes | memoryview, table: TableId) -> bytes | memoryview | None:
    """The first message of a binary COPY without the stream's header (None when it held only that)."""
    from connectors.postgres.copybin import header_end

    try:
        rest = data[header_end(data) :]
    except ValueError as exc:
        raise ConnectionLostError(f"the PostgreSQL source sent the binary COPY of {table} without its header") from exc
    return rest or None


def open_snapshot(config: PostgresSourceConfig, prefix: str) -> PgBackupSnapshot:
    """The snapshot a backup of this source reads (called by :func:`cdc.backup.create.create_backup`)."""
    return PgBackupSnapshot(config, prefix)


# ---------------------------------------------------------------------------------------------
# Reading pg-copy chunks
# ---------------------------------------------------------------------------------------------

#: COPY text format escapes (``COPY FROM`` reads all of them; ``COPY TO`` writes only the one-letter ones).
_ESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|(.))", re.DOTALL)
_LETTERS = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}


def _unescape_match(m: re.Match[bytes]) -> bytes:
    octal, hexa, other = m.groups()
    if octal is not None:
        return bytes([int(octal, 8) & 0xFF])
    if hexa is not None:
        return bytes([int(hexa, 16)])
    return _LETTERS.get(other, other)


def copy_fields(line: bytes) -> list[str | None]:
    """One line of COPY's text format as its values: text, or None for ``\\N``."""
    if b"\\" not in line:
        fields: list[str | None] = list(line.decode().split("\t"))
        return fields
    return [None if f == b"\\N" else _ESCAPE.sub(_unescape_match, f).decode() for f in line.split(b"\t")]


def _modes(native: dict[str, Any]) -> Any:
    from cdc.values import BinaryHandling, DecimalHandling, IntervalHandling, TimePrecision
    from connectors.postgres.types import MONEY_FRACTION_DIGITS, PgTypeModes

    m = native.get("modes") or {}
    return PgTypeModes(
        DecimalHandling(m.get("decimal", DecimalHandling.PRECISE)),
        TimePrecision(m.get("time", TimePrecision.ADAPTIVE)),
        BinaryHandling(m.get("binary", BinaryHandling.BYTES)),
        IntervalHandling(m.get("interval", IntervalHandling.NUMERIC)),
        int(m.get("money_digits", MONEY_FRACTION_DIGITS)),
    )


def _types(native: dict[str, Any]) -> dict[int, Any]:
    from connectors.postgres.types import build_types

    return build_types([tuple(r) for r in native.get("pg_type") or []])


def row_decoder(entry: TableEntry) -> Callable[[bytes], list[dict[str, Any]]]:
    """The row images of a ``pg-copy`` chunk's lines: each value through the converter the snapshot reader
    uses for its column (built from the type rows and modes in the manifest), so a row reads exactly as
    the initial snapshot would have published it."""
    from connectors.postgres.copybin import BINARY_TYPES, text_of
    from connectors.postgres.snapshot import TablePlan
    from connectors.postgres.types import pg_column, text_converter

    native = entry.native or {}
    binary = entry.encoding == BINARY_ENCODING
    try:
        types = _types(native)
        modes = _modes(native)
        schema = entry.schema().schema
        fields: list[tuple[int, str, Callable[[Any], Any]]] = []
        for index, col in enumerate(native["types"]):
            name = str(col["name"])
            pgtype = types.get(int(col["oid"]))
            if pgtype is None:
                raise KeyError(f"type oid {col['oid']}")
            column = pg_column(name, pgtype, int(col["typmod"]), modes=modes)
            convert: Callable[[Any], Any] = text_converter(column, pgtype, modes)
            if binary:
                if pgtype.name not in BINARY_TYPES:
                    raise ValueError(f"column {name} of type {pgtype.name} in binary format")
                convert = _from_binary(text_of(pgtype.name), convert)
            fields.append((index, name, convert))
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupCorruptError(
            f"the {entry.encoding} description of {entry.table} in the manifest is malformed: {exc}"
        ) from exc
    plan = TablePlan(schema, tuple(fields), len(fields))
    width = len(fields)
    image = plan.image

    if binary:

        def decode_binary(data: bytes) -> list[dict[str, Any]]:
            return [image(values) for values in _binary_rows(entry, data)]

        return decode_binary

    def decode(text: bytes) -> list[dict[str, Any]]:
        lines = text.split(b"\n")
        lines.pop()  # the text ends with a line feed
        out = []
        for line in lines:
            values = copy_fields(line)
            if len(values) != width:
                raise BackupCorruptError(f"a chunk of {entry.table} holds a line of {len(values)} values, not {width}")
            out.append(image(values))  # a value the modes cannot represent: the snapshot reader's DecodeError
        return out

    return decode


def _from_binary(text: Callable[[bytes], Any], convert: Callable[[Any], Any]) -> Callable[[bytes], Any]:
    """A binary value's converter: its output-function text (:func:`~connectors.postgres.copybin.text_of`)
    through the text converter, which is skipped where it would not change it."""
    from connectors.postgres.types import IDENTITY

    if convert is IDENTITY or convert is int:  # (integers come as ints already)
        return text
    return lambda value: convert(text(value))


def _binary_rows(entry: TableEntry, data: bytes) -> list[tuple[bytes | None, ...]]:
    """The tuples of a ``pg-binary`` chunk's content; BackupCorruptError if it is not a whole stream of
    the table's width."""
    from connectors.postgres.copybin import split

    try:
        return split(data, len((entry.native or {}).get("columns") or ()))
    except ValueError as exc:
        raise BackupCorruptError(f"a chunk of {entry.table} is not a binary COPY stream: {exc}") from exc


def count_rows(entry: TableEntry, text: bytes) -> int:
    """The rows of a non-line chunk's content (``pg-binary``); BackupCorruptError if it is not a whole stream."""
    return len(_binary_rows(entry, text))


# ---------------------------------------------------------------------------------------------
# Loading pg-copy chunks into a PostgreSQL target
# ---------------------------------------------------------------------------------------------

#: Built-in type names whose Debezium value loses nothing whatever the modes.
_TIME_TYPES = frozenset({"date", "time", "timetz", "timestamp", "timestamptz"})
_DECIMAL_TYPES = frozenset({"numeric", "money"})
_FIRST_USER_OID = 16384  # FirstNormalObjectId: oids below belong to the built-in catalog


_DEFAULT_PRECISION = re.compile(r"\b(timestamp|time)( with(?:out)? time zone)")


def _same_type(a: str, b: str) -> bool:
    """Whether two ``format_type`` spellings name the same type (a time type without a precision has 6)."""
    return _DEFAULT_PRECISION.sub(r"\1(6)\2", a) == _DEFAULT_PRECISION.sub(r"\1(6)\2", b)


def _lossless(pgtype: Any, modes: Any) -> bool:
    """Whether a value of ``pgtype`` reaches the sink unchanged through its Debezium representation."""
    from cdc.values import DecimalHandling, IntervalHandling, TimePrecision

    t = pgtype
    while t is not None:
        if t.oid >= _FIRST_USER_OID:
            return False
        if t.name in _DECIMAL_TYPES and modes.decimal is DecimalHandling.DOUBLE:
            return False
        if t.name in _TIME_TYPES and modes.time is TimePrecision.CONNECT:
            return False
        if t.name == "interval" and modes.interval is not IntervalHandling.STRING:
            return False
        t = t.element
    return True


class PgCopyLoader:
    """Loads ``pg-copy`` chunks of one table into a PostgreSQL target with ``COPY FROM`` (see the module
    docstring); made by :func:`native_loader` once the sink has created the table."""

    def __init__(self, sink: Any, entry: TableEntry, columns: Sequence[str], key: Sequence[str]) -> None:
        from psycopg import sql

        binary = entry.encoding == BINARY_ENCODING

        self.entry = entry
        self.table = sink.target_table(entry.table)
        self.label = f"{self.table.schema}.{self.table.name}" if self.table.schema else self.table.name
        self.ident = (
            sql.Identifier(self.table.schema, self.table.name) if self.table.schema else sql.Identifier(self.table.name)
        )
        self.copy = sql.SQL("COPY {} ({}) FROM STDIN{}").format(
            self.ident,
            sql.SQL(", ").join(sql.Identifier(c) for c in columns),
            sql.SQL(" (FORMAT binary)" if binary else ""),
        )
        self.key = list(key)

    def _run(self, sink: Any, doing: str, work: Callable[[Any, Any], Any]) -> Any:
        from connectors.sql.errors import translate

        try:
            with sink.engine.connect() as conn, conn.begin():
                raw = conn.connection.dbapi_connection
                return work(conn, raw)
        except Exception as exc:
            raise translate(exc, sink=sink.name, doing=doing) from exc

    def _has_key(self, raw: Any) -> str | None:
        row = raw.execute(
            "SELECT conname::text FROM pg_catalog.pg_constraint WHERE contype = 'p' AND conrelid = "
            "to_regclass(format('%%I.%%I', %s::text, %s::text))",
            (self.table.schema or "public", self.table.name),
        ).fetchone()
        return str(row[0]) if row else None

    def prepare(self, sink: Any) -> None:
        """Drop the primary key of a table that is still empty: the rows go in faster without it. A key
        that cannot be dropped (a foreign key of another table refers to it) stays."""
        import psycopg
        from psycopg import sql

        def work(_conn: Any, raw: Any) -> None:
            name = self._has_key(raw)
            if name is None or not self.key:
                return
            empty = raw.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(self.ident)).fetchone()[0]
            if not empty:
                return
            try:
                with raw.transaction():  # a savepoint: a refused drop leaves the key and the transaction intact
                    raw.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(self.ident, sql.Identifier(name)))
            except psycopg.errors.DependentObjectsStillExist:
                return

        self._run(sink, f"preparing {self.label} for the bulk load", work)

    def load(self, sink: Any, key: str, offset: Any, text: bytes, rows: int) -> None:
        """One chunk's lines (``rows`` of them) and its done-marker, in one target transaction."""

        def work(conn: Any, raw: Any) -> None:
            with raw.cursor() as cur:
                # The commit need not wait for its WAL flush: a chunk lost in a crash of the target loses its
                # done-marker with it (one transaction) and is loaded again; the restore's next marks wait.
                cur.execute("SET LOCAL synchronous_commit = off")
                with cur.copy(self.copy) as copy:
                    copy.write(text)
                if cur.rowcount != rows:
                    raise TargetValueError(
                        f"sink {sink.name!r}: COPY into {self.label} took {cur.rowcount} of a chunk's {rows} rows"
                    )
            sink.store_position(conn, key, offset)

        self._run(sink, f"loading a chunk into {self.label}", work)

    def finish(self, sink: Any) -> None:
        """Add the primary key back (if :meth:`prepare` dropped it, in this run or a killed one)."""
        from psycopg import sql

        def work(_conn: Any, raw: Any) -> None:
            if self.key and self._has_key(raw) is None:
                columns = sql.SQL(", ").join(sql.Identifier(k) for k in self.key)
                raw.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(self.ident, columns))

        self._run(sink, f"adding the primary key of {self.label}", work)


def native_loader(sink: Any, entry: TableEntry) -> PgCopyLoader | None:
    """A loader for ``entry``'s ``pg-copy`` chunks into ``sink``'s target when it is a PostgreSQL database whose
    table (created by the sink already) takes the lines unchanged; None when the rows must go through the
    sink's conversion instead (another engine, another column type, a lossy representation)."""
    from sqlalchemy import text as sa_text

    native_encoding = entry.encoding in (ENCODING, BINARY_ENCODING)
    if not native_encoding or getattr(sink, "dialect", None) != "postgresql" or entry.native is None:
        return None
    table = sink.target_table(entry.table)
    if table is None:
        return None
    native = entry.native
    types = _types(native)
    modes = _modes(native)
    with sink.engine.connect() as conn:
        rows = conn.execute(
            sa_text(
                "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod) "
                "FROM pg_catalog.pg_attribute a "
                "WHERE a.attrelid = to_regclass(format('%I.%I', CAST(:s AS text), CAST(:t AS text))) "
                "AND a.attnum > 0 AND NOT a.attisdropped"
            ),
            {"s": table.schema or "public", "t": table.name},
        ).all()
    target = {str(name): str(kind) for name, kind in rows}
    for col in native.get("types") or []:
        pgtype = types.get(int(col["oid"]))
        have = target.get(str(col["name"]))
        if pgtype is None or have is None or not _same_type(have, str(col["type"])) or not _lossless(pgtype, modes):
            return None
    key = [c.name for c in table.primary_key.columns]
    return PgCopyLoader(sink, entry, [str(c) for c in native["columns"]], key)
