"""The typed configuration: YAML in, one frozen :class:`Config` out, or every problem at once.

Entry points: :func:`load_config` (a file) and :func:`parse_config` (text). Both either return
a valid :class:`Config` or raise one :class:`~cdc.errors.ConfigError` whose ``problems`` list
every problem found, one line each, as ``<key path>: <what is wrong>``::

    sinks[0].nmae: unknown key; did you mean 'name'?
    source.snapshot: must be one of initial, never, always (got 'inital')

No other exception escapes for a bad file: YAML syntax errors become one problem with line
and column, and pydantic's ``ValidationError`` is translated here.

Processing order (each step adds problems and goes on, so that one run reports them all):

1. YAML (``safe_load`` semantics; a key given twice in one mapping is a problem).
2. ``${VAR}`` / ``${VAR:-default}`` in every string value (never in keys): ``${VAR}`` is the
   variable's value (set but empty is fine), ``${VAR:-default}`` uses ``default`` when VAR is
   unset or empty, ``$${`` is a literal ``${``. A default cannot contain ``}`` and references
   do not nest. An unset variable without default is a problem naming it and its key path.
3. Secrets in ``source`` and every sink: ``url_file`` (the file's stripped content is the URL)
   instead of ``url``, and ``password_file`` (its content without the trailing newline is put
   into the URL as the password, URL-quoted). Relative paths are relative to the directory of
   the config file (``base_dir`` for :func:`parse_config`).
4. Cross-section rules: sink names are unique; ``bus.type: direct`` needs a sink.
5. The models below (pydantic v2, ``extra="forbid"``, frozen). Defaults derived from ``name``
   (``bus.topic_prefix``, PostgreSQL ``slot``/``publication``, sinks' ``dead_letter_topic``)
   are filled in before validation. A key whose value is null counts as left out.

Secrets never show: URLs are held as :class:`SecretUrl` (``repr``/``str`` print ``***`` for the
password), Kafka ``properties`` with secret-looking names are masked in ``repr``, problems
never quote a URL's value, and :class:`~cdc.errors.ConfigError` redacts every line again.

Connectors own their source models (``connectors/<name>/config.py``, listed in
:mod:`cdc.registry`); they derive from :class:`SourceConfigBase`. This module imports no
database driver.
"""

from __future__ import annotations

import difflib
import functools
import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from fnmatch import fnmatchcase
from os import environ
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union, get_args, get_origin
from urllib.parse import quote, urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import core_schema

from cdc import registry
from cdc.errors import ConfigError, redact, redact_url
from cdc.values import BinaryHandling, DecimalHandling, TimePrecision

if TYPE_CHECKING:
    from cdc.bus.kafka import KafkaSettings

__all__ = [
    "BackupRetentionConfig",
    "BackupsConfig",
    "Config",
    "ConfigModel",
    "DirectBusConfig",
    "KafkaBusConfig",
    "LogConfig",
    "MetricsConfig",
    "SecretUrl",
    "SinkConfig",
    "SourceConfigBase",
    "load_config",
    "parse_config",
]


# ---------------------------------------------------------------------------------------------
# Building blocks shared by every section (and by the connectors' source models)
# ---------------------------------------------------------------------------------------------

_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")


class SecretUrl:
    """A connection URL that may carry a password.

    ``repr()`` and ``str()`` show it with the password replaced by ``***``; only
    :meth:`get_secret_value` returns it whole. In a model it accepts a string of the form
    ``scheme://...`` (or a :class:`SecretUrl`) and serializes to the redacted form in JSON mode.
    Validation messages never quote the value.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        """The URL as given, password included. Hand it to a driver, never to a log."""
        return self._value

    @property
    def redacted(self) -> str:
        """The URL with its password (and any ``password=`` query value) shown as ``***``."""
        return redact(redact_url(self._value))

    @property
    def scheme(self) -> str:
        """The scheme in lower case, driver included: ``mysql+pymysql``."""
        return self._value.split("://", 1)[0].lower()

    @property
    def dialect(self) -> str:
        """The scheme without its ``+driver`` part: ``mysql``."""
        return self.scheme.split("+", 1)[0]

    def __repr__(self) -> str:
        return f"SecretUrl({self.redacted!r})"

    def __str__(self) -> str:
        return self.redacted

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretUrl) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def _validate(cls, value: Any) -> SecretUrl:
        if isinstance(value, SecretUrl):
            return value
        if not isinstance(value, str):
            raise ValueError(f"must be a URL string (got {_show(value)})")
        text = value.strip()
        if not text:
            raise ValueError("must not be empty")
        if not _URL_SCHEME.match(text):
            raise ValueError("is not a URL (expected scheme://user@host:port/database)")
        try:
            urlsplit(text).port  # noqa: B018 - parsing the port is the check
        except ValueError:
            raise ValueError("has an invalid host or port") from None
        return cls(text)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda v: v.redacted, when_used="json"),
        )


class ConfigModel(BaseModel):
    """Base of every config section: frozen, unknown keys forbidden, null means "left out"."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    #: Extra sentence appended to any problem with these fields (``{field: hint}``).
    hints: ClassVar[Mapping[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


_PIPELINE_ID = re.compile(r"[A-Za-z0-9_.\-]+")
_TOPIC = re.compile(r"[A-Za-z0-9_.\-]{1,249}")
_HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):(?P<port>\d{1,5})")


def _pipeline_id(value: str) -> str:
    if not _PIPELINE_ID.fullmatch(value) or len(value) > 200:
        raise ValueError(
            f"must be 1 to 200 letters, digits, '.', '_' or '-' (it is part of topic names) (got {_show(value)})"
        )
    return value


def _topic(value: str) -> str:
    if not _TOPIC.fullmatch(value):
        raise ValueError(f"must be a Kafka topic name: 1 to 249 letters, digits, '.', '_' or '-' (got {_show(value)})")
    return value


def _table_pattern(value: str) -> str:
    schema, dot, table = value.partition(".")
    if not dot or not schema or not table:
        raise ValueError(f"must be a pattern of the form database.table, e.g. 'shop.*' (got {_show(value)})")
    return value


def _column_pattern(value: str) -> str:
    schema, _, rest = value.partition(".")
    table, dot, column = rest.partition(".")
    if not dot or not schema or not table or not column:
        raise ValueError(f"must be a pattern of the form database.table.column (got {_show(value)})")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _scalars_as_text(value: Any) -> Any:
    """Mapping values given as YAML numbers or booleans become their text (``true``, ``604800000``)."""
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    for k, v in value.items():
        if isinstance(v, bool):
            out[k] = "true" if v else "false"
        elif isinstance(v, int | float):
            out[k] = str(v)
        else:
            out[k] = v
    return out


PipelineId = Annotated[str, AfterValidator(_pipeline_id)]
TopicName = Annotated[str, AfterValidator(_topic)]
TablePattern = Annotated[str, AfterValidator(_table_pattern)]
ColumnPattern = Annotated[str, AfterValidator(_column_pattern)]
Text = Annotated[str, AfterValidator(_not_blank)]


def _sanitize(value: Any, fallback: str) -> str:
    """A valid pipeline id derived from anything (for defaults derived from an invalid name)."""
    text = re.sub(r"[^A-Za-z0-9_.\-]", "_", value) if isinstance(value, str) else ""
    return text[:200] or fallback


def _missing(value: Any) -> bool:
    return value is None


class SourceConfigBase(ConfigModel):
    """Keys every source has; each connector's model adds its own and narrows ``type``.

    ``tables``, ``exclude_tables`` are fnmatch patterns over ``database.table`` (MySQL) or
    ``schema.table`` (PostgreSQL), matched case-sensitively; ``exclude_columns`` patterns
    are ``database.table.column``. See :meth:`includes` and :meth:`excludes_column`.
    """

    type: str
    url: SecretUrl
    url_file: Path | None = None
    password_file: Path | None = None
    tables: tuple[TablePattern, ...] = ("*.*",)
    exclude_tables: tuple[TablePattern, ...] = ()
    exclude_columns: tuple[ColumnPattern, ...] = ()
    snapshot: Literal["initial", "never", "always"] = "initial"
    decimal_handling: DecimalHandling = DecimalHandling.PRECISE
    time_precision: TimePrecision = TimePrecision.ADAPTIVE_TIME_MICROSECONDS
    binary_handling: BinaryHandling = BinaryHandling.BYTES
    heartbeat_interval_ms: int = Field(10_000, ge=0)
    max_batch_events: int = Field(5_000, ge=1)
    snapshot_chunk_rows: int = Field(10_000, ge=1)
    key_columns: dict[TablePattern, Annotated[tuple[Text, ...], Field(min_length=1)]] = Field(default_factory=dict)

    #: URL dialects (scheme without ``+driver``) this source accepts; set by each connector.
    url_dialects: ClassVar[tuple[str, ...]] = ()

    @field_validator("url")
    @classmethod
    def _check_url_dialect(cls, url: SecretUrl) -> SecretUrl:
        if cls.url_dialects and url.dialect not in cls.url_dialects:
            wanted = " or ".join(f"{d}://" for d in cls.url_dialects)
            raise ValueError(
                f"a {cls.model_fields['type'].default} source needs a {wanted} URL (optionally with +driver), "
                f"not {url.scheme}://"
            )
        return url

    @classmethod
    def with_pipeline_defaults(cls, data: dict[str, Any], pipeline: str) -> dict[str, Any]:
        """Fill in defaults that derive from the pipeline ``name`` (``data`` is the raw section, a copy)."""
        return data

    def includes(self, schema: str, table: str) -> bool:
        """Whether ``schema.table`` is captured: it matches ``tables`` and no ``exclude_tables``."""
        name = f"{schema}.{table}"
        return any(fnmatchcase(name, p) for p in self.tables) and not any(
            fnmatchcase(name, p) for p in self.exclude_tables
        )

    def excludes_column(self, schema: str, table: str, column: str) -> bool:
        """Whether ``column`` of ``schema.table`` is left out of events (matches ``exclude_columns``)."""
        name = f"{schema}.{table}.{column}"
        return any(fnmatchcase(name, p) for p in self.exclude_columns)


# ---------------------------------------------------------------------------------------------
# Bus, sinks, metrics, log
# ---------------------------------------------------------------------------------------------

_SECRET_PROPERTY = re.compile(r"(?i)pass|secret|token|jaas|credential|private|(^|[._])key($|[._])")


def _mask_properties(value: dict[str, Any]) -> dict[str, Any]:
    """Client properties with the values of secret-looking names (``sasl.password``, ``ssl.key...``) as ``***``."""
    return {k: "***" if _SECRET_PROPERTY.search(k) else v for k, v in value.items()}


class KafkaBusConfig(ConfigModel):
    """``bus: {type: kafka}``: change events go through Kafka topics ``<topic_prefix>.<db>.<table>``."""

    type: Literal["kafka"] = "kafka"
    bootstrap_servers: str
    client: Literal["kafka-python", "confluent-kafka"] = "kafka-python"
    topic_prefix: TopicName
    partitions: int = Field(1, ge=1)
    replication_factor: int = Field(1, ge=1)
    compression: Literal["none", "lz4", "zstd", "gzip", "snappy"] = "lz4"
    linger_ms: int = Field(5, ge=0)
    batch_bytes: int = Field(512 * 1024, ge=1)
    exactly_once: bool = False
    schemas: bool = False
    offset_flush_ms: int = Field(1_000, ge=1)
    transaction_ms: int = Field(100, ge=1)
    topic_config: dict[Text, str] = Field(default_factory=dict)
    properties: dict[Text, Any] = Field(default_factory=dict)

    @field_validator("bootstrap_servers", mode="before")
    @classmethod
    def _join_list(cls, value: Any) -> Any:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ",".join(value)
        return value

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_servers(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers:
            raise ValueError("must name at least one host:port")
        for server in servers:
            match = _HOST_PORT.fullmatch(server)
            if match is None or not 0 < int(match["port"]) < 65536:
                raise ValueError(f"{server!r} is not host:port (e.g. 127.0.0.1:9092)")
        return ",".join(servers)

    @field_validator("topic_config", mode="before")
    @classmethod
    def _topic_config_text(cls, value: Any) -> Any:
        return _scalars_as_text(value)

    @field_validator("properties")
    @classmethod
    def _check_properties(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, item in value.items():
            if not isinstance(item, str | int | float | bool):
                raise ValueError(f"{key!r} must be a string, number or boolean (got {_show(item)})")
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, _mask_properties(value) if name == "properties" else value

    @field_serializer("properties", when_used="json")
    def _properties_json(self, value: dict[str, Any]) -> dict[str, Any]:
        return _mask_properties(value)

    def to_settings(self) -> KafkaSettings:
        """The settings :mod:`cdc.bus.kafka` works with (``replication_factor`` → ``replication``,
        ``compression: none`` → ``None``)."""
        from cdc.bus.kafka import KafkaSettings

        return KafkaSettings(
            bootstrap_servers=self.bootstrap_servers,
            client=self.client,
            partitions=self.partitions,
            replication=self.replication_factor,
            compression=None if self.compression == "none" else self.compression,
            linger_ms=self.linger_ms,
            batch_bytes=self.batch_bytes,
            exactly_once=self.exactly_once,
            schemas=self.schemas,
            offset_flush_ms=self.offset_flush_ms,
            transaction_ms=self.transaction_ms,
            topic_config=dict(self.topic_config),
            properties=dict(self.properties),
        )


class DirectBusConfig(ConfigModel):
    """``bus: {type: direct}``: no Kafka; source and sinks run in one process, positions kept in the targets."""

    type: Literal["direct"] = "direct"
    max_batch_events: int = Field(5_000, ge=1)


class SinkConfig(ConfigModel):
    """One entry of ``sinks``: a target that applies the source's tables.

    The connector that serves it follows from the URL's scheme (:attr:`connector`); today that
    is the SQLAlchemy sink for ``postgresql``, ``postgres``, ``mysql``, ``mariadb`` and ``sqlite``.
    """

    name: PipelineId
    url: SecretUrl
    url_file: Path | None = None
    password_file: Path | None = None
    tables: tuple[TablePattern, ...] = ("*.*",)
    schema_evolution: Literal["none", "basic"] = "basic"
    on_error: Literal["fail", "dead_letter"] = "dead_letter"
    dead_letter_topic: TopicName
    batch_size: int = Field(1_000, ge=1)
    table_map: dict[TablePattern, Text] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _check_target(cls, url: SecretUrl) -> SecretUrl:
        if registry.sink_type_for_url(url.get_secret_value()) is None:
            schemes = ", ".join(registry.sink_schemes())
            raise ValueError(
                f"{url.scheme}:// is not a supported target; use a SQLAlchemy URL with scheme {schemes} "
                "(optionally with +driver)"
            )
        if url.dialect in ("mysql", "mariadb"):
            path = urlsplit(url.get_secret_value()).path.strip("/")
            if not path:
                raise ValueError(
                    "a MySQL/MariaDB target URL must name a database (mysql://user@host:3306/DATABASE): the sink "
                    "keeps its applied positions there, and tables go to the database named after their source "
                    "schema or database"
                )
        return url

    @property
    def connector(self) -> str:
        """The key in :data:`cdc.registry.SINKS` of the connector serving this sink."""
        kind = registry.sink_type_for_url(self.url.get_secret_value())
        assert kind is not None  # checked on validation
        return kind

    def includes(self, table: str) -> bool:
        """Whether this sink applies source table ``table`` (``database.table``)."""
        return any(fnmatchcase(table, p) for p in self.tables)


class MetricsConfig(ConfigModel):
    """``metrics``: the Prometheus endpoint ``http://<listen>/metrics``."""

    listen: str = "127.0.0.1:9108"
    enabled: bool = True

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        match = _HOST_PORT.fullmatch(value.strip())
        if match is None or int(match["port"]) > 65535:
            raise ValueError(f"must be host:port, e.g. 127.0.0.1:9108 (got {_show(value)})")
        return value.strip()

    @property
    def host(self) -> str:
        """The host or address to bind, without IPv6 brackets."""
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        """The TCP port (0 picks a free one)."""
        return int(self.listen.rsplit(":", 1)[1])


class LogConfig(ConfigModel):
    """``log``: what the process writes to stderr."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


_SCHEDULE = re.compile(r"(?:every\s+)?(?P<n>\d+)\s*(?P<unit>m|min|mins|minutes?|h|hours?)", re.IGNORECASE)


def _schedule(value: str) -> str:
    match = _SCHEDULE.fullmatch(value.strip())
    if match is None or int(match["n"]) < 1:
        raise ValueError(f"must be every N minutes or hours, e.g. '30m' or '6h' (got {_show(value)})")
    unit = "h" if match["unit"].lower().startswith("h") else "m"
    return f"{int(match['n'])}{unit}"


def _local_destination(value: Any) -> Any:
    if isinstance(value, str) and re.match(r"[A-Za-z][A-Za-z0-9+.\-]*://", value):
        if value.lower().startswith("file://"):
            return value[len("file://") :]
        raise ValueError(f"must be a local directory; {value.split('://', 1)[0]}:// destinations are not supported yet")
    return value


Schedule = Annotated[str, AfterValidator(_schedule)]


class BackupRetentionConfig(ConfigModel):
    """``backups.retention``: which complete backups ``cdc backup prune`` keeps (the union of the three rules).

    ``keep_last`` the newest N; ``keep_daily`` the newest backup of each of the N most recent UTC days
    that have one; ``keep_weekly`` likewise per ISO week. The newest complete backup is always kept.
    """

    keep_last: int = Field(7, ge=0)
    keep_daily: int = Field(7, ge=0)
    keep_weekly: int = Field(4, ge=0)


class BackupsConfig(ConfigModel):
    """``backups``: restore points of the source tables (``cdc backup ...``, ``cdc restore``).

    ``destination`` is a local directory (relative paths are taken from the config file's directory);
    ``schedule`` (``30m``, ``6h``) is how often ``cdc backup create --schedule`` takes one;
    ``encryption_key_file`` names a file holding a 256-bit key (64 hex digits, base64 of 32 bytes, or
    the 32 raw bytes): chunks are then encrypted with AES-256-GCM and the manifest authenticated with
    HMAC-SHA256, both with keys derived from it.
    """

    destination: Annotated[Path, BeforeValidator(_local_destination)]
    schedule: Schedule | None = None
    retention: BackupRetentionConfig = Field(default_factory=lambda: BackupRetentionConfig.model_validate({}))
    encryption_key_file: Path | None = None
    chunk_rows: int = Field(50_000, ge=1)
    compression_level: int = Field(1, ge=1, le=22)

    hints: ClassVar[Mapping[str, str]] = {
        "encryption_key_file": "create one with: openssl rand -hex 32 > backup.key",
    }

    @property
    def interval_s(self) -> int | None:
        """The schedule in seconds (None: no schedule)."""
        if self.schedule is None:
            return None
        n, unit = int(self.schedule[:-1]), self.schedule[-1]
        return n * (3600 if unit == "h" else 60)

    def encryption_key(self) -> bytes | None:
        """The 32-byte key from ``encryption_key_file`` (None without one); read now, never kept in the model.

        Raises :class:`~cdc.errors.ConfigError` when the file is unreadable or holds no valid key.
        """
        if self.encryption_key_file is None:
            return None
        problem, key = _read_backup_key(self.encryption_key_file)
        if key is None:
            raise ConfigError([f"backups.encryption_key_file: {problem}"])
        return key


def _read_backup_key(path: Path) -> tuple[str, bytes | None]:
    """(problem, None) or ("", the key) for the key file at ``path``."""
    from cdc.backup.keys import parse_key

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return f"cannot read {path}: no such file", None
    except IsADirectoryError:
        return f"cannot read {path}: it is a directory", None
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or type(exc).__name__}", None
    try:
        return "", parse_key(data)
    except ValueError as exc:
        return f"{path}: {exc}", None


# The connectors' source models import this module's building blocks above; building the
# union imports them now (registry → connectors.<name>.config → cdc.config, already defined).
_SOURCE_MODELS = tuple(registry.source_config_model(kind) for kind in registry.SOURCES)
_SOURCE_UNION: Any = Annotated[functools.reduce(operator.or_, _SOURCE_MODELS), Field(discriminator="type")]
_BUS_UNION: Any = Annotated[KafkaBusConfig | DirectBusConfig, Field(discriminator="type")]


class Config(ConfigModel):
    """The whole file: a pipeline ``name``, one ``source``, one ``bus``, its ``sinks``, ``metrics`` and ``log``.

    ``source`` is the connector's model (:class:`connectors.mysql.config.MySqlSourceConfig`,
    :class:`connectors.postgres.config.PostgresSourceConfig`), chosen by its ``type``.
    Validating a mapping directly (``Config.model_validate``) applies the same defaults and
    cross-section rules as :func:`parse_config`, without interpolation or secret files.
    """

    name: PipelineId
    if TYPE_CHECKING:
        source: SourceConfigBase
        bus: KafkaBusConfig | DirectBusConfig
    else:
        source: _SOURCE_UNION
        bus: _BUS_UNION
    sinks: list[SinkConfig] = Field(default_factory=list)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    backups: BackupsConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _derived_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        pipeline = _sanitize(data.get("name"), "cdc")
        source = data.get("source")
        if isinstance(source, dict) and isinstance(source.get("type"), str) and source["type"] in registry.SOURCES:
            model = registry.source_config_model(source["type"])
            data["source"] = model.with_pipeline_defaults(dict(source), pipeline)
        prefix = pipeline
        bus = data.get("bus")
        if isinstance(bus, dict) and bus.get("type") == "kafka":
            bus = data["bus"] = dict(bus)
            if _missing(bus.get("topic_prefix")):
                bus["topic_prefix"] = pipeline
            prefix = _sanitize(bus["topic_prefix"], pipeline)
        sinks = data.get("sinks")
        if isinstance(sinks, list):
            data["sinks"] = [
                {**s, "dead_letter_topic": f"__cdc_dlq.{prefix}.{_sanitize(s.get('name'), 'sink')}"}
                if isinstance(s, dict) and _missing(s.get("dead_letter_topic"))
                else s
                for s in sinks
            ]
        return data

    @model_validator(mode="after")
    def _cross_section(self, info: ValidationInfo) -> Config:
        if not (info.context or {}).get(_CROSS_CHECKED):
            raw = {"bus": {"type": self.bus.type}, "sinks": [{"name": s.name} for s in self.sinks]}
            problems = [f"{_path_text(path)}: {message}" for path, message in _cross_section_problems(raw)]
            if problems:
                raise ValueError("; ".join(problems))
        return self

    @property
    def topic_prefix(self) -> str:
        """The prefix of every topic: ``bus.topic_prefix`` for Kafka, else ``name``."""
        return self.bus.topic_prefix if isinstance(self.bus, KafkaBusConfig) else self.name

    def sink(self, name: str) -> SinkConfig:
        """The sink called ``name``; :class:`~cdc.errors.ConfigError` if there is none."""
        for sink in self.sinks:
            if sink.name == name:
                return sink
        known = ", ".join(s.name for s in self.sinks) or "none"
        raise ConfigError([f"sinks: no sink named {name!r} (configured: {known})"])


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

_CROSS_CHECKED = "cdc.config.cross_checked"

_Loc = tuple[str | int, ...]


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at ``path``.

    ``env`` is the environment for ``${VAR}`` (default: ``os.environ``). Relative
    ``url_file``/``password_file`` paths are taken from the file's directory.
    Raises :class:`~cdc.errors.ConfigError` listing every problem, also when the file
    cannot be read.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{file}: no such file"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{file}: not UTF-8 text (byte {exc.start})"]) from None
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read it: {exc.strerror or exc}"]) from None
    return parse_config(text, env=env, base_dir=file.absolute().parent)


def parse_config(text: str, env: Mapping[str, str] | None = None, base_dir: str | Path | None = None) -> Config:
    """Validate config ``text`` (YAML); see the module docstring for the rules.

    ``env`` defaults to ``os.environ``; ``base_dir`` (default: the working directory) anchors
    relative secret-file paths. Returns a frozen :class:`Config` or raises one
    :class:`~cdc.errors.ConfigError` with every problem found.
    """
    problems = _Problems()
    data = _load_yaml(text, problems)
    if data is None:
        raise ConfigError(problems.lines())
    data = _interpolate(data, environ if env is None else env, (), problems)
    _resolve_secrets(data, Path(base_dir) if base_dir is not None else Path.cwd(), problems)
    for path, message in _cross_section_problems(data):
        problems.add(path, message)
    config: Config | None = None
    try:
        config = Config.model_validate(data, context={_CROSS_CHECKED: True})
    except ValidationError as exc:
        for error in exc.errors():
            problems.add_validation_error(error)
    if problems or config is None:
        raise ConfigError(problems.lines())
    return config


@dataclass
class _Problems:
    """Problems in the order found; a path already reported hides later noise at or under it."""

    items: list[tuple[_Loc, str]] = field(default_factory=list)
    quiet: set[_Loc] = field(default_factory=set)

    def add(self, path: _Loc, message: str, *, quiet: Sequence[_Loc] = ()) -> None:
        self.items.append((path, message))
        if path:
            self.quiet.add(path)
        self.quiet.update(quiet)

    def add_validation_error(self, error: Any) -> None:
        where = _locate(tuple(error["loc"]))
        if any(where.path[: len(q)] == q for q in self.quiet):
            return
        path, message = _message(error, where)
        self.items.append((path, message))

    def lines(self) -> list[str]:
        """One line per problem, in the order of the file's sections (stable within one), without repeats."""
        out: list[str] = []
        for path, message in sorted(self.items, key=lambda item: _section_rank(item[0])):
            line = f"{_path_text(path)}: {message}" if path else message
            if line not in out:
                out.append(line)
        return out

    def __bool__(self) -> bool:
        return bool(self.items)


def _section_rank(path: _Loc) -> tuple[int, int]:
    """Sort key: whole-file problems first, then name, source, bus, sinks (by index), metrics, log, unknown keys."""
    if not path:
        return (-1, 0)
    sections = list(Config.model_fields)
    rank = sections.index(path[0]) if path[0] in sections else len(sections)
    return (rank, path[1] if len(path) > 1 and isinstance(path[1], int) else -1)


def _path_text(path: _Loc) -> str:
    """``('sinks', 0, 'url')`` → ``sinks[0].url``; keys that are not identifiers in brackets."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def _show(value: Any) -> str:
    """A short, YAML-flavoured rendering of a bad value for a message."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


# --------------------------------------------------------------------------- YAML


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that records keys given twice in one mapping instead of keeping the last."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, int, str]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    mark = key_node.start_mark
                    self.duplicates.append((mark.line + 1, mark.column + 1, str(key)))
                seen.add(key)
            except TypeError:
                pass  # unhashable key: construct_mapping below reports it
        return super().construct_mapping(node, deep=deep)


def _load_yaml(text: str, problems: _Problems) -> dict[str, Any] | None:
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid syntax"
        problems.add((), f"{where}YAML syntax error: {what}")
        return None
    except yaml.YAMLError as exc:
        problems.add((), f"YAML error: {type(exc).__name__}")
        return None
    finally:
        loader.dispose()
    for line, column, key in loader.duplicates:
        problems.add((), f"line {line}, column {column}: key {key!r} is given twice in the same mapping")
    if data is None:
        problems.add((), "the configuration is empty")
        return None
    if not isinstance(data, dict):
        problems.add((), f"the configuration must be a mapping of keys (name, source, bus, ...), not {_show(data)}")
        return None
    return data


# --------------------------------------------------------------------------- ${VAR}

_REFERENCE = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_VAR = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


def _interpolate(value: Any, env: Mapping[str, str], path: _Loc, problems: _Problems) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, env, (*path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, (*path, i), problems) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        return _interpolate_text(value, env, path, problems)
    return value


def _interpolate_text(text: str, env: Mapping[str, str], path: _Loc, problems: _Problems) -> str:
    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$${":
            return "${"
        body = match.group("body")
        if body is None:
            problems.add(path, "'${' without a closing '}' (write $${ for a literal ${)")
            return whole
        ref = _VAR.fullmatch(body)
        if ref is None:
            problems.add(path, f"${{{body}}} is not a variable reference: use ${{NAME}} or ${{NAME:-default}}")
            return whole
        name, default = ref["name"], ref["default"]
        current = env.get(name)
        if default is not None:
            return current if current else default
        if current is None:
            problems.add(path, f"environment variable {name} is not set (give a default with ${{{name}:-...}})")
            return whole
        return current

    return _REFERENCE.sub(replace, text)


# --------------------------------------------------------------------------- url_file, password_file


def _resolve_secrets(data: dict[str, Any], base_dir: Path, problems: _Problems) -> None:
    if isinstance(data.get("backups"), dict):
        data["backups"] = _resolve_backups(data["backups"], base_dir, problems)
    if isinstance(data.get("source"), dict):
        data["source"] = _resolve_section_secrets(data["source"], ("source",), base_dir, problems)
    sinks = data.get("sinks")
    if isinstance(sinks, list):
        for i, sink in enumerate(sinks):
            if isinstance(sink, dict):
                sinks[i] = _resolve_section_secrets(sink, ("sinks", i), base_dir, problems)


def _resolve_backups(section: dict[str, Any], base_dir: Path, problems: _Problems) -> dict[str, Any]:
    """``backups``: relative ``destination`` and ``encryption_key_file`` from the config file's directory;
    the key file is read and checked now, so that a bad key is reported with every other problem."""
    section = dict(section)
    for key in ("destination", "encryption_key_file"):
        value = section.get(key)
        if isinstance(value, str) and value.strip() and not re.match(r"[A-Za-z][A-Za-z0-9+.\-]*://", value):
            path = Path(value).expanduser()
            section[key] = str(path if path.is_absolute() else base_dir / path)
    key_file = section.get("encryption_key_file")
    if isinstance(key_file, str) and key_file.strip():
        problem, found = _read_backup_key(Path(key_file))
        if found is None:
            problems.add(("backups", "encryption_key_file"), problem)
    return section


def _read_secret(
    section: dict[str, Any], key: str, path: _Loc, base_dir: Path, problems: _Problems, *, quiet: _Loc
) -> str | None:
    """The content of the file named by ``section[key]``, or None after adding a problem."""
    name = section[key]
    if not isinstance(name, str) or not name.strip():
        problems.add((*path, key), f"must be a file path (got {_show(name)})", quiet=[quiet])
        return None
    file = Path(name).expanduser()
    if not file.is_absolute():
        file = base_dir / file
    section[key] = str(file)
    try:
        content = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        reason = "no such file"
    except IsADirectoryError:
        reason = "it is a directory"
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    else:
        return content
    problems.add((*path, key), f"cannot read {file}: {reason}", quiet=[quiet])
    return None


def _resolve_section_secrets(
    section: dict[str, Any], path: _Loc, base_dir: Path, problems: _Problems
) -> dict[str, Any]:
    section = dict(section)
    url_path = (*path, "url")
    if not _missing(section.get("url_file")):
        if not _missing(section.get("url")):
            problems.add((*path, "url_file"), "give either url or url_file, not both", quiet=[url_path])
        else:
            content = _read_secret(section, "url_file", path, base_dir, problems, quiet=url_path)
            if content is not None:
                if content.strip():
                    section["url"] = content.strip()
                else:
                    problems.add((*path, "url_file"), f"{section['url_file']} is empty", quiet=[url_path])
    elif _missing(section.get("url")):
        problems.add(url_path, "required (or give url_file)")
    if _missing(section.get("password_file")):
        return section
    password = _read_secret(section, "password_file", path, base_dir, problems, quiet=(*path, "password_file"))
    url = section.get("url")
    if password is None or not isinstance(url, str):
        return section
    password = password.rstrip("\r\n")
    if not password:
        problems.add((*path, "password_file"), f"{section['password_file']} is empty")
        return section
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        return section  # the URL's own check reports it
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at or not userinfo:
        problems.add(
            (*path, "password_file"), "the URL names no user for the password (write it as scheme://USER@host/...)"
        )
    elif has_password:
        problems.add((*path, "password_file"), "the URL already contains a password; give it in one place only")
    else:
        netloc = f"{userinfo}:{quote(password, safe='')}@{host}"
        section["url"] = parts._replace(netloc=netloc).geturl()
    return section


# --------------------------------------------------------------------------- cross-section rules


def _cross_section_problems(data: Mapping[str, Any]) -> list[tuple[_Loc, str]]:
    """Rules spanning sections, checked on raw data so they are reported with every other problem."""
    out: list[tuple[_Loc, str]] = []
    sinks = data.get("sinks")
    first: dict[str, int] = {}
    if isinstance(sinks, list):
        for i, sink in enumerate(sinks):
            name = sink.get("name") if isinstance(sink, dict) else None
            if not isinstance(name, str):
                continue
            if name in first:
                out.append((("sinks", i, "name"), f"duplicate sink name {name!r} (also sinks[{first[name]}].name)"))
            else:
                first[name] = i
    bus = data.get("bus")
    if isinstance(bus, dict) and bus.get("type") == "direct" and not sinks:
        out.append((("sinks",), "bus.type direct needs at least one sink (without Kafka the events go nowhere else)"))
    return out


# --------------------------------------------------------------------------- pydantic errors → lines


@dataclass
class _Where:
    """Where a pydantic error location points: the path to show and what the schema says there."""

    path: _Loc
    owner: type[BaseModel] | None = None  # the model whose key is the last path element
    field_name: str | None = None  # the last model field passed
    annotation: Any = None  # the type expected at the location (None: unknown key)
    union: tuple[type[BaseModel], ...] = ()  # when the location is a tagged union, its members
    siblings: tuple[type[BaseModel], ...] = ()  # the other members of the union passed on the way


def _unwrap(annotation: Any) -> Any:
    """``Annotated[X, ...]`` → X, ``X | None`` → X."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _tagged_members(annotation: Any) -> dict[str, type[BaseModel]]:
    """For a union of models with a ``type: Literal[...]`` tag: ``{tag: model}``."""
    if get_origin(annotation) not in (Union, UnionType):
        return {}
    out: dict[str, type[BaseModel]] = {}
    for member in get_args(annotation):
        tag = member.model_fields.get("type") if _is_model(member) else None
        if tag is not None and get_origin(tag.annotation) is Literal:
            out.update(dict.fromkeys(get_args(tag.annotation), member))
    return out


def _locate(loc: tuple[int | str, ...]) -> _Where:
    where = _Where(path=(), annotation=Config)
    current: Any = Config
    for i, item in enumerate(loc):
        current = _unwrap(current)
        if _is_model(current):
            where.owner = current
            fields: dict[str, FieldInfo] = current.model_fields
            if isinstance(item, str) and item in fields:
                where.field_name = item
                current = fields[item].annotation
            else:
                current = None
            where.path += (item,)
            continue
        members = _tagged_members(current)
        if members and isinstance(item, str) and item in members:
            current = members[item]
            where.siblings = tuple(m for m in dict.fromkeys(members.values()) if m is not current)
            continue
        origin = get_origin(current)
        args = get_args(current)
        if origin in (list, tuple) and isinstance(item, int) and args:
            current = args[0]
            where.path += (item,)
        elif origin is dict and args:
            # a bad key is reported as (..., key, "[key]"): look ahead so the key's own type applies
            key_error = i + 1 < len(loc) and loc[i + 1] == "[key]"
            current = args[0] if key_error else args[1]
            where.path += (item,)
        elif item == "[key]":
            continue
        else:
            current = None
            where.path += (item,)
    current = _unwrap(current)
    where.annotation = current
    where.union = tuple(dict.fromkeys(_tagged_members(current).values()))
    return where


def _choices(annotation: Any) -> list[str] | None:
    if get_origin(annotation) is Literal:
        return [str(a) for a in get_args(annotation)]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [str(m.value) for m in annotation]
    return None


def _unknown_key(key: str, where: _Where) -> str:
    owner = where.owner
    valid = list(owner.model_fields) if owner is not None else []
    for sibling in where.siblings:
        if key in sibling.model_fields and owner is not None:
            tag = sibling.model_fields["type"].default
            mine = owner.model_fields["type"].default
            return f"unknown key for type {mine} (it is a key of type {tag})"
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return "unknown key; valid keys are " + ", ".join(valid) if valid else "unknown key"


_SIMPLE: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "int_parsing": lambda c: "must be a whole number",
    "int_type": lambda c: "must be a whole number",
    "int_from_float": lambda c: "must be a whole number",
    "float_parsing": lambda c: "must be a number",
    "float_type": lambda c: "must be a number",
    "bool_parsing": lambda c: "must be true or false",
    "bool_type": lambda c: "must be true or false",
    "string_type": lambda c: "must be a string",
    "list_type": lambda c: "must be a list",
    "tuple_type": lambda c: "must be a list",
    "dict_type": lambda c: "must be a mapping",
    "model_type": lambda c: "must be a mapping",
    "model_attributes_type": lambda c: "must be a mapping",
    "path_type": lambda c: "must be a file path",
    "greater_than_equal": lambda c: f"must be at least {c['ge']}",
    "greater_than": lambda c: f"must be more than {c['gt']}",
    "less_than_equal": lambda c: f"must be at most {c['le']}",
    "less_than": lambda c: f"must be less than {c['lt']}",
    "too_short": lambda c: f"must have at least {c['min_length']} item(s)",
    "string_too_short": lambda c: "must not be empty",
    "invalid_key": lambda c: "keys must be strings (quote this key in YAML)",
}


def _message(error: Any, where: _Where) -> tuple[_Loc, str]:
    kind: str = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    path = where.path
    secret = where.annotation is SecretUrl
    got = "" if secret else f" (got {_show(value)})"
    if kind == "extra_forbidden":
        return path, _unknown_key(str(path[-1]), where)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = ", ".join(
            dict.fromkeys(str(t) for m in where.union for t in get_args(m.model_fields["type"].annotation))
        )
        if kind == "union_tag_not_found":
            return (*path, "type"), f"required (one of {tags})"
        return (*path, "type"), f"must be one of {tags} (got {_show(ctx.get('tag'))})"
    if kind == "missing":
        message = "required"
    elif kind in ("enum", "literal_error") and (choices := _choices(where.annotation)):
        message = f"must be one of {', '.join(choices)}{got}"
    elif kind == "value_error":
        message = str(ctx.get("error", error["msg"]))
    elif kind in _SIMPLE:
        message = _SIMPLE[kind](ctx) + ("" if kind == "invalid_key" else got)
    else:
        text = str(error["msg"])
        message = (text[:1].lower() + text[1:]) + got
    owner_hints: Mapping[str, str] = getattr(where.owner, "hints", {})
    hint = owner_hints.get(where.field_name or "") if where.field_name == (path[-1] if path else None) else None
    if hint:
        message += f" ({hint})"
    return path, message
