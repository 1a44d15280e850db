"""The MySQL/MariaDB initial snapshot: consistent, chunked by primary key, resumable.

Consistency without a global lock on MariaDB: ``START TRANSACTION WITH CONSISTENT
SNAPSHOT`` makes MariaDB report, in ``binlog_snapshot_file`` / ``binlog_snapshot_position``,
the binlog position that exactly matches the transaction's view. Streaming starts there,
so the handoff has no gap and no double effect. (MySQL 8 has no such status; there the
position is read under a brief ``FLUSH TABLES WITH READ LOCK`` taken only while the
snapshot transaction starts.)

Rows are read in primary-key chunks (``WHERE (pk) > (last) ORDER BY pk LIMIT n``), so
memory stays bounded and, after every chunk, a :class:`~cdc.events.Checkpoint` in phase
``snapshot`` records the tables done and the last key read. A crash resumes from the last
completed chunk in a new snapshot transaction; streaming still starts at the first
snapshot's position, and replaying the changes between the two snapshots over newer rows
converges to the same final state (every change carries the full row). A table without a
primary key is read in one pass and restarts from its beginning after a crash.

Definitions come from ``information_schema`` through the same type mapping as table maps
(:mod:`connectors.mysql.schema`), and values through the same :mod:`cdc.values`
converters as streaming, so a row looks the same in ``op: r`` and in ``op: c``.
SQL identifiers pass only through SQLAlchemy constructs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cdc import __version__
from cdc.events import ChangeEvent, Checkpoint, Item, Logical, Op, SchemaChange, TableId, TableSchema
from cdc.positions import MySqlPosition, SourceOffset
from cdc.values import Geometry, converter_to_wire
from connectors.mysql.config import MySqlSourceConfig
from connectors.mysql.schema import TypeModes, column_from_binlog, without_columns

__all__ = ["Snapshot", "SnapshotProgress", "schema_from_catalog"]

_TYPE_CODES = {
    "tinyint": 1,
    "smallint": 2,
    "int": 3,
    "float": 4,
    "double": 5,
    "timestamp": 17,
    "bigint": 8,
    "mediumint": 9,
    "date": 10,
    "time": 19,
    "datetime": 18,
    "year": 13,
    "varchar": 15,
    "bit": 16,
    "json": 245,
    "decimal": 246,
    "enum": 247,
    "set": 248,
    "tinyblob": 252,
    "mediumblob": 252,
    "longblob": 252,
    "blob": 252,
    "tinytext": 252,
    "mediumtext": 252,
    "longtext": 252,
    "text": 252,
    "varbinary": 15,
    "char": 254,
    "binary": 254,
    "geometry": 255,
    "point": 255,
    "linestring": 255,
    "polygon": 255,
    "multipoint": 255,
    "multilinestring": 255,
    "multipolygon": 255,
    "geometrycollection": 255,
}
_LENGTH_SIZE = {"tiny": 1, "medium": 3, "long": 4}
_ENUM_VALUES = re.compile(r"'((?:[^']|'')*)'")


class _CatalogColumn:
    """information_schema's description of a column, shaped like the library's table-map column."""

    def __init__(self, row: dict[str, Any]) -> None:
        data_type = str(row["DATA_TYPE"]).lower()
        column_type = str(row["COLUMN_TYPE"]).lower()
        self.name = str(row["COLUMN_NAME"])
        self.type = _TYPE_CODES.get(data_type, -1)
        self.unsigned = "unsigned" in column_type
        self.collation_name = row["COLLATION_NAME"] or (
            "binary" if data_type in ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob") else None
        )
        octets = row["CHARACTER_OCTET_LENGTH"]
        self.max_length = int(octets) if octets is not None else 0
        self.precision = int(row["NUMERIC_PRECISION"] or 0)
        self.decimals = int(row["NUMERIC_SCALE"] or 0)
        self.fsp = int(row["DATETIME_PRECISION"] or 0)
        self.bits = int(row["NUMERIC_PRECISION"] or 1) if data_type == "bit" else 0
        self.length_size = next((v for k, v in _LENGTH_SIZE.items() if data_type.startswith(k)), 2)
        values = [v.replace("''", "'") for v in _ENUM_VALUES.findall(str(row["COLUMN_TYPE"]))]
        self.enum_values = ["", *values] if data_type == "enum" else None
        self.set_values = values if data_type == "set" else None
        self.character_set_name = row["CHARACTER_SET_NAME"]


def schema_from_catalog(
    conn: Any, table: TableId, modes: TypeModes, version: int = 1, key_columns: Sequence[str] | None = None
) -> TableSchema:
    """A table's definition from ``information_schema``, equal to what its table map would give."""
    from sqlalchemy import text

    rows = (
        conn.execute(
            text(
                "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLLATION_NAME, CHARACTER_SET_NAME, "
                "CHARACTER_OCTET_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, COLUMN_KEY "
                "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = :s AND TABLE_NAME = :t ORDER BY ORDINAL_POSITION"
            ),
            {"s": table.schema, "t": table.table},
        )
        .mappings()
        .all()
    )
    columns = tuple(
        column_from_binlog(_CatalogColumn(dict(r)), i + 1, r["IS_NULLABLE"] == "YES", modes) for i, r in enumerate(rows)
    )
    pk_rows = conn.execute(
        text(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = :s AND TABLE_NAME = :t "
            "AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX"
        ),
        {"s": table.schema, "t": table.table},
    ).all()
    pk = tuple(str(r[0]) for r in pk_rows) or tuple(key_columns or ())
    return TableSchema(table, columns, pk, version)


def gtids_if_at(conn: Any, file: str, pos: int) -> str | None:
    """MariaDB's current GTID set (``@@gtid_binlog_pos``, "" for none) when the binlog still ends at
    ``file``:``pos`` before and after reading it, so no transaction was written in between and the set
    is exactly the one at that position; None when the binlog has moved on (or the position cannot be
    read): then only ``BINLOG_GTID_POS``, which reads the binlog file from its start, gives it (a second
    or more on a file near ``max_binlog_size``)."""
    from sqlalchemy import exc as sa_exc
    from sqlalchemy import text

    try:
        before = conn.execute(text("SHOW MASTER STATUS")).first()
        current = conn.execute(text("SELECT @@GLOBAL.gtid_binlog_pos")).scalar()
        after = conn.execute(text("SHOW MASTER STATUS")).first()
    except sa_exc.DBAPIError:  # no privilege to read it: the scan decides
        return None
    if before is None or after is None:
        return None
    if (str(before[0]), int(before[1])) != (file, pos) or (str(after[0]), int(after[1])) != (file, pos):
        return None
    return str(current or "")


@dataclass
class SnapshotProgress:
    """Where a snapshot is: for the terminal, for metrics and for the stored offset."""

    tables: list[str]
    done: list[str]
    table: str | None = None
    last_key: list[Any] | None = None
    chunk: int = 0
    rows: int = 0
    rows_total_estimate: int = 0
    estimates: dict[str, int] = field(default_factory=dict)  # per table, from the server's statistics

    def view(self) -> dict[str, Any]:
        """What :meth:`cdc.connector.Source.snapshot_progress` returns."""
        return {
            "table": self.table,
            "rows": self.rows,
            "rows_total_estimate": max(self.rows_total_estimate, self.rows),
            "tables_done": len(self.done),
            "tables_total": len(self.tables),
            "estimates": dict(self.estimates),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "tables": self.tables,
            "done": self.done,
            "table": self.table,
            "last_key": self.last_key,
            "chunk": self.chunk,
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SnapshotProgress:
        return cls(
            list(d.get("tables", [])),
            list(d.get("done", [])),
            d.get("table"),
            d.get("last_key"),
            int(d.get("chunk", 0)),
            int(d.get("rows", 0)),
        )


class Snapshot:
    """Yields the snapshot's items: definitions, ``op: r`` rows and a checkpoint per chunk.

    ``start_position`` is where streaming begins afterwards. The final checkpoint is in phase
    ``streaming`` at that position.
    """

    def __init__(
        self, config: MySqlSourceConfig, prefix: str, engine: Any, modes: TypeModes, resume: SourceOffset | None
    ) -> None:
        self.cfg = config
        self.prefix = prefix
        self.engine = engine
        self.modes = modes
        self.resume = resume
        self.start_position: MySqlPosition | None = (
            resume.position if resume is not None and isinstance(resume.position, MySqlPosition) else None
        )
        self.progress = SnapshotProgress([], [])
        if resume is not None and resume.phase == "snapshot":
            self.progress = SnapshotProgress.from_dict(resume.snapshot)
        self.schemas: dict[TableId, TableSchema] = {}
        #: MariaDB: when set, called with the snapshot's (file, pos) instead of looking up its GTID
        #: set inline; the start position then has no GTID set and the caller completes it.
        self.gtid_later: Callable[[str, int], None] | None = None

    def _begin(self, conn: Any) -> MySqlPosition:
        from sqlalchemy import text

        conn.execute(text("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        conn.execute(text("SET SESSION time_zone = '+00:00'"))
        conn.execute(text("START TRANSACTION WITH CONSISTENT SNAPSHOT"))
        status = dict(conn.execute(text("SHOW STATUS LIKE 'binlog_snapshot_%'")).all())
        if "Binlog_snapshot_file" in status:
            file, pos = str(status["Binlog_snapshot_file"]), int(status["Binlog_snapshot_position"])
            current = gtids_if_at(conn, file, pos)
            if current is not None:
                return MySqlPosition(file, pos, current or None)
            if self.gtid_later is not None:
                # BINLOG_GTID_POS reads the binlog file from its start up to pos: the caller looks it
                # up on another connection while the rows are read, and completes the position
                self.gtid_later(file, pos)
                return MySqlPosition(file, pos, None)
            gtids = conn.execute(text("SELECT BINLOG_GTID_POS(:f, :p)"), {"f": file, "p": pos}).scalar()
            return MySqlPosition(file, pos, str(gtids) if gtids else None)
        # MySQL 8: hold a global read lock only while the snapshot transaction starts
        conn.execute(text("COMMIT"))
        conn.execute(text("FLUSH TABLES WITH READ LOCK"))
        try:
            conn.execute(text("START TRANSACTION WITH CONSISTENT SNAPSHOT"))
            row = conn.execute(text("SHOW MASTER STATUS")).first()
        finally:
            conn.execute(text("UNLOCK TABLES"))
        assert row is not None
        executed = str(row[4]).replace("\n", "") if len(row) > 4 and row[4] else None  # Executed_Gtid_Set
        return MySqlPosition(str(row[0]), int(row[1]), executed)

    def _tables(self, conn: Any) -> list[str]:
        from sqlalchemy import text

        rows = conn.execute(
            text(
                "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' "
                "AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') "
                "ORDER BY TABLE_SCHEMA, TABLE_NAME"
            )
        ).all()
        return [f"{s}.{t}" for s, t in rows if self.cfg.includes(str(s), str(t))]

    def items(self, server_id: int | None, batch_rows: int) -> Iterator[list[Item]]:
        """Batches of items, each ending with a checkpoint."""
        from sqlalchemy import bindparam, text

        with self.engine.connect() as conn:
            position = self._begin(conn)
            if self.start_position is None:
                self.start_position = MySqlPosition(position.file, position.pos, position.gtid_set, server_id)
            start = self.start_position
            if not self.progress.tables:
                self.progress.tables = self._tables(conn)
            estimate = text(
                "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME), TABLE_ROWS FROM information_schema.TABLES "
                "WHERE CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) IN :names"
            )
            estimate = estimate.bindparams(bindparam("names", expanding=True))
            self.progress.estimates = {
                str(r[0]): int(r[1] or 0) for r in conn.execute(estimate, {"names": self.progress.tables or [""]}).all()
            }
            self.progress.rows_total_estimate = sum(self.progress.estimates.values())
            now = int(time.time() * 1000)
            definitions: list[Item] = []
            for name in self.progress.tables:
                table = TableId.parse(name)
                schema = schema_from_catalog(conn, table, self.modes, key_columns=self.cfg.key_columns.get(name))
                schema = without_columns(schema, self.cfg.excludes_column)
                self.schemas[table] = schema
                definitions.append(SchemaChange("CREATE", schema, None, self._source(table, now, "true"), now, start))
            yield definitions
            for name in self.progress.tables:
                if name in self.progress.done:
                    continue
                yield from self._table(conn, TableId.parse(name), batch_rows, start)
                self.progress.done.append(name)
                self.progress.table, self.progress.last_key = None, None
            conn.execute(text("COMMIT"))
        yield [Checkpoint(SourceOffset(start, "streaming", extra={"server_id": server_id}), int(time.time() * 1000))]

    def _source(self, table: TableId, ts: int, snapshot: str) -> dict[str, Any]:
        pos = self.start_position
        return {
            "version": __version__,
            "connector": "mysql",
            "name": self.prefix,
            "ts_ms": ts,
            "snapshot": snapshot,
            "db": table.schema,
            "sequence": None,
            "table": table.table,
            "server_id": 0,
            "gtid": None,
            "file": pos.file if pos else "",
            "pos": pos.pos if pos else 0,
            "row": 0,
            "thread": None,
            "query": None,
        }

    def _table(self, conn: Any, table: TableId, batch_rows: int, start: MySqlPosition) -> Iterator[list[Item]]:
        from sqlalchemy import column, select, tuple_
        from sqlalchemy import table as sa_table

        schema = self.schemas[table]
        names = [c.name for c in schema.columns]  # excluded columns are already gone from the definition
        zero = str(self.cfg.zero_date_handling)
        convs = [(c.name, _snapshot_converter(c, zero, str(table))) for c in schema.columns if c.name in names]
        t = sa_table(table.table, *[column(n) for n in names], schema=table.schema)
        pk = list(schema.primary_key)
        last = self.progress.last_key if self.progress.table == str(table) else None
        self.progress.table = str(table)
        while True:
            q = select(*[t.c[n] for n in names])
            if pk:
                if last is not None:
                    q = q.where(tuple_(*[t.c[k] for k in pk]) > tuple_(*last))
                q = q.order_by(*[t.c[k] for k in pk]).limit(self.cfg.snapshot_chunk_rows)
            rows = conn.execution_options(stream_results=not pk).execute(q)
            now = int(time.time() * 1000)
            source = self._source(table, now, "true")
            batch: list[Item] = []
            count = 0
            for row in rows:
                after = {n: (None if v is None else conv(v)) for (n, conv), v in zip(convs, row, strict=True)}
                key = {k: after[k] for k in pk} if pk else None
                batch.append(ChangeEvent(Op.READ, table, key, None, after, source, now, now))
                count += 1
                if not pk and len(batch) >= batch_rows:
                    yield batch
                    batch = []
                if pk:
                    last = [row[names.index(k)] for k in pk]
            self.progress.rows += count
            if pk and count:
                self.progress.chunk += 1
                self.progress.last_key = [_jsonable(v) for v in last or []]
                batch.append(Checkpoint(SourceOffset(start, "snapshot", self.progress.to_dict()), now))
                yield batch
            elif batch:
                yield batch
            if not pk or count < self.cfg.snapshot_chunk_rows:
                self.progress.chunk += 1
                done = SnapshotProgress(
                    self.progress.tables,
                    [*self.progress.done, str(table)],
                    None,
                    None,
                    self.progress.chunk,
                    self.progress.rows,
                )
                yield [Checkpoint(SourceOffset(start, "snapshot", done.to_dict()), now)]
                return


def _snapshot_converter(col: Any, zero_dates: str = "error", table: str = "") -> Any:
    """PyMySQL's value of a column to the wire value, the same as streaming gives for that column.

    PyMySQL returns a zero or impossible date (``0000-00-00``, ``2021-02-00 00:00:00``) as its text:
    such a value follows ``zero_dates`` (``zero_date_handling``) exactly as the binlog decoder does."""
    conv = converter_to_wire(col.wire)
    if col.logical in _ZERO_DATE_LOGICALS:
        return _zero_date_aware(col, conv, zero_dates, table)
    if col.native_type == "BIT(1)":
        return lambda v: conv(bool(int.from_bytes(v, "big")) if isinstance(v, bytes) else bool(v))
    if col.native_type == "GEOMETRY":
        # MySQL's internal geometry value: a 4-byte little-endian SRID, then the WKB (SRID 0: none)
        def geometry(v: bytes) -> Any:
            srid = int.from_bytes(v[:4], "little")
            return conv(Geometry(bytes(v[4:]), srid or None))

        return geometry
    return conv


_ZERO_DATE_LOGICALS: Final = frozenset({Logical.DATE, Logical.TIMESTAMP, Logical.TIMESTAMPTZ})


def _zero_date_aware(col: Any, conv: Any, mode: str, table: str) -> Any:
    from datetime import date, datetime

    from connectors.mysql.config import ZeroDateHandling
    from connectors.mysql.decoder import _Zero

    epoch = conv(date(1970, 1, 1) if col.logical is Logical.DATE else datetime(1970, 1, 1))
    zero = _Zero(ZeroDateHandling(mode), col, table, epoch)

    def convert(v: Any) -> Any:
        return zero(v) if isinstance(v, str) else conv(v)

    return convert


def _jsonable(v: Any) -> Any:
    from datetime import date, datetime, timedelta
    from datetime import time as dtime
    from decimal import Decimal

    if isinstance(v, (datetime, date, dtime)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, timedelta):
        return v.total_seconds()
    if isinstance(v, bytes):
        return v.hex()
    return v
