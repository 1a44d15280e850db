"""``cdc verify`` for SQL targets: read a source table and its target table through SQLAlchemy and
compare them with :mod:`cdc.verify`.

:func:`verify_sink` is what :func:`cdc.service.verify_config` calls for every sink served by this
connector. For one sink it

1. lists the **captured** source tables: base tables (MySQL: outside the system databases;
   PostgreSQL: ordinary tables outside ``pg_*`` and ``information_schema``) that the source's
   ``tables``/``exclude_tables`` include and the sink's ``tables`` apply;
2. reads each table's definition from the source catalog (``information_schema`` on MySQL,
   ``pg_catalog`` on PostgreSQL): the columns left after ``exclude_columns`` (key columns are
   never left out, as in the sources), each column's portable kind, and the key (the primary
   key, else the source's ``key_columns``; without either, the table is compared as a multiset);
3. finds the target table where the sink writes it (:meth:`SqlSink.target_name
   <connectors.sql.sink.SqlSink.target_name>`, ``table_map`` included) and its columns (by
   name; case-insensitively on MySQL and SQLite, as the sink does). Columns the target has
   beyond the captured ones (added by hand, or dropped in the source since) are not compared;
   captured columns the target lacks are reported;
4. streams both tables, ordered by key, and compares them (:func:`cdc.verify.compare_ordered`;
   :func:`cdc.verify.compare_partitioned` for tables without key or whose key order the engines
   cannot agree on).

**Reading.** Selects are built from ``sqlalchemy.table``/``column`` constructs (identifiers are
quoted by the dialect, never formatted into SQL) with untyped columns, so every value arrives as
the driver returns it and :func:`cdc.verify.normaliser` sees the driver's own types. Both sides
stream through server-side cursors (PyMySQL's unbuffered cursor, a psycopg named cursor), so
memory holds one chunk per side. String key columns are sorted by code point on both sides
(PostgreSQL ``COLLATE "C"``, MySQL the charset's binary no-pad collation
(:func:`code_point_collation`); SQLite and the sink's MySQL tables already compare that way), so
that the engines' orders agree.

Sessions are pinned so values read the same on every server: MySQL in UTC (``TIMESTAMP`` values
as UTC wall time); PostgreSQL in UTC with ``DateStyle ISO``, ``IntervalStyle iso_8601``, read-only
transactions, and with temporal, interval, JSON, network, money and bit types returned as the
server's text (exact, and ``infinity`` does not fail the driver). SQLite files are opened
read-only (a missing file is an error, never created).

**Consistency.** Nothing is locked explicitly: each table is read by one statement per side
(per pass), which sees one moment of that database. On a running pipeline the comparison may
catch changes in flight; callers poll until the report says equal. Connections are short-lived
(one per catalog read or table read), so no transaction stays open across tables; on MySQL a
table's read holds the shared metadata lock any ``SELECT`` holds, so a DDL statement on that
table waits until the table has been read (as with ``mysqldump --single-transaction``).

Errors: connecting or reading raises :mod:`cdc.errors` types (:class:`~cdc.errors.ConnectError`
for an unreachable server or refused credentials), with the URL's password redacted.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Generator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc

from cdc.errors import CdcError, SchemaError
from cdc.events import Logical, TableId
from cdc.values import BinaryHandling, DecimalHandling, IntervalHandling, TimePrecision
from cdc.verify import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_MAX_LISTED,
    ColumnSpec,
    NormaliseOptions,
    OutOfOrder,
    Row,
    TableDiff,
    VerifyReport,
    compare_ordered,
    compare_partitioned,
    make_row,
    normaliser,
)
from connectors.sql.config import sqlalchemy_url
from connectors.sql.errors import translate
from connectors.sql.types import Dialect, dialect_name

if TYPE_CHECKING:
    from cdc.config import Config, SinkConfig, SourceConfigBase
    from cdc.progress import Progress

__all__ = ["PARTITION_ROWS", "verify_sink"]

#: Most rows of one side held in memory by one pass of the partitioned comparison.
PARTITION_ROWS: Final = 200_000

_MYSQL_SYSTEM = ("mysql", "information_schema", "performance_schema", "sys")

#: PostgreSQL types read as the server's text (see the module docstring).
_PG_TEXT_TYPES = (
    "date",
    "timestamp",
    "timestamptz",
    "time",
    "timetz",
    "interval",
    "json",
    "jsonb",
    "inet",
    "cidr",
    "money",
    "bit",
    "varbit",
    "macaddr",
    "macaddr8",
    "xml",
)


# ---------------------------------------------------------------------------------------------
# Catalog
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    """One column of a table as one side's catalog describes it."""

    name: str
    logical: Logical
    native: str = ""
    nullable: bool = True
    element: Logical | None = None
    element_native: str = ""
    collate: str | None = None  # the collation that sorts this column by code point (None: it already does)
    geometry_mysql: bool = False


@dataclass(frozen=True)
class _Table:
    columns: tuple[_Column, ...]
    primary_key: tuple[str, ...]
    estimate: int | None


_MYSQL_KINDS: dict[str, Logical] = {
    "tinyint": Logical.INT8,
    "smallint": Logical.INT16,
    "mediumint": Logical.INT32,
    "int": Logical.INT32,
    "integer": Logical.INT32,
    "bigint": Logical.INT64,
    "float": Logical.FLOAT32,
    "double": Logical.FLOAT64,
    "real": Logical.FLOAT64,
    "decimal": Logical.DECIMAL,
    "numeric": Logical.DECIMAL,
    "date": Logical.DATE,
    "datetime": Logical.TIMESTAMP,
    "timestamp": Logical.TIMESTAMPTZ,
    "time": Logical.TIME,
    "year": Logical.YEAR,
    "char": Logical.STRING,
    "varchar": Logical.STRING,
    "tinytext": Logical.TEXT,
    "text": Logical.TEXT,
    "mediumtext": Logical.TEXT,
    "longtext": Logical.TEXT,
    "binary": Logical.BYTES,
    "varbinary": Logical.BYTES,
    "tinyblob": Logical.BYTES,
    "blob": Logical.BYTES,
    "mediumblob": Logical.BYTES,
    "longblob": Logical.BYTES,
    "enum": Logical.ENUM,
    "set": Logical.SET,
    "json": Logical.JSON,
    "geometry": Logical.GEOMETRY,
    "point": Logical.GEOMETRY,
    "linestring": Logical.GEOMETRY,
    "polygon": Logical.GEOMETRY,
    "multipoint": Logical.GEOMETRY,
    "multilinestring": Logical.GEOMETRY,
    "multipolygon": Logical.GEOMETRY,
    "geometrycollection": Logical.GEOMETRY,
}


def mysql_logical(data_type: str, column_type: str) -> Logical:
    """The portable kind of a MySQL column from ``information_schema`` (as the MySQL source maps it)."""
    data_type = data_type.lower()
    column_type = column_type.lower()
    if data_type == "bit":
        return Logical.BOOLEAN if column_type in ("bit(1)", "bit") else Logical.BITS
    if data_type == "bigint" and "unsigned" in column_type:
        return Logical.UINT64
    return _MYSQL_KINDS.get(data_type, Logical.UNKNOWN)


_PG_KINDS: dict[str, Logical] = {
    "bool": Logical.BOOLEAN,
    "int2": Logical.INT16,
    "int4": Logical.INT32,
    "int8": Logical.INT64,
    "oid": Logical.INT64,
    "float4": Logical.FLOAT32,
    "float8": Logical.FLOAT64,
    "numeric": Logical.DECIMAL,
    "money": Logical.MONEY,
    "bpchar": Logical.STRING,
    "varchar": Logical.STRING,
    "text": Logical.TEXT,
    "citext": Logical.TEXT,
    "name": Logical.TEXT,
    "bytea": Logical.BYTES,
    "date": Logical.DATE,
    "time": Logical.TIME,
    "timetz": Logical.TIMETZ,
    "timestamp": Logical.TIMESTAMP,
    "timestamptz": Logical.TIMESTAMPTZ,
    "interval": Logical.INTERVAL,
    "uuid": Logical.UUID,
    "json": Logical.JSON,
    "jsonb": Logical.JSON,
    "xml": Logical.XML,
    "bit": Logical.BITS,
    "varbit": Logical.BITS,
    "inet": Logical.INET,
    "cidr": Logical.CIDR,
    "macaddr": Logical.MACADDR,
    "macaddr8": Logical.MACADDR,
    "geometry": Logical.GEOMETRY,
    "geography": Logical.GEOMETRY,
}


def pg_logical(typname: str, typtype: str) -> Logical:
    """The portable kind of a PostgreSQL type (by ``pg_type.typname``/``typtype``; arrays aside)."""
    if typtype == "e":
        return Logical.ENUM
    return _PG_KINDS.get(typname, Logical.UNKNOWN)


_MYSQL_COLUMNS = sa.text(
    "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, COLLATION_NAME "
    "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(:s, DATABASE()) AND TABLE_NAME = :t "
    "ORDER BY ORDINAL_POSITION"
)
_MYSQL_KEY = sa.text(
    "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = COALESCE(:s, DATABASE()) "
    "AND TABLE_NAME = :t AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX"
)
_MYSQL_TABLE = sa.text(
    "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(:s, DATABASE()) AND TABLE_NAME = :t"
)
_PG_TABLE = sa.text(
    "SELECT c.oid, greatest(c.reltuples, 0)::bigint FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = COALESCE(CAST(:s AS text), current_schema()) AND c.relname = :t "
    "AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
)
_PG_COLUMNS = """
SELECT a.attname, t.typname, t.typtype, COALESCE(bt.typname, ''), COALESCE(bt.typtype, ''),
       COALESCE(et.typname, ''), COALESCE(et.typtype, ''), a.attnotnull, a.attcollation <> 0
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
LEFT JOIN pg_catalog.pg_type et ON et.oid = COALESCE(bt.typelem, t.typelem)
     AND COALESCE(bt.typcategory, t.typcategory) = 'A'
WHERE a.attrelid = :oid AND a.attnum > 0 AND NOT a.attisdropped{generated}
ORDER BY a.attnum
"""
_PG_KEY = sa.text(
    "SELECT a.attname FROM pg_catalog.pg_index i "
    "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
    "WHERE i.indrelid = :oid AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)"
)


def _read_catalog(conn: sa.Connection, dialect: Dialect, schema: str | None, name: str) -> _Table | None:
    """The table's columns, primary key and row estimate; None when the table does not exist."""
    if dialect == "mysql":
        return _mysql_catalog(conn, schema, name)
    if dialect == "postgresql":
        return _pg_catalog(conn, schema, name)
    return _sqlite_catalog(conn, name)


def code_point_collation(charset: str, *, mariadb: bool) -> str:
    """The MySQL collation of ``charset`` that sorts by code point without padding (trailing spaces
    count, as in Python and PostgreSQL's ``"C"``): MariaDB's ``<charset>_nopad_bin``, MySQL 8's
    ``utf8mb4_0900_bin``; elsewhere ``<charset>_bin`` (padding; the order check catches the rest)."""
    if mariadb:
        return f"{charset}_nopad_bin"
    return "utf8mb4_0900_bin" if charset == "utf8mb4" else f"{charset}_bin"


def _mysql_catalog(conn: sa.Connection, schema: str | None, name: str) -> _Table | None:
    params = {"s": schema, "t": name}
    rows = conn.execute(_MYSQL_COLUMNS, params).all()
    if not rows:
        return None
    mariadb = bool(getattr(conn.dialect, "is_mariadb", False))
    columns = []
    for col, data_type, column_type, nullable, charset, collation in rows:
        base = str(data_type).upper()
        logical = mysql_logical(str(data_type), str(column_type))
        collate = None
        if collation and charset:
            wanted = code_point_collation(str(charset), mariadb=mariadb)
            collate = wanted if str(collation) != wanted else None
        columns.append(
            _Column(
                str(col),
                logical,
                base,
                nullable=nullable == "YES",
                collate=collate,
                geometry_mysql=logical is Logical.GEOMETRY,
            )
        )
    key = tuple(str(r[0]) for r in conn.execute(_MYSQL_KEY, params).all())
    estimate = conn.execute(_MYSQL_TABLE, params).scalar()
    return _Table(tuple(columns), key, int(estimate) if estimate is not None else None)


def _pg_catalog(conn: sa.Connection, schema: str | None, name: str) -> _Table | None:
    found = conn.execute(_PG_TABLE, {"s": schema, "t": name}).first()
    if found is None:
        return None
    oid, estimate = found
    version = conn.dialect.server_version_info or (0,)
    generated = " AND a.attgenerated = ''" if tuple(version) >= (12,) else ""
    columns = []
    for row in conn.execute(sa.text(_PG_COLUMNS.format(generated=generated)), {"oid": oid}).all():
        col, typname, typtype, base_name, base_type, elem_name, elem_type, not_null, collatable = row
        if base_name:  # a domain: its base type decides
            typname, typtype = base_name, base_type
        element: Logical | None = None
        if elem_name:
            logical = Logical.ARRAY
            element = pg_logical(str(elem_name), str(elem_type))
        else:
            logical = pg_logical(str(typname), str(typtype))
        columns.append(
            _Column(
                str(col),
                logical,
                str(typname).upper(),
                nullable=not not_null,
                element=element,
                element_native=str(elem_name).upper(),
                collate="C" if collatable else None,
            )
        )
    key = tuple(str(r[0]) for r in conn.execute(_PG_KEY, {"oid": oid}).all())
    return _Table(tuple(columns), key, int(estimate) if estimate else None)


def _sqlite_catalog(conn: sa.Connection, name: str) -> _Table | None:
    inspector = sa.inspect(conn)
    if not inspector.has_table(name):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa_exc.SAWarning)
        columns = tuple(
            _Column(str(c["name"]), Logical.UNKNOWN, str(c["type"]).upper(), nullable=bool(c.get("nullable", True)))
            for c in inspector.get_columns(name)
        )
        key = tuple(inspector.get_pk_constraint(name).get("constrained_columns") or ())
    return _Table(columns, key, None)


def _source_tables(conn: sa.Connection, dialect: Dialect) -> list[tuple[TableId, int | None]]:
    if dialect == "mysql":
        rows = conn.execute(
            sa.text(
                "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES "
                "WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN :system ORDER BY TABLE_SCHEMA, TABLE_NAME"
            ).bindparams(sa.bindparam("system", expanding=True)),
            {"system": list(_MYSQL_SYSTEM)},
        ).all()
    elif dialect == "postgresql":
        rows = conn.execute(
            sa.text(
                "SELECT n.nspname, c.relname, greatest(c.reltuples, 0)::bigint FROM pg_catalog.pg_class c "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
                "AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2"
            )
        ).all()
    else:
        raise SchemaError(f"cdc verify cannot read a {dialect} source")
    return [(TableId(str(s), str(t)), int(n) if n is not None else None) for s, t, n in rows]


# ---------------------------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------------------------


class _Side:
    """One database (the source or a target): its engine and dialect, and how its errors read.

    ``sink`` is the sink's name for a target, None for the source.
    """

    def __init__(self, url: str, sink: str | None) -> None:
        self.sink = sink
        sa_url = sa.engine.make_url(sqlalchemy_url(url))
        self.dialect: Dialect = dialect_name(sa_url.get_backend_name())
        self.engine = _create_engine(sa_url, self.dialect)

    def error(self, exc: BaseException, doing: str, *, connecting: bool = False) -> CdcError:
        """``exc`` as a :mod:`cdc.errors` error saying who failed doing what (raise it ``from exc``)."""
        if self.sink is not None:
            return translate(exc, sink=self.sink, doing=doing, connecting=connecting)
        err = translate(exc, sink="source", doing=doing, connecting=connecting)
        prefix = "sink 'source': "
        text = str(err)
        if not text.startswith(prefix):
            return err
        return type(err)(f"source: {text[len(prefix) :]}")

    def connect(self) -> sa.Connection:
        try:
            return self.engine.connect()
        except Exception as exc:
            what = "the source" if self.sink is None else "the target"
            raise self.error(exc, f"connecting to {what}", connecting=True) from exc

    def close(self) -> None:
        self.engine.dispose()


def _create_engine(url: sa.engine.URL, dialect: Dialect) -> sa.Engine:
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 2}
    connect_args: dict[str, Any] = {}
    if dialect == "mysql":
        if "charset" not in url.query:
            connect_args["charset"] = "utf8mb4"
        connect_args["init_command"] = "SET time_zone = '+00:00', net_write_timeout = 3600"
        connect_args.setdefault("connect_timeout", 10)
    elif dialect == "postgresql":
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = 10
    else:
        database = url.database
        kwargs = {}
        if database and database != ":memory:" and not database.startswith("file:"):
            url = url.set(database=f"file:{quote(database)}", query={**url.query, "mode": "ro", "uri": "true"})
    if connect_args:
        kwargs["connect_args"] = connect_args
    engine = sa.create_engine(url, **kwargs)
    if dialect == "postgresql":

        @sa_event.listens_for(engine, "connect")
        def _session(dbapi_connection: Any, _record: Any) -> None:
            from psycopg.types.string import TextLoader

            dbapi_connection.autocommit = True
            try:
                dbapi_connection.execute(
                    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'; "
                    "SET extra_float_digits = 3; SET default_transaction_read_only = on"
                )
            finally:
                dbapi_connection.autocommit = False
            for name in _PG_TEXT_TYPES:
                dbapi_connection.adapters.register_loader(name, TextLoader)

    return engine


# ---------------------------------------------------------------------------------------------
# Per table
# ---------------------------------------------------------------------------------------------


def _options(source: SourceConfigBase) -> NormaliseOptions:
    return NormaliseOptions(
        decimal_handling=DecimalHandling(source.decimal_handling),
        time_precision=TimePrecision(source.time_precision),
        interval_handling=IntervalHandling(getattr(source, "interval_handling", IntervalHandling.NUMERIC)),
        binary_handling=BinaryHandling(source.binary_handling),
        zero_date_handling=str(getattr(source, "zero_date_handling", "error")),
    )


def _key_columns(source: SourceConfigBase, table: TableId) -> tuple[str, ...]:
    for pattern, columns in source.key_columns.items():
        if fnmatchcase(str(table), pattern):
            return tuple(columns)
    return ()


#: Key kinds whose order no engine pair can be trusted to agree on (compared partitioned instead).
_UNORDERED_KEYS = frozenset(
    {
        Logical.ENUM,
        Logical.SET,
        Logical.JSON,
        Logical.ARRAY,
        Logical.GEOMETRY,
        Logical.INET,
        Logical.CIDR,
        Logical.MACADDR,
        Logical.XML,
        Logical.UNKNOWN,
        Logical.MONEY,
    }
)
#: Key kinds SQLite holds as text that does not sort like the value.
_SQLITE_TEXT_KEYS = frozenset({Logical.DECIMAL, Logical.UINT64, Logical.TIME, Logical.TIMETZ, Logical.INTERVAL})


def ordered_comparable(keys: Sequence[Logical], dialects: Sequence[Dialect], options: NormaliseOptions) -> bool:
    """Whether both sides can stream ``keys`` in the canonical order (else compare partitioned)."""
    for kind in keys:
        if kind in _UNORDERED_KEYS:
            return False
        if kind is Logical.INTERVAL and (
            options.interval_handling is IntervalHandling.STRING or any(d != "postgresql" for d in dialects)
        ):
            return False  # MySQL and SQLite hold intervals as ISO 8601 text
        if kind in _SQLITE_TEXT_KEYS and "sqlite" in dialects:
            return False
    return True


@dataclass
class _Plan:
    """What to select from one side and how to turn its rows into :class:`~cdc.verify.Row`."""

    side: _Side
    table: Any  # sqlalchemy TableClause
    names: tuple[str, ...]  # the side's own column names, in compared order
    order: tuple[Any, ...]
    normalisers: tuple[Callable[[Any], Any], ...]
    key_positions: tuple[int, ...]
    label: str

    def select(self, ordered: bool) -> Any:
        cols = [self.table.c[n] for n in self.names]
        stmt = sa.select(*cols)
        return stmt.order_by(*self.order) if ordered and self.order else stmt

    def rows(self, ordered: bool, chunk_rows: int) -> Generator[Row, None, None]:
        doing = f"reading {self.label}"
        try:
            with self.side.engine.connect() as conn:
                result = conn.execution_options(stream_results=True, max_row_buffer=chunk_rows).execute(
                    self.select(ordered)
                )
                norms, keys = self.normalisers, self.key_positions
                try:
                    for raw in result:
                        yield make_row(raw, norms, keys)
                finally:
                    # Stopped early (a fallback): end the server-side cursor before the connection goes
                    # back to the pool (PyMySQL reads what is left of an unbuffered result).
                    result.close()
        except CdcError:
            raise
        except Exception as exc:
            raise self.side.error(exc, doing) from exc

    def count(self) -> int:
        return _count(self.side, self.table.schema, self.table.name, self.label)


def _plan(
    side: _Side,
    table: tuple[str | None, str],
    columns: Sequence[tuple[str, ColumnSpec, _Column]],
    *,
    key: Sequence[str],
    options: NormaliseOptions,
    label: str,
) -> _Plan:
    """``columns``: per compared column, its name on this side, the source column's spec (which
    chooses the normaliser) and this side's catalog entry; ``key``: the source's key column names."""
    schema, name = table
    clause = sa.table(name, *[sa.column(own) for own, _, _ in columns], schema=schema)
    normalisers = tuple(normaliser(spec, options, geometry_mysql=col.geometry_mysql) for _, spec, col in columns)
    spec_names = [spec.name for _, spec, _ in columns]
    positions = tuple(spec_names.index(k) for k in key)
    order: list[Any] = []
    for k in key:
        own, _, col = columns[spec_names.index(k)]
        column: Any = clause.c[own]
        order.append(sa.collate(column, col.collate) if col.collate else column)
    return _Plan(side, clause, tuple(own for own, _, _ in columns), tuple(order), normalisers, positions, label)


def _count(side: _Side, schema: str | None, name: str, label: str) -> int:
    try:
        with side.engine.connect() as conn:
            stmt = sa.select(sa.func.count()).select_from(sa.table(name, schema=schema))
            return int(conn.execute(stmt).scalar() or 0)
    except Exception as exc:
        raise side.error(exc, f"counting the rows of {label}") from exc


def _empty() -> Generator[Row, None, None]:
    yield from ()


def _compare_table(
    diff: TableDiff,
    source: _Plan,
    target: _Plan | None,
    *,
    keyed: bool,
    ordered: bool,
    chunk_rows: int,
    on_rows: Callable[[int], None] | None,
) -> None:
    def target_rows(in_order: bool) -> Generator[Row, None, None]:
        return target.rows(in_order, chunk_rows) if target is not None else _empty()

    if keyed and ordered:
        src_rows, tgt_rows = source.rows(True, chunk_rows), target_rows(True)
        try:
            compare_ordered(src_rows, tgt_rows, diff, chunk_rows=chunk_rows, on_rows=on_rows)
            return
        except OutOfOrder:
            diff.reset("partitioned")
        finally:  # end both reads (and their server-side cursors) now, not when collected
            src_rows.close()
            tgt_rows.close()
    else:
        diff.reset("partitioned" if keyed else "multiset")
    largest = max(source.count(), target.count() if target is not None else 0)
    partitions = max(1, math.ceil(largest / PARTITION_ROWS))
    compare_partitioned(
        lambda: source.rows(False, chunk_rows),
        lambda: target_rows(False),
        diff,
        keyed=keyed,
        partitions=partitions,
        on_rows=on_rows,
    )


def _as_target_needs(spec: ColumnSpec, target: _Column) -> ColumnSpec:
    """``spec``, compared as JSON when the target holds the source's text in a JSON type (which
    reformats it, e.g. ``jsonb``): MariaDB's JSON columns are text to the source."""
    if target.logical is Logical.JSON and spec.logical in (Logical.TEXT, Logical.STRING):
        return ColumnSpec(spec.name, Logical.JSON, spec.native, spec.nullable)
    return spec


def _match(names: Sequence[str], available: Sequence[str], fold: bool) -> tuple[dict[str, str], list[str]]:
    """Each source column's name in the target, and the source columns the target lacks."""
    exact = set(available)
    folded = {a.casefold(): a for a in available}
    found: dict[str, str] = {}
    missing: list[str] = []
    for n in names:
        if n in exact:
            found[n] = n
        elif fold and n.casefold() in folded:
            found[n] = folded[n.casefold()]
        else:
            missing.append(n)
    return found, missing


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def verify_sink(
    config: Config,
    sink: SinkConfig,
    *,
    progress: Progress | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    max_listed: int = DEFAULT_MAX_LISTED,
) -> VerifyReport:
    """Compare every captured table the sink ``sink`` applies with its target table.

    Returns the report (differences are results, not errors). Raises
    :class:`~cdc.errors.ConnectError` when the source or the target cannot be reached, and other
    :mod:`cdc.errors` types when reading fails. ``progress`` shows rows compared per table.
    """
    from connectors.sql.sink import SqlSink

    src_cfg = config.source
    options = _options(src_cfg)
    writer = SqlSink(sink, pipeline=config.name)
    report = VerifyReport(sink.name, sink.url.redacted)
    with ExitStack() as stack:
        source = _Side(src_cfg.url.get_secret_value(), None)
        stack.callback(source.close)
        target = _Side(sink.url.get_secret_value(), sink.name)
        stack.callback(target.close)
        # Connections are short-lived (one per catalog read or table stream): a transaction held open on
        # a live MySQL source would keep metadata locks that block its DDL until verify ends.
        with target.connect():
            pass
        with source.connect() as conn:
            try:
                listed = _source_tables(conn, source.dialect)
            except CdcError:
                raise
            except Exception as exc:
                raise source.error(exc, "listing the source tables") from exc
        tables = [(t, n) for t, n in listed if src_cfg.includes(t.schema, t.table) and sink.includes(str(t))]
        verifier = _Verifier(src_cfg, writer, options, source, target, max_listed, chunk_rows)
        for table, estimate in tables:
            if progress is None:
                report.tables.append(verifier.table(table, None))
                continue
            task = progress.start_task(f"{sink.name}: {table}", estimate or None)
            report.tables.append(verifier.table(table, functools.partial(progress.advance, task)))
            progress.finish(task)
    return report


@dataclass
class _Verifier:
    """Compares one source table after another with its target table (one sink)."""

    src_cfg: SourceConfigBase
    writer: Any  # the SqlSink, for target names
    options: NormaliseOptions
    source: _Side
    target: _Side
    max_listed: int
    chunk_rows: int

    def table(self, table: TableId, on_rows: Callable[[int], None] | None) -> TableDiff:
        source, target, options, src_cfg = self.source, self.target, self.options, self.src_cfg
        tgt_schema, tgt_name = self.writer.target_name(table)
        label = f"{tgt_schema}.{tgt_name}" if tgt_schema else tgt_name
        try:
            with source.engine.connect() as conn:
                src_table = _read_catalog(conn, source.dialect, table.schema, table.table)
        except Exception as exc:
            raise source.error(exc, f"reading the definition of {table}") from exc
        try:
            with target.engine.connect() as conn:
                tgt_table = _read_catalog(conn, target.dialect, tgt_schema, tgt_name)
        except Exception as exc:
            raise target.error(exc, f"reading the definition of {label}") from exc
        if src_table is None:  # dropped since it was listed
            diff = TableDiff(str(table), label, (), (), self.max_listed)
            diff.error = "the source table disappeared while verifying"
            return diff
        key = src_table.primary_key or _key_columns(src_cfg, table)
        kept = {
            c.name: c
            for c in src_table.columns
            if c.name in key or not src_cfg.excludes_column(table.schema, table.table, c.name)
        }
        specs = [
            ColumnSpec(c.name, c.logical, c.native, c.nullable, c.element, c.element_native) for c in kept.values()
        ]
        names = [s.name for s in specs]
        missing_key = [k for k in key if k not in kept]
        if missing_key:
            raise SchemaError(f"key_columns for {table} name columns it does not have: {', '.join(missing_key)}")
        src_label, tgt_label = f"source table {table}", f"target table {label}"
        common: dict[str, Any] = {"key": key, "options": options}
        compare: dict[str, Any] = {"keyed": bool(key), "chunk_rows": self.chunk_rows, "on_rows": on_rows}
        if tgt_table is None:
            diff = TableDiff(str(table), label, tuple(names), tuple(key), self.max_listed, target_missing=True)
            every = [(s.name, s, kept[s.name]) for s in specs]
            src_plan = _plan(source, (table.schema, table.table), every, label=src_label, **common)
            _compare_table(diff, src_plan, None, ordered=True, **compare)
            return diff
        tgt_columns = {c.name: c for c in tgt_table.columns}
        found, missing = _match(names, list(tgt_columns), fold=target.dialect != "postgresql")
        compared = [_as_target_needs(s, tgt_columns[found[s.name]]) for s in specs if s.name in found]
        diff = TableDiff(
            str(table),
            label,
            tuple(s.name for s in compared),
            tuple(key),
            self.max_listed,
            missing_columns=tuple(missing),
        )
        if any(k in missing for k in key):
            # Without its key columns the target cannot be matched row by row: count only.
            diff.source_rows = _count(source, table.schema, table.table, src_label)
            diff.target_rows = _count(target, tgt_schema, tgt_name, tgt_label)
            return diff
        src_plan = _plan(
            source,
            (table.schema, table.table),
            [(s.name, s, kept[s.name]) for s in compared],
            label=src_label,
            **common,
        )
        tgt_plan = _plan(
            target,
            (tgt_schema, tgt_name),
            [(found[s.name], s, tgt_columns[found[s.name]]) for s in compared],
            label=tgt_label,
            **common,
        )
        kinds = [kept[k].logical for k in key]
        ordered = ordered_comparable(kinds, (source.dialect, target.dialect), options)
        _compare_table(diff, src_plan, tgt_plan, ordered=ordered, **compare)
        return diff
