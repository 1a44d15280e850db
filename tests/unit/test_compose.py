"""docker-compose.yml and its files agree with the native local stack (deploy/stack/stack.py) and each other.

No Docker needed: these read the files. stack.py is read as text (not imported) on purpose, so that both
sides of every comparison come from the files that users actually run.
"""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
STACK = ROOT / "deploy" / "stack" / "stack.py"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKER_CFG = ROOT / "deploy" / "docker" / "cdc.yaml"
EXAMPLE_CFG = ROOT / "examples" / "mysql-kafka-postgres.yaml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"

SERVICES = {"mysql", "postgres", "kafka", "prometheus", "grafana", "cdc"}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _services() -> dict[str, Any]:
    services = _load(COMPOSE)["services"]
    assert isinstance(services, dict)
    return services


def _stack_text() -> str:
    return STACK.read_text()


def _stack_settings() -> dict[str, str]:
    """The ``key = value`` lines that stack.py writes into postgresql.conf and my.cnf (as source literals)."""
    settings: dict[str, str] = {}
    for key, value in re.findall(r'"(\w+) = ([^"\\]*)\\n"', _stack_text()):
        settings[key] = value.strip()
    return settings


def _stack_ports() -> dict[str, int]:
    """PG, MYSQL, KAFKA, KAFKA_CONTROLLER -> the default port stack.py uses."""
    pattern = r'^(\w+)_PORT = int\(os\.environ\.get\("CDC_STACK_\w+_PORT", "(\d+)"\)\)'
    ports = {name: int(port) for name, port in re.findall(pattern, _stack_text(), flags=re.MULTILINE)}
    assert {"PG", "MYSQL", "KAFKA"} <= ports.keys(), f"port defaults not found in {STACK}: {ports}"
    return ports


def _published(service: dict[str, Any]) -> dict[int, int]:
    """host port -> container port, from short-syntax "HOST:CONTAINER" entries."""
    out: dict[int, int] = {}
    for entry in service.get("ports", []):
        assert isinstance(entry, str), f"use quoted 'HOST:CONTAINER' port strings, got {entry!r}"
        host, container = entry.rsplit(":", 2)[-2:]
        out[int(host)] = int(container.split("/")[0])
    return out


def _mysql_flags() -> dict[str, str]:
    command = _services()["mysql"]["command"]
    assert isinstance(command, list), "the mysql command should be a list of --flag=value"
    flags: dict[str, str] = {}
    for arg in command:
        assert arg.startswith("--"), f"unexpected mysql argument {arg!r}"
        key, sep, value = arg[2:].partition("=")
        flags[key.replace("-", "_")] = value if sep else "ON"
    return flags


def _postgres_settings() -> dict[str, str]:
    command = _services()["postgres"]["command"]
    assert isinstance(command, list)
    settings: dict[str, str] = {}
    for flag, value in pairwise(command):
        if flag == "-c":
            key, _, val = value.partition("=")
            settings[key] = val
    return settings


def _mount_sources(service: dict[str, Any]) -> dict[str, Path]:
    """container path -> host path, for bind mounts ("./x:/y[:ro]")."""
    out: dict[str, Path] = {}
    for vol in service.get("volumes", []):
        parts = vol.split(":")
        if parts[0].startswith((".", "/")):
            out[parts[1]] = (ROOT / parts[0]).resolve()
    return out


def test_all_services_exist() -> None:
    assert set(_services()) == SERVICES


def test_stack_sets_the_binlog_settings() -> None:
    text = _stack_text()
    for line in (
        "server_id = 1",
        "binlog_format = ROW",
        "binlog_row_image = FULL",
        "binlog_row_metadata = FULL",
        "gtid_strict_mode = 1",
        "sync_binlog = 1",
        "log_bin = ",
        "wal_level = logical",
    ):
        assert line in text, f"{STACK} no longer sets {line!r}; update docker-compose.yml and this test together"


def test_mysql_binlog_settings_match_local_stack() -> None:
    stack = _stack_settings()
    flags = _mysql_flags()
    for key in ("server_id", "binlog_format", "binlog_row_image", "binlog_row_metadata", "sync_binlog"):
        assert key in stack, f"stack.py does not set {key}"
        assert key in flags, f"docker-compose.yml mysql lacks --{key.replace('_', '-')}"
        assert flags[key].upper() == stack[key].upper(), f"{key}: compose {flags[key]!r}, stack {stack[key]!r}"
    assert "log_bin" in stack
    assert flags.get("log_bin"), "the binlog must be enabled (--log-bin=NAME)"
    # MariaDB's gtid_strict_mode has MySQL's GTID mode with enforced consistency as its counterpart.
    assert stack.get("gtid_strict_mode") == "1"
    assert flags.get("gtid_mode") == "ON"
    assert flags.get("enforce_gtid_consistency") == "ON"


def test_mysql_image_and_password() -> None:
    mysql = _services()["mysql"]
    assert str(mysql["image"]).startswith("mysql:8")
    password = mysql["environment"]["MYSQL_ROOT_PASSWORD"]
    assert re.fullmatch(r"\$\{MYSQL_ROOT_PASSWORD:-[^}]+\}", password), password
    assert "healthcheck" in mysql


def test_postgres_logical_wal_matches_local_stack() -> None:
    stack = _stack_settings()
    settings = _postgres_settings()
    assert settings.get("wal_level") == "logical"
    for key in ("wal_level", "max_replication_slots", "max_wal_senders"):
        assert settings.get(key) == stack.get(key), f"{key}: compose {settings.get(key)!r}, stack {stack.get(key)!r}"
    postgres = _services()["postgres"]
    assert str(postgres["image"]).startswith("postgres:15")
    assert "healthcheck" in postgres


@pytest.mark.parametrize(
    ("service", "stack_name", "container_port"),
    [("mysql", "MYSQL", 3306), ("postgres", "PG", 5432), ("kafka", "KAFKA", 29092)],
)
def test_published_ports_equal_local_stack_defaults(service: str, stack_name: str, container_port: int) -> None:
    host_port = _stack_ports()[stack_name]
    assert _published(_services()[service]) == {host_port: container_port}


def test_kafka_is_kraft_with_internal_and_external_listeners() -> None:
    services = _services()
    assert not any("zookeeper" in name for name in services)
    kafka = services["kafka"]
    assert kafka["image"] == "apache/kafka:3.9.1"
    env = {k: str(v) for k, v in kafka["environment"].items()}
    assert "controller" in env["KAFKA_PROCESS_ROLES"].split(",")
    assert "broker" in env["KAFKA_PROCESS_ROLES"].split(",")
    assert not any("ZOOKEEPER" in k for k in env)
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith("1@")
    advertised = dict(item.split("://", 1) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert advertised["INTERNAL"] == "kafka:19092"
    assert advertised["EXTERNAL"] == f"127.0.0.1:{_stack_ports()['KAFKA']}"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    listeners = env["KAFKA_LISTENERS"].split(",")
    assert any(lst.startswith("CONTROLLER://") for lst in listeners)
    for name in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
        assert env[name] == "1"
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    # cdc in its container uses the internal listener
    assert _load(DOCKER_CFG)["bus"]["bootstrap_servers"] == advertised["INTERNAL"]


def test_prometheus_scrapes_the_cdc_metrics_port() -> None:
    services = _services()
    config = _load(PROMETHEUS)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert "cdc" in jobs
    assert jobs["cdc"].get("scrape_interval", config.get("global", {}).get("scrape_interval")) == "5s"
    targets = [t for sc in jobs["cdc"]["static_configs"] for t in sc["targets"]]
    assert len(targets) == 1
    host, port = targets[0].rsplit(":", 1)
    assert host == "cdc" and host in services
    cdc_container_ports = set(_published(services["cdc"]).values())
    assert int(port) in cdc_container_ports
    listen_host, listen_port = _load(DOCKER_CFG)["metrics"]["listen"].rsplit(":", 1)
    assert int(listen_port) == int(port)
    assert listen_host == "0.0.0.0", "inside a container metrics must listen on all interfaces"
    mounts = _mount_sources(services["prometheus"])
    assert mounts["/etc/prometheus/prometheus.yml"] == PROMETHEUS.resolve()


def test_grafana_provisioning() -> None:
    grafana = _services()["grafana"]
    env = {k: str(v) for k, v in grafana["environment"].items()}
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Admin"
    assert _published(grafana) == {3000: 3000}
    mounts = _mount_sources(grafana)
    provisioning = mounts["/etc/grafana/provisioning"]
    assert provisioning == (ROOT / "deploy" / "grafana" / "provisioning").resolve()
    dashboards_dir = mounts["/var/lib/grafana/dashboards"]
    assert dashboards_dir.is_dir()
    datasources = [ds for f in sorted((provisioning / "datasources").glob("*.y*ml")) for ds in _load(f)["datasources"]]
    assert [ds["url"] for ds in datasources if ds["type"] == "prometheus"] == ["http://prometheus:9090"]
    providers = [p for f in sorted((provisioning / "dashboards").glob("*.y*ml")) for p in _load(f)["providers"]]
    assert [p["options"]["path"] for p in providers] == ["/var/lib/grafana/dashboards"]


def test_cdc_service_runs_the_mounted_config() -> None:
    services = _services()
    cdc = services["cdc"]
    assert cdc["build"]["context"] == "."
    assert (ROOT / cdc["build"]["dockerfile"]).resolve() == DOCKERFILE.resolve()
    command = cdc["command"]
    assert command[:2] == ["run", "-c"]
    assert _mount_sources(cdc)[command[2]] == DOCKER_CFG.resolve()
    depends = cdc["depends_on"]
    for name in ("mysql", "postgres", "kafka"):
        assert depends[name]["condition"] == "service_healthy"
        assert "healthcheck" in services[name]
    assert _published(cdc) == {9108: 9108}


def test_dockerfile_entrypoint_is_cdc() -> None:
    text = DOCKERFILE.read_text()
    instructions = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    entrypoints = [line for line in instructions if line.startswith("ENTRYPOINT")]
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0].removeprefix("ENTRYPOINT").strip()) == ["cdc"]
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert "pip install --no-cache-dir ." in text
    for path in ("pyproject.toml", "README.md", "cdc/", "connectors/"):
        assert re.search(rf"^COPY .*\b{re.escape(path)}", text, flags=re.MULTILINE), f"Dockerfile does not copy {path}"


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".stack", ".git", ".pytest_cache"} <= patterns


def test_docker_config_has_the_example_shape() -> None:
    docker = _load(DOCKER_CFG)
    example = _load(EXAMPLE_CFG)
    assert set(docker) == set(example)
    for section in ("source", "bus", "metrics"):
        assert set(docker[section]) == set(example[section]), section
    assert [set(s) for s in docker["sinks"]] == [set(s) for s in example["sinks"]]
    assert docker["source"]["type"] == "mysql"
    assert docker["bus"]["type"] == "kafka"
    # addressed by compose service names, not the host's loopback
    assert "@mysql:3306/" in docker["source"]["url"]
    assert docker["sinks"][0]["url"] == "postgresql://postgres@postgres:5432/postgres"
    for url in (docker["source"]["url"], docker["bus"]["bootstrap_servers"], docker["sinks"][0]["url"]):
        assert "127.0.0.1" not in url and "localhost" not in url
