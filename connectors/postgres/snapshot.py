"""The PostgreSQL initial snapshot, and the catalog that defines tables for snapshot and stream alike.

**Consistency.** On a first start the source creates its replication slot with
``CREATE_REPLICATION_SLOT … LOGICAL pgoutput (SNAPSHOT 'export')``. PostgreSQL returns the
slot's *consistent point* (an LSN) and the name of a snapshot that sees exactly the
transactions committed before it. The replication connection stays open and idle until the
snapshot transaction here has run ``SET TRANSACTION SNAPSHOT`` (in ``REPEATABLE READ, READ
ONLY``); from then on the snapshot is this transaction's own. Streaming starts at the
consistent point, so the rows read here and the transactions streamed afterwards meet
exactly: no gap, nothing twice.

**Chunks.** Tables are read in primary-key chunks (``WHERE (pk) > (last) ORDER BY pk
LIMIT n``), so the server and this process hold one chunk at a time. The keyset values
travel as PostgreSQL text and come back as untyped parameters that the server reads with the
key columns' own input functions, so any key type pages exactly. After each chunk a
:class:`~cdc.events.Checkpoint` in phase ``snapshot`` records the tables done and the last
key read (:class:`SnapshotProgress`). A table without a primary key (and without
``key_columns``) is read in one pass through a server-side cursor (``DECLARE … FETCH``), so
memory stays bounded too; after a crash it is read again from its beginning.

**Values.** Columns are selected as they are, and every value is taken as the text the
server's output function wrote (the raw result, never a driver conversion), under the same
session settings as the replication connection (:func:`connectors.postgres.types.session_options`).
That is exactly what pgoutput sends in its text tuples, and both go through the same
:func:`~connectors.postgres.types.text_converter`, so a row reads the same as ``op: r`` and
as ``op: c``. (``CAST(x AS text)`` would not do: for ``boolean``, ``inet`` or ``char(n)`` the
cast differs from the output function.)

**Resume after a crash during the snapshot.** The exported snapshot died with the process
that imported it, and no snapshot that matches the consistent point can be made again. The
stored offset holds the consistent point ``P0`` (the slot is still there, and cdc never
confirmed beyond ``P0`` while the snapshot ran) and the progress. The restart reads the
remaining chunks in a *new* ``REPEATABLE READ`` transaction (view ``V1``, later than ``P0``),
then streams from ``P0``: every transaction committed after ``P0`` is replayed, including
those whose effects ``V1`` already shows. The end state is still exact, because the sink
applies events in order and every row event is an idempotent, complete statement about one
key (snapshot rows and inserts/updates are upserts of the whole row, deletes delete the key):
for each key, the last event applied is the stream's last change of that key if there is
one, and that change carries the row's current state; if the stream never touches the key,
the key did not change after ``P0`` and the row read in either view is its current state.
Rows read before the crash (view ``P0``) and after (view ``V1``) are both followed by the full
stream from ``P0``, so both converge the same way. The replay produces transient states in
the target (an older image briefly over a newer one) that the end of the replay repairs. The
same reasoning makes ``snapshot: always`` and a snapshot over a slot that already existed
(both read in a fresh, non-exported snapshot and stream from the stored or confirmed
position) converge.

One case stays inexact: under ``REPLICA IDENTITY DEFAULT``, an update that left a TOASTed
column unchanged is sent without that column, and the sink must then find the row. If such an
update is replayed for a row that was deleted before ``V1`` (so the resumed snapshot did not
write it), the sink refuses the event (the row is missing, the column's value unknown)
instead of guessing; ``REPLICA IDENTITY FULL`` on tables with large values avoids it.

**Definitions** come from the catalog (:class:`Catalog`): the columns' type oids and type
modifiers (from the Relation message while streaming, from ``pg_attribute`` here; both are
the same attributes), nullability, defaults and the key; types through
:mod:`connectors.postgres.types`. SQL identifiers pass only through SQLAlchemy constructs
(the SELECTs) or :mod:`psycopg.sql` (the cursor).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cdc import __version__
from cdc.errors import DecodeError, SchemaError
from cdc.events import ChangeEvent, Checkpoint, Column, Item, Op, Row, SchemaChange, TableId, TableSchema
from cdc.positions import PgPosition, SourceOffset
from connectors.postgres.config import PostgresSourceConfig
from connectors.postgres.errors import query_error
from connectors.postgres.types import UnrepresentableValue

if TYPE_CHECKING:
    from connectors.postgres.types import PgType

__all__ = [
    "Catalog",
    "CatalogColumn",
    "RelationInfo",
    "Snapshot",
    "SnapshotProgress",
    "TablePlan",
    "same_definition",
]

log = logging.getLogger("cdc.postgres")

#: ``pg_class.relreplident`` codes.
IDENTITY_NAMES = {"d": "DEFAULT", "n": "NOTHING", "f": "FULL", "i": "USING INDEX"}

_RELATION_SQL = """
SELECT n.nspname, c.relname, c.relreplident, greatest(c.reltuples, 0)::bigint
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = %(oid)s
"""
_COLUMNS_SQL = """
SELECT a.attname, a.atttypid, a.atttypmod, a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid)
FROM pg_catalog.pg_attribute a
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped{generated}
ORDER BY a.attnum
"""
_KEYS_SQL = """
SELECT i.indisprimary, i.indisreplident,
       ARRAY(SELECT a.attname::text
             FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(num, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num
             ORDER BY k.ord)
FROM pg_catalog.pg_index i
WHERE i.indrelid = %(oid)s AND (i.indisprimary OR i.indisreplident)
"""
#: Ordinary tables (leaf partitions included, as pgoutput publishes them by default).
TABLES_SQL = """
SELECT c.oid, n.nspname, c.relname
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'
ORDER BY n.nspname, c.relname
"""


@dataclass(frozen=True, slots=True)
class CatalogColumn:
    """One live, non-generated column as ``pg_attribute`` describes it."""

    name: str
    type_oid: int
    typmod: int
    not_null: bool
    default: str | None


@dataclass(frozen=True, slots=True)
class RelationInfo:
    """What the catalog says about a table, beyond what a Relation message carries."""

    oid: int
    table: TableId
    columns: tuple[CatalogColumn, ...]
    primary_key: tuple[str, ...]
    identity: str  # pg_class.relreplident: d, n, f, i
    identity_key: tuple[str, ...]  # the replica identity index's columns (identity 'i')
    reltuples: int

    def column(self, name: str) -> CatalogColumn | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class TablePlan:
    """A table's definition and how to turn a row of PostgreSQL text values into a row image.

    ``fields`` lists, for every column kept (``exclude_columns`` applied), its index in the
    full row (a pgoutput tuple, or the snapshot's select list), its name and its converter.
    """

    schema: TableSchema
    fields: tuple[tuple[int, str, Callable[[str], Any]], ...]
    width: int  # columns in a full row
    _image: Callable[[Sequence[Any]], Row] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_image", _compile_image(self.fields))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for _, n, _ in self.fields)

    def image(self, values: Sequence[Any]) -> Row:
        """The row image of ``values`` (text or None, one per column of the full row)."""
        try:
            return self._image(values)
        except (ValueError, TypeError, ArithmeticError, OverflowError, IndexError) as exc:
            raise self._decode_error(values, exc) from exc

    def _decode_error(self, values: Sequence[Any], exc: Exception) -> DecodeError:
        for i, name, conv in self.fields:  # find the column; the value itself is never named
            v = values[i] if i < len(values) else None
            if v is None:
                continue
            try:
                conv(v)
            except Exception as inner:  # noqa: BLE001 - reporting which column failed
                column = self.schema.column(name)
                # an UnrepresentableValue's message names the problem, never the value
                detail = str(inner) if isinstance(inner, UnrepresentableValue) else type(inner).__name__
                return DecodeError(
                    f"{self.schema.table}: the value of column {name!r} ({column.native_type}) could not be "
                    f"converted: {detail}"
                )
        return DecodeError(f"{self.schema.table}: a row could not be converted: {type(exc).__name__}")


def _compile_image(fields: Sequence[tuple[int, str, Callable[[str], Any]]]) -> Callable[[Sequence[Any]], Row]:
    """One straight-line function per plan that builds the row image: no loop, no per-field tuple
    unpacking, and no call at all for columns whose text is their value (capture's hot path).
    Column names enter the generated code only as ``repr`` literals."""
    from connectors.postgres.types import IDENTITY

    namespace: dict[str, Any] = {}
    lines = ["def image(values):"]
    entries: list[str] = []
    for k, (index, name, conv) in enumerate(fields):
        if conv is IDENTITY:
            entries.append(f"{name!r}: values[{int(index)}]")
            continue
        namespace[f"c{k}"] = conv
        lines.append(f"    v{k} = values[{int(index)}]")
        entries.append(f"{name!r}: None if v{k} is None else c{k}(v{k})")
    lines.append("    return {" + ", ".join(entries) + "}")
    exec(compile("\n".join(lines), "<cdc postgres row image>", "exec"), namespace)
    compiled: Callable[[Sequence[Any]], Row] = namespace["image"]
    return compiled


def same_definition(a: TableSchema, b: TableSchema) -> bool:
    """True when two definitions describe the same table, columns and key (versions aside)."""
    return a.table == b.table and a.columns == b.columns and a.primary_key == b.primary_key


class Catalog:
    """Reads table and type definitions through a normal (non-replication) connection, with caches.

    ``connect`` opens that connection (autocommit, the session settings of
    :func:`~connectors.postgres.types.session_options`); it is opened on first use and again
    after it broke. Types are cached by oid, relations by oid until :meth:`forget`.
    """

    def __init__(self, config: PostgresSourceConfig, connect: Callable[[], Any]) -> None:
        from connectors.postgres.types import PgTypeModes

        self.cfg = config
        self._connect = connect
        self._conn: Any = None
        self.modes = PgTypeModes.from_config(config)
        self.types: dict[int, PgType] = {}
        self._relations: dict[int, RelationInfo] = {}
        self._warned: set[int] = set()
        self.server_version = 0
        self.database = ""

    # ------------------------------------------------------------------ connection

    def conn(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
            self.server_version = int(self._conn.info.server_version)
            row = self._conn.execute("SELECT current_database()").fetchone()
            self.database = str(row[0]) if row else ""
        return self._conn

    def execute(self, query: Any, params: Any = None, doing: str = "reading the catalog") -> list[tuple[Any, ...]]:
        """Run one statement on the catalog connection; rows as tuples."""
        import psycopg

        try:
            cur = self.conn().execute(query, params)
            return list(cur.fetchall()) if cur.description is not None else []
        except psycopg.Error as exc:
            if self._conn is not None and self._conn.closed:
                self._conn = None
            raise query_error(exc, doing) from exc

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    # ------------------------------------------------------------------ definitions

    def forget(self, oid: int) -> None:
        """Drop the cached description of relation ``oid`` (its definition changed)."""
        self._relations.pop(oid, None)

    def forget_types(self) -> None:
        """Drop every cached type (an enum gained a label): they are read again as plans need them."""
        self.types.clear()

    def relation(self, oid: int) -> RelationInfo | None:
        """The catalog's description of relation ``oid``; None if it no longer exists."""
        hit = self._relations.get(oid)
        if hit is not None:
            return hit
        rows = self.execute(_RELATION_SQL, {"oid": oid})
        if not rows:
            return None
        schema, name, identity, reltuples = rows[0]
        generated = " AND a.attgenerated = ''" if self.server_version >= 120000 else ""
        cols = tuple(
            CatalogColumn(str(n), int(t), int(m), bool(nn), d)
            for n, t, m, nn, d in self.execute(_COLUMNS_SQL.format(generated=generated), {"oid": oid})
        )
        pk: tuple[str, ...] = ()
        ident_key: tuple[str, ...] = ()
        for primary, replident, names in self.execute(_KEYS_SQL, {"oid": oid}):
            if primary:
                pk = tuple(names)
            if replident:
                ident_key = tuple(names)
        info = RelationInfo(
            oid, TableId(str(schema), str(name)), cols, pk, str(identity), ident_key, int(reltuples or 0)
        )
        self._relations[oid] = info
        return info

    def load_types(self, oids: Sequence[int]) -> None:
        """Make sure the types ``oids`` (and whatever they refer to) are known."""
        from connectors.postgres.types import TYPE_CATALOG_SQL, build_types

        missing = sorted({int(o) for o in oids} - self.types.keys())
        if not missing:
            return
        rows = self.execute(TYPE_CATALOG_SQL, {"oids": missing}, doing="reading type definitions")
        self.types.update(build_types(rows))

    def pg_type(self, oid: int) -> PgType:
        if oid not in self.types:
            self.load_types([oid])
        found = self.types.get(oid)
        if found is None:
            raise SchemaError(f"type oid {oid} is not in pg_type (dropped while cdc was reading?)")
        return found

    def key_for(self, table: TableId, info: RelationInfo | None, names: Sequence[str]) -> tuple[str, ...]:
        """The event key of a table: its primary key; else ``key_columns``; else the columns of a
        ``REPLICA IDENTITY USING INDEX`` index; else none (keyless events)."""
        present = set(names)
        if info is not None and info.primary_key and all(k in present for k in info.primary_key):
            return info.primary_key
        configured = self.cfg.key_columns.get(str(table))
        if configured:
            missing = [k for k in configured if k not in present]
            if missing:
                raise SchemaError(f"key_columns for {table} names columns the table does not have: {missing}")
            return tuple(configured)
        if info is not None and info.identity == "i" and all(k in present for k in info.identity_key):
            return info.identity_key
        return ()

    def plan(
        self,
        table: TableId,
        columns: Sequence[tuple[str, int, int]],
        info: RelationInfo | None,
        version: int = 1,
    ) -> TablePlan:
        """The definition and converters of ``table`` whose rows have ``columns`` ``(name, type oid,
        typmod)`` in order (a Relation message's, or the catalog's). ``info`` adds nullability,
        defaults and the key; without it every column is nullable and the key comes from config.
        """
        from connectors.postgres.types import is_unknown, pg_column, text_converter

        self.load_types([t for _, t, _ in columns])
        names = [n for n, _, _ in columns]
        key = self.key_for(table, info, names)
        cols: list[Column] = []
        fields: list[tuple[int, str, Callable[[str], Any]]] = []
        for index, (name, type_oid, typmod) in enumerate(columns):
            excluded = name not in key and self.cfg.excludes_column(table.schema, table.table, name)
            if excluded:
                continue
            pgtype = self.pg_type(type_oid)
            if is_unknown(pgtype) and type_oid not in self._warned:
                self._warned.add(type_oid)
                log.warning(
                    "%s.%s has type %s, which cdc does not know; its values pass as PostgreSQL text",
                    table,
                    name,
                    getattr(pgtype, "name", type_oid),
                )
            cat = info.column(name) if info is not None else None
            column = pg_column(
                name,
                pgtype,
                typmod,
                nullable=not (cat.not_null if cat is not None else False),
                position=index + 1,
                modes=self.modes,
                default=cat.default if cat is not None else None,
            )
            cols.append(column)
            fields.append((index, name, text_converter(column, pgtype, self.modes)))
        schema = TableSchema(table, tuple(cols), key, version)
        return TablePlan(schema, tuple(fields), len(columns))

    def catalog_columns(self, info: RelationInfo, published: Sequence[str] | None) -> list[tuple[str, int, int]]:
        """``info``'s columns as a Relation message would list them (a publication's column list applied)."""
        keep = set(published) if published else None
        return [(c.name, c.type_oid, c.typmod) for c in info.columns if keep is None or c.name in keep]


# ---------------------------------------------------------------------------------------------
# The snapshot
# ---------------------------------------------------------------------------------------------


@dataclass
class SnapshotProgress:
    """Where a snapshot is: for the terminal, for metrics and for the stored offset."""

    tables: list[str]
    done: list[str]
    table: str | None = None
    last_key: list[str] | None = None
    chunk: int = 0
    rows: int = 0
    rows_total_estimate: int = 0
    estimates: dict[str, int] = field(default_factory=dict)  # per table, from pg_class.reltuples

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
            "tables": list(self.tables),
            "done": list(self.done),
            "table": self.table,
            "last_key": list(self.last_key) if self.last_key is not None else None,
            "chunk": self.chunk,
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SnapshotProgress:
        last = d.get("last_key")
        return cls(
            [str(t) for t in d.get("tables", [])],
            [str(t) for t in d.get("done", [])],
            d.get("table"),
            [str(v) for v in last] if last is not None else None,
            int(d.get("chunk", 0)),
            int(d.get("rows", 0)),
        )


@dataclass(frozen=True)
class SnapshotTable:
    """One table to read: its oid and the columns its publication sends (None: all)."""

    oid: int
    table: TableId
    published_columns: tuple[str, ...] | None = None


class Snapshot:
    """Reads the captured tables in one ``REPEATABLE READ, READ ONLY`` transaction.

    Call :meth:`begin` (which imports the exported snapshot, if given, while the replication
    connection that exported it is still open), then iterate :meth:`items`: first one batch of
    :class:`~cdc.events.SchemaChange` (one per table), then ``op: r`` rows with a
    :class:`~cdc.events.Checkpoint` in phase ``snapshot`` after every chunk, and finally a
    checkpoint in phase ``streaming`` at ``start`` (where streaming begins).
    """

    CURSOR = "cdc_snapshot"

    def __init__(
        self,
        config: PostgresSourceConfig,
        prefix: str,
        catalog: Catalog,
        *,
        connect: Callable[[], Any],
        start: PgPosition,
        tables: Sequence[SnapshotTable],
        resume: SourceOffset | None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.cfg = config
        self.prefix = prefix
        self.catalog = catalog
        self._connect = connect
        self.start = start
        self.extra = dict(extra or {})
        self._tables = {str(t.table): t for t in tables}
        self.progress = SnapshotProgress([str(t.table) for t in tables], [])
        if resume is not None and resume.phase == "snapshot" and resume.snapshot:
            self.progress = SnapshotProgress.from_dict(resume.snapshot)
            # tables that vanished since are skipped; the stored list keeps its order
            self.progress.tables = [t for t in self.progress.tables if t in self._tables]
        self.schemas: dict[TableId, TableSchema] = {}
        self.plans: dict[TableId, TablePlan] = {}
        self._conn: Any = None
        self.exported: str | None = None

    def begin(self, exported_snapshot: str | None) -> None:
        """Open the snapshot connection and start its transaction, importing ``exported_snapshot``
        (the name ``CREATE_REPLICATION_SLOT … (SNAPSHOT 'export')`` returned) when given."""
        from psycopg import sql

        self._conn = self._connect()
        self.exported = exported_snapshot
        try:
            self._conn.execute("SET statement_timeout = 0")
            self._conn.execute("SET idle_in_transaction_session_timeout = 0")
            self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            if exported_snapshot is not None:
                self._conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(exported_snapshot)))
        except Exception as exc:
            self.close()
            raise query_error(exc, "starting the snapshot transaction") from exc

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    # ------------------------------------------------------------------ items

    def _source(self, table: TableId, ts: int, snapshot: str) -> dict[str, Any]:
        lsn = self.start.lsn
        return {
            "version": __version__,
            "connector": "postgresql",
            "name": self.prefix,
            "ts_ms": ts,
            "snapshot": snapshot,
            "db": self.catalog.database,
            "sequence": f'[null,"{lsn}"]',
            "schema": table.schema,
            "table": table.table,
            "txId": None,
            "lsn": lsn,
            "xmin": None,
        }

    def items(self) -> Iterator[list[Item]]:
        """Batches of items (see the class docstring). Closing the iterator ends the transaction."""
        if self._conn is None:
            raise RuntimeError("Snapshot.begin() was not called")
        try:
            self._estimate()
            now = int(time.time() * 1000)
            definitions: list[Item] = []
            for name in self.progress.tables:
                target = self._tables[name]
                info = self.catalog.relation(target.oid)
                if info is None:
                    raise SchemaError(f"table {name} vanished while the snapshot started")
                columns = self.catalog.catalog_columns(info, target.published_columns)
                plan = self.catalog.plan(target.table, columns, info)
                self.plans[target.table] = plan
                self.schemas[target.table] = plan.schema
                definitions.append(
                    SchemaChange("CREATE", plan.schema, None, self._source(target.table, now, "true"), now, self.start)
                )
            yield definitions
            pending = [t for t in self.progress.tables if t not in self.progress.done]
            for n, name in enumerate(pending):
                yield from self._table(self._tables[name].table, last_table=n == len(pending) - 1)
                self.progress.done.append(name)
                self.progress.table, self.progress.last_key = None, None
            self._run("COMMIT", None, "ending the snapshot transaction")
        finally:
            self.close()
        yield [Checkpoint(SourceOffset(self.start, "streaming", extra=self.extra), int(time.time() * 1000))]

    def _estimate(self) -> None:
        oids = [self._tables[t].oid for t in self.progress.tables]
        rows = self._run(
            "SELECT c.oid, greatest(c.reltuples, 0)::bigint FROM pg_catalog.pg_class c WHERE c.oid = ANY(%(oids)s)",
            {"oids": oids or [0]},
            "estimating table sizes",
        ).fetchall()
        by_oid = {int(o): int(n or 0) for o, n in rows}
        self.progress.estimates = {t: by_oid.get(self._tables[t].oid, 0) for t in self.progress.tables}
        self.progress.rows_total_estimate = sum(self.progress.estimates.values())

    def _run(self, query: Any, params: Any, doing: str) -> Any:
        import psycopg

        try:
            return self._conn.execute(query, params)
        except psycopg.Error as exc:
            raise query_error(exc, doing) from exc

    def _checkpoint(self, now: int) -> Checkpoint:
        return Checkpoint(SourceOffset(self.start, "snapshot", self.progress.to_dict(), dict(self.extra)), now)

    def _table(self, table: TableId, *, last_table: bool) -> Iterator[list[Item]]:
        import sqlalchemy as sa
        from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

        plan = self.plans[table]
        names = plan.names
        width = len(names)
        key = list(plan.schema.primary_key)
        key_at = [names.index(k) for k in key]
        t = sa.table(table.table, *[sa.column(n) for n in names], schema=table.schema)
        dialect = PGDialect_psycopg()  # type: ignore[no-untyped-call]
        chunk = self.cfg.snapshot_chunk_rows
        last = self.progress.last_key if self.progress.table == str(table) else None
        self.progress.table = str(table)
        self.progress.last_key = last
        convs = [(i, n, c) for i, (_, n, c) in enumerate(plan.fields)]
        image_plan = TablePlan(plan.schema, tuple(convs), width)
        if not key:
            yield from self._keyless(table, t, dialect, image_plan, last_table=last_table)
            return
        untyped: Any = sa.types.NullType()  # unknown-typed parameters: the server applies the key's input function
        while True:
            q = sa.select(*[t.c[n] for n in names])
            if last is not None:
                bound = [sa.bindparam(f"k{i}", v, type_=untyped) for i, v in enumerate(last)]
                q = q.where(sa.tuple_(*[t.c[k] for k in key]) > sa.tuple_(*bound))
            # one row more than the chunk tells whether another chunk follows
            q = q.order_by(*[t.c[k] for k in key]).limit(sa.bindparam("chunk_rows", chunk + 1, type_=untyped))
            compiled = q.compile(dialect=dialect)
            result = self._run(str(compiled), compiled.params, f"reading {table}").pgresult
            count = result.ntuples if result is not None else 0
            more = count > chunk
            count = min(count, chunk)
            now = int(time.time() * 1000)
            source = self._source(table, now, "true")
            batch: list[Item] = []
            for r in range(count):
                values = [_text(result.get_value(r, j)) for j in range(width)]
                after = image_plan.image(values)
                src = source
                if r == count - 1:
                    last = [str(values[i]) for i in key_at]
                    if last_table and not more:
                        src = {**source, "snapshot": "last"}
                batch.append(ChangeEvent(Op.READ, table, {k: after[k] for k in key}, None, after, src, now, now))
            self.progress.rows += count
            self.progress.chunk += 1
            if more:
                self.progress.last_key = last
                batch.append(self._checkpoint(now))
                yield batch
                continue
            batch.append(self._table_done(table, now))  # its completion is the checkpoint
            yield batch
            return

    def _table_done(self, table: TableId, now: int) -> Checkpoint:
        done = SnapshotProgress(
            self.progress.tables,
            [*self.progress.done, str(table)],
            None,
            None,
            self.progress.chunk,
            self.progress.rows,
        )
        return Checkpoint(SourceOffset(self.start, "snapshot", done.to_dict(), dict(self.extra)), now)

    def _keyless(
        self, table: TableId, t: Any, dialect: Any, plan: TablePlan, *, last_table: bool
    ) -> Iterator[list[Item]]:
        """A table without key: one pass through a server-side cursor, from its beginning."""
        import sqlalchemy as sa
        from psycopg import sql

        q = sa.select(*[t.c[n] for n in plan.names])
        text = str(q.compile(dialect=dialect))
        name = sql.Identifier(self.CURSOR)
        self._run(
            sql.Composed([sql.SQL("DECLARE "), name, sql.SQL(" NO SCROLL CURSOR FOR "), sql.SQL(text)]),
            None,
            f"reading {table}",
        )
        fetch = sql.Composed(
            [sql.SQL("FETCH FORWARD {} FROM ").format(sql.Literal(self.cfg.snapshot_chunk_rows)), name]
        )
        width = plan.width
        held: ChangeEvent | None = None  # the latest row, held back until it is known whether it is the last
        while True:
            result = self._run(fetch, None, f"reading {table}").pgresult
            count = result.ntuples if result is not None else 0
            now = int(time.time() * 1000)
            source = self._source(table, now, "true")
            batch: list[Item] = []
            if held is not None and count:
                batch.append(held)
                held = None
            for r in range(count):
                after = plan.image([_text(result.get_value(r, j)) for j in range(width)])
                event = ChangeEvent(Op.READ, table, None, None, after, source, now, now)
                if r == count - 1:
                    held = event
                else:
                    batch.append(event)
            self.progress.rows += count
            if count:
                yield batch  # no resume point inside a keyless table: after a crash it is read again whole
                continue
            if held is not None:
                if last_table:
                    held.source = {**held.source, "snapshot": "last"}
                batch.append(held)
            self._run(sql.Composed([sql.SQL("CLOSE "), name]), None, f"reading {table}")
            self.progress.chunk += 1
            batch.append(self._table_done(table, now))
            yield batch
            return


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()
