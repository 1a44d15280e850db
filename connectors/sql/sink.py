"""The SQLAlchemy sink: applies change events to PostgreSQL, MySQL/MariaDB or SQLite, exactly once in effect.

:class:`SqlSink` implements :class:`cdc.connector.Sink`; :func:`create_sink` is the factory
:mod:`cdc.registry` loads. This module is the apply engine; consuming Kafka (or the direct bus)
and choosing which events to hand over is the caller's job, under the contract below.

**Contract with the caller** (the consumer loop, or the direct bus):

* Call :meth:`SqlSink.open`, then read the stored position: :meth:`SqlSink.applied` (direct bus:
  the source offset) or :meth:`SqlSink.applied_partitions` (Kafka: the next offset to read per
  topic partition). Resume strictly after it; group offsets in Kafka are only a hint.
* Hand every schema change to :meth:`SqlSink.apply_schema` before the first row of that table
  version; the sink converts rows with the schema it was given last for the table.
* Hand events to :meth:`SqlSink.write_batch` in log order (per key at least), and **only events
  after the stored position**: the sink never compares events with the position itself, so an
  event older than the stored position would be applied again, possibly over a newer row. With
  that, a batch replayed after a crash (its rows were not committed, so neither was its
  position) gives the same table as applying it once.

**One batch is one target transaction** that holds its rows and its position (``cdc_positions``),
so both or neither are committed:

1. Group the events by table and keep the last image per primary key. A change of primary key
   (an update whose ``before`` has another key) is a delete of the old key and an upsert of the
   new row. A truncate (``op: t``) discards the rows before it in the batch and empties the
   table; rows after it are applied. Snapshot rows (``op: r``) are upserts.
2. Per table: truncate (PostgreSQL ``TRUNCATE``, elsewhere ``DELETE`` so that it stays inside
   the transaction), then the deletes (``DELETE … WHERE key IN (…)``, up to 1000 keys per
   statement; on PostgreSQL with a one-column key ``DELETE … WHERE key = ANY(%s)`` with an array
   of up to 10,000 keys), then the upserts with the dialect's own statement (PostgreSQL ``INSERT … ON
   CONFLICT DO UPDATE``, MySQL ``INSERT … ON DUPLICATE KEY UPDATE``, SQLite ``INSERT … ON
   CONFLICT``) through the driver's ``executemany`` (PyMySQL sends multi-row INSERTs; psycopg
   pipelines). PostgreSQL groups of :data:`COPY_THRESHOLD` rows or more are copied into a
   temporary table with ``COPY`` and merged with one ``INSERT … SELECT … ON CONFLICT``.
3. Columns an event leaves out and names in ``unchanged`` (PostgreSQL's unchanged TOAST) are
   left untouched: such rows are applied with ``UPDATE`` of the other columns. If the row does
   not exist in the target, its full value is unknown: that is a
   :class:`~cdc.errors.TargetValueError` naming table, key and columns, and nothing of the batch
   is committed.
4. The position: the source offset (``kind = 'source'``, ``key`` = the sink's name) and/or the
   next offset of every topic partition (``kind = 'kafka'``, ``key`` = ``<sink>/<topic>/<partition>``),
   upserted into ``cdc_positions (pipeline, kind, key, value, updated_at)`` with ``value`` as JSON.
   With partitions, the transaction first locks their rows (``SELECT … FOR UPDATE``) and refuses
   the batch with :class:`StaleBatchError` when a stored offset is already later than the
   batch's: after a rebalance, a process that lost a partition cannot write older row images
   over the newer ones of the process that owns it now.

Values are converted per column with the plan of :mod:`connectors.sql.types` (compiled once per
table version) before the transaction starts; a value the target cannot hold raises
:class:`RejectedValue` (a :class:`~cdc.errors.TargetValueError`) naming table, column and key,
and the batch is not applied. Driver errors are translated by :mod:`connectors.sql.errors`.

**Schema.** With ``schema_evolution: basic``, :meth:`SqlSink.apply_schema` creates a missing
table (and, on PostgreSQL, its schema) with the primary key, adds columns the target lacks
(always nullable), and widens a column whose source type grew so that the target type now holds
more (a longer ``VARCHAR``, a new enum label, a larger integer, more digits, more fractional
seconds: :func:`~connectors.sql.types.widens`; SQLite holds any length already). It never drops
a column or narrows one; another type change leaves the column as it is, and a value it cannot
hold is refused when it comes. With ``none`` it only records the
definition; a missing target table is a :class:`~cdc.errors.SchemaError` at the first write.
Target names follow the contract: on PostgreSQL the source database or schema is the schema
(``shop.orders`` → ``"shop"."orders"``); on MySQL and SQLite only the table name is used, in the
URL's database. ``table_map`` overrides: the first pattern that matches ``db.table`` gives the
target, ``name`` or ``schema.name``, where ``{schema}`` and ``{table}`` stand for the source's.
"""

from __future__ import annotations

import gc
import itertools
import logging
import operator
import re
import warnings
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Final

import orjson
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.schema import CreateSchema, CreateTable

from cdc.connector import Problem, Sink
from cdc.errors import (
    CdcError,
    ConnectionLostError,
    DecodeError,
    SchemaError,
    TargetValueError,
    TransientError,
)
from cdc.events import ChangeEvent, Op, SchemaChange, TableId, TableSchema
from cdc.positions import SourceOffset
from cdc.values import BinaryHandling
from connectors.sql.config import sqlalchemy_url
from connectors.sql.ddl import AddColumn, AlterColumnType, CopyFrom, Truncate
from connectors.sql.errors import translate
from connectors.sql.types import (
    Dialect,
    SourceEngine,
    TablePlan,
    TargetOptions,
    ValueRejected,
    dialect_name,
    plan_table,
    source_engine,
    widens,
)

if TYPE_CHECKING:
    from cdc.config import SinkConfig

__all__ = ["COPY_THRESHOLD", "POSITIONS_TABLE", "RejectedValue", "SqlSink", "StaleBatchError", "create_sink"]

log = logging.getLogger("cdc.sink")

#: Rows of one table and column set from which a PostgreSQL batch goes through COPY and a merge.
COPY_THRESHOLD: Final = 2000
#: Keys per ``DELETE … WHERE key IN (…)`` statement.
DELETE_CHUNK: Final = 1000
#: Keys per PostgreSQL ``DELETE … WHERE key = ANY(array)`` statement (one-column keys).
DELETE_ANY_CHUNK: Final = 10_000
#: The table holding applied positions, in the target's default schema.
POSITIONS_TABLE: Final = "cdc_positions"

_SESSION_SQL_MODE = (
    "STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ERROR_FOR_DIVISION_BY_ZERO,"
    "NO_ZERO_DATE,NO_ZERO_IN_DATE"
)


class StaleBatchError(TransientError):
    """The target holds a later applied position than the batch's: the batch is refused, not applied.

    After a Kafka rebalance a process that lost a partition may still try to commit a batch of it;
    the process that owns it now has applied newer events. The caller recovers by re-reading
    :meth:`SqlSink.applied_partitions` / :meth:`SqlSink.applied` and going on from there.
    """


class RejectedValue(TargetValueError):
    """A value of one event that the target cannot hold (or a row it cannot apply).

    ``table`` is the source table, ``column`` the column (None for a whole row), ``key`` the
    row's key as it travels, ``event_index`` the event's index in the batch handed to
    :meth:`SqlSink.write_batch`, so that a caller can set that event aside (dead letter).
    """

    def __init__(
        self,
        message: str,
        *,
        table: TableId,
        column: str | None,
        key: Mapping[str, Any] | None,
        event_index: int | None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.table = table
        self.column = column
        self.key = dict(key) if key is not None else None
        self.event_index = event_index


def create_sink(
    config: SinkConfig,
    *,
    pipeline: str | None = None,
    binary_handling: BinaryHandling | str = BinaryHandling.BASE64,
    **_: Any,
) -> SqlSink:
    """The sink for one ``sinks[]`` entry (registered in :mod:`cdc.registry` as ``sql``).

    ``binary_handling`` is the source's ``binary_handling`` when it is a text mode (``base64``,
    ``base64-url-safe``, ``hex``): binary values then travel in plain ``string`` fields, which
    do not say how they are encoded. Other keyword arguments are accepted and ignored, so that
    the service can pass the same ones to every sink connector.
    """
    return SqlSink(config, pipeline=pipeline, binary_handling=BinaryHandling(binary_handling))


# ---------------------------------------------------------------------------------------------
# Per-table state
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Sql:
    """A compiled statement: its text and, per driver parameter, the index of the row value it takes."""

    text: str
    order: tuple[int, ...]
    identity: bool


@dataclass(slots=True)
class _Target:
    source: TableId
    schema: TableSchema
    plan: TablePlan
    table: sa.Table
    engine_kind: SourceEngine | None
    label: str  # the target's qualified name, for messages
    statements: dict[Hashable, _Sql] = field(default_factory=dict)
    verified: bool = False
    key_getter: Callable[[Mapping[str, Any]], Any] = field(init=False)
    single_key: bool = field(init=False)
    key_name: str = field(init=False)

    def __post_init__(self) -> None:
        self.key_getter = operator.itemgetter(*self.plan.key)
        self.single_key = len(self.plan.key) == 1
        self.key_name = self.plan.key[0]

    def key_dict(self, key: tuple[Any, ...]) -> dict[str, Any]:
        return dict(zip(self.plan.key, key, strict=True))


class _Kind(Enum):
    UPSERT = 1
    DELETE = 2


@dataclass(slots=True)
class _Action:
    kind: _Kind
    image: dict[str, Any] | None  # the row image (upsert), payload values
    key: tuple[Any, ...]  # the key columns' payload values
    unchanged: frozenset[str]
    index: int


@dataclass(slots=True)
class _Work:
    target: _Target
    truncate: bool = False
    actions: dict[Hashable, _Action] = field(default_factory=dict)


@dataclass(slots=True)
class _Group:
    columns: tuple[str, ...]
    partial: bool
    actions: list[_Action]
    rows: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass(slots=True)
class _Prepared:
    target: _Target
    truncate: bool
    deletes: list[tuple[Any, ...]]
    groups: list[_Group]


# ---------------------------------------------------------------------------------------------
# The sink
# ---------------------------------------------------------------------------------------------


class SqlSink(Sink):
    """Applies change events to one SQLAlchemy target; see the module docstring for the contract.

    Not thread-safe: one sink instance is driven by one thread.
    """

    def __init__(
        self,
        config: SinkConfig,
        *,
        pipeline: str | None = None,
        binary_handling: BinaryHandling = BinaryHandling.BASE64,
        copy_threshold: int = COPY_THRESHOLD,
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.name = config.name
        self.binary_handling = binary_handling
        self.copy_threshold = copy_threshold
        self._url = sqlalchemy_url(config.url.get_secret_value())
        self.dialect: Dialect = dialect_name(sa.engine.make_url(self._url).get_backend_name())
        self._engine: sa.Engine | None = None
        self._mariadb = True
        self._collation: str | None = None
        self._targets: dict[TableId, _Target] = {}
        self._claimed: dict[tuple[str | None, str], TableId] = {}
        self._positions: sa.Table = self._positions_table()
        self._stage_counter = itertools.count(1)

    # ------------------------------------------------------------------ lifecycle

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (opened on first use)."""
        if self._engine is None:
            self.open()
        assert self._engine is not None
        return self._engine

    def open(self) -> None:
        """Connect, learn the server (MariaDB or MySQL, version), and create ``cdc_positions`` if missing.

        Raises :class:`~cdc.errors.ConnectError` when the target cannot be reached or refuses the
        credentials, :class:`~cdc.errors.PermissionDeniedError` when ``cdc_positions`` is missing
        and cannot be created.
        """
        if self._engine is not None:
            return
        engine = self._create_engine()
        try:
            with engine.connect() as conn:
                if self.dialect == "mysql":
                    self._mariadb = bool(getattr(conn.dialect, "is_mariadb", False))
                    version = conn.dialect.server_version_info or (0,)
                    if self._mariadb:
                        self._collation = "utf8mb4_nopad_bin"
                    elif tuple(version) >= (8, 0):
                        self._collation = "utf8mb4_0900_bin"
                    else:
                        self._collation = "utf8mb4_bin"
        except Exception as exc:
            engine.dispose()
            raise translate(exc, sink=self.name, doing="connecting to the target", connecting=True) from exc
        self._engine = engine
        try:
            self._ensure_created(self._positions)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        """Release every connection. The sink may be opened again."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _create_engine(self) -> sa.Engine:
        url = sa.engine.make_url(self._url)
        kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 2}
        connect_args: dict[str, Any] = {}
        if self.dialect == "mysql":
            kwargs["paramstyle"] = "format"
            if "charset" not in url.query:
                connect_args["charset"] = "utf8mb4"
            connect_args["init_command"] = f"SET time_zone = '+00:00', sql_mode = '{_SESSION_SQL_MODE}'"
        elif self.dialect == "postgresql":
            kwargs["paramstyle"] = "format"
        elif url.database in (None, "", ":memory:"):
            # One in-memory database shared by every use of the engine (each connection would get its own).
            kwargs = {"poolclass": sa.pool.StaticPool, "connect_args": {"check_same_thread": False}}
        else:
            kwargs = {"connect_args": {"timeout": 30}}
        if connect_args:
            kwargs["connect_args"] = connect_args
        engine = sa.create_engine(url, **kwargs)
        if self.dialect == "postgresql":

            @sa_event.listens_for(engine, "connect")
            def _utc(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.autocommit = True
                try:
                    dbapi_connection.execute("SET TIME ZONE 'UTC'")
                finally:
                    dbapi_connection.autocommit = False

        return engine

    # ------------------------------------------------------------------ check

    def check(self) -> list[Problem]:
        """Every problem that would stop this sink: cannot connect; cannot create or write ``cdc_positions``;
        with ``schema_evolution: basic``, no privilege to create schemas or tables. Never raises."""
        component = f"sink:{self.name}"
        problems: list[Problem] = []
        engine: sa.Engine | None = None
        try:
            engine = self._create_engine()
            with engine.connect() as conn:
                if self.dialect == "postgresql":
                    problems += self._check_pg(conn, component)
                elif self.dialect == "mysql":
                    problems += self._check_mysql(conn, component)
                else:
                    problems += self._check_sqlite(conn, component)
        except Exception as exc:  # noqa: BLE001 - check() reports, never raises
            err = translate(exc, sink=self.name, doing="connecting to the target", connecting=True)
            problems.append(Problem(component, str(err)))
        finally:
            if engine is not None:
                engine.dispose()
        return problems

    def _check_pg(self, conn: sa.Connection, component: str) -> list[Problem]:
        out: list[Problem] = []
        row = conn.execute(
            sa.text(
                "SELECT has_database_privilege(current_database(), 'CREATE'), "
                "has_schema_privilege(current_schema(), 'CREATE'), current_schema(), "
                "to_regclass(quote_ident(current_schema()) || '.' || quote_ident(:t)) IS NOT NULL"
            ),
            {"t": POSITIONS_TABLE},
        ).one()
        can_create_schema, can_create_here, current, has_positions = row
        if not has_positions and not can_create_here:
            out.append(
                Problem(
                    component,
                    f"cannot create the table {POSITIONS_TABLE} in schema {current!r} (no CREATE privilege)",
                    f"GRANT CREATE ON SCHEMA {current} TO the sink's user, or create {POSITIONS_TABLE} in advance",
                )
            )
        if has_positions:
            ok = conn.execute(
                sa.text(
                    "SELECT has_table_privilege(quote_ident(current_schema()) || '.' || quote_ident(:t), "
                    "'SELECT, INSERT, UPDATE')"
                ),
                {"t": POSITIONS_TABLE},
            ).scalar()
            if not ok:
                out.append(Problem(component, f"no SELECT, INSERT and UPDATE privilege on {POSITIONS_TABLE}"))
        if self.config.schema_evolution == "basic" and not can_create_schema:
            for schema in self._literal_target_schemas():
                exists, can = conn.execute(
                    sa.text(
                        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = :s), "
                        "CASE WHEN EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = :s) "
                        "THEN has_schema_privilege(:s, 'CREATE') ELSE false END"
                    ),
                    {"s": schema},
                ).one()
                if not exists or not can:
                    what = "create the schema" if not exists else "create tables in the schema"
                    out.append(
                        Problem(
                            component,
                            f"schema_evolution is basic but the sink's user cannot {what} {schema!r}",
                            "GRANT CREATE ON DATABASE (to create schemas) or ON SCHEMA to it, "
                            "or set schema_evolution: none and create the tables yourself",
                        )
                    )
        return out

    def _check_mysql(self, conn: sa.Connection, component: str) -> list[Problem]:
        database = conn.execute(sa.text("SELECT DATABASE()")).scalar()
        if not database:
            return [Problem(component, "the URL names no database", "add it to the URL: mysql://user@host/dbname")]
        grantee = conn.execute(
            sa.text(
                "SELECT CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', "
                "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')"
            )
        ).scalar()
        rows = conn.execute(
            sa.text(
                "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = :g "
                "UNION SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES "
                "WHERE GRANTEE = :g AND :db LIKE TABLE_SCHEMA"
            ),
            {"g": grantee, "db": database},
        ).all()
        have = {str(r[0]).upper() for r in rows}
        if "ALL PRIVILEGES" in have:
            return []
        need = {"SELECT", "INSERT", "UPDATE", "DELETE"}
        if self.config.schema_evolution == "basic":
            need |= {"CREATE", "ALTER"}
        missing = sorted(need - have)
        if not missing:
            return []
        exists = conn.execute(
            sa.text(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
            ),
            {"t": POSITIONS_TABLE},
        ).scalar()
        if exists and missing == ["ALTER", "CREATE"]:
            message = "schema_evolution is basic but the sink's user lacks CREATE and ALTER on the database"
        else:
            message = f"the sink's user lacks {', '.join(missing)} on database {database!r}"
        return [
            Problem(
                component,
                message,
                f"GRANT {', '.join(missing)} ON `{database}`.* TO {grantee} (table-level grants are not examined)",
            )
        ]

    def _check_sqlite(self, conn: sa.Connection, component: str) -> list[Problem]:
        readonly = conn.execute(sa.text("PRAGMA query_only")).scalar()
        if readonly:
            return [Problem(component, "the SQLite database is opened read-only")]
        return []

    def _literal_target_schemas(self) -> list[str]:
        """PostgreSQL schemas the configured table patterns name without wildcards."""
        out: list[str] = []
        for pattern in self.config.tables:
            schema = pattern.partition(".")[0]
            if not any(ch in schema for ch in "*?[") and schema not in out:
                out.append(schema)
        return out

    # ------------------------------------------------------------------ positions

    def _positions_table(self) -> sa.Table:
        def text(n: int) -> sa.types.TypeEngine[Any]:
            if self.dialect == "mysql":
                return mysql_dialect.VARCHAR(n, collation="utf8mb4_bin")
            return sa.String(n)

        kwargs: dict[str, Any] = {}
        if self.dialect == "mysql":
            kwargs = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
        return sa.Table(
            POSITIONS_TABLE,
            sa.MetaData(),
            sa.Column("pipeline", text(200), primary_key=True),
            sa.Column("kind", text(32), primary_key=True),
            sa.Column("key", text(500), primary_key=True),
            sa.Column("value", sa.Text(), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            **kwargs,
        )

    def applied(self, pipeline: str) -> SourceOffset | None:
        """The source offset stored by the last committed :meth:`write_batch` of this sink (direct bus)."""
        rows = self._read_positions(pipeline, "source", self.name)
        if not rows:
            return None
        try:
            return SourceOffset.from_dict(orjson.loads(rows[0][1]))
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"sink {self.name!r}: the stored position in {POSITIONS_TABLE} is not JSON") from exc

    def applied_partitions(self, pipeline: str) -> dict[tuple[str, int], int]:
        """The next Kafka offset to read per (topic, partition), as stored with the rows (Kafka bus)."""
        out: dict[tuple[str, int], int] = {}
        for _key, value in self._read_positions(pipeline, "kafka", None):
            try:
                data = orjson.loads(value)
                out[(str(data["topic"]), int(data["partition"]))] = int(data["offset"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise DecodeError(
                    f"sink {self.name!r}: a stored partition offset in {POSITIONS_TABLE} is malformed"
                ) from exc
        return out

    def _read_positions(self, pipeline: str, kind: str, key: str | None) -> list[tuple[str, str]]:
        t = self._positions
        query = sa.select(t.c.key, t.c.value).where(t.c.pipeline == pipeline, t.c.kind == kind)
        if key is not None:
            query = query.where(t.c.key == key)
        else:
            query = query.where(t.c.key.like(_like_prefix(self.name + "/"), escape="\\"))
        try:
            with self.engine.connect() as conn:
                return [(str(k), str(v)) for k, v in conn.execute(query).all()]
        except Exception as exc:
            raise translate(exc, sink=self.name, doing=f"reading {POSITIONS_TABLE}") from exc

    def _position_rows(
        self,
        pipeline: str,
        offset: SourceOffset | None,
        partitions: Mapping[tuple[str, int], int] | None,
    ) -> list[dict[str, Any]]:
        now = datetime.now(UTC).replace(tzinfo=None)
        rows: list[dict[str, Any]] = []
        if offset is not None:
            value = orjson.dumps(offset.to_dict()).decode()
            rows.append({"pipeline": pipeline, "kind": "source", "key": self.name, "value": value, "updated_at": now})
        for (topic, partition), next_offset in sorted((partitions or {}).items()):
            value = orjson.dumps({"topic": topic, "partition": partition, "offset": next_offset}).decode()
            key = f"{self.name}/{topic}/{partition}"
            rows.append({"pipeline": pipeline, "kind": "kafka", "key": key, "value": value, "updated_at": now})
        return rows

    def _check_not_stale(self, conn: sa.Connection, pipeline: str, partitions: Mapping[tuple[str, int], int]) -> None:
        """Lock this sink's stored partition offsets (``SELECT … FOR UPDATE``) and refuse a batch that is
        behind them: another process (after a rebalance) has applied newer events of a partition, which
        this batch's older row images would overwrite.

        Only Kafka offsets are compared: they grow monotonically per partition. Source offsets (direct
        bus) are not, since ``snapshot: always`` starts over with snapshot offsets on every start;
        there the caller's filtering by :meth:`applied` is the guard.
        """
        t = self._positions
        wanted = {f"{self.name}/{topic}/{partition}": offset for (topic, partition), offset in partitions.items()}
        query = (
            sa.select(t.c.key, t.c.value)
            .where(t.c.pipeline == pipeline, t.c.kind == "kafka", t.c.key.in_(list(wanted)))
            .with_for_update()
        )
        for key, value in conn.execute(query).all():
            try:
                behind = int(orjson.loads(value)["offset"]) > int(wanted[key])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # a malformed stored position is replaced, not trusted
            if behind:
                raise StaleBatchError(
                    f"sink {self.name!r}: the target already holds a later offset for {key.split('/', 1)[-1]} "
                    f"of pipeline {pipeline!r} than this batch's; the batch is not applied, since its older "
                    "row images would overwrite newer ones",
                    hint="re-read the applied positions (another sink process may own this partition now)",
                )

    def store_position(self, conn: sa.Connection, pipeline: str, offset: SourceOffset) -> None:
        """Store ``offset`` as this sink's applied source offset of ``pipeline`` on ``conn``, inside the
        caller's transaction: for a bulk loader that writes the rows itself (a restore's ``COPY`` or
        ``LOAD DATA``) and commits them together with their position, as :meth:`write_batch` does."""
        self._store_positions(conn, self._position_rows(pipeline, offset, None))

    def _store_positions(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        t = self._positions
        stmt: Any
        if self.dialect == "postgresql":
            stmt = pg_insert(t)
            stmt = stmt.on_conflict_do_update(
                index_elements=[t.c.pipeline, t.c.kind, t.c.key],
                set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
            )
        elif self.dialect == "mysql":
            stmt = mysql_insert(t)
            stmt = stmt.on_duplicate_key_update(value=stmt.inserted.value, updated_at=stmt.inserted.updated_at)
        else:
            stmt = sqlite_insert(t)
            stmt = stmt.on_conflict_do_update(
                index_elements=[t.c.pipeline, t.c.kind, t.c.key],
                set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
            )
        conn.execute(stmt, rows)

    # ------------------------------------------------------------------ schema

    def target_name(self, table: TableId) -> tuple[str | None, str]:
        """Where ``table`` lands: (schema or None for the connection's default, table name)."""
        for pattern, target in self.config.table_map.items():
            if fnmatchcase(str(table), pattern):
                name = target.replace("{schema}", table.schema).replace("{table}", table.table)
                schema, dot, rest = name.partition(".")
                if dot and schema and rest:
                    return schema, rest
                return (table.schema if self.dialect == "postgresql" else None), name
        if self.dialect == "postgresql":
            return table.schema, table.table
        return None, table.table

    def target_table(self, table: TableId) -> sa.Table | None:
        """The SQLAlchemy table the sink writes ``table`` to, once its schema is known."""
        target = self._targets.get(table)
        return target.table if target is not None else None

    def apply_schema(self, change: SchemaChange) -> None:
        """Record ``change.schema`` for converting rows and, with ``schema_evolution: basic``, create the
        target table, add the columns it lacks and widen those whose type grew. ``DROP`` changes drop
        nothing. Tables outside the sink's ``tables`` are ignored.

        Raises :class:`~cdc.errors.SchemaError` for a table that cannot be mapped (no primary key, a
        name the target cannot hold, two source tables mapped to one target table).
        """
        schema = change.schema
        source = schema.table
        if not self.config.includes(str(source)):
            return
        if change.kind.upper() == "DROP":
            return
        engine_kind = source_engine(change.source)
        previous = self._targets.get(source)
        if previous is not None and engine_kind is None:
            engine_kind = previous.engine_kind
        target = self._build_target(schema, engine_kind)
        if self.config.schema_evolution == "basic":
            self._evolve(target)
        elif previous is not None and previous.verified and previous.table.fullname == target.table.fullname:
            target.verified = True
        self._targets[source] = target

    def _options(self, engine_kind: SourceEngine | None) -> TargetOptions:
        return TargetOptions(
            dialect=self.dialect,
            source=engine_kind,
            mariadb=self._mariadb,
            mysql_collation=self._collation or ("utf8mb4_nopad_bin" if self._mariadb else "utf8mb4_bin"),
            binary_handling=self.binary_handling,
        )

    def _build_target(self, schema: TableSchema, engine_kind: SourceEngine | None) -> _Target:
        if self._engine is None:
            self.open()
        plan = plan_table(schema, self._options(engine_kind))
        target_schema, name = self.target_name(schema.table)
        if self.dialect == "postgresql":
            for part in (target_schema or "", name):
                if len(part.encode()) > 63:
                    raise SchemaError(
                        f"sink {self.name!r}: the target name {part!r} of {schema.table} is longer than "
                        "PostgreSQL's 63 bytes",
                        hint="give the table a shorter name with the sink's table_map",
                    )
        fold = self.dialect != "postgresql"
        claim = (
            (target_schema.casefold() if fold and target_schema else target_schema),
            name.casefold() if fold else name,
        )
        owner = self._claimed.get(claim)
        if owner is not None and owner != schema.table:
            raise SchemaError(
                f"sink {self.name!r}: source tables {owner} and {schema.table} would both be written to the "
                f"target table {name!r}",
                hint="map one of them elsewhere with the sink's table_map",
            )
        self._claimed[claim] = schema.table
        table = sa.Table(
            name,
            sa.MetaData(),
            *plan.sa_columns(),
            schema=target_schema,
            **plan.table_kwargs(),
        )
        label = f"{target_schema}.{name}" if target_schema else name
        return _Target(schema.table, schema, plan, table, engine_kind, label)

    def _ensure_created(self, table: sa.Table) -> None:
        """Create ``table`` (and its PostgreSQL schema) if missing; tolerate another process doing it at once."""
        doing = f"creating table {table.fullname}"
        try:
            with self.engine.begin() as conn:
                inspector = sa.inspect(conn)
                if table.schema and self.dialect == "postgresql" and not inspector.has_schema(table.schema):
                    conn.execute(CreateSchema(table.schema, if_not_exists=True))
                if not inspector.has_table(table.name, schema=table.schema):
                    conn.execute(CreateTable(table))
        except Exception as exc:
            err = translate(exc, sink=self.name, doing=doing)
            if isinstance(err, ConnectionLostError | TargetValueError | SchemaError):
                # Another sink process may have created it concurrently (unique or "exists" errors).
                try:
                    with self.engine.connect() as conn:
                        if sa.inspect(conn).has_table(table.name, schema=table.schema):
                            return
                except Exception:  # noqa: BLE001 - report the original failure
                    pass
            raise err from exc

    def _evolve(self, target: _Target) -> None:
        table = target.table
        self._ensure_created(table)
        fold = self.dialect != "postgresql"
        try:
            with self.engine.begin() as conn, warnings.catch_warnings():
                # Reflection warns about types SQLAlchemy has no class for (xml, geometry); only names matter here.
                warnings.simplefilter("ignore", sa_exc.SAWarning)
                existing = {
                    (c["name"].casefold() if fold else c["name"]): c
                    for c in sa.inspect(conn).get_columns(table.name, schema=table.schema)
                }
                for column in target.plan.columns:
                    have = existing.get(column.name.casefold() if fold else column.name)
                    if have is None:
                        self._add_column(conn, target, column.name, column.type, column.column.default)
                    elif self.dialect != "sqlite" and widens(have["type"], column.type):
                        self._widen(conn, target, have, column.type)
        except Exception as exc:
            raise translate(exc, sink=self.name, doing=f"adding columns to {target.label}") from exc
        target.verified = True

    def _widen(self, conn: sa.Connection, target: _Target, have: Mapping[str, Any], type_: Any) -> None:
        """Give an existing column the wider type its source column now has (a longer VARCHAR, a new enum
        label, more digits; see :func:`~connectors.sql.types.widens`). A change the target refuses (a view
        depends on the column, an index would grow past its limit) is left out with a warning: values
        that do not fit are then refused when they come, as before."""
        name = str(have["name"])
        default = have.get("default")
        column = sa.Column(
            name,
            type_,
            nullable=bool(have.get("nullable", True)),
            server_default=sa.text(str(default)) if default is not None and self.dialect == "mysql" else None,
            comment=have.get("comment") if self.dialect == "mysql" else None,
        )
        was = have["type"]
        refused = self._refused_ddl(conn, AlterColumnType(target.table, column))
        if refused is not None:
            log.warning(
                "sink %s: the target refused to widen column %s of %s to %s (%s); it stays %s, and values that do "
                "not fit it are refused",
                self.name,
                name,
                target.label,
                type_,
                type(refused.orig).__name__,
                was,
            )
            return
        log.info("sink %s: column %s of %s widened from %s to %s", self.name, name, target.label, was, type_)

    def _add_column(self, conn: sa.Connection, target: _Target, name: str, type_: Any, default_sql: str | None) -> None:
        """``ALTER TABLE … ADD COLUMN``, with the source column's default when it is a literal.

        A column added to the source with a default has that value in every existing row, and no
        row event says so (an instant ADD COLUMN): adding it here with the same default gives the
        target's existing rows the same value. A default the target refuses (a type it cannot
        take) is left out with a warning: existing rows then read NULL until they change.
        """
        table = target.table
        default = _server_default(default_sql, type_)
        if default is not None:
            refused = self._refused_ddl(
                conn, AddColumn(table, sa.Column(name, type_, nullable=True, server_default=default))
            )
            if refused is None:
                return
            log.warning(
                "sink %s: the target refused the default %s of the new column %s of %s (%s); the column is "
                "added without it, so rows that existed before it read NULL until they change",
                self.name,
                default_sql,
                name,
                target.label,
                type(refused.orig).__name__,
            )
        conn.execute(AddColumn(table, sa.Column(name, type_, nullable=True)))

    def _refused_ddl(self, conn: sa.Connection, statement: Any) -> sa_exc.DBAPIError | None:
        """Run a DDL statement the target may refuse, in ``conn``'s transaction; the refusal, or None. On
        PostgreSQL it runs in a savepoint (a failed statement would abort the transaction); MySQL commits
        DDL implicitly (no savepoint survives it), and a failed statement there changes nothing."""
        try:
            if self.dialect == "postgresql":
                with conn.begin_nested():
                    conn.execute(statement)
            else:
                conn.execute(statement)
        except sa_exc.DBAPIError as exc:
            return exc
        return None

    def _verify(self, conn: sa.Connection, target: _Target) -> None:
        """With ``schema_evolution: none``, make sure the target table exists before the first write."""
        table = target.table
        if not sa.inspect(conn).has_table(table.name, schema=table.schema):
            raise SchemaError(
                f"sink {self.name!r}: the target table {target.label} of {target.source} does not exist",
                hint="schema_evolution is none: create the table, or set schema_evolution: basic",
            )
        target.verified = True

    # ------------------------------------------------------------------ writing

    def write_batch(
        self,
        pipeline: str,
        events: Sequence[ChangeEvent],
        *,
        offset: SourceOffset | None = None,
        partitions: Mapping[tuple[str, int], int] | None = None,
    ) -> None:
        """Apply ``events`` and store the position in one target transaction: all or nothing.

        See the module docstring for the steps and the caller's contract (events strictly after
        the stored position, in log order). ``None`` entries (tombstones) and events of tables
        outside the sink's ``tables`` are skipped. Raises :class:`RejectedValue` for a value or
        row the target cannot take, :class:`~cdc.errors.SchemaError` for a table whose schema was
        never given or whose target table is missing, :class:`~cdc.errors.DecodeError` for a
        malformed payload value, and translated driver errors (:mod:`connectors.sql.errors`).
        """
        engine = self.engine
        # Converting a batch allocates a few objects per value, none of them cyclic: pausing the cyclic
        # garbage collector meanwhile spares it scanning every live object again and again.
        paused = gc.isenabled()
        gc.disable()
        try:
            prepared = [self._prepare(work) for work in self._collect(events).values()]
        finally:
            if paused:
                gc.enable()
        positions = self._position_rows(pipeline, offset, partitions)
        if not prepared and not positions:
            return
        doing = "applying a batch"
        with engine.connect() as conn:
            try:
                with conn.begin():
                    raw = conn.connection.dbapi_connection
                    assert raw is not None
                    cursor = raw.cursor()
                    try:
                        if partitions:
                            doing = f"locking the stored offsets in {POSITIONS_TABLE}"
                            self._check_not_stale(conn, pipeline, partitions)
                        for item in prepared:
                            doing = f"applying {item.target.source} to {item.target.label}"
                            if not item.target.verified:
                                self._verify(conn, item.target)
                            self._apply(conn, cursor, item)
                        doing = f"storing the position in {POSITIONS_TABLE}"
                        self._store_positions(conn, positions)
                    finally:
                        cursor.close()
            except CdcError:
                raise
            except Exception as exc:
                err = translate(exc, sink=self.name, doing=doing)
                if isinstance(err, ConnectionLostError):
                    conn.invalidate()
                raise err from exc

    # collect: last image per key ---------------------------------------------------------------

    def _collect(self, events: Sequence[ChangeEvent | None]) -> dict[TableId, _Work]:
        work: dict[TableId, _Work] = {}
        last_source: TableId | None = None
        w: _Work | None = None
        for index, ev in enumerate(events):
            if ev is None:
                continue
            source = ev.table
            if source is not last_source or w is None:
                w = work.get(source)
                last_source = source
            if w is None:
                if not self.config.includes(str(source)):
                    continue
                target = self._targets.get(source)
                if target is None:
                    raise SchemaError(
                        f"sink {self.name!r}: a change of {source} arrived before its schema",
                        hint="every table's schema change must be applied (apply_schema) before its rows",
                    )
                w = work[source] = _Work(target)
                last_source = source
            op = ev.op
            actions = w.actions
            if op is _TRUNCATE:
                w.truncate = True
                actions.clear()
                continue
            target = w.target
            if op is _DELETE:
                key = self._key_of(target, ev.before, ev, index)
                actions[_hashable(key)] = _Action(_Kind.DELETE, None, key, _NONE, index)
                continue
            after = ev.after
            if after is None:
                raise DecodeError(f"sink {self.name!r}: a {op.value!r} event of {source} has no 'after' image")
            if target.single_key and (k0 := after.get(target.key_name, _MISSING)) is not _MISSING:
                key = (k0,)
                h: Hashable = key if type(k0) in _SIMPLE_KEYS else _hashable(key)
            else:
                key = self._key_of(target, after, ev, index)
                h = _hashable(key)
            if op is _UPDATE and ev.before is not None:
                old = _key_or_none(target, ev.before)
                if old is not None and old != key:
                    actions[_hashable(old)] = _Action(_Kind.DELETE, None, old, _NONE, index)
            unchanged = ev.unchanged
            prev = actions.get(h)
            if prev is not None:
                if prev.kind is _Kind.UPSERT and prev.image is not None:
                    image = {**prev.image, **after}
                    merged = frozenset((prev.unchanged | unchanged) - image.keys())
                    actions[h] = _Action(_Kind.UPSERT, image, key, merged, index)
                    continue
                if unchanged:
                    raise self._missing_row(target, key, unchanged, index, "was deleted earlier in the same batch")
            actions[h] = _Action(_Kind.UPSERT, after, key, unchanged, index)
        return work

    def _key_of(self, target: _Target, image: Mapping[str, Any] | None, ev: ChangeEvent, index: int) -> tuple[Any, ...]:
        """The key columns' payload values, from the row image or else from the message key."""
        if image is not None:
            try:
                value = target.key_getter(image)
                return (value,) if target.single_key else tuple(value)
            except KeyError:
                pass
        names = target.plan.key
        if ev.key is not None and all(k in ev.key for k in names):
            return tuple(ev.key[k] for k in names)
        raise DecodeError(
            f"sink {self.name!r}: a {ev.op.value!r} event of {ev.table} (#{index} in the batch) lacks its key "
            f"columns {list(names)}"
        )

    # prepare: convert values before the transaction ---------------------------------------------

    def _prepare(self, work: _Work) -> _Prepared:
        target = work.target
        plan = target.plan
        key_names = plan.key
        key_convs = [plan.by_name[k].convert for k in key_names]
        deletes: list[tuple[Any, ...]] = []
        groups: dict[tuple[tuple[str, ...], bool], _Group] = {}
        layouts: dict[tuple[str, ...], tuple[str, ...]] = {}
        names = plan.schema.column_names
        every = frozenset(names)
        full: _Group | None = None
        for action in work.actions.values():
            if action.kind is _Kind.DELETE:
                deletes.append(self._convert_key(target, action, key_convs))
                continue
            image = action.image
            assert image is not None
            if not action.unchanged and image.keys() == every:  # the common case: a full row image
                if full is None:
                    full = groups.get((names, False))
                    if full is None:
                        full = groups[(names, False)] = _Group(names, False, [])
                full.actions.append(action)
                continue
            raw_layout = tuple(image)
            layout = layouts.get(raw_layout)
            if layout is None:
                unknown = [c for c in raw_layout if not plan.schema.has_column(c)]
                if unknown:
                    raise SchemaError(
                        f"sink {self.name!r}: a row of {target.source} has columns its schema does not have: "
                        f"{unknown[:5]}",
                        hint="the schema change that added them must be applied before the rows",
                    )
                present = set(raw_layout)
                layout = layouts[raw_layout] = tuple(c for c in names if c in present)
            partial = bool(action.unchanged)
            group = groups.get((layout, partial))
            if group is None:
                group = groups[(layout, partial)] = _Group(layout, partial, [])
            group.actions.append(action)
        for group in groups.values():
            convs = [plan.by_name[c].convert for c in group.columns]
            pairs = list(zip(group.columns, convs, strict=True))
            getter = operator.itemgetter(*group.columns)
            single = len(group.columns) == 1
            rows = group.rows
            append = rows.append
            for action in group.actions:
                image = action.image
                assert image is not None
                try:
                    values = (getter(image),) if single else getter(image)
                    append(tuple([conv(v) for conv, v in zip(convs, values, strict=True)]))
                except (ValueRejected, DecodeError):
                    self._raise_conversion(target, action, pairs)
        return _Prepared(target, work.truncate, deletes, list(groups.values()))

    def _convert_key(self, target: _Target, action: _Action, convs: list[Callable[[Any], Any]]) -> tuple[Any, ...]:
        try:
            return tuple([conv(v) for v, conv in zip(action.key, convs, strict=True)])
        except (ValueRejected, DecodeError):
            pairs = list(zip(target.plan.key, convs, strict=True))
            self._raise_conversion(target, action, pairs, target.key_dict(action.key))
            raise  # pragma: no cover - _raise_conversion always raises

    def _raise_conversion(
        self,
        target: _Target,
        action: _Action,
        pairs: list[tuple[str, Callable[[Any], Any]]],
        image: Mapping[str, Any] | None = None,
    ) -> None:
        values = image if image is not None else (action.image or {})
        for name, conv in pairs:
            try:
                conv(values[name])
            except ValueRejected as exc:
                plan = target.plan.by_name[name]
                key = target.key_dict(action.key)
                raise RejectedValue(
                    f"sink {self.name!r}: table {target.source} (target {target.label}), column {name!r}, "
                    f"key {_show_key(key)}: {exc.reason}; cdc never truncates or rounds a value",
                    table=target.source,
                    column=name,
                    key=key,
                    event_index=action.index,
                    hint=f"widen the target column ({plan.sql}) or exclude the column in the source",
                ) from exc
            except DecodeError as exc:
                key = target.key_dict(action.key)
                raise DecodeError(
                    f"sink {self.name!r}: table {target.source}, column {name!r}, key {_show_key(key)}: {exc}"
                ) from exc
        raise AssertionError("conversion failed without a failing column")  # pragma: no cover

    def _missing_row(
        self, target: _Target, key_values: tuple[Any, ...], unchanged: frozenset[str], index: int, why: str
    ) -> RejectedValue:
        cols = ", ".join(sorted(unchanged))
        key = target.key_dict(key_values)
        return RejectedValue(
            f"sink {self.name!r}: table {target.source} (target {target.label}), key {_show_key(key)}: the event "
            f"leaves column(s) {cols} unchanged (PostgreSQL did not send their TOAST values), but the row {why}, "
            "so their values are unknown",
            table=target.source,
            column=None,
            key=key,
            event_index=index,
            hint="re-snapshot the table into the target (the source table needs REPLICA IDENTITY FULL to avoid this)",
        )

    # apply: statements in the transaction ---------------------------------------------------------

    def _apply(self, conn: sa.Connection, cursor: Any, item: _Prepared) -> None:
        target = item.target
        if item.truncate:
            stmt: Any = Truncate(target.table) if self.dialect == "postgresql" else sa.delete(target.table)
            conn.execute(stmt)
        if item.deletes:
            self._delete(cursor, target, item.deletes)
        for group in item.groups:
            if group.partial:
                self._update_partial(cursor, target, group)
            elif self.dialect == "postgresql" and len(group.rows) >= self.copy_threshold:
                self._copy_merge(conn, cursor, target, group)
            else:
                sql = self._upsert_sql(target, group.columns)
                cursor.executemany(sql.text, _params(sql, group.rows))

    def _compile(self, stmt: Any, bind_index: Mapping[str, int]) -> _Sql:
        compiled = stmt.compile(dialect=self.engine.dialect)
        names = compiled.positiontup or []
        order = tuple(bind_index[name] for name in names)
        return _Sql(compiled.string, order, order == tuple(range(len(order))))

    def _bind_prefix(self, target: _Target) -> str:
        taken = {c.casefold() for c in target.schema.column_names}
        prefix = "cdcp"
        while any(name.startswith(prefix) for name in taken):
            prefix += "_"
        return prefix

    def _upsert_sql(self, target: _Target, columns: tuple[str, ...]) -> _Sql:
        cache_key = ("upsert", columns)
        sql = target.statements.get(cache_key)
        if sql is not None:
            return sql
        t = target.table
        prefix = self._bind_prefix(target)
        binds = {t.c[name]: sa.bindparam(f"{prefix}{i}", type_=t.c[name].type) for i, name in enumerate(columns)}
        stmt = self._upsert(t, target.plan.key, columns, self._values(binds))
        sql = self._compile(stmt, {f"{prefix}{i}": i for i in range(len(columns))})
        target.statements[cache_key] = sql
        return sql

    @staticmethod
    def _values(binds: dict[sa.Column[Any], Any]) -> Callable[[Any], Any]:
        return lambda insert: insert.values(binds)

    def _upsert(
        self, t: sa.Table, key: Sequence[str], columns: Sequence[str], fill: Callable[[Any], Any] | None = None
    ) -> Any:
        """The dialect's upsert of ``columns`` into ``t``; ``fill`` adds VALUES (or use it for INSERT … SELECT)."""
        non_key = [c for c in columns if c not in key]
        index = [t.c[k] for k in key]
        if self.dialect == "mysql":
            stmt: Any = mysql_insert(t)
            stmt = fill(stmt) if fill else stmt
            updates = non_key or [key[0]]
            return stmt.on_duplicate_key_update({t.c[c]: stmt.inserted[c] for c in updates})
        stmt = pg_insert(t) if self.dialect == "postgresql" else sqlite_insert(t)
        stmt = fill(stmt) if fill else stmt
        if not non_key:
            return stmt.on_conflict_do_nothing(index_elements=index)
        return stmt.on_conflict_do_update(index_elements=index, set_={t.c[c]: stmt.excluded[c] for c in non_key})

    def _copy_merge(self, conn: sa.Connection, cursor: Any, target: _Target, group: _Group) -> None:
        t = target.table
        stage = sa.Table(
            f"cdc_stage_{next(self._stage_counter)}",
            sa.MetaData(),
            *[sa.Column(name, t.c[name].type) for name in group.columns],
            prefixes=["TEMPORARY"],
            postgresql_on_commit="DROP",
        )
        conn.execute(CreateTable(stage))
        copy_sql = CopyFrom(stage, group.columns).compile(dialect=self.engine.dialect).string
        with cursor.copy(copy_sql) as copy:
            write = copy.write_row
            for row in group.rows:
                write(row)
        select = sa.select(*[stage.c[name] for name in group.columns])
        columns = [t.c[name] for name in group.columns]
        merge = self._upsert(t, target.plan.key, group.columns, lambda insert: insert.from_select(columns, select))
        conn.execute(merge)

    def _delete(self, cursor: Any, target: _Target, keys: list[tuple[Any, ...]]) -> None:
        if self.dialect == "postgresql" and target.single_key:
            sql = self._delete_any_sql(target)
            for start in range(0, len(keys), DELETE_ANY_CHUNK):
                cursor.execute(sql.text, ([key[0] for key in keys[start : start + DELETE_ANY_CHUNK]],))
            return
        for start in range(0, len(keys), DELETE_CHUNK):
            chunk = keys[start : start + DELETE_CHUNK]
            size = 1
            while size < len(chunk):
                size *= 2
            size = min(size, DELETE_CHUNK)
            padded = chunk + [chunk[-1]] * (size - len(chunk))
            sql = self._delete_sql(target, size)
            cursor.execute(sql.text, _flat_params(sql, padded))

    def _delete_any_sql(self, target: _Target) -> _Sql:
        """PostgreSQL, one key column: ``DELETE … WHERE key = ANY(%s::type[])`` with the keys as one array."""
        cache_key = ("delete-any",)
        sql = target.statements.get(cache_key)
        if sql is None:
            t = target.table
            column = t.c[target.plan.key[0]]
            name = f"{self._bind_prefix(target)}0"
            keys = sa.bindparam(name, type_=postgresql_dialect.ARRAY(column.type))
            sql = self._compile(sa.delete(t).where(column == sa.any_(keys)), {name: 0})
            target.statements[cache_key] = sql
        return sql

    def _delete_sql(self, target: _Target, size: int) -> _Sql:
        cache_key = ("delete", size)
        sql = target.statements.get(cache_key)
        if sql is not None:
            return sql
        t = target.table
        key = target.plan.key
        width = len(key)
        prefix = self._bind_prefix(target)
        index: dict[str, int] = {}
        items: list[Any] = []
        for i in range(size):
            binds = []
            for j, name in enumerate(key):
                bind_name = f"{prefix}{i}_{j}"
                index[bind_name] = i * width + j
                binds.append(sa.bindparam(bind_name, type_=t.c[name].type))
            items.append(binds[0] if width == 1 else sa.tuple_(*binds))
        column: Any = t.c[key[0]] if width == 1 else sa.tuple_(*[t.c[k] for k in key])
        stmt = sa.delete(t).where(column.in_(items))
        sql = self._compile(stmt, index)
        target.statements[cache_key] = sql
        return sql

    def _update_partial(self, cursor: Any, target: _Target, group: _Group) -> None:
        key = target.plan.key
        non_key = [c for c in group.columns if c not in key]
        if not non_key:
            return
        t = target.table
        cache_key = ("update", group.columns)
        sql = target.statements.get(cache_key)
        if sql is None:
            prefix = self._bind_prefix(target)
            position = {name: i for i, name in enumerate(group.columns)}
            stmt = (
                sa.update(t)
                .where(*[t.c[k] == sa.bindparam(f"{prefix}{position[k]}", type_=t.c[k].type) for k in key])
                .values({t.c[c]: sa.bindparam(f"{prefix}{position[c]}", type_=t.c[c].type) for c in non_key})
            )
            sql = self._compile(stmt, {f"{prefix}{i}": i for i in range(len(group.columns))})
            target.statements[cache_key] = sql
        cursor.executemany(sql.text, _params(sql, group.rows))
        if cursor.rowcount is not None and 0 <= cursor.rowcount < len(group.rows):
            self._raise_missing(cursor, target, group)

    def _raise_missing(self, cursor: Any, target: _Target, group: _Group) -> None:
        """Some rows updated with unchanged columns do not exist: name the first one."""
        key = target.plan.key
        positions = [group.columns.index(k) for k in key]
        t = target.table
        prefix = self._bind_prefix(target)
        stmt: Any = sa.select(sa.literal_column("1")).select_from(t)
        stmt = stmt.where(*[t.c[k] == sa.bindparam(f"{prefix}{i}", type_=t.c[k].type) for i, k in enumerate(key)])
        sql = self._compile(stmt, {f"{prefix}{i}": i for i in range(len(key))})
        for action, row in zip(group.actions, group.rows, strict=True):
            values = [row[p] for p in positions]
            cursor.execute(sql.text, [values[i] for i in sql.order])
            if cursor.fetchone() is None:
                raise self._missing_row(
                    target, action.key, action.unchanged, action.index, "does not exist in the target"
                )


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _params(sql: _Sql, rows: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]] | list[tuple[Any, ...]]:
    if sql.identity:
        return rows
    order = sql.order
    return (tuple([row[i] for i in order]) for row in rows)


def _flat_params(sql: _Sql, keys: list[tuple[Any, ...]]) -> list[Any]:
    flat = [v for key in keys for v in key]
    if sql.identity:
        return flat
    return [flat[i] for i in sql.order]


_NONE: Final[frozenset[str]] = frozenset()
_MISSING: Final = object()
_SIMPLE_KEYS: Final = (int, str)
_TRUNCATE, _DELETE, _UPDATE = Op.TRUNCATE, Op.DELETE, Op.UPDATE


def _hashable(key: tuple[Any, ...]) -> Hashable:
    """``key`` itself, or its JSON text when a value is unhashable (a struct or array payload)."""
    if len(key) == 1 and type(key[0]) in (int, str):
        return key
    try:
        hash(key)
    except TypeError:
        return orjson.dumps(key, option=orjson.OPT_SORT_KEYS)
    return key


def _key_or_none(target: _Target, image: Mapping[str, Any]) -> tuple[Any, ...] | None:
    try:
        value = target.key_getter(image)
    except KeyError:
        return None
    return (value,) if target.single_key else tuple(value)


def _show_key(key: Mapping[str, Any] | None) -> str:
    if key is None:
        return "(none)"
    try:
        text = orjson.dumps(dict(key)).decode()
    except TypeError:
        text = repr(dict(key))
    return text if len(text) <= 200 else text[:197] + "..."


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


_QUOTED_DEFAULT = re.compile(r"^\(?'((?:[^']|'')*)'\)?(?:::[\w .\"\[\]()]+)?$", re.DOTALL)
_NUMBER_DEFAULT = re.compile(r"^\(?([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\)?(?:::[\w .\"]+)?$")


def _server_default(sql: str | None, type_: Any) -> Any:
    """A column default as a SQLAlchemy ``server_default``, when ``sql`` is a literal (a quoted
    string, possibly with a PostgreSQL cast, a number, TRUE or FALSE); None for no default, NULL,
    and expressions, whose value for existing rows cannot be known here."""
    if sql is None:
        return None
    text = sql.strip()
    is_bool = isinstance(type_, sa.Boolean)
    m = _QUOTED_DEFAULT.match(text)
    if m is not None:
        value = m.group(1).replace("''", "'")
        if is_bool and value.lower() in ("0", "1", "t", "f", "true", "false"):
            return sa.text("true" if value.lower() in ("1", "t", "true") else "false")
        return value  # SQLAlchemy quotes it
    m = _NUMBER_DEFAULT.match(text)
    if m is not None:
        number = m.group(1)
        if is_bool and number in ("0", "1"):
            return sa.text("true" if number == "1" else "false")
        return sa.text(number)  # digits, sign, point and exponent only (the pattern)
    upper = text.upper()
    if upper in ("TRUE", "FALSE"):
        return sa.text(upper.lower())
    return None
