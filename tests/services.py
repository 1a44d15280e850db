"""Finding the servers integration tests talk to.

Each service (MariaDB/MySQL, PostgreSQL, Kafka) is looked up in this order:

1. an explicit environment variable: ``CDC_TEST_MYSQL_URL``, ``CDC_TEST_PG_URL``, ``CDC_TEST_KAFKA``;
2. the local stack (``make stack-up``): ``CDC_MYSQL_URL`` etc. as printed by ``make stack-env``,
   or ``.stack/env.json``, when its port answers;
3. testcontainers, when a Docker engine answers;
4. otherwise the test is skipped, except under ``CI=true``, where a missing server fails the test.

Drivers are imported lazily so that unit tests never load one.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]

EXPLICIT = {"mysql": "CDC_TEST_MYSQL_URL", "postgres": "CDC_TEST_PG_URL", "kafka": "CDC_TEST_KAFKA"}
STACK_VARS = {"mysql": "CDC_MYSQL_URL", "postgres": "CDC_PG_URL", "kafka": "CDC_KAFKA_BOOTSTRAP"}


@dataclass(frozen=True)
class Found:
    kind: str
    url: str  # for kafka: host:port[,host:port]
    origin: str  # "env", "stack" or "testcontainers"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _host_port(kind: str, url: str) -> tuple[str, int]:
    if kind == "kafka":
        first = url.split(",", maxsplit=1)[0].strip()
        host, _, port = first.rpartition(":")
        return host or "127.0.0.1", int(port or 9092)
    parts = urlsplit(url)
    default = 3306 if kind == "mysql" else 5432
    return parts.hostname or "127.0.0.1", parts.port or default


def answers(kind: str, url: str, timeout: float = 1.0) -> bool:
    host, port = _host_port(kind, url)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _stack_env() -> dict[str, str]:
    path = Path(os.environ.get("CDC_STACK_DIR", ROOT / ".stack")) / "env.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: str(v) for k, v in data.items()}


def docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


_containers: dict[str, Any] = {}


def _start_container(kind: str) -> str:
    """Start a throwaway server with the same settings as the local stack; return its URL."""
    if kind == "mysql":
        from testcontainers.mysql import MySqlContainer

        c = MySqlContainer("mariadb:10.11", username="root", password="cdc", dbname="mysql")
        c.with_command("--server-id=1 --log-bin=mariadb-bin --binlog-format=ROW --binlog-row-image=FULL "
                       "--binlog-row-metadata=FULL --gtid-strict-mode=1 --sync-binlog=1")
        c.start()
        _containers[kind] = c
        return f"mysql://root:cdc@{c.get_container_host_ip()}:{c.get_exposed_port(3306)}/"
    if kind == "postgres":
        from testcontainers.postgres import PostgresContainer

        c = PostgresContainer("postgres:15", username="postgres", password="cdc", dbname="postgres")
        c.with_command("postgres -c wal_level=logical -c max_replication_slots=64 -c max_wal_senders=64")
        c.start()
        _containers[kind] = c
        return f"postgresql://postgres:cdc@{c.get_container_host_ip()}:{c.get_exposed_port(5432)}/postgres"
    from testcontainers.kafka import KafkaContainer

    c = KafkaContainer("confluentinc/cp-kafka:7.7.1").with_kraft()
    c.start()
    _containers[kind] = c
    return str(c.get_bootstrap_server())


def find(kind: str) -> tuple[Found | None, str]:
    """Locate a server of ``kind``; return it, or None and the reason nothing was found."""
    tried: list[str] = []
    explicit = os.environ.get(EXPLICIT[kind])
    if explicit:
        if answers(kind, explicit):
            return Found(kind, explicit, "env"), ""
        # an explicit choice that does not answer is an error, not a reason to look elsewhere
        return None, f"{EXPLICIT[kind]} is set but {_host_port(kind, explicit)} does not answer"
    stack = os.environ.get(STACK_VARS[kind]) or _stack_env().get(STACK_VARS[kind])
    if stack:
        if answers(kind, stack):
            return Found(kind, stack, "stack"), ""
        tried.append(f"the local stack at {_host_port(kind, stack)} does not answer (run `make stack-up`)")
    else:
        tried.append("no local stack is configured (run `make stack-up`)")
    if docker_answers():
        try:
            return Found(kind, _start_container(kind), "testcontainers"), ""
        except Exception as exc:  # a container that fails to start is reported, not hidden
            tried.append(f"testcontainers failed: {type(exc).__name__}: {exc}")
    else:
        tried.append("no Docker engine answers for testcontainers")
    return None, f"no {kind} server: " + "; ".join(tried)


def stop_containers() -> None:
    for c in _containers.values():
        with contextlib.suppress(Exception):
            c.stop()
    _containers.clear()


def mysql_params(url: str, database: str | None = None) -> dict[str, Any]:
    """PyMySQL connect() keyword arguments for a ``mysql://`` URL."""
    p = urlsplit(url)
    db = database if database is not None else (p.path.lstrip("/") or None)
    return {
        "host": p.hostname or "127.0.0.1",
        "port": p.port or 3306,
        "user": unquote(p.username or "root"),
        "password": unquote(p.password or ""),
        "database": db,
        "charset": "utf8mb4",
        "autocommit": True,
    }


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    p = urlsplit(url)
    return p._replace(path="/" + database).geturl()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
