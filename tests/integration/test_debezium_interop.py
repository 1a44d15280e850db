"""Debezium's own output applied by cdc's sink gives the same target as cdc's own events.

``tests/fixtures/debezium/*.jsonl`` are records written by real Debezium 3.2 (Kafka Connect,
the PostgreSQL and MariaDB connectors, JsonConverter with and without schemas) on the workload
of ``tests/support/debezium_workload.py``; ``tests/fixtures/debezium/record.py`` re-records
them. Here the same workload runs again through cdc's own source into one target, the recorded
records are produced to Kafka under a fresh prefix and consumed by cdc's sink into another, and
the two targets must hold the very same rows.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import services
import sqlalchemy as sa
from conftest import unique
from support.debezium_workload import (
    DATABASE,
    MARIADB_CHANGES,
    MARIADB_SETUP,
    PG_CHANGES,
    PG_DATABASE,
    PG_SETUP,
    PREFIXES,
    run_mariadb,
    run_pg,
)

from cdc.bus.consumer import KafkaSinkRunner
from cdc.bus.kafka import KafkaPublisher, KafkaSettings
from cdc.config import parse_config
from cdc.errors import SchemaError
from connectors.sql.sink import create_sink

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "debezium"
TABLES = {"mariadb": ("orders", "types"), "postgresql": ("docs", "orders", "types")}


def _records(engine: str, schemas: bool) -> list[dict[str, Any]]:
    path = FIXTURES / f"{engine}_{'schemas' if schemas else 'plain'}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _produce(bootstrap: str, records: list[dict[str, Any]], old: str, new: str) -> None:
    """The recorded records, in order, under topic prefix ``new`` instead of ``old``."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for r in records:
            topic = new + r["topic"][len(old) :]
            key = r["key"].encode() if r["key"] is not None else None
            value = r["value"].encode() if r["value"] is not None else None
            producer.send(topic, key=key, value=value, partition=r["partition"])
        producer.flush(60)
    finally:
        producer.close()


def _rows(url: str, schema: str | None, table: str) -> list[dict[str, Any]] | None:
    engine = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://").replace("mysql://", "mysql+pymysql://")
    )
    try:
        with engine.connect() as conn:
            insp = sa.inspect(conn)
            if not insp.has_table(table, schema=schema):
                return None
            t = sa.Table(table, sa.MetaData(), schema=schema, autoload_with=conn)
            pk = [c for c in t.primary_key.columns]
            return [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(*pk))]
    finally:
        engine.dispose()


def _run(runner: KafkaSinkRunner, until: Callable[[], bool], pump: Callable[[], None] = lambda: None) -> None:
    """Run the sink until ``until()`` holds, then until it is drained: the last transaction's table may
    be fetched before another table's earlier changes (each table has its own topic)."""
    deadline = time.monotonic() + 90
    while not until():
        assert time.monotonic() < deadline, f"the sink did not converge in time: {runner.stats}"
        pump()
        runner.run_once(0.2)
    idle = 0
    while idle < 3:
        assert time.monotonic() < deadline, f"the sink did not drain in time: {runner.stats}"
        pump()
        idle = idle + 1 if runner.run_once(0.3) == 0 else 0


def _runner(bootstrap: str, prefix: str, url: str) -> KafkaSinkRunner:
    cfg = parse_config(
        f"name: {prefix}\nsource:\n  type: mysql\n  url: mysql://root@127.0.0.1:1/\n  server_id: 1\n"
        f"bus:\n  type: kafka\n  bootstrap_servers: {bootstrap}\nsinks:\n  - name: target\n    url: {url}\n",
        env={},
    )
    runner = KafkaSinkRunner(
        KafkaSettings(bootstrap_servers=bootstrap),
        prefix,
        prefix,
        "target",
        create_sink(cfg.sinks[0], pipeline=prefix),
        on_error="fail",
    )
    runner.open()
    return runner


def _last_txn_applied(url: str, schema: str | None) -> Callable[[], bool]:
    """The workload's last transaction (order eu/3 inserted, eu/1 shipped) is in the target."""

    def check() -> bool:
        rows = _rows(url, schema, "orders")
        if not rows:
            return False
        by_key = {(r["region"], r["order_no"]): r for r in rows}
        return ("eu", 3) in by_key and by_key[("eu", 1)].get("status") == "shipped"

    return check


def _mysql(url: str, database: str = "") -> Any:
    import pymysql

    return pymysql.connect(**services.mysql_params(url, database=database))


def _mysql_run(url: str, statements: list[str] | list[list[str]]) -> None:
    run_mariadb(_mysql(url), statements)


def _pg_admin(pg_url: str) -> Any:
    import psycopg

    return psycopg.connect(pg_url, autocommit=True)


def _pg_run(url: str, statements: list[str] | list[list[str]]) -> None:
    import psycopg

    run_pg(psycopg.connect(url), statements)


class Targets:
    """Throwaway target databases on one server, dropped afterwards."""

    def __init__(self, kind: str, admin_url: str) -> None:
        self.kind = kind
        self.admin_url = admin_url
        self.names: list[str] = []

    def new(self) -> str:
        name = unique("cdc_dbzt")
        if self.kind == "postgresql":
            with _pg_admin(self.admin_url) as admin:
                admin.execute(f"CREATE DATABASE {name}")
        else:
            conn = _mysql(self.admin_url)
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
            conn.close()
        self.names.append(name)
        return services.with_database(self.admin_url, name)

    def schema(self) -> str | None:
        """Where a source table lands: the source's schema in PostgreSQL, the URL's database in MariaDB."""
        return DATABASE if self.kind == "postgresql" else None

    def drop(self) -> None:
        for name in self.names:
            if self.kind == "postgresql":
                with _pg_admin(self.admin_url) as admin:
                    admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            else:
                conn = _mysql(self.admin_url)
                with conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS {name}")
                conn.close()


def _delete_topics(bootstrap: str, prefixes: list[str]) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="cdc-tests-cleanup")
    try:
        doomed = [t for t in admin.list_topics() if any(t == p or t.startswith(p + ".") or p in t for p in prefixes)]
        if doomed:
            admin.delete_topics(doomed, timeout_ms=30_000)
    finally:
        admin.close()


def _cdc_own(engine: str, source_url: str, bootstrap: str, prefix: str, target_url: str, schema: str | None) -> None:
    """The workload through cdc's own source, Kafka and sink into ``target_url``."""
    if engine == "mariadb":
        src_yaml = (
            f"  type: mysql\n  url: {source_url}\n  server_id: {random.randint(100_000, 4_000_000)}\n"
            f"  tables: ['{DATABASE}.*']\n"
        )
    else:
        src_yaml = (
            f"  type: postgres\n  url: {source_url}\n  slot: {prefix}\n  publication: {prefix}\n"
            f"  tables: ['{DATABASE}.*']\n"
        )
    cfg = parse_config(
        f"name: {prefix}\nsource:\n{src_yaml}bus:\n  type: kafka\n  bootstrap_servers: {bootstrap}\n"
        f"sinks:\n  - name: target\n    url: {target_url}\n",
        env={},
    )
    if engine == "mariadb":
        from connectors.mysql.source import MySqlSource

        src: Any = MySqlSource(cfg.source, prefix)  # type: ignore[arg-type]
    else:
        from connectors.postgres.source import PostgresSource

        src = PostgresSource(cfg.source, prefix)  # type: ignore[arg-type]
    pub = KafkaPublisher(cfg.bus.to_settings(), prefix)  # type: ignore[union-attr]
    src.open(pub.open())
    runner = KafkaSinkRunner(
        cfg.bus.to_settings(),
        prefix,
        prefix,
        "target",
        create_sink(cfg.sinks[0], pipeline=prefix),  # type: ignore[union-attr]
    )
    runner.open()

    def pump() -> None:
        pub.publish(src.read_batch(5000, 0.1))
        pub.pump()
        if engine == "postgresql" and pub.committed is not None:
            src.acknowledge(pub.committed)

    try:
        snapshot = {"mariadb": 4, "postgresql": 4}[engine]
        _run(runner, lambda: len(_rows(target_url, schema, "orders") or []) == snapshot, pump)
        if engine == "mariadb":
            _mysql_run(source_url, [f"USE {DATABASE}", *MARIADB_CHANGES])
        else:
            _pg_run(source_url, PG_CHANGES)
        _run(runner, _last_txn_applied(target_url, schema), pump)
    finally:
        runner.close()
        src.close()
        pub.close()


def _debezium(engine: str, schemas: bool, bootstrap: str, prefix: str, target_url: str, schema: str | None) -> None:
    """Debezium's recorded records for ``engine`` through Kafka and cdc's sink into ``target_url``."""
    _produce(bootstrap, _records(engine, schemas), PREFIXES[(engine, schemas)], prefix)
    runner = _runner(bootstrap, prefix, target_url)
    try:
        _run(runner, _last_txn_applied(target_url, schema))
    finally:
        runner.close()


@pytest.mark.parametrize(
    "engine",
    [pytest.param("mariadb", id="mariadb-to-postgresql"), pytest.param("postgresql", id="postgresql-to-mariadb")],
)
def test_debezium_events_give_the_same_target_as_cdc_events(
    engine: str, mysql_url: str, pg_url: str, kafka_bootstrap: str
) -> None:
    if engine == "mariadb":
        _mysql_run(mysql_url, MARIADB_SETUP)
        source_url = mysql_url
        targets = Targets("postgresql", pg_url)
    else:
        with _pg_admin(pg_url) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {PG_DATABASE}")
        source_url = services.with_database(pg_url, PG_DATABASE)
        _pg_run(source_url, PG_SETUP)
        targets = Targets("mariadb", mysql_url)
    prefixes = [unique("cdc_dbz") for _ in range(3)]
    schema = targets.schema()
    try:
        own = targets.new()
        _cdc_own(engine, source_url, kafka_bootstrap, prefixes[0], own, schema)
        expected = {t: _rows(own, schema, t) for t in TABLES[engine]}
        assert all(expected.values()), expected
        for prefix, schemas in zip(prefixes[1:], (True, False), strict=True):
            theirs = targets.new()
            if engine == "postgresql" and not schemas:
                # No schema-change topic and no schemas: nothing says a column's type (a precise
                # decimal is bare base64 without its scale). The sink refuses, saying what to change.
                with pytest.raises(SchemaError, match=r"no definition of dbzfx\.\w+: .*schemas\.enable=true"):
                    _debezium(engine, schemas, kafka_bootstrap, prefix, theirs, schema)
                assert _rows(theirs, schema, "orders") is None
                continue
            _debezium(engine, schemas, kafka_bootstrap, prefix, theirs, schema)
            for table in TABLES[engine]:
                got = _rows(theirs, schema, table)
                assert got == expected[table], (
                    f"{engine} {'with' if schemas else 'without'} schemas, table {table}:\n"
                    f"cdc's events:      {expected[table]}\nDebezium's events: {got}"
                )
    finally:
        targets.drop()
        _delete_topics(kafka_bootstrap, prefixes)
        if engine == "mariadb":
            _mysql_run(mysql_url, [f"DROP DATABASE IF EXISTS {DATABASE}"])
        else:
            with _pg_admin(pg_url) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
