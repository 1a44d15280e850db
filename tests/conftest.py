"""Shared fixtures. Tests under tests/unit are marked ``unit``; under tests/integration, ``integration``.

Integration fixtures hand every test its own database, PostgreSQL database and Kafka
topic prefix, and remove them afterwards. See ``services.py`` for how servers are found.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import services
from hypothesis import HealthCheck, settings

# Property tests check behaviour, never speed: no per-example deadline, which would only make
# them flaky on a loaded 2-core machine.
settings.register_profile("cdc", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("cdc")

TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if TESTS / "integration" in path.parents:
            item.add_marker(pytest.mark.integration)
        elif TESTS / "unit" in path.parents:
            item.add_marker(pytest.mark.unit)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    services.stop_containers()


_found: dict[str, services.Found | None] = {}
_why: dict[str, str] = {}


def _require(kind: str) -> services.Found:
    if kind not in _found:
        _found[kind], _why[kind] = services.find(kind)
    found = _found[kind]
    if found is None:
        if services.in_ci():
            pytest.fail(f"CI=true and {_why[kind]}", pytrace=False)
        pytest.skip(_why[kind])
    return found


def unique(prefix: str = "cdc_t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------- server URLs


@pytest.fixture(scope="session")
def mysql_url() -> str:
    """Admin URL of a MariaDB/MySQL server with ROW binlog (``mysql://root@host:port/``)."""
    return _require("mysql").url


@pytest.fixture(scope="session")
def pg_url() -> str:
    """Admin URL of a PostgreSQL server with ``wal_level=logical``."""
    return _require("postgres").url


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """``host:port`` of a Kafka broker."""
    return _require("kafka").url


# --------------------------------------------------------------------------- per-test resources


@dataclass(frozen=True)
class MySqlDb:
    server_url: str  # admin URL without a database
    name: str  # the test's own database
    url: str  # admin URL pointing at that database

    def connect(self, **kw: Any) -> Any:
        import pymysql

        return pymysql.connect(**{**services.mysql_params(self.server_url, self.name), **kw})


@pytest.fixture
def mysql_db(mysql_url: str) -> Iterator[MySqlDb]:
    """A fresh, empty MariaDB database for this test, dropped afterwards."""
    import pymysql

    name = unique()
    conn = pymysql.connect(**services.mysql_params(mysql_url, database=""))
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield MySqlDb(mysql_url, name, services.with_database(mysql_url, name))
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@dataclass(frozen=True)
class PgDb:
    server_url: str
    name: str
    url: str

    def connect(self, **kw: Any) -> Any:
        import psycopg

        return psycopg.connect(self.url, **{"autocommit": True, **kw})


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[PgDb]:
    """A fresh PostgreSQL database for this test; its replication slots and the database are dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = unique()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield PgDb(pg_url, name, services.with_database(pg_url, name))
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                "WHERE database = %s AND active_pid IS NOT NULL", (name,))
            for _ in range(50):
                slots = admin.execute("SELECT slot_name, active FROM pg_replication_slots WHERE database = %s",
                                      (name,)).fetchall()
                if not any(active for _, active in slots):
                    break
                import time

                time.sleep(0.1)
            for (slot, _active) in slots:
                admin.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def kafka_prefix(kafka_bootstrap: str) -> Iterator[str]:
    """A unique topic prefix for this test; every topic that starts with it is deleted afterwards."""
    prefix = unique()
    yield prefix
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="cdc-tests-cleanup")
    try:
        doomed = [t for t in admin.list_topics() if prefix in t]
        if doomed:
            admin.delete_topics(doomed, timeout_ms=30_000)
    finally:
        admin.close()
