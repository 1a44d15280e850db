"""The config loader: every shipped file loads, and every mistake is reported at once, without secrets."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from services import ROOT

from cdc import registry
from cdc.config import (
    Config,
    DirectBusConfig,
    KafkaBusConfig,
    SecretUrl,
    load_config,
    parse_config,
)
from cdc.errors import ConfigError
from connectors.mysql.config import MySqlSourceConfig, ZeroDateHandling
from connectors.postgres.config import PostgresSourceConfig
from connectors.sql.config import accepts, sqlalchemy_url

SHIPPED = [*sorted((ROOT / "examples").glob("*.yaml")), ROOT / "deploy" / "docker" / "cdc.yaml"]

BASE: dict[str, Any] = {
    "name": "shop",
    "source": {"type": "mysql", "url": "mysql://cdc@db:3306/", "server_id": 7},
    "bus": {"type": "kafka", "bootstrap_servers": "kafka:9092"},
    "sinks": [{"name": "replica", "url": "postgresql://app@pg:5432/replica"}],
}


def text_of(**sections: Any) -> str:
    """BASE with whole sections replaced (a value of None removes the section), as YAML."""
    data = copy.deepcopy(BASE)
    for key, value in sections.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return yaml.safe_dump(data, sort_keys=False)


def merged(section: str, **keys: Any) -> dict[str, Any]:
    """BASE's ``section`` (a mapping) with ``keys`` added or replaced."""
    return {**copy.deepcopy(BASE[section]), **keys}


def problems_of(text: str, env: dict[str, str] | None = None, base_dir: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env=env or {}, base_dir=base_dir)
    return info.value.problems


# --------------------------------------------------------------------------- shipped files


def test_shipped_files_are_found() -> None:
    assert len(SHIPPED) >= 4, SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_files_load_with_empty_env(path: Path) -> None:
    config = load_config(path, env={})
    assert config.name
    assert config.source.type in registry.SOURCES
    assert config.source.includes(config.source.tables[0].split(".")[0], "anything")
    assert all(s.connector == "sql" for s in config.sinks)
    if isinstance(config.bus, KafkaBusConfig):
        assert config.bus.to_settings().bootstrap_servers == config.bus.bootstrap_servers
    else:
        assert config.sinks, "the direct bus needs a sink"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_files_take_their_urls_from_the_env(path: Path) -> None:
    env = {
        "CDC_MYSQL_URL": "mysql://root:envpw1@10.0.0.1:3306/",
        "CDC_PG_URL": "postgresql://postgres:envpw2@10.0.0.2:5432/postgres",
        "CDC_KAFKA_BOOTSTRAP": "10.0.0.3:9092",
        "CDC_TARGET_PG_URL": "postgresql://app:envpw3@10.0.0.4/shop_replica",
        "CDC_TARGET_MYSQL_URL": "mysql://app:envpw4@10.0.0.5/inventory_replica",
        "MYSQL_ROOT_PASSWORD": "envpw5",
    }
    config = load_config(path, env=env)
    raw = path.read_text()
    used = [value for name, value in env.items() if "${" + name in raw]
    assert used, "every shipped file interpolates something"
    every_url = [config.source.url.get_secret_value(), *(s.url.get_secret_value() for s in config.sinks)]
    if isinstance(config.bus, KafkaBusConfig):
        every_url.append(config.bus.bootstrap_servers)
    for value in used:
        expected = value if "://" in value or ":" in value else f":{value}@"
        assert any(expected in url for url in every_url), (value, every_url)
    for password in ("envpw1", "envpw2", "envpw3", "envpw4", "envpw5"):
        assert password not in repr(config)
        assert password not in str(config)


def test_docker_config_uses_the_compose_password() -> None:
    config = load_config(ROOT / "deploy" / "docker" / "cdc.yaml", env={})
    assert config.source.url.get_secret_value() == "mysql://root:cdc@mysql:3306/"
    assert "root:***@mysql" in repr(config)
    assert config.metrics.host == "0.0.0.0"
    assert config.metrics.port == 9108


# --------------------------------------------------------------------------- defaults


def test_defaults() -> None:
    config = parse_config(text_of(), env={})
    source = config.source
    assert isinstance(source, MySqlSourceConfig)
    assert source.tables == ("*.*",)
    assert source.snapshot == "initial"
    assert source.decimal_handling == "precise"
    assert source.time_precision == "adaptive_time_microseconds"
    assert source.binary_handling == "bytes"
    assert (source.heartbeat_interval_ms, source.max_batch_events, source.snapshot_chunk_rows) == (10000, 5000, 10000)
    assert source.zero_date_handling is ZeroDateHandling.ERROR
    assert source.bigint_unsigned_handling == "precise"
    assert source.gtid is True
    bus = config.bus
    assert isinstance(bus, KafkaBusConfig)
    assert (bus.client, bus.topic_prefix, bus.partitions, bus.replication_factor) == ("kafka-python", "shop", 1, 1)
    assert bus.compression == "lz4"
    sink = config.sinks[0]
    assert (sink.schema_evolution, sink.on_error, sink.tables) == ("basic", "dead_letter", ("*.*",))
    assert sink.dead_letter_topic == "__cdc_dlq.shop.replica"
    assert (config.metrics.listen, config.metrics.enabled) == ("127.0.0.1:9108", True)
    assert (config.log.level, config.log.format) == ("info", "text")
    assert config.topic_prefix == "shop"


def test_postgres_slot_and_publication_derive_from_the_name() -> None:
    source = {"type": "postgres", "url": "postgres://cdc@db/app"}
    config = parse_config(text_of(name="Shop-EU.v2", source=source), env={})
    assert isinstance(config.source, PostgresSourceConfig)
    assert config.source.slot == "cdc_shop_eu_v2"
    assert config.source.publication == "cdc_shop_eu_v2"
    assert config.source.proto_version == 2
    assert config.source.interval_handling == "numeric"
    assert config.source.create_slot and config.source.create_publication


def test_topic_prefix_feeds_the_dead_letter_topic() -> None:
    bus = merged("bus", topic_prefix="eu.shop", compression="none", replication_factor=3, properties={"acks": "all"})
    config = parse_config(text_of(bus=bus), env={})
    assert config.topic_prefix == "eu.shop"
    assert config.sinks[0].dead_letter_topic == "__cdc_dlq.eu.shop.replica"
    settings = config.bus.to_settings() if isinstance(config.bus, KafkaBusConfig) else None
    assert settings is not None
    assert (settings.compression, settings.replication, settings.properties) == (None, 3, {"acks": "all"})


def test_direct_bus_and_sinks_may_be_left_out_with_kafka() -> None:
    config = parse_config(text_of(sinks=None), env={})
    assert config.sinks == []
    direct = parse_config(text_of(bus={"type": "direct", "max_batch_events": 10}), env={})
    assert isinstance(direct.bus, DirectBusConfig)
    assert direct.bus.max_batch_events == 10
    assert direct.topic_prefix == "shop"


def test_null_means_left_out() -> None:
    config = parse_config(text_of() + "metrics:\nlog:\n", env={})
    assert config.metrics.listen == "127.0.0.1:9108"


def test_models_are_frozen() -> None:
    config = parse_config(text_of(), env={})
    with pytest.raises(ValueError, match="frozen"):
        config.name = "other"  # type: ignore[misc]


# --------------------------------------------------------------------------- interpolation


@pytest.mark.parametrize(
    ("template", "env", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("pre-${A}-post", {"A": "x"}, "pre-x-post"),
        ("${A}${B}", {"A": "1", "B": "2"}, "12"),
        ("${A:-fallback}", {}, "fallback"),
        ("${A:-fallback}", {"A": ""}, "fallback"),
        ("${A:-fallback}", {"A": "set"}, "set"),
        ("${A:-}", {}, ""),
        ("${A}", {"A": ""}, ""),
        ("${A:-with spaces: and colons}", {}, "with spaces: and colons"),
        ("$${A}", {"A": "x"}, "${A}"),
        ("$${A} and ${A}", {"A": "x"}, "${A} and x"),
        ("$$ and $A stay", {}, "$$ and $A stay"),
        ("${A}", {"A": "${B}"}, "${B}"),  # a value is not interpolated again
    ],
)
def test_interpolation(template: str, env: dict[str, str], expected: str) -> None:
    bus = merged("bus", properties={"value": template})
    config = parse_config(text_of(bus=bus), env=env)
    assert isinstance(config.bus, KafkaBusConfig)
    assert config.bus.properties["value"] == expected


def test_interpolation_types_values_after_substitution() -> None:
    source = merged("source", server_id="${SID}", gtid="${GTID:-false}")
    config = parse_config(text_of(source=source), env={"SID": "4242"})
    assert isinstance(config.source, MySqlSourceConfig)
    assert (config.source.server_id, config.source.gtid) == (4242, False)


def test_keys_are_not_interpolated() -> None:
    bus = merged("bus", properties={"${A}": "v"})
    config = parse_config(text_of(bus=bus), env={"A": "x"})
    assert isinstance(config.bus, KafkaBusConfig)
    assert config.bus.properties == {"${A}": "v"}


def test_unset_variable_names_variable_and_key_path() -> None:
    sinks = [{"name": "replica", "url": "postgresql://app:${TARGET_PW}@pg/replica"}]
    problems = problems_of(text_of(sinks=sinks))
    assert problems == [
        "sinks[0].url: environment variable TARGET_PW is not set (give a default with ${TARGET_PW:-...})"
    ]


@pytest.mark.parametrize(
    ("template", "fragment"),
    [("${A", "without a closing"), ("${1A}", "not a variable reference"), ("${}", "not a variable reference")],
)
def test_malformed_references(template: str, fragment: str) -> None:
    problems = problems_of(text_of(bus=merged("bus", properties={"v": template})))
    assert len(problems) == 1
    assert problems[0].startswith("bus.properties.v: ")
    assert fragment in problems[0]


# --------------------------------------------------------------------------- secrets


def test_url_file_and_password_file_relative_to_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "source-url").write_text("  mysql://cdc@db:3306/  \n")
    (tmp_path / "secrets" / "pw").write_text("p@ss:w/rd#1\n")
    source = {"type": "mysql", "url_file": "secrets/source-url", "password_file": "secrets/pw", "server_id": 9}
    sinks = [{"name": "replica", "url": "postgresql://app@pg/replica", "password_file": "secrets/pw"}]
    (tmp_path / "cdc.yaml").write_text(text_of(source=source, sinks=sinks))
    monkeypatch.chdir(ROOT)  # relative paths follow the config file, not the working directory

    config = load_config(tmp_path / "cdc.yaml", env={})

    assert config.source.url.get_secret_value() == "mysql://cdc:p%40ss%3Aw%2Frd%231@db:3306/"
    assert config.sinks[0].url.get_secret_value() == "postgresql://app:p%40ss%3Aw%2Frd%231@pg/replica"
    assert config.source.url_file == tmp_path / "secrets" / "source-url"
    for text in (repr(config), str(config), config.model_dump_json()):
        assert "p@ss" not in text and "p%40ss" not in text
        assert "mysql://cdc:***@db:3306/" in text


def test_secret_url_hides_its_password() -> None:
    url = SecretUrl("postgresql://app:hunter2@pg/db?password=hunter3")
    for text in (repr(url), str(url), url.redacted):
        assert "hunter" not in text
    assert url.get_secret_value().startswith("postgresql://app:hunter2@")
    assert (url.scheme, url.dialect) == ("postgresql", "postgresql")
    assert SecretUrl("mysql+pymysql://h/").dialect == "mysql"


def test_kafka_secret_properties_are_masked() -> None:
    bus = merged("bus", properties={"sasl.password": "${KPW}", "sasl_plain_password": "x2", "acks": "all"})
    config = parse_config(text_of(bus=bus), env={"KPW": "kafkasecret"})
    assert "kafkasecret" not in repr(config)
    assert "x2" not in repr(config)
    assert "kafkasecret" not in config.model_dump_json()
    assert isinstance(config.bus, KafkaBusConfig)
    assert config.bus.to_settings().properties["sasl.password"] == "kafkasecret"


def test_secret_file_problems(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "pw").write_text("s3cr3t-pw")
    source = {"type": "mysql", "url_file": "nowhere", "server_id": 1}
    sinks = [
        {"name": "a", "url": "postgresql://app@pg/a", "url_file": "empty"},
        {"name": "b", "url_file": "empty"},
        {"name": "c", "url": "postgresql://app:inline-pw@pg/c", "password_file": "pw"},
        {"name": "d", "url": "sqlite:///d.db", "password_file": "pw"},
        {"name": "e", "url": "postgresql://app@pg/e", "password_file": "missing-pw"},
        {"name": "f"},
    ]
    problems = problems_of(text_of(source=source, sinks=sinks), base_dir=tmp_path)
    assert problems == [
        f"source.url_file: cannot read {tmp_path / 'nowhere'}: no such file",
        "sinks[0].url_file: give either url or url_file, not both",
        f"sinks[1].url_file: {tmp_path / 'empty'} is empty",
        "sinks[2].password_file: the URL already contains a password; give it in one place only",
        "sinks[3].password_file: the URL names no user for the password (write it as scheme://USER@host/...)",
        f"sinks[4].password_file: cannot read {tmp_path / 'missing-pw'}: no such file",
        "sinks[5].url: required (or give url_file)",
    ]


def test_no_secret_in_any_problem(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("file-secret")
    source = {"type": "postgres", "url": "mysql://u:inline-secret@db/", "password_file": "pw"}
    sinks = [
        {"name": "a", "url": "kafka://u:sink-secret@k/"},
        {"name": "b", "url": "postgresql://u:port-secret@pg:notaport/x"},
        {"name": "c", "url": "not a url, env-secret"},
    ]
    text = text_of(source=source, sinks=sinks, bus=merged("bus", bootstrap_servers="${KSECRET}"))
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={"KSECRET": "k:1"}, base_dir=tmp_path)
    message = str(info.value)
    assert "source.url: a postgres source needs a postgresql:// or postgres:// URL" in message
    assert "sinks[0].url: kafka:// is not a supported target" in message
    assert "sinks[1].url: has an invalid host or port" in message
    assert "sinks[2].url: is not a URL" in message
    for secret in ("inline-secret", "file-secret", "sink-secret", "port-secret", "env-secret"):
        assert secret not in message


# --------------------------------------------------------------------------- unknown keys


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"nmae": "x"}, "nmae: unknown key; did you mean 'name'?"),
        ({"sink": []}, "sink: unknown key; did you mean 'sinks'?"),
        ({"source": merged("source", tabels=["a.b"])}, "source.tabels: unknown key; did you mean 'tables'?"),
        ({"source": merged("source", serverid=3)}, "source.serverid: unknown key; did you mean 'server_id'?"),
        ({"bus": merged("bus", compresion="lz4")}, "bus.compresion: unknown key; did you mean 'compression'?"),
        (
            {"bus": {"type": "direct", "bootstrap_servers": "k:1"}},
            "bus.bootstrap_servers: unknown key for type direct (it is a key of type kafka)",
        ),
        (
            {"sinks": [{"name": "a", "url": "sqlite://", "nmae": "b"}]},
            "sinks[0].nmae: unknown key; did you mean 'name'?",
        ),
        (
            {"sinks": [{"name": "a", "url": "sqlite://", "schema_evolutoin": "none"}]},
            "sinks[0].schema_evolutoin: unknown key; did you mean 'schema_evolution'?",
        ),
        (
            {"source": merged("source", slot="s")},
            "source.slot: unknown key for type mysql (it is a key of type postgres)",
        ),
        ({"metrics": {"listne": "a:1"}}, "metrics.listne: unknown key; did you mean 'listen'?"),
        ({"log": {"colour": "no"}}, "log.colour: unknown key; valid keys are level, format"),
    ],
)
def test_unknown_keys_suggest_the_closest(sections: dict[str, Any], expected: str) -> None:
    assert problems_of(text_of(**sections)) == [expected]


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        (
            {"source": merged("source", snapshot="inital")},
            "source.snapshot: must be one of initial, never, always (got 'inital')",
        ),
        (
            {"source": merged("source", decimal_handling="float")},
            "source.decimal_handling: must be one of precise, string, double (got 'float')",
        ),
        (
            {"source": {"type": "oracle", "url": "oracle://h/"}},
            "source.type: must be one of mysql, postgres (got 'oracle')",
        ),
        ({"source": {"url": "mysql://h/"}}, "source.type: required (one of mysql, postgres)"),
        ({"source": None}, "source: required"),
        ({"bus": {"type": "rabbit"}}, "bus.type: must be one of kafka, direct (got 'rabbit')"),
        ({"name": "my shop"}, "name: must be 1 to 200 letters, digits, '.', '_' or '-' (it is part of topic names)"),
        ({"source": merged("source", server_id=0)}, "source.server_id: must be at least 1 (got 0) (a number from 1"),
        ({"source": merged("source", server_id=2**32)}, "source.server_id: must be at most 4294967295"),
        ({"source": merged("source", server_id="x")}, "source.server_id: must be a whole number (got 'x')"),
        ({"source": merged("source", gtid="maybe")}, "source.gtid: must be true or false (got 'maybe')"),
        ({"source": merged("source", tables="shop.*")}, "source.tables: must be a list (got 'shop.*')"),
        (
            {"source": merged("source", tables=["shop"])},
            "source.tables[0]: must be a pattern of the form database.table",
        ),
        (
            {"source": merged("source", exclude_columns=["shop.t"])},
            "source.exclude_columns[0]: must be a pattern of the form database.table.column",
        ),
        (
            {"source": merged("source", key_columns={"shop.t": []})},
            "source.key_columns['shop.t']: must have at least 1",
        ),
        ({"source": merged("source", key_columns={"t": ["id"]})}, "source.key_columns.t: must be a pattern"),
        ({"bus": merged("bus", bootstrap_servers="kafka")}, "bus.bootstrap_servers: 'kafka' is not host:port"),
        ({"bus": merged("bus", partitions=0)}, "bus.partitions: must be at least 1 (got 0)"),
        ({"bus": merged("bus", client="librdkafka")}, "bus.client: must be one of kafka-python, confluent-kafka"),
        ({"bus": merged("bus", properties={"x": [1]})}, "bus.properties: 'x' must be a string, number or boolean"),
        ({"metrics": {"listen": "9108"}}, "metrics.listen: must be host:port, e.g. 127.0.0.1:9108 (got '9108')"),
        ({"log": {"level": "loud"}}, "log.level: must be one of debug, info, warning, error (got 'loud')"),
        ({"sinks": {"name": "a"}}, "sinks: must be a list (got a mapping)"),
        ({"sinks": ["a"]}, "sinks[0]: must be a mapping (got 'a')"),
        ({"bus": {"type": "direct"}, "sinks": []}, "sinks: bus.type direct needs at least one sink"),
        ({"sinks": [{"name": "a", "url": "redis://r/"}]}, "sinks[0].url: redis:// is not a supported target"),
        ({"sinks": [{"name": "a", "url": "mysql://u@db:3306/"}]}, "sinks[0].url: a MySQL/MariaDB target URL must"),
    ],
)
def test_bad_values(sections: dict[str, Any], expected: str) -> None:
    problems = problems_of(text_of(**sections))
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems[0]


def test_missing_server_id_explains_itself() -> None:
    source = {"type": "mysql", "url": "mysql://cdc@db/"}
    (problem,) = problems_of(text_of(source=source))
    assert problem.startswith("source.server_id: required (a number from 1 to 4294967295")
    assert "replica" in problem


def test_duplicate_sink_names() -> None:
    sinks = [
        {"name": "replica", "url": "postgresql://app@pg/a"},
        {"name": "other", "url": "sqlite:///b.db"},
        {"name": "replica", "url": "mysql://app@my/c"},
    ]
    assert problems_of(text_of(sinks=sinks)) == ["sinks[2].name: duplicate sink name 'replica' (also sinks[0].name)"]


def test_duplicate_sink_names_through_model_validate() -> None:
    data = yaml.safe_load(text_of(sinks=[{"name": "a", "url": "sqlite://"}, {"name": "a", "url": "sqlite://"}]))
    with pytest.raises(ValueError, match="duplicate sink name"):
        Config.model_validate(data)


def test_five_mistakes_in_one_file_are_one_error() -> None:
    text = """\
name: shop
source:
  type: mysql
  url: mysql://cdc@db/
  server_id: 7
  snapshot: inital
bus:
  type: kafka
  bootstrap_servers: kafka:9092
  compresion: lz4
sinks:
  - name: replica
    url: postgresql://app@pg/replica
  - name: replica
    url: mysql://app@my/replica
    nmae: x
metrics:
  listen: ${METRICS_ADDR}
"""
    problems = problems_of(text)
    assert problems == [
        "source.snapshot: must be one of initial, never, always (got 'inital')",
        "bus.compresion: unknown key; did you mean 'compression'?",
        "sinks[1].name: duplicate sink name 'replica' (also sinks[0].name)",
        "sinks[1].nmae: unknown key; did you mean 'name'?",
        "metrics.listen: environment variable METRICS_ADDR is not set (give a default with ${METRICS_ADDR:-...})",
    ]


# --------------------------------------------------------------------------- YAML


def test_yaml_syntax_error_is_one_problem_with_position() -> None:
    text = "name: shop\nsource:\n  type: mysql\n  url: [mysql://h/\nbus: {type: direct}\n"
    (problem,) = problems_of(text)
    assert problem.startswith("line 5, column 4: YAML syntax error:"), problem
    assert "Traceback" not in problem


def test_yaml_duplicate_key_is_a_problem() -> None:
    text = text_of() + "name: again\n"
    line = len(text.splitlines())
    assert problems_of(text) == [f"line {line}, column 1: key 'name' is given twice in the same mapping"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the configuration is empty"),
        ("# only a comment\n", "the configuration is empty"),
        ("- a\n- b\n", "the configuration must be a mapping of keys (name, source, bus, ...), not a list"),
        ("just text", "the configuration must be a mapping of keys (name, source, bus, ...), not 'just text'"),
        ("a: 1\n---\nb: 2\n", "line 2, column 1: YAML syntax error:"),
    ],
)
def test_not_a_config(text: str, expected: str) -> None:
    (problem,) = problems_of(text)
    assert problem.startswith(expected)


@pytest.mark.parametrize(
    "text",
    [
        "1: 2",
        "name: [1]\nsource: 5\nbus: []\nsinks: [5, null, {}]\nmetrics: x\nlog: [1]\n",
        "name: x\nsource: {type: [mysql]}\nbus: {type: {a: 1}}\n",
        "name: x\nsource: {type: postgres, url: 5, url_file: [], password_file: 7, proto_version: two}\n"
        "bus: {type: kafka}\n",
        "? [a, b]\n: 1\n",
    ],
)
def test_garbage_raises_only_config_error(text: str) -> None:
    assert problems_of(text)


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert info.value.problems == [f"{tmp_path / 'nope.yaml'}: no such file"]


# --------------------------------------------------------------------------- registry and connectors


def test_registry_models_and_lazy_loading() -> None:
    assert registry.source_config_model("mysql") is MySqlSourceConfig
    assert registry.source_config_model("postgres") is PostgresSourceConfig
    with pytest.raises(ConfigError, match="unknown connector 'oracle'; choose one of mysql, postgres"):
        registry.source_config_model("oracle")
    assert registry.sink_type_for_url("mariadb+pymysql://h/db") == "sql"
    assert registry.sink_type_for_url("kafka://h/") is None


def test_load_source_failure_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "connectors.mysql.source", None)  # import fails as if missing
    with pytest.raises(ConfigError, match=r"source\.type: the mysql connector cannot be loaded"):
        registry.load_source("mysql")
    monkeypatch.setitem(sys.modules, "connectors.sql.sink", None)
    with pytest.raises(ConfigError, match="sinks: the sql connector cannot be loaded"):
        registry.load_sink()


@pytest.mark.parametrize(
    "first", ["connectors.mysql.config", "connectors.postgres.config", "cdc.registry", "cdc.config"]
)
def test_any_import_order_works_and_loads_no_driver(first: str) -> None:
    code = (
        f"import sys, {first}\n"
        "from cdc.config import parse_config\n"
        "from connectors.postgres.config import PostgresSourceConfig\n"
        "drivers = ('pymysql', 'pymysqlreplication', 'psycopg', 'kafka', 'sqlalchemy', 'confluent_kafka')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in drivers))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("scheme", "ok"),
    [
        ("postgresql", True),
        ("postgres", True),
        ("mysql+pymysql", True),
        ("MariaDB", True),
        ("sqlite", True),
        ("postgresql+", False),
        ("kafka", False),
        ("", False),
    ],
)
def test_sql_sink_schemes(scheme: str, ok: bool) -> None:
    assert accepts(scheme) is ok


def test_sqlalchemy_url() -> None:
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url("mysql://u@h/db") == "mysql+pymysql://u@h/db"
    assert sqlalchemy_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert sqlalchemy_url("sqlite:///x.db") == "sqlite:///x.db"


def test_source_table_filters() -> None:
    source = merged(
        "source",
        tables=["shop.*", "crm.customers"],
        exclude_tables=["shop.tmp_*"],
        exclude_columns=["*.*.password_hash"],
    )
    config = parse_config(text_of(source=source), env={})
    assert config.source.includes("shop", "orders")
    assert config.source.includes("crm", "customers")
    assert not config.source.includes("shop", "tmp_1")
    assert not config.source.includes("crm", "leads")
    assert config.source.excludes_column("crm", "customers", "password_hash")
    assert not config.source.excludes_column("crm", "customers", "email")


@pytest.mark.parametrize(
    ("text", "mode"), [("null", "null"), ('"null"', "null"), ("debezium", "debezium"), (None, "error")]
)
def test_zero_date_handling_null_in_yaml_is_the_null_mode(text: str | None, mode: str) -> None:
    """Elsewhere a YAML null means "left out"; `zero_date_handling: null` names the mode the user wrote."""
    line = f"  zero_date_handling: {text}\n" if text is not None else ""
    cfg = parse_config(
        f"name: t\nsource:\n  type: mysql\n  url: mysql://root@h:3306/\n  server_id: 5\n{line}"
        "bus:\n  type: kafka\n  bootstrap_servers: k:9092\n",
        env={},
    )
    assert str(cfg.source.zero_date_handling) == mode  # type: ignore[union-attr]
